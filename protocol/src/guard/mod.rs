//! Device authentication and abuse control for local servers, as pure state.
//!
//! The guard answers the security questions of the gateway's endpoints without touching a
//! socket, a clock or a random source:
//!
//! | Endpoint | Question | Here |
//! |---|---|---|
//! | RemoteUI WebSocket upgrade, OTA | is this panel who it says, and not replaying? | [`Guard::authenticate_device`] ([`auth`], [`nonce`], [`rate`]) |
//! | `POST /api/v3/provision/request` | is this address guessing codes? | [`Guard::check_provisioning`] ([`provisioning`]) |
//! | admin login | is this address or account being brute-forced? | [`Guard::check_login`], [`Guard::login_failed`] ([`login`]) |
//! | admin pages | whose session is this cookie? | [`Guard::sessions_mut`] ([`session`]) |
//! | password setup and change | is it good enough, and how is it stored? | [`password`] |
//!
//! Every per-address table is keyed by [`ClientKey`] ([`addr`]: IPv6 grouped by /64 by
//! default, `X-Forwarded-For` believed only from configured proxies), has a hard cap with a
//! stated full-table behaviour, and is swept a bounded amount per [`Guard::handle_timeout`].
//! [`Guard::snapshot`] / [`Guard::restore`] carry bans and counters across restarts.
//!
//! # Time
//!
//! Two clocks come in, together, as [`Now`]:
//!
//! * **monotonic** [`Instant`] for everything measured as a span: GCRA rate limits, the
//!   provisioning hour, login windows and blocks, session idle and absolute timeouts, sweep
//!   scheduling;
//! * **wall-clock Unix seconds** where the fact itself is wall time: HMAC timestamps and the
//!   replay cache that must outlive them, ban and block ends in [`SecurityEvent`]s, and every
//!   time in a snapshot (a restarted driver has a new monotonic origin; wall time is what
//!   survives). Restoring maps each wall time back onto the new monotonic clock, rounding so
//!   that bans and windows end later, never earlier; downtime counts against them.
//!
//! # Driver loop
//!
//! ```no_run
//! use latchkey_protocol::guard::{AuthHeaders, DeviceDirectory, Guard, GuardConfig, Now};
//! use latchkey_protocol::time::Instant;
//! use rand_chacha::ChaCha20Rng;
//! use rand_core::SeedableRng;
//! # fn clocks() -> (Instant, u64) { (Instant::ORIGIN, 1_767_225_600) }
//! # fn next_request() -> (std::net::IpAddr, Vec<(String, String)>) { unimplemented!() }
//! # fn persist(_: &[u8]) {}
//!
//! let mut rng = ChaCha20Rng::from_seed([1; 32]); // a runtime passes its OS-seeded CSPRNG
//! let mut guard = Guard::new(GuardConfig::default(), &mut rng)?;
//! let devices = DeviceDirectory::new(&mut rng);
//! loop {
//!     let (peer, headers) = next_request();
//!     let (mono, unix) = clocks();
//!     let now = Now::new(mono, unix);
//!     let client = guard.client_key(peer, headers.iter()
//!         .filter(|(n, _)| n.eq_ignore_ascii_case("x-forwarded-for"))
//!         .map(|(_, v)| v.as_str()));
//!     let auth = AuthHeaders::from_pairs(headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
//!     match guard.authenticate_device(now, client, &auth, &devices) {
//!         Ok(device) => { /* upgrade the WebSocket for `device` */ let _ = device; }
//!         Err(e) => { /* answer e.status() with {"error": e.reason(), ...} */ let _ = e; }
//!     }
//!     while let Some(event) = guard.poll_event() {
//!         // log it; on a ban, persist a snapshot so the ban survives a crash
//!         let _ = event;
//!         persist(&guard.snapshot(now, false));
//!     }
//!     if guard.poll_timeout().is_some_and(|t| t <= mono) {
//!         guard.handle_timeout(now);
//!     }
//! }
//! # Ok::<(), latchkey_protocol::guard::ConfigError>(())
//! ```

