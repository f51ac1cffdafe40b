//! The lexical layer under [`Challenge`](super::Challenge) and
//! [`Credentials`](super::Credentials): parameter values, the `#auth-param` lexer (grammar
//! and leniency rules in `headers.rs`) and the parse error, whose offsets are byte offsets
//! into the header value given to `parse`.

use super::Text;
use crate::sip::lex::{Cursor, hex_val, trim_lws};
use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// At most this many parameters in one header value; more is an error (the registered
/// parameters number fourteen).
const MAX_PARAMS: usize = 64;

/// A parameter value as written: the text between the quotes of a quoted-string (escapes
/// still in place), or a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamValue<'a> {
    raw: &'a str,
    quoted: bool,
}

impl<'a> ParamValue<'a> {
    /// The text as written, without the surrounding quotes; `\` escapes are kept.
    #[must_use]
    pub const fn as_raw(&self) -> &'a str {
        self.raw
    }

    /// Whether the value was a quoted-string.
    #[must_use]
    pub const fn is_quoted(&self) -> bool {
        self.quoted
    }

    /// The value with quoted-pairs resolved (`unq()` of RFC 7616); borrows unless the value
    /// holds an escape.
    #[must_use]
    pub fn unescaped(&self) -> Cow<'a, str> {
        if !self.quoted || !self.raw.contains('\\') {
            return Cow::Borrowed(self.raw);
        }
        let mut s = String::with_capacity(self.raw.len());
        for_each_unescaped(self.raw, |chunk| s.push_str(chunk));
        Cow::Owned(s)
    }

    /// Whether the unescaped value equals `other`, without allocating.
    #[must_use]
    pub fn eq_unescaped(&self, other: &str) -> bool {
        if !self.quoted {
            return self.raw == other;
        }
        let mut rest = other.as_bytes();
        let mut same = true;
        for_each_unescaped(self.raw, |chunk| {
            if same {
                match rest.strip_prefix(chunk.as_bytes()) {
                    Some(r) => rest = r,
                    None => same = false,
                }
            }
        });
        same && rest.is_empty()
    }

    pub(crate) fn text(&self) -> Text<'a> {
        if self.quoted {
            Text::Escaped(self.raw)
        } else {
            Text::Plain(self.raw)
        }
    }
}

impl fmt::Display for ParamValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.quoted {
            let mut result = Ok(());
            for_each_unescaped(self.raw, |chunk| {
                if result.is_ok() {
                    result = f.write_str(chunk);
                }
            });
            result
        } else {
            f.write_str(self.raw)
        }
    }
}

/// Call `f` with the pieces of a quoted-string's inside that remain once each `\` of a
/// quoted-pair is removed.
pub(crate) fn for_each_unescaped<'s>(raw: &'s str, mut f: impl FnMut(&'s str)) {
    let mut rest = raw;
    while let Some(i) = rest.find('\\') {
        let (before, after) = rest.split_at(i);
        if !before.is_empty() {
            f(before);
        }
        let after = after.get(1..).unwrap_or_default();
        let n = after.chars().next().map_or(0, char::len_utf8);
        let (escaped, tail) = after.split_at(n);
        if !escaped.is_empty() {
            f(escaped);
        }
        rest = tail;
    }
    if !rest.is_empty() {
        f(rest);
    }
}

/// One `name=value` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthParam<'a> {
    /// The name as written (compare case-insensitively).
    pub name: &'a str,
    /// The value.
    pub value: ParamValue<'a>,
    /// Byte offset of the name in the header value.
    pub offset: usize,
}

/// Iterator over every parameter of a parsed header value, in order, unknown ones included.
#[derive(Debug, Clone)]
pub struct AuthParams<'a> {
    lexer: Lexer<'a>,
}

impl<'a> AuthParams<'a> {
    /// The parameters of a value `Lexer::after_digest_scheme` has accepted.
    pub(super) fn of(raw: &'a str) -> Self {
        AuthParams {
            lexer: Lexer::resume(raw),
        }
    }
}

