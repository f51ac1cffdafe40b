//! `TokenSession`: the token lifecycle as a state machine that never loses a session.
//!
//! One session holds one user's (or one client's) tokens for one provider. It decides when
//! to refresh, builds the request, reads the answer, and says what to persist — the driver
//! performs the I/O and reports back. The rules, each against a failure seen in the field
//! (../shared/design/REFERENCE.md, OAuth):
//!
//! * **Proactive refresh** at `expiry − margin − jitter` (see [`schedule`]); a token shorter
//!   than the margin refreshes at half-life, never in a loop; never more often than
//!   [`SessionConfig::min_refresh_interval`].
//! * **Single flight**: whatever number of callers ask [`TokenSession::access_token`] while a
//!   refresh runs get [`TokenAnswer::Wait`]; there is one request at a time, as state.
//! * **401 from the resource API**: [`TokenSession::handle_unauthorized`] forces one refresh
//!   unless a newer token already exists or one was just obtained; a token obtained after a
//!   401 that also gets a 401 is not refreshed again. Retry-once, never a loop.
//! * **Transient failures** back off exponentially with jitter; the current access token is
//!   still served until it really expires (unless it was stamped ahead of the clock; see
//!   below).
//! * **Crash-safe rotation**: before a refresh request is sent, the snapshot is persisted with
//!   a "refresh in flight" marker; the rotated tokens are persisted and acknowledged
//!   ([`TokenSession::handle_persisted`]) before the new access token is handed out or
//!   another refresh can start. A snapshot found with the marker at start-up is refreshed at
//!   once (after any other process's lease has run out) to learn whether its refresh token
//!   still works.
//! * **Several processes, one state file**: every write names the revision it expects on disk
//!   (compare-and-swap); the marker acts as a lease, so a second process waits for the first
//!   one's refresh and adopts its result instead of spending the same refresh token. A login
//!   is written unconditionally, its revision raised by a random step below 2^32, so it never
//!   takes the revision another process's pending write expects.
//! * **`invalid_grant`** makes the driver re-read the state file
//!   ([`Event::ReloadSnapshot`]): if another process rotated the token meanwhile, its tokens
//!   are adopted; otherwise [`Event::ReauthRequired`] is emitted once and persisted, so no
//!   restart retries a dead token. While a login is required the state file is re-read every
//!   [`REAUTH_RECHECK`] seconds, so a long-running process picks up a login made by another
//!   one (`latchkey login`) without a restart. A refresh whose result meets a newer login on
//!   disk adopts the login instead of writing over it.
//! * **Refresh-token expiry**: an idle session is refreshed before its refresh token would
//!   lapse from disuse; [`Event::ReauthSoon`] warns ahead of an absolute expiry.
//!
//! Time is wall-clock Unix seconds (`u64`) throughout, because expiries are wall-clock facts
//! that must survive restarts. Tokens stamped more than [`STAMP_TOLERANCE`] after `now` were
//! written while the clock ran ahead: their stored expiry is late by an unknown amount, so
//! they are not handed out and are refreshed at once (on restore, without a caller).

pub mod schedule;
pub mod snapshot;

use std::collections::VecDeque;

use crate::http::{HttpRequest, HttpResponse, TransportError};
use crate::profile::{Profile, ProfileError};
use crate::request;
use crate::response::{self, ErrorClass, TokenError, TokenResponse};
use crate::secret::Secret;
use schedule::{BackoffPolicy, Jitter, MarginPolicy};
pub use snapshot::{Grant, InFlight, MAX_LEASE_TIMEOUT, SNAPSHOT_VERSION, Snapshot, SnapshotError};

/// The extra revision step of an unconditional write: below 2^32, mixed from the writing
/// instance's random id and the write's id (the jitter's SplitMix64, seeded with both).
fn unconditional_jump(instance: u64, write: u64) -> u64 {
    Jitter::new(instance ^ write.rotate_left(32)).next() >> 32
}

/// How far ahead of the clock a token's stamps may be before the session takes the clock to
/// have been set back since they were written (seconds; a sibling process on the same
/// machine shares the clock, so only a step of the clock itself gets past this). Tokens
/// stamped further ahead are not handed out and are refreshed at once.
pub const STAMP_TOLERANCE: u64 = 60;

/// Tuning of a session. [`SessionConfig::from_profile`] fills it from a provider profile.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionConfig {
    /// How early to refresh.
    pub margin: MarginPolicy,
    /// Backoff after transient failures.
    pub backoff: BackoffPolicy,
    /// Never refresh more often than this, seconds (default 1).
    pub min_refresh_interval: u64,
    /// Refresh proactively before expiry (default true); when false, only on demand, on a
    /// 401, or to keep an idle refresh token alive.
    pub keep_fresh: bool,
    /// A refresh request not answered within this many seconds counts as failed; also the
    /// lease other processes respect (default 30).
    pub request_timeout: u64,
    /// A 401 within this many seconds of obtaining the current token is not answered with
    /// another refresh (default 30; at most a quarter of the token's lifetime, so short-lived
    /// tokens still get their refresh).
    pub unauthorized_cooldown: u64,
    /// Absolute refresh-token lifetime when the server does not say.
    pub refresh_token_lifetime: Option<u64>,
    /// Whether a rotated refresh token restarts that lifetime.
    pub refresh_token_sliding: bool,
    /// Refresh tokens lapse after this much disuse.
    pub refresh_token_idle: Option<u64>,
    /// Warn this many seconds before an absolute refresh-token expiry (default 7 days).
    pub reauth_soon: u64,
    /// A token with less than this left (seconds, at most a quarter of its lifetime) is
    /// treated as expired (default 5).
    pub min_remaining: u64,
    /// While another process holds the refresh lease, re-read the state this often
    /// (seconds, default 2).
    pub sibling_poll: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            margin: MarginPolicy::default(),
            backoff: BackoffPolicy::default(),
            min_refresh_interval: 1,
            keep_fresh: true,
            request_timeout: 30,
            unauthorized_cooldown: 30,
            refresh_token_lifetime: None,
            refresh_token_sliding: false,
            refresh_token_idle: None,
            reauth_soon: 7 * 86_400,
            min_remaining: 5,
            sibling_poll: 2,
        }
    }
}

impl SessionConfig {
    /// The profile's lifecycle rules on top of the defaults.
    #[must_use]
    pub fn from_profile(profile: &Profile) -> Self {
        let l = &profile.lifecycle;
        SessionConfig {
            margin: MarginPolicy {
                fixed: l.refresh_margin_secs,
                min: l.margin_min_secs,
                percent: l.margin_percent,
            },
            refresh_token_lifetime: l.refresh_token_lifetime_secs,
            refresh_token_sliding: l.refresh_token_sliding,
            refresh_token_idle: l.refresh_token_idle_secs,
            reauth_soon: l.reauth_soon_days.saturating_mul(86_400),
            ..SessionConfig::default()
        }
    }
}

/// Identifies a request the session asked the driver to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Identifies a write the session asked the driver to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersistId(pub u64);

/// Why a refresh was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshReason {
    /// Ahead of expiry.
    Proactive,
    /// A caller wanted a token and the current one is expired.
    Demand,
    /// The resource API answered 401.
    Unauthorized,
    /// To keep an idle refresh token from lapsing.
    KeepAlive,
    /// A previous refresh was interrupted (crash) or another process's lease ran out.
    Recovery,
    /// Asked for explicitly ([`TokenSession::force_refresh`]).
    Manual,
}

/// Where new tokens came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenSource {
    /// This session's own refresh.
    Refresh,
    /// Another process sharing the state file refreshed; its tokens were adopted.
    Sibling,
}

