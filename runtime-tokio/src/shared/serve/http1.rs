//! HTTP/1.1 server framing (RFC 9112) for the gateway: request heads parsed by `httparse`,
//! bodies by Content-Length or chunked, every read bounded in size and in time.
//!
//! What a client gets for bad framing — the connection is closed after each of these:
//!
//! | fault | status |
//! |---|---|
//! | malformed request line or header, non-UTF-8 field value, target not origin-form | 400 |
//! | HTTP/1.1 without `Host` | 400 |
//! | both `Transfer-Encoding` and `Content-Length`, or conflicting `Content-Length`s (smuggling) | 400 |
//! | a transfer coding other than `chunked` | 501 |
//! | head larger than [`Limits::max_head`] or more than [`MAX_HEADERS`] fields | 431 |
//! | body larger than [`Limits::max_body`] | 413 |
//! | head not complete within [`Limits::head_timeout`] of its first byte (slowloris), body not within [`Limits::body_timeout`] | 408 |

use std::io;
use std::time::{Duration, Instant, SystemTime};

use latchkey_gateway::{Method, Request, Response};

use crate::rt::Rt;
use crate::runtime::Runtime;

/// Header fields a request may carry at most.
pub const MAX_HEADERS: usize = 64;

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
    stop: &event_listener::Event,
) -> io::Result<Incoming> {
    let mut chunk = vec![0u8; 8 * 1024];
    if buf.is_empty() {
        // Between requests: wait for the first byte, the idle timeout or a shutdown.
        let stopping = stop.listen();
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
    let (head_len, mut framed, body) = loop {
        match parse_head(buf) {
            Ok(Some(parsed)) => break parsed,
            Ok(None) if buf.len() >= limits.max_head => {
                return Ok(Incoming::Refuse(431, "request head too large"));
            }
            Ok(None) => {}
            Err(Refusal(status, reason)) => return Ok(Incoming::Refuse(status, reason)),
        }
        match read_until(stream, &mut chunk, head_deadline).await? {
            Some(0) => return Ok(Incoming::Closed),
            Some(n) => buf.extend_from_slice(&chunk[..n]),
            None => return Ok(Incoming::Refuse(408, "request head not received in time")),
        }
    };
    if head_len > limits.max_head {
        return Ok(Incoming::Refuse(431, "request head too large"));
    }
    buf.drain(..head_len);
    let body_deadline = Instant::now() + limits.body_timeout;
    let expects_continue = framed
        .request
        .header("expect")
        .is_some_and(|e| e.trim().eq_ignore_ascii_case("100-continue"));
    match body {
        BodyFraming::None => {}
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
            let mut body = Vec::new();
            loop {
                match dechunk(buf, &mut body, limits) {
                    Dechunk::Done(used) => {
                        buf.drain(..used);
                        break;
                    }
                    Dechunk::Refuse(status, reason) => return Ok(Incoming::Refuse(status, reason)),
                    Dechunk::More => {}
                }
                match read_until(stream, &mut chunk, body_deadline).await? {
                    Some(0) => return Ok(Incoming::Closed),
                    Some(n) => buf.extend_from_slice(&chunk[..n]),
                    None => return Ok(Incoming::Refuse(408, "request body not received in time")),
                }
            }
            framed.request.body = body;
        }
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

/// How the body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyFraming {
    None,
    Length(usize),
    Chunked,
}

/// A framing fault: the status and reason to answer with.
#[derive(Debug)]
struct Refusal(u16, &'static str);

/// Parses a complete head at the start of `buf`: `Ok(None)` when more bytes are needed.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, Framed, BodyFraming)>, Refusal> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut fields);
    let head_len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Refusal(431, "too many header fields"));
        }
        Err(httparse::Error::Version) => {
            return Err(Refusal(400, "malformed HTTP version"));
        }
        Err(_) => {
            return Err(Refusal(400, "malformed request line or header field"));
        }
    };
    let (Some(method), Some(target), Some(minor)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err(Refusal(400, "malformed request line"));
    };
    if !target.starts_with('/') {
        return Err(Refusal(400, "request target must be a path (origin-form)"));
    }
    let mut headers = Vec::with_capacity(parsed.headers.len());
    for field in parsed.headers.iter() {
        let Ok(value) = std::str::from_utf8(field.value) else {
            return Err(Refusal(400, "header field value is not UTF-8"));
        };
        headers.push((field.name.to_owned(), value.trim().to_owned()));
    }
    let mut request = Request::new(Method::parse(method), target);
    request.headers = headers;
    if minor == 1 && request.header("host").is_none() {
        return Err(Refusal(400, "HTTP/1.1 request without Host"));
    }
    let connection = |token: &str| {
        request
            .headers_named("connection")
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    let keep_alive = if minor == 1 {
        !connection("close")
    } else {
        connection("keep-alive")
    };
    let framing = body_framing(&request)?;
    Ok(Some((
        head_len,
        Framed {
            request,
            keep_alive,
        },
        framing,
    )))
}

