//! The token session's rules, one behaviour per test, against the model server.

mod common;

use common::{Rig, T0};
use latchkey_oauth_core::http::HttpResponse;
use latchkey_oauth_core::response::parse_token_response;
use latchkey_oauth_core::secret::Secret;
use latchkey_oauth_core::session::{
    Event, Grant, Phase, SessionConfig, Snapshot, SnapshotError, TokenAnswer, TokenSession,
    TokenSource, Unauthorized,
};

fn cfg() -> SessionConfig {
    SessionConfig::default()
}

/// The generation of the token the session hands out now (it must have one).
fn ready_generation(rig: &mut Rig) -> u64 {
    match rig.session.access_token(rig.now) {
        TokenAnswer::Ready { generation, .. } => generation,
        other => panic!("{other:?}"),
    }
}

#[test]
fn login_tokens_are_handed_out_only_once_persisted() {
    let mut rig = Rig::new(900, cfg(), 1);
    rig.login();
    assert_eq!(rig.writes.len(), 1);
    assert_eq!(rig.session.access_token(rig.now), TokenAnswer::Wait);
    rig.write_one();
    assert!(matches!(
        rig.session.access_token(rig.now),
        TokenAnswer::Ready { .. }
    ));
    assert_eq!(rig.count(|e| matches!(e, Event::TokenCreated { .. })), 1);
    let disk = rig.disk.as_ref().unwrap();
    assert_eq!(disk.generation, 1);
    assert!(disk.refresh_token.is_some());
}

#[test]
fn proactive_refresh_happens_margin_plus_bounded_jitter_before_expiry() {
    // 15-minute tokens (Watts): margin max(60, 90) = 90 s, jitter ≤ 22 s.
    for seed in 0..50 {
        let rig = Rig::logged_in(900, cfg(), seed);
        let at = rig.session.poll_timeout().unwrap();
        assert!(
            (T0 + 900 - 90 - 22..=T0 + 900 - 90).contains(&at),
            "seed {seed}: {}",
            at - T0
        );
    }
    let mut rig = Rig::logged_in(900, cfg(), 3);
    rig.run_until(T0 + 900 * 3);
    assert_eq!(rig.server.refreshes, 3);
    assert_eq!(rig.refreshed_events(), 3);
    assert!(rig.token_now().is_some());
}

#[test]
fn a_token_shorter_than_the_margin_refreshes_at_half_life_not_in_a_loop() {
    // 20-second tokens with a 60-second minimum margin (camunda #33137).
    let mut rig = Rig::logged_in(20, cfg(), 9);
    rig.run_until(T0 + 200);
    // One refresh per half-life at most: 200 s / 10 s.
    assert!(rig.server.refreshes <= 20, "{}", rig.server.refreshes);
    assert!(rig.server.refreshes >= 10, "{}", rig.server.refreshes);
    let at = rig.token_now().unwrap();
    assert!(rig.server.access_valid(&at, rig.now));
}

#[test]
fn a_profile_margin_is_applied_with_the_right_sign() {
    // U-tec: fixed 5-minute margin on 1-hour tokens (MSAL Java #874 applied it backwards).
    let mut c = cfg();
    c.margin.fixed = Some(300);
    let rig = Rig::logged_in(3600, c, 5);
    let at = rig.session.poll_timeout().unwrap();
    assert!(
        (T0 + 3600 - 300 - 75..=T0 + 3600 - 300).contains(&at),
        "{}",
        at - T0
    );
}

#[test]
fn concurrent_callers_at_expiry_share_one_refresh() {
    let mut c = cfg();
    c.keep_fresh = false;
    let mut rig = Rig::logged_in(600, c, 2);
    rig.now = T0 + 700;
    for _ in 0..10 {
        assert_eq!(rig.session.access_token(rig.now), TokenAnswer::Wait);
        rig.collect();
    }
    // One marker write; no request until it is on disk.
    assert_eq!(rig.writes.len(), 1);
    assert!(rig.requests.is_empty());
    rig.write_one();
    assert_eq!(rig.requests.len(), 1);
    for _ in 0..10 {
        assert_eq!(rig.session.access_token(rig.now), TokenAnswer::Wait);
        rig.collect();
    }
    rig.settle();
    assert_eq!(rig.server.refreshes, 1);
    for _ in 0..10 {
        assert!(matches!(
            rig.session.access_token(rig.now),
            TokenAnswer::Ready { .. }
        ));
    }
}

#[test]
fn the_marker_is_on_disk_before_the_refresh_request_leaves() {
    let mut rig = Rig::logged_in(600, cfg(), 4);
    let due = rig.session.poll_timeout().unwrap();
    rig.now = due;
    rig.session.handle_timeout(rig.now);
    rig.collect();
    assert!(rig.requests.is_empty());
    let w = rig.writes.front().unwrap();
    assert!(w.snapshot.refresh_in_flight.is_some());
    rig.write_one();
    assert_eq!(rig.requests.len(), 1);
    assert!(rig.disk.as_ref().unwrap().refresh_in_flight.is_some());
}

#[test]
fn a_rotated_refresh_token_is_persisted_before_the_new_access_token_is_released() {
    let mut rig = Rig::logged_in(600, cfg(), 4);
    let old_at = rig.token_now().unwrap();
    let old_rt = rig.disk.as_ref().unwrap().refresh_token.clone().unwrap();
    rig.now = rig.session.poll_timeout().unwrap();
    rig.session.handle_timeout(rig.now);
    rig.collect();
    rig.write_one(); // marker
    rig.serve_one();
    rig.answer_one();
    // The response is in; the write of the rotated token is pending.
    assert_eq!(rig.writes.len(), 1);
    let pending = &rig.writes[0].snapshot;
    assert_ne!(pending.refresh_token.as_ref(), Some(&old_rt));
    assert!(pending.refresh_in_flight.is_none());
    // Still the old (valid) token.
    match rig.session.access_token(rig.now) {
        TokenAnswer::Ready { token, .. } => assert_eq!(token.expose(), old_at),
        other => panic!("{other:?}"),
    }
    assert_eq!(rig.refreshed_events(), 0);
    rig.write_one();
    assert_eq!(rig.refreshed_events(), 1);
    assert_ne!(rig.token_now().unwrap(), old_at);
    assert!(
        rig.server.accepts(
            rig.disk
                .as_ref()
                .unwrap()
                .refresh_token
                .as_ref()
                .unwrap()
                .expose()
        )
    );
}

