//! `inspect` reads openssl-made certificates and agrees with what openssl says about them.

mod common;

use common::*;
use latchkey_pki::inspect::{
    CertInfo, DEFAULT_WARN_BEFORE, ExpiryState, InspectError, San, inspect, is_signed_by,
};
use latchkey_pki::key::KeyAlgorithm;
use latchkey_pki::pem::PemError;

fn info(pem: &[u8]) -> CertInfo {
    let mut all = CertInfo::from_pem(pem).expect("fixture parses");
    assert_eq!(all.len(), 1);
    all.remove(0)
}

#[test]
fn serial_validity_and_fingerprint_agree_with_openssl_for_every_fixture() {
    let mut checked = 0;
    for line in OPENSSL_FACTS.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        let [file, serial, not_before, not_after, fingerprint] = cols[..] else {
            panic!("bad facts line {line:?}");
        };
        let info = info(cert_by_name(file));
        assert_eq!(info.serial, serial, "{file} serial");
        assert_eq!(info.not_before.to_string(), not_before, "{file} notBefore");
        assert_eq!(info.not_after.to_string(), not_after, "{file} notAfter");
        assert_eq!(info.fingerprint_sha256, fingerprint, "{file} fingerprint");
        checked += 1;
    }
    assert_eq!(checked, 9);
}

#[test]
fn ec_self_signed_server_certificate_is_read_in_full() {
    let info = info(EC_CERT);
    assert_eq!(info.subject_cn.as_deref(), Some("doorstation.local"));
    assert_eq!(info.subject, "CN=doorstation.local, O=Latchkey Test");
    assert_eq!(info.issuer, info.subject);
    assert_eq!(
        info.subject_alt_names,
        [
            San::Dns("doorstation.local".to_owned()),
            San::Dns("*.doorstation.test".to_owned()),
            San::Ip("192.168.1.50".parse().unwrap()),
        ]
    );
    assert!(info.self_issued && info.self_signed && !info.is_ca);
    assert_eq!(info.key_algorithm, KeyAlgorithm::EcdsaP256);
    assert_eq!(info.signature_algorithm, "ecdsa-with-SHA256");
    assert_eq!(info.extended_key_usage, ["serverAuth"]);
    assert_eq!(info.not_before_utc, "2025-01-01T00:00:00Z");
    assert_eq!(info.not_after_utc, "2035-01-01T00:00:00Z");
    assert_eq!(info.validity().lifetime(), 3652 * DAY);
}

#[test]
fn rsa_self_signed_certificate_reports_its_key_size() {
    let info = info(RSA_CERT);
    assert_eq!(info.key_algorithm, KeyAlgorithm::Rsa { bits: 2048 });
    assert_eq!(info.key_algorithm.to_string(), "RSA 2048");
    assert_eq!(info.signature_algorithm, "sha256WithRSAEncryption");
    assert!(info.self_signed);
}

#[test]
fn ed25519_certificate_is_self_signed() {
    let info = info(ED_CERT);
    assert_eq!(info.key_algorithm, KeyAlgorithm::Ed25519);
    assert_eq!(info.signature_algorithm, "Ed25519");
    assert!(info.self_signed);
}

#[test]
fn chain_members_are_told_apart() {
    let root = info(ROOT_CERT);
    let intermediate = info(INTERMEDIATE_CERT);
    let leaf = info(LEAF_CERT);
    assert!(root.self_signed && root.is_ca);
    assert!(!intermediate.self_signed && intermediate.is_ca);
    assert!(!leaf.self_signed && !leaf.self_issued && !leaf.is_ca);
    assert_eq!(
        leaf.issuer,
        "CN=Latchkey Test Intermediate, O=Latchkey Test"
    );
    assert_eq!(intermediate.issuer, root.subject);
    assert_eq!(
        leaf.subject_alt_names[1],
        San::Uri("sip:owner_client@gateway.bs.iotleg.com".to_owned())
    );
    assert_eq!(leaf.extended_key_usage, ["serverAuth", "clientAuth"]);
    // The leaf's signature verifies with the intermediate's key, not its own.
    let leaf_der = &latchkey_pki::pem::parse_certificates(LEAF_CERT).unwrap()[0];
    assert!(is_signed_by(
        leaf_der.as_ref(),
        intermediate.public_key_der()
    ));
    assert!(!is_signed_by(leaf_der.as_ref(), leaf.public_key_der()));
}

#[test]
fn a_pem_with_several_certificates_gives_them_all_in_order() {
    let bundle = [LEAF_CERT, INTERMEDIATE_CERT, ROOT_CERT].concat();
    let all = CertInfo::from_pem(&bundle).unwrap();
    let cns: Vec<_> = all.iter().map(|c| c.subject_cn.clone().unwrap()).collect();
    assert_eq!(
        cns,
        [
            "gateway.example.test",
            "Latchkey Test Intermediate",
            "Latchkey Test Root"
        ]
    );
}

