//! Writing SIP requests and responses into a caller-owned buffer.
//!
//! [`MessageWriter`] writes a start line, then headers in the order they are added, then
//! `Content-Length`, the blank line and the body when [`finish`](MessageWriter::finish) is
//! called. Every value is checked before it is written: a CR, LF or NUL in a header name or
//! value is refused ([`BuildError::Injection`]), so an attacker-controlled string (a display
//! name, a MESSAGE target) can never add a header or end the header section early.
//!
//! Typical requests a user agent sends — REGISTER, MESSAGE, OPTIONS — start from
//! [`MessageWriter::request`] with [`RequestHead`]; responses to INVITE, MESSAGE, OPTIONS, BYE
//! and CANCEL start from [`MessageWriter::response_to`], which mirrors Via, From, To, Call-ID
//! and CSeq from the request and adds a To-tag when the request had none.
//!
//! ```
//! use latchkey_protocol::sip::builder::{Address, MessageWriter, RequestHead, ViaSpec};
//! use latchkey_protocol::sip::headers::Transport;
//! use latchkey_protocol::sip::{Message, Method};
//!
//! let mut out = Vec::new();
//! let head = RequestHead {
//!     method: Method::Register,
//!     uri: "sip:example.com",
//!     via: ViaSpec::new(Transport::Tls, "192.0.2.4:5061", "z9hG4bK776asdhds"),
//!     from: Address::new("sip:bob@example.com").with_tag("456248"),
//!     to: Address::new("sip:bob@example.com"),
//!     call_id: "843817637684230@998sdasdh09",
//!     cseq: 1826,
//!     max_forwards: 70,
//! };
//! let mut w = MessageWriter::request(&mut out, &head).unwrap();
//! w.contact(&Address::new("sip:bob@192.0.2.4;transport=tls"), Some(600)).unwrap();
//! w.header("User-Agent", "latchkey").unwrap();
//! w.finish(None).unwrap();
//! let m = Message::parse(&out).unwrap();
//! assert_eq!(m.cseq().unwrap().seq, 1826);
//! ```

use alloc::vec::Vec;
use core::fmt::{self, Write as _};

use super::header::HeaderName;
use super::headers::Transport;
use super::message::{Message, Method, StartLine};

/// A buffer the builder writes into.
pub trait Output {
    /// Append `bytes`, or fail when there is no room.
    fn put(&mut self, bytes: &[u8]) -> Result<(), BuildError>;
}

impl Output for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), BuildError> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}

impl Output for bytes::BytesMut {
    fn put(&mut self, bytes: &[u8]) -> Result<(), BuildError> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}

/// A fixed-size buffer (for firmware without a heap to spare): writing past its end is
/// [`BuildError::BufferFull`], never a reallocation.
#[derive(Debug)]
pub struct SliceOutput<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> SliceOutput<'b> {
    /// Write into `buf` from its start.
    pub fn new(buf: &'b mut [u8]) -> Self {
        SliceOutput { buf, len: 0 }
    }

    /// The bytes written so far.
    #[must_use]
    pub fn written(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Output for SliceOutput<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), BuildError> {
        let end = self
            .len
            .checked_add(bytes.len())
            .ok_or(BuildError::BufferFull)?;
        let dst = self
            .buf
            .get_mut(self.len..end)
            .ok_or(BuildError::BufferFull)?;
        dst.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

/// Why a message could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// A name or value contains CR, LF or NUL, which would inject a header or end the header
    /// section.
    Injection {
        /// The header (or element) whose value was refused.
        field: &'static str,
    },
    /// A header name is not a token.
    BadHeaderName,
    /// A value is empty where the grammar needs one, or has characters its grammar forbids.
    BadValue {
        /// The field at fault.
        field: &'static str,
    },
    /// The request to answer is not a request, or lacks a header a response must mirror.
    NotARequest,
    /// The request to answer lacks a header a response must mirror.
    MissingInRequest {
        /// The header's canonical name.
        header: &'static str,
    },
    /// The status code is outside 100–699.
    BadStatus,
    /// An ACK gets no response (RFC 3261 §17.2.1).
    AckIsNotAnswered,
    /// The header is written by the builder itself (Content-Length, Content-Type).
    Reserved {
        /// The header's canonical name.
        header: &'static str,
    },
    /// A fixed-size output buffer is full.
    BufferFull,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Injection { field } => {
                write!(
                    f,
                    "{field} contains CR, LF or NUL (refused: header injection)"
                )
            }
            BuildError::BadHeaderName => f.write_str("header name is not a token"),
            BuildError::BadValue { field } => write!(f, "{field} is empty or malformed"),
            BuildError::NotARequest => f.write_str("can only answer a request"),
            BuildError::MissingInRequest { header } => {
                write!(f, "request has no {header} header to mirror")
            }
            BuildError::BadStatus => f.write_str("status code must be 100-699"),
            BuildError::AckIsNotAnswered => f.write_str("an ACK gets no response"),
            BuildError::Reserved { header } => {
                write!(f, "{header} is written by finish() from the body")
            }
            BuildError::BufferFull => f.write_str("output buffer is full"),
        }
    }
}