impl<'a> Iterator for AuthParams<'a> {
    type Item = AuthParam<'a>;
    fn next(&mut self) -> Option<AuthParam<'a>> {
        // The value was validated when it was parsed, so the lexer cannot fail here.
        self.lexer.next_param().ok().flatten()
    }
}

/// Why a header value is not a usable `Digest` challenge or credentials, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    kind: ParseErrorKind,
    offset: usize,
}

impl ParseError {
    pub(super) fn new(kind: ParseErrorKind, offset: usize) -> Self {
        ParseError { kind, offset }
    }

    pub(super) fn missing(name: &'static str, value: &str) -> Self {
        ParseError::new(ParseErrorKind::MissingParameter { name }, value.len())
    }

    /// What was wrong.
    #[must_use]
    pub const fn kind(&self) -> &ParseErrorKind {
        &self.kind
    }

    /// Byte offset in the header value where it was noticed (the value's length for a
    /// missing parameter).
    #[must_use]
    pub const fn offset(&self) -> usize {
        self.offset
    }

    /// A fixed description of the kind, without the names the `Display` text adds.
    #[must_use]
    pub const fn reason(&self) -> &'static str {
        match self.kind {
            ParseErrorKind::Empty => "empty authentication header value",
            ParseErrorKind::ExpectedScheme => "expected an authentication scheme",
            ParseErrorKind::UnsupportedScheme { .. } => "unsupported authentication scheme",
            ParseErrorKind::ExpectedWhitespace => "expected white space after the scheme",
            ParseErrorKind::ExpectedParameterName => "expected a parameter name",
            ParseErrorKind::ExpectedEquals => "expected `=` after parameter name",
            ParseErrorKind::ExpectedValue => "expected a token or quoted-string value",
            ParseErrorKind::UnterminatedQuotedString => "quoted-string is not closed",
            ParseErrorKind::ExpectedComma => "expected `,` between parameters",
            ParseErrorKind::TooManyParameters => "too many parameters",
            ParseErrorKind::DuplicateParameter { .. } => "parameter given twice",
            ParseErrorKind::MissingParameter { .. } => "required parameter missing",
            ParseErrorKind::InvalidValue { .. } => "malformed parameter value",
            ParseErrorKind::Conflicting { .. } => "parameters exclude each other",
        }
    }
}

/// The kinds of [`ParseError`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The value is empty or white space.
    Empty,
    /// No scheme token at the start.
    ExpectedScheme,
    /// A scheme other than `Digest` (such as `Basic` or `Bearer`), named (at most 64 bytes).
    UnsupportedScheme {
        /// The scheme as written.
        scheme: String,
    },
    /// The scheme is not followed by white space.
    ExpectedWhitespace,
    /// Something other than a parameter name where one should start.
    ExpectedParameterName,
    /// A parameter name not followed by `=`.
    ExpectedEquals,
    /// `=` not followed by a token or quoted-string.
    ExpectedValue,
    /// A quoted-string without its closing quote (offset of the opening quote).
    UnterminatedQuotedString,
    /// Something other than `,` after a parameter (a missing comma or trailing garbage).
    ExpectedComma,
    /// More than 64 parameters.
    TooManyParameters,
    /// A parameter given twice (names compare case-insensitively).
    DuplicateParameter {
        /// The name as written the second time.
        name: String,
    },
    /// A required parameter is absent.
    MissingParameter {
        /// Its name.
        name: &'static str,
    },
    /// A parameter's value is malformed.
    InvalidValue {
        /// Its name.
        name: &'static str,
    },
    /// Two parameters that exclude each other are both present.
    Conflicting {
        /// The first.
        first: &'static str,
        /// The second.
        second: &'static str,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ParseErrorKind::Empty => f.write_str("empty authentication header value")?,
            ParseErrorKind::ExpectedScheme => f.write_str("expected an authentication scheme")?,
            ParseErrorKind::UnsupportedScheme { scheme } => {
                write!(
                    f,
                    "unsupported authentication scheme `{scheme}` (only Digest)"
                )?;
            }
            ParseErrorKind::ExpectedWhitespace => {
                f.write_str("expected white space after the scheme")?;
            }
            ParseErrorKind::ExpectedParameterName => f.write_str("expected a parameter name")?,
            ParseErrorKind::ExpectedEquals => f.write_str("expected `=` after parameter name")?,
            ParseErrorKind::ExpectedValue => {
                f.write_str("expected a token or quoted-string value")?;
            }
            ParseErrorKind::UnterminatedQuotedString => {
                f.write_str("quoted-string is not closed")?;
            }
            ParseErrorKind::ExpectedComma => f.write_str("expected `,` between parameters")?,
            ParseErrorKind::TooManyParameters => {
                write!(f, "more than {MAX_PARAMS} parameters")?;
            }
            ParseErrorKind::DuplicateParameter { name } => {
                write!(f, "parameter `{name}` given twice")?;
            }
            ParseErrorKind::MissingParameter { name } => {
                write!(f, "required parameter `{name}` is missing")?;
            }
            ParseErrorKind::InvalidValue { name } => {
                write!(f, "malformed value of parameter `{name}`")?;
            }
            ParseErrorKind::Conflicting { first, second } => {
                write!(f, "parameters `{first}` and `{second}` exclude each other")?;
            }
        }
        write!(f, " at byte {}", self.offset)
    }
}

