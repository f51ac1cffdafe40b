//! The `tel` URI (RFC 3966 §3).

use core::fmt;

use super::host::is_hostname;
use super::{Uri, UriError, UriErrorKind, component, is_param, unescape};
use crate::sip::lex::{Cursor, Params};

/// A `tel:` URI (RFC 3966): a global (`+` E.164) or local number and its parameters.
///
/// Parsing follows RFC 3966 §3: global numbers are `+` digits with the visual separators
/// `-` `.` `(` `)`; local numbers are hex digits, `*`, `#` and separators, and MUST carry
/// `phone-context` (§5.1.5) — a local number without it is an error. Because RFC 3986 does not
/// allow a bare `#` in a URI, `%23` is accepted for it too. `ext` must be digits and
/// separators, `phone-context` a domain name or a global number; other parameters (`isub`
/// included) are `pname [ "=" 1*paramchar ]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TelUri<'a> {
    raw: &'a str,
    number: &'a str,
    params: &'a str,
}

impl<'a> TelUri<'a> {
    /// Parse a `tel:` URI; other schemes are a [`UriErrorKind::Scheme`] error.
    ///
    /// # Errors
    /// [`UriError`] with the byte offset of the first fault.
    pub fn parse(s: &'a str) -> Result<TelUri<'a>, UriError> {
        match Uri::parse(s)? {
            Uri::Tel(u) => Ok(u),
            _ => Err(UriError::new(0, UriErrorKind::Scheme)),
        }
    }

    /// `c` is just after `tel:`.
    pub(super) fn parse_rest(raw: &'a str, mut c: Cursor<'a>) -> Result<Self, UriError> {
        let start = c.pos();
        let number = if c.peek() == Some(b'+') {
            let n = c.take_while(|b| b == b'+' || b.is_ascii_digit() || is_separator(b));
            let digits = n.get(1..).unwrap_or_default();
            (!digits.contains('+') && digits.bytes().any(|b| b.is_ascii_digit())).then_some(n)
        } else {
            let n = component(&mut c, |b| {
                b.is_ascii_hexdigit() || matches!(b, b'*' | b'#') || is_separator(b)
            })?;
            let escapes_ok = n
                .match_indices('%')
                .all(|(i, _)| n.get(i..i + 3) == Some("%23"));
            (escapes_ok
                && n.bytes()
                    .any(|b| b.is_ascii_hexdigit() || matches!(b, b'*' | b'#')))
            .then_some(n)
        };
        let Some(number) = number else {
            return Err(UriError::new(start, UriErrorKind::TelNumber));
        };
        if !c.is_empty() && c.peek() != Some(b';') {
            return Err(UriError::new(c.pos(), UriErrorKind::TelNumber));
        }
        let params_start = c.pos() + 1;
        let mut context = false;
        while c.eat(b';') {
            let at = c.pos();
            let name = c.take_while(|b| b.is_ascii_alphanumeric() || b == b'-');
            let value = if c.eat(b'=') {
                Some(component(&mut c, is_param)?)
            } else {
                None
            };
            let ok = match (name, value) {
                ("", _) | (_, Some("")) => false,
                (n, v) if n.eq_ignore_ascii_case("phone-context") => {
                    context = true;
                    v.is_some_and(|v| is_global_number(v) || is_hostname(v))
                }
                (n, v) if n.eq_ignore_ascii_case("ext") => v.is_some_and(|v| {
                    v.bytes().all(|b| b.is_ascii_digit() || is_separator(b))
                        && v.bytes().any(|b| b.is_ascii_digit())
                }),
                _ => true,
            };
            if !ok {
                return Err(UriError::new(at, UriErrorKind::Param));
            }
        }
        if !c.is_empty() {
            return Err(UriError::new(c.pos(), UriErrorKind::Unexpected));
        }
        if !number.starts_with('+') && !context {
            return Err(UriError::new(start, UriErrorKind::MissingPhoneContext));
        }
        let params = raw.get(params_start..c.pos()).unwrap_or_default();
        Ok(TelUri {
            raw,
            number,
            params,
        })
    }

    /// The whole URI as written.
    #[must_use]
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// The number as written: `+1-201-555-0123` (global) or `7042` (local).
    #[must_use]
    pub fn number(&self) -> &'a str {
        self.number
    }

    /// Whether the number is global (starts with `+`).
    #[must_use]
    pub fn is_global(&self) -> bool {
        self.number.starts_with('+')
    }

    /// The number without visual separators and with `%23` decoded (`+12015550123`), the
    /// form RFC 3966 §4 compares.
    pub fn digits(&self) -> impl Iterator<Item = u8> + 'a {
        unescape(self.number).filter(|&b| !is_separator(b))
    }

    /// The `;name[=value]` parameters as written.
    #[must_use]
    pub fn params(&self) -> Params<'a> {
        Params::from_raw(self.params)
    }

    /// The `phone-context` parameter as written (always present for a local number).
    #[must_use]
    pub fn phone_context(&self) -> Option<&'a str> {
        self.params().get("phone-context").flatten()
    }
}

impl fmt::Display for TelUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw)
    }
}

/// `visual-separator = "-" / "." / "(" / ")"`.
const fn is_separator(b: u8) -> bool {
    matches!(b, b'-' | b'.' | b'(' | b')')
}

/// `global-number-digits = "+" *phonedigit DIGIT *phonedigit`.
fn is_global_number(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|d| {
        d.bytes().all(|b| b.is_ascii_digit() || is_separator(b))
            && d.bytes().any(|b| b.is_ascii_digit())
    })
}
