use super::*;

const NB: u64 = 1_735_689_600; // 2025-01-01
const YEAR: u64 = 365 * DAY;

fn year_cert() -> Validity {
    Validity::new(NB, NB + YEAR)
}

fn no_history() -> RenewalHistory {
    RenewalHistory::default()
}

#[test]
fn validity_lifetime_is_zero_when_reversed() {
    assert_eq!(Validity::new(10, 30).lifetime(), 20);
    assert_eq!(Validity::new(30, 10).lifetime(), 0);
}

#[test]
fn ratio_is_clamped_to_one_and_zero_denominator_is_zero() {
    assert_eq!(Ratio::new(1, 3).of(300), 100);
    assert_eq!(Ratio::new(5, 3).of(300), 300);
    assert_eq!(Ratio::new(1, 0).of(300), 0);
    assert_eq!(Ratio::new(1, 2).of(u64::MAX), u64::MAX / 2);
    assert_eq!(Ratio::new(1, 50).to_string(), "1/50");
}

#[test]
fn fraction_leaves_a_third_or_half_for_lifetimes_under_ten_days() {
    let f = LifetimeFraction::default();
    assert_eq!(f.lead(90 * DAY), 30 * DAY);
    assert_eq!(f.lead(10 * DAY), 10 * DAY / 3);
    assert_eq!(f.lead(6 * DAY), 3 * DAY);
}

#[test]
fn emergency_threshold_is_a_fiftieth_with_a_floor_and_at_most_half() {
    let e = EmergencyPolicy::default();
    assert_eq!(e.threshold(YEAR), YEAR / 50);
    assert_eq!(e.threshold(DAY), HOUR, "floor");
    assert_eq!(e.threshold(HOUR), HOUR / 2, "never above half the lifetime");
    assert_eq!(e.threshold(0), 0);
}

#[test]
fn backoff_is_one_ten_hundred_minutes_then_capped() {
    let b = BackoffPolicy::default();
    let delays: Vec<u64> = (0..6).map(|n| b.delay(n)).collect();
    assert_eq!(delays, [60, 60, 600, 6_000, 6_000, 6_000]);
    assert_eq!(b.delay(u32::MAX), 6_000);
    let daily = BackoffPolicy {
        max: DAY,
        ..BackoffPolicy::default()
    };
    assert_eq!(daily.delay(5), DAY);
    let silly = BackoffPolicy {
        initial: 0,
        factor: 0,
        max: 0,
    };
    assert_eq!(silly.delay(3), 1, "never zero, never stuck");
}

#[test]
fn wake_cap_is_clamped_to_between_a_second_and_a_week() {
    assert_eq!(WakeCap::new(0).seconds(), 1);
    assert_eq!(WakeCap::new(30 * DAY).seconds(), 7 * DAY);
    assert_eq!(WakeCap::default(), WakeCap::TWELVE_HOURS);
    let parsed: WakeCap = serde_json::from_str("99999999999").unwrap();
    assert_eq!(parsed, WakeCap::MAX);
    assert_eq!(u64::from(WakeCap::WEEKLY), 604_800);
}

#[test]
fn bticino_policy_renews_thirty_days_before_and_checks_weekly() {
    let s = RenewalSchedule::new(year_cert(), RenewalPolicy::bticino(), 42);
    let point = NB + YEAR - 30 * DAY;
    assert_eq!(s.policy_point(), (point, PointSource::RenewBefore));
    assert!(s.renew_at() <= point && s.renew_at() >= point - 3 * DAY);
    let d = s.decide(NB + DAY, &no_history());
    assert_eq!(d.action, Action::Wait);
    assert_eq!(d.wake_in, 7 * DAY);
}

#[test]
fn default_policy_renews_with_a_third_of_the_lifetime_left() {
    let s = RenewalSchedule::new(
        Validity::new(NB, NB + 90 * DAY),
        RenewalPolicy::default(),
        1,
    );
    assert_eq!(s.policy_point(), (NB + 60 * DAY, PointSource::Fraction));
    assert!(s.renew_at() >= NB + 57 * DAY && s.renew_at() <= NB + 60 * DAY);
    let d = s.decide(NB, &no_history());
    assert_eq!((d.action, d.wake_in), (Action::Wait, 12 * HOUR));
}

#[test]
fn short_lifetimes_renew_at_half_life() {
    let s = RenewalSchedule::new(Validity::new(NB, NB + 6 * DAY), RenewalPolicy::default(), 1);
    assert_eq!(s.policy_point().0, NB + 3 * DAY);
}

#[test]
fn renew_before_longer_than_half_the_lifetime_is_capped_at_half() {
    let policy = RenewalPolicy::default().with_renew_before(30 * DAY);
    let s = RenewalSchedule::new(Validity::new(NB, NB + 20 * DAY), policy, 1);
    assert_eq!(s.policy_point(), (NB + 10 * DAY, PointSource::RenewBefore));
    assert!(s.decide(NB + HOUR, &no_history()).action == Action::Wait);
}