pub mod addr;
pub mod auth;
mod config;
mod hash;
mod hex;
pub mod login;
pub mod nonce;
pub mod password;
pub mod provisioning;
pub mod rate;
pub mod session;
pub mod signer;
mod snapshot;
mod table;

#[cfg(test)]
mod tests;

use alloc::collections::VecDeque;
use alloc::string::String;
use core::fmt;
use core::net::IpAddr;
use core::time::Duration;

use rand_core::CryptoRng;

pub use addr::{AddressError, AddressPolicy, ClientKey, ClientSource, IpNet, TrustedProxies};
pub use auth::{
    AuthError, AuthHeaders, CredentialError, DeviceCredentials, DeviceDirectory, DeviceId,
    NonceRule, SigningVariant, Verified, timestamp_passes, verify_request,
};
pub use config::{ConfigError, GuardConfig, SweepConfig};
pub use login::{FailureOutcome, LoginConfig, LoginRefusal, LoginThrottle};
pub use nonce::{NonceCache, NonceConfig, NonceRefusal};
pub use password::{
    Argon2Params, PasswordError, PasswordHasher, PasswordPolicy, PasswordRule, PolicyViolation,
    Verification, import_door_station, import_door_station_hex,
};
pub use provisioning::{ProvisioningConfig, ProvisioningRefusal, ProvisioningTracker};
pub use rate::{Quota, QuotaError, RateLimited, RateLimiter};
pub use session::{NewSession, SessionConfig, SessionError, SessionId, SessionInfo, SessionStore};
pub use signer::{SignedHeaders, Signer};
pub use snapshot::SnapshotError;

use crate::time::Instant;
use hash::Seed;

/// The two clocks, read once by the driver per input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time (spans, deadlines).
    pub instant: Instant,
    /// Wall-clock Unix seconds (HMAC timestamps, persisted ends).
    pub unix_secs: u64,
}

impl Now {
    /// Both readings.
    #[must_use]
    pub const fn new(instant: Instant, unix_secs: u64) -> Self {
        Now { instant, unix_secs }
    }

    /// The wall-clock second of an internal tick, rounded later (see the module docs).
    pub(crate) fn unix_of_tick(&self, tick: u64) -> u64 {
        let now = rate::nanos(self.instant);
        if tick >= now {
            self.unix_secs
                .saturating_add((tick - now).div_ceil(1_000_000_000))
        } else {
            self.unix_secs.saturating_sub((now - tick) / 1_000_000_000)
        }
    }

    /// The internal tick of a wall-clock second.
    pub(crate) fn tick_of_unix(&self, unix: u64) -> u64 {
        let now = rate::nanos(self.instant);
        if unix >= self.unix_secs {
            now.saturating_add((unix - self.unix_secs).saturating_mul(1_000_000_000))
        } else {
            now.saturating_sub((self.unix_secs - unix).saturating_mul(1_000_000_000))
                .max(1)
        }
    }
}

/// A table of the guard, as named in events and memory reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TableKind {
    /// Device authentication rate cells.
    AuthRate,
    /// Provisioning rate cells.
    ProvisioningRate,
    /// Provisioning code tracking.
    Provisioning,
    /// Login failures per address.
    LoginAddresses,
    /// Login failures per account.
    LoginAccounts,
    /// The replay cache.
    Nonces,
    /// Sessions.
    Sessions,
}

