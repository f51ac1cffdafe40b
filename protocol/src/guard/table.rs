//! The bounded hash table under every per-address table of the guard.
//!
//! Open addressing with linear probing and backward-shift deletion (no tombstones), keyed
//! placement ([`Seed`]), and three bounds:
//!
//! * **a hard cap on live entries** (`max_len`), fixed at construction; at the cap an insert
//!   may only *reclaim* a slot whose owner says it is dead (an expired GCRA cell, an elapsed
//!   window) — one on the new key's probe chain, or one found by advancing the sweep cursor
//!   by at most 32 slots — otherwise it is refused and the caller applies its stated
//!   full-table policy;
//! * **a slot array of at most `next_pow2(max_len · 4/3)`** slots, so the load factor never
//!   passes 3/4 and every probe chain ends at a vacant slot; it doubles as entries arrive and
//!   halves again after a sweep pass finds it under 1/8 full, so memory follows the live set;
//! * **bounded sweeping**: [`Table::sweep`] examines at most `budget` slots from a cursor that
//!   walks the array round-robin, removing dead entries as it goes; every insertion of a
//!   new key advances it by 4 slots too, so cleaning keeps pace with insertion (see
//!   `SWEEP_PER_OP`).

use alloc::vec::Vec;

use super::hash::Seed;

/// What a table stores: a fixed-size record that knows its key and can be vacant.
pub(crate) trait Slot {
    /// The lookup key.
    type Key: Copy + Eq;
    /// The vacant slot.
    fn vacant() -> Self;
    /// Whether the slot is vacant.
    fn is_vacant(&self) -> bool;
    /// The key of an occupied slot.
    fn key(&self) -> Self::Key;
    /// The keyed hash of a key.
    fn hash(key: &Self::Key, seed: &Seed) -> u64;
}

/// Smallest slot array allocated.
const MIN_SLOTS: usize = 16;

/// Slots a full table's insert may sweep to find a dead entry to drop.
const RECLAIM_BUDGET: usize = 32;

/// Slots every insertion of a new key sweeps first. Removal is spatially sequential (the
/// cursor) while insertion is uniform, so without this the slots just ahead of the cursor
/// fill up with dead entries between passes and probe runs there grow long; paying a few
/// slots per insertion bounds a pass to `slots / 4` insertions, so at most a quarter of the
/// slots can hold entries that died since the cursor last passed.
const SWEEP_PER_OP: usize = 4;

/// Outcome of [`Table::find_or_insert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// The key was present at this index.
    Found(usize),
    /// A new slot was filled at this index (a vacant one, or a reclaimed dead one).
    New(usize),
    /// The table is at its cap and no dead slot was on the key's probe chain.
    Full,
}

/// What one call of [`Table::sweep`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Swept {
    /// Slots examined (at most the budget).
    pub(crate) examined: usize,
    /// Entries removed.
    pub(crate) removed: usize,
    /// Whether the cursor completed a pass over the array.
    pub(crate) wrapped: bool,
}

/// A bounded open-addressing hash table (see the module docs).
pub(crate) struct Table<S: Slot> {
    slots: Vec<S>,
    len: usize,
    max_len: usize,
    seed: Seed,
    cursor: usize,
}

impl<S: Slot> Table<S> {
    /// An empty table holding at most `max_len` entries (at least one).
    pub(crate) fn new(max_len: usize, seed: Seed) -> Self {
        Table {
            slots: Vec::new(),
            len: 0,
            max_len: max_len.max(1),
            seed,
            cursor: 0,
        }
    }

    /// Live entries.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no live entries.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Slots allocated.
    #[cfg(test)]
    pub(crate) fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The budget for one sweep: `min`, or 1/64 of the slots when that is more.
    pub(crate) fn sweep_budget(&self, min: usize) -> usize {
        min.max(self.slots.len() / 64)
    }

    /// The hard cap on live entries.
    pub(crate) fn max_len(&self) -> usize {
        self.max_len
    }

    /// Whether the table holds its cap.
    pub(crate) fn is_full(&self) -> bool {
        self.len >= self.max_len
    }

