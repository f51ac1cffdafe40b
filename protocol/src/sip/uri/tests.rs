extern crate std;

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;
use crate::sip::lex::Cursor;

fn sip(s: &str) -> SipUri<'_> {
    match Uri::parse(s) {
        Ok(Uri::Sip(u)) => u,
        other => panic!("{s:?} is not a SIP URI: {other:?}"),
    }
}

fn fails(s: &str) -> (usize, UriErrorKind) {
    let e = Uri::parse(s).expect_err(s);
    (e.offset(), e.kind())
}

fn params(u: &SipUri<'_>) -> Vec<(String, Option<String>)> {
    u.params()
        .iter()
        .map(|p| (p.name.into(), p.value.map(Into::into)))
        .collect()
}

#[test]
fn scheme_is_case_insensitive_and_kept_as_written() {
    let u = Uri::parse("SIP:alice@example.com").unwrap();
    assert_eq!(u.scheme(), "SIP");
    assert!(!u.as_sip().unwrap().is_secure());
    let u = Uri::parse("sIpS:alice@example.com").unwrap();
    assert_eq!(u.scheme(), "sIpS");
    assert!(u.as_sip().unwrap().is_secure());
    assert_eq!(Uri::parse("Tel:+1234").unwrap().scheme(), "Tel");
}

#[test]
fn rfc3261_19_1_3_examples_parse_into_their_parts() {
    let u = sip("sip:alice:secretword@atlanta.com;transport=tcp");
    assert_eq!(
        (u.user(), u.password()),
        (Some("alice"), Some("secretword"))
    );
    assert_eq!(u.host(), Host::Domain("atlanta.com"));
    assert_eq!(u.transport(), Some("tcp"));

    let u = sip("sips:alice@atlanta.com?subject=project%20x&priority=urgent");
    let h: Vec<_> = u.headers().collect();
    assert_eq!(h, [("subject", "project%20x"), ("priority", "urgent")]);
    assert_eq!(unescape_to_string(h[0].1).unwrap(), "project x");

    let u = sip("sip:+1-212-555-1212:1234@gateway.com;user=phone");
    assert_eq!(
        (u.user(), u.password()),
        (Some("+1-212-555-1212"), Some("1234"))
    );
    assert_eq!(u.user_param(), Some("phone"));

    let u = sip("sip:alice@192.0.2.4");
    assert_eq!(u.host(), Host::Ipv4(Ipv4Addr::new(192, 0, 2, 4)));

    let u = sip("sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com");
    assert_eq!((u.user(), u.method()), (None, Some("REGISTER")));
    assert_eq!(u.headers().next(), Some(("to", "alice%40atlanta.com")));

    let u = sip("sip:alice;day=tuesday@atlanta.com");
    assert_eq!(u.user(), Some("alice;day=tuesday"));
    assert!(u.params().is_empty());
}

#[test]
fn password_may_be_empty() {
    let u = sip("sip:alice:@example.com");
    assert_eq!((u.user(), u.password()), (Some("alice"), Some("")));
}

#[test]
fn user_part_is_everything_before_the_first_at() {
    // `;` `?` `=` are user characters and no later part may hold `@`: the grammar allows
    // only this reading (RFC 3261 §25.1).
    let u = sip("sip:host;maddr=x?a=b@example.com");
    assert_eq!(u.user(), Some("host;maddr=x?a=b"));
    assert!(u.params().is_empty() && !u.has_headers());
    assert_eq!(fails("sip:a@b@c"), (7, UriErrorKind::Unexpected));
}

#[test]
fn rfc4475_3_1_1_9_semicolon_in_user_part_is_not_a_parameter() {
    let u = sip("sip:user;par=u%40example.net@example.com");
    assert_eq!(u.user(), Some("user;par=u%40example.net"));
    assert_eq!(
        unescape_to_string(u.user().unwrap()).unwrap(),
        "user;par=u@example.net"
    );
    assert_eq!(u.host(), Host::Domain("example.com"));
    assert!(u.params().is_empty());
}

