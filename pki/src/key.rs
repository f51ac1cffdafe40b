//! Private keys: generation from injected randomness, PEM/DER in and out, public keys.
//!
//! | key | generate | parse (PKCS#8 / SEC1 / PKCS#1) | sign CSRs and certificates |
//! |-----|----------|--------------------------------|----------------------------|
//! | ECDSA P-256 (default) | yes, from 32 random bytes | yes | yes, RFC 6979 deterministic (RustCrypto `p256`) |
//! | Ed25519 | yes, from a 32-byte seed | yes (PKCS#8) | yes, deterministic by definition (*ring*) |
//! | RSA 2048–4096 | **no** | yes, checked by *ring* | **no** |
//! | others (P-384, Ed448, …) | no | refused with [`KeyError::Unsupported`] | no |
//!
//! RSA keys can be read, inspected and matched against certificates, but not generated nor
//! used to sign: the RustCrypto `rsa` crate carries RUSTSEC-2023-0071 (Marvin timing attack,
//! no fixed release) and *ring*'s RSA signer takes an OS random source. Generate RSA keys and
//! their CSRs with openssl when a peer insists on RSA.

use core::fmt;
use std::sync::Arc;

use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, EncodePublicKey as _};
use rand_core::CryptoRng;
use ring::signature::{Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::Serialize;
use x509_cert::der::asn1::{
    AnyRef, BitStringRef, ContextSpecific, ObjectIdentifier, OctetStringRef,
};
use x509_cert::der::{Decode as _, Encode as _, Reader as _, SliceReader, TagNumber};
use x509_cert::spki::{AlgorithmIdentifierOwned, AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};
use zeroize::Zeroizing;

use crate::asn1;
use crate::pem::{self, PemError};

/// The kinds of key this crate can generate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// ECDSA on NIST P-256 with SHA-256: the default, and what Legrand's CA expects.
    #[default]
    P256,
    /// Ed25519 (RFC 8410).
    Ed25519,
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyType::P256 => "p256",
            KeyType::Ed25519 => "ed25519",
        })
    }
}

impl core::str::FromStr for KeyType {
    type Err = KeyError;

    /// `p256` (also `ec`, `ecdsa`, `p-256`, `prime256v1`, `secp256r1`) or `ed25519`;
    /// `rsa…` is refused with the reason.
    fn from_str(s: &str) -> Result<Self, KeyError> {
        match s.to_ascii_lowercase().as_str() {
            "p256" | "p-256" | "ec" | "ecdsa" | "prime256v1" | "secp256r1" => Ok(KeyType::P256),
            "ed25519" => Ok(KeyType::Ed25519),
            other if other.starts_with("rsa") => {
                Err(KeyError::GenerationUnsupported { algorithm: "RSA" })
            }
            _ => Err(KeyError::Unsupported {
                algorithm: s.to_owned(),
            }),
        }
    }
}

/// A public key algorithm, with its curve or size — for keys held here and for keys found
/// in certificates.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// ECDSA on P-256.
    EcdsaP256,
    /// ECDSA on P-384 (inspection only).
    EcdsaP384,
    /// ECDSA on P-521 (inspection only).
    EcdsaP521,
    /// ECDSA on another named curve (inspection only).
    EcdsaOther {
        /// The curve's object identifier, dotted.
        curve: String,
    },
    /// Ed25519.
    Ed25519,
    /// Ed448 (inspection only).
    Ed448,
    /// RSA (`rsaEncryption`).
    Rsa {
        /// Modulus size in bits.
        bits: u32,
    },
    /// RSA restricted to RSASSA-PSS (inspection only).
    RsaPss {
        /// Modulus size in bits, when it could be read.
        bits: u32,
    },
    /// Anything else.
    Unknown {
        /// The algorithm's object identifier, dotted.
        oid: String,
    },
}

