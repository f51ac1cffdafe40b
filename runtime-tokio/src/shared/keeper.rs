//! `TokenKeeper`: drives a `latchkey_oauth_core::session::TokenSession` over HTTPS and the
//! state directory, so an application only asks for tokens.
//!
//! Every rule (when to refresh, single flight, what to persist when, how to react to
//! `invalid_grant`) is the core's; this file only performs the effects it emits:
//!
//! * `Persist` → a read-compare-write of `tokens-<provider>.json` under an exclusive lock on
//!   `tokens-<provider>.json.lock` ([`StateDir::update`]): written atomically (temp file,
//!   fsync, rename, mode 0600) when the file still holds the revision the core expects,
//!   otherwise the file's content goes back to the core as a conflict. That is what lets
//!   several processes (a `latchkey token keep` daemon and a `latchkey token get` in a
//!   script) share one session without spending a refresh token twice.
//! * `SendRequest` → [`HttpClient::send`]; `ReloadSnapshot` → a read of the file.
//!
//! Whoever needs progress drives: the first caller that finds work performs the queued
//! effects while the others wait for a change signal. [`TokenKeeper::run`] drives the timers
//! (proactive refresh, backoff, keep-alive) for long-running processes; short-lived ones
//! (a CLI command) just call [`TokenKeeper::access_token`].
//!
//! A caller may be cancelled while it drives (its own timeout, a `select!`, a shutdown). The
//! effect it was performing is not dropped with it: it is put back, part-way as it is, and
//! the next driver (a waiting caller, the run loop, or the next call) goes on with it before
//! anything else. A refresh request the server has answered is still read (the answer holds
//! the only copy of a rotated refresh token), and a write of new tokens still completes (the
//! session would otherwise wait for its acknowledgement for ever).
//!
//! Shared source: compiled into both `latchkey-tokio` and `latchkey-smol`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use event_listener::Event as Signal;
use latchkey_oauth_core::http::{HttpRequest, HttpResponse, TransportError};
use latchkey_oauth_core::profile::Profile;
use latchkey_oauth_core::response::TokenResponse;
use latchkey_oauth_core::secret::Secret;
use latchkey_oauth_core::session::schedule::MarginPolicy;
use latchkey_oauth_core::session::{
    Event, Grant, PersistId, Phase, SessionConfig, Snapshot, SnapshotError, Status, TokenAnswer,
    TokenSession, Unauthorized,
};

use crate::http::HttpClient;
use crate::rt::Rt;
use crate::runtime::Runtime;
use crate::state::{StateDir, StateError, Update};

/// Why no token could be had.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeeperError {
    /// Nobody has logged in to `provider` (no state file).
    NoSession {
        /// The provider profile's name.
        provider: String,
    },
    /// The session needs a new login.
    ReauthRequired(String),
    /// Refreshing is failing for now; the core retries at `retry_at` (Unix seconds).
    Unavailable {
        /// The last failure.
        reason: String,
        /// The next attempt.
        retry_at: Option<u64>,
    },
    /// No answer within the wait limit.
    TimedOut,
    /// The state directory failed.
    State(StateError),
    /// The state file is unusable.
    Snapshot(SnapshotError),
    /// A resource request failed below HTTP.
    Transport(TransportError),
}