#[test]
fn a_rotated_refresh_token_in_an_otherwise_unusable_answer_is_kept_and_used_next() {
    let mut rig = Rig::logged_in(600, cfg(), 4);
    let old_rt = rig.disk.as_ref().unwrap().refresh_token.clone().unwrap();
    // The server rotates, but its answer fails the strict reading (`scope` is an array).
    rig.server.odd_scope = true;
    rig.now = rig.session.poll_timeout().unwrap();
    rig.session.handle_timeout(rig.now);
    rig.collect();
    rig.write_one(); // marker
    rig.serve_one();
    rig.answer_one();
    // The rotated refresh token is written before anything else happens.
    assert_eq!(rig.writes.len(), 1);
    let kept = rig.writes[0].snapshot.refresh_token.clone().unwrap();
    assert_ne!(kept, old_rt);
    assert!(rig.server.accepts(kept.expose()));
    assert!(rig.writes[0].snapshot.refresh_in_flight.is_none());
    let generation = rig.disk.as_ref().unwrap().generation;
    rig.write_one();
    assert_eq!(
        rig.disk.as_ref().unwrap().generation,
        generation,
        "the access token is unchanged, so nothing may count this as a refresh"
    );
    assert_eq!(
        rig.disk.as_ref().unwrap().refresh_token.as_ref(),
        Some(&kept)
    );
    assert_eq!(
        rig.count(|e| matches!(e, Event::RefreshFailed { .. })),
        1,
        "the answer is still reported as a failure and backed off"
    );
    // The server is fixed; the retry uses the kept token and the session goes on.
    rig.server.odd_scope = false;
    rig.run_until(rig.now + 120);
    assert_eq!(rig.server.refreshes, 2);
    assert_eq!(rig.refreshed_events(), 1);
    assert_eq!(rig.reauth_events(), 0);
    assert!(rig.server.revoked.is_empty(), "no spent token was replayed");
    assert!(rig.token_now().is_some());
}

#[test]
fn no_refresh_token_in_the_response_keeps_the_old_one() {
    let mut rig = Rig::logged_in(600, cfg(), 4);
    rig.server.omit_refresh_token = true;
    let rt = rig.disk.as_ref().unwrap().refresh_token.clone();
    rig.run_until(T0 + 700);
    assert_eq!(rig.server.refreshes, 1);
    assert_eq!(rig.disk.as_ref().unwrap().refresh_token, rt);
    assert!(matches!(
        rig.events.last(),
        Some(Event::TokenRefreshed { rotated: false, .. })
    ));
}

#[test]
fn a_401_forces_one_refresh_and_a_second_401_gives_up() {
    let mut rig = Rig::logged_in(3600, cfg(), 6);
    rig.now += 100;
    let generation = ready_generation(&mut rig);
    assert_eq!(
        rig.session.handle_unauthorized(rig.now, generation),
        Unauthorized::Wait
    );
    rig.collect();
    // A second caller with the same refused token waits for the same refresh.
    assert_eq!(
        rig.session.handle_unauthorized(rig.now, generation),
        Unauthorized::Wait
    );
    // The refused token is not handed out again.
    assert_eq!(rig.session.access_token(rig.now), TokenAnswer::Wait);
    rig.settle();
    assert_eq!(rig.server.refreshes, 1);
    let new_gen = ready_generation(&mut rig);
    assert_eq!(new_gen, generation + 1);
    // A late 401 for the old token: retry with the new one, no refresh.
    assert_eq!(
        rig.session.handle_unauthorized(rig.now, generation),
        Unauthorized::RetryNow
    );
    // The new token refused too, even much later: give up, never loop.
    rig.now += 1000;
    assert!(matches!(
        rig.session.handle_unauthorized(rig.now, new_gen),
        Unauthorized::GiveUp { .. }
    ));
    rig.collect();
    assert!(rig.requests.is_empty() && rig.writes.is_empty());
    assert_eq!(rig.server.refreshes, 1);
}

#[test]
fn a_401_right_after_a_refresh_gives_up() {
    let mut rig = Rig::logged_in(3600, cfg(), 6);
    let generation = ready_generation(&mut rig);
    rig.now += 5;
    assert!(matches!(
        rig.session.handle_unauthorized(rig.now, generation),
        Unauthorized::GiveUp { .. }
    ));
}

#[test]
fn a_short_lived_token_gets_a_cooldown_of_a_quarter_of_its_lifetime() {
    // 20-s tokens: the 30-s default cooldown would outlast them; a quarter (5 s) applies.
    let mut rig = Rig::logged_in(20, cfg(), 6);
    let generation = ready_generation(&mut rig);
    rig.now += 4;
    assert!(matches!(
        rig.session.handle_unauthorized(rig.now, generation),
        Unauthorized::GiveUp { .. }
    ));
    rig.now += 2;
    assert_eq!(
        rig.session.handle_unauthorized(rig.now, generation),
        Unauthorized::Wait
    );
    rig.collect();
    rig.settle();
    assert_eq!(rig.server.refreshes, 1);
}

#[test]
fn an_imported_token_keeps_its_age_so_a_401_on_it_refreshes_at_once() {
    // Another client received these tokens 20 minutes ago (its file says so); they are
    // imported now. A 401 moments after the import is not "a token just obtained": refresh.
    let mut rig = Rig::new(3600, cfg(), 6);
    let resp = rig.server.login(rig.now - 1200);
    let mut tokens =
        parse_token_response(&resp, rig.now - 1200, &common::profile().response).expect("tokens");
    assert_eq!(tokens.received_at, rig.now - 1200);
    rig.session
        .handle_login(rig.now, tokens.clone(), Grant::RefreshToken);
    rig.collect();
    rig.settle();
    assert_eq!(
        rig.disk.as_ref().map(|d| d.access_issued_at),
        Some(rig.now - 1200)
    );
    let generation = ready_generation(&mut rig);
    rig.now += 2;
    assert_eq!(
        rig.session.handle_unauthorized(rig.now, generation),
        Unauthorized::Wait
    );
    rig.collect();
    rig.settle();
    assert_eq!(rig.server.refreshes, 1);

    // The same tokens received just now: the cooldown holds, as for a login.
    let mut rig = Rig::new(3600, cfg(), 6);
    tokens.received_at = rig.now;
    rig.session
        .handle_login(rig.now, tokens, Grant::RefreshToken);
    rig.collect();
    rig.settle();
    let generation = ready_generation(&mut rig);
    rig.now += 2;
    assert!(matches!(
        rig.session.handle_unauthorized(rig.now, generation),
        Unauthorized::GiveUp { .. }
    ));
}

