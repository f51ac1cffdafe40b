//! Admin sessions: random ids, idle and absolute timeouts, a cap per user, rotation.
//!
//! * Ids are **32 random bytes** from the injected randomness, sent as 64 lower-case hex
//!   digits (the cookie value; `__Host-` prefix, `HttpOnly; Secure; SameSite=Strict` are the
//!   application's part).
//! * The store keeps **SHA-256 of each id, never the id**: lookups hash the presented value
//!   and search by digest, so lookup timing says nothing about live ids, and a leaked memory
//!   dump or snapshot cannot be replayed as a cookie.
//! * A session is valid while `now − last_seen < idle` (default 30 minutes) **and**
//!   `now − created < absolute` (default 8 hours); both bounds are exclusive, so at exactly
//!   30 minutes idle it has expired. Each successful [`SessionStore::validate`] moves
//!   `last_seen` to `now`.
//! * At most `per_user` sessions per user (default 5). Creating a sixth **evicts that user's
//!   oldest session by creation time**, which is reported to the caller.
//! * Ids rotate: [`SessionStore::login`] ends the session the client came with (if any)
//!   before issuing a new one, and [`SessionStore::password_changed`] ends *all* the user's
//!   sessions and issues one new id for the client that made the change.
//! * `max_sessions` (default 10,000) bounds the store; a login beyond it is refused
//!   ([`SessionError::StoreFull`]) — only valid credentials create sessions, so this is a
//!   ceiling, not an attack surface.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use rand_core::CryptoRng;
use sha2::{Digest as _, Sha256};

use super::hex::{decode_hex, encode_hex};
use super::provisioning::nanos_of;
use super::rate::{instant, nanos};
use crate::time::Instant;

/// Session limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// Inactivity after which a session ends (default 30 minutes).
    pub idle: Duration,
    /// Age after which a session ends regardless of activity (default 8 hours).
    pub absolute: Duration,
    /// Sessions per user (default 5).
    pub per_user: usize,
    /// Sessions in all (default 10,000).
    pub max_sessions: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(8 * 3600),
            per_user: 5,
            max_sessions: 10_000,
        }
    }
}

/// A session id: 32 random bytes. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId([u8; 32]);

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(..)")
    }
}

impl SessionId {
    /// A fresh id from `rng`.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        SessionId(b)
    }

    /// The cookie value: 64 lower-case hex digits.
    #[must_use]
    pub fn to_hex(&self) -> String {
        let mut out = [0u8; 64];
        encode_hex(&self.0, &mut out);
        out.iter().map(|&b| char::from(b)).collect()
    }

    /// An id from its cookie value.
    ///
    /// # Errors
    ///
    /// [`SessionError::Malformed`] unless `s` is exactly 64 lower-case hex digits.
    pub fn parse(s: &str) -> Result<Self, SessionError> {
        let mut b = [0u8; 32];
        if s.len() != 64
            || s.bytes().any(|c| c.is_ascii_uppercase())
            || decode_hex(s, &mut b) != Some(32)
        {
            return Err(SessionError::Malformed);
        }
        Ok(SessionId(b))
    }

    /// SHA-256 of the id: what the store keeps.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.0).into()
    }
}

/// Why a session is not valid, or could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionError {
    /// The cookie value is not 64 lower-case hex digits.
    Malformed,
    /// No such session (never issued, logged out, rotated away or evicted).
    Unknown,
    /// Ended by inactivity.
    IdleTimeout,
    /// Ended by age.
    AbsoluteTimeout,
    /// The store holds `max_sessions`.
    StoreFull,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SessionError::Malformed => "session cookie is not 64 lower-case hex digits",
            SessionError::Unknown => "session not found: please log in",
            SessionError::IdleTimeout => "session ended after inactivity: please log in",
            SessionError::AbsoluteTimeout => "session reached its maximum age: please log in",
            SessionError::StoreFull => "too many open sessions: try again later",
        })
    }
}

impl core::error::Error for SessionError {}

/// A session as the application sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Its user.
    pub user: String,
    /// When it was created.
    pub created: Instant,
    /// When it was last used (`now` after [`SessionStore::validate`]).
    pub last_seen: Instant,
    /// When it ends if unused (`last_seen + idle`, capped at the absolute end).
    pub expires: Instant,
}

/// A new session, and the one it pushed out if the user was at the cap.
#[derive(Debug)]
#[must_use]
pub struct NewSession {
    /// The id to send as the cookie.
    pub id: SessionId,
    /// Whether the user's oldest session was evicted to make room.
    pub evicted_oldest: bool,
}

