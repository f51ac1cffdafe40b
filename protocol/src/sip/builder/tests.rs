use super::*;
use crate::sip::validate::Options;
use alloc::string::String;
use alloc::vec;
use proptest::prelude::*;

fn head<'a>(method: Method<'a>, uri: &'a str) -> RequestHead<'a> {
    RequestHead {
        method,
        uri,
        via: ViaSpec::new(Transport::Tls, "192.0.2.4:5061", "z9hG4bK776asdhds"),
        from: Address::new("sip:bob@example.com")
            .with_tag("456248")
            .with_display_name("Bob"),
        to: Address::new("sip:alice@example.com"),
        call_id: "843817637684230@998sdasdh09",
        cseq: 7,
        max_forwards: 70,
    }
}

#[test]
fn register_passes_the_strict_check_and_reads_back() {
    let mut out = Vec::new();
    let mut w =
        MessageWriter::request(&mut out, &head(Method::Register, "sip:example.com")).unwrap();
    w.contact(&Address::new("sip:bob@192.0.2.4;transport=tls"), Some(600))
        .unwrap();
    w.expires(600).unwrap();
    w.finish(None).unwrap();
    let m = Message::parse(&out).unwrap();
    m.validate(Options::stream()).unwrap();
    assert_eq!(m.method(), Some(Method::Register));
    let c = m.contacts().next().unwrap().unwrap();
    assert_eq!(c.addr().unwrap().expires(), Some(600));
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK776asdhds"));
    assert_eq!(m.top_via().unwrap().rport(), Some(None));
    assert_eq!(m.from().unwrap().tag(), Some("456248"));
}

#[test]
fn message_with_body_sets_content_type_and_length() {
    let mut out = Vec::new();
    let w = MessageWriter::request(&mut out, &head(Method::Message, "sip:c100x@gw.example.com"))
        .unwrap();
    let body = br#"{"jsonrpc":"2.0","method":"lock.setStatus"}"#;
    w.finish(Some(("text/plain", body))).unwrap();
    let m = Message::parse(&out).unwrap();
    m.validate(Options::stream()).unwrap();
    assert_eq!(m.body(), body);
    assert_eq!(m.content_length().unwrap(), body.len());
    assert!(m.content_type().unwrap().is("text", "plain"));
}

#[test]
fn options_with_allow() {
    let mut out = Vec::new();
    let mut w =
        MessageWriter::request(&mut out, &head(Method::Options, "sip:example.com")).unwrap();
    w.allow(&[Method::Invite, Method::Ack, Method::Message])
        .unwrap();
    w.finish(None).unwrap();
    let m = Message::parse(&out).unwrap();
    let allow: Vec<_> = m.allow().map(Result::unwrap).collect();
    assert_eq!(allow, vec![Method::Invite, Method::Ack, Method::Message]);
}

const INVITE: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/TLS proxy.example.com;branch=z9hG4bK2d4790.1;received=192.0.2.1\r\n\
Via: SIP/2.0/TLS 192.0.2.9:5061;branch=z9hG4bKnashds8;rport=5061\r\n\
Max-Forwards: 69\r\n\
To: Bob <sip:bob@example.com>\r\n\
From: Gate <sip:gate@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:gate@192.0.2.9;transport=tls>\r\n\
Content-Length: 0\r\n\r\n";

#[test]
fn responses_mirror_via_from_to_call_id_and_cseq_and_add_a_to_tag() {
    let req = Message::parse(INVITE).unwrap();
    for (code, reason) in [
        (100, "Trying"),
        (180, "Ringing"),
        (486, "Busy Here"),
        (200, "OK"),
    ] {
        let mut out = Vec::new();
        MessageWriter::response_to(&mut out, &req, code, reason, Some("xyz1"))
            .unwrap()
            .finish(None)
            .unwrap();
        let r = Message::parse(&out).unwrap();
        r.validate(Options::stream()).unwrap();
        assert_eq!(r.status(), Some(code));
        let vias: Vec<_> = r.via().map(|v| v.unwrap().branch().unwrap()).collect();
        assert_eq!(
            vias,
            ["z9hG4bK2d4790.1", "z9hG4bKnashds8"],
            "every Via, in order"
        );
        assert_eq!(r.call_id().unwrap(), "a84b4c76e66710");
        assert_eq!(r.cseq().unwrap().method, Method::Invite);
        assert_eq!(r.from().unwrap().tag(), Some("1928301774"));
        let to_tag = r.to().unwrap().tag();
        // RFC 3261 §8.2.6.2: a 100 Trying need not carry a tag.
        assert_eq!(to_tag, if code == 100 { None } else { Some("xyz1") });
    }
}