#[test]
fn raw_der_input_is_accepted() {
    let der = latchkey_pki::pem::parse_certificates(EC_CERT).unwrap();
    let from_der = CertInfo::from_pem(der[0].as_ref()).unwrap();
    assert_eq!(from_der[0], info(EC_CERT));
}

#[test]
fn expired_certificate_is_expired_with_negative_days() {
    let info = info(EXPIRED_CERT);
    let expiry = info.expiry(JAN_2025, DEFAULT_WARN_BEFORE);
    assert_eq!(expiry.state, ExpiryState::Expired);
    assert!(expiry.expiring_soon);
    assert_eq!(expiry.days_until_expiry, -(4 * 365 + 1) + 1 - 1);
    assert_eq!(
        expiry.seconds_until_expiry,
        -(JAN_2025 as i64 - 1_609_459_200)
    );
}

#[test]
fn expiring_soon_matches_openssl_checkend_at_the_boundary() {
    let info = info(LEAF_CERT); // notAfter 2030-01-01
    let warn = 30 * DAY;
    let edge = info.not_after - warn;
    // openssl x509 -checkend N: "will expire" iff notAfter < now + N.
    assert!(!info.expiry(edge, warn).expiring_soon);
    assert_eq!(info.expiry(edge, warn).state, ExpiryState::Valid);
    assert!(info.expiry(edge + 1, warn).expiring_soon);
    assert_eq!(info.expiry(edge + 1, warn).state, ExpiryState::ExpiringSoon);
    assert_eq!(info.expiry(edge, warn).days_until_expiry, 30);
    assert_eq!(info.expiry(edge + 1, warn).days_until_expiry, 29);
    // notAfter itself is still valid (RFC 5280: inclusive); one second later is not.
    assert_eq!(
        info.expiry(info.not_after, warn).state,
        ExpiryState::ExpiringSoon
    );
    assert_eq!(
        info.expiry(info.not_after + 1, warn).state,
        ExpiryState::Expired
    );
    assert_eq!(info.expiry(info.not_after + 1, warn).days_until_expiry, -1);
    assert_eq!(
        info.expiry(info.not_before - 1, warn).state,
        ExpiryState::NotYetValid
    );
}

#[test]
fn inspect_reports_serialize_to_the_documented_json() {
    let reports = inspect(EC_CERT, JUN_2026, DEFAULT_WARN_BEFORE).unwrap();
    let json = serde_json::to_value(&reports[0]).unwrap();
    assert_eq!(json["now"], JUN_2026);
    assert_eq!(json["expiry"]["state"], "valid");
    assert_eq!(json["expiry"]["warn_before"], DEFAULT_WARN_BEFORE);
    let cert = &json["certificate"];
    assert_eq!(cert["subject_cn"], "doorstation.local");
    assert_eq!(cert["serial"], "1A2B3C4D5E6F");
    assert_eq!(cert["self_signed"], true);
    assert_eq!(cert["key_algorithm"]["name"], "ECDSA P-256");
    assert_eq!(
        cert["subject_alt_names"][2],
        serde_json::json!({"type": "ip", "value": "192.168.1.50"})
    );
    assert!(cert.get("spki").is_none(), "internal fields stay out");
}

#[test]
fn non_certificates_give_clear_errors() {
    assert_eq!(
        CertInfo::from_pem(b"hello"),
        Err(InspectError::Pem(PemError::NotFound {
            label: "CERTIFICATE"
        }))
    );
    assert!(matches!(
        CertInfo::from_pem(EC_KEY),
        Err(InspectError::Pem(PemError::NotFound { .. }))
    ));
    let err = CertInfo::from_der(&[0x30, 0x03, 0x02, 0x01, 0x01]).unwrap_err();
    assert!(matches!(err, InspectError::Der { .. }));
    assert!(err.to_string().starts_with("not a DER X.509 certificate"));
}

#[test]
fn truncated_certificates_are_errors_not_panics() {
    let der = latchkey_pki::pem::parse_certificates(RSA_CERT).unwrap()[0].to_vec();
    for cut in 0..der.len() {
        assert!(CertInfo::from_der(&der[..cut]).is_err(), "cut at {cut}");
    }
    let mut trailing = der.clone();
    trailing.push(0);
    assert!(CertInfo::from_der(&trailing).is_err());
}

#[test]
fn a_flipped_signature_bit_means_not_self_signed() {
    let mut der = latchkey_pki::pem::parse_certificates(EC_CERT).unwrap()[0].to_vec();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    let info = CertInfo::from_der(&der).unwrap();
    assert!(info.self_issued);
    assert!(!info.self_signed);
}
