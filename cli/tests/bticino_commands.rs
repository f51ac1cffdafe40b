//! `latchkey bticino open | light | listen` with the registration `bticino setup` saves,
//! against the stand-in mutual-TLS registrar of the runtime tests
//! (`runtime-tokio/tests/shared/sip_peer.rs`): locks chosen by name or id, an unknown lock
//! named with the known ones, the MESSAGE bodies checked at the server, and `listen`
//! un-REGISTERing on SIGTERM.

mod common;
use common::{assert_exit, latchkey, s};

#[path = "shared/legrand.rs"]
mod legrand;
#[path = "../../runtime-tokio/tests/shared/sip_peer.rs"]
mod peer;
#[path = "../../runtime-tokio/tests/shared/support.rs"]
mod support;

mod rt {
    pub(crate) use latchkey_tokio::tls;
}

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use peer::{Peer, Seen, pki};
use serde_json::{Value, json};

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
    assert_exit(&out, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#"no lock named or numbered "Front""#)
            && stderr.contains("Gate (lock-1), Garage door (lock-2)"),
        "{stderr}"
    );
    let out = latchkey(&["bticino", "open", "--state-dir", &s(&d)]);
    assert_exit(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("choose one with --lock"));

    let missing = d.join("nothing-here");
    let out = latchkey(&["bticino", "open", "--state-dir", &s(&missing)]);
    assert_exit(&out, 2);
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
    // `open` while `listen` runs goes over the listener's registered connection (no
    // --server given: a one-shot connection would try the real service and fail).
    let out = latchkey(&["bticino", "open", "--state-dir", &s(&d), "--lock", "gate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(line, json!({"outcome": "delivered", "status": 200}));
    assert!(message_to_gateway(&peer).contains(r#""id":"lock-1""#));
    let connections = peer
        .seen()
        .iter()
        .filter(|x| matches!(x, Seen::Connected(_)))
        .count();
    assert_eq!(connections, 1, "no second connection was made");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let sock = d.join("bticino-c100x-listen.sock");
        let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
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
    assert!(
        !d.join("bticino-c100x-listen.sock").exists(),
        "the control socket is removed"
    );
    let _ = std::fs::remove_dir_all(d);
}

/// A raw P-256 public key from a CSR, for rcgen.
struct CsrKey(Vec<u8>);

impl rcgen::PublicKeyData for CsrKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

/// A client certificate from the registrar's CA, issued `age` days ago, valid for `days`
/// more.
fn client_cert(cn: &str, key: &impl rcgen::PublicKeyData, age: u64, days: u64) -> String {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + Duration::from_secs(now - 60 - age * 86_400);
    params.not_after = epoch + Duration::from_secs(now + days * 86_400);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    params.signed_by(key, &pki().ca).unwrap().pem()
}

#[test]
fn listen_renews_a_certificate_near_its_end_through_legrand_and_registers_with_the_new_one() {
    use base64::Engine as _;
    use x509_cert::der::Decode as _;
    let peer = Peer::start(600);
    let d = state("renew");
    // The saved 90-day certificate has 10 days left: the BTicino rule (30 days ahead) renews
    // at once.
    let old_key = rcgen::KeyPair::generate().unwrap();
    let reg_path = d.join("bticino-c100x-registration.json");
    let mut reg: Value = serde_json::from_slice(&std::fs::read(&reg_path).unwrap()).unwrap();
    reg["certificate_pem"] = json!(client_cert("panel-old", &old_key, 80, 10));
    reg["plant"] = json!({"id": "p-1", "name": "Home", "country": "IT", "kind": "residential",
                          "owner_id": "oid-9", "owner_email": "owner@example.com"});
    std::fs::write(&reg_path, reg.to_string()).unwrap();
    std::fs::write(
        d.join("bticino-c100x-client-key.pem"),
        old_key.serialize_pem(),
    )
    .unwrap();

    // The stand-in Legrand certificate endpoint signs whatever key the CSR carries; with the
    // C100X app's credentials the call carries an application token from its token endpoint.
    let csrs = std::sync::Arc::new(std::sync::Mutex::new(0usize));
    let seen = csrs.clone();
    let auth = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let auth_seen = auth.clone();
    let api = support::Server::tls(move |req: &support::Received, out| {
        let path = req.target.split('?').next().unwrap_or_default().to_owned();
        let body = if req.method == "POST" && path == legrand::APP_TOKEN_PATH {
            let form = String::from_utf8_lossy(&req.body).into_owned();
            assert!(
                form.contains(&format!("client_secret={}", legrand::APP_SECRET)),
                "{form}"
            );
            (
                "200 OK",
                json!({"access_token": "renew-app-at", "token_type": "Bearer", "expires_in": 3599})
                    .to_string(),
            )
        } else if req.method == "POST" && path == "/certificate/api/v1.0/ca/information/clientCerts"
        {
            *auth_seen.lock().unwrap() = req.header("authorization").map(str::to_owned);
            {
                *seen.lock().unwrap() += 1;
                let v: Value = serde_json::from_slice(&req.body).unwrap();
                let der = base64::engine::general_purpose::STANDARD
                    .decode(v["csr"].as_str().unwrap())
                    .unwrap();
                let csr = x509_cert::request::CertReq::from_der(&der).unwrap();
                let key = CsrKey(csr.info.public_key.subject_public_key.raw_bytes().to_vec());
                let pem = client_cert("panel-renewed", &key, 0, 90);
                let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
                (
                    "201 Created",
                    json!({"cert": b64, "receiver": {}}).to_string(),
                )
            }
        } else {
            ("404 Not Found", "{}".to_owned())
        };
        let _ = std::io::Write::write_fmt(
            out,
            format_args!(
                "HTTP/1.1 {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                body.0,
                body.1.len(),
                body.1
            ),
        );
        Ok(support::Ending::Clean)
    });
    let files = legrand::prepare(&d, &d, &legrand::c100x_profile_with_app(api.port()));
    let app_secret = d.join("app-secret");
    std::fs::write(&app_secret, legrand::APP_SECRET).unwrap();
    let (sd, p) = (s(&d), s(&files.profile));

    let server = format!("127.0.0.1:{}", peer.addr.port());
    let out = latchkey(&[
        "bticino",
        "listen",
        "--state-dir",
        &sd,
        "--server",
        &server,
        "--profile-file",
        &p,
        "--ca-file",
        &s(&files.api_ca),
        "--duration",
        "6",
        "--app-secret-file",
        &s(&app_secret),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("certificate renewed"), "{stdout}");
    assert_eq!(*csrs.lock().unwrap(), 1, "one certificate was issued");
    assert_eq!(
        auth.lock().unwrap().as_deref(),
        Some("Bearer renew-app-at"),
        "the renewal asks as the C100X app does"
    );
    let seen = peer.seen();
    let registered_as = |cn: &str| {
        seen.iter()
            .any(|x| matches!(x, Seen::Register { expires, cn: c } if *expires > 0 && c == cn))
    };
    assert!(registered_as("panel-old"), "{seen:?}");
    assert!(
        registered_as("panel-renewed"),
        "re-registered with the new certificate: {seen:?}"
    );
    // Persisted: the renewer's record and the new pair beside the registration.
    assert!(d.join("bticino-c100x-sip-client.json").exists());
    let _ = std::fs::remove_dir_all(d);
}
