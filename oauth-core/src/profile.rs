//! Provider profiles: everything provider-specific, as data (TOML) rather than code.
//!
//! The crate ships `watts`, `bticino-diy`, `bticino-c100x`, `utec` and `generic`
//! (see `oauth-core/profiles/*.toml`; each value there cites ../shared/providers/FACTS.md).
//! Users load their own with [`Profile::from_toml`]. User-specific values (a U-tec client id
//! and secret, a generic provider's issuer) are set with the `with_*` methods, never written
//! into a shipped profile.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::secret::Secret;

/// One provider: endpoints, client registration and the rules its tokens follow.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Profile {
    /// Short name used on the command line and in state file names (`watts`, `utec`, …).
    pub name: String,
    /// Human name.
    pub display_name: String,
    /// Issuer for discovery (`generic`); endpoints listed explicitly win over discovered ones.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Endpoint URLs.
    #[serde(default)]
    pub endpoints: Endpoints,
    /// Client registration.
    pub client: ClientConfig,
    /// PKCE use.
    #[serde(default)]
    pub pkce: PkceConfig,
    /// Authorization request details.
    #[serde(default)]
    pub authorize: AuthorizeConfig,
    /// Token request details.
    #[serde(default)]
    pub token: TokenRequestConfig,
    /// Token response details.
    #[serde(default)]
    pub response: ResponseConfig,
    /// Token lifetime rules.
    #[serde(default)]
    pub lifecycle: LifecycleConfig,
    /// The provider's resource API (used by provider clients, not by the token machinery).
    #[serde(default)]
    pub api: ApiConfig,
    /// Free-form provider facts read by provider modules (certificate template, SIP user…).
    #[serde(default)]
    pub vendor: BTreeMap<String, String>,
}

/// Endpoint URLs of a provider.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Endpoints {
    /// Authorization endpoint (RFC 6749 §3.1).
    pub authorization: Option<String>,
    /// Token endpoint (RFC 6749 §3.2).
    pub token: Option<String>,
    /// Device authorization endpoint (RFC 8628 §3.1).
    pub device_authorization: Option<String>,
    /// Azure AD B2C built-in policy, appended as `p=<policy>` to the authorization and token
    /// endpoint URLs.
    pub b2c_policy: Option<String>,
}

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientAuth {
    /// A public client: `client_id` in the form, no secret.
    #[default]
    None,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// HTTP Basic with the form-urlencoded id and secret.
    ClientSecretBasic,
}

/// The client registration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ClientConfig {
    /// `client_id` (empty in a profile means the user must supply one).
    pub id: String,
    /// `client_secret`, for confidential clients; set by the user, never shipped.
    #[serde(default)]
    pub secret: Option<Secret>,
    /// Token endpoint client authentication.
    #[serde(default)]
    pub auth: ClientAuth,
    /// Registered redirect URI (a custom scheme for the mobile-app clients, or a loopback URL).
    #[serde(default)]
    pub redirect_uri: Option<String>,
    /// Requested scopes, in order.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// PKCE use.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PkceConfig {
    /// Send an S256 challenge and the verifier (default true).
    #[serde(default = "yes")]
    pub send: bool,
}

impl Default for PkceConfig {
    fn default() -> Self {
        PkceConfig { send: true }
    }
}

/// Authorization request details.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AuthorizeConfig {
    /// `prompt` value (`login` forces the sign-in page).
    pub prompt: Option<String>,
    /// Extra query parameters (`client_info = "1"` for MSAL-style B2C apps).
    #[serde(default)]
    pub extra: BTreeMap<String, String>,
    /// Put `client_secret` in the authorize URL (U-tec's documented flow).
    #[serde(default)]
    pub send_client_secret: bool,
    /// Names of the redirect parameter carrying the code, tried in order (default `code`).
    #[serde(default = "default_code_params")]
    pub code_params: Vec<String>,
}

/// Token request details.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TokenRequestConfig {
    /// Extra form fields sent with every token request.
    #[serde(default)]
    pub extra_form: BTreeMap<String, String>,
    /// Extra header fields sent with every token request.
    #[serde(default)]
    pub extra_headers: BTreeMap<String, String>,
    /// Send `scope` with refresh requests (default true; B2C needs it).
    #[serde(default = "yes")]
    pub refresh_sends_scope: bool,
    /// Send `redirect_uri` with refresh requests (default false).
    #[serde(default)]
    pub refresh_sends_redirect_uri: bool,
}

