//! Typed views of the headers a user agent needs, computed on demand from the raw index.
//!
//! Each view has a standalone `parse(value)` whose [`ValueError`] offsets count from the start
//! of the value, and a [`Message`] accessor whose [`HeaderError`] names the header and the
//! byte offset in the whole message. Views borrow the message; none allocates.

#[cfg(test)]
mod common_shape_tests;
mod name_addr;
mod simple;
mod via;

use core::fmt;

pub use name_addr::{Contact, DisplayName, NameAddr};
pub use simple::{CSeq, ContentType, Date};
pub use via::{BRANCH_MAGIC_COOKIE, Transport, Via};

pub(crate) use simple::{
    parse_call_id as simple_parse_call_id, parse_delta_seconds as simple_parse_delta_seconds,
    parse_method as simple_parse_method, parse_option_tag as simple_parse_option_tag,
};

use super::digest::{Challenge, Credentials};
use super::header::HeaderName;
use super::message::{Message, Method};

/// One Max-Forwards value (a decimal number that fits in `u32`; the strict check also
/// wants 0–255), as [`Message::max_forwards`](crate::sip::Message::max_forwards) reads it.
///
/// # Errors
/// A [`ValueError`] naming the fault and its offset in `value`.
pub fn parse_max_forwards(value: &str) -> Result<u32, ValueError> {
    simple::parse_u32(value)
}

/// One `delta-seconds` value (Expires, Min-Expires: 0 to 2³²−1), as
/// [`Message::expires`](crate::sip::Message::expires) reads it.
///
/// # Errors
/// A [`ValueError`] naming the fault and its offset in `value`.
pub fn parse_delta_seconds(value: &str) -> Result<u32, ValueError> {
    simple::parse_delta_seconds(value)
}

/// One Content-Length value (decimal, at most 19 digits), as
/// [`Message::content_length`](crate::sip::Message::content_length) reads it.
///
/// # Errors
/// A [`ValueError`] naming the fault and its offset in `value`.
pub fn parse_content_length(value: &str) -> Result<usize, ValueError> {
    simple::parse_content_length(value)
}

/// A fault inside one header value; `offset` counts from the start of the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueError {
    /// Byte offset in the value.
    pub offset: usize,
    /// What is wrong.
    pub reason: &'static str,
}

impl ValueError {
    pub(crate) const fn new(offset: usize, reason: &'static str) -> Self {
        ValueError { offset, reason }
    }
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {} of the value", self.reason, self.offset)
    }
}

impl core::error::Error for ValueError {}

/// Why a typed header view could not be produced from a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderError {
    /// The header is absent.
    Missing {
        /// Canonical header name.
        header: &'static str,
    },
    /// The header's value does not follow its grammar.
    Invalid {
        /// Canonical header name.
        header: &'static str,
        /// Byte offset of the fault in the message.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

impl HeaderError {
    /// The canonical name of the header at fault.
    #[must_use]
    pub fn header(&self) -> &'static str {
        match *self {
            HeaderError::Missing { header } | HeaderError::Invalid { header, .. } => header,
        }
    }
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Missing { header } => write!(f, "missing {header} header"),
            HeaderError::Invalid {
                header,
                offset,
                reason,
            } => {
                write!(f, "invalid {header} header at byte {offset}: {reason}")
            }
        }
    }
}

impl core::error::Error for HeaderError {}

fn canonical(name: HeaderName) -> &'static str {
    name.as_str().unwrap_or("(unknown)")
}

impl<'a> Message<'a> {
    /// Parse the first value of `name` with `parse`, naming the header and message offset on
    /// failure.
    #[inline]
    fn typed_first<T>(
        &self,
        name: HeaderName,
        parse: impl Fn(&'a str) -> Result<T, ValueError>,
    ) -> Result<T, HeaderError> {
        // The first value of the first line: what `values(name).next()` yields, without the
        // iterator adapters (this runs for every typed read of every message).
        let h = self.header(name).ok_or_else(|| HeaderError::Missing {
            header: canonical(name),
        })?;
        let v = if name.is_list() {
            super::lex::first_element(h.value)
        } else {
            h.value
        };
        let off = self.offset_of(v);
        parse(v).map_err(|e| HeaderError::Invalid {
            header: canonical(name),
            offset: off + e.offset,
            reason: e.reason,
        })
    }

    /// Parse every value of `name` with `parse`, in order.
    fn typed_all<T: 'a>(
        &self,
        name: HeaderName,
        parse: impl Fn(&'a str) -> Result<T, ValueError> + 'a,
    ) -> impl Iterator<Item = Result<T, HeaderError>> + '_ {
        self.values(name).map(move |(off, v)| {
            parse(v).map_err(|e| HeaderError::Invalid {
                header: canonical(name),
                offset: off + e.offset,
                reason: e.reason,
            })
        })
    }

    /// Every Via value, topmost first.
    pub fn via(&self) -> impl Iterator<Item = Result<Via<'a>, HeaderError>> + '_ {
        self.typed_all(HeaderName::Via, Via::parse)
    }

