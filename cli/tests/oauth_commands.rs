//! `latchkey login` and `latchkey token` without a provider on the network: what a user sees
//! before logging in, with bad input, and with a stored session.

use std::io::Write;
use std::process::{Command, Stdio};

mod common;
use common::{assert_exit, latchkey, latchkey_with_input};

fn state_dir(tag: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("latchkey-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

#[test]
fn token_get_without_a_login_says_so_and_exits_1() {
    let dir = state_dir("get");
    let out = latchkey(&["token", "get", "--state-dir", dir.to_str().unwrap()]);
    assert_exit(&out, 1);
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not logged in to generic; run `latchkey login --provider generic` first"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn token_status_json_without_a_login_reports_no_session() {
    let dir = state_dir("status");
    let out = latchkey(&[
        "token",
        "status",
        "--json",
        "--state-dir",
        dir.to_str().unwrap(),
    ]);
    assert_exit(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["state"], "no_session");
    assert_eq!(v["token_valid"], false);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pasting_a_redirect_with_a_foreign_state_is_refused() {
    let dir = state_dir("paste");
    let out = latchkey_with_input(
        &["login", "--provider", "watts", "--paste", "--state-dir", dir.to_str().unwrap()],
        b"msalc832c38c-ce70-4ebc-83b6-b4548083ac90://auth?code=abc&state=0123456789abcdef0123456789abcdef\n",
    );
    assert_exit(&out, 1);
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
    let out = latchkey(&[
        "token",
        "status",
        "--provider",
        "nest",
        "--state-dir",
        dir.to_str().unwrap(),
    ]);
    assert_exit(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bticino-c100x") && err.contains("utec"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_corrupt_state_file_is_named_not_overwritten() {
    let dir = state_dir("corrupt");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("tokens-watts.json"), b"{\"version\":1,").unwrap();
    let out = latchkey(&[
        "token",
        "get",
        "--provider",
        "watts",
        "--state-dir",
        dir.to_str().unwrap(),
    ]);
    assert_exit(&out, 2);
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
    let out = latchkey(&[
        "token",
        "get",
        "--provider",
        "watts",
        "--state-dir",
        dir.to_str().unwrap(),
    ]);
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
    let out = latchkey(&[
        "token",
        "status",
        "--provider",
        "watts",
        "--state-dir",
        dir.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("state:             ready"), "{text}");
    assert!(
        !text.contains("stored-access-token"),
        "status never prints tokens: {text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn write_file(dir: &std::path::Path, name: &str, body: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

#[cfg(unix)]
fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// A token cache as the BTicino Node.js client saves it, valid for another hour.
fn bticino_cache(access: &str) -> String {
    let now = unix_now();
    format!(
        r#"{{"b2cAccessToken":"{access}","b2cRefreshToken":"bticino-refresh","expiresIn":3600,
        "tokenType":"Bearer","receivedAtMs":{},"expiresAtMs":{}}}"#,
        now * 1000,
        (now + 3600) * 1000
    )
}

#[test]
fn an_imported_bticino_token_cache_serves_its_token_without_a_login() {
    let dir = state_dir("import-bticino");
    let src = write_file(
        &dir.join("src"),
        "token_cache.json",
        &bticino_cache("from-node-client"),
    );
    let state = dir.join("state");
    let state_s = state.to_str().unwrap();
    let out = latchkey(&[
        "token",
        "import",
        "--provider",
        "bticino-diy",
        "--from",
        src.to_str().unwrap(),
        "--state-dir",
        state_s,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("imported a bticino-token-cache session"),
        "{err}"
    );
    assert!(err.contains("stop the client that saved it"), "{err}");
    assert!(
        !err.contains("bticino-refresh"),
        "no secret in messages: {err}"
    );
    let tokens = state.join("tokens-bticino-diy.json");
    #[cfg(unix)]
    assert_eq!(mode(&tokens), 0o600);
    let out = latchkey(&[
        "token",
        "get",
        "--provider",
        "bticino-diy",
        "--state-dir",
        state_s,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-node-client\n");
    let out = latchkey(&[
        "token",
        "status",
        "--json",
        "--provider",
        "bticino-diy",
        "--state-dir",
        state_s,
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["state"], "ready");
    assert_eq!(v["token_valid"], true);
    assert_eq!(v["has_refresh_token"], true);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A U-tec local gateway's `config.json` (access key AK-1, secret SK-secret, tokens for
/// two hours) in `dir/src`, imported into `dir/state` with `extra` arguments; the import's
/// output and the state directory.
fn import_utec(
    dir: &std::path::Path,
    extra: &[&str],
) -> (std::process::Output, std::path::PathBuf) {
    let src = write_file(
        &dir.join("src"),
        "config.json",
        r#"{"base_url":"https://api.u-tec.com","oauth_base_url":"https://oauth.u-tec.com",
            "access_key":"AK-1","secret_key":"SK-secret","access_token":"utec-a",
            "refresh_token":"utec-r","token_type":"Bearer","token_expires_in":7200,
            "scope":"openapi","redirect_url":"https://example.org/cb"}"#,
    );
    let state = dir.join("state");
    let mut args = vec![
        "token",
        "import",
        "--provider",
        "utec",
        "--from",
        src.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    (latchkey(&args), state)
}

#[test]
fn an_imported_utec_config_brings_its_client_keys_and_refreshes_at_first_use() {
    let dir = state_dir("import-utec");
    // uteclocal's config.json: `token_expires_in` without the time it was received.
    let (out, state) = import_utec(&dir, &[]);
    let state_s = state.to_str().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("refreshed at first use"), "{err}");
    assert!(
        !err.contains("SK-secret") && !err.contains("utec-r"),
        "{err}"
    );
    let saved = state.join("provider-utec.json");
    #[cfg(unix)]
    assert_eq!(mode(&saved), 0o600);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    assert_eq!(v["client_id"], "AK-1");
    assert_eq!(v["client_secret"], "SK-secret");
    assert_eq!(v["redirect_uri"], "https://example.org/cb");
    let out = latchkey(&[
        "token",
        "status",
        "--json",
        "--provider",
        "utec",
        "--state-dir",
        state_s,
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["token_valid"], false, "the token's age is unknown: {v}");
    assert_eq!(v["has_refresh_token"], true);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn import_never_overwrites_a_stored_session_unless_asked() {
    let dir = state_dir("import-replace");
    let first = write_file(
        &dir.join("src"),
        "first.json",
        &bticino_cache("first-token"),
    );
    let second = write_file(
        &dir.join("src"),
        "second.json",
        &bticino_cache("second-token"),
    );
    let state = dir.join("state");
    let state_s = state.to_str().unwrap();
    let import = |file: &std::path::Path, extra: &[&str]| {
        let mut args = vec![
            "token",
            "import",
            "--provider",
            "bticino-c100x",
            "--from",
            file.to_str().unwrap(),
            "--state-dir",
            state_s,
        ];
        args.extend_from_slice(extra);
        latchkey(&args)
    };
    assert_eq!(import(&first, &[]).status.code(), Some(0));
    let tokens = state.join("tokens-bticino-c100x.json");
    let before = std::fs::read(&tokens).unwrap();
    let out = import(&second, &[]);
    assert_exit(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already stored") && err.contains("--replace"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&tokens).unwrap(),
        before,
        "the stored session is untouched"
    );
    assert_eq!(import(&second, &["--replace"]).status.code(), Some(0));
    let out = latchkey(&[
        "token",
        "get",
        "--provider",
        "bticino-c100x",
        "--state-dir",
        state_s,
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "second-token\n");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn import_refuses_bad_files_by_name_and_writes_nothing() {
    let dir = state_dir("import-bad");
    let state = dir.join("state");
    let state_s = state.to_str().unwrap();
    let cases: [(&str, &str, &[&str], &str); 5] = [
        (
            "bticino",
            &bticino_cache("x"),
            &["--provider", "utec"],
            "does not belong to provider \"utec\"",
        ),
        (
            "norefresh",
            r#"{"b2cAccessToken":"a","expiresAtMs":1}"#,
            &["--provider", "bticino-diy"],
            "bticino-token-cache: the file has no b2cRefreshToken",
        ),
        (
            "ambiguous",
            r#"{"access_token":"a","refresh_token":"r"}"#,
            &["--provider", "generic"],
            "cannot tell which client saved this file",
        ),
        (
            "broken",
            "{\"b2cRefreshToken\": ",
            &["--provider", "bticino-diy"],
            "is not JSON",
        ),
        (
            "format",
            "{}",
            &["--provider", "utec", "--format", "yaml"],
            "unknown import format \"yaml\" (known: bticino-token-cache, utec-config)",
        ),
    ];
    for (name, body, extra, expected) in cases {
        let src = write_file(&dir.join("src"), name, body);
        let mut args = vec![
            "token",
            "import",
            "--from",
            src.to_str().unwrap(),
            "--state-dir",
            state_s,
        ];
        args.extend_from_slice(extra);
        let out = latchkey(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(expected), "{name}: {err}");
        let written: Vec<_> = std::fs::read_dir(&state)
            .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(
            written
                .iter()
                .all(|n| !n.to_string_lossy().starts_with("tokens-")
                    && !n.to_string_lossy().starts_with("provider-")),
            "{name}: nothing stored: {written:?}"
        );
    }
    let missing = dir.join("nope.json");
    let out = latchkey(&[
        "token",
        "import",
        "--provider",
        "utec",
        "--from",
        missing.to_str().unwrap(),
        "--state-dir",
        state_s,
    ]);
    assert_exit(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn login_modes_that_cannot_go_together_are_refused() {
    for (args, expected) in [
        (&["--loopback", "--paste"][..], "cannot be used with"),
        (&["--paste", "--port", "8123"][..], "cannot be used with"),
        (&["--device", "--open"][..], "cannot be used with"),
        (&["--port", "8123"][..], "--loopback"),
    ] {
        let mut all = vec!["login", "--provider", "watts"];
        all.extend_from_slice(args);
        let out = latchkey(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

/// The authorize URL printed on stderr.
fn printed_url(stderr: &str) -> Option<String> {
    stderr
        .lines()
        .find(|l| l.starts_with("https://"))
        .map(str::to_owned)
}

#[cfg(unix)]
#[test]
fn open_hands_the_login_url_to_the_desktop_opener() {
    use std::os::unix::fs::PermissionsExt;
    let dir = state_dir("open");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let seen = dir.join("opened.txt");
    let opener = bin.join("xdg-open");
    std::fs::write(
        &opener,
        // Written aside, then renamed: the test sees the file only once it is complete.
        format!(
            "#!/bin/sh\nprintf '%s' \"$1\" > '{0}.tmp' && mv '{0}.tmp' '{0}'\n",
            seen.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args([
            "login",
            "--provider",
            "watts",
            "--paste",
            "--open",
            "--state-dir",
        ])
        .arg(dir.join("state"))
        .env("PATH", path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The opener runs in the background; wait for it before answering the prompt.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !seen.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"msalc832c38c-ce70-4ebc-83b6-b4548083ac90://auth?code=x&state=y\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let opened = std::fs::read_to_string(&seen).expect("the opener was called");
    assert_eq!(Some(opened), printed_url(&err), "{err}");
    assert_eq!(
        out.status.code(),
        Some(1),
        "the pasted state is foreign: {err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn loopback_login_listens_on_the_given_port_and_checks_the_redirect_state() {
    use std::io::{BufRead, BufReader, Read};
    use std::net::TcpStream;
    let dir = state_dir("loopback");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["login", "--provider", "watts", "--loopback", "--port"])
        .arg(port.to_string())
        .arg("--state-dir")
        .arg(dir.join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut url = None;
    let mut line = String::new();
    while url.is_none() && stderr.read_line(&mut line).unwrap_or(0) > 0 {
        url = printed_url(&line);
        line.clear();
    }
    let url = url.expect("the login URL is printed");
    let redirect = format!("http%3A%2F%2F127.0.0.1%3A{port}%2Fcallback");
    assert!(url.contains(&format!("redirect_uri={redirect}")), "{url}");
    let get = |target: &str| -> String {
        let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
        sock.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        write!(sock, "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut reply = String::new();
        let _ = sock.read_to_string(&mut reply);
        reply
    };
    // A stray request (a favicon) is answered 404 and the login keeps waiting.
    assert!(get("/favicon.ico").starts_with("HTTP/1.1 404"));
    let page = get("/callback?code=abc&state=not-this-login");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let status = child.wait().unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(1), "{rest}");
    assert!(rest.contains("does not match this login"), "{rest}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `latchkey login` that does not complete (here: nothing pasted; in life a typo, a closed
/// browser, a Ctrl-C) must leave the saved client settings alone: the stored session still
/// refreshes with them (`login` rewrote provider-NAME.json from its own arguments before it
/// even showed the URL, erasing the imported U-tec access and secret keys).
#[test]
fn an_unfinished_login_keeps_the_saved_client_id_and_secret() {
    let dir = state_dir("login-keeps-overrides");
    let (out, state) = import_utec(&dir, &[]);
    let state_s = state.to_str().unwrap();
    assert_exit(&out, 0);
    // Log in again (e.g. after `reauth_required`), giving up at the paste prompt.
    let out = latchkey_with_input(
        &[
            "login",
            "--provider",
            "utec",
            "--paste",
            "--state-dir",
            state_s,
        ],
        b"",
    );
    assert_ne!(out.status.code(), Some(0));
    let saved = state.join("provider-utec.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    assert_eq!(v["client_id"], "AK-1", "saved overrides lost: {v}");
    assert_eq!(v["client_secret"], "SK-secret", "saved overrides lost: {v}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `latchkey token status | head -1`, or a reader that went away: the text form used
/// `print!`, which panics on a closed pipe (Rust ignores SIGPIPE) and exited 101 with a
/// backtrace; now it drops the write error as `--json` and every other command do.
#[test]
fn token_status_text_survives_a_closed_standard_output() {
    let dir = state_dir("status-epipe");
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["token", "status", "--state-dir", dir.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run latchkey");
    // The reader goes away before anything is written.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `token keep` answers a chunked request 411 with its own reason phrase (it said
/// "411 Internal Server Error": the status-to-reason table in `keep` lacked 411).
#[test]
fn token_keep_names_a_411_length_required() {
    use std::io::{BufRead, Read};
    let dir = state_dir("keep-411");
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args([
            "token",
            "keep",
            "--listen",
            "127.0.0.1:0",
            "--state-dir",
            dir.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run latchkey");
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let mut addr = None;
    for _ in 0..20 {
        line.clear();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some(rest) = line.split("http://").nth(1) {
            addr = rest.split('/').next().map(str::to_owned);
            break;
        }
    }
    let Some(addr) = addr else {
        let _ = child.kill();
        panic!("no address printed: {line}");
    };
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.write_all(
        b"POST /api/oauth/refresh HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    )
    .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    let _ = child.kill();
    let _ = child.wait();
    let status_line = answer.lines().next().unwrap_or_default().to_owned();
    assert!(status_line.starts_with("HTTP/1.1 411 "), "{answer}");
    assert_eq!(status_line, "HTTP/1.1 411 Length Required", "{answer}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same for standard error: `eprintln!` panics on a closed pipe too, so a command whose
/// log reader went away ended 101 instead of with its own status.
#[test]
fn a_closed_standard_error_leaves_the_exit_status_alone() {
    let dir = state_dir("stderr-epipe");
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["token", "get", "--state-dir", dir.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run latchkey");
    drop(child.stderr.take());
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(1), "not logged in: exit 1, not a panic");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_stale_saved_setting_is_named_and_reset_settings_forgets_it() {
    // A saved --ca-file that was deleted since made every command fail, the repairing
    // login included, without saying where the path came from.
    let dir = state_dir("reset-settings");
    let ca = write_file(
        &dir.join("src"),
        "ca.pem",
        include_str!("../../pki/tests/fixtures/ec-p256-cert.pem"),
    );
    let state = dir.join("state");
    let state_s = state.to_str().unwrap();
    let import = |extra: &[&str]| import_utec(&dir, extra).0;
    let out = import(&["--ca-file", ca.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&ca).unwrap();
    let status = || {
        latchkey(&[
            "token",
            "status",
            "--provider",
            "utec",
            "--state-dir",
            state_s,
        ])
    };
    let out = status();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("provider-utec.json") && err.contains("--reset-settings"),
        "{err}"
    );
    let out = import(&["--replace", "--reset-settings"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("provider-utec.json")).unwrap()).unwrap();
    assert!(saved.get("ca_file").is_none(), "{saved}");
    assert_eq!(saved["client_id"], "AK-1");
    assert_exit(&status(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}
