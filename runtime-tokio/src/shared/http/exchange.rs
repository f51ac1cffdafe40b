//! One request/response exchange as a sans-IO value, driving ureq-proto's HTTP/1.1 state
//! machine: request bytes come out of [`Exchange::start`], received bytes go in through
//! [`Exchange::handle_input`] and [`Exchange::handle_eof`], the response comes out whole.
//!
//! Every buffer is bounded: the response head by [`MAX_HEAD`], the body by the configured
//! limit, and bytes the body parser holds back (chunk-size lines, trailers) by
//! [`MAX_HELD_BACK`]. Nothing a server sends can make this code panic or buffer without bound.
//!
//! Shared source: compiled into both `latchkey-tokio` and `latchkey-smol`.

use std::mem;

use latchkey_oauth_core::http::{HttpResponse, TransportError, TransportErrorKind};
use ureq_proto::client::state::{RecvBody, RecvResponse, Redirect};
use ureq_proto::client::{Call, RecvBodyResult, RecvResponseResult, SendRequestResult};
use ureq_proto::http::{self, HeaderMap};
use ureq_proto::{BodyMode, Error as ProtoError};

/// Largest response head (status line and header fields) accepted.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Most received bytes the body parser may hold back while waiting for a line end.
pub(crate) const MAX_HELD_BACK: usize = 16 * 1024;
/// Size of one socket read.
pub(crate) const READ_SIZE: usize = 16 * 1024;

/// A request sent (or about to be), and its response as far as it has arrived.
pub(crate) struct Exchange {
    phase: Phase,
    /// Received bytes not yet consumed by the parser.
    held: Vec<u8>,
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    max_body: usize,
}

enum Phase {
    Head(Call<RecvResponse>),
    Body(Call<RecvBody>),
    /// Finished or failed; no further input is taken.
    Done,
}

/// A complete response, and the redirect state when it is a 3xx with a body read to its end.
pub(crate) struct Completed {
    pub(crate) response: HttpResponse,
    pub(crate) redirect: Option<Call<Redirect>>,
}

