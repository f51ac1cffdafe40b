//! HMAC request authentication of RemoteUI panels (Calaos), server and client side.
//!
//! A panel sends four headers: `Authorization: Bearer <token>`, `X-Auth-Timestamp: <unix
//! seconds>`, `X-Auth-Nonce: <hex>` and `X-Auth-HMAC: <lower-case hex of
//! HMAC-SHA256(device_secret, signing string)>`. The key is the device secret *as text*
//! (calaos_base uses the 64-hex-character secret's ASCII bytes, not the decoded bytes).
//! Two signing strings exist ([`SigningVariant`]) and the one a device uses is recorded when
//! it is provisioned.
//!
//! [`verify_request`] checks, in this order (the first failure is the answer):
//!
//! 1. all four headers present, non-empty and not repeated → else 400 `missing_headers`;
//! 2. `Authorization` is `Bearer` + one space + a token of visible ASCII → else 400;
//! 3. `X-Auth-Timestamp` is 1–19 decimal digits without a leading zero → else 401
//!    `invalid_timestamp`;
//! 4. the token names a device (`lookup`), compared again in constant time → else 401
//!    `invalid_token`;
//! 5. `|timestamp − now| ≤ tolerance` — **both bounds inclusive**: with tolerance 30 and
//!    `now = 1000`, timestamps 970 and 1030 pass, 969 and 1031 fail → else 401;
//! 6. the nonce follows the device's variant rule ([`NonceRule`]) → else 401 `invalid_nonce`;
//! 7. `X-Auth-HMAC` is exactly 64 lower-case hex digits and equals the MAC, compared in
//!    constant time on the 32 raw bytes → else 403 `invalid_hmac`.
//!
//! The replay check (401 `invalid_nonce`) and the per-address attempt limit (429
//! `rate_limited`, applied *before* step 1) live in [`Guard`](super::Guard), which owns the
//! tables. [`Signer`](super::Signer) is the panel side: it produces the four headers.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;
use core::time::Duration;

use hmac::{Hmac, KeyInit as _, Mac as _};
use rand_core::CryptoRng;
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

use super::hash::{Seed, fingerprint64, word};
use super::hex::{encode_hex, is_hex};
use crate::sip::header::{Key, fold_key};

/// The `Authorization` header.
pub const AUTHORIZATION: &str = "Authorization";
/// The timestamp header (Unix seconds).
pub const X_AUTH_TIMESTAMP: &str = "X-Auth-Timestamp";
/// The nonce header.
pub const X_AUTH_NONCE: &str = "X-Auth-Nonce";
/// The MAC header.
pub const X_AUTH_HMAC: &str = "X-Auth-HMAC";

/// Longest token accepted (bytes).
pub const MAX_TOKEN_LEN: usize = 512;
/// Longest device secret accepted (bytes).
pub const MAX_SECRET_LEN: usize = 1024;

/// Which signing string, nonce rule and default timestamp tolerance a device uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SigningVariant {
    /// The RemoteUI design document: `token + timestamp + nonce` (no separators), ±60 s,
    /// nonce of 32–128 hex digits (its example is 32).
    RemoteUiDesign,
    /// calaos_base as shipped: `token + ":" + timestamp + ":" + nonce`, ±30 s, nonce of
    /// exactly 64 hex digits.
    CalaosBase,
}

impl SigningVariant {
    /// The variant a provisioning request implies by the name of its code field: the
    /// design's `provisioning_code` or calaos_base's `code`.
    #[must_use]
    pub fn from_provisioning_field(field: &str) -> Option<Self> {
        match field {
            "provisioning_code" => Some(SigningVariant::RemoteUiDesign),
            "code" => Some(SigningVariant::CalaosBase),
            _ => None,
        }
    }

    /// The stable name used in configuration and snapshots.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            SigningVariant::RemoteUiDesign => "remote-ui-design",
            SigningVariant::CalaosBase => "calaos-base",
        }
    }

    /// The separator between token, timestamp and nonce in the signing string.
    #[must_use]
    pub const fn separator(self) -> &'static str {
        match self {
            SigningVariant::RemoteUiDesign => "",
            SigningVariant::CalaosBase => ":",
        }
    }

    /// The default timestamp tolerance in seconds (inclusive, both directions).
    #[must_use]
    pub const fn default_tolerance_secs(self) -> u32 {
        match self {
            SigningVariant::RemoteUiDesign => 60,
            SigningVariant::CalaosBase => 30,
        }
    }

    /// The nonce format this variant requires.
    #[must_use]
    pub const fn nonce_rule(self) -> NonceRule {
        match self {
            SigningVariant::RemoteUiDesign => NonceRule {
                min_len: 32,
                max_len: 128,
            },
            SigningVariant::CalaosBase => NonceRule {
                min_len: 64,
                max_len: 64,
            },
        }
    }
}

