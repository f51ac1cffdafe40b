//! The oidc-provider interop harness: what `interop/oidc.sh` started (read from the
//! environment), its admin side channel, a provider profile filled by discovery, a headless
//! browser for its login, consent and device pages ([`browser`]), a `TokenSession`
//! driver on the real wall clock with a real state directory ([`driver`]), the runtime's
//! `TokenKeeper` on the same state files ([`keeper`]), and child processes a test can kill
//! with SIGKILL ([`process`]).
//!
//! Everything here uses only public APIs: the pure `latchkey-oauth-core` and the runtime's
//! `HttpClient` and `StateDir` (through `crate::rt`), so the same source runs on every
//! runtime. Keeper-level tests reuse these pieces.
//!
//! Shared source: included by `latchkey-tokio`'s and `latchkey-smol`'s interop tests.
#![allow(dead_code)]

pub(crate) mod browser;
pub(crate) mod driver;
pub(crate) mod keeper;
pub(crate) mod process;

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use latchkey_oauth_core::discovery::{discovery_request, parse_discovery};
use latchkey_oauth_core::http::{HttpRequest, HttpResponse, Method};
use latchkey_oauth_core::profile::Profile;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use serde_json::Value;

use crate::rt::http::{HttpClient, HttpConfig, Roots};
use crate::rt::sleep;

/// Why the interop tests are ignored in a plain `cargo test`.
pub(crate) const IGNORE_REASON: &str = "needs interop/oidc.sh (oidc-provider)";

/// The client `interop/oidc/server.mjs` registers: native, public, PKCE.
pub(crate) const CLIENT_ID: &str = "latchkey-native";
/// Its custom-scheme redirect URI.
pub(crate) const CUSTOM_REDIRECT: &str = "com.example.latchkey:/oauth2redirect";
/// The access-token lifetime the server is started with (`ttl.AccessToken`), seconds.
pub(crate) const ACCESS_TTL: u64 = 5;
/// The device grant type.
pub(crate) const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The environment variables `interop/oidc.sh` exports.
pub(crate) const ENV_ISSUER: &str = "LATCHKEY_OIDC_ISSUER";
pub(crate) const ENV_CA: &str = "LATCHKEY_OIDC_CA";
pub(crate) const ENV_ADMIN: &str = "LATCHKEY_OIDC_ADMIN";

/// A loopback redirect URI with a port, as a native app would bind (RFC 8252 §7.3: the
/// provider accepts any port on `http://127.0.0.1/callback`).
pub(crate) fn loopback_redirect(port: u16) -> String {
    format!("http://127.0.0.1:{port}/callback")
}

/// The running provider, as `interop/oidc.sh` described it.
#[derive(Debug, Clone)]
pub(crate) struct Env {
    /// `https://127.0.0.1:PORT`.
    pub(crate) issuer: String,
    /// The private CA that signed the provider's certificate (PEM).
    pub(crate) ca_pem: Vec<u8>,
    /// Where that CA is (for `latchkey --ca-file`).
    pub(crate) ca_path: std::path::PathBuf,
    /// `http://127.0.0.1:PORT` of the admin side channel.
    pub(crate) admin: String,
}

impl Env {
    /// Reads the environment. Panics (the test fails, it is never skipped) when a variable
    /// is missing or the CA cannot be read: these tests only make sense against the server
    /// `interop/oidc.sh` starts.
    pub(crate) fn from_env() -> Env {
        let var = |name: &str| match std::env::var(name) {
            Ok(v) if !v.trim().is_empty() => v.trim().to_owned(),
            _ => panic!(
                "{name} is not set: these tests run against oidc-provider; \
                 start them with `bash interop/oidc.sh` (which exports {ENV_ISSUER}, {ENV_CA} \
                 and {ENV_ADMIN})"
            ),
        };
        let issuer = var(ENV_ISSUER);
        let ca_path = var(ENV_CA);
        let admin = var(ENV_ADMIN);
        let ca_pem = std::fs::read(&ca_path)
            .unwrap_or_else(|e| panic!("{ENV_CA}={ca_path}: cannot read the CA: {e}"));
        assert!(
            issuer.starts_with("https://127.0.0.1:"),
            "{ENV_ISSUER} must be an https loopback URL, not {issuer:?}"
        );
        assert!(
            admin.starts_with("http://127.0.0.1:"),
            "{ENV_ADMIN} must be a loopback URL, not {admin:?}"
        );
        Env {
            issuer,
            ca_pem,
            ca_path: ca_path.into(),
            admin,
        }
    }

