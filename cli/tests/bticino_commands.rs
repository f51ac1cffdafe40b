//! `latchkey bticino open | light | listen` with the registration `bticino setup` saves,
//! against the stand-in mutual-TLS registrar of the runtime tests
//! (`runtime-tokio/tests/shared/sip_peer.rs`): locks chosen by name or id, an unknown lock
//! named with the known ones, the MESSAGE bodies checked at the server, and `listen`
//! un-REGISTERing on SIGTERM.

#[path = "../../runtime-tokio/tests/shared/sip_peer.rs"]
mod peer;

mod rt {
    pub(crate) use latchkey_tokio::tls;
}

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use peer::{Peer, Seen, pki};
use serde_json::{Value, json};

fn latchkey(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run latchkey")
}

/// A state directory holding what `bticino setup` saves, with two locks. The account's
/// domain is 127.0.0.1, so the gateway's address is sip:c100x@127.0.0.1.
fn state(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "latchkey-bticino-cli-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("dir");
    std::fs::write(
        d.join("bticino-c100x-registration.json"),
        json!({
            "version": 1, "client_id": "123456789012345678901", "client_name": "latchkey",
            "user_oid": "u", "plant": null, "gateway_id": "gw",
            "locks": [["lock-1", "Gate"], ["lock-2", "Garage door"]],
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
    d
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn message_to_gateway(peer: &Peer) -> String {
    let seen = peer.seen();
    seen.iter()
        .find_map(|x| match x {
            Seen::Message { target, body } if target == "sip:c100x@127.0.0.1" => Some(body.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no MESSAGE to the gateway: {seen:?}"))
}

#[test]
fn open_by_lock_name_sends_lock_set_status_for_that_module() {
    let peer = Peer::start(600);
    let d = state("open-name");
    let server = format!("127.0.0.1:{}", peer.addr.port());
    let out = latchkey(&[
        "bticino",
        "open",
        "--state-dir",
        &s(&d),
        "--server",
        &server,
        "--lock",
        "garage DOOR",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let line: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(line, json!({"outcome": "delivered", "status": 200}));
    let body: Value = serde_json::from_str(&message_to_gateway(&peer)).expect("JSON-RPC body");
    assert_eq!(body["method"], "lock.setStatus");
    assert_eq!(body["params"][0]["status"], "open");
    assert_eq!(
        body["params"][0]["receiver"]["plant"]["coal"]["id"],
        "lock-2"
    );
    assert!(!stderr.contains("secret"), "{stderr}");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn open_by_lock_id_works_and_unknown_or_ambiguous_locks_are_refused_with_the_list() {
    let peer = Peer::start(600);
    let d = state("open-id");
    let server = format!("127.0.0.1:{}", peer.addr.port());
    let out = latchkey(&[
        "bticino",
        "open",
        "--state-dir",
        &s(&d),
        "--server",
        &server,
        "--lock",
        "lock-1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(message_to_gateway(&peer).contains(r#""id":"lock-1""#));

    let out = latchkey(&["bticino", "open", "--state-dir", &s(&d), "--lock", "Front"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#"no lock named or numbered "Front""#)
            && stderr.contains("Gate (lock-1), Garage door (lock-2)"),
        "{stderr}"
    );
    let out = latchkey(&["bticino", "open", "--state-dir", &s(&d)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("choose one with --lock"));

    let missing = d.join("nothing-here");
    let out = latchkey(&["bticino", "open", "--state-dir", &s(&missing)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("run `latchkey bticino setup"));
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn light_sends_light_set_status_on_with_the_content_type_asked() {
    let peer = Peer::start(600);
    let d = state("light");
    let server = format!("127.0.0.1:{}", peer.addr.port());
    let out = latchkey(&[
        "bticino",
        "light",
        "--state-dir",
        &s(&d),
        "--server",
        &server,
        "--light",
        "stairs-7",
        "--content-type",
        "application/json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: Value = serde_json::from_str(&message_to_gateway(&peer)).expect("JSON-RPC body");
    assert_eq!(body["method"], "light.setStatus");
    assert_eq!(body["params"][0]["status"], "on");
    assert_eq!(
        body["params"][0]["receiver"]["plant"]["coal"]["id"],
        "stairs-7"
    );
    let _ = std::fs::remove_dir_all(d);
}

#[cfg(unix)]
#[test]
fn listen_prints_a_ring_and_unregisters_on_sigterm() {
    let peer = Peer::start(600);
    let d = state("listen");
    let server = format!("127.0.0.1:{}", peer.addr.port());
    let child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args([
            "bticino",
            "listen",
            "--state-dir",
            &s(&d),
            "--server",
            &server,
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
    peer.ring("bticino-ring");
    assert!(
        peer.wait_for(Duration::from_secs(10), |s| s
            .contains(&Seen::Response(486))),
        "the ring was not answered 486"
    );
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let out = child.wait_with_output().expect("output");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kinds: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|e| e["event"].as_str().map(str::to_owned))
        .collect();
    assert!(kinds.iter().any(|k| k == "doorbell"), "{kinds:?}");
    // No OAuth session in this state directory: listening works, renewal says it is off.
    assert!(kinds.iter().any(|k| k == "renewal_off"), "{kinds:?}");
    assert!(
        peer.seen().contains(&Seen::Register {
            expires: 0,
            cn: "panel-1".into()
        }),
        "SIGTERM un-REGISTERs first"
    );
    let _ = std::fs::remove_dir_all(d);
}
