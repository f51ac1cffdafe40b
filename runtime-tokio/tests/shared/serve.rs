//! The gateway over real sockets: rustls clients, WebSocket panels signing their upgrades,
//! framing faults, limits, certificate upload and graceful shutdown with restart.
//!
//! Clients are blocking (std sockets, rustls, tungstenite's codec) on the test thread; the
//! gateway runs on the runtime under test on threads of its own (`rt::run_gateway`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use latchkey_gateway::AppConfig;
use latchkey_protocol::guard::{Signer, SigningVariant};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::Value;
use tungstenite::protocol::{Message, Role};

use crate::rt::{self, serve};

const PASSWORD: &str = "Correct1Horse";

type Tls = StreamOwned<ClientConnection, TcpStream>;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "latchkey-serve-{name}-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn config() -> serve::ServeConfig {
    let mut config = serve::ServeConfig::default();
    config.https = "127.0.0.1:0".parse().unwrap();
    config.http_redirect = Some("127.0.0.1:0".parse().unwrap());
    config.app = AppConfig::for_tests();
    // Every client here is 127.0.0.1: the per-address limits are the guard's tests' business.
    config.app.guard.auth_rate =
        latchkey_protocol::guard::Quota::per_minute(std::num::NonZeroU32::new(1000).unwrap());
    config.app.guard.provisioning_rate =
        latchkey_protocol::guard::Quota::per_minute(std::num::NonZeroU32::new(1000).unwrap());
    config.shutdown_grace = Duration::from_secs(3);
    config
}

/// The certificate the gateway serves, from its state directory.
fn served_cert(dir: &Path) -> Vec<u8> {
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("https-") && name.ends_with(".cert.pem") {
            let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
            if newest.as_ref().is_none_or(|(t, _)| modified >= *t) {
                newest = Some((modified, path));
            }
        }
    }
    std::fs::read(newest.expect("a certificate file").1).unwrap()
}

/// A blocking HTTPS client that trusts exactly `cert_pem`.
struct Client {
    addr: SocketAddr,
    tls: Arc<ClientConfig>,
    cookie: Option<String>,
    csrf: Option<String>,
}

/// A response as read off the wire.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .filter_map(|(_, v)| v.split(';').next()?.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    }
}

