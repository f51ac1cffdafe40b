//! Certificate hot swap over real TLS on loopback: a replaced server identity serves every
//! later handshake while a connection opened before keeps working; a replaced client identity
//! is presented on the next connection (mutual TLS); a pair that does not hold together is
//! refused and the last good identity stays.
//!
//! Shared cases: run on every runtime through `crate::rt`.

use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::CertificateDer;

use crate::rt::block_on;
use crate::rt::http::Roots;
use crate::rt::tls::{
    ClientAuth, Identity, IdentityError, LiveIdentity, client_config, server_config,
};
use crate::rt::tls_io::{Conn, echo_server};

/// A certificate and its key, as PEM.
struct Pair {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("ca key")).expect("ca")
}

fn leaf(issuer: &CertifiedIssuer<'static, KeyPair>, name: &str) -> Pair {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec![name.to_owned()]).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.signed_by(&key, issuer).expect("leaf");
    Pair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
    }
}

fn identity(pair: &Pair) -> Identity {
    Identity::from_pem(pair.cert_pem.as_bytes(), pair.key_pem.as_bytes()).expect("identity")
}

/// What the echo server sends first: a fixed-length tag of the client's certificate
/// (FNV-1a 64 in hex, or dashes without one) and a newline.
fn describe(certs: Option<&[CertificateDer<'static>]>) -> String {
    match certs.and_then(|c| c.first()) {
        Some(c) => format!("{:016x}\n", fnv(c)),
        None => format!("{}\n", "-".repeat(16)),
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Connects, reads the server's line about our certificate, and checks an echo.
async fn open(config: Arc<rustls::ClientConfig>, addr: std::net::SocketAddr) -> (Conn, String) {
    let mut conn = Conn::connect(config, addr, "localhost")
        .await
        .expect("handshake");
    let who = String::from_utf8(conn.read_exact(17).await.expect("who line")).expect("ascii");
    echo(&mut conn, b"ping").await;
    (conn, who)
}

async fn echo(conn: &mut Conn, msg: &[u8]) {
    conn.write_all(msg).await.expect("write");
    assert_eq!(conn.read_exact(msg.len()).await.expect("echo"), msg);
}

/// Runs `fut` on the runtime under test, failing the test if it takes longer than 20 s
/// (every case needs well under a second; the bound turns a hang into a clear failure).
fn with_deadline<T>(fut: impl std::future::Future<Output = T>) -> T {
    block_on(async {
        let mut fut = std::pin::pin!(fut);
        let mut timer = std::pin::pin!(crate::rt::sleep(Duration::from_secs(20)));
        std::future::poll_fn(|cx| {
            if let std::task::Poll::Ready(v) = fut.as_mut().poll(cx) {
                return std::task::Poll::Ready(v);
            }
            assert!(
                timer.as_mut().poll(cx).is_pending(),
                "the TLS exchange did not finish within 20 s"
            );
            std::task::Poll::Pending
        })
        .await
    })
}

#[test]
fn a_swap_serves_new_handshakes_while_open_connections_keep_theirs() {
    let authority = ca("swap CA");
    let (first, second) = (leaf(&authority, "localhost"), leaf(&authority, "localhost"));
    let live = LiveIdentity::new(identity(&first));
    let addr = echo_server(
        server_config(&live, &ClientAuth::None, &[]).expect("server config"),
        describe,
    );
    let client = client_config(&Roots::Pem(authority.pem().into_bytes()), None, None, &[])
        .expect("client config");
    with_deadline(async {
        let (mut before, _) = open(client.clone(), addr).await;
        assert_eq!(before.server_certificate(), first.der);
        assert!(!before.resumed());
        // Resumption works while the identity stays…
        let (again, _) = open(client.clone(), addr).await;
        assert!(again.resumed(), "a second connection resumes the session");

        assert_eq!(live.replace(identity(&second)), 1);
        assert_eq!(live.generation(), 1);

        // …and a swap makes the next handshake a full one, with the new certificate.
        let (mut after, _) = open(client.clone(), addr).await;
        assert!(
            !after.resumed(),
            "no session from before the swap is resumed"
        );
        assert_eq!(
            after.server_certificate(),
            second.der,
            "new handshakes see the new one"
        );
        // The connection made before the swap goes on with its own certificate.
        echo(&mut before, b"still here").await;
        assert_eq!(before.server_certificate(), first.der);
        echo(&mut after, b"and here").await;
    });
}

#[test]
fn a_key_that_does_not_match_is_refused_and_the_last_good_identity_stays() {
    let authority = ca("mismatch CA");
    let (good, other) = (leaf(&authority, "localhost"), leaf(&authority, "localhost"));
    let live = LiveIdentity::new(identity(&good));
    let addr = echo_server(
        server_config(&live, &ClientAuth::None, &[]).expect("server config"),
        describe,
    );
    let half_written = Identity::from_pem(good.cert_pem.as_bytes(), other.key_pem.as_bytes());
    assert_eq!(half_written.unwrap_err(), IdentityError::KeyMismatch);
    assert_eq!(live.generation(), 0);
    let client = client_config(&Roots::Pem(authority.pem().into_bytes()), None, None, &[])
        .expect("client config");
    with_deadline(async {
        let (conn, _) = open(client, addr).await;
        assert_eq!(conn.server_certificate(), good.der);
    });
}

#[test]
fn unreadable_certificate_and_key_files_are_named() {
    let authority = ca("pem CA");
    let good = leaf(&authority, "localhost");
    let cases: [(&[u8], &[u8], &str); 4] = [
        (b"", good.key_pem.as_bytes(), "holds no certificate"),
        (
            good.cert_pem.as_bytes(),
            b"-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n",
            "private key PEM cannot be read",
        ),
        (
            good.cert_pem.as_bytes(),
            b"",
            "private key PEM cannot be read",
        ),
        (
            b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            good.key_pem.as_bytes(),
            "certificate",
        ),
    ];
    for (cert, key, expected) in cases {
        let err = Identity::from_pem(cert, key).expect_err("refused");
        assert!(err.to_string().contains(expected), "{err} / {expected}");
    }
    // The key never prints.
    let shown = format!("{:?}", identity(&good));
    assert!(!shown.contains("PRIVATE"), "{shown}");
}

#[test]
fn mutual_tls_presents_the_replaced_client_certificate_on_the_next_connection() {
    let servers = ca("server CA");
    let clients = ca("client CA");
    let server_pair = leaf(&servers, "localhost");
    let (first, second) = (leaf(&clients, "panel-1"), leaf(&clients, "panel-2"));
    let addr = echo_server(
        server_config(
            &LiveIdentity::new(identity(&server_pair)),
            &ClientAuth::Required {
                roots_pem: clients.pem().into_bytes(),
            },
            &[],
        )
        .expect("server config"),
        describe,
    );
    let mine = LiveIdentity::new(identity(&first));
    let client = client_config(
        &Roots::Pem(servers.pem().into_bytes()),
        None,
        Some(&mine),
        &[],
    )
    .expect("client config");
    with_deadline(async {
        let (mut before, who) = open(client.clone(), addr).await;
        assert_eq!(who, format!("{:016x}\n", fnv(&first.der)));
        let (again, who_again) = open(client.clone(), addr).await;
        assert!(again.resumed(), "a second connection resumes the session");
        assert_eq!(who_again, who);
        mine.replace(identity(&second));
        let (after, who) = open(client.clone(), addr).await;
        assert!(!after.resumed(), "the new identity needs a full handshake");
        assert_eq!(who, format!("{:016x}\n", fnv(&second.der)));
        echo(&mut before, b"old session lives on").await;
    });
}

#[test]
fn a_client_certificate_from_another_ca_is_refused() {
    let servers = ca("server CA");
    let trusted = ca("trusted client CA");
    let stranger = ca("stranger CA");
    let addr = echo_server(
        server_config(
            &LiveIdentity::new(identity(&leaf(&servers, "localhost"))),
            &ClientAuth::Required {
                roots_pem: trusted.pem().into_bytes(),
            },
            &[],
        )
        .expect("server config"),
        describe,
    );
    let foreign = LiveIdentity::new(identity(&leaf(&stranger, "intruder")));
    let with_foreign = client_config(
        &Roots::Pem(servers.pem().into_bytes()),
        None,
        Some(&foreign),
        &[],
    )
    .expect("client config");
    let without = client_config(&Roots::Pem(servers.pem().into_bytes()), None, None, &[])
        .expect("client config");
    with_deadline(async {
        for config in [with_foreign, without] {
            // TLS 1.3 finishes the client side of the handshake before the server has
            // judged the certificate: the refusal arrives as the first read's error.
            let refused = match Conn::connect(config, addr, "localhost").await {
                Err(_) => true,
                Ok(mut conn) => conn.read_exact(17).await.is_err(),
            };
            assert!(refused, "the server must refuse the client");
        }
    });
}
