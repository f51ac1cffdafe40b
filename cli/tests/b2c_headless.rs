//! `latchkey login --headless` against a stand-in Azure AD B2C served over HTTPS on loopback:
//! the sign-in page with `SETTINGS` and `x-ms-cpim-*` cookies, the SelfAsserted credentials
//! post, the confirmation redirect carrying the code, and the PKCE code exchange. A wrong
//! password and a page without a csrf token end with the provider's message or a named fault,
//! and nothing is stored. The stand-in is test code only.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use base64::Engine;
use sha2::Digest;

#[path = "../../runtime-tokio/tests/shared/support.rs"]
mod support;

use support::{Ending, Received, Server, pki};

const TENANT: &str = "/tenant.onmicrosoft.com";
const POLICY: &str = "B2C_1_standin";
const REDIRECT: &str = "com.example.app://oauth2redirect";

/// What the stand-in remembers between requests.
#[derive(Default)]
struct Seen {
    state: Option<String>,
    challenge: Option<String>,
    posted_password: bool,
    exchanged: bool,
}

fn query_param(target: &str, name: &str) -> Option<String> {
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.replace('+', " ");
    let mut out = Vec::new();
    let bytes = b.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(&b[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(out: &mut dyn Write, status: &str, headers: &[(&str, String)], body: &str) {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (n, v) in headers {
        head += &format!("{n}: {v}\r\n");
    }
    let _ = out.write_all(format!("{head}\r\n{body}").as_bytes());
}

/// The stand-in B2C: `settings` is the page's SETTINGS object, `password` the one accepted.
fn stand_in(settings: String, password: &'static str) -> (Server, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let state = seen.clone();
    let server = Server::tls(move |req: &Received, out| {
        let path = req.target.split('?').next().unwrap_or_default().to_owned();
        let cookie = req.header("cookie").unwrap_or_default().to_owned();
        let mut seen = state.lock().unwrap();
        match (req.method.as_str(), path.as_str()) {
            ("GET", p) if p == format!("{TENANT}/oauth2/v2.0/authorize") => {
                assert_eq!(query_param(&req.target, "p").as_deref(), Some(POLICY));
                seen.state = query_param(&req.target, "state");
                seen.challenge = query_param(&req.target, "code_challenge");
                let page = format!(
                    "<html><script>var SA_FIELDS = {{\"AttributeFields\":[{{\"IS_PASSWORD\":false,\"ID\":\"logonIdentifier\"}}]}};\nvar SETTINGS = {settings};\n</script></html>"
                );
                // The csrf cookie comes with the page, except on a page that has no csrf at
                // all (the no-csrf case); `settings(false)` pages still get it.
                let csrf_cookie = if settings.contains("NO-CSRF-ANYWHERE") {
                    "x-ms-cpim-other=1; path=/"
                } else {
                    "x-ms-cpim-csrf=CSRF1; path=/; secure; HttpOnly"
                };
                respond(
                    out,
                    "200 OK",
                    &[
                        ("Set-Cookie", csrf_cookie.into()),
                        (
                            "Set-Cookie",
                            "x-ms-cpim-trans=TX1; path=/; secure; HttpOnly".into(),
                        ),
                        ("Content-Type", "text/html".into()),
                    ],
                    &page,
                );
            }
            ("POST", p) if p == format!("{TENANT}/{POLICY}/SelfAsserted") => {
                let body = String::from_utf8_lossy(&req.body).into_owned();
                let fine = req.header("x-csrf-token") == Some("CSRF1")
                    && cookie.contains("x-ms-cpim-trans=TX1")
                    && body.contains("logonIdentifier=owner%40example.com");
                assert!(
                    fine,
                    "headers, cookies and field as B2C's page sends them: {body} / {cookie}"
                );
                seen.posted_password = true;
                // A sign-in that takes its time: the command is still running after the
                // prompt (the signal test below).
                if body.contains("password=hold-on") {
                    std::thread::sleep(std::time::Duration::from_secs(4));
                }
                let answer = if body.contains(&format!("password={password}")) {
                    r#"{"status":"200"}"#
                } else {
                    r#"{"status":"400","errorCode":"AADB2C90054","message":"Your password is incorrect."}"#
                };
                respond(
                    out,
                    "200 OK",
                    &[("Content-Type", "application/json".into())],
                    answer,
                );
            }
            ("GET", p)
                if p == format!("{TENANT}/{POLICY}/api/CombinedSigninAndSignup/confirmed") =>
            {
                assert_eq!(
                    query_param(&req.target, "csrf_token").as_deref(),
                    Some("CSRF1")
                );
                let location = format!(
                    "{REDIRECT}?state={}&code=CODE1",
                    seen.state.clone().unwrap_or_default()
                );
                respond(out, "302 Found", &[("Location", location)], "");
            }
            ("POST", p) if p == format!("{TENANT}/oauth2/v2.0/token") => {
                let body = String::from_utf8_lossy(&req.body).into_owned();
                let verifier = body
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("code_verifier="))
                    .unwrap_or_default()
                    .to_owned();
                let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(sha2::Sha256::digest(verifier.as_bytes()));
                assert_eq!(
                    Some(challenge),
                    seen.challenge,
                    "PKCE S256 verifier matches"
                );
                assert!(
                    body.contains("grant_type=authorization_code") && body.contains("code=CODE1"),
                    "{body}"
                );
                seen.exchanged = true;
                respond(
                    out,
                    "200 OK",
                    &[("Content-Type", "application/json".into())],
                    r#"{"access_token":"AT-headless","token_type":"Bearer","expires_in":900,"refresh_token":"RT-headless","refresh_token_expires_in":7776000}"#,
                );
            }
            _ => respond(out, "404 Not Found", &[], ""),
        }
        Ok(Ending::Clean)
    });
    (server, seen)
}

fn settings(csrf: bool) -> String {
    let csrf = if csrf { r#""csrf":"CSRF1","# } else { "" };
    format!(
        r#"{{"api":"CombinedSigninAndSignup",{csrf}"transId":"StateProperties=TX1","hosts":{{"tenant":"{TENANT}/{POLICY}","policy":"{POLICY}"}}}}"#
    )
}

struct Run {
    dir: std::path::PathBuf,
}

impl Run {
    fn new(tag: &str, server: &Server) -> Run {
        let dir = std::env::temp_dir().join(format!("latchkey-b2c-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let base = format!("https://localhost:{}{TENANT}/oauth2/v2.0", server.port());
        std::fs::write(
            dir.join("profile.toml"),
            format!(
                "name = \"standin\"\ndisplay_name = \"stand-in B2C\"\n\n[endpoints]\nauthorization = \"{base}/authorize\"\ntoken = \"{base}/token\"\nb2c_policy = \"{POLICY}\"\n\n[client]\nid = \"client-1\"\nauth = \"none\"\nredirect_uri = \"{REDIRECT}\"\nscopes = [\"openid\", \"offline_access\"]\n\n[pkce]\nsend = true\n\n[authorize]\n\n[token]\n\n[response]\n\n[lifecycle]\n"
            ),
        )
        .unwrap();
        std::fs::write(dir.join("ca.pem"), &pki().ca_pem).unwrap();
        Run { dir }
    }

    fn login(&self, password: &[u8]) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args([
                "login",
                "--headless",
                "--username",
                "owner@example.com",
                "--profile-file",
            ])
            .arg(self.dir.join("profile.toml"))
            .arg("--ca-file")
            .arg(self.dir.join("ca.pem"))
            .arg("--state-dir")
            .arg(self.dir.join("state"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(password).unwrap();
        child.wait_with_output().unwrap()
    }

    fn stored(&self) -> bool {
        self.dir.join("state").join("tokens-standin.json").exists()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn headless_login_signs_in_through_the_b2c_page_api_and_stores_the_session() {
    let (server, seen) = stand_in(settings(true), "s3cret%26pw");
    let run = Run::new("ok", &server);
    let out = run.login(b"s3cret&pw\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("logged in"), "{err}");
    assert!(!err.contains("s3cret"), "the password never prints: {err}");
    assert!(seen.lock().unwrap().exchanged);
    let tokens = std::fs::read_to_string(run.dir.join("state/tokens-standin.json")).unwrap();
    assert!(tokens.contains("RT-headless"));
    assert!(!tokens.contains("s3cret"), "the password is never stored");
    // The settings given to the login are saved once it succeeded.
    let saved = std::fs::read_to_string(run.dir.join("state/provider-standin.json")).unwrap();
    assert!(saved.contains("ca.pem"), "{saved}");
}

#[test]
fn a_wrong_password_ends_with_the_providers_message_and_stores_nothing() {
    let (server, seen) = stand_in(settings(true), "right");
    let run = Run::new("wrong", &server);
    let out = run.login(b"wrong\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the provider refused the sign-in: Your password is incorrect."),
        "{err}"
    );
    assert!(seen.lock().unwrap().posted_password);
    assert!(!seen.lock().unwrap().exchanged);
    assert!(!run.stored());
    // The settings given to a login that did not succeed are not saved.
    assert!(!run.dir.join("state/provider-standin.json").exists());
}

#[test]
fn a_page_without_csrf_in_settings_takes_it_from_the_cookie_and_signs_in() {
    let (server, seen) = stand_in(settings(false), "right");
    let run = Run::new("cookiecsrf", &server);
    let out = run.login(b"right\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(seen.lock().unwrap().exchanged);
}

#[test]
fn a_sign_in_page_without_csrf_is_named_and_no_password_is_sent() {
    let no_csrf = settings(false).replace("\"api\"", "\"note\":\"NO-CSRF-ANYWHERE\",\"api\"");
    let (server, seen) = stand_in(no_csrf, "right");
    let run = Run::new("nocsrf", &server);
    let out = run.login(b"right\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the sign-in page has no csrf"), "{err}");
    assert!(!seen.lock().unwrap().posted_password);
    assert!(!run.stored());
}

/// The end of a `--headless` login whose password was typed on a pseudo-terminal.
#[cfg(unix)]
struct TerminalLogin {
    out: Output,
    /// What the terminal showed while the password was typed.
    shown: Vec<u8>,
    /// Whether the terminal echoes again (and edits lines) after the command.
    echo_after: bool,
}

#[cfg(unix)]
impl Run {
    /// `latchkey login --headless` with a pseudo-terminal as standard input: waits for the
    /// prompt and for echo to be switched off, then types `keys`.
    fn login_on_terminal(&self, keys: &[u8]) -> TerminalLogin {
        self.login_on_terminal_then(keys, None)
    }

    /// [`login_on_terminal`](Self::login_on_terminal), then sends `signal` (a `kill` name
    /// such as `TERM`) once `keys` are typed.
    fn login_on_terminal_then(&self, keys: &[u8], signal: Option<&str>) -> TerminalLogin {
        use rustix::fs::{Mode, OFlags};
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        use rustix::termios::{LocalModes, tcgetattr};
        use std::io::{BufRead, Read};
        let master =
            openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let name = ptsname(&master, Vec::new()).unwrap();
        let terminal = std::fs::File::from(
            rustix::fs::open(
                name.as_c_str(),
                OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .unwrap(),
        );
        let mut master = std::fs::File::from(master);
        let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args([
                "login",
                "--headless",
                "--username",
                "owner@example.com",
                "--profile-file",
            ])
            .arg(self.dir.join("profile.toml"))
            .arg("--ca-file")
            .arg(self.dir.join("ca.pem"))
            .arg("--state-dir")
            .arg(self.dir.join("state"))
            .stdin(terminal.try_clone().unwrap())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut prompt = String::new();
        stderr.read_line(&mut prompt).unwrap();
        assert!(prompt.starts_with("Password for"), "{prompt}");
        let echoing = || {
            tcgetattr(&terminal)
                .unwrap()
                .local_modes
                .contains(LocalModes::ECHO)
        };
        let mut waited = 0;
        while echoing() {
            assert!(waited < 1000, "echo never switched off");
            std::thread::sleep(std::time::Duration::from_millis(10));
            waited += 1;
        }
        master.write_all(keys).unwrap();
        let mut master = Some(master);
        if signal == Some("hang-up") {
            // The terminal goes away (its window closed): the child's side reads end of file.
            std::thread::sleep(std::time::Duration::from_millis(200));
            master = None;
        } else if let Some(signal) = signal {
            // Once the typed keys are read (the prompt is still up: no Enter), so a signal
            // arrives mid-prompt rather than before the first byte.
            std::thread::sleep(std::time::Duration::from_millis(200));
            let sent = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(child.id().to_string())
                .status()
                .unwrap();
            assert!(sent.success(), "kill -{signal}");
        }
        let mut rest = String::new();
        stderr.read_to_string(&mut rest).unwrap();
        let mut out = child.wait_with_output().unwrap();
        out.stderr = format!("{prompt}{rest}").into_bytes();
        // A hung-up terminal has no settings left to read, nor anything shown.
        let Some(mut master) = master else {
            return TerminalLogin {
                out,
                shown: Vec::new(),
                echo_after: false,
            };
        };
        let local = tcgetattr(&terminal).unwrap().local_modes;
        let echo_after = local.contains(LocalModes::ECHO | LocalModes::ICANON | LocalModes::ISIG);
        // Whatever the terminal showed is waiting on the master side.
        rustix::io::ioctl_fionbio(&master, true).unwrap();
        let mut shown = Vec::new();
        let _ = master.read_to_end(&mut shown);
        TerminalLogin {
            out,
            shown,
            echo_after,
        }
    }
}

/// A password typed on the terminal is not shown (it was read with echo on before), a
/// Backspace takes back one character, and the terminal echoes again afterwards.
#[cfg(unix)]
#[test]
fn a_password_typed_on_the_terminal_is_not_shown() {
    let (server, seen) = stand_in(settings(true), "s3cret%26p%C3%A9");
    let run = Run::new("tty", &server);
    let login = run.login_on_terminal("s3cretX\x7f&pé\r".as_bytes());
    let err = String::from_utf8_lossy(&login.out.stderr);
    assert_eq!(login.out.status.code(), Some(0), "{err}");
    assert!(seen.lock().unwrap().exchanged);
    let shown = String::from_utf8_lossy(&login.shown);
    assert!(
        !shown.contains("s3cret"),
        "the password was shown: {shown:?}"
    );
    assert!(login.echo_after, "the terminal settings are put back");
}

/// Ctrl-C at the password prompt ends the command with the terminal's settings put back
/// (a process killed while echo was off would leave the shell not showing what is typed);
/// nothing is sent and nothing is stored.
#[cfg(unix)]
#[test]
fn ctrl_c_at_the_terminal_password_prompt_puts_the_terminal_back() {
    let (server, seen) = stand_in(settings(true), "right");
    let run = Run::new("tty-cancel", &server);
    let login = run.login_on_terminal(b"rig\x03");
    let err = String::from_utf8_lossy(&login.out.stderr);
    assert_eq!(login.out.status.code(), Some(2), "{err}");
    assert!(err.contains("error: cancelled"), "{err}");
    assert!(login.echo_after, "the terminal settings are put back");
    assert!(!seen.lock().unwrap().posted_password);
    assert!(!run.stored());
    assert!(!run.dir.join("state/provider-standin.json").exists());
}

/// SIGTERM or SIGHUP at the password prompt (a `kill`, the terminal window closed) ends the
/// command with the status the signal gives (128 + its number) and the terminal's settings
/// put back — a process killed with echo off would leave the shell not showing what is
/// typed; nothing is sent and nothing is stored.
#[cfg(unix)]
#[test]
fn a_signal_at_the_terminal_password_prompt_puts_the_terminal_back() {
    for (signal, status) in [("TERM", 143), ("HUP", 129)] {
        let (server, seen) = stand_in(settings(true), "right");
        let run = Run::new(&format!("tty-{signal}"), &server);
        let login = run.login_on_terminal_then(b"rig", Some(signal));
        let err = String::from_utf8_lossy(&login.out.stderr);
        assert_eq!(login.out.status.code(), Some(status), "SIG{signal}: {err}");
        assert!(err.contains("interrupted by a signal"), "{err}");
        assert!(
            login.echo_after,
            "SIG{signal}: the terminal settings are put back"
        );
        assert!(!seen.lock().unwrap().posted_password);
        assert!(!run.stored());
    }
}

/// After the prompt, SIGTERM still ends the command at once with 143 (the notifiers the
/// prompt registered would otherwise leave it ignored), here while the sign-in is in
/// flight; and a terminal that hangs up mid-prompt cancels it without sending anything.
#[cfg(unix)]
#[test]
fn after_the_prompt_sigterm_still_ends_the_command_and_a_hang_up_cancels_the_prompt() {
    let (server, seen) = stand_in(settings(true), "hold-on");
    let run = Run::new("tty-after", &server);
    let started = std::time::Instant::now();
    let login = run.login_on_terminal_then(b"hold-on\r", Some("TERM"));
    let err = String::from_utf8_lossy(&login.out.stderr);
    assert_eq!(login.out.status.code(), Some(143), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "ended before the sign-in answered"
    );
    assert!(seen.lock().unwrap().posted_password);
    assert!(login.echo_after);
    assert!(!run.stored());

    let (server, seen) = stand_in(settings(true), "right");
    let run = Run::new("tty-hangup", &server);
    let login = run.login_on_terminal_then(b"rig", Some("hang-up"));
    let err = String::from_utf8_lossy(&login.out.stderr);
    assert_eq!(login.out.status.code(), Some(2), "{err}");
    assert!(
        !seen.lock().unwrap().posted_password,
        "a cut-short password was sent"
    );
    assert!(!run.stored());
}
