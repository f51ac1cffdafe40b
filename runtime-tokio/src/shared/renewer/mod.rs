//! `CertRenewer`: keeps a TLS identity renewed and hot-swaps it while connections run.
//!
//! Every rule about *when* is `latchkey_pki::schedule`'s and every rule about *whether a pair
//! is acceptable* is `latchkey_pki::validate`'s; this driver only performs the effects:
//!
//! 1. reads the wall clock and asks [`RenewalSchedule::decide`](latchkey_pki::schedule::RenewalSchedule::decide)
//!    what to do, with the persisted [`RenewalHistory`];
//! 2. on `Renew`/`Emergency` asks its [`RenewalSource`] for a new pair (a cloud CA through the
//!    token keeper, a self-signed regeneration, or files an outside tool replaces);
//! 3. validates the pair at the same wall-clock `now` — an invalid pair never goes live, the
//!    last good identity stays, and the failure is recorded (so the schedule backs off); the
//!    timing tolerances (a fresh pair's notBefore up to the policy's clock skew ahead, a pair
//!    handed in at start checked at the nearest moment of its validity) are
//!    [`TimingTolerance`]'s;
//! 4. persists it atomically in the state directory (new files first, then one atomic write
//!    of the record that names them, so a crash at any point leaves a whole pair — the old
//!    or the new — and the history with it);
//! 5. swaps it into the [`LiveIdentity`] (`replace`): a server built with
//!    [`server_config`](crate::tls::server_config) presents it to every later handshake while
//!    open connections keep theirs; a client built with
//!    [`client_config`](crate::tls::client_config) presents it on its next connection — a SIP
//!    client watches [`LiveIdentity::generation`] (or [`RenewalEvent::Renewed`]) and
//!    reconnects gracefully;
//! 6. sleeps until the decision's `wake_in` (capped by the policy's `WakeCap`, so no timer
//!    can overflow) and decides again. Because every wake re-reads the wall clock and
//!    `decide` is a pure function of it, a clock jump in either direction can neither skip a
//!    renewal nor cause a loop: after each attempt the history holds its time, and the
//!    schedule's backoff spaces the next one.
//!
//! Sources that change on their own ([`WatchedFiles`]) are also polled at their own
//! interval; a new pair found there goes through the same validation, persistence and swap.
//!
//! The crate documentation shows the set-up: a renewer, a server configuration from its
//! identity, and the loop spawned beside the accept loop.
//!
//! # Randomness and time
//!
//! Keys and serial numbers come from the operating system's random source (`getrandom`),
//! read here and handed to `latchkey-pki` as an argument; if it fails, the attempt fails
//! (nothing made from missing randomness is kept). Decisions use wall-clock Unix seconds (a
//! certificate's validity is wall time); sleeps use the runtime's monotonic timer.
//!
//! Shared source: compiled into both `latchkey-tokio` and `latchkey-smol`.

mod cloud;
mod event;
mod source;
mod store;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use event_listener::Event as Signal;
use latchkey_pki::inspect::CertInfo;
use latchkey_pki::schedule::{
    Action, Decision, RenewalHistory, RenewalPolicy, RenewalSchedule, seed_from_identity,
};
use latchkey_pki::validate::{Bundle, TimingTolerance, Usage, ValidBundle, validate_allowing};

pub use self::cloud::{CertificateIssuer, CloudSource, LegrandIssuer, legrand_ca_chain};
pub use self::event::{RenewError, RenewalEvent, RenewalStatus, Stage};
pub use self::source::{
    CertifiedPair, DEFAULT_BACKDATE, DEFAULT_WATCH_INTERVAL, MAX_FILE_LEN, RenewalSource,
    SelfSignedSource, SourceError, WatchedFiles,
};
pub use self::store::read_stored_pair;
use self::store::{Store, Stored};
use crate::rt::Rt;
use crate::runtime::Runtime;
use crate::state::StateDir;
use crate::tls::{Identity, LiveIdentity};

/// Longest a source may take to give a pair (or to look at its files); a source that has not
/// answered by then counts as a failed attempt, so the loop never waits without bound.
pub const SOURCE_TIMEOUT: Duration = Duration::from_secs(300);