impl Default for TokenRequestConfig {
    fn default() -> Self {
        TokenRequestConfig {
            extra_form: BTreeMap::new(),
            extra_headers: BTreeMap::new(),
            refresh_sends_scope: true,
            refresh_sends_redirect_uri: false,
        }
    }
}

/// How a provider wraps its token response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Wrapper {
    /// The RFC 6749 §5.1 JSON object itself.
    #[default]
    None,
    /// `{"code":200,"data":{…}}` (U-tec); an unwrapped body is accepted too.
    CodeData,
}

/// Token response details.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ResponseConfig {
    /// Response wrapper.
    #[serde(default)]
    pub wrapper: Wrapper,
    /// Lifetime assumed when neither `expires_in`, `expires_on` nor a JWT `exp` says.
    pub default_expires_in: Option<u64>,
}

/// Token lifetime rules of a provider. All durations in seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LifecycleConfig {
    /// A fixed refresh margin (refresh this long before the access token expires). When
    /// absent the margin is `max(margin_min_secs, margin_percent % of the lifetime)`.
    pub refresh_margin_secs: Option<u64>,
    /// Lower bound of the computed margin (default 60, AppAuth's value).
    #[serde(default = "default_margin_min")]
    pub margin_min_secs: u64,
    /// Share of the lifetime used as margin, in percent (default 10).
    #[serde(default = "default_margin_percent")]
    pub margin_percent: u8,
    /// Absolute refresh-token lifetime when the server does not send
    /// `refresh_token_expires_in` (Watts: 90 days).
    pub refresh_token_lifetime_secs: Option<u64>,
    /// Whether a rotated refresh token starts a new absolute lifetime (default false: the
    /// first expiry is kept unless the server sends a new `refresh_token_expires_in`).
    #[serde(default)]
    pub refresh_token_sliding: bool,
    /// Refresh tokens lapse after this much disuse; an idle session is refreshed before.
    pub refresh_token_idle_secs: Option<u64>,
    /// `Event::ReauthSoon` this many days before an absolute refresh-token expiry (default 7).
    #[serde(default = "default_reauth_soon_days")]
    pub reauth_soon_days: u64,
    /// Whether the provider is known to rotate refresh tokens (documentation only; latchkey
    /// always stores whatever comes back).
    pub rotates_refresh_tokens: Option<bool>,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            refresh_margin_secs: None,
            margin_min_secs: default_margin_min(),
            margin_percent: default_margin_percent(),
            refresh_token_lifetime_secs: None,
            refresh_token_sliding: false,
            refresh_token_idle_secs: None,
            reauth_soon_days: default_reauth_soon_days(),
            rotates_refresh_tokens: None,
        }
    }
}

/// The provider's resource API.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ApiConfig {
    /// Base URL of the resource API.
    pub base_url: Option<String>,
    /// Headers sent with every API call (besides `Authorization`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}
fn default_code_params() -> Vec<String> {
    vec!["code".to_owned()]
}
fn default_margin_min() -> u64 {
    60
}
fn default_margin_percent() -> u8 {
    10
}
fn default_reauth_soon_days() -> u64 {
    7
}

/// The profiles shipped with the crate, by name.
const BUILTIN: [(&str, &str); 5] = [
    ("watts", include_str!("../profiles/watts.toml")),
    ("bticino-diy", include_str!("../profiles/bticino-diy.toml")),
    (
        "bticino-c100x",
        include_str!("../profiles/bticino-c100x.toml"),
    ),
    ("utec", include_str!("../profiles/utec.toml")),
    ("generic", include_str!("../profiles/generic.toml")),
];

/// What is wrong with a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProfileError {
    /// No shipped profile has this name.
    Unknown {
        /// The name asked for.
        name: String,
    },
    /// The TOML does not parse or does not match the schema.
    Toml {
        /// The parser's explanation (line and column included).
        message: String,
    },
    /// A field needed for the requested operation is empty.
    Missing {
        /// The profile.
        profile: String,
        /// The field, as written in TOML (`client.id`, `endpoints.token`, …).
        field: &'static str,
    },
    /// A URL field is not an absolute `https://` URL (plain `http://` is allowed only for
    /// loopback hosts, for tests and local providers).
    InvalidUrl {
        /// The field.
        field: &'static str,
        /// The value.
        url: String,
    },
    /// A value is out of range.
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileError::Unknown { name } => {
                let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
                write!(
                    f,
                    "no provider profile named {name:?}; known: {}",
                    names.join(", ")
                )
            }
            ProfileError::Toml { message } => write!(f, "provider profile is not valid: {message}"),
            ProfileError::Missing { profile, field } => {
                write!(
                    f,
                    "provider profile {profile:?} needs a value for `{field}`"
                )
            }
            ProfileError::InvalidUrl { field, url } => write!(
                f,
                "`{field}` must be an absolute https:// URL (http:// only on loopback), got {url:?}"
            ),
            ProfileError::Invalid { field, reason } => write!(f, "`{field}` {reason}"),
        }
    }
}

