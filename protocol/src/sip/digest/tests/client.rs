//! Client behaviour: nc, qop, algorithm choice, stale, rejection, echoing.

use super::super::*;
use super::{param, register, rng};
use crate::time::Instant;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use alloc::{format, vec};

#[test]
fn nc_increments_on_reuse_and_resets_on_new_nonce() {
    let mut r = rng(1);
    let mut client = DigestClient::new("100", "pw");
    client
        .handle_challenges(
            ChallengeKind::Www,
            ["Digest realm=\"bt\", nonce=\"a\", qop=\"auth\""],
        )
        .unwrap();
    let mut cnonces = Vec::new();
    for expected in ["00000001", "00000002", "00000003"] {
        let auth = client.authorize(&register(), &mut r).unwrap();
        assert_eq!(param(&auth[0].value, "nc"), Some(expected));
        cnonces.push(param(&auth[0].value, "cnonce").unwrap().to_string());
    }
    assert_ne!(cnonces[0], cnonces[1], "a fresh cnonce per request");
    assert_eq!(client.sessions().next().unwrap().nonce_count, 3);
    // After pre-emptive reuse, a new nonce without stale is a normal renewal.
    let outcome = client
        .handle_challenges(
            ChallengeKind::Www,
            ["Digest realm=\"bt\", nonce=\"b\", qop=\"auth\""],
        )
        .unwrap();
    assert_eq!(outcome, ChallengeOutcome::Fresh);
    let auth = client.authorize(&register(), &mut r).unwrap();
    assert_eq!(param(&auth[0].value, "nc"), Some("00000001"));
    assert_eq!(param(&auth[0].value, "nonce"), Some("b"));
    // The same nonce challenged again: the count goes on (RFC 7616 §3.4), never back to 1.
    let _ = client.authorize(&register(), &mut r).unwrap();
    client
        .handle_challenges(
            ChallengeKind::Www,
            ["Digest realm=\"bt\", nonce=\"b\", qop=\"auth\""],
        )
        .unwrap();
    let auth = client.authorize(&register(), &mut r).unwrap();
    assert_eq!(param(&auth[0].value, "nonce"), Some("b"));
    assert_eq!(param(&auth[0].value, "nc"), Some("00000003"));
}

#[test]
fn no_qop_offered_means_no_qop_nc_or_cnonce_sent() {
    let mut r = rng(2);
    let mut client = DigestClient::new("100", "pw");
    client
        .handle_challenges(
            ChallengeKind::Www,
            ["Digest realm=\"bt\", nonce=\"a\", algorithm=MD5"],
        )
        .unwrap();
    let value = client
        .authorize(&register(), &mut r)
        .unwrap()
        .remove(0)
        .value;
    for absent in ["qop", "nc", "cnonce"] {
        assert_eq!(param(&value, absent), None, "{absent} in {value}");
    }
    let ha1 = ha1(Algorithm::Md5, "100", "bt", b"pw");
    let ha2 = {
        let mut h = Hasher::new(Algorithm::Md5);
        h.update(b"REGISTER:sip:bt.example");
        h.finish()
    };
    let mut kd = Hasher::new(Algorithm::Md5);
    kd.update(format!("{}:a:{}", ha1, ha2).as_bytes());
    assert_eq!(
        param(&value, "response"),
        Some(kd.finish().as_str()),
        "RFC 2069 form"
    );
}

#[test]
fn strongest_algorithm_is_chosen_and_ties_keep_server_order() {
    let ch = |alg: &str| format!("Digest realm=\"r\", nonce=\"n\", qop=\"auth\", algorithm={alg}");
    let cases: [(&[&str], Algorithm); 4] = [
        (&["MD5", "SHA-256", "SHA-512-256"], Algorithm::Sha512_256),
        (&["SHA-256", "MD5"], Algorithm::Sha256),
        (
            &["SHA-256-sess", "SHA-256", "MD5-sess"],
            Algorithm::Sha256Sess,
        ),
        (&["SHA-1", "MD5", "SHA-256"], Algorithm::Sha256),
    ];
    for (offered, expected) in cases {
        let values: Vec<String> = offered.iter().map(|a| ch(a)).collect();
        let mut client = DigestClient::new("u", "p");
        client
            .handle_challenges(ChallengeKind::Www, values.iter().map(String::as_str))
            .unwrap();
        assert_eq!(
            client.sessions().next().unwrap().algorithm,
            expected,
            "{offered:?}"
        );
    }
}