/// Receives every [`RenewalEvent`]; called on the renewer's task, so keep it short.
pub type Observer = Box<dyn Fn(&RenewalEvent) + Send + Sync>;

/// The wall clock in Unix seconds (replaceable for tests of clock jumps).
pub type WallClock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Keeps the identity of a TLS server or client renewed. Cheap to clone; all clones share
/// one renewer.
pub struct CertRenewer<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for CertRenewer<S> {
    fn clone(&self) -> Self {
        CertRenewer {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S> fmt::Debug for CertRenewer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertRenewer")
            .field("generation", &self.inner.identity.generation())
            .finish_non_exhaustive()
    }
}

struct Inner<S> {
    source: S,
    settings: Settings,
    store: Option<Store>,
    identity: LiveIdentity,
    current: Mutex<Current>,
    /// Held by [`CertRenewer::install`] from validation to the swap: two installs at once
    /// (a renewal and an upload, two regenerate clicks) would both save as serial + 1 and
    /// could leave one's certificate beside the other's key on disk.
    installing: async_lock::Mutex<()>,
    observer: Option<Observer>,
    wake: Signal,
    running: AtomicBool,
}

/// What the validation and the schedule need besides the pair.
struct Settings {
    policy: RenewalPolicy,
    seed: Option<u64>,
    usage: Usage,
    roots_pem: Option<Vec<u8>>,
    host: Option<String>,
    clock: WallClock,
}

/// The live certificate and the attempt history.
struct Current {
    leaf: CertInfo,
    history: RenewalHistory,
    /// The stored record's serial (0 without a store).
    serial: u64,
    /// The last plan reported, so that `Scheduled` is sent only when it changes.
    reported: Option<(Action, u64, Option<u64>)>,
}

/// Builds a [`CertRenewer`]; see [`CertRenewer::builder`].
pub struct RenewerBuilder<S> {
    source: S,
    settings: Settings,
    store: Option<(StateDir, String)>,
    observer: Option<Observer>,
    initial: Option<CertifiedPair>,
}

impl<S> fmt::Debug for RenewerBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenewerBuilder")
            .field("policy", &self.settings.policy)
            .field("usage", &self.settings.usage)
            .finish_non_exhaustive()
    }
}

impl<S: RenewalSource> RenewerBuilder<S> {
    /// The renewal policy (default: `RenewalPolicy::default()`, 1/3 of the lifetime left).
    #[must_use]
    pub fn policy(mut self, policy: RenewalPolicy) -> Self {
        self.settings.policy = policy;
        self
    }

    /// A stable device identity (a SIP client id, a serial number) that spreads this
    /// device's renewal time across a fleet. Default: each certificate's own public key.
    #[must_use]
    pub fn seed_identity(mut self, identity: &[u8]) -> Self {
        self.settings.seed = Some(seed_from_identity(identity));
        self
    }

    /// What the certificate is for (default: a TLS server); checked against its extended
    /// key usage when a chain is verified.
    #[must_use]
    pub fn usage(mut self, usage: Usage) -> Self {
        self.settings.usage = usage;
        self
    }

    /// Trust anchors (PEM) a new certificate's chain must lead to. Without them a new
    /// certificate must be self-signed.
    #[must_use]
    pub fn roots(mut self, roots_pem: Vec<u8>) -> Self {
        self.settings.roots_pem = Some(roots_pem);
        self
    }

