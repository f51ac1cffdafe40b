//! The smol-family glue: async-net sockets, async-io timers, futures-rustls, the `blocking`
//! thread pool. All I/O goes through the `futures-io` traits, so this also runs under
//! async-std or any executor: async-io drives its own reactor thread when nobody else does.
//!
//! This file and `lib.rs` are all that is smol-specific; everything else is compiled from
//! `latchkey-tokio`'s `src/shared/` (see the crate docs).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_io::Timer;
use async_net::{TcpListener, TcpStream};
use futures_lite::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use futures_rustls::client::TlsStream;
use futures_rustls::{TlsAcceptor, TlsConnector};
use rustls::pki_types::ServerName;

use crate::runtime::Runtime;

/// The smol family of runtimes.
pub(crate) struct Rt;

/// A connection: plain TCP or TLS over TCP.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    ServerTls(Box<futures_rustls::server::TlsStream<TcpStream>>),
}

/// Where the gateway spawns its connection tasks: an `async-executor` the application runs
/// (on as many threads as it likes).
pub type Spawner = Arc<async_executor::Executor<'static>>;

impl Runtime for Rt {
    type Tcp = TcpStream;
    type Stream = Stream;
    type Connector = TlsConnector;
    type Listener = TcpListener;
    type Acceptor = TlsAcceptor;
    type Spawner = Spawner;

    async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
        TcpListener::bind(addr).await
    }

    fn listener_addr(listener: &TcpListener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    async fn accept(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
        let (tcp, peer) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        Ok((tcp, peer))
    }

    fn acceptor(config: Arc<rustls::ServerConfig>) -> TlsAcceptor {
        TlsAcceptor::from(config)
    }

    async fn accept_tls(acceptor: &TlsAcceptor, tcp: TcpStream) -> io::Result<Stream> {
        Ok(Stream::ServerTls(Box::new(acceptor.accept(tcp).await?)))
    }

    async fn close(stream: &mut Stream) -> io::Result<()> {
        stream.close().await
    }

    fn spawn(spawner: &Spawner, fut: impl Future<Output = ()> + Send + 'static) {
        spawner.spawn(fut).detach();
    }

    fn connector(config: Arc<rustls::ClientConfig>) -> TlsConnector {
        TlsConnector::from(config)
    }

    async fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        async_net::resolve((host, port)).await
    }

    async fn connect_tcp(addr: SocketAddr) -> io::Result<TcpStream> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        Ok(tcp)
    }

    fn local_addr(tcp: &TcpStream) -> io::Result<SocketAddr> {
        tcp.local_addr()
    }

    async fn start_tls(
        connector: &TlsConnector,
        name: ServerName<'static>,
        tcp: TcpStream,
    ) -> io::Result<Stream> {
        Ok(Stream::Tls(Box::new(connector.connect(name, tcp).await?)))
    }

    fn plain(tcp: TcpStream) -> Stream {
        Stream::Plain(tcp)
    }

    async fn write_all(stream: &mut Stream, bytes: &[u8]) -> io::Result<()> {
        stream.write_all(bytes).await?;
        stream.flush().await
    }

    async fn read(stream: &mut Stream, buf: &mut [u8]) -> io::Result<usize> {
        AsyncReadExt::read(stream, buf).await
    }

    async fn timeout<F>(limit: Duration, fut: F) -> Option<F::Output>
    where
        F: Future + Send,
        F::Output: Send,
    {
        futures_lite::future::or(async { Some(fut.await) }, async {
            Timer::after(limit).await;
            None
        })
        .await
    }

    async fn unblock<T, F>(f: F) -> io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        Ok(blocking::unblock(f).await)
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
            Stream::ServerTls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
            Stream::ServerTls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
            Stream::ServerTls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_close(cx),
            Stream::Tls(s) => Pin::new(s).poll_close(cx),
            Stream::ServerTls(s) => Pin::new(s).poll_close(cx),
        }
    }
}
