//! `CertRenewer` on real sockets, files and timers: a due renewal hot-swapped under a running
//! TLS server (new handshakes get the new certificate, an open connection keeps the old
//! one), a bad pair refused with backoff, the history across a restart, watched files
//! (a half-written pair ignored, the whole pair picked up), the Legrand cloud source through
//! the token keeper with mutual TLS, and wall-clock jumps.
//!
//! Certificates live a few seconds so that renewals fall due while the test watches.
//!
//! Shared cases: run on every runtime through `crate::rt`.

use std::future::Future;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use latchkey_oauth_core::cloud::legrand::{LegrandApi, parse_plant};
use latchkey_oauth_core::http::HttpResponse;
use latchkey_oauth_core::profile::Profile;
use latchkey_oauth_core::response::parse_token_response;
use latchkey_oauth_core::session::{Grant, SessionConfig};
use latchkey_pki::inspect::{CertInfo, San};
use latchkey_pki::key::{KeyType, PrivateKey};
use latchkey_pki::request::{
    Certificate, DistinguishedName, ExtendedKeyUsage, KeyUsage, RequestParams, SelfSignedParams,
    SubjectAltName,
};
use latchkey_pki::schedule::{Action, RenewalPolicy};
use latchkey_pki::validate::Usage;
use rand_core::SeedableRng;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::CertificateDer;

use crate::rt::http::{HttpClient, HttpConfig, Roots};
use crate::rt::keeper::{TokenKeeper, now};
use crate::rt::renewer::{
    CertRenewer, CertifiedPair, CloudSource, Observer, RenewalEvent, RenewalSource,
    SelfSignedSource, SourceError, Stage, WallClock, WatchedFiles,
};
use crate::rt::state::StateDir;
use crate::rt::tls::{ClientAuth, LiveIdentity, client_config, server_config};
use crate::rt::tls_io::{Conn, echo_server};
use crate::rt::{block_on, sleep};
use crate::support::{Ending, Received, Server, pki};

// --- helpers -----------------------------------------------------------------------------

/// `CN=localhost`, `dns:localhost`, serverAuth.
fn localhost() -> RequestParams {
    RequestParams::new(DistinguishedName::common_name("localhost"))
        .with_san(SubjectAltName::Dns("localhost".into()))
        .with_key_usage(KeyUsage::DigitalSignature)
        .with_extended_key_usage(ExtendedKeyUsage::ServerAuth)
}

/// A self-signed `localhost` pair valid from `not_before` to `not_after`, and its DER.
fn pair(not_before: u64, not_after: u64) -> (CertifiedPair, Vec<u8>) {
    static SEED: AtomicU64 = AtomicU64::new(1);
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(SEED.fetch_add(1, Ordering::Relaxed));
    let key = PrivateKey::generate(KeyType::P256, &mut rng).expect("key");
    let params = SelfSignedParams::new(localhost(), not_before, not_after);
    let cert = Certificate::self_signed(&params, &key, &mut rng).expect("certificate");
    let der = cert.der().to_vec();
    let pair = CertifiedPair::new(cert.to_pem().into_bytes(), key.to_pem().as_bytes().to_vec());
    (pair, der)
}

fn leaf(pem: &[u8]) -> CertInfo {
    CertInfo::from_pem(pem).expect("certificate")[0].clone()
}

fn current_der(identity: &LiveIdentity) -> Vec<u8> {
    identity.current().chain()[0].to_vec()
}

/// Every event the renewer reported.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<RenewalEvent>>>);

impl Events {
    fn observer(&self) -> Observer {
        let events = self.clone();
        Box::new(move |e: &RenewalEvent| events.0.lock().unwrap().push(e.clone()))
    }

    fn all(&self) -> Vec<RenewalEvent> {
        self.0.lock().unwrap().clone()
    }

    /// `(stage, reason, failures, retry_at)` of every `Failed`.
    fn failures(&self) -> Vec<(Stage, String, u32, Option<u64>)> {
        self.all()
            .into_iter()
            .filter_map(|e| match e {
                RenewalEvent::Failed {
                    stage,
                    reason,
                    failures,
                    retry_at,
                    ..
                } => Some((stage, reason, failures, retry_at)),
                _ => None,
            })
            .collect()
    }

    /// `(generation, fingerprint, due)` of every `Renewed`.
    fn renewed(&self) -> Vec<(u64, String, bool)> {
        self.all()
            .into_iter()
            .filter_map(|e| match e {
                RenewalEvent::Renewed {
                    generation,
                    fingerprint,
                    due,
                    ..
                } => Some((generation, fingerprint, due)),
                _ => None,
            })
            .collect()
    }
}

