//! `latchkey bticino open | light | listen` with the registration `bticino setup` saves,
//! against the stand-in mutual-TLS registrar of the runtime tests
//! (`runtime-tokio/tests/shared/sip_peer.rs`): locks chosen by name or id, an unknown lock
//! named with the known ones, the MESSAGE bodies checked at the server, `listen`
//! un-REGISTERing on SIGTERM, and one-shot `open`/`light` presenting the newer of the
//! registration's certificate and the renewal `listen` stored.

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

/// The stand-in Legrand certificate endpoint's answer to a request `body` (`{"csr": …}`):
/// a 90-day client certificate named `cn` for the CSR's key, from the registrar's CA.
fn certificate_for_csr(body: &[u8], cn: &str) -> String {
    use base64::Engine as _;
    use x509_cert::der::Decode as _;
    let v: Value = serde_json::from_slice(body).unwrap();
    let der = base64::engine::general_purpose::STANDARD
        .decode(v["csr"].as_str().unwrap())
        .unwrap();
    let csr = x509_cert::request::CertReq::from_der(&der).unwrap();
    let key = CsrKey(csr.info.public_key.subject_public_key.raw_bytes().to_vec());
    let pem = client_cert(cn, &key, 0, 90);
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    json!({"cert": b64, "receiver": {}}).to_string()
}

/// Gives the registration in `d` a 90-day certificate (`panel-old`, with its key) that has
/// 10 days left, and a plant: the BTicino rule (30 days ahead) renews it at once. Returns
/// the registration written.
fn registration_near_its_end(d: &std::path::Path) -> Value {
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
    reg
}