#[test]
fn rfc4475_3_1_1_2_unusual_user_and_password_characters() {
    let u = sip(
        "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com",
    );
    assert_eq!(
        u.user(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        u.password(),
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    assert_eq!(u.host(), Host::Domain("example.com"));
}

#[test]
fn rfc4475_3_1_1_3_escapes_decode_in_user_and_parameters() {
    let u = sip("sip:sips%3Auser%40example.com@example.net");
    assert_eq!(
        unescape_to_string(u.user().unwrap()).unwrap(),
        "sips:user@example.com"
    );
    assert_eq!(u.host(), Host::Domain("example.net"));
    assert_eq!(
        unescape_to_string(sip("sip:%75se%72@example.com").user().unwrap()).unwrap(),
        "user"
    );
    let u = sip("sip:I%20have%20spaces@example.net");
    assert_eq!(
        unescape_to_string(u.user().unwrap()).unwrap(),
        "I have spaces"
    );

    let u = sip("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31");
    assert!(u.lr(), "%6C%72 is the parameter lr");
    let value = u.param("NAME").flatten().unwrap();
    assert_eq!(value, "v%61lue%25%34%31");
    assert_eq!(unescape_to_string(value).unwrap(), "value%41");
    assert_eq!(u.param("nam"), None);
}

#[test]
fn rfc4475_3_1_1_4_escaped_nul_is_legal_and_decodes_to_nul() {
    let u = sip("sip:null-%00-null@example.com");
    assert_eq!(&*unescape_bytes(u.user().unwrap()), b"null-\0-null");
    assert_eq!(
        &*unescape_bytes(sip("sip:%00@host5.example.com").user().unwrap()),
        b"\0"
    );
    assert_eq!(
        &*unescape_bytes(sip("sip:%00%00@host5.example.com").user().unwrap()),
        b"\0\0"
    );
}

#[test]
fn rfc4475_3_1_2_11_headers_parse_but_mark_an_invalid_request_uri() {
    let u = sip("sip:user@example.com?Route=%3Csip:example.com%3E");
    assert!(
        u.has_headers(),
        "the request-line check rejects a Request-URI with headers"
    );
    let (name, value) = u.headers().next().unwrap();
    assert_eq!(
        (name, unescape_to_string(value).unwrap()),
        ("Route", Cow::Borrowed("<sip:example.com>"))
    );
    assert_eq!(u.headers().as_str(), "Route=%3Csip:example.com%3E");
    assert!(!sip("sip:user@example.com").has_headers());
}

#[test]
fn convenience_parameters_are_found_and_typed() {
    let u =
        sip("sip:alice@atlanta.com;Transport=TCP;ttl=15;maddr=239.255.255.1;method=REGISTER;lr;x");
    assert_eq!(u.transport(), Some("TCP"));
    assert_eq!(u.ttl(), Some(15));
    assert_eq!(u.maddr(), Some(Host::Ipv4(Ipv4Addr::new(239, 255, 255, 1))));
    assert_eq!(u.method(), Some("REGISTER"));
    assert!(u.lr());
    assert_eq!(u.param("x"), Some(None));
    assert_eq!(params(&u).len(), 6);
    assert_eq!(
        u.params().as_str(),
        "Transport=TCP;ttl=15;maddr=239.255.255.1;method=REGISTER;lr;x"
    );
    assert!(!sip("sip:a.com").lr());
    assert_eq!(
        sip("sip:a.com;maddr=[::1]").maddr(),
        Some(Host::Ipv6(Ipv6Addr::LOCALHOST))
    );
    assert!(sip("sip:a.com;lr=on").lr());
}

#[test]
fn ttl_outside_0_to_255_or_not_1_to_3_digits_is_none() {
    for (v, want) in [
        ("0", Some(0)),
        ("015", Some(15)),
        ("255", Some(255)),
        ("%32%35%35", Some(255)),
    ] {
        assert_eq!(sip(&format!("sip:a.com;ttl={v}")).ttl(), want, "{v}");
    }
    for v in ["256", "1234", "abc", "1a"] {
        assert_eq!(sip(&format!("sip:a.com;ttl={v}")).ttl(), None, "{v}");
    }
    assert_eq!(sip("sip:a.com;ttl").ttl(), None);
    assert_eq!(sip("sip:a.com;maddr=1.2.3").maddr(), None);
}

#[test]
fn ipv4_and_ipv6_hosts_with_ports() {
    let u = sip("sip:alice@[2001:db8::1]:5061;transport=tls");
    assert_eq!(u.host(), Host::Ipv6("2001:db8::1".parse().unwrap()));
    assert_eq!((u.host_str(), u.port()), ("[2001:db8::1]", Some(5061)));
    let u = sip("sips:[::ffff:192.0.2.1]");
    assert_eq!(
        u.host(),
        Host::Ipv6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped())
    );
    let u = sip("sip:01.002.3.4:0");
    assert_eq!(
        (u.host(), u.port()),
        (Host::Ipv4(Ipv4Addr::new(1, 2, 3, 4)), Some(0))
    );
    assert_eq!(sip("sip:h.com:65535").port(), Some(65535));
    assert_eq!(sip("sip:h.com:00080").port(), Some(80));
}

#[test]
fn bad_ip_literals_fail_at_the_host() {
    assert_eq!(fails("sip:[2001:db8::1"), (16, UriErrorKind::Host));
    assert_eq!(fails("sip:[2001:db8::g]"), (15, UriErrorKind::Host));
    assert_eq!(fails("sip:[1:2:3]"), (5, UriErrorKind::Host));
    assert_eq!(fails("sip:[]"), (5, UriErrorKind::Host));
    assert_eq!(fails("sip:2001:db8::1"), (4, UriErrorKind::Host));
    assert_eq!(fails("sip:1.2.3"), (4, UriErrorKind::Host));
    assert_eq!(fails("sip:1.2.3.256"), (4, UriErrorKind::Host));
    assert_eq!(fails("sip:1.2.3.4.5"), (4, UriErrorKind::Host));
    assert_eq!(fails("sip:1.2.3.4."), (4, UriErrorKind::Host));
}

#[test]
fn hostnames_follow_the_label_rules() {
    for ok in [
        "a",
        "example.com",
        "example.com.",
        "1a.b-c.d9",
        "EXAMPLE.Com",
        "x--y.z",
    ] {
        assert_eq!(sip(&format!("sip:{ok}")).host(), Host::Domain(ok), "{ok}");
    }
    assert_eq!(fails("sip:-a.com"), (4, UriErrorKind::Host));
    assert_eq!(fails("sip:a-.com"), (4, UriErrorKind::Host));
    assert_eq!(fails("sip:a..com"), (6, UriErrorKind::Host));
    assert_eq!(fails("sip:.com"), (4, UriErrorKind::Host));
    assert_eq!(fails("sip:example.com.."), (16, UriErrorKind::Host));
    assert_eq!(
        fails("sip:example.123"),
        (12, UriErrorKind::Host),
        "top label starts with a letter"
    );
    assert_eq!(fails("sip:exa_mple.com"), (7, UriErrorKind::Unexpected));
    assert_eq!(fails("sip:user@"), (9, UriErrorKind::Host));
    assert_eq!(fails("sip:"), (4, UriErrorKind::Host));
}

#[test]
fn ports_are_1_to_5_digits_up_to_65535() {
    assert_eq!(fails("sip:h.com:"), (10, UriErrorKind::Port));
    assert_eq!(fails("sip:h.com:65536"), (10, UriErrorKind::Port));
    assert_eq!(fails("sip:h.com:123456"), (10, UriErrorKind::Port));
    assert_eq!(
        fails("sip:h.com:99999999999999999999999"),
        (10, UriErrorKind::Port)
    );
    assert_eq!(fails("sip:h.com:x"), (10, UriErrorKind::Port));
}

#[test]
fn invalid_escapes_fail_at_the_percent_sign() {
    assert_eq!(fails("sip:alice%20%G1@host"), (12, UriErrorKind::Escape));
    assert_eq!(fails("sip:user%4@host"), (8, UriErrorKind::Escape));
    assert_eq!(fails("sip:user:p%@host"), (10, UriErrorKind::Escape));
    assert_eq!(fails("sip:host;p=%"), (11, UriErrorKind::Escape));
    assert_eq!(fails("sip:host;p=%4"), (11, UriErrorKind::Escape));
    assert_eq!(fails("sip:host?h=v%z0"), (12, UriErrorKind::Escape));
    assert_eq!(
        fails("sip:a%41b.com"),
        (5, UriErrorKind::Unexpected),
        "hosts have no escapes"
    );
}

#[test]
fn characters_outside_the_grammar_fail_with_their_offset() {
    assert_eq!(fails("sip:us er@host"), (6, UriErrorKind::User));
    assert_eq!(fails("sip:us<er@host"), (6, UriErrorKind::User));
    assert_eq!(fails("sip:us\u{e9}r@host"), (6, UriErrorKind::User));
    assert_eq!(fails("sip:@host"), (4, UriErrorKind::User));
    assert_eq!(fails("sip::pw@host"), (4, UriErrorKind::User));
    assert_eq!(fails("sip:user:pa ss@host"), (11, UriErrorKind::Password));
    assert_eq!(fails("sip:user:a:b@host"), (10, UriErrorKind::Password));
    assert_eq!(
        fails("sip:user@exa mple.com"),
        (12, UriErrorKind::Unexpected)
    );
    assert_eq!(fails("sip:user@host>"), (13, UriErrorKind::Unexpected));
    assert_eq!(fails("sip:user@host;p=\"x\""), (14, UriErrorKind::Param));
    assert_eq!(fails("sip:user@host?h=a b"), (17, UriErrorKind::Unexpected));
    assert_eq!(fails("sip:host#frag"), (8, UriErrorKind::Unexpected));
}

#[test]
fn empty_or_malformed_parameters_and_headers_fail() {
    assert_eq!(fails("sip:host;"), (9, UriErrorKind::Param));
    assert_eq!(fails("sip:host;=v"), (9, UriErrorKind::Param));
    assert_eq!(fails("sip:host;a="), (9, UriErrorKind::Param));
    assert_eq!(fails("sip:host;a;;b"), (11, UriErrorKind::Param));
    assert_eq!(
        fails("sip:host;a?b"),
        (11, UriErrorKind::Header),
        "? is not a paramchar: headers start"
    );
    assert_eq!(fails("sip:host?"), (9, UriErrorKind::Header));
    assert_eq!(fails("sip:host?a"), (9, UriErrorKind::Header));
    assert_eq!(fails("sip:host?=1"), (9, UriErrorKind::Header));
    assert_eq!(fails("sip:host?a=1&"), (13, UriErrorKind::Header));
    assert_eq!(fails("sip:host?a=1=2"), (12, UriErrorKind::Unexpected));
    let u = sip("sip:host?a=&b=[x]/?:+$");
    assert_eq!(
        u.headers().collect::<Vec<_>>(),
        [("a", ""), ("b", "[x]/?:+$")]
    );
    let u = sip("sip:host;p=[x]/:&+$;q");
    assert_eq!(
        params(&u),
        [("p".into(), Some("[x]/:&+$".into())), ("q".into(), None)]
    );
}

#[test]
fn unknown_schemes_are_other_and_checked_for_uric() {
    // RFC 4475 §3.3.2 (unkscm), §3.3.3 (novelsc), §3.3.4 (unksm2).
    for (s, scheme, rest) in [
        (
            "nobodyKnowsThisScheme:totallyopaquecontent",
            "nobodyKnowsThisScheme",
            "totallyopaquecontent",
        ),
        (
            "soap.beep://192.0.2.103:3002",
            "soap.beep",
            "//192.0.2.103:3002",
        ),
        ("isbn:2983792873", "isbn", "2983792873"),
        ("http://www.example.com", "http", "//www.example.com"),
        ("name:John_Smith", "name", "John_Smith"),
        ("mailto:a%20b@example.com", "mailto", "a%20b@example.com"),
    ] {
        let u = Uri::parse(s).unwrap();
        assert!(
            matches!(u, Uri::Other { scheme: sc, rest: r, .. } if sc == scheme && r == rest),
            "{s}"
        );
        assert_eq!((u.scheme(), u.as_str(), u.as_sip()), (scheme, s, None));
    }
    assert_eq!(fails("foo:"), (4, UriErrorKind::Opaque));
    assert_eq!(fails("foo:a b"), (5, UriErrorKind::Opaque));
    assert_eq!(fails("foo:%zz"), (4, UriErrorKind::Escape));
}

#[test]
fn missing_or_malformed_schemes_fail_at_the_start() {
    assert_eq!(fails(""), (0, UriErrorKind::Scheme));
    assert_eq!(fails("sip"), (3, UriErrorKind::Scheme));
    assert_eq!(fails("1sip:x"), (0, UriErrorKind::Scheme));
    assert_eq!(fails(":x"), (0, UriErrorKind::Scheme));
    assert_eq!(fails("s p:x"), (1, UriErrorKind::Scheme));
    assert_eq!(
        SipUri::parse("tel:+1").unwrap_err().kind(),
        UriErrorKind::Scheme
    );
    assert_eq!(
        TelUri::parse("sip:a").unwrap_err().kind(),
        UriErrorKind::Scheme
    );
}

#[test]
fn tel_uris_follow_rfc3966() {
    let t = TelUri::parse("tel:+1-201-555-0123").unwrap();
    assert!(t.is_global());
    assert_eq!(t.number(), "+1-201-555-0123");
    assert_eq!(t.digits().collect::<Vec<u8>>(), b"+12015550123");
    assert!(t.params().is_empty());

    let t = TelUri::parse("TEL:+1-201-555-0123;ext=1234;isub=8f0a").unwrap();
    assert_eq!(t.params().get("EXT"), Some(Some("1234")));
    let t = TelUri::parse("tel:7042;phone-context=example.com").unwrap();
    assert!(!t.is_global());
    assert_eq!(
        (t.number(), t.phone_context()),
        ("7042", Some("example.com"))
    );
    let t = TelUri::parse("tel:863-1234;phone-context=+1-914-555").unwrap();
    assert_eq!(t.phone_context(), Some("+1-914-555"));
    let t = TelUri::parse("tel:*21%23;phone-context=example.com").unwrap();
    assert_eq!(t.digits().collect::<Vec<u8>>(), b"*21#");
    assert!(TelUri::parse("tel:*21#;phone-context=example.com").is_ok());
    assert_eq!(
        Uri::parse("tel:+1").unwrap().as_tel().map(TelUri::raw),
        Some("tel:+1")
    );
}

#[test]
fn bad_tel_uris_fail_with_their_offset() {
    assert_eq!(fails("tel:7042"), (4, UriErrorKind::MissingPhoneContext));
    assert_eq!(fails("tel:"), (4, UriErrorKind::TelNumber));
    assert_eq!(fails("tel:+"), (4, UriErrorKind::TelNumber));
    assert_eq!(fails("tel:+-()"), (4, UriErrorKind::TelNumber));
    assert_eq!(fails("tel:+1+2"), (4, UriErrorKind::TelNumber));
    assert_eq!(fails("tel:+1 2"), (6, UriErrorKind::TelNumber));
    assert_eq!(
        fails("tel:12g4;phone-context=x.com"),
        (6, UriErrorKind::TelNumber)
    );
    assert_eq!(
        fails("tel:%41;phone-context=x.com"),
        (4, UriErrorKind::TelNumber)
    );
    assert_eq!(fails("tel:+1;ext=12a"), (7, UriErrorKind::Param));
    assert_eq!(
        fails("tel:123;phone-context=-bad"),
        (8, UriErrorKind::Param)
    );
    assert_eq!(fails("tel:123;phone-context"), (8, UriErrorKind::Param));
    assert_eq!(fails("tel:+1;a="), (7, UriErrorKind::Param));
    assert_eq!(fails("tel:+1;;"), (7, UriErrorKind::Param));
    assert_eq!(fails("tel:+1;a_b=1"), (8, UriErrorKind::Unexpected));
    assert_eq!(fails("tel:+1?x=1"), (6, UriErrorKind::TelNumber));
}

/// Every URI in the RFC 4475 messages (Request-URIs and the addresses in To, From, Contact,
/// Route and Record-Route), by section. The faults of §3.1.2 lie elsewhere than in these URIs.
const RFC4475_URIS: &[(&str, &str)] = &[
    ("3.1.1.1", "sip:vivekg@chair-dnrc.example.com;unknownparam"),
    ("3.1.1.1", "sip:vivekg@chair-dnrc.example.com"),
    ("3.1.1.1", "sip:jdrosen@example.com"),
    (
        "3.1.1.1",
        "sip:services.example.com;lr;unknownwith=value;unknown-no-value",
    ),
    (
        "3.1.1.2",
        "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com",
    ),
    ("3.1.1.2", "sip:mundane@example.com"),
    ("3.1.1.3", "sip:sips%3Auser%40example.com@example.net"),
    ("3.1.1.3", "sip:%75se%72@example.com"),
    ("3.1.1.3", "sip:I%20have%20spaces@example.net"),
    (
        "3.1.1.3",
        "sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31",
    ),
    ("3.1.1.4", "sip:example.com"),
    ("3.1.1.4", "sip:null-%00-null@example.com"),
    ("3.1.1.4", "sip:%00@host5.example.com"),
    ("3.1.1.4", "sip:%00%00@host5.example.com"),
    ("3.1.1.5", "sip:registrar.example.com"),
    ("3.1.1.5", "sip:resource@example.com"),
    ("3.1.1.5", "sip:alias1@host1.example.com"),
    ("3.1.1.6", "sip:caller@example.com"),
    ("3.1.1.8", "sip:j.user@host.example.com"),
    ("3.1.1.9", "sip:user;par=u%40example.net@example.com"),
    ("3.1.1.9", "sip:j_user@example.com"),
    ("3.1.1.11", "sip:127.0.0.1:5080"),
    ("3.1.1.11", "sip:fluffy@127.0.0.1:5070"),
    ("3.1.1.11", "sip:kumiko@example.org"),
    ("3.1.1.12", "sip:user@host198.example.com"),
    ("3.1.1.13", "sip:user@example.edu"),
    ("3.1.2.1", "sip:joe@example.org"),
    ("3.1.2.2", "sip:caller@hungry.example.net"),
    ("3.1.2.3", "sip:caller@example53.example.net"),
    ("3.1.2.6", "sip:j.user@example.com"),
    ("3.1.2.10", "sip:remote-target@example.com"),
    (
        "3.1.2.11",
        "sip:user@example.com?Route=%3Csip:example.com%3E",
    ),
    (
        "3.1.2.13",
        "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
    ),
    ("3.1.2.14", "sip:t.watson@example.org"),
    ("3.1.2.15", "sip:a.g.bell@example.com"),
    ("3.1.2.19", "sip:user@host105.example.com"),
    ("3.2.1", "sip:caller@example.org"),
    ("3.3.2", "nobodyKnowsThisScheme:totallyopaquecontent"),
    ("3.3.3", "soap.beep://192.0.2.103:3002"),
    ("3.3.4", "isbn:2983792873"),
    ("3.3.4", "http://www.example.com"),
    ("3.3.4", "name:John_Smith"),
    ("3.3.10", "sip:user@host28.example.com"),
    ("3.3.12", "sip:+19725552222@gw1.example.net;unknownparam"),
    (
        "3.3.14",
        "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
    ),
    ("3.4.1", "sip:UserB@example.com"),
    (
        "3.4.1",
        "sip:+13035551111@ift.client.example.net;user=phone",
    ),
    ("3.4.1", "sip:UserB@example.com;maddr=ss1.example.com"),
    ("3.4.1", "sip:+16505552222@ss1.example.net;user=phone"),
];

#[test]
fn rfc4475_every_uri_in_the_messages_parses() {
    for (section, s) in RFC4475_URIS {
        let u = Uri::parse(s).unwrap_or_else(|e| panic!("RFC 4475 §{section}: {s}: {e}"));
        assert_eq!(u.as_str(), *s);
    }
}

#[test]
fn rfc4475_3_1_1_7_long_values_parse() {
    let to = format!(
        "sip:user@example.com:6000;unknownparam1=very{}value;longparam{}=shortvalue;very{}ParameterNameWithNoValue",
        "long".repeat(20),
        "name".repeat(25),
        "long".repeat(25)
    );
    let u = sip(&to);
    assert_eq!(u.port(), Some(6000));
    assert_eq!(params(&u).len(), 3);
    let name = "amazinglylongcallername".repeat(5);
    assert_eq!(sip(&format!("sip:{name}@example.net")).user(), Some(&*name));
    assert_eq!(
        sip(&format!("sip:{name}@host5.example.net")).user(),
        Some(&*name)
    );
}

#[test]
fn rfc4475_3_4_1_rfc2543_style_user_and_maddr_parameters() {
    let u = sip("sip:+13035551111@ift.client.example.net;user=phone");
    assert_eq!(u.user_param(), Some("phone"));
    let u = sip("sip:UserB@example.com;maddr=ss1.example.com");
    assert_eq!(u.maddr(), Some(Host::Domain("ss1.example.com")));
}

#[test]
fn rfc4475_3_1_2_7_angle_brackets_are_not_part_of_a_uri() {
    assert_eq!(fails("<sip:user@example.com>"), (0, UriErrorKind::Scheme));
}

#[test]
fn rfc4475_3_1_2_8_lws_inside_a_request_uri_fails() {
    // Split on SP the request line yields `sip:user@example.com;`; whole, the URI has LWS.
    assert_eq!(fails("sip:user@example.com; lr"), (21, UriErrorKind::Param));
    assert_eq!(fails("sip:user@example.com;"), (21, UriErrorKind::Param));
}

#[test]
fn rfc4475_3_1_2_14_spaces_around_an_addr_spec_are_not_part_of_the_uri() {
    assert_eq!(
        fails(" sip:t.watson@example.org "),
        (0, UriErrorKind::Scheme)
    );
    assert_eq!(
        fails("sip:t.watson@example.org "),
        (24, UriErrorKind::Unexpected)
    );
}

#[test]
fn error_display_names_offset_and_fault() {
    let e = Uri::parse("sip:alice%20%G1@host").unwrap_err();
    assert_eq!(e.to_string(), "bad URI at byte 12: invalid escape sequence");
    let e = Uri::parse("sip:user@example.com; lr").unwrap_err();
    assert_eq!(e.to_string(), "bad URI at byte 21: invalid URI parameter");
    assert_eq!(
        (e.reason(), e.kind().to_string()),
        ("invalid URI parameter", e.kind().as_str().into())
    );
}

#[test]
fn display_writes_the_uri_as_written() {
    for s in ["sip:a@b.com;lr", "TEL:+1", "x:y"] {
        assert_eq!(Uri::parse(s).unwrap().to_string(), s);
    }
    assert_eq!(Host::Ipv6(Ipv6Addr::LOCALHOST).to_string(), "[::1]");
    assert_eq!(
        Host::Ipv4(Ipv4Addr::new(10, 0, 0, 1)).to_string(),
        "10.0.0.1"
    );
    assert_eq!(Host::Domain("Example.COM").to_string(), "Example.COM");
}

#[test]
fn host_parse_takes_exactly_one_host() {
    assert_eq!(
        Host::parse("[2001:db8::1]").unwrap(),
        Host::Ipv6("2001:db8::1".parse().unwrap())
    );
    assert_eq!(
        Host::parse("192.0.2.1").unwrap(),
        Host::Ipv4(Ipv4Addr::new(192, 0, 2, 1))
    );
    assert!(Host::parse("example.com").is_ok_and(|h| !h.is_ip()));
    assert_eq!(Host::parse("2001:db8::1").unwrap_err().offset(), 0);
    assert_eq!(
        Host::parse("a.com:5060").unwrap_err(),
        UriError::new(5, UriErrorKind::Unexpected)
    );
    assert_eq!(
        Host::parse("").unwrap_err(),
        UriError::new(0, UriErrorKind::Host)
    );
}

#[test]
fn host_port_reads_a_via_sent_by_and_stops_before_parameters() {
    let mut c = Cursor::new("host4.example.com:5060;branch=z9hG4bK");
    assert_eq!(
        parse_host_port(&mut c),
        Ok((Host::Domain("host4.example.com"), Some(5060)))
    );
    assert_eq!(c.rest(), ";branch=z9hG4bK");
    let mut c = Cursor::new("192.0.2.1;branch=x");
    assert_eq!(
        parse_host_port(&mut c),
        Ok((Host::Ipv4(Ipv4Addr::new(192, 0, 2, 1)), None))
    );
    let mut c = Cursor::new("[2001:db8::1]:5061");
    assert_eq!(
        parse_host_port(&mut c),
        Ok((Host::Ipv6("2001:db8::1".parse().unwrap()), Some(5061)))
    );
    assert!(c.is_empty());
    // COLON = SWS ":" SWS (RFC 3261 §25.1)
    let mut c = Cursor::new("c.example.com : 5060 ;x");
    assert_eq!(
        parse_host_port(&mut c),
        Ok((Host::Domain("c.example.com"), Some(5060)))
    );
    assert_eq!(c.rest(), " ;x");
    let mut c = Cursor::new("host ;x");
    assert_eq!(parse_host_port(&mut c), Ok((Host::Domain("host"), None)));
    assert_eq!(c.pos(), 4);
    assert_eq!(parse_host_port(&mut Cursor::new("host:99999")), Err(5));
    assert_eq!(parse_host_port(&mut Cursor::new("_x")), Err(0));
    assert_eq!(parse_host_port(&mut Cursor::new("a..b")), Err(2));
}

#[test]
fn unescape_decodes_valid_escapes_and_passes_others_through() {
    assert_eq!(unescape("%41%62c").collect::<Vec<u8>>(), b"Abc");
    for s in ["%", "%4", "%zz", "a%", "%%41"] {
        let want: &[u8] = if s == "%%41" { b"%A" } else { s.as_bytes() };
        assert_eq!(unescape(s).collect::<Vec<u8>>(), want, "{s}");
    }
    assert!(matches!(
        unescape_to_string("abc"),
        Ok(Cow::Borrowed("abc"))
    ));
    assert!(matches!(unescape_bytes("abc"), Cow::Borrowed(b"abc")));
    assert_eq!(unescape_to_string("%FF").unwrap_err().into_bytes(), [0xFF]);
    assert_eq!(unescape_to_string("%C3%A9").unwrap(), "\u{e9}");
}

#[derive(Debug, Clone)]
enum GenHost {
    Domain(String),
    V4([u8; 4]),
    V6([u16; 8], bool),
}

fn gen_host() -> impl Strategy<Value = GenHost> {
    prop_oneof![
        "([a-z0-9]([a-z0-9-]{0,4}[a-z0-9])?\\.){0,3}[a-zA-Z]([a-zA-Z0-9-]{0,4}[a-zA-Z0-9])?\\.?"
            .prop_map(GenHost::Domain),
        any::<[u8; 4]>().prop_map(GenHost::V4),
        (any::<[u16; 8]>(), any::<bool>()).prop_map(|(s, full)| GenHost::V6(s, full)),
    ]
}

const PARAMCHARS: &str = "([A-Za-z0-9_.!~*'()\\[\\]/:&+$-]|%[0-9A-Fa-f]{2})";
const HNVCHARS: &str = "([A-Za-z0-9_.!~*'()\\[\\]/?:+$-]|%[0-9A-Fa-f]{2})";

type Generated = (bool, Option<(String, Option<String>)>, GenHost, Option<u16>);
type Extras = (Vec<(String, Option<String>)>, Vec<(String, String)>);

fn gen_uri() -> impl Strategy<Value = (Generated, Extras)> {
    let user = "([A-Za-z0-9_.!~*'()&=+$,;?/-]|%[0-9A-Fa-f]{2}){1,10}";
    let password = "([A-Za-z0-9_.!~*'()&=+$,-]|%[0-9A-Fa-f]{2}){0,8}";
    let userinfo = proptest::option::of((user, proptest::option::of(password)));
    let re = |r: String| proptest::string::string_regex(&r).expect("valid regex");
    let param = (
        re(format!("{PARAMCHARS}{{1,8}}")),
        proptest::option::of(re(format!("{PARAMCHARS}{{1,8}}"))),
    );
    let header = (
        re(format!("{HNVCHARS}{{1,8}}")),
        re(format!("{HNVCHARS}{{0,8}}")),
    );
    (
        (any::<bool>(), userinfo, gen_host(), any::<Option<u16>>()),
        (
            proptest::collection::vec(param, 0..4),
            proptest::collection::vec(header, 0..3),
        ),
    )
}

proptest! {
    #[test]
    fn parse_never_panics_and_errors_point_inside_the_input(s in any::<String>()) {
        match Uri::parse(&s) {
            Ok(u) => prop_assert_eq!(u.as_str(), &*s),
            Err(e) => prop_assert!(e.offset() <= s.len()),
        }
        let _ = unescape_bytes(&s);
    }

    #[test]
    fn parse_never_panics_on_uri_like_text(
        s in "(sips?|SIP|tel|x):[a-zA-Z0-9@:;=?&%\\[\\]. <>+#*()\u{e9}-]{0,40}",
    ) {
        if let Ok(u) = Uri::parse(&s) {
            prop_assert_eq!(u.to_string(), s.clone());
            if let Uri::Sip(u) = u {
                let _ = (u.ttl(), u.maddr(), u.lr(), u.headers().count(), u.params().iter().count());
            }
        }
        let mut c = Cursor::new(&s);
        if let Err(at) = parse_host_port(&mut c) { prop_assert!(at <= s.len()); }
    }

    #[test]
    fn generated_sip_uris_parse_back_into_their_parts(
        ((secure, userinfo, host, port), (params_gen, headers_gen)) in gen_uri(),
    ) {
        let mut s = String::from(if secure { "sips:" } else { "sip:" });
        if let Some((user, password)) = &userinfo {
            s += user;
            if let Some(p) = password { s += ":"; s += p; }
            s += "@";
        }
        let (want_host, host_text) = match &host {
            GenHost::Domain(d) => (None, d.clone()),
            GenHost::V4(o) => (Some(Host::Ipv4(Ipv4Addr::from(*o))), Ipv4Addr::from(*o).to_string()),
            GenHost::V6(seg, full) => {
                let a = Ipv6Addr::from(*seg);
                let text = if *full {
                    let parts: Vec<String> = seg.iter().map(|x| format!("{x:X}")).collect();
                    format!("[{}]", parts.join(":"))
                } else {
                    format!("[{a}]")
                };
                (Some(Host::Ipv6(a)), text)
            }
        };
        s += &host_text;
        if let Some(p) = port { s += &format!(":{p}"); }
        for (n, v) in &params_gen {
            s += ";"; s += n;
            if let Some(v) = v { s += "="; s += v; }
        }
        for (i, (n, v)) in headers_gen.iter().enumerate() {
            s += if i == 0 { "?" } else { "&" };
            s += n; s += "="; s += v;
        }

        let u = sip(&s);
        prop_assert_eq!(u.is_secure(), secure);
        prop_assert_eq!(u.user(), userinfo.as_ref().map(|(u, _)| u.as_str()));
        prop_assert_eq!(u.password(), userinfo.as_ref().and_then(|(_, p)| p.as_deref()));
        prop_assert_eq!(u.host(), want_host.unwrap_or(Host::Domain(&host_text)));
        prop_assert_eq!(u.host_str(), &*host_text);
        prop_assert_eq!(u.port(), port);
        prop_assert_eq!(params(&u), params_gen);
        let headers: Vec<(String, String)> = u.headers().map(|(n, v)| (n.into(), v.into())).collect();
        prop_assert_eq!(headers, headers_gen);
    }
}

proptest! {
    /// The one-pass host scan finds the same first bad label as the label rules checked on
    /// their own (`hostname_fault`), on any run of host-name bytes.
    #[test]
    fn host_scan_finds_the_same_bad_label_as_the_label_rules(s in "[a-zA-Z0-9.-]{1,24}") {
        let digits_only = s.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        let got = Host::parse(&s);
        if digits_only {
            let want = host::ipv4(&s)
                .map(Host::Ipv4)
                .ok_or(UriError::new(0, UriErrorKind::Host));
            prop_assert_eq!(got, want);
        } else {
            match host::hostname_fault(&s) {
                None => prop_assert_eq!(got, Ok(Host::Domain(&s))),
                Some(at) => prop_assert_eq!(got, Err(UriError::new(at, UriErrorKind::Host))),
            }
        }
    }

    /// One pass over a component checks escapes where they are met: the run and the first bad
    /// `%` are what a scan of the run followed by a check of each `%` in it finds.
    #[test]
    fn component_escapes_are_checked_where_they_are_met(s in "[a-c%0-9fgA-F;@]{0,16}") {
        let mut c = Cursor::new(&s);
        let got = component(&mut c, is_user);
        let run_len = s
            .bytes()
            .position(|b| !(is_user(b) || b == b'%'))
            .unwrap_or(s.len());
        let run = &s[..run_len];
        let bad = run.bytes().enumerate().find(|&(i, b)| {
            b == b'%'
                && !(run.as_bytes().get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && run.as_bytes().get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        });
        match bad {
            Some((i, _)) => prop_assert_eq!(got, Err(UriError::new(i, UriErrorKind::Escape))),
            None => {
                prop_assert_eq!(got, Ok(run));
                prop_assert_eq!(c.pos(), run_len);
            }
        }
    }
}

#[test]
fn host_labels_are_checked_in_the_one_pass_scan() {
    for (s, fault) in [
        ("a.b.", None),
        ("a.", None),
        ("gw.example.com", None),
        (".", Some(0)),
        ("a..b", Some(2)),
        ("a.b..", Some(4)),
        ("-a.b", Some(0)),
        ("a-.b", Some(0)),
        ("a.b-", Some(2)),
        ("a.1b", Some(2)),
        ("1.2.3.x-", Some(6)),
    ] {
        assert_eq!(host::hostname_fault(s), fault, "{s}");
        match fault {
            None => assert_eq!(Host::parse(s), Ok(Host::Domain(s)), "{s}"),
            Some(at) => assert_eq!(
                Host::parse(s),
                Err(UriError::new(at, UriErrorKind::Host)),
                "{s}"
            ),
        }
    }
}

proptest! {
    /// The dotted-quad fast path of the host scan returns what the general scan returns: the
    /// host is the whole run of host-name bytes, an IPv4 address only when that run is digits
    /// and dots alone.
    #[test]
    fn dotted_quad_fast_path_agrees_with_the_general_host_scan(
        ip in "[0-9]{1,4}(\\.[0-9]{1,4}){0,4}",
        suffix in "(|a|-|\\.|\\.b|:1|;x| )",
    ) {
        let s = format!("{ip}{suffix}");
        let run = s
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
            .unwrap_or(s.len());
        let name = &s[..run];
        let want = if name.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            host::ipv4(name).map(Host::Ipv4).ok_or(0)
        } else {
            match host::hostname_fault(name) {
                None => Ok(Host::Domain(name)),
                Some(at) => Err(at),
            }
        };
        let mut c = Cursor::new(&s);
        let got = parse_host_port(&mut c).map(|(h, _)| h);
        if want.is_ok() && got.is_ok() {
            prop_assert_eq!(c.pos() >= run, true);
        }
        prop_assert_eq!(got, want);
    }
}

/// The dotted-quad reader as it was before it read octet by octet: the reference
/// [`host::ipv4`] is checked against.
fn ipv4_by_bytes(s: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut part = 0usize;
    let mut value = 0u16;
    let mut digits = 0u8;
    for &b in s.as_bytes() {
        if b == b'.' {
            if digits == 0 || part == 3 {
                return None;
            }
            octets[part] = u8::try_from(value).ok()?;
            part += 1;
            value = 0;
            digits = 0;
        } else if b.is_ascii_digit() && digits < 3 {
            value = value * 10 + u16::from(b - b'0');
            digits += 1;
        } else {
            return None;
        }
    }
    if digits == 0 || part != 3 {
        return None;
    }
    octets[3] = u8::try_from(value).ok()?;
    Some(Ipv4Addr::from(octets))
}

proptest! {
    #[test]
    fn ipv4_reads_octet_by_octet_what_the_byte_reader_reads(
        s in "[0-9]{0,4}(\\.[0-9]{0,4}){0,4}[.a ]?",
    ) {
        prop_assert_eq!(host::ipv4(&s), ipv4_by_bytes(&s));
    }
}