/// A source whose answers the test writes: `make(call number, now)`.
struct Scripted {
    make: Box<dyn Fn(usize, u64) -> Result<CertifiedPair, SourceError> + Send + Sync>,
    calls: AtomicUsize,
}

impl Scripted {
    fn new(
        make: impl Fn(usize, u64) -> Result<CertifiedPair, SourceError> + Send + Sync + 'static,
    ) -> Self {
        Scripted {
            make: Box::new(make),
            calls: AtomicUsize::new(0),
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl RenewalSource for Scripted {
    async fn renew(&self, now: u64) -> Result<CertifiedPair, SourceError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        (self.make)(n, now)
    }
}

/// Another source, counting the pairs asked of it.
struct Counting<S> {
    inner: S,
    calls: AtomicUsize,
}

impl<S: RenewalSource> RenewalSource for Counting<S> {
    async fn renew(&self, now: u64) -> Result<CertifiedPair, SourceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.renew(now).await
    }
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "latchkey-renewer-{tag}-{}-{n}-{}",
            std::process::id(),
            env!("CARGO_PKG_NAME")
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Replaces `path` the way the watched-file advice says: a temporary file, then a rename.
fn replace_file(path: &Path, bytes: &[u8]) {
    let temp = path.with_extension("tmp");
    std::fs::write(&temp, bytes).expect("write");
    std::fs::rename(&temp, path).expect("rename");
}

/// Runs `body` on the runtime under test while the renewer's loop runs beside it; the loop
/// stops when the body ends. Fails the test after 30 s.
fn drive<S: RenewalSource, T>(renewer: &CertRenewer<S>, body: impl Future<Output = T>) -> T {
    block_on(async {
        let mut body = pin!(body);
        let mut run = pin!(renewer.run());
        let mut run_ended = false;
        let mut deadline = pin!(sleep(Duration::from_secs(30)));
        std::future::poll_fn(|cx| {
            if let Poll::Ready(v) = body.as_mut().poll(cx) {
                return Poll::Ready(v);
            }
            if !run_ended && run.as_mut().poll(cx).is_ready() {
                run_ended = true;
            }
            assert!(
                deadline.as_mut().poll(cx).is_pending(),
                "the case did not finish within 30 s"
            );
            Poll::Pending
        })
        .await
    })
}

/// Waits until `done` holds, checking every 20 ms; fails after 15 s naming `what`.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "timed out waiting for {what}"
        );
        sleep(Duration::from_millis(20)).await;
    }
}