#[test]
fn responses_to_message_options_bye_and_cancel_keep_the_request_method() {
    for method in ["MESSAGE", "OPTIONS", "BYE", "CANCEL"] {
        let raw = String::from_utf8(INVITE.to_vec())
            .unwrap()
            .replace("INVITE", method);
        let req = Message::parse(raw.as_bytes()).unwrap();
        let mut out = Vec::new();
        MessageWriter::response_to(&mut out, &req, 200, "OK", Some("t"))
            .unwrap()
            .finish(None)
            .unwrap();
        let r = Message::parse(&out).unwrap();
        r.validate(Options::stream()).unwrap();
        assert_eq!(r.cseq().unwrap().method.as_str(), method);
    }
}

#[test]
fn an_existing_to_tag_is_kept_not_doubled() {
    let raw = String::from_utf8(INVITE.to_vec()).unwrap().replace(
        "To: Bob <sip:bob@example.com>",
        "To: Bob <sip:bob@example.com>;tag=old",
    );
    let req = Message::parse(raw.as_bytes()).unwrap();
    let mut out = Vec::new();
    MessageWriter::response_to(&mut out, &req, 200, "OK", Some("new"))
        .unwrap()
        .finish(None)
        .unwrap();
    assert_eq!(
        Message::parse(&out).unwrap().to().unwrap().tag(),
        Some("old")
    );
}

#[test]
fn crlf_in_any_value_is_refused_as_injection() {
    let mut out = Vec::new();
    let mut h = head(Method::Message, "sip:a@b");
    h.from.display_name = Some("x\r\nVia: evil");
    assert_eq!(
        MessageWriter::request(&mut out, &h).unwrap_err(),
        BuildError::Injection {
            field: "display name"
        }
    );
    let mut out = Vec::new();
    let mut w = MessageWriter::request(&mut out, &head(Method::Message, "sip:a@b")).unwrap();
    assert!(matches!(
        w.header("X-A", "1\r\n\r\nbody"),
        Err(BuildError::Injection { .. })
    ));
    assert_eq!(
        w.header("Bad Name", "1").unwrap_err(),
        BuildError::BadHeaderName
    );
    let req = Message::parse(INVITE).unwrap();
    assert!(MessageWriter::response_to(&mut Vec::new(), &req, 200, "OK\r\nX: 1", None).is_err());
    assert_eq!(
        MessageWriter::response_to(&mut Vec::new(), &req, 700, "X", None).unwrap_err(),
        BuildError::BadStatus
    );
}

#[test]
fn display_names_are_quoted_and_escaped() {
    let mut out = Vec::new();
    let mut h = head(Method::Message, "sip:a@b");
    h.from.display_name = Some("The \"Gate\" \\ 1");
    MessageWriter::request(&mut out, &h)
        .unwrap()
        .finish(None)
        .unwrap();
    let m = Message::parse(&out).unwrap();
    let mut s = String::new();
    m.from()
        .unwrap()
        .display_name
        .unwrap()
        .write_unescaped(&mut s);
    assert_eq!(s, "The \"Gate\" \\ 1");
}

