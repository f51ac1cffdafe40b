//! `latchkey sip open-gate | message | listen` against the stand-in mutual-TLS registrar of
//! the runtime tests (`runtime-tokio/tests/shared/sip_peer.rs`): the BTicino Node.js client's
//! files and latchkey's own registration file are both accepted; exit 0 on a 2xx, 1 with
//! the SIP status and reason otherwise; `listen` prints one JSON line per event and
//! un-REGISTERs when it stops.

mod common;
use common::{assert_exit, latchkey, s, scratch};

#[path = "../../runtime-tokio/tests/shared/sip_peer.rs"]
mod peer;

mod rt {
    pub(crate) use latchkey_tokio::tls;
}

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use peer::{Peer, Seen, pki};
use serde_json::{Value, json};

/// The Node.js client's files: sip_account.json, client-certs.json, and the CA.
fn nodejs_files(d: &Path) -> (String, String, String) {
    let account = d.join("sip_account.json");
    std::fs::write(
        &account,
        json!({"storedAt": "2026-01-01T00:00:00Z", "payload": {
            "sipUri": "panel@127.0.0.1", "username": "panel", "sipPassword": "secret"}})
        .to_string(),
    )
    .expect("write");
    let certs = d.join("client-certs.json");
    std::fs::write(
        &certs,
        json!({"cert": pki().panel1.cert_pem, "key": pki().panel1.key_pem}).to_string(),
    )
    .expect("write");
    let ca = d.join("ca.pem");
    std::fs::write(&ca, &pki().ca_pem).expect("write");
    (s(&account), s(&certs), s(&ca))
}

