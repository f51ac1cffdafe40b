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
//! Accounting is exact and cheap: each device keeps the expiries of its live nonces in
//! order (16 bytes each, both clocks), so its count drops the moment an entry expires.
//!
//! **Storage — a queue in recording order with a hash index.** With the default
//! tolerances every entry expires `retention` after it was recorded (the configuration
//! keeps `ts + tolerance` within that), so entries die in the order they were recorded. They are kept in a queue
//! in that order (56 bytes each) and found through an open-addressing index of 8-byte slots
//! (queue position and 32 bits of the keyed hash; linear probing, backward-shift deletion,
//! at most half full). Retiring an entry is popping the queue's front and deleting one
//! index slot — no scan for dead entries, no key hashed again — and is done for up to 8
//! dead entries before each new one is recorded and for a bounded number per
//! [`NonceCache::expire`]. A dead entry found again (its nonce reused after expiry) is
//! marked gone in place and the nonce recorded anew at the back. An entry that outlives
//! those recorded after it — possible only for a device given a tolerance over half the
//! retention (`DeviceCredentials::with_tolerance_secs`) or when the wall clock stepped
//! back — holds them in the queue, counted in [`NonceCache::len`] (once expired they are
//! neither replays nor counted against their device), until it goes or a nonce finds no
//! room: then the queue is compacted (live entries only, in expiry order), at most once per
//! `global_cap / 8` nonces, so `CacheFull` means the cap is held by live nonces (or was
//! when last compacted). At most twice `global_cap` queue places exist, gone ones
//! included.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use rand_core::CryptoRng;
use sha2::{Digest as _, Sha256};

use super::Now;
use super::auth::DeviceId;
use super::hash::Seed;
use super::hex::decode_hex;

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
    /// Live nonces in all (default 65,536; about 5.5 MiB when full: per nonce 56 bytes in
    /// the queue, up to 16 in the index and 16 in its device's expiry list — up to about
    /// 9 MiB while the queue also holds places of nonces recorded again, at most as many as
    /// the cap). Values above 2³⁰ act as 2³⁰.
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
    /// Live nonces hold the cache's `global_cap` (as of its last compaction: see the
    /// module docs).
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

/// One recorded nonce, in the queue.
#[derive(Debug, Clone, Copy)]
struct Entry {
    key: NonceKey,
    /// Last Unix second the entry is live by the wall clock (0 = gone: a dead entry whose
    /// nonce was recorded again further back, or nothing).
    expires: u64,
    /// Last monotonic second (of [`Now::instant`]) the entry is live by the monotonic clock,
    /// saturated at `u32::MAX` (136 years after the driver's monotonic origin).
    held_until: u32,
    /// The low 32 bits of the key's keyed hash (its index slot holds them too).
    hash: u32,
}

impl Entry {
    fn is_gone(&self) -> bool {
        self.expires == 0
    }
}

/// `now` by both clocks, in the seconds entries are kept in.
#[derive(Clone, Copy)]
struct Clocks {
    unix: u64,
    mono: u64,
}

impl Clocks {
    #[inline]
    fn at(now: Now) -> Self {
        Clocks {
            unix: now.unix_secs,
            mono: mono_secs(now),
        }
    }

    /// Whether `e` is dead: past its expiry by both clocks (a gone entry is too).
    #[inline]
    fn passed(self, e: &Entry) -> bool {
        e.expires < self.unix && u64::from(e.held_until) < self.mono
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

/// The keyed hash of a key. It depends on the nonce only (the device takes part in
/// equality, not in the hash), so the index slot can be loaded from the raw header before
/// the device is known.
#[inline]
fn key_hash(key: &NonceKey, seed: &Seed) -> u32 {
    let w = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&key.bytes[i..i + 8]);
        u64::from_le_bytes(b)
    };
    let head = seed.hash2(w(0) ^ u64::from(key.len), w(16));
    seed.hash2(head ^ w(8), w(24)) as u32
}