/// What the application should log, and act on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecurityEvent {
    /// An address tried too many provisioning codes and is blacklisted. Persist a snapshot.
    ProvisioningBlacklisted {
        /// The address (or prefix).
        client: ClientKey,
        /// When the blacklist ends (Unix seconds).
        until_unix: u64,
    },
    /// An address failed too many logins and is blocked. Persist a snapshot.
    LoginBlocked {
        /// The address (or prefix).
        client: ClientKey,
        /// When the block ends (Unix seconds).
        until_unix: u64,
    },
    /// An account reached the consecutive-failure cap and is locked.
    AccountLocked {
        /// The account.
        account: String,
        /// Consecutive failures.
        failures: u32,
        /// When the lock ends (Unix seconds).
        until_unix: u64,
    },
    /// A correctly signed request reused a nonce: a replay.
    NonceReplayed {
        /// The device whose signature was replayed.
        device: DeviceId,
        /// Where the replay came from.
        client: ClientKey,
    },
    /// A device filled its share of the replay cache.
    NonceQuotaExceeded {
        /// The device.
        device: DeviceId,
    },
    /// A table reached its cap; newcomers get its full-table behaviour.
    TableSaturated {
        /// Which table.
        table: TableKind,
    },
}

/// Entries and heap bytes of one table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableMemory {
    /// Entries held.
    pub entries: usize,
    /// Heap bytes held.
    pub bytes: usize,
}

/// Memory held by every table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryReport {
    /// Device authentication rate cells.
    pub auth_rate: TableMemory,
    /// Provisioning rate cells.
    pub provisioning_rate: TableMemory,
    /// Provisioning code tracking.
    pub provisioning: TableMemory,
    /// Login failures per address.
    pub login_addresses: TableMemory,
    /// The replay cache.
    pub nonces: TableMemory,
    /// Sessions (estimated: 200 bytes each).
    pub sessions: TableMemory,
}

impl MemoryReport {
    /// Sum over the tables.
    #[must_use]
    pub fn total_bytes(&self) -> usize {
        self.auth_rate.bytes
            + self.provisioning_rate.bytes
            + self.provisioning.bytes
            + self.login_addresses.bytes
            + self.nonces.bytes
            + self.sessions.bytes
    }
}

/// Why a provisioning request was refused; always answered 429
/// (`{"status":"error","error":"Too many requests or blacklisted"}` in calaos_base).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProvisioningDenied {
    /// More than one request per 10 s (by default) from this address.
    RateLimited {
        /// When to try again.
        retry_after: Duration,
    },
    /// The address is blacklisted.
    Blacklisted {
        /// When the blacklist ends (Unix seconds).
        until_unix: u64,
    },
    /// The tracker is full and could not take this address.
    Saturated,
}

impl ProvisioningDenied {
    /// The HTTP status: 429.
    #[must_use]
    pub const fn status(&self) -> u16 {
        429
    }
}

impl fmt::Display for ProvisioningDenied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProvisioningDenied::RateLimited { retry_after } => write!(
                f,
                "too many provisioning requests from this address: retry in {} s",
                retry_after.as_secs().max(1)
            ),
            ProvisioningDenied::Blacklisted { until_unix } => write!(
                f,
                "this address tried too many provisioning codes and is blacklisted until Unix \
                 time {until_unix}"
            ),
            ProvisioningDenied::Saturated => {
                f.write_str("provisioning is busy: too many addresses are being tracked")
            }
        }
    }
}

impl core::error::Error for ProvisioningDenied {}

/// Device authentication and abuse control (see the module docs).
#[derive(Debug)]
pub struct Guard {
    config: GuardConfig,
    auth_rate: RateLimiter,
    provisioning_rate: RateLimiter,
    provisioning: ProvisioningTracker,
    login: LoginThrottle,
    nonces: NonceCache,
    sessions: SessionStore,
    events: VecDeque<SecurityEvent>,
    events_dropped: u64,
    next_sweep: Option<Instant>,
}

impl Guard {
    /// A guard with empty tables; hashing keys are drawn from `rng`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] from [`GuardConfig::validate`].
    pub fn new<R: CryptoRng + ?Sized>(
        config: GuardConfig,
        rng: &mut R,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Guard {
            auth_rate: RateLimiter::with_seed(
                config.auth_rate,
                config.max_rate_keys,
                Seed::from_rng(rng),
            ),
            provisioning_rate: RateLimiter::with_seed(
                config.provisioning_rate,
                config.max_rate_keys,
                Seed::from_rng(rng),
            ),
            provisioning: ProvisioningTracker::with_seed(config.provisioning, Seed::from_rng(rng)),
            login: LoginThrottle::with_seed(config.login, Seed::from_rng(rng)),
            nonces: NonceCache::with_seed(config.nonces, Seed::from_rng(rng)),
            sessions: SessionStore::new(config.sessions),
            events: VecDeque::new(),
            events_dropped: 0,
            next_sweep: None,
            config,
        })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &GuardConfig {
        &self.config
    }

