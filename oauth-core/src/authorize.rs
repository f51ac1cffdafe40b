//! The authorization request (RFC 6749 §4.1.1 with PKCE) and the redirect that answers it.
//!
//! Users of mobile-app clients cannot receive the redirect (`msal…://auth`,
//! `com.legrandgroup.diy://oauth2redirect`), so they paste it: [`parse_redirect`] takes a full
//! URL, a bare query string (with or without `?`), or a fragment, checks `state` in constant
//! time and reports a provider `error` with its description.

use core::fmt;

use rand_core::CryptoRng;
use subtle::ConstantTimeEq;

use crate::form;
use crate::pkce::{CHALLENGE_METHOD, PkceVerifier};
use crate::profile::{Profile, ProfileError};
use crate::secret::Secret;

/// Per-login choices on top of the profile.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AuthorizeOptions {
    /// Overrides the profile's `prompt` (`Some("")` removes it).
    pub prompt: Option<String>,
    /// `login_hint` (an e-mail address, for example).
    pub login_hint: Option<String>,
    /// Overrides the profile's redirect URI (a loopback URL with the port just bound).
    pub redirect_uri: Option<String>,
    /// Extra query parameters, added after the profile's.
    pub extra: Vec<(String, String)>,
}

/// A login in progress: the URL to open and what the redirect must be checked against.
///
/// Keep it until the redirect arrives; it holds the PKCE verifier and the state.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    /// The URL to open in a browser.
    pub url: String,
    /// The `state` value the redirect must carry back.
    pub state: Secret,
    /// The PKCE verifier for the code exchange, when the profile sends PKCE.
    pub pkce: Option<PkceVerifier>,
    /// The redirect URI sent (the code exchange must send the same).
    pub redirect_uri: String,
    /// The issuer the login goes to, when the profile knows it; a redirect's RFC 9207 `iss`
    /// must match it.
    pub issuer: Option<String>,
}

/// Builds the authorization URL: `response_type=code`, `client_id`, `redirect_uri`, `scope`,
/// `state` (128 bits from `rng`), the S256 challenge, `prompt`, the B2C `p` policy, the
/// profile's extra parameters (`client_info=1` …), then `options.extra`.
///
/// # Errors
/// [`ProfileError::Missing`] when the profile lacks an authorization endpoint, client id or
/// redirect URI.
pub fn authorization_request(
    profile: &Profile,
    options: &AuthorizeOptions,
    rng: &mut impl CryptoRng,
) -> Result<AuthorizationRequest, ProfileError> {
    let endpoint = profile.authorization_endpoint()?;
    let client_id = profile.client_id()?;
    let redirect_uri = match &options.redirect_uri {
        Some(r) => r.clone(),
        None => profile.redirect_uri()?.to_owned(),
    };
    let state = random_state(rng);
    let pkce = profile.pkce.send.then(|| PkceVerifier::generate(rng));
    let challenge = pkce.as_ref().map(PkceVerifier::challenge);
    let scope = profile.scope();
    let secret = if profile.authorize.send_client_secret {
        profile.client_secret()?
    } else {
        None
    };

    let mut pairs: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", &redirect_uri),
    ];
    if let Some(s) = &scope {
        pairs.push(("scope", s));
    }
    pairs.push(("state", state.expose()));
    if let Some(c) = &challenge {
        pairs.push(("code_challenge", c));
        pairs.push(("code_challenge_method", CHALLENGE_METHOD));
    }
    let prompt = options
        .prompt
        .as_deref()
        .or(profile.authorize.prompt.as_deref());
    if let Some(p) = prompt.filter(|p| !p.is_empty()) {
        pairs.push(("prompt", p));
    }
    if let Some(h) = &options.login_hint {
        pairs.push(("login_hint", h));
    }
    if let Some(s) = secret {
        pairs.push(("client_secret", s.expose()));
    }
    for (k, v) in &profile.authorize.extra {
        pairs.push((k, v));
    }
    for (k, v) in &options.extra {
        pairs.push((k, v));
    }
    Ok(AuthorizationRequest {
        url: form::append_query(&endpoint, &pairs),
        state,
        pkce,
        redirect_uri,
        issuer: profile.issuer.clone(),
    })
}

