//! Shared inputs and per-implementation adapters for the benchmarks.
//!
//! Every benchmark runs latchkey and its peers — [`rsip`] 0.4 and [`ezk_sip_types`] 0.6 — side
//! by side on the same bytes. Each of the modules [`latchkey`], [`rsip_peer`] and [`ezk_peer`]
//! has the same two functions, so that every implementation does the same work:
//!
//! * `parse` — a whole message from bytes to the implementation's own message type (start
//!   line, headers, body), nothing more;
//! * `core` — the same parse, then the typed core headers a transaction layer reads for every
//!   message: the top Via (its branch), From and To (URI user and tag), CSeq and Call-ID,
//!   handed to a callback as one borrowed [`Core`], so nothing is copied to compare them.
//!
//! The crate's tests check that all three read the same [`Core`] from every typical message,
//! so no implementation can look fast by skipping a header.
//!
//! Run with `cargo bench -p latchkey-benches`; groups `parse`, `parse_typed`, `framing` and
//! `digest` (one file each under `benches/`). Inputs a peer cannot handle are reported on
//! stderr and left out of its measurements.

use core::fmt;

pub mod inputs {
    //! The messages measured: three typical door-entry messages (the same constants as
    //! `protocol/tests/no_alloc.rs`) and two RFC 4475 torture messages.

    /// A REGISTER with digest credentials, as a wall panel sends it.
    pub const REGISTER: &[u8] = include_bytes!("../../protocol/tests/messages/register.sip");

    /// An INVITE with an SDP offer (audio + video), as a door station sends it.
    pub const INVITE: &[u8] = include_bytes!("../../protocol/tests/messages/invite-sdp.sip");

    /// The 200 OK answering [`REGISTER`].
    pub const OK: &[u8] = include_bytes!("../../protocol/tests/messages/ok-register.sip");

    /// RFC 4475 §3.1.1.1 "wsinv": a short tortuous INVITE (line folding, escapes, odd case).
    pub const WSINV: &[u8] = include_bytes!("../../protocol/tests/rfc4475/wsinv.dat");

    /// RFC 4475 §3.1.1.7 "longreq": long values in header fields.
    pub const LONGREQ: &[u8] = include_bytes!("../../protocol/tests/rfc4475/longreq.dat");

    /// The three typical messages, named as the benchmark ids name them.
    pub const TYPICAL: [(&str, &[u8]); 3] = [
        ("register", REGISTER),
        ("invite_sdp", INVITE),
        ("ok_200", OK),
    ];

    /// Everything the `parse` group measures.
    pub const PARSE: [(&str, &[u8]); 5] = [
        ("register", REGISTER),
        ("invite_sdp", INVITE),
        ("ok_200", OK),
        ("rfc4475_wsinv", WSINV),
        ("rfc4475_longreq", LONGREQ),
    ];
}

/// The typed core headers every implementation extracts, borrowed from its own parsed form.
///
/// The same fields for everyone: top Via branch, From/To URI user and tag, CSeq number,
/// Call-ID. Building it copies pointers only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Core<'a> {
    /// The top Via's `branch` parameter.
    pub branch: Option<&'a str>,
    /// The user part of the From URI.
    pub from_user: Option<&'a str>,
    /// The From `tag`.
    pub from_tag: Option<&'a str>,
    /// The user part of the To URI.
    pub to_user: Option<&'a str>,
    /// The To `tag`.
    pub to_tag: Option<&'a str>,
    /// The CSeq sequence number.
    pub cseq: u32,
    /// The Call-ID.
    pub call_id: &'a str,
}

/// Why an implementation could not handle an input (reported once, before measuring).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

fn fail(what: &str, e: impl fmt::Debug) -> Failure {
    // Some peers quote the whole remaining input in their errors; keep the report readable.
    let mut s = format!("{what}: {e:?}");
    if let Some((cut, _)) = s.char_indices().nth(200) {
        s.truncate(cut);
        s.push('…');
    }
    Failure(s)
}

pub mod guard_setting {
    //! What the `guard` criterion bench and the `instructions` harness's guard modes share:
    //! the panel's credentials, the guard configuration, and the upgrade request's headers.

    use core::time::Duration;

    use latchkey_protocol::guard::{GuardConfig, NonceConfig, Quota};

    /// The panel's bearer token, shaped as calaos_base issues them: 32 random bytes as 64
    /// hex digits (FACTS.md §4), so with the 64-digit nonces the signing string is 140 bytes.
    pub const TOKEN: &str = "5d0c8a7e21f94b3c6e8d0a1f7b2c9e4d3a6f8b1c0e5d7a9f2b4c6e8d1a3f5b7c";
    /// The panel's HMAC secret.
    pub const SECRET: &[u8] = b"7f3b5a2d9e1c4b6a8c3f5e2d9a7b4c6e1f8d5a2c9b6e3f0d7a4b1c8e5f2a9d0c";

