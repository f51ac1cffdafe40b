use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng as _;

use rustls_pki_types::pem::PemObject as _;

use super::*;

const EC_SEC1: &[u8] = include_bytes!("../../tests/fixtures/ec-p256-key.pem");
const EC_PKCS8: &[u8] = include_bytes!("../../tests/fixtures/ec-p256-key.pkcs8.pem");
const EC_CERT: &[u8] = include_bytes!("../../tests/fixtures/ec-p256-cert.pem");
const RSA_PKCS8: &[u8] = include_bytes!("../../tests/fixtures/rsa-2048-key.pem");
const RSA_PKCS1: &[u8] = include_bytes!("../../tests/fixtures/rsa-2048-key.pkcs1.pem");
const RSA_1024: &[u8] = include_bytes!("../../tests/fixtures/rsa-1024-key.pem");
const ED_PKCS8: &[u8] = include_bytes!("../../tests/fixtures/ed25519-key.pem");
const P384_PKCS8: &[u8] = include_bytes!("../../tests/fixtures/p384-key.pem");
const P384_SEC1: &[u8] = include_bytes!("../../tests/fixtures/p384-key.sec1.pem");

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// A "random" source that always yields 0xff: never a valid P-256 scalar.
struct Stuck;

impl rand_core::TryRng for Stuck {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(u32::MAX)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(u64::MAX)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        dst.fill(0xff);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for Stuck {}

fn der_of(pem_text: &[u8]) -> Vec<u8> {
    let (_, der) = <(rustls_pki_types::pem::SectionKind, Vec<u8>)>::from_pem_slice(pem_text)
        .expect("fixture is PEM");
    der
}

#[test]
fn generate_is_reproducible_from_the_injected_rng() {
    for key_type in [KeyType::P256, KeyType::Ed25519] {
        let a = PrivateKey::generate(key_type, &mut rng(7)).unwrap();
        let b = PrivateKey::generate(key_type, &mut rng(7)).unwrap();
        let c = PrivateKey::generate(key_type, &mut rng(8)).unwrap();
        assert_eq!(a.public_key_der(), b.public_key_der());
        assert_ne!(a.public_key_der(), c.public_key_der());
    }
}

#[test]
fn generate_defaults_to_p256_and_names_the_algorithm() {
    let key = PrivateKey::generate(KeyType::default(), &mut rng(1)).unwrap();
    assert_eq!(key.algorithm(), &KeyAlgorithm::EcdsaP256);
    assert!(key.can_sign());
    let ed = PrivateKey::generate(KeyType::Ed25519, &mut rng(1)).unwrap();
    assert_eq!(ed.algorithm(), &KeyAlgorithm::Ed25519);
}

#[test]
fn generate_reports_a_random_source_that_never_yields_a_scalar() {
    assert_eq!(
        PrivateKey::generate(KeyType::P256, &mut Stuck).unwrap_err(),
        KeyError::BadRandomSource
    );
}

#[test]
fn from_p256_scalar_rejects_zero_and_values_above_the_order() {
    assert!(matches!(
        PrivateKey::from_p256_scalar(&[0; 32]),
        Err(KeyError::Rejected { .. })
    ));
    assert!(matches!(
        PrivateKey::from_p256_scalar(&[0xff; 32]),
        Err(KeyError::Rejected { .. })
    ));
    let mut one = [0u8; 32];
    one[31] = 1;
    assert!(PrivateKey::from_p256_scalar(&one).is_ok());
}

#[test]
fn from_ed25519_seed_matches_rfc8032_test_vector_1() {
    // RFC 8032 §7.1 TEST 1.
    let seed: [u8; 32] = [
        0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c,
        0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae,
        0x7f, 0x60,
    ];
    let public: [u8; 32] = [
        0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07,
        0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07,
        0x51, 0x1a,
    ];
    let key = PrivateKey::from_ed25519_seed(&seed).unwrap();
    assert_eq!(&key.public_key_der()[12..], &public);
    let (signature, _) = key.sign(b"").unwrap();
    assert_eq!(
        asn1::hex(&signature),
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
         5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    );
}

#[test]
fn keys_round_trip_through_pkcs8_pem_and_der() {
    for key_type in [KeyType::P256, KeyType::Ed25519] {
        let key = PrivateKey::generate(key_type, &mut rng(3)).unwrap();
        let pem_text = key.to_pem();
        assert!(pem_text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let back = PrivateKey::from_pem(pem_text.as_bytes()).unwrap();
        assert_eq!(back.public_key_der(), key.public_key_der());
        let back = PrivateKey::from_der(&key.to_pkcs8_der()).unwrap();
        assert_eq!(back.public_key_der(), key.public_key_der());
        assert!(matches!(key.to_private_key_der(), PrivateKeyDer::Pkcs8(_)));
    }
}

#[test]
fn openssl_sec1_and_pkcs8_forms_of_one_key_are_the_same_key() {
    let sec1 = PrivateKey::from_pem(EC_SEC1).unwrap();
    let pkcs8 = PrivateKey::from_pem(EC_PKCS8).unwrap();
    assert_eq!(sec1.public_key_der(), pkcs8.public_key_der());
    assert_eq!(&*sec1.to_pkcs8_der(), &*pkcs8.to_pkcs8_der());
    // DER input too, in both forms.
    let from_der = PrivateKey::from_der(&der_of(EC_SEC1)).unwrap();
    assert_eq!(from_der.public_key_der(), sec1.public_key_der());
}

#[test]
fn openssl_rsa_keys_are_read_in_pkcs8_and_pkcs1_with_their_size() {
    let pkcs8 = PrivateKey::from_pem(RSA_PKCS8).unwrap();
    let pkcs1 = PrivateKey::from_pem(RSA_PKCS1).unwrap();
    assert_eq!(pkcs8.algorithm(), &KeyAlgorithm::Rsa { bits: 2048 });
    assert_eq!(pkcs8.public_key_der(), pkcs1.public_key_der());
    assert_eq!(&*pkcs8.to_pkcs8_der(), &*pkcs1.to_pkcs8_der());
    let from_der = PrivateKey::from_der(&der_of(RSA_PKCS1)).unwrap();
    assert_eq!(from_der.public_key_der(), pkcs8.public_key_der());
}

#[test]
fn rsa_keys_cannot_sign() {
    let rsa = PrivateKey::from_pem(RSA_PKCS8).unwrap();
    assert!(!rsa.can_sign());
    assert!(matches!(rsa.sign(b"x"), Err(KeyError::CannotSign { .. })));
}

#[test]
fn rsa_keys_below_2048_bits_are_rejected() {
    assert!(matches!(
        PrivateKey::from_pem(RSA_1024),
        Err(KeyError::Rejected { .. })
    ));
}

#[test]
fn openssl_ed25519_key_is_read() {
    let key = PrivateKey::from_pem(ED_PKCS8).unwrap();
    assert_eq!(key.algorithm(), &KeyAlgorithm::Ed25519);
}

#[test]
fn p384_keys_are_refused_as_unsupported_in_both_encodings() {
    for input in [P384_PKCS8, P384_SEC1] {
        assert_eq!(
            PrivateKey::from_pem(input).unwrap_err(),
            KeyError::Unsupported {
                algorithm: "ECDSA P-384".to_owned()
            }
        );
    }
    assert!(matches!(
        PrivateKey::from_der(&der_of(P384_SEC1)),
        Err(KeyError::Unsupported { .. })
    ));
}

#[test]
fn from_pem_names_what_it_found_instead_of_a_key() {
    match PrivateKey::from_pem(EC_CERT) {
        Err(KeyError::NotFound { found }) => assert_eq!(found, vec!["CERTIFICATE"]),
        other => panic!("unexpected {other:?}"),
    }
    let encrypted =
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
    let err = PrivateKey::from_pem(encrypted).unwrap_err();
    assert!(matches!(err, KeyError::NotFound { .. }));
    assert!(err.to_string().contains("no private key") || err.to_string().contains("encrypted"));
}

#[test]
fn garbage_is_malformed_not_a_panic() {
    assert!(matches!(
        PrivateKey::from_der(b"\x30\x03\x02\x01"),
        Err(KeyError::Malformed { .. })
    ));
    assert!(PrivateKey::from_der(&[]).is_err());
    let bad_body = b"-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n";
    assert!(matches!(
        PrivateKey::from_pem(bad_body),
        Err(KeyError::Malformed { .. })
    ));
}

#[test]
fn matches_public_key_tells_own_key_from_others() {
    let a = PrivateKey::generate(KeyType::P256, &mut rng(1)).unwrap();
    let b = PrivateKey::generate(KeyType::P256, &mut rng(2)).unwrap();
    let ed = PrivateKey::generate(KeyType::Ed25519, &mut rng(1)).unwrap();
    assert_eq!(a.matches_public_key(a.public_key_der()), KeyMatch::Match);
    assert_eq!(a.matches_public_key(b.public_key_der()), KeyMatch::Mismatch);
    assert_eq!(
        a.matches_public_key(ed.public_key_der()),
        KeyMatch::Mismatch
    );
    assert_eq!(ed.matches_public_key(ed.public_key_der()), KeyMatch::Match);
    assert_eq!(a.matches_public_key(b"junk"), KeyMatch::Unknown);
}

#[test]
fn matches_public_key_accepts_a_compressed_point_of_the_same_key() {
    let key = PrivateKey::generate(KeyType::P256, &mut rng(5)).unwrap();
    let Inner::P256(signing) = &*key.inner else {
        unreachable!()
    };
    let compressed = signing.verifying_key().to_encoded_point(true);
    let spki = SubjectPublicKeyInfoRef {
        algorithm: AlgorithmIdentifierRef {
            oid: asn1::EC_PUBLIC_KEY,
            parameters: Some(AnyRef::from(&asn1::SECP256R1)),
        },
        subject_public_key: BitStringRef::from_bytes(compressed.as_bytes()).unwrap(),
    }
    .to_der()
    .unwrap();
    assert_eq!(key.matches_public_key(&spki), KeyMatch::Match);
}

#[test]
fn ecdsa_signatures_are_deterministic_rfc6979() {
    let key = PrivateKey::generate(KeyType::P256, &mut rng(9)).unwrap();
    let (a, alg) = key.sign(b"message").unwrap();
    let (b, _) = key.sign(b"message").unwrap();
    assert_eq!(a, b);
    assert_eq!(alg.oid, asn1::ECDSA_WITH_SHA256);
    assert_eq!(key.signature_algorithm().unwrap(), alg);
}

#[test]
fn debug_output_never_shows_secret_material() {
    let key = PrivateKey::generate(KeyType::P256, &mut rng(4)).unwrap();
    let debug = format!("{key:?}");
    assert_eq!(debug, "PrivateKey { algorithm: EcdsaP256, .. }");
}

#[test]
fn public_key_pem_is_an_spki_block() {
    let key = PrivateKey::generate(KeyType::Ed25519, &mut rng(4)).unwrap();
    let text = key.public_key_pem();
    assert!(text.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    assert_eq!(
        KeyAlgorithm::from_spki(key.public_key_der()).unwrap(),
        KeyAlgorithm::Ed25519
    );
}

#[test]
fn key_type_parses_aliases_and_refuses_rsa_with_the_reason() {
    assert_eq!("P-256".parse::<KeyType>().unwrap(), KeyType::P256);
    assert_eq!("ecdsa".parse::<KeyType>().unwrap(), KeyType::P256);
    assert_eq!("Ed25519".parse::<KeyType>().unwrap(), KeyType::Ed25519);
    let rsa = "rsa2048".parse::<KeyType>().unwrap_err();
    assert!(rsa.to_string().contains("openssl"), "{rsa}");
    assert!(matches!(
        "dsa".parse::<KeyType>(),
        Err(KeyError::Unsupported { .. })
    ));
    assert_eq!(KeyType::P256.to_string(), "p256");
}

#[test]
fn key_algorithm_names_family_curve_and_bits() {
    assert_eq!(KeyAlgorithm::EcdsaP256.to_string(), "ECDSA P-256");
    assert_eq!(KeyAlgorithm::Rsa { bits: 2048 }.to_string(), "RSA 2048");
    assert_eq!(KeyAlgorithm::Ed25519.to_string(), "Ed25519");
    assert_eq!(
        KeyAlgorithm::Unknown {
            oid: "1.2.3".to_owned()
        }
        .to_string(),
        "unknown (1.2.3)"
    );
    assert_eq!(KeyAlgorithm::EcdsaP384.bits(), Some(384));
    assert_eq!(KeyAlgorithm::EcdsaP521.curve(), Some("P-521"));
    let json = serde_json::to_value(KeyAlgorithm::EcdsaP256).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"family": "ECDSA", "curve": "P-256", "bits": 256, "name": "ECDSA P-256"})
    );
}
