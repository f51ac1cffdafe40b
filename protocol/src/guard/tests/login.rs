//! Login throttle: the door station's 5-in-15-minutes rule and NIST's per-account cap.

use proptest::prelude::*;

use super::{at, key, rng};
use crate::guard::*;
use crate::time::Instant;

fn throttle(config: LoginConfig) -> LoginThrottle {
    LoginThrottle::new(config, &mut rng(6))
}

fn s(secs: u64) -> Instant {
    Instant::from_secs(10_000 + secs)
}

#[test]
fn five_failures_in_fifteen_minutes_block_the_address_for_five_minutes() {
    let mut t = throttle(LoginConfig::default());
    for i in 0..4 {
        let o = t.record_failure(s(i * 60), key(1), None);
        assert_eq!(o.address_blocked_until, None);
        t.check(s(i * 60 + 1), key(1), None).unwrap();
    }
    let o = t.record_failure(s(240), key(1), None);
    assert_eq!(o.address_blocked_until, Some(s(540)));
    assert_eq!(
        t.check(s(539), key(1), None),
        Err(LoginRefusal::AddressBlocked { until: s(540) })
    );
    t.check(s(540), key(1), None).unwrap();
    // The block ends with a clean slate: four more failures do not block.
    for i in 0..4 {
        assert_eq!(
            t.record_failure(s(540 + i), key(1), None)
                .address_blocked_until,
            None
        );
    }
    // Other addresses are unaffected.
    t.check(s(300), key(2), None).unwrap();
}

#[test]
fn failures_older_than_the_window_do_not_count() {
    let mut t = throttle(LoginConfig::default());
    for i in 0..4 {
        t.record_failure(s(i), key(1), None);
    }
    // At exactly 15 minutes after the first failure, it has left the window.
    assert_eq!(
        t.record_failure(s(900), key(1), None).address_blocked_until,
        None
    );
    // One second earlier it would still have counted.
    let mut u = throttle(LoginConfig::default());
    for i in 0..4 {
        u.record_failure(s(i), key(1), None);
    }
    assert!(
        u.record_failure(s(899), key(1), None)
            .address_blocked_until
            .is_some()
    );
}

#[test]
fn success_resets_the_address_count() {
    let mut t = throttle(LoginConfig::default());
    for i in 0..4 {
        t.record_failure(s(i), key(1), Some("admin"));
    }
    t.record_success(s(5), key(1), Some("admin"));
    for i in 0..4 {
        assert_eq!(
            t.record_failure(s(6 + i), key(1), None)
                .address_blocked_until,
            None
        );
    }
    assert_eq!(t.account_failures("admin"), 0);
}

#[test]
fn account_locks_at_one_hundred_consecutive_failures_then_allows_one_guess_per_lock() {
    let mut t = throttle(LoginConfig {
        max_failures: 8,
        ..LoginConfig::default()
    });
    // Spread over many addresses so no address block interferes.
    for i in 0..99u32 {
        let o = t.record_failure(s(u64::from(i)), key(1000 + i), Some("admin"));
        assert_eq!(o.account_locked_until, None);
        assert_eq!(o.account_failures, i + 1);
    }
    let o = t.record_failure(s(99), key(5), Some("admin"));
    assert_eq!(o.account_failures, 100);
    assert_eq!(o.account_locked_until, Some(s(99 + 900)));
    assert_eq!(
        t.check(s(998), key(6), Some("admin")),
        Err(LoginRefusal::AccountLocked { until: s(999) })
    );
    t.check(s(999), key(6), Some("admin")).unwrap();
    // At the cap each failure locks again.
    let o = t.record_failure(s(999), key(6), Some("admin"));
    assert_eq!(o.account_locked_until, Some(s(999 + 900)));
    // Other accounts are unaffected; a success resets.
    t.check(s(1000), key(6), Some("viewer")).unwrap();
    t.record_success(s(2000), key(6), Some("admin"));
    t.check(s(2000), key(7), Some("admin")).unwrap();
    assert_eq!(t.account_failures("admin"), 0);
}