impl fmt::Display for SigningVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SigningVariant {
    type Err = CredentialError;
    fn from_str(s: &str) -> Result<Self, CredentialError> {
        match s {
            "remote-ui-design" => Ok(SigningVariant::RemoteUiDesign),
            "calaos-base" => Ok(SigningVariant::CalaosBase),
            _ => Err(CredentialError::UnknownVariant),
        }
    }
}

/// A nonce format: an even number of hex digits (either case) between `min_len` and
/// `max_len` characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonceRule {
    /// Fewest characters.
    pub min_len: usize,
    /// Most characters.
    pub max_len: usize,
}

impl NonceRule {
    /// Whether `nonce` follows the rule.
    #[must_use]
    pub fn accepts(&self, nonce: &str) -> bool {
        self.accepts_len(nonce.len()) && is_hex(nonce)
    }

    /// Whether a nonce of `n` hex digits follows the rule.
    fn accepts_len(&self, n: usize) -> bool {
        n >= self.min_len && n <= self.max_len && n.is_multiple_of(2)
    }
}

/// The application's identifier of a provisioned device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId(pub u32);

impl DeviceId {
    /// A stable id for the device holding `token`: 32 bits of its SHA-256 (seed-independent),
    /// never 0. The same credentials get the same id in every process and after every
    /// restart or re-registration, so what the guard keeps per device — the replay cache,
    /// carried over in its snapshot — stays with the credentials whatever order devices are
    /// registered in. (Ids handed out by a counter in registration order let a nonce
    /// recorded before a restart sit under another device's id after it, and a captured
    /// request be replayed.) Two tokens share an id with probability 2^-32: a registry
    /// then gives the second one [`DeviceId::next`].
    #[must_use]
    pub fn from_token(token: &str) -> DeviceId {
        let id = fingerprint64(b"latchkey device id", token.as_bytes()) as u32;
        DeviceId(id.max(1))
    }

    /// The id after this one, skipping 0 (for a registry resolving a collision of
    /// [`DeviceId::from_token`]).
    #[must_use]
    pub fn next(self) -> DeviceId {
        DeviceId(self.0.wrapping_add(1).max(1))
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "device {}", self.0)
    }
}

/// What the server knows about one provisioned device: its token, its secret (kept only as
/// an HMAC state that has already absorbed the token and separator every signing string
/// starts with), its signing variant and its timestamp tolerance.
#[derive(Clone)]
pub struct DeviceCredentials {
    id: DeviceId,
    token: String,
    prefix: SigningPrefix,
    variant: SigningVariant,
    tolerance_secs: u32,
}

impl fmt::Debug for DeviceCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCredentials")
            .field("id", &self.id)
            .field("variant", &self.variant)
            .field("tolerance_secs", &self.tolerance_secs)
            .finish_non_exhaustive()
    }
}

impl DeviceCredentials {
    /// Credentials for device `id` with `token` and `secret` (the secret's bytes as stored —
    /// for calaos_base the hex text itself), using `variant`'s default tolerance.
    ///
    /// # Errors
    ///
    /// [`CredentialError`] for an empty or oversized token or secret, or a token with bytes
    /// outside visible ASCII.
    pub fn new(
        id: DeviceId,
        token: &str,
        secret: &[u8],
        variant: SigningVariant,
    ) -> Result<Self, CredentialError> {
        check_token(token)?;
        Ok(DeviceCredentials {
            id,
            token: String::from(token),
            prefix: SigningPrefix::new(secret, token, variant)?,
            variant,
            tolerance_secs: variant.default_tolerance_secs(),
        })
    }

    /// The same credentials with a timestamp tolerance of `secs` (inclusive, both ways).
    #[must_use]
    pub fn with_tolerance_secs(mut self, secs: u32) -> Self {
        self.tolerance_secs = secs;
        self
    }

    /// The device.
    #[must_use]
    pub fn id(&self) -> DeviceId {
        self.id
    }

