//! Incremental SIP framing for stream transports (TCP, TLS): RFC 3261 §18.3 message
//! boundaries and RFC 5626 §4.4.1 CRLF keep-alives.
//!
//! A [`Decoder`] owns a receive buffer. The driver [`feed`](Decoder::feed)s whatever a read
//! returned and drains [`next_frame`](Decoder::next_frame) until it answers `None` (more bytes
//! needed). Each [`Frame::Message`] is exactly one whole message — start line, header section,
//! empty line and `Content-Length` bytes of body — split off the buffer without copying; the
//! framer only finds boundaries, [`Message::parse`](crate::sip::Message::parse) reads the
//! message.
//!
//! ```
//! use latchkey_protocol::sip::framing::{Decoder, Frame, Limits};
//!
//! let mut decoder = Decoder::new(Limits::new());
//! decoder.feed(b"\r\nOPTIONS sip:door@example.com SIP/2.0\r\nl: 2\r\n\r\nhi\r\n\r");
//! assert_eq!(decoder.next_frame(), Some(Ok(Frame::Pong)));
//! let Some(Ok(Frame::Message(m))) = decoder.next_frame() else { panic!() };
//! assert!(m.starts_with(b"OPTIONS") && m.ends_with(b"\r\n\r\nhi"));
//! assert_eq!(decoder.next_frame(), Some(Ok(Frame::Pong)));
//! assert_eq!(decoder.next_frame(), None); // a lone CR: wait for its LF
//! decoder.feed(b"\n");
//! assert_eq!(decoder.next_frame(), Some(Ok(Frame::Ping))); // CRLFCRLF: answer with CRLF
//! ```
//!
//! # Rules
//!
//! * **Chunking never matters.** Feeding a stream in any pieces, down to one byte at a time,
//!   yields exactly the frames (and the error) that feeding it at once yields. Every decision
//!   depends only on bytes already seen, and nothing is decided on a guess about whether more
//!   bytes are coming.
//! * **Keep-alives.** Between messages, every line break (CRLF, or a bare LF) is reported as
//!   soon as it is complete: the first of a run of line breaks is a [`Frame::Pong`], the second a
//!   [`Frame::Ping`], the third a `Pong` again and so on; a message ends the run. A peer's pong
//!   (one CRLF, RFC 5626 §4.4.1) therefore arrives as `Pong` at once, and a peer's ping
//!   (CRLFCRLF) as `Pong` then `Ping`: answer every `Ping` with one CRLF. The `Pong` that
//!   precedes a `Ping` is harmless: a server ignores pongs (it never sends pings), and for a
//!   client any keep-alive from the server proves the flow alive. Reporting CRLFCRLF as a bare
//!   `Ping` is impossible without breaking the first rule: after a lone CRLF the decoder would
//!   have to wait for a second CRLF that a pong never brings (stalling the client's pong
//!   watchdog), or guess from read boundaries (and a ping split across two TCP segments would
//!   lose its answer, making the client drop a healthy flow). Line breaks before a start line
//!   are the ones RFC 3261 §7.5 says to ignore; a driver that does not care about keep-alives
//!   simply ignores both frames.
//! * **Line ends.** Lines end in CRLF or, leniently, in a bare LF (as in
//!   [`Message::parse`](crate::sip::Message::parse)): the header section ends at the first LF
//!   that is followed by LF or CRLF. A line that begins with SP or HTAB continues the previous
//!   header field (folding, RFC 3261 §7.3.1).
//! * **Content-Length** (RFC 3261 §18.3, §20.14) is required on a stream: it is the only thing
//!   that says where the body ends. It is found by looking at the start of each header field
//!   only — `Content-Length` or the compact `l`, any case, optional white space before the colon,
//!   LWS (folding included) around the value. The value must be 1 to 19 decimal digits (as the
//!   message parser reads it); repeated fields must agree.
//! * **Limits** ([`Limits`]) are enforced as soon as they are known to be exceeded: the
//!   header section as soon as that many bytes have arrived without its end, the body as soon
//!   as its `Content-Length` field is read, the message as soon as the header section ends.
//!   After `next_frame` has answered `None` the buffer never holds more than
//!   [`Limits::max_message_bytes`] (or the one CR of a line break in progress), so memory is
//!   bounded by that plus one read.
//! * **The framer does not validate.** Garbage before a start line, a bad start line, NUL
//!   bytes or a header line without a colon are framed as they are (up to the limits) and left
//!   to the parser, which can answer 400 (Bad Request) with a precise reason.
//!
//! # After an error the decoder is poisoned
//!
//! On a stream the only delimiter between messages is `Content-Length`. Once it is missing,
//! unreadable, contradicted or over a limit, where the next message begins is unknowable.
//! Resynchronising by searching for something that looks like a start line would let a body
//! (the text of a MESSAGE, say) smuggle in a request that the peer never sent. So every error
//! is final: the decoder drops its buffer, ignores later input and answers every later
//! [`next_frame`](Decoder::next_frame) with the same error; the driver closes the connection
//! (a new connection starts with a new decoder or [`Decoder::reset`]).
//!
//! # Cost
//!
//! No per-byte state machine: one `memchr` per header line finds both the line starts (where
//! `Content-Length` may begin) and the empty line that ends the header section. (A `memmem`
//! for CRLFCRLF would be a second pass over the same bytes, since the line starts are needed
//! anyway, and would miss bare-LF line ends.) A search that ran out of bytes resumes at the
//! last LF it could not yet classify, so bytes are not scanned again when more arrive; the body
//! is not looked at. Frames are split off the buffer with [`BytesMut::split_to`] and frozen,
//! so they share its allocation instead of being copied; the buffer grows by at least 4 KiB at
//! a time and reclaims its space once the frames cut from it are dropped.

