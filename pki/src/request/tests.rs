use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng as _;
use x509_cert::der::Tag;
use x509_cert::der::Tagged as _;
use x509_cert::der::asn1::Ia5String;
use x509_cert::ext::pkix::name::GeneralName;

use super::*;
use crate::inspect::{CertInfo, San, is_signed_by};
use crate::key::KeyType;

const RSA_KEY: &[u8] = include_bytes!("../../tests/fixtures/rsa-2048-key.pem");
const JAN_2025: u64 = 1_735_689_600;

fn key(key_type: KeyType) -> PrivateKey {
    PrivateKey::generate(key_type, &mut ChaCha20Rng::seed_from_u64(11)).unwrap()
}

fn legrand() -> RequestParams {
    RequestParams::legrand("client-123", "owner-9", "gw-42", "owner@example.com", "DIY")
}

fn parse_csr(csr: &Csr) -> CertReq {
    CertReq::from_der(csr.der()).expect("CSR decodes")
}

#[test]
fn csr_is_signed_by_its_key_and_deterministic() {
    for key_type in [KeyType::P256, KeyType::Ed25519] {
        let key = key(key_type);
        let a = Csr::create(&legrand(), &key).unwrap();
        let b = Csr::create(&legrand(), &key).unwrap();
        assert_eq!(a, b, "same inputs, same bytes");
        assert!(is_signed_by(a.der(), key.public_key_der()));
        let other = PrivateKey::generate(key_type, &mut ChaCha20Rng::seed_from_u64(12)).unwrap();
        assert!(!is_signed_by(a.der(), other.public_key_der()));
        let req = parse_csr(&a);
        assert_eq!(req.info.public_key.to_der().unwrap(), key.public_key_der());
    }
}

#[test]
fn legrand_subject_has_one_attribute_per_rdn_in_order_with_proper_string_types() {
    let req = parse_csr(&Csr::create(&legrand(), &key(KeyType::P256)).unwrap());
    let rdns = &req.info.subject.0;
    assert_eq!(rdns.len(), 7);
    let expected = [
        ("2.5.4.3", Tag::Utf8String, "client-123"),
        ("2.5.4.11", Tag::Utf8String, "DIY"),
        ("2.5.4.10", Tag::Utf8String, "LEGRAND"),
        ("2.5.4.7", Tag::Utf8String, "Paris"),
        ("2.5.4.8", Tag::Utf8String, "France"),
        ("2.5.4.6", Tag::PrintableString, "FR"),
        ("1.2.840.113549.1.9.1", Tag::Ia5String, "owner@example.com"),
    ];
    for (rdn, (oid, tag, value)) in rdns.iter().zip(expected) {
        assert_eq!(rdn.0.len(), 1, "one attribute per RDN");
        let atv = rdn.0.get(0).unwrap();
        assert_eq!(atv.oid.to_string(), oid);
        assert_eq!(atv.value.tag(), tag);
        assert_eq!(atv.value.value(), value.as_bytes());
    }
}

#[test]
fn csr_carries_sans_and_usages_in_an_extension_request() {
    let params = legrand()
        .with_san(SubjectAltName::Dns("gw.local".to_owned()))
        .with_san(SubjectAltName::Ip("192.168.1.5".parse().unwrap()))
        .with_key_usage(KeyUsage::DigitalSignature)
        .with_extended_key_usage(ExtendedKeyUsage::ClientAuth)
        .with_extended_key_usage(ExtendedKeyUsage::ClientAuth);
    let req = parse_csr(&Csr::create(&params, &key(KeyType::P256)).unwrap());
    assert_eq!(req.info.attributes.len(), 1);
    let attr = req.info.attributes.get(0).unwrap();
    assert_eq!(attr.oid, ExtensionReq::OID);
    let ext_req = ExtensionReq::from_der(&attr.values.get(0).unwrap().to_der().unwrap()).unwrap();
    let oids: Vec<String> = ext_req.0.iter().map(|e| e.extn_id.to_string()).collect();
    assert_eq!(oids, ["2.5.29.17", "2.5.29.15", "2.5.29.37"]);
    let san = SanExtension::from_der(ext_req.0[0].extn_value.as_bytes()).unwrap();
    assert_eq!(
        san.0[0],
        GeneralName::UniformResourceIdentifier(
            Ia5String::new("sip:owner-9_client-123@gw-42.bs.iotleg.com").unwrap()
        )
    );
    assert_eq!(san.0.len(), 3);
    assert!(ext_req.0[1].critical, "keyUsage is critical");
    let eku = EkuExtension::from_der(ext_req.0[2].extn_value.as_bytes()).unwrap();
    assert_eq!(eku.0.len(), 1, "duplicates collapse");
}

