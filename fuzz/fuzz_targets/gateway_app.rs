//! The gateway application under arbitrary operation sequences: requests (routes from a list
//! or fuzzed paths, fuzzed headers, cookies and bodies, plus correctly signed WebSocket
//! upgrades and a logged-in admin so the fuzzer gets past authentication), WebSocket
//! messages to open sessions, pongs and time steps.
//!
//! Checks: no panic; every response has a valid status and the security headers; open
//! sessions and connections stay bounded; state persisted at any point restores.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use latchkey_gateway::{App, AppConfig, Effect, Method, Now, Request, WsSession};
use latchkey_protocol::guard::{Signer, SigningVariant};
use latchkey_protocol::time::Instant;
use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const T0: u64 = 1_767_225_600;

const PATHS: &[&str] = &[
    "/api/v3/provision/request",
    "/api/v3/remote_ui/ws",
    "/api/v3/remote_ui/list",
    "/api/v3/remote_ui/status/remote_ui_ABCD12",
    "/api/v3/remote_ui",
    "/api/v3/remote_ui/remote_ui_ABCD12/config",
    "/api/v3/remote_ui/remote_ui_ABCD12/reset",
    "/api/v3/io/light",
    "/api/v3/io/light/state",
    "/api/v3/io",
    "/api/v3/io.xml",
    "/api/config",
    "/api/oauth/refresh",
    "/api/session",
    "/health",
    "/setup",
    "/login",
    "/logout",
    "/admin",
    "/admin/panels",
    "/admin/panels/reset",
    "/admin/ios",
    "/admin/ios/state",
    "/admin/password",
    "/admin/certificate",
    "/admin/certificate/regenerate",
    "/static/app.js",
];

const BODIES: &[&str] = &[
    r#"{"code":"ABCD12","device_info":{"type":"esp32","mac_address":"m"}}"#,
    r#"{"provisioning_code":"ABCD12"}"#,
    r#"{"name":"P","provisioning_code":"ABCD12"}"#,
    r#"{"pages":[{"id":"1","widgets":[{"type":"b","io":"light","x":1,"y":2}]}]}"#,
    r#"{"type":"light","name":"L","state":"on"}"#,
    r#"{"state":"off"}"#,
    r#"{"auto_refresh_enabled":false,"refresh_buffer_minutes":3}"#,
    r#"<calaos:room name="R"><calaos:remote_ui id="x" provisioning_code="QWER12"/></calaos:room>"#,
];

const MESSAGES: &[&str] = &[
    r#"{"msg":"remote_ui_get_config"}"#,
    r#"{"msg":"set_state","data":{"io":"light","state":"on"}}"#,
    r#"{"msg":"set_state","data":{"id":"light","value":true}}"#,
    r#"{"msg":"x"}"#,
];

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }
    fn bytes(&mut self, max: usize) -> &[u8] {
        let n = usize::from(self.byte().unwrap_or(0))
            .min(max)
            .min(self.0.len());
        let (a, rest) = self.0.split_at(n);
        self.0 = rest;
        a
    }
    fn text(&mut self, max: usize) -> String {
        String::from_utf8_lossy(self.bytes(max)).into_owned()
    }
}

struct World {
    app: App,
    rng: ChaCha20Rng,
    secs: u64,
    sessions: Vec<WsSession>,
    signers: Vec<Signer>,
    cookie: Option<String>,
    csrf: Option<String>,
}

impl World {
    fn now(&self) -> Now {
        Now::new(Instant::from_secs(self.secs), T0 + self.secs)
    }

