//! `latchkey sip parse`: JSON on success, one line naming the fault and exit 1 otherwise, and
//! no panic on any input.

mod common;
use common::{assert_exit, latchkey, latchkey_with_input};

fn rfc(name: &str) -> String {
    format!(
        "{}/../protocol/tests/rfc4475/{name}.dat",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The first header printed as `name` (as written) in `sip parse`'s JSON.
fn header_named(v: &serde_json::Value, name: &str) -> serde_json::Value {
    v["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == name)
        .unwrap_or_else(|| panic!("no {name} header printed"))
        .clone()
}

#[test]
fn valid_message_from_a_file_prints_json_with_typed_views() {
    let out = latchkey(&["sip", "parse", "--strict", &rfc("wsinv")]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["type"], "request");
    assert_eq!(v["method"], "INVITE");
    assert_eq!(v["body_length"], 150);
    let headers = v["headers"].as_array().unwrap();
    let cseq = headers.iter().find(|h| h["name"] == "cseq").unwrap();
    assert_eq!(cseq["canonical"], "CSeq");
    assert_eq!(cseq["typed"]["seq"], 9);
    let via = headers.iter().find(|h| h["name"] == "v").unwrap();
    assert_eq!(via["typed"][0]["branch"], "z9hG4bK9ikj8");
    assert_eq!(via["typed"][1]["host"], "192.168.255.111");
}

#[test]
fn message_from_stdin_is_parsed() {
    let msg = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS a.example;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n\
To: <sip:a@b>;tag=2\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n";
    let out = latchkey_with_input(
        &[
            "sip",
            "parse",
            "--strict",
            "--transport",
            "stream",
            "--compact",
        ],
        msg,
    );
    assert_exit(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], 200);
    assert_eq!(
        out.stdout.iter().filter(|&&b| b == b'\n').count(),
        1,
        "compact is one line"
    );
}

#[test]
fn strict_check_failure_exits_1_with_one_line_naming_header_and_offset() {
    let out = latchkey(&["sip", "parse", "--strict", &rfc("mismatch01")]);
    assert_exit(&out, 1);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1);
    assert!(text.starts_with("rejected: CSeq header at byte "), "{text}");
    assert!(text.contains("does not match the request method"), "{text}");
}

#[test]
fn without_strict_a_parseable_invalid_message_is_accepted() {
    let out = latchkey(&["sip", "parse", &rfc("mismatch01")]);
    assert_exit(&out, 0);
}

#[test]
fn unparseable_input_exits_1_naming_the_offset() {
    let out = latchkey_with_input(
        &["sip", "parse"],
        b"INVITE sip:a@b SIP/2.0\r\nNoColon\r\n\r\n",
    );
    assert_exit(&out, 1);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.trim(),
        "rejected: bad header line at byte 24: no colon"
    );
}

#[test]
fn missing_file_is_a_clear_error_not_a_panic() {
    let out = latchkey(&["sip", "parse", "/nonexistent/latchkey-test.sip"]);
    assert_exit(&out, 2);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("cannot open /nonexistent/latchkey-test.sip"),
        "{err}"
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for round in 0..40 {
        let mut buf = Vec::new();
        let len = (round * 37) % 700;
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            buf.push(if seed.is_multiple_of(3) {
                b"\r\n: ;<>\"%"[(seed >> 8) as usize % 9]
            } else {
                (seed >> 16) as u8
            });
        }
        for strict in [false, true] {
            let mut args = vec!["sip", "parse"];
            if strict {
                args.push("--strict");
            }
            let out = latchkey_with_input(&args, &buf);
            assert!(matches!(out.status.code(), Some(0 | 1)), "input {buf:?}");
            assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
        }
    }
}

