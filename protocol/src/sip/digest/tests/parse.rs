//! Challenge and credentials parsing.

use super::super::*;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

#[test]
fn folded_challenge_with_any_order_and_case_is_parsed() {
    let v = "DIGEST  NONCE=\"n1\",\r\n\tQop=\"auth-int , auth\" ,\r\n  realm=\"r\\\"q\\\\\", \
             Algorithm=sha-256, STALE=TRUE, domain=\"sip:a sip:b\", x-ext=tok, ,";
    let ch = Challenge::parse(v).unwrap();
    assert_eq!(ch.scheme(), "DIGEST");
    assert_eq!(ch.nonce().as_raw(), "n1");
    assert_eq!(ch.realm().as_raw(), "r\\\"q\\\\");
    assert_eq!(ch.realm().unescaped(), "r\"q\\");
    assert!(ch.realm().eq_unescaped("r\"q\\"));
    assert_eq!(ch.algorithm(), Ok(Algorithm::Sha256));
    assert!(ch.stale());
    assert!(ch.offers(Qop::Auth) && ch.offers(Qop::AuthInt));
    assert_eq!(ch.qop_options().collect::<Vec<_>>(), ["auth-int", "auth"]);
    let ext = ch.params().find(|p| p.name == "x-ext").unwrap();
    assert_eq!(ext.value.as_raw(), "tok");
    assert_eq!(ch.params().count(), 7);
}

#[test]
fn every_algorithm_token_is_recognised_case_insensitively() {
    for a in Algorithm::ALL {
        assert_eq!(Algorithm::from_token(a.as_str()), Some(a));
        assert_eq!(
            Algorithm::from_token(&a.as_str().to_ascii_lowercase()),
            Some(a)
        );
        let v = format!(
            "Digest realm=\"r\", nonce=\"n\", algorithm={}",
            a.as_str().to_uppercase()
        );
        assert_eq!(Challenge::parse(&v).unwrap().algorithm(), Ok(a));
    }
    assert_eq!(Algorithm::from_token("SHA-1"), None);
    let ch = Challenge::parse("Digest realm=\"r\", nonce=\"n\"").unwrap();
    assert_eq!(ch.algorithm(), Ok(Algorithm::Md5), "absent means MD5");
    let ch = Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=\"SHA-256\"").unwrap();
    assert_eq!(
        ch.algorithm(),
        Ok(Algorithm::Sha256),
        "quoted algorithm tolerated"
    );
}

fn parse_err(v: &str) -> (ParseErrorKind, usize) {
    let e = Challenge::parse(v).unwrap_err();
    (e.kind().clone(), e.offset())
}

#[test]
fn malformed_challenges_report_kind_and_offset() {
    use ParseErrorKind as K;
    assert_eq!(parse_err(""), (K::Empty, 0));
    assert_eq!(parse_err(" \r\n "), (K::Empty, 0));
    assert_eq!(parse_err("=x"), (K::ExpectedScheme, 0));
    assert_eq!(
        parse_err("Basic realm=\"x\""),
        (
            K::UnsupportedScheme {
                scheme: "Basic".into()
            },
            0
        )
    );
    assert_eq!(parse_err("Digest\"realm\""), (K::ExpectedWhitespace, 6));
    assert_eq!(
        parse_err("Digest realm=\"x\" nonce=\"y\""),
        (K::ExpectedComma, 17)
    );
    assert_eq!(
        parse_err("Digest realm=\"x\", nonce=y/z"),
        (K::ExpectedComma, 25)
    );
    assert_eq!(
        parse_err("Digest realm=\"x\", =y"),
        (K::ExpectedParameterName, 18)
    );
    assert_eq!(parse_err("Digest realm \"x\""), (K::ExpectedEquals, 13));
    assert_eq!(
        parse_err("Digest realm=, nonce=\"y\""),
        (K::ExpectedValue, 13)
    );
    assert_eq!(
        parse_err("Digest realm=\"x\", nonce=\"y"),
        (K::UnterminatedQuotedString, 24)
    );
    assert_eq!(
        parse_err("Digest realm=\"x, nonce=\"y"),
        (K::ExpectedComma, 24)
    );
    assert_eq!(
        parse_err("Digest realm=\"x\", nonce=\"y\", Realm=\"z\""),
        (
            K::DuplicateParameter {
                name: "Realm".into()
            },
            29
        )
    );
    assert_eq!(
        parse_err("Digest nonce=\"y\""),
        (K::MissingParameter { name: "realm" }, 16)
    );
    assert_eq!(
        parse_err("Digest realm=\"y\""),
        (K::MissingParameter { name: "nonce" }, 16)
    );
    let many: String = (0..70).map(|i| format!("p{i}=1, ")).collect();
    assert_eq!(parse_err(&format!("Digest {many}")).0, K::TooManyParameters);
    let e = Challenge::parse("Digest realm=\"x\" nonce=\"y\"").unwrap_err();
    assert_eq!(e.to_string(), "expected `,` between parameters at byte 17");
}

