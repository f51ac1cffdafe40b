//! `latchkey bticino setup` against a stand-in Legrand API served over HTTPS on loopback
//! (test code only, following the documented shapes): plant, gateway and locks, SIP account
//! registration, CSR, certificate and CA chain; the result saved in latchkey's and the
//! Node.js client's formats; a second run resumes and registers nothing twice.

use std::process::Command;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::Value;

#[path = "shared/legrand.rs"]
mod legrand;
#[path = "../../runtime-tokio/tests/shared/support.rs"]
mod support;

use support::pki;

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
    // The stand-in "issues" the certificate made for the key the test stored, whatever CSR
    // arrives (the CSR is kept for inspection).
    let leaf_der = leaf.der().to_vec();
    let (server, legrand) = legrand::stand_in(
        Box::new(move |_csr: &[u8]| leaf_der.clone()),
        ca.der().to_vec(),
        "sip-pw-secret",
    );

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
    std::fs::write(&profile, legrand::c100x_profile(server.port())).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &pki().ca_pem).unwrap();
    let cache = dir.join("token_cache.json");
    std::fs::write(&cache, legrand::token_cache()).unwrap();
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

/// A state directory with an imported session and the C100X profile with the stand-in's
/// application token endpoint; returns (state, profile, api CA) paths.
fn app_setup_dir(name: &str, port: u16) -> (std::path::PathBuf, String, String, String) {
    let dir = std::env::temp_dir().join(format!("latchkey-bticino-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let profile = dir.join("profile.toml");
    std::fs::write(&profile, legrand::c100x_profile_with_app(port)).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &pki().ca_pem).unwrap();
    let cache = dir.join("token_cache.json");
    std::fs::write(&cache, legrand::token_cache()).unwrap();
    let (s, p) = (
        state.to_str().unwrap().to_owned(),
        profile.to_str().unwrap().to_owned(),
    );
    let import = run(&[
        "token",
        "import",
        "--profile-file",
        &p,
        "--from",
        cache.to_str().unwrap(),
        "--state-dir",
        &s,
    ]);
    assert_eq!(
        import.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    (dir, s, p, ca_file.to_str().unwrap().to_owned())
}

#[test]
fn with_the_app_secret_the_certificate_is_asked_for_with_an_application_token() {
    // Certificates from the stand-in's CA for whatever key the CSR carries are not needed
    // here: the issued certificate is checked by `setup` afterwards, so issue one for the
    // stored key as the first test does.
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
    let (dir, s, p, c) = app_setup_dir("app", server.port());
    std::fs::write(
        std::path::Path::new(&s).join("bticino-c100x-client-key.pem"),
        client_key.serialize_pem(),
    )
    .unwrap();
    let wrong = dir.join("wrong-secret");
    std::fs::write(&wrong, "not-the-app-secret\n").unwrap();
    let setup = |secret: &std::path::Path| {
        run(&[
            "bticino",
            "setup",
            "--profile-file",
            &p,
            "--ca-file",
            &c,
            "--state-dir",
            &s,
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
    let saved =
        std::fs::read_to_string(std::path::Path::new(&s).join("bticino-c100x-registration.json"))
            .unwrap();
    assert!(!saved.contains("app-at") && !saved.contains(legrand::APP_SECRET));
    drop(l);

    // A profile without the endpoint: refused before any call, naming the key.
    let plain = dir.join("plain.toml");
    std::fs::write(&plain, legrand::c100x_profile(server.port())).unwrap();
    let out = run(&[
        "bticino",
        "setup",
        "--profile-file",
        plain.to_str().unwrap(),
        "--ca-file",
        &c,
        "--state-dir",
        &s,
        "--app-secret-file",
        right.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("app_token_endpoint"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