#[test]
fn window_takes_precedence_and_its_point_lies_inside_it() {
    let policy = RenewalPolicy::bticino();
    let window = RenewalWindow::new(NB + 200 * DAY, NB + 202 * DAY);
    for seed in 0..50 {
        let s = RenewalSchedule::new(year_cert(), policy, seed).with_window(window);
        assert_eq!(s.policy_point(), (NB + 202 * DAY, PointSource::Window));
        let at = s.renew_at();
        assert!((NB + 200 * DAY..=NB + 202 * DAY).contains(&at), "{at}");
        assert_eq!(s.max_jitter(), 2 * DAY);
    }
}

#[test]
fn window_outside_the_validity_is_clamped_and_backstopped_by_emergency() {
    let late = RenewalWindow::new(NB + 2 * YEAR, NB + 3 * YEAR);
    let s = RenewalSchedule::new(year_cert(), RenewalPolicy::default(), 3).with_window(late);
    assert_eq!(s.renew_at(), s.emergency_at());
    let early = RenewalWindow::new(0, 10);
    let s = RenewalSchedule::new(year_cert(), RenewalPolicy::default(), 3).with_window(early);
    assert_eq!(s.renew_at(), NB);
    let reversed = RenewalWindow::new(NB + 100 * DAY, NB + 50 * DAY);
    let s = RenewalSchedule::new(year_cert(), RenewalPolicy::default(), 3).with_window(reversed);
    assert_eq!(s.renew_at(), NB + 100 * DAY);
}

#[test]
fn no_rule_at_all_falls_back_to_the_emergency_floor() {
    let policy = RenewalPolicy {
        fraction: None,
        ..RenewalPolicy::default()
    };
    let s = RenewalSchedule::new(year_cert(), policy, 3);
    let (point, source) = s.policy_point();
    assert_eq!(source, PointSource::EmergencyFloor);
    assert_eq!(point, s.emergency_at());
}

#[test]
fn due_renewal_without_history_says_renew_now() {
    let s = RenewalSchedule::new(year_cert(), RenewalPolicy::default(), 9);
    let now = s.renew_at();
    let d = s.decide(now, &no_history());
    assert_eq!((d.action, d.wake_at, d.wake_in), (Action::Renew, now, 0));
    let before = s.decide(now - 1, &no_history());
    assert_eq!((before.action, before.wake_at), (Action::Wait, now));
}

#[test]
fn failures_back_off_then_retry() {
    let s = RenewalSchedule::new(year_cert(), RenewalPolicy::default(), 9);
    let t = s.renew_at();
    let mut history = no_history();
    history.record_failure(t, "CA unreachable");
    let d = s.decide(t, &history);
    assert_eq!(d.action, Action::Backoff);
    assert_eq!(d.retry_at, Some(t + 60));
    assert_eq!(s.decide(t + 60, &history).action, Action::Renew);
    history.record_failure(t + 60, "again");
    assert_eq!(s.decide(t + 61, &history).retry_at, Some(t + 660));
    assert_eq!(history.failures, 2);
    assert_eq!(history.last_error.as_deref(), Some("again"));
}

#[test]
fn backoff_wake_is_capped_even_when_the_retry_is_later() {
    let policy = RenewalPolicy::default().with_wake_cap(WakeCap::new(100));
    let s = RenewalSchedule::new(year_cert(), policy, 9);
    let t = s.renew_at();
    let mut history = no_history();
    for _ in 0..3 {
        history.record_failure(t, "x");
    }
    let d = s.decide(t, &history);
    assert_eq!(
        (d.action, d.wake_in, d.retry_at),
        (Action::Backoff, 100, Some(t + 6_000))
    );
}

#[test]
fn emergency_mode_starts_near_expiry_and_retries_every_ten_minutes() {
    let s = RenewalSchedule::new(year_cert(), RenewalPolicy::default(), 9);
    let e = s.emergency_at();
    assert_eq!(e, NB + YEAR - YEAR / 50);
    assert_eq!(s.decide(e, &no_history()).action, Action::Emergency);
    assert_eq!(
        s.decide(NB + 2 * YEAR, &no_history()).action,
        Action::Emergency
    );
    let mut history = no_history();
    for _ in 0..5 {
        history.record_failure(e, "down");
    }
    let d = s.decide(e + 1, &history);
    assert_eq!((d.action, d.retry_at), (Action::Backoff, Some(e + 600)));
}

#[test]
fn late_explicit_lead_is_backstopped_by_emergency_mode() {
    let policy = RenewalPolicy::default().with_renew_before(HOUR);
    let s = RenewalSchedule::new(year_cert(), policy, 9);
    assert_eq!(s.renew_at(), s.emergency_at());
}

#[test]
fn a_clock_in_1970_is_unreliable_and_rechecked_in_five_minutes() {
    let s = RenewalSchedule::new(year_cert(), RenewalPolicy::default(), 9);
    for now in [0, 1_000, NB - DAY - 1] {
        let d = s.decide(now, &no_history());
        assert_eq!(
            (d.action, d.wake_in),
            (Action::ClockUnreliable, 300),
            "{now}"
        );
    }
    assert_eq!(s.decide(NB - DAY, &no_history()).action, Action::Wait);
    let tiny_cap = RenewalPolicy::default().with_wake_cap(WakeCap::new(10));
    let d = RenewalSchedule::new(year_cert(), tiny_cap, 9).decide(0, &no_history());
    assert_eq!(d.wake_in, 10);
}

