//! `latchkey watts devices | set | away` against a stand-in Watts Home API and token
//! endpoint served over HTTPS on loopback (test code only, following FACTS.md §3's shapes:
//! the `{errorNumber, errorMessage, body}` envelope, `Api-Version: 2.0`): locations and
//! devices listed, setpoints sent together, an envelope error named, and a token refused
//! right after it was obtained reported without a refresh storm (the session's 401
//! cooldown; the refresh-and-retry-once rule itself is tested on the token keeper).

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::{Value, json};

mod common;
use common::{assert_exit, latchkey};

#[path = "../../runtime-tokio/tests/shared/support.rs"]
mod support;

use support::{Ending, Received, Server, pki};

#[derive(Default)]
struct Watts {
    refreshes: usize,
    device_calls: usize,
    patches: Vec<(String, Value)>,
}

fn respond(out: &mut dyn Write, status: &str, body: &str) {
    let _ = write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn envelope(body: Value) -> String {
    json!({"errorNumber": 0, "errorMessage": "", "body": body}).to_string()
}

fn stand_in() -> (Server, Arc<Mutex<Watts>>) {
    let state = Arc::new(Mutex::new(Watts::default()));
    let seen = state.clone();
    let server = Server::tls(move |req: &Received, out| {
        let mut s = seen.lock().unwrap();
        let path = req.target.split('?').next().unwrap_or_default().to_owned();
        if path.ends_with("/token") {
            s.refreshes += 1;
            let body = String::from_utf8_lossy(&req.body).into_owned();
            assert!(body.contains("grant_type=refresh_token"), "{body}");
            respond(
                out,
                "200 OK",
                &json!({"access_token": access_token(), "token_type": "Bearer",
                "expires_in": 900, "refresh_token": format!("rt-{}", s.refreshes),
                "refresh_token_expires_in": 7_776_000})
                .to_string(),
            );
            return Ok(Ending::Clean);
        }
        assert_eq!(req.header("api-version"), Some("2.0"));
        match (req.method.as_str(), path.as_str()) {
            ("GET", "/api/Location") => respond(out, "200 OK", &envelope(json!([{"LocationId": "L1", "Name": "Home"}]))),
            ("GET", "/api/Location/L1/Devices") => {
                s.device_calls += 1;
                respond(out, "200 OK", &envelope(json!({"Devices": [{"DeviceId": "d-1", "Name": "Hall", "Settings": {"Heat": 68}}]})));
            }
            ("GET", "/api/Location/L2/Devices") => respond(out, "401 Unauthorized", "{}"),
            ("PATCH", p) if p.starts_with("/api/Device/") => {
                s.patches.push((p.to_owned(), serde_json::from_slice(&req.body).unwrap()));
                respond(out, "200 OK", &envelope(Value::Null));
            }
            ("PATCH", "/api/Location/L2/State") => respond(out, "401 Unauthorized", "{}"),
            ("PATCH", "/api/Location/L1/State") => respond(
                out,
                "200 OK",
                &json!({"errorNumber": 17, "errorMessage": "Location is in vacation mode", "body": null}).to_string(),
            ),
            _ => respond(out, "404 Not Found", "{}"),
        }
        Ok(Ending::Clean)
    });
    (server, state)
}

fn token_with(exp: u64, tag: &str) -> String {
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!(r#"{{"oid":"{tag}","exp":{exp}}}"#));
    format!("eyJhbGciOiJub25lIn0.{payload}.sig")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The imported token: valid for an hour, but the API refuses it once for devices.
fn first_token() -> String {
    token_with(4_102_444_800, "first")
}

fn access_token() -> String {
    token_with(now() + 900, "fresh")
}

#[test]
fn devices_set_and_away_through_the_envelope_and_a_fresh_token_refused_is_not_refreshed() {
    let (server, watts) = stand_in();
    let dir = std::env::temp_dir().join(format!("latchkey-watts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let base = format!("https://localhost:{}", server.port());
    let profile = dir.join("watts.toml");
    let shipped = include_str!("../../oauth-core/profiles/watts.toml");
    let token_url = "https://login.watts.io/tfp/wattsb2cap02.onmicrosoft.com/B2C_1A_Residential_UnifiedSignUpOrSignIn/oauth2/v2.0/token";
    std::fs::write(
        &profile,
        shipped
            .replace(
                "base_url = \"https://home.watts.com/api\"",
                &format!("base_url = \"{base}/api\""),
            )
            .replace(token_url, &format!("{base}/token")),
    )
    .unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &pki().ca_pem).unwrap();
    // A session to start from, in the BTicino token-cache form `token import` reads.
    let cache = dir.join("cache.json");
    std::fs::write(
        &cache,
        json!({"b2cAccessToken": first_token(), "b2cRefreshToken": "rt-0", "expiresIn": 3600,
               "receivedAt": "2026-01-01T00:00:00Z", "expiresAtMs": (now() + 3600) * 1000})
        .to_string(),
    )
    .unwrap();
    let (s, p, c) = (
        state.to_str().unwrap(),
        profile.to_str().unwrap(),
        ca.to_str().unwrap(),
    );
    let import = latchkey(&[
        "token",
        "import",
        "--profile-file",
        p,
        "--from",
        cache.to_str().unwrap(),
        "--state-dir",
        s,
    ]);
    assert_eq!(
        import.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let common = ["--state-dir", s, "--profile-file", p, "--ca-file", c];

    let mut args = vec!["watts", "devices", "--json"];
    args.extend(common);
    let out = latchkey(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(line["id"], "d-1");
    assert_eq!(line["location"], "L1");
    assert_eq!(line["device"]["Settings"]["Heat"], 68);
    assert_eq!(watts.lock().unwrap().device_calls, 1);

    let mut args = vec![
        "watts", "set", "--device", "d-1", "--heat", "67", "--cool", "77",
    ];
    args.extend(common);
    let out = latchkey(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (path, body) = watts.lock().unwrap().patches[0].clone();
    assert_eq!(path, "/api/Device/d-1");
    assert_eq!(body, json!({"Settings": {"Heat": 67.0, "Cool": 77.0}}));

    let mut args = vec![
        "watts", "set", "--device", "d-1", "--heat", "80", "--cool", "70",
    ];
    args.extend(common);
    assert_eq!(
        latchkey(&args).status.code(),
        Some(2),
        "heat above cool is refused before any call"
    );

    let mut args = vec!["watts", "away", "--location", "L1", "on"];
    args.extend(common);
    let out = latchkey(&args);
    assert_exit(&out, 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error 17: Location is in vacation mode"),
        "{err}"
    );
    assert!(!err.contains("rt-"), "no token printed: {err}");

    // A 401 for the token just imported: reported, not refreshed in a loop.
    let mut args = vec!["watts", "away", "--location", "L2", "off"];
    args.extend(common);
    let out = latchkey(&args);
    assert_exit(&out, 1);
    assert_eq!(watts.lock().unwrap().refreshes, 0);
    let _ = std::fs::remove_dir_all(dir);
}
