//! Property tests of the renewal schedule's timing rules. Each test states its invariant in
//! its name; each runs thousands of cases.

use latchkey_pki::schedule::{
    Action, BackoffPolicy, DAY, EmergencyPolicy, LifetimeFraction, Ratio, RenewalHistory,
    RenewalPolicy, RenewalSchedule, RenewalWindow, Validity, WakeCap,
};
use proptest::prelude::*;

const YEAR: u64 = 365 * DAY;

fn ratio(max_num: u32) -> impl Strategy<Value = Ratio> {
    (0..=max_num, 0u32..=100).prop_map(|(num, den)| Ratio::new(num, den))
}

fn backoff() -> impl Strategy<Value = BackoffPolicy> {
    (0u64..10_000, 0u32..20, 0u64..200_000).prop_map(|(initial, factor, max)| {
        let mut b = BackoffPolicy::default();
        b.initial = initial;
        b.factor = factor;
        b.max = max;
        b
    })
}

fn policy() -> impl Strategy<Value = RenewalPolicy> {
    (
        proptest::option::of(0u64..3 * YEAR),
        proptest::option::of((ratio(100), 0u64..30 * DAY, ratio(100))),
        (ratio(100), 0u64..10 * DAY, 0u64..DAY),
        ratio(100),
        backoff(),
        0u64..30 * DAY,
        (0u64..3 * DAY, 0u64..DAY),
    )
        .prop_map(
            |(
                renew_before,
                fraction,
                (e_frac, e_floor, e_retry),
                jitter,
                backoff,
                cap,
                (skew, recheck),
            )| {
                let mut p = RenewalPolicy::default();
                p.renew_before = renew_before;
                p.fraction = fraction.map(|(remaining, short_lifetime, short_remaining)| {
                    let mut f = LifetimeFraction::default();
                    f.remaining = remaining;
                    f.short_lifetime = short_lifetime;
                    f.short_remaining = short_remaining;
                    f
                });
                let mut e = EmergencyPolicy::default();
                e.fraction = e_frac;
                e.floor = e_floor;
                e.retry = e_retry;
                p.emergency = e;
                p.jitter = jitter;
                p.backoff = backoff;
                p.wake_cap = WakeCap::new(cap);
                p.clock_skew = skew;
                p.clock_recheck = recheck;
                p
            },
        )
}

fn validity() -> impl Strategy<Value = Validity> {
    (0u64..4_000_000_000, 0u64..20 * YEAR).prop_map(|(nb, life)| Validity::new(nb, nb + life))
}

fn window() -> impl Strategy<Value = Option<RenewalWindow>> {
    proptest::option::of(
        (0u64..5_000_000_000, 0u64..5_000_000_000).prop_map(|(a, b)| RenewalWindow::new(a, b)),
    )
}

fn history() -> impl Strategy<Value = RenewalHistory> {
    (0u32..40, proptest::option::of(0u64..5_000_000_000)).prop_map(|(failures, last)| {
        let mut h = RenewalHistory::default();
        h.failures = failures;
        h.last_attempt = last;
        h
    })
}