/// What the echo server says first: a fixed-length tag of the client's certificate (FNV-1a
/// 64 in hex, or dashes without one) and a newline.
fn describe(certs: Option<&[CertificateDer<'static>]>) -> String {
    match certs.and_then(|c| c.first()) {
        Some(c) => format!("{:016x}\n", fnv(c)),
        None => format!("{}\n", "-".repeat(16)),
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Connects trusting `trusted` (DER certificates), reads the server's line; returns the
/// connection, the server's certificate and the line.
async fn open(
    trusted: &[&[u8]],
    identity: Option<&LiveIdentity>,
    addr: std::net::SocketAddr,
) -> (Conn, Vec<u8>, String) {
    let roots: String = trusted
        .iter()
        .map(|der| latchkey_pki::pem::encode_certificate(der))
        .collect();
    let config =
        client_config(&Roots::Pem(roots.into_bytes()), None, identity, &[]).expect("client config");
    let mut conn = Conn::connect(config, addr, "localhost")
        .await
        .expect("handshake");
    let who = String::from_utf8(conn.read_exact(17).await.expect("who line")).expect("ascii");
    let cert = conn.server_certificate();
    (conn, cert, who)
}

async fn echo(conn: &mut Conn, msg: &[u8]) {
    conn.write_all(msg).await.expect("write");
    assert_eq!(conn.read_exact(msg.len()).await.expect("echo"), msg);
}

/// A backoff of 1 s, then 3 s, 9 s: short enough to watch.
fn quick_backoff() -> RenewalPolicy {
    let mut policy = RenewalPolicy::default();
    policy.backoff.initial = 1;
    policy.backoff.factor = 3;
    policy.backoff.max = 9;
    policy
}

// --- due renewal under a running server ---------------------------------------------------

#[test]
fn a_due_certificate_is_renewed_and_served_to_new_connections_while_open_ones_keep_theirs() {
    let dir = Scratch::new("due");
    let events = Events::default();
    // Six-second certificates: renewal is due with half the lifetime left (3 s); attempts
    // may follow each other after 1 s (the default 60 s would outlast the certificate).
    let source = SelfSignedSource::new(localhost(), Duration::from_secs(6)).with_backdate(0);
    let renewer = block_on(async {
        CertRenewer::builder(source)
            .policy(quick_backoff())
            .persist(StateDir::open(&dir.0).await.expect("state"), "https")
            .observer(events.observer())
            .start()
            .await
            .expect("first pair")
    });
    let first = current_der(renewer.identity());
    let addr = echo_server(
        server_config(renewer.identity(), &ClientAuth::None, &[]).expect("server config"),
        describe,
    );
    let second = drive(&renewer, async {
        let (mut before, seen, _) = open(&[&first], None, addr).await;
        assert_eq!(seen, first);
        until("the due renewal", || renewer.identity().generation() >= 1).await;
        let second = current_der(renewer.identity());
        assert_ne!(second, first);
        let (mut after, seen, _) = open(&[&second], None, addr).await;
        assert_eq!(
            seen, second,
            "a new connection gets the renewed certificate"
        );
        echo(&mut before, b"opened before the swap").await;
        assert_eq!(
            before.server_certificate(),
            first,
            "it keeps its certificate"
        );
        echo(&mut after, b"opened after").await;
        second
    });

    let (old, new) = (
        CertInfo::from_der(&first).unwrap(),
        CertInfo::from_der(&second).unwrap(),
    );
    assert_eq!(new.subject, old.subject);
    assert_eq!(new.subject_alt_names, old.subject_alt_names);
    assert_ne!(new.public_key_der(), old.public_key_der(), "a new key");
    assert!(new.not_before >= old.not_before + 3);
    let renewed = events.renewed();
    assert_eq!(renewed[0].0, 1);
    assert_eq!(renewed[0].1, new.fingerprint_sha256);
    assert!(renewed[0].2, "it was due");

    // On disk: the record names the live pair; the key is 0600; the first pair is gone.
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path("https.json")).unwrap()).unwrap();
    let live = CertInfo::from_der(&current_der(renewer.identity())).unwrap();
    assert_eq!(record["fingerprint"], live.fingerprint_sha256.as_str());
    assert_eq!(record["history"]["failures"], 0);
    let key = dir.path(record["key"].as_str().unwrap());
    assert!(key.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert!(!dir.path("https-1.cert.pem").exists());
    assert!(!dir.path("https-1.key.pem").exists());
}

// --- bad pairs -----------------------------------------------------------------------------

/// Call 0 (start): a good pair already due; call 1: a certificate with another key; later
/// calls: an expired pair. The good certificate's DER goes to `good`.
fn bad_pairs(good: Arc<Mutex<Vec<u8>>>) -> Scripted {
    Scripted::new(move |call, now| match call {
        0 => {
            let (pair, der) = pair(now - 10, now + 2);
            *good.lock().unwrap() = der;
            Ok(pair)
        }
        1 => {
            let (cert, _) = pair(now, now + 600);
            let (other, _) = pair(now, now + 600);
            Ok(CertifiedPair::new(cert.cert_pem, other.key_pem().to_vec()))
        }
        _ => Ok(pair(now - 100, now - 50).0),
    })
}

#[test]
fn a_bad_pair_is_refused_the_old_identity_stays_and_failures_back_off() {
    let events = Events::default();
    let good = Arc::new(Mutex::new(Vec::new()));
    let renewer = block_on(
        CertRenewer::builder(bad_pairs(good.clone()))
            .policy(quick_backoff())
            .observer(events.observer())
            .start(),
    )
    .expect("first pair");
    drive(&renewer, async {
        until("two refused attempts", || events.failures().len() >= 2).await;
    });
    let good = good.lock().unwrap().clone();
    assert_eq!(renewer.identity().generation(), 0, "nothing was swapped in");
    assert_eq!(current_der(renewer.identity()), good);

    let failures = events.failures();
    let (stage, reason, count, first_retry) = &failures[0];
    assert_eq!(*stage, Stage::Validation);
    assert!(reason.contains("key mismatch"), "{reason}");
    assert_eq!(*count, 1);
    let (stage, reason, count, second_retry) = &failures[1];
    assert_eq!(*stage, Stage::Validation);
    assert!(reason.starts_with("expired"), "{reason}");
    assert_eq!(*count, 2);

    let status = renewer.status();
    assert_eq!(status.history.failures, 2);
    let last = status.history.last_attempt.expect("last attempt");
    assert_eq!(
        *second_retry,
        Some(last + 3),
        "the second wait is longer (3 s)"
    );
    assert!(
        first_retry.expect("retry time") <= last,
        "the first wait was 1 s"
    );
    assert_eq!(status.decision.action, Action::Backoff);
    assert_eq!(renewer.source().calls(), 3);
}

#[test]
fn the_failure_history_survives_a_restart() {
    let dir = Scratch::new("restart");
    let events = Events::default();
    let good = Arc::new(Mutex::new(Vec::new()));
    {
        let renewer = block_on(async {
            CertRenewer::builder(bad_pairs(good.clone()))
                .policy(quick_backoff())
                .persist(StateDir::open(&dir.0).await.unwrap(), "sip-client")
                .observer(events.observer())
                .start()
                .await
                .expect("first pair")
        });
        drive(&renewer, async {
            until("two refused attempts", || events.failures().len() >= 2).await;
        });
    }
    let good = good.lock().unwrap().clone();

    // A new process: the stored pair and history come back; the source is not asked.
    let renewed = Events::default();
    let always_good = Scripted::new(|_, now| Ok(pair(now, now + 600).0));
    let renewer = block_on(async {
        CertRenewer::builder(always_good)
            .policy(quick_backoff())
            .persist(StateDir::open(&dir.0).await.unwrap(), "sip-client")
            .observer(renewed.observer())
            .start()
            .await
            .expect("restart")
    });
    assert_eq!(renewer.source().calls(), 0, "started from the stored pair");
    assert_eq!(current_der(renewer.identity()), good);
    let status = renewer.status();
    assert_eq!(status.history.failures, 2);
    assert!(
        status
            .history
            .last_error
            .as_deref()
            .unwrap()
            .contains("expired")
    );
    let last = status.history.last_attempt.unwrap();
    assert_eq!(
        status.decision.action,
        Action::Backoff,
        "no immediate retry"
    );
    assert_eq!(status.decision.retry_at, Some(last + 3));

    drive(&renewer, async {
        until("the renewal after the backoff", || {
            renewer.identity().generation() == 1
        })
        .await;
    });
    assert_eq!(renewer.source().calls(), 1);
    assert!(renewer.status().history.last_attempt.unwrap() >= last + 3);
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path("sip-client.json")).unwrap()).unwrap();
    assert_eq!(record["history"]["failures"], 0);
    assert_eq!(record["serial"], 2);
    assert!(!dir.path("sip-client-1.key.pem").exists());
}