    fn send(&mut self, peer: IpAddr, req: &Request) -> Vec<Effect> {
        let now = self.now();
        // Costly requests (password hashing) go the way the server sends them: the work
        // planned, done apart, then handed over with the request.
        let (r, fx) = if req.is_costly() {
            let results = self
                .app
                .password_work(now, peer, req, &mut self.rng)
                .map(latchkey_gateway::passwords::PasswordWork::run)
                .unwrap_or_default();
            self.app
                .handle_request_with(now, peer, req, &mut self.rng, results)
        } else {
            self.app.handle_request(now, peer, req, &mut self.rng)
        };
        assert!((100..600).contains(&r.status));
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
        assert!(r.header("content-security-policy").is_some());
        if let Some(body) = std::str::from_utf8(&r.body)
            .ok()
            .filter(|_| req.path == "/api/v3/provision/request" && r.status == 200)
        {
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            let token = v["auth_token"]
                .as_str()
                .or(v["remote_ui"]["auth_token"].as_str());
            let secret = v["device_secret"]
                .as_str()
                .or(v["remote_ui"]["device_secret"].as_str());
            let variant = if v["status"] == "accepted" {
                SigningVariant::CalaosBase
            } else {
                SigningVariant::RemoteUiDesign
            };
            if let (Some(t), Some(s)) = (token, secret)
                && self.signers.len() < 8
            {
                self.signers
                    .push(Signer::new(t, s.as_bytes(), variant).unwrap());
            }
        }
        if let Some(c) = r
            .headers
            .iter()
            .filter(|(n, _)| n == "Set-Cookie")
            .filter_map(|(_, v)| v.strip_prefix("__Host-lk_session="))
            .filter_map(|v| v.split(';').next())
            .find(|v| !v.is_empty())
        {
            self.cookie = Some(c.to_string());
        }
        let mut rest = Vec::new();
        for e in fx {
            match e {
                Effect::UpgradeWebSocket(s) => {
                    assert!(self.sessions.len() < 64);
                    self.sessions.push(s);
                }
                Effect::PersistState(bytes) => {
                    let now = self.now();
                    App::restore(
                        AppConfig::for_tests(),
                        now,
                        &mut ChaCha20Rng::from_seed([9; 32]),
                        &bytes,
                        None,
                    )
                    .expect("persisted state restores");
                }
                other => rest.push(other),
            }
        }
        rest
    }
}

