//! HTTP/1.1 message framing for servers (RFC 9112), without I/O: a request head parsed by
//! `httparse` into a [`Request`] with its body framing, chunked bodies decoded, responses
//! encoded. The driver reads bytes, calls these, and writes what they give back; every
//! framing rule — including what is refused — is here.
//!
//! | fault | status |
//! |---|---|
//! | malformed request line or header, non-UTF-8 field value, target not origin-form | 400 |
//! | HTTP/1.1 without `Host`, or more than one `Host` field (RFC 9112 §3.2) | 400 |
//! | both `Transfer-Encoding` and `Content-Length`, or conflicting `Content-Length`s (smuggling) | 400 |
//! | `Transfer-Encoding` in an HTTP/1.0 request (faulty framing, RFC 9112 §6.1) | 400 |
//! | chunk size or trailer line off RFC 9112 §7.1: bare LF or CR, bad extension or field | 400 |
//! | a transfer coding other than `chunked` | 501 |
//! | head larger than the driver's limit or more than [`MAX_HEADERS`] fields | 431 |
//! | body larger than the driver's limit | 413 |

use std::borrow::ToOwned;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use crate::http::{Method, Request, Response};

/// Header fields a request may carry at most.
pub const MAX_HEADERS: usize = 64;

/// A complete request head.
#[derive(Debug)]
#[non_exhaustive]
pub struct Head {
    /// The request, without its body.
    pub request: Request,
    /// Bytes the head took (the body starts there).
    pub len: usize,
    /// The client asked to keep the connection (HTTP/1.1 without `Connection: close`, or
    /// HTTP/1.0 with `Connection: keep-alive`).
    pub keep_alive: bool,
    /// How the body is delimited.
    pub body: BodyFraming,
    /// `Expect: 100-continue` was sent: answer `100 Continue` before reading the body.
    pub expects_continue: bool,
}

/// How a request body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyFraming {
    /// No body.
    None,
    /// This many bytes.
    Length(usize),
    /// Chunked: decode with [`dechunk`].
    Chunked,
}

/// A framing fault: answer with [`Refusal::response`], then close the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The status.
    pub status: u16,
    /// What was wrong.
    pub reason: &'static str,
}

impl Refusal {
    /// A plain-text answer naming the fault.
    #[must_use]
    pub fn response(&self) -> Response {
        plain_text(self.status, self.reason)
    }
}

/// A short plain-text answer (a refusal, an error the driver meets) with the security
/// headers every response of the gateway carries, so that no answer goes out without them.
#[must_use]
pub fn plain_text(status: u16, text: &str) -> Response {
    let mut r = Response::new(status);
    r.body = format!("{text}\n").into_bytes();
    r.set_header("Content-Type", "text/plain; charset=utf-8");
    crate::app::secure_headers(&mut r, "");
    r
}

const fn refused(status: u16, reason: &'static str) -> Refusal {
    Refusal { status, reason }
}

/// Parses the request head at the start of `buf`: `Ok(None)` while more bytes are needed.
/// A head that is not complete within `max_head` bytes is refused (431).
///
/// # Errors
/// The [`Refusal`] for a head that cannot be served.
pub fn parse_head(buf: &[u8], max_head: usize) -> Result<Option<Head>, Refusal> {
    match parse_head_inner(buf)? {
        None if buf.len() >= max_head => Err(refused(431, "request head too large")),
        Some(head) if head.len > max_head => Err(refused(431, "request head too large")),
        other => Ok(other),
    }
}

/// Progress of a chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dechunk {
    /// The body ended; that many bytes of the buffer were used (trailers included).
    Done(usize),
    /// More bytes are needed.
    More,
    /// Refuse the request.
    Refuse(Refusal),
}

fn parse_head_inner(buf: &[u8]) -> Result<Option<Head>, Refusal> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut fields);
    let head_len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(refused(431, "too many header fields"));
        }
        Err(httparse::Error::Version) => {
            return Err(refused(400, "malformed HTTP version"));
        }
        Err(_) => {
            return Err(refused(400, "malformed request line or header field"));
        }
    };
    let (Some(method), Some(target), Some(minor)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err(refused(400, "malformed request line"));
    };
    if !target.starts_with('/') {
        return Err(refused(400, "request target must be a path (origin-form)"));
    }
    let mut headers = Vec::with_capacity(parsed.headers.len());
    for field in parsed.headers.iter() {
        let Ok(value) = std::str::from_utf8(field.value) else {
            return Err(refused(400, "header field value is not UTF-8"));
        };
        headers.push((field.name.to_owned(), value.trim().to_owned()));
    }
    let mut request = Request::new(Method::parse(method), target);
    request.headers = headers;
    // RFC 9112 §3.2, any version: which one would the redirect take, which one a proxy?
    if request.headers_named("host").nth(1).is_some() {
        return Err(refused(400, "more than one Host field"));
    }
    if minor == 1 && request.header("host").is_none() {
        return Err(refused(400, "HTTP/1.1 request without Host"));
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
    let body = body_framing(&request, minor)?;
    let expects_continue = minor == 1
        && request
            .header("expect")
            .is_some_and(|e| e.trim().eq_ignore_ascii_case("100-continue"));
    Ok(Some(Head {
        request,
        len: head_len,
        keep_alive,
        body,
        expects_continue,
    }))
}

