//! RFC 4475 ("SIP Torture Test Messages") conformance: every message of the RFC with its
//! outcome. The files are byte-exact copies of ../shared/conformance/sip/rfc4475 (kept in
//! tests/rfc4475 so the test needs nothing outside the crate).

use latchkey_protocol::sip::headers::{Contact, DisplayName, Transport};
use latchkey_protocol::sip::uri::Uri;
use latchkey_protocol::sip::validate::{self, Options, ViolationKind};
use latchkey_protocol::sip::{HeaderName, Host, Message, Method};

macro_rules! dat {
    ($name:literal) => {
        include_bytes!(concat!("rfc4475/", $name, ".dat")).as_slice()
    };
}

/// Parse and validate as a datagram (RFC 4475 messages are written for UDP unless noted).
fn valid(raw: &[u8]) -> Message<'_> {
    let m = Message::parse(raw).unwrap_or_else(|e| panic!("parse failed: {e}"));
    m.validate(Options::datagram())
        .unwrap_or_else(|v| panic!("strict check rejected: {v}"));
    m
}

fn rejected(raw: &[u8]) -> validate::Violation {
    match validate::check(raw, Options::datagram()) {
        Ok(_) => panic!("strict check accepted an invalid message"),
        Err(v) => v,
    }
}

// ---------------------------------------------------------------------------------------------
// §3.1.1 Valid messages: must parse, typed headers read what the RFC text describes.

#[test]
fn rfc4475_3_1_1_1_wsinv_short_tortuous_invite() {
    let m = valid(dat!("wsinv"));
    assert_eq!(m.method(), Some(Method::Invite));
    assert_eq!(
        m.request_line().unwrap().uri,
        "sip:vivekg@chair-dnrc.example.com;unknownparam"
    );
    // "TO :" with the value on a continuation line, LWS around ';' and '='.
    let to = m.to().unwrap();
    assert_eq!(to.uri.as_str(), "sip:vivekg@chair-dnrc.example.com");
    assert_eq!(to.tag(), Some("1918181833n"));
    // Escaped quote and backslash inside the quoted display name.
    let from = m.from().unwrap();
    assert_eq!(
        from.display_name,
        Some(DisplayName::Quoted("J Rosenberg \\\\\\\""))
    );
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(m.max_forwards().unwrap(), 68, "leading zeros: 0068");
    let cseq = m.cseq().unwrap();
    assert_eq!(
        (cseq.seq, cseq.method),
        (9, Method::Invite),
        "folded 'cseq: 0009 / INVITE'"
    );
    assert_eq!(m.content_length().unwrap(), 150);
    // Three Vias across two header lines, folded, LWS around every '/'.
    let vias: Vec<_> = m.via().map(Result::unwrap).collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[0].transport, Transport::Udp);
    assert_eq!(vias[0].host, Host::Ipv4("192.0.2.2".parse().unwrap()));
    assert_eq!(vias[0].branch(), Some("390skdjuw"));
    assert_eq!(vias[1].transport, Transport::Tcp);
    assert_eq!(vias[1].host, Host::Domain("spindle.example.com"));
    assert_eq!(vias[1].branch(), Some("z9hG4bK9ikj8"));
    assert_eq!(vias[2].host, Host::Ipv4("192.168.255.111".parse().unwrap()));
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    // Empty Subject, unknown headers kept verbatim (including the folded one).
    assert_eq!(m.header(HeaderName::Subject).unwrap().value, "");
    assert_eq!(
        m.header_by_name("newfangledheader").unwrap().value,
        "newfangled value\r\n continued newfangled value"
    );
    assert_eq!(
        m.header_by_name("UnknownHeaderWithUnusualValue")
            .unwrap()
            .value,
        ";;,,;;,;"
    );
    let route = m.routes().next().unwrap().unwrap();
    assert_eq!(
        route.uri.as_str(),
        "sip:services.example.com;lr;unknownwith=value;unknown-no-value"
    );
    let Contact::Addr(c) = m.contacts().next().unwrap().unwrap() else {
        panic!("not *")
    };
    assert_eq!(
        c.display_name,
        Some(DisplayName::Quoted("Quoted string \\\"\\\""))
    );
    assert_eq!(c.params.get("newparam"), Some(Some("newvalue")));
    assert_eq!(c.params.get("secondparam"), Some(None));
    assert_eq!(c.q(), Some("0.33"));
    assert_eq!(m.body().len(), 150);
}

