//! The token keeper against a scripted HTTPS token endpoint that rotates refresh tokens and
//! revokes the grant on reuse: single flight across threads, restart from the state file,
//! retry-once on 401, two processes sharing one state file, and a login made by another
//! process adopted (by a running keeper waiting for one, and by a refresh that meets it).

use std::io::{self, Write};
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use latchkey_oauth_core::form;
use latchkey_oauth_core::http::HttpResponse;
use latchkey_oauth_core::profile::Profile;
use latchkey_oauth_core::response::parse_token_response;
use latchkey_oauth_core::session::{Grant, SessionConfig};

use crate::rt::block_on;
use crate::rt::http::{HttpClient, HttpConfig, HttpRequest, Method, Roots};
use crate::rt::keeper::{Clock, TokenKeeper, now, state_file_name};
use crate::rt::state::StateDir;
use crate::support::{Ending, Received, Server, pki};

/// The token endpoint's memory: current refresh token, spent ones, revoked flag, counters.
#[derive(Debug, Default)]
struct Idp {
    live: String,
    spent: Vec<String>,
    revoked: bool,
    counter: u32,
    refreshes: u32,
    lifetime: u64,
    /// Access tokens the resource API accepts.
    valid: Vec<String>,
}

fn token_server(idp: Arc<Mutex<Idp>>) -> Server {
    token_server_with(idp, Arc::new(|| {}))
}

