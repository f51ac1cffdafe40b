//! The client side: answer `WWW-Authenticate` / `Proxy-Authenticate` challenges and keep the
//! accepted ones, so later requests carry credentials without waiting for another challenge.

use super::headers::Challenge;
use super::params::{ParamValue, ParseError, ParseErrorKind, is_attr_char};
use super::{
    Algorithm, ChallengeKind, DigestRequest, HexDigest, Qop, ResponseInput, Text, compute_response,
    ha1, has_ctl, push_quoted, userhash,
};
use crate::sip::lex::is_token_char;
use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write as _};
use rand_core::CryptoRng;

/// At most this many (kind, realm) sessions are cached; a new realm beyond it evicts the
/// oldest.
const MAX_SESSIONS: usize = 8;
/// At most this many challenge values of one response are looked at.
const MAX_CHALLENGES: usize = 16;
/// A realm that answers `stale=true` to this many consecutive direct answers is treated as
/// rejecting the credentials, so a broken server cannot make the client loop forever.
const MAX_STALE_RETRIES: u8 = 3;

/// Client policy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Accept `MD5` and `MD5-sess` challenges. Default `true`: Kamailio and BTicino/Legrand
    /// door-entry servers often offer nothing else, and refusing would leave the door station
    /// unregistered. Set it to `false` where the server is known to offer SHA-256, so an
    /// attacker who strips the stronger challenges from a 401 cannot downgrade the client.
    /// When both are offered the stronger algorithm wins regardless.
    pub allow_md5: bool,
    /// When a challenge offers both `auth` and `auth-int`, use `auth-int` (body integrity).
    /// Default `false`: `auth` is what every registrar verifies; `auth-int` is used anyway
    /// when it is the only option.
    pub prefer_auth_int: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            allow_md5: true,
            prefer_auth_int: false,
        }
    }
}

/// What a set of challenges meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChallengeOutcome {
    /// A new nonce for at least one realm: retry the request with credentials.
    Fresh,
    /// Every accepted challenge had `stale=true`: the credentials were right, only the nonce
    /// had expired; retry (this is not an authentication failure).
    Stale,
}

/// One credentials header to add to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Authorization {
    /// Which header: [`ChallengeKind::credentials_header`] gives its name.
    pub kind: ChallengeKind,
    /// The header value (`Digest username="…", …`).
    pub value: String,
}

/// A cached challenge, as [`DigestClient::sessions`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo<'a> {
    /// 401 or 407 side.
    pub kind: ChallengeKind,
    /// The realm.
    pub realm: &'a str,
    /// The algorithm chosen.
    pub algorithm: Algorithm,
    /// The qop chosen (`None`: RFC 2069 form).
    pub qop: Option<Qop>,
    /// The last `nc` sent with the current nonce (0 before the first request).
    pub nonce_count: u32,
}

/// A challenge that was not accepted, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refusal {
    /// What was offered: the algorithm (as written, or `MD5` when absent) or the scheme.
    pub offered: String,
    /// Why it was refused.
    pub reason: RefusalReason,
}

/// Why a challenge was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefusalReason {
    /// Not a `Digest` challenge (`Basic`, `Bearer`, ...).
    UnsupportedScheme,
    /// The value does not parse.
    Malformed(ParseError),
    /// An algorithm this crate does not implement.
    UnknownAlgorithm,
    /// MD5 while [`ClientConfig::allow_md5`] is `false`.
    Md5NotAllowed,
    /// `qop` offers neither `auth` nor `auth-int`.
    NoSupportedQop,
    /// A `-sess` algorithm without `qop`: there is no cnonce to build A1 from.
    SessWithoutQop,
    /// `realm`, `nonce` or `opaque` holds a control character (such as a folded line break)
    /// that cannot be echoed safely.
    UnsafeValue,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match &self.reason {
            RefusalReason::UnsupportedScheme => "unsupported scheme",
            RefusalReason::Malformed(e) => return write!(f, "{} (malformed: {e})", self.offered),
            RefusalReason::UnknownAlgorithm => "unknown algorithm",
            RefusalReason::Md5NotAllowed => "MD5 refused by configuration",
            RefusalReason::NoSupportedQop => "no supported qop",
            RefusalReason::SessWithoutQop => "-sess algorithm without qop",
            RefusalReason::UnsafeValue => "control character in realm, nonce or opaque",
        };
        write!(f, "{} ({why})", self.offered)
    }
}

