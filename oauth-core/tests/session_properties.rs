//! Property tests of the token session's timing rules and invariants.

mod common;

use common::{Rig, T0};
use latchkey_oauth_core::session::schedule::{BackoffPolicy, MarginPolicy, refresh_at};
use latchkey_oauth_core::session::{STAMP_TOLERANCE, SessionConfig, TokenAnswer};
use proptest::prelude::*;

fn margin_policy() -> impl Strategy<Value = MarginPolicy> {
    (proptest::option::of(0u64..100_000), 0u64..10_000, 0u8..=50).prop_map(|(fixed, min, pct)| {
        let mut m = MarginPolicy::default();
        m.fixed = fixed;
        m.min = min;
        m.percent = pct;
        m
    })
}

proptest! {
    #[test]
    fn refresh_never_scheduled_after_expiry(
        policy in margin_policy(),
        issued in 0u64..4_000_000_000,
        lifetime in 2u64..100_000_000,
        r: u64,
    ) {
        let exp = issued + lifetime;
        let floor = issued + 1;
        let at = refresh_at(&policy, issued, exp, r, floor);
        prop_assert!(at < exp || lifetime < 2, "refresh at {at} after expiry {exp}");
        prop_assert!(at >= floor);
    }

    #[test]
    fn margin_never_makes_refresh_loop(
        policy in margin_policy(),
        issued in 0u64..4_000_000_000,
        lifetime in 0u64..100_000_000,
        r: u64,
    ) {
        // Whatever the margin, a token is used for at least half its lifetime.
        let at = refresh_at(&policy, issued, issued + lifetime, r, 0);
        prop_assert!(at >= issued + lifetime - lifetime / 2, "refresh at {} of a {lifetime}-s token", at - issued);
    }

    #[test]
    fn jitter_is_bounded_by_a_quarter_of_the_margin(
        issued in 0u64..4_000_000_000,
        lifetime in 1000u64..100_000_000,
        r1: u64, r2: u64,
    ) {
        let policy = MarginPolicy::default();
        let exp = issued + lifetime;
        let a = refresh_at(&policy, issued, exp, r1, 0);
        let b = refresh_at(&policy, issued, exp, r2, 0);
        let margin = policy.margin(lifetime);
        prop_assert!(a.abs_diff(b) <= margin / 4);
        prop_assert!(a <= exp - margin.min(lifetime / 2));
    }

    #[test]
    fn backoff_stays_in_bounds(
        initial in 1u64..100, max in 1u64..10_000, failures in 1u32..200, r: u64,
        retry_after in proptest::option::of(0u64..100_000),
    ) {
        let mut b = BackoffPolicy::default();
        b.initial = initial;
        b.max = max;
        let d = b.delay(failures, r, retry_after);
        let ceiling = b.ceiling(failures);
        prop_assert!(ceiling <= max.max(initial));
        prop_assert!(d >= 1);
        let honoured = retry_after.unwrap_or(0).min(3600);
        prop_assert!(d >= honoured);
        prop_assert!(d <= ceiling.max(honoured));
        prop_assert!(d >= ceiling - ceiling / 2 || d >= honoured);
        // Monotone ceilings.
        prop_assert!(b.ceiling(failures + 1) >= ceiling);
    }
}

proptest! {
    /// An administrator's change of the refresh policy on a running session (the gateway's
    /// `refresh_buffer_minutes`, `auto_refresh_enabled`): the refresh point follows the new
    /// fixed margin at once (within its jitter, never past half the lifetime), and with
    /// proactive refresh off nothing refreshes before expiry.
    #[test]
    fn a_changed_refresh_policy_moves_the_refresh_point_at_once(
        lifetime in 600u64..86_400,
        buffer_minutes in 1u64..=1440,
        elapsed_share in 0u64..40,
        seed: u64,
    ) {
        let mut rig = Rig::logged_in(lifetime, SessionConfig::default(), seed);
        let issued = rig.now;
        let exp = issued + lifetime;
        rig.now += lifetime * elapsed_share / 100;
        let margin = buffer_minutes * 60;
        let mut policy = MarginPolicy::default();
        policy.fixed = Some(margin);
        rig.session.set_refresh_policy(true, policy);
        let next = rig.session.status(rig.now).next_action_at.expect("scheduled");
        let latest = exp - margin.min(lifetime / 2);
        let earliest = exp - (margin + margin / 4).min(lifetime / 2);
        prop_assert!((earliest..=latest).contains(&next), "refresh at {} of {lifetime}", next - issued);
        prop_assert!(next > issued);

        rig.session.set_refresh_policy(false, policy);
        prop_assert_eq!(rig.session.status(rig.now).next_action_at, None);
        rig.run_until(exp - 10);
        prop_assert_eq!(rig.server.refreshes, 0, "no proactive refresh while off");
        let ready = matches!(rig.session.access_token(rig.now), TokenAnswer::Ready { .. });
        prop_assert!(ready, "the token is still handed out (min_remaining is 5 s)");
    }
}