impl core::error::Error for BuildError {}

/// The Via a request is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViaSpec<'a> {
    /// Transport.
    pub transport: Transport<'a>,
    /// `host[:port]` this UA can be reached at (IPv6 in brackets).
    pub sent_by: &'a str,
    /// The branch, which must start with `z9hG4bK` and be unique per transaction.
    pub branch: &'a str,
    /// Ask for the source port in the response (RFC 3581 `;rport`).
    pub rport: bool,
}

impl<'a> ViaSpec<'a> {
    /// A Via with `;rport` set (useful behind NAT, harmless elsewhere).
    #[must_use]
    pub fn new(transport: Transport<'a>, sent_by: &'a str, branch: &'a str) -> Self {
        ViaSpec {
            transport,
            sent_by,
            branch,
            rport: true,
        }
    }
}

/// An address for From, To or Contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address<'a> {
    /// Display name (written quoted and escaped).
    pub display_name: Option<&'a str>,
    /// The URI (always written in angle brackets).
    pub uri: &'a str,
    /// The tag parameter.
    pub tag: Option<&'a str>,
}

impl<'a> Address<'a> {
    /// An address without display name or tag.
    #[must_use]
    pub fn new(uri: &'a str) -> Self {
        Address {
            display_name: None,
            uri,
            tag: None,
        }
    }

    /// The same address with a tag.
    #[must_use]
    pub fn with_tag(mut self, tag: &'a str) -> Self {
        self.tag = Some(tag);
        self
    }

    /// The same address with a display name.
    #[must_use]
    pub fn with_display_name(mut self, name: &'a str) -> Self {
        self.display_name = Some(name);
        self
    }
}

/// The mandatory part of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// Method.
    pub method: Method<'a>,
    /// Request-URI.
    pub uri: &'a str,
    /// The Via this UA adds.
    pub via: ViaSpec<'a>,
    /// From (with the UA's tag).
    pub from: Address<'a>,
    /// To.
    pub to: Address<'a>,
    /// Call-ID.
    pub call_id: &'a str,
    /// CSeq number (below 2³¹).
    pub cseq: u32,
    /// Max-Forwards (70 is the RFC 3261 recommendation).
    pub max_forwards: u8,
}

/// Writes one message; headers go out in the order they are added.
#[derive(Debug)]
pub struct MessageWriter<'o, O: Output> {
    out: &'o mut O,
}

impl<'o, O: Output> MessageWriter<'o, O> {
    /// Start a request: request line, Via, Max-Forwards, From, To, Call-ID, CSeq.
    pub fn request(out: &'o mut O, head: &RequestHead<'_>) -> Result<Self, BuildError> {
        let method = head.method.as_str();
        if method.is_empty() || !method.bytes().all(super::lex::is_token_char) {
            return Err(BuildError::BadValue { field: "method" });
        }
        check_uri(head.uri, "Request-URI")?;
        // §19.1.1: a Request-URI never carries URI headers (`?name=value`).
        if let Ok(super::uri::Uri::Sip(u)) = super::uri::Uri::parse(head.uri)
            && u.headers().next().is_some()
        {
            return Err(BuildError::BadValue {
                field: "Request-URI",
            });
        }
        if head.cseq >= 1 << 31 {
            return Err(BuildError::BadValue { field: "CSeq" });
        }
        let mut w = MessageWriter { out };
        w.raw(method)?;
        w.raw(" ")?;
        w.raw(head.uri)?;
        w.raw(" SIP/2.0\r\n")?;
        w.via(&head.via)?;
        w.fmt_header("Max-Forwards", format_args!("{}", head.max_forwards))?;
        w.address("From", &head.from, None)?;
        w.address("To", &head.to, None)?;
        if super::headers::simple_parse_call_id(head.call_id).ok() != Some(head.call_id) {
            return Err(BuildError::BadValue { field: "Call-ID" });
        }
        w.line("Call-ID", head.call_id)?;
        w.fmt_header("CSeq", format_args!("{} {}", head.cseq, method))?;
        Ok(w)
    }

