//! Token endpoint requests as [`HttpRequest`] values (RFC 6749 §4.1.3, §4.4.2, §6;
//! RFC 8628 §3.1, §3.4): the core builds them, a driver sends them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::form;
use crate::http::{HttpRequest, Method};
use crate::pkce::PkceVerifier;
use crate::profile::{ClientAuth, Profile, ProfileError};
use crate::secret::Secret;

const FORM: &str = "application/x-www-form-urlencoded";

/// The authorization-code exchange (RFC 6749 §4.1.3), with the PKCE verifier when the login
/// sent a challenge. `redirect_uri` must be the one the authorization request sent.
///
/// # Errors
/// [`ProfileError::Missing`] for a missing token endpoint, client id or required secret.
pub fn authorization_code(
    profile: &Profile,
    code: &Secret,
    verifier: Option<&PkceVerifier>,
    redirect_uri: &str,
) -> Result<HttpRequest, ProfileError> {
    let scope = profile.scope();
    let mut fields: Vec<(&str, &str)> = vec![
        ("grant_type", "authorization_code"),
        ("code", code.expose()),
        ("redirect_uri", redirect_uri),
    ];
    if let Some(v) = verifier {
        fields.push(("code_verifier", v.expose()));
    }
    if let Some(s) = &scope {
        fields.push(("scope", s));
    }
    token_request(profile, &profile.token_endpoint()?, fields)
}

/// A refresh (RFC 6749 §6), with `scope` and `redirect_uri` as the profile asks.
///
/// # Errors
/// [`ProfileError::Missing`] for a missing token endpoint, client id or required secret.
pub fn refresh(profile: &Profile, refresh_token: &Secret) -> Result<HttpRequest, ProfileError> {
    let scope = profile.scope();
    let mut fields: Vec<(&str, &str)> = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.expose()),
    ];
    if profile.token.refresh_sends_scope
        && let Some(s) = &scope
    {
        fields.push(("scope", s));
    }
    let redirect;
    if profile.token.refresh_sends_redirect_uri {
        redirect = profile.redirect_uri()?.to_owned();
        fields.push(("redirect_uri", &redirect));
    }
    token_request(profile, &profile.token_endpoint()?, fields)
}

/// The client-credentials grant (RFC 6749 §4.4.2) for `scopes` (the profile's when empty).
///
/// # Errors
/// [`ProfileError::Missing`] for a missing token endpoint, client id or secret (this grant
/// is for confidential clients).
pub fn client_credentials(profile: &Profile, scopes: &[&str]) -> Result<HttpRequest, ProfileError> {
    if profile.client.auth == ClientAuth::None {
        return Err(ProfileError::Invalid {
            field: "client.auth",
            reason: "must be client_secret_post or client_secret_basic for the client_credentials grant",
        });
    }
    let scope = if scopes.is_empty() {
        profile.scope()
    } else {
        Some(scopes.join(" "))
    };
    let mut fields: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
    if let Some(s) = &scope {
        fields.push(("scope", s));
    }
    token_request(profile, &profile.token_endpoint()?, fields)
}

/// The device authorization request (RFC 8628 §3.1).
///
/// # Errors
/// [`ProfileError::Missing`] for a missing device endpoint or client id.
pub fn device_authorization(profile: &Profile) -> Result<HttpRequest, ProfileError> {
    let scope = profile.scope();
    let mut fields: Vec<(&str, &str)> = Vec::new();
    if let Some(s) = &scope {
        fields.push(("scope", s));
    }
    token_request(profile, &profile.device_authorization_endpoint()?, fields)
}

/// The device access token poll (RFC 8628 §3.4).
///
/// # Errors
/// [`ProfileError::Missing`] for a missing token endpoint or client id.
pub fn device_token(profile: &Profile, device_code: &Secret) -> Result<HttpRequest, ProfileError> {
    let fields = vec![
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", device_code.expose()),
    ];
    token_request(profile, &profile.token_endpoint()?, fields)
}

/// A form POST to `url` with client authentication, the profile's extra form fields and
/// headers.
fn token_request<'a>(
    profile: &'a Profile,
    url: &str,
    mut fields: Vec<(&'a str, &'a str)>,
) -> Result<HttpRequest, ProfileError> {
    let client_id = profile.client_id()?;
    let secret = profile.client_secret()?;
    let mut req = HttpRequest::new(Method::Post, url);
    match profile.client.auth {
        ClientAuth::None => fields.insert(0, ("client_id", client_id)),
        ClientAuth::ClientSecretPost => {
            fields.insert(0, ("client_id", client_id));
            if let Some(s) = secret {
                fields.push(("client_secret", s.expose()));
            }
        }
        ClientAuth::ClientSecretBasic => {
            // RFC 6749 §2.3.1: both parts form-urlencoded before base64.
            let user = form_component(client_id);
            let pass = secret
                .map(|s| form_component(s.expose()))
                .unwrap_or_default();
            let basic = STANDARD.encode(format!("{user}:{pass}"));
            req.push_header("Authorization", format!("Basic {basic}"));
        }
    }
    for (k, v) in &profile.token.extra_form {
        fields.push((k, v));
    }
    req.push_header("Content-Type", FORM);
    req.push_header("Accept", "application/json");
    for (k, v) in &profile.token.extra_headers {
        req.push_header(k.clone(), v.clone());
    }
    req.body = form::encode(&fields).into_bytes();
    Ok(req)
}

