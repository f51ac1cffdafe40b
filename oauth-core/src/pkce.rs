//! PKCE (RFC 7636): a code verifier from injected randomness and its S256 challenge.

use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};

use crate::secret::Secret;

/// Shortest verifier RFC 7636 §4.1 allows.
pub const MIN_VERIFIER_LEN: usize = 43;
/// Longest verifier RFC 7636 §4.1 allows.
pub const MAX_VERIFIER_LEN: usize = 128;

/// The 66 "unreserved" characters of RFC 3986 §2.3 a verifier is made of.
const UNRESERVED: &[u8; 66] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";

/// A PKCE code verifier: 43–128 unreserved characters (RFC 7636 §4.1). A secret until the
/// code exchange, so it is kept in a [`Secret`].
#[derive(Clone, PartialEq, Eq)]
pub struct PkceVerifier(Secret);

/// Why a string is not a valid code verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PkceError {
    /// Fewer than 43 or more than 128 characters.
    Length {
        /// The length found.
        len: usize,
    },
    /// A character outside `A-Z a-z 0-9 - . _ ~`.
    Character {
        /// Byte offset of the first bad character.
        offset: usize,
    },
}

impl fmt::Display for PkceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PkceError::Length { len } => write!(
                f,
                "PKCE code verifier is {len} characters long; RFC 7636 requires 43 to 128"
            ),
            PkceError::Character { offset } => write!(
                f,
                "PKCE code verifier has a character outside A-Z a-z 0-9 - . _ ~ at offset {offset}"
            ),
        }
    }
}

impl std::error::Error for PkceError {}

impl PkceVerifier {
    /// A verifier of 43 characters: 32 random bytes, base64url without padding, as RFC 7636
    /// §4.1 recommends (256 bits of entropy).
    #[must_use]
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        PkceVerifier(Secret::new(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// A verifier of exactly `len` characters drawn uniformly from the 66 unreserved
    /// characters (rejection sampling, no modulo bias).
    ///
    /// # Errors
    /// [`PkceError::Length`] when `len` is outside 43–128.
    pub fn generate_with_len(rng: &mut impl CryptoRng, len: usize) -> Result<Self, PkceError> {
        if !(MIN_VERIFIER_LEN..=MAX_VERIFIER_LEN).contains(&len) {
            return Err(PkceError::Length { len });
        }
        let mut out = String::with_capacity(len);
        let mut pool = [0u8; 64];
        while out.len() < len {
            rng.fill_bytes(&mut pool);
            for &b in &pool {
                // 66 * 3 = 198: accept 0..198 and reduce modulo 66 without bias.
                if b < 198 && out.len() < len {
                    out.push(char::from(UNRESERVED[usize::from(b % 66)]));
                }
            }
        }
        Ok(PkceVerifier(Secret::new(out)))
    }

    /// Checks a verifier that came from elsewhere (a saved login in progress, a test vector).
    ///
    /// # Errors
    /// [`PkceError`] naming the length or the first bad character.
    pub fn from_string(value: impl Into<String>) -> Result<Self, PkceError> {
        let value = value.into();
        if let Some(offset) = value.bytes().position(|b| !UNRESERVED.contains(&b)) {
            return Err(PkceError::Character { offset });
        }
        if !(MIN_VERIFIER_LEN..=MAX_VERIFIER_LEN).contains(&value.len()) {
            return Err(PkceError::Length { len: value.len() });
        }
        Ok(PkceVerifier(Secret::new(value)))
    }

    /// The verifier, for the token request.
    #[must_use]
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The S256 challenge: base64url(SHA-256(verifier)) without padding (RFC 7636 §4.2).
    #[must_use]
    pub fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.0.expose().as_bytes()))
    }
}

impl fmt::Debug for PkceVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PkceVerifier(<redacted>)")
    }
}

/// The only challenge method latchkey sends (`plain` gives no protection).
pub const CHALLENGE_METHOD: &str = "S256";

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// RFC 7636 Appendix B: the example verifier and its S256 challenge.
    #[test]
    fn rfc7636_appendix_b_vector() {
        let v = PkceVerifier::from_string("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        assert_eq!(v.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    /// RFC 7636 Appendix B starts from these 32 octets; base64url of them is the verifier.
    #[test]
    fn rfc7636_appendix_b_octets_encode_to_the_verifier() {
        let octets: [u8; 32] = [
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212,
            37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
        ];
        assert_eq!(
            URL_SAFE_NO_PAD.encode(octets),
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        );
    }

    #[test]
    fn verifier_outside_the_rfc_length_or_alphabet_is_refused() {
        assert_eq!(
            PkceVerifier::from_string("short").unwrap_err(),
            PkceError::Length { len: 5 }
        );
        let bad = format!("{}+", "a".repeat(50));
        assert_eq!(
            PkceVerifier::from_string(bad).unwrap_err(),
            PkceError::Character { offset: 50 }
        );
        assert!(PkceVerifier::from_string("a".repeat(129)).is_err());
        assert!(PkceVerifier::from_string("a".repeat(128)).is_ok());
    }

    #[test]
    fn debug_hides_the_verifier() {
        let v = PkceVerifier::from_string("a".repeat(43)).unwrap();
        assert_eq!(format!("{v:?}"), "PkceVerifier(<redacted>)");
    }

    proptest! {
        #[test]
        fn generated_verifiers_are_valid_for_every_length(seed: u64, len in 43usize..=128) {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let v = PkceVerifier::generate_with_len(&mut rng, len).unwrap();
            prop_assert_eq!(v.expose().len(), len);
            prop_assert!(PkceVerifier::from_string(v.expose()).is_ok());
            prop_assert_eq!(v.challenge().len(), 43);
        }

        #[test]
        fn default_verifier_is_43_valid_characters(seed: u64) {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let v = PkceVerifier::generate(&mut rng);
            prop_assert_eq!(v.expose().len(), 43);
            prop_assert!(PkceVerifier::from_string(v.expose()).is_ok());
        }
    }
}