#[test]
fn csr_without_extensions_has_an_empty_attribute_set() {
    let params = RequestParams::new(DistinguishedName::common_name("x"));
    let req = parse_csr(&Csr::create(&params, &key(KeyType::Ed25519)).unwrap());
    assert!(req.info.attributes.is_empty());
}

#[test]
fn csr_der_base64_is_unarmoured_single_line_der() {
    let csr = Csr::create(&legrand(), &key(KeyType::P256)).unwrap();
    let b64 = csr.to_der_base64();
    assert!(!b64.contains('\n') && !b64.contains("BEGIN"));
    assert_eq!(pem::from_base64(&b64).unwrap(), csr.der());
    let text = csr.to_pem();
    assert!(text.starts_with("-----BEGIN CERTIFICATE REQUEST-----\n"));
    assert_eq!(csr.clone().into_der().as_ref(), csr.der());
}

#[test]
fn rsa_keys_cannot_make_requests_or_certificates() {
    let rsa = PrivateKey::from_pem(RSA_KEY).unwrap();
    assert!(matches!(
        Csr::create(&legrand(), &rsa),
        Err(RequestError::Key(KeyError::CannotSign { .. }))
    ));
    let params = SelfSignedParams::new(legrand(), JAN_2025, JAN_2025 + 1);
    assert!(matches!(
        Certificate::self_signed(&params, &rsa, &mut ChaCha20Rng::seed_from_u64(1)),
        Err(RequestError::Key(KeyError::CannotSign { .. }))
    ));
}

#[test]
fn subject_values_are_checked_before_signing() {
    let key = key(KeyType::P256);
    let cases = [
        (AttributeType::Country, "FRA"),
        (AttributeType::Country, "F1"),
        (AttributeType::CommonName, ""),
        (AttributeType::EmailAddress, "no-at-sign"),
        (AttributeType::EmailAddress, "é@example.com"),
    ];
    for (kind, value) in cases {
        let params = RequestParams::new(DistinguishedName::new().with(kind, value));
        assert!(
            matches!(
                Csr::create(&params, &key),
                Err(RequestError::InvalidAttribute { .. })
            ),
            "{kind:?}={value:?} accepted"
        );
    }
    let long = "a".repeat(65);
    let params = RequestParams::new(DistinguishedName::common_name(&long));
    let err = Csr::create(&params, &key).unwrap_err();
    assert_eq!(
        err.to_string(),
        "subject attribute CN: longer than 64 characters"
    );
}

#[test]
fn distinguished_name_parses_openssl_subject_strings_in_order() {
    let dn: DistinguishedName =
        "/CN=client/OU=DIY/O=LEGRAND/L=Paris/ST=France/C=FR/emailAddress=a@b.c"
            .parse()
            .unwrap();
    assert_eq!(
        dn,
        DistinguishedName::legrand("client", "DIY", "a@b.c"),
        "same order as the Legrand helper"
    );
    let escaped: DistinguishedName = "/CN=a\\/b/O=x".parse().unwrap();
    assert_eq!(escaped.cn(), Some("a/b"));
    assert!(matches!(
        "CN=x".parse::<DistinguishedName>(),
        Err(RequestError::InvalidSubject { .. })
    ));
    assert!("/XX=y".parse::<DistinguishedName>().is_err());
    assert!("/CN".parse::<DistinguishedName>().is_err());
    assert!("/".parse::<DistinguishedName>().is_err());
}