    /// A host name or IP address every new certificate must be valid for.
    #[must_use]
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.settings.host = Some(host.into());
        self
    }

    /// Keeps the pair and the history in `state` as `<name>.json` (the record, mode 0600),
    /// `<name>-<n>.cert.pem` (0644) and `<name>-<n>.key.pem` (0600); at start a stored pair
    /// is used rather than asking the source (one name per source and identity). Without it
    /// nothing is saved: a restart starts from the source again, with an empty history.
    #[must_use]
    pub fn persist(mut self, state: StateDir, name: impl Into<String>) -> Self {
        self.store = Some((state, name.into()));
        self
    }

    /// The pair in use before this renewer existed (a certificate another tool issued):
    /// with no stored record, it is validated and saved as the first pair instead of asking
    /// the source, so starting never costs an issuance.
    #[must_use]
    pub fn initial_pair(mut self, pair: CertifiedPair) -> Self {
        self.initial = Some(pair);
        self
    }

    /// Calls `observer` for every event.
    #[must_use]
    pub fn observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Replaces the wall clock (tests of clock jumps; default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: WallClock) -> Self {
        self.settings.clock = clock;
        self
    }

    /// Loads the stored pair and history (when persisting and a record exists) or asks the
    /// source for a first pair, validated and saved like any renewal. Does not start the
    /// loop: spawn [`CertRenewer::run`].
    ///
    /// # Errors
    /// No usable first pair (named by [`RenewError`]), or an unusable stored record.
    pub async fn start(self) -> Result<CertRenewer<S>, RenewError> {
        let RenewerBuilder {
            source,
            settings,
            store,
            observer,
            initial,
        } = self;
        let store = store.map(|(state, name)| Store::new(state, name));
        let stored = match &store {
            Some(store) => store.load().await?,
            None => None,
        };
        // A pair handed in that is newer than the stored one (a registration made again
        // since the last renewal) replaces it; an older one (the registration's first
        // certificate, long renewed) gives way to it.
        let (stored, initial) = match (stored, initial) {
            (Some(kept), Some(handed)) if issued_later(&handed, &kept.pair) => {
                let now = (settings.clock)();
                let valid =
                    settings.validate(&handed, now, None, TimingTolerance::NearestValidMoment)?;
                let history = RenewalHistory::default();
                let serial = match &store {
                    Some(store) => {
                        store
                            .save_pair(
                                kept.serial,
                                &handed,
                                &valid.leaf.fingerprint_sha256,
                                &history,
                            )
                            .await?
                    }
                    None => kept.serial,
                };
                let replaced = Stored {
                    pair: handed,
                    history,
                    serial,
                };
                (Some(replaced), None)
            }
            other => other,
        };
        let (identity, current) = match stored {
            Some(Stored {
                pair,
                history,
                serial,
            }) => {
                let leaf = leaf_of(&pair, store.as_ref())?;
                let identity = Identity::from_pem(&pair.cert_pem, pair.key_pem())
                    .map_err(RenewError::Identity)?;
                (
                    identity,
                    Current {
                        leaf,
                        history,
                        serial,
                        reported: None,
                    },
                )
            }
            None => {
                let now = (settings.clock)();
                // A pair from outside was not a renewal: it leaves the history empty, so
                // one already due is renewed at once rather than after a backoff.
                let issued_now = initial.is_none();
                let pair = match initial {
                    Some(pair) => pair,
                    None => Rt::timeout(SOURCE_TIMEOUT, source.renew(now))
                        .await
                        .unwrap_or(Err(SourceError::TimedOut))
                        .map_err(RenewError::Source)?,
                };
                // A pair handed in from outside (a registration's certificate) that has run out
                // is renewed at once rather than refused, which would leave it running
                // without renewal; its key and chain are checked all the same.
                let tolerance = if issued_now {
                    TimingTolerance::fresh(&settings.policy)
                } else {
                    TimingTolerance::NearestValidMoment
                };
                let valid = settings.validate(&pair, now, None, tolerance)?;
                let identity = identity_of(&valid)?;
                let mut history = RenewalHistory::default();
                if issued_now {
                    history.record_success(now);
                }
                let serial = match &store {
                    Some(store) => {
                        store
                            .save_pair(0, &pair, &valid.leaf.fingerprint_sha256, &history)
                            .await?
                    }
                    None => 0,
                };
                let current = Current {
                    leaf: valid.leaf,
                    history,
                    serial,
                    reported: None,
                };
                (identity, current)
            }
        };
        Ok(CertRenewer {
            inner: Arc::new(Inner {
                source,
                settings,
                store,
                identity: LiveIdentity::new(identity),
                current: Mutex::new(current),
                installing: async_lock::Mutex::new(()),
                observer,
                wake: Signal::new(),
                running: AtomicBool::new(false),
            }),
        })
    }
}

