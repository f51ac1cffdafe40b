//! Redirects: returned as they are by default; when following is enabled, only to https,
//! within the hop limit, and credentials never travel to another origin.
//!
//! Shared cases: run on every runtime through `crate::rt`.

use std::io::Write;

use crate::rt::block_on;
use crate::rt::http::{HttpClient, HttpConfig, HttpRequest, HttpResponse, Method, Roots};
use crate::support::{Ending, Received, Server, pki, replies};

fn client(max_redirects: u8) -> HttpClient {
    let mut config = HttpConfig::default();
    config.roots = Roots::Pem(pki().ca_pem.clone().into_bytes());
    config.max_redirects = max_redirects;
    HttpClient::new(config).expect("client")
}

fn redirect_to(
    status: u16,
    location: String,
) -> impl Fn(&Received, &mut dyn Write) -> std::io::Result<Ending> + Send + Sync + 'static {
    move |_, out| {
        write!(
            out,
            "HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 5\r\n\r\nmoved"
        )?;
        Ok(Ending::Clean)
    }
}

fn with_secrets(method: Method, url: String) -> HttpRequest {
    let mut request = HttpRequest::new(method, url);
    request.push_header("Authorization", "Bearer access-token");
    request.push_header("Cookie", "session=1");
    request.push_header("Ocp-Apim-Subscription-Key", "subscription");
    request.push_header("Accept", "application/json");
    request.push_header("Content-Type", "application/x-www-form-urlencoded");
    request
}

fn send(client: &HttpClient, request: &HttpRequest) -> HttpResponse {
    block_on(client.send(request)).expect("response")
}

#[test]
fn redirect_is_returned_as_is_when_following_is_off() {
    let target = Server::tls(replies("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    let origin = Server::tls(redirect_to(302, target.url("/next")));
    let response = send(&client(0), &HttpRequest::new(Method::Get, origin.url("/")));
    assert_eq!(response.status, 302);
    assert_eq!(
        response.header("location"),
        Some(target.url("/next").as_str())
    );
    assert_eq!(response.body, b"moved");
    assert_eq!(target.connections(), 0);
}

#[test]
fn relative_redirect_on_the_same_origin_keeps_credentials() {
    let server = Server::tls(|seen, out: &mut dyn Write| {
        if seen.target == "/start" {
            out.write_all(
                b"HTTP/1.1 307 Temporary\r\nLocation: /final?x=1\r\nContent-Length: 0\r\n\r\n",
            )?;
        } else {
            out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")?;
        }
        Ok(Ending::Clean)
    });
    let response = send(&client(3), &with_secrets(Method::Get, server.url("/start")));
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"done");
    let _first = server.request();
    let second = server.request();
    assert_eq!(second.target, "/final?x=1");
    assert_eq!(second.method, "GET");
    assert_eq!(second.header("authorization"), Some("Bearer access-token"));
    assert_eq!(
        second.header("ocp-apim-subscription-key"),
        Some("subscription")
    );
}

#[test]
fn redirect_to_another_origin_forwards_no_credentials() {
    let target = Server::tls(replies("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    // localhost → 127.0.0.1 is another origin (another host), as is another port.
    let origin = Server::tls(redirect_to(
        302,
        target.url_with_host("127.0.0.1", "/elsewhere"),
    ));
    let response = send(&client(3), &with_secrets(Method::Get, origin.url("/")));
    assert_eq!(response.status, 200);
    let seen = target.request();
    assert_eq!(seen.target, "/elsewhere");
    for secret in [
        "authorization",
        "cookie",
        "ocp-apim-subscription-key",
        "content-type",
    ] {
        assert_eq!(seen.header(secret), None, "{secret} was forwarded");
    }
    assert_eq!(seen.header("accept"), Some("application/json"));
    assert!(seen.header("user-agent").is_some());
}

#[test]
fn post_answered_with_303_is_followed_as_get_without_body() {
    let server = Server::tls(|seen, out: &mut dyn Write| {
        if seen.method == "POST" {
            out.write_all(
                b"HTTP/1.1 303 See Other\r\nLocation: /result\r\nContent-Length: 0\r\n\r\n",
            )?;
        } else {
            out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")?;
        }
        Ok(Ending::Clean)
    });
    let mut request = with_secrets(Method::Post, server.url("/form"));
    request.body = b"a=1".to_vec();
    assert_eq!(send(&client(1), &request).status, 200);
    let _post = server.request();
    let get = server.request();
    assert_eq!(get.method, "GET");
    assert!(get.body.is_empty());
    assert_eq!(get.header("content-length"), None);
    assert_eq!(get.header("content-type"), None);
}

#[test]
fn post_answered_with_307_is_not_followed() {
    let server = Server::tls(redirect_to(307, "/again".to_owned()));
    let mut request = HttpRequest::new(Method::Post, server.url("/"));
    request.body = b"a=1".to_vec();
    assert_eq!(send(&client(3), &request).status, 307);
    assert_eq!(server.connections(), 1);
}

#[test]
fn redirect_to_plain_http_is_not_followed() {
    let plain = Server::plain(replies("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    let origin = Server::tls(redirect_to(301, plain.url("/")));
    let response = send(&client(3), &HttpRequest::new(Method::Get, origin.url("/")));
    assert_eq!(response.status, 301);
    assert_eq!(plain.connections(), 0);
}

#[test]
fn redirects_beyond_the_limit_return_the_last_redirect() {
    let server = Server::tls(|seen, out: &mut dyn Write| {
        let n: u32 = seen.target.trim_start_matches('/').parse().unwrap_or(0);
        write!(
            out,
            "HTTP/1.1 302 Found\r\nLocation: /{}\r\nContent-Length: 0\r\n\r\n",
            n + 1
        )?;
        Ok(Ending::Clean)
    });
    let response = send(&client(2), &HttpRequest::new(Method::Get, server.url("/0")));
    assert_eq!(response.status, 302);
    assert_eq!(response.header("location"), Some("/3"));
    assert_eq!(server.connections(), 3);
}
