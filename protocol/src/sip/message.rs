//! Zero-copy SIP message parsing (RFC 3261 §7).
//!
//! [`Message::parse`] reads one message from a byte slice into a borrowed view: the start
//! line, an index of header (name, value) slices in arrival order, and the body slice. It
//! allocates nothing for messages of up to [`INLINE_HEADERS`] header lines (a typical REGISTER,
//! INVITE or 200 OK has 8–15); a test with a counting allocator proves it.
//!
//! The parse is *structural*: it fails only when the bytes cannot be read as a message at all
//! (no start line, a header line without a colon, a header section that is not UTF-8, no
//! blank line ending the header section). Faults that a well-formed-looking message can still
//! have — a missing mandatory header, a CSeq method that differs from the request method, a
//! Content-Length that disagrees with the body, a bad Request-URI — are found by the strict
//! check, [`Message::validate`](crate::sip::validate).

use core::fmt;

use smallvec::SmallVec;

use super::header::{Header, HeaderName, Key, fold};
use super::lex;

/// How many header lines are indexed without allocating.
pub const INLINE_HEADERS: usize = 24;

/// The most header lines [`Message::parse`] indexes (each index entry is 40 bytes, so a flood of
/// tiny headers cannot cost more than about 10 KiB); [`Message::parse_with_limit`] sets another.
pub const DEFAULT_MAX_HEADERS: usize = 256;

/// How much of the input past the leading empty lines is checked as UTF-8 in one pass.
const UTF8_WINDOW: usize = 8 * 1024;

/// A parsed SIP message borrowing the bytes it was parsed from.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    raw: &'a [u8],
    /// The start line and header section (each line checked as UTF-8).
    head: &'a [u8],
    start: StartLine<'a>,
    headers: SmallVec<[Header<'a>; INLINE_HEADERS]>,
    body: &'a [u8],
    body_offset: usize,
    trailing: &'a [u8],
    terminated: bool,
}

/// The first line of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartLine<'a> {
    /// `Method SP Request-URI SP SIP-Version`
    Request(RequestLine<'a>),
    /// `SIP-Version SP Status-Code SP Reason-Phrase`
    Response(StatusLine<'a>),
}

/// A request line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLine<'a> {
    /// The method.
    pub method: Method<'a>,
    /// The Request-URI as written (between the separators, white space trimmed); the strict
    /// check verifies its grammar.
    pub uri: &'a str,
    /// The version as written, e.g. `SIP/2.0`.
    pub version: &'a str,
    /// The whole line without its line ending.
    pub line: &'a str,
}

/// A status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusLine<'a> {
    /// The version as written.
    pub version: &'a str,
    /// The status code (three digits; the strict check verifies the 100–699 range).
    pub code: u16,
    /// The reason phrase, possibly empty.
    pub reason: &'a str,
    /// The whole line without its line ending.
    pub line: &'a str,
}

/// A SIP method. Methods are case-sensitive (RFC 3261 §7.1): `invite` is an extension method,
/// not INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method<'a> {
    /// INVITE (RFC 3261)
    Invite,
    /// ACK (RFC 3261)
    Ack,
    /// OPTIONS (RFC 3261)
    Options,
    /// BYE (RFC 3261)
    Bye,
    /// CANCEL (RFC 3261)
    Cancel,
    /// REGISTER (RFC 3261)
    Register,
    /// MESSAGE (RFC 3428)
    Message,
    /// INFO (RFC 6086)
    Info,
    /// PRACK (RFC 3262)
    Prack,
    /// UPDATE (RFC 3311)
    Update,
    /// SUBSCRIBE (RFC 6665)
    Subscribe,
    /// NOTIFY (RFC 6665)
    Notify,
    /// REFER (RFC 3515)
    Refer,
    /// PUBLISH (RFC 3903)
    Publish,
    /// Any other token.
    Extension(&'a str),
}

impl<'a> Method<'a> {
    /// Classify a method token (case-sensitive). The caller checks it is a token.
    #[must_use]
    pub fn from_token(t: &'a str) -> Method<'a> {
        match t {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "OPTIONS" => Method::Options,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "MESSAGE" => Method::Message,
            "INFO" => Method::Info,
            "PRACK" => Method::Prack,
            "UPDATE" => Method::Update,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "PUBLISH" => Method::Publish,
            other => Method::Extension(other),
        }
    }

    /// The method as written on the wire.
    #[must_use]
    pub fn as_str(&self) -> &'a str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Options => "OPTIONS",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Message => "MESSAGE",
            Method::Info => "INFO",
            Method::Prack => "PRACK",
            Method::Update => "UPDATE",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Publish => "PUBLISH",
            Method::Extension(t) => t,
        }
    }
}

