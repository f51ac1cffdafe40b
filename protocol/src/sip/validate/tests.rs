use super::*;
use alloc::string::String;

const BASE: &str = "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/TLS 192.0.2.9:5061;branch=z9hG4bKnashds8\r\n\
Max-Forwards: 70\r\n\
To: <sip:bob@example.com>\r\n\
From: <sip:gate@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:gate@192.0.2.9;transport=tls>\r\n";

fn check_with(extra: &str, body: &str) -> Result<(), Violation> {
    let raw = alloc::format!("{BASE}{extra}Content-Length: {}\r\n\r\n{body}", body.len());
    Message::parse(raw.as_bytes())
        .map_err(Violation::from)?
        .validate(Options::stream())
}

#[test]
fn the_base_message_is_valid() {
    check_with("", "").unwrap();
}

#[test]
fn allow_supported_and_accept_may_be_empty_but_not_have_empty_elements() {
    check_with("Allow:\r\nSupported: \r\nAccept:\r\n", "").unwrap();
    let v = check_with("Allow: INVITE,,ACK\r\n", "").unwrap_err();
    assert_eq!(
        (v.kind, v.header),
        (ViolationKind::InvalidHeader, Some("Allow"))
    );
    let v = check_with("Require:\r\n", "").unwrap_err();
    assert_eq!(v.header, Some("Require"), "Require needs an option tag");
}

#[test]
fn contact_star_only_alone_in_register_with_expires_zero() {
    let v = check_with("Contact: *\r\n", "").unwrap_err();
    assert_eq!(v.kind, ViolationKind::BadContact);
    let reg = BASE
        .replace("INVITE", "REGISTER")
        .replace("Contact: <sip:gate@192.0.2.9;transport=tls>\r\n", "");
    let ok = alloc::format!("{reg}Contact: *\r\nExpires: 0\r\nContent-Length: 0\r\n\r\n");
    Message::parse(ok.as_bytes())
        .unwrap()
        .validate(Options::stream())
        .unwrap();
    let mixed = alloc::format!("{reg}Contact: *, <sip:a@b>\r\nExpires: 0\r\nl: 0\r\n\r\n");
    let v = Message::parse(mixed.as_bytes())
        .unwrap()
        .validate(Options::stream())
        .unwrap_err();
    assert_eq!(v.reason, "Contact '*' must be the only Contact");
    let no_zero = alloc::format!("{reg}Contact: *\r\nExpires: 60\r\nl: 0\r\n\r\n");
    let v = Message::parse(no_zero.as_bytes())
        .unwrap()
        .validate(Options::stream())
        .unwrap_err();
    assert_eq!(v.reason, "Contact '*' needs Expires: 0");
}

#[test]
fn invite_without_contact_is_rejected() {
    let raw = BASE.replace("Contact: <sip:gate@192.0.2.9;transport=tls>\r\n", "");
    let raw = alloc::format!("{raw}l: 0\r\n\r\n");
    let v = Message::parse(raw.as_bytes())
        .unwrap()
        .validate(Options::stream())
        .unwrap_err();
    assert_eq!(
        (v.kind, v.header),
        (ViolationKind::MissingHeader, Some("Contact"))
    );
}

#[test]
fn a_body_needs_a_content_type() {
    let v = check_with("", "v=0\r\n").unwrap_err();
    assert_eq!(v.kind, ViolationKind::MissingContentType);
    check_with("Content-Type: application/sdp\r\n", "v=0\r\n").unwrap();
}

#[test]
fn bare_lf_line_endings_are_named() {
    let raw =
        alloc::format!("{BASE}l: 0\r\n\r\n").replacen("\r\nMax-Forwards", "\nMax-Forwards", 1);
    let m = Message::parse(raw.as_bytes()).unwrap();
    let v = m.validate(Options::stream()).unwrap_err();
    assert_eq!(v.kind, ViolationKind::BadLineEnding);
    assert_eq!(raw.as_bytes()[v.offset], b'\n');
}

#[test]
fn status_line_separators_are_single_spaces() {
    let ok = "SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\r\nTo: <sip:a@b>;tag=2\r\n\
From: <sip:a@b>;tag=1\r\nCall-ID: x\r\nCSeq: 1 MESSAGE\r\nl: 0\r\n\r\n";
    check(ok.as_bytes(), Options::stream()).unwrap();
    let bad = ok.replace("SIP/2.0 200 OK", "SIP/2.0  200  OK");
    let v = check(bad.as_bytes(), Options::stream()).unwrap_err();
    assert_eq!((v.kind, v.offset), (ViolationKind::BadStatusLine, 7));
}

