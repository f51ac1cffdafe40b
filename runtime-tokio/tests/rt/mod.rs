//! The runtime under test: tokio. The shared cases in `tests/shared/` use only this module's
//! names, so the same cases run against `latchkey-smol` with its own `rt` module.
#![allow(dead_code)]

use std::future::Future;

#[allow(unused_imports)] // each test file uses its own subset
pub(crate) use latchkey_tokio::{http, keeper, renewer, serve, sip, state, tls};

/// Runs `fut` to completion on a fresh current-thread tokio runtime.
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(fut)
}

/// Sleeps for `duration` on tokio's timer.
pub(crate) async fn sleep(duration: std::time::Duration) {
    tokio::time::sleep(duration).await;
}

/// Asserts at compile time that `send` and the state-file futures can be spawned on a
/// multi-threaded executor.
fn _futures_are_send(
    client: &http::HttpClient,
    request: &http::HttpRequest,
    dir: &state::StateDir,
) {
    fn is_send<T: Send>(_: &T) {}
    is_send(&client.send(request));
    is_send(&dir.write("x", Vec::new()));
    is_send(&dir.read("x"));
    is_send(&state::StateDir::open("x"));
}

/// TLS over this runtime's sockets for the certificate hot-swap tests: an echo server that
/// first tells each client which certificate the client presented, and a client connection.
pub(crate) mod tls_io {
    use std::io;
    use std::net::SocketAddr;
    use std::sync::Arc;

    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, ServerConfig};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    /// Serves on 127.0.0.1 until the test process ends. Each connection gets one line with
    /// `describe` of the client's certificates, then an echo of what it sends.
    pub(crate) fn echo_server(
        config: Arc<ServerConfig>,
        describe: fn(Option<&[rustls::pki_types::CertificateDer<'static>]>) -> String,
    ) -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        listener.set_nonblocking(true).expect("nonblocking");
        std::thread::spawn(move || {
            super::block_on(async move {
                let listener = TcpListener::from_std(listener).expect("listener");
                let acceptor = TlsAcceptor::from(config);
                loop {
                    let Ok((sock, _)) = listener.accept().await else {
                        continue;
                    };
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        let Ok(mut tls) = acceptor.accept(sock).await else {
                            return;
                        };
                        let who = describe(tls.get_ref().1.peer_certificates());
                        if tls.write_all(who.as_bytes()).await.is_err() {
                            return;
                        }
                        let mut buf = [0u8; 1024];
                        while let Ok(n) = tls.read(&mut buf).await {
                            if n == 0 || tls.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            });
        });
        addr
    }

    /// A client connection.
    pub(crate) struct Conn {
        tls: tokio_rustls::client::TlsStream<TcpStream>,
    }

    impl Conn {
        /// Connects and completes the handshake.
        pub(crate) async fn connect(
            config: Arc<ClientConfig>,
            addr: SocketAddr,
            name: &str,
        ) -> io::Result<Conn> {
            let sock = TcpStream::connect(addr).await?;
            let name = ServerName::try_from(name.to_owned())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let tls = TlsConnector::from(config).connect(name, sock).await?;
            Ok(Conn { tls })
        }

        /// The server's end-entity certificate.
        pub(crate) fn server_certificate(&self) -> Vec<u8> {
            self.tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.to_vec())
                .unwrap_or_default()
        }

        /// Whether the handshake resumed an earlier session.
        pub(crate) fn resumed(&self) -> bool {
            self.tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
        }

        /// Reads exactly `n` bytes.
        pub(crate) async fn read_exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
            let mut buf = vec![0u8; n];
            self.tls.read_exact(&mut buf).await?;
            Ok(buf)
        }

        /// Writes `bytes`.
        pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
            self.tls.write_all(bytes).await?;
            self.tls.flush().await
        }
    }
}

/// Starts a gateway on a thread of its own (a tokio runtime with two workers); the handle
/// and a receiver that yields once `run` has returned. The runtime goes on for 20 s after
/// that, as an application's would, so tasks that outlive `run` show.
pub(crate) fn run_gateway(
    config: serve::ServeConfig,
    dir: std::path::PathBuf,
) -> (serve::Gateway, std::sync::mpsc::Receiver<()>) {
    run_gateway_with(config, dir, false)
}

/// [`run_gateway`], with the gateway's certificate renewer already running on the same
/// runtime (as an application that spawns `Gateway::renewer().run()` itself has it) before
/// `run` starts, when `renewer_first`.
pub(crate) fn run_gateway_with(
    config: serve::ServeConfig,
    dir: std::path::PathBuf,
    renewer_first: bool,
) -> (serve::Gateway, std::sync::mpsc::Receiver<()>) {
    let (started, gateway) = std::sync::mpsc::channel();
    let (finished, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        runtime.block_on(async move {
            let state = state::StateDir::open(dir).await.expect("state dir");
            let gw = serve::Gateway::start(config, state)
                .await
                .expect("gateway starts");
            if renewer_first {
                let renewer = gw.renewer().clone();
                tokio::spawn(async move { renewer.run().await });
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            started.send(gw.clone()).expect("test alive");
            gw.run(tokio::runtime::Handle::current()).await;
            let _ = finished.send(());
            tokio::time::sleep(std::time::Duration::from_secs(20)).await;
        });
    });
    (gateway.recv().expect("gateway started"), done)
}