/// Queue positions are kept modulo 2³¹ (the queue never holds that many: see `MAX_CAP`).
const POS_MASK: u64 = (1 << 31) - 1;
/// Marks an occupied index slot (a vacant one is 0).
const OCCUPIED: u64 = 1 << 63;
/// The largest `global_cap` honoured (the queue holds at most twice the cap).
const MAX_CAP: usize = 1 << 30;
/// Dead entries retired before each new one is recorded (bounded work per request; more
/// than one, so retiring outpaces recording).
const RETIRE_PER_RECORD: usize = 8;
/// Smallest index allocated.
const MIN_INDEX: usize = 16;

/// The open-addressing index over the queue: each occupied slot is
/// `OCCUPIED | position << 32 | hash`, so probing compares hashes without touching the
/// queue and moving a slot never needs its key.
#[derive(Debug, Default)]
struct Index {
    slots: Vec<u64>,
    len: usize,
}

impl Index {
    #[inline]
    fn slot(pos: u64, hash: u32) -> u64 {
        OCCUPIED | ((pos & POS_MASK) << 32) | u64::from(hash)
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// The slot `hash` starts probing at, read (see [`NonceCache::touch`]).
    #[inline]
    fn touch(&self, hash: u32) -> bool {
        !self.slots.is_empty() && self.slots[hash as usize & self.mask()] == 0
    }

    /// Adds a slot for the entry at queue position `pos`, growing to stay at most half full.
    fn insert(&mut self, pos: u64, hash: u32) {
        if (self.len + 1) * 2 > self.slots.len() {
            self.resize((self.slots.len() * 2).max(MIN_INDEX));
        }
        self.place(Self::slot(pos, hash));
        self.len += 1;
    }

    fn place(&mut self, v: u64) {
        let mask = self.mask();
        let mut i = v as u32 as usize & mask;
        while self.slots[i] != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = v;
    }

    /// Deletes the slot of the entry at `pos` with `hash` (present by construction).
    fn remove(&mut self, pos: u64, hash: u32) {
        let want = Self::slot(pos, hash);
        let mask = self.mask();
        let mut i = hash as usize & mask;
        while self.slots[i] != want {
            if self.slots[i] == 0 {
                debug_assert!(false, "a queued entry has an index slot");
                return;
            }
            i = (i + 1) & mask;
        }
        self.remove_at(i);
    }

    /// Backward-shift deletion: later slots of the run move back over the hole when their
    /// home allows (their home comes from the hash bits they carry).
    fn remove_at(&mut self, index: usize) {
        let mask = self.mask();
        let mut hole = index;
        let mut j = (hole + 1) & mask;
        loop {
            let v = self.slots[j];
            if v == 0 {
                break;
            }
            let home = v as u32 as usize & mask;
            if j.wrapping_sub(home) & mask >= j.wrapping_sub(hole) & mask {
                self.slots[hole] = v;
                hole = j;
            }
            j = (j + 1) & mask;
        }
        self.slots[hole] = 0;
        self.len -= 1;
    }

    /// Halves the slot array while it is under 1/8 full; frees it when empty.
    fn shrink(&mut self) {
        if self.len == 0 {
            self.slots = Vec::new();
        } else if self.len * 8 < self.slots.len() && self.slots.len() > MIN_INDEX {
            let target = (self.len * 2).next_power_of_two().max(MIN_INDEX);
            self.resize(target);
        }
    }

    fn resize(&mut self, n: usize) {
        let old = core::mem::replace(&mut self.slots, alloc::vec![0; n]);
        for v in old.into_iter().filter(|&v| v != 0) {
            self.place(v);
        }
    }

    fn heap_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<u64>()
    }
}

