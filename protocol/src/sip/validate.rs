//! The strict check: every fault for which RFC 3261 has a user agent answer 400 Bad Request
//! (or 505 for the version), found after a successful structural parse.
//!
//! [`Message::validate`] returns the first fault in message order (faults without a place
//! of their own, such as a missing header, are placed at the end of the header section);
//! each [`Violation`] names the header (when one is at fault) and the byte offset in the
//! message, so a UA can put it in the reason phrase and a human can find it. [`check`]
//! parses and validates in one call.
//!
//! What is checked:
//! * start line: `SIP/2.0` (505 otherwise), exactly one SP between request-line elements and
//!   none at the end (RFC 3261 §7.1, RFC 4475 §3.1.2.9–10), a Request-URI that follows the URI
//!   grammar, without `<>` or LWS, and without escaped headers (§19.1.1); exactly one SP
//!   after the version and the code of a status line, status 100–699;
//! * mandatory headers (To, From, CSeq, Call-ID, Via; Max-Forwards in requests; §8.1.1), each
//!   single-value header at most once (§7.3.1, RFC 4475 §3.3.13), the CSeq method equal to the
//!   request method (§8.1.1.5), Max-Forwards 0–255, a Contact in every INVITE (§8.1.1.8),
//!   `Contact: *` only alone, in a REGISTER, with `Expires: 0` (§10.2.2);
//! * every header with a grammar latchkey knows parses: Via, From, To, Contact, Route,
//!   Record-Route, Call-ID, CSeq, Max-Forwards, Expires, Min-Expires, Content-Length,
//!   Content-Type, Allow, Supported, Require, Date, Retry-After, Warning and the
//!   authentication headers, including empty list elements and unbalanced quotes;
//! * every line of the header section, the empty line that ends it included, ends in CRLF
//!   (§7); header values and the reason phrase hold no control character but HTAB and line
//!   folds, except escaped by a quoted-pair in a quoted string (§25.1); a non-empty body has
//!   a Content-Type (§20.15);
//! * Content-Length: present on streams (§18.3), equal to the body on streams, never larger
//!   than the body on datagrams (§18.3: a shorter one truncates; RFC 4475 §3.1.2.2).
//!
//! Every check visits each header line once, so the strict check is linear in the message.

use core::fmt;

use super::header::{Header, HeaderName};
use super::headers::{CSeq, Contact, HeaderError, NameAddr, ValueError, Via};
use super::lex;
use super::message::{Message, Method, ParseError, StartLine};
use super::uri::Uri;

/// How the message arrived, which decides the Content-Length rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Delivery {
    /// A stream (TCP, TLS, WebSocket after framing): Content-Length is mandatory and exact.
    #[default]
    Stream,
    /// A datagram (UDP): Content-Length may be absent and may be shorter than the bytes.
    Datagram,
}

/// Options of the strict check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Options {
    /// How the message arrived.
    pub delivery: Delivery,
    /// Accept RFC 2543-style requests that lack Max-Forwards (RFC 4475 §3.4.1).
    pub rfc2543_compat: bool,
}

impl Options {
    /// Options for a message read from a stream.
    #[must_use]
    pub fn stream() -> Self {
        Options {
            delivery: Delivery::Stream,
            rfc2543_compat: false,
        }
    }

    /// Options for a message read from a datagram.
    #[must_use]
    pub fn datagram() -> Self {
        Options {
            delivery: Delivery::Datagram,
            rfc2543_compat: false,
        }
    }

    /// The same options, accepting RFC 2543-style requests.
    #[must_use]
    pub fn with_rfc2543_compat(mut self, on: bool) -> Self {
        self.rfc2543_compat = on;
        self
    }
}

/// What kind of fault the strict check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ViolationKind {
    /// The bytes are not a message at all.
    Parse(ParseError),
    /// The version is not SIP/2.0 (answer 505 Version Not Supported).
    BadVersion,
    /// The request line is malformed (separators, trailing white space).
    BadRequestLine,
    /// The Request-URI is malformed.
    BadRequestUri,
    /// The status line is malformed (separators).
    BadStatusLine,
    /// The status code is outside 100–699.
    StatusOutOfRange,
    /// A line ends in a bare LF instead of CRLF (RFC 3261 §7).
    BadLineEnding,
    /// A Contact value breaks the rules for `*` (RFC 3261 §10.2.2, §20.10).
    BadContact,
    /// A non-empty body comes without Content-Type (RFC 3261 §20.15).
    MissingContentType,
    /// A mandatory header is absent.
    MissingHeader,
    /// A single-value header appears more than once.
    DuplicateHeader,
    /// A header does not follow its grammar, or a value is out of range.
    InvalidHeader,
    /// The CSeq method differs from the request method.
    CSeqMethodMismatch,
    /// The header section is not closed by an empty line.
    UnterminatedHeaders,
    /// Content-Length is absent on a stream.
    MissingContentLength,
    /// Content-Length disagrees with the body.
    ContentLengthMismatch,
}