impl fmt::Display for Method<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why bytes could not be read as a SIP message. Every variant carries the byte offset of the
/// fault in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// Nothing but empty lines.
    Empty,
    /// The input ends in the middle of a header section line.
    UnterminatedHeaders {
        /// Where the header section starts.
        offset: usize,
    },
    /// The header section is not valid UTF-8.
    InvalidUtf8 {
        /// The first invalid byte.
        offset: usize,
    },
    /// The start line is neither a request line nor a status line.
    BadStartLine {
        /// Offset of the start line.
        offset: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The status code is not three digits.
    BadStatusCode {
        /// Offset of the status code.
        offset: usize,
    },
    /// A header line has no colon, or its name is not a token.
    BadHeaderLine {
        /// Offset of the header line.
        offset: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// More header lines than the limit.
    TooManyHeaders {
        /// Offset of the first header line over the limit.
        offset: usize,
        /// The limit.
        limit: usize,
    },
    /// A header section line starts with white space but there is no header to continue.
    OrphanContinuation {
        /// Offset of the line.
        offset: usize,
    },
}

impl ParseError {
    /// Byte offset of the fault in the input.
    #[must_use]
    pub fn offset(&self) -> usize {
        match *self {
            ParseError::Empty => 0,
            ParseError::UnterminatedHeaders { offset }
            | ParseError::InvalidUtf8 { offset }
            | ParseError::BadStartLine { offset, .. }
            | ParseError::BadStatusCode { offset }
            | ParseError::BadHeaderLine { offset, .. }
            | ParseError::OrphanContinuation { offset }
            | ParseError::TooManyHeaders { offset, .. } => offset,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => f.write_str("empty message"),
            ParseError::UnterminatedHeaders { offset } => write!(
                f,
                "header section starting at byte {offset} ends in the middle of a line"
            ),
            ParseError::InvalidUtf8 { offset } => {
                write!(f, "header section is not UTF-8 at byte {offset}")
            }
            ParseError::BadStartLine { offset, reason } => {
                write!(f, "bad start line at byte {offset}: {reason}")
            }
            ParseError::BadStatusCode { offset } => {
                write!(f, "bad status code at byte {offset}: expected three digits")
            }
            ParseError::BadHeaderLine { offset, reason } => {
                write!(f, "bad header line at byte {offset}: {reason}")
            }
            ParseError::TooManyHeaders { offset, limit } => {
                write!(f, "more than {limit} header lines (line at byte {offset})")
            }
            ParseError::OrphanContinuation { offset } => {
                write!(
                    f,
                    "line at byte {offset} continues no header (starts with white space)"
                )
            }
        }
    }
}

impl core::error::Error for ParseError {}

impl<'a> Message<'a> {
    /// Parse one message from `raw`.
    ///
    /// Empty lines before the start line are skipped (RFC 3261 §7.5). Lines may end in CRLF
    /// or, leniently, in a bare LF. The body is the bytes after the header section, cut to the
    /// `Content-Length` when one is present and no longer than what follows; anything after it
    /// is available as [`Message::trailing`] (a datagram carrying more than one message, or
    /// bytes a stream framer would hand to the next message).
    pub fn parse(raw: &'a [u8]) -> Result<Message<'a>, ParseError> {
        Self::parse_with_limit(raw, DEFAULT_MAX_HEADERS)
    }

    /// [`Message::parse`] with another limit on the number of header lines.
    pub fn parse_with_limit(raw: &'a [u8], max_headers: usize) -> Result<Message<'a>, ParseError> {
        // Skip leading empty lines.
        let mut pos = 0;
        loop {
            if raw[pos..].starts_with(b"\r\n") {
                pos += 2;
            } else if raw.get(pos) == Some(&b'\n') {
                pos += 1;
            } else {
                break;
            }
        }
        if pos >= raw.len() {
            return Err(ParseError::Empty);
        }
        let head_start = pos;

        // One pass over the lines of the header section: the first empty line ends it.
        let mut start: Option<StartLine<'a>> = None;
        let mut headers: SmallVec<[Header<'a>; INLINE_HEADERS]> = SmallVec::new();
        // Offset of the value of the last header, which a folded line continues.
        let mut last_value: Option<usize> = None;
        let mut line_start = head_start;
        let mut last_end = head_start;
        let newline = Newline::new();
        // UTF-8 is checked once over a window that holds any typical header section; lines
        // are sliced from it. A line reaching past the window is checked on its own.
        let window = &raw[head_start..raw.len().min(head_start + UTF8_WINDOW)];
        let text = match core::str::from_utf8(window) {
            Ok(t) => t,
            Err(e) => core::str::from_utf8(&window[..e.valid_up_to()]).unwrap_or_default(),
        };
        // `raw[from..to]` as text: from the checked window, or checked on its own.
        let slice = |from: usize, to: usize| match text.get(from - head_start..to - head_start) {
            Some(s) => Ok(s),
            None => line_outside_window(raw, from, to),
        };
        let (head_end, body_start, terminated) = loop {
            let Some(rel) = newline.find(&raw[line_start..]) else {
                // A header section not closed by an empty line is read to the end of the input
                // when its last line is complete (a datagram or file that lost its final CRLF);
                // the strict check reports it. A last line cut short is not a message.
                if line_start == raw.len() {
                    break (last_end, raw.len(), false);
                }
                return Err(ParseError::UnterminatedHeaders { offset: head_start });
            };
            let nl = line_start + rel;
            let end = if nl > line_start && raw[nl - 1] == b'\r' {
                nl - 1
            } else {
                nl
            };
            if end == line_start {
                break (last_end, nl + 1, true);
            }
            let line = slice(line_start, end)?;
            if start.is_none() {
                start = Some(parse_start_line(line, line_start)?);
            } else if lex::is_wsp(line.as_bytes()[0]) {
                // Folded continuation of the last header (RFC 3261 §7.3.1): its value now runs
                // to the end of this line (the lines were each checked as UTF-8; joined by ASCII
                // line breaks they still are).
                let (Some(value_start), Some(h)) = (last_value, headers.last_mut()) else {
                    return Err(ParseError::OrphanContinuation { offset: line_start });
                };
                h.value = lex::trim_lws(folded_value(text, raw, head_start, value_start, end)?);
            } else {
                if headers.len() >= max_headers {
                    return Err(ParseError::TooManyHeaders {
                        offset: line_start,
                        limit: max_headers,
                    });
                }
                let (h, value_at) = header_line(line, line_start)?;
                headers.push(h);
                last_value = Some(line_start + value_at);
            }
            last_end = end;
            line_start = nl + 1;
        };
        let Some(start) = start else {
            return Err(ParseError::Empty);
        };

        // The first Content-Length decides the body cut; an invalid or repeated one is left to
        // the strict check.
        let content_length = headers
            .iter()
            .find(|h| h.kind == HeaderName::ContentLength)
            .and_then(|h| lex::parse_u64(h.value, 19))
            .and_then(|n| usize::try_from(n).ok());
        let rest = &raw[body_start..];
        let body_len = match content_length {
            Some(n) if n <= rest.len() => n,
            _ => rest.len(),
        };
        Ok(Message {
            raw,
            head: &raw[head_start..head_end],
            start,
            headers,
            body: &rest[..body_len],
            body_offset: body_start,
            trailing: &rest[body_len..],
            terminated,
        })
    }

    /// The bytes this message was parsed from (all of them, including any trailing bytes).
    #[must_use]
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The start line and header section, without the blank line that ends it.
    #[must_use]
    pub fn head(&self) -> &'a str {
        // Every line was checked as UTF-8 and line breaks are ASCII, so this cannot fail.
        core::str::from_utf8(self.head).unwrap_or_default()
    }

    /// The start line.
    #[must_use]
    pub fn start_line(&self) -> &StartLine<'a> {
        &self.start
    }

    /// Whether this is a request.
    #[must_use]
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request(_))
    }

    /// The request line, for a request.
    #[must_use]
    pub fn request_line(&self) -> Option<&RequestLine<'a>> {
        match &self.start {
            StartLine::Request(r) => Some(r),
            StartLine::Response(_) => None,
        }
    }

    /// The status line, for a response.
    #[must_use]
    pub fn status_line(&self) -> Option<&StatusLine<'a>> {
        match &self.start {
            StartLine::Response(s) => Some(s),
            StartLine::Request(_) => None,
        }
    }

    /// The request method, for a request.
    #[must_use]
    pub fn method(&self) -> Option<Method<'a>> {
        self.request_line().map(|r| r.method)
    }

    /// The status code, for a response.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        self.status_line().map(|s| s.code)
    }

    /// Every header line, in arrival order.
    #[must_use]
    pub fn headers(&self) -> &[Header<'a>] {
        &self.headers
    }

    /// The first header line that is `name`.
    #[must_use]
    #[inline]
    pub fn header(&self, name: HeaderName) -> Option<&Header<'a>> {
        self.headers.iter().find(|h| h.kind == name)
    }

    /// The first header line whose name is `name` (case-insensitive, compact forms resolved).
    #[must_use]
    pub fn header_by_name(&self, name: &str) -> Option<&Header<'a>> {
        let kind = HeaderName::from_name(name);
        self.headers.iter().find(|h| {
            if kind == HeaderName::Other {
                h.kind == HeaderName::Other && h.name.eq_ignore_ascii_case(name)
            } else {
                h.kind == kind
            }
        })
    }

    /// Every header line that is `name`, in order.
    pub fn headers_named(&self, name: HeaderName) -> impl Iterator<Item = &Header<'a>> + '_ {
        self.headers.iter().filter(move |h| h.kind == name)
    }

    /// Every value of `name`, in order: repeated header lines in arrival order, and for list
    /// headers ([`HeaderName::is_list`]) each comma-separated element of each line. Each item
    /// is the value and its byte offset in the message.
    pub fn values(&self, name: HeaderName) -> impl Iterator<Item = (usize, &'a str)> + '_ {
        self.headers_named(name)
            .flat_map(Header::elements)
            .map(|v| (self.offset_of(v), v))
    }

    /// The body (cut to `Content-Length` when the header is valid and the bytes are there).
    #[must_use]
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// Byte offset of the body in the input.
    #[must_use]
    pub fn body_offset(&self) -> usize {
        self.body_offset
    }

    /// Whether the header section was closed by an empty line (RFC 3261 §7). The parser reads
    /// a complete but unclosed header section to the end of the input; the strict check
    /// rejects it.
    #[must_use]
    pub fn is_head_terminated(&self) -> bool {
        self.terminated
    }

    /// Bytes after the body that belong to no part of this message.
    #[must_use]
    pub fn trailing(&self) -> &'a [u8] {
        self.trailing
    }

    /// Byte offset in the input of `s`, which must be a slice of this message's header
    /// section (a header name or value, or part of one). Returns 0 for foreign slices.
    #[must_use]
    pub fn offset_of(&self, s: &str) -> usize {
        offset_in(self.raw, s.as_bytes())
    }
}

