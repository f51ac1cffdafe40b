//! From, To, Contact, Route and Record-Route values (RFC 3261 §20.10, §20.20, §20.39).

use super::ValueError;
use crate::sip::lex::{self, Cursor, Param, Params};
use crate::sip::uri::{SipUri, Uri};

/// A display name as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisplayName<'a> {
    /// A `quoted-string`; the text between the quotes, backslash escapes left as written.
    Quoted(&'a str),
    /// A run of tokens separated by LWS, as written.
    Tokens(&'a str),
}

impl<'a> DisplayName<'a> {
    /// The raw text (without quotes).
    #[must_use]
    pub fn as_str(&self) -> &'a str {
        match self {
            DisplayName::Quoted(s) | DisplayName::Tokens(s) => s,
        }
    }

    /// The text with quoted-pair escapes removed (`\"` → `"`), written into `out`.
    pub fn write_unescaped(&self, out: &mut alloc::string::String) {
        let s = self.as_str();
        match self {
            DisplayName::Tokens(_) => out.push_str(s),
            DisplayName::Quoted(_) => {
                let mut chars = s.chars();
                while let Some(ch) = chars.next() {
                    if ch == '\\' {
                        if let Some(next) = chars.next() {
                            out.push(next);
                        }
                    } else {
                        out.push(ch);
                    }
                }
            }
        }
    }
}

/// `[display-name] <addr-spec> *(;param)` or `addr-spec *(;param)`.
///
/// Without angle brackets, parameters after the URI belong to the header, not to the URI
/// (RFC 3261 §20.10), and the URI cannot contain `,`, `;` or `?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The display name, if any.
    pub display_name: Option<DisplayName<'a>>,
    /// The URI.
    pub uri: Uri<'a>,
    /// Whether the URI was enclosed in angle brackets.
    pub bracketed: bool,
    /// Header parameters (`tag`, `expires`, `q`, extensions).
    pub params: Params<'a>,
    /// The first `tag`, remembered in the one pass over the parameters.
    tag: Option<&'a str>,
}

