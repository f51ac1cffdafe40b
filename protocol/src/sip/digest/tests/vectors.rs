//! RFC 2617 §3.5 and RFC 7616 §3.9 test vectors.

use super::super::*;
use super::{answer_with_cnonce, param};
use crate::time::Instant;
use alloc::format;
use alloc::vec;

const RFC2617_CHALLENGE: &str = "Digest\r\n realm=\"testrealm@host.com\",\r\n qop=\"auth,auth-int\",\r\n nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\",\r\n opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";

#[test]
fn rfc2617_3_5_client_response_matches_vector() {
    let mut client = DigestClient::new("Mufasa", "Circle Of Life");
    client
        .handle_challenges(ChallengeKind::Www, [RFC2617_CHALLENGE])
        .unwrap();
    let request = DigestRequest::new("GET", "/dir/index.html", b"");
    let value = answer_with_cnonce(&mut client, &request, "0a4f113b");
    assert_eq!(
        param(&value, "response"),
        Some("6629fae49393a05397450978507c4ef1")
    );
    assert_eq!(param(&value, "nc"), Some("00000001"));
    assert_eq!(param(&value, "qop"), Some("auth"));
    assert_eq!(
        param(&value, "opaque"),
        Some("5ccc069c403ebaf9f0171e9517f40e41")
    );
    assert_eq!(
        param(&value, "algorithm"),
        None,
        "not named in the challenge, not echoed"
    );
    assert_eq!(
        value,
        "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
         nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", qop=auth, \
         nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", \
         opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""
    );
}

#[test]
fn rfc2617_3_5_authorization_header_parses_and_recomputes() {
    // The header exactly as printed in RFC 2617 §3.5 (folded, qop quoted as in the original).
    let header = "Digest username=\"Mufasa\",\r\n realm=\"testrealm@host.com\",\r\n \
                  nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\",\r\n uri=\"/dir/index.html\",\r\n \
                  qop=auth,\r\n nc=00000001,\r\n cnonce=\"0a4f113b\",\r\n \
                  response=\"6629fae49393a05397450978507c4ef1\",\r\n \
                  opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
    let c = Credentials::parse(header).unwrap();
    assert_eq!(c.username(), "Mufasa");
    assert_eq!(c.nc(), Some(1));
    assert_eq!(c.qop(), Some(Qop::Auth));
    let ha1 = ha1(
        Algorithm::Md5,
        "Mufasa",
        "testrealm@host.com",
        b"Circle Of Life",
    );
    let r = compute_response(&ResponseInput {
        algorithm: Algorithm::Md5,
        ha1: &ha1,
        nonce: c.nonce().text(),
        qop: Some((Qop::Auth, c.nc_str().unwrap(), c.cnonce().unwrap().text())),
        method: "GET",
        uri: c.uri().text(),
        body: b"",
    })
    .unwrap();
    assert_eq!(r.as_str(), c.response());
}

const RFC7616_SHA256: &str = "Digest\r\n    realm=\"http-auth@example.org\",\r\n    qop=\"auth, auth-int\",\r\n    algorithm=SHA-256,\r\n    nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\",\r\n    opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";
const RFC7616_MD5: &str = "Digest\r\n    realm=\"http-auth@example.org\",\r\n    qop=\"auth, auth-int\",\r\n    algorithm=MD5,\r\n    nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\",\r\n    opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";
const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

#[test]
fn rfc7616_3_9_1_sha256_chosen_over_md5_and_matches_vector() {
    let mut client = DigestClient::new("Mufasa", "Circle of Life");
    // The server lists SHA-256 first, MD5 second (RFC 7616 §3.9.1); also try the reverse.
    for order in [[RFC7616_SHA256, RFC7616_MD5], [RFC7616_MD5, RFC7616_SHA256]] {
        client.clear();
        client.handle_challenges(ChallengeKind::Www, order).unwrap();
        let request = DigestRequest::new("GET", "/dir/index.html", b"");
        let value = answer_with_cnonce(&mut client, &request, RFC7616_CNONCE);
        assert_eq!(param(&value, "algorithm"), Some("SHA-256"));
        assert_eq!(
            param(&value, "response"),
            Some("753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1")
        );
    }
}