/// One fault found by the strict check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    /// What kind of fault.
    pub kind: ViolationKind,
    /// The canonical name of the header at fault, if a header is.
    pub header: Option<&'static str>,
    /// Byte offset of the fault in the message.
    pub offset: usize,
    /// What is wrong, in words.
    pub reason: &'static str,
}

impl Violation {
    fn new(
        kind: ViolationKind,
        header: Option<&'static str>,
        offset: usize,
        reason: &'static str,
    ) -> Self {
        Violation {
            kind,
            header,
            offset,
            reason,
        }
    }

    /// The status code a UA answers this fault with (400, or 505 for the version).
    #[must_use]
    pub fn status_code(&self) -> u16 {
        if self.kind == ViolationKind::BadVersion {
            505
        } else {
            400
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.kind, self.header) {
            (ViolationKind::Parse(e), _) => write!(f, "{e}"),
            (_, Some(h)) => write!(f, "{h} header at byte {}: {}", self.offset, self.reason),
            (_, None) => write!(f, "byte {}: {}", self.offset, self.reason),
        }
    }
}

impl core::error::Error for Violation {}

impl From<ParseError> for Violation {
    fn from(e: ParseError) -> Self {
        Violation::new(
            ViolationKind::Parse(e),
            None,
            e.offset(),
            "not a SIP message",
        )
    }
}

impl From<HeaderError> for Violation {
    fn from(e: HeaderError) -> Self {
        match e {
            HeaderError::Missing { header } => Violation::new(
                ViolationKind::MissingHeader,
                Some(header),
                0,
                "mandatory header is missing",
            ),
            HeaderError::Invalid {
                header,
                offset,
                reason,
            } => Violation::new(ViolationKind::InvalidHeader, Some(header), offset, reason),
        }
    }
}

/// Parse `raw` and run the strict check.
pub fn check(raw: &[u8], options: Options) -> Result<Message<'_>, Violation> {
    let m = Message::parse(raw)?;
    m.validate(options)?;
    Ok(m)
}

/// Headers that may appear at most once.
const SINGLE: [HeaderName; 9] = [
    HeaderName::To,
    HeaderName::From,
    HeaderName::CallId,
    HeaderName::CSeq,
    HeaderName::MaxForwards,
    HeaderName::ContentLength,
    HeaderName::ContentType,
    HeaderName::Expires,
    HeaderName::Date,
];

impl<'a> Message<'a> {
    /// Run the strict check; `Ok` when a UA should process the message, the first fault
    /// otherwise.
    pub fn validate(&self, options: Options) -> Result<(), Violation> {
        // Every check reports the first fault of its kind in message order; the earliest of
        // those is the message's first fault (a fault with no place of its own, such as a
        // missing header, is placed at the end of the header section).
        earliest([
            self.check_start_line(),
            self.check_single_headers(),
            self.check_mandatory(options),
            self.check_header_grammar(),
            self.check_contacts(),
            self.check_line_endings(),
            self.check_characters(),
            self.check_body_type(),
            self.check_terminated(),
            self.check_content_length(options),
        ])
    }

    /// RFC 3261 §7: every line of the header section, the empty line that ends it included,
    /// ends in CRLF.
    fn check_line_endings(&self) -> Result<(), Violation> {
        let start = self.offset_of(self.head());
        let section = self
            .raw()
            .get(start..self.body_offset())
            .unwrap_or_default();
        match memchr::memchr_iter(b'\n', section).find(|&i| i == 0 || section[i - 1] != b'\r') {
            Some(at) => Err(Violation::new(
                ViolationKind::BadLineEnding,
                None,
                start + at,
                "line ends in LF without CR",
            )),
            None => Ok(()),
        }
    }