#[test]
fn attribute_short_names_round_trip() {
    for kind in [
        AttributeType::CommonName,
        AttributeType::OrganizationalUnit,
        AttributeType::Organization,
        AttributeType::Locality,
        AttributeType::State,
        AttributeType::Country,
        AttributeType::EmailAddress,
    ] {
        assert_eq!(
            AttributeType::from_short_name(kind.short_name()),
            Some(kind)
        );
    }
    assert_eq!(
        AttributeType::from_short_name("E"),
        Some(AttributeType::EmailAddress)
    );
}

#[test]
fn subject_alt_names_parse_from_typed_and_bare_strings() {
    assert_eq!(
        "uri:sip:o_c@g.bs.iotleg.com"
            .parse::<SubjectAltName>()
            .unwrap(),
        SubjectAltName::Uri("sip:o_c@g.bs.iotleg.com".to_owned())
    );
    assert_eq!(
        "DNS:*.example.test".parse::<SubjectAltName>().unwrap(),
        SubjectAltName::Dns("*.example.test".to_owned())
    );
    assert_eq!(
        "10.0.0.1".parse::<SubjectAltName>().unwrap(),
        SubjectAltName::Ip("10.0.0.1".parse().unwrap())
    );
    assert_eq!(
        "ip:::1".parse::<SubjectAltName>().unwrap(),
        SubjectAltName::Ip("::1".parse().unwrap())
    );
    assert_eq!(
        "doorstation.local".parse::<SubjectAltName>().unwrap(),
        SubjectAltName::Dns("doorstation.local".to_owned())
    );
    assert_eq!(
        "email:a@b.c".parse::<SubjectAltName>().unwrap().to_string(),
        "email:a@b.c"
    );
    for bad in [
        "ip:999.1.1.1",
        "dns:a..b",
        "dns:a.*.b",
        "dns:-a.b",
        "uri:no-scheme",
        "uri:sip:has space",
        "email:@x",
        "dns:é.example",
    ] {
        assert!(bad.parse::<SubjectAltName>().is_err(), "{bad} accepted");
    }
}

#[test]
fn legrand_sip_uri_has_the_documented_form() {
    assert_eq!(
        SubjectAltName::legrand_sip("owner", "client", "gateway"),
        SubjectAltName::Uri("sip:owner_client@gateway.bs.iotleg.com".to_owned())
    );
}

#[test]
fn self_signed_carries_the_given_validity_and_a_random_serial() {
    let key = key(KeyType::P256);
    let params = SelfSignedParams::server("doorstation.local", &[], JAN_2025, 3650).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let a = Certificate::self_signed(&params, &key, &mut rng).unwrap();
    let b = Certificate::self_signed(&params, &key, &mut rng).unwrap();
    let info = CertInfo::from_der(a.der()).unwrap();
    assert_eq!(info.not_before, JAN_2025);
    assert_eq!(info.not_after, JAN_2025 + 3650 * 86_400);
    assert_eq!(info.subject_cn.as_deref(), Some("doorstation.local"));
    assert_eq!(
        info.subject_alt_names,
        [San::Dns("doorstation.local".to_owned())]
    );
    assert_eq!(info.extended_key_usage, ["serverAuth"]);
    assert!(info.self_signed && !info.is_ca);
    assert_eq!(info.serial.len(), 32, "16 serial bytes");
    let info_b = CertInfo::from_der(b.der()).unwrap();
    assert_ne!(info.serial, info_b.serial, "serial comes from the rng");
}

#[test]
fn self_signed_is_deterministic_given_the_serial() {
    let key = key(KeyType::Ed25519);
    let params = SelfSignedParams::new(legrand(), JAN_2025, JAN_2025 + 86_400);
    let a = Certificate::self_signed_with_serial(&params, &key, &[1, 2, 3]).unwrap();
    let b = Certificate::self_signed_with_serial(&params, &key, &[1, 2, 3]).unwrap();
    assert_eq!(a, b);
    assert_eq!(CertInfo::from_der(a.der()).unwrap().serial, "010203");
    assert!(a.to_pem().starts_with("-----BEGIN CERTIFICATE-----\n"));
    assert_eq!(a.clone().into_der().as_ref(), a.der());
}

