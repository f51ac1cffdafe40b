//! A stand-in Legrand API for the CLI tests (test code only, never shipped as a provider),
//! served over HTTPS on loopback by `support::Server`, following the documented shapes
//! (FACTS.md §1): one plant in the `{plants:[…]}` wrapper, its modules (a gateway `gw-1` and
//! a lock `lock-1` named "Front door"), the gateway's SIP accounts (list and register, which
//! answers the password once), the client certificate endpoint (CSR as base64 DER, template
//! `sipuser`) and the CA chain. Every request must carry the subscription key and a
//! `UserToken`. An application token endpoint (client credentials, [`APP_TOKEN_PATH`]) stands
//! in for the C100X app's.
#![allow(dead_code)] // each test binary uses its own subset

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::{Value, json};

use super::support::{Ending, Received, Server, pki};

/// What the stand-in saw and did.
#[derive(Default)]
pub(crate) struct Legrand {
    /// The SIP accounts registered so far (as the list endpoint answers them).
    pub(crate) accounts: Vec<Value>,
    /// How many accounts were registered.
    pub(crate) registered: usize,
    /// How many certificates were issued.
    pub(crate) issued: usize,
    /// The last CSR received (DER).
    pub(crate) csr: Option<Vec<u8>>,
    /// `Authorization` and `UserToken` of the last certificate call.
    pub(crate) cert_auth: Option<(String, String)>,
    /// Application tokens handed out (client credentials with [`APP_SECRET`]).
    pub(crate) app_tokens: usize,
}

/// The application secret the stand-in's token endpoint ([`APP_TOKEN_PATH`]) accepts.
pub(crate) const APP_SECRET: &str = "app-secret-for-tests";
/// Where the stand-in serves the application (client-credentials) token endpoint.
pub(crate) const APP_TOKEN_PATH: &str = "/tenant/oauth2/v2.0/token";

/// Issues a certificate (DER) for a CSR (DER).
pub(crate) type Issue = dyn Fn(&[u8]) -> Vec<u8> + Send + Sync;

/// Base64 of DER, as the API carries certificates and CSRs.
pub(crate) fn b64(der: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(der)
}

