//! `host` and `hostport` (RFC 3261 §25.1), shared by SIP URIs and the Via `sent-by`.

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};

use super::{UriError, UriErrorKind};
use crate::sip::lex::{Cursor, parse_u64};

/// The host of a SIP URI or a Via `sent-by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Host<'a> {
    /// A host name as written (compare case-insensitively), possibly with a trailing `.`.
    Domain(&'a str),
    /// A dotted-quad IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address, written in brackets (`[2001:db8::1]`) in a URI.
    Ipv6(Ipv6Addr),
}

impl<'a> Host<'a> {
    /// Parse exactly one `host`: `hostname / IPv4address / IPv6reference` (the IPv6 form
    /// needs its brackets).
    ///
    /// # Errors
    /// [`UriErrorKind::Host`] or [`UriErrorKind::Unexpected`] with the offset in `s`.
    pub fn parse(s: &'a str) -> Result<Host<'a>, UriError> {
        let mut c = Cursor::new(s);
        let (host, _) = host(&mut c).map_err(|(at, kind)| UriError::new(at, kind))?;
        if !c.is_empty() {
            return Err(UriError::new(c.pos(), UriErrorKind::Unexpected));
        }
        Ok(host)
    }

    /// Whether this is an IPv4 or IPv6 address rather than a name.
    #[must_use]
    pub fn is_ip(&self) -> bool {
        !matches!(self, Host::Domain(_))
    }
}

impl fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ipv4(a) => write!(f, "{a}"),
            Host::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

/// `hostport` as in a Via `sent-by`: `host [ COLON port ]`, where `COLON` may have LWS on
/// either side (RFC 3261 §25.1). On success the cursor is just after the host or the port;
/// on failure the error is the offset (in the cursor's text) of the fault.
pub(crate) fn parse_host_port<'a>(c: &mut Cursor<'a>) -> Result<(Host<'a>, Option<u16>), usize> {
    host_port(c, true)
        .map(|(host, _, port)| (host, port))
        .map_err(|(at, _)| at)
}

/// `host [ ":" port ]`, with LWS allowed around the `:` when `lws` is set. Returns the host,
/// its text as written and the port.
pub(super) fn host_port<'a>(
    c: &mut Cursor<'a>,
    lws: bool,
) -> Result<(Host<'a>, &'a str, Option<u16>), (usize, UriErrorKind)> {
    let (host, raw) = host(c)?;
    let colon = if lws { c.eat_sep(b':') } else { c.eat(b':') };
    if !colon {
        return Ok((host, raw, None));
    }
    let at = c.pos();
    let digits = c.take_while(|b| b.is_ascii_digit());
    match parse_u64(digits, 5).and_then(|n| u16::try_from(n).ok()) {
        Some(port) => Ok((host, raw, Some(port))),
        None => Err((at, UriErrorKind::Port)),
    }
}

/// `hostname / IPv4address / IPv6reference` at the cursor; returns the host and its text.
fn host<'a>(c: &mut Cursor<'a>) -> Result<(Host<'a>, &'a str), (usize, UriErrorKind)> {
    let start = c.pos();
    let text = c.rest();
    let err = |at| Err((at, UriErrorKind::Host));
    if c.eat(b'[') {
        let inner = c.take_while(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if !c.eat(b']') {
            return err(c.pos());
        }
        let Ok(addr) = inner.parse::<Ipv6Addr>() else {
            return err(start + 1);
        };
        return Ok((
            Host::Ipv6(addr),
            text.get(..inner.len() + 2).unwrap_or_default(),
        ));
    }
    // One pass finds the end of the name and whether it is digits and dots only.
    let mut len = 0;
    let mut digits_only = true;
    for &b in text.as_bytes() {
        if b.is_ascii_digit() || b == b'.' {
        } else if b.is_ascii_alphabetic() || b == b'-' {
            digits_only = false;
        } else {
            break;
        }
        len += 1;
    }
    let name = &text[..len];
    c.advance(len);
    if name.is_empty() {
        return err(start);
    }
    // A top label starts with a letter, so digits and dots alone can only be an IPv4 address.
    if digits_only {
        return match ipv4(name) {
            Some(addr) => Ok((Host::Ipv4(addr), name)),
            None => err(start),
        };
    }
    match hostname_fault(name) {
        None => Ok((Host::Domain(name), name)),
        Some(at) => err(start + at),
    }
}

/// `IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT`, each at most 255
/// (leading zeros are decimal, as the grammar allows them).
fn ipv4(s: &str) -> Option<Ipv4Addr> {
    // One pass over the bytes (this runs for every Via and URI host).
    let mut octets = [0u8; 4];
    let mut part = 0usize;
    let mut value = 0u16;
    let mut digits = 0u8;
    for &b in s.as_bytes() {
        if b == b'.' {
            if digits == 0 || part == 3 {
                return None;
            }
            octets[part] = u8::try_from(value).ok()?;
            part += 1;
            value = 0;
            digits = 0;
        } else if b.is_ascii_digit() && digits < 3 {
            value = value * 10 + u16::from(b - b'0');
            digits += 1;
        } else {
            return None;
        }
    }
    if digits == 0 || part != 3 {
        return None;
    }
    octets[3] = u8::try_from(value).ok()?;
    Some(Ipv4Addr::from(octets))
}

/// Check `hostname = *( domainlabel "." ) toplabel [ "." ]` on a run of alphanumerics, `-`
/// and `.`: labels are non-empty, start and end with an alphanumeric, and the top label
/// starts with a letter. Returns the offset of the first bad label.
fn hostname_fault(name: &str) -> Option<usize> {
    let b = name.as_bytes();
    let body = b.strip_suffix(b".").unwrap_or(b);
    // One pass: each label starts and ends with an alphanumeric; remember where the last
    // (top) label starts.
    let mut label = 0;
    for i in 0..=body.len() {
        if i < body.len() && body[i] != b'.' {
            continue;
        }
        let edges_ok =
            i > label && body[label].is_ascii_alphanumeric() && body[i - 1].is_ascii_alphanumeric();
        if !edges_ok {
            return Some(label);
        }
        if i < body.len() {
            label = i + 1;
        }
    }
    if body.get(label).is_some_and(u8::is_ascii_alphabetic) {
        None
    } else {
        Some(label)
    }
}

/// Whether `s` is exactly a `hostname` (RFC 3261 §25.1; also RFC 3966's `domainname`).
pub(super) fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && hostname_fault(s).is_none()
}
