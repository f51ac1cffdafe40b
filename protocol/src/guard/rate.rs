//! Per-address rate limits with GCRA (the generic cell rate algorithm).
//!
//! A [`Quota`] of *n* per period *P* has emission interval *T = P / n* and burst tolerance
//! *τ = (n − 1)·T*. Each address keeps one number, its theoretical arrival time (TAT). A
//! request at `now` is allowed when `max(TAT, now) − now ≤ τ` (inclusive), and then
//! `TAT ← max(TAT, now) + T`; a refused request changes nothing and is told to retry after
//! `max(TAT, now) − τ − now`. So a fresh address may send *n* at once, then one every *T*;
//! over any window of length *W* at most `n + ⌊W / T⌋` pass. A cell whose TAT is not after
//! `now` is indistinguishable from no cell, which is what makes expiry lossless: such cells
//! are swept, or reclaimed by a new address when the table is at its cap.
//!
//! Memory: 24 bytes per slot (16-byte key, 8-byte TAT), at most 4/3 slots per address.
//!
//! **Full table.** When `max_keys` addresses hold live cells and none on the new key's probe
//! chain has expired, the new address is charged to one *overflow* cell shared by every
//! address that could not get its own, with the same quota. Addresses already tracked keep
//! their own allowance; newcomers together get one address's worth until cells expire. The
//! limiter reports the episode once ([`RateLimiter::take_saturation`]).

use core::fmt;
use core::num::NonZeroU32;
use core::time::Duration;

use rand_core::CryptoRng;

use super::addr::ClientKey;
use super::hash::Seed;
use super::table::{Place, Slot, Swept, Table};
use crate::time::Instant;

/// A rate: `count` requests per `period`, with a burst of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    count: NonZeroU32,
    period: Duration,
}

impl Quota {
    /// The RemoteUI design's authentication limit: 3 attempts per minute per address.
    pub const REMOTE_UI_DESIGN_AUTH: Quota = Quota::per_minute(nz(3));
    /// calaos_base's authentication limit (`MAX_ATTEMPTS_PER_MINUTE = 20`).
    pub const CALAOS_BASE_AUTH: Quota = Quota::per_minute(nz(20));
    /// Provisioning: one request per 10 seconds per address (both Calaos sources).
    pub const PROVISIONING: Quota = Quota {
        count: nz(1),
        period: Duration::from_secs(10),
    };

    /// `count` per minute.
    #[must_use]
    pub const fn per_minute(count: NonZeroU32) -> Quota {
        Quota {
            count,
            period: Duration::from_secs(60),
        }
    }

    /// `count` per `period`.
    ///
    /// # Errors
    ///
    /// [`QuotaError`] when `count` is zero or `period / count` is under a nanosecond.
    pub fn new(count: u32, period: Duration) -> Result<Quota, QuotaError> {
        let count = NonZeroU32::new(count).ok_or(QuotaError::ZeroCount)?;
        let q = Quota { count, period };
        if q.emission_nanos() == 0 {
            return Err(QuotaError::TooFast);
        }
        Ok(q)
    }

    /// Requests per period (also the burst).
    #[must_use]
    pub const fn count(&self) -> u32 {
        self.count.get()
    }

    /// The period.
    #[must_use]
    pub const fn period(&self) -> Duration {
        self.period
    }

    /// `period / count`: the steady spacing between requests.
    #[must_use]
    pub fn emission_interval(&self) -> Duration {
        Duration::from_nanos(self.emission_nanos())
    }

    fn emission_nanos(&self) -> u64 {
        let p = u64::try_from(self.period.as_nanos()).unwrap_or(u64::MAX);
        p / u64::from(self.count.get())
    }

    fn tolerance_nanos(&self) -> u64 {
        self.emission_nanos()
            .saturating_mul(u64::from(self.count.get() - 1))
    }
}

const fn nz(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(n) => n,
        None => panic!("zero"),
    }
}

/// An invalid [`Quota`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuotaError {
    /// A quota of zero requests.
    ZeroCount,
    /// More than one request per nanosecond.
    TooFast,
}

impl fmt::Display for QuotaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QuotaError::ZeroCount => "quota count must be at least 1",
            QuotaError::TooFast => "quota period divided by count is under one nanosecond",
        })
    }
}

impl core::error::Error for QuotaError {}

/// A request refused by a rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    /// How long until the same request would be allowed.
    pub retry_after: Duration,
}

impl fmt::Display for RateLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "too many requests from this address: retry in {} ms",
            self.retry_after.as_millis()
        )
    }
}

impl core::error::Error for RateLimited {}

/// One GCRA cell: the key and its theoretical arrival time in nanoseconds (0 = vacant).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cell {
    key: [u64; 2],
    tat: u64,
}

impl Slot for Cell {
    type Key = [u64; 2];
    fn vacant() -> Self {
        Cell {
            key: [0; 2],
            tat: 0,
        }
    }
    #[inline]
    fn is_vacant(&self) -> bool {
        self.tat == 0
    }
    #[inline]
    fn key(&self) -> [u64; 2] {
        self.key
    }
    #[inline]
    fn hash(key: &[u64; 2], seed: &Seed) -> u64 {
        seed.hash2(key[0], key[1])
    }
}

/// Internal times ("ticks") are nanoseconds since the driver's origin plus this bias, so a
/// restored snapshot can place past events (failures, codes seen) before the origin of a
/// freshly started driver. Zero is never a live tick, so tables use it for "vacant".
pub(crate) const BIAS: u64 = 1 << 60;

