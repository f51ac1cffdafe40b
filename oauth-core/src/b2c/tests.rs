use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::authorize::{AuthorizeOptions, authorization_request};
use crate::profile::Profile;

const ORIGIN: &str = "https://eliotclouduamprd.b2clogin.com";
const TENANT: &str = "/EliotClouduamprd.onmicrosoft.com/B2C_1_DoorEliot-DIY-SignUporSignIn";

fn login_request() -> AuthorizationRequest {
    let profile = Profile::builtin("bticino-diy").unwrap();
    authorization_request(
        &profile,
        &AuthorizeOptions::default(),
        &mut ChaCha20Rng::seed_from_u64(7),
    )
    .unwrap()
}

fn credentials() -> Credentials {
    Credentials::new("owner@example.com", Secret::new("pa ss&word"))
}

/// A sign-in page shaped like B2C's: script objects among other script text.
fn page(settings: &str, field: &str) -> HttpResponse {
    let html = format!(
        "<!DOCTYPE html><html><head><script>var CP = {{\"list\":[]}};\n\
         var SA_FIELDS = {{\"AttributeFields\":[{{\"IS_PASSWORD\":false,\"ID\":\"{field}\"}},\
         {{\"IS_PASSWORD\":true,\"ID\":\"password\"}}]}};\n\
         var SETTINGS = {settings};\n</script><script>var x = SETTINGS.csrf;</script></head></html>"
    );
    HttpResponse::new(200, html)
}

fn settings() -> String {
    format!(
        r#"{{"api":"CombinedSigninAndSignup","csrf":"CSRF+/=","transId":"StateProperties=eyJUSUQiOiIx","hosts":{{"tenant":"{TENANT}","policy":"B2C_1_DoorEliot-DIY-SignUporSignIn"}}}}"#
    )
}

fn send(next: Next) -> HttpRequest {
    match next {
        Next::Send(r) => r,
        Next::Code(_) => panic!("expected a request"),
    }
}

