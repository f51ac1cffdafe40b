//! The replay cache: nonces seen per device, kept while their timestamp could still pass.
//!
//! Keyed by (device, nonce): a nonce of up to 64 hex digits is stored as its decoded bytes
//! (exact), a longer one as its SHA-256 (collision-resistant). An entry recorded at wall time
//! `now` for timestamp `ts` under tolerance `tol` lives until
//! `expires = max(ts + tol, now + retention)` **inclusive** — the last second at which the
//! same timestamp would pass the skew check, or the retention (default 5 minutes, as
//! calaos_base's `NONCE_EXPIRY_SECONDS`), whichever is later. Expiry is by wall time because
//! the timestamp is wall time, **and** by monotonic time: an entry goes only once the wall
//! clock has passed `expires` and `expires − now` seconds of monotonic time have gone by
//! since it was recorded. So a wall clock stepped backwards keeps entries longer, and one
//! stepped ahead for a while (then corrected back by NTP) does not let the sweep forget a
//! nonce whose timestamp passes again. (Across a restart only the wall time is carried: a
//! snapshot keeps the entries live by the wall clock at restore.)
//!
//! **Full policy — refuse, never evict.** A device holding `per_device_cap` live nonces is
//! refused ([`NonceRefusal::DeviceQuotaExceeded`]) until some expire; when the whole cache
//! holds `global_cap` entries every new nonce is refused ([`NonceRefusal::CacheFull`]).
//! Evicting instead would let the evicted nonce be replayed. Only holders of a device secret
//! can insert (the MAC is checked first), so a flooding device only locks itself out.
//!
//! Accounting is exact and cheap: each device keeps the expiry seconds of its live nonces in
//! insertion order (8 bytes each), so its count drops the moment an entry expires. The
//! table itself is cleaned by the bounded sequential sweep ([`NonceCache::expire`]), and an
//! expired entry on a new nonce's probe chain is reused in place — expired entries are
//! never an obstacle, and live ones are never dropped.

use alloc::collections::{BTreeMap, VecDeque};
use core::fmt;
use core::time::Duration;

use rand_core::CryptoRng;
use sha2::{Digest as _, Sha256};

use super::Now;
use super::auth::DeviceId;
use super::hash::Seed;
use super::hex::decode_hex;
use super::table::{Place, Slot, Table};

/// Replay-cache limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonceConfig {
    /// Least time a nonce is kept (default 5 minutes). [`GuardConfig`](super::GuardConfig)
    /// checks it is at least twice the largest timestamp tolerance, the span over which one
    /// timestamp can pass.
    pub retention: Duration,
    /// Live nonces one device may hold (default 256: 20 attempts a minute for 5 minutes,
    /// with room to spare).
    pub per_device_cap: u32,
    /// Live nonces in all (default 65,536; about 8 MiB when full).
    pub global_cap: usize,
}

impl Default for NonceConfig {
    fn default() -> Self {
        NonceConfig {
            retention: Duration::from_secs(300),
            per_device_cap: 256,
            global_cap: 65_536,
        }
    }
}

/// Why a nonce was not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NonceRefusal {
    /// The device already used it while its timestamp can still pass.
    Replayed,
    /// The device holds `per_device_cap` live nonces.
    DeviceQuotaExceeded,
    /// The cache holds `global_cap` live nonces.
    CacheFull,
}

impl fmt::Display for NonceRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NonceRefusal::Replayed => "nonce already used by this device",
            NonceRefusal::DeviceQuotaExceeded => "device holds its full share of recent nonces",
            NonceRefusal::CacheFull => "replay cache is full",
        })
    }
}

impl core::error::Error for NonceRefusal {}

/// (device, nonce): `len` ≤ 32 decoded bytes, or `LONG` for a SHA-256 of the nonce text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NonceKey {
    pub(crate) device: u32,
    pub(crate) len: u8,
    pub(crate) bytes: [u8; 32],
}

impl NonceKey {
    const LONG: u8 = 0xff;

    /// The key of a nonce of at most 64 hex digits (no hashing: cheap enough to compute
    /// before a request is rate limited); `None` for anything else.
    pub(crate) fn decoded(device: DeviceId, nonce: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        let n = decode_hex(nonce, &mut bytes)?;
        Some(NonceKey {
            device: device.0,
            len: n as u8,
            bytes,
        })
    }