#[test]
fn fixed_buffer_reports_full_instead_of_growing() {
    let mut buf = [0u8; 64];
    let mut out = SliceOutput::new(&mut buf);
    let err =
        MessageWriter::request(&mut out, &head(Method::Register, "sip:example.com")).unwrap_err();
    assert_eq!(err, BuildError::BufferFull);
    let mut big = [0u8; 1024];
    let mut out = SliceOutput::new(&mut big);
    MessageWriter::request(&mut out, &head(Method::Register, "sip:example.com"))
        .unwrap()
        .finish(None)
        .unwrap();
    Message::parse(out.written())
        .unwrap()
        .validate(Options::stream())
        .unwrap();
}

#[test]
fn every_field_of_a_request_is_checked_before_it_is_written() {
    let mut h = head(Method::Message, "sip:a@b");
    h.via.transport = Transport::Other("UDP x\r\nX-Injected: yes");
    assert!(matches!(
        MessageWriter::request(&mut Vec::new(), &h),
        Err(BuildError::Injection { .. })
    ));
    h.via.transport = Transport::Other("");
    assert!(MessageWriter::request(&mut Vec::new(), &h).is_err());
    for bad_sent_by in ["h\tx", "h?x", "[::1", "h:99999", ""] {
        let mut h = head(Method::Message, "sip:a@b");
        h.via.sent_by = bad_sent_by;
        assert_eq!(
            MessageWriter::request(&mut Vec::new(), &h).unwrap_err(),
            BuildError::BadValue {
                field: "Via sent-by"
            },
            "{bad_sent_by:?}"
        );
    }
    let mut h = head(Method::Message, "sip:a@b");
    h.via.branch = "nocookie";
    assert!(
        MessageWriter::request(&mut Vec::new(), &h).is_err(),
        "RFC 3261 branch cookie"
    );
    for bad_call_id in ["", "a b", "a@"] {
        let mut h = head(Method::Message, "sip:a@b");
        h.call_id = bad_call_id;
        assert_eq!(
            MessageWriter::request(&mut Vec::new(), &h).unwrap_err(),
            BuildError::BadValue { field: "Call-ID" }
        );
    }
    let mut h = head(Method::Message, "sip:a@b");
    h.from.display_name = Some("bell\u{7}");
    assert_eq!(
        MessageWriter::request(&mut Vec::new(), &h).unwrap_err(),
        BuildError::BadValue {
            field: "display name"
        }
    );
}

#[test]
fn content_length_and_type_can_only_come_from_finish() {
    let mut out = Vec::new();
    let mut w = MessageWriter::request(&mut out, &head(Method::Message, "sip:a@b")).unwrap();
    for name in ["Content-Length", "l", "content-type", "C"] {
        assert!(
            matches!(w.header(name, "0"), Err(BuildError::Reserved { .. })),
            "{name}"
        );
    }
}

#[test]
fn responses_unfold_mirrored_headers() {
    let raw = String::from_utf8(INVITE.to_vec()).unwrap().replace(
        "Via: SIP/2.0/TLS 192.0.2.9:5061;branch=z9hG4bKnashds8;rport=5061",
        "Via: SIP/2.0/TLS 192.0.2.9:5061\r\n ;branch=z9hG4bKnashds8;rport=5061",
    );
    let req = Message::parse(raw.as_bytes()).unwrap();
    req.validate(Options::stream()).unwrap();
    let mut out = Vec::new();
    MessageWriter::response_to(&mut out, &req, 200, "OK", Some("t"))
        .unwrap()
        .finish(None)
        .unwrap();
    let r = Message::parse(&out).unwrap();
    r.validate(Options::stream()).unwrap();
    assert_eq!(
        r.via().nth(1).unwrap().unwrap().branch(),
        Some("z9hG4bKnashds8")
    );
    assert!(
        !String::from_utf8_lossy(&out).contains("5061\r\n "),
        "written unfolded"
    );
    // A NUL before a fold is refused as it is after one: no part of a value goes unchecked.
    for folded in ["5061\0x\r\n ;branch", "5061\r\n ;br\0anch"] {
        let raw = String::from_utf8(INVITE.to_vec())
            .unwrap()
            .replace("5061;branch", folded);
        let req = Message::parse(raw.as_bytes()).unwrap();
        let mut out = Vec::new();
        let written = MessageWriter::response_to(&mut out, &req, 200, "OK", Some("t"))
            .and_then(|w| w.finish(None));
        assert!(
            matches!(written, Err(BuildError::Injection { .. })),
            "{folded:?}: {written:?}"
        );
    }
}

