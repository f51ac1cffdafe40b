use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(7)
}

fn params(url: &str) -> Vec<(String, String)> {
    form::decode(url.split_once('?').unwrap().1)
}

fn value<'a>(pairs: &'a [(String, String)], k: &str) -> Option<&'a str> {
    pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

#[test]
fn watts_authorize_url_has_pkce_prompt_and_client_info() {
    let p = Profile::builtin("watts").unwrap();
    let req = authorization_request(&p, &AuthorizeOptions::default(), &mut rng()).unwrap();
    assert!(req.url.starts_with(
        "https://login.watts.io/tfp/wattsb2cap02.onmicrosoft.com/B2C_1A_Residential_UnifiedSignUpOrSignIn/oauth2/v2.0/authorize?"
    ));
    let q = params(&req.url);
    assert_eq!(value(&q, "response_type"), Some("code"));
    assert_eq!(
        value(&q, "client_id"),
        Some("c832c38c-ce70-4ebc-83b6-b4548083ac90")
    );
    assert_eq!(
        value(&q, "redirect_uri"),
        Some("msalc832c38c-ce70-4ebc-83b6-b4548083ac90://auth")
    );
    assert_eq!(value(&q, "prompt"), Some("login"));
    assert_eq!(value(&q, "client_info"), Some("1"));
    assert_eq!(value(&q, "code_challenge_method"), Some("S256"));
    let verifier = req.pkce.as_ref().unwrap();
    assert_eq!(
        value(&q, "code_challenge"),
        Some(verifier.challenge().as_str())
    );
    assert_eq!(value(&q, "state"), Some(req.state.expose()));
    assert_eq!(req.state.expose().len(), 32);
}

#[test]
fn bticino_authorize_url_carries_the_b2c_policy() {
    let p = Profile::builtin("bticino-diy").unwrap();
    let req = authorization_request(&p, &AuthorizeOptions::default(), &mut rng()).unwrap();
    let q = params(&req.url);
    assert_eq!(value(&q, "p"), Some("B2C_1_DoorEliot-DIY-SignUporSignIn"));
    assert_eq!(
        value(&q, "redirect_uri"),
        Some("com.legrandgroup.diy://oauth2redirect")
    );
}

#[test]
fn utec_authorize_url_carries_the_client_secret_as_documented() {
    let p = Profile::builtin("utec")
        .unwrap()
        .with_client_id("ak")
        .with_client_secret(Secret::new("sk"))
        .with_redirect_uri("http://127.0.0.1:8080/cb");
    let req = authorization_request(&p, &AuthorizeOptions::default(), &mut rng()).unwrap();
    let q = params(&req.url);
    assert_eq!(value(&q, "client_secret"), Some("sk"));
    assert_eq!(value(&q, "code_challenge"), None);
    assert!(req.pkce.is_none());
}

#[test]
fn options_override_prompt_and_redirect_and_add_params() {
    let p = Profile::builtin("watts").unwrap();
    let opts = AuthorizeOptions {
        prompt: Some(String::new()),
        login_hint: Some("me@example.com".into()),
        redirect_uri: Some("http://127.0.0.1:5000/cb".into()),
        extra: vec![("haschrome".into(), "1".into())],
    };
    let req = authorization_request(&p, &opts, &mut rng()).unwrap();
    let q = params(&req.url);
    assert_eq!(value(&q, "prompt"), None);
    assert_eq!(value(&q, "login_hint"), Some("me@example.com"));
    assert_eq!(value(&q, "haschrome"), Some("1"));
    assert_eq!(req.redirect_uri, "http://127.0.0.1:5000/cb");
}

#[test]
fn two_logins_never_share_state_or_verifier() {
    let p = Profile::builtin("watts").unwrap();
    let mut r = rng();
    let a = authorization_request(&p, &AuthorizeOptions::default(), &mut r).unwrap();
    let b = authorization_request(&p, &AuthorizeOptions::default(), &mut r).unwrap();
    assert_ne!(a.state, b.state);
    assert_ne!(a.pkce.unwrap().expose(), b.pkce.unwrap().expose());
}

fn watts_request() -> (Profile, AuthorizationRequest) {
    let p = Profile::builtin("watts").unwrap();
    let req = authorization_request(&p, &AuthorizeOptions::default(), &mut rng()).unwrap();
    (p, req)
}

#[test]
fn pasted_custom_scheme_redirect_yields_the_code() {
    let (p, req) = watts_request();
    let url = format!(
        "msalc832c38c-ce70-4ebc-83b6-b4548083ac90://auth?state={}&code=eyJraWQ%2Babc&client_info=xyz\n",
        req.state.expose()
    );
    let got = parse_redirect(&url, &req, &p.authorize.code_params).unwrap();
    assert_eq!(got.code.expose(), "eyJraWQ+abc");
    assert_eq!(
        got.extra,
        vec![("client_info".to_owned(), "xyz".to_owned())]
    );
}

