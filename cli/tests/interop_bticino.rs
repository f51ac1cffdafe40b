//! BTicino end to end: a stand-in Legrand API (test code, `shared/legrand.rs`) whose
//! certificate endpoint signs the CSR with the Kamailio run's client CA (by openssl), and
//! Kamailio as the SIP server (interop/kamailio.sh starts it and sets the environment):
//! `token import` → `bticino setup` (plant, gateway, SIP account with Kamailio's password,
//! key, CSR, certificate, CA chain) → `bticino listen` registers over mutual TLS with the
//! issued certificate → SIPp rings as the gateway (`c100x@gw-1.bs.iotleg.com`: 180 then 486,
//! one doorbell line) and as a stranger (486 at once, filtered) → `bticino open --lock "front
//! door"` goes over the listener's connection → Kamailio relays the MESSAGE to the SIPp gate,
//! which checks the body and logs it; the logged body is checked here field by field →
//! SIGTERM: the listener un-REGISTERs (as `bticino_commands` proves at its stand-in) and stops
//! cleanly, its control socket removed.
//!
//! Ignored in a plain `cargo test`; run with `--include-ignored` without the script's
//! environment it fails, naming the missing variable — it never passes by skipping.

mod common;
use common::{latchkey, s};

#[path = "shared/legrand.rs"]
mod legrand;
#[path = "../../runtime-tokio/tests/shared/support.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

const REASON: &str = "needs interop/kamailio.sh (Kamailio + SIPp)";

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: {REASON}"))
}

/// The Legrand certificate endpoint's signer: openssl signs the CSR with the Kamailio run's
/// CA (the CA Kamailio requires client certificates to chain to), as a client certificate
/// valid for 90 days.
fn openssl_signer(certs: PathBuf, dir: PathBuf) -> Box<legrand::Issue> {
    Box::new(move |csr: &[u8]| {
        let (csr_path, ext, out) = (
            dir.join("legrand.csr.der"),
            dir.join("legrand.ext"),
            dir.join("legrand.crt.der"),
        );
        std::fs::write(&csr_path, csr).expect("csr");
        std::fs::write(
            &ext,
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        )
        .expect("ext");
        let signed = Command::new("openssl")
            .args(["x509", "-req", "-inform", "DER", "-in", &s(&csr_path)])
            .args(["-CA", &s(&certs.join("ca.crt"))])
            .args(["-CAkey", &s(&certs.join("ca.key")), "-CAcreateserial"])
            .args(["-days", "90", "-sha256", "-extfile", &s(&ext)])
            .args(["-outform", "DER", "-out", &s(&out)])
            .stdin(Stdio::null())
            .output()
            .expect("openssl");
        assert!(
            signed.status.success(),
            "openssl could not sign the CSR: {}",
            String::from_utf8_lossy(&signed.stderr)
        );
        std::fs::read(&out).expect("certificate")
    })
}

/// DER of the first certificate in a PEM file.
fn pem_der(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).expect("pem");
    let b64: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64")
}