fn header_of<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn signs_in_through_page_credentials_and_confirmation_carrying_cookies() {
    let request = login_request();
    let state = request.state.expose().to_owned();
    let config = HeadlessConfig {
        user_agent: Some("NetatmoApp(DoorEntry/v1.8.4)".to_owned()),
        ..HeadlessConfig::default()
    };
    let (mut login, first) = HeadlessLogin::start(request.clone(), credentials(), config).unwrap();
    assert_eq!(first.method, Method::Get);
    assert_eq!(first.url, request.url);
    assert_eq!(header_of(&first, "cookie"), None);

    let page = page(&settings(), "logonIdentifier")
        .with_header(
            "Set-Cookie",
            "x-ms-cpim-csrf=abc; domain=b2clogin.com; path=/; secure",
        )
        .with_header("Set-Cookie", "x-ms-cpim-trans=t1; path=/; HttpOnly");
    let post = send(login.handle_response(&page).unwrap());
    assert_eq!(post.method, Method::Post);
    assert_eq!(
        post.url,
        format!(
            "{ORIGIN}{TENANT}/SelfAsserted?tx=StateProperties%3DeyJUSUQiOiIx&p=B2C_1_DoorEliot-DIY-SignUporSignIn"
        )
    );
    assert_eq!(header_of(&post, "x-csrf-token"), Some("CSRF+/="));
    assert_eq!(header_of(&post, "x-requested-with"), Some("XMLHttpRequest"));
    assert_eq!(
        header_of(&post, "cookie"),
        Some("x-ms-cpim-csrf=abc; x-ms-cpim-trans=t1")
    );
    assert_eq!(
        header_of(&post, "user-agent"),
        Some("NetatmoApp(DoorEntry/v1.8.4)")
    );
    assert_eq!(
        String::from_utf8(post.body.clone()).unwrap(),
        "request_type=RESPONSE&logonIdentifier=owner%40example.com&password=pa+ss%26word"
    );

    // B2C replaces the transaction cookie and adds one.
    let ok = HttpResponse::new(200, r#"{"status":"200"}"#)
        .with_header("Set-Cookie", "x-ms-cpim-trans=t2; path=/")
        .with_header("Set-Cookie", "x-ms-cpim-cache=c; path=/");
    let confirm = send(login.handle_response(&ok).unwrap());
    assert_eq!(
        confirm.url,
        format!(
            "{ORIGIN}{TENANT}/api/CombinedSigninAndSignup/confirmed?rememberMe=false&csrf_token=CSRF%2B%2F%3D&tx=StateProperties%3DeyJUSUQiOiIx&p=B2C_1_DoorEliot-DIY-SignUporSignIn"
        )
    );
    assert_eq!(
        header_of(&confirm, "cookie"),
        Some("x-ms-cpim-csrf=abc; x-ms-cpim-trans=t2; x-ms-cpim-cache=c")
    );

    let redirect = HttpResponse::new(302, "").with_header(
        "Location",
        format!("com.legrandgroup.diy://oauth2redirect?state={state}&code=eyJraWQi.code"),
    );
    match login.handle_response(&redirect).unwrap() {
        Next::Code(code) => assert_eq!(code.code.expose(), "eyJraWQi.code"),
        Next::Send(r) => panic!("unexpected request {}", r.url),
    }
    assert_eq!(
        login.handle_response(&redirect).unwrap_err(),
        HeadlessError::Finished
    );
}

#[test]
fn the_page_names_the_sign_in_field_of_custom_policies() {
    let (mut login, _) =
        HeadlessLogin::start(login_request(), credentials(), HeadlessConfig::default()).unwrap();
    let post = send(
        login
            .handle_response(&page(&settings(), "signInName"))
            .unwrap(),
    );
    let body = String::from_utf8(post.body).unwrap();
    assert!(body.contains("&signInName=owner%40example.com&"), "{body}");
}

#[test]
fn same_site_redirects_before_the_page_are_followed_with_cookies() {
    let (mut login, _) =
        HeadlessLogin::start(login_request(), credentials(), HeadlessConfig::default()).unwrap();
    let hop = HttpResponse::new(302, "")
        .with_header("Location", format!("{TENANT}/oauth2/v2.0/authorize?x=1"))
        .with_header("Set-Cookie", "x-ms-cpim-sso=s; path=/");
    let again = send(login.handle_response(&hop).unwrap());
    assert_eq!(
        again.url,
        format!("{ORIGIN}{TENANT}/oauth2/v2.0/authorize?x=1")
    );
    assert_eq!(header_of(&again, "cookie"), Some("x-ms-cpim-sso=s"));
    for _ in 0..MAX_PAGE_REDIRECTS - 1 {
        let _ = send(login.handle_response(&hop).unwrap());
    }
    assert_eq!(
        login.handle_response(&hop).unwrap_err(),
        HeadlessError::TooManyRedirects
    );
}

#[test]
fn a_wrong_password_reports_the_providers_message_and_never_the_password() {
    let (mut login, _) =
        HeadlessLogin::start(login_request(), credentials(), HeadlessConfig::default()).unwrap();
    let _ = send(
        login
            .handle_response(&page(&settings(), "logonIdentifier"))
            .unwrap(),
    );
    let refused = HttpResponse::new(
        200,
        r#"{"status":"400","message":"Your password is incorrect.","errorCode":"AADB2C90054"}"#,
    );
    let err = login.handle_response(&refused).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the provider refused the sign-in: Your password is incorrect."
    );
    let shown = format!("{login:?}");
    assert!(
        !shown.contains("pa ss&word") && !shown.contains("CSRF+/="),
        "{shown}"
    );
    assert!(!format!("{err:?}").contains("pa ss&word"));
}