impl fmt::Display for KeeperError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeeperError::NoSession { provider } => write!(
                f,
                "not logged in to {provider}; run `latchkey login --provider {provider}` first"
            ),
            KeeperError::ReauthRequired(r) => write!(f, "log in again: {r}"),
            KeeperError::Unavailable {
                reason,
                retry_at: Some(t),
            } => write!(
                f,
                "no valid token: {reason} (next attempt at Unix time {t})"
            ),
            KeeperError::Unavailable { reason, .. } => write!(f, "no valid token: {reason}"),
            KeeperError::TimedOut => f.write_str("no token within the wait limit"),
            KeeperError::State(e) => write!(f, "{e}"),
            KeeperError::Snapshot(e) => write!(f, "{e}"),
            KeeperError::Transport(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for KeeperError {}

impl From<StateError> for KeeperError {
    fn from(e: StateError) -> Self {
        KeeperError::State(e)
    }
}

impl From<SnapshotError> for KeeperError {
    fn from(e: SnapshotError) -> Self {
        KeeperError::Snapshot(e)
    }
}

/// Receives the events an application cares about (`TokenCreated`, `TokenRefreshed`,
/// `RefreshFailed`, `ReauthRequired`, `ReauthSoon`); never the effects, which hold secrets.
pub type Observer = Box<dyn Fn(&Event) + Send + Sync>;

/// The keeper's wall clock: the time since the Unix epoch. [`system_clock`] unless replaced
/// with [`TokenKeeper::with_clock`] (tests, or an application with its own time source).
pub type Clock = Arc<dyn Fn() -> Duration + Send + Sync>;

/// The system's wall clock (`SystemTime::now()`; the epoch itself if the clock reads earlier).
#[must_use]
pub fn system_clock() -> Clock {
    Arc::new(system_time)
}

/// `SystemTime::now()` since the Unix epoch (zero if the clock reads earlier).
fn system_time() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// How long [`TokenKeeper::run`] sleeps at most between looks at the session when no
/// deadline is nearer: the bound on how late a wall clock set back is noticed.
pub const WAKE_CAP: Duration = Duration::from_secs(60);

/// How long a graceful shutdown waits, at most, for a refresh under way to be answered and
/// saved ([`TokenKeeper::settle`]): the HTTP client's own bound on a request, with room.
pub const SETTLE_LIMIT: Duration = Duration::from_secs(30);

/// A token session kept alive over HTTPS and the state directory. Cheap to clone; all
/// clones share the session.
pub struct TokenKeeper {
    inner: Arc<Inner>,
    /// Whether this is one of the application's handles (counted in [`Inner::handles`]),
    /// not the keeper's own reference from inside an effect it performs.
    counted: bool,
}

impl Clone for TokenKeeper {
    fn clone(&self) -> Self {
        if self.counted {
            self.inner.handles.fetch_add(1, Ordering::Relaxed);
        }
        TokenKeeper {
            inner: Arc::clone(&self.inner),
            counted: self.counted,
        }
    }
}

impl Drop for TokenKeeper {
    /// The last application handle takes away an effect left unfinished: it holds the
    /// keeper's own reference, so it would otherwise keep the keeper (and its request)
    /// alive for ever with nobody left to finish it. Its outcome is then as after a crash:
    /// a refresh marker on disk has the next process refresh at once.
    fn drop(&mut self) {
        if self.counted && self.inner.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            drop(self.inner.take_unfinished());
        }
    }
}

/// An effect being performed, owned so that it can outlive the caller that started it. It
/// holds an uncounted keeper handle; the last counted one drops it (see `Drop`).
type Pending = Pin<Box<dyn Future<Output = ()> + Send>>;

struct Inner {
    session: Mutex<TokenSession>,
    changed: Signal,
    driving: AtomicBool,
    /// The effect a cancelled driver left part-way; the next driver finishes it first.
    unfinished: Mutex<Option<Pending>>,
    /// The application's handles ([`TokenKeeper::counted`]).
    handles: AtomicUsize,
    /// Set by a caller that found another one driving: the driver then looks again before it
    /// stops, since that caller may have queued effects after the driver's last look.
    turned_away: AtomicBool,
    http: HttpClient,
    state: StateDir,
    file: String,
    /// The provider profile's name (for errors).
    provider: String,
    observer: Option<Observer>,
    max_wait: Duration,
    clock: Clock,
    wake_cap: Duration,
}

impl Inner {
    /// The effect a cancelled driver left, taken out.
    fn take_unfinished(&self) -> Option<Pending> {
        self.unfinished
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

impl fmt::Debug for TokenKeeper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKeeper")
            .field("file", &self.inner.file)
            .finish_non_exhaustive()
    }
}

