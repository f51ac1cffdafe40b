//! Any bytes — random, or openssl fixtures with random damage — give an answer, never a
//! panic (the fuzz target `pki_inspect` explores the same space for longer).

mod common;

use common::*;
use latchkey_pki::inspect::CertInfo;
use latchkey_pki::key::PrivateKey;
use latchkey_pki::validate::{Bundle, validate};
use proptest::prelude::*;

fn damage(input: &[u8], edits: &[(usize, u8)]) -> Vec<u8> {
    let mut out = input.to_vec();
    for &(pos, byte) in edits {
        if !out.is_empty() {
            let i = pos % out.len();
            out[i] ^= byte;
        }
    }
    out
}

fn der_of(pem: &[u8]) -> Vec<u8> {
    latchkey_pki::pem::parse_certificates(pem).unwrap()[0].to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_any_parser(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = CertInfo::from_der(&bytes);
        let _ = CertInfo::from_pem(&bytes);
        let _ = PrivateKey::from_der(&bytes);
        let _ = PrivateKey::from_pem(&bytes);
        let _ = validate(&Bundle::new(&bytes, &bytes).with_roots(&bytes).with_host("a.test"), JUN_2026);
    }

    #[test]
    fn damaged_certificates_never_panic(
        which in 0usize..4,
        edits in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..8),
    ) {
        let pem = [EC_CERT, RSA_CERT, LEAF_CERT, ED_CERT][which];
        let der = damage(&der_of(pem), &edits);
        if let Ok(info) = CertInfo::from_der(&der) {
            // Whatever still parses must still be judged consistently.
            let _ = info.expiry(JUN_2026, 30 * DAY);
        }
        let damaged_pem = latchkey_pki::pem::encode_certificate(&der);
        let _ = validate(
            &Bundle::new(damaged_pem.as_bytes(), LEAF_KEY)
                .with_chain(INTERMEDIATE_CERT)
                .with_roots(ROOT_CERT)
                .with_host("gateway.example.test"),
            JUN_2026,
        );
    }

    #[test]
    fn damaged_keys_never_panic(
        which in 0usize..4,
        edits in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..8),
    ) {
        let pem = [EC_KEY, RSA_KEY, ED_KEY, RSA_KEY_PKCS1][which];
        let (_, der) = <(rustls_pki_types::pem::SectionKind, Vec<u8>) as rustls_pki_types::pem::PemObject>::from_pem_slice(pem).unwrap();
        let _ = PrivateKey::from_der(&damage(&der, &edits));
        let _ = PrivateKey::from_pem(&damage(pem, &edits));
    }
}
