//! SIP, SIPS and tel URIs (RFC 3261 §19.1 and §25.1, RFC 3966), parsed without copying.
//!
//! [`Uri::parse`] takes exactly one URI — no surrounding `<>`, no LWS — and returns a view
//! whose parts are slices of the input, as written (escapes are kept; decode them with
//! [`unescape`] when you need the bytes). Every `%` must start a valid `%HH` escape, every byte
//! must belong to the grammar of the component it is in, and nothing may follow the URI; a
//! fault is a [`UriError`] naming its byte offset.
//!
//! ```
//! use latchkey_protocol::sip::uri::{Host, Uri};
//!
//! let uri = Uri::parse("sips:alice@door.example.com:5061;transport=tls?Subject=Ring").unwrap();
//! let sip = uri.as_sip().unwrap();
//! assert!(sip.is_secure());
//! assert_eq!(sip.user(), Some("alice"));
//! assert_eq!(sip.host(), Host::Domain("door.example.com"));
//! assert_eq!(sip.port(), Some(5061));
//! assert_eq!(sip.transport(), Some("tls"));
//! assert_eq!(sip.headers().next(), Some(("Subject", "Ring")));
//! ```
//!
//! Grammar choices worth knowing:
//!
//! * The user part may hold `;` and `?` (RFC 3261 `user-unreserved`), and no other part of a
//!   SIP URI may hold an unescaped `@`, so the first `@` ends the userinfo
//!   (`sip:user;par=u%40example.net@example.com` has the user `user;par=u%40example.net`,
//!   RFC 4475 §3.1.1.9). A `telephone-subscriber` user part is read with the `user` character
//!   set, so its `#` must be written `%23`.
//! * URI parameters are checked against `paramchar` and kept as written. The convenience
//!   accessors ([`SipUri::transport`], [`SipUri::lr`], …) find a parameter by its *decoded*
//!   name, case-insensitively, because `%6C%72` is the parameter `lr` (RFC 3261 §19.1.4,
//!   RFC 4475 §3.1.1.3); values stay as written.
//! * Headers (`?h=v&h2=v2`) are valid URI syntax, but RFC 3261 §19.1.1 forbids them in a
//!   Request-URI: the request-line check must reject them ([`SipUri::has_headers`];
//!   RFC 4475 §3.1.2.11).
//! * Any other scheme is accepted as [`Uri::Other`] when its rest is non-empty `uric` text
//!   (RFC 3261 `absoluteURI`, plus `[` `]` for IPv6 literals), so an unknown scheme is an
//!   application decision, not a parse error (RFC 4475 §3.3.2–§3.3.4).

use alloc::borrow::Cow;
use alloc::string::{FromUtf8Error, String};
use alloc::vec::Vec;
use core::fmt;
use core::iter::FusedIterator;

use super::lex::{Cursor, Params, class_run_len, hex_val};

mod host;
mod tel;
#[cfg(test)]
mod tests;

pub use host::Host;
pub(crate) use host::{host_port_common, ipv4, parse_host_port};
pub use tel::TelUri;