/// Why the client cannot answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// No challenge values were given.
    NoChallenge,
    /// None of the challenges is acceptable; each is listed with the reason.
    NoAcceptableChallenge {
        /// Every refused challenge, in the order given.
        refused: Vec<Refusal>,
    },
    /// The realm challenged again, without `stale=true`, right after it was answered: the
    /// username or password is wrong (RFC 3261 §22.2). The cached challenge is dropped.
    Rejected {
        /// 401 or 407 side.
        kind: ChallengeKind,
        /// The realm.
        realm: String,
    },
    /// No challenge is cached for this kind and realm.
    NoSession {
        /// 401 or 407 side.
        kind: ChallengeKind,
        /// The realm asked for.
        realm: String,
    },
    /// The request's method is not a token or its URI is empty or holds a control character.
    InvalidRequest {
        /// `method` or `uri`.
        field: &'static str,
    },
    /// The nonce was used 2³²−1 times; a new challenge is needed.
    NonceCountExhausted {
        /// The realm.
        realm: String,
    },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::NoChallenge => f.write_str("no authentication challenge in the response"),
            ClientError::NoAcceptableChallenge { refused } => {
                f.write_str("no acceptable digest challenge; offered: ")?;
                for (i, r) in refused.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{r}")?;
                }
                Ok(())
            }
            ClientError::Rejected { kind, realm } => write!(
                f,
                "credentials rejected by realm \"{realm}\" ({} challenged again without stale=true)",
                kind.challenge_header()
            ),
            ClientError::NoSession { kind, realm } => {
                write!(
                    f,
                    "no {} challenge cached for realm \"{realm}\"",
                    kind.challenge_header()
                )
            }
            ClientError::InvalidRequest { field } => {
                write!(
                    f,
                    "request {field} cannot be used in a digest (empty, not a token or control character)"
                )
            }
            ClientError::NonceCountExhausted { realm } => {
                write!(
                    f,
                    "nonce count exhausted for realm \"{realm}\"; a new challenge is needed"
                )
            }
        }
    }
}

impl core::error::Error for ClientError {}

/// Digest client for one account: username, password and the challenges it has accepted.
///
/// Feed it every challenge of a 401/407 with [`handle_challenges`](Self::handle_challenges);
/// it picks, per realm, the strongest acceptable algorithm (SHA-512-256 > SHA-256 > MD5, the
/// `-sess` variant ranking with its hash; on a tie the server's order wins, the topmost
/// first as RFC 8760 §2.4 asks). Then [`authorize`](Self::authorize) writes the credentials
/// for each cached realm into every request (RFC 3261 §22.3 allows this pre-emptive reuse),
/// counting `nc` up while the nonce lasts, so a re-REGISTER refresh needs no new 401.
///
/// A second challenge for the same realm means, depending on what happened since:
/// * `stale=true` — the nonce expired; the credentials are reused with the new nonce
///   ([`ChallengeOutcome::Stale`]).
/// * no `stale`, after credentials were reused pre-emptively — a normal nonce renewal.
/// * no `stale`, right after answering that realm's challenge — the password is wrong:
///   [`ClientError::Rejected`], so the caller stops instead of looping.
///
/// `Debug` does not print the password; it is overwritten when the client is dropped (best
/// effort: copies the allocator made while the password was being built are out of reach).
#[derive(Debug)]
pub struct DigestClient {
    username: String,
    password: Password,
    config: ClientConfig,
    sessions: Vec<Session>,
}