use core::fmt;

use bytes::{Buf, Bytes, BytesMut};

use super::lex;

/// Size limits of one message. `#[non_exhaustive]`: start from [`Limits::new`] (or
/// `Default`) and adjust with the `with_*` methods or by assigning the fields.
///
/// The defaults: 65,535 bytes for a whole message (the cap of the ezk and rsipstack stream
/// decoders and of Kamailio's receive buffer); 16 KiB for the header section (the default
/// header cap of Node's HTTP server; RFC 4475's longest torture message has a 3.4 KiB header
/// section, real REGISTER and INVITE headers are well under 2 KiB); 65,535 bytes for the body,
/// so the message limit is the one that binds unless a tighter body limit is chosen (a small
/// device may want a few KiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Limits {
    /// Largest header section: start line through the empty line that ends it, line ends
    /// included. The effective limit is the smaller of this and `max_message_bytes`.
    pub max_header_bytes: usize,
    /// Largest `Content-Length`.
    pub max_body_bytes: usize,
    /// Largest whole message (header section plus body).
    pub max_message_bytes: usize,
}

impl Limits {
    /// The default limits: 16 KiB header section, 65,535-byte body and message.
    #[must_use]
    pub const fn new() -> Self {
        Limits {
            max_header_bytes: 16 * 1024,
            max_body_bytes: 65_535,
            max_message_bytes: 65_535,
        }
    }

    /// These limits with `max_header_bytes` set to `n`.
    #[must_use]
    pub const fn with_max_header_bytes(mut self, n: usize) -> Self {
        self.max_header_bytes = n;
        self
    }

    /// These limits with `max_body_bytes` set to `n`.
    #[must_use]
    pub const fn with_max_body_bytes(mut self, n: usize) -> Self {
        self.max_body_bytes = n;
        self
    }

    /// These limits with `max_message_bytes` set to `n`.
    #[must_use]
    pub const fn with_max_message_bytes(mut self, n: usize) -> Self {
        self.max_message_bytes = n;
        self
    }

    /// The header limit in force: the smaller of the header and message limits.
    const fn header_limit(&self) -> usize {
        if self.max_header_bytes < self.max_message_bytes {
            self.max_header_bytes
        } else {
            self.max_message_bytes
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new()
    }
}

/// One unit of a SIP stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame {
    /// Exactly one whole message: start line, header section, empty line and body of
    /// `Content-Length` bytes. It shares the decoder's buffer allocation (no copy).
    Message(Bytes),
    /// A keep-alive line break that completes a CRLFCRLF ping (RFC 5626 §4.4.1): answer with a
    /// single CRLF. It comes right after the [`Frame::Pong`] of the ping's first CRLF.
    Ping,
    /// A keep-alive line break that is not the second of a pair: a pong (a lone CRLF,
    /// RFC 5626 §4.4.1), or the first CRLF of a ping.
    Pong,
}