/// A SIPp scenario from interop/kamailio/sipp run to its end (bounded).
fn sipp(dir: &Path, args: &[&str]) -> Child {
    Command::new("timeout")
        .arg("60")
        .arg("sipp")
        .args(args)
        .args(["-nostdin", "-timeout", "50"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp")
}

/// `latchkey bticino listen`'s JSON lines, as they come.
struct Listener {
    child: Child,
    lines: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl Listener {
    /// Waits for the next event of `kind`, keeping everything seen.
    fn wait(&mut self, kind: &str, within: Duration) -> Value {
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if v["event"] == kind {
                        return v;
                    }
                }
                Err(_) => panic!("no {kind:?} event within {within:?}; seen: {:?}", self.seen),
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "needs interop/kamailio.sh (Kamailio + SIPp)"]
fn setup_listen_ring_and_open_through_kamailio_with_the_certificate_legrand_issued() {
    let tls_port = var("LATCHKEY_KAM_TLS_PORT");
    let udp_port = var("LATCHKEY_KAM_UDP_PORT");
    let gate_port = var("LATCHKEY_KAM_GATE_PORT");
    let password = var("LATCHKEY_KAM_PASSWORD");
    let certs = PathBuf::from(var("LATCHKEY_KAM_CERTS"));
    let scenarios = PathBuf::from(var("LATCHKEY_KAM_SIPP"));
    let dir = PathBuf::from(var("LATCHKEY_KAM_WORK")).join("bticino-e2e");
    let _ = std::fs::remove_dir_all(&dir);
    let state = dir.join("state");

    // The stand-in Legrand API: accounts get Kamailio's password, certificates come from
    // Kamailio's client CA, the CA chain is the same CA (it also signed Kamailio's server
    // certificate, so the saved chain is what the listener trusts).
    let (api, legrand) = legrand::stand_in(
        openssl_signer(certs.clone(), dir.clone()),
        pem_der(&certs.join("ca.crt")),
        &password,
    );
    let files = legrand::prepare(&dir, &state, &legrand::c100x_profile(api.port()));
    let (sd, p, c) = (s(&state), s(&files.profile), s(&files.api_ca));

    let setup = latchkey(&[
        "bticino",
        "setup",
        "--profile-file",
        &p,
        "--ca-file",
        &c,
        "--state-dir",
        &sd,
    ]);
    let err = String::from_utf8_lossy(&setup.stderr);
    assert!(setup.status.success(), "{err}");
    assert!(!err.contains(&password), "no SIP password printed: {err}");
    {
        let l = legrand.lock().unwrap();
        assert_eq!((l.registered, l.issued), (1, 1));
    }
    let reg: Value = serde_json::from_slice(
        &std::fs::read(state.join("bticino-c100x-registration.json")).expect("registration"),
    )
    .expect("json");
    let user = reg["account"]["username"]
        .as_str()
        .expect("username")
        .to_owned();
    assert!(user.starts_with("oid-9_"), "{user}");
    assert_eq!(reg["gateway_id"], "gw-1");

    // Listen: registers with the issued certificate; renewal is on (the OAuth session and
    // the API are there; the 90-day certificate is not due).
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["bticino", "listen", "--state-dir", &sd, "--server"])
        .arg(format!("127.0.0.1:{tls_port}"))
        .args(["--profile-file", &p, "--ca-file", &c])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("listen");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && tx.send(v).is_err()
            {
                break;
            }
        }
    });
    let mut listener = Listener {
        child,
        lines: rx,
        seen: Vec::new(),
    };
    listener.wait("registered", Duration::from_secs(20));

    // The gateway rings: 180, then 486 after the ring time; one doorbell line.
    let kamailio_udp = format!("127.0.0.1:{udp_port}");
    let gateway = "c100x@gw-1.bs.iotleg.com";
    let ring = sipp(
        &dir,
        &[
            &kamailio_udp,
            "-sf",
            &s(&scenarios.join("ring_from.xml")),
            "-s",
            &user,
            "-key",
            "caller",
            gateway,
            "-i",
            "127.0.0.1",
            "-m",
            "1",
        ],
    )
    .wait_with_output()
    .expect("sipp ring");
    assert!(
        ring.status.success(),
        "SIPp (as the gateway) did not get 180 then 486"
    );
    let bell = listener.wait("doorbell", Duration::from_secs(10));
    assert_eq!(bell["from"], format!("sip:{gateway}"));

    // A stranger rings: 486 at once, no 180, reported as filtered.
    let stranger = sipp(
        &dir,
        &[
            &kamailio_udp,
            "-sf",
            &s(&scenarios.join("ring_refused.xml")),
            "-s",
            &user,
            "-key",
            "caller",
            "door@127.0.0.1",
            "-i",
            "127.0.0.1",
            "-m",
            "1",
        ],
    )
    .wait_with_output()
    .expect("sipp stranger");
    assert!(
        stranger.status.success(),
        "SIPp (as a stranger) did not get 486 at once"
    );
    let filtered = listener.wait("call_filtered", Duration::from_secs(10));
    assert_eq!(filtered["from"], "sip:door@127.0.0.1");

    // Open: over the listener's registered connection (no --server: a one-shot connection
    // would go to the real service), relayed by Kamailio to the SIPp gate, which accepts
    // only a lock.setStatus naming lock-1 and logs what it received.
    let log = dir.join("gate-messages.log");
    let gate = sipp(
        &dir,
        &[
            "-sf",
            &s(&scenarios.join("gate.xml")),
            "-i",
            "127.0.0.1",
            "-p",
            &gate_port,
            "-m",
            "1",
            "-key",
            "body_re",
            r#""method":"lock\.setStatus".*"id":"lock-1""#,
            "-trace_msg",
            "-message_file",
            &s(&log),
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    let open = latchkey(&[
        "bticino",
        "open",
        "--state-dir",
        &sd,
        "--lock",
        "FRONT door",
    ]);
    assert!(
        open.status.success(),
        "{}",
        String::from_utf8_lossy(&open.stderr)
    );
    let outcome: Value = serde_json::from_slice(&open.stdout).expect("outcome");
    assert_eq!(outcome, json!({"outcome": "delivered", "status": 200}));
    let gate = gate.wait_with_output().expect("sipp gate");
    assert!(
        gate.status.success(),
        "the SIPp gate refused the MESSAGE body"
    );
    let logged = std::fs::read_to_string(&log).expect("SIPp message log");
    let message = logged
        .split("MESSAGE sip:")
        .nth(1)
        .unwrap_or_else(|| panic!("no MESSAGE in the gate's log: {logged}"));
    assert!(message.starts_with("c100x@gw-1.bs.iotleg.com"), "{message}");
    let body_line = message
        .lines()
        .map(str::trim_end)
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON body: {message}"));
    let body: Value = serde_json::from_str(body_line).expect("JSON-RPC body");
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["method"], "lock.setStatus");
    assert_eq!(body["params"][0]["status"], "open");
    assert_eq!(
        body["params"][0]["receiver"]["plant"]["coal"]["id"],
        "lock-1"
    );
    assert!(
        message.lines().any(|l| l
            .trim_end()
            .eq_ignore_ascii_case("content-type: text/plain")),
        "{message}"
    );

    // SIGTERM: the listener stops cleanly.
    let killed = Command::new("kill")
        .args(["-TERM", &listener.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    listener.wait("closed", Duration::from_secs(15));
    let status = listener.child.wait().expect("wait");
    let mut stderr = String::new();
    if let Some(mut e) = listener.child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    assert!(status.success(), "{stderr}");
    assert!(
        !listener.seen.iter().any(|e| e["event"] == "renewal_off"),
        "renewal is wired in: {:?}",
        listener.seen
    );
    assert!(!stderr.contains(&password), "no SIP password logged");
    assert!(
        !state.join("bticino-c100x-listen.sock").exists(),
        "the control socket is removed"
    );
}
