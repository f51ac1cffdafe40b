//! Test support shared by both runtimes' tests: a private CA with a leaf certificate, and a
//! scripted HTTP(S) server on loopback, run on std threads with rustls so it is the same
//! server whichever runtime the client under test uses.
//!
//! Shared source: included by `latchkey-tokio`'s and `latchkey-smol`'s tests.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// The test PKI: a CA whose leaf serves `localhost`, `127.0.0.1` and `::1`, and an unrelated
/// CA that signed nothing the server presents.
pub(crate) struct Pki {
    pub(crate) ca_pem: String,
    pub(crate) other_ca_pem: String,
    server: Arc<ServerConfig>,
}

/// The test PKI, made once per test binary.
pub(crate) fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca = make_ca("latchkey test CA");
        let other = make_ca("unrelated CA");
        let leaf_key = KeyPair::generate().expect("leaf key");
        let params = CertificateParams::new(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ])
        .expect("leaf params");
        let leaf = params.signed_by(&leaf_key, &ca).expect("leaf cert");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let chain = vec![CertificateDer::from(leaf.der().to_vec())];
        let server =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .expect("server config");
        Pki {
            ca_pem: ca.pem(),
            other_ca_pem: other.pem(),
            server: Arc::new(server),
        }
    })
}

fn make_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("ca key")).expect("ca cert")
}

/// A request as the test server received it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Received {
    /// The first value of header `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// How the server ends a connection after the handler wrote its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// TLS `close_notify`, then close (plain: just close).
    Clean,
    /// Close the TCP connection without `close_notify`.
    Abrupt,
}

type Handler = dyn Fn(&Received, &mut dyn Write) -> io::Result<Ending> + Send + Sync;

/// A scripted server on a loopback port. Each connection gets its own thread; the handler
/// writes raw response bytes. Dropping the server stops accepting.
pub(crate) struct Server {
    addr: SocketAddr,
    tls: bool,
    received: Mutex<Receiver<Received>>,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// An HTTPS server on 127.0.0.1 answering with `handler`.
    pub(crate) fn tls(
        handler: impl Fn(&Received, &mut dyn Write) -> io::Result<Ending> + Send + Sync + 'static,
    ) -> Server {
        Server::start(Ipv4Addr::LOCALHOST.into(), true, Arc::new(handler))
    }

    /// A plain HTTP server on 127.0.0.1 answering with `handler`.
    pub(crate) fn plain(
        handler: impl Fn(&Received, &mut dyn Write) -> io::Result<Ending> + Send + Sync + 'static,
    ) -> Server {
        Server::start(Ipv4Addr::LOCALHOST.into(), false, Arc::new(handler))
    }

    /// An HTTPS server on `ip` (a loopback address); `None` when it cannot bind there.
    pub(crate) fn tls_on(
        ip: std::net::IpAddr,
        handler: impl Fn(&Received, &mut dyn Write) -> io::Result<Ending> + Send + Sync + 'static,
    ) -> Option<Server> {
        TcpListener::bind((ip, 0)).ok()?;
        Some(Server::start(ip, true, Arc::new(handler)))
    }

    fn start(ip: std::net::IpAddr, tls: bool, handler: Arc<Handler>) -> Server {
        let listener = TcpListener::bind((ip, 0)).expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let (sent, received) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let config = pki().server.clone();
        let accept = {
            let stop = stop.clone();
            let connections = connections.clone();
            thread::spawn(move || {
                for socket in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(socket) = socket else { continue };
                    connections.fetch_add(1, Ordering::SeqCst);
                    let handler = handler.clone();
                    let sent = sent.clone();
                    let config = config.clone();
                    thread::spawn(move || {
                        let _ = serve(socket, tls.then_some(config), &*handler, &sent);
                    });
                }
            })
        };
        Server {
            addr,
            tls,
            received: Mutex::new(received),
            connections,
            stop,
            accept: Some(accept),
        }
    }

    /// `https://localhost:<port><path>` (or `http://`).
    pub(crate) fn url(&self, path: &str) -> String {
        self.url_with_host("localhost", path)
    }

    /// The URL with `host` (e.g. `127.0.0.1`, `[::1]`) instead of `localhost`.
    pub(crate) fn url_with_host(&self, host: &str, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{host}:{}{path}", self.addr.port())
    }

    /// The port.
    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The next request the server received (waits up to 5 s).
    pub(crate) fn request(&self) -> Received {
        self.received
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(5))
            .expect("the server received no request")
    }

    /// How many connections were accepted so far.
    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wake the accept loop
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn serve(
    socket: TcpStream,
    tls: Option<Arc<ServerConfig>>,
    handler: &Handler,
    sent: &Sender<Received>,
) -> io::Result<()> {
    socket.set_read_timeout(Some(Duration::from_secs(10)))?;
    match tls {
        None => {
            let mut socket = socket;
            let request = read_request(&mut socket)?;
            let _ = sent.send(request.clone());
            handler(&request, &mut socket)?;
            socket.flush()
        }
        Some(config) => {
            let conn = ServerConnection::new(config).map_err(io::Error::other)?;
            let mut stream = StreamOwned::new(conn, socket);
            let request = read_request(&mut stream)?;
            let _ = sent.send(request.clone());
            let ending = handler(&request, &mut stream)?;
            if ending == Ending::Clean {
                stream.conn.send_close_notify();
            }
            stream.flush()
        }
    }
}

/// Reads one request: head parsed with httparse, body by `Content-Length`.
fn read_request(stream: &mut impl Read) -> io::Result<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        let status = request.parse(&buf).map_err(io::Error::other)?;
        if let httparse::Status::Complete(head_len) = status {
            let mut received = Received {
                method: request.method.unwrap_or_default().to_owned(),
                target: request.path.unwrap_or_default().to_owned(),
                headers: request
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_owned(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect(),
                body: buf[head_len..].to_vec(),
            };
            let length: usize = received
                .header("content-length")
                .map_or(0, |v| v.parse().unwrap_or(0));
            while received.body.len() < length {
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                received.body.extend_from_slice(&chunk[..n]);
            }
            return Ok(received);
        }
    }
}

/// A handler that answers every request with `raw` bytes and a clean close.
pub(crate) fn replies(
    raw: impl Into<Vec<u8>>,
) -> impl Fn(&Received, &mut dyn Write) -> io::Result<Ending> + Send + Sync + 'static {
    let raw = raw.into();
    move |_, out| {
        out.write_all(&raw)?;
        Ok(Ending::Clean)
    }
}

/// A listener that accepts TCP connections and never says anything (handshake stall).
pub(crate) struct Silent {
    addr: SocketAddr,
    _keep: Arc<Mutex<Vec<TcpStream>>>,
}

impl Silent {
    /// Starts it on 127.0.0.1.
    pub(crate) fn start() -> Silent {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let keep = Arc::new(Mutex::new(Vec::new()));
        let held = keep.clone();
        thread::spawn(move || {
            // Bounded: a test makes a handful of connections.
            for socket in listener.incoming().take(8).flatten() {
                held.lock().unwrap().push(socket);
            }
        });
        Silent { addr, _keep: keep }
    }

    /// `https://localhost:<port>/`.
    pub(crate) fn url(&self) -> String {
        format!("https://localhost:{}/", self.addr.port())
    }
}

/// Whether `::1` can be bound here.
pub(crate) fn ipv6_loopback() -> bool {
    TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok()
}
