//! A small harness: an app with cheap Argon2, a seeded RNG, virtual clocks, and helpers
//! for the admin session and for signed panel upgrades.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::net::{IpAddr, Ipv4Addr};

use latchkey_gateway::{App, AppConfig, Effect, Method, Now, Request, Response, WsSession};
use latchkey_protocol::guard::{Signer, SigningVariant};
use latchkey_protocol::time::Instant;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub const T0: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z
pub const PASSWORD: &str = "Correct1Horse";

pub struct H {
    pub app: App,
    pub rng: ChaCha20Rng,
    pub secs: u64,
    pub cookie: Option<String>,
    pub csrf: Option<String>,
    /// Send costly requests as a driver does: the password work planned, done apart, and
    /// handed to `handle_request_with`.
    pub split: bool,
}

pub fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 168, 1, last))
}

impl H {
    pub fn new() -> H {
        let mut rng = ChaCha20Rng::from_seed([42; 32]);
        let app = App::new(AppConfig::for_tests(), &mut rng).unwrap();
        H {
            app,
            rng,
            secs: 0,
            cookie: None,
            csrf: None,
            split: false,
        }
    }

    /// A harness that sends costly requests the split way (see [`H::split`]) when `split`.
    pub fn with_split(split: bool) -> H {
        H { split, ..H::new() }
    }

    pub fn now(&self) -> Now {
        Now::new(Instant::from_secs(self.secs), T0 + self.secs)
    }

    pub fn advance(&mut self, secs: u64) {
        self.secs += secs;
    }

    pub fn send(&mut self, peer: IpAddr, req: Request) -> (Response, Vec<Effect>) {
        let now = self.now();
        if self.split && req.is_costly() {
            let results = self
                .app
                .password_work(now, peer, &req, &mut self.rng)
                .map(latchkey_gateway::passwords::PasswordWork::run)
                .unwrap_or_default();
            return self
                .app
                .handle_request_with(now, peer, &req, &mut self.rng, results);
        }
        self.app.handle_request(now, peer, &req, &mut self.rng)
    }

    /// Sends with the admin cookie and CSRF header.
    pub fn admin(&mut self, method: Method, target: &str, body: &str) -> (Response, Vec<Effect>) {
        let mut req = Request::new(method, target).with_body(body.as_bytes().to_vec());
        if let Some(c) = &self.cookie {
            req = req.with_header("Cookie", &format!("__Host-lk_session={c}"));
        }
        if let Some(t) = &self.csrf {
            req = req.with_header("X-CSRF-Token", t);
        }
        self.send(ip(200), req)
    }

    /// First-boot setup through the one-time link, leaving an admin session.
    pub fn set_up(&mut self) {
        let path = self.app.setup_path().unwrap();
        let (r, _) = self.send(ip(200), Request::new(Method::Get, &path));
        assert_eq!(r.status, 200, "{}", r.text());
        let pre = cookie_value(&r, "__Host-lk_pre").unwrap();
        let csrf = hidden_value(&r.text(), "csrf").unwrap();
        let token = path.split("token=").nth(1).unwrap().to_string();
        let body = format!("token={token}&csrf={csrf}&password={PASSWORD}&confirm={PASSWORD}");
        let (r, fx) = self.send(
            ip(200),
            Request::new(Method::Post, "/setup")
                .with_header("Cookie", &format!("__Host-lk_pre={pre}"))
                .with_body(body.into_bytes()),
        );
        assert_eq!(r.status, 303, "{}", r.text());
        assert!(fx.iter().any(|e| matches!(e, Effect::PersistState(_))));
        self.cookie = cookie_value(&r, "__Host-lk_session");
        self.fetch_csrf();
    }

    pub fn fetch_csrf(&mut self) {
        self.csrf = None;
        let (r, _) = self.admin(Method::Get, "/api/session", "");
        assert_eq!(r.status, 200, "{}", r.text());
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        self.csrf = Some(v["csrf_token"].as_str().unwrap().to_string());
    }

    /// Adds a panel with `code` and provisions it in `variant`; returns (id, signer).
    pub fn provision(
        &mut self,
        code: &str,
        variant: SigningVariant,
        peer: IpAddr,
    ) -> (String, Signer) {
        let (r, _) = self.admin(
            Method::Post,
            "/api/v3/remote_ui",
            &format!(r#"{{"name":"Panel {code}","provisioning_code":"{code}"}}"#),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        let body = match variant {
            SigningVariant::CalaosBase => format!(
                r#"{{"code":"{code}","device_info":{{"type":"esp32","mac_address":"AA:BB:CC:00:00:01","hardware_id":"waveshare-86-panel"}}}}"#
            ),
            _ => format!(
                r#"{{"provisioning_code":"{code}","device_info":{{"type":"esp32_touch_panel"}}}}"#
            ),
        };
        let (r, _) = self.send(
            peer,
            Request::new(Method::Post, "/api/v3/provision/request").with_body(body.into_bytes()),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let (id, token, secret) = match variant {
            SigningVariant::CalaosBase => (
                v["device_id"].as_str().unwrap().to_string(),
                v["auth_token"].as_str().unwrap().to_string(),
                v["device_secret"].as_str().unwrap().to_string(),
            ),
            _ => (
                v["remote_ui"]["id"].as_str().unwrap().to_string(),
                v["remote_ui"]["auth_token"].as_str().unwrap().to_string(),
                v["remote_ui"]["device_secret"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            ),
        };
        (id, Signer::new(&token, secret.as_bytes(), variant).unwrap())
    }

    /// A signed upgrade request.
    pub fn upgrade_request(&mut self, signer: &Signer) -> Request {
        let signed = signer.sign(T0 + self.secs, &mut self.rng);
        let mut req = Request::new(Method::Get, "/api/v3/remote_ui/ws")
            .with_header("Upgrade", "websocket")
            .with_header("Connection", "Upgrade")
            .with_header("Sec-WebSocket-Version", "13")
            .with_header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
        for (n, v) in signed.pairs(signer) {
            req = req.with_header(n, v);
        }
        req
    }

    /// Connects a panel: the session and the greeting texts.
    pub fn connect(&mut self, signer: &Signer, peer: IpAddr) -> (WsSession, Vec<String>) {
        let req = self.upgrade_request(signer);
        let (r, fx) = self.send(peer, req);
        assert_eq!(r.status, 101, "{}", r.text());
        let mut session = None;
        let mut texts = Vec::new();
        for e in fx {
            match e {
                Effect::UpgradeWebSocket(s) => session = Some(s),
                Effect::SendWs { text, .. } => texts.push(text),
                _ => {}
            }
        }
        (session.unwrap(), texts)
    }
}

pub fn cookie_value(r: &Response, name: &str) -> Option<String> {
    r.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, v)| v.split(';').next()?.split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_string())
}

pub fn set_cookie_header(r: &Response, name: &str) -> Option<String> {
    r.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.clone())
        .find(|v| v.starts_with(&format!("{name}=")))
}

pub fn hidden_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_string())
}

pub fn json(r: &Response) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap()
}

pub fn sends(fx: &[Effect]) -> Vec<(latchkey_gateway::ConnId, serde_json::Value)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::SendWs { conn, text, .. } => Some((*conn, serde_json::from_str(text).unwrap())),
            _ => None,
        })
        .collect()
}