fn respond(out: &mut dyn Write, status: &str, body: &str) {
    let _ = write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Starts the stand-in: `issue` makes the client certificate for each CSR, `ca_der` is the
/// chain `CACerts` answers, `sip_password` the password a registered account gets.
pub(crate) fn stand_in(
    issue: Box<Issue>,
    ca_der: Vec<u8>,
    sip_password: &str,
) -> (Server, Arc<Mutex<Legrand>>) {
    let state = Arc::new(Mutex::new(Legrand::default()));
    let seen = state.clone();
    let sip_password = sip_password.to_owned();
    let server = Server::tls(move |req: &Received, out| {
        let mut s = seen.lock().unwrap();
        let path = req.target.split('?').next().unwrap_or_default().to_owned();
        if path == APP_TOKEN_PATH {
            let form = String::from_utf8_lossy(&req.body).into_owned();
            assert!(form.contains("grant_type=client_credentials"), "{form}");
            assert!(
                form.contains("client_id=c7d272d9-e76a-41b7-824f-a988ad964cf8"),
                "{form}"
            );
            if form.contains(&format!("client_secret={APP_SECRET}")) {
                s.app_tokens += 1;
                respond(out, "200 OK", &json!({"access_token": format!("app-at-{}", s.app_tokens), "token_type": "Bearer", "expires_in": 3599}).to_string());
            } else {
                respond(
                    out,
                    "401 Unauthorized",
                    r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#,
                );
            }
            return Ok(Ending::Clean);
        }
        assert_eq!(
            req.header("ocp-apim-subscription-key"),
            Some("f36968e522bf4ec3877fa491109d3d14")
        );
        assert!(req.header("usertoken").is_some());
        match (req.method.as_str(), path.as_str()) {
            ("GET", "/servicecatalog/api/v3.0/plants") => respond(out, "200 OK", &json!({"plants":[{"id":"p-1","name":"Home","country":"IT","type":"residential","ownerId":"oid-9","ownerEmail":"owner@example.com"}]}).to_string()),
            ("GET", "/servicecatalog/api/v3.0/plants/p-1/modules") => respond(out, "200 OK", r#"[{"id":"gw-1","device":"gateway"},{"id":"lock-1","name":"Front door","device":"lock"}]"#),
            ("GET", "/vde/sip/v1.0/devices/gw-1/sipaccounts") => respond(out, "200 OK", &Value::Array(s.accounts.clone()).to_string()),
            ("POST", "/vde/sip/v1.0/devices/gw-1/sipaccount") => {
                let body: Value = serde_json::from_slice(&req.body).unwrap();
                s.registered += 1;
                let account = json!({"sipId": format!("s-{}", s.registered), "clientId": body["clientId"], "sipUri": body["sipUri"]});
                s.accounts.push(account.clone());
                let mut answer = account;
                answer["sipPassword"] = json!(sip_password);
                respond(out, "200 OK", &answer.to_string());
            }
            ("POST", "/certificate/api/v1.0/ca/information/clientCerts") => {
                let body: Value = serde_json::from_slice(&req.body).unwrap();
                let csr = base64::engine::general_purpose::STANDARD
                    .decode(body["csr"].as_str().unwrap())
                    .unwrap();
                assert_eq!(body["template"], "sipuser");
                s.cert_auth = Some((
                    req.header("authorization").unwrap_or_default().to_owned(),
                    req.header("usertoken").unwrap_or_default().to_owned(),
                ));
                let cert = issue(&csr);
                s.csr = Some(csr);
                s.issued += 1;
                respond(out, "201 Created", &json!({"cert": b64(&cert), "receiver": {}}).to_string());
            }
            ("GET", "/certificate/api/v1.0/ca/information/CACerts") => {
                respond(out, "200 OK", &json!({"chain": [b64(&ca_der)]}).to_string());
            }
            _ => respond(out, "404 Not Found", "{}"),
        }
        Ok(Ending::Clean)
    });
    (server, state)
}

/// An access token carrying `oid` (the stand-in never verifies it), valid for an hour.
pub(crate) fn access_token() -> String {
    let exp = unix_now() + 3600;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!(r#"{{"oid":"oid-9","exp":{exp}}}"#));
    format!("eyJhbGciOiJub25lIn0.{payload}.sig")
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The shipped C100X profile pointed at the stand-in on `port`.
pub(crate) fn c100x_profile(port: u16) -> String {
    include_str!("../../../oauth-core/profiles/bticino-c100x.toml").replace(
        "base_url = \"https://api.developer.legrand.com\"",
        &format!("base_url = \"https://localhost:{port}\""),
    )
}

/// The Node.js client's token cache holding [`access_token`], as `token import` reads it.
pub(crate) fn token_cache() -> String {
    json!({"b2cAccessToken": access_token(), "b2cRefreshToken": "rt", "expiresIn": 3600,
           "receivedAt": "2026-01-01T00:00:00Z", "expiresAtMs": (unix_now() + 3600) * 1000})
    .to_string()
}

/// [`c100x_profile`] with the application token endpoint of the stand-in on `port`.
pub(crate) fn c100x_profile_with_app(port: u16) -> String {
    format!(
        "{}\napp_token_endpoint = \"https://localhost:{port}{APP_TOKEN_PATH}\"\n",
        c100x_profile(port)
    )
}

/// The files a CLI run against the stand-in needs (see [`prepare`]).
pub(crate) struct Prepared {
    /// The profile (`--profile-file`).
    pub(crate) profile: PathBuf,
    /// The stand-in's CA (`--ca-file`).
    pub(crate) api_ca: PathBuf,
}

/// Writes `profile_text` and the stand-in's CA into `dir` and imports an OAuth session (the
/// Node.js client's token cache holding [`access_token`]) into `state` with
/// `latchkey token import`.
pub(crate) fn prepare(dir: &Path, state: &Path, profile_text: &str) -> Prepared {
    std::fs::create_dir_all(state).unwrap();
    let profile = dir.join("profile.toml");
    std::fs::write(&profile, profile_text).unwrap();
    let api_ca = dir.join("api-ca.pem");
    std::fs::write(&api_ca, &pki().ca_pem).unwrap();
    let cache = dir.join("token_cache.json");
    std::fs::write(&cache, token_cache()).unwrap();
    let import = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .arg("token")
        .arg("import")
        .arg("--profile-file")
        .arg(&profile)
        .arg("--from")
        .arg(&cache)
        .arg("--state-dir")
        .arg(state)
        .output()
        .unwrap();
    assert_eq!(
        import.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    Prepared { profile, api_ca }
}