    /// The key a request is counted under: the client address (from `X-Forwarded-For` only
    /// when `peer` is a trusted proxy, see [`TrustedProxies::client_ip`]) grouped by the
    /// address policy.
    #[must_use]
    pub fn client_key<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl IntoIterator<Item = &'a str, IntoIter: DoubleEndedIterator>,
    ) -> ClientKey {
        let (ip, _) = self.config.proxies.client_ip(peer, forwarded_for);
        self.config.addresses.key(ip)
    }

    /// The full device check: the attempt is charged to `client`'s rate limit, the headers
    /// are verified ([`verify_request`]) against `devices`, and the nonce is recorded in the
    /// replay cache.
    ///
    /// # Errors
    ///
    /// [`AuthError`], whose [`status`](AuthError::status) and [`reason`](AuthError::reason)
    /// are calaos_base's answer.
    pub fn authenticate_device(
        &mut self,
        now: Now,
        client: ClientKey,
        headers: &AuthHeaders<'_>,
        devices: &DeviceDirectory,
    ) -> Result<DeviceId, AuthError> {
        self.authenticate(now, client, headers, |t| devices.find_by_token(t), false)
    }

    /// [`authenticate_device`](Self::authenticate_device) with the application's own token
    /// lookup.
    ///
    /// # Errors
    ///
    /// As for [`authenticate_device`](Self::authenticate_device).
    pub fn authenticate_device_with<'c>(
        &mut self,
        now: Now,
        client: ClientKey,
        headers: &AuthHeaders<'_>,
        lookup: impl FnOnce(&str) -> Option<&'c DeviceCredentials>,
    ) -> Result<DeviceId, AuthError> {
        self.authenticate(now, client, headers, lookup, true)
    }

    fn authenticate<'c>(
        &mut self,
        now: Now,
        client: ClientKey,
        headers: &AuthHeaders<'_>,
        lookup: impl FnOnce(&str) -> Option<&'c DeviceCredentials>,
        recheck_token: bool,
    ) -> Result<DeviceId, AuthError> {
        self.schedule(now.instant);
        // Load the client's rate cell, the nonce's replay-cache index slot and the index
        // slot of the oldest nonce (the one recording retires first when it has expired)
        // back to back, before any other work, so their cache misses overlap with each
        // other and with parsing (the nonce's slot does not depend on the device). Answers
        // keep calaos_base's precedence: the rate limit first.
        let quick_key = headers
            .nonce
            .and_then(|n| nonce::NonceKey::decoded(DeviceId(0), n));
        let hints = (
            self.auth_rate.touch(client),
            quick_key.as_ref().map(|k| self.nonces.touch(k)),
            self.nonces.touch_front(),
        );
        core::hint::black_box(hints);
        let prepared = auth::prepare(
            now.unix_secs,
            headers,
            lookup,
            recheck_token,
            quick_key.is_some(),
        );

        let limited = self.auth_rate.check(now.instant, client);
        if self.auth_rate.take_saturation() {
            self.push(SecurityEvent::TableSaturated {
                table: TableKind::AuthRate,
            });
        }
        limited.map_err(|l| AuthError::RateLimited {
            retry_after: l.retry_after,
        })?;
        let v = prepared?.finish()?;
        let key = match quick_key {
            Some(mut k) => {
                k.device = v.device.0;
                k
            }
            None => nonce::NonceKey::new(v.device, v.nonce),
        };
        match self
            .nonces
            .record_key(now, key, v.timestamp, v.tolerance_secs)
        {
            Ok(()) => Ok(v.device),
            Err(NonceRefusal::Replayed) => {
                self.push(SecurityEvent::NonceReplayed {
                    device: v.device,
                    client,
                });
                Err(AuthError::NonceReplayed)
            }
            Err(NonceRefusal::DeviceQuotaExceeded) => {
                self.push(SecurityEvent::NonceQuotaExceeded { device: v.device });
                Err(AuthError::NonceQuotaExceeded)
            }
            Err(_) => {
                self.push(SecurityEvent::TableSaturated {
                    table: TableKind::Nonces,
                });
                Err(AuthError::NonceCacheFull)
            }
        }
    }

    /// Checks a provisioning request from `client` with `code`: a running blacklist, then
    /// the rate (1 per 10 s), then distinct-code counting (more than 10 in an hour
    /// blacklists the address for an hour and raises
    /// [`SecurityEvent::ProvisioningBlacklisted`]).
    ///
    /// # Errors
    ///
    /// [`ProvisioningDenied`] (answered 429).
    pub fn check_provisioning(
        &mut self,
        now: Now,
        client: ClientKey,
        code: &str,
    ) -> Result<(), ProvisioningDenied> {
        self.schedule(now.instant);
        if let Some(until) = self.provisioning.blacklisted_until(now.instant, client) {
            return Err(ProvisioningDenied::Blacklisted {
                until_unix: now.unix_of_tick(rate::nanos(until)),
            });
        }
        let limited = self.provisioning_rate.check(now.instant, client);
        if self.provisioning_rate.take_saturation() {
            self.push(SecurityEvent::TableSaturated {
                table: TableKind::ProvisioningRate,
            });
        }
        limited.map_err(|l| ProvisioningDenied::RateLimited {
            retry_after: l.retry_after,
        })?;
        match self.provisioning.record(now.instant, client, code) {
            Ok(()) => Ok(()),
            Err(ProvisioningRefusal::Blacklisted { until, newly }) => {
                let until_unix = now.unix_of_tick(rate::nanos(until));
                if newly {
                    self.push(SecurityEvent::ProvisioningBlacklisted { client, until_unix });
                }
                Err(ProvisioningDenied::Blacklisted { until_unix })
            }
            Err(_) => {
                self.push(SecurityEvent::TableSaturated {
                    table: TableKind::Provisioning,
                });
                Err(ProvisioningDenied::Saturated)
            }
        }
    }

    /// Whether a login from `client` for `account` (pass it only when the account exists)
    /// may be tried now. Call before verifying the password.
    ///
    /// # Errors
    ///
    /// [`LoginRefusal`] while the address is blocked or the account locked.
    pub fn check_login(
        &self,
        now: Now,
        client: ClientKey,
        account: Option<&str>,
    ) -> Result<(), LoginRefusal> {
        self.login.check(now.instant, client, account)
    }

    /// Records a failed login (raises [`SecurityEvent::LoginBlocked`] /
    /// [`SecurityEvent::AccountLocked`] when it crosses a limit).
    pub fn login_failed(
        &mut self,
        now: Now,
        client: ClientKey,
        account: Option<&str>,
    ) -> FailureOutcome {
        self.schedule(now.instant);
        let out = self.login.record_failure(now.instant, client, account);
        if let Some(until) = out.address_blocked_until {
            self.push(SecurityEvent::LoginBlocked {
                client,
                until_unix: now.unix_of_tick(rate::nanos(until)),
            });
        }
        if let (Some(until), Some(account)) = (out.account_locked_until, account) {
            self.push(SecurityEvent::AccountLocked {
                account: String::from(account),
                failures: out.account_failures,
                until_unix: now.unix_of_tick(rate::nanos(until)),
            });
        }
        if self.login.take_saturation() {
            let table = if out.account_untracked {
                TableKind::LoginAccounts
            } else {
                TableKind::LoginAddresses
            };
            self.push(SecurityEvent::TableSaturated { table });
        }
        out
    }

    /// Records a successful login: the address's failures and the account's count reset.
    pub fn login_succeeded(&mut self, now: Now, client: ClientKey, account: Option<&str>) {
        self.login.record_success(now.instant, client, account);
    }

    /// The session store.
    #[must_use]
    pub fn sessions(&self) -> &SessionStore {
        &self.sessions
    }

    /// The session store, to log in, validate, rotate and log out.
    pub fn sessions_mut(&mut self) -> &mut SessionStore {
        &mut self.sessions
    }

    /// The replay cache.
    #[must_use]
    pub fn nonces(&self) -> &NonceCache {
        &self.nonces
    }

    /// The provisioning tracker (to inspect or [`forgive`](ProvisioningTracker::forgive)).
    pub fn provisioning_mut(&mut self) -> &mut ProvisioningTracker {
        &mut self.provisioning
    }

    /// The login throttle (to inspect or [`reset_account`](LoginThrottle::reset_account)).
    pub fn login_mut(&mut self) -> &mut LoginThrottle {
        &mut self.login
    }

    /// Sweeps every table a bounded amount when a sweep is due (see [`SweepConfig`]);
    /// earlier calls do nothing.
    pub fn handle_timeout(&mut self, now: Now) {
        let Some(due) = self.poll_timeout() else {
            return;
        };
        if now.instant < due {
            return;
        }
        let min = self.config.sweep.min_budget;
        self.auth_rate.sweep(now.instant, min);
        self.provisioning_rate.sweep(now.instant, min);
        self.provisioning.sweep(now.instant, min);
        self.login.sweep(now.instant, min);
        self.nonces.expire(now, min);
        let b = min.max(self.sessions.len() / 64);
        self.sessions.sweep(now.instant, b);
        self.next_sweep = if self.is_idle() {
            None
        } else {
            Some(now.instant + self.config.sweep.interval)
        };
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has work: the next sweep while any
    /// table holds entries (or, when only sessions do, the first session's end); `None`
    /// while everything is empty. Changes after any call that adds state (including through
    /// [`sessions_mut`](Self::sessions_mut)) and after `handle_timeout`.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_sweep.or_else(|| self.sessions.next_expiry())
    }

    /// The next security event. New events arrive from the `check_*`, `authenticate_*` and
    /// `login_*` calls.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SecurityEvent> {
        self.events.pop_front()
    }

    /// Events not queued because the queue was full.
    #[must_use]
    pub fn events_dropped(&self) -> u64 {
        self.events_dropped
    }

    /// Entries and heap bytes per table.
    #[must_use]
    pub fn memory(&self) -> MemoryReport {
        MemoryReport {
            auth_rate: TableMemory {
                entries: self.auth_rate.len(),
                bytes: self.auth_rate.heap_bytes(),
            },
            provisioning_rate: TableMemory {
                entries: self.provisioning_rate.len(),
                bytes: self.provisioning_rate.heap_bytes(),
            },
            provisioning: TableMemory {
                entries: self.provisioning.len(),
                bytes: self.provisioning.heap_bytes(),
            },
            login_addresses: TableMemory {
                entries: self.login.tracked_addresses(),
                bytes: self.login.heap_bytes(),
            },
            nonces: TableMemory {
                entries: self.nonces.len(),
                bytes: self.nonces.heap_bytes(),
            },
            sessions: TableMemory {
                entries: self.sessions.len(),
                bytes: self.sessions.len() * 200,
            },
        }
    }

    fn is_idle(&self) -> bool {
        self.auth_rate.is_empty()
            && self.provisioning_rate.is_empty()
            && self.provisioning.is_empty()
            && self.login.tracked_addresses() == 0
            && self.nonces.is_empty()
            && self.sessions.is_empty()
    }

    fn schedule(&mut self, now: Instant) {
        if self.next_sweep.is_none() {
            self.next_sweep = Some(now + self.config.sweep.interval);
        }
    }

    fn push(&mut self, e: SecurityEvent) {
        if self.events.len() >= self.config.max_events {
            self.events_dropped += 1;
        } else {
            self.events.push_back(e);
        }
    }
}