    /// Bytes held by the slot array.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * core::mem::size_of::<S>()
    }

    /// The largest slot array this table may allocate.
    fn max_slots(&self) -> usize {
        (self.max_len.saturating_mul(4) / 3 + 1)
            .max(MIN_SLOTS)
            .checked_next_power_of_two()
            .unwrap_or(usize::MAX / 2 + 1)
    }

    #[inline]
    fn home(&self, key: &S::Key) -> usize {
        (S::hash(key, &self.seed) as usize) & (self.slots.len() - 1)
    }

    /// Index of `key`, if present.
    #[inline]
    pub(crate) fn find(&self, key: &S::Key) -> Option<usize> {
        self.find_hashed(S::hash(key, &self.seed), key)
    }

    /// [`find`](Self::find) for a key whose hash the caller computed.
    #[inline]
    fn find_hashed(&self, hash: u64, key: &S::Key) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = (hash as usize) & mask;
        loop {
            let s = &self.slots[i];
            if s.is_vacant() {
                return None;
            }
            if s.key() == *key {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// The slot at `index` (from [`find`](Self::find) or [`find_or_insert`](Self::find_or_insert)).
    #[inline]
    pub(crate) fn at(&self, index: usize) -> &S {
        &self.slots[index]
    }

    /// The slot at `index`, mutably. Callers keep the key unchanged.
    #[inline]
    pub(crate) fn at_mut(&mut self, index: usize) -> &mut S {
        &mut self.slots[index]
    }

    /// Reads `key`'s home slot without looking further, so that a later lookup finds it in
    /// cache. Callers pass the result to `core::hint::black_box`; issuing the loads of
    /// several tables back to back lets their cache misses overlap.
    #[inline]
    pub(crate) fn touch(&self, key: &S::Key) -> bool {
        !self.slots.is_empty() && self.slots[self.home(key)].is_vacant()
    }

    /// Finds `key`, or stores `make()` for it: in a vacant slot while under the cap, else in
    /// place of a slot on its probe chain that `dead` accepts. `Full` when neither is possible.
    pub(crate) fn find_or_insert(
        &mut self,
        key: S::Key,
        make: impl FnOnce() -> S,
        mut dead: impl FnMut(&S) -> bool,
    ) -> Place {
        // Hashed once: the lookup and the insertion (after any resize) place it alike.
        let hash = S::hash(&key, &self.seed);
        if let Some(i) = self.find_hashed(hash, &key) {
            return Place::Found(i);
        }
        // A new entry pays for a little cleaning first (see `SWEEP_PER_OP`); the sweep only
        // removes dead entries, so the key is still absent afterwards.
        if !self.slots.is_empty() {
            self.sweep(SWEEP_PER_OP, &mut dead);
        }
        if self.len < self.max_len {
            let grow = (self.len + 1) * 4 > self.slots.len() * 3;
            if self.slots.is_empty() || (grow && self.slots.len() < self.max_slots()) {
                let target = (self.slots.len() * 2).max(MIN_SLOTS);
                self.resize(target);
            }
            let i = self.vacant_for(hash);
            self.slots[i] = make();
            self.len += 1;
            return Place::New(i);
        }
        if self.slots.is_empty() {
            return Place::Full;
        }
        // At the cap: the new key's probe chain runs from its home to the first vacant slot;
        // any dead slot on it can take the key without breaking other chains.
        let mask = self.slots.len() - 1;
        let mut i = (hash as usize) & mask;
        while !self.slots[i].is_vacant() {
            if dead(&self.slots[i]) {
                self.slots[i] = make();
                return Place::New(i);
            }
            i = (i + 1) & mask;
        }
        // Nothing dead on the chain: advance the sweep cursor further (bounded work, only
        // at the cap) and insert if that freed a slot.
        if self.sweep(RECLAIM_BUDGET, &mut dead).removed == 0 {
            return Place::Full;
        }
        if self.slots.is_empty() {
            self.resize(MIN_SLOTS);
        }
        let i = self.vacant_for(hash);
        self.slots[i] = make();
        self.len += 1;
        Place::New(i)
    }

    /// The vacant slot ending the probe chain of an absent key hashing to `hash`.
    fn vacant_for(&self, hash: u64) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = (hash as usize) & mask;
        while !self.slots[i].is_vacant() {
            i = (i + 1) & mask;
        }
        i
    }

    /// Removes the entry at `index` (backward-shift deletion) and returns it.
    pub(crate) fn remove_at(&mut self, index: usize) -> S {
        let mask = self.slots.len() - 1;
        let removed = core::mem::replace(&mut self.slots[index], S::vacant());
        let mut hole = index;
        let mut j = (hole + 1) & mask;
        while !self.slots[j].is_vacant() {
            let home = self.home(&self.slots[j].key());
            let displacement = j.wrapping_sub(home) & mask;
            let gap = j.wrapping_sub(hole) & mask;
            if displacement >= gap {
                self.slots.swap(hole, j);
                hole = j;
            }
            j = (j + 1) & mask;
        }
        self.len -= 1;
        removed
    }

    /// Removes `key`'s entry, if any.
    pub(crate) fn remove(&mut self, key: &S::Key) -> Option<S> {
        self.find(key).map(|i| self.remove_at(i))
    }

    /// Examines up to `budget` slots from the sweep cursor (each at most once per call) and
    /// removes those `dead` accepts (`dead` must be a plain predicate: it is also called on
    /// vacant slots, whose answer is ignored). An emptied table frees its slots; after a full
    /// pass, a table under 1/8 full is halved (at most to twice its live size).
    pub(crate) fn sweep(&mut self, budget: usize, mut dead: impl FnMut(&S) -> bool) -> Swept {
        let mut out = Swept::default();
        if self.slots.is_empty() {
            out.wrapped = true;
            return out;
        }
        // The slot count is a power of two (see `resize`), so a mask wraps the cursor (a `%`
        // here was a division per slot examined, on every insert's sweep).
        let n = self.slots.len();
        let mask = n - 1;
        // The scan runs over contiguous runs of the slot array (up to its end, then from slot
        // 0) with a slice iterator and no call in its loop; it stops at each entry to remove,
        // which is removed outside it (the removal shifts entries back, so the scan resumes at
        // the same slot, examined again but not advanced past).
        let first = self.cursor & mask;
        let mut i = first;
        let mut examined = 0;
        let mut advanced = 0;
        loop {
            let steps = (budget - examined).min(n - advanced);
            if steps == 0 {
                break;
            }
            let end = (i + steps).min(n);
            let run = self.slots.get(i..end).unwrap_or_default();
            // `&`, not `&&`: `dead` is asked about vacant slots too (and ignored there), so
            // the scan has no branch on occupancy, which is random and often mispredicted.
            match run.iter().position(|s| !s.is_vacant() & dead(s)) {
                Some(p) => {
                    examined += p + 1;
                    advanced += p;
                    i += p;
                    self.remove_at(i);
                    out.removed += 1;
                }
                None => {
                    examined += end - i;
                    advanced += end - i;
                    i = end & mask;
                }
            }
        }
        out.examined = examined;
        // The cursor passed slot 0 when it advanced from `first` to the end of the array.
        out.wrapped = first + advanced >= n;
        self.cursor = i;
        if self.len == 0 {
            self.slots = Vec::new();
            self.cursor = 0;
        } else if out.wrapped && self.len * 8 < n && n > MIN_SLOTS {
            let target = (self.len * 2).max(MIN_SLOTS).next_power_of_two();
            if target < n {
                self.resize(target);
            }
        }
        out
    }

    /// Live entries, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &S> {
        self.slots.iter().filter(|s| !s.is_vacant())
    }

    fn resize(&mut self, new_slots: usize) {
        debug_assert!(new_slots.is_power_of_two() && new_slots * 3 >= self.len * 4);
        let mut fresh = Vec::with_capacity(new_slots);
        fresh.resize_with(new_slots, S::vacant);
        let old = core::mem::replace(&mut self.slots, fresh);
        let mask = new_slots - 1;
        for s in old {
            if s.is_vacant() {
                continue;
            }
            let mut i = self.home(&s.key());
            while !self.slots[i].is_vacant() {
                i = (i + 1) & mask;
            }
            self.slots[i] = s;
        }
        self.cursor = 0;
    }
}

impl<S: Slot> core::fmt::Debug for Table<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Table")
            .field("len", &self.len)
            .field("max_len", &self.max_len)
            .field("slots", &self.slots.len())
            .finish()
    }
}