impl KeyAlgorithm {
    /// A short family name: `ECDSA`, `Ed25519`, `Ed448`, `RSA`, `RSA-PSS` or `unknown`.
    #[must_use]
    pub fn family(&self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256
            | KeyAlgorithm::EcdsaP384
            | KeyAlgorithm::EcdsaP521
            | KeyAlgorithm::EcdsaOther { .. } => "ECDSA",
            KeyAlgorithm::Ed25519 => "Ed25519",
            KeyAlgorithm::Ed448 => "Ed448",
            KeyAlgorithm::Rsa { .. } => "RSA",
            KeyAlgorithm::RsaPss { .. } => "RSA-PSS",
            KeyAlgorithm::Unknown { .. } => "unknown",
        }
    }

    /// The curve name (`P-256`, `P-384`, `P-521`, a dotted OID) for ECDSA keys.
    #[must_use]
    pub fn curve(&self) -> Option<&str> {
        match self {
            KeyAlgorithm::EcdsaP256 => Some("P-256"),
            KeyAlgorithm::EcdsaP384 => Some("P-384"),
            KeyAlgorithm::EcdsaP521 => Some("P-521"),
            KeyAlgorithm::EcdsaOther { curve } => Some(curve),
            _ => None,
        }
    }

    /// Key size in bits (the field size for curves), when known.
    #[must_use]
    pub fn bits(&self) -> Option<u32> {
        match self {
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::Ed25519 => Some(256),
            KeyAlgorithm::EcdsaP384 => Some(384),
            KeyAlgorithm::EcdsaP521 => Some(521),
            KeyAlgorithm::Ed448 => Some(448),
            KeyAlgorithm::Rsa { bits } | KeyAlgorithm::RsaPss { bits } => Some(*bits),
            KeyAlgorithm::EcdsaOther { .. } | KeyAlgorithm::Unknown { .. } => None,
        }
    }

    /// The algorithm of a DER `SubjectPublicKeyInfo`.
    pub fn from_spki(spki_der: &[u8]) -> Result<Self, KeyError> {
        let spki = SubjectPublicKeyInfoRef::from_der(spki_der).map_err(malformed)?;
        Ok(Self::of(&spki))
    }

    pub(crate) fn of(spki: &SubjectPublicKeyInfoRef<'_>) -> Self {
        let oid = spki.algorithm.oid;
        let key_bits = spki.subject_public_key.raw_bytes();
        if oid == asn1::EC_PUBLIC_KEY {
            match spki.algorithm.parameters_oid() {
                Ok(c) if c == asn1::SECP256R1 => KeyAlgorithm::EcdsaP256,
                Ok(c) if c == asn1::SECP384R1 => KeyAlgorithm::EcdsaP384,
                Ok(c) if c == asn1::SECP521R1 => KeyAlgorithm::EcdsaP521,
                Ok(c) => KeyAlgorithm::EcdsaOther {
                    curve: c.to_string(),
                },
                Err(_) => KeyAlgorithm::EcdsaOther {
                    curve: "explicit parameters".to_owned(),
                },
            }
        } else if oid == asn1::ED25519 {
            KeyAlgorithm::Ed25519
        } else if oid == asn1::ED448 {
            KeyAlgorithm::Ed448
        } else if oid == asn1::RSA_ENCRYPTION {
            KeyAlgorithm::Rsa {
                bits: asn1::rsa_modulus_bits(key_bits).unwrap_or(0),
            }
        } else if oid == asn1::RSASSA_PSS {
            KeyAlgorithm::RsaPss {
                bits: asn1::rsa_modulus_bits(key_bits).unwrap_or(0),
            }
        } else {
            KeyAlgorithm::Unknown {
                oid: oid.to_string(),
            }
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyAlgorithm::Rsa { bits } | KeyAlgorithm::RsaPss { bits } => {
                write!(f, "{} {bits}", self.family())
            }
            KeyAlgorithm::Unknown { oid } => write!(f, "unknown ({oid})"),
            _ => match self.curve() {
                Some(curve) => write!(f, "{} {curve}", self.family()),
                None => f.write_str(self.family()),
            },
        }
    }
}

/// Serialized as `{"family": "ECDSA", "curve": "P-256", "bits": 256, "name": "ECDSA P-256"}`
/// (`curve`/`bits` null when not applicable).
impl Serialize for KeyAlgorithm {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            family: &'a str,
            curve: Option<&'a str>,
            bits: Option<u32>,
            name: String,
        }
        View {
            family: self.family(),
            curve: self.curve(),
            bits: self.bits(),
            name: self.to_string(),
        }
        .serialize(serializer)
    }
}