impl std::error::Error for ProfileError {}

impl Profile {
    /// Names of the shipped profiles.
    #[must_use]
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(n, _)| *n).collect()
    }

    /// A shipped profile.
    ///
    /// # Errors
    /// [`ProfileError::Unknown`] for a name not shipped.
    pub fn builtin(name: &str) -> Result<Profile, ProfileError> {
        let (_, text) =
            BUILTIN
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| ProfileError::Unknown {
                    name: name.to_owned(),
                })?;
        Profile::from_toml(text)
    }

    /// Parses a profile from TOML and checks its values.
    ///
    /// # Errors
    /// [`ProfileError::Toml`] for syntax or schema errors (unknown keys are refused, so a
    /// typo is not silently ignored); other variants from [`Profile::check`].
    pub fn from_toml(text: &str) -> Result<Profile, ProfileError> {
        let profile: Profile = toml::from_str(text).map_err(|e| ProfileError::Toml {
            message: e.to_string(),
        })?;
        profile.check()?;
        Ok(profile)
    }

    /// Checks the values present (URLs, ranges). Emptiness of fields only some operations
    /// need is checked by those operations ([`Profile::token_endpoint`], …).
    ///
    /// # Errors
    /// The first problem found.
    pub fn check(&self) -> Result<(), ProfileError> {
        if self.name.is_empty() {
            return Err(ProfileError::Invalid {
                field: "name",
                reason: "must not be empty",
            });
        }
        for (field, url) in [
            ("issuer", &self.issuer),
            ("endpoints.authorization", &self.endpoints.authorization),
            ("endpoints.token", &self.endpoints.token),
            (
                "endpoints.device_authorization",
                &self.endpoints.device_authorization,
            ),
            ("api.base_url", &self.api.base_url),
        ] {
            if let Some(url) = url {
                check_url(field, url)?;
            }
        }
        if self.lifecycle.margin_percent > 50 {
            return Err(ProfileError::Invalid {
                field: "lifecycle.margin_percent",
                reason: "must be at most 50 (a larger margin refreshes before half the lifetime)",
            });
        }
        if self.authorize.code_params.is_empty() {
            return Err(ProfileError::Invalid {
                field: "authorize.code_params",
                reason: "must name at least one parameter",
            });
        }
        if self.client.auth != ClientAuth::None
            && self.client.secret.as_ref().is_some_and(Secret::is_empty)
        {
            return Err(ProfileError::Invalid {
                field: "client.secret",
                reason: "must not be empty",
            });
        }
        Ok(())
    }

    /// Sets the client id (U-tec "Access Key", a generic provider's registration).
    #[must_use]
    pub fn with_client_id(mut self, id: impl Into<String>) -> Self {
        self.client.id = id.into();
        self
    }

    /// Sets the client secret (U-tec "Secret Key", confidential clients).
    #[must_use]
    pub fn with_client_secret(mut self, secret: Secret) -> Self {
        self.client.secret = Some(secret);
        self
    }

    /// Sets the redirect URI (a loopback URL chosen at login time, for example).
    #[must_use]
    pub fn with_redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.client.redirect_uri = Some(uri.into());
        self
    }

    /// Sets the issuer, for discovery.
    ///
    /// # Errors
    /// [`ProfileError::InvalidUrl`] when it is not an https URL.
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Result<Self, ProfileError> {
        let issuer = issuer.into();
        check_url("issuer", &issuer)?;
        self.issuer = Some(issuer);
        Ok(self)
    }

    /// Sets endpoints (explicit or discovered); fields left `None` in `endpoints` keep their
    /// current value.
    ///
    /// # Errors
    /// [`ProfileError::InvalidUrl`] for a URL that is not https.
    pub fn with_endpoints(mut self, endpoints: Endpoints) -> Result<Self, ProfileError> {
        if let Some(u) = endpoints.authorization {
            check_url("endpoints.authorization", &u)?;
            self.endpoints.authorization = Some(u);
        }
        if let Some(u) = endpoints.token {
            check_url("endpoints.token", &u)?;
            self.endpoints.token = Some(u);
        }
        if let Some(u) = endpoints.device_authorization {
            check_url("endpoints.device_authorization", &u)?;
            self.endpoints.device_authorization = Some(u);
        }
        if endpoints.b2c_policy.is_some() {
            self.endpoints.b2c_policy = endpoints.b2c_policy;
        }
        Ok(self)
    }

    /// The client id, which every request needs.
    ///
    /// # Errors
    /// [`ProfileError::Missing`] when empty.
    pub fn client_id(&self) -> Result<&str, ProfileError> {
        if self.client.id.is_empty() {
            return Err(self.missing("client.id"));
        }
        Ok(&self.client.id)
    }

    /// The token endpoint with the B2C policy applied.
    ///
    /// # Errors
    /// [`ProfileError::Missing`] when the profile has none (run discovery first).
    pub fn token_endpoint(&self) -> Result<String, ProfileError> {
        let url = self
            .endpoints
            .token
            .as_deref()
            .ok_or_else(|| self.missing("endpoints.token"))?;
        Ok(self.with_policy(url))
    }

    /// The authorization endpoint with the B2C policy applied.
    ///
    /// # Errors
    /// [`ProfileError::Missing`] when the profile has none.
    pub fn authorization_endpoint(&self) -> Result<String, ProfileError> {
        let url = self
            .endpoints
            .authorization
            .as_deref()
            .ok_or_else(|| self.missing("endpoints.authorization"))?;
        Ok(self.with_policy(url))
    }

    /// The device authorization endpoint.
    ///
    /// # Errors
    /// [`ProfileError::Missing`] when the profile has none.
    pub fn device_authorization_endpoint(&self) -> Result<String, ProfileError> {
        let url = self
            .endpoints
            .device_authorization
            .as_deref()
            .ok_or_else(|| self.missing("endpoints.device_authorization"))?;
        Ok(self.with_policy(url))
    }

    /// The redirect URI.
    ///
    /// # Errors
    /// [`ProfileError::Missing`] when none is set.
    pub fn redirect_uri(&self) -> Result<&str, ProfileError> {
        self.client
            .redirect_uri
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| self.missing("client.redirect_uri"))
    }

    /// The client secret when the client authentication method needs one.
    ///
    /// # Errors
    /// [`ProfileError::Missing`] when the method needs a secret and none is set.
    pub fn client_secret(&self) -> Result<Option<&Secret>, ProfileError> {
        match self.client.auth {
            ClientAuth::None => Ok(self.client.secret.as_ref()),
            _ => self
                .client
                .secret
                .as_ref()
                .filter(|s| !s.is_empty())
                .map(Some)
                .ok_or_else(|| self.missing("client.secret")),
        }
    }

    /// Space-separated scopes (RFC 6749 §3.3), or `None` when the profile lists none.
    #[must_use]
    pub fn scope(&self) -> Option<String> {
        (!self.client.scopes.is_empty()).then(|| self.client.scopes.join(" "))
    }

    fn missing(&self, field: &'static str) -> ProfileError {
        ProfileError::Missing {
            profile: self.name.clone(),
            field,
        }
    }

    fn with_policy(&self, url: &str) -> String {
        match &self.endpoints.b2c_policy {
            Some(p) => crate::form::append_query(url, &[("p", p.as_str())]),
            None => url.to_owned(),
        }
    }
}

