//! Passwords: the door station's rules, and storage as PHC strings.
//!
//! * New hashes are **Argon2id** (RustCrypto `argon2`), by default with OWASP's minimum
//!   m = 19 MiB, t = 2, p = 1, a 16-byte salt from the injected randomness and a 32-byte
//!   output: `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`. Hashing takes tens of
//!   milliseconds and 19 MiB by design; a server runs it off its I/O threads.
//! * **PBKDF2-HMAC-SHA256** hashes are verified for imported accounts, in the PHC form
//!   `$pbkdf2-sha256$i=<iterations>[,l=<length>]$<salt>$<hash>` (standard base64 without
//!   padding, as RustCrypto's `pbkdf2` writes it). The ESP32 door station stores a 48-byte
//!   blob — 16-byte salt then 32-byte PBKDF2-HMAC-SHA256 output, 10,000 iterations —
//!   which [`import_door_station`] turns into that PHC form.
//! * [`PasswordHasher::verify`] answers `needs_rehash` for anything weaker than the
//!   configured Argon2id (every PBKDF2 hash, other Argon2 variants, smaller costs), so the
//!   application re-hashes with [`PasswordHasher::hash`] at the next successful login.
//! * Stored strings are parsed with limits (Argon2 memory, time and lanes; PBKDF2 iterations)
//!   so a planted hash cannot make a login allocate gigabytes or spin for minutes.

use alloc::string::{String, ToString as _};
use alloc::vec::Vec;
use core::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use password_hash::phc::{Ident, PasswordHash};
use rand_core::CryptoRng;
use subtle::ConstantTimeEq as _;

use super::hex::decode_hex;

/// PBKDF2 iterations of the ESP32 door station.
pub const DOOR_STATION_ITERATIONS: u32 = 10_000;
/// Salt bytes of the ESP32 door station.
pub const DOOR_STATION_SALT_LEN: usize = 16;
/// Hash bytes of the ESP32 door station.
pub const DOOR_STATION_HASH_LEN: usize = 32;

/// The door station's password rules, with a length ceiling added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Fewest characters (Unicode scalar values; default 8).
    pub min_chars: usize,
    /// Most bytes (default 1,024; NIST asks to allow at least 64 characters).
    pub max_bytes: usize,
    /// At least one upper-case letter (default on).
    pub require_uppercase: bool,
    /// At least one lower-case letter (default on).
    pub require_lowercase: bool,
    /// At least one digit 0–9 (default on).
    pub require_digit: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_chars: 8,
            max_bytes: 1024,
            require_uppercase: true,
            require_lowercase: true,
            require_digit: true,
        }
    }
}

/// One rule a password broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordRule {
    /// Fewer characters than the minimum.
    TooShort {
        /// The minimum.
        min: usize,
        /// Characters given.
        got: usize,
    },
    /// More bytes than the maximum.
    TooLong {
        /// The maximum.
        max: usize,
    },
    /// No upper-case letter.
    NoUppercase,
    /// No lower-case letter.
    NoLowercase,
    /// No digit.
    NoDigit,
}

impl fmt::Display for PasswordRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordRule::TooShort { min, got } => {
                write!(f, "use at least {min} characters (this one has {got})")
            }
            PasswordRule::TooLong { max } => write!(f, "use at most {max} bytes"),
            PasswordRule::NoUppercase => f.write_str("add an upper-case letter (A-Z)"),
            PasswordRule::NoLowercase => f.write_str("add a lower-case letter (a-z)"),
            PasswordRule::NoDigit => f.write_str("add a digit (0-9)"),
        }
    }
}

/// Every rule a password broke, in the order the policy lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyViolation {
    broken: Vec<PasswordRule>,
}

impl PolicyViolation {
    /// The broken rules.
    #[must_use]
    pub fn rules(&self) -> &[PasswordRule] {
        &self.broken
    }
}

impl fmt::Display for PolicyViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("password does not meet the rules: ")?;
        for (i, r) in self.broken.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl core::error::Error for PolicyViolation {}

impl PasswordPolicy {
    /// Checks `password` against every rule.
    ///
    /// # Errors
    ///
    /// [`PolicyViolation`] listing each rule broken.
    pub fn check(&self, password: &str) -> Result<(), PolicyViolation> {
        let mut broken = Vec::new();
        let chars = password.chars().count();
        if chars < self.min_chars {
            broken.push(PasswordRule::TooShort {
                min: self.min_chars,
                got: chars,
            });
        }
        if password.len() > self.max_bytes {
            broken.push(PasswordRule::TooLong {
                max: self.max_bytes,
            });
        }
        if self.require_uppercase && !password.chars().any(char::is_uppercase) {
            broken.push(PasswordRule::NoUppercase);
        }
        if self.require_lowercase && !password.chars().any(char::is_lowercase) {
            broken.push(PasswordRule::NoLowercase);
        }
        if self.require_digit && !password.bytes().any(|b| b.is_ascii_digit()) {
            broken.push(PasswordRule::NoDigit);
        }
        if broken.is_empty() {
            Ok(())
        } else {
            Err(PolicyViolation { broken })
        }
    }
}