#[test]
fn rfc4475_3_1_1_2_intmeth_wide_range_of_valid_characters() {
    let m = valid(dat!("intmeth"));
    let method = "!interesting-Method0123456789_*+`.%indeed'~";
    assert_eq!(m.method(), Some(Method::Extension(method)));
    assert_eq!(m.cseq().unwrap().method, Method::Extension(method));
    let Uri::Sip(ruri) = Uri::parse(m.request_line().unwrap().uri).unwrap() else {
        panic!()
    };
    assert_eq!(
        ruri.user(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        ruri.password(),
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    assert_eq!(ruri.host(), Host::Domain("example.com"));
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK-.!%66*_+`'~"));
    let from = m.from().unwrap();
    assert_eq!(
        from.display_name,
        Some(DisplayName::Tokens("token1~` token2'+_ token3*%!.-"))
    );
    assert_eq!(
        from.params.get("fromParam''~+*_!.-%"),
        Some(Some("\"работающий\""))
    );
    assert_eq!(from.tag(), Some("_token~1'+`*%!-."));
    assert_eq!(
        m.call_id().unwrap(),
        "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    );
    assert_eq!(m.max_forwards().unwrap(), 255);
    assert_eq!(
        m.header_by_name("extensionHeader-!.%*+_`'~").unwrap().value,
        "\u{feff}大停電"
    );
}

#[test]
fn rfc4475_3_1_1_3_esc01_valid_use_of_percent_escapes() {
    let m = valid(dat!("esc01"));
    let Uri::Sip(ruri) = Uri::parse(m.request_line().unwrap().uri).unwrap() else {
        panic!()
    };
    assert_eq!(ruri.user(), Some("sips%3Auser%40example.com"));
    let user: Vec<u8> = latchkey_protocol::sip::uri::unescape(ruri.user().unwrap()).collect();
    assert_eq!(user, b"sips:user@example.com");
    let to = m.to().unwrap();
    let Uri::Sip(to_uri) = to.uri else { panic!() };
    let user: Vec<u8> = latchkey_protocol::sip::uri::unescape(to_uri.user().unwrap()).collect();
    assert_eq!(user, b"user");
    assert!(
        m.content_type().unwrap().is("application", "sdp"),
        "compact 'C:'"
    );
    assert_eq!(
        m.call_id().unwrap(),
        "esc01.239409asdfakjkn23onasd0-3234",
        "compact 'i:'"
    );
    let Contact::Addr(c) = m.contacts().next().unwrap().unwrap() else {
        panic!()
    };
    let Uri::Sip(cu) = c.uri else { panic!() };
    assert_eq!(cu.params().get("n%61me"), Some(Some("v%61lue%25%34%31")));
}

#[test]
fn rfc4475_3_1_1_4_escnull_escaped_nulls_in_uris() {
    let m = valid(dat!("escnull"));
    let contacts: Vec<_> = m.contacts().map(Result::unwrap).collect();
    assert_eq!(contacts.len(), 2);
    let Uri::Sip(u) = contacts[1].addr().unwrap().uri else {
        panic!()
    };
    let user: Vec<u8> = latchkey_protocol::sip::uri::unescape(u.user().unwrap()).collect();
    assert_eq!(user, [0, 0]);
    assert_eq!(
        m.content_length().unwrap(),
        0,
        "compact 'L:0' without space"
    );
}

#[test]
fn rfc4475_3_1_1_5_esc02_use_of_percent_when_it_is_not_an_escape() {
    let m = valid(dat!("esc02"));
    // The method is the token RE%47IST%45R, not REGISTER.
    assert_eq!(m.method(), Some(Method::Extension("RE%47IST%45R")));
    assert_eq!(
        m.to().unwrap().display_name,
        Some(DisplayName::Quoted("%Z%45"))
    );
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK209%fzsnel234"));
    // C%6Fntact is an unknown header, not Contact: two Contacts.
    assert_eq!(m.contacts().count(), 2);
    assert_eq!(
        m.header_by_name("C%6Fntact").unwrap().value,
        "<sip:alias2@host2.example.com>"
    );
}

#[test]
fn rfc4475_3_1_1_6_lwsdisp_message_with_no_lws_between_display_name_and_laquot() {
    let m = valid(dat!("lwsdisp"));
    let from = m.from().unwrap();
    assert_eq!(from.display_name, Some(DisplayName::Tokens("caller")));
    assert_eq!(from.uri.as_str(), "sip:caller@example.com");
    assert_eq!(from.tag(), Some("323"));
}

#[test]
fn rfc4475_3_1_1_7_longreq_long_values_in_header_fields() {
    let m = valid(dat!("longreq"));
    let to = m.to().unwrap();
    assert!(to.display_name.unwrap().as_str().contains("extremeextreme"));
    let Uri::Sip(u) = to.uri else { panic!() };
    assert_eq!(u.port(), Some(6000));
    assert!(m.from().unwrap().tag().unwrap().starts_with("12982982982"));
    assert!(m.call_id().unwrap().ends_with("longcallid"));
    assert_eq!(
        m.via().count(),
        34,
        "34 Vias in every letter case and compact form"
    );
    assert_eq!(m.body().len(), m.content_length().unwrap());
}

#[test]
fn rfc4475_3_1_1_8_dblreq_extra_trailing_octets_in_a_udp_datagram() {
    let raw = dat!("dblreq");
    let m = valid(raw);
    assert_eq!(m.method(), Some(Method::Register));
    assert_eq!(m.body(), b"");
    assert_eq!(
        m.call_id().unwrap(),
        "dblreq.0ha0isndaksdj99sdfafnl3lk233412",
        "compact 'I:'"
    );
    // Over UDP the rest is discarded; a stream framer yields it as the next message.
    assert!(m.trailing().windows(6).any(|w| w == b"INVITE"));
    assert!(
        m.validate(Options::stream()).is_err(),
        "on a stream the length must be exact"
    );
}

#[test]
fn rfc4475_3_1_1_9_semiuri_semicolon_separated_parameters_in_uri_user_part() {
    let m = valid(dat!("semiuri"));
    let Uri::Sip(u) = Uri::parse(m.request_line().unwrap().uri).unwrap() else {
        panic!()
    };
    assert_eq!(u.user(), Some("user;par=u%40example.net"));
    assert_eq!(u.host(), Host::Domain("example.com"));
    assert!(u.params().is_empty());
    assert_eq!(
        m.values(HeaderName::Accept).count(),
        6,
        "folded Accept list"
    );
}

#[test]
fn rfc4475_3_1_1_10_transports_varied_and_unknown_transport_types() {
    let m = valid(dat!("transports"));
    let t: Vec<_> = m.via().map(|v| v.unwrap().transport).collect();
    assert_eq!(
        t,
        [
            Transport::Udp,
            Transport::Sctp,
            Transport::Tls,
            Transport::Other("UNKNOWN"),
            Transport::Tcp
        ]
    );
}

#[test]
fn rfc4475_3_1_1_11_mpart01_multipart_mime_message() {
    let m = valid(dat!("mpart01"));
    let ct = m.content_type().unwrap();
    assert!(ct.is("multipart", "mixed"));
    assert_eq!(ct.params.get("boundary"), Some(Some("7a9cbec02ceef655")));
    assert_eq!(m.body().len(), 553);
    let d = m.date().unwrap();
    assert_eq!(
        (d.year, d.month, d.day, d.hour, d.minute, d.second),
        (2005, 10, 15, 4, 44, 56)
    );
    assert_eq!(m.top_via().unwrap().rport(), Some(None));
}

#[test]
fn rfc4475_3_1_1_12_unreason_unusual_reason_phrase() {
    let m = valid(dat!("unreason"));
    assert_eq!(m.status(), Some(200));
    assert_eq!(
        m.status_line().unwrap().reason,
        "= 2**3 * 5**2 но сто девяносто девять - простое"
    );
    assert_eq!(m.body().len(), 154);
}

#[test]
fn rfc4475_3_1_1_13_noreason_empty_reason_phrase() {
    let m = valid(dat!("noreason"));
    assert_eq!(m.status(), Some(100));
    assert_eq!(m.status_line().unwrap().reason, "");
}

// ---------------------------------------------------------------------------------------------
// §3.1.2 Invalid messages: the strict check rejects each, naming the fault.

fn assert_fault(name: &str, raw: &[u8], kind: ViolationKind, header: Option<&str>) {
    let v = rejected(raw);
    assert_eq!(v.kind, kind, "{name}: {v}");
    assert_eq!(v.header, header, "{name}: {v}");
    assert!(
        v.offset < raw.len(),
        "{name}: offset {} inside the message",
        v.offset
    );
    let msg = v.to_string();
    assert!(
        msg.contains("byte"),
        "{name}: message names the offset: {msg}"
    );
}

#[test]
fn rfc4475_3_1_2_1_badinv01_extraneous_header_field_separators() {
    assert_fault(
        "badinv01",
        dat!("badinv01"),
        ViolationKind::InvalidHeader,
        Some("Via"),
    );
}

#[test]
fn rfc4475_3_1_2_2_clerr_content_length_larger_than_message() {
    assert_fault(
        "clerr",
        dat!("clerr"),
        ViolationKind::ContentLengthMismatch,
        Some("Content-Length"),
    );
}

#[test]
fn rfc4475_3_1_2_3_ncl_negative_content_length() {
    assert_fault(
        "ncl",
        dat!("ncl"),
        ViolationKind::InvalidHeader,
        Some("Content-Length"),
    );
}

#[test]
fn rfc4475_3_1_2_4_scalar02_request_scalar_fields_with_overlarge_values() {
    assert_fault(
        "scalar02",
        dat!("scalar02"),
        ViolationKind::InvalidHeader,
        Some("CSeq"),
    );
}

#[test]
fn rfc4475_3_1_2_5_scalarlg_response_scalar_fields_with_overlarge_values() {
    assert_fault(
        "scalarlg",
        dat!("scalarlg"),
        ViolationKind::InvalidHeader,
        Some("CSeq"),
    );
}

#[test]
fn rfc4475_3_1_2_6_quotbal_unterminated_quoted_string_in_display_name() {
    let v = rejected(dat!("quotbal"));
    assert_eq!(
        (v.kind, v.header),
        (ViolationKind::InvalidHeader, Some("To")),
        "{v}"
    );
    assert!(v.reason.contains("quoted"), "{v}");
}

#[test]
fn rfc4475_3_1_2_7_ltgtruri_request_uri_enclosed_in_angle_brackets() {
    assert_fault(
        "ltgtruri",
        dat!("ltgtruri"),
        ViolationKind::BadRequestUri,
        None,
    );
}

#[test]
fn rfc4475_3_1_2_8_lwsruri_malformed_request_uri_with_embedded_lws() {
    let v = rejected(dat!("lwsruri"));
    assert!(
        matches!(
            v.kind,
            ViolationKind::BadRequestUri | ViolationKind::BadRequestLine
        ),
        "{v}"
    );
}

#[test]
fn rfc4475_3_1_2_9_lwsstart_multiple_sp_separating_request_line_elements() {
    assert_fault(
        "lwsstart",
        dat!("lwsstart"),
        ViolationKind::BadRequestLine,
        None,
    );
}

#[test]
fn rfc4475_3_1_2_10_trws_sp_characters_at_end_of_request_line() {
    assert_fault("trws", dat!("trws"), ViolationKind::BadRequestLine, None);
}

#[test]
fn rfc4475_3_1_2_11_escruri_escaped_headers_in_sip_request_uri() {
    let v = rejected(dat!("escruri"));
    assert_eq!(v.kind, ViolationKind::BadRequestUri, "{v}");
    assert_eq!(v.offset, "INVITE sip:user@example.com".len());
}

#[test]
fn rfc4475_3_1_2_12_baddate_invalid_time_zone_in_date_header_field() {
    assert_fault(
        "baddate",
        dat!("baddate"),
        ViolationKind::InvalidHeader,
        Some("Date"),
    );
}

#[test]
fn rfc4475_3_1_2_13_regbadct_failure_to_enclose_name_addr_uri_in_angle_brackets() {
    assert_fault(
        "regbadct",
        dat!("regbadct"),
        ViolationKind::InvalidHeader,
        Some("Contact"),
    );
}

#[test]
fn rfc4475_3_1_2_14_badaspec_spaces_within_addr_spec() {
    assert_fault(
        "badaspec",
        dat!("badaspec"),
        ViolationKind::InvalidHeader,
        Some("To"),
    );
}

#[test]
fn rfc4475_3_1_2_15_baddn_non_token_characters_in_display_name() {
    assert_fault(
        "baddn",
        dat!("baddn"),
        ViolationKind::InvalidHeader,
        Some("From"),
    );
}

#[test]
fn rfc4475_3_1_2_16_badvers_unknown_protocol_version() {
    let v = rejected(dat!("badvers"));
    assert_eq!(v.kind, ViolationKind::BadVersion, "{v}");
    assert_eq!(v.status_code(), 505);
}

#[test]
fn rfc4475_3_1_2_17_mismatch01_start_line_and_cseq_method_mismatch() {
    assert_fault(
        "mismatch01",
        dat!("mismatch01"),
        ViolationKind::CSeqMethodMismatch,
        Some("CSeq"),
    );
}

#[test]
fn rfc4475_3_1_2_18_mismatch02_unknown_method_with_cseq_method_mismatch() {
    assert_fault(
        "mismatch02",
        dat!("mismatch02"),
        ViolationKind::CSeqMethodMismatch,
        Some("CSeq"),
    );
}

#[test]
fn rfc4475_3_1_2_19_bigcode_overlarge_response_code() {
    let v = rejected(dat!("bigcode"));
    assert!(
        matches!(
            v.kind,
            ViolationKind::Parse(_) | ViolationKind::StatusOutOfRange
        ),
        "{v}"
    );
    assert_eq!(v.offset, "SIP/2.0 ".len());
}

// ---------------------------------------------------------------------------------------------
// §3.2 transaction layer, §3.3 application layer, §3.4 backward compatibility: these parse;
// the strict check accepts the well-formed ones and rejects exactly those the RFC says a UA
// answers with 400.

#[test]
fn rfc4475_3_2_1_badbranch_missing_branch_magic_cookie_content_parses() {
    let m = valid(dat!("badbranch"));
    let via = m.top_via().unwrap();
    assert_eq!(via.branch(), Some("z9hG4bK"));
}

#[test]
fn rfc4475_3_3_application_layer_messages_parse_and_are_well_formed() {
    for (name, raw) in [
        ("unkscm", dat!("unkscm")),
        ("novelsc", dat!("novelsc")),
        ("unksm2", dat!("unksm2")),
        ("bext01", dat!("bext01")),
        ("invut", dat!("invut")),
        ("regaut01", dat!("regaut01")),
        ("bcast", dat!("bcast")),
        ("zeromf", dat!("zeromf")),
        ("cparam01", dat!("cparam01")),
        ("cparam02", dat!("cparam02")),
        ("regescrt", dat!("regescrt")),
        ("sdp01", dat!("sdp01")),
    ] {
        let m = Message::parse(raw).unwrap_or_else(|e| panic!("{name}: {e}"));
        m.validate(Options::datagram())
            .unwrap_or_else(|v| panic!("{name}: {v}"));
    }
}

#[test]
fn rfc4475_3_3_typed_values_of_application_layer_messages() {
    let m = valid(dat!("unkscm"));
    assert!(matches!(
        Uri::parse(m.request_line().unwrap().uri).unwrap(),
        Uri::Other { .. }
    ));
    let m = valid(dat!("novelsc"));
    assert_eq!(
        Uri::parse(m.request_line().unwrap().uri).unwrap().scheme(),
        "soap.beep"
    );
    let m = valid(dat!("unksm2"));
    assert_eq!(m.to().unwrap().uri.scheme(), "isbn");
    let m = valid(dat!("bext01"));
    let req: Vec<_> = m.require().map(Result::unwrap).collect();
    assert_eq!(req, ["nothingSupportsThis", "nothingSupportsThisEither"]);
    let m = valid(dat!("zeromf"));
    assert_eq!(m.max_forwards().unwrap(), 0);
    let m = valid(dat!("cparam01"));
    // Without brackets the parameter belongs to the Contact header, not to the URI.
    let c = m.contacts().next().unwrap().unwrap();
    assert!(c.addr().unwrap().params.contains("unknownparam"));
    let m = valid(dat!("cparam02"));
    let c = m.contacts().next().unwrap().unwrap();
    assert!(c.addr().unwrap().params.is_empty());
    let Uri::Sip(u) = c.addr().unwrap().uri else {
        panic!()
    };
    assert!(u.params().contains("unknownparam"));
    let m = valid(dat!("regescrt"));
    let c = m.contacts().next().unwrap().unwrap();
    let Uri::Sip(u) = c.addr().unwrap().uri else {
        panic!()
    };
    assert_eq!(
        u.headers().next(),
        Some(("Route", "%3Csip:sip.example.com%3E"))
    );
    let m = valid(dat!("bcast"));
    let vias: Vec<_> = m.via().map(Result::unwrap).collect();
    assert_eq!(vias[1].host, Host::Ipv4("255.255.255.255".parse().unwrap()));
}

#[test]
fn rfc4475_3_3_messages_a_ua_answers_with_400_are_rejected_naming_the_header() {
    // §3.3.10 insuf: missing Call-ID, From, To.
    let v = rejected(dat!("insuf"));
    assert_eq!(v.kind, ViolationKind::MissingHeader, "{v}");
    // §3.3.13 multi01: several values in single-value headers.
    let v = rejected(dat!("multi01"));
    assert_eq!(v.kind, ViolationKind::DuplicateHeader, "{v}");
    // §3.3.11 mcl01: several Content-Length values.
    let v = rejected(dat!("mcl01"));
    assert_eq!(
        (v.kind, v.header),
        (ViolationKind::DuplicateHeader, Some("Content-Length")),
        "{v}"
    );
    for raw in [dat!("insuf"), dat!("multi01"), dat!("mcl01")] {
        Message::parse(raw).unwrap();
    }
}

#[test]
fn rfc4475_3_4_1_inv2543_rfc2543_style_invite_parses_and_passes_in_compat_mode() {
    let raw = dat!("inv2543");
    let m = Message::parse(raw).unwrap();
    assert_eq!(m.method(), Some(Method::Invite));
    assert_eq!(m.top_via().unwrap().branch(), None);
    assert!(m.header(HeaderName::MaxForwards).is_none());
    m.validate(Options::datagram().with_rfc2543_compat(true))
        .unwrap();
    let v = m.validate(Options::datagram()).unwrap_err();
    assert_eq!(
        (v.kind, v.header),
        (ViolationKind::MissingHeader, Some("Max-Forwards"))
    );
}

#[test]
fn every_file_in_the_conformance_directory_is_covered() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rfc4475");
    let count = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "dat")
        })
        .count();
    assert_eq!(
        count,
        13 + 19 + 1 + 15 + 1,
        "13 valid, 19 invalid, 1 transaction, 15 application, 1 compat"
    );
}