    /// The bearer token.
    #[must_use]
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The signing variant.
    #[must_use]
    pub fn variant(&self) -> SigningVariant {
        self.variant
    }

    /// The timestamp tolerance in seconds.
    #[must_use]
    pub fn tolerance_secs(&self) -> u32 {
        self.tolerance_secs
    }

    /// The MAC of the signing string `token sep timestamp sep nonce`, `token` being this
    /// device's own (the caller has matched the presented token against it).
    fn mac(&self, timestamp: &str, nonce: &str) -> Hmac<Sha256> {
        self.prefix.mac(timestamp.as_bytes(), nonce.as_bytes())
    }
}

/// The HMAC state of one device's signing strings, continued past their constant start.
///
/// Every signing string of a device begins with its token and the variant's separator, so
/// the state keyed with the secret is carried on over those bytes once, at provisioning,
/// and each request continues from a copy. Besides the two blocks every pre-keyed HMAC
/// saves (the padded key's inner and outer blocks), this saves every whole 64-byte block of
/// the token: calaos_base issues 64-hex-digit tokens, so its signing strings
/// (`token:timestamp:nonce`, 140 bytes with a 64-digit nonce) take two compressions of the
/// inner hash per request instead of three.
#[derive(Clone)]
pub(crate) struct SigningPrefix {
    state: Hmac<Sha256>,
    variant: SigningVariant,
}

impl SigningPrefix {
    /// The state keyed with `secret` that has absorbed `token` and `variant`'s separator.
    pub(crate) fn new(
        secret: &[u8],
        token: &str,
        variant: SigningVariant,
    ) -> Result<Self, CredentialError> {
        let mut state = keyed_mac(secret)?;
        state.update(token.as_bytes());
        state.update(variant.separator().as_bytes());
        Ok(SigningPrefix { state, variant })
    }

    /// The state continued with `timestamp sep nonce` (one update from a stack buffer when
    /// they fit).
    pub(crate) fn mac(&self, timestamp: &[u8], nonce: &[u8]) -> Hmac<Sha256> {
        let sep = self.variant.separator().as_bytes();
        let mut mac = self.state.clone();
        let mut buf = [0u8; 256];
        let parts = [timestamp, sep, nonce];
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total <= buf.len() {
            let mut at = 0;
            for p in parts {
                buf[at..at + p.len()].copy_from_slice(p);
                at += p.len();
            }
            mac.update(&buf[..total]);
        } else {
            for p in parts {
                mac.update(p);
            }
        }
        mac
    }
}

pub(crate) fn check_token(token: &str) -> Result<(), CredentialError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(CredentialError::TokenLength { len: token.len() });
    }
    if !is_visible_ascii(token.as_bytes()) {
        return Err(CredentialError::TokenCharacters);
    }
    Ok(())
}

pub(crate) fn keyed_mac(secret: &[u8]) -> Result<Hmac<Sha256>, CredentialError> {
    if secret.is_empty() || secret.len() > MAX_SECRET_LEN {
        return Err(CredentialError::SecretLength { len: secret.len() });
    }
    Hmac::<Sha256>::new_from_slice(secret)
        .map_err(|_| CredentialError::SecretLength { len: secret.len() })
}

/// Invalid device credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialError {
    /// A token that is empty or longer than [`MAX_TOKEN_LEN`].
    TokenLength {
        /// Its length in bytes.
        len: usize,
    },
    /// A token with a byte outside visible ASCII (`!`..=`~`).
    TokenCharacters,
    /// A secret that is empty or longer than [`MAX_SECRET_LEN`].
    SecretLength {
        /// Its length in bytes.
        len: usize,
    },
    /// A signing-variant name other than `remote-ui-design` or `calaos-base`.
    UnknownVariant,
    /// Another device already has this token.
    DuplicateToken,
}

impl fmt::Display for CredentialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialError::TokenLength { len } => {
                write!(
                    f,
                    "device token must be 1 to {MAX_TOKEN_LEN} bytes (got {len})"
                )
            }
            CredentialError::TokenCharacters => {
                f.write_str("device token may only hold visible ASCII characters")
            }
            CredentialError::SecretLength { len } => {
                write!(
                    f,
                    "device secret must be 1 to {MAX_SECRET_LEN} bytes (got {len})"
                )
            }
            CredentialError::UnknownVariant => {
                f.write_str("signing variant must be `remote-ui-design` or `calaos-base`")
            }
            CredentialError::DuplicateToken => {
                f.write_str("another device already uses this token")
            }
        }
    }
}