/// One value form-urlencoded on its own (`application/x-www-form-urlencoded` of RFC 6749
/// Appendix B).
fn form_component(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(req: &HttpRequest) -> Vec<(String, String)> {
        form::decode(core::str::from_utf8(&req.body).unwrap())
    }

    fn value<'a>(pairs: &'a [(String, String)], k: &str) -> Option<&'a str> {
        pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    #[test]
    fn watts_code_exchange_matches_the_app() {
        let p = Profile::builtin("watts").unwrap();
        let v = PkceVerifier::from_string("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        let req = authorization_code(
            &p,
            &Secret::new("CODE"),
            Some(&v),
            p.redirect_uri().unwrap(),
        )
        .unwrap();
        assert_eq!(req.method, Method::Post);
        assert!(req.url.ends_with("/oauth2/v2.0/token"));
        assert_eq!(req.header("content-type"), Some(FORM));
        let f = fields(&req);
        assert_eq!(
            value(&f, "client_id"),
            Some("c832c38c-ce70-4ebc-83b6-b4548083ac90")
        );
        assert_eq!(value(&f, "grant_type"), Some("authorization_code"));
        assert_eq!(value(&f, "code"), Some("CODE"));
        assert_eq!(value(&f, "code_verifier"), Some(v.expose()));
        assert_eq!(value(&f, "client_info"), Some("1"));
        assert_eq!(
            value(&f, "redirect_uri"),
            Some("msalc832c38c-ce70-4ebc-83b6-b4548083ac90://auth")
        );
        assert!(value(&f, "scope").unwrap().contains("offline_access"));
        assert!(req.header("authorization").is_none());
    }

    #[test]
    fn bticino_refresh_goes_to_the_policy_token_url_with_scope() {
        let p = Profile::builtin("bticino-c100x").unwrap();
        let req = refresh(&p, &Secret::new("RT")).unwrap();
        assert!(
            req.url
                .ends_with("token?p=B2C_1_DoorEliot-C100X-SignUporSignIn"),
            "{}",
            req.url
        );
        let f = fields(&req);
        assert_eq!(value(&f, "grant_type"), Some("refresh_token"));
        assert_eq!(value(&f, "refresh_token"), Some("RT"));
        assert!(value(&f, "scope").is_some());
        assert!(req.header("user-agent").unwrap().starts_with("NetatmoApp"));
    }

    #[test]
    fn client_secret_post_puts_the_secret_in_the_form() {
        let p = Profile::builtin("utec")
            .unwrap()
            .with_client_id("ak")
            .with_client_secret(Secret::new("sk"));
        let req = refresh(&p, &Secret::new("RT")).unwrap();
        let f = fields(&req);
        assert_eq!(value(&f, "client_id"), Some("ak"));
        assert_eq!(value(&f, "client_secret"), Some("sk"));
        assert_eq!(value(&f, "scope"), Some("openapi"));
    }

    /// RFC 6749 §2.3.1: id and secret are form-urlencoded, joined by `:`, then base64.
    #[test]
    fn client_secret_basic_encodes_id_and_secret_per_rfc6749_2_3_1() {
        let mut p = Profile::builtin("generic")
            .unwrap()
            .with_client_id("my client")
            .with_client_secret(Secret::new("p@ss:w/rd"));
        p.client.auth = ClientAuth::ClientSecretBasic;
        p.endpoints.token = Some("https://idp.example/token".into());
        let req = client_credentials(&p, &["read", "write"]).unwrap();
        let expected = STANDARD.encode("my+client:p%40ss%3Aw%2Frd");
        assert_eq!(
            req.header("Authorization"),
            Some(format!("Basic {expected}").as_str())
        );
        let f = fields(&req);
        assert_eq!(value(&f, "client_id"), None);
        assert_eq!(value(&f, "client_secret"), None);
        assert_eq!(value(&f, "scope"), Some("read write"));
        assert_eq!(value(&f, "grant_type"), Some("client_credentials"));
    }

    #[test]
    fn client_credentials_needs_a_confidential_client() {
        let mut p = Profile::builtin("generic").unwrap().with_client_id("c");
        p.endpoints.token = Some("https://idp.example/token".into());
        assert!(client_credentials(&p, &[]).is_err());
    }

    #[test]
    fn device_flow_requests_use_the_rfc8628_grant_type() {
        let mut p = Profile::builtin("generic").unwrap().with_client_id("c");
        p.endpoints.token = Some("https://idp.example/token".into());
        assert!(device_authorization(&p).is_err());
        p.endpoints.device_authorization = Some("https://idp.example/device".into());
        let a = device_authorization(&p).unwrap();
        assert_eq!(a.url, "https://idp.example/device");
        assert_eq!(value(&fields(&a), "client_id"), Some("c"));
        let t = device_token(&p, &Secret::new("DC")).unwrap();
        let f = fields(&t);
        assert_eq!(
            value(&f, "grant_type"),
            Some("urn:ietf:params:oauth:grant-type:device_code")
        );
        assert_eq!(value(&f, "device_code"), Some("DC"));
    }

    #[test]
    fn missing_client_id_is_named() {
        let p = Profile::builtin("utec").unwrap();
        assert_eq!(
            refresh(&p, &Secret::new("RT")).unwrap_err().to_string(),
            "provider profile \"utec\" needs a value for `client.id`"
        );
    }
}
