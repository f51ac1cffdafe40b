//! The server side: issue challenges with self-validating, expiring nonces and verify
//! credentials against a password or a stored HA1.
//!
//! # Nonces
//!
//! A nonce is 80 lowercase hex digits encoding 40 bytes:
//!
//! ```text
//! issued-at (8, big-endian milliseconds of crate::time::Instant)
//! || random (16, from the caller's CSPRNG)
//! || HMAC-SHA-256(secret, "latchkey-digest-nonce-v1" || len(realm) || realm || issued-at || random)[..16]
//! ```
//!
//! so the server keeps no per-nonce state to know that it issued a nonce and when: the MAC
//! proves both, the issue time gives the expiry. The `secret` given to [`DigestServer::new`]
//! must stay the same for as long as nonces should stay valid and be shared by every
//! instance that verifies them; a restart with a new secret (or a new `Instant` origin) makes
//! old nonces [`StaleReason::UnknownNonce`], which costs clients one extra round trip.
//!
//! # Replay protection
//!
//! Optional (on by default, [`ServerConfig::replay_table_capacity`] entries): a table keyed
//! by the nonce's random part keeps the highest `nc` accepted, and a request whose `nc` is
//! not higher is [`StaleReason::NonceCountReplayed`]; without qop a nonce is accepted once.
//! Entries are only created by requests whose digest verified, so only holders of valid
//! credentials can fill it. When it is full, expired entries go first, then the entry of the
//! oldest nonce; the table then remembers the newest issue time it evicted (a watermark) and
//! refuses, as [`StaleReason::ReplayStateForgotten`], any untracked nonce issued at or before
//! it — so eviction never re-opens a replay; it only makes some clients fetch a new nonce.
//! Memory is bounded by the capacity (about 64 bytes per entry).

use super::headers::Credentials;
use super::{
    Algorithm, DigestRequest, HexDigest, Qop, ResponseInput, Text, compute_response, ha1, has_ctl,
    push_quoted, userhash,
};
use crate::sip::lex::hex_val;
use crate::time::Instant;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;
use rand_core::CryptoRng;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Minimum length of the server secret, in bytes.
const MIN_SECRET_LEN: usize = 16;
/// Bytes in a nonce before hex encoding: issued-at (8), random (16), MAC (16).
const NONCE_BYTES: usize = 40;
/// Hex digits in a nonce.
const NONCE_HEX_LEN: usize = 2 * NONCE_BYTES;
/// Domain separation for the nonce MAC.
const NONCE_MAC_LABEL: &[u8] = b"latchkey-digest-nonce-v1";

/// Server policy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The realm (RFC 3261 §22.1: typically the domain). Must not be empty.
    pub realm: String,
    /// The algorithms offered, one challenge each, in order of preference (RFC 8760 §2.3:
    /// most preferred first). Default `SHA-256`, then `MD5` for older clients.
    pub algorithms: Vec<Algorithm>,
    /// The qop values offered. Default `auth`. Empty means RFC 2069 challenges without qop,
    /// which `-sess` algorithms cannot use.
    pub qop: Vec<Qop>,
    /// How long a nonce stays valid after it is issued. Default 300 s (Kamailio's default).
    pub nonce_lifetime: Duration,
    /// Ask clients to hash the username (`userhash=true`, RFC 7616 §3.4.4). Default `false`.
    /// Either way, plain usernames are accepted, and hashed ones whenever the hash matches.
    pub userhash: bool,
    /// An `opaque` value to send; credentials must then echo it. Default none.
    pub opaque: Option<String>,
    /// Require the credentials' `uri` to equal the request's digest-uri byte for byte
    /// (RFC 7616 §3.4.6). Default `true`.
    pub check_uri: bool,
    /// Capacity of the nonce-count replay table (see the module documentation); 0 turns
    /// replay protection off. Default 1024.
    pub replay_table_capacity: usize,
}

impl ServerConfig {
    /// The default policy for `realm`.
    pub fn new(realm: impl Into<String>) -> Self {
        ServerConfig {
            realm: realm.into(),
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            qop: vec![Qop::Auth],
            nonce_lifetime: Duration::from_secs(300),
            userhash: false,
            opaque: None,
            check_uri: true,
            replay_table_capacity: 1024,
        }
    }
}

