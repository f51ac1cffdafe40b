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
    // Fast path: a dotted quad that the host ends after (what the general scan below would
    // also return for it); anything else, including a digit run that continues as a name,
    // goes the general way.
    if let Some((addr, n)) = ipv4_prefix(text.as_bytes())
        && text
            .as_bytes()
            .get(n)
            .is_none_or(|&x| HOST_CLASS[usize::from(x)] == 0)
    {
        c.advance(n);
        return Ok((Host::Ipv4(addr), text.get(..n).unwrap_or_default()));
    }
    let b = text.as_bytes();
    let scan = scan_name(b);
    let name = &text[..scan.len];
    c.advance(scan.len);
    if name.is_empty() {
        return err(start);
    }
    // A top label starts with a letter, so digits and dots alone can only be an IPv4 address.
    if scan.seen & (ALPHA | DASH) == 0 {
        return match ipv4(name) {
            Some(addr) => Ok((Host::Ipv4(addr), name)),
            None => err(start),
        };
    }
    if scan.is_hostname(b) {
        debug_assert_eq!(hostname_fault(name), None);
        return Ok((Host::Domain(name), name));
    }
    match hostname_fault(name) {
        None => Ok((Host::Domain(name), name)),
        Some(at) => err(start + at),
    }
}

/// What one pass over a host name's bytes found (see [`scan_name`]).
struct NameScan {
    /// The length of the run of alphanumerics, `-` and `.`.
    len: usize,
    /// The classes seen.
    seen: u8,
    /// The class of the last byte (a dot's before the first).
    last: u8,
    /// Whether two neighbours break the label rules (a label starting or ending with '-', or
    /// empty).
    bad: u8,
}

impl NameScan {
    /// Whether the name scanned from `b` (which holds letters, so it is no IPv4 address) is a
    /// `hostname` by the quick checks: no bad neighbours, no trailing '-', and a top label
    /// (the last one, or the one before a single trailing dot) that starts with a letter.
    /// When it is not, [`hostname_fault`] finds the exact fault.
    #[inline]
    fn is_hostname(&self, b: &[u8]) -> bool {
        let name = b.get(..self.len).unwrap_or_default();
        let body = name.strip_suffix(b".").unwrap_or(name);
        let top = body.iter().rposition(|&x| x == b'.').map_or(0, |i| i + 1);
        self.bad == 0 && self.last & DASH == 0 && body.get(top).is_some_and(u8::is_ascii_alphabetic)
    }
}

/// One pass over the host name at the start of `b`: it finds the end of the name, whether it
/// is digits and dots only, and whether two neighbours break the label rules; the exact fault
/// is looked for only when something is wrong.
#[inline]
fn scan_name(b: &[u8]) -> NameScan {
    let mut len = 0;
    let mut seen = 0u8;
    // The name starts as if after a dot: it may not start with '.' or '-'.
    let mut prev = HOST_CLASS[usize::from(b'.')];
    let mut bad = 0u8;
    while let Some(&x) = b.get(len) {
        let k = HOST_CLASS[usize::from(x)];
        if k == 0 {
            break;
        }
        bad |= (prev >> 4) & k;
        seen |= k;
        prev = k;
        len += 1;
    }
    NameScan {
        len,
        seen,
        last: prev,
        bad,
    }
}

/// The common shape of `host [ ":" port ]` at `at` in `s`, for the one-pass readers (Via
/// sent-by, SIP URIs in address headers), without a cursor: a dotted quad, or a host name
/// that passes the quick label checks, then optionally `:` and 1–5 digits (at most 65535)
/// right after it. Returns the host, its text, the port and where it ends. `None` for
/// anything else (an IPv6 reference, white space after the host or around the colon, a
/// fault), which the caller reads with [`host_port`]; when it returns a value, [`host_port`]
/// returns the same for a cursor at `at` and stops at the same place, with or without LWS
/// allowed around the colon (a test checks it on generated text).
#[inline]
pub(crate) fn host_port_common<'a>(
    s: &'a str,
    at: usize,
) -> Option<(Host<'a>, &'a str, Option<u16>, usize)> {
    let b = s.as_bytes();
    let text = b.get(at..)?;
    // The same two ways as `host`: a dotted quad the host ends after, else a host name.
    let (host, n) = match ipv4_prefix(text) {
        Some((addr, n)) if text.get(n).is_none_or(|&x| HOST_CLASS[usize::from(x)] == 0) => {
            (Host::Ipv4(addr), n)
        }
        _ => {
            let scan = scan_name(text);
            if scan.len == 0 || scan.seen & (ALPHA | DASH) == 0 || !scan.is_hostname(text) {
                return None;
            }
            (Host::Domain(s.get(at..at + scan.len)?), scan.len)
        }
    };
    let raw = s.get(at..at + n)?;
    let mut end = at + n;
    let mut port = None;
    match b.get(end) {
        Some(b':') => {
            let digits = crate::sip::lex::run_len(b, end + 1, |x| x.is_ascii_digit());
            let p = parse_u64(s.get(end + 1..end + 1 + digits)?, 5)?;
            port = Some(u16::try_from(p).ok()?);
            end += 1 + digits;
        }
        // White space, which a Via allows before the colon, is left to `host_port`.
        Some(b' ' | b'\t' | b'\r' | b'\n') => return None,
        _ => {}
    }
    Some((host, raw, port, end))
}