    /// RFC 3261 §25.1: header values and the reason phrase are text, LWS and line folds:
    /// no control character other than HTAB, and no CR that does not end a line.
    fn check_characters(&self) -> Result<(), Violation> {
        if let StartLine::Response(s) = self.start_line()
            && let Some(at) = control_character(s.reason)
        {
            return Err(Violation::new(
                ViolationKind::BadStatusLine,
                None,
                self.offset_of(s.reason) + at,
                "control character in the reason phrase",
            ));
        }
        for h in self.headers() {
            if let Some(at) = control_character(h.value) {
                return Err(Violation::new(
                    ViolationKind::InvalidHeader,
                    h.kind.as_str(),
                    self.offset_of(h.value) + at,
                    "control character in the header value (or CR not ending a line)",
                ));
            }
        }
        Ok(())
    }

    /// RFC 3261 §20.15: a non-empty body has a Content-Type.
    fn check_body_type(&self) -> Result<(), Violation> {
        if !self.body().is_empty() && self.header(HeaderName::ContentType).is_none() {
            return Err(Violation::new(
                ViolationKind::MissingContentType,
                Some("Content-Type"),
                self.body_offset(),
                "a non-empty body needs a Content-Type",
            ));
        }
        Ok(())
    }

    fn check_terminated(&self) -> Result<(), Violation> {
        if !self.is_head_terminated() {
            return Err(Violation::new(
                ViolationKind::UnterminatedHeaders,
                None,
                self.body_offset(),
                "header section is not ended by an empty line",
            ));
        }
        Ok(())
    }

    fn check_start_line(&self) -> Result<(), Violation> {
        match self.start_line() {
            StartLine::Request(r) => {
                let line_off = self.offset_of(r.line);
                let bad_line = |at: usize, reason| {
                    Err(Violation::new(
                        ViolationKind::BadRequestLine,
                        None,
                        line_off + at,
                        reason,
                    ))
                };
                let m = r.method.as_str().len();
                let b = r.line.as_bytes();
                if b.get(m) != Some(&b' ') || b.get(m + 1).is_some_and(|&c| lex::is_wsp(c)) {
                    return bad_line(m, "method must be followed by exactly one SP");
                }
                let uri_off = self.offset_of(r.uri);
                let uri_end = uri_off - line_off + r.uri.len();
                if b.get(uri_end) != Some(&b' ')
                    || b.get(uri_end + 1).is_some_and(|&c| lex::is_wsp(c))
                {
                    return bad_line(uri_end, "Request-URI must be followed by exactly one SP");
                }
                if r.version.ends_with([' ', '\t']) || r.line.ends_with([' ', '\t']) {
                    return bad_line(b.len(), "white space at the end of the request line");
                }
                if !r.version.eq_ignore_ascii_case("SIP/2.0") {
                    return Err(Violation::new(
                        ViolationKind::BadVersion,
                        None,
                        self.offset_of(r.version),
                        "unsupported SIP version (only SIP/2.0)",
                    ));
                }
                let bad_uri = |at: usize, reason| {
                    Err(Violation::new(
                        ViolationKind::BadRequestUri,
                        None,
                        at,
                        reason,
                    ))
                };
                if let Some(i) = r.uri.find([' ', '\t']) {
                    return bad_uri(uri_off + i, "white space inside the Request-URI");
                }
                if r.uri.starts_with('<') {
                    return bad_uri(uri_off, "Request-URI must not be enclosed in '<>'");
                }
                match Uri::parse(r.uri) {
                    Err(e) => return bad_uri(uri_off + e.offset(), e.reason()),
                    Ok(Uri::Sip(s)) if s.headers().next().is_some() => {
                        let at = r.uri.find('?').unwrap_or(0);
                        return bad_uri(uri_off + at, "headers are not allowed in a Request-URI");
                    }
                    Ok(_) => {}
                }
                Ok(())
            }
            StartLine::Response(s) => {
                let b = s.line.as_bytes();
                let v = s.version.len();
                if b.get(v) != Some(&b' ') || b.get(v + 1).is_some_and(|&c| lex::is_wsp(c)) {
                    return Err(Violation::new(
                        ViolationKind::BadStatusLine,
                        None,
                        self.offset_of(s.line) + v,
                        "SIP version must be followed by exactly one SP",
                    ));
                }
                if b.len() > v + 4 && b[v + 4] != b' ' {
                    return Err(Violation::new(
                        ViolationKind::BadStatusLine,
                        None,
                        self.offset_of(s.line) + v + 4,
                        "status code must be followed by one SP",
                    ));
                }
                if !s.version.eq_ignore_ascii_case("SIP/2.0") {
                    return Err(Violation::new(
                        ViolationKind::BadVersion,
                        None,
                        self.offset_of(s.version),
                        "unsupported SIP version (only SIP/2.0)",
                    ));
                }
                if !(100..=699).contains(&s.code) {
                    return Err(Violation::new(
                        ViolationKind::StatusOutOfRange,
                        None,
                        self.offset_of(s.line) + s.version.len() + 1,
                        "status code must be 100-699",
                    ));
                }
                Ok(())
            }
        }
    }