/// The state file of `provider` in a state directory.
#[must_use]
pub fn state_file_name(provider: &str) -> String {
    format!("tokens-{provider}.json")
}

/// The system's wall clock in Unix seconds, the core's time (what a keeper reads unless
/// given its own [`Clock`]).
#[must_use]
pub fn now() -> u64 {
    system_time().as_secs()
}

impl TokenKeeper {
    /// Opens the session of `profile` kept in `state` (none yet if the file is absent).
    ///
    /// The core's request deadline is raised to cover the client's connect and read
    /// timeouts, so the core never abandons a request the client is still performing.
    ///
    /// # Errors
    /// A state directory failure or an unusable state file (named in the message).
    pub async fn open(
        profile: Profile,
        mut config: SessionConfig,
        state: StateDir,
        http: HttpClient,
    ) -> Result<TokenKeeper, KeeperError> {
        let file = state_file_name(&profile.name);
        let profile_name = profile.name.clone();
        let http_limit = http.config().connect_timeout + http.config().read_timeout;
        config.request_timeout = config.request_timeout.max(http_limit.as_secs() + 5);
        let max_wait = Duration::from_secs(config.request_timeout.saturating_mul(3) + 10);
        let seed = seed();
        let session = match state.read(&file).await? {
            Some(bytes) => {
                let snapshot = Snapshot::from_json(&bytes)?;
                TokenSession::restore(profile, config, seed, snapshot, now())?
            }
            None => TokenSession::new(profile, config, seed),
        };
        Ok(TokenKeeper {
            inner: Arc::new(Inner {
                session: Mutex::new(session),
                changed: Signal::new(),
                driving: AtomicBool::new(false),
                unfinished: Mutex::new(None),
                handles: AtomicUsize::new(1),
                turned_away: AtomicBool::new(false),
                http,
                state,
                file,
                provider: profile_name,
                observer: None,
                max_wait,
                clock: system_clock(),
                wake_cap: WAKE_CAP,
            }),
            counted: true,
        })
    }