#[test]
fn listen_renews_a_certificate_near_its_end_through_legrand_and_registers_with_the_new_one() {
    let peer = Peer::start(600);
    let d = state("renew");
    // The saved 90-day certificate has 10 days left: the BTicino rule (30 days ahead) renews
    // at once.
    let _ = registration_near_its_end(&d);

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
            *seen.lock().unwrap() += 1;
            (
                "201 Created",
                certificate_for_csr(&req.body, "panel-renewed"),
            )
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

/// The client certificate names of the TLS connections the peer accepted after the first
/// `from` things it saw.
fn connected_since(peer: &Peer, from: usize) -> Vec<String> {
    peer.seen()
        .into_iter()
        .skip(from)
        .filter_map(|x| match x {
            Seen::Connected(cn) => Some(cn),
            _ => None,
        })
        .collect()
}

/// Runs the one-shot `bticino open` (lock "gate") and `bticino light` against `peer` with the
/// registration in `d`; the client certificate names each of them presented.
fn one_shot_certificates(peer: &Peer, d: &std::path::Path) -> (Vec<String>, Vec<String>) {
    let server = format!("127.0.0.1:{}", peer.addr.port());
    let sd = s(d);
    assert!(
        !d.join("bticino-c100x-listen.sock").exists(),
        "no listener runs: the commands connect on their own"
    );
    let before = peer.seen().len();
    let out = latchkey(&[
        "bticino",
        "open",
        "--state-dir",
        &sd,
        "--server",
        &server,
        "--lock",
        "gate",
    ]);
    assert_exit(&out, 0);
    let open = connected_since(peer, before);
    let before = peer.seen().len();
    let out = latchkey(&[
        "bticino",
        "light",
        "--state-dir",
        &sd,
        "--server",
        &server,
        "--light",
        "stairs-7",
    ]);
    assert_exit(&out, 0);
    (open, connected_since(peer, before))
}

#[cfg(unix)]
#[test]
fn open_and_light_present_the_renewal_listen_stored_when_newer_than_the_registrations() {
    let peer = Peer::start(600);
    let d = state("one-shot-renewed");
    // The registration's certificate has 10 days left: `listen` renews it at once.
    let reg = registration_near_its_end(&d);
    let reg_path = d.join("bticino-c100x-registration.json");
    let api = support::Server::tls(move |req: &support::Received, out| {
        let path = req.target.split('?').next().unwrap_or_default().to_owned();
        let (status, body) =
            if req.method == "POST" && path == "/certificate/api/v1.0/ca/information/clientCerts" {
                (
                    "201 Created",
                    certificate_for_csr(&req.body, "panel-renewed"),
                )
            } else {
                ("404 Not Found", "{}".to_owned())
            };
        write!(
            out,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        Ok(support::Ending::Clean)
    });
    let files = legrand::prepare(&d, &d, &legrand::c100x_profile(api.port()));

    // `listen` renews and stores the new pair beside the registration, then stops.
    let server = format!("127.0.0.1:{}", peer.addr.port());
    let listener = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args([
            "bticino",
            "listen",
            "--state-dir",
            &s(&d),
            "--server",
            &server,
        ])
        .args(["--profile-file", &s(&files.profile)])
        .args(["--ca-file", &s(&files.api_ca)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let listener = Kill(Some(listener));
    let record = d.join("bticino-c100x-sip-client.json");
    let renewed_and_registered = peer.wait_for(Duration::from_secs(20), |seen| {
        seen.iter()
            .any(|x| matches!(x, Seen::Register { expires, cn } if *expires > 0 && cn == "panel-renewed"))
    });
    let out = listener.stop();
    assert!(
        renewed_and_registered,
        "listen did not renew: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stored: Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(
        stored["serial"], 2,
        "the renewal is the stored pair: {stored}"
    );
    // The registration file still holds the first certificate: the renewal is only in the
    // renewer's store.
    let saved: Value = serde_json::from_slice(&std::fs::read(&reg_path).unwrap()).unwrap();
    assert_eq!(saved["certificate_pem"], reg["certificate_pem"]);

    let (open, light) = one_shot_certificates(&peer, &d);
    assert_eq!(open, ["panel-renewed"], "open presented {open:?}");
    assert_eq!(light, ["panel-renewed"], "light presented {light:?}");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn open_and_light_present_the_registrations_certificate_when_the_stored_renewal_is_older() {
    use latchkey_tokio::renewer::{CertRenewer, CertifiedPair, SelfSignedSource};
    let peer = Peer::start(600);
    let d = state("one-shot-older-renewal");
    // A renewal the listener stored a month ago for an earlier registration...
    let earlier_key = rcgen::KeyPair::generate().unwrap();
    let earlier = CertifiedPair::new(
        client_cert("panel-renewed-earlier", &earlier_key, 30, 60).into_bytes(),
        earlier_key.serialize_pem().into_bytes(),
    );
    tokio_runtime().block_on(async {
        let source = SelfSignedSource::new(
            latchkey_pki::request::RequestParams::new(
                latchkey_pki::request::DistinguishedName::common_name("unused"),
            ),
            Duration::from_secs(86_400),
        );
        // The name `bticino listen` persists its renewals under.
        CertRenewer::builder(source)
            .usage(latchkey_pki::validate::Usage::ClientAuth)
            .roots(pki().ca_pem.clone().into_bytes())
            .persist(
                latchkey_tokio::state::StateDir::open(&d).await.unwrap(),
                "bticino-c100x-sip-client",
            )
            .initial_pair(earlier)
            .start()
            .await
            .expect("the earlier renewal is stored");
    });
    // ...then `setup` ran again: the registration's certificate was issued since.
    let new_key = rcgen::KeyPair::generate().unwrap();
    let reg_path = d.join("bticino-c100x-registration.json");
    let mut reg: Value = serde_json::from_slice(&std::fs::read(&reg_path).unwrap()).unwrap();
    reg["certificate_pem"] = json!(client_cert("panel-registered", &new_key, 0, 90));
    std::fs::write(&reg_path, reg.to_string()).unwrap();
    std::fs::write(
        d.join("bticino-c100x-client-key.pem"),
        new_key.serialize_pem(),
    )
    .unwrap();
    assert!(
        latchkey_tokio::renewer::read_stored_pair(&d, "bticino-c100x-sip-client")
            .unwrap()
            .is_some(),
        "a stored renewal is there to be passed over"
    );

    let (open, light) = one_shot_certificates(&peer, &d);
    assert_eq!(open, ["panel-registered"], "open presented {open:?}");
    assert_eq!(light, ["panel-registered"], "light presented {light:?}");
    let _ = std::fs::remove_dir_all(d);
}

/// A tokio runtime for the test's own async set-up.
fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A child process killed (if still running) when dropped.
struct Kill(Option<std::process::Child>);

impl Kill {
    /// Stops the child with SIGTERM (it un-REGISTERs and removes its control socket) and
    /// returns its output.
    fn stop(mut self) -> std::process::Output {
        let child = self.0.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait_with_output().expect("output")
    }
}

impl Drop for Kill {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