/// The replay cache (see the module docs).
#[derive(Debug)]
pub struct NonceCache {
    config: NonceConfig,
    /// `global_cap`, at most [`MAX_CAP`].
    cap: usize,
    seed: Seed,
    /// Entries in recording order; the front is the first to expire.
    queue: VecDeque<Entry>,
    /// Position of the queue's front (positions count up from 0 as entries are recorded).
    front: u64,
    /// Entries in the queue that are not gone (dead ones not yet retired included).
    held: usize,
    /// Nonces offered since the last compaction (see `compact`).
    since_compact: usize,
    index: Index,
    /// Each device's live entries' expiries, in order.
    per_device: BTreeMap<u32, VecDeque<Expiry>>,
}

impl NonceCache {
    /// An empty cache, its index keyed from `rng`.
    pub fn new<R: CryptoRng + ?Sized>(config: NonceConfig, rng: &mut R) -> Self {
        Self::with_seed(config, Seed::from_rng(rng))
    }

    pub(crate) fn with_seed(config: NonceConfig, seed: Seed) -> Self {
        NonceCache {
            config,
            cap: config.global_cap.clamp(1, MAX_CAP),
            seed,
            queue: VecDeque::new(),
            front: 0,
            held: 0,
            since_compact: 0,
            index: Index::default(),
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

    /// Loads the index slot `key` would start probing at, whatever its device, so that the
    /// lookup that follows finds it in cache (callers pass the result to
    /// `core::hint::black_box`).
    pub(crate) fn touch(&self, key: &NonceKey) -> bool {
        self.index.touch(key_hash(key, &self.seed))
    }

    /// Loads the index slot of the entry the next retirement would remove (the queue's
    /// front), for the same reason as [`touch`](Self::touch): in a large cache that slot is
    /// a cache miss of its own, which then overlaps the others.
    pub(crate) fn touch_front(&self) -> bool {
        self.queue.front().is_some_and(|e| self.index.touch(e.hash))
    }

    /// Where `key` is: (index slot, queue offset), whether live or dead.
    #[inline]
    fn find(&self, key: &NonceKey, hash: u32) -> Option<(usize, usize)> {
        if self.index.slots.is_empty() {
            return None;
        }
        let mask = self.index.mask();
        let mut i = hash as usize & mask;
        loop {
            let v = self.index.slots[i];
            if v == 0 {
                return None;
            }
            if v as u32 == hash {
                let at = ((v >> 32).wrapping_sub(self.front) & POS_MASK) as usize;
                if self.queue.get(at).is_some_and(|e| e.key == *key) {
                    return Some((i, at));
                }
            }
            i = (i + 1) & mask;
        }
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
        let clocks = Clocks::at(now);
        self.retire(clocks, RETIRE_PER_RECORD);
        let live = self.per_device.entry(key.device).or_default();
        while live.front().is_some_and(|e| e.passed(now)) {
            live.pop_front();
        }
        let over_quota = live.len() >= self.config.per_device_cap as usize;
        let hash = key_hash(&key, &self.seed);
        let mut found = self.find(&key, hash);
        self.since_compact = self.since_compact.saturating_add(1);
        // No room — the cap reached, or (rarely) the queue full of gone places: compact when
        // that can pay (see `compact`), then look again.
        let reused = found.is_some_and(|(_, at)| clocks.passed(&self.queue[at]));
        let queue_full = self.queue.len() >= 2 * self.cap;
        let no_room = (found.is_none() && self.held >= self.cap) || queue_full;
        if no_room
            && (reused || found.is_none())
            && !over_quota
            && (queue_full || self.since_compact >= (self.cap / 8).max(1))
        {
            self.compact(clocks);
            found = self.find(&key, hash);
        }
        let refusal = match found {
            Some((_, at)) if !clocks.passed(&self.queue[at]) => Some(NonceRefusal::Replayed),
            _ if over_quota => Some(NonceRefusal::DeviceQuotaExceeded),
            None if self.held >= self.cap || self.queue.len() >= 2 * self.cap => {
                Some(NonceRefusal::CacheFull)
            }
            _ => None,
        };
        if let Some(r) = refusal {
            self.drop_if_unused(key.device);
            return Err(r);
        }
        if let Some((slot, at)) = found {
            // Dead and reused: the old place is marked gone, the nonce recorded at the back.
            self.index.remove_at(slot);
            self.queue[at].expires = 0;
            self.held -= 1;
        }
        self.push(key, hash, expiry);
        // Kept sorted, so the front is always the first to expire: expiries are not
        // monotone when a long tolerance lets a timestamp from the future outlive later
        // ones (or the wall clock stepped back). In the usual order this appends, which is
        // checked first (a binary search per request cost more than the rest of the insert).
        let live = self.per_device.entry(key.device).or_default();
        if live.back().is_none_or(|last| *last <= expiry) {
            live.push_back(expiry);
        } else {
            let at = live.partition_point(|e| *e <= expiry);
            live.insert(at, expiry);
        }
        Ok(())
    }

    /// Rebuilds the queue from its live entries alone, in expiry order, and indexes it
    /// afresh: what retiring from the front cannot do when an entry that outlives those
    /// recorded after it (a device tolerance over half the retention, or a wall clock
    /// stepped back) holds them in the queue. Run only when a nonce finds no room, and at
    /// most once per `cap / 8` nonces unless the queue is full of gone places (then at least
    /// half of it goes), so its cost per nonce stays bounded; returns the dead entries
    /// dropped.
    fn compact(&mut self, clocks: Clocks) -> usize {
        let before = self.held;
        self.queue.retain(|e| !e.is_gone() && !clocks.passed(e));
        self.queue
            .make_contiguous()
            .sort_by_key(|e| (e.held_until, e.expires));
        self.held = self.queue.len();
        self.reindex();
        self.since_compact = 0;
        before - self.held
    }

    /// Indexes every entry of the queue (positions counted from `front`).
    fn reindex(&mut self) {
        self.index = Index::default();
        for (k, e) in self.queue.iter().enumerate() {
            self.index.insert(self.front.wrapping_add(k as u64), e.hash);
        }
    }

    /// Appends an entry and its index slot.
    fn push(&mut self, key: NonceKey, hash: u32, expiry: Expiry) {
        let pos = self.front.wrapping_add(self.queue.len() as u64);
        self.queue.push_back(Entry {
            key,
            expires: expiry.wall,
            held_until: u32::try_from(expiry.mono).unwrap_or(u32::MAX),
            hash,
        });
        self.index.insert(pos, hash);
        self.held += 1;
    }

    /// Pops dead (or gone) entries off the queue's front, at most `budget` dead ones;
    /// returns how many dead ones.
    fn retire(&mut self, clocks: Clocks, budget: usize) -> usize {
        let mut retired = 0;
        while let Some(e) = self.queue.front() {
            if e.is_gone() {
            } else if retired < budget && clocks.passed(e) {
                self.index.remove(self.front, e.hash);
                self.held -= 1;
                retired += 1;
            } else {
                break;
            }
            self.queue.pop_front();
            self.front = self.front.wrapping_add(1);
        }
        retired
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
        self.find(&key, key_hash(&key, &self.seed))
            .is_some_and(|(_, at)| !Clocks::at(now).passed(&self.queue[at]))
    }

    /// Entries held, including expired ones not yet retired.
    #[must_use]
    pub fn len(&self) -> usize {
        self.held
    }

    /// Whether the cache is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.held == 0
    }

    /// Live nonces of `device` (as of its latest record or sweep).
    #[must_use]
    pub fn device_len(&self, device: DeviceId) -> u32 {
        self.per_device
            .get(&device.0)
            .map_or(0, |q| u32::try_from(q.len()).unwrap_or(u32::MAX))
    }

    /// Heap bytes held (queue, index and per-device expiry lists).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.queue.capacity() * size_of::<Entry>()
            + self.index.heap_bytes()
            + self
                .per_device
                .values()
                .map(|q| q.capacity() * size_of::<Expiry>() + 48)
                .sum::<usize>()
    }