#[test]
fn rfc7616_3_9_1_md5_matches_vector() {
    let mut client = DigestClient::new("Mufasa", "Circle of Life");
    client
        .handle_challenges(ChallengeKind::Www, [RFC7616_MD5])
        .unwrap();
    let request = DigestRequest::new("GET", "/dir/index.html", b"");
    let value = answer_with_cnonce(&mut client, &request, RFC7616_CNONCE);
    assert_eq!(param(&value, "algorithm"), Some("MD5"));
    assert_eq!(
        param(&value, "response"),
        Some("8ca523f5e9506fed4657c9700eebdbec")
    );
}

#[test]
fn rfc7616_3_9_1_server_verifies_printed_credentials_up_to_the_nonce() {
    // The nonce is not one of ours, so a right digest comes back Stale(UnknownNonce) and a
    // wrong one BadResponse: this runs the RFC's credentials through the server path.
    let mut cfg = ServerConfig::new("http-auth@example.org");
    cfg.algorithms = vec![Algorithm::Sha256, Algorithm::Md5];
    cfg.opaque = Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS".into());
    let mut server = DigestServer::new(cfg, &[1; 32]).unwrap();
    let request = DigestRequest::new("GET", "/dir/index.html", b"");
    for (alg, response) in [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        (
            "SHA-256",
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        ),
    ] {
        let header = format!(
            "Digest username=\"Mufasa\",\r\n    realm=\"http-auth@example.org\",\r\n    \
             uri=\"/dir/index.html\",\r\n    algorithm={alg},\r\n    \
             nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\",\r\n    nc=00000001,\r\n    \
             cnonce=\"{RFC7616_CNONCE}\",\r\n    qop=auth,\r\n    response=\"{response}\",\r\n    \
             opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
        );
        let creds = Credentials::parse(&header).unwrap();
        let now = Instant::from_secs(10);
        let right = server.verify(
            now,
            &creds,
            &request,
            "Mufasa",
            Secret::Password(b"Circle of Life"),
        );
        assert_eq!(
            right,
            Err(VerifyError::Stale(StaleReason::UnknownNonce)),
            "{alg}"
        );
        let wrong = server.verify(
            now,
            &creds,
            &request,
            "Mufasa",
            Secret::Password(b"Circle Of Life"),
        );
        assert_eq!(wrong, Err(VerifyError::BadResponse), "{alg}");
    }
}

#[test]
fn rfc7616_3_9_2_userhash_example_with_independently_computed_values() {
    // RFC 7616 §3.9.2 prints username 488869477bf2… and response ae66e67d6b42…, which do not
    // reproduce from the stated inputs (erratum 4897). The values below were computed
    // independently (Python hashlib, sha512_256) from those inputs:
    // H("Jäsøn Doe:api@example.org") and the response for GET /doe.json.
    let challenge = "Digest\r\n    realm=\"api@example.org\",\r\n    qop=\"auth\",\r\n    \
                     algorithm=SHA-512-256,\r\n    \
                     nonce=\"5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK\",\r\n    \
                     opaque=\"HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS\",\r\n    \
                     charset=UTF-8,\r\n    userhash=true";
    let ch = Challenge::parse(challenge).unwrap();
    assert!(ch.userhash());
    assert_eq!(ch.charset().map(|c| c.as_raw()), Some("UTF-8"));
    assert_eq!(ch.algorithm(), Ok(Algorithm::Sha512_256));

    let username = "J\u{e4}s\u{f8}n Doe";
    assert_eq!(
        userhash(Algorithm::Sha512_256, username, "api@example.org").as_str(),
        "793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b"
    );
    let mut client = DigestClient::new(username, "Secret, or not?");
    client
        .handle_challenges(ChallengeKind::Www, [challenge])
        .unwrap();
    let request = DigestRequest::new("GET", "/doe.json", b"");
    let value = answer_with_cnonce(
        &mut client,
        &request,
        "NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v",
    );
    assert_eq!(
        param(&value, "username"),
        Some("793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b")
    );
    assert_eq!(param(&value, "userhash"), Some("true"));
    assert_eq!(
        param(&value, "response"),
        Some("3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5")
    );
}
