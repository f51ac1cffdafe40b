//! HTTP/1.1 reads and writes for the gateway, every read bounded in size and in time. The
//! framing rules (what a head is, how a body is delimited, what is refused) are
//! `latchkey_gateway::http1`'s; this module only moves the bytes and keeps the clocks:
//! a head not complete within [`Limits::head_timeout`] of its first byte (slowloris), or a
//! body not within [`Limits::body_timeout`], gets 408 and the connection is closed.

use std::io;
use std::time::{Duration, Instant};

use latchkey_gateway::Request;
use latchkey_gateway::http1::{BodyFraming, Dechunk, Dechunker, parse_head};

use crate::rt::Rt;
use crate::runtime::Runtime;

/// Size and time limits of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest request head, request line and fields (default 16 KiB).
    pub max_head: usize,
    /// Largest request body (default 1 MiB, the gateway's [`latchkey_gateway::http::MAX_BODY_BYTES`]).
    pub max_body: usize,
    /// Time from a request's first byte to the end of its head (default 10 s).
    pub head_timeout: Duration,
    /// Time for the whole body (default 30 s).
    pub body_timeout: Duration,
    /// Time a kept-alive connection may wait for its next request (default 30 s).
    pub idle_timeout: Duration,
    /// Time to write one response or WebSocket flush (default 30 s).
    pub write_timeout: Duration,
    /// Time for the TLS handshake (default 10 s).
    pub handshake_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head: 16 * 1024,
            max_body: latchkey_gateway::http::MAX_BODY_BYTES,
            head_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// A request as framed, with what the connection must do after answering it.
#[derive(Debug)]
pub(crate) struct Framed {
    pub(crate) request: Request,
    /// The client asked to keep the connection (HTTP/1.1 without `Connection: close`).
    pub(crate) keep_alive: bool,
}

/// What reading a request gave.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A complete request.
    Request(Framed),
    /// The client closed, or stayed silent past the idle timeout, between requests.
    Closed,
    /// The request is refused for its framing: answer `status` with `reason`, then close.
    Refuse(u16, &'static str),
}

/// Reads the next request from `stream`; `buf` holds bytes already received beyond the
/// previous request (pipelining) and keeps those beyond this one.
pub(crate) async fn read_request(
    stream: &mut <Rt as Runtime>::Stream,
    buf: &mut Vec<u8>,
    limits: &Limits,
    server: &super::Server,
) -> io::Result<Incoming> {
    let mut chunk = vec![0u8; 8 * 1024];
    if buf.is_empty() {
        // Between requests: wait for the first byte, the idle timeout or a shutdown. The
        // flag is read after listening: a shutdown that began before (while the previous
        // request ran, or before this connection's handshake ended) sent its signal already.
        let stopping = server.stop.listen();
        if server.stopping() {
            return Ok(Incoming::Closed);
        }
        let first = Rt::timeout(
            limits.idle_timeout,
            super::race(async { Some(Rt::read(stream, &mut chunk).await) }, async {
                stopping.await;
                None
            }),
        )
        .await;
        match first {
            Some(Some(Ok(n))) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            Some(Some(Err(e))) if e.kind() != io::ErrorKind::UnexpectedEof => return Err(e),
            _ => return Ok(Incoming::Closed),
        }
    }
    let head_deadline = Instant::now() + limits.head_timeout;
    let head = loop {
        match parse_head(buf, limits.max_head) {
            Ok(Some(head)) => break head,
            Ok(None) => {}
            Err(refusal) => return Ok(Incoming::Refuse(refusal.status, refusal.reason)),
        }
        match read_until(stream, &mut chunk, head_deadline).await? {
            Some(0) => return Ok(Incoming::Closed),
            Some(n) => buf.extend_from_slice(&chunk[..n]),
            None => return Ok(Incoming::Refuse(408, "request head not received in time")),
        }
    };
    buf.drain(..head.len);
    let body_deadline = Instant::now() + limits.body_timeout;
    let expects_continue = head.expects_continue;
    let mut framed = Framed {
        request: head.request,
        keep_alive: head.keep_alive,
    };
    match head.body {
        BodyFraming::Length(len) => {
            if len > limits.max_body {
                return Ok(Incoming::Refuse(413, "request body too large"));
            }
            if expects_continue && buf.len() < len {
                write_with_timeout(stream, b"HTTP/1.1 100 Continue\r\n\r\n", limits).await?;
            }
            while buf.len() < len {
                match read_until(stream, &mut chunk, body_deadline).await? {
                    Some(0) => return Ok(Incoming::Closed),
                    Some(n) => buf.extend_from_slice(&chunk[..n]),
                    None => return Ok(Incoming::Refuse(408, "request body not received in time")),
                }
            }
            framed.request.body = buf.drain(..len).collect();
        }
        BodyFraming::Chunked => {
            if expects_continue && buf.is_empty() {
                write_with_timeout(stream, b"HTTP/1.1 100 Continue\r\n\r\n", limits).await?;
            }
            let mut decoder = Dechunker::new(limits.max_body, limits.max_head);
            loop {
                match decoder.advance(buf) {
                    Dechunk::Done(used) => {
                        buf.drain(..used);
                        break;
                    }
                    Dechunk::Refuse(refusal) => {
                        return Ok(Incoming::Refuse(refusal.status, refusal.reason));
                    }
                    _ => {}
                }
                match read_until(stream, &mut chunk, body_deadline).await? {
                    Some(0) => return Ok(Incoming::Closed),
                    Some(n) => buf.extend_from_slice(&chunk[..n]),
                    None => return Ok(Incoming::Refuse(408, "request body not received in time")),
                }
            }
            framed.request.body = decoder.into_body();
        }
        _ => {}
    }
    Ok(Incoming::Request(framed))
}

/// Reads once, giving up at `deadline` (`None`); end of stream is `Some(0)`.
async fn read_until(
    stream: &mut <Rt as Runtime>::Stream,
    chunk: &mut [u8],
    deadline: Instant,
) -> io::Result<Option<usize>> {
    let left = deadline.saturating_duration_since(Instant::now());
    match Rt::timeout(left, Rt::read(stream, chunk)).await {
        None => Ok(None),
        Some(Ok(n)) => Ok(Some(n)),
        Some(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Some(0)),
        Some(Err(e)) => Err(e),
    }
}

/// Writes `bytes` within the write timeout.
pub(crate) async fn write_with_timeout(
    stream: &mut <Rt as Runtime>::Stream,
    bytes: &[u8],
    limits: &Limits,
) -> io::Result<()> {
    Rt::timeout(limits.write_timeout, Rt::write_all(stream, bytes))
        .await
        .unwrap_or_else(|| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client did not read the response in time",
            ))
        })
}