impl<S: RenewalSource> CertRenewer<S> {
    /// A renewer of the pairs `source` gives; configure it, then [`RenewerBuilder::start`].
    pub fn builder(source: S) -> RenewerBuilder<S> {
        RenewerBuilder {
            source,
            settings: Settings {
                policy: RenewalPolicy::default(),
                seed: None,
                usage: Usage::ServerAuth,
                roots_pem: None,
                host: None,
                clock: Arc::new(system_now),
            },
            store: None,
            observer: None,
            initial: None,
        }
    }

    /// The identity this renewer keeps current: build server and client TLS configurations
    /// from it ([`crate::tls::server_config`], [`crate::tls::client_config`]).
    #[must_use]
    pub fn identity(&self) -> &LiveIdentity {
        &self.inner.identity
    }

    /// The source.
    #[must_use]
    pub fn source(&self) -> &S {
        &self.inner.source
    }

    /// Where the renewer stands now.
    #[must_use]
    pub fn status(&self) -> RenewalStatus {
        let now = self.now();
        let current = self.lock();
        RenewalStatus {
            generation: self.inner.identity.generation(),
            certificate: current.leaf.clone(),
            history: current.history.clone(),
            decision: self.schedule(&current.leaf).decide(now, &current.history),
            now,
        }
    }

    /// Wakes the loop to decide (and poll a watched source) now rather than at its next
    /// planned check.
    pub fn check_now(&self) {
        self.inner.wake.notify(usize::MAX);
    }

    /// Runs the renewal loop for as long as it is polled (spawn it); it never ends by
    /// itself. One loop runs per renewer: a second concurrent call returns at once.
    pub async fn run(&self) {
        if self.inner.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let _running = Running(&self.inner.running);
        // A source's polling interval, at most a week (a longer one, "practically never",
        // would overflow the clock arithmetic below).
        let watch = self
            .inner
            .source
            .watch_interval()
            .map(|i| i.min(MAX_WATCH_INTERVAL));
        let mut next_watch = Instant::now();
        loop {
            let listener = self.inner.wake.listen();
            let now = self.now();
            let decision = {
                let current = self.lock();
                self.schedule(&current.leaf).decide(now, &current.history)
            };
            match decision.action {
                Action::Renew | Action::Emergency => {
                    self.attempt().await;
                    continue;
                }
                action => self.report_plan(action, &decision, now),
            }
            let mut sleep = Duration::from_secs(decision.wake_in.max(1));
            if let Some(interval) = watch {
                let until = next_watch.saturating_duration_since(Instant::now());
                if until.is_zero() {
                    self.poll_watched().await;
                    next_watch = Instant::now() + interval;
                    continue;
                }
                sleep = sleep.min(until);
            }
            // Woken early by `check_now`; a timeout is the normal way out.
            if Rt::timeout(sleep, listener).await.is_some() {
                next_watch = Instant::now();
            }
        }
    }

    /// Installs a pair given from outside (an administrator's upload): validated like a
    /// renewal, persisted, then swapped in; [`RenewalEvent::Renewed`] reports it. The
    /// schedule then follows the new certificate, and its renewals come from the source.
    ///
    /// # Errors
    /// [`RenewError`] naming why the pair was refused or not saved; the live identity is
    /// unchanged then.
    pub async fn install_pair(&self, pair: &CertifiedPair) -> Result<(), RenewError> {
        let now = self.now();
        self.install(now, pair, false, None).await
    }

    /// [`CertRenewer::install_pair`] with the CA certificates (PEM) its chain is checked
    /// against instead of the renewer's own (an administrator's upload of a certificate
    /// from a local CA).
    ///
    /// # Errors
    /// As [`CertRenewer::install_pair`].
    pub async fn install_pair_trusting(
        &self,
        pair: &CertifiedPair,
        roots_pem: &[u8],
    ) -> Result<(), RenewError> {
        let now = self.now();
        self.install(now, pair, false, Some(roots_pem)).await
    }