#[test]
fn open_gate_with_the_nodejs_clients_files_exits_0_and_sends_the_lock_command() {
    let peer = Peer::start(600);
    let d = scratch("sip-gate");
    let (account, certs, ca) = nodejs_files(&d);
    let server = format!("127.0.0.1:{}", peer.addr.port());
    let out = latchkey(&[
        "sip",
        "open-gate",
        "--account",
        &account,
        "--cert",
        &certs,
        "--ca",
        &ca,
        "--server",
        &server,
        "--lock",
        "lock-42",
        "--gate-uri",
        "sip:gate@127.0.0.1",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let line: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(line, json!({"outcome": "delivered", "status": 200}));
    let seen = peer.seen();
    let body = seen
        .iter()
        .find_map(|x| match x {
            Seen::Message { target, body } if target == "sip:gate@127.0.0.1" => Some(body.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{seen:?}"));
    assert!(
        body.contains(r#""method":"lock.setStatus""#) && body.contains("lock-42"),
        "{body}"
    );
    assert!(
        !stderr.contains("secret"),
        "the password is never printed: {stderr}"
    );
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_rejected_message_exits_1_naming_the_status_and_reason() {
    let peer = Peer::start(600);
    peer.set_message_status(486);
    let d = scratch("sip-reject");
    let (account, certs, ca) = nodejs_files(&d);
    let server = format!("127.0.0.1:{}", peer.addr.port());
    let out = latchkey(&[
        "sip",
        "message",
        "--account",
        &account,
        "--cert",
        &certs,
        "--ca",
        &ca,
        "--server",
        &server,
        "--to",
        "sip:someone@127.0.0.1",
        "--content-type",
        "application/json",
        "--body",
        "{}",
    ]);
    assert_exit(&out, 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SIP 486 Nope"), "{stderr}");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn an_untrusted_server_is_a_tls_error_and_exit_1() {
    let peer = Peer::start(600);
    let d = scratch("sip-untrusted");
    let (account, certs, _) = nodejs_files(&d);
    let other = d.join("other.pem");
    std::fs::write(&other, &pki().other_ca_pem).expect("write");
    let server = format!("127.0.0.1:{}", peer.addr.port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args([
            "sip",
            "message",
            "--account",
            &account,
            "--cert",
            &certs,
            "--ca",
            &s(&other),
            "--server",
            &server,
            "--to",
            "sip:x@127.0.0.1",
            "--body",
            "x",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // The command waits for the queue limit (20 s) before it gives up: bounded, not hung.
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        assert!(start.elapsed() < Duration::from_secs(40), "did not end");
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().expect("output");
    assert_eq!(status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn listen_with_latchkeys_registration_prints_json_lines_and_unregisters() {
    let peer = Peer::start(600);
    let d = scratch("sip-listen");
    let reg = d.join("bticino-c100x-registration.json");
    std::fs::write(
        &reg,
        json!({
            "version": 1, "client_id": "123456789012345678901", "client_name": "latchkey",
            "user_oid": "u", "plant": null, "gateway_id": "gw", "locks": [["lock-1", "Gate"]],
            "account": {"sip_id": "1", "sip_uri": "panel@127.0.0.1", "username": "panel",
                        "password": "secret"},
            "key_stored": true, "certificate_pem": pki().panel1.cert_pem,
            "ca_chain_pem": pki().ca_pem,
        })
        .to_string(),
    )
    .expect("write");
    std::fs::write(
        d.join("bticino-c100x-client-key.pem"),
        &pki().panel1.key_pem,
    )
    .expect("key");
    let server = format!("127.0.0.1:{}", peer.addr.port());
    let child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args([
            "sip",
            "listen",
            "--account",
            &s(&reg),
            "--server",
            &server,
            "--duration",
            "4",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    assert!(
        peer.wait_for(Duration::from_secs(10), |s| s
            .iter()
            .any(|x| matches!(x, Seen::Register { .. }))),
        "no REGISTER"
    );
    // From the gateway's user at the account's domain: an allowed caller.
    peer.ring("cli-ring");
    let out = child.wait_with_output().expect("output");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"connected"), "{kinds:?}");
    assert!(kinds.contains(&"registered"), "{kinds:?}");
    assert_eq!(
        kinds.iter().filter(|k| **k == "doorbell").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(kinds.last(), Some(&"closed"), "{kinds:?}");
    let ring = events
        .iter()
        .find(|e| e["event"] == "doorbell")
        .expect("ring");
    assert_eq!(ring["from"], "sip:c100x@127.0.0.1");
    assert!(peer.seen().contains(&Seen::Register {
        expires: 0,
        cn: "panel-1".into()
    }));
    let _ = std::fs::remove_dir_all(d);
}

/// `listen --duration S` stopped early by SIGTERM (Ctrl-C, `systemctl stop`, a test harness)
/// still un-REGISTERs, as `listen` without --duration does (with a duration only the timer
/// was watched: the process died on the spot and the binding stayed on the server until it
/// expired).
#[test]
fn listen_with_a_duration_still_unregisters_on_sigterm() {
    let peer = Peer::start(600);
    let d = scratch("sip-listen-term");
    let (account, certs, ca) = nodejs_files(&d);
    let server = format!("127.0.0.1:{}", peer.addr.port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args([
            "sip",
            "listen",
            "--account",
            &account,
            "--cert",
            &certs,
            "--ca",
            &ca,
            "--server",
            &server,
            "--duration",
            "120",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let registered = peer.wait_for(Duration::from_secs(10), |s| {
        s.iter().any(|x| matches!(x, Seen::Register { .. }))
    });
    if !registered {
        let _ = child.kill();
        panic!("no REGISTER");
    }
    // Let the 200 OK arrive before the signal.
    std::thread::sleep(Duration::from_millis(500));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let out = child.wait_with_output().expect("output");
    assert!(
        out.status.success(),
        "SIGTERM must stop `listen --duration` gracefully: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        peer.wait_for(Duration::from_secs(5), |s| s.contains(&Seen::Register {
            expires: 0,
            cn: "panel-1".into()
        })),
        "SIGTERM un-REGISTERs first: {:?}",
        peer.seen()
    );
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn an_oversized_account_file_is_refused_by_size_not_read_whole() {
    // The SIP commands read their files with the same 4 MiB bound as the rest of the CLI
    // (they read anything whole).
    let d = scratch("sip-big-account");
    let big = d.join("account.json");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(5 * 1024 * 1024).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["sip", "open-gate", "--account"])
        .arg(&big)
        .args(["--cert", "x", "--ca", "y", "--server", "127.0.0.1:9"])
        .stdin(Stdio::null())
        .output()
        .expect("run latchkey");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("larger than"), "{stderr}");
    let _ = std::fs::remove_dir_all(d);
}