/// Why the stream cannot be framed. Every error is final (see the module docs): the decoder
/// repeats it on every later call. Offsets count bytes from the start of the stream (the first
/// byte fed after [`Decoder::new`] or [`Decoder::reset`] is offset 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FramingError {
    /// The header section did not end within the header limit.
    HeaderTooLarge {
        /// Where the message starts.
        offset: u64,
        /// The header limit in force.
        limit: usize,
    },
    /// The header section has no `Content-Length`, which stream transports require
    /// (RFC 3261 §18.3, §20.14).
    MissingContentLength {
        /// Where the message starts.
        offset: u64,
    },
    /// A `Content-Length` value is not 1 to 19 decimal digits.
    InvalidContentLength {
        /// Where the value starts.
        offset: u64,
    },
    /// A second `Content-Length` disagrees with the first.
    ConflictingContentLength {
        /// Where the second value starts.
        offset: u64,
        /// The first value.
        first: u64,
        /// The second value.
        second: u64,
    },
    /// The `Content-Length` is over the body limit.
    BodyTooLarge {
        /// Where the value starts.
        offset: u64,
        /// The `Content-Length`.
        length: u64,
        /// The body limit.
        limit: usize,
    },
    /// Header section plus `Content-Length` is over the message limit.
    MessageTooLarge {
        /// Where the message starts.
        offset: u64,
        /// The size the message would have.
        length: u64,
        /// The message limit.
        limit: usize,
    },
}

impl FramingError {
    /// Stream offset of the fault (see each variant for what it points at).
    #[must_use]
    pub fn offset(&self) -> u64 {
        match *self {
            FramingError::HeaderTooLarge { offset, .. }
            | FramingError::MissingContentLength { offset }
            | FramingError::InvalidContentLength { offset }
            | FramingError::ConflictingContentLength { offset, .. }
            | FramingError::BodyTooLarge { offset, .. }
            | FramingError::MessageTooLarge { offset, .. } => offset,
        }
    }
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FramingError::HeaderTooLarge { offset, limit } => write!(
                f,
                "header section of the message at stream offset {offset} does not end within \
                 the {limit}-byte header limit"
            ),
            FramingError::MissingContentLength { offset } => write!(
                f,
                "message at stream offset {offset} has no Content-Length, which a stream \
                 transport requires (RFC 3261 §18.3)"
            ),
            FramingError::InvalidContentLength { offset } => write!(
                f,
                "Content-Length at stream offset {offset} is not 1 to 19 decimal digits"
            ),
            FramingError::ConflictingContentLength {
                offset,
                first,
                second,
            } => write!(
                f,
                "Content-Length at stream offset {offset} is {second}, but an earlier one in \
                 the same message is {first}"
            ),
            FramingError::BodyTooLarge {
                offset,
                length,
                limit,
            } => write!(
                f,
                "Content-Length {length} at stream offset {offset} is over the {limit}-byte \
                 body limit"
            ),
            FramingError::MessageTooLarge {
                offset,
                length,
                limit,
            } => write!(
                f,
                "message at stream offset {offset} would be {length} bytes, over the \
                 {limit}-byte message limit"
            ),
        }
    }
}

impl core::error::Error for FramingError {}

/// Incremental decoder of one SIP byte stream (one connection). See the module docs for the
/// rules.
#[derive(Debug, Clone)]
pub struct Decoder {
    limits: Limits,
    /// Bytes fed and not yet handed out; `buf[0]` is the start of the next frame.
    buf: BytesMut,
    /// Stream offset of `buf[0]`.
    base: u64,
    state: State,
}

/// Smallest growth of the buffer, so that tiny reads do not reallocate over and over.
const MIN_RESERVE: usize = 4096;