#[test]
fn dialog_creating_responses_copy_record_route_in_order() {
    // RFC 3261 §12.1.1.
    let raw = String::from_utf8(INVITE.to_vec()).unwrap().replace(
        "Max-Forwards: 69\r\n",
        "Max-Forwards: 69\r\nRecord-Route: <sip:p2.example.com;lr>\r\nRecord-Route: <sip:p1.example.com;lr>\r\n",
    );
    let req = Message::parse(raw.as_bytes()).unwrap();
    for (code, copied) in [(100, false), (180, true), (200, true), (486, false)] {
        let mut out = Vec::new();
        MessageWriter::response_to(&mut out, &req, code, "X", Some("t"))
            .unwrap()
            .finish(None)
            .unwrap();
        let r = Message::parse(&out).unwrap();
        let rr: Vec<_> = r.record_routes().map(|a| a.unwrap().uri.as_str()).collect();
        if copied {
            assert_eq!(
                rr,
                ["sip:p2.example.com;lr", "sip:p1.example.com;lr"],
                "{code}"
            );
        } else {
            assert!(rr.is_empty(), "{code}");
        }
    }
}

#[test]
fn a_100_trying_copies_timestamp_and_an_ack_is_never_answered() {
    let raw = String::from_utf8(INVITE.to_vec()).unwrap().replace(
        "Max-Forwards: 69\r\n",
        "Max-Forwards: 69\r\nTimestamp: 54.2\r\n",
    );
    let req = Message::parse(raw.as_bytes()).unwrap();
    let mut out = Vec::new();
    MessageWriter::response_to(&mut out, &req, 100, "Trying", None)
        .unwrap()
        .finish(None)
        .unwrap();
    assert_eq!(
        Message::parse(&out)
            .unwrap()
            .header(HeaderName::Timestamp)
            .unwrap()
            .value,
        "54.2"
    );
    let ack = raw.replace("INVITE", "ACK");
    let req = Message::parse(ack.as_bytes()).unwrap();
    assert_eq!(
        MessageWriter::response_to(&mut Vec::new(), &req, 200, "OK", None).unwrap_err(),
        BuildError::AckIsNotAnswered
    );
}