/// The dotted quad at the start of `b` and its length, read in one pass that stops at the
/// first byte that is neither a digit nor a dot; `None` when those bytes are not exactly an
/// [`ipv4`] address.
#[inline]
fn ipv4_prefix(b: &[u8]) -> Option<(Ipv4Addr, usize)> {
    let mut octets = [0u8; 4];
    let mut part = 0usize;
    let mut value = 0u16;
    let mut digits = 0u8;
    let mut len = 0;
    for &x in b {
        if x == b'.' {
            if digits == 0 || part == 3 {
                return None;
            }
            *octets.get_mut(part)? = u8::try_from(value).ok()?;
            part += 1;
            value = 0;
            digits = 0;
        } else if x.is_ascii_digit() {
            if digits == 3 {
                return None;
            }
            value = value * 10 + u16::from(x - b'0');
            digits += 1;
        } else {
            break;
        }
        len += 1;
    }
    if digits == 0 || part != 3 {
        return None;
    }
    octets[3] = u8::try_from(value).ok()?;
    Some((Ipv4Addr::from(octets), len))
}

/// `IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT`, each at most 255
/// (leading zeros are decimal, as the grammar allows them).
pub(crate) fn ipv4(s: &str) -> Option<Ipv4Addr> {
    // Octet by octet, 1 to 3 digits each (this runs for every Via `received`).
    let b = s.as_bytes();
    let digit = |i: usize| b.get(i).map(|x| x.wrapping_sub(b'0')).filter(|&d| d <= 9);
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (k, octet) in octets.iter_mut().enumerate() {
        if k > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let mut value = u16::from(digit(i)?);
        i += 1;
        if let Some(d) = digit(i) {
            value = value * 10 + u16::from(d);
            i += 1;
            if let Some(d) = digit(i) {
                value = value * 10 + u16::from(d);
                i += 1;
            }
        }
        *octet = u8::try_from(value).ok()?;
    }
    (i == b.len()).then_some(Ipv4Addr::from(octets))
}

/// Byte classes of a host name, one bit each in the low four bits of [`HOST_CLASS`]; the high
/// four bits of a class's entry hold the classes that may not follow it in a host name (after
/// a dot: a dot or a dash, which would make an empty label or one starting with '-'; after a
/// dash: a dot, which would end a label with '-').
const DIGIT: u8 = 1;
const ALPHA: u8 = 2;
const DASH: u8 = 4;
const DOT: u8 = 8;

static HOST_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        #[allow(clippy::cast_possible_truncation)] // i < 256
        let b = i as u8;
        t[i] = if b.is_ascii_digit() {
            DIGIT
        } else if b.is_ascii_alphabetic() {
            ALPHA
        } else if b == b'-' {
            DASH | (DOT << 4)
        } else if b == b'.' {
            DOT | ((DOT | DASH) << 4)
        } else {
            0
        };
        i += 1;
    }
    t
};

/// Check `hostname = *( domainlabel "." ) toplabel [ "." ]` on a run of alphanumerics, `-`
/// and `.`: labels are non-empty, start and end with an alphanumeric, and the top label
/// starts with a letter. Returns the offset of the first bad label.
pub(super) fn hostname_fault(name: &str) -> Option<usize> {
    let b = name.as_bytes();
    let body = b.strip_suffix(b".").unwrap_or(b);
    // One pass: each label starts and ends with an alphanumeric (only the bytes next to a
    // dot and the two ends need a look); remember where the last (top) label starts.
    let mut label = 0;
    for (i, &x) in body.iter().enumerate() {
        if x == b'.' {
            if !label_ok(&body[label..i]) {
                return Some(label);
            }
            label = i + 1;
        }
    }
    let top = &body[label..];
    if label_ok(top) && top.first().is_some_and(u8::is_ascii_alphabetic) {
        None
    } else {
        Some(label)
    }
}

/// A non-empty label that starts and ends with an alphanumeric.
#[inline]
fn label_ok(label: &[u8]) -> bool {
    matches!((label.first(), label.last()), (Some(f), Some(l))
        if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric())
}

/// Whether `s` is exactly a `hostname` (RFC 3261 §25.1; also RFC 3966's `domainname`).
pub(super) fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && hostname_fault(s).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `host_port_common`, when it returns a value, agrees with `host_port` (with and without
    /// LWS around the colon) on the host, its text, the port and where it stops.
    fn agrees(s: &str, at: usize) {
        let Some((host, raw, port, end)) = host_port_common(s, at) else {
            return;
        };
        for lws in [false, true] {
            let mut c = Cursor::at(s, at);
            assert_eq!(
                host_port(&mut c, lws),
                Ok((host, raw, port)),
                "{s:?} at {at} (lws {lws})"
            );
            assert_eq!(c.pos(), end, "{s:?} at {at} (lws {lws})");
        }
    }

    #[test]
    fn the_common_host_port_reader_agrees_with_the_general_one() {
        for s in [
            "192.0.2.4",
            "192.0.2.4:5060;x",
            "192.0.2.4 :5060",
            "192.0.2.4: 5060",
            "192.0.2.4:65536",
            "192.0.2.4:",
            "192.0.2.4a.example",
            "1.2.3.4.5",
            "256.1.1.1",
            "gw.example.com:5061>",
            "gw.example.com.",
            "gw..example.com",
            "-gw.example.com",
            "gw-.example.com",
            "gw.example.com-",
            "gw.example.1com",
            "[2001:db8::1]:5060",
            "a:123456",
            "a:0",
            "",
        ] {
            agrees(s, 0);
            agrees(&alloc::format!("x;{s}"), 2);
        }
    }

    proptest::proptest! {
        #[test]
        fn the_common_host_port_reader_agrees_on_generated_text(
            s in "[0-9a-c.:\\-\\[\\] ;>\t]{0,24}",
        ) {
            agrees(&s, 0);
        }
    }
}