#[test]
fn concurrent_installs_leave_a_matching_pair_on_disk() {
    let dir = Scratch::new("concurrent");
    let always_good = || Scripted::new(|_, now| Ok(pair(now, now + 600).0));
    let renewer = block_on(async {
        CertRenewer::builder(always_good())
            .persist(StateDir::open(&dir.0).await.unwrap(), "https")
            .start()
            .await
            .expect("first pair")
    });
    // Eight uploads at once (two regenerate clicks, an upload during a renewal…).
    let t = now();
    let pairs: Vec<(CertifiedPair, Vec<u8>)> = (0..8).map(|_| pair(t, t + 600)).collect();
    let results = block_on(async {
        let mut pending: Vec<_> = pairs
            .iter()
            .map(|(p, _)| Some(Box::pin(renewer.install_pair(p))))
            .collect();
        let mut results = Vec::new();
        std::future::poll_fn(|cx| {
            for slot in &mut pending {
                if let Some(f) = slot
                    && let Poll::Ready(r) = f.as_mut().poll(cx)
                {
                    results.push(r.is_ok());
                    *slot = None;
                }
            }
            if pending.iter().all(Option::is_none) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        results
    });
    assert_eq!(results, vec![true; 8]);
    let live = current_der(renewer.identity());
    assert!(pairs.iter().any(|(_, der)| *der == live));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path("https.json")).unwrap()).unwrap();
    assert_eq!(
        record["serial"], 9,
        "each install saved under its own serial"
    );
    drop(renewer);
    // A restart loads the stored pair (a certificate beside another's key would fail here),
    // and it is the one that was being served.
    let restarted = block_on(async {
        CertRenewer::builder(always_good())
            .persist(StateDir::open(&dir.0).await.unwrap(), "https")
            .start()
            .await
            .expect("the stored pair matches")
    });
    assert_eq!(
        restarted.source().calls(),
        0,
        "started from the stored pair"
    );
    assert_eq!(current_der(restarted.identity()), live);
}

// --- watched files -------------------------------------------------------------------------