#[test]
fn bare_query_string_and_fragment_are_accepted() {
    let (p, req) = watts_request();
    let s = req.state.expose();
    for input in [
        format!("?code=c1&state={s}"),
        format!("code=c1&state={s}"),
        format!("#code=c1&state={s}"),
        format!("msalc832c38c-ce70-4ebc-83b6-b4548083ac90://auth/#code=c1&state={s}"),
    ] {
        let got = parse_redirect(&input, &req, &p.authorize.code_params).unwrap();
        assert_eq!(got.code.expose(), "c1", "{input}");
    }
}

#[test]
fn utec_callback_names_the_code_authorization_code() {
    let p = Profile::builtin("utec")
        .unwrap()
        .with_client_id("ak")
        .with_client_secret(Secret::new("sk"))
        .with_redirect_uri("https://example.com/cb");
    let req = authorization_request(&p, &AuthorizeOptions::default(), &mut rng()).unwrap();
    let url = format!(
        "https://example.com/cb?authorization_code=AC&state={}",
        req.state.expose()
    );
    let got = parse_redirect(&url, &req, &p.authorize.code_params).unwrap();
    assert_eq!(got.code.expose(), "AC");
}

#[test]
fn provider_error_is_reported_with_its_description() {
    let (p, req) = watts_request();
    let err = parse_redirect(
        "msalc832c38c-ce70-4ebc-83b6-b4548083ac90://auth?error=access_denied&error_description=AADB2C90118%3A+The+user+has+forgotten+their+password.",
        &req,
        &p.authorize.code_params,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the provider refused the login: access_denied: AADB2C90118: The user has forgotten their password."
    );
}

#[test]
fn state_mismatch_and_missing_state_are_refused() {
    let (p, req) = watts_request();
    let wrong = "code=c&state=00000000000000000000000000000000";
    assert_eq!(
        parse_redirect(wrong, &req, &p.authorize.code_params),
        Err(RedirectError::StateMismatch)
    );
    assert_eq!(
        parse_redirect("code=c", &req, &p.authorize.code_params),
        Err(RedirectError::MissingState)
    );
}

#[test]
fn missing_code_empty_and_oversized_input_are_named() {
    let (p, req) = watts_request();
    let s = req.state.expose();
    assert_eq!(
        parse_redirect(&format!("state={s}&code="), &req, &p.authorize.code_params)
            .unwrap_err()
            .to_string(),
        "the redirect has no `code` parameter; paste the whole URL"
    );
    assert_eq!(
        parse_redirect("  \n", &req, &p.authorize.code_params),
        Err(RedirectError::Empty)
    );
    let long = "a".repeat(MAX_REDIRECT_LEN + 1);
    assert!(matches!(
        parse_redirect(&long, &req, &p.authorize.code_params),
        Err(RedirectError::TooLong { .. })
    ));
}

#[test]
fn pasting_the_login_url_back_is_explained() {
    let (p, req) = watts_request();
    assert_eq!(
        parse_redirect(&req.url, &req, &p.authorize.code_params),
        Err(RedirectError::IsAuthorizationUrl)
    );
}

#[test]
fn a_redirect_to_another_uri_is_refused() {
    let (p, req) = watts_request();
    let url = format!(
        "https://evil.example/cb?code=c&state={}",
        req.state.expose()
    );
    assert!(matches!(
        parse_redirect(&url, &req, &p.authorize.code_params),
        Err(RedirectError::WrongRedirectUri { .. })
    ));
}

proptest::proptest! {
    #[test]
    fn parse_redirect_never_panics(input in ".{0,300}") {
        let (p, req) = watts_request();
        let _ = parse_redirect(&input, &req, &p.authorize.code_params);
    }

    #[test]
    fn any_code_round_trips_through_a_redirect(code in "[ -~]{1,80}") {
        let (p, req) = watts_request();
        let q = form::encode(&[("code", &code), ("state", req.state.expose())]);
        let url = format!("msalc832c38c-ce70-4ebc-83b6-b4548083ac90://auth?{q}");
        let got = parse_redirect(&url, &req, &p.authorize.code_params).unwrap();
        proptest::prop_assert_eq!(got.code.expose(), code.as_str());
    }
}

/// RFC 9207 §2.4: a redirect naming another issuer is refused; the right one passes.
#[test]
fn a_redirect_from_another_issuer_is_refused_per_rfc9207() {
    let mut p = Profile::builtin("generic")
        .unwrap()
        .with_client_id("c")
        .with_redirect_uri("http://127.0.0.1:9/callback")
        .with_issuer("https://idp.example")
        .unwrap();
    p.endpoints.authorization = Some("https://idp.example/auth".into());
    let req = authorization_request(&p, &AuthorizeOptions::default(), &mut rng()).unwrap();
    let s = req.state.expose();
    let good =
        format!("http://127.0.0.1:9/callback?code=c&state={s}&iss=https%3A%2F%2Fidp.example");
    assert!(parse_redirect(&good, &req, &p.authorize.code_params).is_ok());
    let bad =
        format!("http://127.0.0.1:9/callback?code=c&state={s}&iss=https%3A%2F%2Fevil.example");
    assert_eq!(
        parse_redirect(&bad, &req, &p.authorize.code_params),
        Err(RedirectError::IssuerMismatch {
            expected: "https://idp.example".into(),
            found: "https://evil.example".into()
        })
    );
}