/// A URI as it appears in a Request-URI or an address header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Uri<'a> {
    /// A `sip:` or `sips:` URI.
    Sip(SipUri<'a>),
    /// A `tel:` URI (RFC 3966).
    Tel(TelUri<'a>),
    /// Any other scheme, checked only for RFC 3261 `absoluteURI` characters.
    #[non_exhaustive]
    Other {
        /// The scheme as written (compare case-insensitively).
        scheme: &'a str,
        /// Everything after the `:`, as written.
        rest: &'a str,
        /// The whole URI as written.
        uri: &'a str,
    },
}

impl<'a> Uri<'a> {
    /// Parse exactly one URI (no `<>`, no surrounding white space).
    ///
    /// # Errors
    /// [`UriError`] with the byte offset of the first fault.
    pub fn parse(s: &'a str) -> Result<Uri<'a>, UriError> {
        let mut c = Cursor::new(s);
        let scheme = scheme(&mut c)?;
        if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
            return SipUri::parse_rest(s, c, scheme.len() == 4).map(Uri::Sip);
        }
        if scheme.eq_ignore_ascii_case("tel") {
            return TelUri::parse_rest(s, c).map(Uri::Tel);
        }
        let rest = component(&mut c, is_uric)?;
        if rest.is_empty() || !c.is_empty() {
            return Err(UriError::new(c.pos(), UriErrorKind::Opaque));
        }
        Ok(Uri::Other {
            scheme,
            rest,
            uri: s,
        })
    }

    /// The whole URI as written.
    #[must_use]
    pub fn as_str(&self) -> &'a str {
        match self {
            Uri::Sip(u) => u.raw(),
            Uri::Tel(u) => u.raw(),
            Uri::Other { uri, .. } => uri,
        }
    }

    /// The scheme as written (`sip`, `SIPS`, `tel`, `http`, …).
    #[must_use]
    pub fn scheme(&self) -> &'a str {
        match self {
            Uri::Sip(u) => u.scheme(),
            Uri::Tel(u) => u.raw().get(..3).unwrap_or_default(),
            Uri::Other { scheme, .. } => scheme,
        }
    }

    /// The SIP or SIPS URI, if this is one.
    #[must_use]
    pub fn as_sip(&self) -> Option<&SipUri<'a>> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }

    /// The tel URI, if this is one.
    #[must_use]
    pub fn as_tel(&self) -> Option<&TelUri<'a>> {
        match self {
            Uri::Tel(u) => Some(u),
            _ => None,
        }
    }
}

impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `sip:` / `sips:` URI (RFC 3261 §19.1.1), every part borrowed as written.
///
/// `PartialEq` compares the parts as written; it is not the URI equivalence of §19.1.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SipUri<'a> {
    raw: &'a str,
    secure: bool,
    user: Option<&'a str>,
    password: Option<&'a str>,
    host: Host<'a>,
    host_raw: &'a str,
    port: Option<u16>,
    params: &'a str,
    headers: &'a str,
}