impl core::error::Error for CredentialError {}

/// The provisioned devices, found by token without leaking the token through timing: the
/// index is a keyed hash of the token (seeded from injected randomness) and candidates are
/// compared in constant time.
///
/// The devices are kept in one vector sorted by (token hash, id), found by binary search:
/// finding one on every authenticated request is the hot operation (a `BTreeMap` range
/// walk cost more than the rest of the lookup together), while devices are added and
/// removed only when panels are provisioned or an io.xml is imported.
#[derive(Debug)]
pub struct DeviceDirectory {
    seed: Seed,
    by_token: Vec<(u64, DeviceCredentials)>,
    by_id: BTreeMap<u32, u64>,
}

impl DeviceDirectory {
    /// An empty directory, its index keyed from `rng`.
    pub fn new<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        DeviceDirectory {
            seed: Seed::from_rng(rng),
            by_token: Vec::new(),
            by_id: BTreeMap::new(),
        }
    }

    /// Adds `creds`, replacing the device with the same id (returned).
    ///
    /// # Errors
    ///
    /// [`CredentialError::DuplicateToken`] when another device has the same token.
    pub fn insert(
        &mut self,
        creds: DeviceCredentials,
    ) -> Result<Option<DeviceCredentials>, CredentialError> {
        if let Some(other) = self.find_by_token(&creds.token)
            && other.id != creds.id
        {
            return Err(CredentialError::DuplicateToken);
        }
        let old = self.remove(creds.id);
        let h = self.seed.hash_bytes(creds.token.as_bytes());
        self.by_id.insert(creds.id.0, h);
        let at = self.position(h, creds.id).unwrap_or_else(|at| at);
        self.by_token.insert(at, (h, creds));
        Ok(old)
    }

    /// Where (hash `h`, `id`) is in `by_token` (`Err`: where it would go).
    fn position(&self, h: u64, id: DeviceId) -> Result<usize, usize> {
        self.by_token
            .binary_search_by(|(eh, c)| (*eh, c.id.0).cmp(&(h, id.0)))
    }

    /// Removes device `id`.
    pub fn remove(&mut self, id: DeviceId) -> Option<DeviceCredentials> {
        let h = self.by_id.remove(&id.0)?;
        let at = self.position(h, id).ok()?;
        Some(self.by_token.remove(at).1)
    }

    /// Device `id`.
    #[must_use]
    pub fn get(&self, id: DeviceId) -> Option<&DeviceCredentials> {
        let h = self.by_id.get(&id.0)?;
        let at = self.position(*h, id).ok()?;
        self.by_token.get(at).map(|(_, c)| c)
    }

    /// The device whose token is `token` (constant-time comparison of the candidates).
    #[must_use]
    pub fn find_by_token(&self, token: &str) -> Option<&DeviceCredentials> {
        let h = self.seed.hash_bytes(token.as_bytes());
        let first = self.by_token.partition_point(|(eh, _)| *eh < h);
        let mut found = None;
        for (_, c) in self
            .by_token
            .get(first..)
            .unwrap_or_default()
            .iter()
            .take_while(|(eh, _)| *eh == h)
        {
            if tokens_equal(c.token.as_bytes(), token.as_bytes()) {
                found = Some(c);
            }
        }
        found
    }

    /// Number of devices.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there are no devices.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Every device.
    pub fn iter(&self) -> impl Iterator<Item = &DeviceCredentials> {
        self.by_token.iter().map(|(_, c)| c)
    }
}

/// The four authentication header values of one request, borrowed from it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthHeaders<'a> {
    /// `Authorization`.
    pub authorization: Option<&'a str>,
    /// `X-Auth-Timestamp`.
    pub timestamp: Option<&'a str>,
    /// `X-Auth-Nonce`.
    pub nonce: Option<&'a str>,
    /// `X-Auth-HMAC`.
    pub hmac: Option<&'a str>,
    duplicate: Option<&'static str>,
}

impl<'a> AuthHeaders<'a> {
    /// The four values as given (surrounding spaces and tabs are trimmed).
    #[must_use]
    pub fn new(
        authorization: Option<&'a str>,
        timestamp: Option<&'a str>,
        nonce: Option<&'a str>,
        hmac: Option<&'a str>,
    ) -> Self {
        AuthHeaders {
            authorization: authorization.map(trim_ows),
            timestamp: timestamp.map(trim_ows),
            nonce: nonce.map(trim_ows),
            hmac: hmac.map(trim_ows),
            duplicate: None,
        }
    }

