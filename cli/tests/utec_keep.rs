//! `latchkey token keep --utec` serving the endpoints of both uteclocal gateways (FACTS.md
//! §2.3) against a stand-in U-tec cloud (token endpoint with the `{code, data}` wrapper and
//! the action endpoint) served over HTTPS on loopback: every endpoint a Home Assistant
//! integration of either variant calls, with the shapes it expects, secrets masked, key
//! writes refused, and an `INVALID_TOKEN` inside a 200 taken as a 401.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

#[path = "../../runtime-tokio/tests/shared/support.rs"]
mod support;

use support::{Ending, Received, Server, pki};

#[derive(Default)]
struct Cloud {
    tokens: usize,
    actions: Vec<Value>,
    /// The Authorization header of each action call.
    bearers: Vec<String>,
    refuse_next: bool,
    /// Answer token requests this much later (the new tokens already issued).
    token_delay: Option<Duration>,
}

fn respond(out: &mut dyn Write, status: &str, body: &str) {
    let _ = write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn cloud() -> (Server, Arc<Mutex<Cloud>>) {
    let state = Arc::new(Mutex::new(Cloud::default()));
    let seen = state.clone();
    let server = Server::tls(move |req: &Received, out| {
        let mut c = seen.lock().unwrap();
        let path = req.target.split('?').next().unwrap_or_default().to_owned();
        if path == "/token" {
            c.tokens += 1;
            let body = json!({"code": 0, "data": {"access_token": format!("utec-a{}", c.tokens),
                "token_type": "Bearer", "expires_in": 7200, "refresh_token": format!("utec-r{}", c.tokens)}});
            let delay = c.token_delay;
            drop(c);
            if let Some(d) = delay {
                std::thread::sleep(d);
            }
            respond(out, "200 OK", &body.to_string());
            return Ok(Ending::Clean);
        }
        assert_eq!(path, "/action");
        let v: Value = serde_json::from_slice(&req.body).unwrap();
        c.actions.push(v.clone());
        c.bearers
            .push(req.header("authorization").unwrap_or_default().to_owned());
        if c.refuse_next {
            c.refuse_next = false;
            respond(out, "200 OK", &json!({"header": v["header"], "payload": {"error": {"code": "INVALID_TOKEN", "message": "expired"}}}).to_string());
            return Ok(Ending::Clean);
        }
        let payload = match v["header"]["name"].as_str() {
            Some("Discovery") => {
                json!({"devices": [{"id": "lock-1", "name": "Front", "category": "LOCK", "handleType": "utec-lock"}]})
            }
            Some("Query") => {
                json!({"devices": [{"id": v["payload"]["devices"][0]["id"], "states": [{"capability": "st.Lock", "name": "lockState", "value": "locked"}]}]})
            }
            Some("Command") => {
                json!({"devices": [{"id": v["payload"]["devices"][0]["id"], "status": "st.deferredResponse"}]})
            }
            _ => json!({}),
        };
        respond(
            out,
            "200 OK",
            &json!({"header": v["header"], "payload": payload}).to_string(),
        );
        Ok(Ending::Clean)
    });
    (server, state)
}

/// One plain-HTTP request to the keeper, as Home Assistant's client sends it; status and JSON
/// body.
fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, Value) {
    http_with(port, method, path, "Host: localhost\r\n", body)
}