/// The line loop's search for the next line feed: memchr's SSE2 searcher on x86-64 (SSE2 is
/// part of the target's baseline), built once per message, which saves the run-time dispatch
/// and set-up that `memchr::memchr` repeats on every call; elsewhere memchr's portable one.
struct Newline(
    #[cfg(target_arch = "x86_64")] Option<memchr::arch::x86_64::sse2::memchr::One>,
    #[cfg(not(target_arch = "x86_64"))] memchr::arch::all::memchr::One,
);

impl Newline {
    #[inline]
    fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            Newline(memchr::arch::x86_64::sse2::memchr::One::new(b'\n'))
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Newline(memchr::arch::all::memchr::One::new(b'\n'))
        }
    }

    /// Offset of the first line feed in `b`.
    #[inline]
    fn find(&self, b: &[u8]) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        {
            match &self.0 {
                Some(one) => one.find(b),
                None => memchr::memchr(b'\n', b),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self.0.find(b)
        }
    }
}

/// `raw[from..to]` as text, from the checked window `text` (which starts at `head_start`) or
/// checked on its own: what the line loop's `slice` does, for a folded value (rare; a call
/// keeps the line loop small, which saves more than the call costs).
#[cold]
#[inline(never)]
fn folded_value<'a>(
    text: &'a str,
    raw: &'a [u8],
    head_start: usize,
    from: usize,
    to: usize,
) -> Result<&'a str, ParseError> {
    match text.get(from - head_start..to - head_start) {
        Some(s) => Ok(s),
        None => line_outside_window(raw, from, to),
    }
}

