use super::*;
use crate::http::TransportErrorKind;

const NOW: u64 = 1_800_000_000;

fn plain() -> ResponseConfig {
    ResponseConfig::default()
}

fn ok(body: &str) -> HttpResponse {
    HttpResponse::new(200, body)
}

fn jwt(claims: &str) -> String {
    format!(
        "{}.{}.sig",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#),
        URL_SAFE_NO_PAD.encode(claims)
    )
}

#[test]
fn watts_b2c_response_reads_every_field() {
    // FACTS.md §3.1: the B2C token response of the Watts app.
    let body = format!(
        r#"{{"access_token":"AT","id_token":"IT","token_type":"Bearer","not_before":{nb},
        "expires_in":900,"expires_on":{eo},"resource":"978b217d","id_token_expires_in":3600,
        "profile_info":"x","scope":"https://wattsb2cap02.onmicrosoft.com/wattsapiresi/manage offline_access openid profile",
        "refresh_token":"RT2","refresh_token_expires_in":7776000,"client_info":"ci"}}"#,
        nb = NOW,
        eo = NOW + 900
    );
    let t = parse_token_response(&ok(&body), NOW, &plain()).unwrap();
    assert_eq!(t.access_token.expose(), "AT");
    assert_eq!(t.expires_at, Some(NOW + 900));
    assert_eq!(t.expiry_source, ExpirySource::ExpiresIn);
    assert_eq!(t.not_before, Some(NOW));
    assert_eq!(t.refresh_token.unwrap().expose(), "RT2");
    assert_eq!(t.refresh_expires_at, Some(NOW + 7_776_000));
    assert_eq!(t.id_token.unwrap().expose(), "IT");
    assert!(t.scope.unwrap().contains("manage"));
}

