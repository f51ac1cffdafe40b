//! Arbitrary sequences of inputs into a `TokenSession`: time steps, callers, 401s, server
//! answers (arbitrary status and body), transport errors, write outcomes (done, conflict,
//! failure), reloads and crashes. Checks that it never panics, that at most one refresh
//! request is outstanding, and that deadlines never lie in the past after a timeout.
#![no_main]

use latchkey_oauth_core::http::{HttpResponse, TransportError, TransportErrorKind};
use latchkey_oauth_core::profile::Profile;
use latchkey_oauth_core::response::parse_token_response;
use latchkey_oauth_core::session::{
    Event, Grant, PersistId, Phase, RequestId, SessionConfig, Snapshot, TokenAnswer, TokenSession,
};
use libfuzzer_sys::fuzz_target;

const BODIES: [&str; 8] = [
    r#"{"access_token":"a","expires_in":60,"refresh_token":"r2"}"#,
    r#"{"access_token":"b","expires_in":"5"}"#,
    r#"{"error":"invalid_grant"}"#,
    r#"{"error":"temporarily_unavailable"}"#,
    r#"{"error":"invalid_client"}"#,
    "<html>",
    r#"{"access_token":"c","expires_in":0,"refresh_token":"r3","refresh_token_expires_in":100}"#,
    "",
];

fn profile() -> Profile {
    let mut p = Profile::builtin("generic")
        .expect("shipped")
        .with_client_id("c");
    p.endpoints.token = Some("https://idp.example/token".into());
    p
}

fuzz_target!(|data: &[u8]| {
    let mut now: u64 = 1_800_000_000;
    let mut s = TokenSession::new(profile(), SessionConfig::default(), 7);
    let login = HttpResponse::new(200, BODIES[0]);
    let tokens = parse_token_response(&login, now, &profile().response).expect("valid");
    s.handle_login(now, tokens, Grant::RefreshToken);
    let mut disk: Option<Snapshot> = None;
    let mut writes: Vec<(PersistId, Snapshot)> = Vec::new();
    let mut requests: Vec<RequestId> = Vec::new();
    let mut it = data.chunks(2);
    while let Some(op) = it.next() {
        let (a, b) = (op[0], op.get(1).copied().unwrap_or(0));
        match a % 11 {
            0 => {
                now += u64::from(b) * 3;
                s.handle_timeout(now);
                if let Some(t) = s.poll_timeout() {
                    assert!(
                        t > now
                            || matches!(
                                s.status(now).state,
                                Phase::Refreshing | Phase::Saving | Phase::Checking
                            ),
                        "deadline {t} in the past at {now}: {:?}",
                        s.status(now)
                    );
                }
            }
            1 => {
                let _ = s.access_token(now);
            }
            2 => {
                if let TokenAnswer::Ready { generation, .. } = s.access_token(now) {
                    let _ = s.handle_unauthorized(now, generation);
                }
            }
            3 | 4 => {
                if let Some(id) = requests.pop() {
                    let body = BODIES[usize::from(b) % BODIES.len()];
                    let status = [200, 400, 401, 429, 500, 503][usize::from(b >> 3) % 6];
                    s.handle_response(now, id, Ok(HttpResponse::new(status, body)));
                }
            }
            5 => {
                if let Some(id) = requests.pop() {
                    s.handle_response(
                        now,
                        id,
                        Err(TransportError::new(TransportErrorKind::Io, "reset")),
                    );
                }
            }
            6 | 7 => {
                if let Some((id, snap)) = writes.pop() {
                    match b % 4 {
                        0 => s.handle_persist_failed(now, id, "disk full"),
                        1 => s.handle_persist_conflict(now, id, disk.clone()),
                        _ => {
                            disk = Some(snap);
                            s.handle_persisted(now, id);
                        }
                    }
                }
            }
            8 => s.handle_reloaded(now, disk.clone()),
            9 => s.force_refresh(now),
            _ => {
                if let Some(snap) = disk.clone() {
                    if let Ok(r) = TokenSession::restore(
                        profile(),
                        SessionConfig::default(),
                        u64::from(b),
                        snap,
                        now,
                    ) {
                        s = r;
                        writes.clear();
                        requests.clear();
                    }
                }
            }
        }
        while let Some(ev) = s.poll_event() {
            match ev {
                Event::Persist { id, snapshot, .. } => writes.push((id, *snapshot)),
                Event::SendRequest { id, .. } => requests.push(id),
                Event::CancelRequest { id } => requests.retain(|r| *r != id),
                _ => {}
            }
        }
        assert!(requests.len() <= 1, "two refresh requests outstanding");
        let _ = s.status(now);
    }
});
