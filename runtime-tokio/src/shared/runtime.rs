//! What a runtime must provide to the shared drivers: sockets, TLS, a timer, a blocking pool.
//!
//! Shared source: this file is compiled into both `latchkey-tokio` and `latchkey-smol` (see the
//! crate docs). Each crate implements [`Runtime`] once, in its own `rt.rs`, as `crate::rt::Rt`;
//! everything else in `shared/` is written against this trait and never names a runtime.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use rustls::pki_types::ServerName;

/// The glue between the shared drivers and one async runtime.
///
/// Every returned future is `Send`, so the drivers built on it can be spawned on a
/// multi-threaded executor.
pub(crate) trait Runtime {
    /// A connected TCP socket.
    type Tcp: Send;
    /// A connection the HTTP client reads and writes: plain TCP or TLS over TCP.
    type Stream: Send;
    /// What the runtime needs to start TLS on a socket; built once per client.
    type Connector: Send + Sync;

    /// Wraps a rustls client configuration for this runtime's TLS adapter.
    fn connector(config: Arc<rustls::ClientConfig>) -> Self::Connector;

    /// Resolves `host` to socket addresses (the host is a DNS name, never an IP literal).
    fn resolve(host: &str, port: u16) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send;

    /// Opens a TCP connection to `addr`.
    fn connect_tcp(addr: SocketAddr) -> impl Future<Output = io::Result<Self::Tcp>> + Send;

    /// The local address of a connected socket (a SIP agent's Via and Contact).
    fn local_addr(tcp: &Self::Tcp) -> io::Result<SocketAddr>;

    /// Runs the TLS client handshake for `name` over `tcp`.
    fn start_tls(
        connector: &Self::Connector,
        name: ServerName<'static>,
        tcp: Self::Tcp,
    ) -> impl Future<Output = io::Result<Self::Stream>> + Send;

    /// Uses `tcp` without TLS (plain `http://`, only when the configuration allows it).
    fn plain(tcp: Self::Tcp) -> Self::Stream;

    /// Writes all of `bytes` and flushes them to the socket.
    fn write_all(
        stream: &mut Self::Stream,
        bytes: &[u8],
    ) -> impl Future<Output = io::Result<()>> + Send;

    /// Reads some bytes into `buf`; `Ok(0)` is the end of the stream.
    ///
    /// Over TLS, a peer that closes TCP without a `close_notify` alert yields an error of kind
    /// [`io::ErrorKind::UnexpectedEof`] (the rustls convention), not `Ok(0)`.
    fn read(
        stream: &mut Self::Stream,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send;

    /// Runs `fut` for at most `limit`; `None` when the limit passed first.
    fn timeout<F>(limit: Duration, fut: F) -> impl Future<Output = Option<F::Output>> + Send
    where
        F: Future + Send,
        F::Output: Send;

    /// A listening TCP socket (the gateway).
    type Listener: Send + Sync;
    /// What the runtime needs to run the TLS server handshake; built once per server.
    type Acceptor: Send + Sync + Clone;
    /// Where the gateway spawns its connection tasks.
    type Spawner: Clone + Send + Sync + 'static;

    /// Binds a listening socket on `addr`.
    fn bind(addr: SocketAddr) -> impl Future<Output = io::Result<Self::Listener>> + Send;

    /// The address a listener is bound to (port 0 resolved).
    fn listener_addr(listener: &Self::Listener) -> io::Result<SocketAddr>;

    /// Accepts the next connection.
    fn accept(
        listener: &Self::Listener,
    ) -> impl Future<Output = io::Result<(Self::Tcp, SocketAddr)>> + Send;

    /// Wraps a rustls server configuration for this runtime's TLS adapter.
    fn acceptor(config: Arc<rustls::ServerConfig>) -> Self::Acceptor;

    /// Runs the TLS server handshake over `tcp`.
    fn accept_tls(
        acceptor: &Self::Acceptor,
        tcp: Self::Tcp,
    ) -> impl Future<Output = io::Result<Self::Stream>> + Send;

    /// Ends the stream gracefully (TLS `close_notify`, then the TCP write side).
    fn close(stream: &mut Self::Stream) -> impl Future<Output = io::Result<()>> + Send;

    /// Runs `fut` as a task of its own.
    fn spawn(spawner: &Self::Spawner, fut: impl Future<Output = ()> + Send + 'static);

    /// Runs blocking `f` on the runtime's blocking thread pool.
    ///
    /// Once started, `f` runs to completion even if the returned future is dropped. A panic
    /// in `f` is resumed in the caller; an error means `f` never ran (runtime shutting down).
    fn unblock<T, F>(f: F) -> impl Future<Output = io::Result<T>> + Send
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static;
}

/// Whichever of `a` and `b` completes first (`a` when both are ready); the other is dropped.
pub(crate) async fn race<T>(a: impl Future<Output = T>, b: impl Future<Output = T>) -> T {
    let mut a = pin!(a);
    let mut b = pin!(b);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(v);
        }
        b.as_mut().poll(cx)
    })
    .await
}