/// Azure has sent `expires_in` as a string (oauth2-rs #320).
#[test]
fn expires_in_as_a_string_is_accepted() {
    let t = parse_token_response(
        &ok(r#"{"access_token":"a","token_type":"Bearer","expires_in":"3599"}"#),
        NOW,
        &plain(),
    )
    .unwrap();
    assert_eq!(t.expires_at, Some(NOW + 3599));
}

#[test]
fn expires_on_is_used_when_expires_in_is_absent_and_corrected_for_skew() {
    let resp = ok(&format!(
        r#"{{"access_token":"a","expires_on":"{}"}}"#,
        NOW + 100 + 600
    ))
    .with_header("Date", "Fri, 15 Jan 2027 08:00:00 GMT");
    let server = parse_http_date("Fri, 15 Jan 2027 08:00:00 GMT").unwrap();
    // The local clock is 100 s behind the server.
    let local_now = server - 100;
    let resp = HttpResponse {
        body: format!(r#"{{"access_token":"a","expires_on":"{}"}}"#, server + 600).into_bytes(),
        ..resp
    };
    let t = parse_token_response(&resp, local_now, &plain()).unwrap();
    assert_eq!(t.clock_skew, 100);
    assert_eq!(t.expiry_source, ExpirySource::ExpiresOn);
    assert_eq!(t.expires_at, Some(local_now + 600));
}

#[test]
fn an_absolute_expiry_in_milliseconds_is_read_as_such_and_none_is_believed_past_ten_years() {
    let ten_years = 10 * 365 * 24 * 3600;
    let millis = (NOW + 900) * 1000;
    let t = parse_token_response(
        &ok(&format!(r#"{{"access_token":"a","expires_on":{millis}}}"#)),
        NOW,
        &plain(),
    )
    .unwrap();
    assert_eq!(t.expires_at, Some(NOW + 900));
    // Seconds, but in the year 4000: capped like `expires_in`.
    let far = 64_060_588_800u64;
    let t = parse_token_response(
        &ok(&format!(r#"{{"access_token":"a","expires_on":{far}}}"#)),
        NOW,
        &plain(),
    )
    .unwrap();
    assert_eq!(t.expires_at, Some(NOW + ten_years));
    let at = jwt(&format!(r#"{{"sub":"u","exp":{millis}}}"#));
    let t =
        parse_token_response(&ok(&format!(r#"{{"access_token":"{at}"}}"#)), NOW, &plain()).unwrap();
    assert_eq!(t.expires_at, Some(NOW + 900));
}

#[test]
fn jwt_exp_is_the_last_resort_before_the_profile_default() {
    let at = jwt(&format!(r#"{{"sub":"u","exp":{}}}"#, NOW + 300));
    let t =
        parse_token_response(&ok(&format!(r#"{{"access_token":"{at}"}}"#)), NOW, &plain()).unwrap();
    assert_eq!(t.expires_at, Some(NOW + 300));
    assert_eq!(t.expiry_source, ExpirySource::JwtExp);
    assert_eq!(t.token_type, "Bearer");

    let cfg = ResponseConfig {
        default_expires_in: Some(3600),
        ..ResponseConfig::default()
    };
    let t = parse_token_response(&ok(r#"{"access_token":"opaque"}"#), NOW, &cfg).unwrap();
    assert_eq!(t.expires_at, Some(NOW + 3600));
    assert_eq!(t.expiry_source, ExpirySource::ProfileDefault);

    let t = parse_token_response(&ok(r#"{"access_token":"opaque"}"#), NOW, &plain()).unwrap();
    assert_eq!(t.expires_at, None);
    assert_eq!(t.expiry_source, ExpirySource::Unknown);
}

#[test]
fn utec_code_data_wrapper_is_unwrapped() {
    let cfg = ResponseConfig {
        wrapper: Wrapper::CodeData,
        default_expires_in: Some(3600),
    };
    let t = parse_token_response(
        &ok(r#"{"code":200,"data":{"access_token":"A","refresh_token":"R","expires_in":7200}}"#),
        NOW,
        &cfg,
    )
    .unwrap();
    assert_eq!(t.access_token.expose(), "A");
    assert_eq!(t.refresh_token.unwrap().expose(), "R");
    assert_eq!(t.expires_at, Some(NOW + 7200));
    // An unwrapped body is tolerated too.
    let t = parse_token_response(&ok(r#"{"access_token":"B"}"#), NOW, &cfg).unwrap();
    assert_eq!(t.expires_at, Some(NOW + 3600));
    // An error inside the wrapper, even with HTTP 200.
    let e = parse_token_response(&ok(r#"{"code":401,"message":"token expired"}"#), NOW, &cfg)
        .unwrap_err();
    assert_eq!(
        e,
        TokenError::OAuth {
            status: 401,
            error: "provider_error".into(),
            description: Some("token expired".into()),
            retry_after: None
        }
    );
    assert_eq!(e.class(), ErrorClass::Terminal);
}

/// RFC 6749 §5.2 error codes and their classes.
#[test]
fn rfc6749_5_2_errors_are_classified() {
    let cases = [
        ("invalid_grant", 400, ErrorClass::InvalidGrant),
        ("invalid_client", 401, ErrorClass::Terminal),
        ("unauthorized_client", 400, ErrorClass::Terminal),
        ("invalid_request", 400, ErrorClass::Terminal),
        ("unsupported_grant_type", 400, ErrorClass::Terminal),
        ("invalid_scope", 400, ErrorClass::Terminal),
        ("temporarily_unavailable", 503, ErrorClass::Transient),
        ("server_error", 500, ErrorClass::Transient),
        ("something_new", 503, ErrorClass::Transient),
        ("something_new", 400, ErrorClass::Terminal),
        ("something_new", 401, ErrorClass::Terminal),
        // A proxy's or WAF's JSON error page on the token endpoint is not the server's word.
        ("Not Found", 404, ErrorClass::Transient),
        ("Forbidden", 403, ErrorClass::Transient),
        ("something_new", 409, ErrorClass::Transient),
    ];
    for (code, status, class) in cases {
        let resp = HttpResponse::new(
            status,
            format!(r#"{{"error":"{code}","error_description":"why"}}"#),
        );
        let e = parse_token_response(&resp, NOW, &plain()).unwrap_err();
        assert_eq!(e.class(), class, "{code}");
        assert!(e.to_string().contains(code), "{e}");
        assert!(e.to_string().contains("why"), "{e}");
    }
}

#[test]
fn outages_are_transient_and_keep_retry_after() {
    let e = parse_token_response(
        &HttpResponse::new(429, "slow down").with_header("Retry-After", "30"),
        NOW,
        &plain(),
    )
    .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Transient);
    assert_eq!(e.retry_after(), Some(30));
    let e = parse_token_response(
        &HttpResponse::new(503, "<html>down</html>")
            .with_header("Retry-After", "Fri, 15 Jan 2027 08:01:00 GMT"),
        parse_http_date("Fri, 15 Jan 2027 08:00:00 GMT").unwrap(),
        &plain(),
    )
    .unwrap_err();
    assert_eq!(e.retry_after(), Some(60));
    assert_eq!(e.class(), ErrorClass::Transient);
    // A proxy's HTML 404 is not the authorization server refusing the grant.
    let e = parse_token_response(&HttpResponse::new(404, "<html/>"), NOW, &plain()).unwrap_err();
    assert_eq!(e.class(), ErrorClass::Transient);
    // A bare 401 is the client being refused (RFC 6749 §5.2 invalid_client).
    let e = parse_token_response(&HttpResponse::new(401, ""), NOW, &plain()).unwrap_err();
    assert_eq!(e.class(), ErrorClass::Terminal);
    let e = TokenError::Transport(TransportError::new(TransportErrorKind::Connect, "refused"));
    assert_eq!(e.class(), ErrorClass::Transient);
    assert_eq!(
        e.to_string(),
        "token request failed: connection failed: refused"
    );
}

#[test]
fn unusable_success_bodies_name_the_field() {
    let cases = [
        ("not json", "the body is not a JSON object"),
        ("[]", "the body is not a JSON object"),
        ("{}", "`access_token` is missing"),
        (
            r#"{"access_token":""}"#,
            "`access_token` is not a non-empty string",
        ),
        (
            r#"{"access_token":"a","expires_in":-5}"#,
            "`expires_in` is not a non-negative number",
        ),
        (
            r#"{"access_token":"a","expires_in":"soon"}"#,
            "`expires_in` is the string \"soon\", not a number of seconds",
        ),
        (
            r#"{"access_token":"a","token_type":"mac"}"#,
            "`token_type` is \"mac\"; only Bearer tokens are supported",
        ),
        (
            r#"{"access_token":"a","refresh_token":5}"#,
            "`refresh_token` is not a string",
        ),
    ];
    for (body, reason) in cases {
        let e = parse_token_response(&ok(body), NOW, &plain()).unwrap_err();
        assert_eq!(
            e,
            TokenError::Malformed {
                reason: reason.into()
            },
            "{body}"
        );
        assert_eq!(e.class(), ErrorClass::Transient);
    }
}

#[test]
fn error_object_in_a_200_is_an_error() {
    let e = parse_token_response(&ok(r#"{"error":"invalid_grant"}"#), NOW, &plain()).unwrap_err();
    assert_eq!(e.class(), ErrorClass::InvalidGrant);
}

#[test]
fn oversized_bodies_are_refused_without_parsing() {
    let big = vec![b' '; MAX_BODY + 1];
    let e = parse_token_response(&HttpResponse::new(200, big), NOW, &plain()).unwrap_err();
    assert!(matches!(e, TokenError::Malformed { .. }));
}

#[test]
fn absurd_lifetimes_are_capped_not_overflowed() {
    let t = parse_token_response(
        &ok(r#"{"access_token":"a","expires_in":18446744073709551615}"#),
        NOW,
        &plain(),
    )
    .unwrap();
    assert_eq!(t.expires_at, Some(NOW + MAX_LIFETIME));
}

/// RFC 9110 §5.6.7: the three date forms a recipient must accept, same instant.
#[test]
fn http_dates_in_all_three_rfc9110_forms() {
    let want = 784_111_777; // 1994-11-06T08:49:37Z
    assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(want));
    assert_eq!(
        parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
        Some(want)
    );
    assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Some(want));
    assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
    assert_eq!(
        parse_http_date("Tue, 29 Feb 2028 23:59:59 GMT"),
        Some(1_835_481_599)
    );
    for bad in [
        "",
        "yesterday",
        "Sun, 06 Nov 1994 25:00:00 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
    ] {
        assert_eq!(parse_http_date(bad), None, "{bad}");
    }
}

#[test]
fn jwt_exp_reads_only_well_formed_tokens() {
    assert_eq!(jwt_exp(&jwt(r#"{"exp":1700000000}"#)), Some(1_700_000_000));
    assert_eq!(
        jwt_exp(&jwt(r#"{"exp":1700000000.5}"#)),
        Some(1_700_000_000)
    );
    assert_eq!(jwt_exp(&jwt(r#"{"exp":"1700000000"}"#)), None);
    assert_eq!(jwt_exp("opaque-token"), None);
    assert_eq!(jwt_exp("a.b"), None);
    assert_eq!(jwt_exp("a.!!!.c"), None);
}

proptest::proptest! {
    #[test]
    fn parse_never_panics_on_any_body(status in 100u16..600, body in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
        let _ = parse_token_response(&HttpResponse::new(status, body.clone()), NOW, &plain());
        let cfg = ResponseConfig { wrapper: Wrapper::CodeData, default_expires_in: None };
        let _ = parse_token_response(&HttpResponse::new(status, body), NOW, &cfg);
    }

    #[test]
    fn parse_http_date_never_panics(s in ".{0,40}") {
        let _ = parse_http_date(&s);
    }
}
