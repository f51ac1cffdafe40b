//! The replay cache: replays refused, inclusive expiry, refuse-don't-evict when full.

use alloc::collections::BTreeMap;
use alloc::format;
use core::time::Duration;

use proptest::prelude::*;

use super::{NONCE, T0, rng};
use crate::guard::*;
use crate::time::Instant;

fn cache(per_device: u32, global: usize) -> NonceCache {
    NonceCache::new(
        NonceConfig {
            retention: Duration::from_secs(300),
            per_device_cap: per_device,
            global_cap: global,
        },
        &mut rng(2),
    )
}

/// Both clocks at wall second `unix` (the monotonic one 1,000 s past its origin at T0).
fn at(unix: u64) -> Now {
    Now::new(Instant::from_secs(1000 + unix - T0), unix)
}

fn hex(n: u64) -> alloc::string::String {
    format!("{n:064x}")
}

#[test]
fn a_nonce_is_refused_the_second_time() {
    let mut c = cache(16, 64);
    c.record(at(T0), DeviceId(1), NONCE, T0, 30).unwrap();
    assert_eq!(
        c.record(at(T0 + 1), DeviceId(1), NONCE, T0, 30),
        Err(NonceRefusal::Replayed)
    );
    // The same nonce from another device is a different key.
    c.record(at(T0 + 1), DeviceId(2), NONCE, T0, 30).unwrap();
    // Hex case does not make a nonce new.
    let upper = NONCE.to_ascii_uppercase();
    assert_eq!(
        c.record(at(T0 + 2), DeviceId(1), &upper, T0, 30),
        Err(NonceRefusal::Replayed)
    );
}

#[test]
fn entry_lives_through_retention_inclusive_then_goes() {
    let mut c = cache(16, 64);
    c.record(at(T0), DeviceId(1), NONCE, T0, 30).unwrap();
    // Retention 300 s dominates ts + tolerance: live at T0 + 300, gone at T0 + 301.
    assert!(c.contains(at(T0 + 300), DeviceId(1), NONCE));
    assert_eq!(c.expire(at(T0 + 300), 100), 0);
    assert!(!c.contains(at(T0 + 301), DeviceId(1), NONCE));
    assert_eq!(c.expire(at(T0 + 301), 100), 1);
    assert!(c.is_empty());
    assert_eq!(c.device_len(DeviceId(1)), 0);
}

#[test]
fn entry_outlives_a_future_timestamp_that_could_still_pass() {
    // A short retention (shorter than the guard allows) shows the ts + tolerance bound.
    let mut c = NonceCache::new(
        NonceConfig {
            retention: Duration::from_secs(10),
            per_device_cap: 8,
            global_cap: 8,
        },
        &mut rng(1),
    );
    c.record(at(T0), DeviceId(1), NONCE, T0 + 60, 60).unwrap();
    assert!(c.contains(at(T0 + 120), DeviceId(1), NONCE));
    assert_eq!(
        c.record(at(T0 + 120), DeviceId(1), NONCE, T0 + 60, 60),
        Err(NonceRefusal::Replayed)
    );
    assert!(!c.contains(at(T0 + 121), DeviceId(1), NONCE));
}

#[test]
fn a_full_device_is_refused_not_evicted() {
    let mut c = cache(3, 64);
    for i in 0..3 {
        c.record(at(T0), DeviceId(1), &hex(i), T0, 30).unwrap();
    }
    assert_eq!(
        c.record(at(T0), DeviceId(1), &hex(3), T0, 30),
        Err(NonceRefusal::DeviceQuotaExceeded)
    );
    // Nothing was evicted: every old nonce is still a replay.
    for i in 0..3 {
        assert_eq!(
            c.record(at(T0 + 1), DeviceId(1), &hex(i), T0, 30),
            Err(NonceRefusal::Replayed)
        );
    }
    // Other devices are unaffected.
    c.record(at(T0), DeviceId(2), &hex(3), T0, 30).unwrap();
    // Once entries expire the device may go on.
    c.record(at(T0 + 301), DeviceId(1), &hex(3), T0 + 301, 30)
        .unwrap();
}

#[test]
fn a_full_cache_is_refused_not_evicted() {
    let mut c = cache(8, 4);
    for d in 0..4 {
        c.record(at(T0), DeviceId(d), NONCE, T0, 30).unwrap();
    }
    assert_eq!(
        c.record(at(T0), DeviceId(9), NONCE, T0, 30),
        Err(NonceRefusal::CacheFull)
    );
    for d in 0..4 {
        assert!(c.contains(at(T0 + 1), DeviceId(d), NONCE));
    }
}

