//! Zero-copy views of `WWW-Authenticate` / `Proxy-Authenticate` values ([`Challenge`]) and
//! `Authorization` / `Proxy-Authorization` values ([`Credentials`]).
//!
//! Grammar (RFC 7616 §3.3–3.4, RFC 7235 §2.1, RFC 3261 §25.1): `Digest` LWS then a
//! comma-separated list of `name = ( token / quoted-string )`, where LWS may include folded
//! line breaks. Accepted leniently, as RFC 7230 §7 asks of recipients: any parameter order,
//! empty list elements (`a=1,,b=2`), names in any case, quoted or unquoted values for every
//! parameter. Rejected: anything else between parameters, a parameter given twice, a missing
//! required parameter. Unknown parameters are kept and can be read with `params()`.
//!
//! Error offsets are byte offsets into the header value given to `parse`.

use super::params::{
    AuthParams, EMPTY, Lexer, ParamValue, ParseError, ParseErrorKind, decode_ext_value, parse_nc,
};
use super::{Algorithm, Qop};
use crate::sip::lex::trim_lws;
use alloc::borrow::Cow;

/// The `qop` options of a challenge, as tokens, unknown ones included.
#[derive(Debug, Clone)]
pub struct QopOptions<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for QopOptions<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        loop {
            let rest = self.rest?;
            let (item, tail) = match rest.split_once(',') {
                Some((item, tail)) => (item, Some(tail)),
                None => (rest, None),
            };
            self.rest = tail;
            let item = trim_lws(item);
            if !item.is_empty() {
                return Some(item);
            }
        }
    }
}

/// A `Digest` challenge: one `WWW-Authenticate` or `Proxy-Authenticate` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge<'a> {
    raw: &'a str,
    scheme: &'a str,
    realm: ParamValue<'a>,
    nonce: ParamValue<'a>,
    opaque: Option<ParamValue<'a>>,
    domain: Option<ParamValue<'a>>,
    algorithm: Option<ParamValue<'a>>,
    qop: Option<ParamValue<'a>>,
    charset: Option<ParamValue<'a>>,
    stale: bool,
    userhash: bool,
}

impl<'a> Challenge<'a> {
    /// Parse one challenge. `realm` and `nonce` are required (RFC 7616 §3.3); a scheme other
    /// than `Digest` is [`ParseErrorKind::UnsupportedScheme`].
    pub fn parse(value: &'a str) -> Result<Challenge<'a>, ParseError> {
        let mut lexer = Lexer::after_digest_scheme(value)?;
        let scheme = lexer.scheme;
        let mut realm = None;
        let mut nonce = None;
        let mut ch = Challenge {
            raw: value,
            scheme,
            realm: EMPTY,
            nonce: EMPTY,
            opaque: None,
            domain: None,
            algorithm: None,
            qop: None,
            charset: None,
            stale: false,
            userhash: false,
        };
        lexer.for_each_unique(|p| {
            let name = p.name;
            let slot = if name.eq_ignore_ascii_case("realm") {
                &mut realm
            } else if name.eq_ignore_ascii_case("nonce") {
                &mut nonce
            } else if name.eq_ignore_ascii_case("opaque") {
                &mut ch.opaque
            } else if name.eq_ignore_ascii_case("domain") {
                &mut ch.domain
            } else if name.eq_ignore_ascii_case("algorithm") {
                &mut ch.algorithm
            } else if name.eq_ignore_ascii_case("qop") {
                &mut ch.qop
            } else if name.eq_ignore_ascii_case("charset") {
                &mut ch.charset
            } else if name.eq_ignore_ascii_case("stale") {
                // RFC 7616 §3.3: anything but a case-insensitive "true" means false.
                ch.stale = p.value.as_raw().eq_ignore_ascii_case("true");
                return Ok(());
            } else if name.eq_ignore_ascii_case("userhash") {
                ch.userhash = p.value.as_raw().eq_ignore_ascii_case("true");
                return Ok(());
            } else {
                return Ok(());
            };
            *slot = Some(p.value);
            Ok(())
        })?;
        ch.realm = realm.ok_or(ParseError::missing("realm", value))?;
        ch.nonce = nonce.ok_or(ParseError::missing("nonce", value))?;
        Ok(ch)
    }

    /// The whole header value as given to `parse`.
    #[must_use]
    pub const fn as_str(&self) -> &'a str {
        self.raw
    }