#[test]
fn numbers_are_read_as_the_library_reads_them() {
    // `str::parse` took `+70` (and an Expires past 2^32 - 1) as numbers; the library's
    // readers, and so the typed view, do not.
    let msg = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TLS a.example;branch=z9hG4bK1\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: +70\r\n\
Expires: 4294967296\r\nContent-Length: 0\r\n\r\n";
    let out = latchkey_with_input(&["sip", "parse"], msg);
    assert_exit(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let header = |name: &str| header_named(&v, name);
    assert!(header("Max-Forwards")["typed"].is_null());
    assert!(header("Max-Forwards")["typed_error"].is_string());
    assert!(header("Expires")["typed_error"].is_string());
    assert_eq!(header("Content-Length")["typed"], 0);
}

/// README: "digest responses are never printed". The typed view hid `response=`, but the
/// raw `value` of the Authorization line carried it (with the nonce, realm and user: enough
/// for an offline guess of the SIP password); it is redacted there too.
#[test]
fn a_digest_response_is_not_printed_in_the_raw_header_value() {
    let msg = b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.4;branch=z9hG4bK1\r\n\
Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: abc\r\n\
CSeq: 2 REGISTER\r\nAuthorization: Digest username=\"a\", realm=\"example.com\", nonce=\"n1\", \
uri=\"sip:example.com\", response=\"0123456789abcdef0123456789abcdef\", algorithm=MD5\r\n\
Proxy-Authorization: Digest username=\"a\", realm=\"example.com\", nonce=\"n2\", \
uri=\"sip:example.com\", response=\"fedcba9876543210fedcba9876543210\"\r\nContent-Length: 0\r\n\r\n";
    let out = latchkey_with_input(&["sip", "parse", "--compact"], msg);
    assert_exit(&out, 0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let auth = v["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "Authorization")
        .unwrap();
    assert_eq!(auth["typed"]["response_present"], true);
    assert!(
        !stdout.contains("0123456789abcdef0123456789abcdef")
            && !stdout.contains("fedcba9876543210fedcba9876543210"),
        "a digest response reached standard output: {stdout}"
    );
    // The rest of the value is shown, the response in place.
    let value = auth["value"].as_str().unwrap();
    assert!(value.contains(r#"response="<redacted>""#), "{value}");
    assert!(value.contains(r#"nonce="n1""#), "{value}");
    // Authentication-Info's rspauth comes from the same hash: redacted too.
    let msg = b"SIP/2.0 200 OK\r\nAuthentication-Info: nextnonce=\"n,3\", qop=auth, rspauth=\"6629fae49393a05397450978507c4ef1\", cnonce=\"c\"\r\nContent-Length: 0\r\n\r\n";
    let out = latchkey_with_input(&["sip", "parse", "--compact"], msg);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("6629fae49393a05397450978507c4ef1"),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"nextnonce=\"n,3\", qop=auth, rspauth=\"<redacted>\", cnonce=\"c\""#),
        "{stdout}"
    );
    // Another scheme shows only its name.
    let msg = b"OPTIONS sip:a@b SIP/2.0\r\nAuthorization: Bearer eyJsecret.token\r\nContent-Length: 0\r\n\r\n";
    let out = latchkey_with_input(&["sip", "parse", "--compact"], msg);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("eyJsecret"), "{stdout}");
    assert!(stdout.contains("Bearer <redacted>"), "{stdout}");
}

/// A SIP URI may carry a password (`sip:user:password@host`, deprecated by RFC 3261
/// §19.1.1 but still sent): it never reaches standard output — not in the Request-URI, a
/// header's raw value or a typed view — while the rest of each URI is shown as written.
#[test]
fn a_password_in_a_sip_uri_is_not_printed() {
    let msg = b"REGISTER sip:alice:s3cretPW@example.com SIP/2.0\r\n\
Via: SIP/2.0/TLS 192.0.2.4;branch=z9hG4bK1\r\nMax-Forwards: 70\r\n\
From: \"A\" <sips:alice:s3cretPW@example.com>;tag=1\r\nTo: <sip:carol@example.com>\r\n\
Call-ID: abc\r\nCSeq: 2 REGISTER\r\n\
Contact: <SIP:bob:pw2xyz@192.0.2.1:5060;transport=tls>, <sip::pw4qrs@h>\r\n\
X-Ref: see sip:dave:pw3abc@x and sip:erin@y:5061\r\n\
X-List: sip:h:5060,sip:b@c;gossip:x:y@z\r\n\
Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"n1\", \
uri=\"sip:alice:pw5xyz@example.com\", response=\"0123456789abcdef0123456789abcdef\"\r\n\
Content-Length: 0\r\n\r\n";
    let out = latchkey_with_input(&["sip", "parse", "--compact"], msg);
    assert_exit(&out, 0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for secret in ["s3cretPW", "pw2xyz", "pw3abc", "pw4qrs", "pw5xyz"] {
        assert!(!stdout.contains(secret), "{secret} printed: {stdout}");
    }
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["uri"], "sip:alice:<redacted>@example.com");
    assert_eq!(v["uri_parts"]["password_present"], true);
    assert_eq!(v["uri_parts"]["user"], "alice");
    let header = |name: &str| header_named(&v, name);
    assert_eq!(
        header("From")["value"],
        "\"A\" <sips:alice:<redacted>@example.com>;tag=1"
    );
    assert_eq!(
        header("From")["typed"]["uri"],
        "sips:alice:<redacted>@example.com"
    );
    assert_eq!(header("To")["value"], "<sip:carol@example.com>");
    assert_eq!(
        header("Contact")["value"],
        "<SIP:bob:<redacted>@192.0.2.1:5060;transport=tls>, <sip::<redacted>@h>"
    );
    assert_eq!(
        header("X-Ref")["value"],
        "see sip:dave:<redacted>@x and sip:erin@y:5061"
    );
    // Not passwords: a port before an unbracketed list's next URI, a scheme inside a word.
    assert_eq!(header("X-List")["value"], "sip:h:5060,sip:b@c;gossip:x:y@z");
    // The digest's uri parameter copies the Request-URI, password and all.
    let auth = header("Authorization");
    assert!(
        auth["value"]
            .as_str()
            .unwrap()
            .contains(r#"uri="sip:alice:<redacted>@example.com""#),
        "{auth}"
    );
    assert_eq!(auth["typed"]["uri"], "sip:alice:<redacted>@example.com");
}
