//! The panel side of RemoteUI authentication: [`Signer`] produces the four headers a
//! device sends, allocation-free per request, so it fits a wall panel's firmware.

use alloc::string::String;
use core::fmt;

use hmac::Mac as _;
use rand_core::CryptoRng;

use super::auth::{
    AUTHORIZATION, AuthHeaders, CredentialError, SigningPrefix, SigningVariant, X_AUTH_HMAC,
    X_AUTH_NONCE, X_AUTH_TIMESTAMP, check_token,
};
use super::hex::encode_hex;

/// The panel side: signs requests with the device's token and secret. Allocation-free per
/// request, so it fits a wall panel's firmware.
#[derive(Clone)]
pub struct Signer {
    authorization: String,
    prefix: SigningPrefix,
    variant: SigningVariant,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("variant", &self.variant)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer for `token` and `secret` (as received at provisioning) under `variant`.
    ///
    /// # Errors
    ///
    /// [`CredentialError`] as for [`DeviceCredentials::new`](super::DeviceCredentials::new).
    pub fn new(
        token: &str,
        secret: &[u8],
        variant: SigningVariant,
    ) -> Result<Self, CredentialError> {
        check_token(token)?;
        let mut authorization = String::with_capacity(7 + token.len());
        authorization.push_str("Bearer ");
        authorization.push_str(token);
        Ok(Signer {
            authorization,
            prefix: SigningPrefix::new(secret, token, variant)?,
            variant,
        })
    }

    /// The `Authorization` value, `Bearer <token>`.
    #[must_use]
    pub fn authorization(&self) -> &str {
        &self.authorization
    }

    /// Headers for a request at wall time `unix_now` with a fresh 32-byte nonce from `rng`.
    #[must_use]
    pub fn sign<R: CryptoRng + ?Sized>(&self, unix_now: u64, rng: &mut R) -> SignedHeaders {
        let mut nonce = [0u8; 32];
        rng.fill_bytes(&mut nonce);
        self.sign_with_nonce(unix_now, &nonce)
    }

    /// Headers for a request at `unix_now` with the given nonce bytes (sent as 64 lower-case
    /// hex digits, which both variants accept).
    #[must_use]
    pub fn sign_with_nonce(&self, unix_now: u64, nonce: &[u8; 32]) -> SignedHeaders {
        let mut out = SignedHeaders {
            timestamp: [0; 20],
            timestamp_len: 0,
            nonce: [0; 64],
            hmac: [0; 64],
        };
        let mut digits = [0u8; 20];
        let mut n = unix_now;
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let len = digits.len() - i;
        out.timestamp[..len].copy_from_slice(&digits[i..]);
        out.timestamp_len = len as u8;
        encode_hex(nonce, &mut out.nonce);

        let mac = self.prefix.mac(&out.timestamp[..len], &out.nonce);
        let tag = mac.finalize().into_bytes();
        encode_hex(&tag, &mut out.hmac);
        out
    }
}

/// The `X-Auth-*` values [`Signer`] produced for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedHeaders {
    timestamp: [u8; 20],
    timestamp_len: u8,
    nonce: [u8; 64],
    hmac: [u8; 64],
}

impl SignedHeaders {
    /// `X-Auth-Timestamp`.
    #[must_use]
    pub fn timestamp(&self) -> &str {
        ascii(&self.timestamp[..usize::from(self.timestamp_len)])
    }

    /// `X-Auth-Nonce`.
    #[must_use]
    pub fn nonce(&self) -> &str {
        ascii(&self.nonce)
    }

    /// `X-Auth-HMAC`.
    #[must_use]
    pub fn hmac(&self) -> &str {
        ascii(&self.hmac)
    }

    /// All four headers as `(name, value)` pairs, `Authorization` from `signer`.
    #[must_use]
    pub fn pairs<'a>(&'a self, signer: &'a Signer) -> [(&'static str, &'a str); 4] {
        [
            (AUTHORIZATION, signer.authorization()),
            (X_AUTH_TIMESTAMP, self.timestamp()),
            (X_AUTH_NONCE, self.nonce()),
            (X_AUTH_HMAC, self.hmac()),
        ]
    }

    /// The headers as [`AuthHeaders`] (what the server would parse).
    #[must_use]
    pub fn as_auth_headers<'a>(&'a self, signer: &'a Signer) -> AuthHeaders<'a> {
        AuthHeaders::new(
            Some(signer.authorization()),
            Some(self.timestamp()),
            Some(self.nonce()),
            Some(self.hmac()),
        )
    }
}

/// The bytes written by this module are ASCII digits and hex; anything else reads as empty.
fn ascii(b: &[u8]) -> &str {
    core::str::from_utf8(b).unwrap_or("")
}