/// 16 random bytes as 32 lower-case hex characters.
fn random_state(rng: &mut impl CryptoRng) -> Secret {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    let mut s = String::with_capacity(32);
    for b in bytes {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    Secret::new(s)
}

/// The code a redirect carried, checked against the request's state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthorizationCode {
    /// The code, for the token request.
    pub code: Secret,
    /// Parameters the redirect carried besides code and state (`client_info`, …).
    pub extra: Vec<(String, String)>,
}

/// Why a pasted or captured redirect does not yield a code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedirectError {
    /// The input is empty.
    Empty,
    /// The input is longer than [`MAX_REDIRECT_LEN`].
    TooLong {
        /// Its length.
        len: usize,
    },
    /// The provider refused: `error` (RFC 6749 §4.1.2.1) with its description.
    Denied {
        /// The `error` code (`access_denied`, …).
        error: String,
        /// `error_description`, if given.
        description: Option<String>,
    },
    /// No `state` parameter.
    MissingState,
    /// `state` differs from the one sent: a stale or forged redirect (CSRF).
    StateMismatch,
    /// No code parameter.
    MissingCode {
        /// The parameter names looked for.
        looked_for: Vec<String>,
    },
    /// The input is the authorization URL itself, not the redirect that answers it.
    IsAuthorizationUrl,
    /// A full URL whose scheme/host/path is not the redirect URI sent.
    WrongRedirectUri {
        /// The redirect URI expected.
        expected: String,
    },
    /// The redirect's `iss` (RFC 9207) names another authorization server than the one the
    /// login went to: a mix-up attack or a misconfiguration.
    IssuerMismatch {
        /// The issuer the login went to.
        expected: String,
        /// The `iss` the redirect carried.
        found: String,
    },
}

/// Longest redirect accepted (codes are a few KiB at most).
pub const MAX_REDIRECT_LEN: usize = 16 * 1024;

impl fmt::Display for RedirectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedirectError::Empty => f.write_str("the redirect is empty; paste the whole URL the browser was sent to"),
            RedirectError::TooLong { len } => write!(f, "the redirect is {len} bytes long; at most {MAX_REDIRECT_LEN} are accepted"),
            RedirectError::Denied { error, description: Some(d) } => write!(f, "the provider refused the login: {error}: {d}"),
            RedirectError::Denied { error, description: None } => write!(f, "the provider refused the login: {error}"),
            RedirectError::MissingState => f.write_str("the redirect has no `state` parameter; paste the whole URL"),
            RedirectError::StateMismatch => f.write_str("the redirect's `state` does not match this login (an old or foreign redirect); start the login again"),
            RedirectError::MissingCode { looked_for } => write!(f, "the redirect has no `{}` parameter; paste the whole URL", looked_for.join("` or `")),
            RedirectError::IsAuthorizationUrl => f.write_str("this is the login URL itself; open it, sign in, and paste the URL you are sent to afterwards"),
            RedirectError::WrongRedirectUri { expected } => write!(f, "the URL is not a redirect to {expected}"),
            RedirectError::IssuerMismatch { expected, found } => write!(f, "the redirect comes from issuer {found:?}, not {expected:?} (RFC 9207); refusing it"),
        }
    }
}

impl std::error::Error for RedirectError {}