#[test]
fn watched_files_ignore_a_half_written_pair_and_pick_up_the_whole_one() {
    let dir = Scratch::new("watch");
    let t = now();
    let (a, a_der) = pair(t - 60, t + 3600);
    let (b, b_der) = pair(t - 60, t + 3600);
    let (cert, key) = (dir.path("cert.pem"), dir.path("key.pem"));
    replace_file(&cert, &a.cert_pem);
    replace_file(&key, a.key_pem());
    let events = Events::default();
    let source = WatchedFiles::new(&cert, &key).with_interval(Duration::from_millis(50));
    let renewer = block_on(
        CertRenewer::builder(source)
            .observer(events.observer())
            .start(),
    )
    .expect("first pair");
    let addr = echo_server(
        server_config(renewer.identity(), &ClientAuth::None, &[]).expect("server config"),
        describe,
    );
    drive(&renewer, async {
        let (mut before, seen, _) = open(&[&a_der, &b_der], None, addr).await;
        assert_eq!(seen, a_der);

        // The outside tool has replaced the certificate but not yet the key.
        replace_file(&cert, &b.cert_pem);
        until("the half-written pair to be refused", || {
            !events.failures().is_empty()
        })
        .await;
        let (stage, reason, _, _) = events.failures()[0].clone();
        assert_eq!(stage, Stage::Validation);
        assert!(reason.contains("key mismatch"), "{reason}");
        assert_eq!(renewer.identity().generation(), 0);
        let (_, seen, _) = open(&[&a_der, &b_der], None, addr).await;
        assert_eq!(seen, a_der, "a half-written pair never goes live");

        replace_file(&key, b.key_pem());
        until("the whole pair to be swapped in", || {
            renewer.identity().generation() == 1
        })
        .await;
        let (_, seen, _) = open(&[&a_der, &b_der], None, addr).await;
        assert_eq!(seen, b_der);
        echo(&mut before, b"still served").await;
    });
    let renewed = events.renewed();
    assert_eq!(renewed.len(), 1);
    assert!(!renewed[0].2, "offered by the files, not due");
    assert_eq!(
        renewer.status().history.failures,
        0,
        "reset by the new pair"
    );
}

// --- the Legrand cloud source --------------------------------------------------------------

/// The stand-in for the Legrand cloud: a token endpoint (every refresh rotates) and the
/// client-certificate endpoint, which refuses its first call with 401 and signs later CSRs
/// with its CA for a few seconds.
struct Cloud {
    tokens: u32,
    valid: Option<String>,
    issued: Vec<Vec<u8>>,
    /// The CSRs received (DER).
    csrs: Vec<Vec<u8>>,
    /// `(Authorization, UserToken, template)` of every certificate request.
    requests: Vec<(String, String, String)>,
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A raw P-256 public key from a CSR, for rcgen.
struct CsrKey(Vec<u8>);

impl rcgen::PublicKeyData for CsrKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

fn sign_csr(ca: &CertifiedIssuer<'static, KeyPair>, csr_der: &[u8]) -> Vec<u8> {
    use x509_cert::der::Decode;
    let csr = x509_cert::request::CertReq::from_der(csr_der).expect("CSR");
    let key = CsrKey(csr.info.public_key.subject_public_key.raw_bytes().to_vec());
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let t = now();
    params.not_before = epoch + Duration::from_secs(t - 1);
    params.not_after = epoch + Duration::from_secs(t + 6);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "issued by the stand-in");
    params.signed_by(&key, ca).expect("sign").der().to_vec()
}

