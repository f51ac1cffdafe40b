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