/// RFC 9112 §6.3, refusing what could be read two ways (request smuggling). `minor`: the
/// HTTP/1.x minor version.
fn body_framing(request: &Request, minor: u8) -> Result<BodyFraming, Refusal> {
    let mut codings = request.headers_named("transfer-encoding").peekable();
    let lengths: Vec<&str> = request
        .headers_named("content-length")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if codings.peek().is_some() {
        if minor != 1 {
            // RFC 9112 §6.1: HTTP/1.0 has no transfer codings, so its framing is faulty
            // (whatever `Content-Length` says): an HTTP/1.0 hop in front reads the body
            // otherwise. Refused, and the connection closed.
            return Err(refused(400, "Transfer-Encoding in an HTTP/1.0 request"));
        }
        if !lengths.is_empty() {
            return Err(refused(400, "both Transfer-Encoding and Content-Length"));
        }
        let all: Vec<&str> = codings
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        return match all.as_slice() {
            [only] if only.eq_ignore_ascii_case("chunked") => Ok(BodyFraming::Chunked),
            _ => Err(refused(501, "unsupported Transfer-Encoding (chunked only)")),
        };
    }
    let Some(first) = lengths.first() else {
        return Ok(BodyFraming::None);
    };
    if lengths.iter().any(|l| l != first) {
        return Err(refused(400, "conflicting Content-Length values"));
    }
    if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refused(400, "malformed Content-Length"));
    }
    match first.parse::<usize>() {
        Ok(0) => Ok(BodyFraming::None),
        Ok(n) => Ok(BodyFraming::Length(n)),
        // Longer than any body we would take.
        Err(_) => Err(refused(413, "request body too large")),
    }
}

/// Decodes the chunked body at the start of `buf` into `body` in one go: [`Dechunker`] from
/// the start (the fuzz target's and the tests' entry; a driver reading from a socket keeps a
/// [`Dechunker`] so that no byte is read twice).
pub fn dechunk(buf: &[u8], body: &mut Vec<u8>, max_body: usize, max_trailer: usize) -> Dechunk {
    let mut d = Dechunker::new(max_body, max_trailer);
    let progress = d.advance(buf);
    *body = d.into_body();
    progress
}

/// An incremental decoder of one chunked body (RFC 9112 §7.1) at the start of a buffer that
/// grows as bytes arrive: each [`advance`](Self::advance) goes on from the last complete
/// chunk or trailer line, so a body costs time in proportion to its bytes however it is
/// split into reads.
///
/// A body over `max_body` bytes is refused (413), a trailer section over `max_trailer` bytes
/// in all (431). Size lines and trailer lines follow the RFC 9112 §7.1 grammar exactly and
/// end in CRLF: a bare LF or CR, an extension that is not `;name[=value]` (a token, or a
/// quoted-string value) or a trailer line that is not `name: value` is refused (400) at its
/// first wrong byte, so the answer does not depend on how the reads split the bytes (a hop
/// in front that took a bare LF for a line end would read another message there). The
/// message as sent — size lines with their extensions, data, line breaks and trailers — may
/// take at most [`chunked_wire_limit`] bytes, else 413: without that bound complete
/// extension-padded size lines or endless complete trailer lines would have the driver
/// buffer without end while the decoded body stays small. `More` therefore means that all
/// of the buffer belongs to the unfinished body and is within that limit.
#[derive(Debug, Clone)]
pub struct Dechunker {
    max_body: usize,
    max_trailer: usize,
    /// Bytes of the buffer consumed: whole chunks and trailer lines.
    at: usize,
    /// Where the trailer section began, once the last chunk was read.
    trailer_start: Option<usize>,
    body: Vec<u8>,
}

impl Dechunker {
    /// A decoder for one body.
    #[must_use]
    pub fn new(max_body: usize, max_trailer: usize) -> Dechunker {
        Dechunker {
            max_body,
            max_trailer,
            at: 0,
            trailer_start: None,
            body: Vec::new(),
        }
    }

