//! `validate_allowing`: a bundle refused at `now` only for when it is valid passes if it is
//! valid at the moment its `TimingTolerance` picks; everything else is refused as at `now`.
//! Property tests state their invariant in their names.

mod common;

use common::*;
use latchkey_pki::schedule::{Action, RenewalHistory, RenewalPolicy, RenewalSchedule, Validity};
use latchkey_pki::validate::{
    Bundle, TimingTolerance, Trust, ValidBundle, ValidationError, validate, validate_allowing,
};
use proptest::prelude::*;

/// `ec-p256-cert.pem`'s notBefore and notAfter (`openssl-facts.tsv`).
const EC_NOT_BEFORE: u64 = JAN_2025;
const EC_NOT_AFTER: u64 = 2_051_222_400;
/// `expired-cert.pem`'s notAfter.
const EXPIRED_NOT_AFTER: u64 = 1_609_459_200;

fn ec() -> Bundle<'static> {
    Bundle::new(EC_CERT, EC_KEY)
}

fn ahead(skew: u64) -> TimingTolerance {
    TimingTolerance::NotBeforeAhead { skew }
}

/// What a result says, comparable: the leaf's fingerprint or the error.
fn outcome(result: Result<ValidBundle, ValidationError>) -> Result<String, ValidationError> {
    result.map(|valid| valid.leaf.fingerprint_sha256)
}

#[test]
fn exact_is_the_default_and_validates_as_validate_does() {
    assert_eq!(TimingTolerance::default(), TimingTolerance::Exact);
    let cases = [
        (ec(), EC_NOT_BEFORE - 1),
        (ec(), EC_NOT_BEFORE),
        (ec(), JUN_2026),
        (ec(), EC_NOT_AFTER),
        (ec(), EC_NOT_AFTER + 1),
        (Bundle::new(EXPIRED_CERT, EXPIRED_KEY), JUN_2026),
        (Bundle::new(EC_CERT, OTHER_KEY), JUN_2026),
        (ec().with_host("other.local"), JUN_2026),
    ];
    for (bundle, now) in cases {
        assert_eq!(
            outcome(validate_allowing(&bundle, now, TimingTolerance::Exact)),
            outcome(validate(&bundle, now)),
            "at {now}"
        );
    }
}

#[test]
fn the_fresh_tolerance_is_the_policy_clock_skew() {
    let mut policy = RenewalPolicy::default();
    assert_eq!(TimingTolerance::fresh(&policy), ahead(DAY));
    policy.clock_skew = 90;
    assert_eq!(TimingTolerance::fresh(&policy), ahead(90));
}

#[test]
fn a_fresh_pair_whose_not_before_is_seconds_ahead_is_accepted() {
    // A CA that stamps notBefore with its own clock, 5 s ahead of this device's.
    let now = EC_NOT_BEFORE - 5;
    assert!(matches!(
        validate(&ec(), now),
        Err(ValidationError::NotYetValid { .. })
    ));
    let tolerance = TimingTolerance::fresh(&RenewalPolicy::default());
    let valid = validate_allowing(&ec(), now, tolerance).expect("within the clock skew");
    assert_eq!(valid.leaf.not_before, EC_NOT_BEFORE);
    assert_eq!(valid.trust, Trust::SelfSigned);
}

#[test]
fn not_before_exactly_the_skew_ahead_is_accepted_and_one_second_more_is_refused() {
    for skew in [0, 1, 300, DAY] {
        let at_skew = EC_NOT_BEFORE - skew;
        assert!(
            validate_allowing(&ec(), at_skew, ahead(skew)).is_ok(),
            "skew {skew}: notBefore exactly the skew ahead"
        );
        let past_skew = at_skew - 1;
        assert_eq!(
            validate_allowing(&ec(), past_skew, ahead(skew)).unwrap_err(),
            ValidationError::NotYetValid {
                not_before: EC_NOT_BEFORE,
                now: past_skew
            },
            "skew {skew}: one second more"
        );
    }
}