/// Argon2id costs for new hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Argon2Params {
    /// OWASP Password Storage Cheat Sheet minimum: m = 19 MiB, t = 2, p = 1.
    pub const OWASP_MINIMUM: Argon2Params = Argon2Params {
        m_kib: 19 * 1024,
        t: 2,
        p: 1,
    };
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self::OWASP_MINIMUM
    }
}

/// Ceilings on the costs a *stored* hash may ask for when it is verified (a
/// [`PasswordHasher`] raises them to its own costs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyLimits {
    /// Most Argon2 memory in KiB (default 256 MiB).
    pub max_m_kib: u32,
    /// Most Argon2 passes (default 16).
    pub max_t: u32,
    /// Most Argon2 lanes (default 16).
    pub max_p: u32,
    /// Most PBKDF2 iterations (default 10,000,000).
    pub max_pbkdf2_iterations: u32,
}

impl Default for VerifyLimits {
    fn default() -> Self {
        VerifyLimits {
            max_m_kib: 256 * 1024,
            max_t: 16,
            max_p: 16,
            max_pbkdf2_iterations: 10_000_000,
        }
    }
}

impl VerifyLimits {
    /// These ceilings, raised where needed so hashes with `params` pass.
    fn covering(self, params: Argon2Params) -> Self {
        VerifyLimits {
            max_m_kib: self.max_m_kib.max(params.m_kib),
            max_t: self.max_t.max(params.t),
            max_p: self.max_p.max(params.p),
            ..self
        }
    }
}

/// A successful verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Verification {
    /// The stored hash is weaker than the configured Argon2id: store
    /// [`PasswordHasher::hash`] of the same password now.
    pub needs_rehash: bool,
}

/// Hashes and verifies passwords (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PasswordHasher {
    params: Argon2Params,
    limits: VerifyLimits,
}

impl PasswordHasher {
    /// A hasher producing Argon2id with `params`.
    ///
    /// # Errors
    ///
    /// [`PasswordError::ParamsOutOfRange`] when Argon2 cannot use `params` (memory under
    /// 8·p KiB, zero passes or lanes).
    pub fn new(params: Argon2Params) -> Result<Self, PasswordError> {
        Params::new(params.m_kib, params.t, params.p, Some(32))
            .map_err(|_| PasswordError::ParamsOutOfRange { param: "m/t/p" })?;
        Ok(PasswordHasher {
            params,
            limits: VerifyLimits::default().covering(params),
        })
    }

    /// The same hasher with other verification ceilings, raised where needed to the
    /// hasher's own costs (it always verifies the hashes it writes).
    #[must_use]
    pub fn with_limits(mut self, limits: VerifyLimits) -> Self {
        self.limits = limits.covering(self.params);
        self
    }

    /// The costs of new hashes.
    #[must_use]
    pub fn params(&self) -> Argon2Params {
        self.params
    }

    /// The Argon2id PHC string of `password` with a fresh 16-byte salt from `rng`.
    ///
    /// # Errors
    ///
    /// [`PasswordError::Hashing`] if Argon2 refuses (it does not for valid parameters).
    pub fn hash<R: CryptoRng + ?Sized>(
        &self,
        password: &str,
        rng: &mut R,
    ) -> Result<String, PasswordError> {
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        self.hash_with_salt(password, &salt)
    }

    /// [`PasswordHasher::hash`] with a salt drawn beforehand: fresh random bytes from a
    /// cryptographic source, used once (for hashing away from where the randomness is).
    ///
    /// # Errors
    ///
    /// [`PasswordError::Hashing`] if Argon2 refuses (it does not for valid parameters).
    pub fn hash_with_salt(&self, password: &str, salt: &[u8; 16]) -> Result<String, PasswordError> {
        let params = Params::new(self.params.m_kib, self.params.t, self.params.p, Some(32))
            .map_err(|_| PasswordError::ParamsOutOfRange { param: "m/t/p" })?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let hash = password_hash::PasswordHasher::hash_password_with_salt(
            &argon,
            password.as_bytes(),
            salt,
        )
        .map_err(|_| PasswordError::Hashing)?;
        Ok(hash.to_string())
    }