    /// Asks the source for a new pair now, whatever the schedule says (an administrator's
    /// "regenerate"), and installs it.
    ///
    /// # Errors
    /// [`RenewError`] naming where it stopped; the failure is recorded like a scheduled
    /// attempt's, and the live identity is unchanged.
    pub async fn renew_now(&self) -> Result<(), RenewError> {
        let result = Rt::timeout(SOURCE_TIMEOUT, self.inner.source.renew(self.now())).await;
        let now = self.now();
        let outcome = match result {
            Some(Ok(pair)) => self.install(now, &pair, false, None).await,
            Some(Err(e)) => Err(RenewError::Source(e)),
            None => Err(RenewError::Source(SourceError::TimedOut)),
        };
        if let Err(e) = &outcome {
            self.fail(now, e).await;
        }
        outcome
    }

    // --- internals -------------------------------------------------------------------

    fn now(&self) -> u64 {
        (self.inner.settings.clock)()
    }

    fn lock(&self) -> MutexGuard<'_, Current> {
        // Nothing panics while holding it; a poisoned lock still holds consistent state.
        self.inner
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn schedule(&self, leaf: &CertInfo) -> RenewalSchedule {
        let settings = &self.inner.settings;
        let seed = settings
            .seed
            .unwrap_or_else(|| seed_from_identity(leaf.public_key_der()));
        RenewalSchedule::new(leaf.validity(), settings.policy, seed)
    }

    fn emit(&self, event: &RenewalEvent) {
        if let Some(observer) = &self.inner.observer {
            observer(event);
        }
    }

    /// Reports `Scheduled` or `ClockUnreliable` when the plan differs from the last report.
    fn report_plan(&self, action: Action, decision: &Decision, now: u64) {
        let key = (action, decision.renew_at, decision.retry_at);
        let (changed, not_before) = {
            let mut current = self.lock();
            let changed = current.reported != Some(key);
            current.reported = Some(key);
            (changed, current.leaf.not_before)
        };
        if !changed {
            return;
        }
        let event = match action {
            Action::ClockUnreliable => RenewalEvent::ClockUnreliable {
                now,
                not_before,
                recheck_at: decision.wake_at,
            },
            _ => RenewalEvent::Scheduled {
                action,
                renew_at: decision.renew_at,
                next_check: decision.wake_at,
            },
        };
        self.emit(&event);
    }

    /// One renewal: ask the source, then validate, persist and swap.
    async fn attempt(&self) {
        let result = Rt::timeout(SOURCE_TIMEOUT, self.inner.source.renew(self.now())).await;
        let now = self.now();
        let outcome = match result {
            Some(Ok(pair)) => self.install(now, &pair, true, None).await,
            Some(Err(e)) => Err(RenewError::Source(e)),
            None => Err(RenewError::Source(SourceError::TimedOut)),
        };
        if let Err(e) = outcome {
            self.fail(now, &e).await;
        }
    }

    /// Polls a watched source; a changed pair is installed like a renewal.
    async fn poll_watched(&self) {
        let now = self.now();
        let outcome = match Rt::timeout(SOURCE_TIMEOUT, self.inner.source.changed()).await {
            Some(Ok(None)) => return,
            Some(Ok(Some(pair))) => self.install(now, &pair, false, None).await,
            Some(Err(e)) => Err(RenewError::Source(e)),
            None => Err(RenewError::Source(SourceError::TimedOut)),
        };
        match outcome {
            Ok(()) | Err(RenewError::Unchanged { .. }) => {}
            Err(e) => self.fail(now, &e).await,
        }
    }

    /// Validates `pair` at `now` as a fresh pair ([`TimingTolerance::fresh`]; against
    /// `roots_pem` when given, else the renewer's roots), saves it, then swaps it in.
    async fn install(
        &self,
        now: u64,
        pair: &CertifiedPair,
        due: bool,
        roots_pem: Option<&[u8]>,
    ) -> Result<(), RenewError> {
        let _one_at_a_time = self.inner.installing.lock().await;
        let settings = &self.inner.settings;
        let fresh = TimingTolerance::fresh(&settings.policy);
        let valid = settings.validate(pair, now, roots_pem, fresh)?;
        let (serial, mut history) = {
            let current = self.lock();
            if current.leaf.fingerprint_sha256 == valid.leaf.fingerprint_sha256 {
                return Err(RenewError::Unchanged {
                    fingerprint: valid.leaf.fingerprint_sha256,
                });
            }
            (current.serial, current.history.clone())
        };
        let identity = identity_of(&valid)?;
        history.record_success(now);
        let serial = match &self.inner.store {
            Some(store) => {
                store
                    .save_pair(serial, pair, &valid.leaf.fingerprint_sha256, &history)
                    .await?
            }
            None => serial,
        };
        let generation = self.inner.identity.replace(identity);
        let event = RenewalEvent::Renewed {
            generation,
            fingerprint: valid.leaf.fingerprint_sha256.clone(),
            subject: valid.leaf.subject.clone(),
            not_after: valid.leaf.not_after,
            due,
        };
        {
            let mut current = self.lock();
            current.leaf = valid.leaf;
            current.history = history;
            current.serial = serial;
            current.reported = None;
        }
        self.emit(&event);
        Ok(())
    }

