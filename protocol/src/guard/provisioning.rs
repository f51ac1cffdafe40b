//! Provisioning abuse control: code guessing from one address.
//!
//! A panel asks for its configuration with a provisioning code and retries every 10 s until
//! an administrator adds that code, so a well-behaved address repeats *one* code. An
//! address that tries **more than `max_codes` distinct codes within a sliding `window`**
//! (default: more than 10 in an hour) is guessing: it is blacklisted for `blacklist`
//! (default 1 hour), the request that crossed the line is refused, and a security event is
//! raised. The blacklist ends by itself; the address then starts from zero.
//!
//! Windows are half-open: a code seen at `t` counts while `now − t < window`; a blacklist
//! set at `t` holds while `now < t + blacklist`.
//!
//! Codes are remembered as 64-bit SHA-256 fingerprints (the code itself is not kept).
//! **Full table:** when `max_tracked` addresses are tracked and none on the new address's
//! probe chain is idle (no live code, no ban), the new address is refused
//! ([`ProvisioningRefusal::Saturated`], answered 429) — tracking is what stops guessing, so an
//! untracked address is not let through.

use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use super::addr::ClientKey;
use super::hash::{Seed, fingerprint64};
use super::rate::{instant, nanos};
use super::table::{Place, Slot, Swept, Table};
use crate::time::Instant;

/// Provisioning abuse limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProvisioningConfig {
    /// Distinct codes an address may try within `window` (default 10); one more blacklists.
    pub max_codes: u32,
    /// The sliding window (default 1 hour).
    pub window: Duration,
    /// How long a blacklist lasts (default 1 hour).
    pub blacklist: Duration,
    /// Addresses tracked at most (default 16,384).
    pub max_tracked: usize,
}

impl Default for ProvisioningConfig {
    fn default() -> Self {
        ProvisioningConfig {
            max_codes: 10,
            window: Duration::from_secs(3600),
            blacklist: Duration::from_secs(3600),
            max_tracked: 16_384,
        }
    }
}

/// Why a provisioning request was refused by the abuse tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProvisioningRefusal {
    /// The address is blacklisted until `until`.
    Blacklisted {
        /// When the blacklist ends (monotonic).
        until: Instant,
        /// Whether this request started the blacklist.
        newly: bool,
    },
    /// The tracker is full; the address could not be tracked and is refused.
    Saturated,
}

impl fmt::Display for ProvisioningRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProvisioningRefusal::Blacklisted { .. } => {
                f.write_str("address is blacklisted for trying too many provisioning codes")
            }
            ProvisioningRefusal::Saturated => {
                f.write_str("provisioning tracker is full: retry later")
            }
        }
    }
}

impl core::error::Error for ProvisioningRefusal {}

/// One address: its recent distinct codes (fingerprint, last seen) and its ban end.
#[derive(Debug, Clone)]
pub(crate) struct Tracked {
    key: [u64; 2],
    live: bool,
    banned_until: u64,
    codes: Vec<(u64, u64)>,
}