    fn check_single_headers(&self) -> Result<(), Violation> {
        earliest(SINGLE.map(|name| match self.headers_named(name).nth(1) {
            Some(second) => Err(Violation::new(
                ViolationKind::DuplicateHeader,
                name.as_str(),
                self.offset_of(second.name),
                "header may appear only once",
            )),
            None => Ok(()),
        }))
    }

    fn check_mandatory(&self, options: Options) -> Result<(), Violation> {
        let request = self.is_request();
        let mut required: &[HeaderName] = &[
            HeaderName::Via,
            HeaderName::To,
            HeaderName::From,
            HeaderName::CallId,
            HeaderName::CSeq,
        ];
        let with_mf = [
            HeaderName::Via,
            HeaderName::To,
            HeaderName::From,
            HeaderName::CallId,
            HeaderName::CSeq,
            HeaderName::MaxForwards,
        ];
        if request && !options.rfc2543_compat {
            required = &with_mf;
        }
        let missing = match required.iter().find(|&&name| self.header(name).is_none()) {
            Some(name) => Err(Violation::new(
                ViolationKind::MissingHeader,
                name.as_str(),
                self.body_offset(),
                "mandatory header is missing",
            )),
            None => Ok(()),
        };
        earliest([
            missing,
            self.check_cseq_method(),
            self.check_invite_contact(options),
            self.check_max_forwards_range(),
        ])
    }

    /// §8.1.1.5: the CSeq method is the request's.
    fn check_cseq_method(&self) -> Result<(), Violation> {
        let Ok(cseq) = self.cseq() else {
            return Ok(()); // a missing or malformed CSeq is reported as such
        };
        let cseq_off = self
            .header(HeaderName::CSeq)
            .map_or(0, |h| self.offset_of(h.value));
        if let Some(method) = self.method()
            && method != cseq.method
        {
            return Err(Violation::new(
                ViolationKind::CSeqMethodMismatch,
                Some("CSeq"),
                cseq_off,
                "CSeq method does not match the request method",
            ));
        }
        Ok(())
    }

    /// §8.1.1.8: an INVITE carries a Contact.
    fn check_invite_contact(&self, options: Options) -> Result<(), Violation> {
        if self.method() == Some(Method::Invite)
            && !options.rfc2543_compat
            && self.header(HeaderName::Contact).is_none()
        {
            return Err(Violation::new(
                ViolationKind::MissingHeader,
                Some("Contact"),
                self.body_offset(),
                "an INVITE must carry a Contact",
            ));
        }
        Ok(())
    }

    /// Max-Forwards 0–255 in a request.
    fn check_max_forwards_range(&self) -> Result<(), Violation> {
        if self.is_request()
            && let Some(h) = self.header(HeaderName::MaxForwards)
            && let Ok(mf) = self.max_forwards()
            && mf > 255
        {
            return Err(Violation::new(
                ViolationKind::InvalidHeader,
                Some("Max-Forwards"),
                self.offset_of(h.value),
                "Max-Forwards must be 0-255",
            ));
        }
        Ok(())
    }