/// RFC 9112 §6.3, refusing what could be read two ways (request smuggling).
fn body_framing(request: &Request) -> Result<BodyFraming, Refusal> {
    let mut codings = request.headers_named("transfer-encoding").peekable();
    let lengths: Vec<&str> = request
        .headers_named("content-length")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if codings.peek().is_some() {
        if !lengths.is_empty() {
            return Err(Refusal(400, "both Transfer-Encoding and Content-Length"));
        }
        let all: Vec<&str> = codings
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        return match all.as_slice() {
            [only] if only.eq_ignore_ascii_case("chunked") => Ok(BodyFraming::Chunked),
            _ => Err(Refusal(501, "unsupported Transfer-Encoding (chunked only)")),
        };
    }
    let Some(first) = lengths.first() else {
        return Ok(BodyFraming::None);
    };
    if lengths.iter().any(|l| l != first) {
        return Err(Refusal(400, "conflicting Content-Length values"));
    }
    if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refusal(400, "malformed Content-Length"));
    }
    match first.parse::<usize>() {
        Ok(0) => Ok(BodyFraming::None),
        Ok(n) => Ok(BodyFraming::Length(n)),
        // Longer than any body we would take.
        Err(_) => Err(Refusal(413, "request body too large")),
    }
}

/// Progress of a chunked body.
enum Dechunk {
    /// The body ended; that many bytes of the buffer were used.
    Done(usize),
    /// More bytes are needed (everything so far is re-read next time).
    More,
    /// Refuse the request.
    Refuse(u16, &'static str),
}

/// Decodes the chunked body at the start of `buf` into `body` (from scratch each call; the
/// body and the buffer are both bounded, so the re-reads are too).
fn dechunk(buf: &[u8], body: &mut Vec<u8>, limits: &Limits) -> Dechunk {
    body.clear();
    let mut at = 0;
    loop {
        let (size_len, size) = match httparse::parse_chunk_size(&buf[at..]) {
            Ok(httparse::Status::Complete(parsed)) => parsed,
            Ok(httparse::Status::Partial) if buf.len() - at > 1024 => {
                return Dechunk::Refuse(400, "malformed chunk size line");
            }
            Ok(httparse::Status::Partial) => return Dechunk::More,
            Err(_) => return Dechunk::Refuse(400, "malformed chunk size line"),
        };
        at += size_len;
        let Ok(size) = usize::try_from(size) else {
            return Dechunk::Refuse(413, "request body too large");
        };
        if size == 0 {
            // Trailer section: fields (ignored) up to an empty line.
            loop {
                let rest = &buf[at..];
                let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
                    return if rest.len() > limits.max_head {
                        Dechunk::Refuse(431, "chunked trailer too large")
                    } else {
                        Dechunk::More
                    };
                };
                at += end + 2;
                if end == 0 {
                    return Dechunk::Done(at);
                }
            }
        }
        if body.len().saturating_add(size) > limits.max_body {
            return Dechunk::Refuse(413, "request body too large");
        }
        if buf.len() - at < size + 2 {
            return Dechunk::More;
        }
        body.extend_from_slice(&buf[at..at + size]);
        at += size;
        if &buf[at..at + 2] != b"\r\n" {
            return Dechunk::Refuse(400, "chunk data not followed by CRLF");
        }
        at += 2;
    }
}

/// The response's bytes: status line, the application's fields, `Date`, `Content-Length`
/// and, when the connection closes after it, `Connection: close`. A HEAD answer keeps the
/// length and drops the body.
pub(crate) fn encode_response(
    response: &Response,
    head_only: bool,
    keep_alive: bool,
    now: SystemTime,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + response.body.len());
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(response.status.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason(response.status).as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &response.headers {
        // Framing is this layer's job; a field that could confuse it is never copied.
        let framing = ["content-length", "transfer-encoding", "connection", "date"]
            .iter()
            .any(|f| name.eq_ignore_ascii_case(f));
        let unsafe_bytes = |s: &str| s.bytes().any(|b| b == b'\r' || b == b'\n');
        if framing || unsafe_bytes(name) || unsafe_bytes(value) {
            continue;
        }
        push_field(&mut out, name, value);
    }
    push_field(&mut out, "Date", &httpdate::fmt_http_date(now));
    let informational = response.status < 200;
    if response.status == 101 {
        push_field(&mut out, "Connection", "Upgrade");
    } else if !informational && response.status != 204 && response.status != 304 {
        push_field(&mut out, "Content-Length", &response.body.len().to_string());
        if !keep_alive {
            push_field(&mut out, "Connection", "close");
        }
    }
    out.extend_from_slice(b"\r\n");
    if !head_only && !informational && response.status != 204 && response.status != 304 {
        out.extend_from_slice(&response.body);
    }
    out
}

fn push_field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A plain-text answer for a framing fault.
pub(crate) fn refusal(status: u16, reason: &str) -> Response {
    let mut r = Response::new(status);
    r.body = format!("{reason}\n").into_bytes();
    r.set_header("Content-Type", "text/plain; charset=utf-8");
    r
}