/// [`http`] with these header lines (each ending in CRLF) instead of `Host: localhost`.
fn http_with(port: u16, method: &str, path: &str, headers: &str, body: &str) -> (u16, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw[9..12].parse().unwrap();
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A keeper (`token keep --utec`) on a free port with the session imported from `config`
/// (a uteclocal config.json), against `server`; its state under `dir`.
fn keeper(server: &Server, dir: &std::path::Path, config: &str) -> (Kill, u16) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let base = format!("https://localhost:{}", server.port());
    let profile = dir.join("utec.toml");
    std::fs::write(
        &profile,
        include_str!("../../oauth-core/profiles/utec.toml")
            .replace("https://oauth.u-tec.com/token", &format!("{base}/token"))
            .replace(
                "base_url = \"https://api.u-tec.com\"",
                &format!("base_url = \"{base}\""),
            ),
    )
    .unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &pki().ca_pem).unwrap();
    let config_file = dir.join("config.json");
    std::fs::write(&config_file, config).unwrap();
    let state = dir.join("state");
    let (s, p, c) = (
        state.to_str().unwrap(),
        profile.to_str().unwrap(),
        ca.to_str().unwrap(),
    );
    let import = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args([
            "token",
            "import",
            "--profile-file",
            p,
            "--from",
            config_file.to_str().unwrap(),
            "--state-dir",
            s,
        ])
        .output()
        .unwrap();
    assert_eq!(
        import.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args([
            "token",
            "keep",
            "--utec",
            "--profile-file",
            p,
            "--ca-file",
            c,
            "--state-dir",
            s,
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The keeper picks a free port and prints where it listens.
    let stderr = child.stderr.take().unwrap();
    let keeper = Kill(child);
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let port = loop {
        let line = lines
            .next()
            .expect("token keep exited before it listened")
            .unwrap();
        if let Some(rest) = line.split("http://127.0.0.1:").nth(1) {
            break rest
                .split('/')
                .next()
                .and_then(|p| p.parse::<u16>().ok())
                .unwrap_or_else(|| panic!("no port in {line:?}"));
        }
    };
    // Keep draining stderr so the keeper never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (keeper, port)
}

#[test]
fn both_uteclocal_variants_endpoints_are_served_through_the_u_tec_api() {
    let (server, cloud) = cloud();
    let dir = std::env::temp_dir().join(format!("latchkey-utec-keep-{}", std::process::id()));
    let (_keeper, port) = keeper(
        &server,
        &dir,
        r#"{"access_key":"AK-1","secret_key":"SK-secret","access_token":"utec-a0",
            "refresh_token":"utec-r0","token_type":"Bearer","token_expires_in":7200,
            "scope":"openapi","redirect_url":"https://example.org/cb"}"#,
    );

    // /health (both variants' healthcheck) once the first refresh is done.
    let mut health = Value::Null;
    for _ in 0..300 {
        health = http(port, "GET", "/health", "").1;
        if health["token_valid"] == true {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["health"], "healthy", "{health}");
    assert!(health["time_until_expiry"].as_u64().unwrap() > 7000);

    let (st, cfg) = http(port, "GET", "/api/config", "");
    assert_eq!(st, 200);
    assert_eq!(
        (cfg["access_key"].as_str(), cfg["secret_key"].as_str()),
        (Some("***"), Some("***"))
    );
    assert_eq!(cfg["token_status"]["has_refresh_token"], true);
    assert!(!cfg.to_string().contains("SK-secret"));
    assert_eq!(
        http(port, "POST", "/api/config", r#"{"secret_key":"x"}"#).0,
        405
    );

    for path in ["/api/devices", "/devices"] {
        let (st, v) = http(port, "GET", path, "");
        assert_eq!(st, 200, "{path}: {v}");
        assert_eq!(v["payload"]["devices"][0]["id"], "lock-1", "{path}");
    }
    let (st, v) = http(port, "POST", "/api/status", r#"{"id":"lock-1"}"#);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["payload"]["devices"][0]["states"][0]["value"], "locked");
    let (st, v) = http(port, "GET", "/api/status?id=lock-1", "");
    assert_eq!(
        (st, v["payload"]["devices"][0]["id"].as_str()),
        (200, Some("lock-1"))
    );
    let (st, v) = http(port, "GET", "/api/status/latest", "");
    assert_eq!(st, 200);
    assert!(v["last_updated"].as_str().unwrap().ends_with('Z'));
    for (path, name) in [
        ("/api/lock", "lock"),
        ("/lock", "lock"),
        ("/api/unlock", "unlock"),
        ("/unlock", "unlock"),
    ] {
        let (st, v) = http(port, "POST", path, r#"{"id":"lock-1"}"#);
        assert_eq!((st, v["status"].as_str()), (200, Some("ok")), "{path}: {v}");
        let last = cloud.lock().unwrap().actions.last().cloned().unwrap();
        assert_eq!(
            last["payload"]["devices"][0]["command"]["name"], name,
            "{path}"
        );
    }
    assert_eq!(http(port, "POST", "/api/lock", "{}").0, 400);

    // What a web page in the user's browser could send never reaches the lock: a cross-site
    // fetch (Origin, Sec-Fetch-Site) or a page that re-pointed its own name at the keeper.
    let actions_before = cloud.lock().unwrap().actions.len();
    for headers in [
        "Host: 127.0.0.1\r\nOrigin: https://evil.example\r\n",
        "Host: 127.0.0.1\r\nSec-Fetch-Site: cross-site\r\n",
        "Host: rebind.evil.example:8000\r\n",
    ] {
        let (st, v) = http_with(port, "POST", "/api/unlock", headers, r#"{"id":"lock-1"}"#);
        assert_eq!(st, 403, "{headers:?}: {v}");
        assert!(
            v["message"].as_str().unwrap().contains("refused")
                || v["message"].as_str().unwrap().contains("another server"),
            "{v}"
        );
    }
    assert_eq!(cloud.lock().unwrap().actions.len(), actions_before);

    // INVALID_TOKEN inside a 200 counts as a 401. The token was obtained moments ago, so the
    // session's cooldown refuses a second refresh: the refusal is reported, never a loop.
    let tokens_before = cloud.lock().unwrap().tokens;
    cloud.lock().unwrap().refuse_next = true;
    let (st, v) = http(port, "GET", "/api/devices", "");
    assert_eq!(st, 502, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("refused the access token"),
        "{v}"
    );
    assert_eq!(cloud.lock().unwrap().tokens, tokens_before);
    assert_eq!(
        http(port, "GET", "/api/devices", "").0,
        200,
        "the next call works"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_invalid_token_in_a_200_on_an_older_token_is_refreshed_once_and_the_call_succeeds() {
    // uteclocal's config with both the lifetime and the expiry: received an hour ago, valid
    // for another hour, so the keeper uses it as it is and a refusal is worth a refresh.
    let (server, cloud) = cloud();
    let dir = std::env::temp_dir().join(format!("latchkey-utec-retry-{}", std::process::id()));
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let at = latchkey_pki::inspect::rfc3339(expires);
    let (_keeper, port) = keeper(
        &server,
        &dir,
        &format!(
            r#"{{"access_key":"AK-1","secret_key":"SK-secret","access_token":"utec-a0",
            "refresh_token":"utec-r0","token_type":"Bearer","token_expires_in":7200,
            "token_expires_at":"{at}","redirect_uri":"https://example.org/cb"}}"#
        ),
    );
    let (st, v) = http(port, "GET", "/api/devices", "");
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        cloud.lock().unwrap().tokens,
        0,
        "the imported token is used"
    );

    cloud.lock().unwrap().refuse_next = true;
    let (st, v) = http(port, "GET", "/api/devices", "");
    assert_eq!(st, 200, "refreshed and retried once: {v}");
    let c = cloud.lock().unwrap();
    assert_eq!(c.tokens, 1, "exactly one refresh");
    let n = c.actions.len();
    assert!(n >= 3, "{n}");
    assert_eq!(
        (
            c.actions[n - 2]["header"]["name"].as_str(),
            c.actions[n - 1]["header"]["name"].as_str()
        ),
        (Some("Discovery"), Some("Discovery")),
        "the refused call is sent again"
    );
    assert_eq!(
        (c.bearers[n - 2].as_str(), c.bearers[n - 1].as_str()),
        ("Bearer utec-a0", "Bearer utec-a1"),
        "with the new token"
    );
    drop(c);
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(unix)]
#[test]
fn sigterm_during_a_refresh_waits_for_the_answer_and_saves_the_rotated_token() {
    // The cloud has issued utec-r1 and is still answering when the keeper is told to stop:
    // the keeper reads the answer and saves it before it exits (stopping in the middle left
    // only the refresh marker, and the next start would refresh with the spent utec-r0).
    let (server, cloud) = cloud();
    let dir = std::env::temp_dir().join(format!("latchkey-utec-sigterm-{}", std::process::id()));
    let (mut keeper, port) = keeper(
        &server,
        &dir,
        r#"{"access_key":"AK-1","secret_key":"SK-secret","access_token":"utec-a0",
        "refresh_token":"utec-r0","token_type":"Bearer","token_expires_in":7200,
        "redirect_uri":"https://example.org/cb"}"#,
    );
    cloud.lock().unwrap().token_delay = Some(Duration::from_millis(1500));
    let refresh = std::thread::spawn(move || http(port, "POST", "/api/oauth/refresh", ""));
    let started = std::time::Instant::now();
    while cloud.lock().unwrap().tokens == 0 && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        cloud.lock().unwrap().tokens,
        1,
        "the refresh reached the cloud"
    );
    let term = Command::new("kill")
        .args(["-TERM", &keeper.0.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = keeper.0.wait().unwrap();
    assert!(
        status.success(),
        "SIGTERM ends token keep cleanly: {status:?}"
    );
    let _ = refresh.join();
    let saved: Value =
        serde_json::from_slice(&std::fs::read(dir.join("state").join("tokens-utec.json")).unwrap())
            .unwrap();
    assert_eq!(
        saved["refresh_token"], "utec-r1",
        "the rotated token was saved"
    );
    assert!(saved["refresh_in_flight"].is_null(), "{saved}");
    let _ = std::fs::remove_dir_all(dir);
}