impl DigestClient {
    /// A client for `username` / `password` with the default [`ClientConfig`].
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self::with_config(username, password, ClientConfig::default())
    }

    /// A client with the given policy.
    pub fn with_config(
        username: impl Into<String>,
        password: impl Into<String>,
        config: ClientConfig,
    ) -> Self {
        DigestClient {
            username: username.into(),
            password: Password(password.into().into_bytes()),
            config,
            sessions: Vec::new(),
        }
    }

    /// The username.
    #[must_use]
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The policy.
    #[must_use]
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The cached challenges (at most eight).
    pub fn sessions(&self) -> impl Iterator<Item = SessionInfo<'_>> {
        self.sessions.iter().map(|s| SessionInfo {
            kind: s.kind,
            realm: &s.realm,
            algorithm: s.algorithm,
            qop: s.qop,
            nonce_count: s.nc,
        })
    }

    /// Drop the cached challenge for `kind` and `realm`; returns whether there was one.
    pub fn forget(&mut self, kind: ChallengeKind, realm: &str) -> bool {
        let before = self.sessions.len();
        self.sessions
            .retain(|s| !(s.kind == kind && s.realm == realm));
        self.sessions.len() != before
    }

    /// Drop every cached challenge (for example when moving to another server).
    pub fn clear(&mut self) {
        self.sessions.clear();
    }

    /// Take the challenges of one 401 (`WWW-Authenticate` values, [`ChallengeKind::Www`]) or
    /// 407 (`Proxy-Authenticate`, [`ChallengeKind::Proxy`]) in header order. Values that are
    /// not acceptable `Digest` challenges are skipped; the error lists them all when none is
    /// left. At most 16 values are looked at.
    pub fn handle_challenges<'v, I>(
        &mut self,
        kind: ChallengeKind,
        values: I,
    ) -> Result<ChallengeOutcome, ClientError>
    where
        I: IntoIterator<Item = &'v str>,
    {
        let mut refused = Vec::new();
        let mut best: Vec<Candidate<'v>> = Vec::new();
        let mut any = false;
        for value in values.into_iter().take(MAX_CHALLENGES) {
            any = true;
            let ch = match Challenge::parse(value) {
                Ok(ch) => ch,
                Err(e) => {
                    refused.push(refusal_for_parse_error(e));
                    continue;
                }
            };
            let (algorithm, qop) = match self.acceptable(&ch) {
                Ok(choice) => choice,
                Err(reason) => {
                    let offered = String::from(ch.algorithm_param().unwrap_or("MD5"));
                    refused.push(Refusal { offered, reason });
                    continue;
                }
            };
            let cand = Candidate { ch, algorithm, qop };
            let room = best.len() < MAX_SESSIONS;
            match best
                .iter_mut()
                .find(|b| same_realm(b.ch.realm(), cand.ch.realm()))
            {
                Some(slot) if cand.algorithm.strength() > slot.algorithm.strength() => *slot = cand,
                Some(_) => {}
                None if room => best.push(cand),
                None => {}
            }
        }
        if best.is_empty() {
            return Err(if any {
                ClientError::NoAcceptableChallenge { refused }
            } else {
                ClientError::NoChallenge
            });
        }
        let mut all_stale = true;
        let mut first_error = None;
        for cand in &best {
            match self.install(kind, cand) {
                Ok(stale) => all_stale &= stale,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None if all_stale => Ok(ChallengeOutcome::Stale),
            None => Ok(ChallengeOutcome::Fresh),
        }
    }

    /// Credentials for every cached challenge, to add to `request` (one header per realm;
    /// empty when nothing is cached). Each call counts `nc` up and draws a fresh `cnonce`.
    pub fn authorize<R: CryptoRng + ?Sized>(
        &mut self,
        request: &DigestRequest<'_>,
        rng: &mut R,
    ) -> Result<Vec<Authorization>, ClientError> {
        check_request(request)?;
        let mut out = Vec::with_capacity(self.sessions.len());
        for i in 0..self.sessions.len() {
            let mut value = String::new();
            let cnonce = random_cnonce(rng);
            let kind = self.write_session(i, request, cnonce.as_str(), &mut value)?;
            out.push(Authorization { kind, value });
        }
        Ok(out)
    }

    /// Append the credentials for the cached challenge of `kind` and `realm` to `out` (the
    /// header value only, `Digest …`).
    pub fn write_authorization<R: CryptoRng + ?Sized>(
        &mut self,
        kind: ChallengeKind,
        realm: &str,
        request: &DigestRequest<'_>,
        rng: &mut R,
        out: &mut String,
    ) -> Result<(), ClientError> {
        check_request(request)?;
        let i = self
            .sessions
            .iter()
            .position(|s| s.kind == kind && s.realm == realm)
            .ok_or_else(|| ClientError::NoSession {
                kind,
                realm: realm.to_owned(),
            })?;
        let cnonce = random_cnonce(rng);
        self.write_session(i, request, cnonce.as_str(), out)
            .map(|_| ())
    }

    /// Whether `ch` is acceptable under the policy, and with which algorithm and qop.
    fn acceptable(&self, ch: &Challenge<'_>) -> Result<(Algorithm, Option<Qop>), RefusalReason> {
        let algorithm = ch
            .algorithm()
            .map_err(|_| RefusalReason::UnknownAlgorithm)?;
        if algorithm.is_md5() && !self.config.allow_md5 {
            return Err(RefusalReason::Md5NotAllowed);
        }
        let qop = if ch.has_qop() {
            let auth = ch.offers(Qop::Auth);
            let auth_int = ch.offers(Qop::AuthInt);
            if auth_int && (self.config.prefer_auth_int || !auth) {
                Some(Qop::AuthInt)
            } else if auth {
                Some(Qop::Auth)
            } else {
                return Err(RefusalReason::NoSupportedQop);
            }
        } else if algorithm.is_sess() {
            return Err(RefusalReason::SessWithoutQop);
        } else {
            None
        };
        let unsafe_value = |v: Option<ParamValue<'_>>| v.is_some_and(|v| has_ctl(v.as_raw()));
        if unsafe_value(Some(ch.realm()))
            || unsafe_value(Some(ch.nonce()))
            || unsafe_value(ch.opaque())
        {
            return Err(RefusalReason::UnsafeValue);
        }
        Ok((algorithm, qop))
    }

    /// Cache `cand` for `kind`, applying the stale / rejection rules. Returns whether it was
    /// a stale renewal.
    fn install(&mut self, kind: ChallengeKind, cand: &Candidate<'_>) -> Result<bool, ClientError> {
        let ch = &cand.ch;
        let realm = ch.realm().unescaped().into_owned();
        let existing = self
            .sessions
            .iter()
            .position(|s| s.kind == kind && s.realm == realm);
        let mut stale_retries = 0;
        if let Some(i) = existing {
            let prev = &self.sessions[i];
            let answered = prev.state == Use::AnsweredChallenge;
            if ch.stale() {
                stale_retries = prev.stale_retries.saturating_add(u8::from(answered));
                if stale_retries >= MAX_STALE_RETRIES {
                    self.sessions.remove(i);
                    return Err(ClientError::Rejected { kind, realm });
                }
            } else if answered {
                self.sessions.remove(i);
                return Err(ClientError::Rejected { kind, realm });
            }
        }
        let nonce = ch.nonce().unescaped().into_owned();
        // The same nonce again (a server that challenges a request it could have accepted):
        // `nc` counts requests sent with that nonce (RFC 7616 §3.4), so it goes on rising —
        // starting over at 1 would look like a replay to a server that tracks it — and a
        // `-sess` algorithm keeps the cnonce its session key was made with.
        let (nc, sess_cnonce) = existing
            .map(|i| &self.sessions[i])
            .filter(|prev| prev.nonce == nonce && prev.algorithm == cand.algorithm)
            .map_or((0, None), |prev| (prev.nc, prev.sess_cnonce.clone()));
        let session = Session {
            kind,
            ha1: ha1(cand.algorithm, &self.username, &realm, &self.password.0),
            username_hash: ch
                .userhash()
                .then(|| userhash(cand.algorithm, &self.username, &realm)),
            realm,
            nonce,
            opaque: ch.opaque().map(|o| o.unescaped().into_owned()),
            algorithm: cand.algorithm,
            echo_algorithm: ch.algorithm_param().is_some(),
            qop: cand.qop,
            sess_cnonce,
            nc,
            state: Use::Challenged,
            stale_retries,
        };
        match existing {
            Some(i) => self.sessions[i] = session,
            None => {
                if self.sessions.len() >= MAX_SESSIONS {
                    self.sessions.remove(0);
                }
                self.sessions.push(session);
            }
        }
        Ok(ch.stale())
    }

    /// Write session `i`'s credentials for `request` using `fresh_cnonce` (kept for the
    /// nonce's lifetime under a `-sess` algorithm, so A1 stays the same, RFC 2617 §3.2.2.2).
    pub(crate) fn write_session(
        &mut self,
        i: usize,
        request: &DigestRequest<'_>,
        fresh_cnonce: &str,
        out: &mut String,
    ) -> Result<ChallengeKind, ClientError> {
        let username = &self.username;
        let Some(s) = self.sessions.get_mut(i) else {
            return Err(ClientError::NoSession {
                kind: ChallengeKind::Www,
                realm: String::new(),
            });
        };
        let nc = match s.qop {
            Some(_) => {
                s.nc.checked_add(1)
                    .ok_or_else(|| ClientError::NonceCountExhausted {
                        realm: s.realm.clone(),
                    })?
            }
            None => s.nc.saturating_add(1),
        };
        let nc_buf = nc_hex(nc);
        let nc_str = core::str::from_utf8(&nc_buf).unwrap_or_default();
        let cnonce: &str = match (s.algorithm.is_sess(), &s.sess_cnonce) {
            (true, Some(kept)) => kept,
            (true, None) => s.sess_cnonce.insert(fresh_cnonce.to_owned()),
            (false, _) => fresh_cnonce,
        };
        let response = compute_response(&ResponseInput {
            algorithm: s.algorithm,
            ha1: &s.ha1,
            nonce: Text::Plain(&s.nonce),
            qop: s.qop.map(|q| (q, nc_str, Text::Plain(cnonce))),
            method: request.method,
            uri: Text::Plain(request.uri),
            body: request.body,
        })
        // Only a `-sess` algorithm without qop has no response, and `acceptable` refuses it.
        .ok_or(ClientError::InvalidRequest { field: "method" })?;

        out.push_str("Digest ");
        match (&s.username_hash, has_ctl(username)) {
            (Some(h), _) => {
                out.push_str("username=");
                push_quoted(out, h.as_str());
            }
            (None, true) => {
                out.push_str("username*=UTF-8''");
                push_ext_value(out, username);
            }
            (None, false) => {
                out.push_str("username=");
                push_quoted(out, username);
            }
        }
        out.push_str(", realm=");
        push_quoted(out, &s.realm);
        out.push_str(", nonce=");
        push_quoted(out, &s.nonce);
        out.push_str(", uri=");
        push_quoted(out, request.uri);
        if s.echo_algorithm {
            out.push_str(", algorithm=");
            out.push_str(s.algorithm.as_str());
        }
        if let Some(q) = s.qop {
            out.push_str(", qop=");
            out.push_str(q.as_str());
            out.push_str(", nc=");
            out.push_str(nc_str);
            out.push_str(", cnonce=");
            push_quoted(out, cnonce);
        }
        out.push_str(", response=");
        push_quoted(out, response.as_str());
        if let Some(o) = &s.opaque {
            out.push_str(", opaque=");
            push_quoted(out, o);
        }
        if s.username_hash.is_some() {
            out.push_str(", userhash=true");
        }

        s.nc = nc;
        if s.state == Use::Challenged {
            s.state = Use::AnsweredChallenge;
        } else {
            s.state = Use::Reused;
            s.stale_retries = 0;
        }
        Ok(s.kind)
    }
}