/// Whether a private key belongs to a public key. `Unknown` must be treated as a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyMatch {
    /// Same key.
    Match,
    /// Different key (or different algorithm).
    Mismatch,
    /// Could not be decided (unreadable public key, or a form this crate cannot compare,
    /// such as an RSA-PSS public key).
    Unknown,
}

/// What went wrong with a key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// No unencrypted private key block in the PEM input.
    NotFound {
        /// Labels of the blocks that were found instead (e.g. `["CERTIFICATE"]`).
        found: Vec<&'static str>,
    },
    /// The bytes are not a key in any supported encoding.
    Malformed {
        /// What the decoder said.
        reason: String,
    },
    /// A well-formed key of an algorithm this crate does not handle.
    Unsupported {
        /// The algorithm (e.g. `ECDSA P-384`).
        algorithm: String,
    },
    /// The key decoded but the crypto backend refused it (e.g. RSA below 2048 bits,
    /// inconsistent components).
    Rejected {
        /// The backend's reason.
        reason: String,
    },
    /// This crate cannot generate keys of that algorithm (see the module docs).
    GenerationUnsupported {
        /// The algorithm asked for.
        algorithm: &'static str,
    },
    /// This key cannot sign here (RSA; see the module docs).
    CannotSign {
        /// The key's algorithm.
        algorithm: String,
    },
    /// The injected random source produced no usable key material in 64 draws.
    BadRandomSource,
    /// PEM input over the size limit.
    Pem(PemError),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::NotFound { found } if found.is_empty() => f.write_str(
                "no private key found (expected PEM PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)",
            ),
            KeyError::NotFound { found } => write!(
                f,
                "no unencrypted private key found; the input holds: {} \
                 (encrypted keys are not supported)",
                found.join(", ")
            ),
            KeyError::Malformed { reason } => write!(f, "malformed private key: {reason}"),
            KeyError::Unsupported { algorithm } => {
                write!(f, "unsupported key algorithm: {algorithm}")
            }
            KeyError::Rejected { reason } => write!(f, "key rejected: {reason}"),
            KeyError::GenerationUnsupported { algorithm } => write!(
                f,
                "{algorithm} key generation is not available (no advisory-free pure backend); \
                 generate the key with openssl and import it"
            ),
            KeyError::CannotSign { algorithm } => write!(
                f,
                "{algorithm} keys cannot sign here; use a P-256 or Ed25519 key"
            ),
            KeyError::BadRandomSource => {
                f.write_str("the random source produced no valid key in 64 draws")
            }
            KeyError::Pem(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for KeyError {}

/// A private key with its public half.
///
/// Cloning is cheap (the backend key is shared). `Debug` never prints secret material.
#[derive(Clone)]
pub struct PrivateKey {
    inner: Arc<Inner>,
    pkcs8: Arc<Zeroizing<Vec<u8>>>,
    /// The raw `subjectPublicKey` bits (SEC1 point, Ed25519 key, `RSAPublicKey`).
    public_key: Vec<u8>,
    spki: Vec<u8>,
    algorithm: KeyAlgorithm,
}

enum Inner {
    P256(p256::ecdsa::SigningKey),
    Ed25519(Ed25519KeyPair),
    /// Checked by *ring* when read; kept only as public key and PKCS#8.
    Rsa,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// PKCS#8 v1 prefix of a 32-byte Ed25519 seed (RFC 8410 §7).
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// SPKI prefix of a 32-byte Ed25519 public key (RFC 8410 §4).
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

impl PrivateKey {
    /// A new key of `key_type` from `rng` (32 bytes per draw). P-256 draws again when the
    /// bytes are not a valid scalar (probability about 2⁻³²); a source that fails 64 times in
    /// a row is reported as [`KeyError::BadRandomSource`].
    pub fn generate(key_type: KeyType, rng: &mut impl CryptoRng) -> Result<Self, KeyError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        for _ in 0..64 {
            rng.fill_bytes(&mut bytes[..]);
            match key_type {
                KeyType::Ed25519 => return Self::from_ed25519_seed(&bytes),
                KeyType::P256 => {
                    if let Ok(key) = Self::from_p256_scalar(&bytes) {
                        return Ok(key);
                    }
                }
            }
        }
        Err(KeyError::BadRandomSource)
    }

    /// A P-256 key from its 32-byte big-endian secret scalar (must be in `1..n`).
    pub fn from_p256_scalar(scalar: &[u8; 32]) -> Result<Self, KeyError> {
        let secret =
            p256::SecretKey::from_bytes(scalar.into()).map_err(|_| KeyError::Rejected {
                reason: "not a valid P-256 scalar (zero or not below the group order)".to_owned(),
            })?;
        Self::from_p256_secret(&secret)
    }

    /// An Ed25519 key from its 32-byte seed (the RFC 8032 private key). *ring* accepts every
    /// seed; the `Result` only keeps one error path for all constructors.
    pub fn from_ed25519_seed(seed: &[u8; 32]) -> Result<Self, KeyError> {
        let mut pkcs8 = Zeroizing::new(Vec::with_capacity(48));
        pkcs8.extend_from_slice(&ED25519_PKCS8_PREFIX);
        pkcs8.extend_from_slice(seed);
        Self::from_pkcs8(&pkcs8)
    }

    /// The first unencrypted private key in `pem`: `PRIVATE KEY` (PKCS#8), `EC PRIVATE KEY`
    /// (SEC1, as `openssl ecparam -genkey` writes) or `RSA PRIVATE KEY` (PKCS#1).
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        pem::check_len(pem).map_err(KeyError::Pem)?;
        match PrivateKeyDer::from_pem_slice(pem) {
            Ok(PrivateKeyDer::Pkcs8(der)) => Self::from_pkcs8(der.secret_pkcs8_der()),
            Ok(PrivateKeyDer::Sec1(der)) => Self::from_sec1(der.secret_sec1_der()),
            Ok(PrivateKeyDer::Pkcs1(der)) => Self::from_pkcs1(der.secret_pkcs1_der()),
            Ok(_) => Err(KeyError::Unsupported {
                algorithm: "unknown private key encoding".to_owned(),
            }),
            Err(rustls_pki_types::pem::Error::NoItemsFound) => Err(KeyError::NotFound {
                found: pem::block_labels(pem),
            }),
            Err(e) => Err(KeyError::Malformed {
                reason: e.to_string(),
            }),
        }
    }

    /// A key from DER: PKCS#8, SEC1 or PKCS#1, tried in that order.
    pub fn from_der(der: &[u8]) -> Result<Self, KeyError> {
        pem::check_len(der).map_err(KeyError::Pem)?;
        if p256::pkcs8::PrivateKeyInfo::from_der(der).is_ok() {
            return Self::from_pkcs8(der);
        }
        if let Ok(curve) = sec1_curve(der) {
            return match curve {
                Some(c) if c != asn1::SECP256R1 => Err(KeyError::Unsupported {
                    algorithm: curve_name(c),
                }),
                _ => Self::from_sec1(der),
            };
        }
        if RsaKeyPair::from_der(der).is_ok() {
            return Self::from_pkcs1(der);
        }
        Err(KeyError::Malformed {
            reason: "neither PKCS#8, SEC1 nor PKCS#1".to_owned(),
        })
    }

    fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        let info = p256::pkcs8::PrivateKeyInfo::from_der(der).map_err(malformed)?;
        let oid = info.algorithm.oid;
        if oid == asn1::EC_PUBLIC_KEY {
            let curve = info.algorithm.parameters_oid().map_err(malformed)?;
            if curve != asn1::SECP256R1 {
                return Err(KeyError::Unsupported {
                    algorithm: curve_name(curve),
                });
            }
            let secret = p256::SecretKey::from_pkcs8_der(der).map_err(malformed)?;
            Self::from_p256_secret(&secret)
        } else if oid == asn1::ED25519 {
            let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(rejected)?;
            let public_key = pair.public_key().as_ref().to_vec();
            let mut spki = ED25519_SPKI_PREFIX.to_vec();
            spki.extend_from_slice(&public_key);
            Ok(PrivateKey {
                inner: Arc::new(Inner::Ed25519(pair)),
                pkcs8: Arc::new(Zeroizing::new(der.to_vec())),
                public_key,
                spki,
                algorithm: KeyAlgorithm::Ed25519,
            })
        } else if oid == asn1::RSA_ENCRYPTION {
            let pair = RsaKeyPair::from_pkcs8(der).map_err(rejected)?;
            Self::from_rsa(&pair, Zeroizing::new(der.to_vec()))
        } else {
            Err(KeyError::Unsupported {
                algorithm: KeyAlgorithm::Unknown {
                    oid: oid.to_string(),
                }
                .to_string(),
            })
        }
    }

    fn from_sec1(der: &[u8]) -> Result<Self, KeyError> {
        if let Ok(Some(curve)) = sec1_curve(der)
            && curve != asn1::SECP256R1
        {
            return Err(KeyError::Unsupported {
                algorithm: curve_name(curve),
            });
        }
        let secret = p256::SecretKey::from_sec1_der(der).map_err(malformed)?;
        Self::from_p256_secret(&secret)
    }

    fn from_pkcs1(der: &[u8]) -> Result<Self, KeyError> {
        let pair = RsaKeyPair::from_der(der).map_err(rejected)?;
        let info = p256::pkcs8::PrivateKeyInfo::new(
            AlgorithmIdentifierRef {
                oid: asn1::RSA_ENCRYPTION,
                parameters: Some(AnyRef::NULL),
            },
            der,
        );
        let pkcs8 = Zeroizing::new(info.to_der().map_err(malformed)?);
        Self::from_rsa(&pair, pkcs8)
    }

    fn from_rsa(pair: &RsaKeyPair, pkcs8: Zeroizing<Vec<u8>>) -> Result<Self, KeyError> {
        let public_key = pair.public().as_ref().to_vec();
        let bits = asn1::rsa_modulus_bits(&public_key).unwrap_or(0);
        let spki = SubjectPublicKeyInfoRef {
            algorithm: AlgorithmIdentifierRef {
                oid: asn1::RSA_ENCRYPTION,
                parameters: Some(AnyRef::NULL),
            },
            subject_public_key: BitStringRef::from_bytes(&public_key).map_err(malformed)?,
        }
        .to_der()
        .map_err(malformed)?;
        Ok(PrivateKey {
            inner: Arc::new(Inner::Rsa),
            pkcs8: Arc::new(pkcs8),
            public_key,
            spki,
            algorithm: KeyAlgorithm::Rsa { bits },
        })
    }

    fn from_p256_secret(secret: &p256::SecretKey) -> Result<Self, KeyError> {
        let signing = p256::ecdsa::SigningKey::from(secret);
        let verifying = signing.verifying_key();
        let public_key = verifying.to_encoded_point(false).as_bytes().to_vec();
        let spki = p256::PublicKey::from(verifying)
            .to_public_key_der()
            .map_err(|e| KeyError::Malformed {
                reason: e.to_string(),
            })?
            .as_bytes()
            .to_vec();
        let pkcs8 = secret.to_pkcs8_der().map_err(|e| KeyError::Malformed {
            reason: e.to_string(),
        })?;
        Ok(PrivateKey {
            inner: Arc::new(Inner::P256(signing)),
            pkcs8: Arc::new(Zeroizing::new(pkcs8.as_bytes().to_vec())),
            public_key,
            spki,
            algorithm: KeyAlgorithm::EcdsaP256,
        })
    }

    /// The key's algorithm.
    #[must_use]
    pub fn algorithm(&self) -> &KeyAlgorithm {
        &self.algorithm
    }

    /// Whether [`crate::request`] can sign with this key (P-256 and Ed25519).
    #[must_use]
    pub fn can_sign(&self) -> bool {
        !matches!(*self.inner, Inner::Rsa)
    }

    /// The private key as PKCS#8 DER (wiped from memory when dropped).
    #[must_use]
    pub fn to_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.pkcs8.to_vec())
    }

    /// The private key as a PEM `PRIVATE KEY` block (PKCS#8).
    #[must_use]
    pub fn to_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(pem::encode("PRIVATE KEY", &self.pkcs8))
    }

    /// The private key in the form rustls takes (PKCS#8).
    #[must_use]
    pub fn to_private_key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.pkcs8.to_vec()))
    }

    /// The public key as DER `SubjectPublicKeyInfo`.
    #[must_use]
    pub fn public_key_der(&self) -> &[u8] {
        &self.spki
    }

    /// The public key as a PEM `PUBLIC KEY` block.
    #[must_use]
    pub fn public_key_pem(&self) -> String {
        pem::encode("PUBLIC KEY", &self.spki)
    }

    /// Whether this key is the private half of the DER `SubjectPublicKeyInfo` `spki_der`
    /// (e.g. a certificate's). EC points are compared as points, so a compressed encoding
    /// of the same key matches.
    #[must_use]
    pub fn matches_public_key(&self, spki_der: &[u8]) -> KeyMatch {
        let Ok(spki) = SubjectPublicKeyInfoRef::from_der(spki_der) else {
            return KeyMatch::Unknown;
        };
        let theirs = KeyAlgorithm::of(&spki);
        let Some(bits) = spki.subject_public_key.as_bytes() else {
            return KeyMatch::Unknown;
        };
        let same = match (&*self.inner, &theirs) {
            (Inner::P256(signing), KeyAlgorithm::EcdsaP256) => {
                match p256::ecdsa::VerifyingKey::from_sec1_bytes(bits) {
                    Ok(other) => other == *signing.verifying_key(),
                    Err(_) => false,
                }
            }
            (Inner::Ed25519(_), KeyAlgorithm::Ed25519) => bits == self.public_key.as_slice(),
            (Inner::Rsa, KeyAlgorithm::Rsa { .. }) => bits == self.public_key.as_slice(),
            (Inner::Rsa, KeyAlgorithm::RsaPss { .. }) => return KeyMatch::Unknown,
            _ => false,
        };
        if same {
            KeyMatch::Match
        } else {
            KeyMatch::Mismatch
        }
    }

    /// The signature `AlgorithmIdentifier` this key signs with.
    pub(crate) fn signature_algorithm(&self) -> Result<AlgorithmIdentifierOwned, KeyError> {
        match &*self.inner {
            Inner::P256(_) => Ok(algorithm_id(asn1::ECDSA_WITH_SHA256)),
            Inner::Ed25519(_) => Ok(algorithm_id(asn1::ED25519)),
            Inner::Rsa => Err(KeyError::CannotSign {
                algorithm: self.algorithm.to_string(),
            }),
        }
    }

    /// Signs `message`; returns the signature and its `AlgorithmIdentifier`.
    /// ECDSA signatures are RFC 6979 deterministic and DER-encoded.
    pub(crate) fn sign(
        &self,
        message: &[u8],
    ) -> Result<(Vec<u8>, AlgorithmIdentifierOwned), KeyError> {
        match &*self.inner {
            Inner::P256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                Ok((
                    signature.to_der().as_bytes().to_vec(),
                    algorithm_id(asn1::ECDSA_WITH_SHA256),
                ))
            }
            Inner::Ed25519(pair) => Ok((
                pair.sign(message).as_ref().to_vec(),
                algorithm_id(asn1::ED25519),
            )),
            Inner::Rsa => Err(KeyError::CannotSign {
                algorithm: self.algorithm.to_string(),
            }),
        }
    }
}