impl<'a> SipUri<'a> {
    /// Parse a `sip:` or `sips:` URI; other schemes are a [`UriErrorKind::Scheme`] error.
    ///
    /// # Errors
    /// [`UriError`] with the byte offset of the first fault.
    pub fn parse(s: &'a str) -> Result<SipUri<'a>, UriError> {
        match Uri::parse(s)? {
            Uri::Sip(u) => Ok(u),
            _ => Err(UriError::new(0, UriErrorKind::Scheme)),
        }
    }

    /// The shape nearly every SIP URI in an address header has, read in one pass over the
    /// bytes: `sip:` or `sips:` (lower case), a user part without escapes and without a
    /// password, `@`, `host[:port]`, and `;name[=value]` parameters without escapes; no
    /// headers, nothing after. `None` for anything else; when it returns a URI, [`Uri::parse`]
    /// returns the same (a property test checks it on generated and mutated URIs).
    #[cfg(test)]
    pub(crate) fn parse_common(s: &'a str) -> Option<SipUri<'a>> {
        match Self::parse_common_at(s, 0) {
            Some((uri, end)) if end == s.len() => Some(uri),
            _ => None,
        }
    }

    /// [`SipUri::parse_common`] on the URI that starts at `at` in `s` and ends at the first
    /// byte its grammar does not take (that byte is no URI character, so it is where a reader
    /// of the enclosing text would have cut the URI: for a name-addr, the `>`). Returns the URI
    /// and where it ends.
    #[inline]
    pub(crate) fn parse_common_at(s: &'a str, at: usize) -> Option<(SipUri<'a>, usize)> {
        let b = s.as_bytes();
        let rest = b.get(at..)?;
        let (secure, user_at) = if rest.starts_with(b"sip:") {
            (false, at + 4)
        } else if rest.starts_with(b"sips:") {
            (true, at + 5)
        } else {
            return None;
        };
        let user_len = class_run_len(b, user_at, &URI_CLASS, USER);
        let host_at = user_at + user_len + 1;
        if user_len == 0 || b.get(host_at - 1) != Some(&b'@') {
            return None;
        }
        let (host, host_raw, port, mut i) = match host::host_port_common(s, host_at) {
            Some(h) => h,
            None => {
                let mut c = Cursor::at(s, host_at);
                let (host, host_raw, port) = host::host_port(&mut c, false).ok()?;
                (host, host_raw, port, c.pos())
            }
        };
        let params_start = i + 1;
        while b.get(i) == Some(&b';') {
            i += 1;
            let n = class_run_len(b, i, &URI_CLASS, PARAM);
            if n == 0 {
                return None;
            }
            i += n;
            if b.get(i) == Some(&b'=') {
                i += 1;
                let n = class_run_len(b, i, &URI_CLASS, PARAM);
                if n == 0 {
                    return None;
                }
                i += n;
            }
        }
        // What stops the URI must be no URI character at all (not an escape, a `?` starting
        // headers, a `:` of a password, …), or the full grammar would read on.
        if b.get(i).is_some_and(|&x| is_uric(x) || x == b'%') {
            return None;
        }
        let uri = SipUri {
            raw: s.get(at..i)?,
            secure,
            user: Some(s.get(user_at..host_at - 1)?),
            password: None,
            host,
            host_raw,
            port,
            params: s.get(params_start..i).unwrap_or_default(),
            headers: "",
        };
        Some((uri, i))
    }

    /// `c` is just after `sip:` / `sips:`.
    fn parse_rest(raw: &'a str, mut c: Cursor<'a>, secure: bool) -> Result<Self, UriError> {
        let (mut user, mut password) = (None, None);
        if let Some(at) = memchr::memchr(b'@', c.rest().as_bytes()).map(|i| c.pos() + i) {
            let start = c.pos();
            let u = component(&mut c, is_user)?;
            if u.is_empty() {
                return Err(UriError::new(start, UriErrorKind::User));
            }
            if c.eat(b':') {
                password = Some(component(&mut c, is_password)?);
                if c.pos() != at {
                    return Err(UriError::new(c.pos(), UriErrorKind::Password));
                }
            } else if c.pos() != at {
                return Err(UriError::new(c.pos(), UriErrorKind::User));
            }
            user = Some(u);
            c.eat(b'@');
        }
        let (host, host_raw, port) =
            host::host_port(&mut c, false).map_err(|(at, kind)| UriError::new(at, kind))?;
        let params_start = c.pos() + 1;
        while c.eat(b';') {
            let at = c.pos();
            if component(&mut c, is_param)?.is_empty()
                || (c.eat(b'=') && component(&mut c, is_param)?.is_empty())
            {
                return Err(UriError::new(at, UriErrorKind::Param));
            }
        }
        let params = raw.get(params_start..c.pos()).unwrap_or_default();
        let headers_start = c.pos() + 1;
        if c.eat(b'?') {
            loop {
                let at = c.pos();
                if component(&mut c, is_hnv)?.is_empty() || !c.eat(b'=') {
                    return Err(UriError::new(at, UriErrorKind::Header));
                }
                component(&mut c, is_hnv)?;
                if !c.eat(b'&') {
                    break;
                }
            }
        }
        let headers = raw.get(headers_start..c.pos()).unwrap_or_default();
        if !c.is_empty() {
            return Err(UriError::new(c.pos(), UriErrorKind::Unexpected));
        }
        Ok(SipUri {
            raw,
            secure,
            user,
            password,
            host,
            host_raw,
            port,
            params,
            headers,
        })
    }

    /// The whole URI as written.
    #[must_use]
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// The scheme as written (`sip`, `SIPS`, …).
    #[must_use]
    pub fn scheme(&self) -> &'a str {
        self.raw
            .get(..if self.secure { 4 } else { 3 })
            .unwrap_or_default()
    }

    /// Whether the scheme is `sips` (TLS on every hop, RFC 3261 §19.1).
    #[must_use]
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The user part as written, escapes kept (`None` when there is no `@`).
    #[must_use]
    pub fn user(&self) -> Option<&'a str> {
        self.user
    }