#[test]
fn md5_is_refused_when_configured() {
    let cfg = ClientConfig {
        allow_md5: false,
        ..ClientConfig::default()
    };
    let mut client = DigestClient::with_config("u", "p", cfg);
    let err = client
        .handle_challenges(
            ChallengeKind::Www,
            [
                "Digest realm=\"r\", nonce=\"n\", algorithm=MD5",
                "Basic realm=\"r\"",
                "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-1",
            ],
        )
        .unwrap_err();
    let ClientError::NoAcceptableChallenge { refused } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(refused[0].reason, RefusalReason::Md5NotAllowed);
    assert_eq!(refused[1].reason, RefusalReason::UnsupportedScheme);
    assert_eq!(refused[2].reason, RefusalReason::UnknownAlgorithm);
    assert_eq!(
        err.to_string(),
        "no acceptable digest challenge; offered: MD5 (MD5 refused by configuration), \
         Basic (unsupported scheme), SHA-1 (unknown algorithm)"
    );
    // With a stronger option alongside, it is simply used.
    client
        .handle_challenges(
            ChallengeKind::Www,
            [
                "Digest realm=\"r\", nonce=\"n\"",
                "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256",
            ],
        )
        .unwrap();
    assert_eq!(
        client.sessions().next().unwrap().algorithm,
        Algorithm::Sha256
    );
}

#[test]
fn missing_realm_or_nonce_is_named_in_the_error() {
    let mut client = DigestClient::new("u", "p");
    let err = client
        .handle_challenges(ChallengeKind::Www, ["Digest realm=\"r\""])
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("required parameter `nonce` is missing"),
        "{err}"
    );
    assert_eq!(
        client
            .handle_challenges(ChallengeKind::Www, [])
            .unwrap_err(),
        ClientError::NoChallenge
    );
}

#[test]
fn stale_challenge_reuses_credentials_without_failing() {
    let mut r = rng(3);
    let mut client = DigestClient::new("u", "p");
    client
        .handle_challenges(
            ChallengeKind::Www,
            ["Digest realm=\"r\", nonce=\"1\", qop=auth"],
        )
        .unwrap();
    client.authorize(&register(), &mut r).unwrap();
    let outcome = client
        .handle_challenges(
            ChallengeKind::Www,
            ["Digest realm=\"r\", nonce=\"2\", qop=auth, stale=true"],
        )
        .unwrap();
    assert_eq!(outcome, ChallengeOutcome::Stale);
    let value = client
        .authorize(&register(), &mut r)
        .unwrap()
        .remove(0)
        .value;
    assert_eq!(param(&value, "nonce"), Some("2"));
    assert_eq!(param(&value, "nc"), Some("00000001"));
}

#[test]
fn repeated_challenge_after_direct_answer_is_a_rejection() {
    let mut r = rng(4);
    let mut client = DigestClient::new("u", "wrong");
    let ch = ["Digest realm=\"r\", nonce=\"1\", qop=auth"];
    client.handle_challenges(ChallengeKind::Www, ch).unwrap();
    client.authorize(&register(), &mut r).unwrap();
    let err = client
        .handle_challenges(
            ChallengeKind::Www,
            ["Digest realm=\"r\", nonce=\"2\", qop=auth"],
        )
        .unwrap_err();
    assert_eq!(
        err,
        ClientError::Rejected {
            kind: ChallengeKind::Www,
            realm: "r".into()
        }
    );
    assert_eq!(
        client.sessions().count(),
        0,
        "bad credentials are not reused"
    );
}

#[test]
fn endless_stale_challenges_end_in_rejection() {
    let mut r = rng(5);
    let mut client = DigestClient::new("u", "p");
    client
        .handle_challenges(
            ChallengeKind::Www,
            ["Digest realm=\"r\", nonce=\"0\", qop=auth"],
        )
        .unwrap();
    let mut results = Vec::new();
    for i in 1..=3 {
        client.authorize(&register(), &mut r).unwrap();
        let v = format!("Digest realm=\"r\", nonce=\"{i}\", qop=auth, stale=true");
        results.push(
            client
                .handle_challenges(ChallengeKind::Www, [v.as_str()])
                .is_ok(),
        );
    }
    assert_eq!(results, [true, true, false]);
}

#[test]
fn sess_algorithm_keeps_its_cnonce_for_the_nonce_and_server_agrees() {
    let mut r = rng(6);
    let mut cfg = ServerConfig::new("gw");
    cfg.algorithms = vec![Algorithm::Sha256Sess];
    let mut server = DigestServer::new(cfg, &[3; 32]).unwrap();
    let now = Instant::from_secs(100);
    let mut client = DigestClient::new("u", "p");
    let chs = server.challenges(now, false, &mut r);
    client
        .handle_challenges(ChallengeKind::Www, chs.iter().map(String::as_str))
        .unwrap();
    let mut cnonces = Vec::new();
    for _ in 0..3 {
        let value = client
            .authorize(&register(), &mut r)
            .unwrap()
            .remove(0)
            .value;
        let creds = Credentials::parse(&value).unwrap();
        server
            .verify(now, &creds, &register(), "u", Secret::Password(b"p"))
            .unwrap();
        cnonces.push(creds.cnonce().unwrap().as_raw().to_string());
    }
    assert!(cnonces.iter().all(|c| *c == cnonces[0]));
}

