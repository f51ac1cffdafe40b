//! Login throttling, per address and per account.
//!
//! * **Per address** (the ESP32 door station's rule): `max_failures` failed logins (default 5)
//!   within a sliding `window` (default 15 minutes) block the address for `block` (default
//!   5 minutes). A failure at `t` counts while `now − t < window`; the block holds while
//!   `now < start + block` and ends with a clean slate. A successful login clears the
//!   address's failures.
//! * **Per account** (NIST SP 800-63B §5.2.2: at most 100 consecutive failures): after
//!   `max_consecutive` failures in a row (default 100, never more) the account is locked for
//!   `account_lock` (default 15 minutes) counted from the latest failure; while the count
//!   stays at the cap every further failure locks it again, so past the cap an attacker
//!   gets one guess per `account_lock`. Only a successful login resets the count. Pass the
//!   account only when it exists, so invented names cannot fill the table.
//!
//! **Full tables.** Address records hold up to 8 failure times (96-byte slots). When
//! `max_tracked_addresses` addresses are tracked and none on the new address's probe chain
//! is idle, the new address shares one *overflow* record with every other untracked
//! address: during such a flood, newcomers together get `max_failures` failures before all
//! of them are blocked. When `max_tracked_accounts` accounts have failure counts, further
//! accounts take the place of the unlocked record with the fewest failures; only when every
//! tracked account is locked is a newcomer left uncounted (its address still is) and the
//! saturation reported.

use alloc::collections::BTreeMap;
use core::fmt;
use core::time::Duration;

use super::addr::ClientKey;
use super::hash::{Seed, fingerprint128};
use super::provisioning::nanos_of;
use super::rate::{instant, nanos};
use super::table::{Place, Slot, Swept, Table};
use crate::time::Instant;

/// Most failures an address record can count (the largest `max_failures`).
pub const MAX_FAILURES_LIMIT: u32 = 8;

/// NIST SP 800-63B's ceiling on consecutive failures per account.
pub const NIST_MAX_CONSECUTIVE: u32 = 100;

/// Login throttle limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginConfig {
    /// Failures within `window` that block an address (1..=8, default 5).
    pub max_failures: u32,
    /// The sliding window (default 15 minutes).
    pub window: Duration,
    /// How long an address stays blocked (default 5 minutes).
    pub block: Duration,
    /// Consecutive failures that lock an account (1..=100, default 100).
    pub max_consecutive: u32,
    /// How long an account stays locked after a failure at the cap (default 15 minutes).
    pub account_lock: Duration,
    /// Addresses tracked at most (default 16,384).
    pub max_tracked_addresses: usize,
    /// Accounts with failure counts tracked at most (default 1,024).
    pub max_tracked_accounts: usize,
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            max_failures: 5,
            window: Duration::from_secs(15 * 60),
            block: Duration::from_secs(5 * 60),
            max_consecutive: NIST_MAX_CONSECUTIVE,
            account_lock: Duration::from_secs(15 * 60),
            max_tracked_addresses: 16_384,
            max_tracked_accounts: 1_024,
        }
    }
}

/// Why a login attempt may not proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginRefusal {
    /// Too many failures from this address; blocked until `until`.
    AddressBlocked {
        /// When the block ends (monotonic).
        until: Instant,
    },
    /// Too many consecutive failures for this account; locked until `until`.
    AccountLocked {
        /// When the lock ends (monotonic).
        until: Instant,
    },
}

impl LoginRefusal {
    /// When the refusal ends.
    #[must_use]
    pub fn until(&self) -> Instant {
        match self {
            LoginRefusal::AddressBlocked { until } | LoginRefusal::AccountLocked { until } => {
                *until
            }
        }
    }
}

impl fmt::Display for LoginRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LoginRefusal::AddressBlocked { .. } => {
                "too many failed logins from this address: try again in a few minutes"
            }
            LoginRefusal::AccountLocked { .. } => {
                "too many failed logins for this account: try again later"
            }
        })
    }
}

impl core::error::Error for LoginRefusal {}