    fn check_header_grammar(&self) -> Result<(), Violation> {
        for h in self.headers() {
            match h.kind {
                HeaderName::Via => self.each(h, Via::parse)?,
                HeaderName::From | HeaderName::To => {
                    self.each(h, NameAddr::parse)?;
                }
                HeaderName::Contact => self.each(h, |v| {
                    let c = Contact::parse(v)?;
                    if let Some(a) = c.addr()
                        && let Some(Some(e)) = a.params.get("expires")
                        && super::headers::simple_parse_delta_seconds(e).is_err()
                    {
                        return Err(ValueError::new(offset_in(v, e), "expires out of range"));
                    }
                    Ok(())
                })?,
                HeaderName::Route | HeaderName::RecordRoute | HeaderName::ReplyTo => {
                    self.each(h, NameAddr::parse)?;
                }
                HeaderName::CallId => {
                    self.call_id()?;
                }
                HeaderName::CSeq => {
                    CSeq::parse(h.value).map_err(|e| self.invalid(h.kind, h.value, e))?;
                }
                HeaderName::Expires | HeaderName::MinExpires | HeaderName::RetryAfter => {
                    self.each(h, |v| {
                        // Retry-After may carry a comment and parameters after the number.
                        let num = if h.kind == HeaderName::RetryAfter {
                            let end = v.find([' ', '\t', '(', ';']).unwrap_or(v.len());
                            &v[..end]
                        } else {
                            v
                        };
                        super::headers::simple_parse_delta_seconds(num).map(drop)
                    })?;
                }
                HeaderName::MaxForwards => {
                    self.max_forwards()?;
                }
                HeaderName::ContentLength => {
                    self.content_length()?;
                }
                HeaderName::ContentType => {
                    self.content_type()?;
                }
                HeaderName::Allow => self.each(h, super::headers::simple_parse_method)?,
                HeaderName::Supported
                | HeaderName::Require
                | HeaderName::ProxyRequire
                | HeaderName::Unsupported => {
                    self.each(h, super::headers::simple_parse_option_tag)?;
                }
                HeaderName::Date => {
                    self.date()?;
                }
                HeaderName::Warning => self.each(h, check_warning)?,
                // Unknown schemes are well-formed (RFC 4475 §3.3.6); only their grammar is checked.
                HeaderName::WwwAuthenticate | HeaderName::ProxyAuthenticate => {
                    self.each(h, |v| {
                        super::digest::check_challenge_syntax(v)
                            .map_err(|e| ValueError::new(e.offset(), e.reason()))
                    })?;
                }
                HeaderName::Authorization | HeaderName::ProxyAuthorization => {
                    self.each(h, |v| {
                        super::digest::check_credentials_syntax(v)
                            .map_err(|e| ValueError::new(e.offset(), e.reason()))
                    })?;
                }
                _ => {
                    if h.kind.is_list() {
                        // Empty list elements (`a,,b`) are never valid.
                        self.each(h, |v| {
                            if v.is_empty() {
                                Err(ValueError::new(0, "empty list element"))
                            } else {
                                Ok(())
                            }
                        })?;
                    }
                }
            }
        }
        Ok(())
    }

    /// RFC 3261 §10.2.2 / §10.3 step 6 / §20.10: `*` stands alone, only in a REGISTER, and
    /// only with `Expires: 0`.
    fn check_contacts(&self) -> Result<(), Violation> {
        let mut star_at = None;
        let mut count = 0usize;
        for (off, v) in self.values(HeaderName::Contact) {
            count += 1;
            if lex::trim_lws(v) == "*" {
                star_at = Some(off);
            }
        }
        let Some(at) = star_at else { return Ok(()) };
        let bad = |reason| {
            Err(Violation::new(
                ViolationKind::BadContact,
                Some("Contact"),
                at,
                reason,
            ))
        };
        if self.method() != Some(Method::Register) {
            return bad("Contact '*' is only allowed in REGISTER");
        }
        if count > 1 {
            return bad("Contact '*' must be the only Contact");
        }
        if self.expires().ok() != Some(0) {
            return bad("Contact '*' needs Expires: 0");
        }
        Ok(())
    }

