//! The client trusts exactly the roots it was given: an unknown CA or a certificate for
//! another name fails the handshake with a `Tls` error; bad root bundles fail at `new`.
//!
//! Shared cases: run on every runtime through `crate::rt`.

use std::net::Ipv4Addr;

use crate::rt::block_on;
use crate::rt::http::{
    ConfigError, HttpClient, HttpConfig, HttpRequest, Method, Roots, TransportErrorKind,
};
use crate::support::{Server, pki, replies};

fn ok_server() -> Server {
    Server::tls(replies("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
}

fn send(config: HttpConfig, url: String) -> Result<u16, crate::rt::http::TransportError> {
    let client = HttpClient::new(config).expect("client");
    block_on(client.send(&HttpRequest::new(Method::Get, url))).map(|r| r.status)
}

#[test]
fn certificate_from_another_ca_is_a_tls_error() {
    let server = ok_server();
    let mut config = HttpConfig::default();
    config.roots = Roots::Pem(pki().other_ca_pem.clone().into_bytes());
    let error = send(config, server.url("/")).expect_err("must not trust");
    assert_eq!(error.kind, TransportErrorKind::Tls, "{error}");
    assert!(error.message.contains("localhost"), "{error}");
}

#[test]
fn default_webpki_roots_do_not_trust_a_private_ca() {
    let server = ok_server();
    let error = send(HttpConfig::default(), server.url("/")).expect_err("must not trust");
    assert_eq!(error.kind, TransportErrorKind::Tls, "{error}");
}

#[test]
fn private_ca_added_to_webpki_roots_is_trusted() {
    let server = ok_server();
    let mut config = HttpConfig::default();
    config.extra_roots_pem = Some(pki().ca_pem.clone().into_bytes());
    assert_eq!(send(config, server.url("/")).expect("trusted"), 200);
}

#[test]
fn bundle_with_several_cas_trusts_each() {
    let server = ok_server();
    let mut config = HttpConfig::default();
    let bundle = format!("{}{}", pki().other_ca_pem, pki().ca_pem);
    config.roots = Roots::Pem(bundle.into_bytes());
    assert_eq!(send(config, server.url("/")).expect("trusted"), 200);
}

#[test]
fn certificate_for_another_name_is_a_tls_error() {
    // The leaf names localhost, 127.0.0.1 and ::1, not 127.0.0.2.
    let Some(server) = Server::tls_on(
        Ipv4Addr::new(127, 0, 0, 2).into(),
        replies("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    ) else {
        return; // 127.0.0.2 is not bindable here
    };
    let mut config = HttpConfig::default();
    config.roots = Roots::Pem(pki().ca_pem.clone().into_bytes());
    let error = send(config, server.url_with_host("127.0.0.2", "/")).expect_err("name mismatch");
    assert_eq!(error.kind, TransportErrorKind::Tls, "{error}");
}

#[test]
fn root_bundle_without_certificates_is_refused_at_construction() {
    let mut config = HttpConfig::default();
    config.roots = Roots::Pem(b"not a PEM bundle".to_vec());
    assert!(matches!(
        HttpClient::new(config),
        Err(ConfigError::Pem { field: "roots", .. })
    ));
}

#[test]
fn corrupt_certificate_in_a_bundle_is_refused_at_construction() {
    let mut config = HttpConfig::default();
    config.extra_roots_pem =
        Some(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec());
    let error = HttpClient::new(config).expect_err("corrupt");
    assert!(
        matches!(
            error,
            ConfigError::Certificate {
                field: "extra_roots_pem",
                index: 0,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn zero_limits_are_refused_at_construction() {
    let mut config = HttpConfig::default();
    config.read_timeout = std::time::Duration::ZERO;
    assert!(matches!(
        HttpClient::new(config),
        Err(ConfigError::Invalid {
            field: "read_timeout",
            ..
        })
    ));
    let mut config = HttpConfig::default();
    config.user_agent = "bad\r\nagent".to_owned();
    assert!(matches!(
        HttpClient::new(config),
        Err(ConfigError::Invalid {
            field: "user_agent",
            ..
        })
    ));
}