impl core::error::Error for ParseError {}

pub(super) const EMPTY: ParamValue<'static> = ParamValue {
    raw: "",
    quoted: false,
};

/// The `#auth-param` lexer, positioned after `Digest` and its white space.
#[derive(Debug, Clone)]
pub(super) struct Lexer<'a> {
    c: Cursor<'a>,
    pub(super) scheme: &'a str,
    first: bool,
}

impl<'a> Lexer<'a> {
    /// Read the scheme, insisting on `Digest`.
    pub(super) fn after_digest_scheme(value: &'a str) -> Result<Lexer<'a>, ParseError> {
        let (c, scheme, at) = Lexer::read_scheme(value)?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            let shown = scheme.get(..64).unwrap_or(scheme);
            return Err(ParseError::new(
                ParseErrorKind::UnsupportedScheme {
                    scheme: String::from(shown),
                },
                at,
            ));
        }
        Lexer::after_scheme_token(c, scheme)
    }

    /// Read any scheme (for the syntax check of other schemes).
    pub(super) fn after_any_scheme(value: &'a str) -> Result<Lexer<'a>, ParseError> {
        let (c, scheme, _) = Lexer::read_scheme(value)?;
        Lexer::after_scheme_token(c, scheme)
    }

    /// The scheme token, the cursor after it, and its offset.
    fn read_scheme(value: &'a str) -> Result<(Cursor<'a>, &'a str, usize), ParseError> {
        let mut c = Cursor::new(value);
        c.skip_lws();
        if trim_lws(value).is_empty() {
            return Err(ParseError::new(ParseErrorKind::Empty, 0));
        }
        let at = c.pos();
        let scheme = c
            .token()
            .ok_or(ParseError::new(ParseErrorKind::ExpectedScheme, at))?;
        Ok((c, scheme, at))
    }

    /// Require white space (or the end) after the scheme.
    fn after_scheme_token(mut c: Cursor<'a>, scheme: &'a str) -> Result<Lexer<'a>, ParseError> {
        if !c.skip_lws() && !c.is_empty() {
            return Err(ParseError::new(ParseErrorKind::ExpectedWhitespace, c.pos()));
        }
        Ok(Lexer {
            c,
            scheme,
            first: true,
        })
    }