/// `raw[from..to]` checked as UTF-8 on its own: a line past the one-pass window, or one that
/// holds the window's first invalid byte (kept out of the line loop, which nearly never
/// needs it).
#[cold]
#[inline(never)]
fn line_outside_window(raw: &[u8], from: usize, to: usize) -> Result<&str, ParseError> {
    core::str::from_utf8(&raw[from..to]).map_err(|e| ParseError::InvalidUtf8 {
        offset: from + e.valid_up_to(),
    })
}

/// Offset of `part` inside `whole`, or 0 when `part` is not inside it.
fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    let w = whole.as_ptr() as usize;
    let p = part.as_ptr() as usize;
    if p >= w && p <= w + whole.len() {
        p - w
    } else {
        0
    }
}

/// Split one header line into name and value: `token *(SP/HTAB) ":" value`. Returns the
/// header and the offset in the line of its value's first byte (where a folded continuation
/// line would extend it from).
#[inline]
fn header_line(line: &str, offset: usize) -> Result<(Header<'_>, usize), ParseError> {
    let b = line.as_bytes();
    // Fast path: nearly every line starts with a known name right before its colon. The colon
    // is found a word at a time; when the bytes before it are a known name, they are letters
    // and `-` only (names fold alike only when equal ignoring ASCII case, see
    // `HeaderName::from_name`), so they are the token the byte-wise scan below would have
    // read, and the colon follows it with no white space: the same split.
    let early = early_colon(b).map(|(k, key)| (k, HeaderName::from_folded(&key, k)));
    let (name_len, colon, kind) = match early {
        Some((k, kind)) if kind != HeaderName::Other => (k, k, kind),
        _ => {
            let name_len = lex::token_run_len(b, 0);
            let mut i = name_len;
            while i < b.len() && lex::is_wsp(b[i]) {
                i += 1;
            }
            if i >= b.len() || b[i] != b':' || name_len == 0 {
                let reason = if memchr::memchr(b':', b).is_some() {
                    "header name is not a token"
                } else {
                    "no colon"
                };
                return Err(ParseError::BadHeaderLine { offset, reason });
            }
            // An unknown name already classified by the fast path is not classified again.
            let kind = match early {
                Some((k, kind)) if k == name_len => kind,
                _ => HeaderName::from_name(&line[..name_len]),
            };
            (name_len, i, kind)
        }
    };
    let name = &line[..name_len];
    // Skip the SP / HTAB after the colon and trim the end: what `lex::trim_lws` does to a
    // value within one line (which holds no LF, so no folded line break can start it).
    let mut v = colon + 1;
    while v < b.len() && lex::is_wsp(b[v]) {
        v += 1;
    }
    let mut e = b.len();
    while e > v && matches!(b[e - 1], b' ' | b'\t' | b'\r' | b'\n') {
        e -= 1;
    }
    let header = Header {
        name,
        kind,
        value: &line[v..e],
    };
    Ok((header, v))
}

/// Offset of the first `:` in the first 24 bytes of `b` (room for the longest known header
/// name), read eight bytes at a time, and the classifier key
/// ([`class_key`](super::header::class_key)) of the bytes before it, built from the same
/// words; `None` when there is no colon in the whole words there (the byte-wise scan then
/// decides).
#[inline]
fn early_colon(b: &[u8]) -> Option<(usize, Key)> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut key: Key = (0, 0, 0);
    for (k, chunk) in b.chunks_exact(8).take(3).enumerate() {
        let w = u64::from_le_bytes(chunk.try_into().ok()?);
        // The bytes equal to ':' become zero; the classic zero-byte test marks the lowest
        // zero byte exactly (a borrow can only mark bytes above it), so the lowest mark is
        // the first colon in memory order (little-endian).
        let x = w ^ (ONES * u64::from(b':'));
        let zero = x.wrapping_sub(ONES) & !x & HIGH;
        // The bytes below the colon (all ones below its mark's byte), or the whole word.
        let below = if zero != 0 {
            ((zero & zero.wrapping_neg()) >> 7).wrapping_sub(1)
        } else {
            u64::MAX
        };
        // Each key word in its own field (an indexed array would live in memory).
        match k {
            0 => key.0 = fold(w & below),
            1 => key.1 = fold(w & below),
            _ => key.2 = fold(w & below),
        }
        if zero != 0 {
            return Some((8 * k + (zero.trailing_zeros() / 8) as usize, key));
        }
    }
    None
}

/// Read a start line: the shapes nearly every message has are split here, in one pass;
/// anything else, errors included, by [`start_line_general`], which splits those shapes
/// alike (a property test checks it). Once per message: kept out of the line loop.
#[inline(never)]
fn parse_start_line(line: &str, offset: usize) -> Result<StartLine<'_>, ParseError> {
    let b = line.as_bytes();
    let n = b.len();
    // `SIP/` in any ASCII case: setting bit 5 maps exactly `S`/`s`, `I`/`i` and `P`/`p` onto
    // the lower-case letter; the `/` is compared as it is.
    let sip_slash = b
        .first_chunk::<4>()
        .is_some_and(|&w| u32::from_le_bytes(w) | 0x0020_2020 == u32::from_le_bytes(*b"sip/"));
    if sip_slash {
        // `SIP/2.0`, one SP, three digits, then the end or SP/HTAB and the reason phrase.
        if let Some(&[s0, s1, s2, s3, s4, s5, s6, s7, d0, d1, d2]) = b.get(..11)
            && [s0, s1, s2, s3, s4, s5, s6, s7] == *b"SIP/2.0 "
            && d0.is_ascii_digit()
            && d1.is_ascii_digit()
            && d2.is_ascii_digit()
            && b.get(11).is_none_or(|&c| lex::is_wsp(c))
        {
            let digit = |d: u8| u16::from(d - b'0');
            return Ok(StartLine::Response(StatusLine {
                version: &line[..7],
                code: digit(d0) * 100 + digit(d1) * 10 + digit(d2),
                reason: line.get(12..).unwrap_or_default(),
                line,
            }));
        }
    } else {
        // A token, one SP, a Request-URI that neither starts nor ends with white space, one
        // SP and `SIP/2.0` at the very end.
        let first_sp = lex::token_run_len(b, 0);
        if n >= 8
            && b[n - 8..] == *b" SIP/2.0"
            && first_sp > 0
            && first_sp + 1 < n - 8
            && b[first_sp] == b' '
            && !lex::is_wsp(b[first_sp + 1])
            && !lex::is_wsp(b[n - 9])
        {
            return Ok(StartLine::Request(RequestLine {
                method: Method::from_token(&line[..first_sp]),
                uri: &line[first_sp + 1..n - 8],
                version: &line[n - 7..],
                line,
            }));
        }
    }
    start_line_general(line, offset)
}

