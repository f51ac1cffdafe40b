//! `validate` accepts good openssl-made bundles and names each kind of bad one.

mod common;

use common::*;
use latchkey_pki::key::{KeyType, PrivateKey};
use latchkey_pki::request::{Certificate, SelfSignedParams};
use latchkey_pki::validate::{Bundle, Trust, Usage, ValidationError, validate};
use rand_core::SeedableRng as _;

fn err(bundle: Bundle<'_>, now: u64) -> ValidationError {
    validate(&bundle, now).expect_err("bundle should fail")
}

#[test]
fn self_signed_ec_bundle_is_valid_and_trusted_as_self_signed() {
    let valid = validate(&Bundle::new(EC_CERT, EC_KEY), JUN_2026).unwrap();
    assert_eq!(valid.trust, Trust::SelfSigned);
    assert_eq!(valid.cert_chain.len(), 1);
    assert_eq!(valid.leaf.subject_cn.as_deref(), Some("doorstation.local"));
    assert!(matches!(
        valid.private_key_der(),
        rustls_pki_types::PrivateKeyDer::Pkcs8(_)
    ));
    // The PKCS#8 form of the same key works as well.
    assert!(validate(&Bundle::new(EC_CERT, EC_KEY_PKCS8), JUN_2026).is_ok());
}

#[test]
fn rsa_and_ed25519_self_signed_bundles_are_valid() {
    assert!(validate(&Bundle::new(RSA_CERT, RSA_KEY), JUN_2026).is_ok());
    assert!(validate(&Bundle::new(RSA_CERT, RSA_KEY_PKCS1), JUN_2026).is_ok());
    assert!(validate(&Bundle::new(ED_CERT, ED_KEY), JAN_2025 + DAY).is_ok());
}

#[test]
fn a_key_that_does_not_match_is_a_key_mismatch() {
    let e = err(Bundle::new(EC_CERT, OTHER_KEY), JUN_2026);
    assert_eq!(
        e,
        ValidationError::KeyMismatch {
            certificate_key: "ECDSA P-256".to_owned(),
            private_key: "ECDSA P-256".to_owned()
        }
    );
    assert!(e.to_string().starts_with("key mismatch"));
    let e = err(Bundle::new(EC_CERT, RSA_KEY), JUN_2026);
    assert!(matches!(e, ValidationError::KeyMismatch { .. }));
}

#[test]
fn expired_and_not_yet_valid_are_told_apart() {
    let e = err(Bundle::new(EXPIRED_CERT, EXPIRED_KEY), JUN_2026);
    assert!(matches!(
        e,
        ValidationError::Expired {
            not_after: 1_609_459_200,
            ..
        }
    ));
    assert!(
        e.to_string()
            .starts_with("expired: valid until 2021-01-01T00:00:00Z")
    );
    let e = err(Bundle::new(EC_CERT, EC_KEY), JAN_2025 - 1);
    assert!(matches!(e, ValidationError::NotYetValid { .. }));
    assert!(e.to_string().starts_with("not yet valid"));
}

#[test]
fn invalid_formats_name_the_part() {
    let e = err(Bundle::new(b"garbage", EC_KEY), JUN_2026);
    assert!(matches!(
        e,
        ValidationError::InvalidCertificate {
            part: "certificate",
            ..
        }
    ));
    assert!(e.to_string().starts_with("invalid format: certificate"));
    let e = err(Bundle::new(EC_CERT, EC_CERT), JUN_2026);
    assert!(matches!(e, ValidationError::InvalidKey { .. }));
    assert!(e.to_string().contains("CERTIFICATE"), "{e}");
    let e = err(Bundle::new(EC_CERT, P384_KEY), JUN_2026);
    assert!(matches!(e, ValidationError::UnsupportedKey { .. }));
    let e = err(
        Bundle::new(LEAF_CERT, LEAF_KEY).with_chain(b"nope"),
        JUN_2026,
    );
    assert!(matches!(
        e,
        ValidationError::InvalidCertificate { part: "chain", .. }
    ));
    let e = err(
        Bundle::new(LEAF_CERT, LEAF_KEY).with_roots(b"nope"),
        JUN_2026,
    );
    assert!(matches!(
        e,
        ValidationError::InvalidCertificate { part: "roots", .. }
    ));
}