    /// Start a response to `request`: status line, every Via in order, From, To (with
    /// `to_tag` added when the request's To has no tag), Call-ID, CSeq; Record-Route in order
    /// for the dialog-creating responses (101–299 to INVITE or SUBSCRIBE, RFC 3261 §12.1.1);
    /// Timestamp in a 100 (§8.2.6.1). Folded values are written unfolded. An ACK is never
    /// answered (§17.2.1).
    pub fn response_to(
        out: &'o mut O,
        request: &Message<'_>,
        code: u16,
        reason: &str,
        to_tag: Option<&str>,
    ) -> Result<Self, BuildError> {
        if !(100..=699).contains(&code) {
            return Err(BuildError::BadStatus);
        }
        check_value(reason, "reason phrase")?;
        let method = match request.start_line() {
            StartLine::Request(r) => r.method,
            _ => return Err(BuildError::NotARequest),
        };
        if method == Method::Ack {
            return Err(BuildError::AckIsNotAnswered);
        }
        for name in [
            HeaderName::Via,
            HeaderName::From,
            HeaderName::To,
            HeaderName::CallId,
            HeaderName::CSeq,
        ] {
            if request.header(name).is_none() {
                return Err(BuildError::MissingInRequest {
                    header: name.as_str().unwrap_or("?"),
                });
            }
        }
        let mut w = MessageWriter { out };
        w.fmt_raw(format_args!("SIP/2.0 {code} {reason}\r\n"))?;
        for h in request.headers_named(HeaderName::Via) {
            w.mirror("Via", h.value)?;
        }
        if (101..=299).contains(&code) && matches!(method, Method::Invite | Method::Subscribe) {
            for h in request.headers_named(HeaderName::RecordRoute) {
                w.mirror("Record-Route", h.value)?;
            }
        }
        let from = request.header(HeaderName::From).map_or("", |h| h.value);
        w.mirror("From", from)?;
        let to = request.header(HeaderName::To).map_or("", |h| h.value);
        let has_tag = request.to().is_ok_and(|t| t.tag().is_some());
        match to_tag {
            Some(tag) if !has_tag && code > 100 => {
                check_token(tag, "To tag")?;
                w.raw("To: ")?;
                w.unfolded(to)?;
                w.raw(";tag=")?;
                w.raw(tag)?;
                w.raw("\r\n")?;
            }
            _ => w.mirror("To", to)?,
        }
        let call_id = request.header(HeaderName::CallId).map_or("", |h| h.value);
        w.mirror("Call-ID", call_id)?;
        let cseq = request.header(HeaderName::CSeq).map_or("", |h| h.value);
        w.mirror("CSeq", cseq)?;
        if code == 100
            && let Some(ts) = request.header(HeaderName::Timestamp)
        {
            w.mirror("Timestamp", ts.value)?;
        }
        Ok(w)
    }

    /// Add a Via.
    pub fn via(&mut self, via: &ViaSpec<'_>) -> Result<&mut Self, BuildError> {
        check_token(via.transport.as_str(), "Via transport")?;
        check_value(via.sent_by, "Via sent-by")?;
        let mut c = super::lex::Cursor::new(via.sent_by);
        if super::uri::parse_host_port(&mut c).is_err() || !c.is_empty() {
            return Err(BuildError::BadValue {
                field: "Via sent-by",
            });
        }
        check_token(via.branch, "Via branch")?;
        if !via.branch.starts_with(super::headers::BRANCH_MAGIC_COOKIE) {
            return Err(BuildError::BadValue {
                field: "Via branch (must start with z9hG4bK)",
            });
        }
        let rport = if via.rport { ";rport" } else { "" };
        self.fmt_header(
            "Via",
            format_args!(
                "SIP/2.0/{} {};branch={}{}",
                via.transport, via.sent_by, via.branch, rport
            ),
        )?;
        Ok(self)
    }