    /// Picks the four headers out of a request's `(name, value)` pairs; names match
    /// case-insensitively, other headers are ignored, and a repeated one is remembered as an
    /// error (400) rather than letting either copy win.
    #[must_use]
    pub fn from_pairs<I>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut h = AuthHeaders::default();
        for (name, value) in pairs {
            let (slot, canonical) = match known_header(name) {
                Some(Known::Authorization) => (&mut h.authorization, AUTHORIZATION),
                Some(Known::Timestamp) => (&mut h.timestamp, X_AUTH_TIMESTAMP),
                Some(Known::Nonce) => (&mut h.nonce, X_AUTH_NONCE),
                Some(Known::Hmac) => (&mut h.hmac, X_AUTH_HMAC),
                None => continue,
            };
            if slot.is_some() {
                h.duplicate.get_or_insert(canonical);
            }
            *slot = Some(trim_ows(value));
        }
        h
    }
}

/// One of the four headers [`AuthHeaders::from_pairs`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    Authorization,
    Timestamp,
    Nonce,
    Hmac,
}

/// The four names folded as the SIP parser folds header names ([`fold_key`]): all are lower
/// case letters and `-`, so a name of the same length folds alike exactly when it is one of
/// them in some ASCII case.
const AUTHORIZATION_KEY: Key = fold_key(b"authorization");
const X_AUTH_TIMESTAMP_KEY: Key = fold_key(b"x-auth-timestamp");
const X_AUTH_NONCE_KEY: Key = fold_key(b"x-auth-nonce");
const X_AUTH_HMAC_KEY: Key = fold_key(b"x-auth-hmac");

/// Which of the four headers `name` is, compared ASCII case-insensitively: its length picks
/// the one candidate, comparing folded machine words settles it (this runs for every header
/// of every authenticated request).
#[inline]
fn known_header(name: &str) -> Option<Known> {
    let b = name.as_bytes();
    let (key, known) = match b.len() {
        13 => (AUTHORIZATION_KEY, Known::Authorization),
        16 => (X_AUTH_TIMESTAMP_KEY, Known::Timestamp),
        12 => (X_AUTH_NONCE_KEY, Known::Nonce),
        11 => (X_AUTH_HMAC_KEY, Known::Hmac),
        _ => return None,
    };
    (fold_key(b) == key).then_some(known)
}

/// `s` without leading and trailing spaces and tabs (bytes: both are ASCII, so the cut is
/// always at a character boundary).
fn trim_ows(s: &str) -> &str {
    let b = s.as_bytes();
    let ows = |c: &u8| *c == b' ' || *c == b'\t';
    // The common case: nothing to trim.
    if b.first().is_some_and(|c| !ows(c)) && b.last().is_some_and(|c| !ows(c)) {
        return s;
    }
    let start = b.iter().position(|c| !ows(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !ows(c)).map_or(start, |i| i + 1);
    s.get(start..end).unwrap_or_default()
}

/// A request that passed [`verify_request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified<'a> {
    /// The device.
    pub device: DeviceId,
    /// The timestamp it signed (Unix seconds).
    pub timestamp: u64,
    /// Its nonce, as sent.
    pub nonce: &'a str,
    /// The device's tolerance (for the replay cache's retention).
    pub tolerance_secs: u32,
}

/// Checks a request's signature at wall time `unix_now` (steps 1–7 of the module docs).
/// `lookup` maps the bearer token to the device's credentials ([`DeviceDirectory`] does it
/// without timing leaks).
///
/// # Errors
///
/// The first failing step as an [`AuthError`] (see [`AuthError::status`]).
pub fn verify_request<'h, 'c>(
    unix_now: u64,
    headers: &AuthHeaders<'h>,
    lookup: impl FnOnce(&str) -> Option<&'c DeviceCredentials>,
) -> Result<Verified<'h>, AuthError> {
    prepare(unix_now, headers, lookup, true, false).and_then(|p| p.finish())
}

/// A request that passed steps 1–6; the MAC (step 7) is still to be checked.
pub(crate) struct Prepared<'h, 'c> {
    creds: &'c DeviceCredentials,
    ts_str: &'h str,
    timestamp: u64,
    nonce: &'h str,
    presented: &'h str,
}