    /// Verifies `password` against the PHC string `stored`.
    ///
    /// # Errors
    ///
    /// [`PasswordError::Mismatch`] for a wrong password; other variants when `stored` cannot
    /// be used (malformed, unsupported algorithm, costs over the limits).
    pub fn verify(&self, stored: &str, password: &str) -> Result<Verification, PasswordError> {
        let parsed = Stored::parse(stored, &self.limits)?;
        let mut out = [0u8; 64];
        let out = &mut out[..parsed.hash.len()];
        match parsed.kind {
            Kind::Argon2 {
                algorithm,
                version,
                m,
                t,
                p,
            } => {
                let params = Params::new(m, t, p, Some(out.len()))
                    .map_err(|_| PasswordError::ParamsOutOfRange { param: "m/t/p" })?;
                Argon2::new(algorithm, version, params)
                    .hash_password_into(password.as_bytes(), &parsed.salt, out)
                    .map_err(|_| PasswordError::Hashing)?;
            }
            Kind::Pbkdf2 { iterations } => {
                pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
                    password.as_bytes(),
                    &parsed.salt,
                    iterations,
                    out,
                );
            }
        }
        if !bool::from(out.ct_eq(&parsed.hash)) {
            return Err(PasswordError::Mismatch);
        }
        Ok(Verification {
            needs_rehash: self.weaker(&parsed),
        })
    }

    /// Whether `stored` should be replaced by a fresh [`hash`](Self::hash) (also `true` when
    /// it cannot be parsed).
    #[must_use]
    pub fn needs_rehash(&self, stored: &str) -> bool {
        Stored::parse(stored, &self.limits).map_or(true, |s| self.weaker(&s))
    }

    fn weaker(&self, s: &Stored) -> bool {
        match s.kind {
            Kind::Pbkdf2 { .. } => true,
            Kind::Argon2 {
                algorithm,
                version,
                m,
                t,
                p,
            } => {
                algorithm != Algorithm::Argon2id
                    || version != Version::V0x13
                    || m < self.params.m_kib
                    || t < self.params.t
                    || p < self.params.p
                    || s.hash.len() < 32
                    || s.salt.len() < 16
            }
        }
    }
}

enum Kind {
    Argon2 {
        algorithm: Algorithm,
        version: Version,
        m: u32,
        t: u32,
        p: u32,
    },
    Pbkdf2 {
        iterations: u32,
    },
}

struct Stored {
    kind: Kind,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl Stored {
    fn parse(s: &str, limits: &VerifyLimits) -> Result<Stored, PasswordError> {
        if s.len() > 512 {
            return Err(PasswordError::Malformed);
        }
        let phc = PasswordHash::new(s).map_err(|_| PasswordError::Malformed)?;
        let salt = phc
            .salt
            .as_ref()
            .ok_or(PasswordError::Malformed)?
            .as_ref()
            .to_vec();
        let hash = phc
            .hash
            .as_ref()
            .ok_or(PasswordError::Malformed)?
            .as_bytes()
            .to_vec();
        let decimal = |name: &'static str| -> Result<Option<u32>, PasswordError> {
            match phc.params.get(name) {
                None => Ok(None),
                Some(v) => v.decimal().map(Some).map_err(|_| PasswordError::Malformed),
            }
        };
        let alg = phc.algorithm.as_str();
        let kind = if alg == "pbkdf2-sha256" {
            for (name, _) in phc.params.iter() {
                if name.as_str() != "i" && name.as_str() != "l" {
                    return Err(PasswordError::Malformed);
                }
            }
            let iterations = decimal("i")?.ok_or(PasswordError::Malformed)?;
            if iterations == 0 || iterations > limits.max_pbkdf2_iterations {
                return Err(PasswordError::ParamsOutOfRange { param: "i" });
            }
            if let Some(l) = decimal("l")?
                && l as usize != hash.len()
            {
                return Err(PasswordError::Malformed);
            }
            Kind::Pbkdf2 { iterations }
        } else if let Ok(algorithm) = Algorithm::new(alg) {
            for (name, _) in phc.params.iter() {
                if !matches!(name.as_str(), "m" | "t" | "p") {
                    return Err(PasswordError::Unsupported);
                }
            }
            let version = Version::try_from(phc.version.unwrap_or(0x10))
                .map_err(|_| PasswordError::Unsupported)?;
            let m = decimal("m")?.ok_or(PasswordError::Malformed)?;
            let t = decimal("t")?.ok_or(PasswordError::Malformed)?;
            let p = decimal("p")?.ok_or(PasswordError::Malformed)?;
            if m > limits.max_m_kib {
                return Err(PasswordError::ParamsOutOfRange { param: "m" });
            }
            if t == 0 || t > limits.max_t {
                return Err(PasswordError::ParamsOutOfRange { param: "t" });
            }
            if p == 0 || p > limits.max_p {
                return Err(PasswordError::ParamsOutOfRange { param: "p" });
            }
            Kind::Argon2 {
                algorithm,
                version,
                m,
                t,
                p,
            }
        } else {
            return Err(PasswordError::Unsupported);
        };
        if hash.len() < 16 {
            return Err(PasswordError::Malformed);
        }
        Ok(Stored { kind, salt, hash })
    }
}

