//! A slow, oversized, broken or malformed response ends in the right `TransportError`, in
//! bounded time and memory, and no server input makes the client panic.
//!
//! Shared cases: run on every runtime through `crate::rt`.

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use crate::rt::block_on;
use crate::rt::http::{
    HttpClient, HttpConfig, HttpRequest, Method, Roots, TransportError, TransportErrorKind,
};
use crate::support::{Ending, Server, Silent, pki, replies};

fn config() -> HttpConfig {
    let mut config = HttpConfig::default();
    config.roots = Roots::Pem(pki().ca_pem.clone().into_bytes());
    config
}

fn get(config: HttpConfig, url: String) -> Result<Vec<u8>, TransportError> {
    let client = HttpClient::new(config).expect("client");
    block_on(client.send(&HttpRequest::new(Method::Get, url))).map(|r| r.body)
}

fn expect_kind(result: Result<Vec<u8>, TransportError>, kind: TransportErrorKind) -> String {
    match result {
        Err(e) => {
            assert_eq!(e.kind, kind, "{e}");
            e.message
        }
        Ok(body) => panic!("expected {kind:?}, got a response of {} bytes", body.len()),
    }
}

#[test]
fn server_slower_than_the_read_timeout_times_out() {
    let server = Server::tls(|_, out: &mut dyn Write| {
        out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")?;
        out.flush()?;
        thread::sleep(Duration::from_secs(3));
        out.write_all(b"world")?;
        Ok(Ending::Clean)
    });
    let mut config = config();
    config.read_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let message = expect_kind(get(config, server.url("/")), TransportErrorKind::Timeout);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(message.contains("localhost"), "{message}");
}

#[test]
fn stalled_tls_handshake_times_out_within_the_connect_timeout() {
    let silent = Silent::start();
    let mut config = config();
    config.connect_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let message = expect_kind(get(config, silent.url()), TransportErrorKind::Timeout);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(message.contains("connecting"), "{message}");
}

#[test]
fn refused_connection_is_a_connect_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    }; // closed again: nobody listens there now
    expect_kind(
        get(config(), format!("https://127.0.0.1:{port}/")),
        TransportErrorKind::Connect,
    );
}

#[test]
fn unresolvable_host_is_a_dns_error() {
    // A label longer than 63 bytes cannot be put in a DNS query: the resolver fails it
    // locally, so this needs no network. (Plain http: TLS would refuse the name earlier.)
    let mut config = config();
    config.allow_plain_http = true;
    let host = format!("{}.test", "a".repeat(70));
    let message = expect_kind(
        get(config, format!("http://{host}/")),
        TransportErrorKind::Dns,
    );
    assert!(message.contains(&host), "{message}");
}

#[test]
fn declared_body_over_the_limit_is_too_large_before_it_is_read() {
    let server = Server::tls(replies(
        "HTTP/1.1 200 OK\r\nContent-Length: 1048577\r\n\r\nnot all of it",
    ));
    let mut config = config();
    config.max_body_size = 1024 * 1024;
    expect_kind(get(config, server.url("/")), TransportErrorKind::TooLarge);
}

#[test]
fn chunked_body_over_the_limit_is_too_large() {
    let server = Server::tls(|_, out: &mut dyn Write| {
        out.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?;
        let chunk = vec![b'x'; 4096];
        // 2 MiB unless the client hangs up first (it should, after 64 KiB).
        for _ in 0..512 {
            out.write_all(b"1000\r\n")?;
            out.write_all(&chunk)?;
            out.write_all(b"\r\n")?;
        }
        out.write_all(b"0\r\n\r\n")?;
        Ok(Ending::Clean)
    });
    let mut config = config();
    config.max_body_size = 64 * 1024;
    expect_kind(get(config, server.url("/")), TransportErrorKind::TooLarge);
}

#[test]
fn body_of_exactly_the_limit_is_accepted() {
    let server = Server::tls(|_, out: &mut dyn Write| {
        out.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n")?;
        out.write_all(&[b'y'; 1024])?;
        out.write_all(b"\r\n0\r\n\r\n")?;
        Ok(Ending::Clean)
    });
    let mut config = config();
    config.max_body_size = 1024;
    assert_eq!(get(config, server.url("/")).expect("response").len(), 1024);
}

#[test]
fn close_delimited_body_over_the_limit_is_too_large() {
    let server = Server::tls(|_, out: &mut dyn Write| {
        out.write_all(b"HTTP/1.1 200 OK\r\n\r\n")?;
        for _ in 0..64 {
            out.write_all(&[b'z'; 4096])?;
        }
        Ok(Ending::Clean)
    });
    let mut config = config();
    config.max_body_size = 10_000;
    expect_kind(get(config, server.url("/")), TransportErrorKind::TooLarge);
}