    /// The topmost Via.
    #[inline]
    pub fn top_via(&self) -> Result<Via<'a>, HeaderError> {
        // A first Via line holding one value of the common shape (nearly every message) is
        // read without looking for the list's first element: the one-pass reader gives up at
        // a comma, quote or white space, so when it accepts the whole line, the line is that
        // one element.
        if let Some(h) = self.header(HeaderName::Via)
            && let Some(via) = Via::parse_common(h.value)
        {
            return Ok(via);
        }
        self.typed_first(HeaderName::Via, Via::parse)
    }

    /// The From header.
    #[inline]
    pub fn from(&self) -> Result<NameAddr<'a>, HeaderError> {
        self.typed_first(HeaderName::From, NameAddr::parse)
    }

    /// The To header.
    #[inline]
    pub fn to(&self) -> Result<NameAddr<'a>, HeaderError> {
        self.typed_first(HeaderName::To, NameAddr::parse)
    }

    /// Every Contact value, in order (`*` is [`Contact::Wildcard`]).
    pub fn contacts(&self) -> impl Iterator<Item = Result<Contact<'a>, HeaderError>> + '_ {
        self.typed_all(HeaderName::Contact, Contact::parse)
    }

    /// Every Route value, in order.
    pub fn routes(&self) -> impl Iterator<Item = Result<NameAddr<'a>, HeaderError>> + '_ {
        self.typed_all(HeaderName::Route, NameAddr::parse)
    }

    /// Every Record-Route value, in order.
    pub fn record_routes(&self) -> impl Iterator<Item = Result<NameAddr<'a>, HeaderError>> + '_ {
        self.typed_all(HeaderName::RecordRoute, NameAddr::parse)
    }

    /// The Call-ID (`word [ "@" word ]`).
    #[inline]
    pub fn call_id(&self) -> Result<&'a str, HeaderError> {
        self.typed_first(HeaderName::CallId, simple::parse_call_id)
    }

    /// The CSeq header.
    #[inline]
    pub fn cseq(&self) -> Result<CSeq<'a>, HeaderError> {
        self.typed_first(HeaderName::CSeq, CSeq::parse)
    }

    /// Max-Forwards.
    pub fn max_forwards(&self) -> Result<u32, HeaderError> {
        self.typed_first(HeaderName::MaxForwards, simple::parse_u32)
    }

    /// Expires, in seconds.
    pub fn expires(&self) -> Result<u32, HeaderError> {
        self.typed_first(HeaderName::Expires, simple::parse_delta_seconds)
    }

    /// Min-Expires, in seconds (in a 423 Interval Too Brief).
    pub fn min_expires(&self) -> Result<u32, HeaderError> {
        self.typed_first(HeaderName::MinExpires, simple::parse_delta_seconds)
    }

    /// Content-Length.
    pub fn content_length(&self) -> Result<usize, HeaderError> {
        self.typed_first(HeaderName::ContentLength, simple::parse_content_length)
    }

    /// Content-Type.
    pub fn content_type(&self) -> Result<ContentType<'a>, HeaderError> {
        self.typed_first(HeaderName::ContentType, ContentType::parse)
    }

    /// Every method listed in Allow headers.
    pub fn allow(&self) -> impl Iterator<Item = Result<Method<'a>, HeaderError>> + '_ {
        self.typed_all(HeaderName::Allow, simple::parse_method)
    }

    /// Every option tag in Supported headers.
    pub fn supported(&self) -> impl Iterator<Item = Result<&'a str, HeaderError>> + '_ {
        self.typed_all(HeaderName::Supported, simple::parse_option_tag)
    }

    /// Every option tag in Require headers.
    pub fn require(&self) -> impl Iterator<Item = Result<&'a str, HeaderError>> + '_ {
        self.typed_all(HeaderName::Require, simple::parse_option_tag)
    }

    /// The Date header.
    pub fn date(&self) -> Result<Date, HeaderError> {
        self.typed_first(HeaderName::Date, Date::parse)
    }

    /// Every WWW-Authenticate challenge, in order.
    pub fn www_authenticate(
        &self,
    ) -> impl Iterator<Item = Result<Challenge<'a>, HeaderError>> + '_ {
        self.typed_all(HeaderName::WwwAuthenticate, parse_challenge)
    }

    /// Every Proxy-Authenticate challenge, in order.
    pub fn proxy_authenticate(
        &self,
    ) -> impl Iterator<Item = Result<Challenge<'a>, HeaderError>> + '_ {
        self.typed_all(HeaderName::ProxyAuthenticate, parse_challenge)
    }

    /// Every Authorization credential, in order.
    pub fn authorization(&self) -> impl Iterator<Item = Result<Credentials<'a>, HeaderError>> + '_ {
        self.typed_all(HeaderName::Authorization, parse_credentials)
    }

    /// Every Proxy-Authorization credential, in order.
    pub fn proxy_authorization(
        &self,
    ) -> impl Iterator<Item = Result<Credentials<'a>, HeaderError>> + '_ {
        self.typed_all(HeaderName::ProxyAuthorization, parse_credentials)
    }
}

fn parse_challenge(v: &str) -> Result<Challenge<'_>, ValueError> {
    Challenge::parse(v).map_err(|e| ValueError::new(e.offset(), e.reason()))
}

fn parse_credentials(v: &str) -> Result<Credentials<'_>, ValueError> {
    Credentials::parse(v).map_err(|e| ValueError::new(e.offset(), e.reason()))
}