    /// Goes on decoding `buf`, the same buffer as at the last call with more bytes at its
    /// end. `Done(n)`: the body ended after `n` bytes of `buf` (trailers included).
    pub fn advance(&mut self, buf: &[u8]) -> Dechunk {
        let wire_limit = chunked_wire_limit(self.max_body, self.max_trailer);
        let more = || {
            if buf.len() > wire_limit {
                Dechunk::Refuse(refused(413, "chunked body framing too large"))
            } else {
                Dechunk::More
            }
        };
        loop {
            let rest = buf.get(self.at..).unwrap_or_default();
            if let Some(trailer_start) = self.trailer_start {
                // Trailer section: fields (checked, then ignored) up to an empty line,
                // `max_trailer` bytes in all.
                let budget = self.max_trailer.saturating_sub(self.at - trailer_start);
                match trailer_line(rest, budget) {
                    Err(refusal) => return Dechunk::Refuse(refusal),
                    Ok(None) => return more(),
                    Ok(Some(TrailerLine::Field(len))) => self.at += len,
                    Ok(Some(TrailerLine::End(len))) => {
                        self.at += len;
                        return if self.at > wire_limit {
                            Dechunk::Refuse(refused(413, "chunked body framing too large"))
                        } else {
                            Dechunk::Done(self.at)
                        };
                    }
                }
                continue;
            }
            // A size line (with its extensions) is at most 1 KiB, whether it arrived whole or
            // is still arriving, so the answer never depends on how the reads split it.
            let (size_len, size) = match size_line(rest) {
                Err(refusal) => return Dechunk::Refuse(refusal),
                Ok(None) => return more(),
                Ok(Some(line)) => line,
            };
            let Ok(size) = usize::try_from(size) else {
                return Dechunk::Refuse(refused(413, "request body too large"));
            };
            if size == 0 {
                self.at += size_len;
                self.trailer_start = Some(self.at);
                continue;
            }
            if self.body.len().saturating_add(size) > self.max_body {
                return Dechunk::Refuse(refused(413, "request body too large"));
            }
            let data = size_len;
            if rest.len() - data < size + 2 {
                return more();
            }
            if &rest[data + size..data + size + 2] != b"\r\n" {
                return Dechunk::Refuse(refused(400, "chunk data not followed by CRLF"));
            }
            self.body.extend_from_slice(&rest[data..data + size]);
            self.at += data + size + 2;
        }
    }

    /// The body decoded so far (all of it after `Done`).
    #[must_use]
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }
}

/// The longest chunk size line (size, extensions, CRLF) accepted.
const MAX_SIZE_LINE: usize = 1024;

/// `tchar` (RFC 9110 §5.6.2): a byte of a token.
const fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// `obs-text` (RFC 9110 §5.6.4).
const fn is_obs_text(b: u8) -> bool {
    b >= 0x80
}

/// `field-vchar`, `SP` or `HTAB`: a byte of a field value (RFC 9110 §5.5).
const fn is_field_byte(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | 0x21..=0x7e) || is_obs_text(b)
}

/// Where a chunk size line stands (RFC 9112 §7.1, §7.1.1):
/// `chunk-size *( BWS ";" BWS ext-name [ BWS "=" BWS ( token / quoted-string ) ] ) CRLF`.
#[derive(Clone, Copy)]
enum SizeLine {
    /// In `chunk-size`, after this many hex digits.
    Size(usize),
    /// `BWS` before a `;`.
    BeforeSemicolon,
    /// After `;`: `BWS` before a name.
    BeforeName,
    /// In a name.
    Name,
    /// `BWS` after a name: `=` or `;` next.
    AfterName,
    /// After `=`: `BWS` before a value.
    BeforeValue,
    /// In a token value.
    Token,
    /// In a quoted-string value.
    Quoted,
    /// After a `\` in a quoted-string.
    Escaped,
    /// After a quoted-string's closing quote.
    Closed,
    /// After the CR of the line end.
    Cr,
}