/// Read any start line: the general reading [`parse_start_line`] falls back to.
#[inline(never)]
fn start_line_general(line: &str, offset: usize) -> Result<StartLine<'_>, ParseError> {
    let bad = |reason| ParseError::BadStartLine { offset, reason };
    if line.len() >= 4 && line.as_bytes()[..4].eq_ignore_ascii_case(b"SIP/") {
        // Status line: SIP-Version SP Status-Code SP Reason-Phrase
        let sp = lex::find_wsp(line).ok_or(bad("status line has no status code"))?;
        let version = &line[..sp];
        let after = lex::trim_wsp_start(&line[sp..]);
        let code_off = offset + (line.len() - after.len());
        let code_len = after.bytes().take_while(u8::is_ascii_digit).count();
        let code_str = &after[..code_len];
        let rest = &after[code_len..];
        if code_len != 3 || rest.as_bytes().first().is_some_and(|&b| !lex::is_wsp(b)) {
            return Err(ParseError::BadStatusCode { offset: code_off });
        }
        let code = code_str
            .bytes()
            .fold(0u16, |n, b| n * 10 + u16::from(b - b'0'));
        let reason = rest.get(1..).unwrap_or_default();
        return Ok(StartLine::Response(StatusLine {
            version,
            code,
            reason,
            line,
        }));
    }
    // Request line: Method SP Request-URI SP SIP-Version. Trailing white space is tolerated
    // here (`line` keeps it) and rejected by the strict check (RFC 4475 §3.1.2.10).
    let full_line = line;
    let line = lex::trim_wsp_end(line);
    let first_sp = lex::find_wsp(line).ok_or(bad("request line has no Request-URI"))?;
    let method = &line[..first_sp];
    if method.is_empty() || !method.bytes().all(lex::is_token_char) {
        return Err(bad("method is not a token"));
    }
    let last_sp = lex::rfind_wsp(line).unwrap_or(first_sp);
    if last_sp == first_sp {
        return Err(bad("request line has no SIP version"));
    }
    let version = &line[last_sp + 1..];
    if !(version.len() >= 4 && version.as_bytes()[..4].eq_ignore_ascii_case(b"SIP/")) {
        return Err(bad("request line does not end in a SIP version"));
    }
    let uri = lex::trim_wsp_end(lex::trim_wsp_start(&line[first_sp..last_sp]));
    if uri.is_empty() {
        return Err(bad("empty Request-URI"));
    }
    Ok(StartLine::Request(RequestLine {
        method: Method::from_token(method),
        uri,
        version,
        line: full_line,
    }))
}