#[test]
fn opaque_and_escaped_realm_are_echoed() {
    let mut r = rng(7);
    let mut client = DigestClient::new("u", "p");
    client
        .handle_challenges(
            ChallengeKind::Proxy,
            ["Digest realm=\"a\\\"b\", nonce=\"n\", opaque=\"o\\\\p\", qop=\"auth\""],
        )
        .unwrap();
    let auth = client.authorize(&register(), &mut r).unwrap().remove(0);
    assert_eq!(auth.kind.credentials_header(), "Proxy-Authorization");
    let c = Credentials::parse(&auth.value).unwrap();
    assert_eq!(c.realm().unescaped(), "a\"b");
    assert_eq!(c.opaque().unwrap().unescaped(), "o\\p");
    assert_eq!(client.sessions().next().unwrap().realm, "a\"b");
}

#[test]
fn one_authorization_per_realm() {
    let mut r = rng(8);
    let mut client = DigestClient::new("u", "p");
    client
        .handle_challenges(
            ChallengeKind::Proxy,
            [
                "Digest realm=\"p1\", nonce=\"n\", qop=auth",
                "Digest realm=\"p2\", nonce=\"m\", qop=auth",
            ],
        )
        .unwrap();
    client
        .handle_challenges(ChallengeKind::Www, ["Digest realm=\"reg\", nonce=\"x\""])
        .unwrap();
    let auths = client.authorize(&register(), &mut r).unwrap();
    let realms: Vec<_> = auths
        .iter()
        .map(|a| (a.kind, param(&a.value, "realm").unwrap()))
        .collect();
    assert_eq!(
        realms,
        [
            (ChallengeKind::Proxy, "p1"),
            (ChallengeKind::Proxy, "p2"),
            (ChallengeKind::Www, "reg")
        ]
    );
    let mut out = String::new();
    client
        .write_authorization(ChallengeKind::Www, "reg", &register(), &mut r, &mut out)
        .unwrap();
    assert!(out.starts_with("Digest username=\"u\", realm=\"reg\""));
    assert!(matches!(
        client.write_authorization(ChallengeKind::Www, "p1", &register(), &mut r, &mut out),
        Err(ClientError::NoSession { .. })
    ));
}

#[test]
fn debug_output_never_shows_the_password() {
    let mut client = DigestClient::new("u", "hunter2-secret");
    client
        .handle_challenges(ChallengeKind::Www, ["Digest realm=\"r\", nonce=\"n\""])
        .unwrap();
    let dbg = format!("{client:?}");
    assert!(!dbg.contains("hunter2"), "{dbg}");
    let ha1 = ha1(Algorithm::Md5, "u", "r", b"hunter2-secret");
    assert!(
        !dbg.contains(ha1.as_str()),
        "HA1 is password-equivalent: {dbg}"
    );
}

#[test]
fn unsafe_requests_and_values_are_refused() {
    let mut r = rng(9);
    let mut client = DigestClient::new("u", "p");
    client
        .handle_challenges(ChallengeKind::Www, ["Digest realm=\"r\", nonce=\"n\""])
        .unwrap();
    let bad_uri = DigestRequest::new("REGISTER", "sip:x\r\nVia: evil", b"");
    assert_eq!(
        client.authorize(&bad_uri, &mut r).unwrap_err(),
        ClientError::InvalidRequest { field: "uri" }
    );
    let bad_method = DigestRequest::new("REG ISTER", "sip:x", b"");
    assert_eq!(
        client.authorize(&bad_method, &mut r).unwrap_err(),
        ClientError::InvalidRequest { field: "method" }
    );
    let err = client
        .handle_challenges(
            ChallengeKind::Www,
            ["Digest realm=\"r\", nonce=\"a\r\n b\""],
        )
        .unwrap_err();
    assert!(
        matches!(err, ClientError::NoAcceptableChallenge { ref refused }
        if refused[0].reason == RefusalReason::UnsafeValue)
    );
}

#[test]
fn username_with_control_character_is_sent_as_extended_value() {
    let mut r = rng(10);
    let mut server = DigestServer::new(ServerConfig::new("gw"), &[4; 32]).unwrap();
    let now = Instant::from_secs(1);
    let name = "odd\u{7}name \u{e9}";
    let mut client = DigestClient::new(name, "p");
    let chs = server.challenges(now, false, &mut r);
    client
        .handle_challenges(ChallengeKind::Www, chs.iter().map(String::as_str))
        .unwrap();
    let value = client
        .authorize(&register(), &mut r)
        .unwrap()
        .remove(0)
        .value;
    assert!(
        value.contains("username*=UTF-8''odd%07name%20%C3%A9"),
        "{value}"
    );
    let creds = Credentials::parse(&value).unwrap();
    assert_eq!(creds.username(), name);
    server
        .verify(now, &creds, &register(), name, Secret::Password(b"p"))
        .unwrap();
}