/// The chunk size line at the start of `rest`: `Some((bytes with the CRLF, size))` (the size
/// saturates: a chunk that large is refused for its length), `None` while it is incomplete and
/// under [`MAX_SIZE_LINE`]. Extensions are checked against their grammar and ignored.
///
/// # Errors
/// 400 at the first byte off the grammar (httparse takes any byte in an extension, a bare
/// LF included), or once the line passes [`MAX_SIZE_LINE`] bytes.
fn size_line(rest: &[u8]) -> Result<Option<(usize, u64)>, Refusal> {
    use SizeLine as S;
    let mut state = S::Size(0);
    let mut size = 0u64;
    for (i, &b) in rest.iter().take(MAX_SIZE_LINE).enumerate() {
        state = match (state, b) {
            (S::Cr, b'\n') => return Ok(Some((i + 1, size))),
            (_, b'\n') => return Err(refused(400, "bare LF in a chunk size line")),
            (S::Cr, _) => return Err(refused(400, "bare CR in a chunk size line")),
            (S::Size(digits), _) if b.is_ascii_hexdigit() => {
                let digit = char::from(b).to_digit(16).map_or(0, u64::from);
                size = size.saturating_mul(16).saturating_add(digit);
                S::Size(digits + 1)
            }
            (S::Size(0), _) => return Err(refused(400, "malformed chunk size")),
            (S::Size(_) | S::Name | S::Token | S::Closed, b'\r') => S::Cr,
            (S::Size(_) | S::BeforeSemicolon | S::Token | S::Closed, b' ' | b'\t') => {
                S::BeforeSemicolon
            }
            (S::BeforeName, b' ' | b'\t') => S::BeforeName,
            (S::Name | S::AfterName, b' ' | b'\t') => S::AfterName,
            (S::BeforeValue, b' ' | b'\t') => S::BeforeValue,
            (
                S::Size(_) | S::BeforeSemicolon | S::Name | S::AfterName | S::Token | S::Closed,
                b';',
            ) => S::BeforeName,
            (S::BeforeName | S::Name, _) if is_tchar(b) => S::Name,
            (S::Name | S::AfterName, b'=') => S::BeforeValue,
            (S::BeforeValue | S::Token, _) if is_tchar(b) => S::Token,
            (S::BeforeValue, b'"') => S::Quoted,
            (S::Quoted, b'"') => S::Closed,
            (S::Quoted, b'\\') => S::Escaped,
            // qdtext: HTAB / SP / VCHAR except `"` and `\` / obs-text.
            (S::Quoted, _) if is_field_byte(b) => S::Quoted,
            // quoted-pair: `\` ( HTAB / SP / VCHAR / obs-text ).
            (S::Escaped, _) if is_field_byte(b) => S::Quoted,
            (S::Size(_), _) => return Err(refused(400, "malformed chunk size")),
            _ => return Err(refused(400, "malformed chunk extension")),
        };
    }
    if rest.len() >= MAX_SIZE_LINE {
        Err(refused(400, "chunk size line too long"))
    } else {
        Ok(None)
    }
}

/// A complete trailer line.
enum TrailerLine {
    /// A field line of this many bytes (CRLF included).
    Field(usize),
    /// The empty line that ends the trailer section (and the message) of this many bytes.
    End(usize),
}

/// Where a trailer line stands (RFC 9112 §7.1.2, §5: `field-name ":" OWS field-value OWS
/// CRLF`; no obs-fold).
#[derive(Clone, Copy)]
enum TrailerState {
    /// Nothing yet.
    Start,
    /// In the name.
    Name,
    /// After the `:`.
    Value,
    /// After the CR ending a field line.
    Cr,
    /// After the CR of the empty line.
    EndCr,
}

/// The trailer line at the start of `rest`, `None` while it is incomplete. Field lines may
/// take `budget` bytes more in all (the empty line ending the section is not counted).
///
/// # Errors
/// 431 past `budget`; 400 at the first byte off the grammar — a bare LF above all, which
/// a hop in front may take for the end of the message and read what follows as another.
fn trailer_line(rest: &[u8], budget: usize) -> Result<Option<TrailerLine>, Refusal> {
    use TrailerState as T;
    let mut state = T::Start;
    for (i, &b) in rest.iter().enumerate() {
        state = match (state, b) {
            (T::Start, b'\r') => T::EndCr,
            (T::EndCr, b'\n') => return Ok(Some(TrailerLine::End(i + 1))),
            _ if i >= budget => return Err(refused(431, "chunked trailer too large")),
            (T::Cr, b'\n') => return Ok(Some(TrailerLine::Field(i + 1))),
            (_, b'\n') => return Err(refused(400, "bare LF in a chunked trailer section")),
            (T::Cr | T::EndCr, _) => {
                return Err(refused(400, "bare CR in a chunked trailer section"));
            }
            (T::Start | T::Name, _) if is_tchar(b) => T::Name,
            (T::Name, b':') => T::Value,
            (T::Value, b'\r') => T::Cr,
            (T::Value, _) if is_field_byte(b) => T::Value,
            _ => return Err(refused(400, "malformed chunked trailer field")),
        };
    }
    Ok(None)
}

/// The most bytes a chunked body may take on the wire in [`Dechunker`]: twice `max_body` (room
/// for the framing of any sensible chunking — a body in 1 KiB chunks adds under 1 %; one
/// sent a few bytes per chunk, where framing outweighs data, is refused) plus `max_trailer`.
#[must_use]
pub fn chunked_wire_limit(max_body: usize, max_trailer: usize) -> usize {
    max_body.saturating_mul(2).saturating_add(max_trailer)
}