    /// Add a Contact with an optional `expires` parameter.
    pub fn contact(
        &mut self,
        addr: &Address<'_>,
        expires: Option<u32>,
    ) -> Result<&mut Self, BuildError> {
        self.address("Contact", addr, expires)?;
        Ok(self)
    }

    /// Add `Expires: secs`.
    pub fn expires(&mut self, secs: u32) -> Result<&mut Self, BuildError> {
        self.fmt_header("Expires", format_args!("{secs}"))?;
        Ok(self)
    }

    /// Add `Allow:` with the given methods.
    pub fn allow(&mut self, methods: &[Method<'_>]) -> Result<&mut Self, BuildError> {
        self.raw("Allow: ")?;
        for (i, m) in methods.iter().enumerate() {
            check_token(m.as_str(), "Allow")?;
            if i > 0 {
                self.raw(", ")?;
            }
            self.raw(m.as_str())?;
        }
        self.raw("\r\n")?;
        Ok(self)
    }

    /// Add any header. The name must be a token; the value must not contain CR, LF or NUL.
    /// Content-Length and Content-Type are refused: [`finish`](Self::finish) writes them from
    /// the body, so they can never disagree with it.
    pub fn header(&mut self, name: &str, value: &str) -> Result<&mut Self, BuildError> {
        if name.is_empty() || !name.bytes().all(super::lex::is_token_char) {
            return Err(BuildError::BadHeaderName);
        }
        if let kind @ (HeaderName::ContentLength | HeaderName::ContentType) =
            HeaderName::from_name(name)
        {
            return Err(BuildError::Reserved {
                header: kind.as_str().unwrap_or(""),
            });
        }
        self.line(name, value)?;
        Ok(self)
    }

    /// Write `name: value` after checking the value.
    fn line(&mut self, name: &str, value: &str) -> Result<(), BuildError> {
        check_value(value, "header value")?;
        self.raw(name)?;
        self.raw(": ")?;
        self.raw(value)?;
        self.raw("\r\n")
    }

    /// Write a header copied from a parsed request, unfolded.
    fn mirror(&mut self, name: &str, value: &str) -> Result<(), BuildError> {
        self.raw(name)?;
        self.raw(": ")?;
        self.unfolded(value)?;
        self.raw("\r\n")
    }

    /// Write a parsed value with each folded line break (CRLF or LF, then SP/HTAB) replaced by
    /// one SP (RFC 3261 §7.3.1); any other CR, LF or NUL is refused.
    fn unfolded(&mut self, value: &str) -> Result<(), BuildError> {
        let mut rest = value;
        while let Some(i) = rest.find(['\r', '\n']) {
            check_value(&rest[..i], "mirrored header")?;
            self.raw(&rest[..i])?;
            let after = &rest[i..];
            let brk = if after.starts_with("\r\n") { 2 } else { 1 };
            let tail = &after[brk..];
            if after.starts_with('\r') && brk == 1 || !tail.starts_with([' ', '\t']) {
                return Err(BuildError::Injection {
                    field: "mirrored header",
                });
            }
            self.raw(" ")?;
            rest = tail.trim_start_matches([' ', '\t']);
        }
        check_value(rest, "mirrored header")?;
        self.raw(rest)
    }

    /// End the header section with `Content-Length` and write the body, if any, with its
    /// `Content-Type` (`(content_type, body)`).
    pub fn finish(self, body: Option<(&str, &[u8])>) -> Result<(), BuildError> {
        let mut w = self;
        match body {
            Some((ct, bytes)) => {
                check_value(ct, "Content-Type")?;
                if ct.is_empty() {
                    return Err(BuildError::BadValue {
                        field: "Content-Type",
                    });
                }
                w.line("Content-Type", ct)?;
                w.fmt_header("Content-Length", format_args!("{}", bytes.len()))?;
                w.raw("\r\n")?;
                w.out.put(bytes)
            }
            None => w.raw("Content-Length: 0\r\n\r\n"),
        }
    }

    fn address(
        &mut self,
        name: &str,
        a: &Address<'_>,
        expires: Option<u32>,
    ) -> Result<(), BuildError> {
        check_uri(a.uri, "address URI")?;
        self.raw(name)?;
        self.raw(": ")?;
        if let Some(dn) = a.display_name {
            check_value(dn, "display name")?;
            // quoted-string allows no control characters except HTAB (RFC 3261 §25.1).
            if dn.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                return Err(BuildError::BadValue {
                    field: "display name",
                });
            }
            self.raw("\"")?;
            let mut rest = dn;
            while let Some(i) = rest.find(['"', '\\']) {
                self.raw(&rest[..i])?;
                self.raw("\\")?;
                self.raw(&rest[i..=i])?;
                rest = &rest[i + 1..];
            }
            self.raw(rest)?;
            self.raw("\" ")?;
        }
        self.raw("<")?;
        self.raw(a.uri)?;
        self.raw(">")?;
        if let Some(tag) = a.tag {
            check_token(tag, "tag")?;
            self.raw(";tag=")?;
            self.raw(tag)?;
        }
        if let Some(e) = expires {
            self.fmt_raw(format_args!(";expires={e}"))?;
        }
        self.raw("\r\n")
    }