/// A challenge chosen for a realm.
#[derive(Debug)]
struct Candidate<'v> {
    ch: Challenge<'v>,
    algorithm: Algorithm,
    qop: Option<Qop>,
}

/// How a cached challenge has been used since it arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    /// Not answered yet.
    Challenged,
    /// Answered once, in direct response to the challenge.
    AnsweredChallenge,
    /// Reused pre-emptively for a later request.
    Reused,
}

/// One accepted challenge.
#[derive(Debug)]
struct Session {
    kind: ChallengeKind,
    realm: String,
    nonce: String,
    opaque: Option<String>,
    algorithm: Algorithm,
    /// Whether the challenge named its algorithm (echoed only then, for RFC 2069 servers).
    echo_algorithm: bool,
    qop: Option<Qop>,
    ha1: HexDigest,
    username_hash: Option<HexDigest>,
    sess_cnonce: Option<String>,
    nc: u32,
    state: Use,
    stale_retries: u8,
}

/// The password bytes; `Debug` redacts them and `Drop` overwrites them.
struct Password(Vec<u8>);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Drop for Password {
    fn drop(&mut self) {
        self.0.fill(0);
        core::hint::black_box(&mut self.0);
    }
}

fn same_realm(a: ParamValue<'_>, b: ParamValue<'_>) -> bool {
    a.unescaped() == b.unescaped()
}