#[test]
fn consecutive_cap_is_clamped_to_nist() {
    let t = throttle(LoginConfig {
        max_consecutive: 1_000,
        max_failures: 50,
        ..LoginConfig::default()
    });
    assert_eq!(t.config().max_consecutive, 100);
    assert_eq!(t.config().max_failures, 8);
    assert!(
        GuardConfig {
            login: LoginConfig {
                max_consecutive: 101,
                ..LoginConfig::default()
            },
            ..GuardConfig::default()
        }
        .validate()
        .is_err()
    );
}

#[test]
fn full_address_table_puts_newcomers_in_one_shared_record() {
    let mut t = throttle(LoginConfig {
        max_tracked_addresses: 2,
        ..LoginConfig::default()
    });
    t.record_failure(s(0), key(1), None);
    t.record_failure(s(0), key(2), None);
    assert!(!t.take_saturation());
    for i in 0..4 {
        assert_eq!(
            t.record_failure(s(1), key(100 + i), None)
                .address_blocked_until,
            None
        );
    }
    assert!(t.take_saturation());
    // The fifth failure among untracked newcomers blocks all of them...
    assert!(
        t.record_failure(s(1), key(200), None)
            .address_blocked_until
            .is_some()
    );
    assert!(t.check(s(2), key(300), None).is_err());
    // The saturation is reported once per episode, however many newcomers keep failing.
    assert!(!t.take_saturation(), "reported once per episode");
    // ...but not the tracked addresses.
    t.check(s(2), key(1), None).unwrap();
    assert_eq!(t.tracked_addresses(), 2);
}

#[test]
fn guard_raises_events_for_blocks_and_locks() {
    let mut g = Guard::new(GuardConfig::default(), &mut rng(7)).unwrap();
    for i in 0..5 {
        g.login_failed(at(i), key(1), Some("admin"));
    }
    assert_eq!(
        g.poll_event(),
        Some(SecurityEvent::LoginBlocked {
            client: key(1),
            until_unix: super::T0 + 4 + 300
        })
    );
    assert!(g.check_login(at(10), key(1), Some("admin")).is_err());
    g.check_login(at(304), key(1), Some("admin")).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn address_is_blocked_exactly_when_five_failures_fall_within_fifteen_minutes(
        gaps in proptest::collection::vec(0u64..400, 1..60),
    ) {
        let mut t = throttle(LoginConfig::default());
        let mut window: alloc::vec::Vec<u64> = alloc::vec::Vec::new();
        let mut blocked_until = 0u64;
        let mut now = 0u64;
        for g in gaps {
            now += g;
            let allowed = t.check(s(now), key(9), None).is_ok();
            prop_assert_eq!(allowed, now >= blocked_until);
            if !allowed {
                continue;
            }
            let o = t.record_failure(s(now), key(9), None);
            window.retain(|&f| now - f < 900);
            window.push(now);
            if window.len() >= 5 {
                prop_assert_eq!(o.address_blocked_until, Some(s(now + 300)));
                blocked_until = now + 300;
                window.clear();
            } else {
                prop_assert_eq!(o.address_blocked_until, None);
            }
        }
    }
}

/// A full account table makes room by dropping the unlocked account with the fewest
/// failures, so one failure on each of many names cannot switch the per-account cap off for
/// the account under attack; only when every tracked account is locked is a newcomer left
/// uncounted.
#[test]
fn a_full_account_table_drops_its_lightest_record_for_a_newcomer() {
    let mut t = throttle(LoginConfig {
        max_tracked_accounts: 3,
        max_consecutive: 4,
        ..LoginConfig::default()
    });
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        t.record_failure(s(0), key(10 + i as u32), Some(name));
    }
    t.record_failure(s(0), key(20), Some("b"));
    // "admin" replaces one of the single-failure records and is counted.
    let o = t.record_failure(s(1), key(30), Some("admin"));
    assert!(!o.account_untracked);
    assert_eq!(t.account_failures("admin"), 1);
    assert_eq!(t.account_failures("b"), 2, "the heavier record stays");
    assert_eq!(t.tracked_accounts(), 3);
    // Every record locked: the newcomer goes uncounted and the saturation is reported.
    let mut full = throttle(LoginConfig {
        max_tracked_accounts: 2,
        max_consecutive: 1,
        ..LoginConfig::default()
    });
    full.record_failure(s(0), key(40), Some("x"));
    full.record_failure(s(0), key(41), Some("y"));
    let o = full.record_failure(s(0), key(42), Some("z"));
    assert!(o.account_untracked);
    assert!(full.take_saturation());
}
