//! Plain request and response values: what the driver's HTTP/1.1 framing produced and what
//! it must write back. No framing here.

use std::borrow::Cow;
use std::string::String;
use std::vec::Vec;

/// Largest request body the application reads (calaos_base's `MAX_REQUEST_BODY_SIZE`,
/// 1 MiB). Drivers should refuse larger bodies before buffering them; the application
/// answers 413 for any that get through.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// An HTTP request method.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Method {
    /// GET.
    Get,
    /// HEAD (answered like GET; the driver drops the body).
    Head,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// DELETE.
    Delete,
    /// Anything else, as sent.
    Other(String),
}

impl Method {
    /// The method named `s` (case-sensitive, as RFC 9110 says).
    #[must_use]
    pub fn parse(s: &str) -> Method {
        match s {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            other => Method::Other(String::from(other)),
        }
    }

    /// Whether the method is safe (GET or HEAD): it never changes state.
    #[must_use]
    pub fn is_safe(&self) -> bool {
        matches!(self, Method::Get | Method::Head)
    }
}

/// A request as the driver framed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path, percent-encoded as sent, without the query.
    pub path: String,
    /// The query string without `?` (empty when none).
    pub query: String,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// A request without headers or body; `target` may carry a `?query`.
    #[must_use]
    pub fn new(method: Method, target: &str) -> Request {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Request {
            method,
            path: String::from(path),
            query: String::from(query),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// The same request with a header added.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((String::from(name), String::from(value)));
        self
    }

    /// The same request with a body.
    #[must_use]
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    /// Whether answering may hash a password (Argon2id: tens of milliseconds of CPU and
    /// 19 MiB): a driver runs such requests on a blocking pool, off its async threads.
    #[must_use]
    pub fn is_costly(&self) -> bool {
        self.method == Method::Post
            && matches!(self.path.as_str(), "/login" | "/setup" | "/admin/password")
    }

    /// The first header named `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of the headers named `name`, in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl DoubleEndedIterator<Item = &'a str> {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The value of cookie `name` from the `Cookie` headers.
    #[must_use]
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers_named("cookie")
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.trim_matches('"'))
    }

    /// The query parameter `name`, decoded.
    #[must_use]
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The body as `application/x-www-form-urlencoded` fields.
    #[must_use]
    pub fn form(&self) -> Form {
        Form {
            fields: form_urlencoded::parse(&self.body)
                .take(64)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }
}

/// Decoded form fields (the first 64).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    fields: Vec<(String, String)>,
}

impl Form {
    /// The first value of `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, or "".
    #[must_use]
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }
}

/// A response for the driver to frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header fields in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with `status`, no headers and no body.
    #[must_use]
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A JSON response.
    #[must_use]
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        let mut r = Response::new(status);
        r.body = serde_json::to_vec(value).unwrap_or_default();
        r.set_header("Content-Type", "application/json");
        r
    }

    /// An HTML page.
    #[must_use]
    pub fn html(status: u16, page: String) -> Response {
        let mut r = Response::new(status);
        r.body = page.into_bytes();
        r.set_header("Content-Type", "text/html; charset=utf-8");
        r
    }

    /// A `303 See Other` to `location` (after a form POST).
    #[must_use]
    pub fn see_other(location: &str) -> Response {
        let mut r = Response::new(303);
        r.set_header("Location", location);
        r
    }

    /// Adds or replaces header `name` (Set-Cookie is always added).
    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        if !name.eq_ignore_ascii_case("set-cookie")
            && let Some(slot) = self
                .headers
                .iter_mut()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            slot.1 = value;
            return;
        }
        self.headers.push((String::from(name), value));
    }

    /// The first header named `name`.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    #[must_use]
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

/// The `Host` header's host name without the port, if it is a plausible host (letters,
/// digits, `.-_:[]`), else `None`.
#[must_use]
pub fn host_name(host: &str) -> Option<&str> {
    let host = host.trim();
    if host.is_empty()
        || host.len() > 255
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b))
    {
        return None;
    }
    if let Some(rest) = host.strip_prefix('[') {
        let end = rest.find(']')?;
        return Some(&host[..end + 2]);
    }
    Some(host.split(':').next().unwrap_or(host))
}

/// The answer of the plain-HTTP port: a permanent redirect of every request to the same path
/// on HTTPS (`https_port` 443 is left out of the URL). Requests without a usable `Host`
/// header get 400.
#[must_use]
pub fn redirect_to_https(request: &Request, https_port: u16) -> Response {
    let Some(host) = request.header("host").and_then(host_name) else {
        return crate::http1::plain_text(400, "missing or invalid Host header");
    };
    let mut target = String::from("https://");
    target.push_str(host);
    if https_port != 443 {
        target.push(':');
        target.push_str(&https_port.to_string());
    }
    let path: String = request
        .path
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .collect();
    if path.starts_with('/') {
        target.push_str(&path);
    } else {
        target.push('/');
    }
    let query: String = request
        .query
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .collect();
    if !query.is_empty() {
        target.push('?');
        target.push_str(&query);
    }
    let mut r = Response::new(308);
    r.set_header("Location", target);
    r.set_header("Content-Length", "0");
    // The same headers as every other answer (`no-store` too: a cached permanent redirect
    // would outlive a change of the HTTPS port).
    crate::app::secure_headers(&mut r, "");
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_keeps_path_and_query_and_drops_the_http_port() {
        let req = Request::new(Method::Get, "/admin?x=1").with_header("Host", "door.local:8080");
        let r = redirect_to_https(&req, 8443);
        assert_eq!(r.status, 308);
        assert_eq!(
            r.header("location"),
            Some("https://door.local:8443/admin?x=1")
        );
        let r = redirect_to_https(&req, 443);
        assert_eq!(r.header("location"), Some("https://door.local/admin?x=1"));
    }

    #[test]
    fn redirect_answers_carry_the_security_headers() {
        let ok = Request::new(Method::Get, "/").with_header("Host", "door.local:8080");
        let bad = Request::new(Method::Get, "/");
        for r in [redirect_to_https(&ok, 8443), redirect_to_https(&bad, 8443)] {
            assert_eq!(
                r.header("x-content-type-options"),
                Some("nosniff"),
                "{}",
                r.status
            );
            assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
            assert_eq!(r.header("cache-control"), Some("no-store"));
            assert!(r.header("content-security-policy").is_some());
        }
        let bad = redirect_to_https(&bad, 8443);
        assert_eq!(
            bad.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert!(String::from_utf8_lossy(&bad.body).contains("Host"));
    }

    #[test]
    fn redirect_refuses_hosts_that_could_inject_headers() {
        let req = Request::new(Method::Get, "/").with_header("Host", "evil\r\nSet-Cookie: a=b");
        assert_eq!(redirect_to_https(&req, 443).status, 400);
        let req = Request::new(Method::Get, "/");
        assert_eq!(redirect_to_https(&req, 443).status, 400);
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets() {
        assert_eq!(host_name("[::1]:8080"), Some("[::1]"));
        assert_eq!(host_name("127.0.0.1:80"), Some("127.0.0.1"));
    }

    #[test]
    fn cookies_are_found_across_headers() {
        let req = Request::new(Method::Get, "/")
            .with_header("Cookie", "a=1; b=2")
            .with_header("cookie", "__Host-x=3");
        assert_eq!(req.cookie("b"), Some("2"));
        assert_eq!(req.cookie("__Host-x"), Some("3"));
        assert_eq!(req.cookie("c"), None);
    }
}