impl Exchange {
    /// The exchange for `request` with `body`, and the bytes to send for it.
    ///
    /// `max_body` must be below `usize::MAX` (the configuration checks it).
    pub(crate) fn start(
        request: http::Request<()>,
        body: &[u8],
        max_body: usize,
    ) -> Result<(Exchange, Vec<u8>), TransportError> {
        let head_estimate: usize = request
            .headers()
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 4)
            .sum::<usize>()
            + request.uri().to_string().len()
            + 256;
        let mut call = Call::new(request).map_err(request_error)?;
        if !body.is_empty() {
            // GET or DELETE with a body: unusual, but the caller asked for it.
            call.force_send_body();
        }
        let mut call = call.proceed();
        let mut buf = vec![0; head_estimate.max(4096)];
        let mut wire = Vec::with_capacity(head_estimate + body.len());
        while !call.can_proceed() {
            let n = call.write(&mut buf).map_err(request_error)?;
            wire.extend_from_slice(&buf[..n]);
        }
        let call = match call.proceed().map_err(request_error)? {
            Some(SendRequestResult::RecvResponse(call)) => call,
            Some(SendRequestResult::SendBody(mut call)) => {
                let mut rest = body;
                while !rest.is_empty() {
                    let (used, n) = call.write(rest, &mut buf).map_err(request_error)?;
                    if used == 0 {
                        return Err(internal("request body made no progress"));
                    }
                    wire.extend_from_slice(&buf[..n]);
                    rest = &rest[used..];
                }
                let (_, n) = call.write(&[], &mut buf).map_err(request_error)?;
                wire.extend_from_slice(&buf[..n]);
                call.proceed()
                    .ok_or_else(|| internal("request body incomplete"))?
            }
            Some(SendRequestResult::Await100(_)) | None => {
                return Err(internal("unexpected request state"));
            }
        };
        let exchange = Exchange {
            phase: Phase::Head(call),
            held: Vec::new(),
            status: 0,
            headers: Vec::new(),
            body: Vec::new(),
            max_body,
        };
        Ok((exchange, wire))
    }

    /// Feeds bytes received from the server; `Some` once the response is complete.
    ///
    /// Bytes after the end of the response are ignored (the connection is not reused).
    pub(crate) fn handle_input(
        &mut self,
        input: &[u8],
    ) -> Result<Option<Completed>, TransportError> {
        if matches!(self.phase, Phase::Done) {
            return Err(internal("input after the end of the exchange"));
        }
        self.held.extend_from_slice(input);
        let result = self.advance();
        if result.is_err() {
            self.phase = Phase::Done;
        }
        result
    }

    /// The server closed the connection: `clean` when it did so properly (TCP FIN on plain
    /// HTTP, a TLS `close_notify` on HTTPS). Completes a response whose end is the close, and
    /// fails any other response that is not complete yet.
    pub(crate) fn handle_eof(&mut self, clean: bool) -> Result<Completed, TransportError> {
        match mem::replace(&mut self.phase, Phase::Done) {
            Phase::Head(_) if self.held.is_empty() => Err(broken(
                "the server closed the connection without responding",
            )),
            Phase::Head(_) => Err(broken(
                "the server closed the connection in the middle of the response head",
            )),
            Phase::Body(call) => match call.body_mode() {
                BodyMode::CloseDelimited if clean => Ok(self.finish(call.proceed())),
                BodyMode::CloseDelimited => Err(broken(
                    "the connection closed without TLS close_notify; the body, delimited by \
                     the close, may be truncated",
                )),
                // "0\r\n" arrived, the server closed before the final CRLF: the body is whole.
                _ if call.is_ended_chunked() => Ok(self.finish(None)),
                // ureq-proto reports the bytes still expected.
                BodyMode::LengthDelimited(left) => Err(broken(&format!(
                    "the connection closed after {} of {} body bytes",
                    self.body.len(),
                    self.body.len() as u64 + left
                ))),
                _ => Err(broken(&format!(
                    "the connection closed after {} body bytes, before the last chunk",
                    self.body.len()
                ))),
            },
            Phase::Done => Err(internal("end of stream after the end of the exchange")),
        }
    }

    fn advance(&mut self) -> Result<Option<Completed>, TransportError> {
        loop {
            match mem::replace(&mut self.phase, Phase::Done) {
                Phase::Head(mut call) => {
                    let (used, response) = call
                        .try_response(&self.held, false)
                        .map_err(response_error)?;
                    self.held.drain(..used);
                    let Some(response) = response else {
                        self.phase = Phase::Head(call);
                        if used > 0 {
                            continue; // an interim 1xx response was consumed
                        }
                        if self.held.len() > MAX_HEAD {
                            return Err(TransportError::new(
                                TransportErrorKind::TooLarge,
                                format!("the response head exceeds {MAX_HEAD} bytes"),
                            ));
                        }
                        return Ok(None);
                    };
                    self.status = response.status().as_u16();
                    self.headers = header_list(response.headers());
                    match call.proceed() {
                        Some(RecvResponseResult::RecvBody(call)) => {
                            if let BodyMode::LengthDelimited(len) = call.body_mode()
                                && len > self.max_body as u64
                            {
                                return Err(too_large(&format!(
                                    "the declared body of {len} bytes exceeds the limit of {}",
                                    self.max_body
                                )));
                            }
                            self.phase = Phase::Body(call);
                        }
                        Some(RecvResponseResult::Redirect(call)) => {
                            return Ok(Some(self.finish_redirect(call)));
                        }
                        Some(RecvResponseResult::Cleanup(_)) => return Ok(Some(self.finish(None))),
                        None => return Err(internal("response head without a next state")),
                    }
                }
                Phase::Body(mut call) => {
                    let close_delimited = call.body_mode() == BodyMode::CloseDelimited;
                    if call.can_proceed() && !close_delimited {
                        return Ok(Some(self.finish(call.proceed())));
                    }
                    // Read straight into the body, with room for one byte over the limit so
                    // an oversized body is noticed.
                    let start = self.body.len();
                    let room = (self.max_body + 1 - start).min(READ_SIZE);
                    self.body.resize(start + room, 0);
                    let read = call.read(&self.held, &mut self.body[start..]);
                    let (used, produced) = match read {
                        Ok(v) => v,
                        Err(e) => {
                            self.body.truncate(start);
                            return Err(response_error(e));
                        }
                    };
                    self.body.truncate(start + produced);
                    self.held.drain(..used);
                    if self.body.len() > self.max_body {
                        return Err(too_large(&format!(
                            "the body exceeds the limit of {} bytes",
                            self.max_body
                        )));
                    }
                    let progressed = used > 0 || produced > 0;
                    self.phase = Phase::Body(call);
                    if !progressed {
                        if self.held.len() > MAX_HELD_BACK {
                            return Err(TransportError::new(
                                TransportErrorKind::Protocol,
                                format!(
                                    "chunked framing: no line end within {MAX_HELD_BACK} bytes"
                                ),
                            ));
                        }
                        return Ok(None);
                    }
                }
                Phase::Done => return Err(internal("input after the end of the exchange")),
            }
        }
    }

    fn finish_redirect(&mut self, call: Call<Redirect>) -> Completed {
        Completed {
            response: self.take_response(),
            redirect: Some(call),
        }
    }

    fn finish(&mut self, next: Option<RecvBodyResult>) -> Completed {
        let redirect = match next {
            Some(RecvBodyResult::Redirect(call)) => Some(call),
            Some(RecvBodyResult::Cleanup(_)) | None => None,
        };
        Completed {
            response: self.take_response(),
            redirect,
        }
    }

    fn take_response(&mut self) -> HttpResponse {
        self.phase = Phase::Done;
        HttpResponse {
            status: self.status,
            headers: mem::take(&mut self.headers),
            body: mem::take(&mut self.body),
        }
    }
}