    /// Retires entries expired at `now` (by both clocks) from the queue's front, up to
    /// `min_budget` of them (or 1/64 of those held when that is more), and gives back
    /// memory the cache no longer needs; returns how many were retired.
    pub fn expire(&mut self, now: Now, min_budget: usize) -> usize {
        let budget = min_budget.max(self.held / 64);
        let removed = self.retire(Clocks::at(now), budget);
        self.index.shrink();
        if self.queue.is_empty() {
            self.queue = VecDeque::new();
        } else if self.queue.capacity() > 64 && self.queue.len() * 4 < self.queue.capacity() {
            self.queue.shrink_to_fit();
        }
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

    /// Live entries as (key, last live wall second), in recording order, for a snapshot.
    /// An entry held only by the monotonic clock (the wall clock is past its expiry) is
    /// carried with its expiry moved to the present second, so a restore keeps it at least
    /// until then.
    pub(crate) fn export(&self, now: Now) -> impl Iterator<Item = (NonceKey, u64)> + '_ {
        let clocks = Clocks::at(now);
        self.queue
            .iter()
            .filter(move |e| !e.is_gone() && !clocks.passed(e))
            .map(move |e| (e.key, e.expires.max(now.unix_secs)))
    }

    /// Restores one entry (dropped when expired by the wall clock, already present, or over
    /// a cap).
    pub(crate) fn import(&mut self, now: Now, key: NonceKey, expires: u64) {
        if expires < now.unix_secs || expires == 0 {
            return;
        }
        let hash = key_hash(&key, &self.seed);
        let room = self.device_len(DeviceId(key.device)) < self.config.per_device_cap;
        if room && self.held < self.cap && self.find(&key, hash).is_none() {
            let expiry = Expiry::at(now, expires);
            self.per_device
                .entry(key.device)
                .or_default()
                .push_back(expiry);
            self.push(key, hash, expiry);
        }
    }