/// What recording a failure changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailureOutcome {
    /// Set when this failure blocked the address: the block's end.
    pub address_blocked_until: Option<Instant>,
    /// Set when this failure locked the account: the lock's end.
    pub account_locked_until: Option<Instant>,
    /// Consecutive failures of the account so far (0 when no account was given or tracked).
    pub account_failures: u32,
    /// Whether the account could not be tracked because the account table is full.
    pub account_untracked: bool,
}

/// One address: recent failure times (nanoseconds, oldest first) and its block end.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AddrRecord {
    key: [u64; 2],
    live: bool,
    n: u8,
    fails: [u64; MAX_FAILURES_LIMIT as usize],
    blocked_until: u64,
}

impl Slot for AddrRecord {
    type Key = [u64; 2];
    fn vacant() -> Self {
        AddrRecord {
            key: [0; 2],
            live: false,
            n: 0,
            fails: [0; MAX_FAILURES_LIMIT as usize],
            blocked_until: 0,
        }
    }
    fn is_vacant(&self) -> bool {
        !self.live
    }
    fn key(&self) -> [u64; 2] {
        self.key
    }
    fn hash(key: &[u64; 2], seed: &Seed) -> u64 {
        seed.hash2(key[0], key[1])
    }
}

impl AddrRecord {
    fn fresh(key: [u64; 2]) -> Self {
        AddrRecord {
            key,
            live: true,
            ..AddrRecord::vacant()
        }
    }

    fn failures(&self) -> &[u64] {
        &self.fails[..usize::from(self.n)]
    }

    /// Drops failures that left the window.
    fn prune(&mut self, now: u64, window: u64) {
        let keep = self
            .failures()
            .iter()
            .position(|&t| now.saturating_sub(t) < window);
        let start = keep.unwrap_or(usize::from(self.n));
        self.fails.copy_within(start..usize::from(self.n), 0);
        self.n -= start as u8;
    }

    fn idle(&self, now: u64, window: u64) -> bool {
        self.blocked_until <= now
            && self
                .failures()
                .iter()
                .all(|&t| now.saturating_sub(t) >= window)
    }
}

/// Consecutive failures of one account and its lock end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AccountRecord {
    pub(crate) consecutive: u32,
    pub(crate) locked_until: u64,
}

/// The login throttle (see the module docs).
#[derive(Debug)]
pub struct LoginThrottle {
    config: LoginConfig,
    window: u64,
    addresses: Table<AddrRecord>,
    overflow: AddrRecord,
    accounts: BTreeMap<[u64; 2], AccountRecord>,
    saturated: bool,
    saturation_reported: bool,
}

impl LoginThrottle {
    /// An empty throttle, its table keyed from `rng`. Limits are clamped to
    /// [`MAX_FAILURES_LIMIT`] and [`NIST_MAX_CONSECUTIVE`].
    pub fn new<R: rand_core::CryptoRng + ?Sized>(config: LoginConfig, rng: &mut R) -> Self {
        Self::with_seed(config, Seed::from_rng(rng))
    }

    pub(crate) fn with_seed(mut config: LoginConfig, seed: Seed) -> Self {
        config.max_failures = config.max_failures.clamp(1, MAX_FAILURES_LIMIT);
        config.max_consecutive = config.max_consecutive.clamp(1, NIST_MAX_CONSECUTIVE);
        LoginThrottle {
            config,
            window: nanos_of(config.window),
            addresses: Table::new(config.max_tracked_addresses, seed),
            overflow: AddrRecord::fresh([u64::MAX; 2]),
            accounts: BTreeMap::new(),
            saturated: false,
            saturation_reported: false,
        }
    }

    /// The limits in force.
    #[must_use]
    pub fn config(&self) -> &LoginConfig {
        &self.config
    }

    /// Whether a login from `client` (for `account`, when it exists) may be tried at `now`.
    ///
    /// # Errors
    ///
    /// [`LoginRefusal`] while the address is blocked or the account locked.
    pub fn check(
        &self,
        now: Instant,
        client: ClientKey,
        account: Option<&str>,
    ) -> Result<(), LoginRefusal> {
        let n = nanos(now);
        let record = match self.addresses.find(&client.words()) {
            Some(i) => Some(self.addresses.at(i)),
            None if self.addresses.is_full() => Some(&self.overflow),
            None => None,
        };
        if let Some(r) = record
            && r.blocked_until > n
        {
            return Err(LoginRefusal::AddressBlocked {
                until: instant(r.blocked_until),
            });
        }
        if let Some(a) = account.and_then(|a| self.accounts.get(&account_key(a)))
            && a.locked_until > n
        {
            return Err(LoginRefusal::AccountLocked {
                until: instant(a.locked_until),
            });
        }
        Ok(())
    }