    pub(crate) fn new(device: DeviceId, nonce: &str) -> Self {
        let mut bytes = [0u8; 32];
        let len = match decode_hex(nonce, &mut bytes) {
            Some(n) => n as u8,
            None => {
                bytes.copy_from_slice(&Sha256::digest(nonce.as_bytes()));
                Self::LONG
            }
        };
        NonceKey {
            device: device.0,
            len,
            bytes,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct NonceSlot {
    key: NonceKey,
    /// Last Unix second the entry is live by the wall clock (0 = vacant).
    expires: u64,
    /// Last monotonic second (of [`Now::instant`]) the entry is live by the monotonic clock.
    held_until: u64,
}

impl NonceSlot {
    /// Whether the entry is dead at `now`: past its expiry by both clocks.
    #[inline]
    fn dead(&self, now: Now) -> bool {
        self.expires < now.unix_secs && self.held_until < mono_secs(now)
    }
}

/// The monotonic second of `now`.
#[inline]
fn mono_secs(now: Now) -> u64 {
    now.instant.duration_since_origin().as_secs()
}

/// An entry's expiry by both clocks: `(wall, monotonic)` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Expiry {
    wall: u64,
    mono: u64,
}

impl Expiry {
    /// Live until wall second `wall` inclusive, recorded at `now`: as many monotonic
    /// seconds ahead as `wall` is ahead of the wall clock.
    fn at(now: Now, wall: u64) -> Self {
        Expiry {
            wall,
            mono: mono_secs(now).saturating_add(wall.saturating_sub(now.unix_secs)),
        }
    }

    fn passed(&self, now: Now) -> bool {
        self.wall < now.unix_secs && self.mono < mono_secs(now)
    }
}

impl Slot for NonceSlot {
    type Key = NonceKey;
    fn vacant() -> Self {
        NonceSlot {
            key: NonceKey {
                device: 0,
                len: 0,
                bytes: [0; 32],
            },
            expires: 0,
            held_until: 0,
        }
    }
    fn is_vacant(&self) -> bool {
        self.expires == 0
    }
    fn key(&self) -> NonceKey {
        self.key
    }
    /// Placement depends on the nonce only (the device takes part in equality, not in the
    /// hash), so the slot can be loaded from the raw header before the device is known.
    fn hash(key: &NonceKey, seed: &Seed) -> u64 {
        let w = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&key.bytes[i..i + 8]);
            u64::from_le_bytes(b)
        };
        let head = seed.hash2(w(0) ^ u64::from(key.len), w(16));
        seed.hash2(head ^ w(8), w(24))
    }
}

/// The replay cache (see the module docs).
#[derive(Debug)]
pub struct NonceCache {
    config: NonceConfig,
    table: Table<NonceSlot>,
    /// Each device's live entries' expiries, in order.
    per_device: BTreeMap<u32, VecDeque<Expiry>>,
}

impl NonceCache {
    /// An empty cache, its table keyed from `rng`.
    pub fn new<R: CryptoRng + ?Sized>(config: NonceConfig, rng: &mut R) -> Self {
        Self::with_seed(config, Seed::from_rng(rng))
    }

    pub(crate) fn with_seed(config: NonceConfig, seed: Seed) -> Self {
        NonceCache {
            config,
            table: Table::new(config.global_cap, seed),
            per_device: BTreeMap::new(),
        }
    }

    /// The limits.
    #[must_use]
    pub fn config(&self) -> &NonceConfig {
        &self.config
    }

    /// Records `nonce` for `device`, signed with `timestamp` under `tolerance_secs`, at
    /// `now`. The nonce must already be valid hex for the device's variant.
    ///
    /// # Errors
    ///
    /// [`NonceRefusal`]: a replay, or a full share / full cache (see the module docs).
    pub fn record(
        &mut self,
        now: Now,
        device: DeviceId,
        nonce: &str,
        timestamp: u64,
        tolerance_secs: u32,
    ) -> Result<(), NonceRefusal> {
        self.record_key(now, NonceKey::new(device, nonce), timestamp, tolerance_secs)
    }

    /// Loads the slot `key` would start probing at, whatever its device (see
    /// `Table::touch`).
    pub(crate) fn touch(&self, key: &NonceKey) -> bool {
        self.table.touch(key)
    }