    /// A guard whose quota no request reaches and whose caps no run reaches, so every
    /// request goes the whole way (1,000,000 per hour with a burst of 1,000,000 per address;
    /// 120-s nonce retention).
    ///
    /// # Panics
    /// Never: the quota is valid.
    #[must_use]
    pub fn config() -> GuardConfig {
        GuardConfig {
            auth_rate: Quota::new(1_000_000, Duration::from_secs(1_000_000 * 3600))
                .expect("a valid quota"),
            max_rate_keys: 1 << 20,
            nonces: NonceConfig {
                retention: Duration::from_secs(120),
                per_device_cap: 1 << 20,
                global_cap: 1 << 20,
            },
            ..GuardConfig::default()
        }
    }

    /// A panel's WebSocket upgrade request as (name, value) pairs, as the server's HTTP parser
    /// hands them over: five ordinary headers and the four the guard reads.
    #[must_use]
    pub fn upgrade_pairs<'a>(
        authorization: &'a str,
        timestamp: &'a str,
        nonce: &'a str,
        hmac: &'a str,
    ) -> [(&'a str, &'a str); 9] {
        [
            ("Host", "gateway.local:8443"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
            ("Authorization", authorization),
            ("X-Auth-Timestamp", timestamp),
            ("X-Auth-Nonce", nonce),
            ("X-Auth-HMAC", hmac),
        ]
    }
}

pub mod latchkey {
    //! latchkey: `Message::parse` (zero-copy index) and the typed views computed on demand.

    use latchkey_protocol::sip::framing::{Decoder, Frame, Limits};
    use latchkey_protocol::sip::uri::SipUri;
    use latchkey_protocol::sip::{Message, ParseError};

    use super::{Core, Failure, fail};

    /// Parse a whole message.
    pub fn parse(raw: &[u8]) -> Result<Message<'_>, ParseError> {
        Message::parse(raw)
    }

    /// Parse, then read the typed core headers and hand them to `f`.
    pub fn core<R>(raw: &[u8], f: impl FnOnce(&Core<'_>) -> R) -> Result<R, Failure> {
        let m = Message::parse(raw).map_err(|e| fail("parse", e))?;
        let via = m.top_via().map_err(|e| fail("Via", e))?;
        let from = m.from().map_err(|e| fail("From", e))?;
        let to = m.to().map_err(|e| fail("To", e))?;
        let cseq = m.cseq().map_err(|e| fail("CSeq", e))?;
        let call_id = m.call_id().map_err(|e| fail("Call-ID", e))?;
        Ok(f(&Core {
            branch: via.branch(),
            from_user: from.uri.as_sip().and_then(SipUri::user),
            from_tag: from.tag(),
            to_user: to.uri.as_sip().and_then(SipUri::user),
            to_tag: to.tag(),
            cseq: cseq.seq,
            call_id,
        }))
    }

    /// What one pass of the framer over a stream yielded.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct Frames {
        /// Whole messages.
        pub messages: usize,
        /// CRLFCRLF pings.
        pub pings: usize,
        /// Lone line breaks (a pong, or the first CRLF of a ping).
        pub pongs: usize,
    }

    /// Feed `stream` to a new decoder in reads of `chunk` bytes, draining the frames after
    /// each read; with `parse`, also parse every message. Fails on a framing or parse error,
    /// and if the decoder ever reports more frames than there are bytes (every frame consumes
    /// at least one, so only a decoder bug gets there).
    pub fn frame(stream: &[u8], chunk: usize, parse: bool) -> Result<Frames, Failure> {
        let mut decoder = Decoder::new(Limits::default());
        let mut n = Frames::default();
        let mut total = 0usize;
        for read in stream.chunks(chunk) {
            decoder.feed(read);
            while let Some(frame) = decoder.next_frame() {
                match frame.map_err(|e| fail("framing", e))? {
                    Frame::Message(m) => {
                        if parse {
                            std::hint::black_box(Message::parse(&m).map_err(|e| fail("parse", e))?);
                        }
                        n.messages += 1;
                    }
                    Frame::Ping => n.pings += 1,
                    _ => n.pongs += 1,
                }
                total += 1;
                if total > stream.len() {
                    return Err(Failure("the decoder reports more frames than bytes".into()));
                }
            }
        }
        Ok(n)
    }
}

pub mod rsip_peer {
    //! rsip 0.4: `SipMessage::try_from(&[u8])` (nom, every header into an owned `String`), typed
    //! headers through `ToTypedHeader::typed()`.

    use rsip::prelude::{HeadersExt, ToTypedHeader, UntypedHeader};

    use super::{Core, Failure, fail};