/// Why a [`ServerConfig`] or secret cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerConfigError {
    /// `realm` is empty.
    EmptyRealm,
    /// `realm` or `opaque` holds a control character.
    ControlCharacter {
        /// `realm` or `opaque`.
        field: &'static str,
    },
    /// `algorithms` is empty.
    NoAlgorithms,
    /// A `-sess` algorithm is offered without qop.
    SessWithoutQop {
        /// The algorithm.
        algorithm: Algorithm,
    },
    /// `nonce_lifetime` is zero.
    ZeroNonceLifetime,
    /// The secret is shorter than 16 bytes.
    SecretTooShort {
        /// Its length.
        len: usize,
    },
}

impl fmt::Display for ServerConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerConfigError::EmptyRealm => f.write_str("digest realm is empty"),
            ServerConfigError::ControlCharacter { field } => {
                write!(f, "digest {field} holds a control character")
            }
            ServerConfigError::NoAlgorithms => f.write_str("no digest algorithm offered"),
            ServerConfigError::SessWithoutQop { algorithm } => {
                write!(
                    f,
                    "digest algorithm {algorithm} needs a qop, but none is offered"
                )
            }
            ServerConfigError::ZeroNonceLifetime => f.write_str("digest nonce lifetime is zero"),
            ServerConfigError::SecretTooShort { len } => write!(
                f,
                "digest nonce secret is {len} bytes, at least {MIN_SECRET_LEN} are needed"
            ),
        }
    }
}

impl core::error::Error for ServerConfigError {}

/// What the account's password is known as.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum Secret<'a> {
    /// The password itself.
    Password(&'a [u8]),
    /// `H(username:realm:password)` in hex ([`ha1`](super::ha1)) for the hash of the
    /// algorithm the client used: an MD5 HA1 verifies only `MD5`/`MD5-sess` credentials.
    Ha1(&'a str),
}

impl fmt::Debug for Secret<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Password(_) => f.write_str("Secret::Password(<redacted>)"),
            Secret::Ha1(_) => f.write_str("Secret::Ha1(<redacted>)"),
        }
    }
}

/// A nonce issued by [`DigestServer::issue_nonce`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Nonce {
    hex: [u8; NONCE_HEX_LEN],
}

impl Nonce {
    /// The nonce text (80 lowercase hex digits).
    #[must_use]
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.hex).unwrap_or_default()
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({})", self.as_str())
    }
}

/// What verified credentials carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verified {
    /// The algorithm used.
    pub algorithm: Algorithm,
    /// The qop used (`None`: RFC 2069 form).
    pub qop: Option<Qop>,
    /// The nonce count, with qop.
    pub nonce_count: Option<u32>,
    /// Whether the username was hashed.
    pub userhash: bool,
    /// When the nonce stops being accepted (a server may send a fresh one before).
    pub nonce_expires_at: Instant,
}

/// Why credentials were not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// `realm` is not this server's.
    RealmMismatch,
    /// `algorithm` is unknown or not one this server offers.
    AlgorithmNotOffered {
        /// The algorithm as sent (`MD5` when absent).
        algorithm: String,
    },
    /// `qop` is missing while the server offers qop, or is one it does not offer.
    QopMismatch {
        /// The qop sent.
        sent: Option<Qop>,
    },
    /// `opaque` does not echo the configured value.
    OpaqueMismatch,
    /// `uri` differs from the request's digest-uri.
    UriMismatch,
    /// `username` (or its hash) is not the account's.
    UsernameMismatch,
    /// The [`Secret::Ha1`] is not hex of the algorithm's digest length.
    MalformedSecret,
    /// `response` is wrong: wrong password, or a tampered method, uri or (`auth-int`) body.
    BadResponse,
    /// The digest is right but the nonce cannot be accepted: re-challenge with `stale=true`,
    /// and the client retries without asking the user (RFC 7616 §3.3).
    Stale(StaleReason),
}

