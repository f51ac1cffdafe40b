//! The one-pass readers of the common Via and name-addr shapes (`parse_common`) against the
//! full grammar (`parse_full`): on generated values of the common shape they must accept
//! exactly what the full grammar accepts, and on any value — generated ones with bytes
//! inserted, removed or replaced included — they either give up or return what the full
//! grammar returns.

extern crate std;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use proptest::prelude::*;

use super::{CSeq, NameAddr, Via};
use crate::sip::uri::{SipUri, Uri};

/// Bytes that matter to the grammars, and a few that do not.
const INTERESTING: &[u8] = b" \t\r\n;=:,\"<>@%[]/.-?&\\'*_~+!$(){}`#0aZ\x7f";

/// A host as a Via sent-by or a URI has it: a name, a dotted quad, or an IPv6 reference.
fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "([a-z0-9]([a-z0-9-]{0,4}[a-z0-9])?\\.){0,3}[a-zA-Z]([a-zA-Z0-9-]{0,4}[a-zA-Z0-9])?\\.?",
        any::<[u8; 4]>().prop_map(|o| core::net::Ipv4Addr::from(o).to_string()),
        any::<[u16; 8]>().prop_map(|s| format!("[{}]", core::net::Ipv6Addr::from(s))),
        // Names that are almost right: labels ending in '-', digit-only top labels.
        "[a-z0-9.-]{1,12}",
    ]
}

fn port() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        any::<u16>().prop_map(|p| format!(":{p}")),
        "(:[0-9]{0,6})",
    ]
}

/// `;name[=value]` header parameters without white space or quotes.
fn params(names: &'static str) -> impl Strategy<Value = String> {
    let value = prop_oneof![
        Just(None),
        "z9hG4bK[a-zA-Z0-9.!%*_+`'~-]{0,12}".prop_map(Some),
        any::<[u8; 4]>().prop_map(|o| Some(core::net::Ipv4Addr::from(o).to_string())),
        "[0-9]{1,6}".prop_map(Some),
        "[A-Za-z0-9_.!~*'()\\[\\]/:&+$%-]{1,10}".prop_map(Some),
    ];
    proptest::collection::vec((names, value), 0..5).prop_map(|ps| {
        let mut s = String::new();
        for (n, v) in ps {
            s.push(';');
            s.push_str(&n);
            if let Some(v) = v {
                s.push('=');
                s.push_str(&v);
            }
        }
        s
    })
}

/// A Via value of the common shape.
fn common_via() -> impl Strategy<Value = String> {
    (
        "(UDP|TCP|TLS|SCTP|TLS-SCTP|WS|WSS|tls|X-Y)",
        host(),
        port(),
        params("(?i)(branch|received|rport|maddr|ttl|x|[a-z]{1,9})"),
    )
        .prop_map(|(t, h, p, ps)| format!("SIP/2.0/{t} {h}{p}{ps}"))
}

/// A SIP URI of the common shape (plus, sometimes, escapes the one-pass reader leaves to the
/// full grammar).
fn common_uri() -> impl Strategy<Value = String> {
    let uri_params = proptest::collection::vec(
        (
            "[A-Za-z0-9_.!~*'()\\[\\]/:&+$-]{1,8}",
            proptest::option::of("[A-Za-z0-9_.!~*'()\\[\\]/:&+$-]{1,8}"),
        ),
        0..3,
    );
    (
        "(sip|sips|SIP)",
        "[A-Za-z0-9_.!~*'()&=+$,;?/-]{1,12}|[a-z]{1,4}%[0-9A-F]{2}",
        host(),
        port(),
        uri_params,
    )
        .prop_map(|(scheme, user, h, p, ps)| {
            let mut s = format!("{scheme}:{user}@{h}{p}");
            for (n, v) in ps {
                s.push(';');
                s.push_str(&n);
                if let Some(v) = v {
                    s.push('=');
                    s.push_str(&v);
                }
            }
            s
        })
}