/// A stored session; times are internal ticks (see `rate::BIAS`), so a restored session
/// keeps its true age even when created before the driver's origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Session {
    pub(crate) user: String,
    pub(crate) created: u64,
    pub(crate) last_seen: u64,
}

/// The session store (see the module docs).
#[derive(Debug)]
pub struct SessionStore {
    config: SessionConfig,
    by_digest: BTreeMap<[u8; 32], Session>,
    by_user: BTreeMap<String, Vec<[u8; 32]>>,
    cursor: Option<[u8; 32]>,
}

impl SessionStore {
    /// An empty store.
    #[must_use]
    pub fn new(config: SessionConfig) -> Self {
        SessionStore {
            config,
            by_digest: BTreeMap::new(),
            by_user: BTreeMap::new(),
            cursor: None,
        }
    }

    /// The limits.
    #[must_use]
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Starts a session for `user` after a successful login, ending the session `previous`
    /// (the cookie the client came with, if any) first — the id always changes on login.
    ///
    /// # Errors
    ///
    /// [`SessionError::StoreFull`] when the store is at `max_sessions`.
    pub fn login<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        user: &str,
        previous: Option<&str>,
        rng: &mut R,
    ) -> Result<NewSession, SessionError> {
        if let Some(prev) = previous.and_then(|p| SessionId::parse(p).ok()) {
            self.remove(&prev.digest());
        }
        self.create(now, user, rng)
    }

    /// Starts a session for `user` (see [`login`](Self::login) for the rotating form).
    ///
    /// # Errors
    ///
    /// [`SessionError::StoreFull`] when the store is at `max_sessions`.
    pub fn create<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        user: &str,
        rng: &mut R,
    ) -> Result<NewSession, SessionError> {
        self.purge_user(now, user);
        let mut evicted_oldest = false;
        let at_cap = self
            .by_user
            .get(user)
            .is_some_and(|v| v.len() >= self.config.per_user.max(1));
        if at_cap {
            if let Some(oldest) = self.oldest_of(user) {
                self.remove(&oldest);
                evicted_oldest = true;
            }
        } else if self.by_digest.len() >= self.config.max_sessions {
            // Make room from expired sessions first (bounded work), then give up.
            self.sweep(now, 256);
            if self.by_digest.len() >= self.config.max_sessions {
                return Err(SessionError::StoreFull);
            }
        }
        let id = SessionId::generate(rng);
        let digest = id.digest();
        self.by_digest.insert(
            digest,
            Session {
                user: String::from(user),
                created: nanos(now),
                last_seen: nanos(now),
            },
        );
        self.by_user
            .entry(String::from(user))
            .or_default()
            .push(digest);
        Ok(NewSession { id, evicted_oldest })
    }

    /// Checks the cookie value `cookie` at `now` and, when valid, marks the session used.
    ///
    /// # Errors
    ///
    /// [`SessionError`]: malformed, unknown, or timed out (the session is then removed).
    pub fn validate(&mut self, now: Instant, cookie: &str) -> Result<SessionInfo, SessionError> {
        let digest = SessionId::parse(cookie)?.digest();
        let s = self
            .by_digest
            .get_mut(&digest)
            .ok_or(SessionError::Unknown)?;
        if let Some(e) = expiry(&self.config, s, now) {
            self.remove(&digest);
            return Err(e);
        }
        s.last_seen = nanos(now);
        Ok(info_of(&self.config, s))
    }

    /// The session behind `cookie`, without marking it used.
    #[must_use]
    pub fn peek(&self, now: Instant, cookie: &str) -> Option<SessionInfo> {
        let digest = SessionId::parse(cookie).ok()?.digest();
        let s = self.by_digest.get(&digest)?;
        expiry(&self.config, s, now)
            .is_none()
            .then(|| info_of(&self.config, s))
    }

    /// Ends the session behind `cookie`; whether there was one.
    pub fn logout(&mut self, cookie: &str) -> bool {
        SessionId::parse(cookie).is_ok_and(|id| self.remove(&id.digest()))
    }

    /// After `user` changed their password: ends every session of `user` and issues one new
    /// id for the client that made the change.
    ///
    /// # Errors
    ///
    /// [`SessionError::StoreFull`] as for [`create`](Self::create).
    pub fn password_changed<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        user: &str,
        rng: &mut R,
    ) -> Result<SessionId, SessionError> {
        self.revoke_user(user);
        self.create(now, user, rng).map(|n| n.id)
    }

    /// Ends every session of `user`; how many there were.
    pub fn revoke_user(&mut self, user: &str) -> usize {
        let digests = self.by_user.remove(user).unwrap_or_default();
        for d in &digests {
            self.by_digest.remove(d);
        }
        digests.len()
    }

    /// Sessions held (including expired ones not yet swept).
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// Whether no session is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// Sessions of `user`.
    #[must_use]
    pub fn user_sessions(&self, user: &str) -> usize {
        self.by_user.get(user).map_or(0, Vec::len)
    }

    /// Removes expired sessions, examining at most `budget` (round-robin across calls);
    /// returns how many were removed.
    pub fn sweep(&mut self, now: Instant, budget: usize) -> usize {
        let mut expired = Vec::new();
        let mut examined = 0;
        let start = self.cursor.take();
        let range = match start {
            Some(c) => self
                .by_digest
                .range((core::ops::Bound::Excluded(c), core::ops::Bound::Unbounded)),
            None => self.by_digest.range::<[u8; 32], _>(..),
        };
        let mut last = None;
        for (d, s) in range {
            if examined >= budget {
                break;
            }
            examined += 1;
            last = Some(*d);
            if expiry(&self.config, s, now).is_some() {
                expired.push(*d);
            }
        }
        self.cursor = if examined >= budget { last } else { None };
        for d in &expired {
            self.remove(d);
        }
        expired.len()
    }

    /// The earliest instant at which a session ends, if any.
    #[must_use]
    pub fn next_expiry(&self) -> Option<Instant> {
        self.by_digest
            .values()
            .map(|s| session_end(&self.config, s))
            .min()
            .map(instant)
    }

    fn remove(&mut self, digest: &[u8; 32]) -> bool {
        let Some(s) = self.by_digest.remove(digest) else {
            return false;
        };
        if let Some(v) = self.by_user.get_mut(&s.user) {
            v.retain(|d| d != digest);
            if v.is_empty() {
                self.by_user.remove(&s.user);
            }
        }
        true
    }

    fn purge_user(&mut self, now: Instant, user: &str) {
        let Some(v) = self.by_user.get(user) else {
            return;
        };
        let dead: Vec<[u8; 32]> = v
            .iter()
            .filter(|d| {
                self.by_digest
                    .get(*d)
                    .is_none_or(|s| expiry(&self.config, s, now).is_some())
            })
            .copied()
            .collect();
        for d in &dead {
            self.remove(d);
        }
    }

    fn oldest_of(&self, user: &str) -> Option<[u8; 32]> {
        self.by_user
            .get(user)?
            .iter()
            .min_by_key(|d| self.by_digest.get(*d).map(|s| s.created))
            .copied()
    }

    /// Sessions as (digest, session) for a snapshot.
    pub(crate) fn export(&self) -> impl Iterator<Item = (&[u8; 32], &Session)> {
        self.by_digest.iter()
    }

    /// Restores one session (dropped when expired or over a cap).
    pub(crate) fn import(&mut self, now: Instant, digest: [u8; 32], session: Session) {
        if expiry(&self.config, &session, now).is_some()
            || self.by_digest.len() >= self.config.max_sessions
            || self.user_sessions(&session.user) >= self.config.per_user
            || self.by_digest.contains_key(&digest)
        {
            return;
        }
        self.by_user
            .entry(session.user.clone())
            .or_default()
            .push(digest);
        self.by_digest.insert(digest, session);
    }
}

fn info_of(config: &SessionConfig, s: &Session) -> SessionInfo {
    SessionInfo {
        user: s.user.clone(),
        created: instant(s.created),
        last_seen: instant(s.last_seen),
        expires: instant(session_end(config, s)),
    }
}

fn session_end(config: &SessionConfig, s: &Session) -> u64 {
    s.last_seen
        .saturating_add(nanos_of(config.idle))
        .min(s.created.saturating_add(nanos_of(config.absolute)))
}

fn expiry(config: &SessionConfig, s: &Session, now: Instant) -> Option<SessionError> {
    let now = nanos(now);
    if now.saturating_sub(s.created) >= nanos_of(config.absolute) {
        Some(SessionError::AbsoluteTimeout)
    } else if now.saturating_sub(s.last_seen) >= nanos_of(config.idle) {
        Some(SessionError::IdleTimeout)
    } else {
        None
    }
}