proptest! {
    /// Restored tokens whose stamps lie ahead of the clock (written while it ran ahead, then
    /// corrected): up to [`STAMP_TOLERANCE`] ahead they are used and scheduled as written;
    /// further ahead they are not handed out and the refresh is due at once, so it happens
    /// without a caller, and afterwards the schedule is the ordinary one again.
    #[test]
    fn a_clock_set_back_during_a_backoff_never_lengthens_the_wait(
        ahead in 1u64..20 * 365 * 86_400,
        back in 1u64..20 * 365 * 86_400,
        failures in 1usize..6,
        seed in 0u64..1000,
    ) {
        let mut rig = Rig::logged_in(900, SessionConfig::default(), seed);
        rig.offline = true;
        rig.now = T0 + ahead;
        let _ = rig.session.access_token(rig.now);
        for _ in 0..failures {
            rig.collect();
            rig.settle();
            let due = rig.session.poll_timeout().expect("a backoff deadline");
            rig.now = rig.now.max(due);
            rig.session.handle_timeout(rig.now);
        }
        rig.collect();
        rig.settle();
        let due = rig.session.poll_timeout().expect("a backoff deadline");
        let wait = due.saturating_sub(rig.now);
        rig.now = rig.now.saturating_sub(back);
        rig.session.handle_timeout(rig.now);
        let after = rig.session.poll_timeout().expect("still backing off");
        prop_assert!(after <= rig.now + wait, "wait {wait} s became {} s", after - rig.now);
    }

    #[test]
    fn stamps_ahead_of_the_clock_beyond_the_tolerance_are_refreshed_at_once(
        ahead in 0u64..3 * 86_400,
        near_edge in any::<bool>(),
        keep_fresh in any::<bool>(),
        seed: u64,
    ) {
        let ahead = if near_edge { STAMP_TOLERANCE - 1 + ahead % 3 } else { ahead };
        let mut config = SessionConfig::default();
        config.keep_fresh = keep_fresh;
        config.refresh_token_idle = Some(14 * 86_400);
        let mut rig = Rig::logged_in(3_600, config.clone(), seed);
        let mut snap = rig.disk.clone().expect("logged in");
        snap.access_issued_at += ahead;
        snap.access_expires_at = snap.access_expires_at.map(|t| t + ahead);
        snap.last_refresh_at = Some(snap.access_issued_at);
        rig.disk = Some(snap);
        rig.crash_and_restart(config, seed ^ 1);
        let due = rig.session.poll_timeout().expect("something scheduled");
        if ahead > STAMP_TOLERANCE {
            prop_assert_eq!(due, rig.now, "{} s ahead: due at once", ahead);
            // The timer alone refreshes it, before any caller asks.
            rig.run_until(rig.now);
            prop_assert_eq!(rig.server.refreshes, 1);
            let disk = rig.disk.as_ref().expect("state");
            prop_assert!(disk.access_issued_at <= rig.now);
            prop_assert!(rig.session.poll_timeout().expect("scheduled") > rig.now + 60);
        } else {
            prop_assert!(due > rig.now + 60, "{} s ahead: ordinary schedule", ahead);
            let handed_out =
                matches!(rig.session.access_token(rig.now), TokenAnswer::Ready { .. });
            prop_assert!(handed_out);
            prop_assert_eq!(rig.server.refreshes, 0);
        }
    }
}

/// One step of the world around a session.
#[derive(Debug, Clone)]
enum Op {
    /// A caller asks for a token.
    Ask,
    /// Time passes.
    Advance(u64),
    /// The state file write under way completes.
    Write,
    /// The server handles the oldest request.
    Serve,
    /// The session gets the oldest answer.
    Answer,
    /// The resource API refuses the current token.
    Unauthorized,
    /// The server goes down or comes back.
    ToggleServer,
    /// The process dies and restarts from the state file.
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Ask),
        4 => (0u64..400).prop_map(Op::Advance),
        4 => Just(Op::Write),
        4 => Just(Op::Serve),
        4 => Just(Op::Answer),
        1 => Just(Op::Unauthorized),
        1 => Just(Op::ToggleServer),
        1 => Just(Op::Crash),
    ]
}

fn config(keep_fresh: bool) -> SessionConfig {
    let mut c = SessionConfig::default();
    c.keep_fresh = keep_fresh;
    c.refresh_token_idle = Some(20_000);
    c
}