    /// An HTTPS client trusting only the provider's CA; redirects are not followed.
    pub(crate) fn client(&self) -> HttpClient {
        let mut config = HttpConfig::default();
        config.roots = Roots::Pem(self.ca_pem.clone());
        config.connect_timeout = Duration::from_secs(5);
        config.read_timeout = Duration::from_secs(10);
        HttpClient::new(config).expect("HTTPS client for the provider")
    }

    /// The admin side channel.
    pub(crate) fn admin(&self) -> Admin {
        let mut config = HttpConfig::default();
        config.allow_plain_http = true;
        config.connect_timeout = Duration::from_secs(5);
        config.read_timeout = Duration::from_secs(10);
        Admin {
            base: self.admin.clone(),
            client: HttpClient::new(config).expect("HTTP client for the admin channel"),
        }
    }

    /// The `generic` profile for the provider's native client, endpoints from discovery.
    pub(crate) async fn profile(&self, client: &HttpClient) -> Profile {
        let response = send(client, &discovery_request(&self.issuer)).await;
        let endpoints = parse_discovery(&response, &self.issuer).expect("discovery document");
        Profile::builtin("generic")
            .expect("generic profile")
            .with_client_id(CLIENT_ID)
            .with_redirect_uri(loopback_redirect(free_port()))
            .with_issuer(self.issuer.clone())
            .expect("issuer")
            .with_endpoints(endpoints)
            .expect("discovered endpoints")
    }

    /// `GET /me` (OpenID Connect userinfo) with `access_token`: the provider's own resource
    /// endpoint, 200 for a live token and 401 for an expired or revoked one.
    pub(crate) async fn userinfo(&self, client: &HttpClient, access_token: &str) -> HttpResponse {
        let mut request = HttpRequest::new(Method::Get, format!("{}/me", self.issuer));
        request.push_header("Authorization", format!("Bearer {access_token}"));
        send(client, &request).await
    }
}

/// Sends `request`, panicking on a transport error (with its redacted message).
pub(crate) async fn send(client: &HttpClient, request: &HttpRequest) -> HttpResponse {
    match client.send(request).await {
        Ok(response) => response,
        Err(e) => panic!("{} {}: {e}", request.method, redact_url(&request.url)),
    }
}

/// `url` without its query (which may carry codes or states), for messages.
pub(crate) fn redact_url(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// The admin side channel of `interop/oidc/server.mjs`.
#[derive(Debug, Clone)]
pub(crate) struct Admin {
    base: String,
    client: HttpClient,
}

/// `GET /stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    /// Whether the token endpoint answers 503.
    pub(crate) down: bool,
    /// Token-endpoint requests that reached oidc-provider, by `grant_type`.
    pub(crate) grant_types: BTreeMap<String, u64>,
    /// Token-endpoint requests answered 503 while down, by `grant_type`.
    pub(crate) unavailable: BTreeMap<String, u64>,
    /// OAuth error codes the token endpoint answered (`invalid_grant`, `slow_down`, …).
    pub(crate) errors: BTreeMap<String, u64>,
    /// What [`Admin::hold`] set, if holding.
    pub(crate) hold: Option<Hold>,
    /// `refresh_token` requests parked by the hold now.
    pub(crate) parked: u64,
    /// Parked requests whose connections were closed without an answer.
    pub(crate) dropped: u64,
    /// The `/me` requests in order: status and the bearer token's fingerprint
    /// (`Secret::fingerprint`), `None` without a bearer token.
    pub(crate) userinfo: Vec<(u16, Option<String>)>,
}

