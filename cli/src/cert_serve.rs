//! `latchkey cert serve`: a TLS echo listener for diagnostics that serves a certificate and
//! key from files and hot-swaps them when an outside tool replaces the files.
//!
//! The files are watched by `latchkey_tokio::renewer::WatchedFiles` inside a `CertRenewer`
//! (no state directory: the files are the truth), so a replaced pair goes through the same
//! validation and swap as any renewal: new connections get the new certificate, open ones
//! keep theirs, and a half-written or otherwise invalid pair is refused while the last good
//! one stays. One JSON line per event goes to standard output (`listening`, `swapped`,
//! `refused`, `connection`, `handshake_failed`, …); each connection echoes what it receives.
//! Runs until interrupted.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use latchkey_pki::inspect::{CertInfo, rfc3339};
use latchkey_tokio::renewer::{CertRenewer, RenewalEvent, WatchedFiles};
use latchkey_tokio::tls::{ClientAuth, server_config};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::oauth::Failure;

/// Most connections served at once; more are closed on arrival.
const MAX_CONNECTIONS: usize = 64;
/// Longest TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection silent this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Largest trust-anchor file read.
const MAX_FILE: usize = 4 * 1024 * 1024;

/// `latchkey cert serve` arguments.
#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    /// The certificate (PEM, leaf first; intermediates may follow). Watched: replace it (and
    /// the key) to swap — write a temporary file beside it and rename it over, key first.
    #[arg(long)]
    cert: PathBuf,
    /// Its private key (PEM). Watched.
    #[arg(long)]
    key: PathBuf,
    /// Address to listen on (port 0: any free port, printed in the `listening` line).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Intermediate certificates, sent after the leaf. Watched.
    #[arg(long)]
    chain: Option<PathBuf>,
    /// Require client certificates issued by these CAs (PEM): mutual TLS.
    #[arg(long)]
    client_ca: Option<PathBuf>,
    /// Trust anchors the served chain must lead to; without it the certificate must be
    /// self-signed.
    #[arg(long)]
    root: Option<PathBuf>,
    /// How often to look at the files, in milliseconds.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    poll_ms: u64,
}

/// Runs `latchkey cert serve` until interrupted.
pub(crate) fn serve(args: ServeArgs) -> Result<(), Failure> {
    crate::oauth::runtime()?.block_on(run(args))
}

async fn run(args: ServeArgs) -> Result<(), Failure> {
    // Files that cannot be read are unusable input (exit 2, as everywhere); a pair that is
    // read but refused is the command's outcome (exit 1, with a `refused` line).
    read(&args.cert)?;
    read(&args.key)?;
    let client_ca = args.client_ca.as_deref().map(read).transpose()?;
    let root = args.root.as_deref().map(read).transpose()?;
    let mut source =
        WatchedFiles::new(&args.cert, &args.key).with_interval(Duration::from_millis(args.poll_ms));
    if let Some(chain) = &args.chain {
        source = source.with_chain(chain);
    }
    let mut builder = CertRenewer::builder(source).observer(Box::new(print_event));
    if let Some(root) = root {
        builder = builder.roots(root);
    }
    let renewer = match builder.start().await {
        Ok(renewer) => renewer,
        Err(e) => {
            emit(&json!({"event": "refused", "reason": e.to_string()}));
            return Err((1, format!("cannot serve {}: {e}", args.cert.display())));
        }
    };
    let client_auth = match client_ca {
        Some(roots_pem) => ClientAuth::Required { roots_pem },
        None => ClientAuth::None,
    };
    let config = server_config(renewer.identity(), &client_auth, &[])
        .map_err(|e| (2, format!("--client-ca: {e}")))?;
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| (2, format!("cannot listen on {}: {e}", args.listen)))?;
    let address = listener
        .local_addr()
        .map_err(|e| (2, format!("cannot read the listening address: {e}")))?;
    let leaf = renewer.status().certificate;
    emit(&json!({
        "event": "listening",
        "address": address.to_string(),
        "fingerprint": leaf.fingerprint_sha256,
        "subject": leaf.subject,
        "not_after": rfc3339(leaf.not_after),
        "client_auth": matches!(client_auth, ClientAuth::Required { .. }),
    }));
    tokio::spawn({
        let renewer = renewer.clone();
        async move { renewer.run().await }
    });

    let acceptor = TlsAcceptor::from(config);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: say so, pause, go on.
                emit(&json!({"event": "accept_failed", "reason": e.to_string()}));
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            emit(&json!({"event": "busy", "peer": peer.to_string()}));
            continue;
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            connection(acceptor, tcp, peer).await;
            drop(slot);
        });
    }
}

/// Handshake, one `connection` line, then echo until the peer closes or stays silent.
async fn connection(acceptor: TlsAcceptor, tcp: tokio::net::TcpStream, peer: SocketAddr) {
    let mut tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            emit(
                &json!({"event": "handshake_failed", "peer": peer.to_string(),
                         "reason": e.to_string()}),
            );
            return;
        }
        Err(_) => {
            emit(
                &json!({"event": "handshake_failed", "peer": peer.to_string(),
                         "reason": "no handshake within 10 s"}),
            );
            return;
        }
    };
    let (_, session) = tls.get_ref();
    let client = session
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|der| CertInfo::from_der(der).ok());
    emit(&json!({
        "event": "connection",
        "peer": peer.to_string(),
        "protocol": session.protocol_version().map(|v| format!("{v:?}")),
        "client_subject": client.as_ref().map(|c| c.subject.clone()),
        "client_fingerprint": client.as_ref().map(|c| c.fingerprint_sha256.clone()),
    }));
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match tokio::time::timeout(IDLE_TIMEOUT, tls.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => break,
        };
        if tls.write_all(&buf[..n]).await.is_err() || tls.flush().await.is_err() {
            break;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), tls.shutdown()).await;
}

/// The renewer's events as JSON lines: a swap names the new certificate, a refusal the
/// reason; never key material.
fn print_event(event: &RenewalEvent) {
    let line = match event {
        RenewalEvent::Renewed {
            generation,
            fingerprint,
            subject,
            not_after,
            ..
        } => json!({
            "event": "swapped",
            "generation": generation,
            "fingerprint": fingerprint,
            "subject": subject,
            "not_after": rfc3339(*not_after),
        }),
        RenewalEvent::Failed {
            stage,
            reason,
            failures,
            retry_at,
            ..
        } => json!({
            "event": "refused",
            "stage": stage.to_string(),
            "reason": reason,
            "failures": failures,
            "retry_at": retry_at.map(rfc3339),
        }),
        RenewalEvent::ClockUnreliable {
            now,
            not_before,
            recheck_at,
            ..
        } => json!({
            "event": "clock_unreliable",
            "now": rfc3339(*now),
            "not_before": rfc3339(*not_before),
            "recheck_at": rfc3339(*recheck_at),
        }),
        RenewalEvent::Scheduled {
            action,
            renew_at,
            next_check,
            ..
        } => json!({
            "event": "scheduled",
            "action": action.to_string(),
            "renew_at": rfc3339(*renew_at),
            "next_check": rfc3339(*next_check),
        }),
        other => json!({"event": "note", "message": other.to_string()}),
    };
    emit(&line);
}

/// One JSON line on standard output, flushed (a reader may be waiting for it).
fn emit(line: &Value) {
    let mut out = std::io::stdout().lock();
    // A closed standard output must not stop the listener.
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, Failure> {
    crate::read_limited(path, MAX_FILE)
}