fn client_config(cert_pem: &[u8]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in latchkey_pki::pem::parse_certificates(cert_pem).unwrap() {
        roots.add(cert).unwrap();
    }
    Arc::new(
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

impl Client {
    fn new(addr: SocketAddr, cert_pem: &[u8]) -> Client {
        Client {
            addr,
            tls: client_config(cert_pem),
            cookie: None,
            csrf: None,
        }
    }

    fn connect(&self) -> Tls {
        let tcp = TcpStream::connect(self.addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let conn = ClientConnection::new(
            Arc::clone(&self.tls),
            ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        StreamOwned::new(conn, tcp)
    }

    /// One request on a fresh connection, with the admin cookie and CSRF header if held.
    fn send(&self, method: &str, target: &str, extra: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut stream = self.connect();
        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(c) = &self.cookie {
            head.push_str(&format!("Cookie: __Host-lk_session={c}\r\n"));
        }
        if let Some(t) = &self.csrf {
            head.push_str(&format!("X-CSRF-Token: {t}\r\n"));
        }
        for (n, v) in extra {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        stream.flush().unwrap();
        read_reply_to(&mut stream, method == "HEAD").0
    }

    fn get(&self, target: &str) -> Reply {
        self.send("GET", target, &[], b"")
    }

    /// First-boot setup through the one-time link, then an admin session with its CSRF token.
    fn set_up(&mut self, setup_url: &str) {
        let path = &setup_url[setup_url.find("/setup").unwrap()..];
        let page = self.get(path);
        assert_eq!(page.status, 200, "{}", page.text());
        let pre = page.cookie("__Host-lk_pre").expect("pre-session cookie");
        let csrf = hidden(&page.text(), "csrf");
        let token = path.split("token=").nth(1).unwrap();
        let body = format!("token={token}&csrf={csrf}&password={PASSWORD}&confirm={PASSWORD}");
        let r = self.send(
            "POST",
            "/setup",
            &[
                ("Cookie", &format!("__Host-lk_pre={pre}")),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            body.as_bytes(),
        );
        assert_eq!(r.status, 303, "{}", r.text());
        self.cookie = Some(r.cookie("__Host-lk_session").expect("session cookie"));
        self.fetch_csrf();
    }

    fn log_in(&mut self) {
        let page = self.get("/login");
        let csrf = hidden(&page.text(), "csrf");
        let pre = page.cookie("__Host-lk_pre");
        let body = format!("user=admin&password={PASSWORD}&csrf={csrf}");
        let cookie = pre
            .map(|p| format!("__Host-lk_pre={p}"))
            .unwrap_or_default();
        let r = self.send(
            "POST",
            "/login",
            &[
                ("Cookie", &cookie),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            body.as_bytes(),
        );
        assert_eq!(r.status, 303, "{}", r.text());
        self.cookie = Some(r.cookie("__Host-lk_session").expect("session cookie"));
        self.fetch_csrf();
    }

    fn fetch_csrf(&mut self) {
        self.csrf = None;
        let r = self.get("/api/session");
        assert_eq!(r.status, 200, "{}", r.text());
        self.csrf = Some(r.json()["csrf_token"].as_str().unwrap().to_owned());
    }

    fn admin(&self, method: &str, target: &str, json: &str) -> Reply {
        self.send(
            method,
            target,
            &[("Content-Type", "application/json")],
            json.as_bytes(),
        )
    }

    /// Adds a panel with `code`, provisions it as a device would and returns its signer.
    fn provision(&self, code: &str, variant: SigningVariant) -> (String, Signer) {
        let r = self.admin(
            "POST",
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
        let device = self.clone_for_device();
        let r = device.send(
            "POST",
            "/api/v3/provision/request",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        let (id, token, secret) = match variant {
            SigningVariant::CalaosBase => (
                v["device_id"].as_str().unwrap().to_owned(),
                v["auth_token"].as_str().unwrap().to_owned(),
                v["device_secret"].as_str().unwrap().to_owned(),
            ),
            _ => (
                v["remote_ui"]["id"].as_str().unwrap().to_owned(),
                v["remote_ui"]["auth_token"].as_str().unwrap().to_owned(),
                v["remote_ui"]["device_secret"].as_str().unwrap().to_owned(),
            ),
        };
        (id, Signer::new(&token, secret.as_bytes(), variant).unwrap())
    }
}

/// Reads one response (head, then a Content-Length body); returns bytes read past it.
fn read_reply<S: Read>(stream: &mut S) -> (Reply, Vec<u8>) {
    read_reply_to(stream, false)
}

/// [`read_reply`], for a HEAD request when `head` (no body follows the length).
fn read_reply_to<S: Read>(stream: &mut S, head: bool) -> (Reply, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let mut fields = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Response::new(&mut fields);
        if let httparse::Status::Complete(n) = parsed.parse(&buf).unwrap() {
            let status = parsed.code.unwrap();
            let headers: Vec<(String, String)> = parsed
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_owned(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let len: usize = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .map_or(0, |(_, v)| v.parse().unwrap());
            let len = if status == 101 || head { 0 } else { len };
            while buf.len() < n + len {
                let got = stream.read(&mut chunk).unwrap();
                assert!(got > 0, "connection closed inside a body");
                buf.extend_from_slice(&chunk[..got]);
            }
            let rest = buf.split_off(n + len);
            let body = buf.split_off(n);
            return (
                Reply {
                    status,
                    headers,
                    body,
                },
                rest,
            );
        }
        let got = stream.read(&mut chunk).unwrap();
        assert!(got > 0, "connection closed before a response");
        buf.extend_from_slice(&chunk[..got]);
    }
}

fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    page[at..].split('"').next().unwrap().to_owned()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A panel's signed WebSocket connection (the 101 checked), with the messages it got first.
fn connect_panel(
    client: &Client,
    signer: &Signer,
    rng: &mut ChaCha20Rng,
) -> Result<tungstenite::WebSocket<Tls>, Reply> {
    let mut stream = client.connect();
    let signed = signer.sign(unix_now(), rng);
    let mut head = String::from(
        "GET /api/v3/remote_ui/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
    );
    for (n, v) in signed.pairs(signer) {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.flush().unwrap();
    let (reply, rest) = read_reply(&mut stream);
    if reply.status != 101 {
        return Err(reply);
    }
    assert_eq!(
        reply.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    Ok(tungstenite::WebSocket::from_partially_read(
        stream,
        rest,
        Role::Client,
        None,
    ))
}

/// The next text message as JSON (pings are answered by the codec on the way).
fn next_json(ws: &mut tungstenite::WebSocket<Tls>) -> Value {
    loop {
        match ws.read().expect("a message") {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => {}
        }
    }
}

struct Running {
    gateway: serve::Gateway,
    done: std::sync::mpsc::Receiver<()>,
    dir: PathBuf,
}

impl Running {
    fn start(name: &str, config: serve::ServeConfig) -> Running {
        let dir = temp_dir(name);
        Running::start_in(dir, config)
    }

    fn start_in(dir: PathBuf, config: serve::ServeConfig) -> Running {
        let (gateway, done) = rt::run_gateway(config, dir.clone());
        Running { gateway, done, dir }
    }

    fn client(&self) -> Client {
        Client::new(self.gateway.https_addr(), &served_cert(&self.dir))
    }

    fn stop(self) -> PathBuf {
        self.gateway.shutdown();
        self.done
            .recv_timeout(Duration::from_secs(15))
            .expect("run returns after shutdown");
        self.dir
    }

    /// [`Running::stop`], then the state directory removed (the test is done with it).
    fn finish(self) {
        let _ = std::fs::remove_dir_all(self.stop());
    }
}

#[test]
fn first_start_writes_private_state_and_serves_health_setup_and_redirect() {
    let gw = Running::start("first", config());
    let url = gw
        .gateway
        .setup_url()
        .expect("a setup link before any password");
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let client = gw.client();
    let health = client.get("/health");
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["token_valid"], false);
    assert!(health.header("strict-transport-security").is_some());
    assert!(health.header("date").is_some());
    let head = client.send("HEAD", "/health", &[], b"");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        Some(health.body.len().to_string().as_str())
    );

    // The plain port answers everything with a redirect to the same path on HTTPS.
    let http = gw.gateway.http_addr().unwrap();
    let mut plain = TcpStream::connect(http).unwrap();
    plain
        .write_all(b"GET /admin?x=1 HTTP/1.1\r\nHost: gw.local:8080\r\n\r\n")
        .unwrap();
    let (redirect, _) = read_reply(&mut plain);
    assert_eq!(redirect.status, 308);
    assert_eq!(
        redirect.header("location").unwrap(),
        format!(
            "https://gw.local:{}/admin?x=1",
            gw.gateway.https_addr().port()
        )
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&gw.dir), 0o700);
        assert_eq!(mode(&gw.dir.join(serve::STATE_FILE)), 0o600);
    }
    gw.finish();
}

#[test]
fn panels_of_both_variants_get_their_ios_and_changes_flow_both_ways() {
    let gw = Running::start("panels", config());
    let mut admin = gw.client();
    admin.set_up(&gw.gateway.setup_url().unwrap());
    assert!(gw.gateway.setup_url().is_none(), "the link is spent");
    for (id, state) in [("light", "false"), ("temp", "21.5"), ("other", "x")] {
        let r = admin.admin(
            "PUT",
            &format!("/api/v3/io/{id}"),
            &format!(r#"{{"type":"light","name":"{id}","state":"{state}"}}"#),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    for (code, variant, greeting) in [
        ("DSGN01", SigningVariant::RemoteUiDesign, "remote_ui_config"),
        (
            "CALA01",
            SigningVariant::CalaosBase,
            "remote_ui_config_update",
        ),
    ] {
        let (id, signer) = admin.provision(code, variant);
        let cfg = r#"{"pages":[{"id":"1","name":"Home","widgets":[
            {"type":"button","io":"light","x":10,"y":10,"w":100,"h":50},
            {"type":"temp_display","io_id":"temp","x":"120","y":"10"}]}]}"#;
        let r = admin.admin("PUT", &format!("/api/v3/remote_ui/{id}/config"), cfg);
        assert_eq!(r.status, 200, "{}", r.text());

        let mut ws = connect_panel(&admin, &signer, &mut rng).expect("upgrade accepted");
        assert_eq!(next_json(&mut ws)["msg"], greeting);
        let states = next_json(&mut ws);
        assert_eq!(states["msg"], "remote_ui_io_states");
        let mut keys: Vec<&String> = states["data"].as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["light", "temp"], "only the referenced IOs");

        // An unreferenced IO's change is not sent; a referenced one's is.
        let r = admin.admin("POST", "/api/v3/io/other/state", r#"{"state":"y"}"#);
        assert_eq!(r.status, 200, "{}", r.text());
        let r = admin.admin(
            "POST",
            "/api/v3/io/light/state",
            &format!(r#"{{"state":"on-{code}"}}"#),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let update = next_json(&mut ws);
        assert_eq!(update["msg"], "io_state", "{update}");
        assert_eq!(update["data"]["io_id"], "light");
        assert_eq!(update["data"]["state"], format!("on-{code}"));

        // The panel sets a state; the registry shows it.
        ws.send(Message::text(format!(
            r#"{{"msg":"set_state","data":{{"io":"temp","state":"19-{code}"}}}}"#
        )))
        .unwrap();
        let ack = next_json(&mut ws);
        assert_eq!(ack["msg"], "set_state", "{ack}");
        assert_eq!(ack["data"]["success"], true, "{ack}");
        let echoed = next_json(&mut ws);
        assert_eq!(echoed["msg"], "io_state", "{echoed}");
        assert_eq!(echoed["data"]["io_id"], "temp");
        let ios = admin.get("/api/v3/io").json();
        let temp = ios
            .as_array()
            .or_else(|| ios["ios"].as_array())
            .expect("an IO list")
            .iter()
            .find(|io| io["id"] == "temp")
            .cloned()
            .unwrap();
        assert_eq!(temp["state"], format!("19-{code}"));
        ws.close(None).unwrap();
        let _ = ws.flush();

        // A replayed nonce and a forged HMAC are refused over the wire too.
        let signed = signer.sign(unix_now(), &mut rng);
        let mut extra: Vec<(&str, &str)> = signed.pairs(&signer).to_vec();
        extra.extend([
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]);
        let device = Client {
            cookie: None,
            csrf: None,
            ..admin.clone_for_device()
        };
        assert_eq!(
            device
                .send("GET", "/api/v3/remote_ui/ws", &extra, b"")
                .status,
            101
        );
        let replay = device.send("GET", "/api/v3/remote_ui/ws", &extra, b"");
        assert_eq!(replay.status, 401);
        assert_eq!(replay.json()["error"], "invalid_nonce");
        let forged_hmac = "0".repeat(64);
        let signed = signer.sign(unix_now(), &mut rng);
        let mut forged: Vec<(&str, &str)> = signed
            .pairs(&signer)
            .iter()
            .map(|&(n, v)| {
                if n == "X-Auth-HMAC" {
                    (n, forged_hmac.as_str())
                } else {
                    (n, v)
                }
            })
            .collect();
        forged.extend([
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]);
        let r = device.send("GET", "/api/v3/remote_ui/ws", &forged, b"");
        assert_eq!(r.status, 403);
        assert_eq!(r.json()["error"], "invalid_hmac");
    }
    gw.finish();
}

impl Client {
    fn clone_for_device(&self) -> Client {
        Client {
            addr: self.addr,
            tls: Arc::clone(&self.tls),
            cookie: None,
            csrf: None,
        }
    }
}

/// Writes `raw` on a fresh TLS connection and reads the answer.
fn raw_exchange(client: &Client, raw: &[u8]) -> Reply {
    let mut stream = client.connect();
    stream.write_all(raw).unwrap();
    stream.flush().unwrap();
    read_reply(&mut stream).0
}

#[test]
fn framing_faults_get_their_status_and_slow_clients_are_cut_off() {
    let mut config = config();
    config.limits.head_timeout = Duration::from_millis(400);
    config.limits.max_head = 2048;
    config.limits.max_body = 4096;
    config.max_connections_per_ip = 3;
    let gw = Running::start("framing", config);
    let client = gw.client();

    // Slowloris: a head that never ends gets 408 once its time is up.
    let mut slow = client.connect();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    slow.flush().unwrap();
    let started = std::time::Instant::now();
    let (reply, _) = read_reply(&mut slow);
    assert_eq!(reply.status, 408);
    assert!(started.elapsed() < Duration::from_secs(5));

    let big_head = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(4000)
    );
    assert_eq!(raw_exchange(&client, big_head.as_bytes()).status, 431);
    let big_body = b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n";
    assert_eq!(raw_exchange(&client, big_body).status, 413);
    let smuggle = b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(raw_exchange(&client, smuggle).status, 400);
    let no_host = b"GET /health HTTP/1.1\r\n\r\n";
    assert_eq!(raw_exchange(&client, no_host).status, 400);
    // Chunked framing that grows while the body does not: endless complete trailer lines,
    // and one-byte chunks padded with extensions, are refused once past their bounds.
    let mut trailers =
        b"POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n".to_vec();
    for _ in 0..500 {
        trailers.extend_from_slice(b"a:b\r\n");
    }
    assert_eq!(raw_exchange(&client, &trailers).status, 431);
    let mut padded =
        b"POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..20 {
        padded.extend_from_slice(format!("1;{}\r\nX\r\n", "e".repeat(600)).as_bytes());
    }
    assert_eq!(raw_exchange(&client, &padded).status, 413);

    // A chunked body and pipelined requests on one kept-alive connection.
    let mut stream = client.connect();
    stream
        .write_all(
            b"POST /api/v3/provision/request HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
              Content-Type: application/json\r\n\r\n4\r\n{\"co\r\n0\r\n\r\n\
              GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .unwrap();
    stream.flush().unwrap();
    let (first, rest) = read_reply(&mut stream);
    assert_eq!(
        first.status,
        400,
        "malformed JSON, framed correctly: {}",
        first.text()
    );
    let mut chained = std::io::Cursor::new(rest).chain(&mut stream);
    let (second, _) = read_reply(&mut chained);
    assert_eq!(second.status, 200);

    // The per-address cap: with three open, a fourth is closed before its handshake.
    let held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(gw.gateway.https_addr()).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = TcpStream::connect(gw.gateway.https_addr()).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut byte = [0u8; 1];
    let refused = matches!(extra.read(&mut byte), Ok(0) | Err(_));
    assert!(refused, "the fourth connection is closed");
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(client.get("/health").status, 200, "slots are freed");
    drop(slow);
    gw.finish();
}

#[test]
fn shutdown_closes_panels_with_1001_and_a_restart_keeps_admin_and_panels() {
    let gw = Running::start("restart", config());
    let mut admin = gw.client();
    admin.set_up(&gw.gateway.setup_url().unwrap());
    let (_, signer) = admin.provision("KEEP01", SigningVariant::CalaosBase);
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let mut ws = connect_panel(&admin, &signer, &mut rng).expect("upgrade accepted");
    let _ = next_json(&mut ws);
    let _ = next_json(&mut ws);
    gw.gateway.shutdown();
    let code = loop {
        match ws.read() {
            Ok(Message::Close(Some(frame))) => break u16::from(frame.code),
            Ok(Message::Close(None)) => break 0,
            Ok(_) => {}
            Err(e) => panic!("no close frame: {e}"),
        }
    };
    assert_eq!(code, 1001);
    let dir = Running {
        gateway: gw.gateway.clone(),
        done: gw.done,
        dir: gw.dir,
    }
    .stop();
    assert!(
        dir.join(serve::GUARD_FILE).exists(),
        "the guard's snapshot is saved"
    );

    // Same directory: same certificate, the password still works, the panel still connects.
    let cert_before = served_cert(&dir);
    let gw = Running::start_in(dir, config());
    assert!(gw.gateway.setup_url().is_none());
    assert_eq!(served_cert(&gw.dir), cert_before);
    let mut admin = gw.client();
    admin.log_in();
    assert_eq!(admin.get("/api/v3/remote_ui/list").status, 200);
    let mut ws = connect_panel(&admin, &signer, &mut rng).expect("the panel's secret survived");
    assert_eq!(next_json(&mut ws)["msg"], "remote_ui_config_update");
    drop(ws);
    gw.finish();
}

#[test]
fn an_uploaded_certificate_reaches_new_connections_while_open_ones_continue() {
    let gw = Running::start("upload", config());
    let mut admin = gw.client();
    admin.set_up(&gw.gateway.setup_url().unwrap());
    let mut old = admin.connect();
    old.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (first, _) = read_reply(&mut old);
    assert_eq!(first.status, 200);

    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());

    // Upload through the admin page's form.
    let page = admin.get("/admin/certificate");
    assert_eq!(page.status, 200, "{}", page.text());
    let csrf = hidden(&page.text(), "csrf");
    let form = format!(
        "csrf={csrf}&cert_pem={}&key_pem={}",
        urlencode(&cert_pem),
        urlencode(&key_pem)
    );
    let r = admin.send(
        "POST",
        "/admin/certificate",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/admin?msg=cert-swapped"));

    // New connections trust only the uploaded certificate now.
    let uploaded = Client::new(gw.gateway.https_addr(), cert_pem.as_bytes());
    assert_eq!(uploaded.get("/health").status, 200);
    // The connection opened before the swap still works.
    old.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (again, _) = read_reply(&mut old);
    assert_eq!(again.status, 200);
    drop(old);
    gw.finish();
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn admin_token_settings_reach_the_running_keeper() {
    use latchkey_oauth_core::http::HttpResponse;
    use latchkey_oauth_core::profile::Profile;
    use latchkey_oauth_core::response::parse_token_response;
    use latchkey_oauth_core::session::{Grant, SessionConfig};

    // A keeper holding an hour-long token; nothing here makes it refresh, so its token
    // endpoint is never called.
    let dir = temp_dir("token-settings");
    let mut profile = Profile::builtin("generic")
        .unwrap()
        .with_client_id("gateway-test");
    profile.endpoints.token = Some("https://127.0.0.1:9/token".into());
    let keeper = rt::block_on(async {
        let state = rt::state::StateDir::open(&dir.join("tokens"))
            .await
            .unwrap();
        let http = rt::http::HttpClient::new(rt::http::HttpConfig::default()).unwrap();
        let keeper =
            rt::keeper::TokenKeeper::open(profile.clone(), SessionConfig::default(), state, http)
                .await
                .unwrap();
        let resp = HttpResponse::new(
            200,
            r#"{"access_token":"at","expires_in":3600,"refresh_token":"rt"}"#,
        );
        let tokens = parse_token_response(&resp, unix_now(), &profile.response).unwrap();
        keeper.login(tokens, Grant::RefreshToken).await.unwrap();
        keeper
    });
    let exp = keeper.status().access_expires_at.unwrap();
    let mut settings = config();
    settings.token = Some(keeper.clone());
    let gw = Running::start_in(dir, settings);

    // At start the keeper follows the settings the admin page shows (U-tec's defaults: on,
    // 5 minutes ahead; the jitter adds at most a quarter of the margin).
    let next = keeper
        .status()
        .next_action_at
        .expect("a refresh is scheduled");
    assert!(
        (exp - 300 - 75..=exp - 300).contains(&next),
        "refresh at {next}, expiry {exp}"
    );
    let mut client = gw.client();
    client.set_up(&gw.gateway.setup_url().unwrap());
    client.fetch_csrf();

    let r = client.admin("POST", "/api/config", r#"{"refresh_buffer_minutes":20}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let next = keeper
        .status()
        .next_action_at
        .expect("a refresh is scheduled");
    assert!(
        (exp - 1200 - 300..=exp - 1200).contains(&next),
        "20 min ahead: refresh at {next}, expiry {exp}"
    );
    let page = client.get("/admin").text();
    assert!(page.contains("Next refresh"), "{page}");
    assert!(page.contains("20 min before expiry"), "{page}");

    let r = client.admin("POST", "/api/config", r#"{"auto_refresh_enabled":false}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        keeper.status().next_action_at,
        None,
        "auto refresh off: nothing scheduled"
    );
    assert!(client.get("/admin").text().contains("none scheduled"));
    let health = client.get("/health").json();
    assert_eq!(health["auto_refresh_enabled"], false);
    assert_eq!(health["token_valid"], true);

    // A restart keeps the settings, and the new keeper gets them at start.
    let dir = gw.stop();
    let mut settings = config();
    settings.token = Some(keeper.clone());
    keeper.set_refresh_policy(true, Default::default());
    let gw = Running::start_in(dir, settings);
    assert_eq!(
        keeper.status().next_action_at,
        None,
        "still off after a restart"
    );
    gw.finish();
}

/// POSTs the login form on a new kept-alive connection and returns the connection without
/// reading the answer (the password is being hashed when this returns).
fn post_login_keep_alive(admin: &Client) -> Tls {
    let page = admin.get("/login");
    let csrf = hidden(&page.text(), "csrf");
    let pre = page.cookie("__Host-lk_pre").unwrap();
    let body = format!("user=admin&password={PASSWORD}&csrf={csrf}");
    let mut stream = admin.connect();
    let head = format!(
        "POST /login HTTP/1.1\r\nHost: localhost\r\nCookie: __Host-lk_pre={pre}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.flush().unwrap();
    stream
}

/// Whether the server closed `stream` (end of stream or a reset, not a read timeout).
fn closed_by_server(stream: &mut Tls) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn a_request_in_flight_at_shutdown_is_answered_with_connection_close_and_run_returns_at_once() {
    let mut config = config();
    // A slow hash, so the shutdown surely begins while the login runs.
    config.app.argon2 = latchkey_protocol::guard::Argon2Params {
        m_kib: 32 * 1024,
        t: 3,
        p: 1,
    };
    config.shutdown_grace = Duration::from_secs(6);
    let gw = Running::start("shutdown-in-flight", config);
    let mut admin = gw.client();
    admin.set_up(&gw.gateway.setup_url().unwrap());
    let mut stream = post_login_keep_alive(&admin);
    std::thread::sleep(Duration::from_millis(20));
    let t = std::time::Instant::now();
    gw.gateway.shutdown();
    let (reply, _) = read_reply(&mut stream);
    assert_eq!(reply.status, 303, "{}", reply.text());
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(closed_by_server(&mut stream), "the connection stays open");
    gw.done
        .recv_timeout(Duration::from_secs(15))
        .expect("run returns");
    // Nothing was left to wait for: well within the 6-s grace.
    let stopped = t.elapsed();
    assert!(
        stopped < Duration::from_secs(3),
        "run returned after {stopped:?}"
    );
    let _ = std::fs::remove_dir_all(&gw.dir);
}

#[test]
fn a_request_still_unfinished_when_the_grace_ends_is_cut_and_nothing_hangs() {
    let mut config = config();
    config.shutdown_grace = Duration::from_millis(500);
    let gw = Running::start("shutdown-cut", config);
    let client = gw.client();
    let url = gw.gateway.setup_url().unwrap();
    let path = &url[url.find("/setup").unwrap()..];
    let page = client.get(path);
    let pre = page.cookie("__Host-lk_pre").unwrap();
    let csrf = hidden(&page.text(), "csrf");
    let token = path.split("token=").nth(1).unwrap();
    let body = format!("token={token}&csrf={csrf}&password={PASSWORD}&confirm={PASSWORD}");
    let mut stream = client.connect();
    let head = format!(
        "POST /setup HTTP/1.1\r\nHost: localhost\r\nCookie: __Host-lk_pre={pre}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // The body comes slowly (within its 30-s limit): the request is still open at the end
    // of the grace.
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body.as_bytes()[..5]).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    gw.gateway.shutdown();
    gw.done
        .recv_timeout(Duration::from_secs(5))
        .expect("run returns after the grace");
    // The runtime goes on (an application's would): the connection was cut, not left
    // waiting for a state write that no longer comes.
    let _ = stream
        .write_all(&body.as_bytes()[5..])
        .and_then(|()| stream.flush());
    stream
        .sock
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(closed_by_server(&mut stream), "the request hangs");
    // Nobody was told the password was set, and it is not on disk either.
    let saved = std::fs::read_to_string(gw.dir.join(serve::STATE_FILE)).unwrap();
    let state: Value = serde_json::from_str(&saved).unwrap();
    assert!(state["admin"].is_null(), "{saved}");
    let _ = std::fs::remove_dir_all(&gw.dir);
}

#[test]
fn an_application_running_the_renewer_itself_does_not_stop_the_gateway() {
    let dir = temp_dir("renewer-elsewhere");
    let (gateway, done) = rt::run_gateway_with(config(), dir.clone(), true);
    std::thread::sleep(Duration::from_millis(500));
    assert!(done.try_recv().is_err(), "run returned without a shutdown");
    let client = Client::new(gateway.https_addr(), &served_cert(&dir));
    assert_eq!(client.get("/health").status, 200);
    gateway.shutdown();
    done.recv_timeout(Duration::from_secs(15))
        .expect("run returns after shutdown");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_burst_of_changes_to_one_io_never_closes_a_panel_that_keeps_reading_and_the_last_arrives() {
    let gw = Running::start("burst", config());
    let mut admin = gw.client();
    admin.set_up(&gw.gateway.setup_url().unwrap());
    let r = admin.admin(
        "PUT",
        "/api/v3/io/light",
        r#"{"type":"light","name":"light","state":"0"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let cfg = r#"{"pages":[{"id":"1","name":"Home","widgets":[{"type":"button","io":"light","x":1,"y":1,"w":10,"h":10}]}]}"#;
    let mut rng = ChaCha20Rng::from_seed([5; 32]);
    let mut panels = Vec::new();
    for code in ["BRST01", "BRST02"] {
        let (id, signer) = admin.provision(code, SigningVariant::RemoteUiDesign);
        let r = admin.admin("PUT", &format!("/api/v3/remote_ui/{id}/config"), cfg);
        assert_eq!(r.status, 200, "{}", r.text());
        let mut ws = connect_panel(&admin, &signer, &mut rng).expect("upgrade");
        let _ = next_json(&mut ws);
        let _ = next_json(&mut ws);
        panels.push(ws);
    }
    let mut b = panels.pop().unwrap();
    let mut a = panels.pop().unwrap();
    const N: usize = 2 * serve::MAX_QUEUED;
    // B reads on its own thread until it sees the last state.
    let reader = std::thread::spawn(move || {
        let last = (N - 1).to_string();
        let mut n = 0;
        loop {
            match b.read() {
                Ok(Message::Text(t)) => {
                    n += 1;
                    let v: Value = serde_json::from_str(t.as_str()).unwrap();
                    if v["msg"] == "io_state" && v["data"]["state"] == last.as_str() {
                        return Ok(n);
                    }
                }
                Ok(Message::Close(f)) => return Err(format!("closed: {f:?}")),
                Ok(_) => {}
                Err(e) => return Err(format!("error: {e}")),
            }
        }
    });
    for i in 0..N {
        a.write(Message::text(format!(
            r#"{{"msg":"set_state","data":{{"io":"light","state":"{i}"}}}}"#
        )))
        .unwrap();
    }
    a.flush().unwrap();
    let received = reader.join().unwrap().expect("B reads the last state");
    // Superseded states were dropped while B's task waited to run, never more than sent.
    assert!((1..=N).contains(&received), "{received}");
    drop(a);
    gw.finish();
}

#[test]
fn other_requests_are_answered_while_a_password_is_being_hashed() {
    let mut config = config();
    // A hash that takes a good while (hundreds of milliseconds), for a clear order.
    config.app.argon2 = latchkey_protocol::guard::Argon2Params {
        m_kib: 128 * 1024,
        t: 4,
        p: 1,
    };
    let gw = Running::start("hash-apart", config);
    let mut admin = gw.client();
    admin.set_up(&gw.gateway.setup_url().unwrap());
    let mut login = post_login_keep_alive(&admin);
    let answered = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let answered = Arc::clone(&answered);
        std::thread::spawn(move || {
            let (reply, _) = read_reply(&mut login);
            answered.store(true, std::sync::atomic::Ordering::SeqCst);
            reply
        })
    };
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(admin.get("/health").status, 200);
    // `/health` was answered while the login's hash still ran.
    assert!(
        !answered.load(std::sync::atomic::Ordering::SeqCst),
        "/health waited for the login's password hash"
    );
    let reply = reader.join().unwrap();
    assert_eq!(reply.status, 303, "{}", reply.text());
    gw.finish();
}

#[test]
fn a_provisioning_answered_500_for_a_failed_state_write_can_be_retried() {
    let gw = Running::start("provision-undo", config());
    let mut admin = gw.client();
    admin.set_up(&gw.gateway.setup_url().unwrap());
    let r = admin.admin(
        "POST",
        "/api/v3/remote_ui",
        r#"{"name":"Hall","provisioning_code":"UNDO01"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    // The state file cannot be replaced: a directory that is not empty stands in its way.
    let state = gw.dir.join(serve::STATE_FILE);
    std::fs::remove_file(&state).unwrap();
    std::fs::create_dir(&state).unwrap();
    std::fs::write(state.join("in-the-way"), b"x").unwrap();
    let device = admin.clone_for_device();
    let provision = || {
        device.send(
            "POST",
            "/api/v3/provision/request",
            &[("Content-Type", "application/json")],
            br#"{"provisioning_code":"UNDO01","device_info":{"type":"esp32_touch_panel"}}"#,
        )
    };
    let r = provision();
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.text().contains("could not be saved"), "{}", r.text());
    // The disk is writable again; the device retries with its code.
    std::fs::remove_dir_all(&state).unwrap();
    let r = provision();
    assert_eq!(r.status, 200, "{}", r.text());
    let token = r.json()["remote_ui"]["auth_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = gw.stop();
    let saved = std::fs::read_to_string(dir.join(serve::STATE_FILE)).unwrap();
    assert!(
        saved.contains(&token),
        "the credentials answered are on disk"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_certificate_from_a_local_ca_uploaded_with_its_ca_is_installed_and_served() {
    let gw = Running::start("upload-ca", config());
    let mut admin = gw.client();
    admin.set_up(&gw.gateway.setup_url().unwrap());
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "home CA");
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    let page = admin.get("/admin/certificate");
    assert_eq!(page.status, 200, "{}", page.text());
    let csrf = hidden(&page.text(), "csrf");
    let form = format!(
        "csrf={csrf}&cert_pem={}&key_pem={}&roots_pem={}",
        urlencode(&cert.pem()),
        urlencode(&key.serialize_pem()),
        urlencode(&ca.pem())
    );
    let r = admin.send(
        "POST",
        "/admin/certificate",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    // New connections get it: a client that trusts only the local CA is served.
    let trusting_ca = Client::new(gw.gateway.https_addr(), ca.pem().as_bytes());
    assert_eq!(trusting_ca.get("/health").status, 200);
    gw.finish();
}