/// Parses a redirect: a full URL (`com.legrandgroup.diy://oauth2redirect?code=…&state=…`,
/// `http://127.0.0.1:8765/callback?…`), a query string (`?code=…`, `code=…`) or a fragment
/// (`#code=…`), and checks it answers `request`.
///
/// The code parameter names come from the profile (`code` by default; U-tec also sends
/// `authorization_code`). An `error` parameter wins over everything else.
///
/// # Errors
/// [`RedirectError`] naming what is missing or wrong.
pub fn parse_redirect(
    input: &str,
    request: &AuthorizationRequest,
    code_params: &[String],
) -> Result<AuthorizationCode, RedirectError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(RedirectError::Empty);
    }
    if input.len() > MAX_REDIRECT_LEN {
        return Err(RedirectError::TooLong { len: input.len() });
    }
    let (prefix, params) = split_params(input);
    if let Some(prefix) = prefix.filter(|p| p.contains("://"))
        && !same_target(prefix, &request.redirect_uri)
    {
        let (auth_base, _) = split_params(&request.url);
        if auth_base.is_some_and(|b| same_target(prefix, b)) {
            return Err(RedirectError::IsAuthorizationUrl);
        }
        return Err(RedirectError::WrongRedirectUri {
            expected: request.redirect_uri.clone(),
        });
    }
    let pairs = form::decode(params);
    let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    // RFC 9207 §2.4: when the authorization server says who it is, it must be the one the
    // login went to (checked before anything else, error responses included).
    if let (Some(iss), Some(expected)) = (get("iss"), &request.issuer)
        && iss.trim_end_matches('/') != expected.trim_end_matches('/')
    {
        return Err(RedirectError::IssuerMismatch {
            expected: expected.clone(),
            found: iss.clone(),
        });
    }
    if let Some(error) = get("error") {
        return Err(RedirectError::Denied {
            error: error.clone(),
            description: get("error_description").cloned(),
        });
    }
    let code = code_params
        .iter()
        .find_map(|n| get(n).filter(|v| !v.is_empty()));
    let Some(code) = code else {
        if get("client_id").is_some() && get("response_type").is_some() {
            return Err(RedirectError::IsAuthorizationUrl);
        }
        return Err(RedirectError::MissingCode {
            looked_for: code_params.to_vec(),
        });
    };
    let state = get("state").ok_or(RedirectError::MissingState)?;
    let expected = request.state.expose().as_bytes();
    if state.len() != expected.len() || !bool::from(state.as_bytes().ct_eq(expected)) {
        return Err(RedirectError::StateMismatch);
    }
    let extra = pairs
        .iter()
        .filter(|(k, _)| k != "state" && !code_params.iter().any(|n| n == k))
        .cloned()
        .collect();
    Ok(AuthorizationCode {
        code: Secret::new(code.clone()),
        extra,
    })
}

/// Splits `input` into the part before the parameters (if any) and the parameters: the query,
/// or the fragment when there is no query (`response_mode=fragment`).
fn split_params(input: &str) -> (Option<&str>, &str) {
    if let Some((before, rest)) = input.split_once('?') {
        let query = rest.split_once('#').map_or(rest, |(q, _)| q);
        let before = (!before.is_empty()).then_some(before);
        return (before, query);
    }
    if let Some((before, frag)) = input.split_once('#') {
        let before = (!before.is_empty()).then_some(before);
        return (before, frag);
    }
    if input.contains("://") {
        return (Some(input), "");
    }
    (None, input)
}

/// Whether two URLs without query name the same target: scheme and host compared without
/// case, a trailing `/` ignored.
fn same_target(a: &str, b: &str) -> bool {
    let a = a.split(['?', '#']).next().unwrap_or(a);
    let b = b.split(['?', '#']).next().unwrap_or(b);
    let norm = |s: &str| -> (String, String) {
        let s = s.trim_end_matches('/');
        match s.split_once("://") {
            Some((scheme, rest)) => {
                let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                (
                    format!(
                        "{}://{}",
                        scheme.to_ascii_lowercase(),
                        host.to_ascii_lowercase()
                    ),
                    path.to_owned(),
                )
            }
            None => (String::new(), s.to_owned()),
        }
    };
    norm(a) == norm(b)
}

#[cfg(test)]
mod tests;