    /// Records a failed attempt (persisted, so the backoff survives a restart) and reports it.
    async fn fail(&self, now: u64, error: &RenewError) {
        // The record names the live pair: rewriting it while an install switches pairs could
        // put back the name of files the install has just deleted.
        let _one_at_a_time = self.inner.installing.lock().await;
        let reason = error.to_string();
        let (history, serial, decision) = {
            let mut current = self.lock();
            current.history.record_failure(now, &reason);
            let decision = self.schedule(&current.leaf).decide(now, &current.history);
            (current.history.clone(), current.serial, decision)
        };
        if let Some(store) = &self.inner.store
            && let Err(e) = store.save_history(serial, &history).await
        {
            self.emit(&RenewalEvent::PersistFailed {
                reason: e.to_string(),
            });
        }
        let retry_at = match decision.action {
            Action::Backoff => decision.retry_at,
            Action::Renew | Action::Emergency => Some(decision.wake_at),
            _ => None,
        };
        self.emit(&RenewalEvent::Failed {
            stage: error.stage(),
            reason,
            failures: history.failures,
            retry_at,
        });
    }
}

impl Settings {
    /// `latchkey_pki::validate_allowing` of `pair` at `now`, with `tolerance`, this renewer's
    /// roots (or `roots`, when given), host and usage.
    fn validate(
        &self,
        pair: &CertifiedPair,
        now: u64,
        roots: Option<&[u8]>,
        tolerance: TimingTolerance,
    ) -> Result<ValidBundle, RenewError> {
        let mut bundle = Bundle::new(&pair.cert_pem, pair.key_pem()).with_usage(self.usage);
        if let Some(roots) = roots.or(self.roots_pem.as_deref()) {
            bundle = bundle.with_roots(roots);
        }
        if let Some(host) = &self.host {
            bundle = bundle.with_host(host);
        }
        validate_allowing(&bundle, now, tolerance).map_err(RenewError::Invalid)
    }
}

fn identity_of(valid: &ValidBundle) -> Result<Identity, RenewError> {
    Identity::from_der(valid.cert_chain.clone(), valid.private_key_der())
        .map_err(RenewError::Identity)
}

/// The leaf of a stored pair.
fn leaf_of(pair: &CertifiedPair, store: Option<&Store>) -> Result<CertInfo, RenewError> {
    let unusable = |reason: String| RenewError::Stored {
        file: store.map(Store::record_name).unwrap_or_default(),
        reason,
    };
    CertInfo::from_pem(&pair.cert_pem)
        .map_err(|e| unusable(e.to_string()))?
        .into_iter()
        .next()
        .ok_or_else(|| unusable("no certificate".to_owned()))
}

/// Whether `a`'s certificate was issued after `b`'s (a later notBefore); `false` when either
/// cannot be read.
fn issued_later(a: &CertifiedPair, b: &CertifiedPair) -> bool {
    let not_before = |p: &CertifiedPair| leaf_of(p, None).ok().map(|l| l.not_before);
    matches!((not_before(a), not_before(b)), (Some(a), Some(b)) if a > b)
}

/// The longest polling interval of a watched source the loop uses.
const MAX_WATCH_INTERVAL: Duration = Duration::from_secs(7 * 86_400);

/// Clears the running flag when the loop's future is dropped.
struct Running<'a>(&'a AtomicBool);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Wall-clock Unix seconds (0 before 1970: the schedule then reports an unreliable clock).
fn system_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
