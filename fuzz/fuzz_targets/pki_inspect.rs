//! Arbitrary bytes as certificates, keys and bundles: inspect and validate never panic, and
//! whatever they accept is consistent.
#![no_main]

use latchkey_pki::inspect::{CertInfo, inspect};
use latchkey_pki::key::PrivateKey;
use latchkey_pki::pem::encode_certificate;
use latchkey_pki::validate::{Bundle, validate};
use libfuzzer_sys::fuzz_target;

const LEAF_KEY: &[u8] = include_bytes!("../../pki/tests/fixtures/leaf-key.pem");
const INTERMEDIATE: &[u8] = include_bytes!("../../pki/tests/fixtures/intermediate-cert.pem");
const ROOT: &[u8] = include_bytes!("../../pki/tests/fixtures/root-cert.pem");
const NOW: u64 = 1_780_272_000;

fuzz_target!(|data: &[u8]| {
    // Raw input as DER, PEM or both.
    if let Ok(info) = CertInfo::from_der(data) {
        assert!(!info.self_signed || info.self_issued);
        let expiry = info.expiry(NOW, 30 * 86_400);
        assert_eq!(expiry.expiring_soon, info.not_after < NOW + 30 * 86_400);
        let _ = serde_json::to_string(&info);
    }
    let _ = inspect(data, NOW, 30 * 86_400);
    let _ = PrivateKey::from_der(data);
    let _ = PrivateKey::from_pem(data);

    // Input as the DER inside a PEM certificate, checked against a real chain.
    let cert_pem = encode_certificate(data);
    let bundle = Bundle::new(cert_pem.as_bytes(), LEAF_KEY)
        .with_chain(INTERMEDIATE)
        .with_roots(ROOT)
        .with_host("gateway.example.test");
    if let Ok(valid) = validate(&bundle, NOW) {
        assert!(valid.leaf.not_before <= NOW && NOW <= valid.leaf.not_after);
    }

    // Input split into a certificate and a key, self-signed path, with an odd host.
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (cert, key) = data.split_at(split);
    let host = if data.len() % 2 == 0 {
        "a.example"
    } else {
        "10.0.0.1"
    };
    if let Ok(valid) = validate(&Bundle::new(cert, key).with_host(host), NOW) {
        assert!(valid.leaf.self_signed);
    }
});