fn cloud_server(cloud: Arc<Mutex<Cloud>>) -> Server {
    Server::tls(
        move |req: &Received, out: &mut dyn Write| -> io::Result<Ending> {
            let mut cloud = cloud.lock().unwrap();
            let (status, body) = if req.target.starts_with("/token") {
                cloud.tokens += 1;
                let at = format!("at{}", cloud.tokens);
                cloud.valid = Some(at.clone());
                (
                    "200 OK",
                    format!(
                        r#"{{"access_token":"{at}","token_type":"Bearer","expires_in":600,"refresh_token":"rt{}"}}"#,
                        cloud.tokens
                    ),
                )
            } else if req.target.ends_with("/clientCerts") {
                let auth = req.header("authorization").unwrap_or_default().to_owned();
                let user = req.header("usertoken").unwrap_or_default().to_owned();
                let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
                let template = body["template"].as_str().unwrap_or_default().to_owned();
                cloud.requests.push((auth.clone(), user.clone(), template));
                let valid = cloud.valid.clone().unwrap_or_default();
                if cloud.requests.len() == 1 {
                    // The token was revoked behind the client's back.
                    cloud.valid = None;
                    ("401 Unauthorized", String::new())
                } else if auth != format!("Bearer {valid}") || user != valid {
                    ("401 Unauthorized", String::new())
                } else {
                    let csr = latchkey_pki::pem::from_base64(body["csr"].as_str().unwrap())
                        .expect("base64 CSR");
                    let der = sign_csr(&cloud.ca, &csr);
                    cloud.csrs.push(csr);
                    cloud.issued.push(der.clone());
                    (
                        "201 Created",
                        format!(r#"{{"cert":"{}"}}"#, latchkey_pki::pem::to_base64(&der)),
                    )
                }
            } else {
                ("404 Not Found", String::new())
            };
            write!(
                out,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )?;
            Ok(Ending::Clean)
        },
    )
}

#[test]
fn the_legrand_source_gets_certificates_with_a_fresh_token_and_the_client_presents_the_renewed_one()
{
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "stand-in Legrand CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let ca_pem = ca.pem();
    let cloud = Arc::new(Mutex::new(Cloud {
        tokens: 0,
        valid: None,
        issued: Vec::new(),
        csrs: Vec::new(),
        requests: Vec::new(),
        ca,
    }));
    let server = cloud_server(cloud.clone());
    let dir = Scratch::new("cloud");

    let mut profile = Profile::builtin("bticino-diy").unwrap();
    profile.endpoints.token = Some(server.url("/token"));
    profile.api.base_url = Some(server.url(""));
    let api = LegrandApi::for_profile(&profile).unwrap();
    let plant = parse_plant(&HttpResponse::new(
        200,
        r#"{"id":"plant-1","name":"Home","country":"DE","type":"home","ownerId":"owner-9","ownerEmail":"owner@example.com"}"#,
    ))
    .unwrap();
    let mut http = HttpConfig::default();
    http.roots = Roots::Pem(pki().ca_pem.clone().into_bytes());
    let http = HttpClient::new(http).unwrap();
    let mut session = SessionConfig::default();
    session.unauthorized_cooldown = 0;

    // The mutual-TLS server (the SIP endpoint's stand-in) trusts the cloud's CA.
    let t = now();
    let (server_pair, server_der) = pair(t - 60, t + 3600);
    let sip = echo_server(
        server_config(
            &LiveIdentity::new(
                crate::rt::tls::Identity::from_pem(&server_pair.cert_pem, server_pair.key_pem())
                    .unwrap(),
            ),
            &ClientAuth::Required {
                roots_pem: ca_pem.clone().into_bytes(),
            },
            &[],
        )
        .unwrap(),
        describe,
    );

    let events = Events::default();
    let mut policy = RenewalPolicy::bticino();
    policy.backoff.initial = 1;
    let renewer = block_on(async {
        let state = StateDir::open(&dir.0).await.unwrap();
        let keeper = TokenKeeper::open(profile.clone(), session, state.clone(), http)
            .await
            .unwrap();
        let expired = HttpResponse::new(
            200,
            r#"{"access_token":"at0","expires_in":0,"refresh_token":"rt0"}"#,
        );
        let tokens = parse_token_response(&expired, now(), &profile.response).unwrap();
        keeper.login(tokens, Grant::RefreshToken).await.ok();
        let source = CloudSource::legrand(keeper, api, plant, "client-7", "gateway-3");
        CertRenewer::builder(source)
            .policy(policy)
            .usage(Usage::ClientAuth)
            .roots(ca_pem.clone().into_bytes())
            .persist(state, "sip-client")
            .observer(events.observer())
            .start()
            .await
            .expect("first certificate")
    });

    {
        let cloud = cloud.lock().unwrap();
        assert_eq!(cloud.issued.len(), 1);
        assert_eq!(current_der(renewer.identity()), cloud.issued[0]);
        // The 401 was retried once, with the refreshed token in both headers.
        let (auth, user, template) = &cloud.requests[1];
        assert_eq!(auth, &format!("Bearer {user}"));
        assert_eq!(Some(user), cloud.valid.as_ref());
        assert_eq!(template, "sipuser-DIY");
        assert_eq!(cloud.requests.len(), 2);
        // The CSR carries the SIP URI Legrand's CA expects (an IA5String in the SAN).
        let uri = b"sip:owner-9_client-7@gateway-3.bs.iotleg.com";
        assert!(cloud.csrs[0].windows(uri.len()).any(|w| w == uri));
    }

    drive(&renewer, async {
        let (mut before, _, who) = open(&[&server_der], Some(renewer.identity()), sip).await;
        assert_eq!(
            who,
            format!("{:016x}\n", fnv(&current_der(renewer.identity())))
        );
        until("the cloud renewal", || renewer.identity().generation() >= 1).await;
        let renewed = current_der(renewer.identity());
        assert_eq!(Some(&renewed), cloud.lock().unwrap().issued.last());
        let (_, _, who) = open(&[&server_der], Some(renewer.identity()), sip).await;
        assert_eq!(
            who,
            format!("{:016x}\n", fnv(&renewed)),
            "the next connection presents the renewed client certificate"
        );
        echo(&mut before, b"registration kept").await;
    });
    assert!(events.failures().is_empty(), "{:?}", events.failures());
}

// --- self-signed regeneration --------------------------------------------------------------

#[test]
fn self_signed_regeneration_keeps_subject_and_names_with_a_new_key_and_the_set_lifetime() {
    let request = localhost().with_san(SubjectAltName::Ip("127.0.0.1".parse().unwrap()));
    let source = SelfSignedSource::new(request, Duration::from_secs(3650 * 86_400));
    let t = now();
    let (one, two) = block_on(async {
        (
            source.renew(t).await.expect("first"),
            source.renew(t).await.expect("second"),
        )
    });
    let (a, b) = (leaf(&one.cert_pem), leaf(&two.cert_pem));
    assert_eq!(a.subject, "CN=localhost");
    assert_eq!(
        a.subject_alt_names,
        [
            San::Dns("localhost".into()),
            San::Ip("127.0.0.1".parse().unwrap())
        ]
    );
    assert_eq!(b.subject, a.subject);
    assert_eq!(b.subject_alt_names, a.subject_alt_names);
    assert_ne!(a.public_key_der(), b.public_key_der());
    assert_ne!(a.serial, b.serial);
    assert_eq!(a.not_before, t - 300, "backdated for clock skew");
    assert_eq!(a.not_after, t + 3650 * 86_400);
    assert!(a.self_signed);
    let shown = format!("{one:?}");
    assert!(!shown.contains("PRIVATE"), "{shown}");
}

// --- clock jumps ---------------------------------------------------------------------------

#[test]
fn a_forward_clock_jump_renews_once_and_a_backward_jump_reports_an_unreliable_clock() {
    let offset = Arc::new(AtomicI64::new(0));
    let clock: WallClock = {
        let offset = offset.clone();
        Arc::new(move || now().saturating_add_signed(offset.load(Ordering::SeqCst)))
    };
    let day = 86_400_i64;
    let source = Counting {
        inner: SelfSignedSource::new(localhost(), Duration::from_secs(86_400)).with_backdate(0),
        calls: AtomicUsize::new(0),
    };
    let events = Events::default();
    let renewer = block_on(
        CertRenewer::builder(source)
            .clock(clock)
            .observer(events.observer())
            .start(),
    )
    .expect("first pair");
    let scheduled = |events: &Events| {
        events
            .all()
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    RenewalEvent::Scheduled {
                        action: Action::Wait,
                        ..
                    }
                )
            })
            .count()
    };
    drive(&renewer, async {
        until("the first plan", || scheduled(&events) == 1).await;
        // Two days later (a device that slept, an NTP step): renew at once, only once.
        offset.store(2 * day, Ordering::SeqCst);
        renewer.check_now();
        until("the renewal after the jump", || {
            renewer.identity().generation() == 1
        })
        .await;
        until("the plan of the new certificate", || {
            scheduled(&events) == 2
        })
        .await;
        // Back to the real time: the new certificate is from the "future" — no renewal storm.
        offset.store(0, Ordering::SeqCst);
        renewer.check_now();
        until("the unreliable clock", || {
            events
                .all()
                .iter()
                .any(|e| matches!(e, RenewalEvent::ClockUnreliable { .. }))
        })
        .await;
        for _ in 0..5 {
            renewer.check_now();
            sleep(Duration::from_millis(20)).await;
        }
    });
    assert_eq!(
        renewer.source().calls.load(Ordering::SeqCst),
        2,
        "the first pair and one renewal"
    );
    assert_eq!(renewer.identity().generation(), 1);
    assert_eq!(renewer.status().decision.action, Action::ClockUnreliable);
    assert!(events.failures().is_empty());
}