impl<'a> NameAddr<'a> {
    /// Parse one value.
    pub fn parse(value: &'a str) -> Result<NameAddr<'a>, ValueError> {
        match Self::parse_common(value) {
            Some(a) => Ok(a),
            None => Self::parse_full(value),
        }
    }

    /// The shape nearly every From, To and Contact value has, read in one pass over the bytes:
    /// an optional display name (a quoted string without escapes, or tokens separated by
    /// spaces) and spaces, then `<sip-uri>` in the common shape of
    /// [`SipUri::parse_common_at`], then `;name[=value]` parameters with no white space, quotes
    /// or anything after them. `None` for anything else (the full grammar then decides, errors
    /// included); when it returns a value, [`NameAddr::parse_full`] returns the same (a
    /// property test checks it on generated and mutated values).
    #[inline]
    pub(super) fn parse_common(value: &'a str) -> Option<NameAddr<'a>> {
        let b = value.as_bytes();
        let (display_name, lt) = match *b.first()? {
            b'<' => (None, 0),
            b'"' => {
                let close = 1 + lex::run_len(b, 1, |x| x != b'"' && x != b'\\');
                if b.get(close) != Some(&b'"') {
                    return None;
                }
                let lt = close + 1 + lex::run_len(b, close + 1, |x| x == b' ');
                if b.get(lt) != Some(&b'<') {
                    return None;
                }
                (Some(DisplayName::Quoted(value.get(1..close)?)), lt)
            }
            x if lex::is_token_char(x) => {
                // Tokens separated by spaces; `end` is just after the last token byte.
                let (mut i, mut end) = (0, 0);
                loop {
                    match *b.get(i)? {
                        x if lex::is_token_char(x) => {
                            i += 1;
                            end = i;
                        }
                        b' ' => i += 1,
                        b'<' => break,
                        _ => return None,
                    }
                }
                (Some(DisplayName::Tokens(value.get(..end)?)), i)
            }
            _ => return None,
        };
        // The URI is read in place; the byte that ends it must be the '>' (then it is the
        // first '>' or white space after '<', where the full grammar cuts the URI too).
        let (uri, gt) = SipUri::parse_common_at(value, lt + 1)?;
        if b.get(gt) != Some(&b'>') {
            return None;
        }
        let mut tag = None;
        let params = lex::scan_params_common(value, gt + 1, |p, _| {
            note_tag(&mut tag, p);
            true
        })?;
        Some(NameAddr {
            display_name,
            uri: Uri::Sip(uri),
            bracketed: true,
            params,
            tag,
        })
    }

    /// The full RFC 3261 grammar (LWS, escapes, addr-spec without brackets, errors).
    #[inline(never)] // kept out of the one-pass reader that runs first
    pub(super) fn parse_full(value: &'a str) -> Result<NameAddr<'a>, ValueError> {
        let mut c = Cursor::new(value);
        c.skip_lws();
        let (display_name, uri_str, uri_off, bracketed) = if let Some(lt) = find_laquot(c.rest())? {
            let display = if lt == 0 {
                None
            } else {
                parse_display_name(&c.rest()[..lt], c.pos())?
            };
            let inner_start = c.pos() + lt + 1;
            let inner = value.as_bytes().get(inner_start..).unwrap_or_default();
            // One pass finds the '>' and any white space before it.
            let stop = inner
                .iter()
                .position(|&b| matches!(b, b'>' | b' ' | b'\t' | b'\r' | b'\n'));
            let gt = match stop {
                Some(i) if inner.get(i) == Some(&b'>') => i,
                Some(ws) if inner[ws..].contains(&b'>') => {
                    // RFC 3261 §25.1: LAQUOT and RAQUOT take LWS outside the brackets only
                    // (RFC 4475 §3.1.2.14).
                    return Err(ValueError::new(inner_start + ws, "white space inside '<>'"));
                }
                _ => {
                    return Err(ValueError::new(inner_start - 1, "'<' without matching '>'"));
                }
            };
            let uri = &value[inner_start..inner_start + gt];
            c = Cursor::at(value, inner_start + gt + 1);
            (display, uri, inner_start, true)
        } else {
            let start = c.pos();
            let uri =
                c.take_while(|b| !matches!(b, b';' | b',' | b'?' | b' ' | b'\t' | b'\r' | b'\n'));
            (None, uri, start, false)
        };
        if uri_str.is_empty() {
            return Err(ValueError::new(uri_off, "empty URI"));
        }
        let uri =
            Uri::parse(uri_str).map_err(|e| ValueError::new(uri_off + e.offset(), e.reason()))?;
        let mut tag = None;
        let params = if c.eat_sep(b';') {
            lex::scan_params_visit(&mut c, |p, _| {
                note_tag(&mut tag, p);
                Ok(())
            })
            .map_err(|(at, _)| ValueError::new(at, "invalid header parameter"))?
        } else {
            Params::default()
        };
        c.skip_lws();
        if !c.is_empty() {
            return Err(ValueError::new(
                c.pos(),
                "unexpected characters after address",
            ));
        }
        Ok(NameAddr {
            display_name,
            uri,
            bracketed,
            params,
            tag,
        })
    }

    /// The `tag` parameter.
    #[must_use]
    pub fn tag(&self) -> Option<&'a str> {
        self.tag
    }

    /// The `expires` parameter (Contact), in seconds.
    #[must_use]
    pub fn expires(&self) -> Option<u32> {
        self.params
            .get("expires")
            .flatten()
            .and_then(|v| super::simple::parse_delta_seconds(v).ok())
    }

    /// The `q` parameter (Contact), as written.
    #[must_use]
    pub fn q(&self) -> Option<&'a str> {
        self.params.get("q").flatten()
    }
}

/// A Contact value: an address, or `*` (only valid in a REGISTER removing all bindings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Contact<'a> {
    /// `*`
    Wildcard,
    /// An address.
    Addr(NameAddr<'a>),
}

impl<'a> Contact<'a> {
    /// Parse one Contact value.
    pub fn parse(value: &'a str) -> Result<Contact<'a>, ValueError> {
        if lex::trim_lws(value) == "*" {
            Ok(Contact::Wildcard)
        } else {
            NameAddr::parse(value).map(Contact::Addr)
        }
    }

    /// The address, unless this is `*`.
    #[must_use]
    pub fn addr(&self) -> Option<&NameAddr<'a>> {
        match self {
            Contact::Wildcard => None,
            Contact::Addr(a) => Some(a),
        }
    }
}

/// Remember the value of the first `tag` parameter (a flag `;tag` counts as absent).
#[inline]
fn note_tag<'a>(tag: &mut Option<&'a str>, p: Param<'a>) {
    const TAG: u64 = lex::short_key(b"tag");
    if tag.is_none() && p.name.len() == 3 && lex::short_key(p.name.as_bytes()) == TAG {
        *tag = p.value;
    }
}

/// Offset of the `<` that opens a name-addr's URI, skipping a leading quoted display name.
fn find_laquot(s: &str) -> Result<Option<usize>, ValueError> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => match lex::quoted_len(&b[i..]) {
                Some(n) => i += n,
                None => return Err(ValueError::new(i, "unterminated quoted display name")),
            },
            b'<' => return Ok(Some(i)),
            b';' | b',' => return Ok(None),
            _ => i += 1,
        }
    }
    Ok(None)
}