#[test]
fn an_empty_allow_is_valid() {
    let mut out = Vec::new();
    let mut w =
        MessageWriter::request(&mut out, &head(Method::Options, "sip:example.com")).unwrap();
    w.allow(&[]).unwrap();
    w.finish(None).unwrap();
    Message::parse(&out)
        .unwrap()
        .validate(Options::stream())
        .unwrap();
}

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9.!%*_+`'~-]{0,20}"
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]([a-z0-9-]{0,8}[a-z0-9])?(\\.[a-z]([a-z0-9-]{0,8}[a-z0-9])?){0,3}",
        (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(a, b, c, d)| alloc::format!("{a}.{b}.{c}.{d}")),
    ]
}

proptest! {
    #[test]
    fn built_requests_parse_back_to_the_same_fields(
        user in "[a-z0-9_.-]{1,12}",
        h in host(),
        port in proptest::option::of(1u16..),
        branch in token(),
        tag in token(),
        call_id in "[a-zA-Z0-9.!%*_+`'~-]{1,30}(@[a-z0-9.]{1,20})?",
        cseq in 0u32..(1 << 31),
        mf in any::<u8>(),
        display in proptest::option::of("[ -~]{0,20}"),
        body in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let uri = alloc::format!("sip:{user}@{h}");
        let sent_by = match port { Some(p) => alloc::format!("{h}:{p}"), None => h.clone() };
        let branch = alloc::format!("z9hG4bK{branch}");
        let mut from = Address::new(&uri).with_tag(&tag);
        from.display_name = display.as_deref();
        let head = RequestHead {
            method: Method::Message,
            uri: &uri,
            via: ViaSpec::new(Transport::Tcp, &sent_by, &branch),
            from,
            to: Address::new(&uri),
            call_id: &call_id,
            cseq,
            max_forwards: mf,
        };
        let mut out = Vec::new();
        MessageWriter::request(&mut out, &head).unwrap().finish(Some(("application/octet-stream", &body))).unwrap();
        let m = Message::parse(&out).unwrap();
        m.validate(Options::stream()).unwrap();
        prop_assert_eq!(m.request_line().unwrap().uri, uri.as_str());
        let via = m.top_via().unwrap();
        prop_assert_eq!(via.branch(), Some(branch.as_str()));
        prop_assert_eq!(via.port, port);
        prop_assert_eq!(m.from().unwrap().tag(), Some(tag.as_str()));
        let mut dn = String::new();
        if let Some(d) = m.from().unwrap().display_name { d.write_unescaped(&mut dn); }
        prop_assert_eq!(dn.trim(), display.as_deref().unwrap_or("").trim());
        prop_assert_eq!(m.call_id().unwrap(), call_id.as_str());
        prop_assert_eq!(m.cseq().unwrap().seq, cseq);
        prop_assert_eq!(m.max_forwards().unwrap(), u32::from(mf));
        prop_assert_eq!(m.body(), &body[..]);
    }

    #[test]
    fn parse_serialize_parse_is_stable(
        response in any::<bool>(),
        headers in proptest::collection::vec(
            (token(), "[!-~]([ -~]{0,30}[!-~])?", proptest::option::of("[!-~]{1,10}")),
            0..30,
        ),
        body in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let mut raw = Vec::new();
        raw.extend_from_slice(if response { b"SIP/2.0 180 Ringing\r\n" } else { b"INVITE sip:a@b SIP/2.0\r\n" });
        for (name, value, fold) in &headers {
            raw.extend_from_slice(alloc::format!("{name}:  {value}").as_bytes());
            if let Some(f) = fold {
                // A folded continuation line (RFC 3261 §7.3.1).
                raw.extend_from_slice(alloc::format!("\r\n\t{f}").as_bytes());
            }
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"\r\n");
        raw.extend_from_slice(&body);
        let first = Message::parse(&raw).unwrap();
        let mut once = Vec::new();
        first.write_to(&mut once).unwrap();
        let second = Message::parse(&once).unwrap();
        let mut twice = Vec::new();
        second.write_to(&mut twice).unwrap();
        prop_assert_eq!(&once, &twice);
        prop_assert_eq!(first.start_line(), second.start_line());
        prop_assert_eq!(first.headers().len(), headers.len());
        prop_assert_eq!(first.headers().len(), second.headers().len());
        for (a, b) in first.headers().iter().zip(second.headers()) {
            prop_assert_eq!(a.name, b.name);
            prop_assert_eq!(a.kind, b.kind);
            prop_assert_eq!(a.value, b.value);
        }
        prop_assert_eq!(first.body(), second.body());
    }
}

// RFC 3261 §19.1.1 (and RFC 4475 §3.1.2.11): a Request-URI must not carry URI headers
// (`?name=value`). The builder's Request-URI check only runs the URI grammar, so it writes a
// request that the crate's own strict check rejects.
#[test]
fn a_request_uri_with_headers_is_refused() {
    let mut out = Vec::new();
    let r = MessageWriter::request(
        &mut out,
        &head(Method::Message, "sip:c100x@gw.example.com?Subject=open"),
    );
    match r {
        Err(e) => assert_eq!(
            e,
            BuildError::BadValue {
                field: "Request-URI"
            }
        ),
        Ok(w) => {
            w.finish(None).unwrap();
            let m = Message::parse(&out).unwrap();
            panic!(
                "built a request the strict check rejects: {:?}",
                m.validate(Options::stream()).unwrap_err()
            );
        }
    }
}