/// The reason phrase of the statuses the gateway and this layer send.
fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Result<Option<(usize, Framed, BodyFraming)>, Refusal> {
        parse_head(raw.as_bytes())
    }

    fn refused(raw: &str) -> (u16, &'static str) {
        match head(raw) {
            Err(Refusal(s, r)) => (s, r),
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn a_complete_head_gives_path_query_headers_and_length() {
        let raw =
            "POST /login?next=%2Fadmin HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\r\nhello";
        let (len, framed, body) = head(raw).unwrap().unwrap();
        assert_eq!(len, raw.len() - 5);
        assert_eq!(framed.request.path, "/login");
        assert_eq!(framed.request.query, "next=%2Fadmin");
        assert_eq!(framed.request.header("HOST"), Some("gw"));
        assert!(framed.keep_alive);
        assert_eq!(body, BodyFraming::Length(5));
    }

    #[test]
    fn a_partial_head_asks_for_more() {
        assert!(head("GET / HTTP/1.1\r\nHost: gw\r\n").unwrap().is_none());
    }

    #[test]
    fn connection_close_and_http10_end_the_connection() {
        let (_, f, _) = head("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!f.keep_alive);
        let (_, f, _) = head("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!f.keep_alive);
        let (_, f, _) = head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(f.keep_alive);
    }

    #[test]
    fn smuggling_shapes_are_refused() {
        assert_eq!(
            refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n").0,
            400
        );
        assert_eq!(
            refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n")
                .0,
            400
        );
        assert_eq!(
            refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n").0,
            400
        );
        assert_eq!(
            refused("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").0,
            501
        );
        assert_eq!(
            refused(
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n"
            )
            .0,
            413
        );
    }

    #[test]
    fn missing_host_absolute_targets_and_bad_bytes_are_400() {
        assert_eq!(
            refused("GET / HTTP/1.1\r\n\r\n").1,
            "HTTP/1.1 request without Host"
        );
        assert_eq!(refused("GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n").0, 400);
        assert!(matches!(
            parse_head(b"GET / HTTP/1.1\r\nHost: a\r\nX: \xff\r\n\r\n"),
            Err(Refusal(400, "header field value is not UTF-8"))
        ));
        assert_eq!(refused("G@T / HTTP/1.1\r\nHost: a\r\n\r\n").0, 400);
        assert_eq!(refused("GET / HTTP/2.0\r\nHost: a\r\n\r\n").0, 400);
    }

    #[test]
    fn more_than_max_headers_fields_is_431() {
        let mut raw = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
        for i in 0..MAX_HEADERS {
            raw.push_str(&format!("X-{i}: v\r\n"));
        }
        raw.push_str("\r\n");
        assert_eq!(refused(&raw).0, 431);
    }

    #[test]
    fn chunked_bodies_decode_with_extensions_and_trailers() {
        let limits = Limits::default();
        let raw = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
        let mut body = Vec::new();
        match dechunk(raw, &mut body, &limits) {
            Dechunk::Done(used) => assert_eq!(&raw[used..], b"NEXT"),
            _ => panic!("not done"),
        }
        assert_eq!(body, b"hello world");
        // Every proper prefix asks for more.
        for cut in 0..raw.len() - 4 {
            assert!(
                matches!(dechunk(&raw[..cut], &mut body, &limits), Dechunk::More),
                "prefix of {cut} bytes"
            );
        }
    }

    #[test]
    fn chunked_bodies_over_the_limit_or_malformed_are_refused() {
        let limits = Limits {
            max_body: 8,
            ..Limits::default()
        };
        let mut body = Vec::new();
        assert!(matches!(
            dechunk(b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", &mut body, &limits),
            Dechunk::Refuse(413, _)
        ));
        assert!(matches!(
            dechunk(b"zz\r\n", &mut body, &limits),
            Dechunk::Refuse(400, _)
        ));
        assert!(matches!(
            dechunk(b"2\r\nabXY", &mut body, &limits),
            Dechunk::Refuse(400, _)
        ));
        assert!(matches!(
            dechunk(b"ffffffffffffffffff\r\n", &mut body, &limits),
            Dechunk::Refuse(..)
        ));
    }

    #[test]
    fn responses_carry_length_date_and_close_and_head_drops_the_body() {
        let mut r = Response::new(200);
        r.body = b"hi".to_vec();
        r.set_header("Content-Type", "text/plain");
        r.set_header("Content-Length", "999");
        r.set_header("X-Evil", "a\r\nSet-Cookie: x=1");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        let text = String::from_utf8(encode_response(&r, false, false, now)).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(
            text.contains("Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"),
            "{text}"
        );
        assert!(text.contains("Content-Length: 2\r\n"));
        assert!(!text.contains("999"));
        assert!(!text.contains("Set-Cookie"));
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.ends_with("\r\n\r\nhi"));
        let head = String::from_utf8(encode_response(&r, true, true, now)).unwrap();
        assert!(head.contains("Content-Length: 2\r\n"));
        assert!(head.ends_with("\r\n\r\n"));
        assert!(!head.contains("Connection: close"));
    }
}