impl Decoder {
    /// A decoder at the start of a stream.
    #[must_use]
    pub fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            buf: BytesMut::new(),
            base: 0,
            state: State::BETWEEN,
        }
    }

    /// The limits this decoder enforces.
    #[must_use]
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Append bytes read from the stream. Drain [`next_frame`](Self::next_frame) until it
    /// answers `None` before feeding more: that is what keeps the buffer within
    /// [`Limits::max_message_bytes`]. A poisoned decoder drops what it is fed.
    pub fn feed(&mut self, bytes: &[u8]) {
        if let State::Poisoned(_) = self.state {
            self.base = self.base.saturating_add(to_u64(bytes.len()));
            return;
        }
        if self.buf.capacity() - self.buf.len() < bytes.len() {
            self.buf.reserve(bytes.len().max(MIN_RESERVE));
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next frame, `None` when more bytes are needed, or the error that ended framing.
    ///
    /// The answer changes only after [`feed`](Self::feed) (new bytes) or
    /// [`reset`](Self::reset). Once it is an error, it is that error on every later call until
    /// `reset`.
    #[must_use]
    pub fn next_frame(&mut self) -> Option<Result<Frame, FramingError>> {
        loop {
            match self.state {
                State::Poisoned(e) => return Some(Err(e)),
                State::Between { odd } => {
                    let line_break = match (self.buf.first(), self.buf.get(1)) {
                        (None, _) | (Some(b'\r'), None) => return None,
                        (Some(b'\n'), _) => 1,
                        (Some(b'\r'), Some(b'\n')) => 2,
                        (Some(_), _) => {
                            self.state = State::Head(HeadScan::START);
                            continue;
                        }
                    };
                    self.consume(line_break);
                    self.state = State::Between { odd: !odd };
                    return Some(Ok(if odd { Frame::Ping } else { Frame::Pong }));
                }
                State::Head(mut scan) => match scan.run(&self.buf, &self.limits, self.base) {
                    Ok(Some(len)) => self.state = State::Body { len },
                    Ok(None) => {
                        self.state = State::Head(scan);
                        return None;
                    }
                    Err(e) => return Some(Err(self.poison(e))),
                },
                State::Body { len } => {
                    if self.buf.len() < len {
                        return None;
                    }
                    let message = self.buf.split_to(len).freeze();
                    self.base = self.base.saturating_add(to_u64(len));
                    self.state = State::BETWEEN;
                    return Some(Ok(Frame::Message(message)));
                }
            }
        }
    }

    /// How many bytes are buffered: fed and not yet handed out in a frame.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Stream offset of the first buffered byte: how many bytes were consumed as frames (or,
    /// once poisoned, dropped).
    #[must_use]
    pub fn position(&self) -> u64 {
        self.base
    }

    /// Whether an error ended framing (the driver should close the connection).
    #[must_use]
    pub fn is_poisoned(&self) -> bool {
        matches!(self.state, State::Poisoned(_))
    }

    /// The error that ended framing, if any.
    #[must_use]
    pub fn error(&self) -> Option<FramingError> {
        match self.state {
            State::Poisoned(e) => Some(e),
            _ => None,
        }
    }

    /// Start a new stream (a new connection): drop buffered bytes, clear any error, count
    /// offsets from 0 again. The limits are kept.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.base = 0;
        self.state = State::BETWEEN;
    }

    /// Drop `n` buffered bytes (a keep-alive).
    fn consume(&mut self, n: usize) {
        self.buf.advance(n);
        self.base = self.base.saturating_add(to_u64(n));
    }

    /// Enter the poisoned state: free the buffer, remember the error.
    fn poison(&mut self, e: FramingError) -> FramingError {
        self.base = self.base.saturating_add(to_u64(self.buf.len()));
        self.buf = BytesMut::new();
        self.state = State::Poisoned(e);
        e
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(Limits::new())
    }
}

/// Where the decoder is in the stream. Positions are indexes into the buffer, whose first
/// byte is the start of the current frame.
#[derive(Debug, Clone, Copy)]
enum State {
    /// Between frames: line breaks are keep-alives, anything else starts a message. `odd`
    /// says an odd number of line breaks has been seen since the last message, so the next
    /// one completes a CRLFCRLF ping.
    Between { odd: bool },
    /// Reading a header section.
    Head(HeadScan),
    /// The header section has ended; the message is `len` bytes in all.
    Body { len: usize },
    /// Framing failed; the error is final.
    Poisoned(FramingError),
}

impl State {
    const BETWEEN: State = State::Between { odd: false };
}

/// Progress through a header section, kept between calls so no byte is scanned twice.
#[derive(Debug, Clone, Copy)]
struct HeadScan {
    /// Where the search for the next LF resumes.
    next: usize,
    /// Start of the header field being read; 0 while it is still the start line.
    field: usize,
    /// The `Content-Length` read so far.
    content_length: Option<u64>,
}

impl HeadScan {
    const START: HeadScan = HeadScan {
        next: 0,
        field: 0,
        content_length: None,
    };

