//! Shared fixtures: openssl-made certificates and keys (see `fixtures/README.md`).
#![allow(dead_code)]

macro_rules! fixture {
    ($name:ident, $file:literal) => {
        pub(crate) const $name: &[u8] = include_bytes!(concat!("../fixtures/", $file));
    };
}

fixture!(EC_CERT, "ec-p256-cert.pem");
fixture!(EC_KEY, "ec-p256-key.pem");
fixture!(EC_KEY_PKCS8, "ec-p256-key.pkcs8.pem");
fixture!(RSA_CERT, "rsa-2048-cert.pem");
fixture!(RSA_KEY, "rsa-2048-key.pem");
fixture!(RSA_KEY_PKCS1, "rsa-2048-key.pkcs1.pem");
fixture!(ROOT_CERT, "root-cert.pem");
fixture!(INTERMEDIATE_CERT, "intermediate-cert.pem");
fixture!(LEAF_CERT, "leaf-cert.pem");
fixture!(LEAF_KEY, "leaf-key.pem");
fixture!(SERVER_ONLY_CERT, "server-only-cert.pem");
fixture!(SERVER_ONLY_KEY, "server-only-key.pem");
fixture!(EXPIRED_CERT, "expired-cert.pem");
fixture!(EXPIRED_KEY, "expired-key.pem");
fixture!(OTHER_KEY, "other-key.pem");
fixture!(ED_CERT, "ed25519-cert.pem");
fixture!(ED_KEY, "ed25519-key.pem");
fixture!(CN_ONLY_CERT, "cn-only-cert.pem");
fixture!(CN_ONLY_KEY, "cn-only-key.pem");
fixture!(P384_KEY, "p384-key.pem");

/// `openssl-facts.tsv`: file, serial, notBefore, notAfter, SHA-256 fingerprint, as openssl
/// printed them when the fixtures were made.
pub(crate) const OPENSSL_FACTS: &str = include_str!("../fixtures/openssl-facts.tsv");

/// Every certificate fixture by file name.
pub(crate) fn cert_by_name(name: &str) -> &'static [u8] {
    match name {
        "ec-p256-cert.pem" => EC_CERT,
        "rsa-2048-cert.pem" => RSA_CERT,
        "root-cert.pem" => ROOT_CERT,
        "intermediate-cert.pem" => INTERMEDIATE_CERT,
        "leaf-cert.pem" => LEAF_CERT,
        "server-only-cert.pem" => SERVER_ONLY_CERT,
        "expired-cert.pem" => EXPIRED_CERT,
        "ed25519-cert.pem" => ED_CERT,
        "cn-only-cert.pem" => CN_ONLY_CERT,
        other => panic!("no fixture {other}"),
    }
}

/// 2025-01-01T00:00:00Z: notBefore of most fixtures.
pub(crate) const JAN_2025: u64 = 1_735_689_600;
/// 2026-06-01T00:00:00Z: inside every current fixture's validity except ed25519's.
pub(crate) const JUN_2026: u64 = 1_780_272_000;
pub(crate) const DAY: u64 = 86_400;