    /// Run `f` on every element of header line `h`, mapping its error to a violation. Each
    /// header line is visited once, so the check stays linear in the size of the message.
    fn each<T>(
        &self,
        h: &Header<'a>,
        f: impl Fn(&'a str) -> Result<T, ValueError>,
    ) -> Result<(), Violation> {
        let name = h.kind;
        // Accept, Accept-Encoding, Accept-Language, Allow and Supported may be empty
        // (`HCOLON [elem *(COMMA elem)]`, RFC 3261 §20.1–3, §20.5, §20.37).
        if h.value.is_empty() && may_be_empty(name) {
            return Ok(());
        }
        for v in h.elements() {
            let off = self.offset_of(v);
            if v.is_empty() && name.is_list() {
                return Err(Violation::new(
                    ViolationKind::InvalidHeader,
                    name.as_str(),
                    off,
                    "empty list element",
                ));
            }
            f(v).map_err(|e| {
                Violation::new(
                    ViolationKind::InvalidHeader,
                    name.as_str(),
                    off + e.offset,
                    e.reason,
                )
            })?;
        }
        Ok(())
    }

    fn invalid(&self, name: HeaderName, value: &str, e: ValueError) -> Violation {
        Violation::new(
            ViolationKind::InvalidHeader,
            name.as_str(),
            self.offset_of(value) + e.offset,
            e.reason,
        )
    }

    fn check_content_length(&self, options: Options) -> Result<(), Violation> {
        let Some(h) = self.header(HeaderName::ContentLength) else {
            if options.delivery == Delivery::Stream {
                return Err(Violation::new(
                    ViolationKind::MissingContentLength,
                    Some("Content-Length"),
                    self.body_offset(),
                    "Content-Length is mandatory on stream transports",
                ));
            }
            return Ok(());
        };
        let declared = self.content_length()?;
        let available = self.body().len() + self.trailing().len();
        let off = self.offset_of(h.value);
        if declared > available {
            return Err(Violation::new(
                ViolationKind::ContentLengthMismatch,
                Some("Content-Length"),
                off,
                "Content-Length is larger than the body",
            ));
        }
        if options.delivery == Delivery::Stream && declared != available {
            return Err(Violation::new(
                ViolationKind::ContentLengthMismatch,
                Some("Content-Length"),
                off,
                "Content-Length is smaller than the bytes that follow",
            ));
        }
        Ok(())
    }
}

fn may_be_empty(name: HeaderName) -> bool {
    matches!(
        name,
        HeaderName::Accept
            | HeaderName::AcceptEncoding
            | HeaderName::AcceptLanguage
            | HeaderName::Allow
            | HeaderName::Supported
    )
}

/// The fault of `checks` placed first in the message (the first listed among those at
/// the same offset), or `Ok`.
fn earliest<const N: usize>(checks: [Result<(), Violation>; N]) -> Result<(), Violation> {
    match checks
        .into_iter()
        .filter_map(Result::err)
        .min_by_key(|v| v.offset)
    {
        Some(v) => Err(v),
        None => Ok(()),
    }
}

/// Offset in `text` of its first control character other than HTAB, or of a CR not followed
/// by LF, or of an LF not preceded by CR (a line fold inside a value is CRLF then LWS). In a
/// quoted string a quoted-pair may escape any byte but CR and LF (§25.1, as RFC 4475
/// §3.1.1.2 does with BEL, NUL and DEL).
fn control_character(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    // The common case: nothing below SP but HTAB and line folds, no DEL.
    if b.iter()
        .all(|&c| (c >= 0x20 && c != 0x7f) || matches!(c, b'\t' | b'\r' | b'\n'))
        && !b.contains(&b'\r')
    {
        return None;
    }
    let mut quoted = false;
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => quoted = !quoted,
            b'\\' if quoted && b.get(i + 1).is_some_and(|&n| n != b'\r' && n != b'\n') => {
                i += 2;
                continue;
            }
            b'\t' => {}
            b'\r' if b.get(i + 1) != Some(&b'\n') => return Some(i),
            b'\n' if i == 0 || b[i - 1] != b'\r' => return Some(i),
            b'\r' | b'\n' => {}
            c if c < 0x20 || c == 0x7f => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// `warning-value = warn-code SP warn-agent SP warn-text` (RFC 3261 §20.43).
fn check_warning(v: &str) -> Result<(), ValueError> {
    let b = v.as_bytes();
    let code_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if code_len != 3 {
        return Err(ValueError::new(0, "warn-code must be three digits"));
    }
    if b.get(3) != Some(&b' ') {
        return Err(ValueError::new(3, "expected SP after warn-code"));
    }
    let agent_len = b[4..].iter().take_while(|&&c| c != b' ').count();
    if agent_len == 0 || b.get(4 + agent_len) != Some(&b' ') {
        return Err(ValueError::new(4, "expected warn-agent and SP"));
    }
    let text = &b[5 + agent_len..];
    match (text.first() == Some(&b'"'))
        .then(|| lex::quoted_len(text))
        .flatten()
    {
        Some(n) if n == text.len() => Ok(()),
        _ => Err(ValueError::new(
            5 + agent_len,
            "warn-text must be one quoted string",
        )),
    }
}

fn offset_in(whole: &str, part: &str) -> usize {
    (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize)
}

#[cfg(test)]
mod tests;