    /// Scan the header section at the start of `buf` (the stream offset of `buf[0]` is `base`)
    /// as far as the bytes and the header limit allow. `Ok(Some(len))`: the header section
    /// ended and the whole message is `len` bytes; `Ok(None)`: more bytes are needed.
    ///
    /// Only the first `limit` bytes are looked at, so the outcome depends on the bytes of the
    /// stream alone and never on how much happens to be buffered.
    fn run(
        &mut self,
        buf: &[u8],
        limits: &Limits,
        base: u64,
    ) -> Result<Option<usize>, FramingError> {
        let limit = limits.header_limit();
        let window = buf.get(..limit).unwrap_or(buf);
        loop {
            let rest = window.get(self.next..).unwrap_or_default();
            let Some(lf) = memchr::memchr(b'\n', rest).map(|i| self.next + i) else {
                self.next = window.len();
                break;
            };
            // What follows the LF decides whether the field goes on, ends, or ends the header
            // section. If that is not known yet, resume at this LF next time.
            let head_len = match (window.get(lf + 1), window.get(lf + 2)) {
                (None, _) | (Some(b'\r'), None) => {
                    self.next = lf;
                    break;
                }
                (Some(b' ' | b'\t'), _) => {
                    self.next = lf + 1;
                    continue;
                }
                (Some(b'\n'), _) => Some(lf + 2),
                (Some(b'\r'), Some(b'\n')) => Some(lf + 3),
                (Some(_), _) => None,
            };
            if self.field != 0 {
                let field = window.get(self.field..lf).unwrap_or_default();
                self.header_field(field, base.saturating_add(to_u64(self.field)), limits)?;
            }
            if let Some(head_len) = head_len {
                return self.finish(head_len, limits, base).map(Some);
            }
            self.field = lf + 1;
            self.next = lf + 1;
        }
        if buf.len() >= limit {
            return Err(FramingError::HeaderTooLarge {
                offset: base,
                limit,
            });
        }
        Ok(None)
    }

    /// Look at one whole header field (folded lines included, final line end excluded) that
    /// starts at stream offset `at`, and take its `Content-Length` if it is one.
    fn header_field(&mut self, field: &[u8], at: u64, limits: &Limits) -> Result<(), FramingError> {
        // The name is `l` or `Content-Length` (any case) followed by a non-token byte. The
        // first byte rules out most fields at once.
        let name_len = match field.first() {
            Some(b'l' | b'L') => 1,
            Some(b'c' | b'C') if field.first_chunk().is_some_and(is_content_length) => 14,
            _ => return Ok(()),
        };
        let rest = field.get(name_len..).unwrap_or_default();
        if rest.first().is_some_and(|&b| lex::is_token_char(b)) {
            return Ok(());
        }
        let wsp = rest.iter().take_while(|&&b| lex::is_wsp(b)).count();
        let Some(value) = rest.get(wsp..).and_then(|r| r.strip_prefix(b":")) else {
            // Not a header line at all: the parser reports it.
            return Ok(());
        };
        let value_at = at.saturating_add(to_u64(name_len + wsp + 1 + lex::lws_len(value)));
        // LWS, 1 to 19 digits, trailing white space: what the message parser accepts.
        let value = value.get(lex::lws_len(value)..).unwrap_or_default();
        let (digits, tail) =
            value.split_at(value.iter().take_while(|b| b.is_ascii_digit()).count());
        let length = tail
            .iter()
            .all(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .then(|| core::str::from_utf8(digits).ok())
            .flatten()
            .and_then(|digits| lex::parse_u64(digits, 19))
            .ok_or(FramingError::InvalidContentLength { offset: value_at })?;
        if let Some(first) = self.content_length.filter(|&first| first != length) {
            return Err(FramingError::ConflictingContentLength {
                offset: value_at,
                first,
                second: length,
            });
        }
        if length > to_u64(limits.max_body_bytes) {
            return Err(FramingError::BodyTooLarge {
                offset: value_at,
                length,
                limit: limits.max_body_bytes,
            });
        }
        self.content_length = Some(length);
        Ok(())
    }

    /// The header section is `head_len` bytes: the whole message length.
    fn finish(&self, head_len: usize, limits: &Limits, base: u64) -> Result<usize, FramingError> {
        let body = self
            .content_length
            .ok_or(FramingError::MissingContentLength { offset: base })?;
        usize::try_from(body)
            .ok()
            .and_then(|body| head_len.checked_add(body))
            .filter(|&len| len <= limits.max_message_bytes)
            .ok_or(FramingError::MessageTooLarge {
                offset: base,
                length: to_u64(head_len).saturating_add(body),
                limit: limits.max_message_bytes,
            })
    }
}

/// Whether 14 bytes are `Content-Length` in any case. Two 8-byte compares: OR-ing 0x20 maps
/// a byte onto a lowercase letter exactly when it is that letter in either case, and maps only
/// `-` and CR onto `-`, so the `-` is compared exactly.
fn is_content_length(n: &[u8; 14]) -> bool {
    const LOWER: u64 = u64::from_le_bytes([0x20; 8]);
    let head = u64::from_le_bytes([n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7]]);
    let tail = u64::from_le_bytes([n[6], n[7], n[8], n[9], n[10], n[11], n[12], n[13]]);
    n[7] == b'-'
        && head | LOWER == u64::from_le_bytes(*b"content-")
        && tail | LOWER == u64::from_le_bytes(*b"t-length")
}

/// `usize` to `u64`, lossless on every target Rust supports today.
fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
