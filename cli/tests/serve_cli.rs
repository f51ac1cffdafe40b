//! `latchkey serve` as a process, on tokio and on smol: the embedded defaults' shape (a
//! state directory with a certificate, a setup link), `/health` over HTTPS showing the
//! token session of `--token-provider`, and SIGTERM ending it with `stopped`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

fn https_get(addr: &str, cert_pem: &[u8], path: &str) -> (u16, Value) {
    let mut roots = rustls::RootCertStore::empty();
    for cert in latchkey_pki::pem::parse_certificates(cert_pem).unwrap() {
        roots.add(cert).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let conn = rustls::ClientConnection::new(
        Arc::new(config),
        rustls::pki_types::ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn serves_health_with_the_token_session_and_stops_on_sigterm(runtime: &str) {
    let dir = std::env::temp_dir().join(format!(
        "latchkey-serve-cli-{runtime}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let state = dir.join("state");
    std::fs::create_dir_all(&dir).unwrap();
    // A token session to show: a BTicino token cache valid for an hour.
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let cache = dir.join("cache.json");
    std::fs::write(
        &cache,
        json!({"b2cAccessToken": "eyJhbGciOiJub25lIn0.e30.sig", "b2cRefreshToken": "rt",
               "expiresIn": 3600, "receivedAt": "2026-01-01T00:00:00Z", "expiresAtMs": exp * 1000})
        .to_string(),
    )
    .unwrap();
    let s = state.to_str().unwrap();
    let import = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args([
            "token",
            "import",
            "--provider",
            "bticino-c100x",
            "--from",
            cache.to_str().unwrap(),
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
            "serve",
            "--runtime",
            runtime,
            "--state-dir",
            s,
            "--listen",
            "127.0.0.1:0",
            "--no-http",
            "--threads",
            "2",
            "--token-provider",
            "bticino-c100x",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut https = None;
    let mut setup = None;
    while https.is_none() || setup.is_none() {
        let line = lines.next().expect("serve ended early").unwrap();
        let v: Value = serde_json::from_str(&line).expect("one JSON object per line");
        match v["event"].as_str() {
            Some("listening") => https = v["https"].as_str().map(str::to_owned),
            Some("setup_link") => setup = v["url"].as_str().map(str::to_owned),
            _ => {}
        }
    }
    let https = https.unwrap();
    assert!(setup.unwrap().contains("/setup?token="));
    let cert = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".cert.pem"))
        .expect("a certificate in the state directory");
    let (status, health) = https_get(&https, &std::fs::read(cert).unwrap(), "/health");
    assert_eq!(status, 200);
    assert_eq!(health["token_valid"], true, "{health}");
    assert_eq!(health["health"], "healthy", "{health}");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(
        rest.iter().any(|l| l.contains(r#""event":"stopped""#)),
        "{rest:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(unix)]
#[test]
fn tokio_serves_health_with_the_token_session_and_stops_on_sigterm() {
    serves_health_with_the_token_session_and_stops_on_sigterm("tokio");
}

#[cfg(unix)]
#[test]
fn smol_serves_health_with_the_token_session_and_stops_on_sigterm() {
    serves_health_with_the_token_session_and_stops_on_sigterm("smol");
}

#[test]
fn a_port_already_taken_is_exit_2_naming_the_address() {
    // Could not start: exit 2, as every command that cannot run (it was 1 here only).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = std::env::temp_dir().join(format!("latchkey-serve-busy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .arg("serve")
        .arg("--state-dir")
        .arg(&dir)
        .args(["--listen", &addr, "--http-listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .output()
        .expect("run latchkey");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&addr), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