    /// The scheme as written (`Digest` in any case).
    #[must_use]
    pub const fn scheme(&self) -> &'a str {
        self.scheme
    }

    /// `realm`.
    #[must_use]
    pub const fn realm(&self) -> ParamValue<'a> {
        self.realm
    }

    /// `nonce`.
    #[must_use]
    pub const fn nonce(&self) -> ParamValue<'a> {
        self.nonce
    }

    /// `opaque`, which the client echoes unchanged.
    #[must_use]
    pub const fn opaque(&self) -> Option<ParamValue<'a>> {
        self.opaque
    }

    /// `domain` (a space-separated URI list; informational in SIP).
    #[must_use]
    pub const fn domain(&self) -> Option<ParamValue<'a>> {
        self.domain
    }

    /// `charset` (RFC 7616 allows only `UTF-8`).
    #[must_use]
    pub const fn charset(&self) -> Option<ParamValue<'a>> {
        self.charset
    }

    /// The algorithm: `Ok(Md5)` when the parameter is absent (RFC 7616 §3.3), `Err(token)`
    /// when it names one this crate does not implement.
    pub fn algorithm(&self) -> Result<Algorithm, &'a str> {
        algorithm_of(self.algorithm)
    }

    /// The `algorithm` parameter as written, if present.
    #[must_use]
    pub fn algorithm_param(&self) -> Option<&'a str> {
        self.algorithm.map(|v| v.as_raw())
    }

    /// Whether the challenge carries a `qop` parameter (if not, the answer uses the RFC 2069
    /// form without `qop`, `nc` and `cnonce`).
    #[must_use]
    pub const fn has_qop(&self) -> bool {
        self.qop.is_some()
    }

    /// The offered `qop` tokens (empty when there is no `qop` parameter).
    #[must_use]
    pub fn qop_options(&self) -> QopOptions<'a> {
        QopOptions {
            rest: self.qop.map(|v| v.as_raw()),
        }
    }

    /// Whether `qop` offers `q`.
    #[must_use]
    pub fn offers(&self, q: Qop) -> bool {
        self.qop_options().any(|t| Qop::from_token(t) == Some(q))
    }

    /// `stale=true`: the previous request's nonce was stale but its digest was right, so retry
    /// with the same credentials and the new nonce.
    #[must_use]
    pub const fn stale(&self) -> bool {
        self.stale
    }

    /// `userhash=true`: the server wants `username` sent hashed (RFC 7616 §3.4.4).
    #[must_use]
    pub const fn userhash(&self) -> bool {
        self.userhash
    }

    /// Every parameter in order, unknown ones included.
    #[must_use]
    pub fn params(&self) -> AuthParams<'a> {
        AuthParams::of(self.raw)
    }
}

