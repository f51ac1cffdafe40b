//! From a request value to what goes on the wire: where to connect, which name TLS checks,
//! which header fields are sent, and where a redirect leads.
//!
//! Shared source: compiled into both `latchkey-tokio` and `latchkey-smol`.

use std::fmt;
use std::net::IpAddr;

use latchkey_oauth_core::http::{HttpRequest, TransportError, TransportErrorKind, redact_query};
use rustls::pki_types::ServerName;
use ureq_proto::client::Call;
use ureq_proto::client::RedirectAuthHeaders;
use ureq_proto::client::state::Redirect;
use ureq_proto::http::uri::Scheme;
use ureq_proto::http::{self, HeaderName, HeaderValue, Uri, header};

/// Header fields the driver owns: values a request gives for them are not sent.
/// (`Host`, framing and connection management, and `Expect`, which this client does not do.)
const DRIVER_OWNED: [HeaderName; 7] = [
    header::HOST,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::CONNECTION,
    header::TE,
    header::UPGRADE,
    header::EXPECT,
];

/// Header fields forwarded when a redirect leads to another origin.
const CROSS_ORIGIN_SAFE: [HeaderName; 3] =
    [header::ACCEPT, header::ACCEPT_LANGUAGE, header::USER_AGENT];

/// Where to connect and what to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// Host name or IP address, without the brackets of an IPv6 literal.
    pub(crate) host: String,
    /// The host as an address when the URL holds an IP literal (no name resolution then).
    pub(crate) ip: Option<IpAddr>,
    /// TCP port (the scheme's default when the URL has none).
    pub(crate) port: u16,
    /// The name TLS verifies the certificate against; `None` for plain `http://`.
    pub(crate) tls: Option<ServerName<'static>>,
}

impl Target {
    /// The target of absolute URL `uri`; `allow_plain` admits `http://`.
    fn from_uri(uri: &Uri, allow_plain: bool) -> Result<Target, String> {
        let https = match uri.scheme() {
            Some(s) if *s == Scheme::HTTPS => true,
            Some(s) if *s == Scheme::HTTP => {
                if !allow_plain {
                    return Err(
                        "plain http:// is refused (set allow_plain_http for tests or loopback)"
                            .to_owned(),
                    );
                }
                false
            }
            Some(s) => return Err(format!("scheme {s:?} is not https")),
            None => return Err("not an absolute URL".to_owned()),
        };
        let Some(authority) = uri.authority() else {
            return Err("no host".to_owned());
        };
        if authority.as_str().contains('@') {
            return Err("credentials in the URL are refused".to_owned());
        }
        let raw = authority.host();
        let bare = raw
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(raw);
        if bare.is_empty() {
            return Err("no host".to_owned());
        }
        let ip = bare.parse::<IpAddr>().ok();
        if raw.starts_with('[') && !matches!(ip, Some(IpAddr::V6(_))) {
            return Err("bad IPv6 literal".to_owned());
        }
        // http's `Authority::port` is `None` both for no port and for one out of range, so
        // look at the text after the host (userinfo was refused above, so a colon there
        // introduces the port).
        let text = authority.as_str();
        let after_host = text.rfind(']').map_or(text, |i| &text[i + 1..]);
        let port = match after_host.rsplit_once(':') {
            None if https => 443,
            None => 80,
            Some((_, digits)) => match digits.parse::<u16>() {
                Ok(0) | Err(_) => return Err(format!("port {digits:?} is not in 1..=65535")),
                Ok(p) => p,
            },
        };
        let tls = if https {
            let name = ServerName::try_from(bare.to_owned())
                .map_err(|_| format!("host {bare:?} is not a valid DNS name or IP address"))?;
            Some(name)
        } else {
            None
        };
        Ok(Target {
            host: bare.to_owned(),
            ip,
            port,
            tls,
        })
    }