/// Header fields in arrival order. Values that are not UTF-8 (obsolete `obs-text`) are kept
/// with the offending bytes replaced by U+FFFD.
fn header_list(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let value = match value.to_str() {
                Ok(v) => v.to_owned(),
                Err(_) => String::from_utf8_lossy(value.as_bytes()).into_owned(),
            };
            (name.as_str().to_owned(), value)
        })
        .collect()
}

fn broken(message: &str) -> TransportError {
    TransportError::new(TransportErrorKind::Io, message)
}

fn too_large(message: &str) -> TransportError {
    TransportError::new(TransportErrorKind::TooLarge, message)
}

fn internal(message: &str) -> TransportError {
    TransportError::new(
        TransportErrorKind::Protocol,
        format!("internal error in the HTTP driver: {message}"),
    )
}

/// A ureq-proto error while writing the request: the request as given is not sendable.
fn request_error(e: ProtoError) -> TransportError {
    super::target::invalid_request(safe_message(&e))
}

/// A ureq-proto error while reading the response: the server broke HTTP/1.1.
fn response_error(e: ProtoError) -> TransportError {
    TransportError::new(TransportErrorKind::Protocol, safe_message(&e))
}

/// The error's text when it is known to carry no received or sent value (a `Location`
/// value, say, could hold an authorization code); a fixed text otherwise.
fn safe_message(e: &ProtoError) -> String {
    match e {
        // httparse's and http's error texts name the rule, never the bytes.
        ProtoError::HttpParseFail(_)
        | ProtoError::HttpParseTooManyHeaders
        | ProtoError::UnsupportedVersion
        | ProtoError::BadContentLengthHeader
        | ProtoError::TooManyContentLengthHeaders
        | ProtoError::ConflictingBodyHeaders
        | ProtoError::ChunkLenNotAscii
        | ProtoError::ChunkLenNotANumber
        | ProtoError::ChunkExpectedCrLf
        | ProtoError::HeadersWith100
        | ProtoError::TooManyHostHeaders
        | ProtoError::BodyNotAllowed
        | ProtoError::OutputOverflow => e.to_string(),
        ProtoError::BadHeader(_) => "a header field is malformed".to_owned(),
        ProtoError::BadLocationHeader(_) => "the Location field is malformed".to_owned(),
        _ => "not valid HTTP/1.1".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    const LIMIT: usize = 2048;

    fn exchange() -> Exchange {
        let request = http::Request::get("https://example.test/")
            .header("connection", "close")
            .body(())
            .expect("request");
        Exchange::start(request, &[], LIMIT).expect("start").0
    }

    /// Pieces of HTTP/1.1 responses, valid and not, to combine at random.
    fn token() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"HTTP/1.1 200 OK\r\n".to_vec()),
            Just(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec()),
            Just(b"HTTP/1.0 302 Found\r\nLocation: /x\r\n".to_vec()),
            Just(b"Transfer-Encoding: chunked\r\n".to_vec()),
            Just(b"Content-Length: 10\r\n".to_vec()),
            Just(b"Content-Length: 99999999999999999999999\r\n".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"0\r\n".to_vec()),
            Just(b"ffffffffffffffff\r\n".to_vec()),
            Just(b"5;x=y\r\nhello\r\n".to_vec()),
            Just(b"X-A: b\r\n".to_vec()),
            vec(any::<u8>(), 0..64),
            vec(
                prop_oneof![Just(b'\r'), Just(b'\n'), Just(b':'), Just(b'a'), Just(b'0')],
                0..64
            ),
        ]
    }

    proptest! {
        #[test]
        fn any_server_bytes_end_in_a_result_without_panic_or_unbounded_buffering(
            tokens in vec(token(), 0..24),
            split in 1usize..97,
            clean in any::<bool>(),
        ) {
            let wire: Vec<u8> = tokens.concat();
            let mut exchange = exchange();
            for piece in wire.chunks(split) {
                match exchange.handle_input(piece) {
                    Ok(Some(done)) => {
                        prop_assert!(done.response.body.len() <= LIMIT);
                        return Ok(());
                    }
                    Ok(None) => {
                        prop_assert!(exchange.body.len() <= LIMIT);
                        prop_assert!(exchange.held.len() <= MAX_HEAD.max(MAX_HELD_BACK) + split);
                    }
                    Err(_) => return Ok(()),
                }
            }
            if let Ok(done) = exchange.handle_eof(clean) {
                prop_assert!(done.response.body.len() <= LIMIT);
            }
        }

        #[test]
        fn chunked_bodies_arrive_whole_however_chunked_and_split(
            body in vec(any::<u8>(), 0..LIMIT),
            chunk in 1usize..300,
            split in 1usize..200,
        ) {
            let mut wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for piece in body.chunks(chunk) {
                wire.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                wire.extend_from_slice(piece);
                wire.extend_from_slice(b"\r\n");
            }
            wire.extend_from_slice(b"0\r\n\r\n");
            let mut exchange = exchange();
            let mut done = None;
            for piece in wire.chunks(split) {
                if let Some(d) = exchange.handle_input(piece).expect("valid response") {
                    done = Some(d);
                    break;
                }
            }
            let done = done.expect("complete");
            prop_assert_eq!(done.response.status, 200);
            prop_assert_eq!(done.response.body, body);
        }
    }

    #[test]
    fn request_bytes_are_http_1_1_with_the_body_after_the_head() {
        let request = http::Request::post("https://example.test:8443/token?a=1")
            .header("content-length", 3)
            .header("connection", "close")
            .body(())
            .expect("request");
        let (_, wire) = Exchange::start(request, b"a=b", LIMIT).expect("start");
        let text = String::from_utf8(wire).expect("ascii");
        assert!(text.starts_with("POST /token?a=1 HTTP/1.1\r\n"), "{text}");
        assert!(text.contains("host: example.test:8443\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\na=b"), "{text}");
    }
}