#[test]
fn leaf_chain_and_root_verify_to_a_chain_trust() {
    let bundle = Bundle::new(LEAF_CERT, LEAF_KEY)
        .with_chain(INTERMEDIATE_CERT)
        .with_roots(ROOT_CERT)
        .with_host("gateway.example.test");
    let valid = validate(&bundle, JUN_2026).unwrap();
    assert_eq!(valid.trust, Trust::Chain { intermediates: 1 });
    assert_eq!(valid.cert_chain.len(), 2);
    // Client usage is allowed too (the leaf has both EKUs).
    assert!(validate(&bundle.with_usage(Usage::ClientAuth), JUN_2026).is_ok());
}

#[test]
fn a_fullchain_pem_counts_its_extra_certificates_as_chain() {
    let fullchain = [LEAF_CERT, INTERMEDIATE_CERT].concat();
    let valid = validate(
        &Bundle::new(&fullchain, LEAF_KEY).with_roots(ROOT_CERT),
        JUN_2026,
    )
    .unwrap();
    assert_eq!(valid.trust, Trust::Chain { intermediates: 1 });
}

#[test]
fn a_missing_intermediate_or_wrong_root_is_an_untrusted_chain() {
    let e = err(
        Bundle::new(LEAF_CERT, LEAF_KEY).with_roots(ROOT_CERT),
        JUN_2026,
    );
    assert!(matches!(e, ValidationError::UntrustedChain { .. }));
    assert!(e.to_string().contains("intermediate"), "{e}");
    let e = err(
        Bundle::new(LEAF_CERT, LEAF_KEY)
            .with_chain(INTERMEDIATE_CERT)
            .with_roots(EC_CERT),
        JUN_2026,
    );
    assert!(matches!(e, ValidationError::UntrustedChain { .. }));
    assert!(e.to_string().starts_with("untrusted chain"));
}

#[test]
fn without_roots_a_ca_issued_leaf_is_not_self_signed() {
    let e = err(
        Bundle::new(LEAF_CERT, LEAF_KEY).with_chain(INTERMEDIATE_CERT),
        JUN_2026,
    );
    assert_eq!(
        e,
        ValidationError::NotSelfSigned {
            issuer: "CN=Latchkey Test Intermediate, O=Latchkey Test".to_owned()
        }
    );
}

#[test]
fn a_leaf_equal_to_a_root_is_pinned() {
    let valid = validate(&Bundle::new(EC_CERT, EC_KEY).with_roots(EC_CERT), JUN_2026).unwrap();
    assert_eq!(valid.trust, Trust::PinnedRoot);
}

#[test]
fn a_server_only_certificate_is_refused_for_client_use() {
    let bundle = Bundle::new(SERVER_ONLY_CERT, SERVER_ONLY_KEY)
        .with_chain(INTERMEDIATE_CERT)
        .with_roots(ROOT_CERT);
    assert!(validate(&bundle, JUN_2026).is_ok());
    let e = err(bundle.with_usage(Usage::ClientAuth), JUN_2026);
    assert_eq!(
        e,
        ValidationError::UsageNotAllowed {
            usage: Usage::ClientAuth
        }
    );
}