/// Why a nonce with a correct digest was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StaleReason {
    /// Its lifetime is over.
    Expired,
    /// It was not issued by this server under its current secret and clock origin (or it is
    /// not a nonce of this format). The digest being right means the client knows the
    /// password for that nonce, so a new challenge with `stale=true` is safe; a replayed old
    /// request gains nothing from it.
    UnknownNonce,
    /// Its `nc` is not higher than one already accepted (a replay, or requests reordered).
    NonceCountReplayed,
    /// The replay table no longer tracks it (see the module documentation).
    ReplayStateForgotten,
}

impl VerifyError {
    /// Whether to re-challenge with `stale=true` (the credentials themselves were right).
    #[must_use]
    pub const fn is_stale(&self) -> bool {
        matches!(self, VerifyError::Stale(_))
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::RealmMismatch => f.write_str("digest realm is not this server's"),
            VerifyError::AlgorithmNotOffered { algorithm } => {
                write!(f, "digest algorithm `{algorithm}` is not offered")
            }
            VerifyError::QopMismatch { sent: None } => {
                f.write_str("digest qop missing though the server offers qop")
            }
            VerifyError::QopMismatch { sent: Some(q) } => {
                write!(f, "digest qop `{q}` is not offered")
            }
            VerifyError::OpaqueMismatch => f.write_str("digest opaque does not match"),
            VerifyError::UriMismatch => f.write_str("digest uri differs from the request URI"),
            VerifyError::UsernameMismatch => f.write_str("digest username is not the account's"),
            VerifyError::MalformedSecret => {
                f.write_str("stored HA1 is not a hex digest of the algorithm's length")
            }
            VerifyError::BadResponse => f.write_str("digest response is wrong"),
            VerifyError::Stale(reason) => {
                let why = match reason {
                    StaleReason::Expired => "expired",
                    StaleReason::UnknownNonce => "not issued by this server",
                    StaleReason::NonceCountReplayed => "nc not higher than one already used",
                    StaleReason::ReplayStateForgotten => "no longer tracked for replays",
                };
                write!(f, "digest nonce is stale ({why})")
            }
        }
    }
}

impl core::error::Error for VerifyError {}

/// Digest server for one realm: issues challenges and verifies credentials.
#[derive(Debug)]
pub struct DigestServer {
    config: ServerConfig,
    key: MacKey,
    replay: Option<ReplayTable>,
}

impl DigestServer {
    /// A server with `config` whose nonces are authenticated with `secret` (at least 16
    /// random bytes; see the module documentation for its lifetime).
    pub fn new(config: ServerConfig, secret: &[u8]) -> Result<Self, ServerConfigError> {
        if config.realm.is_empty() {
            return Err(ServerConfigError::EmptyRealm);
        }
        if has_ctl(&config.realm) {
            return Err(ServerConfigError::ControlCharacter { field: "realm" });
        }
        if config.opaque.as_deref().is_some_and(has_ctl) {
            return Err(ServerConfigError::ControlCharacter { field: "opaque" });
        }
        if config.algorithms.is_empty() {
            return Err(ServerConfigError::NoAlgorithms);
        }
        if config.qop.is_empty()
            && let Some(&algorithm) = config.algorithms.iter().find(|a| a.is_sess())
        {
            return Err(ServerConfigError::SessWithoutQop { algorithm });
        }
        if config.nonce_lifetime.is_zero() {
            return Err(ServerConfigError::ZeroNonceLifetime);
        }
        if secret.len() < MIN_SECRET_LEN {
            return Err(ServerConfigError::SecretTooShort { len: secret.len() });
        }
        let replay = (config.replay_table_capacity > 0)
            .then(|| ReplayTable::new(config.replay_table_capacity));
        Ok(DigestServer {
            key: MacKey::new(secret),
            config,
            replay,
        })
    }

    /// The policy.
    #[must_use]
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Entries in the replay table (0 when it is off).
    #[must_use]
    pub fn replay_table_len(&self) -> usize {
        self.replay.as_ref().map_or(0, |t| t.entries.len())
    }