    /// Records a failed login from `client` (and for `account`, when it exists) at `now`.
    pub fn record_failure(
        &mut self,
        now: Instant,
        client: ClientKey,
        account: Option<&str>,
    ) -> FailureOutcome {
        let n = nanos(now);
        let window = self.window;
        let mut out = FailureOutcome::default();
        let words = client.words();
        let place = self.addresses.find_or_insert(
            words,
            || AddrRecord::fresh(words),
            |r| r.idle(n, window),
        );
        let record = match place {
            Place::Found(i) | Place::New(i) => self.addresses.at_mut(i),
            Place::Full => {
                self.saturated = true;
                &mut self.overflow
            }
        };
        if record.blocked_until <= n {
            record.blocked_until = 0;
            record.prune(n, window);
            if usize::from(record.n) == record.fails.len() {
                record.fails.copy_within(1.., 0);
                record.n -= 1;
            }
            record.fails[usize::from(record.n)] = n;
            record.n += 1;
            if u32::from(record.n) >= self.config.max_failures {
                record.n = 0;
                record.blocked_until = n.saturating_add(nanos_of(self.config.block)).max(1);
                out.address_blocked_until = Some(instant(record.blocked_until));
            }
        }
        if let Some(account) = account {
            let key = account_key(account);
            if !self.accounts.contains_key(&key)
                && self.accounts.len() >= self.config.max_tracked_accounts
            {
                // Full: the unlocked record with the fewest failures makes room (a lone
                // failure on each of many names must not switch the per-account cap off
                // for every other name); when every record is locked, the newcomer goes
                // uncounted and the saturation is reported.
                let lightest = self
                    .accounts
                    .iter()
                    .filter(|(_, a)| a.locked_until <= n)
                    .min_by_key(|(_, a)| a.consecutive)
                    .map(|(k, _)| *k);
                match lightest {
                    Some(k) => {
                        self.accounts.remove(&k);
                    }
                    None => {
                        self.saturated = true;
                        out.account_untracked = true;
                    }
                }
            }
            if !out.account_untracked {
                let a = self.accounts.entry(key).or_default();
                a.consecutive = a
                    .consecutive
                    .saturating_add(1)
                    .min(self.config.max_consecutive);
                out.account_failures = a.consecutive;
                if a.consecutive >= self.config.max_consecutive {
                    a.locked_until = n.saturating_add(nanos_of(self.config.account_lock)).max(1);
                    out.account_locked_until = Some(instant(a.locked_until));
                }
            }
        }
        out
    }

    /// Records a successful login: clears the address's failures and the account's count.
    pub fn record_success(&mut self, now: Instant, client: ClientKey, account: Option<&str>) {
        let n = nanos(now);
        if let Some(i) = self.addresses.find(&client.words()) {
            let r = self.addresses.at_mut(i);
            r.n = 0;
            if r.blocked_until <= n {
                self.addresses.remove_at(i);
            }
        }
        if let Some(a) = account {
            self.accounts.remove(&account_key(a));
        }
    }

    /// Unlocks `account` and clears its count (an administrator's decision).
    pub fn reset_account(&mut self, account: &str) -> bool {
        self.accounts.remove(&account_key(account)).is_some()
    }

    /// Consecutive failures recorded for `account`.
    #[must_use]
    pub fn account_failures(&self, account: &str) -> u32 {
        self.accounts
            .get(&account_key(account))
            .map_or(0, |a| a.consecutive)
    }

    /// Addresses tracked.
    #[must_use]
    pub fn tracked_addresses(&self) -> usize {
        self.addresses.len()
    }

    /// Accounts with a failure count.
    #[must_use]
    pub fn tracked_accounts(&self) -> usize {
        self.accounts.len()
    }