#[test]
fn long_design_nonces_are_keyed_by_digest() {
    let mut c = cache(8, 8);
    let a = "ab".repeat(64);
    let mut b = a.clone();
    b.replace_range(127.., "c");
    c.record(at(T0), DeviceId(1), &a, T0, 60).unwrap();
    c.record(at(T0), DeviceId(1), &b, T0, 60).unwrap();
    assert_eq!(
        c.record(at(T0), DeviceId(1), &a, T0, 60),
        Err(NonceRefusal::Replayed)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn replay_is_refused_exactly_while_the_entry_is_live(
        ops in proptest::collection::vec((0u32..3, 0u64..6, 0u64..40), 1..120),
    ) {
        // Model: (device, nonce) -> last live second; the clock moves forward by the gap.
        let mut c = cache(1000, 1000);
        let mut model: BTreeMap<(u32, u64), u64> = BTreeMap::new();
        let mut now = T0;
        for (device, n, gap) in ops {
            now += gap * 10;
            let ts = now;
            let r = c.record(at(now), DeviceId(device), &hex(n), ts, 30);
            let live = model.get(&(device, n)).is_some_and(|&e| e >= now);
            if live {
                prop_assert_eq!(r, Err(NonceRefusal::Replayed));
            } else {
                prop_assert_eq!(r, Ok(()));
                model.insert((device, n), now + 300);
            }
            if gap % 3 == 0 {
                c.expire(at(now), 7);
            }
            c.assert_consistent();
        }
    }

    #[test]
    fn an_entry_lives_until_both_clocks_pass_its_expiry_whatever_the_wall_clock_does(
        ops in proptest::collection::vec(
            (0u64..4, 0u64..40, -400i64..400, any::<bool>()),
            1..150,
        ),
    ) {
        // Monotonic time only moves forward; the wall clock also steps either way. Model:
        // nonce -> (wall expiry, monotonic expiry, seen dead). A replay is refused while
        // either clock has not passed its expiry — unless the cache has already seen both
        // pass (a sweep may then have dropped it: a wall clock stepped back past a moment
        // both clocks agreed on is beyond what can be kept), and accepted once both passed.
        let mut c = cache(1000, 1000);
        let mut model: BTreeMap<u64, (u64, u64, bool)> = BTreeMap::new();
        let (mut mono, mut wall) = (1000u64, T0);
        for (n, tick, step, sweep) in ops {
            mono += tick;
            wall = wall.saturating_add_signed(if tick % 5 == 0 { step * 10 } else { tick as i64 });
            let now = Now::new(Instant::from_secs(mono), wall);
            let entry = model.get(&n).copied();
            let passed = entry.is_none_or(|(w, m, _)| w < wall && m < mono);
            let seen_dead = entry.is_none_or(|(_, _, d)| d);
            let r = c.record(now, DeviceId(1), &hex(n), wall, 30);
            if passed {
                prop_assert_eq!(r, Ok(()), "both clocks past the expiry");
            } else if !seen_dead {
                prop_assert_eq!(r, Err(NonceRefusal::Replayed), "live by one clock");
            }
            if r.is_ok() {
                model.insert(n, (wall + 300, mono + 300, false));
            }
            if sweep {
                c.expire(now, 64);
            }
            c.assert_consistent();
            // What this moment showed dead stays forgettable.
            for (w, m, d) in model.values_mut() {
                *d |= *w < wall && *m < mono;
            }
        }
    }

    #[test]
    fn cache_never_exceeds_its_caps(
        ops in proptest::collection::vec((0u32..5, any::<u64>(), 0u64..100), 1..400),
        per in 1u32..20,
        global in 1usize..40,
    ) {
        let mut c = cache(per, global.max(per as usize));
        let mut now = T0;
        for (device, n, gap) in ops {
            now += gap;
            let _ = c.record(at(now), DeviceId(device), &hex(n), now, 30);
            prop_assert!(c.len() <= global.max(per as usize));
            c.assert_consistent();
            for d in 0..5 {
                prop_assert!(c.device_len(DeviceId(d)) <= per);
            }
        }
    }
}

/// With a tolerance longer than half the retention, a timestamp from the future can outlive
/// nonces recorded after it: the device's count still drops as each one expires.
#[test]
fn a_device_count_drops_as_entries_expire_whatever_their_order() {
    let mut c = cache(16, 1024);
    // Expires at T0 + 1200 (timestamp 600 s ahead, tolerance 600).
    c.record(at(T0), DeviceId(1), &hex(0), T0 + 600, 600)
        .unwrap();
    // Fifteen more, each expiring 600 s after its own second.
    for n in 1..16 {
        c.record(at(T0 + n), DeviceId(1), &hex(n), T0 + n, 600)
            .unwrap();
    }
    assert_eq!(
        c.record(at(T0 + 16), DeviceId(1), &hex(16), T0 + 16, 600),
        Err(NonceRefusal::DeviceQuotaExceeded)
    );
    // At T0 + 700 only the first is live: room for fifteen again.
    for n in 0..15 {
        c.record(at(T0 + 700), DeviceId(1), &hex(100 + n), T0 + 700, 600)
            .unwrap_or_else(|e| panic!("nonce {n}: {e}"));
    }
    assert_eq!(
        c.record(at(T0 + 700), DeviceId(1), &hex(200), T0 + 700, 600),
        Err(NonceRefusal::DeviceQuotaExceeded)
    );
}

/// Entries are retired from the front of the queue, at most eight dead ones per new nonce;
/// a dead entry behind those is found when its nonce comes again, marked gone, and the
/// nonce recorded afresh at the back — a replay of it is then refused.
#[test]
fn a_nonce_reused_after_expiry_behind_unretired_entries_is_recorded_again_at_the_back() {
    let mut c = cache(64, 64);
    for n in 0..20 {
        c.record(at(T0), DeviceId(1), &hex(n), T0, 30).unwrap();
    }
    c.record(at(T0 + 301), DeviceId(1), &hex(15), T0 + 301, 30)
        .unwrap();
    c.assert_consistent();
    // Eight retired, #15's old place gone, the new one appended.
    assert_eq!(c.queue_len(), 20 - 8 + 1);
    assert_eq!(c.len(), 20 - 8 - 1 + 1);
    assert_eq!(c.device_len(DeviceId(1)), 1);
    assert_eq!(
        c.record(at(T0 + 302), DeviceId(1), &hex(15), T0 + 302, 30),
        Err(NonceRefusal::Replayed)
    );
    // That refused attempt retired eight more (#15's gone place on the way, not counted);
    // the three dead ones left go on the next sweep.
    assert_eq!(c.expire(at(T0 + 302), 100), 3);
    assert_eq!((c.len(), c.queue_len()), (1, 1));
    c.assert_consistent();
    assert_eq!(c.expire(at(T0 + 602), 100), 1);
    assert!(c.is_empty());
    assert_eq!(c.queue_len(), 0);
    assert_eq!(c.heap_bytes(), 0, "an emptied cache gives its memory back");
}

#[test]
fn retiring_is_bounded_per_new_nonce_and_catches_up_with_later_ones() {
    let mut c = cache(1000, 1000);
    for n in 0..100 {
        c.record(at(T0), DeviceId(1), &hex(n), T0, 30).unwrap();
    }
    for k in 1..=5u64 {
        c.record(at(T0 + 301), DeviceId(1), &hex(1000 + k), T0 + 301, 30)
            .unwrap();
        assert_eq!(c.len() as u64, 100 - 8 * k + k, "after {k} new nonces");
        c.assert_consistent();
    }
}

/// Records for device 1, at T0, one nonce that lives until T0 + 1200 (a timestamp 600 s
/// ahead under a 600-s tolerance) and then `short` nonces that live until T0 + 300.
fn long_lived_then(c: &mut NonceCache, short: u64) {
    c.record(at(T0), DeviceId(1), &hex(0), T0 + 600, 600)
        .unwrap();
    for n in 1..=short {
        c.record(at(T0), DeviceId(1), &hex(n), T0, 30).unwrap();
    }
}

/// A timestamp from the future under a long tolerance (a device given one over half the
/// retention with `with_tolerance_secs`) outlives the nonces recorded after it: they stay held
/// until it goes, yet as soon as they expire they are neither replays nor counted.
#[test]
fn an_entry_outliving_later_ones_holds_them_but_they_are_not_replays_or_counted() {
    let mut c = cache(64, 64);
    long_lived_then(&mut c, 5);
    assert_eq!(c.expire(at(T0 + 400), 100), 0, "the front is live");
    assert_eq!(c.len(), 6);
    assert_eq!(c.device_len(DeviceId(1)), 1);
    assert!(!c.contains(at(T0 + 400), DeviceId(1), &hex(3)));
    c.record(at(T0 + 400), DeviceId(1), &hex(3), T0 + 400, 30)
        .unwrap();
    assert_eq!(c.device_len(DeviceId(1)), 2);
    c.assert_consistent();
    // Once the front goes, everything dead behind it goes too (#3's second entry as well).
    assert_eq!(c.expire(at(T0 + 1201), 100), 6);
    assert!(c.is_empty());
    c.assert_consistent();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever order entries expire in (tolerances up to ten times the retention, nonces
    /// reused, caps reached, sweeps of any budget), the index and the queue agree, every
    /// bound holds, and a nonce is a replay exactly while its entry is live.
    #[test]
    fn queue_and_index_agree_whatever_the_order_of_expiry(
        ops in proptest::collection::vec(
            (0u32..3, 0u64..12, 0u64..200, 0u32..3000, 0usize..20),
            1..300,
        ),
        global in 1usize..24,
    ) {
        let mut c = NonceCache::new(
            NonceConfig {
                retention: Duration::from_secs(300),
                per_device_cap: 1000,
                global_cap: global,
            },
            &mut rng(3),
        );
        let mut model: BTreeMap<(u32, u64), u64> = BTreeMap::new();
        let mut now = T0;
        for (device, n, gap, tolerance, sweep) in ops {
            now += gap;
            let ts = now + u64::from(tolerance) / 2;
            let live = model.get(&(device, n)).is_some_and(|&e| e >= now);
            let r = c.record(at(now), DeviceId(device), &hex(n), ts, tolerance);
            if live {
                prop_assert_eq!(r, Err(NonceRefusal::Replayed));
            } else if r.is_ok() {
                model.insert((device, n), (ts + u64::from(tolerance)).max(now + 300));
            } else {
                prop_assert_eq!(r, Err(NonceRefusal::CacheFull));
            }
            if sweep > 0 {
                c.expire(at(now), sweep);
            }
            c.assert_consistent();
            for ((d, k), e) in &model {
                prop_assert_eq!(
                    c.contains(at(now), DeviceId(*d), &hex(*k)),
                    *e >= now,
                    "device {} nonce {}", d, k
                );
            }
        }
    }
}

/// A nonce reused after expiry behind an entry that outlives it adds a queue place each
/// time (the old one is only marked gone): the queue still never holds more than twice the
/// cap — a full one is compacted — and every reuse is accepted.
#[test]
fn reusing_nonces_behind_a_long_lived_entry_keeps_the_queue_bounded() {
    let mut c = cache(2, 2);
    long_lived_then(&mut c, 1);
    for k in 1..=6u64 {
        let now = T0 + 301 * k;
        c.record(at(now), DeviceId(1), &hex(1), now, 30)
            .unwrap_or_else(|e| panic!("reuse {k}: {e}"));
        c.assert_consistent();
        assert!(c.queue_len() <= 4, "reuse {k}: {} places", c.queue_len());
    }
}

/// Dead entries held behind one that outlives them do not fill the cache: a nonce that
/// finds no room compacts the queue and is recorded; when live nonces hold the cap it is
/// refused, never evicting one.
#[test]
fn dead_entries_behind_a_long_lived_one_do_not_fill_the_cache() {
    let mut c = cache(64, 4);
    long_lived_then(&mut c, 3);
    // Three of the four are dead at T0 + 400 but held behind the first.
    assert_eq!(c.len(), 4);
    c.record(at(T0 + 400), DeviceId(2), &hex(10), T0 + 400, 30)
        .unwrap();
    c.assert_consistent();
    assert_eq!(c.len(), 2, "the three dead ones were dropped");
    for n in 11..13 {
        c.record(at(T0 + 400), DeviceId(2), &hex(n), T0 + 400, 30)
            .unwrap();
    }
    assert_eq!(
        c.record(at(T0 + 400), DeviceId(2), &hex(13), T0 + 400, 30),
        Err(NonceRefusal::CacheFull)
    );
    assert!(c.contains(at(T0 + 400), DeviceId(1), &hex(0)));
    c.assert_consistent();
}