/// Applies `op`; returns whether the world is consistent with single flight.
fn apply(rig: &mut Rig, op: &Op, keep_fresh: bool, seed: &mut u64) {
    match op {
        Op::Ask => {
            let _ = rig.session.access_token(rig.now);
            rig.collect();
        }
        Op::Advance(dt) => {
            rig.now += dt;
            rig.session.handle_timeout(rig.now);
            rig.collect();
        }
        Op::Write => {
            rig.write_one();
        }
        Op::Serve => {
            rig.serve_one();
        }
        Op::Answer => {
            rig.answer_one();
        }
        Op::Unauthorized => {
            if let TokenAnswer::Ready { generation, .. } = rig.session.access_token(rig.now) {
                let _ = rig.session.handle_unauthorized(rig.now, generation);
            }
            rig.collect();
        }
        Op::ToggleServer => rig.server.down = !rig.server.down,
        Op::Crash => {
            *seed += 1;
            rig.crash_and_restart(config(keep_fresh), *seed);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn single_flight_holds_under_any_interleaving(
        ops in proptest::collection::vec(op(), 1..120),
        keep_fresh: bool,
        seed in 0u64..1000,
    ) {
        let mut rig = Rig::logged_in(600, config(keep_fresh), seed);
        let mut s = seed * 1000;
        for op in &ops {
            if matches!(op, Op::Crash) {
                continue;
            }
            apply(&mut rig, op, keep_fresh, &mut s);
            // At most one refresh request exists anywhere at any time.
            prop_assert!(rig.requests.len() + rig.responses.len() <= 1, "{:?}", rig.requests);
            prop_assert!(rig.writes.len() <= 1, "{} writes queued", rig.writes.len());
        }
        // Never more often than the floor.
        let floor = SessionConfig::default().min_refresh_interval;
        for w in rig.server.refresh_times.windows(2) {
            prop_assert!(w[1] - w[0] >= floor, "refreshes at {:?}", rig.server.refresh_times);
        }
        // No refresh token was spent twice, unless an answer was lost in transit (then the
        // rotated token never arrived and the retry with the old one is all there is).
        prop_assert!(rig.server.revoked.is_empty() || rig.lost_responses > 0);
    }

    #[test]
    fn after_a_crash_at_any_point_the_persisted_token_is_accepted_or_known_in_doubt(
        ops in proptest::collection::vec(op(), 1..120),
        keep_fresh: bool,
        seed in 0u64..1000,
    ) {
        let mut rig = Rig::logged_in(600, config(keep_fresh), seed);
        let mut s = seed * 1000;
        for op in &ops {
            apply(&mut rig, op, keep_fresh, &mut s);
            if matches!(op, Op::Crash) {
                let disk = rig.disk.clone().unwrap();
                if disk.reauth_required.is_none() {
                    let rt = disk.refresh_token.clone().unwrap();
                    // Either the server still takes it, or the file says a refresh may have
                    // spent it (and only if a request with it really reached the server).
                    let accepted = rig.server.accepts(rt.expose());
                    prop_assert!(accepted || disk.refresh_in_flight.is_some(),
                        "unspent-looking token rejected: {:?}", disk);
                    if !accepted {
                        prop_assert!(rig.server.spent.contains_key(rt.expose())
                            || !rig.server.revoked.is_empty());
                    }
                }
            }
        }
        // Let the world settle with the server up.
        rig.server.down = false;
        let end = rig.now + 2000;
        rig.run_until(end);
        let disk = rig.disk.clone().unwrap();
        let rt = disk.refresh_token.clone().unwrap();
        if rig.reauth_events() == 0 && disk.reauth_required.is_none() {
            // Never lost without a reason: the session is alive at the server.
            prop_assert!(rig.server.accepts(rt.expose()), "{:?}", disk);
            let token = rig.token_now();
            prop_assert!(token.is_some());
            prop_assert!(rig.server.access_valid(&token.unwrap(), rig.now));
        } else {
            // A login is asked for only when the server really refuses the stored token.
            prop_assert!(!rig.server.accepts(rt.expose()), "reauth while the server accepts {:?}", disk);
        }
        // At most one ReauthRequired per process lifetime is emitted; restarts may repeat it.
        let crashes = ops.iter().filter(|o| matches!(o, Op::Crash)).count();
        prop_assert!(rig.reauth_events() <= crashes + 1);
    }

    #[test]
    fn registration_never_lapses_while_the_server_answers(
        lifetime in 5u64..5000,
        seed in 0u64..1000,
        horizon in 1u64..50,
    ) {
        // With a healthy server and keep_fresh, a valid token is always available.
        let mut rig = Rig::logged_in(lifetime, config(true), seed);
        let end = T0 + lifetime * horizon;
        let step = (lifetime / 3).max(1);
        while rig.now < end {
            let t = rig.now + step;
            rig.run_until(t);
            let token = rig.token_now();
            prop_assert!(token.is_some());
            prop_assert!(rig.server.access_valid(&token.unwrap(), rig.now));
        }
        prop_assert_eq!(rig.reauth_events(), 0);
    }
}