#[test]
fn the_fresh_tolerance_never_accepts_an_expired_pair() {
    let expired = Bundle::new(EXPIRED_CERT, EXPIRED_KEY);
    for now in [EXPIRED_NOT_AFTER + 1, JUN_2026] {
        assert_eq!(
            validate_allowing(&expired, now, ahead(u64::MAX)).unwrap_err(),
            ValidationError::Expired {
                not_after: EXPIRED_NOT_AFTER,
                now
            }
        );
    }
    assert_eq!(
        validate_allowing(&ec(), EC_NOT_AFTER + 1, ahead(u64::MAX)).unwrap_err(),
        ValidationError::Expired {
            not_after: EC_NOT_AFTER,
            now: EC_NOT_AFTER + 1
        }
    );
}

#[test]
fn the_chain_is_verified_at_the_tolerated_moment() {
    // Root, intermediate and leaf all start at JAN_2025: a minute earlier, the chain itself
    // is not yet valid, and the tolerance checks it at notBefore.
    let bundle = Bundle::new(LEAF_CERT, LEAF_KEY)
        .with_chain(INTERMEDIATE_CERT)
        .with_roots(ROOT_CERT)
        .with_host("gateway.example.test");
    let now = JAN_2025 - 60;
    assert!(matches!(
        validate(&bundle, now),
        Err(ValidationError::NotYetValid { .. })
    ));
    let valid = validate_allowing(&bundle, now, ahead(60)).expect("chain valid at notBefore");
    assert_eq!(valid.trust, Trust::Chain { intermediates: 1 });
    // Without the intermediate the chain fails there too: refused as at `now`.
    let no_chain = Bundle::new(LEAF_CERT, LEAF_KEY).with_roots(ROOT_CERT);
    assert_eq!(
        validate_allowing(&no_chain, now, ahead(60)).unwrap_err(),
        ValidationError::NotYetValid {
            not_before: JAN_2025,
            now
        }
    );
}

#[test]
fn a_pair_refused_at_the_tolerated_moment_keeps_the_refusal_it_got_at_now() {
    let wrong_host = Bundle::new(EXPIRED_CERT, EXPIRED_KEY).with_host("x.test");
    assert_eq!(
        validate_allowing(&wrong_host, JUN_2026, TimingTolerance::NearestValidMoment).unwrap_err(),
        ValidationError::Expired {
            not_after: EXPIRED_NOT_AFTER,
            now: JUN_2026
        }
    );
    let now = EC_NOT_BEFORE - 5;
    assert_eq!(
        validate_allowing(&ec().with_host("other.local"), now, ahead(DAY)).unwrap_err(),
        ValidationError::NotYetValid {
            not_before: EC_NOT_BEFORE,
            now
        }
    );
}

#[test]
fn a_fault_other_than_timing_is_refused_as_such_whatever_the_tolerance() {
    let tolerances = [
        TimingTolerance::Exact,
        ahead(u64::MAX),
        TimingTolerance::NearestValidMoment,
    ];
    for tolerance in tolerances {
        // The key is checked before the time.
        assert!(matches!(
            validate_allowing(&Bundle::new(EXPIRED_CERT, OTHER_KEY), JUN_2026, tolerance),
            Err(ValidationError::KeyMismatch { .. })
        ));
        // A pair valid at `now` is refused for its host, not given another moment.
        assert!(matches!(
            validate_allowing(&ec().with_host("other.local"), JUN_2026, tolerance),
            Err(ValidationError::NameMismatch { .. })
        ));
    }
}

#[test]
fn the_nearest_valid_moment_accepts_a_pair_not_yet_valid_or_expired() {
    let nearest = TimingTolerance::NearestValidMoment;
    let expired = Bundle::new(EXPIRED_CERT, EXPIRED_KEY);
    let valid = validate_allowing(&expired, JUN_2026, nearest).expect("checked at notAfter");
    assert_eq!(valid.leaf.not_after, EXPIRED_NOT_AFTER);
    // Years before notBefore, far beyond any clock skew.
    assert!(validate_allowing(&ec(), 0, nearest).is_ok());
    assert!(validate_allowing(&ec(), EC_NOT_BEFORE - 3650 * DAY, nearest).is_ok());
    assert!(validate_allowing(&ec(), u64::MAX, nearest).is_ok());
}

/// A skew, and how far notBefore lies ahead of `now`: anything up to 4 days, or within 2 s of
/// the skew.
fn skew_and_lead() -> impl Strategy<Value = (u64, u64)> {
    (0u64..3 * DAY).prop_flat_map(|skew| {
        let near = skew.saturating_sub(2)..=skew + 2;
        (Just(skew), prop_oneof![0u64..4 * DAY, near])
    })
}