/// Checks that `url` is absolute https, or http on a loopback host.
pub(crate) fn check_url(field: &'static str, url: &str) -> Result<(), ProfileError> {
    let bad = || ProfileError::InvalidUrl {
        field,
        url: url.to_owned(),
    };
    let lower = url
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        let rest = &url[7..];
        let host = authority_host(rest);
        if !(host == "127.0.0.1" || host == "[::1]" || host.eq_ignore_ascii_case("localhost")) {
            return Err(bad());
        }
        rest
    } else {
        return Err(bad());
    };
    let host = authority_host(rest);
    if host.is_empty()
        || url
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(bad());
    }
    Ok(())
}

/// The host of `authority[/path…]` without port or user info.
fn authority_host(rest: &str) -> &str {
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if authority.starts_with('[') {
        return authority.find(']').map_or(authority, |i| &authority[..=i]);
    }
    authority.split_once(':').map_or(authority, |(h, _)| h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_profile_parses_and_checks() {
        for name in Profile::builtin_names() {
            let p = Profile::builtin(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(p.name, name);
        }
    }

    #[test]
    fn watts_profile_holds_the_confirmed_facts() {
        let p = Profile::builtin("watts").unwrap();
        assert_eq!(
            p.client_id().unwrap(),
            "c832c38c-ce70-4ebc-83b6-b4548083ac90"
        );
        assert_eq!(
            p.redirect_uri().unwrap(),
            "msalc832c38c-ce70-4ebc-83b6-b4548083ac90://auth"
        );
        assert!(p.pkce.send);
        assert_eq!(p.lifecycle.refresh_token_lifetime_secs, Some(7_776_000));
        assert_eq!(
            p.api.headers.get("Api-Version").map(String::as_str),
            Some("2.0")
        );
        assert_eq!(
            p.scope().unwrap(),
            "https://wattsb2cap02.onmicrosoft.com/wattsapiresi/manage offline_access openid profile"
        );
    }

    #[test]
    fn bticino_flavours_keep_client_template_and_sip_user_consistent() {
        let diy = Profile::builtin("bticino-diy").unwrap();
        let c100x = Profile::builtin("bticino-c100x").unwrap();
        assert_eq!(diy.client.id, "032e1c93-4c8f-4618-9a9c-0355059678cf");
        assert_eq!(diy.vendor["certificate_template"], "sipuser-DIY");
        assert_eq!(diy.vendor["gateway_sip_user"], "diy");
        assert_eq!(c100x.client.id, "7d11af71-ab98-4832-aa62-6b00bff3bcc8");
        assert_eq!(c100x.vendor["certificate_template"], "sipuser");
        assert_eq!(c100x.vendor["certificate_ou"], "C100X");
        assert_eq!(c100x.vendor["gateway_sip_user"], "c100x");
        assert_eq!(
            c100x.redirect_uri().unwrap(),
            "com.legrandgroup.c100x://oauth2redirect"
        );
        assert!(
            c100x
                .token_endpoint()
                .unwrap()
                .ends_with("/oauth2/v2.0/token?p=B2C_1_DoorEliot-C100X-SignUporSignIn")
        );
    }

    #[test]
    fn utec_needs_the_users_own_client_credentials() {
        let p = Profile::builtin("utec").unwrap();
        assert_eq!(
            p.client_id().unwrap_err().to_string(),
            "provider profile \"utec\" needs a value for `client.id`"
        );
        assert!(p.client_secret().is_err());
        let p = p.with_client_id("ak").with_client_secret(Secret::new("sk"));
        assert_eq!(p.client_id().unwrap(), "ak");
        assert_eq!(p.client_secret().unwrap().unwrap().expose(), "sk");
        assert_eq!(p.response.wrapper, Wrapper::CodeData);
        assert_eq!(p.lifecycle.refresh_margin_secs, Some(300));
    }

    #[test]
    fn unknown_profile_lists_the_known_ones() {
        let e = Profile::builtin("nest").unwrap_err().to_string();
        assert!(e.contains("watts") && e.contains("generic"), "{e}");
    }

    #[test]
    fn a_typo_in_a_profile_is_an_error_not_ignored() {
        let e = Profile::from_toml(
            "name='x'\ndisplay_name='x'\n[client]\nid='a'\nscopes=[]\nredirect_url='x'\n",
        )
        .unwrap_err();
        assert!(matches!(e, ProfileError::Toml { .. }), "{e}");
        assert!(e.to_string().contains("redirect_url"), "{e}");
    }

    #[test]
    fn plain_http_endpoints_are_refused_except_on_loopback() {
        assert!(check_url("f", "https://login.example.com/token").is_ok());
        assert!(check_url("f", "http://127.0.0.1:3000/token").is_ok());
        assert!(check_url("f", "http://localhost/token").is_ok());
        assert!(check_url("f", "http://[::1]:80/token").is_ok());
        assert!(check_url("f", "http://login.example.com/token").is_err());
        assert!(check_url("f", "http://127.0.0.1.evil.com/token").is_err());
        assert!(check_url("f", "http://user@127.0.0.1.evil.com/").is_err());
        assert!(check_url("f", "ftp://x/").is_err());
        assert!(check_url("f", "https:///x").is_err());
        assert!(check_url("f", "https://a b/").is_err());
    }
}