/// What the session tells its driver and application. Drain with
/// [`TokenSession::poll_event`] after every `handle_*` call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Write `snapshot` atomically, then call [`TokenSession::handle_persisted`] with `id`.
    /// When `expected_revision` is `Some(r)` and the state file on disk holds another
    /// revision (another process wrote it), do not write: call
    /// [`TokenSession::handle_persist_conflict`] with what is on disk.
    Persist {
        /// Acknowledge with this id.
        id: PersistId,
        /// The revision the write replaces, or `None` to write unconditionally (a login).
        expected_revision: Option<u64>,
        /// What to write (holds secrets: mode 0600).
        snapshot: Box<Snapshot>,
    },
    /// Perform this HTTPS request and call [`TokenSession::handle_response`] with `id`.
    SendRequest {
        /// Answer with this id.
        id: RequestId,
        /// The request (holds secrets; its `Debug` redacts them).
        request: HttpRequest,
    },
    /// Abandon request `id` (its deadline passed): abort it if it is still running. Its
    /// answer, if one still comes, may be handed in: a success is taken while nothing else
    /// is under way and the session still holds the refresh token the request carried (the
    /// server may have rotated it, and the answer is then the only copy of the new one);
    /// anything else is ignored.
    CancelRequest {
        /// The request to abandon.
        id: RequestId,
    },
    /// Read the persisted snapshot and call [`TokenSession::handle_reloaded`].
    ReloadSnapshot,
    /// A login's tokens are stored and ready.
    TokenCreated {
        /// When the access token expires.
        expires_at: Option<u64>,
    },
    /// New tokens are stored and ready.
    TokenRefreshed {
        /// When the new access token expires.
        expires_at: Option<u64>,
        /// Whether the refresh token changed.
        rotated: bool,
        /// Who refreshed.
        source: TokenSource,
    },
    /// A refresh failed for a reason that may pass; another attempt follows at `retry_at`.
    RefreshFailed {
        /// What went wrong.
        error: TokenError,
        /// Consecutive failures so far.
        failures: u32,
        /// When the next attempt is made.
        retry_at: u64,
    },
    /// The session cannot continue without a new login. Emitted once.
    ReauthRequired {
        /// Why, for the user.
        reason: String,
    },
    /// The refresh token will expire at `refresh_expires_at`; log in again before then.
    ReauthSoon {
        /// When it expires.
        refresh_expires_at: u64,
    },
}

/// The answer to [`TokenSession::access_token`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenAnswer<'a> {
    /// Use this token.
    Ready {
        /// The access token.
        token: &'a Secret,
        /// Its generation; pass it to [`TokenSession::handle_unauthorized`] on a 401.
        generation: u64,
        /// When it expires.
        expires_at: Option<u64>,
    },
    /// A refresh is under way (or starts at the next timeout); ask again after the next
    /// event.
    Wait,
    /// No usable token now: refreshing is failing and backing off.
    Unavailable {
        /// The last failure.
        reason: String,
        /// When the next attempt is made.
        retry_at: Option<u64>,
    },
    /// A new login is needed.
    ReauthRequired {
        /// Why.
        reason: &'a str,
    },
    /// Nobody has logged in.
    NoSession,
}

/// The answer to [`TokenSession::handle_unauthorized`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unauthorized {
    /// A newer token than the refused one exists: retry the request with
    /// [`TokenSession::access_token`].
    RetryNow,
    /// A refresh is under way; retry once it is done.
    Wait,
    /// Do not retry: return the 401 to the caller.
    GiveUp {
        /// Why no refresh helps.
        reason: String,
    },
}

/// What a session is doing, as [`Status::state`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Nobody has logged in.
    NoSession,
    /// Tokens held; nothing under way.
    Ready,
    /// Writing the in-flight marker or waiting for the token endpoint.
    Refreshing,
    /// Writing new tokens (or retrying that write after a failure).
    Saving,
    /// Re-reading the state file after `invalid_grant`.
    Checking,
    /// Another process holds the refresh lease.
    WaitingForOtherProcess,
    /// A refresh failed; waiting to retry.
    Backoff,
    /// A login is needed.
    ReauthRequired,
}

impl Phase {
    /// The phase as one snake_case word (`ready`, `backoff`, …), as status output shows it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Phase::NoSession => "no_session",
            Phase::Ready => "ready",
            Phase::Refreshing => "refreshing",
            Phase::Saving => "saving",
            Phase::Checking => "checking",
            Phase::WaitingForOtherProcess => "waiting_for_other_process",
            Phase::Backoff => "backoff",
            Phase::ReauthRequired => "reauth_required",
        }
    }
}

impl core::fmt::Display for Phase {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A summary for status displays (`latchkey token status`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// What the session is doing.
    pub state: Phase,
    /// Whether a usable access token is held now.
    pub token_valid: bool,
    /// When the access token expires.
    pub access_expires_at: Option<u64>,
    /// Whether a refresh token is held.
    pub has_refresh_token: bool,
    /// When the refresh token was received.
    pub refresh_issued_at: Option<u64>,
    /// When the refresh token expires, if known.
    pub refresh_expires_at: Option<u64>,
    /// When the user logged in.
    pub session_started_at: Option<u64>,
    /// When tokens were last refreshed.
    pub last_refresh_at: Option<u64>,
    /// When the session will next act on its own (refresh, retry), if scheduled.
    pub next_action_at: Option<u64>,
    /// Consecutive failed refreshes.
    pub failures: u32,
    /// The last failure, if the last refresh failed.
    pub last_error: Option<String>,
    /// Why a login is needed, if one is.
    pub reauth_reason: Option<String>,
    /// Token generation.
    pub generation: u64,
    /// Server clock minus local clock, seconds.
    pub clock_skew: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Created,
    Refreshed {
        rotated: bool,
        forced: bool,
    },
    /// A rotated refresh token kept from an answer that was otherwise unusable (the error
    /// is in `last_error`): once written, the session backs off and retries with it.
    Salvaged,
    Marker,
    Reauth,
}

#[derive(Debug)]
enum State {
    /// No tokens.
    NoSession,
    /// Tokens held; nothing under way.
    Idle,
    /// Writing the in-flight marker before sending the refresh.
    Marking { reason: RefreshReason },
    /// The refresh request is out.
    Refreshing {
        request: RequestId,
        reason: RefreshReason,
        deadline: u64,
        used: Option<Secret>,
    },
    /// Writing new tokens; they are handed out once the write is acknowledged.
    Committing,
    /// After `invalid_grant`: waiting for the driver to re-read the state file.
    Reloading {
        used: Option<Secret>,
        error: TokenError,
    },
    /// Another process holds the refresh lease until `lease_end`.
    SiblingRefreshing {
        lease_end: u64,
        next_check: u64,
        reload_asked: bool,
    },
    /// A refresh failed; the next attempt is at `until`.
    Backoff { until: u64 },
    /// Writing new tokens failed; retry the same write at `until`.
    CommitRetry { until: u64 },
    /// A login is needed.
    ReauthRequired { reason: String },
}

/// The token lifecycle state machine. See the [module docs](self).
#[derive(Debug)]
pub struct TokenSession {
    profile: Profile,
    config: SessionConfig,
    instance: u64,
    state: State,
    /// The last snapshot known to be on disk (acknowledged), which is what is served.
    current: Option<Snapshot>,
    /// The write under way and what it is for.
    writing: Option<(PersistId, Snapshot, Outcome)>,
    events: VecDeque<Event>,
    jitter: Jitter,
    next_id: u64,
    failures: u32,
    last_error: Option<TokenError>,
    refresh_at: Option<u64>,
    /// When the tokens' stamps were found ahead of the clock ([`Self::stamped_ahead`]): a
    /// refresh is due then, whatever the (late) schedule says.
    restamp_at: Option<u64>,
    demand_at: Option<u64>,
    /// The generation obtained by a refresh forced by a 401.
    forced_generation: Option<u64>,
    reauth_soon_sent: bool,
    /// The latest `now` handed in: a smaller one means the clock was set back, and the
    /// pending deadlines move back by as much ([`Self::observe_clock`]).
    latest_now: u64,
    /// While a login is required: when the state file is next re-read for one made by
    /// another process.
    reauth_recheck_at: u64,
    /// The refresh request given up at its deadline, and the refresh token it carried: its
    /// answer may still come, holding the only copy of a rotated refresh token.
    abandoned: Option<(RequestId, Option<Secret>)>,
}

/// Seconds between re-reads of the state file while a login is required.
pub const REAUTH_RECHECK: u64 = 60;

impl TokenSession {
    /// A session with no tokens yet; feed it a login with [`TokenSession::handle_login`].
    ///
    /// `seed` comes from the OS random source in drivers (a fixed value in tests); it seeds
    /// the jitter and the instance id that marks this process's refresh leases.
    #[must_use]
    pub fn new(profile: Profile, config: SessionConfig, seed: u64) -> Self {
        let mut jitter = Jitter::new(seed);
        let instance = jitter.next();
        TokenSession {
            profile,
            config,
            instance,
            state: State::NoSession,
            current: None,
            writing: None,
            events: VecDeque::new(),
            jitter,
            next_id: 1,
            failures: 0,
            last_error: None,
            refresh_at: None,
            restamp_at: None,
            demand_at: None,
            forced_generation: None,
            reauth_soon_sent: false,
            latest_now: 0,
            reauth_recheck_at: 0,
            abandoned: None,
        }
    }