    /// Parse a whole message.
    pub fn parse(raw: &[u8]) -> Result<rsip::SipMessage, rsip::Error> {
        rsip::SipMessage::try_from(raw)
    }

    /// Parse, then read the typed core headers and hand them to `f`.
    pub fn core<R>(raw: &[u8], f: impl FnOnce(&Core<'_>) -> R) -> Result<R, Failure> {
        let m = rsip::SipMessage::try_from(raw).map_err(|e| fail("parse", e))?;
        let via = m
            .via_header()
            .and_then(ToTypedHeader::typed)
            .map_err(|e| fail("Via", e))?;
        let from = m
            .from_header()
            .and_then(ToTypedHeader::typed)
            .map_err(|e| fail("From", e))?;
        let to = m
            .to_header()
            .and_then(ToTypedHeader::typed)
            .map_err(|e| fail("To", e))?;
        let cseq = m
            .cseq_header()
            .and_then(ToTypedHeader::typed)
            .map_err(|e| fail("CSeq", e))?;
        // Call-ID is an opaque string in rsip: its untyped form is its typed form.
        let call_id = m.call_id_header().map_err(|e| fail("Call-ID", e))?;
        Ok(f(&Core {
            branch: via.branch().map(|b| b.value()),
            from_user: from.uri.auth.as_ref().map(|a| a.user.as_str()),
            from_tag: from.tag().map(|t| t.value()),
            to_user: to.uri.auth.as_ref().map(|a| a.user.as_str()),
            to_tag: to.tag().map(|t| t.value()),
            cseq: cseq.seq,
            call_id: call_id.value(),
        }))
    }
}

pub mod ezk_peer {
    //! ezk-sip-types 0.6. The crate publishes the pieces of a message parser — `PullParser`
    //! (line splitting with folding), `MessageLine::parse`, `Line::parse`, `Headers` — and
    //! leaves assembling them to ezk-sip-core. [`parse`] assembles them exactly as
    //! ezk-sip-core's `StreamingDecoder` and `parse_complete` do (head lines, header map,
    //! Content-Length, body slice), so the comparison is with what an ezk user runs.
    //!
    //! Input is handed over as a ready `Bytes`: the copy ezk-sip-core makes for datagrams is
    //! left out, in ezk's favour.

    use bytes::Bytes;
    use ezk_sip_types::header::typed::{CSeq, CallID, ContentLength, FromTo, Via};
    use ezk_sip_types::msg::{Line, MessageLine, PullParser};
    use ezk_sip_types::parse::Parse;
    use ezk_sip_types::uri::SipUriUserPart;
    use ezk_sip_types::{Headers, Name};

    use super::{Core, Failure, fail};

    /// A parsed message, as ezk-sip-core's decoder returns it.
    #[derive(Debug)]
    pub struct Parsed {
        /// Request or status line.
        pub line: MessageLine,
        /// Header map (values are `BytesStr`).
        pub headers: Headers,
        /// The body, a slice of the input.
        pub body: Bytes,
    }

    /// Parse a whole message.
    pub fn parse(buffer: &Bytes) -> Result<Parsed, Failure> {
        let mut parser = PullParser::new(buffer, 0);
        let mut message_line = None;
        let mut headers = Headers::new();
        for item in &mut parser {
            let line = item.map_err(|e| fail("incomplete head", e))?;
            let line = core::str::from_utf8(line).map_err(|e| fail("head line", e))?;
            if message_line.is_none() {
                match MessageLine::parse(buffer)(line) {
                    Ok((_, l)) => message_line = Some(l),
                    Err(e) => return Err(fail("start line", e)),
                }
            } else {
                match Line::parse(buffer, line) {
                    Ok((_, l)) => headers.insert(l.name, l.value),
                    Err(e) => return Err(fail("header line", e)),
                }
            }
        }
        let head_end = parser.head_end();
        let body = match headers.get_named::<ContentLength>() {
            Ok(ContentLength(0)) => Bytes::new(),
            Ok(ContentLength(n)) => {
                let end = head_end.checked_add(n).filter(|&e| e <= buffer.len());
                let end = end.ok_or_else(|| Failure("body shorter than Content-Length".into()))?;
                buffer.slice(head_end..end)
            }
            Err(_) => buffer.slice(head_end..),
        };
        let line = message_line.ok_or_else(|| Failure("no start line".into()))?;
        Ok(Parsed {
            line,
            headers,
            body,
        })
    }

    fn user(u: &SipUriUserPart) -> Option<&str> {
        match u {
            SipUriUserPart::Empty => None,
            SipUriUserPart::User(u) => Some(u.as_str()),
            SipUriUserPart::UserPw(up) => Some(up.user.as_str()),
        }
    }

