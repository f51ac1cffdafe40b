//! HTTP Digest access authentication as SIP uses it: RFC 7616 with the SIP rules of RFC 8760,
//! and RFC 2617 / RFC 2069 compatibility. Client side ([`DigestClient`]) and server side
//! ([`DigestServer`]), over zero-copy views of the header values ([`Challenge`],
//! [`Credentials`]).
//!
//! * Algorithms: `MD5`, `MD5-sess`, `SHA-256`, `SHA-256-sess`, `SHA-512-256`,
//!   `SHA-512-256-sess` ([`Algorithm`]); tokens matched case-insensitively, hex output lowercase.
//! * Quality of protection: `auth` and `auth-int` ([`Qop`]); when a challenge offers no `qop`
//!   the answer uses the RFC 2069 form, without `qop`, `nc` or `cnonce`.
//! * Nonce reuse with `nc` counting, `stale=true`, `userhash`, `opaque`, several challenges per
//!   response (the strongest acceptable algorithm per realm wins), several realms (one
//!   credentials header per realm, RFC 8760 §2.4).
//!
//! # Client
//!
//! ```
//! use latchkey_protocol::sip::digest::{ChallengeKind, DigestClient, DigestRequest};
//! use rand_chacha::ChaCha20Rng;
//! use rand_core::SeedableRng;
//!
//! let mut rng = ChaCha20Rng::from_seed([7; 32]); // a runtime passes its OS-seeded CSPRNG
//! let mut client = DigestClient::new("100", "secret");
//!
//! // REGISTER was answered 401; hand over every WWW-Authenticate value, top first.
//! client.handle_challenges(ChallengeKind::Www, [
//!     r#"Digest realm="bt.example", nonce="abc", qop="auth", algorithm=SHA-256"#,
//!     r#"Digest realm="bt.example", nonce="abc", qop="auth", algorithm=MD5"#,
//! ])?;
//! // Every request from now on (the retry, and each later re-REGISTER) carries credentials
//! // without waiting for another 401; nc counts up while the nonce lasts.
//! let request = DigestRequest::new("REGISTER", "sip:bt.example", b"");
//! for auth in client.authorize(&request, &mut rng)? {
//!     assert_eq!(auth.kind.credentials_header(), "Authorization");
//!     assert!(auth.value.contains("algorithm=SHA-256"));
//!     assert!(auth.value.contains("nc=00000001"));
//! }
//! # Ok::<(), latchkey_protocol::sip::digest::ClientError>(())
//! ```
//!
//! # Server
//!
//! ```
//! use latchkey_protocol::sip::digest::{
//!     Credentials, DigestClient, DigestRequest, DigestServer, ChallengeKind, Secret, ServerConfig,
//! };
//! use latchkey_protocol::time::Instant;
//! use rand_chacha::ChaCha20Rng;
//! use rand_core::SeedableRng;
//!
//! let mut rng = ChaCha20Rng::from_seed([9; 32]);
//! let mut server = DigestServer::new(ServerConfig::new("gw.example"), &[42u8; 32])?;
//! let now = Instant::from_secs(1_000);
//! let challenges = server.challenges(now, false, &mut rng); // one value per algorithm
//!
//! let mut client = DigestClient::new("alice", "pw");
//! client.handle_challenges(ChallengeKind::Www, challenges.iter().map(String::as_str))?;
//! let request = DigestRequest::new("REGISTER", "sip:gw.example", b"");
//! let auth = client.authorize(&request, &mut rng)?.remove(0);
//!
//! let creds = Credentials::parse(&auth.value)?;
//! let user = creds.username(); // look the account up by this name
//! assert_eq!(user, "alice");
//! server.verify(now, &creds, &request, &user, Secret::Password(b"pw"))?;
//! # Ok::<(), Box<dyn core::error::Error>>(())
//! ```

mod client;
mod headers;
mod params;
mod server;