#[test]
fn a_page_without_csrf_or_transaction_is_named() {
    // (A missing `hosts.tenant` is taken from the authorization URL.)
    for (settings, what) in [
        (r#"{"transId":"t","hosts":{"tenant":"/t/p"}}"#, "csrf"),
        (r#"{"csrf":"c","hosts":{"tenant":"/t/p"}}"#, "transId"),
        ("not json at all", "csrf"),
    ] {
        let (mut login, _) =
            HeadlessLogin::start(login_request(), credentials(), HeadlessConfig::default())
                .unwrap();
        let err = login
            .handle_response(&page(settings, "logonIdentifier"))
            .unwrap_err();
        assert_eq!(err, HeadlessError::PageMissing { what }, "{settings}");
        assert!(err.to_string().contains("--loopback or --paste"));
    }
}

#[test]
fn another_page_after_confirmation_stops_with_more_steps() {
    let (mut login, _) =
        HeadlessLogin::start(login_request(), credentials(), HeadlessConfig::default()).unwrap();
    let _ = send(
        login
            .handle_response(&page(&settings(), "logonIdentifier"))
            .unwrap(),
    );
    let _ = send(
        login
            .handle_response(&HttpResponse::new(200, r#"{"status":"200"}"#))
            .unwrap(),
    );
    let mfa = page(
        r#"{"api":"Phonefactor","csrf":"c","transId":"t","hosts":{"tenant":"/t/p"}}"#,
        "x",
    );
    assert_eq!(
        login.handle_response(&mfa).unwrap_err(),
        HeadlessError::MoreSteps {
            api: Some("Phonefactor".to_owned())
        }
    );
}

#[test]
fn a_redirect_with_a_foreign_state_or_an_error_is_refused() {
    for (location, check) in [
        (
            "com.legrandgroup.diy://oauth2redirect?state=forged&code=c",
            (|e: &RedirectError| *e == RedirectError::StateMismatch) as fn(&RedirectError) -> bool,
        ),
        (
            "com.legrandgroup.diy://oauth2redirect?error=access_denied&error_description=AADB2C90118",
            |e| matches!(e, RedirectError::Denied { .. }),
        ),
    ] {
        let (mut login, _) =
            HeadlessLogin::start(login_request(), credentials(), HeadlessConfig::default())
                .unwrap();
        let _ = send(
            login
                .handle_response(&page(&settings(), "logonIdentifier"))
                .unwrap(),
        );
        let _ = send(
            login
                .handle_response(&HttpResponse::new(200, r#"{"status":"200"}"#))
                .unwrap(),
        );
        let err = login
            .handle_response(&HttpResponse::new(302, "").with_header("Location", location))
            .unwrap_err();
        match err {
            HeadlessError::Redirect(e) => assert!(check(&e), "{e:?}"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn http_failures_and_non_json_answers_are_named_by_step() {
    let (mut login, _) =
        HeadlessLogin::start(login_request(), credentials(), HeadlessConfig::default()).unwrap();
    assert_eq!(
        login
            .handle_response(&HttpResponse::new(503, "down"))
            .unwrap_err(),
        HeadlessError::Status {
            step: "sign-in page",
            status: 503
        }
    );
    let (mut login, _) =
        HeadlessLogin::start(login_request(), credentials(), HeadlessConfig::default()).unwrap();
    let _ = send(
        login
            .handle_response(&page(&settings(), "logonIdentifier"))
            .unwrap(),
    );
    assert_eq!(
        login
            .handle_response(&HttpResponse::new(200, "<html>oops</html>"))
            .unwrap_err(),
        HeadlessError::UnexpectedAnswer {
            step: "credentials"
        }
    );
}

#[test]
fn cookies_are_bounded_and_expired_ones_dropped() {
    let (mut login, _) =
        HeadlessLogin::start(login_request(), credentials(), HeadlessConfig::default()).unwrap();
    let mut flood = page(&settings(), "logonIdentifier")
        .with_header("Set-Cookie", "gone=1")
        .with_header("Set-Cookie", "gone=; Max-Age=0")
        .with_header("Set-Cookie", "bad name=1")
        .with_header("Set-Cookie", "noequals");
    for i in 0..100 {
        flood = flood.with_header("Set-Cookie", format!("c{i}=v"));
    }
    let post = send(login.handle_response(&flood).unwrap());
    let jar = header_of(&post, "cookie").unwrap();
    assert_eq!(jar.split("; ").count(), MAX_COOKIES);
    assert!(!jar.contains("gone") && !jar.contains("bad"), "{jar}");
}

#[test]
fn a_cookie_attribute_with_non_ascii_text_is_read_without_slicing_a_character() {
    // Found by the property test below: "abc€€x" has its 8th byte inside the second '€',
    // where reading a "Max-Age=" prefix by slicing the text panicked.
    let (mut login, _) =
        HeadlessLogin::start(login_request(), credentials(), HeadlessConfig::default()).unwrap();
    let answer = page(&settings(), "logonIdentifier")
        .with_header("Set-Cookie", "kept=1; abc€€x")
        .with_header("Set-Cookie", "gone=1")
        .with_header("Set-Cookie", "gone=1; MAX-AGE=0");
    let post = send(login.handle_response(&answer).unwrap());
    let jar = header_of(&post, "cookie").unwrap();
    assert!(jar.contains("kept=1") && !jar.contains("gone"), "{jar}");
}

#[test]
fn a_relative_or_missing_authorization_url_is_refused() {
    let mut request = login_request();
    request.url = "/authorize?x".to_owned();
    assert_eq!(
        HeadlessLogin::start(request, credentials(), HeadlessConfig::default()).unwrap_err(),
        HeadlessError::BadUrl
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

    #[test]
    fn any_answers_end_in_a_code_or_an_error_without_panicking(
        bodies in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), 1..6),
        statuses in proptest::collection::vec(proptest::prelude::prop_oneof![proptest::prelude::Just(200u16), proptest::prelude::Just(302u16), 100u16..600], 6),
    ) {
        let (mut login, _) =
            HeadlessLogin::start(login_request(), credentials(), HeadlessConfig::default()).unwrap();
        for (body, status) in bodies.into_iter().zip(statuses) {
            let text = String::from_utf8_lossy(&body).into_owned();
            let response = HttpResponse::new(status, body).with_header("Location", text.clone()).with_header("Set-Cookie", text);
            match login.handle_response(&response) {
                Ok(Next::Send(r)) => proptest::prop_assert!(!r.url.is_empty()),
                Ok(Next::Code(_)) | Err(_) => break,
            }
        }
    }
}

#[test]
fn custom_policies_default_to_sign_in_name_and_built_in_ones_to_logon_identifier() {
    let watts = HeadlessConfig::for_profile(&Profile::builtin("watts").unwrap());
    assert_eq!(watts.username_field, "signInName");
    let diy = HeadlessConfig::for_profile(&Profile::builtin("bticino-diy").unwrap());
    assert_eq!(diy.username_field, "logonIdentifier");
    assert_eq!(
        diy.user_agent.as_deref(),
        Some("NetatmoApp(DoorEntry/v1.8.4) Android(13/Google/sdk_gphone64_arm64)")
    );
}

#[test]
fn csrf_and_transaction_come_from_cookies_when_the_page_lacks_them() {
    use base64::Engine as _;
    let request = login_request();
    let (mut login, _) =
        HeadlessLogin::start(request, credentials(), HeadlessConfig::default()).unwrap();
    let trans = base64::engine::general_purpose::STANDARD
        .encode(r#"{"T_DIC":[{"I":"x"}],"C_ID":"guid-1"}"#);
    let no_csrf = r#"{"api":"CombinedSigninAndSignup","hosts":{"policy":"B2C_1_DoorEliot-DIY-SignUporSignIn"}}"#;
    let page = page(no_csrf, "logonIdentifier")
        .with_header("Set-Cookie", "x-ms-cpim-csrf=COOKIE-CSRF; path=/; secure")
        .with_header("Set-Cookie", format!("x-ms-cpim-trans={trans}; path=/"));
    let post = send(login.handle_response(&page).unwrap());
    assert_eq!(header_of(&post, "x-csrf-token"), Some("COOKIE-CSRF"));
    let expected_tx = format!(
        "StateProperties={}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"TID":"guid-1"}"#)
    );
    assert!(
        post.url
            .contains(&form::encode(&[("tx", expected_tx.as_str())])),
        "{}",
        post.url
    );
    assert!(
        post.url
            .starts_with(&format!("{ORIGIN}{TENANT}/SelfAsserted")),
        "{}",
        post.url
    );
}

#[test]
fn a_page_without_csrf_anywhere_is_named() {
    let request = login_request();
    let (mut login, _) =
        HeadlessLogin::start(request, credentials(), HeadlessConfig::default()).unwrap();
    let r = login.handle_response(&page(
        r#"{"transId":"StateProperties=x"}"#,
        "logonIdentifier",
    ));
    assert!(
        matches!(r, Err(HeadlessError::PageMissing { what: "csrf" })),
        "{r:?}"
    );
}