    /// Calls `observer` for every application event. Set it before cloning the keeper: on a
    /// keeper that already has clones the observer is not installed.
    #[must_use]
    pub fn with_observer(mut self, observer: Observer) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.observer = Some(observer);
        }
        self
    }

    /// How long [`TokenKeeper::access_token`] waits at most (before cloning, as above).
    #[must_use]
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.max_wait = max_wait;
        }
        self
    }

    /// Reads the time from `clock` instead of the system's wall clock (before cloning, as
    /// above), and hands the session that time at once, so a session restored by
    /// [`TokenKeeper::open`] at the system's time is judged again at the clock's.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.clock = clock;
        }
        let now = self.now();
        self.lock().handle_timeout(now);
        self
    }

    /// How long [`TokenKeeper::run`] sleeps at most when no deadline is nearer ([`WAKE_CAP`]
    /// unless set here, before cloning as above): a wall clock set back is noticed within
    /// this time. At least 10 ms.
    #[must_use]
    pub fn with_wake_cap(mut self, wake_cap: Duration) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.wake_cap = wake_cap.max(Duration::from_millis(10));
        }
        self
    }

    /// The state file's name in the state directory.
    #[must_use]
    pub fn file_name(&self) -> &str {
        &self.inner.file
    }

    /// A summary of the session.
    #[must_use]
    pub fn status(&self) -> Status {
        self.lock().status(self.now())
    }

    /// Changes how the session refreshes ahead of expiry while [`TokenKeeper::run`] keeps it
    /// (see `TokenSession::set_refresh_policy`): the run loop wakes and waits for the new
    /// refresh point.
    pub fn set_refresh_policy(&self, keep_fresh: bool, margin: MarginPolicy) {
        self.lock().set_refresh_policy(keep_fresh, margin);
        self.inner.changed.notify(usize::MAX);
    }

    /// The session's margin policy now.
    #[must_use]
    pub fn margin_policy(&self) -> MarginPolicy {
        self.lock().config().margin
    }

    /// Stores a login's tokens (replacing any session) and waits until they are persisted.
    ///
    /// # Errors
    /// When the tokens cannot be saved within the wait limit.
    pub async fn login(&self, tokens: TokenResponse, grant: Grant) -> Result<(), KeeperError> {
        self.lock().handle_login(self.now(), tokens, grant);
        let started = std::time::Instant::now();
        loop {
            let listener = self.inner.changed.listen();
            self.drive().await;
            let status = self.lock().status(self.now());
            if status.state != Phase::Saving {
                return Ok(());
            }
            if status.failures > 0 {
                return Err(KeeperError::Unavailable {
                    reason: status.last_error.unwrap_or_default(),
                    retry_at: status.next_action_at,
                });
            }
            if started.elapsed() > self.inner.max_wait {
                return Err(KeeperError::TimedOut);
            }
            let _ = Rt::timeout(Duration::from_secs(1), listener).await;
        }
    }

    /// A valid access token and its generation (pass the generation to
    /// [`TokenKeeper::unauthorized`]). Refreshes first when needed; concurrent callers share
    /// one refresh.
    ///
    /// # Errors
    /// [`KeeperError`] saying why there is none (no session, login needed, refresh failing).
    pub async fn access_token(&self) -> Result<(Secret, u64), KeeperError> {
        let started = std::time::Instant::now();
        loop {
            let listener = self.inner.changed.listen();
            if let Some(answer) = self.answer() {
                return answer;
            }
            if started.elapsed() > self.inner.max_wait {
                return Err(KeeperError::TimedOut);
            }
            let drove = self.drive().await;
            if let Some(answer) = self.answer() {
                return answer;
            }
            // Waiting on another driver, or on a timer (refresh floor, another process's lease).
            let wait = if drove {
                self.until_next_timeout().min(Duration::from_secs(1))
            } else {
                Duration::from_secs(1)
            };
            let _ = Rt::timeout(wait, listener).await;
        }
    }

    /// Refreshes now, whatever the schedule, and waits for the outcome.
    ///
    /// # Errors
    /// As [`TokenKeeper::access_token`].
    pub async fn refresh(&self) -> Result<(), KeeperError> {
        let before = self.lock().status(self.now()).generation;
        self.lock().force_refresh(self.now());
        let started = std::time::Instant::now();
        loop {
            let listener = self.inner.changed.listen();
            self.drive().await;
            let status = self.lock().status(self.now());
            if status.generation > before {
                return Ok(());
            }
            match status.state {
                Phase::ReauthRequired => {
                    return Err(KeeperError::ReauthRequired(
                        status.reauth_reason.unwrap_or_default(),
                    ));
                }
                Phase::Backoff => {
                    return Err(KeeperError::Unavailable {
                        reason: status.last_error.unwrap_or_default(),
                        retry_at: status.next_action_at,
                    });
                }
                Phase::NoSession => return Err(self.no_session()),
                _ => {}
            }
            if started.elapsed() > self.inner.max_wait {
                return Err(KeeperError::TimedOut);
            }
            let _ = Rt::timeout(Duration::from_secs(1), listener).await;
        }
    }

    /// The resource API answered 401 to a request made with the token of `generation`:
    /// whether to retry once (the core forces one refresh unless that cannot help).
    pub fn unauthorized(&self, generation: u64) -> Unauthorized {
        let answer = self.lock().handle_unauthorized(self.now(), generation);
        self.inner.changed.notify(usize::MAX);
        answer
    }

    /// Sends `request` with `Authorization: Bearer <token>`; on a 401, lets the core decide
    /// and retries at most once with the new token. A final 401 is returned as the response.
    ///
    /// # Errors
    /// No token ([`KeeperError`]) or a transport failure.
    pub async fn send_authorized(
        &self,
        request: &HttpRequest,
    ) -> Result<HttpResponse, KeeperError> {
        self.send_authorized_with(|token| bearer(request, token))
            .await
    }

    /// [`TokenKeeper::send_authorized`] for APIs that carry the token in more than the
    /// `Authorization` header (Legrand's `UserToken`): `build` makes the whole request for a
    /// token, and is called again with the new token for the one retry after a 401.
    ///
    /// # Errors
    /// No token ([`KeeperError`]) or a transport failure.
    pub async fn send_authorized_with<F>(&self, build: F) -> Result<HttpResponse, KeeperError>
    where
        F: Fn(&Secret) -> HttpRequest + Send + Sync,
    {
        let (token, generation) = self.access_token().await?;
        let response = self.send(&build(&token)).await?;
        // A 401, or an invalid-token answer inside a 200 (U-tec): refresh and retry once.
        if !latchkey_oauth_core::cloud::is_unauthorized(&response) {
            return Ok(response);
        }
        match self.unauthorized(generation) {
            Unauthorized::GiveUp { .. } => Ok(response),
            _ => {
                let (token, _) = self.access_token().await?;
                self.send(&build(&token)).await
            }
        }
    }

    /// Keeps the session fresh for as long as it is polled: performs effects and fires the
    /// core's timers (proactive refresh, backoff, keep-alive), waking at the next deadline
    /// and at least every wake cap ([`WAKE_CAP`], see [`TokenKeeper::with_wake_cap`]) to
    /// hand the session the time. Spawn it in long-running processes; it never returns.
    pub async fn run(&self) {
        loop {
            let listener = self.inner.changed.listen();
            self.drive().await;
            let wait = self.until_next_timeout().min(self.inner.wake_cap);
            let _ = Rt::timeout(wait, listener).await;
        }
    }

    /// Finishes what is under way, for a graceful shutdown: performs the session's events
    /// (the one a cancelled caller or a stopped [`TokenKeeper::run`] left included) until
    /// nothing is half done — no refresh request unanswered, no new tokens unsaved, no write
    /// unacknowledged (`TokenSession::is_busy`) — or `limit` has passed. Stopping in the
    /// middle could lose a rotated refresh token the server already issued. Returns whether
    /// it settled.
    pub async fn settle(&self, limit: Duration) -> bool {
        let started = std::time::Instant::now();
        loop {
            let listener = self.inner.changed.listen();
            self.drive().await;
            if !self.is_busy() {
                return true;
            }
            let left = limit.saturating_sub(started.elapsed());
            if left.is_zero() {
                return false;
            }
            let _ = Rt::timeout(left.min(Duration::from_millis(50)), listener).await;
        }
    }

    fn is_busy(&self) -> bool {
        let unfinished = self
            .inner
            .unfinished
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some();
        unfinished || self.lock().is_busy()
    }

    // --- internals -------------------------------------------------------------------

    /// The keeper's clock in Unix seconds, the core's time.
    fn now(&self) -> u64 {
        (self.inner.clock)().as_secs()
    }

    fn lock(&self) -> MutexGuard<'_, TokenSession> {
        // A panic while holding the lock leaves a consistent session (the core does not
        // panic mid-update); keep going with it.
        self.inner
            .session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The answer if it is final (not `Wait`).
    fn answer(&self) -> Option<Result<(Secret, u64), KeeperError>> {
        let mut s = self.lock();
        match s.access_token(self.now()) {
            TokenAnswer::Ready {
                token, generation, ..
            } => Some(Ok((token.clone(), generation))),
            TokenAnswer::Wait => None,
            TokenAnswer::Unavailable { reason, retry_at } => {
                Some(Err(KeeperError::Unavailable { reason, retry_at }))
            }
            TokenAnswer::ReauthRequired { reason } => {
                Some(Err(KeeperError::ReauthRequired(reason.to_owned())))
            }
            _ => Some(Err(self.no_session())),
        }
    }

    /// Time until the core's next deadline by the keeper's clock (at least 50 ms; the wake
    /// cap when none).
    fn until_next_timeout(&self) -> Duration {
        let next = self.lock().poll_timeout();
        let Some(at) = next else {
            return self.inner.wake_cap;
        };
        let now = (self.inner.clock)();
        Duration::from_secs(at)
            .saturating_sub(now)
            .max(Duration::from_millis(50))
    }

    fn no_session(&self) -> KeeperError {
        KeeperError::NoSession {
            provider: self.inner.provider.clone(),
        }
    }

    /// Performs queued effects until none is left. Returns `false` when another caller is
    /// already driving (that one performs what this caller queued).
    ///
    /// Waiters are signalled after each effect performed, never merely because a drive
    /// ended: every wait loop listens before it drives, so an end-of-drive signal would wake
    /// the driver's own loop at once, and a loop with nothing to do ([`TokenKeeper::run`]
    /// between refreshes, a caller waiting out another process's lease) would spin without
    /// ever sleeping or yielding.
    async fn drive(&self) -> bool {
        if !self.claim_driving() {
            return false;
        }
        let mut guard = DriveGuard {
            inner: &self.inner,
            held: true,
        };
        loop {
            loop {
                // What a cancelled driver left goes on first, before the session hears the
                // time (it could otherwise give up on a request already answered).
                if let Some(effect) = self.inner.take_unfinished() {
                    Resumable::new(&self.inner, effect).await;
                    self.inner.changed.notify(usize::MAX);
                    continue;
                }
                let event = {
                    let mut s = self.lock();
                    // Every wake-up gives the session the time, due or not (early calls are
                    // harmless): a wall clock set back since the deadline was computed makes
                    // `poll_timeout` look far off, and only `handle_timeout` lets the session
                    // notice its tokens' stamps now lie ahead of the clock.
                    s.handle_timeout(self.now());
                    s.poll_event()
                };
                let Some(event) = event else {
                    break;
                };
                let keeper = TokenKeeper {
                    inner: Arc::clone(&self.inner),
                    counted: false,
                };
                Resumable::new(
                    &self.inner,
                    Box::pin(async move { keeper.perform(event).await }),
                )
                .await;
                self.inner.changed.notify(usize::MAX);
            }
            guard.held = false;
            self.inner.driving.store(false, Ordering::SeqCst);
            // A caller turned away meanwhile may have queued effects after the last look; it
            // waits for a signal that nothing above would send. Drive those too (unless
            // someone else has started driving, who then performs them).
            if !self.inner.turned_away.swap(false, Ordering::SeqCst) || !self.claim_driving() {
                return true;
            }
            guard.held = true;
        }
    }

    /// Takes the driving flag; `false` (after marking this caller as turned away) when
    /// another caller holds it. The flag is re-read after the mark, so either the driver sees
    /// the mark before it stops or this caller sees the flag released and takes it.
    fn claim_driving(&self) -> bool {
        loop {
            if !self.inner.driving.swap(true, Ordering::SeqCst) {
                return true;
            }
            self.inner.turned_away.store(true, Ordering::SeqCst);
            if self.inner.driving.load(Ordering::SeqCst) {
                return false;
            }
        }
    }

    async fn perform(&self, event: Event) {
        match event {
            Event::Persist {
                id,
                expected_revision,
                snapshot,
            } => self.persist(id, expected_revision, *snapshot).await,
            Event::SendRequest { id, request } => {
                let result = self.inner.http.send(&request).await;
                self.lock().handle_response(self.now(), id, result);
            }
            Event::ReloadSnapshot => {
                let on_disk = match self.inner.state.read(&self.inner.file).await {
                    Ok(Some(bytes)) => Snapshot::from_json(&bytes).ok(),
                    _ => None,
                };
                self.lock().handle_reloaded(self.now(), on_disk);
            }
            // Requests are awaited inline, so none is still running when the core gives up.
            Event::CancelRequest { .. } => {}
            other => {
                if let Some(observer) = &self.inner.observer {
                    observer(&other);
                }
            }
        }
    }

    async fn persist(&self, id: PersistId, expected: Option<u64>, snapshot: Snapshot) {
        enum Outcome {
            Written,
            Conflict(Option<Box<Snapshot>>),
        }
        let bytes = snapshot.to_json();
        let result = self
            .inner
            .state
            .update(&self.inner.file, move |current| {
                let Some(expected) = expected else {
                    return Update::Write(bytes, Outcome::Written);
                };
                match current.as_deref().map(Snapshot::from_json) {
                    Some(Ok(d)) if d.revision == expected => Update::Write(bytes, Outcome::Written),
                    Some(Ok(d)) => Update::Keep(Outcome::Conflict(Some(Box::new(d)))),
                    // An unreadable file holds nothing worth keeping over valid state.
                    Some(Err(_)) => Update::Write(bytes, Outcome::Written),
                    None => Update::Keep(Outcome::Conflict(None)),
                }
            })
            .await;
        let mut s = self.lock();
        match result {
            Ok(Outcome::Written) => s.handle_persisted(self.now(), id),
            Ok(Outcome::Conflict(on_disk)) => {
                s.handle_persist_conflict(self.now(), id, on_disk.map(|d| *d));
            }
            Err(e) => s.handle_persist_failed(self.now(), id, &e.to_string()),
        }
    }

    /// Sends `request` as it is through the keeper's HTTP client (no token added): for calls
    /// beside the session's, such as an application token request.
    ///
    /// # Errors
    /// A transport failure.
    pub async fn send(&self, request: &HttpRequest) -> Result<HttpResponse, KeeperError> {
        self.inner
            .http
            .send(request)
            .await
            .map_err(KeeperError::Transport)
    }
}