    /// Heap bytes held (address slots and account records, estimated for the latter).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.addresses.heap_bytes() + self.accounts.len() * 48
    }

    /// `true` once per saturation episode: the first call after a table could not take a
    /// newcomer. The episode ends when a sweep finds both tables under 7/8 of their caps.
    pub fn take_saturation(&mut self) -> bool {
        if self.saturated && !self.saturation_reported {
            self.saturation_reported = true;
            return true;
        }
        false
    }

    pub(crate) fn sweep(&mut self, now: Instant, min_budget: usize) -> Swept {
        let budget = self.addresses.sweep_budget(min_budget);
        let n = nanos(now);
        let window = self.window;
        if self.overflow.idle(n, window) {
            self.overflow = AddrRecord::fresh([u64::MAX; 2]);
        }
        let swept = self.addresses.sweep(budget, |r| r.idle(n, window));
        if self.addresses.len() * 8 < self.addresses.max_len() * 7
            && self.accounts.len() * 8 < self.config.max_tracked_accounts * 7
        {
            self.saturated = false;
            self.saturation_reported = false;
        }
        swept
    }

    /// Live address records as (key, block end tick, failure ticks).
    pub(crate) fn export_addresses(
        &self,
        now: Instant,
    ) -> impl Iterator<Item = (ClientKey, Option<u64>, impl Iterator<Item = u64> + '_)> + '_ {
        let n = nanos(now);
        let window = self.window;
        self.addresses
            .iter()
            .filter(move |r| !r.idle(n, window))
            .map(move |r| {
                let block = (r.blocked_until > n).then_some(r.blocked_until);
                let fails = r
                    .failures()
                    .iter()
                    .filter(move |&&t| n.saturating_sub(t) < window)
                    .copied();
                (ClientKey::from_words(r.key), block, fails)
            })
    }

    /// Account records as (fingerprint, consecutive failures, lock end tick).
    pub(crate) fn export_accounts(
        &self,
        now: Instant,
    ) -> impl Iterator<Item = ([u64; 2], u32, Option<u64>)> + '_ {
        let n = nanos(now);
        self.accounts.iter().map(move |(k, a)| {
            (
                *k,
                a.consecutive,
                (a.locked_until > n).then_some(a.locked_until),
            )
        })
    }

    pub(crate) fn import_address(
        &mut self,
        now: Instant,
        key: ClientKey,
        blocked_until: Option<u64>,
        fails: &[u64],
    ) {
        let n = nanos(now);
        let window = self.window;
        let mut r = AddrRecord::fresh(key.words());
        // Times from a snapshot taken while the clock ran ahead are taken as no later than
        // now (failures) and now + block (a block): none may outlast its own rule.
        let longest_block = n.saturating_add(nanos_of(self.config.block));
        r.blocked_until = blocked_until.map_or(0, |b| b.min(longest_block));
        for t in fails
            .iter()
            .rev()
            .take(self.config.max_failures as usize - 1)
            .rev()
            .map(|&t| t.min(n))
        {
            if n.saturating_sub(t) < window {
                r.fails[usize::from(r.n)] = t;
                r.n += 1;
            }
        }
        if r.idle(n, window) {
            return;
        }
        let words = key.words();
        let _ = self
            .addresses
            .find_or_insert(words, move || r, |x| x.idle(n, window));
    }

    pub(crate) fn import_account(
        &mut self,
        now: Instant,
        key: [u64; 2],
        consecutive: u32,
        locked_until: Option<u64>,
    ) {
        if consecutive == 0 || self.accounts.len() >= self.config.max_tracked_accounts {
            return;
        }
        let longest_lock = nanos(now).saturating_add(nanos_of(self.config.account_lock));
        self.accounts.insert(
            key,
            AccountRecord {
                consecutive: consecutive.min(self.config.max_consecutive),
                locked_until: locked_until.map_or(0, |l| l.min(longest_lock)),
            },
        );
    }
}

/// The persisted identity of an account name.
pub(crate) fn account_key(account: &str) -> [u64; 2] {
    fingerprint128(b"latchkey login account", account.as_bytes())
}
