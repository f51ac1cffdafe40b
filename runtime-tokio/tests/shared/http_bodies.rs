//! Responses arrive whole, however the body is framed, and the request goes out as asked.
//!
//! Shared cases: run on every runtime through `crate::rt`.

use std::io::Write;

use crate::rt::block_on;
use crate::rt::http::{DEFAULT_USER_AGENT, HttpClient, HttpConfig, HttpRequest, Method, Roots};
use crate::support::{Ending, Server, ipv6_loopback, pki, replies};

fn client() -> HttpClient {
    let mut config = HttpConfig::default();
    config.roots = Roots::Pem(pki().ca_pem.clone().into_bytes());
    HttpClient::new(config).expect("client")
}

#[test]
fn content_length_body_arrives_whole() {
    let server = Server::tls(replies(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n{\"ok\":\"yes\"}\n\n",
    ));
    let response = block_on(client().send(&HttpRequest::new(Method::Get, server.url("/t"))))
        .expect("response");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"{\"ok\":\"yes\"}\n\n");
    assert_eq!(response.header("content-type"), Some("application/json"));
}

#[test]
fn chunked_body_arrives_dechunked_with_extensions_and_trailers() {
    let server = Server::tls(replies(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
         5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: t\r\n\r\n",
    ));
    let response =
        block_on(client().send(&HttpRequest::new(Method::Get, server.url("/")))).expect("response");
    assert_eq!(response.body, b"hello world!");
}

#[test]
fn chunked_body_split_across_many_writes_arrives_whole() {
    let server = Server::tls(|_, out: &mut dyn Write| {
        out.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?;
        out.flush()?;
        for i in 0..200u32 {
            let piece = format!("{i:04}");
            out.write_all(format!("{:x}\r\n{piece}\r\n", piece.len()).as_bytes())?;
            out.flush()?;
        }
        out.write_all(b"0\r\n\r\n")?;
        Ok(Ending::Clean)
    });
    let response =
        block_on(client().send(&HttpRequest::new(Method::Get, server.url("/")))).expect("response");
    let expected: String = (0..200u32).map(|i| format!("{i:04}")).collect();
    assert_eq!(response.body, expected.as_bytes());
}

#[test]
fn body_delimited_by_a_clean_close_arrives_whole() {
    let server = Server::tls(replies("HTTP/1.1 200 OK\r\n\r\nuntil the end"));
    let response =
        block_on(client().send(&HttpRequest::new(Method::Get, server.url("/")))).expect("response");
    assert_eq!(response.body, b"until the end");
}

#[test]
fn interim_1xx_responses_are_skipped() {
    let server = Server::tls(replies(
        "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
    ));
    let response = block_on(client().send(&HttpRequest::new(Method::Post, server.url("/"))))
        .expect("response");
    assert_eq!(response.status, 201);
    assert_eq!(response.body, b"ok");
}

#[test]
fn error_statuses_are_responses_not_errors() {
    let server = Server::tls(replies(
        "HTTP/1.1 400 Bad Request\r\nContent-Length: 25\r\n\r\n{\"error\":\"invalid_grant\"}",
    ));
    let response = block_on(client().send(&HttpRequest::new(Method::Post, server.url("/"))))
        .expect("response");
    assert_eq!(response.status, 400);
    assert_eq!(response.body, b"{\"error\":\"invalid_grant\"}");
}

#[test]
fn request_carries_method_target_headers_body_and_driver_fields() {
    let server = Server::tls(replies("HTTP/1.1 204 No Content\r\n\r\n"));
    let mut request = HttpRequest::new(Method::Post, server.url("/token?p=B2C_1_signin"));
    request.push_header("Content-Type", "application/x-www-form-urlencoded");
    request.push_header("Authorization", "Basic Y2xpZW50OnNlY3JldA==");
    request.push_header("Connection", "keep-alive"); // driver-owned: replaced
    request.push_header("Host", "evil.example"); // driver-owned: replaced
    request.body = b"grant_type=refresh_token&refresh_token=rt".to_vec();
    let response = block_on(client().send(&request)).expect("response");
    assert_eq!(response.status, 204);

    let seen = server.request();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.target, "/token?p=B2C_1_signin");
    assert_eq!(seen.body, request.body);
    assert_eq!(seen.header("content-length"), Some("41"));
    assert_eq!(
        seen.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        seen.header("authorization"),
        Some("Basic Y2xpZW50OnNlY3JldA==")
    );
    assert_eq!(seen.header("connection"), Some("close"));
    assert_eq!(
        seen.header("host"),
        Some(format!("localhost:{}", server.port()).as_str())
    );
    assert_eq!(seen.header("user-agent"), Some(DEFAULT_USER_AGENT));
    assert_eq!(
        seen.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("host"))
            .count(),
        1
    );
}

#[test]
fn request_user_agent_replaces_the_default() {
    let server = Server::tls(replies("HTTP/1.1 204 No Content\r\n\r\n"));
    let mut request = HttpRequest::new(Method::Get, server.url("/"));
    request.push_header("User-Agent", "BTicino/1.0");
    block_on(client().send(&request)).expect("response");
    let seen = server.request();
    assert_eq!(seen.header("user-agent"), Some("BTicino/1.0"));
    assert_eq!(
        seen.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("user-agent"))
            .count(),
        1
    );
}

#[test]
fn empty_post_sends_content_length_zero() {
    let server = Server::tls(replies("HTTP/1.1 204 No Content\r\n\r\n"));
    block_on(client().send(&HttpRequest::new(Method::Post, server.url("/")))).expect("response");
    assert_eq!(server.request().header("content-length"), Some("0"));
}

#[test]
fn ip_literal_urls_connect_and_verify_the_address() {
    let server = Server::tls(replies("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nv4"));
    let response = block_on(client().send(&HttpRequest::new(
        Method::Get,
        server.url_with_host("127.0.0.1", "/"),
    )))
    .expect("response");
    assert_eq!(response.body, b"v4");
}

#[test]
fn ipv6_literal_urls_connect_and_verify_the_address() {
    if !ipv6_loopback() {
        return; // no IPv6 loopback on this machine; nothing to prove here
    }
    let server = Server::tls_on(
        std::net::Ipv6Addr::LOCALHOST.into(),
        replies("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nv6"),
    )
    .expect("bind ::1");
    let response = block_on(client().send(&HttpRequest::new(
        Method::Get,
        server.url_with_host("[::1]", "/"),
    )))
    .expect("response");
    assert_eq!(response.body, b"v6");
    assert_eq!(
        server.request().header("host"),
        Some(format!("[::1]:{}", server.port()).as_str())
    );
}

#[test]
fn one_client_serves_concurrent_requests() {
    let server = Server::tls(|seen, out: &mut dyn Write| {
        let body = seen.target.as_bytes();
        write!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )?;
        out.write_all(body)?;
        Ok(Ending::Clean)
    });
    let client = client();
    std::thread::scope(|scope| {
        for i in 0..4 {
            let client = client.clone();
            let url = server.url(&format!("/n{i}"));
            scope.spawn(move || {
                let response =
                    block_on(client.send(&HttpRequest::new(Method::Get, url))).expect("response");
                assert_eq!(response.body, format!("/n{i}").as_bytes());
            });
        }
    });
}
