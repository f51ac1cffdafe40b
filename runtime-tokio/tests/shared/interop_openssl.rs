//! latchkey's TLS client identity against a real `openssl s_server -Verify 1 -CAfile …
//! -verify_return_error -rev` (it answers each line reversed): a client certificate made by
//! `latchkey cert generate --usage client` and one issued by an openssl CA for a
//! `latchkey cert csr` request are accepted, a [`LiveIdentity`] swapped between two
//! connections presents the new certificate on the next one, and a certificate s_server does
//! not trust is refused.
//!
//! Every test is ignored in a plain `cargo test` (it needs the server); `interop/openssl.sh`
//! starts it and runs them with `--include-ignored`. Asked to run without it, they fail,
//! naming the missing variable: they never pass by skipping. The script sets:
//!
//! * `LATCHKEY_OPENSSL_SERVER`: `127.0.0.1:<port>` of s_server;
//! * `LATCHKEY_OPENSSL_SERVER_CERT`: its certificate (PEM, `localhost`), which the client
//!   trusts;
//! * `LATCHKEY_OPENSSL_CLIENTS`: a directory with `a/`, `b/` and `foreign/`, each holding
//!   `cert.pem` and `key.pem` — `a` self-signed by `latchkey cert generate` and listed in
//!   s_server's `-CAfile`, `b` from the run's openssl CA (also in `-CAfile`), `foreign`
//!   self-signed and unknown to s_server.
//!
//! Shared cases: run on every runtime through `crate::rt`.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::rt::block_on;
use crate::rt::http::Roots;
use crate::rt::tls::{Identity, LiveIdentity, client_config};
use crate::rt::tls_io::Conn;

/// What the script set up.
struct Env {
    server: SocketAddr,
    server_cert: Vec<u8>,
    clients: PathBuf,
}

impl Env {
    fn from_env() -> Env {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: these tests run under interop/openssl.sh")
            })
        };
        let server = var("LATCHKEY_OPENSSL_SERVER")
            .parse()
            .expect("LATCHKEY_OPENSSL_SERVER is host:port");
        let server_cert =
            std::fs::read(var("LATCHKEY_OPENSSL_SERVER_CERT")).expect("s_server's certificate");
        Env {
            server,
            server_cert,
            clients: PathBuf::from(var("LATCHKEY_OPENSSL_CLIENTS")),
        }
    }

    /// The client identity in `clients/<who>/`.
    fn identity(&self, who: &str) -> Identity {
        let read = |file: &str| {
            let path = self.clients.join(who).join(file);
            std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        Identity::from_pem(&read("cert.pem"), &read("key.pem")).expect("client identity")
    }

    fn config(&self, identity: &LiveIdentity) -> Arc<rustls::ClientConfig> {
        client_config(
            &Roots::Pem(self.server_cert.clone()),
            None,
            Some(identity),
            &[],
        )
        .expect("client config")
    }
}

/// s_server serves one connection at a time; the tests take turns.
fn exclusive() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sends `line` over a new connection and returns s_server's answer (the line reversed).
async fn exchange(
    config: Arc<rustls::ClientConfig>,
    server: SocketAddr,
    line: &str,
) -> io::Result<String> {
    let mut conn = Conn::connect(config, server, "localhost").await?;
    conn.write_all(format!("{line}\n").as_bytes()).await?;
    let answer = conn.read_exact(line.len() + 1).await?;
    String::from_utf8(answer).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn reversed(line: &str) -> String {
    format!("{}\n", line.chars().rev().collect::<String>())
}

/// Runs `fut` on the runtime under test; fails after 30 s.
fn with_deadline<T>(fut: impl std::future::Future<Output = T>) -> T {
    block_on(async {
        let mut fut = std::pin::pin!(fut);
        let mut timer = std::pin::pin!(crate::rt::sleep(Duration::from_secs(30)));
        std::future::poll_fn(|cx| {
            if let std::task::Poll::Ready(v) = fut.as_mut().poll(cx) {
                return std::task::Poll::Ready(v);
            }
            assert!(
                timer.as_mut().poll(cx).is_pending(),
                "no answer from s_server within 30 s"
            );
            std::task::Poll::Pending
        })
        .await
    })
}

#[test]
#[ignore = "needs interop/openssl.sh (openssl s_server)"]
fn openssl_s_server_accepts_latchkey_client_certificates_and_the_swapped_one_next_time() {
    let env = Env::from_env();
    let _turn = exclusive();
    let live = LiveIdentity::new(env.identity("a"));
    let config = env.config(&live);
    with_deadline(async {
        let line = "panel-a: made by latchkey cert generate";
        let answer = exchange(config.clone(), env.server, line)
            .await
            .expect("s_server accepts the self-signed latchkey client certificate");
        assert_eq!(answer, reversed(line));

        assert_eq!(live.replace(env.identity("b")), 1);
        let line = "panel-b: latchkey cert csr, signed by openssl";
        let answer = exchange(config.clone(), env.server, line)
            .await
            .expect("s_server accepts the swapped-in certificate on the next connection");
        assert_eq!(answer, reversed(line));
    });
}

#[test]
#[ignore = "needs interop/openssl.sh (openssl s_server)"]
fn openssl_s_server_refuses_a_client_certificate_it_does_not_trust() {
    let env = Env::from_env();
    let _turn = exclusive();
    let live = LiveIdentity::new(env.identity("foreign"));
    let refused = with_deadline(exchange(env.config(&live), env.server, "let me in")).is_err();
    assert!(refused, "s_server must refuse an unknown issuer");
}