/// The username of [`Credentials`] as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Username<'a> {
    Plain(ParamValue<'a>),
    /// `username*` (RFC 5987 ext-value), validated at parse time.
    Extended(&'a str),
}

/// `Digest` credentials: one `Authorization` or `Proxy-Authorization` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials<'a> {
    raw: &'a str,
    scheme: &'a str,
    username: Username<'a>,
    realm: ParamValue<'a>,
    nonce: ParamValue<'a>,
    uri: ParamValue<'a>,
    response: &'a str,
    algorithm: Option<ParamValue<'a>>,
    cnonce: Option<ParamValue<'a>>,
    opaque: Option<ParamValue<'a>>,
    qop: Option<Qop>,
    nc: Option<(u32, &'a str)>,
    userhash: bool,
}

impl<'a> Credentials<'a> {
    /// Parse credentials. Required (RFC 7616 §3.4): `username` or `username*` (not both),
    /// `realm`, `nonce`, `uri`, `response`; with `qop` also `cnonce` and `nc`. `response`
    /// must be hex, `nc` eight hex digits, `qop` `auth` or `auth-int`.
    pub fn parse(value: &'a str) -> Result<Credentials<'a>, ParseError> {
        let mut lexer = Lexer::after_digest_scheme(value)?;
        let scheme = lexer.scheme;
        let mut username = None;
        let mut username_star = None;
        let mut realm = None;
        let mut nonce = None;
        let mut uri = None;
        let mut response = None;
        let mut qop = None;
        let mut nc = None;
        let mut algorithm = None;
        let mut cnonce = None;
        let mut opaque = None;
        let mut userhash = false;
        lexer.for_each_unique(|p| {
            let name = p.name;
            let v = p.value;
            let at = p.offset;
            if name.eq_ignore_ascii_case("username") {
                username = Some((v, at));
            } else if name.eq_ignore_ascii_case("username*") {
                if decode_ext_value(v.as_raw()).is_none() {
                    return Err(ParseError::new(
                        ParseErrorKind::InvalidValue { name: "username*" },
                        at,
                    ));
                }
                username_star = Some((v, at));
            } else if name.eq_ignore_ascii_case("realm") {
                realm = Some(v);
            } else if name.eq_ignore_ascii_case("nonce") {
                nonce = Some(v);
            } else if name.eq_ignore_ascii_case("uri") {
                uri = Some(v);
            } else if name.eq_ignore_ascii_case("response") {
                let r = v.as_raw();
                if r.is_empty() || r.len() > 128 || !r.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(ParseError::new(
                        ParseErrorKind::InvalidValue { name: "response" },
                        at,
                    ));
                }
                response = Some(r);
            } else if name.eq_ignore_ascii_case("qop") {
                let q = Qop::from_token(v.as_raw()).ok_or(ParseError::new(
                    ParseErrorKind::InvalidValue { name: "qop" },
                    at,
                ))?;
                qop = Some(q);
            } else if name.eq_ignore_ascii_case("nc") {
                let n = parse_nc(v.as_raw()).ok_or(ParseError::new(
                    ParseErrorKind::InvalidValue { name: "nc" },
                    at,
                ))?;
                nc = Some((n, v.as_raw()));
            } else if name.eq_ignore_ascii_case("algorithm") {
                algorithm = Some(v);
            } else if name.eq_ignore_ascii_case("cnonce") {
                cnonce = Some(v);
            } else if name.eq_ignore_ascii_case("opaque") {
                opaque = Some(v);
            } else if name.eq_ignore_ascii_case("userhash") {
                userhash = v.as_raw().eq_ignore_ascii_case("true");
            }
            Ok(())
        })?;
        let username = match (username, username_star) {
            (Some(_), Some((_, at))) => {
                return Err(ParseError::new(
                    ParseErrorKind::Conflicting {
                        first: "username",
                        second: "username*",
                    },
                    at,
                ));
            }
            (Some((v, _)), None) => Username::Plain(v),
            (None, Some((v, _))) => Username::Extended(v.as_raw()),
            (None, None) => return Err(ParseError::missing("username", value)),
        };
        let creds = Credentials {
            raw: value,
            scheme,
            username,
            realm: realm.ok_or(ParseError::missing("realm", value))?,
            nonce: nonce.ok_or(ParseError::missing("nonce", value))?,
            uri: uri.ok_or(ParseError::missing("uri", value))?,
            response: response.ok_or(ParseError::missing("response", value))?,
            algorithm,
            cnonce,
            opaque,
            qop,
            nc,
            userhash,
        };
        if creds.qop.is_some() {
            if creds.cnonce.is_none() {
                return Err(ParseError::missing("cnonce", value));
            }
            if creds.nc.is_none() {
                return Err(ParseError::missing("nc", value));
            }
        }
        Ok(creds)
    }

    /// The whole header value as given to `parse`.
    #[must_use]
    pub const fn as_str(&self) -> &'a str {
        self.raw
    }

    /// The scheme as written (`Digest` in any case).
    #[must_use]
    pub const fn scheme(&self) -> &'a str {
        self.scheme
    }

    /// The username as the client sent it: `username` unescaped, or `username*` decoded. With
    /// [`userhash`](Self::userhash) this is `H(username:realm)` in hex, not the name.
    #[must_use]
    pub fn username(&self) -> Cow<'a, str> {
        match self.username {
            Username::Plain(v) => v.unescaped(),
            Username::Extended(raw) => Cow::Owned(decode_ext_value(raw).unwrap_or_default()),
        }
    }

    /// The `username` parameter as written, if that form was used.
    #[must_use]
    pub const fn username_param(&self) -> Option<ParamValue<'a>> {
        match self.username {
            Username::Plain(v) => Some(v),
            Username::Extended(_) => None,
        }
    }

    /// The `username*` parameter as written (`UTF-8''J%C3%A4s%C3%B8n`), if that form was used.
    #[must_use]
    pub const fn username_star(&self) -> Option<&'a str> {
        match self.username {
            Username::Plain(_) => None,
            Username::Extended(raw) => Some(raw),
        }
    }

    /// `realm`.
    #[must_use]
    pub const fn realm(&self) -> ParamValue<'a> {
        self.realm
    }

    /// `nonce`.
    #[must_use]
    pub const fn nonce(&self) -> ParamValue<'a> {
        self.nonce
    }

    /// `uri` (the digest-uri).
    #[must_use]
    pub const fn uri(&self) -> ParamValue<'a> {
        self.uri
    }

    /// `response`, hex as written.
    #[must_use]
    pub const fn response(&self) -> &'a str {
        self.response
    }

    /// The algorithm: `Ok(Md5)` when absent, `Err(token)` when unknown.
    pub fn algorithm(&self) -> Result<Algorithm, &'a str> {
        algorithm_of(self.algorithm)
    }

    /// The `algorithm` parameter as written, if present.
    #[must_use]
    pub fn algorithm_param(&self) -> Option<&'a str> {
        self.algorithm.map(|v| v.as_raw())
    }

    /// `cnonce`.
    #[must_use]
    pub const fn cnonce(&self) -> Option<ParamValue<'a>> {
        self.cnonce
    }

    /// `opaque`.
    #[must_use]
    pub const fn opaque(&self) -> Option<ParamValue<'a>> {
        self.opaque
    }

    /// `qop`.
    #[must_use]
    pub const fn qop(&self) -> Option<Qop> {
        self.qop
    }

    /// `nc`, the nonce count.
    #[must_use]
    pub fn nc(&self) -> Option<u32> {
        self.nc.map(|(n, _)| n)
    }

    /// `nc` as written (it enters the hash in this form).
    #[must_use]
    pub fn nc_str(&self) -> Option<&'a str> {
        self.nc.map(|(_, s)| s)
    }

    /// `userhash=true`: `username` is `H(username:realm)`.
    #[must_use]
    pub const fn userhash(&self) -> bool {
        self.userhash
    }

    /// Every parameter in order, unknown ones included.
    #[must_use]
    pub fn params(&self) -> AuthParams<'a> {
        AuthParams::of(self.raw)
    }
}

