//! `latchkey bticino setup` against a stand-in Legrand API served over HTTPS on loopback
//! (test code only, following the documented shapes): plant, gateway and locks, SIP account
//! registration, CSR, certificate and CA chain; the result saved in latchkey's and the
//! Node.js client's formats; a second run resumes and registers nothing twice.

use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex};

use base64::Engine;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::{Value, json};

#[path = "../../runtime-tokio/tests/shared/support.rs"]
mod support;

use support::{Ending, Received, Server, pki};

#[derive(Default)]
struct Legrand {
    accounts: Vec<Value>,
    registered: usize,
    issued: usize,
    csr: Option<Vec<u8>>,
}

fn b64(der: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(der)
}

fn respond(out: &mut dyn Write, status: &str, body: &str) {
    let _ = write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// The stand-in: the certificate it "issues" is made for the key the test stored, signed
/// by its own CA, whatever CSR arrives (the CSR is kept for inspection).
fn stand_in(leaf_der: Vec<u8>, ca_der: Vec<u8>) -> (Server, Arc<Mutex<Legrand>>) {
    let state = Arc::new(Mutex::new(Legrand::default()));
    let seen = state.clone();
    let server = Server::tls(move |req: &Received, out| {
        let mut s = seen.lock().unwrap();
        assert_eq!(
            req.header("ocp-apim-subscription-key"),
            Some("f36968e522bf4ec3877fa491109d3d14")
        );
        assert!(req.header("usertoken").is_some());
        let path = req.target.split('?').next().unwrap_or_default().to_owned();
        match (req.method.as_str(), path.as_str()) {
            ("GET", "/servicecatalog/api/v3.0/plants") => respond(out, "200 OK", &json!({"plants":[{"id":"p-1","name":"Home","country":"IT","type":"residential","ownerId":"oid-9","ownerEmail":"owner@example.com"}]}).to_string()),
            ("GET", "/servicecatalog/api/v3.0/plants/p-1/modules") => respond(out, "200 OK", r#"[{"id":"gw-1","device":"gateway"},{"id":"lock-1","name":"Front door","device":"lock"}]"#),
            ("GET", "/vde/sip/v1.0/devices/gw-1/sipaccounts") => respond(out, "200 OK", &Value::Array(s.accounts.clone()).to_string()),
            ("POST", "/vde/sip/v1.0/devices/gw-1/sipaccount") => {
                let body: Value = serde_json::from_slice(&req.body).unwrap();
                s.registered += 1;
                let account = json!({"sipId": format!("s-{}", s.registered), "clientId": body["clientId"], "sipUri": body["sipUri"]});
                s.accounts.push(account.clone());
                let mut answer = account;
                answer["sipPassword"] = json!("sip-pw-secret");
                respond(out, "200 OK", &answer.to_string());
            }
            ("POST", "/certificate/api/v1.0/ca/information/clientCerts") => {
                let body: Value = serde_json::from_slice(&req.body).unwrap();
                s.csr = base64::engine::general_purpose::STANDARD.decode(body["csr"].as_str().unwrap()).ok();
                assert_eq!(body["template"], "sipuser");
                s.issued += 1;
                respond(out, "201 Created", &json!({"cert": b64(&leaf_der), "receiver": {}}).to_string());
            }
            ("GET", "/certificate/api/v1.0/ca/information/CACerts") => {
                respond(out, "200 OK", &json!({"chain": [b64(&ca_der)]}).to_string());
            }
            _ => respond(out, "404 Not Found", "{}"),
        }
        Ok(Ending::Clean)
    });
    (server, state)
}

/// An access token carrying `oid` (the stand-in never verifies it), valid for an hour.
fn access_token() -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!(r#"{{"oid":"oid-9","exp":{exp}}}"#));
    format!("eyJhbGciOiJub25lIn0.{payload}.sig")
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn setup_registers_the_device_saves_both_formats_and_resumes_without_duplicates() {
    // The client key the flow will reuse, and a certificate for it from the stand-in's CA.
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let leaf = leaf_params.signed_by(&client_key, &ca).unwrap();
    let (server, legrand) = stand_in(leaf.der().to_vec(), ca.der().to_vec());

    let dir = std::env::temp_dir().join(format!("latchkey-bticino-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("bticino-c100x-client-key.pem"),
        client_key.serialize_pem(),
    )
    .unwrap();
    let profile = dir.join("profile.toml");
    let shipped = include_str!("../../oauth-core/profiles/bticino-c100x.toml");
    std::fs::write(
        &profile,
        shipped.replace(
            "base_url = \"https://api.developer.legrand.com\"",
            &format!("base_url = \"https://localhost:{}\"", server.port()),
        ),
    )
    .unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &pki().ca_pem).unwrap();
    let cache = dir.join("token_cache.json");
    std::fs::write(
        &cache,
        json!({"b2cAccessToken": access_token(), "b2cRefreshToken": "rt", "expiresIn": 3600,
               "receivedAt": "2026-01-01T00:00:00Z", "expiresAtMs": (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600) * 1000})
            .to_string(),
    )
    .unwrap();
    let s = state.to_str().unwrap();
    let p = profile.to_str().unwrap();
    let c = ca_file.to_str().unwrap();
    let import = run(&[
        "token",
        "import",
        "--profile-file",
        p,
        "--from",
        cache.to_str().unwrap(),
        "--state-dir",
        s,
    ]);
    assert_eq!(
        import.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );

    let setup = [
        "bticino",
        "setup",
        "--flavour",
        "c100x",
        "--profile-file",
        p,
        "--ca-file",
        c,
        "--state-dir",
        s,
    ];
    let out = run(&setup);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("gateway: gw-1 (1 locks)"), "{err}");
    assert!(err.contains("lock lock-1"), "{err}");
    assert!(!err.contains("sip-pw-secret"), "no secret printed: {err}");
    {
        let l = legrand.lock().unwrap();
        assert_eq!((l.registered, l.issued), (1, 1));
        let csr = l.csr.clone().unwrap();
        assert_eq!(csr.first(), Some(&0x30), "the CSR is DER");
    }
    let reg: Value = serde_json::from_slice(
        &std::fs::read(state.join("bticino-c100x-registration.json")).unwrap(),
    )
    .unwrap();
    let client_id = reg["client_id"].as_str().unwrap().to_owned();
    assert_eq!(
        reg["account"]["sip_uri"],
        format!("oid-9_{client_id}@gw-1.bs.iotleg.com")
    );
    let account: Value =
        serde_json::from_slice(&std::fs::read(state.join("sip_account.json")).unwrap()).unwrap();
    assert_eq!(account["payload"]["sipPassword"], "sip-pw-secret");
    let certs: Value =
        serde_json::from_slice(&std::fs::read(state.join("client-certs.json")).unwrap()).unwrap();
    assert!(
        certs["cert"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    assert!(certs["key"].as_str().unwrap().contains("PRIVATE KEY"));
    #[cfg(unix)]
    for f in [
        "sip_account.json",
        "client-certs.json",
        "bticino-c100x-registration.json",
    ] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(state.join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }

    // Run again: everything is there, nothing is registered or issued twice.
    let again = run(&setup);
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let l = legrand.lock().unwrap();
    assert_eq!((l.registered, l.issued), (1, 1));
    let _ = std::fs::remove_dir_all(&dir);
}