/// The tick of an instant.
#[inline]
pub(crate) fn nanos(i: Instant) -> u64 {
    u64::try_from(i.duration_since_origin().as_nanos())
        .unwrap_or(u64::MAX)
        .saturating_add(BIAS)
}

/// The instant of a tick (ticks before the origin read as the origin).
#[inline]
pub(crate) fn instant(n: u64) -> Instant {
    Instant::from_duration_since_origin(Duration::from_nanos(n.saturating_sub(BIAS)))
}

/// The GCRA step (see the module docs); `Err` carries the wait in nanoseconds.
#[inline]
fn gcra(tat: &mut u64, now: u64, t: u64, tau: u64) -> Result<(), u64> {
    let arrival = (*tat).max(now);
    let ahead = arrival - now;
    if ahead > tau {
        return Err(ahead - tau);
    }
    *tat = arrival.saturating_add(t).max(1);
    Ok(())
}

/// A keyed GCRA limiter with a hard cap on tracked addresses (see the module docs).
#[derive(Debug)]
pub struct RateLimiter {
    quota: Quota,
    t: u64,
    tau: u64,
    table: Table<Cell>,
    overflow_tat: u64,
    saturated: bool,
    saturation_reported: bool,
}

impl RateLimiter {
    /// A limiter for `quota`, tracking at most `max_keys` addresses, with its hashing key drawn
    /// from `rng`.
    pub fn new<R: CryptoRng + ?Sized>(quota: Quota, max_keys: usize, rng: &mut R) -> Self {
        Self::with_seed(quota, max_keys, Seed::from_rng(rng))
    }

    pub(crate) fn with_seed(quota: Quota, max_keys: usize, seed: Seed) -> Self {
        RateLimiter {
            quota,
            t: quota.emission_nanos().max(1),
            tau: quota.tolerance_nanos(),
            table: Table::new(max_keys, seed),
            overflow_tat: 0,
            saturated: false,
            saturation_reported: false,
        }
    }

    /// The quota.
    #[must_use]
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// Charges one request from `key` at `now`.
    ///
    /// # Errors
    ///
    /// [`RateLimited`] with the wait until the request would pass; nothing is charged then.
    pub fn check(&mut self, now: Instant, key: ClientKey) -> Result<(), RateLimited> {
        let now = nanos(now);
        let (t, tau) = (self.t, self.tau);
        let words = key.words();
        let place = self.table.find_or_insert(
            words,
            || Cell {
                key: words,
                tat: now,
            },
            |c| c.tat <= now,
        );
        let tat = match place {
            Place::Found(i) | Place::New(i) => &mut self.table.at_mut(i).tat,
            Place::Full => {
                self.saturated = true;
                &mut self.overflow_tat
            }
        };
        gcra(tat, now, t, tau).map_err(|wait| RateLimited {
            retry_after: Duration::from_nanos(wait),
        })
    }

    /// Loads `key`'s home slot (see `Table::touch`).
    pub(crate) fn touch(&self, key: ClientKey) -> bool {
        self.table.touch(&key.words())
    }

    /// Whether a request from `key` at `now` would pass, without charging it.
    #[must_use]
    pub fn would_allow(&self, now: Instant, key: ClientKey) -> bool {
        let now = nanos(now);
        let tat = match self.table.find(&key.words()) {
            Some(i) => self.table.at(i).tat,
            None if self.table.is_full() => self.overflow_tat,
            None => 0,
        };
        tat.max(now) - now <= self.tau
    }

    /// Addresses tracked now (live or not yet swept).
    #[must_use]
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no address is tracked.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The cap on tracked addresses.
    #[must_use]
    pub fn max_keys(&self) -> usize {
        self.table.max_len()
    }

    /// Heap bytes held.
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.table.heap_bytes()
    }

    /// `true` once per saturation episode: the first call after a new address had to share
    /// the overflow cell. The episode ends when a sweep brings the table under 7/8 of its cap.
    pub fn take_saturation(&mut self) -> bool {
        if self.saturated && !self.saturation_reported {
            self.saturation_reported = true;
            return true;
        }
        false
    }

    /// Removes expired cells from up to `budget` slots (see [`Table::sweep`]).
    pub(crate) fn sweep(&mut self, now: Instant, min_budget: usize) -> Swept {
        let budget = self.table.sweep_budget(min_budget);
        let now = nanos(now);
        let swept = self.table.sweep(budget, |c| c.tat <= now);
        if self.table.len() * 8 < self.table.max_len() * 7 {
            self.saturated = false;
            self.saturation_reported = false;
        }
        swept
    }

    /// Live cells as (key, TAT tick) for a snapshot.
    pub(crate) fn export(&self, now: Instant) -> impl Iterator<Item = (ClientKey, u64)> + '_ {
        let now = nanos(now);
        self.table
            .iter()
            .filter(move |c| c.tat > now)
            .map(|c| (ClientKey::from_words(c.key), c.tat))
    }

    /// Restores one cell (ignored when the table is full or the cell has expired).
    pub(crate) fn import(&mut self, now: Instant, key: ClientKey, tat: u64) {
        let now = nanos(now);
        if tat <= now {
            return;
        }
        // No request can push a cell further ahead than τ + T: a later time (a snapshot
        // taken while the clock ran ahead) would limit the address for that long.
        let tat = tat.min(now.saturating_add(self.tau).saturating_add(self.t));
        let words = key.words();
        if let Place::Found(i) | Place::New(i) =
            self.table
                .find_or_insert(words, || Cell { key: words, tat }, |c| c.tat <= now)
        {
            let cell = self.table.at_mut(i);
            cell.tat = cell.tat.max(tat);
        }
    }
}