/// The PHC string of a door-station password blob: 16-byte salt followed by the 32-byte
/// PBKDF2-HMAC-SHA256 output at 10,000 iterations (`password_hash_t` in its NVS).
///
/// # Errors
///
/// [`PasswordError::BadImport`] unless `blob` is exactly 48 bytes.
pub fn import_door_station(blob: &[u8]) -> Result<String, PasswordError> {
    if blob.len() != DOOR_STATION_SALT_LEN + DOOR_STATION_HASH_LEN {
        return Err(PasswordError::BadImport { len: blob.len() });
    }
    let (salt, hash) = blob.split_at(DOOR_STATION_SALT_LEN);
    let salt = password_hash::phc::Salt::new(salt).map_err(|_| PasswordError::Hashing)?;
    let hash = password_hash::phc::Output::new(hash).map_err(|_| PasswordError::Hashing)?;
    let mut params = password_hash::phc::ParamsString::new();
    params
        .add_decimal("i", DOOR_STATION_ITERATIONS)
        .and_then(|()| params.add_decimal("l", DOOR_STATION_HASH_LEN as u32))
        .map_err(|_| PasswordError::Hashing)?;
    let phc = PasswordHash {
        algorithm: Ident::new("pbkdf2-sha256").map_err(|_| PasswordError::Hashing)?,
        version: None,
        params,
        salt: Some(salt),
        hash: Some(hash),
    };
    Ok(phc.to_string())
}

/// [`import_door_station`] from the blob as 96 hex digits.
///
/// # Errors
///
/// [`PasswordError::BadImport`] unless `hex` is 96 hex digits.
pub fn import_door_station_hex(hex: &str) -> Result<String, PasswordError> {
    let mut blob = [0u8; 48];
    match decode_hex(hex.trim(), &mut blob) {
        Some(48) => import_door_station(&blob),
        _ => Err(PasswordError::BadImport { len: hex.len() / 2 }),
    }
}

/// Why a password could not be hashed or verified.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordError {
    /// The password is wrong.
    Mismatch,
    /// The stored hash is not a complete PHC string of a supported shape.
    Malformed,
    /// The stored hash uses an algorithm or parameter this build does not verify
    /// (supported: `argon2id`, `argon2i`, `argon2d`, `pbkdf2-sha256`).
    Unsupported,
    /// A cost parameter is outside the accepted range.
    ParamsOutOfRange {
        /// Which one (`m`, `t`, `p`, `i`).
        param: &'static str,
    },
    /// The hashing primitive failed.
    Hashing,
    /// A door-station blob that is not 48 bytes.
    BadImport {
        /// Its length in bytes.
        len: usize,
    },
    /// The new password breaks the rules.
    Policy(PolicyViolation),
}

impl fmt::Display for PasswordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordError::Mismatch => f.write_str("password does not match"),
            PasswordError::Malformed => {
                f.write_str("stored password hash is not a valid PHC string")
            }
            PasswordError::Unsupported => f.write_str(
                "stored password hash uses an unsupported algorithm (argon2id, argon2i, argon2d \
                 and pbkdf2-sha256 are supported)",
            ),
            PasswordError::ParamsOutOfRange { param } => {
                write!(
                    f,
                    "stored password hash parameter `{param}` is out of the accepted range"
                )
            }
            PasswordError::Hashing => f.write_str("password hashing failed"),
            PasswordError::BadImport { len } => write!(
                f,
                "door-station password blob must be 48 bytes (16-byte salt, 32-byte hash); got {len}"
            ),
            PasswordError::Policy(v) => fmt::Display::fmt(v, f),
        }
    }
}

impl core::error::Error for PasswordError {}

impl From<PolicyViolation> for PasswordError {
    fn from(v: PolicyViolation) -> Self {
        PasswordError::Policy(v)
    }
}