    /// The password after `user:` as written (may be empty; RFC 3261 §19.1.1 advises against
    /// using it at all).
    #[must_use]
    pub fn password(&self) -> Option<&'a str> {
        self.password
    }

    /// The host: a domain name (case as written), an IPv4 or an IPv6 address.
    #[must_use]
    pub fn host(&self) -> Host<'a> {
        self.host
    }

    /// The host exactly as written, with the brackets of an IPv6 reference.
    #[must_use]
    pub fn host_str(&self) -> &'a str {
        self.host_raw
    }

    /// The explicit port, if any (no default is applied: that is RFC 3263's business).
    #[must_use]
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The `;name[=value]` URI parameters as written.
    #[must_use]
    pub fn params(&self) -> Params<'a> {
        Params::from_raw(self.params)
    }

    /// The first URI parameter whose decoded name equals `name` (ASCII case-insensitive):
    /// `Some(None)` for a flag such as `;lr`, `Some(Some(value))` with the value as written.
    #[must_use]
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        self.params()
            .iter()
            .find(|p| decoded_eq_ignore_case(p.name, name))
            .map(|p| p.value)
    }

    /// The `transport` parameter as written (`udp`, `tcp`, `sctp`, `tls`, `ws`, …).
    #[must_use]
    pub fn transport(&self) -> Option<&'a str> {
        self.param("transport").flatten()
    }

    /// The `user` parameter as written (`phone`, `ip`, …).
    #[must_use]
    pub fn user_param(&self) -> Option<&'a str> {
        self.param("user").flatten()
    }

    /// The `method` parameter as written.
    #[must_use]
    pub fn method(&self) -> Option<&'a str> {
        self.param("method").flatten()
    }

    /// The `maddr` parameter as a host; `None` when absent or not a valid `host`.
    #[must_use]
    pub fn maddr(&self) -> Option<Host<'a>> {
        self.param("maddr")
            .flatten()
            .and_then(|v| Host::parse(v).ok())
    }

    /// The `ttl` parameter (`1*3DIGIT`, 0–255, escapes decoded); `None` when absent or invalid.
    #[must_use]
    pub fn ttl(&self) -> Option<u8> {
        let value = self.param("ttl").flatten()?;
        let mut n: u16 = 0;
        for (i, b) in unescape(value).enumerate() {
            if i >= 3 || !b.is_ascii_digit() {
                return None;
            }
            n = n * 10 + u16::from(b - b'0');
        }
        if value.is_empty() {
            None
        } else {
            u8::try_from(n).ok()
        }
    }

    /// Whether the loose-routing flag `lr` is present (RFC 3261 §19.1.1; a value, as in the
    /// pre-standard `lr=on`, is tolerated).
    #[must_use]
    pub fn lr(&self) -> bool {
        self.param("lr").is_some()
    }

    /// The `?name=value&…` headers, each as written.
    #[must_use]
    pub fn headers(&self) -> UriHeaders<'a> {
        UriHeaders { rest: self.headers }
    }

    /// Whether the URI carries headers, which a Request-URI must not (RFC 3261 §19.1.1).
    #[must_use]
    pub fn has_headers(&self) -> bool {
        !self.headers.is_empty()
    }
}

impl fmt::Display for SipUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw)
    }
}

/// Iterator over the `(name, value)` headers of a SIP URI, both as written (escaped).
#[derive(Debug, Clone, Default)]
pub struct UriHeaders<'a> {
    rest: &'a str,
}

impl<'a> UriHeaders<'a> {
    /// The headers not yet yielded, as written, without the leading `?`.
    #[must_use]
    pub fn as_str(&self) -> &'a str {
        self.rest
    }
}

impl<'a> Iterator for UriHeaders<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        if self.rest.is_empty() {
            return None;
        }
        let (header, rest) = self.rest.split_once('&').unwrap_or((self.rest, ""));
        self.rest = rest;
        Some(header.split_once('=').unwrap_or((header, "")))
    }
}

impl FusedIterator for UriHeaders<'_> {}

/// A URI that does not follow the grammar: where (byte offset from the URI's start) and what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UriError {
    offset: usize,
    kind: UriErrorKind,
}