    /// A session resumed from a persisted snapshot at time `now`.
    ///
    /// A snapshot marked "reauth required" stays so (one [`Event::ReauthRequired`]). A
    /// snapshot marked "refresh in flight" means the refresh token may have been spent by a
    /// process that died: the session waits for the marker's lease to end (another process
    /// may still be refreshing), then refreshes at once to find out; if the server refuses,
    /// the state file is re-read before a login is asked for.
    ///
    /// # Errors
    /// [`SnapshotError::Provider`] when the snapshot belongs to another provider,
    /// [`SnapshotError::Version`] for an unknown version.
    pub fn restore(
        profile: Profile,
        config: SessionConfig,
        seed: u64,
        snapshot: Snapshot,
        now: u64,
    ) -> Result<Self, SnapshotError> {
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version {
                found: snapshot.version,
            });
        }
        if snapshot.provider != profile.name {
            return Err(SnapshotError::Provider {
                expected: profile.name.clone(),
                found: snapshot.provider,
            });
        }
        let mut s = TokenSession::new(profile, config, seed);
        s.latest_now = now;
        let reauth = snapshot.reauth_required.clone();
        let in_flight = snapshot.refresh_in_flight.clone();
        s.current = Some(snapshot);
        if let Some(reason) = reauth {
            s.enter_reauth(reason, false);
            return Ok(s);
        }
        s.state = State::Idle;
        s.schedule();
        s.check_stamps(now);
        if let Some(f) = in_flight {
            let lease_end = lease_end(&f, now, s.config.request_timeout);
            if now < lease_end {
                s.state = State::SiblingRefreshing {
                    lease_end,
                    next_check: now,
                    reload_asked: false,
                };
            } else {
                s.start_refresh(now, RefreshReason::Recovery);
            }
        }
        Ok(s)
    }

    /// The provider profile.
    #[must_use]
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The snapshot last acknowledged as persisted.
    #[must_use]
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.current.as_ref()
    }

    /// Tokens from a login (authorization code, device flow or client credentials) or an
    /// import. They replace any current session and are handed out once persisted
    /// ([`Event::Persist`], then [`Event::TokenCreated`]). The access token counts as issued
    /// at `tokens.received_at` (never after `now`): an imported token keeps its age.
    pub fn handle_login(&mut self, now: u64, tokens: TokenResponse, grant: Grant) {
        let generation = self.current.as_ref().map_or(0, |c| c.generation) + 1;
        let revision = self.current.as_ref().map_or(0, |c| c.revision);
        let refresh_expires_at = tokens.refresh_expires_at.or_else(|| {
            self.config
                .refresh_token_lifetime
                .filter(|_| tokens.refresh_token.is_some())
                .map(|l| now.saturating_add(l))
        });
        let snap = Snapshot {
            version: SNAPSHOT_VERSION,
            provider: self.profile.name.clone(),
            revision,
            generation,
            grant,
            access_token: Some(tokens.access_token),
            access_expires_at: tokens.expires_at,
            // A login's tokens were received now; imported ones may be older.
            access_issued_at: tokens.received_at.min(now),
            access_not_before: tokens.not_before,
            refresh_issued_at: tokens.refresh_token.as_ref().map(|_| now),
            refresh_token: tokens.refresh_token,
            refresh_expires_at,
            id_token: tokens.id_token,
            scope: tokens.scope,
            session_started_at: now,
            last_refresh_at: None,
            clock_skew: tokens.clock_skew,
            refresh_in_flight: None,
            reauth_required: None,
        };
        self.failures = 0;
        self.last_error = None;
        self.forced_generation = None;
        self.reauth_soon_sent = false;
        self.state = State::Committing;
        self.persist(snap, None, Outcome::Created);
    }

    /// A token for a request at `now`. Starts a refresh when the current token is expired
    /// and none is under way (single flight: every caller during a refresh gets
    /// [`TokenAnswer::Wait`]).
    pub fn access_token(&mut self, now: u64) -> TokenAnswer<'_> {
        self.observe_clock(now);
        if self.usable(now) {
            return self.ready_answer();
        }
        match &self.state {
            State::NoSession => TokenAnswer::NoSession,
            State::ReauthRequired { .. } => self.answer_while_refreshing(),
            State::Idle => {
                let floor = self.floor(now);
                if now >= floor {
                    self.start_refresh(now, RefreshReason::Demand);
                } else {
                    self.demand_at = Some(floor);
                }
                self.answer_while_refreshing()
            }
            State::Backoff { until } | State::CommitRetry { until } => {
                let until = *until;
                if now >= until {
                    self.handle_timeout(now);
                    return self.answer_while_refreshing();
                }
                TokenAnswer::Unavailable {
                    reason: self
                        .last_error
                        .as_ref()
                        .map_or_else(|| "refresh failed".to_owned(), ToString::to_string),
                    retry_at: Some(until),
                }
            }
            State::Marking { .. }
            | State::Refreshing { .. }
            | State::Committing
            | State::Reloading { .. }
            | State::SiblingRefreshing { .. } => TokenAnswer::Wait,
        }
    }

    /// The current token as an answer (called once [`Self::usable`] said yes).
    fn ready_answer(&self) -> TokenAnswer<'_> {
        match &self.current {
            Some(Snapshot {
                access_token: Some(token),
                generation,
                access_expires_at,
                ..
            }) => TokenAnswer::Ready {
                token,
                generation: *generation,
                expires_at: *access_expires_at,
            },
            _ => TokenAnswer::NoSession,
        }
    }

    fn answer_while_refreshing(&self) -> TokenAnswer<'_> {
        match &self.state {
            State::ReauthRequired { reason } => TokenAnswer::ReauthRequired { reason },
            State::NoSession => TokenAnswer::NoSession,
            _ => TokenAnswer::Wait,
        }
    }

    /// The resource API answered 401 to a request made with the token of `generation`.
    ///
    /// Forces one refresh unless a newer token exists ([`Unauthorized::RetryNow`]), a refresh
    /// is already under way ([`Unauthorized::Wait`]), or the refused token was itself just
    /// obtained — within [`SessionConfig::unauthorized_cooldown`], or by a refresh that a
    /// previous 401 forced ([`Unauthorized::GiveUp`]). Callers retry a request at most once.
    pub fn handle_unauthorized(&mut self, now: u64, generation: u64) -> Unauthorized {
        let Some(current) = &self.current else {
            return Unauthorized::GiveUp {
                reason: "no session".to_owned(),
            };
        };
        if generation < current.generation {
            return Unauthorized::RetryNow;
        }
        match &self.state {
            State::Marking { .. }
            | State::Refreshing { .. }
            | State::Committing
            | State::Reloading { .. }
            | State::SiblingRefreshing { .. } => return Unauthorized::Wait,
            State::ReauthRequired { reason } => {
                return Unauthorized::GiveUp {
                    reason: reason.clone(),
                };
            }
            State::NoSession => {
                return Unauthorized::GiveUp {
                    reason: "no session".to_owned(),
                };
            }
            State::Backoff { .. } | State::CommitRetry { .. } => {
                return Unauthorized::GiveUp {
                    reason: self.last_error.as_ref().map_or_else(
                        || "token refresh is failing".to_owned(),
                        |e| format!("token refresh is failing: {e}"),
                    ),
                };
            }
            State::Idle => {}
        }
        if self.forced_generation == Some(current.generation) {
            return Unauthorized::GiveUp {
                reason: "the token obtained after a 401 was refused too; not refreshing again"
                    .to_owned(),
            };
        }
        let obtained = current.last_refresh_at.unwrap_or(current.access_issued_at);
        // Short-lived tokens get a proportionally short cooldown (a quarter of the lifetime),
        // or a 401 soon after a refresh could never be answered with one.
        let cooldown = current
            .access_expires_at
            .map(|exp| exp.saturating_sub(obtained) / 4)
            .map_or(self.config.unauthorized_cooldown, |quarter| {
                self.config.unauthorized_cooldown.min(quarter)
            });
        // A token "obtained" after `now` was stamped while the clock ran ahead: its age is
        // unknown, so the 401 gets its refresh.
        if obtained <= now && now < obtained.saturating_add(cooldown) {
            return Unauthorized::GiveUp {
                reason: format!(
                    "the token was obtained {} s ago and is refused; not refreshing again",
                    now.saturating_sub(obtained)
                ),
            };
        }
        self.start_refresh(now, RefreshReason::Unauthorized);
        match self.state {
            State::ReauthRequired { ref reason } => Unauthorized::GiveUp {
                reason: reason.clone(),
            },
            _ => Unauthorized::Wait,
        }
    }

    /// Changes how the running session refreshes ahead of expiry (an administrator's
    /// setting, e.g. the U-tec gateway's `auto_refresh_enabled` and `refresh_buffer_minutes`):
    /// with `keep_fresh` off it refreshes only on demand, on a 401 or to keep an idle refresh
    /// token alive; `margin` replaces the margin policy. The proactive refresh point of the
    /// current token is recomputed at once ([`poll_timeout`](Self::poll_timeout) tells the
    /// driver); a refresh under way is not affected.
    pub fn set_refresh_policy(&mut self, keep_fresh: bool, margin: MarginPolicy) {
        self.config.keep_fresh = keep_fresh;
        self.config.margin = margin;
        self.schedule();
    }

    /// Refresh now, whatever the schedule (`latchkey token refresh`). A session that needs a
    /// login is tried once more. No-op while a refresh is under way.
    pub fn force_refresh(&mut self, now: u64) {
        match self.state {
            State::Idle | State::Backoff { .. } | State::ReauthRequired { .. }
                if self.current.is_some() =>
            {
                self.start_refresh(now, RefreshReason::Manual);
            }
            _ => {}
        }
    }

    /// The answer to [`Event::SendRequest`] `id`: a response or a transport error. Answers
    /// to requests the session no longer waits for are ignored.
    pub fn handle_response(
        &mut self,
        now: u64,
        id: RequestId,
        result: Result<HttpResponse, TransportError>,
    ) {
        let (used, late) = match &self.state {
            State::Refreshing { request, used, .. } if *request == id => (used.clone(), false),
            _ => match self.late_answer_usable(id) {
                Some(used) => (used, true),
                None => return,
            },
        };
        self.abandoned = None;
        let (parsed, salvaged) = match result {
            Ok(resp) => {
                let parsed = response::parse_token_response(&resp, now, &self.profile.response);
                // A success answer the strict reading refuses may still carry a rotated
                // refresh token: the server has spent the one we sent, so that new one is
                // the session's only way on and must not be dropped with the answer.
                let salvaged = match &parsed {
                    Err(TokenError::Malformed { .. }) => {
                        response::rotated_refresh_token(&resp, &self.profile.response)
                            .filter(|rt| Some(rt) != used.as_ref())
                    }
                    _ => None,
                };
                (parsed, salvaged)
            }
            Err(e) => (Err(TokenError::Transport(e)), None),
        };
        match (parsed, salvaged) {
            (Ok(tokens), _) => self.refreshed(now, tokens, used.as_ref()),
            (Err(error), Some(refresh_token)) => self.salvage(now, refresh_token, error),
            // The attempt was counted as failed when it was given up.
            (Err(_), None) if late => {}
            (Err(error), None) => self.refresh_failed(now, error, used),
        }
    }

    /// The refresh token an abandoned request (given up at its deadline) carried, when its
    /// late answer can still be taken: nothing else is under way (no request, no write, no
    /// login needed) and the session still holds that refresh token, so the answer's tokens
    /// (a rotated refresh token above all) are the newest there are.
    fn late_answer_usable(&self, id: RequestId) -> Option<Option<Secret>> {
        let (abandoned, used) = self.abandoned.as_ref()?;
        let quiet =
            matches!(self.state, State::Idle | State::Backoff { .. }) && self.writing.is_none();
        let current = self.current.as_ref()?;
        (*abandoned == id && quiet && current.refresh_token == *used).then(|| used.clone())
    }

    /// [`Event::Persist`] `id` was written.
    pub fn handle_persisted(&mut self, now: u64, id: PersistId) {
        let Some((wid, snap, outcome)) = self.writing.take() else {
            return;
        };
        if wid != id {
            self.writing = Some((wid, snap, outcome));
            return;
        }
        let generation = snap.generation;
        let expires_at = snap.access_expires_at;
        self.current = Some(snap);
        match outcome {
            Outcome::Marker => {
                if let State::Marking { reason } = self.state {
                    self.send_refresh(now, reason);
                }
            }
            Outcome::Created => {
                self.state = State::Idle;
                self.events.push_back(Event::TokenCreated { expires_at });
                self.after_new_tokens(now);
            }
            Outcome::Refreshed { rotated, forced } => {
                self.state = State::Idle;
                self.forced_generation = forced.then_some(generation);
                self.events.push_back(Event::TokenRefreshed {
                    expires_at,
                    rotated,
                    source: TokenSource::Refresh,
                });
                self.after_new_tokens(now);
            }
            Outcome::Salvaged => {
                let error = self.last_error.take().unwrap_or(TokenError::Malformed {
                    reason: "unusable token response".to_owned(),
                });
                self.backoff(now, error);
            }
            Outcome::Reauth => {}
        }
    }

    /// Writing [`Event::Persist`] `id` failed (disk full, permissions). A marker that cannot
    /// be written stops the refresh (a rotated token could not be saved either) and backs
    /// off; new tokens that cannot be written are kept in memory and the write is retried —
    /// they are not handed out until it succeeds.
    pub fn handle_persist_failed(&mut self, now: u64, id: PersistId, reason: &str) {
        let Some((wid, snap, outcome)) = self.writing.take() else {
            return;
        };
        if wid != id {
            self.writing = Some((wid, snap, outcome));
            return;
        }
        let error = TokenError::Storage {
            reason: reason.to_owned(),
        };
        match outcome {
            Outcome::Marker => self.backoff(now, error),
            Outcome::Created | Outcome::Refreshed { .. } | Outcome::Salvaged => {
                self.failures = self.failures.saturating_add(1);
                let r = self.jitter.next();
                let until = now.saturating_add(self.config.backoff.delay(self.failures, r, None));
                self.writing = Some((wid, snap, outcome));
                self.state = State::CommitRetry { until };
                self.events.push_back(Event::RefreshFailed {
                    error: error.clone(),
                    failures: self.failures,
                    retry_at: until,
                });
                self.last_error = Some(error);
            }
            Outcome::Reauth => {}
        }
    }

    /// [`Event::Persist`] `id` was not written because the state file holds another revision:
    /// another process wrote it. `on_disk` is what the file holds now (`None` if it is gone).
    pub fn handle_persist_conflict(&mut self, now: u64, id: PersistId, on_disk: Option<Snapshot>) {
        let Some((wid, snap, outcome)) = self.writing.take() else {
            return;
        };
        if wid != id {
            self.writing = Some((wid, snap, outcome));
            return;
        }
        match outcome {
            Outcome::Created => {
                // A login always wins.
                self.persist(snap, None, outcome);
            }
            Outcome::Refreshed { .. } | Outcome::Salvaged => {
                match on_disk {
                    // Someone logged in meanwhile (`latchkey login` in another process): the
                    // new login wins over tokens refreshed for the session it replaced.
                    Some(disk) if self.is_login_made_elsewhere(&disk, &snap) => {
                        self.adopt(now, disk);
                    }
                    // These tokens were just issued by the server for our refresh token:
                    // they are the newest of this session; write them over what is there.
                    on_disk => {
                        let expected = on_disk.as_ref().map(|d| d.revision);
                        self.persist(snap, expected, outcome);
                    }
                }
            }
            Outcome::Marker | Outcome::Reauth => {
                let reason = match self.state {
                    State::Marking { reason } => Some(reason),
                    _ => None,
                };
                self.absorb_disk(now, on_disk, reason);
            }
        }
    }

    /// The answer to [`Event::ReloadSnapshot`]: what the state file holds (`None` if absent
    /// or unreadable).
    pub fn handle_reloaded(&mut self, now: u64, on_disk: Option<Snapshot>) {
        match &self.state {
            State::Reloading { used, error } => {
                let used = used.clone();
                let error = error.clone();
                let sibling_rotated = on_disk.as_ref().is_some_and(|d| {
                    d.reauth_required.is_none()
                        && d.refresh_token.is_some()
                        && d.refresh_token != used
                        && d.generation >= self.current.as_ref().map_or(0, |c| c.generation)
                });
                if sibling_rotated {
                    self.adopt(now, on_disk.expect("checked above"));
                } else {
                    self.enter_reauth(error.to_string(), true);
                }
            }
            State::SiblingRefreshing { lease_end, .. } => {
                let lease_end = *lease_end;
                self.absorb_disk_waiting(now, on_disk, lease_end);
            }
            State::ReauthRequired { .. } => {
                if let Some(login) = on_disk.filter(|d| self.is_newer_login(d)) {
                    self.adopt(now, login);
                }
            }
            _ => {}
        }
    }

    /// Whether `disk` holds a login another process made since the session of `ours` (a
    /// snapshot this session is writing) began: another session start, or — a login in
    /// the very second ours began — never refreshed, no refresh under way, and not the
    /// refresh token this session held.
    fn is_login_made_elsewhere(&self, disk: &Snapshot, ours: &Snapshot) -> bool {
        let another_session = disk.session_started_at != ours.session_started_at
            || (disk.last_refresh_at.is_none()
                && disk.refresh_in_flight.is_none()
                && self
                    .current
                    .as_ref()
                    .is_some_and(|c| disk.refresh_token != c.refresh_token));
        another_session && self.is_newer_login(disk)
    }

    /// Whether `disk` holds a login other than the session this process holds: usable tokens
    /// of this provider, not marked "reauth required", and another session (started at
    /// another time, or with another refresh token than the one this process holds).
    fn is_newer_login(&self, disk: &Snapshot) -> bool {
        let usable = disk.provider == self.profile.name
            && disk.reauth_required.is_none()
            && (disk.refresh_token.is_some() || disk.access_token.is_some());
        usable
            && self.current.as_ref().is_none_or(|c| {
                disk.session_started_at != c.session_started_at
                    || disk.refresh_token != c.refresh_token
            })
    }

    /// A deadline passed (early or repeated calls are harmless).
    pub fn handle_timeout(&mut self, now: u64) {
        self.observe_clock(now);
        match &mut self.state {
            State::Idle => {
                self.check_reauth_soon(now);
                // The clock may have been set back since the tokens were stamped.
                if self.restamp_at.is_none() {
                    self.check_stamps(now);
                }
                if self.demand_at.is_some_and(|t| now >= t) {
                    self.start_refresh(now, RefreshReason::Demand);
                } else if self.config.keep_fresh && self.refresh_at.is_some_and(|t| now >= t) {
                    self.start_refresh(now, RefreshReason::Proactive);
                } else if self.restamp_at.is_some_and(|t| now >= t) {
                    let reason = if self.config.keep_fresh {
                        RefreshReason::Proactive
                    } else {
                        RefreshReason::KeepAlive
                    };
                    self.start_refresh(now, reason);
                } else if self.keepalive_at().is_some_and(|t| now >= t) {
                    self.start_refresh(now, RefreshReason::KeepAlive);
                }
            }
            State::Refreshing {
                deadline,
                used,
                request,
                ..
            } => {
                if now >= *deadline {
                    let used = used.clone();
                    let id = *request;
                    self.events.push_back(Event::CancelRequest { id });
                    self.abandoned = Some((id, used.clone()));
                    self.refresh_failed(now, TokenError::Timeout, used);
                }
            }
            State::Backoff { until } => {
                if now >= *until {
                    self.start_refresh(now, RefreshReason::Demand);
                }
            }
            State::CommitRetry { until } => {
                if now >= *until {
                    if let Some((_, snap, outcome)) = self.writing.take() {
                        self.state = State::Committing;
                        let expected = Some(self.disk_revision());
                        self.persist(snap, expected, outcome);
                    } else {
                        self.state = State::Idle;
                    }
                }
            }
            State::SiblingRefreshing {
                lease_end,
                next_check,
                reload_asked,
            } => {
                if now >= *lease_end {
                    self.start_refresh(now, RefreshReason::Recovery);
                } else if now >= *next_check && !*reload_asked {
                    *reload_asked = true;
                    self.events.push_back(Event::ReloadSnapshot);
                }
            }
            State::ReauthRequired { .. } => {
                // Has another process logged in? (Not while our own mark is being written.)
                if now >= self.reauth_recheck_at && self.writing.is_none() {
                    self.reauth_recheck_at = now.saturating_add(REAUTH_RECHECK);
                    self.events.push_back(Event::ReloadSnapshot);
                }
            }
            State::NoSession
            | State::Marking { .. }
            | State::Committing
            | State::Reloading { .. } => {}
        }
    }

    /// The next thing the application or driver must know or do.
    ///
    /// Any `handle_*` call and [`TokenSession::access_token`] can queue events.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`TokenSession::handle_timeout`] is next due, if ever.
    ///
    /// Changes after every `handle_*` call and after [`TokenSession::access_token`].
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        match &self.state {
            State::Idle => {
                let mut t = self.demand_at;
                if self.config.keep_fresh {
                    t = min_opt(t, self.refresh_at);
                }
                t = min_opt(t, self.keepalive_at());
                t = min_opt(t, self.restamp_at);
                if !self.reauth_soon_sent {
                    t = min_opt(t, self.reauth_soon_at());
                }
                t
            }
            State::Refreshing { deadline, .. } => Some(*deadline),
            State::Backoff { until } | State::CommitRetry { until } => Some(*until),
            State::SiblingRefreshing {
                lease_end,
                next_check,
                reload_asked,
            } => Some(if *reload_asked {
                *lease_end
            } else {
                (*next_check).min(*lease_end)
            }),
            // Not while the mark is being written: its acknowledgement comes first.
            State::ReauthRequired { .. } => {
                self.writing.is_none().then_some(self.reauth_recheck_at)
            }
            State::NoSession
            | State::Marking { .. }
            | State::Committing
            | State::Reloading { .. } => None,
        }
    }

    /// Whether stopping now would leave work half done: a refresh request sent and not yet
    /// answered (its answer may hold the only copy of a rotated refresh token), new tokens
    /// not yet saved, a refresh marker or any other write not yet acknowledged. A driver
    /// shutting down gracefully performs events until this is false, within its own limit.
    #[must_use]
    pub fn is_busy(&self) -> bool {
        self.writing.is_some()
            || matches!(
                self.state,
                State::Marking { .. }
                    | State::Refreshing { .. }
                    | State::Committing
                    | State::CommitRetry { .. }
            )
    }

    /// A summary at `now`.
    #[must_use]
    pub fn status(&self, now: u64) -> Status {
        let c = self.current.as_ref();
        Status {
            state: match self.state {
                State::NoSession => Phase::NoSession,
                State::Idle => Phase::Ready,
                State::Marking { .. } | State::Refreshing { .. } => Phase::Refreshing,
                State::Committing | State::CommitRetry { .. } => Phase::Saving,
                State::Reloading { .. } => Phase::Checking,
                State::SiblingRefreshing { .. } => Phase::WaitingForOtherProcess,
                State::Backoff { .. } => Phase::Backoff,
                State::ReauthRequired { .. } => Phase::ReauthRequired,
            },
            token_valid: self.usable(now),
            access_expires_at: c.and_then(|c| c.access_expires_at),
            has_refresh_token: c.is_some_and(|c| c.refresh_token.is_some()),
            refresh_issued_at: c.and_then(|c| c.refresh_issued_at),
            refresh_expires_at: c.and_then(|c| c.refresh_expires_at),
            session_started_at: c.map(|c| c.session_started_at),
            last_refresh_at: c.and_then(|c| c.last_refresh_at),
            next_action_at: self.poll_timeout(),
            failures: self.failures,
            last_error: self.last_error.as_ref().map(ToString::to_string),
            reauth_reason: match &self.state {
                State::ReauthRequired { reason } => Some(reason.clone()),
                _ => None,
            },
            generation: c.map_or(0, |c| c.generation),
            clock_skew: c.map_or(0, |c| c.clock_skew),
        }
    }

    // --- internals -------------------------------------------------------------------

    /// Notices a clock set back: every pending deadline (a request's, a backoff's, a
    /// write retry's, a sibling's lease) was computed on the old clock, so it moves back by
    /// as much as the clock did, and the wait it stood for is kept, not lengthened by the
    /// jump. (The tokens' own stamps are checked in `Idle`, see [`Self::stamped_ahead`].)
    fn observe_clock(&mut self, now: u64) {
        let back = self.latest_now.saturating_sub(now);
        self.latest_now = now;
        if back == 0 {
            return;
        }
        let earlier = |t: &mut u64| *t = t.saturating_sub(back);
        match &mut self.state {
            State::Refreshing { deadline, .. } => earlier(deadline),
            State::Backoff { until } | State::CommitRetry { until } => earlier(until),
            State::SiblingRefreshing {
                lease_end,
                next_check,
                ..
            } => {
                earlier(lease_end);
                earlier(next_check);
            }
            State::ReauthRequired { .. } => earlier(&mut self.reauth_recheck_at),
            State::NoSession
            | State::Idle
            | State::Marking { .. }
            | State::Committing
            | State::Reloading { .. } => {}
        }
    }

    /// Whether the current access token can be handed out at `now`.
    fn usable(&self, now: u64) -> bool {
        let Some(c) = &self.current else {
            return false;
        };
        if c.access_token.is_none() {
            return false;
        }
        if self.forced_generation != Some(c.generation)
            && matches!(
                self.state,
                State::Refreshing {
                    reason: RefreshReason::Unauthorized,
                    ..
                } | State::Marking {
                    reason: RefreshReason::Unauthorized
                }
            )
        {
            // The server refused this token; do not hand it out again.
            return false;
        }
        if Self::can_refresh(c) && Self::stamped_ahead(c, now) {
            return false;
        }
        match c.access_expires_at {
            None => true,
            Some(exp) => {
                let lifetime = exp.saturating_sub(c.access_issued_at);
                let guard = self.config.min_remaining.min(lifetime / 4);
                now.saturating_add(guard) < exp
            }
        }
    }

    /// Whether `c`'s stamps (the access token's issue time, the last refresh) lie more than
    /// [`STAMP_TOLERANCE`] after `now`: the clock has been set back since, so the stored
    /// expiry (and the proactive refresh point computed from it) is late by an unknown amount. Such a token is refreshed at once,
    /// which stamps the new one with the corrected clock ([`Self::floor`] ignores the future
    /// `last_refresh_at`, so nothing holds that refresh back).
    fn stamped_ahead(c: &Snapshot, now: u64) -> bool {
        c.access_issued_at.max(c.last_refresh_at.unwrap_or(0)) > now.saturating_add(STAMP_TOLERANCE)
    }

    /// Sets [`Self::restamp_at`] when the current tokens were stamped ahead of `now` and can
    /// be refreshed: their expiry, proactive refresh point and keep-alive point are all late
    /// by the unknown amount the clock was set back, so the refresh is due at once.
    fn check_stamps(&mut self, now: u64) {
        self.restamp_at = self
            .current
            .as_ref()
            .and_then(|c| (Self::can_refresh(c) && Self::stamped_ahead(c, now)).then_some(now));
    }

    /// Whether `c` can be refreshed without a login. A token that cannot is handed out as
    /// long as it looks valid, stamped ahead or not: refusing it would only end the session
    /// early (a 401 still asks for the login).
    fn can_refresh(c: &Snapshot) -> bool {
        c.grant != Grant::RefreshToken || c.refresh_token.is_some()
    }

    /// The earliest next refresh: `min_refresh_interval` after the last one. A last refresh
    /// after `now` (written while the clock ran ahead, then corrected) says nothing about
    /// the interval and does not hold a refresh back.
    fn floor(&self, now: u64) -> u64 {
        self.current
            .as_ref()
            .and_then(|c| c.last_refresh_at)
            .filter(|&t| t <= now)
            .map_or(0, |t| t.saturating_add(self.config.min_refresh_interval))
    }

    fn disk_revision(&self) -> u64 {
        self.current.as_ref().map_or(0, |c| c.revision)
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn persist(&mut self, mut snap: Snapshot, expected: Option<u64>, outcome: Outcome) {
        let base = expected
            .unwrap_or_else(|| self.disk_revision())
            .max(self.disk_revision());
        let id = PersistId(self.next_id());
        // An unconditional write (a login) was based on a revision read some time ago: other
        // processes may have written since (a refresh marker, its result), so `base + 1` may
        // be a revision they hold and expect, and their compare-and-swap would then take the
        // login for their own write and replace it. A jump drawn from this instance's random
        // id makes that practically impossible (under 2^-32 per write in between).
        let jump = match expected {
            Some(_) => 0,
            None => unconditional_jump(self.instance, id.0),
        };
        snap.revision = base.saturating_add(1).saturating_add(jump);
        self.writing = Some((id, snap.clone(), outcome));
        self.events.push_back(Event::Persist {
            id,
            expected_revision: expected,
            snapshot: Box::new(snap),
        });
    }

    /// Starts a refresh: writes the in-flight marker first.
    fn start_refresh(&mut self, now: u64, reason: RefreshReason) {
        self.demand_at = None;
        self.restamp_at = None;
        let Some(current) = &self.current else {
            self.state = State::NoSession;
            return;
        };
        if current.grant == Grant::RefreshToken && current.refresh_token.is_none() {
            self.enter_reauth(
                "the access token expired and the provider gave no refresh token".to_owned(),
                true,
            );
            return;
        }
        let mut marked = current.clone();
        marked.refresh_in_flight = Some(InFlight {
            started_at: now,
            instance: self.instance,
            refresh_token: current
                .refresh_token
                .as_ref()
                .map(Secret::fingerprint)
                .unwrap_or_default(),
            timeout: Some(self.config.request_timeout),
        });
        marked.reauth_required = None;
        let expected = Some(current.revision);
        self.state = State::Marking { reason };
        self.persist(marked, expected, Outcome::Marker);
    }

    /// The marker is on disk: send the request.
    fn send_refresh(&mut self, now: u64, reason: RefreshReason) {
        let Some(current) = &self.current else {
            return;
        };
        let built = match current.grant {
            Grant::RefreshToken => match &current.refresh_token {
                Some(rt) => request::refresh(&self.profile, rt),
                None => Err(ProfileError::Missing {
                    profile: self.profile.name.clone(),
                    field: "refresh_token",
                }),
            },
            Grant::ClientCredentials => request::client_credentials(&self.profile, &[]),
        };
        let used = current.refresh_token.clone();
        match built {
            Ok(req) => {
                // A new request supersedes any answer still owed to an abandoned one.
                self.abandoned = None;
                let id = RequestId(self.next_id());
                self.state = State::Refreshing {
                    request: id,
                    reason,
                    deadline: now.saturating_add(self.config.request_timeout),
                    used,
                };
                self.events
                    .push_back(Event::SendRequest { id, request: req });
            }
            Err(e) => self.enter_reauth(e.to_string(), true),
        }
    }

    fn refreshed(&mut self, now: u64, tokens: TokenResponse, used: Option<&Secret>) {
        let Some(current) = &self.current else {
            return;
        };
        let forced = matches!(
            self.state,
            State::Refreshing {
                reason: RefreshReason::Unauthorized,
                ..
            }
        );
        let rotated = tokens.refresh_token.is_some() && tokens.refresh_token.as_ref() != used;
        let mut next = current.clone();
        next.generation = current.generation.saturating_add(1);
        next.access_token = Some(tokens.access_token);
        next.access_expires_at = tokens.expires_at;
        next.access_issued_at = now;
        next.access_not_before = tokens.not_before;
        if let Some(rt) = tokens.refresh_token {
            if rotated {
                next.refresh_issued_at = Some(now);
                next.refresh_expires_at = tokens
                    .refresh_expires_at
                    .or_else(|| self.rotated_refresh_expiry(now, current.refresh_expires_at));
            } else if tokens.refresh_expires_at.is_some() {
                next.refresh_expires_at = tokens.refresh_expires_at;
            }
            next.refresh_token = Some(rt);
        }
        if tokens.id_token.is_some() {
            next.id_token = tokens.id_token;
        }
        if tokens.scope.is_some() {
            next.scope = tokens.scope;
        }
        next.last_refresh_at = Some(now);
        next.clock_skew = tokens.clock_skew;
        next.refresh_in_flight = None;
        next.reauth_required = None;
        self.failures = 0;
        self.last_error = None;
        self.state = State::Committing;
        let expected = Some(current.revision);
        self.persist(next, expected, Outcome::Refreshed { rotated, forced });
    }

    /// Keeps `refresh_token`, rotated in an answer that was otherwise unusable (`error`): it
    /// replaces the spent one in the state file (the access token stays as it was), then
    /// the session backs off as after any transient failure and retries with it.
    fn salvage(&mut self, now: u64, refresh_token: Secret, error: TokenError) {
        let Some(current) = &self.current else {
            return;
        };
        // The access token is the same, so the generation stays: nothing may take this for
        // a successful refresh (a forced refresh, a caller retrying after a 401).
        let mut next = current.clone();
        next.refresh_token = Some(refresh_token);
        next.refresh_issued_at = Some(now);
        next.refresh_expires_at = self.rotated_refresh_expiry(now, current.refresh_expires_at);
        next.last_refresh_at = Some(now);
        next.refresh_in_flight = None;
        self.last_error = Some(error);
        self.state = State::Committing;
        let expected = Some(current.revision);
        self.persist(next, expected, Outcome::Salvaged);
    }

    /// The expiry of a refresh token rotated at `now` whose answer did not state one: a
    /// sliding lifetime starts again, a fixed one keeps the `previous` expiry.
    fn rotated_refresh_expiry(&self, now: u64, previous: Option<u64>) -> Option<u64> {
        if self.config.refresh_token_sliding {
            self.config
                .refresh_token_lifetime
                .map(|l| now.saturating_add(l))
        } else {
            previous
        }
    }

    fn refresh_failed(&mut self, now: u64, error: TokenError, used: Option<Secret>) {
        match error.class() {
            ErrorClass::InvalidGrant => {
                self.state = State::Reloading { used, error };
                self.events.push_back(Event::ReloadSnapshot);
            }
            ErrorClass::Terminal => self.enter_reauth(error.to_string(), true),
            ErrorClass::Transient => self.backoff(now, error),
        }
    }

    fn backoff(&mut self, now: u64, error: TokenError) {
        self.failures = self.failures.saturating_add(1);
        let r = self.jitter.next();
        let delay = self
            .config
            .backoff
            .delay(self.failures, r, error.retry_after());
        let until = now.saturating_add(delay);
        self.state = State::Backoff { until };
        self.events.push_back(Event::RefreshFailed {
            error: error.clone(),
            failures: self.failures,
            retry_at: until,
        });
        self.last_error = Some(error);
    }

    fn enter_reauth(&mut self, reason: String, persist: bool) {
        if matches!(self.state, State::ReauthRequired { .. }) {
            return;
        }
        self.state = State::ReauthRequired {
            reason: reason.clone(),
        };
        self.reauth_recheck_at = self.latest_now.saturating_add(REAUTH_RECHECK);
        self.events.push_back(Event::ReauthRequired {
            reason: reason.clone(),
        });
        if persist && let Some(current) = &self.current {
            let mut snap = current.clone();
            snap.reauth_required = Some(reason);
            snap.refresh_in_flight = None;
            let expected = Some(current.revision);
            self.persist(snap, expected, Outcome::Reauth);
        }
    }

    /// Adopts tokens another process stored.
    fn adopt(&mut self, now: u64, snap: Snapshot) {
        let expires_at = snap.access_expires_at;
        let rotated = self.current.as_ref().map(|c| &c.refresh_token) != Some(&snap.refresh_token);
        self.current = Some(snap);
        self.writing = None;
        self.failures = 0;
        self.last_error = None;
        // Not the product of a refresh this session forced after a 401: a 401 on it may
        // start one, and the refused token is not handed out meanwhile.
        self.forced_generation = None;
        self.state = State::Idle;
        self.events.push_back(Event::TokenRefreshed {
            expires_at,
            rotated,
            source: TokenSource::Sibling,
        });
        self.after_new_tokens(now);
    }

    /// Another process wrote the state file while we wanted to (a marker conflict).
    fn absorb_disk(&mut self, now: u64, on_disk: Option<Snapshot>, wanted: Option<RefreshReason>) {
        let Some(disk) = on_disk.filter(|d| d.provider == self.profile.name) else {
            // The file is gone (logged out elsewhere) or foreign.
            self.current = None;
            self.state = State::NoSession;
            self.enter_reauth("the token state file was removed".to_owned(), false);
            return;
        };
        let ours = self.current.as_ref().map_or(0, |c| c.generation);
        if let Some(reason) = disk.reauth_required.clone() {
            self.current = Some(disk);
            self.state = State::Idle;
            self.enter_reauth(reason, false);
            return;
        }
        if let Some(f) = disk.refresh_in_flight.clone() {
            let lease_end = lease_end(&f, now, self.config.request_timeout);
            if f.instance != self.instance && now < lease_end {
                self.current = Some(disk);
                self.state = State::SiblingRefreshing {
                    lease_end,
                    next_check: now.saturating_add(self.config.sibling_poll),
                    reload_asked: false,
                };
                return;
            }
        }
        if disk.generation > ours {
            self.adopt(now, disk);
            return;
        }
        // Same tokens, another revision (a stale marker, say): take it and try again.
        self.current = Some(disk);
        self.state = State::Idle;
        if let Some(reason) = wanted {
            self.start_refresh(now, reason);
        } else {
            self.schedule();
            self.check_stamps(now);
        }
    }

    /// While another process holds the lease: adopt its result, keep waiting, or take over.
    fn absorb_disk_waiting(&mut self, now: u64, on_disk: Option<Snapshot>, lease_end: u64) {
        let ours = self.current.as_ref().map_or(0, |c| c.generation);
        match on_disk {
            Some(d) if d.provider == self.profile.name && d.reauth_required.is_some() => {
                let reason = d.reauth_required.clone().unwrap_or_default();
                self.current = Some(d);
                self.state = State::Idle;
                self.enter_reauth(reason, false);
            }
            Some(d)
                if d.provider == self.profile.name
                    && d.generation > ours
                    && d.refresh_in_flight.is_none() =>
            {
                self.adopt(now, d);
            }
            Some(d) if d.provider == self.profile.name => {
                // The same marker as before keeps the lease already computed (its start may
                // lie ahead of `now`, and re-deriving the end from it would slide the lease
                // forward at every look); a new marker gets its own.
                let known = self
                    .current
                    .as_ref()
                    .and_then(|c| c.refresh_in_flight.as_ref());
                let lease_end = match d.refresh_in_flight.as_ref() {
                    Some(f) if Some(f) == known => lease_end,
                    Some(f) => self::lease_end(f, now, self.config.request_timeout),
                    None => lease_end,
                };
                self.current = Some(d);
                self.wait_for_sibling_or_recover(now, lease_end);
            }
            _ => self.wait_for_sibling_or_recover(now, lease_end),
        }
    }

    /// Another instance's refresh is still running: wait (looking again every
    /// `sibling_poll`) until its lease ends, then recover by refreshing ourselves.
    fn wait_for_sibling_or_recover(&mut self, now: u64, lease_end: u64) {
        if now >= lease_end {
            self.state = State::Idle;
            self.start_refresh(now, RefreshReason::Recovery);
        } else {
            self.state = State::SiblingRefreshing {
                lease_end,
                next_check: now.saturating_add(self.config.sibling_poll),
                reload_asked: false,
            };
        }
    }

    fn after_new_tokens(&mut self, now: u64) {
        self.schedule();
        self.check_stamps(now);
        self.check_reauth_soon(now);
    }

    /// Computes the proactive refresh point of the current token.
    fn schedule(&mut self) {
        self.refresh_at = None;
        let Some(c) = &self.current else {
            return;
        };
        let Some(exp) = c.access_expires_at else {
            return;
        };
        if c.grant == Grant::RefreshToken && c.refresh_token.is_none() {
            return;
        }
        let r = self.jitter.next();
        let floor = c
            .last_refresh_at
            .unwrap_or(c.access_issued_at)
            .saturating_add(self.config.min_refresh_interval);
        self.refresh_at = Some(schedule::refresh_at(
            &self.config.margin,
            c.access_issued_at,
            exp,
            r,
            floor,
        ));
    }

    /// When an idle refresh token must be exercised so it does not lapse from disuse: at 90 %
    /// of the idle window after it was last used.
    fn keepalive_at(&self) -> Option<u64> {
        let idle = self.config.refresh_token_idle?;
        let c = self.current.as_ref()?;
        c.refresh_token.as_ref()?;
        let last = c.last_refresh_at.or(c.refresh_issued_at)?;
        Some(
            last.saturating_add(idle - idle / 10)
                .max(self.floor(u64::MAX)),
        )
    }

    fn reauth_soon_at(&self) -> Option<u64> {
        let c = self.current.as_ref()?;
        c.refresh_token.as_ref()?;
        c.refresh_expires_at
            .map(|t| t.saturating_sub(self.config.reauth_soon))
    }

    fn check_reauth_soon(&mut self, now: u64) {
        if self.reauth_soon_sent {
            return;
        }
        if let (Some(at), Some(exp)) = (
            self.reauth_soon_at(),
            self.current.as_ref().and_then(|c| c.refresh_expires_at),
        ) && now >= at
        {
            self.reauth_soon_sent = true;
            self.events.push_back(Event::ReauthSoon {
                refresh_expires_at: exp,
            });
        }
    }
}

fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// When the refresh lease of an in-flight marker started at `started_at` ends: one request
/// timeout after its start, taken as no later than `now` (a marker written while the clock
/// ran ahead must not hold the session back until the clock catches up).
/// The end of the lease marker `f` grants its holder, as seen at `now` by a session whose
/// own request timeout is `request_timeout`: from its start (or `now`, if it lies ahead),
/// the longer of the two timeouts, plus the time the holder may take to write the marker
/// before its request leaves ([`MARKER_WRITE_ALLOWANCE`]).
fn lease_end(f: &InFlight, now: u64, request_timeout: u64) -> u64 {
    let holders = f.timeout.map_or(0, |t| t.min(MAX_LEASE_TIMEOUT));
    f.started_at
        .min(now)
        .saturating_add(request_timeout.max(holders))
        .saturating_add(MARKER_WRITE_ALLOWANCE)
}

/// Seconds a lease covers beyond the request timeout: the holder writes its marker (an
/// fsync, a directory sync) before its request leaves and its deadline starts.
const MARKER_WRITE_ALLOWANCE: u64 = 5;