#[test]
fn transient_failures_back_off_and_the_valid_token_is_still_served() {
    let mut rig = Rig::logged_in(900, cfg(), 8);
    let token = rig.token_now().unwrap();
    rig.server.down = true;
    rig.run_until(T0 + 880);
    let failures = rig.count(|e| matches!(e, Event::RefreshFailed { .. }));
    assert!(failures >= 3, "{failures}");
    // Exponential: far fewer attempts than seconds elapsed.
    assert!(rig.server.refreshes < 12, "{}", rig.server.refreshes);
    assert_eq!(rig.token_now().unwrap(), token);
    // After expiry the caller is told why and when the next try is.
    rig.now = T0 + 900;
    match rig.session.access_token(rig.now) {
        TokenAnswer::Unavailable { reason, retry_at } => {
            assert!(reason.contains("503"), "{reason}");
            assert!(retry_at.unwrap() > rig.now);
        }
        TokenAnswer::Wait => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(rig.reauth_events(), 0);
    rig.server.down = false;
    rig.run_until(T0 + 1300);
    assert!(rig.token_now().is_some());
    assert_eq!(rig.reauth_events(), 0);
    assert_eq!(rig.session.status(rig.now).failures, 0);
}

#[test]
fn retry_after_from_the_server_is_honoured() {
    let mut rig = Rig::logged_in(900, cfg(), 8);
    rig.now = rig.session.poll_timeout().unwrap();
    rig.session.handle_timeout(rig.now);
    rig.collect();
    rig.write_one();
    let (id, _) = rig.requests.pop_front().unwrap();
    rig.session.handle_response(
        rig.now,
        id,
        Ok(HttpResponse::new(429, "").with_header("Retry-After", "120")),
    );
    rig.collect();
    assert_eq!(rig.session.poll_timeout(), Some(rig.now + 120));
}

#[test]
fn network_errors_are_transient() {
    let mut rig = Rig::logged_in(900, cfg(), 8);
    rig.offline = true;
    rig.run_until(T0 + 850);
    assert!(rig.count(|e| matches!(e, Event::RefreshFailed { .. })) >= 1);
    assert_eq!(rig.reauth_events(), 0);
    rig.offline = false;
    rig.run_until(T0 + 1200);
    assert!(rig.token_now().is_some());
}

#[test]
fn a_request_the_driver_never_answers_times_out_and_is_retried() {
    let mut rig = Rig::logged_in(900, cfg(), 8);
    rig.now = rig.session.poll_timeout().unwrap();
    rig.session.handle_timeout(rig.now);
    rig.collect();
    rig.write_one();
    let (lost, _) = rig.requests.pop_front().unwrap();
    rig.run_until(rig.now + 31);
    assert!(rig.count(|e| matches!(e, Event::RefreshFailed { .. })) == 1);
    // The retry goes out (and succeeds); a very late answer to the lost request is then
    // ignored.
    let retry_at = rig.session.poll_timeout().unwrap();
    rig.run_until(retry_at);
    assert_eq!(rig.refreshed_events(), 1);
    let writes = rig.disk.as_ref().unwrap().revision;
    rig.session.handle_response(
        rig.now,
        lost,
        Ok(HttpResponse::new(200, r#"{"access_token":"late"}"#)),
    );
    rig.collect();
    assert!(rig.writes.is_empty());
    assert_eq!(rig.disk.as_ref().unwrap().revision, writes);
}

#[test]
fn a_late_answer_holding_the_rotated_refresh_token_is_kept_while_backing_off() {
    let mut rig = Rig::logged_in(900, cfg(), 8);
    // B2C-like: a replayed refresh token is refused, the grant is not revoked.
    rig.server.revoke_on_reuse = false;
    rig.now = rig.session.poll_timeout().unwrap();
    rig.session.handle_timeout(rig.now);
    rig.collect();
    rig.write_one();
    let (id, request) = rig.requests.pop_front().unwrap();
    // The server rotates the refresh token, but its answer is slow: the session gives up
    // at its deadline first.
    let answer = rig.server.handle(rig.now, &request);
    let rotated = parse_token_response(&answer, rig.now, &common::profile().response)
        .unwrap()
        .refresh_token
        .unwrap();
    rig.now += 31;
    rig.session.handle_timeout(rig.now);
    rig.collect();
    assert_eq!(rig.count(|e| matches!(e, Event::RefreshFailed { .. })), 1);
    // The answer arrives while the session backs off: its tokens are kept.
    rig.session.handle_response(rig.now, id, Ok(answer));
    rig.collect();
    rig.settle();
    assert_eq!(
        rig.disk.as_ref().unwrap().refresh_token.as_ref(),
        Some(&rotated)
    );
    rig.run_until(rig.now + 3 * 900);
    assert_eq!(rig.reauth_events(), 0);
    assert!(rig.token_now().is_some());
}

#[test]
fn invalid_grant_after_a_sibling_rotated_adopts_its_tokens() {
    // A server that does not revoke on reuse (B2C); another process that ignored our lease
    // spent the same refresh token first and stored the rotated one.
    let mut rig = Rig::logged_in(900, cfg(), 10);
    rig.server.revoke_on_reuse = false;
    rig.session.force_refresh(rig.now);
    rig.collect();
    rig.write_one(); // our marker
    let mut sibling = rig.disk.clone().unwrap();
    let req = latchkey_oauth_core::request::refresh(
        &common::profile(),
        sibling.refresh_token.as_ref().unwrap(),
    )
    .unwrap();
    let resp = rig.server.handle(rig.now, &req);
    let tokens = parse_token_response(&resp, rig.now, &common::profile().response).unwrap();
    sibling.revision += 1;
    sibling.generation += 1;
    sibling.refresh_in_flight = None;
    sibling.access_token = Some(tokens.access_token);
    sibling.refresh_token = tokens.refresh_token;
    rig.disk = Some(sibling.clone());
    rig.settle();
    assert_eq!(rig.count(|e| matches!(e, Event::ReloadSnapshot)), 1);
    assert_eq!(rig.reauth_events(), 0);
    assert_eq!(
        rig.count(|e| matches!(
            e,
            Event::TokenRefreshed {
                source: TokenSource::Sibling,
                ..
            }
        )),
        1
    );
    assert_eq!(
        rig.session.snapshot().unwrap().refresh_token,
        sibling.refresh_token
    );
    assert!(rig.token_now().is_some());
}

#[test]
fn invalid_grant_with_nobody_else_requires_reauth_once_and_remembers_it() {
    let mut rig = Rig::logged_in(900, cfg(), 11);
    let rt = rig.disk.as_ref().unwrap().refresh_token.clone().unwrap();
    rig.server.revoked.extend(rig.server.live.keys().copied());
    rig.run_until(T0 + 5000);
    assert_eq!(rig.reauth_events(), 1);
    assert_eq!(rig.server.refreshes, 1, "a revoked token is never retried");
    let disk = rig.disk.clone().unwrap();
    assert!(
        disk.reauth_required
            .as_deref()
            .unwrap()
            .contains("invalid_grant")
    );
    assert!(matches!(
        rig.session.access_token(rig.now),
        TokenAnswer::ReauthRequired { .. }
    ));
    // A restart does not retry either (home-assistant/core #179364).
    rig.crash_and_restart(cfg(), 12);
    rig.run_until(T0 + 10_000);
    assert_eq!(rig.server.refreshes, 1);
    assert!(matches!(
        rig.session.access_token(rig.now),
        TokenAnswer::ReauthRequired { .. }
    ));
    assert_eq!(
        rig.session.snapshot().unwrap().refresh_token.as_ref(),
        Some(&rt)
    );
    // A new login clears it.
    rig.login();
    rig.settle();
    assert!(rig.token_now().is_some());
    assert!(rig.disk.as_ref().unwrap().reauth_required.is_none());
}

/// A session whose scheduled refresh the server refused with `invalid_client` (terminal),
/// the refusal handed in and nothing else performed yet.
fn refused_as_invalid_client() -> Rig {
    let mut rig = Rig::logged_in(900, cfg(), 13);
    rig.now = rig.session.poll_timeout().unwrap();
    rig.session.handle_timeout(rig.now);
    rig.collect();
    rig.write_one();
    let (id, _) = rig.requests.pop_front().unwrap();
    rig.session.handle_response(
        rig.now,
        id,
        Ok(HttpResponse::new(401, r#"{"error":"invalid_client"}"#)),
    );
    rig.collect();
    rig
}

#[test]
fn terminal_errors_require_reauth_without_retrying() {
    let mut rig = refused_as_invalid_client();
    rig.settle();
    assert_eq!(rig.reauth_events(), 1);
    // An hour on: the state file is re-read now and then (for a login made elsewhere), and
    // no refresh is ever tried again.
    let refreshes = rig.server.refreshes;
    rig.run_until(rig.now + 3600);
    assert_eq!(rig.server.refreshes, refreshes);
    assert_eq!(rig.reauth_events(), 1);
    let rereads = rig.count(|e| matches!(e, Event::ReloadSnapshot));
    assert!(
        (59..=61).contains(&rereads),
        "{rereads} re-reads in an hour"
    );
}

#[test]
fn a_process_waiting_for_a_login_adopts_one_made_by_another_process_within_a_minute() {
    let mut rig = Rig::logged_in(900, cfg(), 21);
    // The grant is revoked: the next refresh asks for a login.
    let grants: Vec<u64> = rig.server.live.keys().copied().collect();
    rig.server.revoked.extend(grants);
    rig.now = rig.session.poll_timeout().unwrap();
    rig.run_until(rig.now + 5);
    assert_eq!(rig.reauth_events(), 1);
    assert!(rig.disk.as_ref().unwrap().reauth_required.is_some());
    // `latchkey login` in another process writes a fresh session to the same file.
    let mut other = TokenSession::new(common::profile(), cfg(), 22);
    let login = rig.server.login(rig.now);
    let tokens = parse_token_response(&login, rig.now, &common::profile().response).unwrap();
    let new_access = tokens.access_token.expose().to_owned();
    other.handle_login(rig.now, tokens, Grant::RefreshToken);
    while let Some(event) = other.poll_event() {
        if let Event::Persist { id, snapshot, .. } = event {
            let mut snapshot = *snapshot;
            snapshot.revision = rig.disk.as_ref().unwrap().revision + 1;
            rig.disk = Some(snapshot);
            other.handle_persisted(rig.now, id);
        }
    }
    let written = rig.now;
    rig.run_until(written + latchkey_oauth_core::session::REAUTH_RECHECK);
    assert_eq!(
        rig.token_now().as_deref(),
        Some(new_access.as_str()),
        "the other process's login"
    );
    assert_eq!(rig.reauth_events(), 1);
}

#[test]
fn a_crash_before_the_request_left_recovers_without_reauth() {
    let mut rig = Rig::logged_in(600, cfg(), 14);
    rig.now = rig.session.poll_timeout().unwrap();
    rig.session.handle_timeout(rig.now);
    rig.collect();
    rig.write_one(); // marker on disk, request not yet sent
    rig.crash_and_restart(cfg(), 15);
    // The marker's lease (30 s) is respected, then the restarted session refreshes.
    rig.run_until(rig.now + 60);
    assert_eq!(rig.reauth_events(), 0);
    assert!(rig.token_now().is_some());
    assert!(rig.disk.as_ref().unwrap().refresh_in_flight.is_none());
    assert_eq!(rig.server.refreshes, 1);
}

#[test]
fn times_written_while_the_clock_ran_ahead_do_not_hold_the_session_back() {
    // The state was written by a process whose clock was a day ahead; the clock has since
    // been corrected. Nothing may wait for the clock to catch up.
    const AHEAD: u64 = 86_400;
    let mut rig = Rig::logged_in(600, cfg(), 19);
    rig.now += 700; // the access token has expired
    let mut snap = rig.disk.clone().unwrap();
    snap.last_refresh_at = Some(rig.now + AHEAD);
    rig.disk = Some(snap);
    rig.crash_and_restart(cfg(), 20);
    // The demand starts the refresh at once (a caller asking every second, as the keeper
    // does, must not keep pushing it back).
    assert_eq!(rig.session.access_token(rig.now), TokenAnswer::Wait);
    rig.collect();
    rig.settle();
    assert_eq!(rig.server.refreshes, 1, "refreshed at once, not in a day");
    assert!(rig.token_now().is_some());

    // A token stamped ahead (by less than the session's tolerance, so it is still handed
    // out) and refused with a 401 gets its refresh: its age is unknown.
    let mut rig = Rig::logged_in(600, cfg(), 23);
    let mut snap = rig.disk.clone().unwrap();
    snap.last_refresh_at = Some(rig.now + 50);
    rig.disk = Some(snap);
    rig.crash_and_restart(cfg(), 24);
    rig.now += 10;
    let generation = ready_generation(&mut rig);
    assert_eq!(
        rig.session.handle_unauthorized(rig.now, generation),
        Unauthorized::Wait
    );
    rig.collect();
    rig.settle();
    assert_eq!(rig.server.refreshes, 1);

    // An in-flight marker started "in the future": its lease is one request timeout from now.
    let mut rig = Rig::logged_in(600, cfg(), 21);
    rig.now = rig.session.poll_timeout().unwrap();
    rig.session.handle_timeout(rig.now);
    rig.collect();
    rig.write_one(); // marker on disk, request not yet sent
    let mut snap = rig.disk.clone().unwrap();
    snap.refresh_in_flight.as_mut().unwrap().started_at = rig.now + AHEAD;
    rig.disk = Some(snap);
    rig.crash_and_restart(cfg(), 22);
    rig.run_until(rig.now + 60);
    assert_eq!(rig.server.refreshes, 1);
    assert_eq!(rig.reauth_events(), 0);
    assert!(rig.token_now().is_some());
}

#[test]
fn tokens_stamped_a_day_ahead_are_refreshed_at_once_not_a_day_late() {
    // The process that refreshed ran with its clock a day ahead, so the stored expiry, the
    // proactive refresh point and the keep-alive point are all a day late; the clock has been
    // corrected since. The token still looks valid for a day, but the server let it expire
    // after its real lifetime, so the session refreshes at the first moment it can: on
    // restart, on its own timer (no caller), with or without proactive refreshing.
    const AHEAD: u64 = 86_400;
    let stamped_ahead = |rig: &mut Rig| {
        let mut snap = rig.disk.clone().unwrap();
        snap.access_issued_at += AHEAD;
        snap.access_expires_at = snap.access_expires_at.map(|t| t + AHEAD);
        snap.last_refresh_at = Some(snap.access_issued_at);
        rig.disk = Some(snap);
    };
    for keep_fresh in [true, false] {
        let mut config = cfg();
        config.keep_fresh = keep_fresh;
        config.refresh_token_idle = Some(7 * 86_400);
        let mut rig = Rig::logged_in(600, config.clone(), 31);
        stamped_ahead(&mut rig);
        rig.crash_and_restart(config.clone(), 32);
        assert_eq!(
            rig.session.poll_timeout(),
            Some(rig.now),
            "keep_fresh {keep_fresh}: due at once"
        );
        // The timer alone refreshes it.
        rig.run_until(rig.now);
        assert_eq!(rig.server.refreshes, 1, "keep_fresh {keep_fresh}");
        let disk = rig.disk.as_ref().unwrap();
        assert!(
            disk.access_issued_at <= rig.now,
            "re-stamped with the corrected clock"
        );
        assert!(rig.token_now().is_some());
        // Once re-stamped, the schedule is the ordinary one again (no refresh loop).
        rig.run_until(rig.now + 60);
        assert_eq!(rig.server.refreshes, 1, "keep_fresh {keep_fresh}");

        // A caller asking first is not handed the token (its real expiry is unknown); its
        // demand starts the refresh.
        let mut rig = Rig::logged_in(600, config.clone(), 35);
        stamped_ahead(&mut rig);
        rig.crash_and_restart(config, 36);
        assert_eq!(rig.session.access_token(rig.now), TokenAnswer::Wait);
        rig.collect();
        rig.settle();
        assert_eq!(rig.server.refreshes, 1, "keep_fresh {keep_fresh}");
        assert!(rig.token_now().is_some());
    }

    // The clock of a running session is set back a day: the next timer finds the stamps
    // ahead and refreshes.
    let mut rig = Rig::logged_in(600, cfg(), 37);
    rig.now -= AHEAD;
    rig.session.handle_timeout(rig.now);
    rig.collect();
    rig.settle();
    assert_eq!(rig.server.refreshes, 1);
    assert!(rig.disk.as_ref().unwrap().access_issued_at <= rig.now);

    // A token that cannot be refreshed (no refresh token) is still handed out: refusing it
    // would only end the session early.
    let mut rig = Rig::logged_in(600, cfg(), 38);
    stamped_ahead(&mut rig);
    rig.disk.as_mut().unwrap().refresh_token = None;
    rig.crash_and_restart(cfg(), 39);
    assert!(matches!(
        rig.session.access_token(rig.now),
        TokenAnswer::Ready { .. }
    ));
    rig.run_until(rig.now + 60);
    assert_eq!(rig.server.refreshes, 0);
    assert_eq!(rig.reauth_events(), 0);

    // Stamps a few seconds ahead (the clock slewed) change nothing.
    let mut rig = Rig::logged_in(600, cfg(), 33);
    let mut snap = rig.disk.clone().unwrap();
    snap.access_issued_at += 5;
    snap.last_refresh_at = Some(snap.access_issued_at);
    rig.disk = Some(snap);
    rig.crash_and_restart(cfg(), 34);
    assert!(rig.session.poll_timeout().unwrap() > rig.now + 60);
    assert!(matches!(
        rig.session.access_token(rig.now),
        TokenAnswer::Ready { .. }
    ));
}

#[test]
fn a_crash_after_the_server_rotated_is_detected_and_asks_for_login_once() {
    let mut rig = Rig::logged_in(600, cfg(), 16);
    rig.now = rig.session.poll_timeout().unwrap();
    rig.session.handle_timeout(rig.now);
    rig.collect();
    rig.write_one();
    rig.serve_one(); // the server rotated; the answer is lost with the process
    rig.crash_and_restart(cfg(), 17);
    assert!(rig.disk.as_ref().unwrap().refresh_in_flight.is_some());
    rig.run_until(rig.now + 120);
    assert_eq!(rig.reauth_events(), 1);
    assert_eq!(rig.server.refreshes, 2);
}

#[test]
fn restoring_a_snapshot_of_another_provider_or_version_is_refused() {
    let rig = Rig::logged_in(600, cfg(), 18);
    let mut snap = rig.disk.clone().unwrap();
    snap.provider = "watts".into();
    let err = TokenSession::restore(common::profile(), cfg(), 1, snap.clone(), T0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "token state file belongs to provider \"watts\", not \"generic\""
    );
    snap.provider = "generic".into();
    snap.version = 99;
    assert!(matches!(
        TokenSession::restore(common::profile(), cfg(), 1, snap, T0),
        Err(SnapshotError::Version { found: 99 })
    ));
}

#[test]
fn snapshot_json_round_trips_and_bad_files_are_named() {
    let rig = Rig::logged_in(600, cfg(), 18);
    let snap = rig.disk.clone().unwrap();
    let json = snap.to_json();
    assert_eq!(Snapshot::from_json(&json).unwrap(), snap);
    let err = Snapshot::from_json(b"{\"version\":1,\"provider\":").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("token state file is not valid:"),
        "{err}"
    );
    assert!(Snapshot::from_json(b"").is_err());
}

#[test]
fn an_idle_session_exercises_its_refresh_token_before_it_lapses() {
    let mut c = cfg();
    c.keep_fresh = false;
    c.refresh_token_idle = Some(86_400);
    let mut rig = Rig::logged_in(3600, c, 19);
    rig.run_until(T0 + 3 * 86_400);
    // Nobody asked for a token, yet the refresh token was used about every 21.6 h.
    assert!(
        (3..=4).contains(&rig.server.refreshes),
        "{}",
        rig.server.refreshes
    );
    let rt = rig.disk.as_ref().unwrap().refresh_token.clone().unwrap();
    assert!(rig.server.accepts(rt.expose()));
}

#[test]
fn reauth_soon_is_announced_once_before_an_absolute_expiry() {
    let mut c = cfg();
    c.refresh_token_lifetime = Some(90 * 86_400);
    c.keep_fresh = false;
    let mut rig = Rig::logged_in(900, c, 20);
    rig.run_until(T0 + 82 * 86_400);
    assert_eq!(rig.count(|e| matches!(e, Event::ReauthSoon { .. })), 0);
    rig.run_until(T0 + 84 * 86_400);
    assert_eq!(rig.count(|e| matches!(e, Event::ReauthSoon { refresh_expires_at } if *refresh_expires_at == T0 + 90 * 86_400)), 1);
    rig.run_until(T0 + 89 * 86_400);
    assert_eq!(rig.count(|e| matches!(e, Event::ReauthSoon { .. })), 1);
}

#[test]
fn a_marker_that_cannot_be_written_stops_the_refresh() {
    let mut rig = Rig::logged_in(900, cfg(), 21);
    rig.disk_full = true;
    rig.run_until(T0 + 850);
    assert_eq!(
        rig.server.refreshes, 0,
        "no token is spent that could not be saved"
    );
    assert!(rig.count(|e| matches!(e, Event::RefreshFailed { error, .. } if error.to_string().contains("No space"))) >= 1);
    rig.disk_full = false;
    rig.run_until(T0 + 1300);
    assert!(rig.token_now().is_some());
}

#[test]
fn new_tokens_that_cannot_be_written_are_kept_and_the_write_retried() {
    let mut rig = Rig::logged_in(900, cfg(), 22);
    rig.now = rig.session.poll_timeout().unwrap();
    rig.session.handle_timeout(rig.now);
    rig.collect();
    rig.write_one();
    rig.serve_one();
    rig.answer_one();
    rig.disk_full = true;
    rig.write_one();
    assert!(rig.count(|e| matches!(e, Event::RefreshFailed { .. })) == 1);
    assert_eq!(rig.refreshed_events(), 0);
    rig.disk_full = false;
    let t = rig.session.poll_timeout().unwrap();
    rig.run_until(t);
    assert_eq!(rig.refreshed_events(), 1);
    assert_eq!(
        rig.server.refreshes, 1,
        "the rotated token was saved, not re-fetched"
    );
    assert!(
        rig.server.accepts(
            rig.disk
                .as_ref()
                .unwrap()
                .refresh_token
                .as_ref()
                .unwrap()
                .expose()
        )
    );
}

#[test]
fn two_processes_sharing_a_state_file_spend_each_refresh_token_once() {
    // Process A refreshes; process B, started from the same file, wants to refresh at the
    // same moment: its marker write conflicts, it waits for A's lease and adopts A's tokens.
    let mut a = Rig::logged_in(600, cfg(), 23);
    let mut b_session =
        TokenSession::restore(common::profile(), cfg(), 24, a.disk.clone().unwrap(), a.now)
            .unwrap();
    a.now = T0 + 700;
    assert_eq!(a.session.access_token(a.now), TokenAnswer::Wait);
    a.collect();
    a.write_one(); // A's marker is on disk
    // B asks for a token: its marker write expects the old revision → conflict.
    assert_eq!(b_session.access_token(a.now), TokenAnswer::Wait);
    let mut b_write = None;
    while let Some(ev) = b_session.poll_event() {
        if let Event::Persist {
            id,
            expected_revision,
            ..
        } = ev
        {
            b_write = Some((id, expected_revision));
        }
    }
    let (bid, bexp) = b_write.unwrap();
    assert_ne!(bexp, Some(a.disk.as_ref().unwrap().revision));
    b_session.handle_persist_conflict(a.now, bid, a.disk.clone());
    assert_eq!(b_session.status(a.now).state, Phase::WaitingForOtherProcess);
    // A finishes.
    a.settle();
    assert_eq!(a.server.refreshes, 1);
    // B re-reads and adopts.
    a.now += 2;
    b_session.handle_timeout(a.now);
    let mut reload = false;
    while let Some(ev) = b_session.poll_event() {
        reload |= matches!(ev, Event::ReloadSnapshot);
    }
    assert!(reload);
    b_session.handle_reloaded(a.now, a.disk.clone());
    match b_session.access_token(a.now) {
        TokenAnswer::Ready { token, .. } => {
            assert_eq!(Some(token), a.disk.as_ref().unwrap().access_token.as_ref())
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(a.server.refreshes, 1);
    assert!(a.server.revoked.is_empty());
}

fn next_effect(s: &mut TokenSession) -> Event {
    loop {
        match s.poll_event() {
            Some(e @ (Event::Persist { .. } | Event::SendRequest { .. })) => return e,
            Some(_) => {}
            None => panic!("no effect queued"),
        }
    }
}

#[test]
fn client_credentials_sessions_renew_by_running_the_grant_again() {
    let mut p = common::profile().with_client_secret(latchkey_oauth_core::secret::Secret::new("s"));
    p.client.auth = latchkey_oauth_core::profile::ClientAuth::ClientSecretPost;
    let mut s = TokenSession::new(p.clone(), cfg(), 1);
    let tokens = parse_token_response(
        &HttpResponse::new(200, r#"{"access_token":"cc1","expires_in":600}"#),
        T0,
        &p.response,
    )
    .unwrap();
    s.handle_login(T0, tokens, Grant::ClientCredentials);
    let Event::Persist { id, .. } = next_effect(&mut s) else {
        panic!()
    };
    s.handle_persisted(T0, id);
    let t = s.poll_timeout().unwrap();
    s.handle_timeout(t);
    let Event::Persist { id, .. } = next_effect(&mut s) else {
        panic!()
    };
    s.handle_persisted(t, id);
    let Event::SendRequest { request, .. } = next_effect(&mut s) else {
        panic!()
    };
    let body = String::from_utf8(request.body).unwrap();
    assert!(body.contains("grant_type=client_credentials"), "{body}");
    assert!(body.contains("client_secret=s"), "{body}");
}

#[test]
fn status_reports_what_token_status_shows() {
    let mut rig = Rig::logged_in(900, cfg(), 25);
    let st = rig.session.status(rig.now);
    assert_eq!(st.state, Phase::Ready);
    assert!(st.token_valid);
    assert!(st.has_refresh_token);
    assert_eq!(st.access_expires_at, Some(T0 + 900));
    assert_eq!(st.session_started_at, Some(T0));
    assert!(st.next_action_at.unwrap() < T0 + 900);
    rig.server.down = true;
    rig.run_until(T0 + 850);
    let st = rig.session.status(rig.now);
    assert_eq!(st.state, Phase::Backoff);
    assert!(st.last_error.unwrap().contains("503"));
}

#[test]
fn a_token_refused_after_adopting_a_siblings_refresh_is_not_handed_out_for_the_retry() {
    let mut rig = Rig::logged_in(900, cfg(), 31);
    rig.now += 100;
    // A 401 forces a refresh: the new generation is the product of a forced refresh.
    let g1 = ready_generation(&mut rig);
    assert_eq!(
        rig.session.handle_unauthorized(rig.now, g1),
        Unauthorized::Wait
    );
    rig.collect();
    rig.settle();
    // Another process refreshes with the stored refresh token and stores its tokens.
    let mut sibling = rig.disk.clone().unwrap();
    let request = latchkey_oauth_core::request::refresh(
        &common::profile(),
        sibling.refresh_token.as_ref().unwrap(),
    )
    .unwrap();
    let answer = rig.server.handle(rig.now, &request);
    let tokens = parse_token_response(&answer, rig.now, &common::profile().response).unwrap();
    sibling.revision += 1;
    sibling.generation += 1;
    sibling.access_token = Some(tokens.access_token);
    sibling.refresh_token = tokens.refresh_token;
    sibling.last_refresh_at = Some(rig.now);
    sibling.access_issued_at = rig.now;
    rig.disk = Some(sibling);
    // Our next refresh meets its write and adopts those tokens.
    rig.session.force_refresh(rig.now);
    rig.collect();
    rig.settle();
    rig.now += 100;
    let (adopted, refused) = match rig.session.access_token(rig.now) {
        TokenAnswer::Ready {
            generation, token, ..
        } => (generation, token.expose().to_owned()),
        other => panic!("{other:?}"),
    };
    // The resource server refuses the adopted token: a refresh starts, and the refused
    // token is not what the caller's one retry gets.
    assert_eq!(
        rig.session.handle_unauthorized(rig.now, adopted),
        Unauthorized::Wait
    );
    rig.collect();
    assert!(
        !matches!(rig.session.access_token(rig.now), TokenAnswer::Ready { token, .. } if token.expose() == refused),
        "the refused token was handed out again"
    );
    rig.settle();
    assert!(ready_generation(&mut rig) > adopted);
}

#[test]
fn a_clock_set_back_during_a_backoff_keeps_the_wait_instead_of_adding_the_jump() {
    let year = 365 * 86_400;
    let mut rig = Rig::logged_in(900, cfg(), 3);
    // The device booted with its clock a year ahead and no network: the refresh fails.
    rig.offline = true;
    rig.now = T0 + year;
    assert_eq!(rig.session.access_token(rig.now), TokenAnswer::Wait);
    rig.collect();
    rig.settle();
    let wait = rig.session.poll_timeout().unwrap() - rig.now;
    assert!(matches!(
        rig.session.access_token(rig.now),
        TokenAnswer::Unavailable { .. }
    ));
    // NTP steps the clock back to the real time; the network is back.
    rig.offline = false;
    rig.now = T0 + 1000;
    rig.session.handle_timeout(rig.now);
    rig.collect();
    let due = rig.session.poll_timeout().unwrap();
    assert!(
        due <= rig.now + wait,
        "next attempt {} s away",
        due - rig.now
    );
    rig.run_until(due + 1);
    assert!(
        rig.token_now().is_some(),
        "no token after the backoff's own wait"
    );
}

/// `latchkey login` in another process: a session restored from `read` (what that process
/// read of the file) logs in and writes the login (always unconditionally) to `daemon`'s
/// file. Returns the login's refresh token.
fn login_elsewhere(daemon: &mut Rig, read: Snapshot, seed: u64) -> Secret {
    login_elsewhere_at(daemon, read, seed, daemon.now + 1)
}

/// [`login_elsewhere`] with the login made at wall second `at`.
fn login_elsewhere_at(daemon: &mut Rig, read: Snapshot, seed: u64, at: u64) -> Secret {
    let mut login =
        TokenSession::restore(common::profile(), cfg(), seed, read, daemon.now).unwrap();
    while login.poll_event().is_some() {}
    let answer = daemon.server.login(daemon.now);
    let tokens = parse_token_response(&answer, daemon.now, &common::profile().response).unwrap();
    let new_login = tokens.refresh_token.clone().unwrap();
    login.handle_login(at, tokens, Grant::RefreshToken);
    while let Some(event) = login.poll_event() {
        if let Event::Persist {
            id,
            expected_revision,
            snapshot,
        } = event
        {
            assert_eq!(
                expected_revision, None,
                "a login is written unconditionally"
            );
            daemon.disk = Some(*snapshot);
            login.handle_persisted(daemon.now, id);
        }
    }
    new_login
}

/// The daemon's refresh completes and meets the login on disk: it adopts it, and the file
/// still holds it.
fn assert_refresh_adopts_login(daemon: &mut Rig, new_login: &Secret) {
    daemon.settle();
    let disk = daemon.disk.as_ref().unwrap();
    assert_eq!(
        disk.refresh_token.as_ref(),
        Some(new_login),
        "the login was overwritten"
    );
    assert_eq!(
        daemon.session.snapshot().unwrap().refresh_token.as_ref(),
        Some(new_login)
    );
    assert!(daemon.token_now().is_some());
}

#[test]
fn a_refresh_finishing_after_a_login_in_another_process_adopts_the_login_instead_of_overwriting_it()
{
    let mut daemon = Rig::logged_in(900, cfg(), 5);
    daemon.session.force_refresh(daemon.now);
    daemon.collect();
    daemon.write_one(); // the daemon's in-flight marker
    // `latchkey login` opens the file and stores a new login meanwhile.
    let read = daemon.disk.clone().unwrap();
    let new_login = login_elsewhere(&mut daemon, read, 6);
    assert_refresh_adopts_login(&mut daemon, &new_login);
}

#[test]
fn a_login_that_read_the_file_before_the_daemons_marker_is_not_overwritten_by_its_refresh() {
    // The login process read revision R; the daemon's marker then made it R + 1; the login
    // is written (unconditionally) after the marker. Were its revision R + 1 as well, the
    // daemon's compare-and-swap (expecting its marker's R + 1) would write over the login.
    let mut daemon = Rig::logged_in(900, cfg(), 7);
    let read_before_marker = daemon.disk.clone().unwrap();
    daemon.session.force_refresh(daemon.now);
    daemon.collect();
    daemon.write_one(); // the daemon's in-flight marker
    assert_eq!(
        daemon.disk.as_ref().unwrap().revision,
        read_before_marker.revision + 1
    );
    let new_login = login_elsewhere(&mut daemon, read_before_marker, 8);
    assert_refresh_adopts_login(&mut daemon, &new_login);
}

#[test]
fn a_login_made_elsewhere_in_the_same_second_the_session_began_is_adopted_not_overwritten() {
    // Sessions were told apart by `session_started_at` alone (whole seconds): a login made
    // in the very second the daemon's own session began looked like that session.
    let mut daemon = Rig::logged_in(900, cfg(), 9);
    let started = daemon.disk.as_ref().unwrap().session_started_at;
    daemon.session.force_refresh(daemon.now);
    daemon.collect();
    daemon.write_one(); // the daemon's in-flight marker
    let read = daemon.disk.clone().unwrap();
    let new_login = login_elsewhere_at(&mut daemon, read, 10, started);
    assert_eq!(daemon.disk.as_ref().unwrap().session_started_at, started);
    assert_refresh_adopts_login(&mut daemon, &new_login);
}

#[test]
fn a_process_with_a_shorter_request_timeout_waits_out_the_holders_own() {
    // The holder waits up to 90 s for its refresh; a process configured for 10 s finds its
    // marker and must not take over (spending the same refresh token) before the holder
    // has given up.
    let mut holder_cfg = cfg();
    holder_cfg.request_timeout = 90;
    let mut holder = Rig::logged_in(900, holder_cfg, 40);
    holder.now = holder.session.poll_timeout().unwrap();
    holder.session.handle_timeout(holder.now);
    holder.collect();
    holder.write_one(); // its marker
    let marker = holder.disk.clone().unwrap();
    assert_eq!(marker.refresh_in_flight.as_ref().unwrap().timeout, Some(90));
    // When a session restored from `marker` at `from` takes over: it re-reads the file
    // (still the marker) whenever it asks.
    let take_over = |mut other: TokenSession, marker: &Snapshot, from: u64| {
        for t in from..from + 1000 {
            other.handle_timeout(t);
            while let Some(event) = other.poll_event() {
                match event {
                    Event::ReloadSnapshot => other.handle_reloaded(t, Some(marker.clone())),
                    Event::Persist { .. } | Event::SendRequest { .. } => return t,
                    _ => {}
                }
            }
        }
        panic!("never took over");
    };
    let mut short = cfg();
    short.request_timeout = 10;
    let other = TokenSession::restore(common::profile(), short, 41, marker.clone(), holder.now + 1)
        .unwrap();
    let at = take_over(other, &marker, holder.now + 1);
    assert!(
        at >= holder.now + 90,
        "took over {} s after the marker",
        at - holder.now
    );
    // An absurd timeout in a marker is capped.
    let mut absurd = marker.clone();
    absurd.refresh_in_flight.as_mut().unwrap().timeout = Some(u64::MAX);
    let capped =
        TokenSession::restore(common::profile(), cfg(), 42, absurd.clone(), holder.now).unwrap();
    let at = take_over(capped, &absurd, holder.now);
    assert!(at <= holder.now + latchkey_oauth_core::session::MAX_LEASE_TIMEOUT + 60);
}

#[test]
fn while_the_reauth_mark_is_being_written_no_deadline_lies_in_the_past() {
    let mut rig = refused_as_invalid_client();
    assert_eq!(rig.reauth_events(), 1);
    // The mark's write is slow: long past the first re-read's time, a driver asking when to
    // come back must not be told "already" (it would spin).
    rig.now += 10 * latchkey_oauth_core::session::REAUTH_RECHECK;
    rig.session.handle_timeout(rig.now);
    rig.collect();
    assert!(rig.session.poll_timeout().is_none_or(|t| t > rig.now));
    // Once written, the re-reads resume.
    rig.settle();
    rig.run_until(rig.now + 2 * latchkey_oauth_core::session::REAUTH_RECHECK);
    assert!(rig.count(|e| matches!(e, Event::ReloadSnapshot)) >= 2);
}

#[test]
fn the_session_is_busy_exactly_while_stopping_would_leave_work_half_done() {
    let mut rig = Rig::logged_in(900, cfg(), 11);
    assert!(!rig.session.is_busy(), "logged in, nothing under way");
    rig.session.force_refresh(rig.now);
    rig.collect();
    assert!(rig.session.is_busy(), "the marker is being written");
    rig.write_one();
    assert!(rig.session.is_busy(), "the request is out");
    rig.serve_one();
    rig.answer_one();
    assert!(rig.session.is_busy(), "the new tokens are being saved");
    rig.write_one();
    assert!(!rig.session.is_busy(), "saved: nothing half done");
    // New tokens whose write failed are retried later: half done until they land.
    rig.now += 5;
    rig.session.force_refresh(rig.now);
    rig.collect();
    rig.write_one();
    rig.serve_one();
    rig.answer_one();
    rig.disk_full = true;
    rig.write_one();
    assert!(
        rig.session.is_busy(),
        "the new tokens wait to be written again"
    );
    rig.disk_full = false;
    let retry = rig.session.poll_timeout().unwrap();
    rig.run_until(retry);
    assert!(!rig.session.is_busy());
    // A refresh marker that could not be written sends nothing: stopping loses nothing.
    rig.now += 5;
    rig.session.force_refresh(rig.now);
    rig.collect();
    rig.disk_full = true;
    rig.write_one();
    assert!(
        !rig.session.is_busy(),
        "{:?}",
        rig.session.status(rig.now).state
    );
}