/// Where [`Admin::hold`] parks `refresh_token` grant requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hold {
    /// Before oidc-provider sees them: nothing is processed until released.
    Before,
    /// After oidc-provider answered them (the refresh token is rotated), before the answer
    /// is written.
    After,
}

impl Hold {
    fn as_str(self) -> &'static str {
        match self {
            Hold::Before => "before",
            Hold::After => "after",
        }
    }
}

impl Stats {
    /// Requests of `grant_type` that reached oidc-provider.
    pub(crate) fn grants(&self, grant_type: &str) -> u64 {
        self.grant_types.get(grant_type).copied().unwrap_or(0)
    }

    /// Requests of `grant_type` answered 503.
    pub(crate) fn unavailable(&self, grant_type: &str) -> u64 {
        self.unavailable.get(grant_type).copied().unwrap_or(0)
    }

    /// Answers with OAuth error `code`.
    pub(crate) fn errors(&self, code: &str) -> u64 {
        self.errors.get(code).copied().unwrap_or(0)
    }
}

impl Admin {
    async fn call(&self, method: Method, path: &str) -> HttpResponse {
        let request = HttpRequest::new(method, format!("{}{path}", self.base));
        let response = send(&self.client, &request).await;
        assert_eq!(response.status, 200, "admin {method} {path}");
        response
    }

    /// Current counters.
    pub(crate) async fn stats(&self) -> Stats {
        let response = self.call(Method::Get, "/stats").await;
        let v: Value = serde_json::from_slice(&response.body).expect("/stats is JSON");
        let counts = |key: &str| -> BTreeMap<String, u64> {
            v.get(key)
                .and_then(Value::as_object)
                .unwrap_or_else(|| panic!("/stats lacks `{key}`"))
                .iter()
                .map(|(k, n)| (k.clone(), n.as_u64().expect("a count")))
                .collect()
        };
        let number = |key: &str| {
            v.get(key)
                .and_then(Value::as_u64)
                .unwrap_or_else(|| panic!("/stats lacks `{key}`"))
        };
        let hold = match v.get("hold") {
            Some(Value::Null) => None,
            Some(Value::String(s)) if s == "before" => Some(Hold::Before),
            Some(Value::String(s)) if s == "after" => Some(Hold::After),
            other => panic!("/stats hold: {other:?}"),
        };
        let userinfo = v
            .get("userinfo")
            .and_then(Value::as_array)
            .expect("/stats lacks `userinfo`")
            .iter()
            .map(|entry| {
                let status = entry
                    .get("status")
                    .and_then(Value::as_u64)
                    .and_then(|s| u16::try_from(s).ok())
                    .expect("a userinfo status");
                let token = entry
                    .get("token")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                (status, token)
            })
            .collect();
        Stats {
            down: v.get("down").and_then(Value::as_bool).expect("/stats down"),
            grant_types: counts("grant_types"),
            unavailable: counts("unavailable"),
            errors: counts("errors"),
            hold,
            parked: number("parked"),
            dropped: number("dropped"),
            userinfo,
        }
    }

    /// The token endpoint up, nothing held and the counters at zero: how every test starts,
    /// whatever an earlier failed test left behind.
    pub(crate) async fn fresh(&self) {
        self.up().await;
        self.release(true).await;
        self.reset().await;
    }

    /// Parks every `refresh_token` grant request at `stage` from now on, until
    /// [`Admin::release`].
    pub(crate) async fn hold(&self, stage: Hold) {
        self.call(Method::Post, &format!("/hold?stage={}", stage.as_str()))
            .await;
    }