fn algorithm_id(oid: ObjectIdentifier) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid,
        parameters: None,
    }
}

/// The named curve of a SEC1 `ECPrivateKey` (`Ok(None)` when the parameters are absent).
fn sec1_curve(der: &[u8]) -> Result<Option<ObjectIdentifier>, x509_cert::der::Error> {
    let mut reader = SliceReader::new(der)?;
    let curve = reader.sequence(|r| {
        let version = u8::decode(r)?;
        if version != 1 {
            return Err(x509_cert::der::Tag::Integer.value_error());
        }
        let _secret = OctetStringRef::decode(r)?;
        let params = ContextSpecific::<ObjectIdentifier>::decode_explicit(r, TagNumber::N0)?;
        // Skip the optional public key.
        while !r.is_finished() {
            let _ = r.tlv_bytes()?;
        }
        Ok(params.map(|p| p.value))
    })?;
    reader.finish(curve)
}

fn curve_name(curve: ObjectIdentifier) -> String {
    let alg = if curve == asn1::SECP384R1 {
        KeyAlgorithm::EcdsaP384
    } else if curve == asn1::SECP521R1 {
        KeyAlgorithm::EcdsaP521
    } else {
        KeyAlgorithm::EcdsaOther {
            curve: curve.to_string(),
        }
    };
    alg.to_string()
}

fn malformed(e: impl fmt::Display) -> KeyError {
    KeyError::Malformed {
        reason: e.to_string(),
    }
}

fn rejected(e: ring::error::KeyRejected) -> KeyError {
    KeyError::Rejected {
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests;