impl<'h> Prepared<'h, '_> {
    /// Step 7: the MAC, compared in constant time on the raw bytes.
    pub(crate) fn finish(&self) -> Result<Verified<'h>, AuthError> {
        // The MAC is sent as 64 lower-case hex digits: the computed tag is encoded that way
        // and compared with the header's bytes, in constant time (cheaper than decoding the
        // header, and anything else — upper case, other characters, another length — simply
        // does not match). `creds` was found by this very token (compared in constant time
        // by the lookup, or again by `prepare`), so its precomputed prefix is the presented
        // token's.
        let tag = self
            .creds
            .mac(self.ts_str, self.nonce)
            .finalize()
            .into_bytes();
        let mut expected = [0u8; 64];
        encode_hex(&tag, &mut expected);
        if !tokens_equal(&expected, self.presented.as_bytes()) {
            return Err(AuthError::InvalidHmac);
        }
        Ok(Verified {
            device: self.creds.id,
            timestamp: self.timestamp,
            nonce: self.nonce,
            tolerance_secs: self.creds.tolerance_secs,
        })
    }
}

/// Whether every byte is visible ASCII (`0x21..=0x7e`). Folded over every byte without an
/// early exit, so the compiler checks sixteen bytes per vector instruction: this runs over
/// the bearer token of every authenticated request.
fn is_visible_ascii(b: &[u8]) -> bool {
    b.iter().fold(0u8, |bad, &c| {
        bad | u8::from(c.wrapping_sub(0x21) > 0x7e - 0x21)
    }) == 0
}

/// Whether two byte strings (tokens, hex MACs) are equal, in time that depends on their
/// length only (a token's or a MAC's length is not secret: `subtle` also answers at once
/// for different lengths). The differences of all eight-byte words are or-ed together and
/// only that one word goes through `subtle`'s comparison (its optimisation barrier on every
/// byte, or every word, made comparing the largest part of finding a device).
pub(super) fn tokens_equal(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    // Whole words first (each a single load), then the tails.
    let (mut wa, mut wb) = (a.chunks_exact(8), b.chunks_exact(8));
    let mut diff = 0u64;
    for (x, y) in (&mut wa).zip(&mut wb) {
        diff |= word(x) ^ word(y);
    }
    diff |= word(wa.remainder()) ^ word(wb.remainder());
    bool::from(diff.ct_eq(&0))
}

/// Steps 1–6 of the module docs. `recheck_token` repeats the constant-time token
/// comparison after `lookup` (skipped only for [`DeviceDirectory::find_by_token`], which
/// compares in constant time itself). `nonce_is_hex` says the caller already found the
/// nonce to be an even number of hex digits (it decoded it), so only its length is checked.
pub(crate) fn prepare<'h, 'c>(
    unix_now: u64,
    headers: &AuthHeaders<'h>,
    lookup: impl FnOnce(&str) -> Option<&'c DeviceCredentials>,
    recheck_token: bool,
    nonce_is_hex: bool,
) -> Result<Prepared<'h, 'c>, AuthError> {
    if let Some(name) = headers.duplicate {
        return Err(AuthError::DuplicateHeader { name });
    }
    let present = |v: Option<&'h str>, name| match v {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(AuthError::MissingHeader { name }),
    };
    let authorization = present(headers.authorization, AUTHORIZATION)?;
    let ts_str = present(headers.timestamp, X_AUTH_TIMESTAMP)?;
    let nonce = present(headers.nonce, X_AUTH_NONCE)?;
    let presented = present(headers.hmac, X_AUTH_HMAC)?;

    let token = bearer_token(authorization).ok_or(AuthError::MalformedAuthorization)?;
    let timestamp = parse_timestamp(ts_str).ok_or(AuthError::MalformedTimestamp)?;

    let creds = lookup(token).ok_or(AuthError::UnknownToken)?;
    if recheck_token && !tokens_equal(creds.token.as_bytes(), token.as_bytes()) {
        return Err(AuthError::UnknownToken);
    }

    let tolerance = creds.tolerance_secs;
    if !timestamp_passes(timestamp, unix_now, tolerance) {
        return Err(AuthError::StaleTimestamp {
            skew_secs: skew(timestamp, unix_now),
            tolerance_secs: tolerance,
        });
    }

    let rule = creds.variant.nonce_rule();
    let accepted = if nonce_is_hex {
        rule.accepts_len(nonce.len())
    } else {
        rule.accepts(nonce)
    };
    if !accepted {
        return Err(AuthError::MalformedNonce {
            len: nonce.len(),
            min: rule.min_len,
            max: rule.max_len,
        });
    }
    Ok(Prepared {
        creds,
        ts_str,
        timestamp,
        nonce,
        presented,
    })
}

