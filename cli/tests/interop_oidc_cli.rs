//! The `latchkey` binary against a real oidc-provider 9 on loopback: `latchkey login
//! --loopback` driven end to end by the headless browser (the authorization URL read from
//! its standard error, the browser's redirect delivered to its loopback listener), then
//! `latchkey token keep`: `GET /health`, proactive refreshes, `POST /api/oauth/refresh`
//! counted at the provider, and a kill -9 of `token keep` while its refresh is held at the
//! provider, after which a restarted `token keep` recovers without a login.
//!
//! Ignored in a plain `cargo test`; `interop/oidc.sh` starts the provider and runs these with
//! `--include-ignored` (see interop/README.md). Without the provider they fail, never pass by
//! skipping. The harness is `latchkey-tokio`'s `tests/shared/oidc/`.

#[path = "../../runtime-tokio/tests/shared/oidc/mod.rs"]
mod oidc;

/// The runtime the harness runs on: `latchkey`'s own, tokio (the names `latchkey-tokio`'s
/// `tests/rt/mod.rs` gives the shared tests, without its TLS test helpers).
mod rt {
    use std::future::Future;

    pub(crate) use latchkey_tokio::{http, keeper, state};

    /// Runs `fut` to completion on a fresh current-thread tokio runtime.
    pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
            .block_on(fut)
    }

    /// Sleeps for `duration` on tokio's timer.
    pub(crate) async fn sleep(duration: std::time::Duration) {
        tokio::time::sleep(duration).await;
    }
}

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use latchkey_oauth_core::http::{HttpRequest, HttpResponse, Method};
use serde_json::Value;

use oidc::browser::{Browser, Landing, User};
use oidc::keeper::{PROVIDER, on_disk};
use oidc::process::Process;
use oidc::{
    ACCESS_TTL, CLIENT_ID, Deadline, Env, Hold, exclusive, redact_url, scratch, send, wall_clock,
};
use rt::block_on;
use rt::http::{HttpClient, HttpConfig};

/// How long a restarted `latchkey` waits for a dead process's refresh: the CLI's lease,
/// `max(30 s, connect 10 s + read 30 s + 5 s)` with the default HTTP limits (both
/// processes'), plus 5 s for the holder's marker write.
const CLI_LEASE: Duration = Duration::from_secs(50);

/// `latchkey` with `args`.
fn latchkey(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    command.args(args);
    command
}

/// `--provider generic --state-dir DIR`: all a command needs after the login saved the rest.
fn session_args(dir: &Path) -> Vec<String> {
    vec![
        "--provider".into(),
        PROVIDER.into(),
        "--state-dir".into(),
        dir.display().to_string(),
    ]
}

/// An HTTP client for latchkey's own loopback listeners (plain HTTP).
fn plain_client() -> HttpClient {
    let mut config = HttpConfig::default();
    config.allow_plain_http = true;
    config.connect_timeout = Duration::from_secs(2);
    config.read_timeout = Duration::from_secs(15);
    HttpClient::new(config).expect("plain HTTP client")
}

