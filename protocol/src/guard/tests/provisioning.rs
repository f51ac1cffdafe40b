//! Provisioning abuse: distinct codes in a sliding hour, the blacklist and its end.

use alloc::format;
use core::time::Duration;

use proptest::prelude::*;

use super::{key, rng};
use crate::guard::*;
use crate::time::Instant;

fn tracker(max_tracked: usize) -> ProvisioningTracker {
    ProvisioningTracker::new(
        ProvisioningConfig {
            max_tracked,
            ..ProvisioningConfig::default()
        },
        &mut rng(4),
    )
}

fn s(secs: u64) -> Instant {
    Instant::from_secs(10_000 + secs)
}

#[test]
fn a_panel_retrying_its_one_code_is_never_blacklisted() {
    let mut t = tracker(16);
    for i in 0..10_000 {
        t.record(s(i * 10), key(1), "ABC123").unwrap();
    }
}

#[test]
fn ten_distinct_codes_pass_and_the_eleventh_blacklists_for_an_hour() {
    let mut t = tracker(16);
    for i in 0..10 {
        t.record(s(i * 10), key(1), &format!("CODE{i}")).unwrap();
    }
    let e = t.record(s(100), key(1), "CODE10").unwrap_err();
    assert_eq!(
        e,
        ProvisioningRefusal::Blacklisted {
            until: s(100 + 3600),
            newly: true
        }
    );
    // Even a known code is refused while blacklisted; the end is exclusive.
    assert_eq!(
        t.record(s(3699), key(1), "CODE0"),
        Err(ProvisioningRefusal::Blacklisted {
            until: s(3700),
            newly: false
        })
    );
    assert_eq!(t.blacklisted_until(s(3699), key(1)), Some(s(3700)));
    assert_eq!(t.blacklisted_until(s(3700), key(1)), None);
    // After the blacklist the address starts from zero.
    for i in 0..10 {
        t.record(s(3700 + i), key(1), &format!("NEW{i}")).unwrap();
    }
    // Other addresses were never affected.
    t.record(s(200), key(2), "CODE0").unwrap();
}

#[test]
fn codes_leave_the_sliding_hour_exactly_one_hour_after_last_use() {
    let mut t = tracker(16);
    for i in 0..10 {
        t.record(s(0), key(1), &format!("C{i}")).unwrap();
    }
    // One second before the hour is up the eleventh distinct code still blacklists...
    let mut u = tracker(16);
    for i in 0..10 {
        u.record(s(0), key(1), &format!("C{i}")).unwrap();
    }
    assert!(matches!(
        u.record(s(3599), key(1), "C10"),
        Err(ProvisioningRefusal::Blacklisted { .. })
    ));
    // ...at exactly one hour the old codes no longer count.
    t.record(s(3600), key(1), "C10").unwrap();
}

#[test]
fn reusing_a_code_refreshes_it_in_the_window() {
    let mut t = tracker(16);
    for i in 0..10 {
        t.record(s(0), key(1), &format!("C{i}")).unwrap();
    }
    t.record(s(3000), key(1), "C0").unwrap();
    // At 3600 codes C1..C9 expire but C0 (seen at 3000) still counts: 1 + 2 new = 3 ≤ 10.
    t.record(s(3600), key(1), "X").unwrap();
    t.record(s(3600), key(1), "Y").unwrap();
}

#[test]
fn a_full_tracker_refuses_newcomers_and_reclaims_idle_addresses() {
    let mut t = tracker(2);
    t.record(s(0), key(1), "A").unwrap();
    t.record(s(0), key(2), "A").unwrap();
    assert_eq!(
        t.record(s(10), key(3), "A"),
        Err(ProvisioningRefusal::Saturated)
    );
    // An hour later the first two are idle and their slots can be taken.
    t.record(s(3600), key(3), "A").unwrap();
    assert!(t.len() <= 2);
}

#[test]
fn forgive_lifts_a_blacklist() {
    let mut t = tracker(16);
    for i in 0..11 {
        let _ = t.record(s(0), key(1), &format!("C{i}"));
    }
    assert!(t.blacklisted_until(s(1), key(1)).is_some());
    assert!(t.forgive(key(1)));
    t.record(s(1), key(1), "C0").unwrap();
}

#[test]
fn guard_rate_limits_then_blacklists_with_an_event() {
    let mut g = Guard::new(GuardConfig::default(), &mut rng(5)).unwrap();
    let client = key(77);
    let at = |secs: u64| super::at(secs);
    g.check_provisioning(at(0), client, "C0").unwrap();
    assert!(matches!(
        g.check_provisioning(at(5), client, "C1"),
        Err(ProvisioningDenied::RateLimited { retry_after }) if retry_after == Duration::from_secs(5)
    ));
    for i in 1..10 {
        g.check_provisioning(at(i * 10), client, &format!("C{i}"))
            .unwrap();
    }
    let e = g.check_provisioning(at(100), client, "C10").unwrap_err();
    assert_eq!(
        e,
        ProvisioningDenied::Blacklisted {
            until_unix: super::T0 + 100 + 3600
        }
    );
    assert_eq!(e.status(), 429);
    assert_eq!(
        g.poll_event(),
        Some(SecurityEvent::ProvisioningBlacklisted {
            client,
            until_unix: super::T0 + 3700
        })
    );
    assert_eq!(g.poll_event(), None);
    // Blacklisted requests are not charged to the rate limit or counted again.
    assert!(matches!(
        g.check_provisioning(at(101), client, "C0"),
        Err(ProvisioningDenied::Blacklisted { .. })
    ));
    g.check_provisioning(at(3700), client, "C0").unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn blacklist_happens_exactly_when_an_hour_holds_more_than_ten_distinct_codes(
        steps in proptest::collection::vec((0u8..14, 0u64..900), 1..80),
    ) {
        let mut t = tracker(16);
        // Model: code -> last seen; blacklist end.
        let mut seen: alloc::collections::BTreeMap<u8, u64> = alloc::collections::BTreeMap::new();
        let mut banned_until = 0u64;
        let mut now = 0u64;
        for (code, gap) in steps {
            now += gap;
            let r = t.record(s(now), key(1), &format!("K{code}"));
            if now < banned_until {
                let refused = matches!(r, Err(ProvisioningRefusal::Blacklisted { newly: false, .. }));
                prop_assert!(refused);
                continue;
            }
            seen.retain(|_, &mut last| now - last < 3600);
            seen.insert(code, now);
            if seen.len() > 10 {
                prop_assert_eq!(r, Err(ProvisioningRefusal::Blacklisted { until: s(now + 3600), newly: true }));
                banned_until = now + 3600;
                seen.clear();
            } else {
                prop_assert_eq!(r, Ok(()));
            }
        }
    }
}