fuzz_target!(|data: &[u8]| {
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let mut config = AppConfig::for_tests();
    config.max_connections = 32;
    let app = App::new(config, &mut rng).unwrap();
    let mut w = World {
        app,
        rng,
        secs: 0,
        sessions: Vec::new(),
        signers: Vec::new(),
        cookie: None,
        csrf: None,
    };
    let mut input = Input(data);
    // Set up and log in, so admin routes are reachable.
    if input.byte().is_some_and(|b| b & 1 == 1) {
        let path = w.app.setup_path().unwrap();
        let token = path.split("token=").nth(1).unwrap().to_string();
        let peer = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let now = w.now();
        let (r, _) = w
            .app
            .handle_request(now, peer, &Request::new(Method::Get, &path), &mut w.rng);
        let html = r.text().into_owned();
        let pre = r
            .headers
            .iter()
            .find_map(|(_, v)| v.strip_prefix("__Host-lk_pre="))
            .and_then(|v| v.split(';').next())
            .unwrap_or("")
            .to_string();
        let csrf = html
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or("")
            .to_string();
        let req = Request::new(Method::Post, "/setup")
            .with_header("Cookie", &format!("__Host-lk_pre={pre}"))
            .with_body(
                format!("token={token}&csrf={csrf}&password=Passw0rdOK&confirm=Passw0rdOK")
                    .into_bytes(),
            );
        w.send(peer, &req);
        if let Some(c) = w.cookie.clone() {
            let req = Request::new(Method::Get, "/api/session")
                .with_header("Cookie", &format!("__Host-lk_session={c}"));
            let now = w.now();
            let (r, _) = w.app.handle_request(now, peer, &req, &mut w.rng);
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&r.body) {
                w.csrf = v["csrf_token"].as_str().map(String::from);
            }
        }
    }
    let mut steps = 0;
    while let Some(op) = input.byte() {
        steps += 1;
        if steps > 200 {
            break;
        }
        let peer = IpAddr::V4(Ipv4Addr::new(10, 0, 0, input.byte().unwrap_or(0) & 7));
        match op % 8 {
            0 | 1 => {
                let m = match input.byte().unwrap_or(0) % 5 {
                    0 => Method::Get,
                    1 => Method::Post,
                    2 => Method::Put,
                    3 => Method::Delete,
                    _ => Method::Other("PATCH".into()),
                };
                let sel = input.byte().unwrap_or(0);
                let path = if usize::from(sel) < PATHS.len() {
                    PATHS[usize::from(sel)].to_string()
                } else {
                    format!("/{}", input.text(40))
                };
                let mut req = Request::new(m, &path);
                let b = input.byte().unwrap_or(0);
                if b & 1 == 1
                    && let Some(c) = &w.cookie
                {
                    req = req.with_header("Cookie", &format!("__Host-lk_session={c}"));
                }
                if b & 2 == 2
                    && let Some(t) = &w.csrf
                {
                    req = req.with_header("X-CSRF-Token", t);
                }
                if b & 4 == 4 {
                    req.body = BODIES[usize::from(b >> 4) % BODIES.len()]
                        .as_bytes()
                        .to_vec();
                } else {
                    req.body = input.bytes(200).to_vec();
                }
                if b & 8 == 8 {
                    let name = input.text(20);
                    let value = input.text(60);
                    req = req.with_header(&name, &value);
                }
                req.query = input.text(20);
                w.send(peer, &req);
            }
            2 => {
                if let Some(s) = w
                    .signers
                    .get(usize::from(input.byte().unwrap_or(0)) % w.signers.len().max(1))
                    .cloned()
                {
                    let ts = (T0 + w.secs)
                        .saturating_add_signed(i64::from(input.byte().unwrap_or(0) as i8));
                    let signed = s.sign(ts, &mut w.rng);
                    let mut req = Request::new(Method::Get, "/api/v3/remote_ui/ws")
                        .with_header("Upgrade", "websocket");
                    for (n, v) in signed.pairs(&s) {
                        req = req.with_header(n, v);
                    }
                    w.send(peer, &req);
                }
            }
            3 => {
                if !w.sessions.is_empty() {
                    let i = usize::from(input.byte().unwrap_or(0)) % w.sessions.len();
                    let sel = input.byte().unwrap_or(0);
                    let text = if usize::from(sel) < MESSAGES.len() {
                        MESSAGES[usize::from(sel)].to_string()
                    } else {
                        input.text(200)
                    };
                    let now = w.now();
                    let mut s = w.sessions.swap_remove(i);
                    let _ = s.handle_message(now, &mut w.app, &text);
                    if !s.is_closed() {
                        w.sessions.push(s);
                    }
                }
            }
            4 => {
                w.secs += u64::from(input.byte().unwrap_or(0));
                let now = w.now();
                let _ = w.app.handle_timeout(now);
                let mut keep = Vec::new();
                for mut s in std::mem::take(&mut w.sessions) {
                    if s.poll_timeout().is_some_and(|t| t <= now.instant) {
                        let _ = s.handle_timeout(now.instant, &mut w.app);
                        if let Some(t) = s.poll_timeout() {
                            assert!(t > now.instant);
                        }
                    }
                    if !s.is_closed() {
                        keep.push(s);
                    }
                }
                w.sessions = keep;
            }
            5 => {
                if !w.sessions.is_empty() {
                    let i = usize::from(input.byte().unwrap_or(0)) % w.sessions.len();
                    let now = w.now();
                    w.sessions[i].handle_pong(now.instant);
                }
            }
            6 => {
                if !w.sessions.is_empty() {
                    let i = usize::from(input.byte().unwrap_or(0)) % w.sessions.len();
                    let mut s = w.sessions.swap_remove(i);
                    s.closed(&mut w.app);
                }
            }
            _ => {
                let _ = latchkey_gateway::xml::import(&input.text(255));
            }
        }
        assert!(w.app.connections() <= 32);
    }
});