impl Slot for Tracked {
    type Key = [u64; 2];
    fn vacant() -> Self {
        Tracked {
            key: [0; 2],
            live: false,
            banned_until: 0,
            codes: Vec::new(),
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

impl Tracked {
    /// Nothing left to remember at `now`: no ban running, no code inside the window.
    fn idle(&self, now: u64, window: u64) -> bool {
        self.banned_until <= now
            && self
                .codes
                .iter()
                .all(|&(_, t)| now.saturating_sub(t) >= window)
    }
}

/// The provisioning abuse tracker (see the module docs).
#[derive(Debug)]
pub struct ProvisioningTracker {
    config: ProvisioningConfig,
    window: u64,
    table: Table<Tracked>,
}

impl ProvisioningTracker {
    /// An empty tracker, its table keyed from `rng`.
    pub fn new<R: rand_core::CryptoRng + ?Sized>(config: ProvisioningConfig, rng: &mut R) -> Self {
        Self::with_seed(config, Seed::from_rng(rng))
    }

    pub(crate) fn with_seed(config: ProvisioningConfig, seed: Seed) -> Self {
        ProvisioningTracker {
            config,
            window: nanos_of(config.window),
            table: Table::new(config.max_tracked, seed),
        }
    }

    /// The limits.
    #[must_use]
    pub fn config(&self) -> &ProvisioningConfig {
        &self.config
    }

    /// The blacklist end for `key`, if one is running at `now`.
    #[must_use]
    pub fn blacklisted_until(&self, now: Instant, key: ClientKey) -> Option<Instant> {
        let now = nanos(now);
        let i = self.table.find(&key.words())?;
        let b = self.table.at(i).banned_until;
        (b > now).then(|| instant(b))
    }

    /// Records that `key` asked with `code` at `now`.
    ///
    /// # Errors
    ///
    /// [`ProvisioningRefusal`]: blacklisted (already, or by this request), or not trackable.
    pub fn record(
        &mut self,
        now: Instant,
        key: ClientKey,
        code: &str,
    ) -> Result<(), ProvisioningRefusal> {
        let now = nanos(now);
        let window = self.window;
        let words = key.words();
        let place = self.table.find_or_insert(
            words,
            || Tracked {
                key: words,
                live: true,
                banned_until: 0,
                codes: Vec::new(),
            },
            |t| t.idle(now, window),
        );
        let i = match place {
            Place::Found(i) | Place::New(i) => i,
            Place::Full => return Err(ProvisioningRefusal::Saturated),
        };
        let max_codes = self.config.max_codes as usize;
        let blacklist = nanos_of(self.config.blacklist);
        let t = self.table.at_mut(i);
        if t.banned_until > now {
            return Err(ProvisioningRefusal::Blacklisted {
                until: instant(t.banned_until),
                newly: false,
            });
        }
        t.banned_until = 0;
        t.codes
            .retain(|&(_, seen)| now.saturating_sub(seen) < window);
        let fp = fingerprint64(b"latchkey provisioning code", code.as_bytes());
        if let Some(c) = t.codes.iter_mut().find(|(f, _)| *f == fp) {
            c.1 = now;
            return Ok(());
        }
        t.codes.push((fp, now));
        if t.codes.len() > max_codes {
            t.codes = Vec::new();
            t.banned_until = now.saturating_add(blacklist).max(1);
            return Err(ProvisioningRefusal::Blacklisted {
                until: instant(t.banned_until),
                newly: true,
            });
        }
        Ok(())
    }

    /// Lifts `key`'s blacklist and forgets its codes (an administrator's decision).
    pub fn forgive(&mut self, key: ClientKey) -> bool {
        self.table.remove(&key.words()).is_some()
    }

    /// Addresses tracked.
    #[must_use]
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether nothing is tracked.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Heap bytes held (slots and code lists).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.table.heap_bytes()
            + self
                .table
                .iter()
                .map(|t| t.codes.capacity() * core::mem::size_of::<(u64, u64)>())
                .sum::<usize>()
    }

    pub(crate) fn sweep(&mut self, now: Instant, min_budget: usize) -> Swept {
        let budget = self.table.sweep_budget(min_budget);
        let now = nanos(now);
        let window = self.window;
        self.table.sweep(budget, |t| t.idle(now, window))
    }

    /// Live addresses as (key, ban end tick, codes with last-seen ticks).
    pub(crate) fn export(
        &self,
        now: Instant,
    ) -> impl Iterator<Item = (ClientKey, Option<u64>, Vec<(u64, u64)>)> + '_ {
        let now = nanos(now);
        let window = self.window;
        self.table
            .iter()
            .filter(move |t| !t.idle(now, window))
            .map(move |t| {
                let ban = (t.banned_until > now).then_some(t.banned_until);
                let codes = t
                    .codes
                    .iter()
                    .filter(|&&(_, s)| now.saturating_sub(s) < window)
                    .copied()
                    .collect();
                (ClientKey::from_words(t.key), ban, codes)
            })
    }

    /// Restores one address (dropped when idle or when the table is full).
    pub(crate) fn import(
        &mut self,
        now: Instant,
        key: ClientKey,
        banned_until: Option<u64>,
        codes: &[(u64, u64)],
    ) {
        let now = nanos(now);
        let window = self.window;
        let max_codes = self.config.max_codes as usize;
        // Times from a snapshot taken while the clock ran ahead are taken as no later than
        // now (codes seen) and now + blacklist (a ban): none may outlast its own rule.
        let longest_ban = now.saturating_add(nanos_of(self.config.blacklist));
        let t = Tracked {
            key: key.words(),
            live: true,
            banned_until: banned_until.map_or(0, |b| b.min(longest_ban)),
            codes: codes
                .iter()
                .map(|&(fp, s)| (fp, s.min(now)))
                .filter(|&(_, s)| now.saturating_sub(s) < window)
                .take(max_codes)
                .collect(),
        };
        if t.idle(now, window) {
            return;
        }
        let words = key.words();
        let _ = self
            .table
            .find_or_insert(words, move || t, |x| x.idle(now, window));
    }
}

pub(crate) fn nanos_of(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