fn schedule(
    validity: Validity,
    policy: RenewalPolicy,
    seed: u64,
    window: Option<RenewalWindow>,
) -> RenewalSchedule {
    let s = RenewalSchedule::new(validity, policy, seed);
    match window {
        Some(w) => s.with_window(w),
        None => s,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn renewal_time_lies_within_validity_and_never_after_the_policy_point(
        validity in validity(), policy in policy(), seed: u64, window in window(),
    ) {
        let s = schedule(validity, policy, seed, window);
        let at = s.renew_at();
        let (point, _) = s.policy_point();
        prop_assert!(validity.not_before <= at && at <= validity.not_after, "{at} outside {validity:?}");
        prop_assert!(at <= point, "renew_at {at} after policy point {point}");
        prop_assert!(at <= s.emergency_at(), "renewal after emergency mode starts");
        prop_assert!(point <= validity.not_after);
        if window.is_none() {
            // The lead never exceeds half the lifetime: no renewal storm.
            prop_assert!(point >= validity.not_before + validity.lifetime() - validity.lifetime() / 2);
        }
    }

    #[test]
    fn no_wake_is_beyond_the_cap_and_only_due_actions_wake_now(
        validity in validity(), policy in policy(), seed: u64, window in window(),
        history in history(), now in prop_oneof![0u64..5_000_000_000, Just(u64::MAX), Just(0)],
    ) {
        let s = schedule(validity, policy, seed, window);
        let d = s.decide(now, &history);
        prop_assert!(d.wake_in <= policy.wake_cap.seconds(), "{d:?}");
        prop_assert_eq!(d.wake_at, now + d.wake_in);
        match d.action {
            Action::Renew | Action::Emergency => prop_assert_eq!(d.wake_in, 0),
            _ => prop_assert!(d.wake_in >= 1, "non-due action must sleep: {:?}", d),
        }
    }

    #[test]
    fn backoff_is_bounded_and_monotone_until_reset(
        backoff in backoff(), failures in 0u32..100,
    ) {
        let a = backoff.delay(failures);
        let b = backoff.delay(failures + 1);
        let bound = backoff.initial.max(1).max(backoff.max);
        prop_assert!(a >= 1 && a <= bound);
        prop_assert!(a <= b, "delay went down: {a} then {b}");
        prop_assert!(b <= bound);
    }

    #[test]
    fn backoff_through_decide_is_monotone_until_a_success_resets_it(
        validity in validity(), policy in policy(), seed: u64, failures in 1usize..20,
    ) {
        let s = RenewalSchedule::new(validity, policy, seed);
        let t = s.renew_at().max(validity.not_before.saturating_add(0));
        // Only meaningful when the clock is trusted at t.
        prop_assume!(t.saturating_add(policy.clock_skew) >= validity.not_before);
        let mut h = RenewalHistory::default();
        let mut previous = 0;
        let emergency_retry = policy.emergency.retry.max(1);
        for _ in 0..failures {
            h.record_failure(t, "x");
            let d = s.decide(t, &h);
            prop_assert_eq!(d.action, Action::Backoff);
            let wait = d.retry_at.unwrap() - t;
            prop_assert!(wait >= previous, "wait shrank without a reset");
            prop_assert!(wait <= policy.backoff.initial.max(1).max(policy.backoff.max));
            if t >= s.emergency_at() {
                prop_assert!(wait <= emergency_retry);
            }
            previous = wait;
        }
        h.record_success(t);
        let d = s.decide(t, &h);
        prop_assert_eq!(d.retry_at.map(|r| r - t), Some(policy.backoff.delay(0).min(if t >= s.emergency_at() { emergency_retry } else { u64::MAX })));
    }

    #[test]
    fn jitter_stays_within_bounds_and_is_stable_per_seed(
        validity in validity(), policy in policy(), seed: u64, window in window(),
    ) {
        let s = schedule(validity, policy, seed, window);
        let again = schedule(validity, policy, seed, window);
        prop_assert_eq!(s.renew_at(), again.renew_at(), "same seed, same point");
        let (point, _) = s.policy_point();
        let lowest = point
            .saturating_sub(s.max_jitter())
            .max(validity.not_before)
            .min(s.emergency_at());
        prop_assert!(s.renew_at() >= lowest, "jitter beyond its bound");
        if window.is_none() {
            prop_assert!(s.max_jitter() <= policy.jitter.of(validity.not_after - point));
        }
    }

    #[test]
    fn a_clock_far_before_not_before_never_renews(
        validity in validity(), policy in policy(), seed: u64, history in history(), behind in 1u64..4_000_000_000,
    ) {
        let s = RenewalSchedule::new(validity, policy, seed);
        let now = validity.not_before.saturating_sub(policy.clock_skew).saturating_sub(behind);
        prop_assume!(now.saturating_add(policy.clock_skew) < validity.not_before);
        let d = s.decide(now, &history);
        prop_assert_eq!(d.action, Action::ClockUnreliable);
        prop_assert!(d.wake_in >= 1);
    }
}

/// One step of a driver's life: how the clock moved while it slept, and how an attempt
/// (if one is made) ends.
#[derive(Debug, Clone, Copy)]
enum Jump {
    OnTime,
    Late(u64),
    Forward(u64),
    Backward(u64),
}

fn jump() -> impl Strategy<Value = Jump> {
    prop_oneof![
        4 => Just(Jump::OnTime),
        3 => (0u64..2 * DAY).prop_map(Jump::Late),
        1 => (0u64..3 * YEAR).prop_map(Jump::Forward),
        1 => (0u64..2 * YEAR).prop_map(Jump::Backward),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn clock_jumps_never_skip_a_renewal_nor_loop(
        policy in prop_oneof![Just(RenewalPolicy::default()), Just(RenewalPolicy::bticino()), policy()],
        lifetime in 2 * 3_600u64..3 * YEAR,
        start in 1_000_000_000u64..2_000_000_000,
        seed: u64,
        steps in proptest::collection::vec((jump(), any::<bool>()), 1..150),
    ) {
        let mut validity = Validity::new(start, start + lifetime);
        let mut s = RenewalSchedule::new(validity, policy, seed);
        let mut history = RenewalHistory::default();
        let mut now = start;
        let mut last_attempt: Option<u64> = None;
        let min_gap = policy.backoff.delay(0).min(policy.emergency.retry.max(1));
        for (jump, succeeds) in steps {
            let d = s.decide(now, &history);
            let clock_ok = now.saturating_add(policy.clock_skew) >= validity.not_before;
            if clock_ok && now >= s.renew_at() {
                // Never skipped: once due, the answer is to renew or to retry soon.
                prop_assert!(
                    matches!(d.action, Action::Renew | Action::Emergency | Action::Backoff),
                    "due at {now} but told {:?}", d.action
                );
            }
            if !clock_ok {
                prop_assert_eq!(d.action, Action::ClockUnreliable);
            }
            let mut wake_at = d.wake_at;
            if matches!(d.action, Action::Renew | Action::Emergency) {
                // Never a loop: consecutive attempts are min_gap apart unless the clock went back.
                if let Some(prev) = last_attempt {
                    prop_assert!(now >= prev + min_gap || now < prev, "attempts at {prev} and {now}");
                }
                last_attempt = Some(now);
                if succeeds {
                    history.record_success(now);
                    validity = Validity::new(now, now + lifetime);
                    s = RenewalSchedule::new(validity, policy, seed);
                } else {
                    history.record_failure(now, "failed");
                }
                let after = s.decide(now, &history);
                prop_assert!(
                    !matches!(after.action, Action::Renew | Action::Emergency),
                    "asked to renew again at once: {after:?}"
                );
                wake_at = after.wake_at;
            }
            prop_assert!(wake_at - now <= policy.wake_cap.seconds());
            now = match jump {
                Jump::OnTime => wake_at,
                Jump::Late(by) | Jump::Forward(by) => wake_at.saturating_add(by),
                Jump::Backward(by) => wake_at.saturating_sub(by),
            };
        }
    }
}