/// `request` with `Authorization: Bearer <token>` in place of any `Authorization` it had.
fn bearer(request: &HttpRequest, token: &Secret) -> HttpRequest {
    let mut request = request.clone();
    request
        .headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case("authorization"));
    request.push_header("Authorization", format!("Bearer {}", token.expose()));
    request
}

/// An effect being performed by the current driver: dropped before it completes (the driver
/// was cancelled), it puts the effect back into [`Inner::unfinished`] and wakes the waiters,
/// so the next driver goes on with it.
struct Resumable<'a> {
    inner: &'a Inner,
    effect: Option<Pending>,
}

impl<'a> Resumable<'a> {
    fn new(inner: &'a Inner, effect: Pending) -> Self {
        Resumable {
            inner,
            effect: Some(effect),
        }
    }
}

impl Future for Resumable<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(effect) = self.effect.as_mut() else {
            return Poll::Ready(());
        };
        match effect.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.effect = None;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Resumable<'_> {
    fn drop(&mut self) {
        if let Some(effect) = self.effect.take() {
            *self
                .inner
                .unfinished
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(effect);
            self.inner.changed.notify(usize::MAX);
        }
    }
}

/// Releases the driving flag when the driving future is dropped part-way (cancelled), and
/// wakes the waiters so one of them drives what is left.
struct DriveGuard<'a> {
    inner: &'a Inner,
    /// Whether the flag is still held (cleared on the normal way out of `drive`).
    held: bool,
}

impl Drop for DriveGuard<'_> {
    fn drop(&mut self) {
        if self.held {
            self.inner.driving.store(false, Ordering::SeqCst);
            self.inner.changed.notify(usize::MAX);
        }
    }
}

/// A seed for the session's jitter and instance id from the OS random source.
fn seed() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        // No OS randomness: time and pid still spread a fleet.
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        t ^ u64::from(std::process::id()).rotate_left(32)
    })
}