#[test]
fn malformed_credentials_are_rejected() {
    use ParseErrorKind as K;
    let base = "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"0a\"";
    assert!(Credentials::parse(base).is_ok());
    let kind = |v: &str| Credentials::parse(v).unwrap_err().kind().clone();
    assert_eq!(
        kind(&format!("{base}, qop=auth, nc=00000001")),
        K::MissingParameter { name: "cnonce" }
    );
    assert_eq!(
        kind(&format!("{base}, qop=auth, cnonce=\"c\"")),
        K::MissingParameter { name: "nc" }
    );
    assert_eq!(
        kind(&format!("{base}, qop=auth, cnonce=\"c\", nc=1")),
        K::InvalidValue { name: "nc" }
    );
    assert_eq!(
        kind(&format!("{base}, qop=bogus")),
        K::InvalidValue { name: "qop" }
    );
    assert_eq!(
        kind("Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"xyz\""),
        K::InvalidValue { name: "response" }
    );
    assert_eq!(
        kind(&format!("{base}, username*=UTF-8''u")),
        K::Conflicting {
            first: "username",
            second: "username*"
        }
    );
    assert_eq!(
        kind("Digest realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"0a\""),
        K::MissingParameter { name: "username" }
    );
    assert_eq!(
        kind("Digest username*=UTF-8''%ZZ, realm=\"r\", nonce=\"n\", uri=\"u\", response=\"0a\""),
        K::InvalidValue { name: "username*" }
    );
    assert_eq!(
        kind("Bearer abc"),
        K::UnsupportedScheme {
            scheme: "Bearer".into()
        }
    );
}

#[test]
fn extended_username_is_decoded() {
    let v = "Digest username*=UTF-8''J%C3%A4s%C3%B8n%20Doe, realm=\"r\", nonce=\"n\", uri=\"u\", \
             response=\"0a\"";
    let c = Credentials::parse(v).unwrap();
    assert_eq!(c.username(), "J\u{e4}s\u{f8}n Doe");
    assert_eq!(c.username_star(), Some("UTF-8''J%C3%A4s%C3%B8n%20Doe"));
    assert!(c.username_param().is_none());
}

#[test]
fn unknown_schemes_are_well_formed_when_they_follow_the_grammar() {
    // RFC 4475 §3.3.6 (regaut01): an unknown scheme must not make the message malformed.
    assert_eq!(
        check_credentials_syntax("NoOneKnowsThisScheme opaque-data=here"),
        Ok(())
    );
    assert_eq!(
        check_challenge_syntax("Basic realm=\"x\", charset=\"UTF-8\""),
        Ok(())
    );
    // ...but Challenge::parse still names the scheme it cannot answer.
    let e = Credentials::parse("NoOneKnowsThisScheme opaque-data=here").unwrap_err();
    assert_eq!(
        e.kind(),
        &ParseErrorKind::UnsupportedScheme {
            scheme: "NoOneKnowsThisScheme".into()
        }
    );
    assert_eq!(e.reason(), "unsupported authentication scheme");
    let kind = |r: Result<(), ParseError>| r.unwrap_err().kind().clone();
    assert_eq!(
        kind(check_credentials_syntax("Other")),
        ParseErrorKind::ExpectedParameterName
    );
    assert_eq!(
        kind(check_credentials_syntax("Other a=1 b")),
        ParseErrorKind::ExpectedComma
    );
    assert_eq!(
        kind(check_challenge_syntax("Digest realm=\"x\"")),
        ParseErrorKind::MissingParameter { name: "nonce" }
    );
}