/// Whether `timestamp` is within `tolerance` seconds of `now`, both bounds inclusive.
#[must_use]
pub fn timestamp_passes(timestamp: u64, unix_now: u64, tolerance_secs: u32) -> bool {
    timestamp.abs_diff(unix_now) <= u64::from(tolerance_secs)
}

fn skew(timestamp: u64, now: u64) -> i64 {
    if timestamp >= now {
        i64::try_from(timestamp - now).unwrap_or(i64::MAX)
    } else {
        i64::try_from(now - timestamp).map_or(i64::MIN, |d| -d)
    }
}

/// The token of `Bearer <token>` (scheme matched case-insensitively, exactly one space).
pub(crate) fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_at_checked(7)?;
    // `Bearer ` in any ASCII case, as one word: setting bit 5 of the six letters maps
    // exactly their two cases onto the lower-case one; the space is compared as is.
    const LETTERS: u64 = 0x0000_2020_2020_2020;
    if word(scheme.as_bytes()) | LETTERS != word(b"bearer ") {
        return None;
    }
    check_token(token).ok()?;
    Some(token)
}

/// 1 to 19 decimal digits, no leading zero (except `0` itself).
pub(crate) fn parse_timestamp(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 19 || (b.len() > 1 && b[0] == b'0') {
        return None;
    }
    // Eight digits per step (a Unix time has ten), then digit by digit.
    let mut v: u64 = 0;
    let mut octets = b.chunks_exact(8);
    for c in &mut octets {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        v = v * 100_000_000 + eight_digits(u64::from_le_bytes(w))?;
    }
    for &c in octets.remainder() {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(c - b'0');
    }
    Some(v)
}

/// The value of eight decimal digits (a little-endian word, first digit lowest), or `None`
/// if a byte is not a digit. A byte is a digit when its high nibble is 3 and adding 6 to it
/// leaves the high nibble 3 (no carry leaves a byte: each is at most 0x3f + 6 once the high
/// nibbles are known to be 3). The digits are then combined pairwise: tens and units, then
/// hundreds, then ten-thousands.
fn eight_digits(w: u64) -> Option<u64> {
    const NIBBLES_3: u64 = 0x3030_3030_3030_3030;
    const HIGH: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    if w & HIGH != NIBBLES_3 || (w + 0x0606_0606_0606_0606) & HIGH != NIBBLES_3 {
        return None;
    }
    let d = w & 0x0f0f_0f0f_0f0f_0f0f;
    let d = (d * 10 + (d >> 8)) & 0x00ff_00ff_00ff_00ff;
    let d = (d * 100 + (d >> 16)) & 0x0000_ffff_0000_ffff;
    Some((d * 10_000 + (d >> 32)) & 0xffff_ffff)
}

/// Why a request was not authenticated. [`status`](Self::status) and
/// [`reason`](Self::reason) give calaos_base's answer (`{"error": reason, "status":
/// "authentication_failed"}` with that HTTP status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// A required header is absent or empty.
    MissingHeader {
        /// Its name.
        name: &'static str,
    },
    /// A required header appears more than once.
    DuplicateHeader {
        /// Its name.
        name: &'static str,
    },
    /// `Authorization` is not `Bearer <token>` with a visible-ASCII token.
    MalformedAuthorization,
    /// `X-Auth-Timestamp` is not 1–19 decimal digits without a leading zero.
    MalformedTimestamp,
    /// No device has this token.
    UnknownToken,
    /// The timestamp is outside the device's tolerance.
    StaleTimestamp {
        /// Timestamp minus server time, in seconds (positive: the device is ahead).
        skew_secs: i64,
        /// The tolerance that applied.
        tolerance_secs: u32,
    },
    /// The nonce does not follow the device's variant rule.
    MalformedNonce {
        /// Its length in characters.
        len: usize,
        /// Fewest hex digits allowed.
        min: usize,
        /// Most hex digits allowed.
        max: usize,
    },
    /// The nonce was already used by this device while its timestamp could still pass.
    NonceReplayed,
    /// `X-Auth-HMAC` is not 64 lower-case hex digits, or not the MAC of the request.
    InvalidHmac,
    /// Too many attempts from this address.
    RateLimited {
        /// When to try again.
        retry_after: Duration,
    },
    /// This device holds its full share of the replay cache (it is sending nonces faster
    /// than they expire); refused rather than evicting one, which would reopen a replay.
    NonceQuotaExceeded,
    /// The replay cache is full; refused for the same reason.
    NonceCacheFull,
}