fn validity() -> impl Strategy<Value = Validity> {
    (any::<u64>(), any::<u64>()).prop_map(|(a, b)| Validity::new(a.min(b), a.max(b)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Through the whole validation, on a real certificate: with `now` before notBefore, the
    /// fresh tolerance accepts exactly when notBefore is at most `skew` ahead, and otherwise
    /// refuses with the error `validate` gives at `now`.
    #[test]
    fn a_fresh_pair_is_accepted_iff_its_not_before_is_at_most_the_skew_ahead(
        (skew, lead) in skew_and_lead(),
    ) {
        let now = EC_NOT_BEFORE - lead;
        let result = outcome(validate_allowing(&ec(), now, ahead(skew)));
        if lead <= skew {
            prop_assert!(result.is_ok(), "lead {lead} skew {skew}: {result:?}");
        } else {
            prop_assert_eq!(
                result.unwrap_err(),
                ValidationError::NotYetValid { not_before: EC_NOT_BEFORE, now }
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn the_fresh_moment_is_not_before_iff_it_is_ahead_by_at_most_the_skew(
        now in any::<u64>(),
        not_before in any::<u64>(),
        not_after in any::<u64>(),
        skew in prop_oneof![any::<u64>(), 0u64..=2 * DAY],
    ) {
        let moment = ahead(skew).moment(now, Validity::new(not_before, not_after));
        let covered = now < not_before && not_before - now <= skew;
        prop_assert_eq!(moment, covered.then_some(not_before));
    }

    #[test]
    fn the_fresh_moment_at_the_boundary_is_skew_ahead_accepted_and_skew_plus_one_refused(
        not_before in 2 * DAY..u64::MAX,
        skew in 0u64..DAY,
    ) {
        let validity = Validity::new(not_before, u64::MAX);
        // With no skew, `now` is notBefore itself: valid there, so no other moment is needed.
        prop_assert_eq!(ahead(skew).moment(not_before - skew, validity), (skew > 0).then_some(not_before));
        prop_assert_eq!(ahead(skew).moment(not_before - skew - 1, validity), None);
    }

    #[test]
    fn the_nearest_valid_moment_lies_in_the_validity_and_is_nearest_to_now(
        now in any::<u64>(),
        validity in validity(),
    ) {
        let (not_before, not_after) = (validity.not_before, validity.not_after);
        let moment = TimingTolerance::NearestValidMoment.moment(now, validity);
        let expected = if now < not_before {
            not_before
        } else if now > not_after {
            not_after
        } else {
            now
        };
        prop_assert_eq!(moment, Some(expected));
    }

    #[test]
    fn a_reversed_validity_has_no_nearest_valid_moment(
        now in any::<u64>(),
        not_before in 1u64..,
        shorter in 1u64..,
    ) {
        let validity = Validity::new(not_before, not_before.saturating_sub(shorter));
        prop_assert_eq!(TimingTolerance::NearestValidMoment.moment(now, validity), None);
    }

    #[test]
    fn exact_never_picks_another_moment(now in any::<u64>(), validity in validity()) {
        prop_assert_eq!(TimingTolerance::Exact.moment(now, validity), None);
    }

    /// The renewer's two uses of the policy's clock skew agree: a fresh pair's notBefore ahead
    /// of `now` is tolerated exactly when the schedule would not call the clock unreliable.
    #[test]
    fn the_fresh_tolerance_covers_exactly_what_the_schedule_calls_a_reliable_clock(
        now in 0u64..u64::MAX / 2,
        lead in prop_oneof![1u64..=3 * DAY, 1u64..u64::MAX / 4],
        lifetime in 0u64..u64::MAX / 4,
        skew in prop_oneof![0u64..=2 * DAY, any::<u64>()],
        seed in any::<u64>(),
    ) {
        let mut policy = RenewalPolicy::default();
        policy.clock_skew = skew;
        let not_before = now + lead;
        let validity = Validity::new(not_before, not_before + lifetime);
        let tolerated = TimingTolerance::fresh(&policy).moment(now, validity).is_some();
        let decision = RenewalSchedule::new(validity, policy, seed)
            .decide(now, &RenewalHistory::default());
        prop_assert_eq!(tolerated, decision.action != Action::ClockUnreliable);
    }
}