    /// A lexer over a value `after_digest_scheme` has accepted before.
    fn resume(value: &'a str) -> Lexer<'a> {
        let mut c = Cursor::new(value);
        c.skip_lws();
        let scheme = c.token().unwrap_or_default();
        c.skip_lws();
        Lexer {
            c,
            scheme,
            first: true,
        }
    }

    /// The next parameter, `None` at the end.
    fn next_param(&mut self) -> Result<Option<AuthParam<'a>>, ParseError> {
        if !self.first {
            self.c.skip_lws();
            if self.c.is_empty() {
                return Ok(None);
            }
            if !self.c.eat(b',') {
                return Err(ParseError::new(ParseErrorKind::ExpectedComma, self.c.pos()));
            }
        }
        self.first = false;
        // Empty list elements (`a=1, ,b=2`) are allowed (RFC 7230 §7).
        loop {
            self.c.skip_lws();
            if !self.c.eat(b',') {
                break;
            }
        }
        if self.c.is_empty() {
            return Ok(None);
        }
        let offset = self.c.pos();
        let name = self.c.token().ok_or(ParseError::new(
            ParseErrorKind::ExpectedParameterName,
            offset,
        ))?;
        if !self.c.eat_sep(b'=') {
            let mut probe = self.c.clone();
            probe.skip_lws();
            return Err(ParseError::new(ParseErrorKind::ExpectedEquals, probe.pos()));
        }
        let at = self.c.pos();
        let value = match self.c.quoted_string() {
            Ok(Some(raw)) => ParamValue { raw, quoted: true },
            Ok(None) => match self.c.token() {
                Some(raw) => ParamValue { raw, quoted: false },
                None => return Err(ParseError::new(ParseErrorKind::ExpectedValue, at)),
            },
            Err(open) => {
                return Err(ParseError::new(
                    ParseErrorKind::UnterminatedQuotedString,
                    open,
                ));
            }
        };
        Ok(Some(AuthParam {
            name,
            value,
            offset,
        }))
    }

    /// Feed every parameter to `f`, rejecting duplicates and more than [`MAX_PARAMS`].
    pub(super) fn for_each_unique(
        &mut self,
        mut f: impl FnMut(AuthParam<'a>) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        let mut seen: [&str; MAX_PARAMS] = [""; MAX_PARAMS];
        let mut n = 0;
        while let Some(p) = self.next_param()? {
            let earlier = seen.get(..n).unwrap_or_default();
            if earlier.iter().any(|s| s.eq_ignore_ascii_case(p.name)) {
                return Err(ParseError::new(
                    ParseErrorKind::DuplicateParameter {
                        name: String::from(p.name),
                    },
                    p.offset,
                ));
            }
            let slot = seen
                .get_mut(n)
                .ok_or(ParseError::new(ParseErrorKind::TooManyParameters, p.offset))?;
            *slot = p.name;
            n += 1;
            f(p)?;
        }
        Ok(())
    }
}

/// `nc-value = 8LHEX` (upper-case hex accepted too).
pub(super) fn parse_nc(s: &str) -> Option<u32> {
    if s.len() != 8 {
        return None;
    }
    s.bytes()
        .try_fold(0u32, |n, b| Some((n << 4) | u32::from(hex_val(b)?)))
}

/// Decode an RFC 5987 `ext-value` (`charset'[language]'pct-encoded`), charset `UTF-8` or
/// `ISO-8859-1`; `None` when malformed.
pub(super) fn decode_ext_value(s: &str) -> Option<String> {
    let (charset, rest) = s.split_once('\'')?;
    let (_language, encoded) = rest.split_once('\'')?;
    let utf8 = charset.eq_ignore_ascii_case("UTF-8");
    if !utf8 && !charset.eq_ignore_ascii_case("ISO-8859-1") {
        return None;
    }
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut it = encoded.bytes();
    while let Some(b) = it.next() {
        match b {
            b'%' => {
                let hi = hex_val(it.next()?)?;
                let lo = hex_val(it.next()?)?;
                bytes.push((hi << 4) | lo);
            }
            b if is_attr_char(b) => bytes.push(b),
            _ => return None,
        }
    }
    if utf8 {
        String::from_utf8(bytes).ok()
    } else {
        Some(bytes.into_iter().map(char::from).collect())
    }
}

/// RFC 5987 `attr-char`.
pub(crate) const fn is_attr_char(b: u8) -> bool {
    matches!(b,
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9'
        | b'!' | b'#' | b'$' | b'&' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~')
}
