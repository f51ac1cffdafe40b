//! URLs are checked before any I/O: plain `http://` is refused unless allowed, and only
//! absolute http(s) URLs with a host are accepted.
//!
//! Shared cases: run on every runtime through `crate::rt`.

use crate::rt::block_on;
use crate::rt::http::{HttpClient, HttpConfig, HttpRequest, Method, TransportErrorKind};
use crate::support::{Server, replies};

#[test]
fn plain_http_is_refused_by_default_without_connecting() {
    let server = Server::plain(replies("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    let client = HttpClient::new(HttpConfig::default()).expect("client");
    let error = block_on(client.send(&HttpRequest::new(Method::Get, server.url("/"))))
        .expect_err("refused");
    assert_eq!(error.kind, TransportErrorKind::InvalidUrl, "{error}");
    assert!(error.message.contains("allow_plain_http"), "{error}");
    assert_eq!(server.connections(), 0);
}

#[test]
fn plain_http_works_when_allowed() {
    let server = Server::plain(replies(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    ));
    let mut config = HttpConfig::default();
    config.allow_plain_http = true;
    let client = HttpClient::new(config).expect("client");
    let response =
        block_on(client.send(&HttpRequest::new(Method::Get, server.url("/")))).expect("response");
    assert_eq!(response.body, b"ok");
}

#[test]
fn unusable_urls_are_invalid_url_errors_that_hide_query_secrets() {
    let client = HttpClient::new(HttpConfig::default()).expect("client");
    for url in [
        "ftp://example.com/",
        "/relative/path",
        "https:///no-host",
        "https://user:pass@example.com/",
        "https://example.com:0/",
        "https://[::1/",
        "https://exa mple.com/",
        "",
        "https://example.com:99999/?code=SECRET",
    ] {
        let error = block_on(client.send(&HttpRequest::new(Method::Get, url))).expect_err(url);
        assert_eq!(error.kind, TransportErrorKind::InvalidUrl, "{url}: {error}");
        assert!(!error.message.contains("SECRET"), "{error}");
        assert!(!error.message.contains("pass"), "{error}");
    }
}