    fn same_origin(&self, other: &Target) -> bool {
        self.tls.is_some() == other.tls.is_some()
            && self.port == other.port
            && self.host.eq_ignore_ascii_case(&other.host)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            _ => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

/// One request on the wire: the caller's request, or a redirect followed from it.
#[derive(Debug)]
pub(crate) struct Hop<'a> {
    pub(crate) target: Target,
    method: http::Method,
    uri: Uri,
    /// The caller's fields, validated, without the driver-owned ones.
    headers: Vec<(HeaderName, HeaderValue)>,
    body: &'a [u8],
}

impl<'a> Hop<'a> {
    /// The first hop of `request`: URL and header fields checked before any I/O.
    pub(crate) fn first(
        request: &'a HttpRequest,
        allow_plain: bool,
    ) -> Result<Self, TransportError> {
        let invalid_url = |why: String| {
            TransportError::new(
                TransportErrorKind::InvalidUrl,
                format!("{}: {why}", shown_url(&request.url)),
            )
        };
        let uri: Uri = request
            .url
            .parse()
            .map_err(|e: http::uri::InvalidUri| invalid_url(e.to_string()))?;
        let target = Target::from_uri(&uri, allow_plain).map_err(invalid_url)?;
        let method = http::Method::from_bytes(request.method.as_str().as_bytes())
            .map_err(|_| invalid_request("unsupported method".to_owned()))?;
        let mut headers = Vec::with_capacity(request.headers.len());
        for (name, value) in &request.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                invalid_request(format!("header name {name:?} is not a valid token"))
            })?;
            // The value may be a credential: say which field, never what it holds.
            let value = HeaderValue::from_str(value).map_err(|_| {
                invalid_request(format!("value of header {name} has forbidden characters"))
            })?;
            if !DRIVER_OWNED.contains(&name) {
                headers.push((name, value));
            }
        }
        Ok(Hop {
            target,
            method,
            uri,
            headers,
            body: &request.body,
        })
    }

    /// The request head for ureq-proto: the caller's fields plus `User-Agent` (unless set),
    /// `Connection: close` and `Content-Length`. ureq-proto adds `Host` from the URI.
    pub(crate) fn request(
        &self,
        user_agent: &HeaderValue,
    ) -> Result<http::Request<()>, TransportError> {
        let mut builder = http::Request::builder()
            .method(self.method.clone())
            .uri(self.uri.clone());
        let mut has_agent = false;
        for (name, value) in &self.headers {
            has_agent |= *name == header::USER_AGENT;
            builder = builder.header(name, value);
        }
        if !has_agent {
            builder = builder.header(header::USER_AGENT, user_agent);
        }
        builder = builder.header(header::CONNECTION, HeaderValue::from_static("close"));
        let sends_body = matches!(
            self.method,
            http::Method::POST | http::Method::PUT | http::Method::PATCH
        );
        if sends_body || !self.body.is_empty() {
            builder = builder.header(header::CONTENT_LENGTH, self.body.len());
        }
        builder
            .body(())
            .map_err(|_| invalid_request("request head could not be built".to_owned()))
    }

    /// The request body.
    pub(crate) fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The hop a redirect leads to, or `None` when it is not to be followed (see
    /// `HttpConfig::max_redirects` for the rules).
    pub(crate) fn follow(&self, mut redirect: Call<Redirect>) -> Option<Hop<'static>> {
        // ureq-proto resolves the Location against this URI and picks the method
        // (303 → GET, 307/308 keep it but refuse to re-send a body). Its header handling
        // is not used: the field list below is decided here.
        let next = redirect
            .as_new_call(RedirectAuthHeaders::Never)
            .ok()
            .flatten()?;
        let uri = next.uri().clone();
        let method = next.method().clone();
        let target = Target::from_uri(&uri, false).ok()?;
        let same_origin = self.target.same_origin(&target);
        let headers = self
            .headers
            .iter()
            .filter(|(name, _)| {
                if same_origin {
                    // The body is not re-sent, so neither is its type.
                    *name != header::CONTENT_TYPE
                } else {
                    CROSS_ORIGIN_SAFE.contains(name)
                }
            })
            .cloned()
            .collect();
        Some(Hop {
            target,
            method,
            uri,
            headers,
            body: &[],
        })
    }
}

/// `url` fit for an error message: query credentials and any user information replaced.
fn shown_url(url: &str) -> String {
    let url = redact_query(url);
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            return format!("{scheme}://<redacted>@{}", &rest[at + 1..]);
        }
    }
    url
}

/// A request the driver refuses to send as given (a bug in the caller, not the network).
pub(crate) fn invalid_request(why: String) -> TransportError {
    TransportError::new(
        TransportErrorKind::InvalidRequest,
        format!("invalid request: {why}"),
    )
}