#[test]
fn a_clock_behind_the_last_attempt_allows_one_attempt_now() {
    let s = RenewalSchedule::new(year_cert(), RenewalPolicy::default(), 9);
    let t = s.renew_at() + 1_000;
    let mut history = no_history();
    history.record_failure(t, "x");
    assert_eq!(s.decide(t - 500, &history).action, Action::Renew);
    history.record_failure(t - 500, "y");
    assert_eq!(s.decide(t - 500, &history).action, Action::Backoff);
}

#[test]
fn a_success_that_left_the_old_certificate_still_waits_before_retrying() {
    let s = RenewalSchedule::new(year_cert(), RenewalPolicy::default(), 9);
    let t = s.renew_at();
    let mut history = no_history();
    history.record_success(t);
    let d = s.decide(t, &history);
    assert_eq!((d.action, d.retry_at), (Action::Backoff, Some(t + 60)));
    assert_eq!(history.failures, 0);
    assert!(history.last_error.is_none());
}

#[test]
fn jitter_is_stable_per_seed_and_certificate_and_differs_across_seeds() {
    let policy = RenewalPolicy::default();
    let a = RenewalSchedule::new(year_cert(), policy, 1).renew_at();
    assert_eq!(a, RenewalSchedule::new(year_cert(), policy, 1).renew_at());
    let others: Vec<u64> = (2..20)
        .map(|seed| RenewalSchedule::new(year_cert(), policy, seed).renew_at())
        .collect();
    assert!(others.iter().any(|&b| b != a));
    let next_cert = Validity::new(NB + YEAR - 30 * DAY, NB + 2 * YEAR - 30 * DAY);
    let b = RenewalSchedule::new(next_cert, policy, 1);
    assert_ne!(
        b.policy_point().0 - b.renew_at(),
        RenewalSchedule::new(year_cert(), policy, 1)
            .policy_point()
            .0
            - a,
        "a new certificate gets a new offset"
    );
}

#[test]
fn seed_from_identity_is_stable_and_distinct() {
    assert_eq!(
        seed_from_identity(b"device-1"),
        seed_from_identity(b"device-1")
    );
    assert_ne!(
        seed_from_identity(b"device-1"),
        seed_from_identity(b"device-2")
    );
}

#[test]
fn extreme_times_do_not_overflow() {
    let s = RenewalSchedule::new(
        Validity::new(u64::MAX - 10, u64::MAX),
        RenewalPolicy::default(),
        1,
    );
    let d = s.decide(u64::MAX, &no_history());
    assert_eq!(d.action, Action::Emergency);
    let zero = RenewalSchedule::new(Validity::new(5, 5), RenewalPolicy::default(), 1);
    assert_eq!(zero.renew_at(), 5);
    assert_eq!(zero.decide(5, &no_history()).action, Action::Emergency);
    let reversed = RenewalSchedule::new(Validity::new(50, 5), RenewalPolicy::default(), 1);
    assert_eq!(reversed.renew_at(), 50);
    let mut history = no_history();
    history.record_failure(u64::MAX, "x");
    let d = s.decide(u64::MAX - 5, &history);
    assert!(d.wake_in <= WakeCap::default().seconds());
}

#[test]
fn history_and_policy_round_trip_through_serde_with_defaults() {
    let mut history = no_history();
    history.record_failure(123, "boom");
    let json = serde_json::to_string(&history).unwrap();
    assert_eq!(
        serde_json::from_str::<RenewalHistory>(&json).unwrap(),
        history
    );
    assert_eq!(
        serde_json::from_str::<RenewalHistory>("{}").unwrap(),
        no_history()
    );
    let policy: RenewalPolicy =
        serde_json::from_str(r#"{"renew_before": 2592000, "wake_cap": 604800}"#).unwrap();
    assert_eq!(policy, RenewalPolicy::bticino());
    let back: RenewalPolicy =
        serde_json::from_str(&serde_json::to_string(&RenewalPolicy::default()).unwrap()).unwrap();
    assert_eq!(back, RenewalPolicy::default());
}

#[test]
fn long_failure_messages_are_truncated_when_recorded() {
    let mut history = no_history();
    history.record_failure(1, &"x".repeat(10_000));
    assert_eq!(history.last_error.unwrap().len(), 500);
}

#[test]
fn decisions_serialize_with_snake_case_names() {
    let s = RenewalSchedule::new(year_cert(), RenewalPolicy::default(), 9);
    let json = serde_json::to_value(s.decide(0, &no_history())).unwrap();
    assert_eq!(json["action"], "clock_unreliable");
    assert_eq!(json["source"], "fraction");
    assert_eq!(Action::ClockUnreliable.to_string(), "clock unreliable");
    assert_eq!(
        PointSource::Window.to_string(),
        "the server's renewal window"
    );
}
