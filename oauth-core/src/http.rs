//! The HTTP values the core hands to a driver and receives back.
//!
//! The core never opens a socket: it builds an [`HttpRequest`] value, a runtime performs it
//! over HTTPS and gives back an [`HttpResponse`] or a [`TransportError`].

use core::fmt;

/// HTTP method of a request the core asks the driver to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
}

impl Method {
    /// The method as it is written on the request line.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request for the driver to perform: method, absolute URL, headers in order, body.
///
/// `Debug` never prints header values of credential headers nor the body, which for token
/// requests holds codes, refresh tokens and client secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// Absolute `https://` (or, for tests, `http://`) URL including the query.
    pub url: String,
    /// Header fields in the order they are to be sent. `Host`, `Content-Length` and
    /// `Connection` are the driver's business and are not listed here.
    pub headers: Vec<(String, String)>,
    /// The body (empty for none).
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// A request with no headers and no body.
    #[must_use]
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        HttpRequest {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Appends a header field.
    pub fn push_header(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.headers.push((name.into(), value.into()));
    }

    /// The first value of header `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &redact_query(&self.url))
            .field("headers", &RedactedHeaders(&self.headers))
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .finish()
    }
}

/// A response the driver received: status, headers in arrival order, the whole body.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header fields in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body, already de-chunked.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response with a status and a body and no headers; convenient in tests.
    #[must_use]
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        HttpResponse {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// Adds a header field (builder style); convenient in tests.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The first value of header `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("headers", &RedactedHeaders(&self.headers))
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .finish()
    }
}

/// Why a request got no HTTP response at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The host name did not resolve.
    Dns,
    /// The TCP connection was refused or could not be made.
    Connect,
    /// The TLS handshake failed (including certificate verification).
    Tls,
    /// Connecting or reading took longer than the configured timeout.
    Timeout,
    /// The connection failed while the request or response was in transit.
    Io,
    /// The peer sent something that is not HTTP/1.1.
    Protocol,
    /// The response was larger than the configured limit.
    TooLarge,
    /// The URL could not be used (bad scheme, host or port).
    InvalidUrl,
    /// The request itself cannot be sent (an invalid header name or value): a bug in the
    /// caller, not worth a retry.
    InvalidRequest,
}

/// A failure below HTTP: nothing the server said, so always worth a later retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    /// What kind of failure.
    pub kind: TransportErrorKind,
    /// A human-readable explanation (never contains secrets).
    pub message: String,
}

impl TransportError {
    /// A transport error of `kind` explained by `message`.
    #[must_use]
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        TransportError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            TransportErrorKind::Dns => "name resolution failed",
            TransportErrorKind::Connect => "connection failed",
            TransportErrorKind::Tls => "TLS failed",
            TransportErrorKind::Timeout => "timed out",
            TransportErrorKind::Io => "connection broken",
            TransportErrorKind::Protocol => "invalid HTTP response",
            TransportErrorKind::TooLarge => "response too large",
            TransportErrorKind::InvalidUrl => "invalid URL",
            TransportErrorKind::InvalidRequest => "invalid request",
        };
        write!(f, "{what}: {}", self.message)
    }
}

impl std::error::Error for TransportError {}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Header names whose values are credentials and never printed.
const SECRET_HEADERS: [&str; 6] = [
    "authorization",
    "cookie",
    "set-cookie",
    "usertoken",
    "ocp-apim-subscription-key",
    // Azure AD B2C's sign-in page API (headless login): the page's CSRF token is tied to the
    // sign-in session.
    "x-csrf-token",
];

/// Query parameters whose values are credentials and never printed.
const SECRET_PARAMS: [&str; 9] = [
    "code",
    "client_secret",
    "refresh_token",
    "access_token",
    "code_verifier",
    "password",
    "device_code",
    "authorization_code",
    "csrf_token",
];

struct RedactedHeaders<'a>(&'a [(String, String)]);

impl fmt::Debug for RedactedHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for (name, value) in self.0 {
            if SECRET_HEADERS.iter().any(|s| name.eq_ignore_ascii_case(s)) {
                list.entry(&format_args!("{name}: <redacted>"));
            } else {
                list.entry(&format_args!("{name}: {value}"));
            }
        }
        list.finish()
    }
}

/// The URL with the values of credential query parameters replaced by `<redacted>`.
#[must_use]
pub fn redact_query(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let mut out = String::with_capacity(url.len());
    out.push_str(base);
    out.push('?');
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((k, _)) if SECRET_PARAMS.iter().any(|s| k.eq_ignore_ascii_case(s)) => {
                out.push_str(k);
                out.push_str("=<redacted>");
            }
            _ => out.push_str(pair),
        }
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_a_request_hides_credentials_and_body() {
        let mut req = HttpRequest::new(Method::Post, "https://x/token?code=abc&p=pol");
        req.push_header("Authorization", "Bearer secret-token");
        req.push_header("Accept", "application/json");
        req.push_header("X-CSRF-TOKEN", "csrf-secret");
        req.body = b"refresh_token=rt-secret".to_vec();
        let shown = format!("{req:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(!shown.contains("abc"), "{shown}");
        let confirmed = HttpRequest::new(
            Method::Get,
            "https://x/api/CombinedSigninAndSignup/confirmed?rememberMe=false&csrf_token=tok-secret&tx=t",
        );
        let confirmed = format!("{confirmed:?}");
        assert!(!confirmed.contains("tok-secret"), "{confirmed}");
        assert!(confirmed.contains("tx=t"), "{confirmed}");
        assert!(shown.contains("p=pol"), "{shown}");
        assert!(shown.contains("Accept: application/json"), "{shown}");
    }

    #[test]
    fn header_lookup_ignores_case() {
        let resp = HttpResponse::new(200, "").with_header("Retry-After", "5");
        assert_eq!(resp.header("retry-after"), Some("5"));
        assert_eq!(resp.header("date"), None);
    }
}
