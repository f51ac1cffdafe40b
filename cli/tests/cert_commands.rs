//! `latchkey cert …` as a user meets it: files written (key 0600, nothing replaced without
//! --force), CSRs in PEM and the Legrand base64 form, inspection, bundle checks that name the
//! fault, and the renewal schedule.

use std::path::Path;

mod common;
use common::{assert_exit, latchkey, scratch, text};

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../pki/tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn generate_writes_a_door_station_certificate_and_never_replaces_files_unasked() {
    let dir = scratch("generate");
    let d = dir.to_str().unwrap();
    let out = latchkey(&[
        "cert",
        "generate",
        "--cn",
        "doorstation.local",
        "--days",
        "3650",
        "--san",
        "ip:192.168.1.50",
        "--out",
        d,
    ]);
    assert_exit(&out, 0);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let cert = dir.join("cert.pem");
    let info = latchkey(&["cert", "info", "--json", cert.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    let c = &v[0]["certificate"];
    assert_eq!(c["subject_cn"], "doorstation.local");
    assert_eq!(c["self_signed"], true);
    let life = c["not_after"].as_u64().unwrap() - c["not_before"].as_u64().unwrap();
    assert_eq!(
        life,
        3650 * 86_400,
        "explicit validity, not a library default"
    );
    let names: Vec<(String, String)> = c["subject_alt_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["type"].to_string(), s["value"].to_string()))
        .collect();
    assert_eq!(
        names,
        [
            ("\"dns\"".to_owned(), "\"doorstation.local\"".to_owned()),
            ("\"ip\"".to_owned(), "\"192.168.1.50\"".to_owned())
        ]
    );
    assert_eq!(v[0]["expiry"]["state"], "valid");

    let before = std::fs::read(&cert).unwrap();
    let again = latchkey(&["cert", "generate", "--cn", "other", "--out", d]);
    assert_exit(&again, 2);
    assert!(
        text(&again.stderr).contains("pass --force"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(
        std::fs::read(&cert).unwrap(),
        before,
        "nothing stored is lost"
    );
    let forced = latchkey(&["cert", "generate", "--cn", "other", "--out", d, "--force"]);
    assert_exit(&forced, 0);
    assert_ne!(std::fs::read(&cert).unwrap(), before);

    let ok = latchkey(&[
        "cert",
        "check",
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        dir.join("key.pem").to_str().unwrap(),
        "--host",
        "other",
        "--usage",
        "server",
    ]);
    assert_exit(&ok, 0);
    assert!(text(&ok.stdout).starts_with("ok: CN=other"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn csr_in_pem_and_in_the_legrand_base64_form() {
    let dir = scratch("csr");
    let key = dir.join("key.pem");
    let k = key.to_str().unwrap();
    let pem = latchkey(&[
        "cert",
        "csr",
        "--key",
        k,
        "--new-key",
        "--subject",
        "/CN=123456789012345678901/OU=DIY/O=LEGRAND/L=Paris/ST=France/C=FR/emailAddress=owner@example.com",
        "--san",
        "uri:sip:oid_123456789012345678901@gw.bs.iotleg.com",
        "--usage",
        "client",
    ]);
    assert_exit(&pem, 0);
    let pem = text(&pem.stdout);
    assert!(
        pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----"),
        "{pem}"
    );
    let b64 = latchkey(&["cert", "csr", "--key", k, "--der-base64"]);
    let line = text(&b64.stdout);
    assert_eq!(line.lines().count(), 1);
    assert!(line.starts_with("MI"), "base64 of a DER SEQUENCE: {line}");
    assert!(!line.contains("-----"));
    // --new-key never replaces a key.
    let again = latchkey(&["cert", "csr", "--key", k, "--new-key"]);
    assert_exit(&again, 2);
    assert!(text(&again.stderr).contains("never replaces a key"));
    let bad = latchkey(&["cert", "csr", "--key", k, "--san", "ftp:nope"]);
    assert_exit(&bad, 2);
    assert!(
        text(&bad.stderr).contains("--san ftp:nope"),
        "{}",
        text(&bad.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_names_the_fault_and_exits_1() {
    let cases = [
        (
            fixture("ec-p256-cert.pem"),
            fixture("other-key.pem"),
            Vec::<&str>::new(),
            "key mismatch",
        ),
        (
            fixture("expired-cert.pem"),
            fixture("expired-key.pem"),
            vec![],
            "expired",
        ),
        (
            fixture("leaf-cert.pem"),
            fixture("leaf-key.pem"),
            vec![],
            "self-signed",
        ),
    ];
    for (cert, key, extra, expected) in cases {
        let mut args = vec![
            "cert",
            "check",
            "--cert",
            cert.as_str(),
            "--key",
            key.as_str(),
        ];
        args.extend(extra.iter().copied());
        let out = latchkey(&args);
        let err = text(&out.stderr).to_lowercase();
        assert_eq!(out.status.code(), Some(1), "{cert}: {err}");
        assert!(
            err.contains(expected),
            "{cert}: expected {expected:?} in {err}"
        );
    }
    let dir = scratch("garbage");
    let garbage = dir.join("cert.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let out = latchkey(&[
        "cert",
        "check",
        "--cert",
        garbage.to_str().unwrap(),
        "--key",
        &fixture("ec-p256-key.pem"),
    ]);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).to_lowercase().contains("invalid"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn check_accepts_a_chain_to_the_given_root() {
    let out = latchkey(&[
        "cert",
        "check",
        "--cert",
        &fixture("leaf-cert.pem"),
        "--key",
        &fixture("leaf-key.pem"),
        "--chain",
        &fixture("intermediate-cert.pem"),
        "--root",
        &fixture("root-cert.pem"),
    ]);
    let combined = format!("{}{}", text(&out.stdout), text(&out.stderr));
    // The fixtures are valid until 2030-01-01.
    assert_eq!(out.status.code(), Some(0), "{combined}");
    assert!(combined.contains("a chain to the given root"), "{combined}");
    // Without the root the same leaf is not trusted.
    let alone = latchkey(&[
        "cert",
        "check",
        "--cert",
        &fixture("leaf-cert.pem"),
        "--key",
        &fixture("leaf-key.pem"),
    ]);
    assert_exit(&alone, 1);
}

#[test]
fn schedule_explains_when_and_why() {
    let dir = scratch("schedule");
    let d = dir.to_str().unwrap();
    assert_eq!(
        latchkey(&[
            "cert",
            "generate",
            "--cn",
            "sip-client",
            "--days",
            "365",
            "--out",
            d,
            "--usage",
            "client"
        ])
        .status
        .code(),
        Some(0)
    );
    let cert = dir.join("cert.pem");
    let out = latchkey(&[
        "cert",
        "schedule",
        cert.to_str().unwrap(),
        "--renew-before-days",
        "30",
        "--json",
    ]);
    assert_exit(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decision"]["action"], "wait");
    assert_eq!(v["decision"]["source"], "renew_before");
    let not_after = serde_json::from_slice::<serde_json::Value>(
        &latchkey(&["cert", "info", "--json", cert.to_str().unwrap()]).stdout,
    )
    .unwrap()[0]["certificate"]["not_after"]
        .as_u64()
        .unwrap();
    let renew_at = v["decision"]["renew_at"].as_u64().unwrap();
    let lead = not_after - renew_at;
    assert!(
        (30 * 86_400..=33 * 86_400).contains(&lead),
        "30 days plus at most 1/10 jitter: {lead}"
    );
    assert!(
        v["decision"]["wake_in"].as_u64().unwrap() <= 12 * 3600,
        "wake-ups are capped"
    );
    let human = latchkey(&[
        "cert",
        "schedule",
        cert.to_str().unwrap(),
        "--renew-before-days",
        "30",
    ]);
    assert!(
        text(&human.stdout).contains("the fixed renew-before lead gives"),
        "{}",
        text(&human.stdout)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `csr --new-key` with a bad --subject or --san fails before it writes the key, so the same
/// command corrected is not refused ("exists; --new-key never replaces a key"), as it was.
#[test]
fn csr_new_key_with_a_bad_subject_writes_no_key() {
    let dir = scratch("csr-new-key-bad");
    let key = dir.join("new.pem");
    let key_s = key.to_str().unwrap();
    let out = latchkey(&[
        "cert",
        "csr",
        "--key",
        key_s,
        "--new-key",
        "--subject",
        "CN=no-slash",
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("--subject"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !key.exists(),
        "a failed `csr --new-key` left a key behind, so the corrected command is refused"
    );
    let out = latchkey(&[
        "cert",
        "csr",
        "--key",
        key_s,
        "--new-key",
        "--subject",
        "/CN=fixed",
    ]);
    assert_exit(&out, 0);
    let _ = std::fs::remove_dir_all(dir);
}