    /// Parse, then read the typed core headers and hand them to `f`.
    pub fn core<R>(buffer: &Bytes, f: impl FnOnce(&Core<'_>) -> R) -> Result<R, Failure> {
        let m = parse(buffer)?;
        let via: Via = m.headers.get_named().map_err(|e| fail("Via", e))?;
        let from: FromTo = m.headers.get(Name::FROM).map_err(|e| fail("From", e))?;
        let to: FromTo = m.headers.get(Name::TO).map_err(|e| fail("To", e))?;
        let cseq: CSeq = m.headers.get_named().map_err(|e| fail("CSeq", e))?;
        let call_id: CallID = m.headers.get_named().map_err(|e| fail("Call-ID", e))?;
        Ok(f(&Core {
            branch: via.params.get_val("branch").map(|b| b.as_str()),
            from_user: user(&from.uri.uri.user_part),
            from_tag: from.tag.as_ref().map(|t| t.as_str()),
            to_user: user(&to.uri.uri.user_part),
            to_tag: to.tag.as_ref().map(|t| t.as_str()),
            cseq: cseq.cseq,
            call_id: call_id.0.as_str(),
        }))
    }
}

/// `outcome` is one run of `implementation` on `input`, made before measuring: its value
/// when it succeeded, `None` — reported on stderr, the pair left out of the measurements —
/// when it failed. So no benchmark times an error path or unwraps inside its loop.
#[allow(clippy::print_stderr)] // the report is the point
pub fn checked<T, E: fmt::Debug>(
    group: &str,
    implementation: &str,
    input: &str,
    outcome: Result<T, E>,
) -> Option<T> {
    match outcome {
        Ok(v) => Some(v),
        Err(e) => {
            eprintln!(
                "{group}/{implementation}/{input}: not measured, {}",
                fail("failed", e)
            );
            None
        }
    }
}

/// A byte stream for the `framing` group.
#[derive(Debug, Clone)]
pub struct Stream {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// How many whole messages they hold.
    pub messages: usize,
    /// How many CRLFCRLF keep-alive pings they hold.
    pub pings: usize,
}

/// A stream of at least `len` bytes made of [`inputs::TYPICAL`] in turn, with an RFC 5626
/// CRLFCRLF keep-alive ping after every eighth message.
pub fn stream(len: usize) -> Stream {
    let mut bytes = Vec::with_capacity(len + 2048);
    let (mut messages, mut pings) = (0, 0);
    while bytes.len() < len {
        bytes.extend_from_slice(inputs::TYPICAL[messages % 3].1);
        messages += 1;
        if messages % 8 == 0 {
            bytes.extend_from_slice(b"\r\n\r\n");
            pings += 1;
        }
    }
    Stream {
        bytes,
        messages,
        pings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(c: &Core<'_>) -> String {
        format!("{c:?}")
    }

    #[test]
    fn adapters_agree_on_the_core_headers_of_typical_messages() {
        for (name, raw) in inputs::TYPICAL {
            let ours = latchkey::core(raw, owned).unwrap();
            let r = rsip_peer::core(raw, owned).unwrap();
            let e = ezk_peer::core(&bytes::Bytes::from_static(raw), owned).unwrap();
            assert_eq!(ours, r, "{name}: latchkey vs rsip");
            assert_eq!(ours, e, "{name}: latchkey vs ezk");
        }
    }

    #[test]
    fn core_reads_the_values_written_in_register() {
        let expected = Core {
            branch: Some("z9hG4bK776asdhds"),
            from_user: Some("owner_client"),
            from_tag: Some("a73kszlfl"),
            to_user: Some("owner_client"),
            to_tag: None,
            cseq: 2,
            call_id: "1j9FpLxk3uxtm8tn@192.0.2.4",
        };
        assert_eq!(
            latchkey::core(inputs::REGISTER, owned).unwrap(),
            owned(&expected)
        );
    }

    #[test]
    fn every_parse_input_parses_with_latchkey() {
        for (name, raw) in inputs::PARSE {
            assert!(latchkey::parse(raw).is_ok(), "{name}");
        }
    }

    #[test]
    fn stream_holds_what_it_counts() {
        let s = stream(1 << 20);
        assert!(s.bytes.len() >= 1 << 20);
        let message_bytes: usize = (0..s.messages)
            .map(|i| inputs::TYPICAL[i % 3].1.len())
            .sum();
        assert_eq!(s.bytes.len(), message_bytes + 4 * s.pings);
        assert_eq!(s.pings, s.messages / 8);
    }

    #[test]
    fn latchkey_frames_the_stream_into_what_it_holds() {
        let s = stream(1 << 16);
        for chunk in [1, 7, 4096, s.bytes.len()] {
            let n = latchkey::frame(&s.bytes, chunk, true).unwrap();
            assert_eq!(
                (n.messages, n.pings, n.pongs),
                (s.messages, s.pings, s.pings),
                "{chunk}"
            );
        }
    }
}
