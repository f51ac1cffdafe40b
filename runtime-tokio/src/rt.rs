//! The tokio glue: tokio sockets and timers, tokio-rustls, `spawn_blocking`.
//!
//! This file and `lib.rs` are all that is tokio-specific; everything else is shared with
//! `latchkey-smol` (see the crate docs).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::panic;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::runtime::Runtime;

/// The tokio runtime.
pub(crate) struct Rt;

/// A connection: plain TCP or TLS over TCP.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    ServerTls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// Where the gateway spawns its connection tasks: a tokio runtime.
pub type Spawner = tokio::runtime::Handle;

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
        stream.shutdown().await
    }

    fn spawn(spawner: &Spawner, fut: impl Future<Output = ()> + Send + 'static) {
        drop(spawner.spawn(fut));
    }

    fn connector(config: Arc<rustls::ClientConfig>) -> TlsConnector {
        TlsConnector::from(config)
    }

    async fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
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
        tokio::time::timeout(limit, fut).await.ok()
    }

    async fn unblock<T, F>(f: F) -> io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        match tokio::task::spawn_blocking(f).await {
            Ok(value) => Ok(value),
            Err(e) => match e.try_into_panic() {
                Ok(payload) => panic::resume_unwind(payload),
                // The runtime is shutting down and dropped the task before it ran.
                Err(_) => Err(io::Error::other("the tokio runtime is shutting down")),
            },
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
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

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
            Stream::ServerTls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