    pub(crate) fn record_key(
        &mut self,
        now: Now,
        key: NonceKey,
        timestamp: u64,
        tolerance_secs: u32,
    ) -> Result<(), NonceRefusal> {
        let expires = timestamp
            .saturating_add(u64::from(tolerance_secs))
            .max(
                now.unix_secs
                    .saturating_add(self.config.retention.as_secs()),
            )
            .max(1);
        let expiry = Expiry::at(now, expires);
        let live = self.per_device.entry(key.device).or_default();
        while live.front().is_some_and(|e| e.passed(now)) {
            live.pop_front();
        }
        let over_quota = live.len() >= self.config.per_device_cap as usize;
        let slot = NonceSlot {
            key,
            expires,
            held_until: expiry.mono,
        };
        // One probe: the key's slot (a replay, or an expired entry to re-arm) or a new one.
        let refusal = match self.table.find_or_insert(key, || slot, |s| s.dead(now)) {
            Place::Found(i) if !self.table.at(i).dead(now) => Some(NonceRefusal::Replayed),
            Place::Found(_) | Place::New(_) if over_quota => {
                if let Some(i) = self.table.find(&key)
                    && self.table.at(i).expires == expires
                    && self.table.at(i).held_until == expiry.mono
                {
                    self.table.remove_at(i);
                }
                Some(NonceRefusal::DeviceQuotaExceeded)
            }
            Place::Found(i) => {
                *self.table.at_mut(i) = slot;
                None
            }
            Place::New(_) => None,
            Place::Full => Some(NonceRefusal::CacheFull),
        };
        if let Some(r) = refusal {
            self.drop_if_unused(key.device);
            return Err(r);
        }
        // Kept sorted, so the front is always the first to expire: expiries are not
        // monotone when a long tolerance lets a timestamp from the future outlive later
        // ones (or the wall clock stepped back). In the usual order this appends, which is
        // checked first (a binary search per request cost more than the rest of the insert).
        if live.back().is_none_or(|last| *last <= expiry) {
            live.push_back(expiry);
        } else {
            let at = live.partition_point(|e| *e <= expiry);
            live.insert(at, expiry);
        }
        Ok(())
    }

    fn drop_if_unused(&mut self, device: u32) {
        if self.per_device.get(&device).is_some_and(VecDeque::is_empty) {
            self.per_device.remove(&device);
        }
    }

    /// Whether `device` used `nonce` and the entry is live at `now`.
    #[must_use]
    pub fn contains(&self, now: Now, device: DeviceId, nonce: &str) -> bool {
        let key = NonceKey::new(device, nonce);
        self.table
            .find(&key)
            .is_some_and(|i| !self.table.at(i).dead(now))
    }

    /// Entries held, including expired ones not yet swept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the cache is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Live nonces of `device` (as of its latest record or sweep).
    #[must_use]
    pub fn device_len(&self, device: DeviceId) -> u32 {
        self.per_device
            .get(&device.0)
            .map_or(0, |q| u32::try_from(q.len()).unwrap_or(u32::MAX))
    }

    /// Heap bytes held (table and per-device expiry lists).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.table.heap_bytes()
            + self
                .per_device
                .values()
                .map(|q| q.capacity() * size_of::<Expiry>() + 48)
                .sum::<usize>()
    }

    /// Removes entries expired at `now` (by both clocks) from up to `min_budget` slots (or
    /// 1/64 of the table when that is more); returns how many were removed.
    pub fn expire(&mut self, now: Now, min_budget: usize) -> usize {
        let budget = self.table.sweep_budget(min_budget);
        let removed = self.table.sweep(budget, |s| s.dead(now)).removed;
        self.per_device.retain(|_, q| {
            while q.front().is_some_and(|e| e.passed(now)) {
                q.pop_front();
            }
            if q.capacity() > 64 && q.len() * 4 < q.capacity() {
                q.shrink_to_fit();
            }
            !q.is_empty()
        });
        removed
    }

    /// Live entries as (key, last live wall second), for a snapshot. An entry held only by
    /// the monotonic clock (the wall clock is past its expiry) is carried with its expiry
    /// moved to the present second, so a restore keeps it at least until then.
    pub(crate) fn export(&self, now: Now) -> impl Iterator<Item = (NonceKey, u64)> + '_ {
        self.table
            .iter()
            .filter(move |s| !s.dead(now))
            .map(move |s| (s.key, s.expires.max(now.unix_secs)))
    }

    /// Restores one entry (dropped when expired by the wall clock or over a cap).
    pub(crate) fn import(&mut self, now: Now, key: NonceKey, expires: u64) {
        if expires < now.unix_secs || expires == 0 {
            return;
        }
        let live = self.per_device.entry(key.device).or_default();
        if live.len() >= self.config.per_device_cap as usize {
            return;
        }
        let expiry = Expiry::at(now, expires);
        let slot = NonceSlot {
            key,
            expires,
            held_until: expiry.mono,
        };
        if let Place::New(_) = self.table.find_or_insert(key, || slot, |s| s.dead(now)) {
            self.per_device
                .entry(key.device)
                .or_default()
                .push_back(expiry);
        }
        self.drop_if_unused(key.device);
    }

    /// After the last [`import`](Self::import): puts each device's expiry list in order
    /// (a snapshot lists entries in table order).
    pub(crate) fn finish_import(&mut self) {
        for q in self.per_device.values_mut() {
            q.make_contiguous().sort_unstable();
        }
    }
}
