//! `digest`: the client's answer to a digest challenge (qop=auth), MD5 and SHA-256, for a
//! REGISTER — what a door station computes for every request once it has been challenged.
//!
//! Each implementation runs its published per-request path, producing the header value:
//!
//! * `latchkey` — `DigestClient::write_authorization` after `handle_challenges`: HA1 is
//!   computed once per challenge and kept, so each request costs HA2 and the response hash,
//!   a fresh 128-bit cnonce from ChaCha20, the next `nc`, and the header written into a reused
//!   `String`.
//! * `latchkey+ha1` — the same plus `digest::ha1` each time: the hash count of rsip's path.
//! * `rsip` — `DigestGenerator::compute` (HA1, HA2 and response, every call; rsip keeps no
//!   per-challenge state) and the typed `Authorization` header printed, with a fixed cnonce
//!   and nc (rsip leaves both to the caller).
//! * `ezk` — ezk-sip-auth's `DigestAuthenticator::authorize_request` after `handle_rejection`:
//!   it keeps HA1 *and* HA2 and the cnonce, so each later request costs one hash (the
//!   response for the next `nc`) and printing the header into a `Headers` map.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ezk_sip_auth::{
    ClientAuthenticator, DigestAuthenticator, DigestCredentials, DigestUser, RequestParts,
    ResponseParts,
};
use ezk_sip_types::Headers;
use ezk_sip_types::msg::MessageLine;
use latchkey_benches::{Failure, checked, ezk_peer, inputs};
use latchkey_protocol::sip::digest::{self, ChallengeKind, DigestClient, DigestRequest};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const USER: &str = "owner_client";
const PASSWORD: &str = "s3cret-door-2026";
const REALM: &str = "gw.example.com";
const NONCE: &str = "5f1c3a0d9e7b4c21a8f6e2d1c0b9a8f7";
const URI: &str = "sip:gw.example.com";
const CNONCE: &str = "0a4f113b9c2d7e61";

fn challenge(algorithm: &str) -> String {
    format!(r#"Digest realm="{REALM}", nonce="{NONCE}", qop="auth", algorithm={algorithm}"#)
}

fn latchkey_client(algorithm: &str) -> Result<DigestClient, Failure> {
    let mut client = DigestClient::new(USER, PASSWORD);
    client
        .handle_challenges(ChallengeKind::Www, [challenge(algorithm).as_str()])
        .map_err(|e| Failure(e.to_string()))?;
    Ok(client)
}

fn latchkey_answer(
    client: &mut DigestClient,
    rng: &mut ChaCha20Rng,
    out: &mut String,
) -> Result<usize, Failure> {
    out.clear();
    let request = DigestRequest::new("REGISTER", URI, b"");
    client
        .write_authorization(ChallengeKind::Www, REALM, &request, rng, out)
        .map_err(|e| Failure(e.to_string()))?;
    Ok(out.len())
}

fn rsip_answer(algorithm: rsip::headers::auth::Algorithm, uri: &rsip::Uri) -> String {
    use rsip::headers::auth::{AuthQop, Scheme};
    let qop = AuthQop::Auth {
        cnonce: CNONCE.into(),
        nc: 1,
    };
    let response = rsip::services::DigestGenerator {
        username: USER,
        password: PASSWORD,
        nonce: NONCE,
        uri,
        realm: REALM,
        method: &rsip::Method::Register,
        qop: Some(&qop),
        algorithm,
    }
    .compute();
    rsip::typed::Authorization {
        scheme: Scheme::Digest,
        username: USER.into(),
        realm: REALM.into(),
        nonce: NONCE.into(),
        uri: uri.clone(),
        response,
        algorithm: Some(algorithm),
        opaque: None,
        qop: Some(qop),
    }
    .to_string()
}

fn ezk_authenticator(algorithm: &str) -> Result<DigestAuthenticator, Failure> {
    let request = ezk_peer::parse(&Bytes::from_static(inputs::REGISTER))?;
    let rejection = format!(
        "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/TLS 192.0.2.4:49152;branch=z9hG4bK776asdhds\r\n\
         From: <sip:{USER}@{REALM}>;tag=a73kszlfl\r\nTo: <sip:{USER}@{REALM}>;tag=1410948204\r\n\
         Call-ID: 1j9FpLxk3uxtm8tn@192.0.2.4\r\nCSeq: 1 REGISTER\r\n\
         WWW-Authenticate: {}\r\nContent-Length: 0\r\n\r\n",
        challenge(algorithm)
    );
    let rejection = ezk_peer::parse(&Bytes::from(rejection))?;
    let (MessageLine::Request(req_line), MessageLine::Response(status)) =
        (&request.line, &rejection.line)
    else {
        return Err(Failure("unexpected start lines".into()));
    };
    let mut credentials = DigestCredentials::new();
    credentials.set_default(DigestUser::new(USER, PASSWORD));
    let mut auth = DigestAuthenticator::new(credentials);
    auth.handle_rejection(
        RequestParts {
            line: req_line,
            headers: &request.headers,
            body: &[],
        },
        ResponseParts {
            line: status,
            headers: &rejection.headers,
            body: &[],
        },
    )
    .map_err(|e| Failure(e.to_string()))?;
    // The first call sends the answer computed in handle_rejection; measure the later ones.
    auth.authorize_request(&mut Headers::new());
    Ok(auth)
}

fn ezk_answer(auth: &mut DigestAuthenticator) -> Headers {
    let mut headers = Headers::new();
    auth.authorize_request(&mut headers);
    headers
}

fn digest_bench(c: &mut Criterion) {
    use rsip::headers::auth::Algorithm as RsipAlgorithm;
    let mut g = c.benchmark_group("digest");
    let rsip_uri = checked("digest", "rsip", "digest-uri", rsip::Uri::try_from(URI));
    for (name, token, latchkey_alg, rsip_alg) in [
        ("md5", "MD5", digest::Algorithm::Md5, RsipAlgorithm::Md5),
        (
            "sha256",
            "SHA-256",
            digest::Algorithm::Sha256,
            RsipAlgorithm::Sha256,
        ),
    ] {
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        let mut out = String::with_capacity(512);
        let client = latchkey_client(token).and_then(|mut client| {
            latchkey_answer(&mut client, &mut rng, &mut out).map(|_| client)
        });
        if let Some(mut client) = checked("digest", "latchkey", name, client) {
            g.bench_function(BenchmarkId::new("latchkey", name), |b| {
                b.iter(|| latchkey_answer(&mut client, &mut rng, &mut out));
            });
            g.bench_function(BenchmarkId::new("latchkey+ha1", name), |b| {
                b.iter(|| {
                    black_box(digest::ha1(
                        latchkey_alg,
                        USER,
                        black_box(REALM),
                        PASSWORD.as_bytes(),
                    ));
                    latchkey_answer(&mut client, &mut rng, &mut out)
                });
            });
        }
        if let Some(uri) = &rsip_uri {
            g.bench_function(BenchmarkId::new("rsip", name), |b| {
                b.iter(|| rsip_answer(rsip_alg, black_box(uri)));
            });
        }
        if let Some(mut auth) = checked("digest", "ezk", name, ezk_authenticator(token)) {
            g.bench_function(BenchmarkId::new("ezk", name), |b| {
                b.iter(|| ezk_answer(&mut auth));
            });
        }
    }
    g.finish();
}

criterion_group!(benches, digest_bench);
criterion_main!(benches);