#[cfg(test)]
#[path = "message_reference.rs"]
mod reference;

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTER: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/TLS 192.0.2.4:5061;branch=z9hG4bKnashds7\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@example.com>\r\n\
From: Bob <sip:bob@example.com>;tag=456248\r\n\
Call-ID: 843817637684230@998sdasdh09\r\n\
CSeq: 1826 REGISTER\r\n\
Contact: <sip:bob@192.0.2.4;transport=tls>\r\n\
Expires: 600\r\n\
Content-Length: 0\r\n\r\n";

    #[test]
    fn parses_request_line_headers_and_empty_body() {
        let m = Message::parse(REGISTER).unwrap();
        let r = m.request_line().unwrap();
        assert_eq!(r.method, Method::Register);
        assert_eq!(r.uri, "sip:example.com");
        assert_eq!(r.version, "SIP/2.0");
        assert_eq!(m.headers().len(), 9);
        assert_eq!(
            m.header(HeaderName::CallId).unwrap().value,
            "843817637684230@998sdasdh09"
        );
        assert!(m.body().is_empty());
        assert!(m.trailing().is_empty());
    }

    #[test]
    fn header_offsets_point_into_the_input() {
        let m = Message::parse(REGISTER).unwrap();
        let h = m.header(HeaderName::Expires).unwrap();
        let off = m.offset_of(h.value);
        assert_eq!(&REGISTER[off..off + 3], b"600");
    }

    #[test]
    fn folded_header_values_keep_their_continuation_lines() {
        let raw =
            b"OPTIONS sip:a@b SIP/2.0\r\nSubject: one\r\n  two\r\n\ttwo-b\r\nTo: <sip:a@b>\r\n\r\n";
        let m = Message::parse(raw).unwrap();
        assert_eq!(
            m.header(HeaderName::Subject).unwrap().value,
            "one\r\n  two\r\n\ttwo-b"
        );
        assert_eq!(m.header(HeaderName::To).unwrap().value, "<sip:a@b>");
    }

    #[test]
    fn list_values_split_outside_quotes_and_brackets_and_repeats_kept_in_order() {
        let raw =
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=1, SIP/2.0/UDP b;branch=2\r\n\
v: SIP/2.0/TCP c;branch=3\r\nX-Weird: a, b\r\n\r\n";
        let m = Message::parse(raw).unwrap();
        let vias: alloc::vec::Vec<_> = m.values(HeaderName::Via).map(|(_, v)| v).collect();
        assert_eq!(
            vias,
            [
                "SIP/2.0/UDP a;branch=1",
                "SIP/2.0/UDP b;branch=2",
                "SIP/2.0/TCP c;branch=3"
            ]
        );
        let (off, v) = m.values(HeaderName::Via).nth(1).unwrap();
        assert_eq!(&raw[off..off + v.len()], v.as_bytes());
        let other: alloc::vec::Vec<_> = m.values(HeaderName::Other).map(|(_, v)| v).collect();
        assert_eq!(other, ["a, b"], "unknown headers are kept verbatim");
    }

    #[test]
    fn status_line_with_and_without_reason() {
        let m = Message::parse(b"SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\n\r\n").unwrap();
        assert_eq!(m.status(), Some(200));
        assert_eq!(m.status_line().unwrap().reason, "OK");
        let m = Message::parse(b"SIP/2.0 100\r\n\r\n").unwrap();
        assert_eq!(m.status_line().unwrap().reason, "");
    }

    #[test]
    fn body_is_cut_at_content_length_and_the_rest_is_trailing() {
        let raw = b"MESSAGE sip:a@b SIP/2.0\r\nl: 5\r\n\r\nhelloEXTRA";
        let m = Message::parse(raw).unwrap();
        assert_eq!(m.body(), b"hello");
        assert_eq!(m.trailing(), b"EXTRA");
        assert_eq!(m.body_offset(), raw.len() - 10);
    }

    #[test]
    fn structural_faults_name_their_offset() {
        assert_eq!(Message::parse(b"\r\n\r\n").unwrap_err(), ParseError::Empty);
        assert_eq!(
            Message::parse(b"INVITE sip:a@b SIP/2.0\r\nTo: x").unwrap_err(),
            ParseError::UnterminatedHeaders { offset: 0 }
        );
        let unclosed = Message::parse(b"INVITE sip:a@b SIP/2.0\r\nTo: x\r\n").unwrap();
        assert!(!unclosed.is_head_terminated());
        assert_eq!(unclosed.header(HeaderName::To).unwrap().value, "x");
        let e = Message::parse(b"INVITE sip:a@b SIP/2.0\r\nNoColonHere\r\n\r\n").unwrap_err();
        assert_eq!(
            e,
            ParseError::BadHeaderLine {
                offset: 24,
                reason: "no colon"
            }
        );
        let e = Message::parse(b"SIP/2.0 4294967301 big\r\n\r\n").unwrap_err();
        assert_eq!(e, ParseError::BadStatusCode { offset: 8 });
        let e = Message::parse(b"INVITE sip:a@b SIP/2.0\r\n  cont\r\n\r\n").unwrap_err();
        assert_eq!(e, ParseError::OrphanContinuation { offset: 24 });
        let e = Message::parse(b"INVITE sip:a@b SIP/2.0\r\nX: \xff\r\n\r\n").unwrap_err();
        assert_eq!(e, ParseError::InvalidUtf8 { offset: 27 });
    }

    #[test]
    fn leading_empty_lines_are_skipped() {
        let m = Message::parse(b"\r\n\r\nOPTIONS sip:a@b SIP/2.0\r\n\r\n").unwrap();
        assert_eq!(m.method(), Some(Method::Options));
    }

    #[test]
    fn methods_are_case_sensitive() {
        assert_eq!(Method::from_token("INVITE"), Method::Invite);
        assert_eq!(Method::from_token("invite"), Method::Extension("invite"));
    }

    #[test]
    fn utf8_is_checked_past_the_one_pass_window_and_bodies_may_be_binary() {
        // Header lines that cross and pass the 8 KiB window are still read and checked.
        let mut raw = alloc::vec::Vec::from(&b"MESSAGE sip:a@b SIP/2.0\r\n"[..]);
        for i in 0..120 {
            raw.extend_from_slice(alloc::format!("X-Long-{i}: {}é\r\n", "v".repeat(90)).as_bytes());
        }
        assert!(raw.len() > UTF8_WINDOW + 1000);
        let good_len = raw.len();
        raw.extend_from_slice(
            b"Content-Type: application/octet-stream\r\nl: 4\r\n\r\n\xff\x00\xfe\x80",
        );
        let m = Message::parse(&raw).unwrap();
        assert_eq!(m.headers().len(), 122);
        assert!(m.headers()[119].value.ends_with('é'));
        assert_eq!(m.body(), b"\xff\x00\xfe\x80");
        // A bad byte in a header line past the window is found, at its offset.
        let mut bad = raw[..good_len].to_vec();
        bad.extend_from_slice(b"X-Bad: ok\xc3(\r\n\r\n");
        let at = good_len + "X-Bad: ok".len();
        assert_eq!(
            Message::parse(&bad).unwrap_err(),
            ParseError::InvalidUtf8 { offset: at }
        );
    }

    #[test]
    fn header_count_is_capped() {
        let mut raw = alloc::vec::Vec::from(&b"OPTIONS sip:a@b SIP/2.0\r\n"[..]);
        for _ in 0..=DEFAULT_MAX_HEADERS {
            raw.extend_from_slice(b"a:\r\n");
        }
        raw.extend_from_slice(b"\r\n");
        let e = Message::parse(&raw).unwrap_err();
        let at = 25 + 4 * DEFAULT_MAX_HEADERS;
        assert_eq!(
            e,
            ParseError::TooManyHeaders {
                offset: at,
                limit: DEFAULT_MAX_HEADERS
            }
        );
        assert_eq!(
            Message::parse_with_limit(&raw, 1000)
                .unwrap()
                .headers()
                .len(),
            257
        );
    }

    #[test]
    fn more_headers_than_inline_capacity_still_parse() {
        let mut raw = alloc::vec::Vec::from(&b"OPTIONS sip:a@b SIP/2.0\r\n"[..]);
        for i in 0..100 {
            raw.extend_from_slice(alloc::format!("X-H{i}: {i}\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        let m = Message::parse(&raw).unwrap();
        assert_eq!(m.headers().len(), 100);
        assert_eq!(m.headers()[99].value, "99");
    }

    #[test]
    fn header_names_split_alike_on_the_word_at_a_time_path_and_the_byte_wise_one() {
        // Lines long enough for the word-at-a-time colon search: known names in any case and
        // both forms, unknown names, white space before the colon, non-token bytes, a colon
        // past the first 24 bytes, names longer than any known one.
        let lines: [&[u8]; 14] = [
            b"Via: SIP/2.0/UDP a;branch=z9hG4bK1",
            b"vIA:SIP/2.0/UDP a;branch=z9hG4bK1",
            b"v: SIP/2.0/UDP a;branch=z9hG4bK1",
            b"Content-Length: 0     ",
            b"CONTENT-LENGTH:0",
            b"Via : SIP/2.0/UDP a",
            b"Via\t: SIP/2.0/UDP a",
            b"X-Custom-Header: value here",
            b"Vi@: SIP/2.0/UDP a;b",
            b"V\xc3\xa9a: SIP/2.0/UDP a",
            b"Authentication-Infos: nextnonce=x",
            b"A-Very-Long-Header-Name-Indeed: x",
            b"No colon in this line at all",
            b"Call-ID :  x@y  \t ",
        ];
        for line in lines {
            let mut raw = b"OPTIONS sip:a@b SIP/2.0\r\n".to_vec();
            raw.extend_from_slice(line);
            raw.extend_from_slice(b"\r\nTo: <sip:a@b>\r\n\r\n");
            let got = Message::parse(&raw);
            let want = reference::parse_with_limit(&raw, DEFAULT_MAX_HEADERS);
            assert_eq!(
                alloc::format!("{got:?}"),
                alloc::format!("{want:?}"),
                "{line:?}"
            );
        }
    }

    /// A header section line: known and unknown headers, folded continuations, Content-Length
    /// values, and lines the reader must reject.
    fn line() -> impl proptest::strategy::Strategy<Value = alloc::string::String> {
        use proptest::prelude::*;
        prop_oneof![
            "(Via|v|To|From|Call-ID|CSeq|Subject|X-A|l|Content-Length) ?: ?[a-z0-9 ;=<>@:.\"-]{0,12}",
            "(l|Content-Length|content-length): ?[0-9+ ]{0,4}",
            "[ \t]{1,2}[a-z ]{0,6}",
            "[A-Za-z:; \t-]{0,8}",
            "[a-z]{1,4}:[\\x00-\\xff]{0,4}",
        ]
    }

    proptest::proptest! {
        #[test]
        fn indexing_headers_as_their_lines_are_read_gives_what_the_reference_reader_gives(
            start in "(OPTIONS sip:a@b SIP/2.0|SIP/2.0 200 OK|\r\n|  x|)",
            lines in proptest::collection::vec(line(), 0..8),
            lf_only in proptest::collection::vec(proptest::bool::ANY, 8),
            end in "(\r\n|\n|)",
            body in "[a-z]{0,8}",
            max in 1usize..10,
        ) {
            let mut raw = start.clone();
            raw += if lf_only[0] { "\n" } else { "\r\n" };
            for (l, lf) in lines.iter().zip(lf_only.iter().cycle().skip(1)) {
                raw += l;
                raw += if *lf { "\n" } else { "\r\n" };
            }
            raw += &end;
            raw += &body;
            let got = Message::parse_with_limit(raw.as_bytes(), max);
            let want = reference::parse_with_limit(raw.as_bytes(), max);
            proptest::prop_assert_eq!(alloc::format!("{got:?}"), alloc::format!("{want:?}"), "{:?}", raw);
        }
    }

    proptest::proptest! {
        /// Lines of any length up to a few vectors wide, so that line feeds fall at every
        /// position relative to the searcher's 16-byte blocks and alignment, with bytes of any
        /// value (a stray CR, non-ASCII, none of them LF) inside: the lines split where the
        /// reference reader splits them.
        #[test]
        fn long_lines_split_where_the_reference_reader_splits_them(
            lead in "(\r\n){0,2}",
            lines in proptest::collection::vec(
                (
                    "(Via|To|X-A|Content-Length|Subject|[ \t]|)(: ?|)",
                    proptest::collection::vec(
                        proptest::prop_oneof![8 => 0x20u8..0x7f, 1 => proptest::num::u8::ANY],
                        0..100,
                    ),
                    proptest::bool::ANY,
                ),
                0..10,
            ),
            end in "(\r\n|\n|)",
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
        ) {
            let mut raw = lead.into_bytes();
            raw.extend_from_slice(b"OPTIONS sip:a@b SIP/2.0\r\n");
            for (name, bytes, lf) in &lines {
                raw.extend_from_slice(name.as_bytes());
                raw.extend(bytes.iter().map(|&b| if b == b'\n' { b'x' } else { b }));
                raw.extend_from_slice(if *lf { b"\n" } else { b"\r\n" });
            }
            raw.extend_from_slice(end.as_bytes());
            raw.extend_from_slice(&body);
            let got = Message::parse(&raw);
            let want = reference::parse_with_limit(&raw, DEFAULT_MAX_HEADERS);
            proptest::prop_assert_eq!(alloc::format!("{got:?}"), alloc::format!("{want:?}"), "{:?}", raw);
        }
    }

    fn regex(r: &str) -> proptest::string::RegexGeneratorStrategy<alloc::string::String> {
        proptest::string::string_regex(r).unwrap()
    }

    /// Every known name, long and compact forms, for the classification test (written out
    /// here so the test does not read the table it checks).
    const KNOWN: &str = "accept|accept-contact|accept-encoding|accept-language|alert-info|allow|allow-events|authentication-info|authorization|call-id|call-info|contact|content-disposition|content-encoding|content-language|content-length|content-type|cseq|date|error-info|event|expires|from|identity|in-reply-to|max-forwards|mime-version|min-expires|organization|priority|proxy-authenticate|proxy-authorization|proxy-require|record-route|refer-to|referred-by|reject-contact|reply-to|request-disposition|require|retry-after|route|server|session-expires|subject|subscription-state|supported|timestamp|to|unsupported|user-agent|via|warning|www-authenticate|[a-z]";

    proptest::proptest! {
        /// A header name in any ASCII case — every known name, long or compact, one with a
        /// byte changed or added, or any bytes — right before its colon (the word-at-a-time
        /// path) or followed by white space (the byte-wise one) is classified as
        /// `HeaderName::from_name` classifies it, and the message reads as the reference
        /// reader reads it.
        #[test]
        fn header_names_are_classified_alike_on_every_path(
            name in proptest::prop_oneof![
                4 => regex(&alloc::format!("(?i)({KNOWN})")),
                2 => regex(&alloc::format!("(?i)({KNOWN})[a-z_~@\\[-]")),
                1 => regex("[A-Za-z_@\\[\\]`{-]{1,24}"),
                1 => regex("[\\x00-\\xff]{0,24}"),
            ],
            change in proptest::option::of((0usize..24, proptest::num::u8::ANY)),
            ws in "( |\t|)",
            value in "[ -~]{0,30}",
        ) {
            let mut name = name.into_bytes();
            if let Some((at, byte)) = change
                && let Some(b) = name.get_mut(at)
            {
                *b = byte;
            }
            let mut raw = b"OPTIONS sip:a@b SIP/2.0\r\n".to_vec();
            raw.extend_from_slice(&name);
            raw.extend_from_slice(ws.as_bytes());
            raw.push(b':');
            raw.extend_from_slice(value.as_bytes());
            raw.extend_from_slice(b"\r\nTo: <sip:a@b>\r\n\r\n");
            let got = Message::parse(&raw);
            let want = reference::parse_with_limit(&raw, DEFAULT_MAX_HEADERS);
            proptest::prop_assert_eq!(alloc::format!("{got:?}"), alloc::format!("{want:?}"), "{:?}", raw);
            // When the line was read as a header named by the whole name, its kind is the
            // name's.
            if let Ok(m) = got
                && let Some(h) = m.headers().first().filter(|h| h.name.as_bytes() == name)
            {
                proptest::prop_assert_eq!(h.kind, HeaderName::from_name(h.name));
            }
        }
    }

    /// A start line in or near the shapes `parse_start_line` splits in one pass: status lines
    /// with other versions, code lengths and separators; request lines with extra or missing
    /// white space, non-token methods, other versions; any printable bytes.
    fn start_line() -> impl proptest::strategy::Strategy<Value = alloc::string::String> {
        use proptest::prelude::*;
        let sep = || "( |\t|  | \t|)";
        let status = (
            "(SIP/2\\.0|(?i:sip/2\\.0)|SIP\\x0f2\\.0|sIp\\x0f|SIP/2\\.1|SIP/20|SIP/|SIP/2\\.0x)",
            sep(),
            "([0-9]{3}|[0-9]{0,4}|[0-9]{2}a)",
            "( |\t|x|0||  )",
            "[ -~]{0,6}",
        )
            .prop_map(|(v, s, c, a, r)| alloc::format!("{v}{s}{c}{a}{r}"));
        let request = (
            "(INVITE|REGISTER|ACK|invite|FOO|X@Y|Ü|)",
            sep(),
            "(sip:a@b|sip:a b|x|é|<>|)",
            sep(),
            "(SIP/2\\.0|sip/2\\.0|SIP/2\\.1|SIP/2\\.00|IP/2\\.0|SIP/|)",
            "( |\t|)",
        )
            .prop_map(|(m, s1, u, s2, v, t)| alloc::format!("{m}{s1}{u}{s2}{v}{t}"));
        prop_oneof![3 => status, 3 => request, 1 => "[ -~\t]{0,24}"]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]
        /// Start lines are read as `start_line_general` reads them, errors included.
        #[test]
        fn start_lines_read_alike_on_the_one_pass_path_and_the_general_one(
            line in start_line(),
            offset in 0usize..100,
        ) {
            proptest::prop_assert_eq!(parse_start_line(&line, offset), start_line_general(&line, offset), "{:?}", line);
        }
    }

    // RFC 3261 §20.21: In-Reply-To = callid *(COMMA callid), callid = word ["@" word], and a
    // `word` may hold `<`, `>` and `"` (§25.1). The list splitter treats them as the start of
    // an angle-bracketed URI or a quoted string, so the two Call-IDs come out as one element.
    #[test]
    fn in_reply_to_call_ids_holding_word_characters_split_on_commas() {
        let raw = b"OPTIONS sip:a@b SIP/2.0\r\nIn-Reply-To: 70710<x@saturn.bell-tel.com, 17320@saturn.bell-tel.com\r\n\r\n";
        let m = Message::parse(raw).unwrap();
        let ids: alloc::vec::Vec<_> = m.values(HeaderName::InReplyTo).map(|(_, v)| v).collect();
        assert_eq!(
            ids,
            ["70710<x@saturn.bell-tel.com", "17320@saturn.bell-tel.com"]
        );
        let raw = b"OPTIONS sip:a@b SIP/2.0\r\nIn-Reply-To: a\"b@c, d@e\r\n\r\n";
        let m = Message::parse(raw).unwrap();
        let ids: alloc::vec::Vec<_> = m.values(HeaderName::InReplyTo).map(|(_, v)| v).collect();
        assert_eq!(ids, ["a\"b@c", "d@e"]);
    }
}
