//! `latchkey bticino setup` against a stand-in Legrand API served over HTTPS on loopback
//! (test code only, following the documented shapes): plant, gateway and locks, SIP account
//! registration, CSR, certificate and CA chain; the result saved in latchkey's and the
//! Node.js client's formats; a second run resumes and registers nothing twice.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::Value;

mod common;
use common::latchkey;

#[path = "shared/legrand.rs"]
mod legrand;
#[path = "../../runtime-tokio/tests/shared/support.rs"]
mod support;

/// A fresh directory for test `name`, its state directory inside, and a stand-in Legrand API
/// whose certificate endpoint "issues", whatever CSR arrives, a certificate from its own CA
/// for the client key stored there beforehand (the flow reuses a stored key; the CSR is kept
/// for inspection).
fn stand_in_for_a_stored_key(
    name: &str,
) -> (
    PathBuf,
    PathBuf,
    support::Server,
    Arc<Mutex<legrand::Legrand>>,
) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let leaf_der = leaf_params
        .signed_by(&client_key, &ca)
        .unwrap()
        .der()
        .to_vec();
    let (server, legrand) = legrand::stand_in(
        Box::new(move |_csr: &[u8]| leaf_der.clone()),
        ca.der().to_vec(),
        "sip-pw-secret",
    );
    let dir = std::env::temp_dir().join(format!("latchkey-bticino-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("bticino-c100x-client-key.pem"),
        client_key.serialize_pem(),
    )
    .unwrap();
    (dir, state, server, legrand)
}

#[test]
fn setup_registers_the_device_saves_both_formats_and_resumes_without_duplicates() {
    let (dir, state, server, legrand) = stand_in_for_a_stored_key("setup");
    let files = legrand::prepare(&dir, &state, &legrand::c100x_profile(server.port()));
    let s = state.to_str().unwrap();
    let p = files.profile.to_str().unwrap();
    let c = files.api_ca.to_str().unwrap();

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
    let out = latchkey(&setup);
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
    let again = latchkey(&setup);
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

#[test]
fn with_the_app_secret_the_certificate_is_asked_for_with_an_application_token() {
    let (dir, state, server, legrand) = stand_in_for_a_stored_key("app");
    let files = legrand::prepare(
        &dir,
        &state,
        &legrand::c100x_profile_with_app(server.port()),
    );
    let (s, p, c) = (
        state.to_str().unwrap(),
        files.profile.to_str().unwrap(),
        files.api_ca.to_str().unwrap(),
    );
    let wrong = dir.join("wrong-secret");
    std::fs::write(&wrong, "not-the-app-secret\n").unwrap();
    let setup = |secret: &std::path::Path| {
        latchkey(&[
            "bticino",
            "setup",
            "--profile-file",
            p,
            "--ca-file",
            c,
            "--state-dir",
            s,
            "--app-secret-file",
            secret.to_str().unwrap(),
        ])
    };

    // A wrong secret: the token endpoint's own error, the secret never printed, no
    // certificate asked for.
    let out = setup(&wrong);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("invalid_client"), "{err}");
    assert!(!err.contains("not-the-app-secret"), "{err}");
    assert_eq!(legrand.lock().unwrap().issued, 0);

    // The right one (with a trailing newline, as editors leave it): the certificate call
    // carries the application token in Authorization and the user's in UserToken.
    let right = dir.join("app-secret");
    std::fs::write(&right, format!("{}\n", legrand::APP_SECRET)).unwrap();
    let out = setup(&right);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let l = legrand.lock().unwrap();
    assert_eq!((l.issued, l.app_tokens), (1, 1));
    let (auth, user) = l.cert_auth.clone().unwrap();
    assert_eq!(auth, "Bearer app-at-1");
    assert!(
        user.starts_with("eyJ") && !user.contains("app-at"),
        "{user}"
    );
    let saved = std::fs::read_to_string(state.join("bticino-c100x-registration.json")).unwrap();
    assert!(!saved.contains("app-at") && !saved.contains(legrand::APP_SECRET));
    drop(l);

    // A profile without the endpoint: refused before any call, naming the key.
    let plain = dir.join("plain.toml");
    std::fs::write(&plain, legrand::c100x_profile(server.port())).unwrap();
    let out = latchkey(&[
        "bticino",
        "setup",
        "--profile-file",
        plain.to_str().unwrap(),
        "--ca-file",
        c,
        "--state-dir",
        s,
        "--app-secret-file",
        right.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("app_token_endpoint"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