fn refusal_for_parse_error(e: ParseError) -> Refusal {
    match e.kind() {
        ParseErrorKind::UnsupportedScheme { scheme } => Refusal {
            offered: scheme.clone(),
            reason: RefusalReason::UnsupportedScheme,
        },
        _ => Refusal {
            offered: String::from("Digest"),
            reason: RefusalReason::Malformed(e),
        },
    }
}

fn check_request(request: &DigestRequest<'_>) -> Result<(), ClientError> {
    if request.method.is_empty() || !request.method.bytes().all(is_token_char) {
        return Err(ClientError::InvalidRequest { field: "method" });
    }
    if request.uri.is_empty() || has_ctl(request.uri) {
        return Err(ClientError::InvalidRequest { field: "uri" });
    }
    Ok(())
}

/// 128 random bits as 32 lowercase hex digits.
fn random_cnonce<R: CryptoRng + ?Sized>(rng: &mut R) -> HexDigest {
    let mut raw = [0u8; 16];
    rng.fill_bytes(&mut raw);
    HexDigest::from_raw(&raw)
}

/// `nc` as eight lowercase hex digits.
fn nc_hex(nc: u32) -> [u8; 8] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'0'; 8];
    for (i, slot) in out.iter_mut().enumerate() {
        let shift = 28 - 4 * i;
        *slot = HEX[((nc >> shift) & 0xf) as usize];
    }
    out
}

/// RFC 5987 percent-encoding of `s` (for `username*`).
fn push_ext_value(out: &mut String, s: &str) {
    for b in s.bytes() {
        if is_attr_char(b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}