#[test]
fn cseq_numbers_up_to_32_bits_are_accepted_when_received() {
    let raw = alloc::format!("{BASE}l: 0\r\n\r\n").replace("CSeq: 314159", "CSeq: 4294967295");
    check(raw.as_bytes(), Options::stream()).unwrap();
    let raw = raw.replace("4294967295", "4294967296");
    assert_eq!(
        check(raw.as_bytes(), Options::stream()).unwrap_err().header,
        Some("CSeq")
    );
}

#[test]
fn ipv6_received_in_a_response_validates() {
    let r = "SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bK1;received=2001:db8::9;rport=5061\r\n\
To: <sip:a@b>;tag=2\r\nFrom: <sip:a@b>;tag=1\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\nl: 0\r\n\r\n";
    let m = check(r.as_bytes(), Options::stream()).unwrap();
    assert!(m.top_via().unwrap().received().is_some());
}

#[test]
fn violations_display_header_offset_and_reason() {
    let v = check_with("Max-Forwards: 300\r\n", "").unwrap_err();
    let mut s = String::new();
    core::fmt::write(&mut s, format_args!("{v}")).unwrap();
    assert!(s.starts_with("Max-Forwards header at byte "), "{s}");
}

// RFC 3261 §7 / §7.3.1: every header line, and the empty line that ends the header section,
// ends in CRLF. The check only looks at `head()`, which stops before the last header's line
// break and the empty line, so a bare LF there passes.
#[test]
fn a_bare_lf_ending_the_last_header_line_or_the_empty_line_is_named() {
    for raw in [
        alloc::format!("{BASE}Content-Length: 0\r\n\n"),
        alloc::format!("{BASE}Content-Length: 0\n\r\n"),
        alloc::format!("{BASE}Content-Length: 0\n\n"),
    ] {
        let m = Message::parse(raw.as_bytes()).unwrap();
        let v = m.validate(Options::stream()).unwrap_err();
        assert_eq!(v.kind, ViolationKind::BadLineEnding, "{raw:?}: {v}");
        assert_eq!(raw.as_bytes()[v.offset], b'\n', "{raw:?}");
    }
}

// The module documentation promises "the first fault in message order". A malformed Via
// (second line) must be named before a CSeq method mismatch (seventh line): the mandatory
// header and CSeq checks run before the per-header grammar check, so CSeq is named.
#[test]
fn the_first_fault_in_message_order_is_the_one_reported() {
    let raw = alloc::format!("{BASE}l: 0\r\n\r\n")
        .replace("192.0.2.9:5061", "192.0.2.9:99999")
        .replace("CSeq: 314159 INVITE", "CSeq: 314159 BYE");
    let v = check(raw.as_bytes(), Options::stream()).unwrap_err();
    assert_eq!(
        (v.kind, v.header),
        (ViolationKind::InvalidHeader, Some("Via")),
        "{v}"
    );
}

// RFC 3261 §25.1: a header value is TEXT-UTF8char (%x21-7E / UTF8-NONASCII), UTF8-CONT and
// LWS; Subject is TEXT-UTF8-TRIM. NUL, other control characters and a CR that is not part of a
// CRLF are never part of a header value (a bare CR is also read as a line end by some
// parsers, which makes it a header-smuggling vector).
#[test]
fn control_characters_and_bare_cr_in_header_values_are_rejected() {
    for extra in [
        "Subject: lunch\x00time\r\n",
        "Subject: lunch\rX-Injected: 1\r\n",
        "User-Agent: door\x01station\r\n",
        "X-Quoted: \"door\x01station\"\r\n",
        "X-Del: door\x7fstation\r\n",
    ] {
        let v = check_with(extra, "").unwrap_err();
        assert_eq!(v.kind, ViolationKind::InvalidHeader, "{extra:?}: {v}");
    }
    // A quoted-pair may escape a control character (§25.1; RFC 4475 §3.1.1.2), and a line
    // fold is CRLF then LWS.
    for extra in [
        "X-Quoted: \"BEL:\\\x07 DEL:\\\x7f\"\r\n",
        "Subject: folded\r\n  line\r\n",
    ] {
        check_with(extra, "").unwrap_or_else(|v| panic!("{extra:?} refused: {v}"));
    }
}