/// [`token_server`], running `before_answer` after a token request was handled (the refresh
/// token rotated) and before its answer is written: a slow answer, or another process
/// acting meanwhile.
fn token_server_with(idp: Arc<Mutex<Idp>>, before_answer: Arc<dyn Fn() + Send + Sync>) -> Server {
    Server::tls(
        move |req: &Received, out: &mut dyn Write| -> io::Result<Ending> {
            let (status, body) = {
                let mut idp = idp.lock().unwrap();
                if req.target.starts_with("/resource") {
                    let ok = req
                        .header("authorization")
                        .and_then(|h| h.strip_prefix("Bearer "))
                        .is_some_and(|t| idp.valid.iter().any(|v| v == t));
                    let status = if ok { "200 OK" } else { "401 Unauthorized" };
                    write!(out, "HTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\nok")?;
                    return Ok(Ending::Clean);
                }
                let fields = form::decode(std::str::from_utf8(&req.body).unwrap_or(""));
                let rt = fields
                    .iter()
                    .find(|(k, _)| k == "refresh_token")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                idp.refreshes += 1;
                if !idp.revoked && rt == idp.live {
                    idp.spent.push(rt);
                    idp.counter += 1;
                    let (at, new_rt) = (format!("at{}", idp.counter), format!("rt{}", idp.counter));
                    idp.live = new_rt.clone();
                    idp.valid = vec![at.clone()];
                    let body = format!(
                        r#"{{"access_token":"{at}","token_type":"Bearer","expires_in":{},"refresh_token":"{new_rt}"}}"#,
                        idp.lifetime
                    );
                    ("200 OK", body)
                } else {
                    if idp.spent.contains(&rt) {
                        idp.revoked = true;
                    }
                    ("400 Bad Request", r#"{"error":"invalid_grant"}"#.to_owned())
                }
            };
            before_answer();
            write!(
                out,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )?;
            Ok(Ending::Clean)
        },
    )
}

fn client() -> HttpClient {
    let mut config = HttpConfig::default();
    config.roots = Roots::Pem(pki().ca_pem.clone().into_bytes());
    config.read_timeout = Duration::from_secs(5);
    config.connect_timeout = Duration::from_secs(5);
    HttpClient::new(config).expect("client")
}

fn profile(server: &Server) -> Profile {
    let mut p = Profile::builtin("generic")
        .unwrap()
        .with_client_id("keeper-test");
    p.endpoints.token = Some(server.url("/token"));
    p
}

struct World {
    idp: Arc<Mutex<Idp>>,
    server: Server,
    dir: tempdir::Dir,
}

mod tempdir {
    /// A temporary directory removed on drop.
    pub(crate) struct Dir(pub(crate) std::path::PathBuf);
    impl Dir {
        pub(crate) fn new(tag: &str) -> Dir {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p = std::env::temp_dir()
                .join(format!("latchkey-keeper-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn world(tag: &str, lifetime: u64) -> World {
    let idp = Arc::new(Mutex::new(Idp {
        live: "rt0".into(),
        lifetime,
        ..Idp::default()
    }));
    let server = token_server(Arc::clone(&idp));
    World {
        idp,
        server,
        dir: tempdir::Dir::new(tag),
    }
}

async fn keeper(w: &World) -> TokenKeeper {
    keeper_with(w, SessionConfig::default()).await
}

async fn keeper_with(w: &World, config: SessionConfig) -> TokenKeeper {
    let state = StateDir::open(&w.dir.0).await.unwrap();
    TokenKeeper::open(profile(&w.server), config, state, client())
        .await
        .unwrap()
}

/// Logs in with tokens that are already expired (so the next caller must refresh).
async fn login_expired(w: &World, k: &TokenKeeper) {
    let resp = HttpResponse::new(
        200,
        r#"{"access_token":"at0","expires_in":0,"refresh_token":"rt0"}"#,
    );
    let tokens = parse_token_response(&resp, now(), &profile(&w.server).response).unwrap();
    k.login(tokens, Grant::RefreshToken).await.ok();
}

#[test]
fn ten_concurrent_callers_at_expiry_cause_exactly_one_refresh() {
    let w = world("single", 600);
    let k = block_on(keeper(&w));
    block_on(login_expired(&w, &k));
    let counter = Arc::new(AtomicU32::new(0));
    let threads: Vec<_> = (0..10)
        .map(|_| {
            let k = k.clone();
            let counter = Arc::clone(&counter);
            std::thread::spawn(move || {
                let (token, _) = block_on(k.access_token()).expect("token");
                counter.fetch_add(1, Ordering::Relaxed);
                token.expose().to_owned()
            })
        })
        .collect();
    let tokens: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(counter.load(Ordering::Relaxed), 10);
    assert!(tokens.iter().all(|t| t == "at1"), "{tokens:?}");
    assert_eq!(w.idp.lock().unwrap().refreshes, 1);
}

#[test]
fn a_restarted_keeper_resumes_from_the_state_file_without_a_request() {
    let w = world("restart", 600);
    {
        let k = block_on(keeper(&w));
        block_on(login_expired(&w, &k));
        block_on(k.access_token()).unwrap();
    }
    let k = block_on(keeper(&w));
    let (token, _) = block_on(k.access_token()).unwrap();
    assert_eq!(token.expose(), "at1");
    assert_eq!(w.idp.lock().unwrap().refreshes, 1);
    let path = w.dir.0.join(state_file_name("generic"));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"rt1\""));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[test]
fn a_401_right_after_a_refresh_is_returned_not_refreshed_again() {
    let w = world("401-cooldown", 600);
    let k = block_on(keeper(&w));
    block_on(login_expired(&w, &k));
    block_on(k.access_token()).unwrap();
    w.idp.lock().unwrap().valid.clear();
    let req = HttpRequest::new(Method::Get, w.server.url("/resource"));
    let resp = block_on(k.send_authorized(&req)).unwrap();
    assert_eq!(
        resp.status, 401,
        "the token is seconds old: no refresh helps"
    );
    assert_eq!(w.idp.lock().unwrap().refreshes, 1);
}

#[test]
fn a_401_from_the_resource_is_retried_once_with_a_refreshed_token() {
    let w = world("401", 600);
    let mut config = SessionConfig::default();
    config.unauthorized_cooldown = 0;
    let k = block_on(keeper_with(&w, config));
    block_on(login_expired(&w, &k));
    block_on(k.access_token()).unwrap();
    // The server revokes the current access token.
    w.idp.lock().unwrap().valid.clear();
    let req = HttpRequest::new(Method::Get, w.server.url("/resource"));
    let resp = block_on(k.send_authorized(&req)).unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(w.idp.lock().unwrap().refreshes, 2);
    // The token obtained after the 401 is refused too: returned as is, no second refresh.
    w.idp.lock().unwrap().valid.clear();
    let resp = block_on(k.send_authorized(&req)).unwrap();
    assert_eq!(resp.status, 401);
    assert_eq!(w.idp.lock().unwrap().refreshes, 2, "never a refresh loop");
}

#[test]
fn two_keepers_on_one_state_file_never_spend_a_refresh_token_twice() {
    let w = world("two", 600);
    let a = block_on(keeper(&w));
    block_on(login_expired(&w, &a));
    // B starts from the same file while the token is expired.
    let b = block_on(keeper(&w));
    let ta = std::thread::spawn({
        let a = a.clone();
        move || block_on(a.access_token()).map(|(t, _)| t.expose().to_owned())
    });
    let tb = std::thread::spawn({
        let b = b.clone();
        move || block_on(b.access_token()).map(|(t, _)| t.expose().to_owned())
    });
    let (ra, rb) = (ta.join().unwrap(), tb.join().unwrap());
    let idp = w.idp.lock().unwrap();
    assert!(!idp.revoked, "a refresh token was replayed");
    assert_eq!(ra.unwrap(), rb.unwrap());
    assert_eq!(idp.refreshes, 1);
}

#[test]
fn a_revoked_session_asks_for_login_once_and_a_restart_does_not_retry() {
    let w = world("revoked", 600);
    let k = block_on(keeper(&w));
    block_on(login_expired(&w, &k));
    w.idp.lock().unwrap().live = "something-else".into();
    let err = block_on(k.access_token()).unwrap_err();
    assert!(err.to_string().contains("invalid_grant"), "{err}");
    drop(k);
    let k = block_on(keeper(&w));
    assert!(block_on(k.access_token()).is_err());
    assert_eq!(w.idp.lock().unwrap().refreshes, 1);
}

#[test]
fn run_refreshes_then_sleeps_until_the_next_deadline_instead_of_spinning() {
    let w = world("run-idle", 600);
    let k = block_on(keeper(&w));
    block_on(login_expired(&w, &k));
    let (done, finished) = std::sync::mpsc::channel();
    let runner = k.clone();
    // `run` shares its task with a timer: the timer only fires if `run` yields while idle.
    std::thread::spawn(move || {
        block_on(async {
            let mut run = std::pin::pin!(runner.run());
            let mut probe = std::pin::pin!(async {
                while runner.status().generation < 2 {
                    crate::rt::sleep(Duration::from_millis(10)).await;
                }
                crate::rt::sleep(Duration::from_millis(200)).await;
            });
            std::future::poll_fn(|cx| {
                if probe.as_mut().poll(cx).is_ready() {
                    return std::task::Poll::Ready(());
                }
                let _ = run.as_mut().poll(cx);
                std::task::Poll::Pending
            })
            .await;
        });
        let _ = done.send(());
    });
    finished
        .recv_timeout(Duration::from_secs(20))
        .expect("run() never yielded once idle: it spins instead of sleeping");
    assert_eq!(w.idp.lock().unwrap().refreshes, 1);
}

#[test]
fn run_notices_a_wall_clock_set_back_a_day_within_its_wake_cap_and_refreshes() {
    let w = world("clock-back", 3600);
    // The keeper's wall clock: the system's, moved by `shift` seconds.
    let (clock, shift) = shifted_clock();
    let k = block_on(keeper(&w))
        .with_clock(clock)
        .with_wake_cap(Duration::from_millis(50));
    // Fresh tokens for an hour, stamped by the true clock.
    let resp = HttpResponse::new(
        200,
        r#"{"access_token":"at0","expires_in":3600,"refresh_token":"rt0"}"#,
    );
    let tokens = parse_token_response(&resp, now(), &profile(&w.server).response).unwrap();
    block_on(k.login(tokens, Grant::RefreshToken)).unwrap();
    assert_eq!(k.status().generation, 1);

    let runner = k.clone();
    let idp = Arc::clone(&w.idp);
    let (before, refreshed_after) = std::thread::spawn(move || {
        block_on(while_running(&runner, async {
            // Fresh tokens: `run` has nothing to do for an hour.
            crate::rt::sleep(Duration::from_millis(300)).await;
            let before = idp.lock().unwrap().refreshes;
            // The wall clock is set back a day while `run` sleeps towards a deadline an
            // hour off, which now looks a day and an hour off.
            shift.store(-86_400, Ordering::SeqCst);
            let started = std::time::Instant::now();
            while runner.status().generation < 2 && started.elapsed() < Duration::from_secs(10) {
                crate::rt::sleep(Duration::from_millis(10)).await;
            }
            (
                before,
                (runner.status().generation >= 2).then(|| started.elapsed()),
            )
        }))
    })
    .join()
    .unwrap();
    assert_eq!(
        before, 0,
        "fresh tokens were refreshed before the clock moved"
    );
    let after = refreshed_after
        .expect("tokens stamped a day ahead of the clock were not refreshed within 10 s");
    assert!(
        after < Duration::from_secs(5),
        "noticed only after {after:?} with a 50-ms wake cap"
    );
    assert_eq!(w.idp.lock().unwrap().refreshes, 1);
    // The new tokens carry the clock's time, so nothing more is due.
    assert!(block_on(k.access_token()).is_ok());
    assert_eq!(w.idp.lock().unwrap().refreshes, 1);
}

/// `fut`, dropped part-way when it takes longer than `limit`: a caller with its own timeout.
async fn within<T>(limit: Duration, fut: impl std::future::Future<Output = T>) -> Option<T> {
    let mut fut = std::pin::pin!(fut);
    let mut timer = std::pin::pin!(crate::rt::sleep(limit));
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(cx) {
            return std::task::Poll::Ready(Some(v));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}

/// A world whose token endpoint runs `before_answer` before answering a token request.
fn world_with(tag: &str, before_answer: Arc<dyn Fn() + Send + Sync>) -> World {
    let idp = Arc::new(Mutex::new(Idp {
        live: "rt0".into(),
        lifetime: 600,
        ..Idp::default()
    }));
    let server = token_server_with(Arc::clone(&idp), before_answer);
    World {
        idp,
        server,
        dir: tempdir::Dir::new(tag),
    }
}

#[test]
fn a_caller_cancelled_while_the_refresh_is_answered_loses_nothing_the_next_call_reads_the_answer() {
    // The endpoint rotates rt0 -> rt1 at once and answers 1.5 s later; the caller gives up
    // after 0.5 s (a B2C-style rotation: rt0 is dead from the moment rt1 exists).
    let w = world_with(
        "cancel-request",
        Arc::new(|| std::thread::sleep(Duration::from_millis(1500))),
    );
    let shift = Arc::new(AtomicI64::new(0));
    let moved = Arc::clone(&shift);
    let clock: Clock = Arc::new(move || {
        let real = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        Duration::new(
            real.as_secs()
                .saturating_add_signed(moved.load(Ordering::SeqCst)),
            0,
        )
    });
    block_on(async {
        let k = keeper(&w).await.with_clock(clock);
        login_expired(&w, &k).await;
        assert!(
            within(Duration::from_millis(500), k.access_token())
                .await
                .is_none(),
            "the first caller was to give up before the answer"
        );
        crate::rt::sleep(Duration::from_millis(1500)).await;
        assert_eq!(w.idp.lock().unwrap().live, "rt1");
        // The next call, past the session's own request deadline: the answer is read, not
        // given up on and retried with the dead rt0.
        shift.store(31, Ordering::SeqCst);
        let (token, _) = k.access_token().await.expect("the rotated tokens");
        assert_eq!(token.expose(), "at1");
        let idp = w.idp.lock().unwrap();
        assert_eq!(idp.refreshes, 1);
        assert!(!idp.revoked);
        let disk = std::fs::read_to_string(w.dir.0.join(state_file_name("generic"))).unwrap();
        assert!(disk.contains("\"rt1\""), "{disk}");
    });
}

#[test]
fn a_caller_cancelled_while_the_new_tokens_are_written_leaves_no_keeper_waiting_for_ever() {
    // "Another process" holds the state file's lock from just before the endpoint answers,
    // so the write of the rotated tokens waits; the caller gives up meanwhile.
    let held: Arc<Mutex<Option<std::fs::File>>> = Arc::new(Mutex::new(None));
    let lock_path: Arc<Mutex<Option<std::path::PathBuf>>> = Arc::new(Mutex::new(None));
    let (h, lp) = (Arc::clone(&held), Arc::clone(&lock_path));
    let w = world_with(
        "cancel-write",
        Arc::new(move || {
            let path = lp.lock().unwrap().clone().unwrap();
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .unwrap();
            f.lock().unwrap();
            *h.lock().unwrap() = Some(f);
        }),
    );
    *lock_path.lock().unwrap() = Some(w.dir.0.join(format!("{}.lock", state_file_name("generic"))));
    block_on(async {
        let k = keeper(&w).await.with_max_wait(Duration::from_secs(3));
        login_expired(&w, &k).await;
        assert!(
            within(Duration::from_secs(2), k.access_token())
                .await
                .is_none(),
            "the first caller was to give up while the write waited"
        );
        // The other process lets go.
        held.lock().unwrap().take();
        let (token, _) = k.access_token().await.expect("the written tokens");
        assert_eq!(token.expose(), "at1");
        assert_eq!(w.idp.lock().unwrap().refreshes, 1);
    });
}

#[test]
fn a_keeper_dropped_with_an_effect_left_unfinished_is_freed() {
    // A caller gives up while the refresh is answered (the effect is put back for the next
    // driver); then every handle goes. Nothing is left to finish it: the keeper, and the
    // request it holds, must go too (the state file's marker tells the next process).
    let w = world_with(
        "cancel-drop",
        Arc::new(|| std::thread::sleep(Duration::from_millis(1500))),
    );
    let alive = Arc::new(());
    let held = Arc::clone(&alive);
    let clock: Clock = Arc::new(move || {
        let _ = &held;
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
    });
    block_on(async {
        let k = keeper(&w).await.with_clock(clock);
        login_expired(&w, &k).await;
        let other = k.clone();
        assert!(
            within(Duration::from_millis(500), k.access_token())
                .await
                .is_none(),
            "the caller was to give up before the answer"
        );
        drop(k);
        assert_eq!(Arc::strong_count(&alive), 2, "one handle is left");
        drop(other);
    });
    assert_eq!(
        Arc::strong_count(&alive),
        1,
        "the keeper outlived its last handle"
    );
}

/// A wall clock for a keeper: the system's, moved by the seconds stored in the handle.
fn shifted_clock() -> (Clock, Arc<AtomicI64>) {
    let shift = Arc::new(AtomicI64::new(0));
    let moved = Arc::clone(&shift);
    let clock: Clock = Arc::new(move || {
        let real = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let secs = real
            .as_secs()
            .saturating_add_signed(moved.load(Ordering::SeqCst));
        Duration::new(secs, real.subsec_nanos())
    });
    (clock, shift)
}

/// Polls `probe` to completion with `keeper.run()` going on beside it on the same task (as
/// a `latchkey token keep` daemon runs it); `run` is dropped once `probe` is done.
async fn while_running<T>(keeper: &TokenKeeper, probe: impl std::future::Future<Output = T>) -> T {
    let mut run = std::pin::pin!(keeper.run());
    let mut probe = std::pin::pin!(probe);
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(v) = probe.as_mut().poll(cx) {
            return std::task::Poll::Ready(v);
        }
        let _ = run.as_mut().poll(cx);
        std::task::Poll::Pending
    })
    .await
}

/// Waits up to `limit` (polling every 10 ms) until `done` holds; whether it did.
async fn until(limit: Duration, done: impl Fn() -> bool) -> bool {
    let started = std::time::Instant::now();
    while !done() {
        if started.elapsed() > limit {
            return false;
        }
        crate::rt::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// The token endpoint's answer to a login made elsewhere (another process's `latchkey
/// login`), with the tokens the endpoint now honours.
fn login_answer(w: &World, access: &str, refresh: &str) -> HttpResponse {
    let mut idp = w.idp.lock().unwrap();
    idp.live = refresh.to_owned();
    idp.revoked = false;
    idp.valid = vec![access.to_owned()];
    HttpResponse::new(
        200,
        format!(
            r#"{{"access_token":"{access}","token_type":"Bearer","expires_in":3600,"refresh_token":"{refresh}"}}"#
        ),
    )
}

/// What the state file holds now.
fn on_disk(w: &World) -> latchkey_oauth_core::session::Snapshot {
    let bytes = std::fs::read(w.dir.0.join(state_file_name("generic"))).unwrap();
    latchkey_oauth_core::session::Snapshot::from_json(&bytes).unwrap()
}

#[test]
fn a_running_keeper_waiting_for_a_login_adopts_one_made_by_another_process_at_its_next_recheck() {
    use latchkey_oauth_core::session::{Phase, REAUTH_RECHECK};
    let w = world("reauth-adopt", 600);
    let (clock, shift) = shifted_clock();
    block_on(async {
        // The daemon (`latchkey token keep`): its clock is the test's, and it looks at the
        // session every 50 ms rather than every minute.
        let daemon = keeper(&w)
            .await
            .with_clock(clock)
            .with_wake_cap(Duration::from_millis(50));
        login_expired(&w, &daemon).await;
        // The grant is revoked: the refresh is refused and the daemon asks for a login.
        w.idp.lock().unwrap().live = "revoked-elsewhere".into();
        let err = daemon.access_token().await.unwrap_err();
        assert!(err.to_string().contains("invalid_grant"), "{err}");
        assert_eq!(daemon.status().state, Phase::ReauthRequired);
        assert!(on_disk(&w).reauth_required.is_some());
        let refreshes = w.idp.lock().unwrap().refreshes;

        while_running(&daemon, async {
            // `latchkey login` in another process stores a fresh session in the same file.
            let other = keeper(&w).await;
            let answer = login_answer(&w, "at-new", "rt-new");
            let tokens =
                parse_token_response(&answer, now(), &profile(&w.server).response).unwrap();
            other.login(tokens, Grant::RefreshToken).await.unwrap();
            drop(other);
            // Before the re-read is due the daemon still waits for a login...
            crate::rt::sleep(Duration::from_millis(300)).await;
            assert_eq!(daemon.status().state, Phase::ReauthRequired);
            // ...and once a re-read is due (the wall clock passes it), it takes the login.
            shift.store(i64::try_from(REAUTH_RECHECK).unwrap() + 1, Ordering::SeqCst);
            assert!(
                until(Duration::from_secs(10), || daemon.status().state
                    == Phase::Ready)
                .await,
                "the running keeper never adopted the login: {:?}",
                daemon.status()
            );
        })
        .await;

        // Healthy, with the other process's tokens, and no refresh spent to get there.
        let status = daemon.status();
        assert!(status.token_valid, "{status:?}");
        assert_eq!(status.reauth_reason, None);
        let (token, _) = daemon
            .access_token()
            .await
            .expect("the adopted login's token");
        assert_eq!(token.expose(), "at-new");
        assert_eq!(w.idp.lock().unwrap().refreshes, refreshes);
        // The login on disk was kept, not overwritten with the daemon's "reauth required".
        let disk = on_disk(&w);
        assert_eq!(
            disk.refresh_token.as_ref().map(|t| t.expose()),
            Some("rt-new")
        );
        assert!(disk.reauth_required.is_none(), "{:?}", disk.reauth_required);
        let req = HttpRequest::new(Method::Get, w.server.url("/resource"));
        assert_eq!(daemon.send_authorized(&req).await.unwrap().status, 200);
    });
}

#[test]
fn a_refresh_that_meets_a_login_made_meanwhile_adopts_the_login_instead_of_overwriting_it() {
    use latchkey_oauth_core::session::Phase;
    // While the token endpoint answers the daemon's refresh (rt0 -> rt1), `latchkey login`
    // in another process stores a new session in the same state file.
    let world_cell: Arc<Mutex<Option<(std::path::PathBuf, String)>>> = Arc::new(Mutex::new(None));
    let logged_in = Arc::new(AtomicU32::new(0));
    let (cell, count) = (Arc::clone(&world_cell), Arc::clone(&logged_in));
    let w = world_with(
        "refresh-meets-login",
        Arc::new(move || {
            if count.fetch_add(1, Ordering::SeqCst) > 0 {
                return; // only during the first refresh
            }
            let (dir, token_url) = cell.lock().unwrap().clone().unwrap();
            let mut profile = Profile::builtin("generic")
                .unwrap()
                .with_client_id("keeper-test");
            profile.endpoints.token = Some(token_url);
            // Another process logs in, usually within the second the daemon's session
            // began (session starts are whole seconds: the login must still be told apart).
            block_on(async {
                let state = StateDir::open(&dir).await.unwrap();
                let other =
                    TokenKeeper::open(profile.clone(), SessionConfig::default(), state, client())
                        .await
                        .unwrap();
                let answer = HttpResponse::new(
                    200,
                    r#"{"access_token":"at-new","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-new"}"#,
                );
                let tokens = parse_token_response(&answer, now(), &profile.response).unwrap();
                other.login(tokens, Grant::RefreshToken).await.unwrap();
            });
        }),
    );
    *world_cell.lock().unwrap() = Some((w.dir.0.clone(), w.server.url("/token")));
    block_on(async {
        let daemon = keeper(&w).await;
        login_expired(&w, &daemon).await;
        let (token, _) = daemon
            .access_token()
            .await
            .expect("a token after the refresh");
        assert_eq!(logged_in.load(Ordering::SeqCst), 1, "the login happened");
        assert_eq!(
            token.expose(),
            "at-new",
            "the login made meanwhile is the session now"
        );
        let status = daemon.status();
        assert_eq!(status.state, Phase::Ready, "{status:?}");
        assert!(
            status.token_valid && status.reauth_reason.is_none(),
            "{status:?}"
        );
        let disk = on_disk(&w);
        assert_eq!(
            disk.refresh_token.as_ref().map(|t| t.expose()),
            Some("rt-new"),
            "the login was overwritten by the refresh's tokens"
        );
        assert!(disk.refresh_in_flight.is_none());
        assert_eq!(w.idp.lock().unwrap().refreshes, 1);
    });
}

#[test]
fn settle_finishes_a_refresh_left_in_flight_so_its_rotated_token_is_saved() {
    // A shutdown stops `run` (here: a caller giving up) while the endpoint has rotated
    // rt0 -> rt1 and is still answering: `settle` reads the answer and saves rt1 before the
    // process may go; stopping there would leave only the marker and the dead rt0.
    let w = world_with(
        "settle",
        Arc::new(|| std::thread::sleep(Duration::from_millis(1500))),
    );
    block_on(async {
        let k = keeper(&w).await;
        login_expired(&w, &k).await;
        assert!(
            within(Duration::from_millis(500), k.access_token())
                .await
                .is_none(),
            "the caller was to give up before the answer"
        );
        let file = w.dir.0.join(state_file_name("generic"));
        let disk = std::fs::read_to_string(&file).unwrap();
        assert!(
            disk.contains("refresh_in_flight") && !disk.contains("\"rt1\""),
            "{disk}"
        );
        assert!(k.settle(Duration::from_secs(10)).await, "settled");
        let disk = std::fs::read_to_string(&file).unwrap();
        assert!(disk.contains("\"rt1\""), "{disk}");
        assert_eq!(k.status().state, latchkey_oauth_core::session::Phase::Ready);
        // Nothing under way: settling again returns at once.
        let started = std::time::Instant::now();
        assert!(k.settle(Duration::from_secs(10)).await);
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(w.idp.lock().unwrap().refreshes, 1);
    });
}