/// The response's bytes: status line, the application's fields, `Date`, `Content-Length`
/// and, when the connection closes after it, `Connection: close`. A HEAD answer keeps the
/// length and drops the body.
#[must_use]
pub fn encode_response(
    response: &Response,
    head_only: bool,
    keep_alive: bool,
    unix_secs: u64,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + response.body.len());
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(response.status.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason_phrase(response.status).as_bytes());
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
    push_field(&mut out, "Date", &http_date(unix_secs));
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

/// The reason phrase (RFC 9110 §15) of the statuses the gateway, this layer and the CLI's
/// `token keep` send; `"Status"` for any other.
#[must_use]
pub fn reason_phrase(status: u16) -> &'static str {
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
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

/// An IMF-fixdate (RFC 9110 §5.6.7), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
#[must_use]
pub fn http_date(unix_secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // "YYYY-MM-DDTHH:MM:SSZ"
    let iso = latchkey_pki::inspect::rfc3339(unix_secs);
    let month = iso
        .get(5..7)
        .and_then(|m| m.parse::<usize>().ok())
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
        .unwrap_or(&"Jan");
    let weekday = DAYS[usize::try_from((unix_secs / 86_400) % 7).unwrap_or(0)];
    format!(
        "{weekday}, {} {month} {} {} GMT",
        iso.get(8..10).unwrap_or("01"),
        iso.get(0..4).unwrap_or("1970"),
        iso.get(11..19).unwrap_or("00:00:00"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT_BODY: usize = 1024 * 1024;

    fn head(raw: &str) -> Result<Option<Head>, Refusal> {
        parse_head(raw.as_bytes(), 16 * 1024)
    }

    fn refused(raw: &str) -> (u16, &'static str) {
        match head(raw) {
            Err(Refusal { status, reason }) => (status, reason),
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn a_complete_head_gives_path_query_headers_and_length() {
        let raw =
            "POST /login?next=%2Fadmin HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\r\nhello";
        let h = head(raw).unwrap().unwrap();
        let (len, framed, body) = (h.len, &h, h.body);
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
        let f = head("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!f.keep_alive);
        let f = head("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!f.keep_alive);
        let f = head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
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
            parse_head(b"GET / HTTP/1.1\r\nHost: a\r\nX: \xff\r\n\r\n", 1024),
            Err(Refusal {
                status: 400,
                reason: "header field value is not UTF-8"
            })
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
        let raw = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
        let mut body = Vec::new();
        match dechunk(raw, &mut body, LIMIT_BODY, 1024) {
            Dechunk::Done(used) => assert_eq!(&raw[used..], b"NEXT"),
            _ => panic!("not done"),
        }
        assert_eq!(body, b"hello world");
        // Every proper prefix asks for more.
        for cut in 0..raw.len() - 4 {
            assert!(
                matches!(
                    dechunk(&raw[..cut], &mut body, LIMIT_BODY, 1024),
                    Dechunk::More
                ),
                "prefix of {cut} bytes"
            );
        }
    }

    #[test]
    fn chunked_bodies_over_the_limit_or_malformed_are_refused() {
        let mut body = Vec::new();
        assert!(matches!(
            dechunk(b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", &mut body, 8, 1024),
            Dechunk::Refuse(Refusal { status: 413, .. })
        ));
        assert!(matches!(
            dechunk(b"zz\r\n", &mut body, LIMIT_BODY, 1024),
            Dechunk::Refuse(Refusal { status: 400, .. })
        ));
        assert!(matches!(
            dechunk(b"2\r\nabXY", &mut body, LIMIT_BODY, 1024),
            Dechunk::Refuse(Refusal { status: 400, .. })
        ));
        assert!(matches!(
            dechunk(b"ffffffffffffffffff\r\n", &mut body, LIMIT_BODY, 1024),
            Dechunk::Refuse(..)
        ));
        // A size line over 1 KiB is refused whether it arrives whole or in pieces.
        let long = format!("1;{}\r\nX", "e".repeat(3200));
        assert!(matches!(
            dechunk(long.as_bytes(), &mut body, LIMIT_BODY, 1024),
            Dechunk::Refuse(Refusal { status: 400, .. })
        ));
        assert!(matches!(
            dechunk(&long.as_bytes()[..1100], &mut body, LIMIT_BODY, 1024),
            Dechunk::Refuse(Refusal { status: 400, .. })
        ));
    }

    /// Chunk extensions RFC 9112 §7.1.1 allows (BWS around `;` and `=`, token and
    /// quoted-string values, quoted-pairs, obs-text).
    const EXTENSIONS: [&[u8]; 6] = [
        b"",
        b";name=value",
        b" ;a ; b = c\t;d",
        b";q=\"x y;\\\" \t\\\\\"",
        b";e=\"\";f=\"\xe9\"",
        b";!#$%&'*+-.^_`|~09AZaz=!#$%&'*+-.^_`|~",
    ];

    /// The incremental decoder's answer for `wire` fed to `d` in reads of the sizes in
    /// `reads` (cycled): its first answer other than `More`, or `More` at the end.
    fn read_by_read(d: &mut Dechunker, wire: &[u8], reads: &[usize]) -> Dechunk {
        let mut end = 0;
        let mut reads = reads.iter().cycle();
        loop {
            end = (end + reads.next().copied().unwrap_or(1)).min(wire.len());
            match d.advance(&wire[..end]) {
                Dechunk::More if end < wire.len() => {}
                other => return other,
            }
        }
    }

    proptest::proptest! {
        /// Fed a chunked body read by read (any split, any chunking, extensions, trailers),
        /// the incremental decoder ends exactly as the one-shot decoder of the whole does.
        #[test]
        fn decoding_read_by_read_gives_what_decoding_the_whole_gives(
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
            chunk in 1usize..97,
            ext in 0usize..EXTENSIONS.len(),
            trailer in proptest::bool::ANY,
            reads in proptest::collection::vec(1usize..64, 1..40),
        ) {
            let mut wire = Vec::new();
            for piece in body.chunks(chunk) {
                wire.extend_from_slice(format!("{:x}", piece.len()).as_bytes());
                wire.extend_from_slice(EXTENSIONS[ext]);
                wire.extend_from_slice(b"\r\n");
                wire.extend_from_slice(piece);
                wire.extend_from_slice(b"\r\n");
            }
            wire.extend_from_slice(b"0\r\n");
            if trailer {
                wire.extend_from_slice(b"X-Sum: 1\r\n");
            }
            wire.extend_from_slice(b"\r\nNEXT");
            let mut whole = Vec::new();
            let expected = dechunk(&wire, &mut whole, LIMIT_BODY, 1024);
            proptest::prop_assert_eq!(expected, Dechunk::Done(wire.len() - 4));
            proptest::prop_assert_eq!(&whole, &body);
            let mut d = Dechunker::new(LIMIT_BODY, 1024);
            proptest::prop_assert_eq!(read_by_read(&mut d, &wire, &reads), expected);
            proptest::prop_assert_eq!(d.into_body(), body);
        }

        /// Any bytes (mostly the ones framing is made of), split into reads anyhow: the
        /// incremental decoder's first answer other than `More` is the one-shot decoder's
        /// answer for the whole — a refusal comes at the same byte with the same reason.
        #[test]
        fn any_bytes_read_by_read_end_as_the_whole_does(
            wire in proptest::collection::vec(
                proptest::prop_oneof![
                    4 => proptest::sample::select(b"0123\r\n;= \t\":\\aX".to_vec()),
                    1 => proptest::num::u8::ANY,
                ],
                0..200,
            ),
            reads in proptest::collection::vec(1usize..16, 1..20),
        ) {
            let mut whole = Vec::new();
            let expected = dechunk(&wire, &mut whole, LIMIT_BODY, 64);
            let mut d = Dechunker::new(LIMIT_BODY, 64);
            proptest::prop_assert_eq!(read_by_read(&mut d, &wire, &reads), expected);
        }
    }

    /// RFC 9112 §6.1: a server that receives an HTTP/1.0 message with `Transfer-Encoding`
    /// MUST treat its framing as faulty and close the connection after it. Read as chunked
    /// on a kept-alive connection, the body means something else to an HTTP/1.0 hop in front.
    #[test]
    fn http10_request_with_transfer_encoding_is_faulty_framing() {
        let raw = "POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n";
        match head(raw) {
            Err(Refusal { status: 400, .. }) => {}
            Ok(Some(h)) => assert!(
                !h.keep_alive,
                "HTTP/1.0 + Transfer-Encoding framed as {:?} on a kept-alive connection",
                h.body
            ),
            other => panic!("{other:?}"),
        }
    }

    /// RFC 9112 §3.2: a server MUST answer 400 to a request with more than one `Host` field
    /// line (the redirect and the provisioning answer's `websocket_url` take the first).
    #[test]
    fn more_than_one_host_field_is_400() {
        assert_eq!(
            refused("GET / HTTP/1.1\r\nHost: door.local\r\nHost: evil.example\r\n\r\n").0,
            400
        );
    }

    /// A bare LF is not a line end in chunked framing (RFC 9112 §7.1: chunk-ext is
    /// `;token[=value]`, lines end in CRLF). httparse lets any byte through inside an
    /// extension, and the trailer scan looks for CRLF only, so a bare LF is swallowed here
    /// while an LF-tolerant proxy in front ends the line there ("TERM.EXT" / funky chunks).
    #[test]
    fn bare_lf_in_chunk_extensions_and_trailers_is_refused() {
        let mut body = Vec::new();
        // Extension with a bare LF: read here as size 3 with extension "x\nyz".
        let got = dechunk(b"3;x\nyz\r\nabc\r\n0\r\n\r\n", &mut body, LIMIT_BODY, 1024);
        assert!(
            matches!(got, Dechunk::Refuse(Refusal { status: 400, .. })),
            "bare LF in a chunk extension: {got:?}, body {body:?}"
        );
        // Trailer section starting with a bare LF: an LF-tolerant hop sees the message end
        // and a second request; here that request is swallowed as a trailer line.
        let raw = b"0\r\n\nGET /admin HTTP/1.1\r\n\r\n";
        let got = dechunk(raw, &mut body, LIMIT_BODY, 1024);
        assert!(
            matches!(got, Dechunk::Refuse(Refusal { status: 400, .. })),
            "bare LF in the trailer section: {got:?}"
        );
    }

    #[test]
    fn faulty_http10_framing_and_repeated_host_name_the_fault() {
        for raw in [
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
        ] {
            assert_eq!(
                refused(raw),
                (400, "Transfer-Encoding in an HTTP/1.0 request"),
                "{raw:?}"
            );
        }
        // HTTP/1.0 with a length, and HTTP/1.1 chunked, are as before.
        let h = head("POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.body, BodyFraming::Length(2));
        let h = head("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.body, BodyFraming::Chunked);
        for raw in [
            "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n",
            "GET / HTTP/1.1\r\nHOST: a\r\nX: 1\r\nHost: b\r\nHost: c\r\n\r\n",
            "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost:\r\n\r\n",
        ] {
            assert_eq!(refused(raw), (400, "more than one Host field"), "{raw:?}");
        }
    }

    #[test]
    fn chunk_size_lines_and_trailers_follow_the_grammar() {
        let mut body = Vec::new();
        let refusal = |raw: &[u8]| {
            let mut body = Vec::new();
            let whole = dechunk(raw, &mut body, LIMIT_BODY, 1024);
            // Byte by byte, the same refusal at the same byte.
            let mut d = Dechunker::new(LIMIT_BODY, 1024);
            let first = (1..=raw.len())
                .map(|end| d.advance(&raw[..end]))
                .find(|p| *p != Dechunk::More);
            assert_eq!(first, Some(whole), "{:?}", String::from_utf8_lossy(raw));
            match whole {
                Dechunk::Refuse(r) => (r.status, r.reason),
                other => panic!("{other:?} for {:?}", String::from_utf8_lossy(raw)),
            }
        };
        let lf = (400, "bare LF in a chunk size line");
        let cr = (400, "bare CR in a chunk size line");
        let ext = (400, "malformed chunk extension");
        let size = (400, "malformed chunk size");
        for (raw, want) in [
            (&b"3\nabc\r\n0\r\n\r\n"[..], lf),
            (b"3;x\nyz\r\nabc\r\n0\r\n\r\n", lf),
            (b"3;x=\"a\nb\"\r\nabc\r\n0\r\n\r\n", lf),
            (b"3;x=\"a\\\nb\"\r\nabc\r\n0\r\n\r\n", lf),
            (b"0\n\r\n", lf),
            (b"0;a\n\r\n", lf),
            (b"3\rabc\r\n0\r\n\r\n", cr),
            (b"3;a\rb\r\nabc\r\n0\r\n\r\n", cr),
            (b"3;\r\nabc\r\n", ext),
            (b"3;=v\r\nabc\r\n", ext),
            (b"3;a=\r\nabc\r\n", ext),
            (b"3;a b\r\nabc\r\n", ext),
            (b"3;a=b c\r\nabc\r\n", ext),
            (b"3;a=\"b\r\nabc\r\n", ext),
            (b"3;a=\"b\"c\r\nabc\r\n", ext),
            (b"3;a=\"\x7f\"\r\nabc\r\n", ext),
            (b"3;a=b \r\nabc\r\n", ext),
            (b"3 \r\nabc\r\n", ext),
            (b"3;a\x00\r\nabc\r\n", ext),
            (b"3x\r\nabc\r\n", size),
            (b";a\r\n", size),
            (b" 3\r\n", size),
            (b"-3\r\n", size),
            (b"\r\n", size),
        ] {
            assert_eq!(refusal(raw), want, "{:?}", String::from_utf8_lossy(raw));
        }
        let lf = (400, "bare LF in a chunked trailer section");
        let cr = (400, "bare CR in a chunked trailer section");
        let field = (400, "malformed chunked trailer field");
        for (raw, want) in [
            (&b"0\r\n\nGET /admin HTTP/1.1\r\n\r\n"[..], lf),
            (b"0\r\nX: a\n\r\n", lf),
            (b"0\r\nX: a\r\n\n", lf),
            (b"0\r\nX: a\nb\r\n\r\n", lf),
            (b"0\r\nX\n: a\r\n\r\n", lf),
            (b"0\r\n\rX", cr),
            (b"0\r\nX: a\rb\r\n\r\n", cr),
            (b"0\r\nX\r\n\r\n", field),
            (b"0\r\n: a\r\n\r\n", field),
            (b"0\r\nX : a\r\n\r\n", field),
            (b"0\r\nX: a\r\n b\r\n\r\n", field),
            (b"0\r\nX: a\x00\r\n\r\n", field),
        ] {
            assert_eq!(refusal(raw), want, "{:?}", String::from_utf8_lossy(raw));
        }
        // What the grammar allows passes: extensions of every shape, leading zeros, empty
        // and obs-text values, several trailer fields.
        let raw = [
            &b"03 ; a ; b=c;d = \"e \\\" \xe9\"\r\nabc\r\n000;z\r\n"[..],
            b"X-A: 1\r\nx-b:\r\nC:  \xe9 v \r\n\r\n",
        ]
        .concat();
        assert_eq!(
            dechunk(&raw, &mut body, LIMIT_BODY, 1024),
            Dechunk::Done(raw.len())
        );
        assert_eq!(body, b"abc");
        // A size too large for any body is refused for its length, not its syntax.
        assert_eq!(
            refusal(b"ffffffffffffffffffffffff\r\n"),
            (413, "request body too large")
        );
    }

    #[test]
    fn refusals_carry_the_security_headers() {
        let r = super::refused(431, "request head too large").response();
        assert_eq!(r.status, 431);
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert!(r.header("strict-transport-security").is_some());
        assert!(r.header("content-security-policy").is_some());
        assert_eq!(r.text(), "request head too large\n");
    }

    #[test]
    fn chunked_framing_that_grows_without_growing_the_body_is_refused() {
        let mut body = Vec::new();
        // Endless complete trailer lines: refused once they pass the trailer limit in all.
        let mut raw = b"0\r\n".to_vec();
        let mut refused_at = None;
        for i in 0..1000 {
            raw.extend_from_slice(b"a:b\r\n");
            match dechunk(&raw, &mut body, LIMIT_BODY, 1024) {
                Dechunk::More => {}
                Dechunk::Refuse(Refusal { status: 431, .. }) => {
                    refused_at = Some(i);
                    break;
                }
                _ => panic!("trailer line {i} not refused"),
            }
        }
        let lines = refused_at.expect("refused");
        assert!((1024 / 5..=1024 / 5 + 1).contains(&lines), "{lines}");
        // One-byte chunks padded with extensions: refused once the wire bytes pass the limit,
        // long before the decoded body reaches its limit.
        let max_body = 4096;
        let limit = chunked_wire_limit(max_body, 1024);
        let piece = format!("1;{}\r\nX\r\n", "e".repeat(1000));
        let mut raw = Vec::new();
        loop {
            raw.extend_from_slice(piece.as_bytes());
            match dechunk(&raw, &mut body, max_body, 1024) {
                Dechunk::More => assert!(raw.len() <= limit),
                Dechunk::Refuse(Refusal { status: 413, .. }) => {
                    assert!(raw.len() > limit);
                    assert!(body.len() < max_body / 100, "{}", body.len());
                    break;
                }
                other => panic!("{other:?} at {} bytes", raw.len()),
            }
        }
        // A body of exactly `max_body` in 1 KiB chunks, with a trailer, still passes.
        let mut raw = Vec::new();
        for _ in 0..max_body / 1024 {
            raw.extend_from_slice(b"400\r\n");
            raw.extend_from_slice(&[b'x'; 1024]);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"0\r\nX-T: 1\r\n\r\n");
        assert!(matches!(
            dechunk(&raw, &mut body, max_body, 1024),
            Dechunk::Done(n) if n == raw.len()
        ));
        assert_eq!(body.len(), max_body);
    }

    #[test]
    fn responses_carry_length_date_and_close_and_head_drops_the_body() {
        let mut r = Response::new(200);
        r.body = b"hi".to_vec();
        r.set_header("Content-Type", "text/plain");
        r.set_header("Content-Length", "999");
        r.set_header("X-Evil", "a\r\nSet-Cookie: x=1");
        let now = 784_111_777;
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

    #[test]
    fn every_status_the_gateway_and_token_keep_send_has_its_reason_phrase() {
        for status in [
            200, 400, 403, 404, 405, 408, 411, 413, 431, 500, 501, 502, 503, 505,
        ] {
            assert_ne!(reason_phrase(status), "Status", "{status}");
        }
        assert_eq!(reason_phrase(411), "Length Required");
        assert_eq!(reason_phrase(501), "Not Implemented");
        assert_eq!(reason_phrase(505), "HTTP Version Not Supported");
    }
}