#[test]
fn an_expired_pair_handed_in_at_start_is_renewed_at_once_not_refused() {
    let t = now();
    let (expired, _) = pair(t - 600, t - 60);
    let good = Scripted::new(|_, now| Ok(pair(now - 10, now + 600).0));
    let renewer = block_on(CertRenewer::builder(good).initial_pair(expired).start())
        .expect("a renewer for the expired pair");
    drive(&renewer, async {
        until("the emergency renewal", || {
            renewer.identity().generation() == 1
        })
        .await;
    });
    // A pair whose key does not match is still refused at start.
    let (a, _) = pair(t - 600, t + 600);
    let (b, _) = pair(t - 600, t + 600);
    let mismatched = CertifiedPair::new(a.cert_pem.clone(), b.key_pem().to_vec());
    let refused = block_on(
        CertRenewer::builder(Scripted::new(|_, now| Ok(pair(now, now + 600).0)))
            .initial_pair(mismatched)
            .start(),
    );
    assert!(refused.is_err());
}

#[test]
fn a_pair_handed_in_with_its_validity_reversed_is_refused_at_start() {
    // notAfter before notBefore: no moment of its validity is nearest to now (pki's own
    // builder refuses to make one, so rcgen does).
    let t = now();
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + Duration::from_secs(t + 600);
    params.not_after = epoch + Duration::from_secs(t - 600);
    let cert = params.self_signed(&key).expect("certificate");
    let reversed = CertifiedPair::new(cert.pem().into_bytes(), key.serialize_pem().into_bytes());
    let refused = block_on(
        CertRenewer::builder(Scripted::new(|_, now| Ok(pair(now, now + 600).0)))
            .initial_pair(reversed)
            .start(),
    );
    let reason = refused.expect_err("refused").to_string();
    assert!(reason.starts_with("not yet valid"), "{reason}");
}