impl AuthError {
    /// The HTTP status calaos_base answers with: 400 for missing or malformed headers, 401
    /// for token, timestamp and nonce problems, 403 for a wrong MAC, 429 when limited.
    #[must_use]
    pub const fn status(&self) -> u16 {
        match self {
            AuthError::MissingHeader { .. }
            | AuthError::DuplicateHeader { .. }
            | AuthError::MalformedAuthorization => 400,
            AuthError::UnknownToken
            | AuthError::MalformedTimestamp
            | AuthError::StaleTimestamp { .. }
            | AuthError::MalformedNonce { .. }
            | AuthError::NonceReplayed => 401,
            AuthError::InvalidHmac => 403,
            AuthError::RateLimited { .. }
            | AuthError::NonceQuotaExceeded
            | AuthError::NonceCacheFull => 429,
        }
    }

    /// calaos_base's `error` string: `missing_headers`, `invalid_token`,
    /// `invalid_timestamp`, `invalid_nonce`, `invalid_hmac` or `rate_limited`.
    #[must_use]
    pub const fn reason(&self) -> &'static str {
        match self {
            AuthError::MissingHeader { .. }
            | AuthError::DuplicateHeader { .. }
            | AuthError::MalformedAuthorization => "missing_headers",
            AuthError::UnknownToken => "invalid_token",
            AuthError::MalformedTimestamp | AuthError::StaleTimestamp { .. } => "invalid_timestamp",
            AuthError::MalformedNonce { .. } | AuthError::NonceReplayed => "invalid_nonce",
            AuthError::InvalidHmac => "invalid_hmac",
            AuthError::RateLimited { .. }
            | AuthError::NonceQuotaExceeded
            | AuthError::NonceCacheFull => "rate_limited",
        }
    }

    /// For 429 answers, how long to wait (a `Retry-After`), when known.
    #[must_use]
    pub const fn retry_after(&self) -> Option<Duration> {
        match self {
            AuthError::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::MissingHeader { name } => write!(f, "header {name} is missing or empty"),
            AuthError::DuplicateHeader { name } => {
                write!(f, "header {name} appears more than once")
            }
            AuthError::MalformedAuthorization => f.write_str(
                "header Authorization is not `Bearer <token>` with a visible-ASCII token",
            ),
            AuthError::MalformedTimestamp => write!(
                f,
                "header {X_AUTH_TIMESTAMP} is not Unix seconds (1 to 19 digits, no leading zero)"
            ),
            AuthError::UnknownToken => f.write_str("the bearer token belongs to no device"),
            AuthError::StaleTimestamp {
                skew_secs,
                tolerance_secs,
            } => write!(
                f,
                "header {X_AUTH_TIMESTAMP} is {skew_secs:+} s from server time \
                 (tolerance ±{tolerance_secs} s)"
            ),
            AuthError::MalformedNonce { len, min, max } if min == max => write!(
                f,
                "header {X_AUTH_NONCE} must be {min} hex digits (got {len} characters)"
            ),
            AuthError::MalformedNonce { len, min, max } => write!(
                f,
                "header {X_AUTH_NONCE} must be an even number of hex digits, {min} to {max} \
                 (got {len} characters)"
            ),
            AuthError::NonceReplayed => write!(f, "header {X_AUTH_NONCE} was already used"),
            AuthError::InvalidHmac => write!(
                f,
                "header {X_AUTH_HMAC} is not the lower-case hex HMAC-SHA256 of the request"
            ),
            AuthError::RateLimited { retry_after } => write!(
                f,
                "too many authentication attempts from this address: retry in {} ms",
                retry_after.as_millis()
            ),
            AuthError::NonceQuotaExceeded => {
                f.write_str("this device has too many recent nonces: slow down")
            }
            AuthError::NonceCacheFull => f.write_str("the replay cache is full: retry later"),
        }
    }
}

impl core::error::Error for AuthError {}