/// A name-addr value of the common shape.
fn common_name_addr() -> impl Strategy<Value = String> {
    let display = prop_oneof![
        Just(String::new()),
        "\"[A-Za-z0-9 <>;,@:.'-]{0,12}\" {0,2}",
        "[A-Za-z0-9.!%*_+`'~-]{1,6}( [A-Za-z0-9.!%*_+`'~-]{1,6}){0,2} {0,2}",
    ];
    (
        display,
        common_uri(),
        params("(?i)(tag|expires|q|x|[a-z]{1,5})"),
    )
        .prop_map(|(d, u, ps)| format!("{d}<{u}>{ps}"))
}

/// `s` with one byte inserted, removed or replaced at `at` (modulo the length).
fn mutate(s: &str, at: usize, op: u8, byte: u8) -> String {
    let mut b: Vec<u8> = s.as_bytes().to_vec();
    let at = if b.is_empty() { 0 } else { at % (b.len() + 1) };
    match op % 3 {
        0 => b.insert(at, byte),
        1 if at < b.len() => {
            b.remove(at);
        }
        _ if at < b.len() => b[at] = byte,
        _ => b.push(byte),
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn mutation() -> impl Strategy<Value = (usize, u8, u8)> {
    (
        any::<usize>(),
        any::<u8>(),
        prop_oneof![
            proptest::sample::select(INTERESTING),
            any::<u8>().prop_map(|b| b & 0x7f)
        ],
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn via_common_shape_is_read_in_one_pass_exactly_when_the_grammar_accepts_it(v in common_via()) {
        let full = Via::parse_full(&v);
        prop_assert_eq!(Via::parse_common(&v).ok_or(()), full.map_err(|_| ()), "{:?}", v);
        prop_assert_eq!(Via::parse(&v), full);
    }

    #[test]
    fn via_one_pass_reader_never_disagrees_with_the_grammar_on_mutated_values(
        v in common_via(),
        muts in proptest::collection::vec(mutation(), 1..3),
    ) {
        let mut v = v;
        for (at, op, byte) in muts {
            v = mutate(&v, at, op, byte);
        }
        let full = Via::parse_full(&v);
        if let Some(fast) = Via::parse_common(&v) {
            prop_assert_eq!(Ok(fast), full, "{:?}", v);
        }
        prop_assert_eq!(Via::parse(&v), full);
    }

    #[test]
    fn name_addr_common_shape_is_read_in_one_pass_exactly_when_the_grammar_accepts_it(
        v in common_name_addr(),
    ) {
        let full = NameAddr::parse_full(&v);
        let fast = NameAddr::parse_common(&v);
        if fast.is_none() {
            // Only what the one-pass reader leaves out on purpose: escapes, an upper-case
            // scheme, or a value the grammar rejects.
            prop_assert!(v.contains('%') || v.contains("SIP:") || full.is_err(), "{:?}", v);
        } else {
            prop_assert_eq!(fast.ok_or(()), full.map_err(|_| ()), "{:?}", v);
        }
        prop_assert_eq!(NameAddr::parse(&v), full);
    }

    #[test]
    fn name_addr_one_pass_reader_never_disagrees_with_the_grammar_on_mutated_values(
        v in common_name_addr(),
        muts in proptest::collection::vec(mutation(), 1..3),
    ) {
        let mut v = v;
        for (at, op, byte) in muts {
            v = mutate(&v, at, op, byte);
        }
        let full = NameAddr::parse_full(&v);
        if let Some(fast) = NameAddr::parse_common(&v) {
            prop_assert_eq!(Ok(fast), full, "{:?}", v);
        }
        prop_assert_eq!(NameAddr::parse(&v), full);
    }

    #[test]
    fn sip_uri_one_pass_reader_never_disagrees_with_the_grammar(
        u in common_uri(),
        muts in proptest::collection::vec(mutation(), 0..3),
    ) {
        let mut u = u;
        for (at, op, byte) in muts {
            u = mutate(&u, at, op, byte);
        }
        let full = Uri::parse(&u);
        match SipUri::parse_common(&u) {
            Some(fast) => prop_assert_eq!(Ok(Uri::Sip(fast)), full, "{:?}", u),
            None => prop_assert!(
                !matches!(full, Ok(Uri::Sip(s)) if s.user().is_some()
                    && s.password().is_none()
                    && !s.has_headers()
                    && !u.contains('%')
                    // The one-pass reader takes the lower-case schemes only; `sIp:` and
                    // `sipS:` (schemes are case-insensitive) go the full way.
                    && (u.starts_with("sip:") || u.starts_with("sips:"))),
                "a plain URI left to the full grammar: {:?}", u
            ),
        }
    }
}

#[test]
fn typical_values_take_the_one_pass_readers() {
    for v in [
        "SIP/2.0/TLS 192.0.2.4:49152;branch=z9hG4bK776asdhds;rport=49152;received=198.51.100.7",
        "SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8",
        "SIP/2.0/WSS [2001:db8::1]:443;branch=z9hG4bK1;rport",
    ] {
        assert!(Via::parse_common(v).is_some(), "{v}");
        assert_eq!(Via::parse(v), Via::parse_full(v));
    }
    for v in [
        "<sip:owner_client@gw.example.com>;tag=a73kszlfl",
        "\"Door 1\" <sips:door1@192.0.2.4:5061;transport=tls>;tag=x",
        "Bob Smith <sip:bob@example.com>",
        "<sip:b@192.0.2.4;transport=tls>;expires=600;q=0.7",
    ] {
        assert!(NameAddr::parse_common(v).is_some(), "{v}");
        assert_eq!(NameAddr::parse(v), NameAddr::parse_full(v));
    }
    // Shapes left to the full grammar, with the same result.
    for v in [
        "SIP / 2.0 / UDP host;branch=z9hG4bK1",
        "SIP/2.0/UDP host;branch=\"quoted\"",
        "sip:alice@atlanta.com;tag=1928301774",
        "\"Bob \\\"B\\\"\" <sip:bob@example.com>",
        "<sip:%61lice@example.com>",
    ] {
        assert!(
            Via::parse_common(v).is_none() && NameAddr::parse_common(v).is_none(),
            "{v}"
        );
    }
}

proptest! {
    #[test]
    fn cseq_and_call_id_one_pass_readers_agree_with_the_grammar(
        cseq in "[0-9]{1,11} (INVITE|REGISTER|ACK|invite|X-Y)",
        call_id in "[A-Za-z0-9.!%*_+`'~()<>:\\\\\"/\\[\\]?{}-]{1,12}(@[A-Za-z0-9.:-]{1,10})?",
        muts in proptest::collection::vec(mutation(), 0..3),
    ) {
        let (mut cseq, mut call_id) = (cseq, call_id);
        for &(at, op, byte) in &muts {
            cseq = mutate(&cseq, at, op, byte);
            call_id = mutate(&call_id, at, op, byte);
        }
        prop_assert_eq!(CSeq::parse(&cseq), CSeq::parse_full(&cseq), "{:?}", cseq);
        prop_assert_eq!(
            super::simple::parse_call_id(&call_id),
            super::simple::parse_call_id_full(&call_id),
            "{:?}", call_id
        );
    }
}

#[test]
fn a_mixed_case_scheme_goes_the_full_way_and_reads_the_same() {
    // Found by the mutation property: schemes are case-insensitive (RFC 3261 §19.1.4), the
    // one-pass reader takes only `sip:`/`sips:`, and the full grammar reads the rest.
    let u = "sipS:&A!$?aa0~;$@a0.";
    assert_eq!(SipUri::parse_common(u), None);
    match Uri::parse(u) {
        Ok(Uri::Sip(s)) => {
            assert!(s.is_secure());
            assert_eq!(s.user(), Some("&A!$?aa0~;$"));
        }
        other => panic!("{other:?}"),
    }
}