#[test]
fn self_signed_uses_generalized_time_from_2050() {
    let key = key(KeyType::P256);
    let not_after = 2_556_144_000; // 2051-01-01
    let params = SelfSignedParams::new(legrand(), JAN_2025, not_after);
    let cert = Certificate::self_signed_with_serial(&params, &key, &[9]).unwrap();
    let parsed = x509_cert::Certificate::from_der(cert.der()).unwrap();
    assert!(matches!(
        parsed.tbs_certificate.validity.not_before,
        Time::UtcTime(_)
    ));
    assert!(matches!(
        parsed.tbs_certificate.validity.not_after,
        Time::GeneralTime(_)
    ));
    assert_eq!(CertInfo::from_der(cert.der()).unwrap().not_after, not_after);
}

#[test]
fn self_signed_refuses_empty_reversed_or_unrepresentable_validity() {
    let key = key(KeyType::P256);
    for (nb, na) in [
        (JAN_2025, JAN_2025),
        (JAN_2025, JAN_2025 - 1),
        (JAN_2025, 300_000_000_000),
    ] {
        let params = SelfSignedParams::new(legrand(), nb, na);
        assert!(
            matches!(
                Certificate::self_signed_with_serial(&params, &key, &[1]),
                Err(RequestError::InvalidValidity { .. })
            ),
            "{nb}..{na} accepted"
        );
    }
    assert!(SelfSignedParams::server("a.b", &[], u64::MAX - 10, 1).is_err());
}

#[test]
fn self_signed_ca_gets_basic_constraints_and_key_cert_sign() {
    let key = key(KeyType::P256);
    let mut params = SelfSignedParams::new(
        RequestParams::new(DistinguishedName::common_name("Test CA")),
        JAN_2025,
        JAN_2025 + 86_400,
    );
    params.is_ca = true;
    let cert = Certificate::self_signed_with_serial(&params, &key, &[1]).unwrap();
    let info = CertInfo::from_der(cert.der()).unwrap();
    assert!(info.is_ca && info.self_signed);
    let parsed = x509_cert::Certificate::from_der(cert.der()).unwrap();
    let (critical, ku) = parsed
        .tbs_certificate
        .get::<KuExtension>()
        .unwrap()
        .unwrap();
    assert!(critical && ku.key_cert_sign());
}

#[test]
fn server_params_add_extra_sans_once() {
    let extra = [
        SubjectAltName::Ip("192.168.1.50".parse().unwrap()),
        SubjectAltName::Dns("doorstation.local".to_owned()),
    ];
    let params = SelfSignedParams::server("doorstation.local", &extra, JAN_2025, 1).unwrap();
    assert_eq!(params.request.subject_alt_names.len(), 2);
    let ip = SelfSignedParams::server("192.168.1.50", &[], JAN_2025, 1).unwrap();
    assert_eq!(
        ip.request.subject_alt_names,
        [SubjectAltName::Ip("192.168.1.50".parse().unwrap())]
    );
}

#[test]
fn san_is_critical_only_when_the_subject_is_empty() {
    let key = key(KeyType::P256);
    let params = SelfSignedParams::new(
        RequestParams::new(DistinguishedName::new()).with_san(SubjectAltName::Dns("x.test".into())),
        JAN_2025,
        JAN_2025 + 1,
    );
    let cert = Certificate::self_signed_with_serial(&params, &key, &[1]).unwrap();
    let parsed = x509_cert::Certificate::from_der(cert.der()).unwrap();
    let (critical, _) = parsed
        .tbs_certificate
        .get::<SanExtension>()
        .unwrap()
        .unwrap();
    assert!(critical);
}

#[test]
fn request_errors_read_well() {
    let e = RequestError::InvalidSan {
        value: "dns:x".into(),
        reason: "bad".into(),
    };
    assert_eq!(e.to_string(), "subject alternative name dns:x: bad");
    let e = RequestError::from(KeyError::BadRandomSource);
    assert!(e.to_string().contains("random source"));
}