    /// A fresh nonce issued at `now`.
    pub fn issue_nonce<R: CryptoRng + ?Sized>(&self, now: Instant, rng: &mut R) -> Nonce {
        let mut raw = [0u8; NONCE_BYTES];
        raw[..8].copy_from_slice(&millis(now).to_be_bytes());
        rng.fill_bytes(&mut raw[8..24]);
        let mac = self.nonce_mac(&raw[..24]);
        raw[24..].copy_from_slice(&mac);
        let mut hex = [0u8; NONCE_HEX_LEN];
        let digits = HexDigest::from_raw(&raw[..32]);
        hex[..64].copy_from_slice(digits.as_bytes());
        hex[64..].copy_from_slice(HexDigest::from_raw(&raw[32..]).as_bytes());
        Nonce { hex }
    }

    /// Append one challenge value for `algorithm` with `nonce` to `out`:
    /// `Digest realm="…", nonce="…", algorithm=…, qop="…", opaque="…", stale=true, userhash=true`
    /// (the last four only when they apply).
    pub fn write_challenge(
        &self,
        nonce: &Nonce,
        algorithm: Algorithm,
        stale: bool,
        out: &mut String,
    ) {
        out.push_str("Digest realm=");
        push_quoted(out, &self.config.realm);
        out.push_str(", nonce=");
        push_quoted(out, nonce.as_str());
        out.push_str(", algorithm=");
        out.push_str(algorithm.as_str());
        if !self.config.qop.is_empty() {
            out.push_str(", qop=\"");
            for (i, q) in self.config.qop.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(q.as_str());
            }
            out.push('"');
        }
        if let Some(o) = &self.config.opaque {
            out.push_str(", opaque=");
            push_quoted(out, o);
        }
        if stale {
            out.push_str(", stale=true");
        }
        if self.config.userhash {
            out.push_str(", userhash=true");
        }
    }

    /// The challenge values for a 401 (`WWW-Authenticate`) or 407 (`Proxy-Authenticate`):
    /// one per configured algorithm, in configured order, sharing one fresh nonce. Pass
    /// `stale = true` after [`VerifyError::Stale`].
    pub fn challenges<R: CryptoRng + ?Sized>(
        &self,
        now: Instant,
        stale: bool,
        rng: &mut R,
    ) -> Vec<String> {
        let nonce = self.issue_nonce(now, rng);
        self.config
            .algorithms
            .iter()
            .map(|&a| {
                let mut s = String::new();
                self.write_challenge(&nonce, a, stale, &mut s);
                s
            })
            .collect()
    }

    /// `H(username:realm)` for this realm: the `username` a client sends with
    /// `userhash=true`. Compare it with [`Credentials::username`] to find the account.
    #[must_use]
    pub fn userhash(&self, algorithm: Algorithm, username: &str) -> HexDigest {
        userhash(algorithm, username, &self.config.realm)
    }

    /// Verify `creds` (parsed from the request's `Authorization` / `Proxy-Authorization`)
    /// for the account `username` with `secret`, which the caller looked up by
    /// [`Credentials::username`] (or by the userhash). `request` is the request's method,
    /// Request-URI and body.
    ///
    /// The response is compared in constant time. A wrong digest is
    /// [`VerifyError::BadResponse`]; a right digest with an unusable nonce is
    /// [`VerifyError::Stale`] (checked only after the digest, as `stale=true` promises the
    /// credentials were right).
    pub fn verify(
        &mut self,
        now: Instant,
        creds: &Credentials<'_>,
        request: &DigestRequest<'_>,
        username: &str,
        secret: Secret<'_>,
    ) -> Result<Verified, VerifyError> {
        let cfg = &self.config;
        if !creds.realm().eq_unescaped(&cfg.realm) {
            return Err(VerifyError::RealmMismatch);
        }
        let algorithm = creds
            .algorithm()
            .ok()
            .filter(|a| cfg.algorithms.contains(a))
            .ok_or_else(|| VerifyError::AlgorithmNotOffered {
                algorithm: String::from(creds.algorithm_param().unwrap_or("MD5")),
            })?;
        let qop = creds.qop();
        let qop_ok = match qop {
            None => cfg.qop.is_empty(),
            Some(q) => cfg.qop.contains(&q),
        };
        if !qop_ok {
            return Err(VerifyError::QopMismatch { sent: qop });
        }
        if let Some(expected) = &cfg.opaque
            && !creds.opaque().is_some_and(|o| o.eq_unescaped(expected))
        {
            return Err(VerifyError::OpaqueMismatch);
        }
        if cfg.check_uri && !creds.uri().eq_unescaped(request.uri) {
            return Err(VerifyError::UriMismatch);
        }
        let sent_name = creds.username();
        let name_ok = if creds.userhash() {
            sent_name.eq_ignore_ascii_case(self.userhash(algorithm, username).as_str())
        } else {
            sent_name == username
        };
        if !name_ok {
            return Err(VerifyError::UsernameMismatch);
        }
        let base_ha1 = match secret {
            Secret::Password(pw) => ha1(algorithm, username, &cfg.realm, pw),
            Secret::Ha1(hex) => {
                HexDigest::parse(algorithm, hex).ok_or(VerifyError::MalformedSecret)?
            }
        };
        let cnonce = creds.cnonce().map(|c| c.text()).unwrap_or(Text::Plain(""));
        let expected = compute_response(&ResponseInput {
            algorithm,
            ha1: &base_ha1,
            nonce: creds.nonce().text(),
            qop: qop.map(|q| (q, creds.nc_str().unwrap_or_default(), cnonce)),
            method: request.method,
            uri: creds.uri().text(),
            body: request.body,
        })
        .ok_or(VerifyError::QopMismatch { sent: qop })?;
        if !response_matches(expected.as_bytes(), creds.response()) {
            return Err(VerifyError::BadResponse);
        }

        let nonce = self.check_nonce(now, creds.nonce().as_raw())?;
        if let Some(table) = &mut self.replay {
            let lifetime = millis_of(self.config.nonce_lifetime);
            table.check_and_record(nonce.id, nonce.issued_ms, creds.nc(), millis(now), lifetime)?;
        }
        Ok(Verified {
            algorithm,
            qop,
            nonce_count: creds.nc(),
            userhash: creds.userhash(),
            nonce_expires_at: Instant::from_millis(nonce.issued_ms)
                .saturating_add(self.config.nonce_lifetime),
        })
    }

    fn nonce_mac(&self, issued_and_random: &[u8]) -> [u8; 16] {
        let realm = self.config.realm.as_bytes();
        let realm_len = u32::try_from(realm.len()).unwrap_or(u32::MAX).to_be_bytes();
        let full = self
            .key
            .mac(&[NONCE_MAC_LABEL, &realm_len, realm, issued_and_random]);
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }

    /// Decode and authenticate a nonce, and check its age.
    fn check_nonce(&self, now: Instant, text: &str) -> Result<DecodedNonce, VerifyError> {
        let unknown = VerifyError::Stale(StaleReason::UnknownNonce);
        let raw = decode_hex::<NONCE_BYTES>(text).ok_or(unknown.clone())?;
        let mac = self.nonce_mac(&raw[..24]);
        if !bool::from(mac.ct_eq(&raw[24..])) {
            return Err(unknown);
        }
        let mut issued = [0u8; 8];
        issued.copy_from_slice(&raw[..8]);
        let issued_ms = u64::from_be_bytes(issued);
        let now_ms = millis(now);
        if issued_ms > now_ms {
            // Issued "in the future": a previous run with another clock origin.
            return Err(unknown);
        }
        if now_ms - issued_ms > millis_of(self.config.nonce_lifetime) {
            return Err(VerifyError::Stale(StaleReason::Expired));
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&raw[8..24]);
        Ok(DecodedNonce { issued_ms, id })
    }
}

