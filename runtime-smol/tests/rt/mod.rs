//! The runtime under test: the smol family (async-net, async-io, blocking). The shared
//! cases in `latchkey-tokio`'s `tests/shared/` use only this module's names.
#![allow(dead_code)]

use std::future::Future;

#[allow(unused_imports)] // each test file uses its own subset
pub(crate) use latchkey_smol::{http, keeper, renewer, serve, sip, state, tls};

/// Runs `fut` to completion with async-io's `block_on` (no executor needed).
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    async_io::block_on(fut)
}

/// Sleeps for `duration` on async-io's timer.
pub(crate) async fn sleep(duration: std::time::Duration) {
    async_io::Timer::after(duration).await;
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

    use async_net::{TcpListener, TcpStream};
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    use futures_rustls::{TlsAcceptor, TlsConnector};
    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, ServerConfig};

    /// Serves on 127.0.0.1 until the test process ends. Each connection gets one line with
    /// `describe` of the client's certificates, then an echo of what it sends.
    pub(crate) fn echo_server(
        config: Arc<ServerConfig>,
        describe: fn(Option<&[rustls::pki_types::CertificateDer<'static>]>) -> String,
    ) -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            super::block_on(async move {
                let listener = TcpListener::try_from(listener).expect("listener");
                let acceptor = TlsAcceptor::from(config);
                loop {
                    let Ok((sock, _)) = listener.accept().await else {
                        continue;
                    };
                    let acceptor = acceptor.clone();
                    // One thread per connection: async-io needs no executor for block_on.
                    std::thread::spawn(move || {
                        super::block_on(async move {
                            let Ok(mut tls) = acceptor.accept(sock).await else {
                                return;
                            };
                            let who = describe(tls.get_ref().1.peer_certificates());
                            if tls.write_all(who.as_bytes()).await.is_err() {
                                return;
                            }
                            let _ = tls.flush().await;
                            let mut buf = [0u8; 1024];
                            while let Ok(n) = tls.read(&mut buf).await {
                                if n == 0
                                    || tls.write_all(&buf[..n]).await.is_err()
                                    || tls.flush().await.is_err()
                                {
                                    return;
                                }
                            }
                        });
                    });
                }
            });
        });
        addr
    }

    /// A client connection.
    pub(crate) struct Conn {
        tls: futures_rustls::client::TlsStream<TcpStream>,
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

/// Starts a gateway on threads of its own (an async-executor run by two threads); the handle
/// and a receiver that yields once `run` has returned. The executor goes on after that, as
/// an application's would, so tasks that outlive `run` show.
pub(crate) fn run_gateway(
    config: serve::ServeConfig,
    dir: std::path::PathBuf,
) -> (serve::Gateway, std::sync::mpsc::Receiver<()>) {
    run_gateway_with(config, dir, false)
}

/// [`run_gateway`], with the gateway's certificate renewer already running on the same
/// executor (as an application that spawns `Gateway::renewer().run()` itself has it) before
/// `run` starts, when `renewer_first`.
pub(crate) fn run_gateway_with(
    config: serve::ServeConfig,
    dir: std::path::PathBuf,
    renewer_first: bool,
) -> (serve::Gateway, std::sync::mpsc::Receiver<()>) {
    let (started, gateway) = std::sync::mpsc::channel();
    let (finished, done) = std::sync::mpsc::channel();
    let executor = std::sync::Arc::new(async_executor::Executor::new());
    {
        let executor = std::sync::Arc::clone(&executor);
        std::thread::spawn(move || {
            block_on(executor.run(std::future::pending::<()>()));
        });
    }
    std::thread::spawn(move || {
        block_on(executor.run(async {
            let state = state::StateDir::open(dir).await.expect("state dir");
            let gw = serve::Gateway::start(config, state)
                .await
                .expect("gateway starts");
            if renewer_first {
                let renewer = gw.renewer().clone();
                executor.spawn(async move { renewer.run().await }).detach();
                async_io::Timer::after(std::time::Duration::from_millis(50)).await;
            }
            started.send(gw.clone()).expect("test alive");
            let run = gw.run(std::sync::Arc::clone(&executor));
            // The future stays small enough for a default 2 MiB thread's `block_on`.
            assert!(std::mem::size_of_val(&run) < 16 * 1024);
            run.await;
            let _ = finished.send(());
        }));
    });
    (gateway.recv().expect("gateway started"), done)
}