#[test]
fn endless_response_head_is_too_large() {
    let server = Server::tls(|_, out: &mut dyn Write| {
        out.write_all(b"HTTP/1.1 200 OK\r\n")?;
        for i in 0..20_000 {
            write!(out, "X-Filler-{i}: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n")?;
        }
        Ok(Ending::Clean)
    });
    let kind = get(config(), server.url("/")).expect_err("must fail").kind;
    // Too many fields trips httparse's field limit (Protocol) or the head size cap (TooLarge).
    assert!(
        matches!(
            kind,
            TransportErrorKind::TooLarge | TransportErrorKind::Protocol
        ),
        "{kind:?}"
    );
}

#[test]
fn endless_header_line_is_too_large() {
    let server = Server::tls(|_, out: &mut dyn Write| {
        out.write_all(b"HTTP/1.1 200 OK\r\nX-Long: ")?;
        for _ in 0..64 {
            out.write_all(&[b'a'; 4096])?;
        }
        Ok(Ending::Clean)
    });
    expect_kind(get(config(), server.url("/")), TransportErrorKind::TooLarge);
}

#[test]
fn endless_chunk_trailer_line_is_a_protocol_error() {
    let server = Server::tls(|_, out: &mut dyn Write| {
        out.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: ")?;
        for _ in 0..64 {
            out.write_all(&[b'a'; 4096])?;
        }
        Ok(Ending::Clean)
    });
    expect_kind(get(config(), server.url("/")), TransportErrorKind::Protocol);
}

#[test]
fn connection_closed_mid_body_is_an_io_error_either_way() {
    for ending in [Ending::Clean, Ending::Abrupt] {
        let server = Server::tls(move |_, out: &mut dyn Write| {
            out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")?;
            Ok(ending)
        });
        let message = expect_kind(get(config(), server.url("/")), TransportErrorKind::Io);
        assert!(message.contains("10 of 100"), "{ending:?}: {message}");
    }
}

#[test]
fn connection_closed_mid_chunked_body_is_an_io_error() {
    let server = Server::tls(replies(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
    ));
    expect_kind(get(config(), server.url("/")), TransportErrorKind::Io);
}

#[test]
fn close_delimited_body_cut_without_close_notify_is_an_io_error() {
    let server = Server::tls(|_, out: &mut dyn Write| {
        out.write_all(b"HTTP/1.1 200 OK\r\n\r\nmaybe truncated")?;
        Ok(Ending::Abrupt)
    });
    expect_kind(get(config(), server.url("/")), TransportErrorKind::Io);
}

#[test]
fn connection_closed_before_any_response_is_an_io_error() {
    let server = Server::tls(|_, _: &mut dyn Write| Ok(Ending::Clean));
    expect_kind(get(config(), server.url("/")), TransportErrorKind::Io);
}

#[test]
fn malformed_responses_are_protocol_errors() {
    let cases: [&[u8]; 8] = [
        b"SIP/2.0 200 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 099 Low\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    ];
    for raw in cases {
        let server = Server::tls(replies(raw));
        let result = get(config(), server.url("/"));
        let shown = String::from_utf8_lossy(raw).into_owned();
        let error = result.expect_err(&shown);
        assert_eq!(error.kind, TransportErrorKind::Protocol, "{shown}: {error}");
    }
}

#[test]
fn error_messages_never_echo_header_values_or_bodies() {
    let server = Server::tls(replies(
        "HTTP/1.1 302 Found\r\nLocation: https://x/cb?code=SECRET-CODE\r\nContent-Length: 9\r\n\r\nSECRET-BO",
    ));
    let mut config = config();
    config.read_timeout = Duration::from_secs(5);
    config.max_body_size = 4; // the body is over the limit: the error must not quote it
    let mut request = HttpRequest::new(Method::Post, server.url("/token?code=SECRET-Q"));
    request.push_header("Authorization", "Bearer SECRET-TOKEN");
    request.body = b"refresh_token=SECRET-RT".to_vec();
    let client = HttpClient::new(config).expect("client");
    let error = block_on(client.send(&request)).expect_err("too large");
    assert_eq!(error.kind, TransportErrorKind::TooLarge);
    assert!(
        !format!("{error} {error:?}").contains("SECRET"),
        "{error:?}"
    );

    let mut bad = HttpRequest::new(Method::Get, "https://localhost/?code=SECRET-Q&x=1");
    bad.push_header("Authorization", "Bearer SECRET\nInjected: 1");
    let error = block_on(client.send(&bad)).expect_err("invalid header value");
    assert!(
        !format!("{error} {error:?}").contains("SECRET"),
        "{error:?}"
    );
    assert!(error.message.contains("authorization"), "{error}");
}