/// What was wrong with a URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UriErrorKind {
    /// No scheme, a scheme outside `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`, no `:`
    /// after it, or (for [`SipUri::parse`]) a scheme other than `sip` / `sips`.
    Scheme,
    /// A `%` not followed by two hex digits.
    Escape,
    /// An empty user part or a character the user part may not hold.
    User,
    /// A character the password may not hold.
    Password,
    /// A missing host, a malformed host name, IPv4 address or IPv6 reference.
    Host,
    /// A port that is empty, longer than 5 digits or above 65535.
    Port,
    /// An empty or malformed `;name[=value]` parameter (SIP or tel).
    Param,
    /// A header that is empty, has no `=`, or holds a character outside `hname` / `hvalue`.
    Header,
    /// A tel number that is neither a global (`+` digits) nor a local number (RFC 3966 §3).
    TelNumber,
    /// A local tel number without the mandatory `phone-context` (RFC 3966 §5.1.5).
    MissingPhoneContext,
    /// The part after an unknown scheme is empty or holds a character outside `uric`.
    Opaque,
    /// A character where the URI should have ended.
    Unexpected,
}

impl UriError {
    pub(crate) const fn new(offset: usize, kind: UriErrorKind) -> Self {
        UriError { offset, kind }
    }

    /// Byte offset of the fault from the start of the URI.
    #[must_use]
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// What was wrong.
    #[must_use]
    pub fn kind(&self) -> UriErrorKind {
        self.kind
    }

    /// What was wrong, as a short phrase, for errors of an enclosing header or request line
    /// that add their own offset.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        self.kind.as_str()
    }
}

impl UriErrorKind {
    /// What was wrong, as a short phrase (`"invalid escape sequence"`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            UriErrorKind::Scheme => "missing or malformed scheme",
            UriErrorKind::Escape => "invalid escape sequence",
            UriErrorKind::User => "invalid user part",
            UriErrorKind::Password => "invalid password",
            UriErrorKind::Host => "invalid host",
            UriErrorKind::Port => "invalid port",
            UriErrorKind::Param => "invalid URI parameter",
            UriErrorKind::Header => "invalid URI header",
            UriErrorKind::TelNumber => "invalid telephone number",
            UriErrorKind::MissingPhoneContext => "local telephone number without phone-context",
            UriErrorKind::Opaque => "invalid character after the scheme",
            UriErrorKind::Unexpected => "unexpected character",
        }
    }
}

impl fmt::Display for UriErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad URI at byte {}: {}", self.offset, self.kind)
    }
}

impl core::error::Error for UriError {}

/// Decode `%HH` escapes, yielding bytes.
///
/// A parsed URI only holds valid escapes; on other input a `%` that does not start one is
/// passed through as is (never a panic). The bytes may be anything, NUL included
/// (RFC 4475 §3.1.1.4).
pub fn unescape(s: &str) -> Unescape<'_> {
    Unescape { rest: s.as_bytes() }
}

/// Iterator returned by [`unescape`].
#[derive(Debug, Clone)]
pub struct Unescape<'a> {
    rest: &'a [u8],
}

impl Iterator for Unescape<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let (&first, rest) = self.rest.split_first()?;
        if let (b'%', [hi, lo, tail @ ..]) = (first, rest)
            && let (Some(hi), Some(lo)) = (hex_val(*hi), hex_val(*lo))
        {
            self.rest = tail;
            return Some(hi << 4 | lo);
        }
        self.rest = rest;
        Some(first)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.rest.len().div_ceil(3), Some(self.rest.len()))
    }
}

impl FusedIterator for Unescape<'_> {}

/// Decode `%HH` escapes into bytes; borrowed when `s` holds no `%`.
#[must_use]
pub fn unescape_bytes(s: &str) -> Cow<'_, [u8]> {
    if s.contains('%') {
        Cow::Owned(unescape(s).collect())
    } else {
        Cow::Borrowed(s.as_bytes())
    }
}

/// Decode `%HH` escapes into text; borrowed when `s` holds no `%`.
///
/// # Errors
/// When the decoded bytes are not UTF-8; the error still holds them
/// ([`FromUtf8Error::into_bytes`]).
pub fn unescape_to_string(s: &str) -> Result<Cow<'_, str>, FromUtf8Error> {
    if s.contains('%') {
        String::from_utf8(unescape(s).collect::<Vec<u8>>()).map(Cow::Owned)
    } else {
        Ok(Cow::Borrowed(s))
    }
}