/// The parts of a verified nonce.
struct DecodedNonce {
    issued_ms: u64,
    id: [u8; 16],
}

/// Constant-time comparison of the expected lowercase hex response with the one sent (either
/// case). Only the length, which is public (it follows from the algorithm), short-circuits.
fn response_matches(expected: &[u8], sent: &str) -> bool {
    if sent.len() != expected.len() {
        return false;
    }
    let mut lower = [0u8; 64];
    for (slot, b) in lower.iter_mut().zip(sent.bytes()) {
        *slot = b.to_ascii_lowercase();
    }
    let sent = lower.get(..expected.len()).unwrap_or_default();
    bool::from(sent.ct_eq(expected))
}

fn decode_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (slot, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        *slot = (hex_val(pair[0])? << 4) | hex_val(pair[1])?;
    }
    Some(out)
}

fn millis(t: Instant) -> u64 {
    millis_of(t.duration_since_origin())
}

fn millis_of(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// HMAC-SHA-256 (RFC 2104, RustCrypto `hmac`), keyed once; each MAC clones the keyed state.
#[derive(Clone)]
pub(super) struct MacKey {
    keyed: hmac::Hmac<Sha256>,
}

impl MacKey {
    pub(super) fn new(secret: &[u8]) -> Self {
        use hmac::KeyInit as _;
        // HMAC accepts keys of any length (longer ones are hashed first), so this cannot fail.
        let keyed = hmac::Hmac::<Sha256>::new_from_slice(secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        MacKey { keyed }
    }

    pub(super) fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        use hmac::Mac as _;
        let mut m = self.keyed.clone();
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }
}

impl fmt::Debug for MacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MacKey(<redacted>)")
    }
}