#[test]
fn a_fresh_pair_from_a_ca_whose_clock_is_seconds_ahead_is_installed() {
    // The CA stamps notBefore with its own time, 5 s ahead of this device's clock.
    let events = Events::default();
    let t = now();
    let (first, first_der) = pair(t - 10, t + 3);
    let ca_ahead = Scripted::new(|_, now| Ok(pair(now + 5, now + 600).0));
    let renewer = block_on(
        CertRenewer::builder(ca_ahead)
            .policy(quick_backoff())
            .initial_pair(first)
            .observer(events.observer())
            .start(),
    )
    .expect("first pair");
    drive(&renewer, async {
        until("the renewal", || renewer.identity().generation() == 1).await;
    });
    assert_ne!(current_der(renewer.identity()), first_der);
    assert!(events.failures().is_empty(), "{:?}", events.failures());
}

#[test]
fn a_watched_source_polled_practically_never_does_not_break_the_loop() {
    let dir = Scratch::new("interval");
    let t = now();
    let (a, _) = pair(t - 60, t + 3600);
    let (cert, key) = (dir.path("cert.pem"), dir.path("key.pem"));
    replace_file(&cert, &a.cert_pem);
    replace_file(&key, a.key_pem());
    let source = WatchedFiles::new(&cert, &key).with_interval(Duration::MAX);
    let renewer = block_on(CertRenewer::builder(source).start()).expect("first pair");
    drive(&renewer, async {
        sleep(Duration::from_millis(300)).await;
    });
    assert_eq!(renewer.identity().generation(), 0);
}

#[test]
fn a_pair_handed_in_newer_than_the_stored_one_replaces_it_and_an_older_one_gives_way() {
    let dir = Scratch::new("initial-vs-stored");
    let t = now();
    let start = |initial: CertifiedPair| {
        block_on(async {
            CertRenewer::builder(Scripted::new(|_, now| Ok(pair(now, now + 600).0)))
                .initial_pair(initial)
                .persist(StateDir::open(&dir.0).await.unwrap(), "sip-client")
                .start()
                .await
                .expect("renewer")
        })
    };
    // The registration's first certificate, then a renewal of it (stored).
    let (first, _) = pair(t - 7200, t + 7200);
    let (renewed, renewed_der) = pair(t - 3600, t + 7200);
    let renewer = start(first);
    block_on(renewer.install_pair(&renewed)).expect("renewal");
    drop(renewer);
    // Restarted with the registration's (older) certificate: the renewal stays.
    let (older, _) = pair(t - 7200, t + 7200);
    let renewer = start(older);
    assert_eq!(current_der(renewer.identity()), renewed_der);
    drop(renewer);
    // `setup` ran again: its certificate is newer than the renewal and replaces it, on disk too.
    let (again, again_der) = pair(t - 60, t + 7200);
    let renewer = start(again);
    assert_eq!(current_der(renewer.identity()), again_der);
    drop(renewer);
    let stored = crate::rt::renewer::read_stored_pair(&dir.0, "sip-client")
        .expect("readable")
        .expect("stored");
    assert_eq!(leaf(&stored.cert_pem).not_before, t - 60);
}