#[test]
fn host_names_follow_san_and_wildcard_rules() {
    let ok = |host| validate(&Bundle::new(EC_CERT, EC_KEY).with_host(host), JUN_2026);
    assert!(ok("doorstation.local").is_ok());
    assert!(ok("DOORSTATION.local").is_ok());
    assert!(
        ok("cam.doorstation.test").is_ok(),
        "wildcard matches one label"
    );
    assert!(ok("192.168.1.50").is_ok(), "IP SAN");
    for bad in [
        "a.b.doorstation.test",
        "doorstation.test",
        "192.168.1.51",
        "other.local",
    ] {
        match ok(bad) {
            Err(ValidationError::NameMismatch { host, names }) => {
                assert_eq!(host, bad);
                assert_eq!(
                    names,
                    [
                        "DNS:doorstation.local",
                        "DNS:*.doorstation.test",
                        "IP:192.168.1.50",
                        "CN:doorstation.local"
                    ]
                );
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    assert!(matches!(
        ok("not a host!"),
        Err(ValidationError::InvalidHost { .. })
    ));
}

#[test]
fn cn_fallback_applies_only_when_allowed_and_there_are_no_sans() {
    let bundle = Bundle::new(CN_ONLY_CERT, CN_ONLY_KEY).with_host("legacy.local");
    let e = err(bundle, JUN_2026);
    assert!(e.to_string().starts_with("name mismatch"), "{e}");
    assert!(validate(&bundle.allow_cn_fallback(), JUN_2026).is_ok());
    assert!(
        validate(
            &bundle.allow_cn_fallback().with_host("other.local"),
            JUN_2026
        )
        .is_err()
    );
    // A certificate with SANs never falls back to its CN.
    let with_sans = Bundle::new(LEAF_CERT, LEAF_KEY)
        .with_chain(INTERMEDIATE_CERT)
        .with_roots(ROOT_CERT)
        .allow_cn_fallback();
    assert!(validate(&with_sans.with_host("gateway.example.test"), JUN_2026).is_ok());
}

#[test]
fn checks_run_in_the_documented_order() {
    // Wrong key and expired: the key is reported first.
    let e = err(Bundle::new(EXPIRED_CERT, OTHER_KEY), JUN_2026);
    assert!(matches!(e, ValidationError::KeyMismatch { .. }));
    // Expired and wrong host: expiry first.
    let e = err(
        Bundle::new(EXPIRED_CERT, EXPIRED_KEY).with_host("x.test"),
        JUN_2026,
    );
    assert!(matches!(e, ValidationError::Expired { .. }));
}

#[test]
fn a_generated_door_station_certificate_validates_with_its_key() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(21);
    let key = PrivateKey::generate(KeyType::P256, &mut rng).unwrap();
    let params = SelfSignedParams::server("doorstation.local", &[], JAN_2025, 3650).unwrap();
    let cert = Certificate::self_signed(&params, &key, &mut rng).unwrap();
    let cert_pem = cert.to_pem();
    let key_pem = key.to_pem();
    let bundle =
        Bundle::new(cert_pem.as_bytes(), key_pem.as_bytes()).with_host("doorstation.local");
    let valid = validate(&bundle, JUN_2026).unwrap();
    assert_eq!(valid.trust, Trust::SelfSigned);
    // …and as a pinned root for a client that trusts exactly it.
    let pinned = bundle.with_roots(cert_pem.as_bytes());
    assert_eq!(
        validate(&pinned, JUN_2026).unwrap().trust,
        Trust::PinnedRoot
    );
    // Another key does not fit it.
    let other = PrivateKey::generate(KeyType::P256, &mut rng)
        .unwrap()
        .to_pem();
    assert!(matches!(
        validate(
            &Bundle::new(cert_pem.as_bytes(), other.as_bytes()),
            JUN_2026
        ),
        Err(ValidationError::KeyMismatch { .. })
    ));
}

#[test]
fn every_error_message_names_its_kind() {
    let cases = [
        (
            ValidationError::KeyCheckUnsupported {
                certificate_key: "RSA-PSS 2048".into(),
            },
            "key mismatch",
        ),
        (
            ValidationError::InvalidHost { host: "?".into() },
            "invalid host",
        ),
        (
            ValidationError::NameMismatch {
                host: "a".into(),
                names: vec![],
            },
            "name mismatch",
        ),
        (
            ValidationError::UsageNotAllowed {
                usage: Usage::ServerAuth,
            },
            "wrong usage",
        ),
    ];
    for (e, prefix) in cases {
        assert!(e.to_string().starts_with(prefix), "{e}");
        let crate_error = latchkey_pki::Error::from(e.clone());
        assert_eq!(crate_error.to_string(), e.to_string());
    }
}