/// The highest `nc` accepted per nonce, bounded (see the module documentation).
#[derive(Debug)]
struct ReplayTable {
    capacity: usize,
    entries: BTreeMap<[u8; 16], ReplayEntry>,
    /// Newest issue time of an evicted entry: untracked nonces issued at or before it are
    /// refused.
    watermark_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct ReplayEntry {
    issued_ms: u64,
    /// `None`: used once without qop (no `nc`).
    highest_nc: Option<u32>,
}

impl ReplayTable {
    fn new(capacity: usize) -> Self {
        ReplayTable {
            capacity,
            entries: BTreeMap::new(),
            watermark_ms: None,
        }
    }

    fn check_and_record(
        &mut self,
        id: [u8; 16],
        issued_ms: u64,
        nc: Option<u32>,
        now_ms: u64,
        lifetime_ms: u64,
    ) -> Result<(), VerifyError> {
        if let Some(entry) = self.entries.get_mut(&id) {
            return match (entry.highest_nc, nc) {
                (Some(highest), Some(n)) if n > highest => {
                    entry.highest_nc = Some(n);
                    Ok(())
                }
                _ => Err(VerifyError::Stale(StaleReason::NonceCountReplayed)),
            };
        }
        if self.watermark_ms.is_some_and(|w| issued_ms <= w) {
            return Err(VerifyError::Stale(StaleReason::ReplayStateForgotten));
        }
        if self.entries.len() >= self.capacity {
            self.make_room(now_ms, lifetime_ms);
        }
        self.entries.insert(
            id,
            ReplayEntry {
                issued_ms,
                highest_nc: nc,
            },
        );
        Ok(())
    }

    /// Drop expired entries, or else the oldest one, raising the watermark over what goes.
    fn make_room(&mut self, now_ms: u64, lifetime_ms: u64) {
        let mut newest_dropped = None;
        self.entries.retain(|_, e| {
            let expired = now_ms.saturating_sub(e.issued_ms) > lifetime_ms;
            if expired {
                newest_dropped = newest_dropped.max(Some(e.issued_ms));
            }
            !expired
        });
        if self.entries.len() >= self.capacity {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.issued_ms)
                .map(|(k, e)| (*k, e.issued_ms));
            if let Some((key, issued)) = oldest {
                self.entries.remove(&key);
                newest_dropped = newest_dropped.max(Some(issued));
            }
        }
        if newest_dropped.is_some() {
            self.watermark_ms = self.watermark_ms.max(newest_dropped);
        }
    }
}

/// The replay table's watermark, for tests.
#[cfg(test)]
pub(super) fn replay_watermark(server: &DigestServer) -> Option<u64> {
    server.replay.as_ref().and_then(|t| t.watermark_ms)
}