/// Parse the text before `<` as a display name (`base` is its offset in the value).
fn parse_display_name(s: &str, base: usize) -> Result<Option<DisplayName<'_>>, ValueError> {
    let t = lex::trim_lws(s);
    if t.is_empty() {
        return Ok(None);
    }
    let lead = s
        .bytes()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .count();
    if t.starts_with('"') {
        let len = lex::quoted_len(t.as_bytes()).ok_or(ValueError::new(
            base + lead,
            "unterminated quoted display name",
        ))?;
        if len != t.len() {
            return Err(ValueError::new(
                base + lead + len,
                "text after quoted display name",
            ));
        }
        return Ok(Some(DisplayName::Quoted(&t[1..len - 1])));
    }
    // *(token LWS)
    let mut c = Cursor::new(t);
    while !c.is_empty() {
        if c.token().is_none() {
            return Err(ValueError::new(
                base + lead + c.pos(),
                "display name is not a token list",
            ));
        }
        c.skip_lws();
    }
    Ok(Some(DisplayName::Tokens(t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_display_name_uri_and_tag() {
        let a =
            NameAddr::parse("\"Bob \\\"B\\\" Smith\" <sip:bob@example.com;transport=tls>;tag=a48s")
                .unwrap();
        assert_eq!(
            a.display_name,
            Some(DisplayName::Quoted("Bob \\\"B\\\" Smith"))
        );
        let mut s = alloc::string::String::new();
        a.display_name.unwrap().write_unescaped(&mut s);
        assert_eq!(s, "Bob \"B\" Smith");
        assert_eq!(a.uri.as_str(), "sip:bob@example.com;transport=tls");
        assert_eq!(a.tag(), Some("a48s"));
        assert!(a.bracketed);
    }

    #[test]
    fn token_display_name_with_lws() {
        let a = NameAddr::parse("Bob  Smith\r\n <sip:bob@example.com>").unwrap();
        assert_eq!(a.display_name, Some(DisplayName::Tokens("Bob  Smith")));
    }

    #[test]
    fn addr_spec_without_brackets_leaves_params_to_the_header() {
        let a = NameAddr::parse("sip:alice@atlanta.com;tag=1928301774").unwrap();
        assert_eq!(a.uri.as_str(), "sip:alice@atlanta.com");
        assert_eq!(a.tag(), Some("1928301774"));
        assert!(!a.bracketed);
    }

    #[test]
    fn contact_wildcard_and_expires() {
        assert_eq!(Contact::parse(" * ").unwrap(), Contact::Wildcard);
        let c = Contact::parse("<sip:b@192.0.2.4>;expires=600;q=0.7").unwrap();
        assert_eq!(c.addr().unwrap().expires(), Some(600));
        assert_eq!(c.addr().unwrap().q(), Some("0.7"));
    }

    #[test]
    fn a_missing_gt_is_reported_before_white_space_inside_the_brackets() {
        // One scan finds both; the missing '>' wins, as it did with two scans.
        let e = NameAddr::parse("<sip:a @b").unwrap_err();
        assert_eq!((e.offset, e.reason), (0, "'<' without matching '>'"));
        let e = NameAddr::parse("x <sip:a@b").unwrap_err();
        assert_eq!((e.offset, e.reason), (2, "'<' without matching '>'"));
        // RFC 4475 §3.1.2.14: LWS inside the brackets, at its offset.
        let e = NameAddr::parse("<sip:a @b>").unwrap_err();
        assert_eq!((e.offset, e.reason), (6, "white space inside '<>'"));
        let e = NameAddr::parse("Bob <sip:a@b\t>").unwrap_err();
        assert_eq!((e.offset, e.reason), (12, "white space inside '<>'"));
        assert_eq!(
            NameAddr::parse("<sip:a@b>;tag=1 , x").unwrap_err().offset,
            16,
            "a value is one element, not a list"
        );
    }

    #[test]
    fn malformed_addresses_are_errors_with_offsets() {
        assert_eq!(NameAddr::parse("<sip:a@b").unwrap_err().offset, 0);
        assert!(NameAddr::parse("\"unterminated <sip:a@b>").is_err());
        assert!(NameAddr::parse("<sip:a@b> junk").is_err());
        assert!(NameAddr::parse("").is_err());
        assert!(NameAddr::parse("Bad\"Name <sip:a@b>").is_err());
    }
}