    fn fmt_header(&mut self, name: &str, args: fmt::Arguments<'_>) -> Result<(), BuildError> {
        self.raw(name)?;
        self.raw(": ")?;
        self.fmt_raw(args)?;
        self.raw("\r\n")
    }

    fn fmt_raw(&mut self, args: fmt::Arguments<'_>) -> Result<(), BuildError> {
        let mut adapter = FmtAdapter {
            out: &mut *self.out,
            err: None,
        };
        let res = adapter.write_fmt(args);
        match (res, adapter.err) {
            (_, Some(e)) => Err(e),
            (Err(_), None) => Err(BuildError::BufferFull),
            (Ok(()), None) => Ok(()),
        }
    }

    fn raw(&mut self, s: &str) -> Result<(), BuildError> {
        self.out.put(s.as_bytes())
    }
}

struct FmtAdapter<'a, O: Output> {
    out: &'a mut O,
    err: Option<BuildError>,
}

impl<O: Output> fmt::Write for FmtAdapter<'_, O> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.out.put(s.as_bytes()).map_err(|e| {
            self.err = Some(e);
            fmt::Error
        })
    }
}

fn check_value(v: &str, field: &'static str) -> Result<(), BuildError> {
    if v.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        Err(BuildError::Injection { field })
    } else {
        Ok(())
    }
}

fn check_token(v: &str, field: &'static str) -> Result<(), BuildError> {
    check_value(v, field)?;
    if v.is_empty() || !v.bytes().all(super::lex::is_token_char) {
        return Err(BuildError::BadValue { field });
    }
    Ok(())
}

fn check_uri(v: &str, field: &'static str) -> Result<(), BuildError> {
    check_value(v, field)?;
    if super::uri::Uri::parse(v).is_err() || v.contains(['<', '>', ' ']) {
        return Err(BuildError::BadValue { field });
    }
    Ok(())
}

impl Message<'_> {
    /// Write the message back out: start line, every header as `name: value` in arrival
    /// order (names and values as written, folding kept), the blank line, and the body.
    /// Parsing the output gives the same start line, headers and body.
    pub fn write_to<O: Output>(&self, out: &mut O) -> Result<(), BuildError> {
        match self.start_line() {
            StartLine::Request(r) => {
                out.put(r.method.as_str().as_bytes())?;
                out.put(b" ")?;
                out.put(r.uri.as_bytes())?;
                out.put(b" ")?;
                out.put(r.version.as_bytes())?;
            }
            StartLine::Response(s) => {
                out.put(s.version.as_bytes())?;
                let mut code = [0u8; 5];
                code[0] = b' ';
                code[1] = b'0' + (s.code / 100 % 10) as u8;
                code[2] = b'0' + (s.code / 10 % 10) as u8;
                code[3] = b'0' + (s.code % 10) as u8;
                code[4] = b' ';
                out.put(&code)?;
                out.put(s.reason.as_bytes())?;
            }
        }
        out.put(b"\r\n")?;
        for h in self.headers() {
            out.put(h.name.as_bytes())?;
            out.put(b": ")?;
            out.put(h.value.as_bytes())?;
            out.put(b"\r\n")?;
        }
        out.put(b"\r\n")?;
        out.put(self.body())
    }
}

#[cfg(test)]
mod tests;