/// Check the RFC 3261 §25.1 syntax of a `WWW-Authenticate` / `Proxy-Authenticate` value
/// whatever its scheme: a `Digest` challenge must pass [`Challenge::parse`]; another scheme
/// (`other-challenge`) must be `auth-scheme LWS auth-param *(COMMA auth-param)`. A message
/// check uses this, since an unknown scheme is well-formed SIP (RFC 4475 §3.3.6) though this
/// crate cannot answer it.
pub fn check_challenge_syntax(value: &str) -> Result<(), ParseError> {
    match Challenge::parse(value) {
        Err(e) if matches!(e.kind(), ParseErrorKind::UnsupportedScheme { .. }) => {
            check_other_scheme(value)
        }
        r => r.map(drop),
    }
}

/// Check the RFC 3261 §25.1 syntax of an `Authorization` / `Proxy-Authorization` value
/// whatever its scheme: `Digest` credentials must pass [`Credentials::parse`]; another scheme
/// (`other-response`) must be `auth-scheme LWS auth-param *(COMMA auth-param)`.
pub fn check_credentials_syntax(value: &str) -> Result<(), ParseError> {
    match Credentials::parse(value) {
        Err(e) if matches!(e.kind(), ParseErrorKind::UnsupportedScheme { .. }) => {
            check_other_scheme(value)
        }
        r => r.map(drop),
    }
}

/// `auth-scheme LWS auth-param *(COMMA auth-param)`, names unique.
fn check_other_scheme(value: &str) -> Result<(), ParseError> {
    let mut lexer = Lexer::after_any_scheme(value)?;
    let mut any = false;
    lexer.for_each_unique(|_| {
        any = true;
        Ok(())
    })?;
    if any {
        Ok(())
    } else {
        Err(ParseError::new(
            ParseErrorKind::ExpectedParameterName,
            value.len(),
        ))
    }
}

/// `Ok(Md5)` when the `algorithm` parameter is absent (RFC 7616 §3.3), `Err(token)` when it
/// names one this crate does not implement.
fn algorithm_of(param: Option<ParamValue<'_>>) -> Result<Algorithm, &str> {
    match param {
        None => Ok(Algorithm::Md5),
        Some(v) => Algorithm::from_token(v.as_raw()).ok_or(v.as_raw()),
    }
}
