//! `latchkey cert serve` as a user meets it: one JSON line per event, a replaced pair served
//! to the next connection while an open one keeps echoing, a half-written pair refused, and
//! a pair that does not hold together refused at start with exit status 1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use latchkey_pki::inspect::CertInfo;
use serde_json::Value;

fn scratch(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("latchkey-serve-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// `latchkey cert generate --cn localhost` into `dir`.
fn generate(dir: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args([
            "cert",
            "generate",
            "--cn",
            "localhost",
            "--days",
            "2",
            "--out",
        ])
        .arg(dir)
        .output()
        .expect("run latchkey");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A file replaced the way the watcher's documentation advises: temporary file, rename.
fn put(from: &Path, to: &Path) {
    let temp = to.with_extension("tmp");
    std::fs::copy(from, &temp).unwrap();
    std::fs::rename(&temp, to).unwrap();
}

fn fingerprint(cert: &Path) -> String {
    CertInfo::from_pem(&std::fs::read(cert).unwrap()).unwrap()[0]
        .fingerprint_sha256
        .clone()
}

/// The running server: its process and its JSON lines.
struct Serve {
    child: Child,
    lines: Receiver<Value>,
}

impl Serve {
    fn start(cert: &Path, key: &Path) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args([
                "cert",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--poll-ms",
                "50",
            ])
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start latchkey cert serve");
        let stdout = child.stdout.take().unwrap();
        let (sent, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line).expect("every line is JSON");
                if sent.send(value).is_err() {
                    break;
                }
            }
        });
        Serve { child, lines }
    }

    /// The next line whose `event` is `event` (earlier lines are skipped); fails after 20 s.
    fn next(&self, event: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {event} line within 20 s"));
            if line["event"] == event {
                return line;
            }
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TLS connection trusting `trusted` (PEM files); returns it and the server's certificate
/// fingerprint.
fn connect(
    port: u16,
    trusted: &[&Path],
) -> (
    rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    String,
) {
    let mut roots = rustls::RootCertStore::empty();
    for path in trusted {
        let der = latchkey_pki::pem::parse_certificates(&std::fs::read(path).unwrap()).unwrap();
        roots.add(der[0].clone()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let conn =
        rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    echo(&mut tls, b"hello");
    let der = tls.conn.peer_certificates().unwrap()[0].to_vec();
    (tls, CertInfo::from_der(&der).unwrap().fingerprint_sha256)
}

fn echo(tls: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>, msg: &[u8]) {
    tls.write_all(msg).unwrap();
    tls.flush().unwrap();
    let mut back = vec![0u8; msg.len()];
    tls.read_exact(&mut back).unwrap();
    assert_eq!(back, msg);
}

#[test]
fn serve_swaps_a_replaced_pair_in_for_new_connections_and_refuses_a_half_written_one() {
    let dir = scratch("swap");
    let (a, b, srv) = (dir.join("a"), dir.join("b"), dir.join("srv"));
    generate(&a);
    generate(&b);
    std::fs::create_dir_all(&srv).unwrap();
    let (cert, key) = (srv.join("cert.pem"), srv.join("key.pem"));
    put(&a.join("cert.pem"), &cert);
    put(&a.join("key.pem"), &key);
    let trusted = [a.join("cert.pem"), b.join("cert.pem")];
    let trusted: Vec<&Path> = trusted.iter().map(PathBuf::as_path).collect();

    let serve = Serve::start(&cert, &key);
    let listening = serve.next("listening");
    assert_eq!(listening["fingerprint"], fingerprint(&a.join("cert.pem")));
    let port: u16 = listening["address"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let (mut before, seen) = connect(port, &trusted);
    assert_eq!(seen, fingerprint(&a.join("cert.pem")));

    // The certificate first: the pair is half-written until the key follows.
    put(&b.join("cert.pem"), &cert);
    let refused = serve.next("refused");
    assert!(
        refused["reason"].as_str().unwrap().contains("key mismatch"),
        "{refused}"
    );
    let (_, seen) = connect(port, &trusted);
    assert_eq!(seen, fingerprint(&a.join("cert.pem")), "not swapped in");

    put(&b.join("key.pem"), &key);
    let swapped = serve.next("swapped");
    assert_eq!(swapped["fingerprint"], fingerprint(&b.join("cert.pem")));
    let (_, seen) = connect(port, &trusted);
    assert_eq!(seen, fingerprint(&b.join("cert.pem")));
    echo(&mut before, b"opened before the swap");
    drop(serve);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_certificate_file_that_cannot_be_read_is_exit_2() {
    // Unusable input: exit 2, as in every other command (a pair read but refused is 1).
    let dir = scratch("missing");
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["cert", "serve", "--listen", "127.0.0.1:0"])
        .arg("--cert")
        .arg(dir.join("nope.pem"))
        .arg("--key")
        .arg(dir.join("nope.key"))
        .output()
        .expect("run latchkey");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nope.pem"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_refuses_to_start_with_a_key_of_another_certificate() {
    let dir = scratch("mismatch");
    let (a, b) = (dir.join("a"), dir.join("b"));
    generate(&a);
    generate(&b);
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["cert", "serve", "--listen", "127.0.0.1:0"])
        .arg("--cert")
        .arg(a.join("cert.pem"))
        .arg("--key")
        .arg(b.join("key.pem"))
        .output()
        .expect("run latchkey");
    assert_eq!(out.status.code(), Some(1));
    let line: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(line["event"], "refused");
    assert!(
        line["reason"].as_str().unwrap().contains("key mismatch"),
        "{line}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("PRIVATE KEY"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
