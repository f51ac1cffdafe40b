//! `latchkey login` and `latchkey token` without a provider on the network: what a user sees
//! before logging in, with bad input, and with a stored session.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run latchkey");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().expect("wait")
}

fn state_dir(tag: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("latchkey-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

#[test]
fn token_get_without_a_login_says_so_and_exits_1() {
    let dir = state_dir("get");
    let out = run(&["token", "get", "--state-dir", dir.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not logged in; run `latchkey login` first"),
        "{err}"
    );
}

#[test]
fn token_status_json_without_a_login_reports_no_session() {
    let dir = state_dir("status");
    let out = run(
        &[
            "token",
            "status",
            "--json",
            "--state-dir",
            dir.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["state"], "no_session");
    assert_eq!(v["token_valid"], false);
}

#[test]
fn pasting_a_redirect_with_a_foreign_state_is_refused() {
    let dir = state_dir("paste");
    let out = run(
        &["login", "--provider", "watts", "--paste", "--state-dir", dir.to_str().unwrap()],
        b"msalc832c38c-ce70-4ebc-83b6-b4548083ac90://auth?code=abc&state=0123456789abcdef0123456789abcdef\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("https://login.watts.io/"),
        "the login URL is shown: {err}"
    );
    assert!(err.contains("code_challenge_method=S256"), "{err}");
    assert!(err.contains("does not match this login"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unknown_provider_lists_the_known_ones() {
    let dir = state_dir("unknown");
    let out = run(
        &[
            "token",
            "status",
            "--provider",
            "nest",
            "--state-dir",
            dir.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bticino-c100x") && err.contains("utec"),
        "{err}"
    );
}

#[test]
fn a_corrupt_state_file_is_named_not_overwritten() {
    let dir = state_dir("corrupt");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("tokens-watts.json"), b"{\"version\":1,").unwrap();
    let out = run(
        &[
            "token",
            "get",
            "--provider",
            "watts",
            "--state-dir",
            dir.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("token state file is not valid"), "{err}");
    assert_eq!(
        std::fs::read(dir.join("tokens-watts.json")).unwrap(),
        b"{\"version\":1,"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_stored_valid_session_prints_its_token_for_scripts() {
    let dir = state_dir("stored");
    std::fs::create_dir_all(&dir).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let snapshot = serde_json::json!({
        "version": 1, "provider": "watts", "revision": 1, "generation": 1,
        "access_token": "stored-access-token", "access_expires_at": now + 900,
        "access_issued_at": now, "refresh_token": "rt", "refresh_issued_at": now,
        "refresh_expires_at": now + 7_776_000, "session_started_at": now, "last_refresh_at": null
    });
    std::fs::write(dir.join("tokens-watts.json"), snapshot.to_string()).unwrap();
    let out = run(
        &[
            "token",
            "get",
            "--provider",
            "watts",
            "--state-dir",
            dir.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "stored-access-token\n"
    );
    let out = run(
        &[
            "token",
            "status",
            "--provider",
            "watts",
            "--state-dir",
            dir.to_str().unwrap(),
        ],
        b"",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("state:             ready"), "{text}");
    assert!(
        !text.contains("stored-access-token"),
        "status never prints tokens: {text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