/// `latchkey login --loopback` for `account`, end to end: the URL from its standard error,
/// the headless browser's login and consent, the redirect delivered to its listener.
async fn cli_login(env: &Env, dir: &Path, account: &str) {
    let ca = env.ca_path.display().to_string();
    let dir_arg = dir.display().to_string();
    let mut login = Process::spawn(
        "latchkey login",
        latchkey(&[
            "login",
            "--provider",
            PROVIDER,
            "--issuer",
            &env.issuer,
            "--client-id",
            CLIENT_ID,
            "--ca-file",
            &ca,
            "--loopback",
            "--state-dir",
            &dir_arg,
        ]),
        false,
    );
    let prefix = format!("{}/auth?", env.issuer);
    let deadline = Deadline::new(Duration::from_secs(20), "the login URL on standard error");
    let url = loop {
        let err = login.stderr();
        if let Some(line) = err.lines().find(|l| l.starts_with(&prefix)) {
            break line.trim().to_owned();
        }
        assert!(login.running(), "latchkey login ended: {err}");
        deadline.tick(&err).await;
    };
    // Without `--port` latchkey listens on a port it picks (so nothing can take it between
    // choosing and binding) and names it in the redirect URI.
    let marker = "redirect_uri=http%3A%2F%2F127.0.0.1%3A";
    let port: u16 = url
        .split(marker)
        .nth(1)
        .and_then(|rest| rest.split_once("%2Fcallback"))
        .and_then(|(port, _)| port.parse().ok())
        .unwrap_or_else(|| panic!("a loopback redirect URI with a port: {url}"));
    assert_ne!(port, 0, "{url}");
    assert!(url.contains("code_challenge_method=S256"), "{url}");

    let client = env.client();
    let mut browser = Browser::new(
        env,
        &client,
        User {
            account: account.to_owned(),
            user_code: None,
        },
    );
    let redirect = match browser.walk(&url).await {
        Landing::Redirect(to) => to,
        Landing::Page { status, body } => panic!("the login ended on a page ({status}): {body}"),
    };
    let callback = format!("http://127.0.0.1:{port}/callback?");
    assert!(
        redirect.starts_with(&callback),
        "redirected to {}, not to latchkey's listener",
        redact_url(&redirect)
    );
    // The browser follows the redirect to latchkey's listener, which shows a success page.
    let page = send(&plain_client(), &HttpRequest::new(Method::Get, redirect)).await;
    assert_eq!(page.status, 200);
    assert!(
        String::from_utf8_lossy(&page.body).contains("Signed in"),
        "the success page"
    );
    let status = login.wait(Duration::from_secs(30)).await;
    let err = login.stderr();
    assert!(status.success(), "latchkey login: {status}: {err}");
    assert!(err.contains("logged in; access token valid until"), "{err}");
    assert!(err.contains("refresh token stored"), "{err}");
}

/// Runs a short `latchkey` command to its end; returns its standard output.
async fn run_to_end(name: &str, command: Command) -> Vec<u8> {
    let mut process = Process::spawn(name, command, true);
    let status = process.wait(Duration::from_secs(60)).await;
    assert!(status.success(), "{name}: {status}: {}", process.stderr());
    process.stdout()
}

/// `GET http://ADDR/health` or `POST http://ADDR/api/oauth/refresh` on `token keep`;
/// `None` while it does not listen yet.
async fn keep_call(addr: &str, method: Method, path: &str) -> Option<HttpResponse> {
    let request = HttpRequest::new(method, format!("http://{addr}{path}"));
    plain_client().send(&request).await.ok()
}

/// `/health` as JSON, polled until `token keep` answers.
async fn health(addr: &str) -> Value {
    let deadline = Deadline::new(Duration::from_secs(20), "token keep to answer /health");
    loop {
        if let Some(response) = keep_call(addr, Method::Get, "/health").await {
            assert_eq!(response.status, 200);
            return serde_json::from_slice(&response.body).expect("/health is JSON");
        }
        deadline.tick("no answer").await;
    }
}

/// `/health`'s `token_expires_at`.
fn expires_at(health: &Value) -> u64 {
    health["token_expires_at"]
        .as_u64()
        .unwrap_or_else(|| panic!("token_expires_at in {health}"))
}