/// Whether `written` (escapes allowed) decodes to `name`, ASCII case-insensitively.
fn decoded_eq_ignore_case(written: &str, name: &str) -> bool {
    let mut a = unescape(written);
    let mut b = name.bytes();
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(&y) => {}
            _ => return false,
        }
    }
}

/// `scheme ":"`; returns the scheme.
fn scheme<'a>(c: &mut Cursor<'a>) -> Result<&'a str, UriError> {
    let scheme = c.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme.starts_with(|ch: char| ch.is_ascii_alphabetic()) {
        return Err(UriError::new(0, UriErrorKind::Scheme));
    }
    if !c.eat(b':') {
        return Err(UriError::new(c.pos(), UriErrorKind::Scheme));
    }
    Ok(scheme)
}

/// A run of bytes of `class` or `%HH` escapes (possibly empty); a `%` that does not start an
/// escape is an error at its offset. One pass: escapes are checked where they are met.
#[inline]
pub(crate) fn component<'a>(
    c: &mut Cursor<'a>,
    class: impl Fn(u8) -> bool,
) -> Result<&'a str, UriError> {
    let start = c.pos();
    let rest = c.rest();
    let b = rest.as_bytes();
    let mut i = 0;
    while let Some(&x) = b.get(i) {
        if class(x) {
            i += 1;
        } else if x == b'%' {
            // Every class holds the hex digits, so an escape never ends a run early.
            match b.get(i + 1..i + 3) {
                Some([hi, lo]) if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() => i += 3,
                _ => return Err(UriError::new(start + i, UriErrorKind::Escape)),
            }
        } else {
            break;
        }
    }
    c.advance(i);
    Ok(rest.get(..i).unwrap_or_default())
}

/// Byte classes of the URI components, one bit each, looked up in [`URI_CLASS`].
const USER: u8 = 1;
const PASSWORD: u8 = 2;
const PARAM: u8 = 4;
const HNV: u8 = 8;
const URIC: u8 = 16;

static URI_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        #[allow(clippy::cast_possible_truncation)] // i < 256
        let b = i as u8;
        t[i] = if user_rule(b) { USER } else { 0 }
            | if password_rule(b) { PASSWORD } else { 0 }
            | if param_rule(b) { PARAM } else { 0 }
            | if hnv_rule(b) { HNV } else { 0 }
            | if uric_rule(b) { URIC } else { 0 };
        i += 1;
    }
    t
};

/// `unreserved = alphanum / mark`.
pub(crate) const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        )
}

/// `user = 1*( unreserved / escaped / user-unreserved )`, escapes aside.
const fn user_rule(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/')
}

/// `password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )`, escapes aside.
const fn password_rule(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',')
}

/// `paramchar = param-unreserved / unreserved / escaped`, escapes aside.
const fn param_rule(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$')
}

/// `hnv-unreserved / unreserved`.
const fn hnv_rule(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$')
}

/// `uric = reserved / unreserved / escaped`, escapes aside, plus `[` `]` (RFC 2732).
const fn uric_rule(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b';' | b'/' | b'?' | b':' | b'@' | b'&' | b'=' | b'+' | b'$' | b',' | b'[' | b']'
        )
}

/// [`user_rule`] by table.
#[inline]
fn is_user(b: u8) -> bool {
    URI_CLASS[usize::from(b)] & USER != 0
}

/// [`password_rule`] by table.
#[inline]
fn is_password(b: u8) -> bool {
    URI_CLASS[usize::from(b)] & PASSWORD != 0
}

/// [`param_rule`] by table.
#[inline]
pub(crate) fn is_param(b: u8) -> bool {
    URI_CLASS[usize::from(b)] & PARAM != 0
}

/// [`hnv_rule`] by table.
#[inline]
fn is_hnv(b: u8) -> bool {
    URI_CLASS[usize::from(b)] & HNV != 0
}

/// [`uric_rule`] by table.
#[inline]
fn is_uric(b: u8) -> bool {
    URI_CLASS[usize::from(b)] & URIC != 0
}