    /// Stops holding; the parked requests go on, or with `drop` their connections are closed
    /// without an answer (a request parked [`Hold::Before`] is then never processed).
    pub(crate) async fn release(&self, drop: bool) {
        let path = if drop { "/release?drop=1" } else { "/release" };
        self.call(Method::Post, path).await;
    }

    /// Revokes every access token the provider has issued; returns how many.
    pub(crate) async fn revoke_access(&self) -> u64 {
        let response = self.call(Method::Post, "/revoke-access").await;
        let v: Value = serde_json::from_slice(&response.body).expect("/revoke-access is JSON");
        v.get("revoked")
            .and_then(Value::as_u64)
            .expect("/revoke-access reports `revoked`")
    }

    /// Polls `/stats` until `done` holds; fails naming `what` after `limit`.
    pub(crate) async fn wait_for(
        &self,
        limit: Duration,
        what: &str,
        done: impl Fn(&Stats) -> bool,
    ) -> Stats {
        let deadline = Deadline::new(limit, what);
        loop {
            let stats = self.stats().await;
            if done(&stats) {
                return stats;
            }
            deadline.tick(&format!("{stats:?}")).await;
        }
    }

    /// Zeroes the counters.
    pub(crate) async fn reset(&self) {
        self.call(Method::Post, "/reset").await;
    }

    /// The token endpoint answers 503 from now on, with `Retry-After` if given.
    pub(crate) async fn down(&self, retry_after: Option<u64>) {
        match retry_after {
            Some(s) => {
                self.call(Method::Post, &format!("/down?retry_after={s}"))
                    .await
            }
            None => self.call(Method::Post, "/down").await,
        };
    }

    /// The token endpoint works again.
    pub(crate) async fn up(&self) {
        self.call(Method::Post, "/up").await;
    }
}

/// A time limit for polling a condition: [`Deadline::tick`] waits a little, or fails the
/// test naming what never happened once the limit has passed.
#[derive(Debug)]
pub(crate) struct Deadline {
    end: Instant,
    limit: Duration,
    what: String,
}

impl Deadline {
    /// How long [`Deadline::tick`] waits between two checks.
    pub(crate) const POLL: Duration = Duration::from_millis(50);

    /// `limit` from now, for `what` (used in the failure message).
    pub(crate) fn new(limit: Duration, what: impl Into<String>) -> Deadline {
        Deadline {
            end: Instant::now() + limit,
            limit,
            what: what.into(),
        }
    }

    /// Whether the limit has passed.
    pub(crate) fn passed(&self) -> bool {
        Instant::now() >= self.end
    }

    /// Fails with `detail` if the limit has passed, else waits [`Deadline::POLL`].
    pub(crate) async fn tick(&self, detail: &str) {
        assert!(
            !self.passed(),
            "timed out after {:?} waiting for {}; last seen: {detail}",
            self.limit,
            self.what
        );
        sleep(Self::POLL).await;
    }
}

/// Serializes the tests of one binary: they share one provider and its counters, and one
/// of them takes the token endpoint down. Hold the guard for the whole test.
pub(crate) fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Wall-clock Unix seconds: the time the core works in.
pub(crate) fn wall_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// How long until wall-clock second `at` begins (zero if it has).
pub(crate) fn until_wall(at: u64) -> Duration {
    (UNIX_EPOCH + Duration::from_secs(at))
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
}

/// 8 bytes from the OS random source.
pub(crate) fn os_random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("/dev/urandom");
    u64::from_le_bytes(bytes)
}

/// A cryptographic generator seeded from the OS, for PKCE verifiers and states.
pub(crate) fn rng() -> ChaCha20Rng {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .expect("/dev/urandom");
    ChaCha20Rng::from_seed(seed)
}

/// A loopback port nobody listens on now (for redirect URIs, which are captured, not served).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A fresh scratch directory path (not created) for a state directory.
pub(crate) fn scratch(tag: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "latchkey-interop-{tag}-{}-{}",
        std::process::id(),
        os_random_u64()
    ));
    let _ = std::fs::remove_dir_all(&path);
    path
}