/// `latchkey token keep` on a loopback port it picks itself (`--listen 127.0.0.1:0`, so no
/// other process can take the port between choosing and binding it); returns the process
/// and the address it printed once bound.
async fn start_keep(dir: &Path) -> (Process, String) {
    let mut args = vec!["token".to_owned(), "keep".to_owned()];
    args.extend(session_args(dir));
    args.extend(["--listen".to_owned(), "127.0.0.1:0".to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut keep = Process::spawn("latchkey token keep", latchkey(&args), false);
    let deadline = Deadline::new(Duration::from_secs(20), "token keep to print its address");
    loop {
        let stderr = keep.stderr();
        let bound = stderr
            .lines()
            .find_map(|l| l.split("health on http://").nth(1))
            .and_then(|rest| rest.strip_suffix("/health"))
            .map(str::to_owned);
        if let Some(addr) = bound {
            return (keep, addr);
        }
        assert!(keep.running(), "token keep ended: {stderr}");
        deadline.tick("no address printed yet").await;
    }
}

/// The JSON event lines `latchkey` wrote to standard error, by `event`.
fn events(stderr: &str, event: &str) -> usize {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == event)
        .count()
}

#[test]
#[ignore = "needs interop/oidc.sh (oidc-provider)"]
fn cli_loopback_login_then_token_keep_serves_health_refreshes_and_a_counted_manual_refresh() {
    let _serial = exclusive();
    let env = Env::from_env();
    let dir = scratch("cli-login");
    block_on(async {
        let admin = env.admin();
        admin.fresh().await;
        cli_login(&env, &dir, "oscar").await;
        let stats = admin.stats().await;
        assert_eq!(stats.grants("authorization_code"), 1, "{stats:?}");
        let login = on_disk(&dir).expect("the login is on disk");
        assert!(login.refresh_token.is_some());

        let mut args = vec!["token".to_owned(), "status".to_owned(), "--json".to_owned()];
        args.extend(session_args(&dir));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_to_end("latchkey token status", latchkey(&args)).await;
        let status: Value = serde_json::from_slice(&out).expect("status JSON");
        assert_eq!(status["state"], "ready", "{status}");
        assert_eq!(status["has_refresh_token"], true, "{status}");
        assert_eq!(
            status["access_expires_at"].as_u64(),
            login.access_expires_at,
            "{status}"
        );

        let (mut keep, addr) = start_keep(&dir).await;
        let first = health(&addr).await;
        assert_eq!(first["status"], "ok", "{first}");
        assert_eq!(first["auto_refresh_enabled"], true, "{first}");
        assert!(first["token_valid"].is_boolean(), "{first}");
        assert!(
            ["healthy", "token_expiring_or_missing"]
                .contains(&first["health"].as_str().unwrap_or("")),
            "{first}"
        );
        assert!(first["time_until_expiry"].is_u64(), "{first}");
        assert!(expires_at(&first) >= login.access_expires_at.expect("expiry"));

        // token keep refreshes on its own, before expiry.
        let deadline = Deadline::new(
            Duration::from_secs(4 * ACCESS_TTL),
            "token keep to refresh proactively",
        );
        let refreshed = loop {
            let h = health(&addr).await;
            if expires_at(&h) > expires_at(&first) {
                break h;
            }
            assert!(keep.running(), "token keep ended: {}", keep.stderr());
            deadline.tick(&h.to_string()).await;
        };
        assert_eq!(refreshed["token_valid"], true, "{refreshed}");
        assert_eq!(refreshed["health"], "healthy", "{refreshed}");
        assert!(admin.stats().await.grants("refresh_token") >= 1);

        // A manual refresh right after a proactive one (the next is seconds away): exactly
        // one refresh request, counted at the provider.
        admin.reset().await;
        let response = keep_call(&addr, Method::Post, "/api/oauth/refresh")
            .await
            .expect("POST /api/oauth/refresh");
        assert_eq!(response.status, 200);
        let body: Value = serde_json::from_slice(&response.body).expect("refresh JSON");
        assert_eq!(body["status"], "ok", "{body}");
        assert_eq!(body["message"], "token refreshed", "{body}");
        let new_expiry = body["expires_at"].as_u64().expect("expires_at");
        assert!(new_expiry >= wall_clock() + ACCESS_TTL - 1, "{body}");
        let stats = admin.stats().await;
        assert_eq!(
            stats.grants("refresh_token"),
            1,
            "the manual refresh reached the provider: {stats:?}"
        );
        assert_eq!(stats.errors.values().sum::<u64>(), 0, "{stats:?}");
        assert!(expires_at(&health(&addr).await) >= new_expiry);

        let err = keep.stderr();
        assert!(events(&err, "token_refreshed") >= 2, "{err}");
        assert_eq!(events(&err, "refresh_failed"), 0, "{err}");
        assert_eq!(events(&err, "reauth_required"), 0, "{err}");
        keep.kill_9();
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs interop/oidc.sh (oidc-provider)"]
fn cli_token_keep_killed_during_a_held_refresh_restarts_without_a_login() {
    let _serial = exclusive();
    let env = Env::from_env();
    let dir = scratch("cli-kill9");
    block_on(async {
        let admin = env.admin();
        admin.fresh().await;
        cli_login(&env, &dir, "peggy").await;
        let login = on_disk(&dir).expect("the login is on disk");
        admin.reset().await;
        admin.hold(Hold::Before).await;

        let (mut keep, _) = start_keep(&dir).await;
        let deadline = Deadline::new(
            Duration::from_secs(6 * ACCESS_TTL),
            "token keep's refresh to be held with its in-flight marker on disk",
        );
        loop {
            let stats = admin.stats().await;
            let marked = on_disk(&dir).is_some_and(|s| s.refresh_in_flight.is_some());
            if stats.parked == 1 && marked {
                break;
            }
            assert!(keep.running(), "token keep ended: {}", keep.stderr());
            deadline
                .tick(&format!("{stats:?}, marker on disk: {marked}"))
                .await;
        }
        keep.kill_9();
        admin.release(true).await;
        let stats = admin.stats().await;
        assert_eq!(stats.grants("refresh_token"), 0, "{stats:?}");
        assert_eq!(stats.dropped, 1, "{stats:?}");
        let marked = on_disk(&dir).expect("snapshot");
        assert!(
            marked.refresh_in_flight.is_some(),
            "the marker survived the kill"
        );
        assert_eq!(marked.refresh_token, login.refresh_token);

        // A new token keep waits out the dead one's lease, then refreshes with the persisted
        // refresh token, which the provider never saw used.
        let (mut again, addr) = start_keep(&dir).await;
        let deadline = Deadline::new(
            CLI_LEASE + Duration::from_secs(30),
            "the restarted token keep to recover",
        );
        let old_expiry = login.access_expires_at.expect("expiry");
        let recovered = loop {
            let h = health(&addr).await;
            if expires_at(&h) > old_expiry {
                break h;
            }
            assert!(again.running(), "token keep ended: {}", again.stderr());
            deadline.tick(&h.to_string()).await;
        };
        let stats = admin.stats().await;
        assert!(
            stats.grants("refresh_token") >= 1,
            "the recovery refresh was counted: {stats:?}"
        );
        assert_eq!(stats.errors.values().sum::<u64>(), 0, "{stats:?}");
        assert_eq!(recovered["token_valid"], true, "{recovered}");
        let err = again.stderr();
        assert!(events(&err, "token_refreshed") >= 1, "{err}");
        assert_eq!(events(&err, "reauth_required"), 0, "{err}");
        assert_eq!(events(&err, "refresh_failed"), 0, "{err}");

        let disk = on_disk(&dir).expect("snapshot");
        assert!(disk.generation > login.generation);
        assert!(disk.reauth_required.is_none());
        assert_ne!(disk.refresh_token, login.refresh_token, "rotated");

        // Scripts get a working token.
        let mut args = vec!["token".to_owned(), "get".to_owned()];
        args.extend(session_args(&dir));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_to_end("latchkey token get", latchkey(&args)).await;
        let token = String::from_utf8(out).expect("a token on standard output");
        let me = env.userinfo(&env.client(), token.trim()).await;
        assert_eq!(me.status, 200, "the token from `latchkey token get` works");
        again.kill_9();
    });
    let _ = std::fs::remove_dir_all(&dir);
}
