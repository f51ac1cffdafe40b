//! GCRA: exact edges, bursts, retry hints, the overflow cell, and a model check.

use alloc::vec::Vec;
use core::time::Duration;

use proptest::prelude::*;

use super::{key, rng};
use crate::guard::*;
use crate::time::Instant;

fn limiter(q: Quota, cap: usize) -> RateLimiter {
    RateLimiter::new(q, cap, &mut rng(1))
}

fn s(secs: u64) -> Instant {
    Instant::from_secs(secs)
}

#[test]
fn design_quota_allows_a_burst_of_three_then_one_every_twenty_seconds() {
    let mut l = limiter(Quota::REMOTE_UI_DESIGN_AUTH, 16);
    for _ in 0..3 {
        l.check(s(100), key(1)).unwrap();
    }
    let e = l.check(s(100), key(1)).unwrap_err();
    assert_eq!(e.retry_after, Duration::from_secs(20));
    // The edge is inclusive: exactly 20 s later one more passes, a nanosecond earlier not.
    let just_before =
        Instant::from_duration_since_origin(Duration::from_secs(120) - Duration::from_nanos(1));
    assert!(l.check(just_before, key(1)).is_err());
    l.check(s(120), key(1)).unwrap();
    assert!(l.check(s(120), key(1)).is_err());
    // Other addresses are unaffected.
    l.check(s(120), key(2)).unwrap();
}

#[test]
fn calaos_base_quota_allows_twenty_per_minute() {
    let mut l = limiter(Quota::CALAOS_BASE_AUTH, 16);
    for _ in 0..20 {
        l.check(s(0), key(1)).unwrap();
    }
    assert_eq!(
        l.check(s(0), key(1)).unwrap_err().retry_after,
        Duration::from_secs(3)
    );
}

#[test]
fn provisioning_quota_is_one_per_ten_seconds_inclusive() {
    let mut l = limiter(Quota::PROVISIONING, 16);
    l.check(s(50), key(1)).unwrap();
    assert_eq!(
        l.check(s(59), key(1)).unwrap_err().retry_after,
        Duration::from_secs(1)
    );
    l.check(s(60), key(1)).unwrap();
}

#[test]
fn refused_requests_are_not_charged() {
    let mut l = limiter(Quota::PROVISIONING, 16);
    l.check(s(0), key(1)).unwrap();
    for t in 1..10 {
        assert!(l.check(s(t), key(1)).is_err());
    }
    l.check(s(10), key(1)).unwrap();
}

#[test]
fn quota_rejects_zero_and_sub_nanosecond_rates() {
    assert_eq!(
        Quota::new(0, Duration::from_secs(1)),
        Err(QuotaError::ZeroCount)
    );
    assert_eq!(
        Quota::new(10, Duration::from_nanos(5)),
        Err(QuotaError::TooFast)
    );
    assert_eq!(
        Quota::new(3, Duration::from_secs(60)).unwrap(),
        Quota::REMOTE_UI_DESIGN_AUTH
    );
}

#[test]
fn full_table_charges_newcomers_to_one_shared_overflow_cell() {
    let mut l = limiter(Quota::PROVISIONING, 4);
    for k in 0..4 {
        l.check(s(0), key(k)).unwrap();
    }
    assert!(!l.take_saturation());
    // Table full, no cell expired: newcomers share one overflow cell.
    l.check(s(1), key(100)).unwrap();
    assert!(l.take_saturation());
    assert!(!l.take_saturation(), "reported once per episode");
    assert!(l.check(s(1), key(101)).is_err());
    assert!(l.check(s(2), key(102)).is_err());
    // Tracked addresses keep their own allowance.
    l.check(s(10), key(0)).unwrap();
    assert!(l.len() <= 4);
}

#[test]
fn expired_cells_are_reclaimed_by_newcomers_and_swept() {
    let mut l = limiter(Quota::PROVISIONING, 4);
    for k in 0..4 {
        l.check(s(0), key(k)).unwrap();
    }
    // At 10 s every cell's TAT has passed: they are as good as empty.
    for k in 10..14 {
        l.check(s(10), key(k)).unwrap();
    }
    assert!(!l.take_saturation());
    l.sweep(s(30), 1024);
    assert!(l.is_empty());
}

#[test]
fn would_allow_does_not_charge() {
    let mut l = limiter(Quota::PROVISIONING, 4);
    assert!(l.would_allow(s(0), key(1)));
    assert!(l.would_allow(s(0), key(1)));
    l.check(s(0), key(1)).unwrap();
    assert!(!l.would_allow(s(5), key(1)));
}

/// The reference: a sliding log of allowed times; GCRA with burst n and interval T admits
/// a request iff admitting it keeps every window [t - k·T, t] at or under n + k... which
/// collapses to: the TAT recurrence. Here we check the window bound directly.
fn max_in_window(times: &[u64], window: u64) -> usize {
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..times.len() {
        while times[hi] - times[lo] > window {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn gcra_never_admits_more_than_burst_plus_window_over_interval(
        count in 1u32..10,
        period_s in 1u64..120,
        gaps in proptest::collection::vec(0u64..5_000, 1..200),
    ) {
        let q = Quota::new(count, Duration::from_secs(period_s)).unwrap();
        let t = q.emission_interval().as_millis() as u64;
        let mut l = limiter(q, 8);
        let mut now = 0u64;
        let mut allowed = Vec::new();
        for g in gaps {
            now += g;
            if l.check(Instant::from_millis(now), key(7)).is_ok() {
                allowed.push(now);
            }
        }
        for w in [0u64, t, 2 * t, 10 * t] {
            let limit = count as usize + (w / t.max(1)) as usize;
            prop_assert!(max_in_window(&allowed, w) <= limit, "window {} ms: {:?}", w, allowed);
        }
    }

    #[test]
    fn gcra_retry_after_is_exact(count in 1u32..6, period_s in 1u64..100, extra in 1u32..5) {
        let q = Quota::new(count, Duration::from_secs(period_s)).unwrap();
        let mut l = limiter(q, 8);
        let t0 = Instant::from_secs(1_000);
        for _ in 0..count {
            l.check(t0, key(1)).unwrap();
        }
        for _ in 0..extra {
            let wait = l.check(t0, key(1)).unwrap_err().retry_after;
            prop_assert_eq!(wait, q.emission_interval());
            let before = Instant::from_duration_since_origin(t0.duration_since_origin() + wait - Duration::from_nanos(1));
            prop_assert!(l.check(before, key(1)).is_err());
            prop_assert!(l.would_allow(t0 + wait, key(1)));
        }
    }

    #[test]
    fn rate_table_stays_within_its_cap_under_address_churn(cap in 1usize..64, n in 1u32..2_000) {
        let mut l = limiter(Quota::PROVISIONING, cap);
        for k in 0..n {
            let _ = l.check(Instant::from_millis(u64::from(k)), key(k));
            prop_assert!(l.len() <= cap);
        }
    }
}