    /// Checks the storage invariants (tests): the index holds exactly one slot per held
    /// entry, each leading to it; the queue and the held count stay within their bounds.
    #[cfg(test)]
    pub(crate) fn assert_consistent(&self) {
        let held = self.queue.iter().filter(|e| !e.is_gone()).count();
        assert_eq!(held, self.held, "held count");
        assert_eq!(self.index.len, self.held, "one index slot per held entry");
        assert_eq!(
            self.index.slots.iter().filter(|&&v| v != 0).count(),
            self.index.len,
            "index length"
        );
        assert!(self.held <= self.cap, "held within the cap");
        assert!(
            self.queue.len() <= 2 * self.cap,
            "queue within twice the cap"
        );
        assert!(
            self.index.len * 2 <= self.index.slots.len() || self.index.len == 0,
            "index at most half full"
        );
        for (at, e) in self.queue.iter().enumerate() {
            if !e.is_gone() {
                assert_eq!(e.hash, key_hash(&e.key, &self.seed), "remembered hash");
                let found = self.find(&e.key, e.hash).map(|(_, a)| a);
                assert_eq!(found, Some(at), "entry {at} found where it is");
            }
        }
    }

    /// Queue places in use, gone ones included (tests).
    #[cfg(test)]
    pub(crate) fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// After the last [`import`](Self::import): puts each device's expiry list and the
    /// queue in expiry order (a snapshot written by an older version lists entries in its
    /// table's order), and indexes the queue afresh.
    pub(crate) fn finish_import(&mut self) {
        for q in self.per_device.values_mut() {
            q.make_contiguous().sort_unstable();
        }
        self.queue
            .make_contiguous()
            .sort_by_key(|e| (e.held_until, e.expires));
        self.reindex();
    }
}