pub use client::{
    Authorization, ChallengeOutcome, ClientConfig, ClientError, DigestClient, Refusal,
    RefusalReason, SessionInfo,
};
pub use headers::{
    Challenge, Credentials, QopOptions, check_challenge_syntax, check_credentials_syntax,
};
pub use params::{AuthParam, AuthParams, ParamValue, ParseError, ParseErrorKind};
pub use server::{
    DigestServer, Nonce, Secret, ServerConfig, ServerConfigError, StaleReason, Verified,
    VerifyError,
};

use alloc::string::String;
use core::fmt;
use md5::Md5;
use sha2::{Digest as _, Sha256, Sha512_256};

/// A digest algorithm of the IANA "Hash Algorithms for HTTP Digest Authentication" registry
/// (RFC 7616 §6.1) that SIP may use (RFC 8760 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// `MD5` (RFC 2617; the default when a challenge names no algorithm).
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256` (RFC 7616).
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `SHA-512-256`: SHA-512/256 of FIPS 180-4 (RFC 7616).
    Sha512_256,
    /// `SHA-512-256-sess`.
    Sha512_256Sess,
}

impl Algorithm {
    /// Every algorithm, strongest first.
    pub const ALL: [Algorithm; 6] = [
        Algorithm::Sha512_256,
        Algorithm::Sha512_256Sess,
        Algorithm::Sha256,
        Algorithm::Sha256Sess,
        Algorithm::Md5,
        Algorithm::Md5Sess,
    ];

    /// The token as registered (`SHA-512-256-sess`, ...).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// The algorithm a token names, matched case-insensitively; `None` for tokens this crate
    /// does not implement (such as `SHA-1` or a misspelling).
    #[must_use]
    pub fn from_token(token: &str) -> Option<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(token))
    }

    /// Whether this is a `-sess` variant (A1 includes the nonce and cnonce, RFC 7616 §3.4.2).
    #[must_use]
    pub const fn is_sess(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }

    /// Whether the underlying hash is MD5 (`MD5` or `MD5-sess`).
    #[must_use]
    pub const fn is_md5(self) -> bool {
        matches!(self, Algorithm::Md5 | Algorithm::Md5Sess)
    }

    /// Rank of the underlying hash: SHA-512/256 (3) > SHA-256 (2) > MD5 (1). A `-sess` variant
    /// ranks with its hash.
    #[must_use]
    pub const fn strength(self) -> u8 {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => 1,
            Algorithm::Sha256 | Algorithm::Sha256Sess => 2,
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => 3,
        }
    }

    /// Length of the lowercase hex digest this algorithm produces (32 or 64).
    #[must_use]
    pub const fn hex_len(self) -> usize {
        if self.is_md5() { 32 } else { 64 }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Quality of protection (RFC 7616 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Qop {
    /// `auth`: authentication of method and request-URI.
    Auth,
    /// `auth-int`: also the message body, as `H(entity-body)` in A2.
    AuthInt,
}

impl Qop {
    /// The token (`auth` or `auth-int`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }

    /// The value a token names, case-insensitively.
    #[must_use]
    pub fn from_token(token: &str) -> Option<Qop> {
        if token.eq_ignore_ascii_case("auth") {
            Some(Qop::Auth)
        } else if token.eq_ignore_ascii_case("auth-int") {
            Some(Qop::AuthInt)
        } else {
            None
        }
    }
}

impl fmt::Display for Qop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which pair of headers a challenge came in and its answer goes out in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChallengeKind {
    /// `WWW-Authenticate` in a 401, answered with `Authorization` (registrars, user agents).
    Www,
    /// `Proxy-Authenticate` in a 407, answered with `Proxy-Authorization` (proxies).
    Proxy,
}

impl ChallengeKind {
    /// The challenge header's name.
    #[must_use]
    pub const fn challenge_header(self) -> &'static str {
        match self {
            ChallengeKind::Www => "WWW-Authenticate",
            ChallengeKind::Proxy => "Proxy-Authenticate",
        }
    }

    /// The credentials header's name.
    #[must_use]
    pub const fn credentials_header(self) -> &'static str {
        match self {
            ChallengeKind::Www => "Authorization",
            ChallengeKind::Proxy => "Proxy-Authorization",
        }
    }
}

/// What a digest response covers: the request's method, its digest-uri (the Request-URI as
/// written in the request line, RFC 3261 §22.4) and its body (hashed for `auth-int` only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DigestRequest<'a> {
    /// The method token (`REGISTER`, `INVITE`, ...). SIP sends `ACK` and `CANCEL` with the
    /// credentials of the request they belong to, not with their own.
    pub method: &'a str,
    /// The digest-uri (`uri` parameter).
    pub uri: &'a str,
    /// The message body (empty when there is none).
    pub body: &'a [u8],
}

impl<'a> DigestRequest<'a> {
    /// A request with the given method, digest-uri and body.
    #[must_use]
    pub const fn new(method: &'a str, uri: &'a str, body: &'a [u8]) -> Self {
        DigestRequest { method, uri, body }
    }
}

/// A digest as lowercase hex (32 characters for MD5, 64 otherwise), kept inline.
///
/// `Debug` does not print the digits: an HA1 is as good as the password for this realm.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HexDigest {
    buf: [u8; 64],
    len: u8,
}

impl HexDigest {
    /// The hex text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written.
        core::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The hex text as bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or_default()
    }

    fn from_raw(raw: &[u8]) -> HexDigest {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut d = HexDigest {
            buf: [0; 64],
            len: 0,
        };
        for (i, b) in raw.iter().take(32).enumerate() {
            d.buf[2 * i] = HEX[usize::from(b >> 4)];
            d.buf[2 * i + 1] = HEX[usize::from(b & 0x0f)];
            d.len += 2;
        }
        d
    }

    /// Parse `hex` (either case) as a digest of `algorithm`; `None` when the length or a
    /// character is wrong. The stored text is lowercase.
    #[must_use]
    pub fn parse(algorithm: Algorithm, hex: &str) -> Option<HexDigest> {
        if hex.len() != algorithm.hex_len() {
            return None;
        }
        let mut d = HexDigest {
            buf: [0; 64],
            len: 0,
        };
        for (slot, b) in d.buf.iter_mut().zip(hex.bytes()) {
            if !b.is_ascii_hexdigit() {
                return None;
            }
            *slot = b.to_ascii_lowercase();
        }
        d.len = u8::try_from(hex.len()).ok()?;
        Some(d)
    }
}

impl fmt::Debug for HexDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HexDigest(<{} hex digits>)", self.len)
    }
}

impl fmt::Display for HexDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `H(unq(username) ":" unq(realm) ":" passwd)` — the HA1 of RFC 7616 §3.4.2 for the
/// non-`-sess` algorithm (a `-sess` algorithm derives its A1 from this same value), which a
/// server may store instead of the password (see [`Secret::Ha1`]). It depends on the hash
/// only: `MD5` and `MD5-sess` share it.
#[must_use]
pub fn ha1(algorithm: Algorithm, username: &str, realm: &str, password: &[u8]) -> HexDigest {
    let mut h = Hasher::new(algorithm);
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.update(b":");
    h.update(password);
    h.finish()
}

/// `H(unq(username) ":" unq(realm))` — the hashed username sent as `username` with
/// `userhash=true` (RFC 7616 §3.4.4). A server indexes its accounts by this value to find
/// the account such a request names.
#[must_use]
pub fn userhash(algorithm: Algorithm, username: &str, realm: &str) -> HexDigest {
    let mut h = Hasher::new(algorithm);
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.finish()
}

/// Text that goes into a hash: plain, or the inside of a quoted-string whose `\` escapes
/// must be removed first (`unq()` of RFC 7616), without allocating.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Text<'a> {
    Plain(&'a str),
    Escaped(&'a str),
}

impl Text<'_> {
    fn feed(self, h: &mut Hasher) {
        match self {
            Text::Plain(s) => h.update(s.as_bytes()),
            Text::Escaped(s) => params::for_each_unescaped(s, |chunk| h.update(chunk.as_bytes())),
        }
    }
}

/// The inputs of a `response` computation (RFC 7616 §3.4.1–3.4.3).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResponseInput<'a> {
    pub(crate) algorithm: Algorithm,
    /// `H(username:realm:password)` of this algorithm's hash.
    pub(crate) ha1: &'a HexDigest,
    pub(crate) nonce: Text<'a>,
    /// `(qop, nc as written, cnonce)` when a qop is used.
    pub(crate) qop: Option<(Qop, &'a str, Text<'a>)>,
    pub(crate) method: &'a str,
    pub(crate) uri: Text<'a>,
    pub(crate) body: &'a [u8],
}

/// The `response` value; `None` for a `-sess` algorithm without qop (no cnonce to build A1).
pub(crate) fn compute_response(input: &ResponseInput<'_>) -> Option<HexDigest> {
    let alg = input.algorithm;
    let ha1 = if alg.is_sess() {
        let (_, _, cnonce) = input.qop?;
        let mut h = Hasher::new(alg);
        h.update(input.ha1.as_bytes());
        h.update(b":");
        input.nonce.feed(&mut h);
        h.update(b":");
        cnonce.feed(&mut h);
        h.finish()
    } else {
        *input.ha1
    };
    let mut a2 = Hasher::new(alg);
    a2.update(input.method.as_bytes());
    a2.update(b":");
    input.uri.feed(&mut a2);
    if let Some((Qop::AuthInt, _, _)) = input.qop {
        let mut body = Hasher::new(alg);
        body.update(input.body);
        a2.update(b":");
        a2.update(body.finish().as_bytes());
    }
    let ha2 = a2.finish();
    let mut kd = Hasher::new(alg);
    kd.update(ha1.as_bytes());
    kd.update(b":");
    input.nonce.feed(&mut kd);
    kd.update(b":");
    if let Some((qop, nc, cnonce)) = input.qop {
        kd.update(nc.as_bytes());
        kd.update(b":");
        cnonce.feed(&mut kd);
        kd.update(b":");
        kd.update(qop.as_str().as_bytes());
        kd.update(b":");
    }
    kd.update(ha2.as_bytes());
    Some(kd.finish())
}

/// One running hash of the algorithm's function.
#[derive(Clone)]
pub(crate) enum Hasher {
    Md5(Md5),
    Sha256(Sha256),
    Sha512_256(Sha512_256),
}

impl Hasher {
    pub(crate) fn new(alg: Algorithm) -> Hasher {
        match alg.strength() {
            1 => Hasher::Md5(Md5::new()),
            2 => Hasher::Sha256(Sha256::new()),
            _ => Hasher::Sha512_256(Sha512_256::new()),
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512_256(h) => h.update(data),
        }
    }

    pub(crate) fn finish(self) -> HexDigest {
        match self {
            Hasher::Md5(h) => HexDigest::from_raw(&h.finalize()),
            Hasher::Sha256(h) => HexDigest::from_raw(&h.finalize()),
            Hasher::Sha512_256(h) => HexDigest::from_raw(&h.finalize()),
        }
    }
}

/// Append `s` as a quoted-string, escaping `"` and `\` (RFC 7616 §3.4, RFC 3261 §25.1).
/// Callers make sure `s` holds no CR, LF or other control character.
pub(crate) fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Whether `s` contains a control character (which a header value cannot carry safely).
pub(crate) fn has_ctl(s: &str) -> bool {
    s.bytes().any(|b| b < 0x20 || b == 0x7f)
}

#[cfg(test)]
mod tests;
