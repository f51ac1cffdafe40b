//! Headless Azure AD B2C sign-in (opt-in): the user's e-mail and password posted to B2C's
//! own sign-in page API, for machines without a browser.
//!
//! This follows what B2C's page script does (and what the BTicino Home Assistant integrations
//! do, ../shared/providers/FACTS.md §1.1):
//!
//! 1. `GET` the authorization URL (following same-site redirects), keeping cookies. The page
//!    carries `var SETTINGS = {…}` with `csrf`, `transId`, `api` and `hosts.tenant` /
//!    `hosts.policy`, and `var SA_FIELDS = {…}` naming the sign-in field (`logonIdentifier`
//!    for built-in policies, often `signInName` for custom ones).
//! 2. `POST {tenant}/SelfAsserted?tx=…&p=…` with `X-CSRF-TOKEN`, form fields
//!    `request_type=RESPONSE`, the sign-in field and `password`. B2C answers JSON
//!    `{"status":"200"}`, or `{"status":"400","message":"…"}` with its own explanation.
//! 3. `GET {tenant}/api/{api}/confirmed?csrf_token=…&tx=…&p=…` without following the redirect:
//!    its `Location` is the redirect URI with the code, checked by
//!    [`parse_redirect`] (state included).
//!
//! The code is then exchanged as after any login. Everything depends on the provider's login
//! page staying as it is; a page asking for anything more (MFA, a new password, terms) stops
//! the login with [`HeadlessError::MoreSteps`]. The password is a [`Secret`]: it is in the
//! one request that needs it and in no error, log or `Debug` output.
//!
//! Sans-IO like the rest of the crate: [`HeadlessLogin::start`] returns the first request,
//! [`HeadlessLogin::handle_response`] the next one or the code.

use core::fmt;

use serde_json::Value;

use crate::authorize::{AuthorizationCode, AuthorizationRequest, RedirectError, parse_redirect};
use crate::form;
use crate::http::{HttpRequest, HttpResponse, Method};
use crate::secret::Secret;

/// Redirects followed while fetching the sign-in page.
const MAX_PAGE_REDIRECTS: u8 = 5;
/// Cookies kept (B2C sets a handful).
const MAX_COOKIES: usize = 32;
/// The largest cookie value kept, in bytes.
const MAX_COOKIE_LEN: usize = 8 * 1024;

/// Who signs in.
#[derive(Clone)]
#[non_exhaustive]
pub struct Credentials {
    /// E-mail address or user name.
    pub username: String,
    /// The password.
    pub password: Secret,
}

impl Credentials {
    /// Credentials for `username`.
    #[must_use]
    pub fn new(username: impl Into<String>, password: Secret) -> Self {
        Credentials {
            username: username.into(),
            password,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

/// Choices for the headless flow.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HeadlessConfig {
    /// The sign-in field when the page does not name one (`logonIdentifier`).
    pub username_field: String,
    /// `User-Agent` for the page requests, if any.
    pub user_agent: Option<String>,
    /// Redirect parameter names holding the code (the profile's `code_params`).
    pub code_params: Vec<String>,
}

impl Default for HeadlessConfig {
    fn default() -> Self {
        HeadlessConfig {
            username_field: "logonIdentifier".to_owned(),
            user_agent: None,
            code_params: vec!["code".to_owned()],
        }
    }
}

impl HeadlessConfig {
    /// The settings a profile implies: its token requests' `User-Agent` (the vendor app's),
    /// its code parameter names, and the sign-in field used when the page does not name
    /// one — `signInName` for Identity Experience Framework policies (`B2C_1A_…`, Watts),
    /// `logonIdentifier` for built-in ones (`B2C_1_…`, Legrand), FACTS.md §3.2.
    #[must_use]
    pub fn for_profile(profile: &crate::profile::Profile) -> Self {
        // The policy is a `p=` parameter (Legrand) or a path segment (Watts' `/tfp/` URLs).
        let custom = profile
            .endpoints
            .b2c_policy
            .as_deref()
            .is_some_and(|p| p.to_ascii_uppercase().starts_with("B2C_1A_"))
            || profile
                .endpoints
                .authorization
                .as_deref()
                .is_some_and(|u| u.to_ascii_uppercase().contains("/B2C_1A_"));
        HeadlessConfig {
            username_field: if custom {
                "signInName"
            } else {
                "logonIdentifier"
            }
            .to_owned(),
            user_agent: profile
                .token
                .extra_headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("user-agent"))
                .map(|(_, v)| v.clone()),
            code_params: profile.authorize.code_params.clone(),
            ..HeadlessConfig::default()
        }
    }
}

/// Why a headless sign-in stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeadlessError {
    /// The authorization URL is not an absolute `https://` (or `http://`) URL.
    BadUrl,
    /// A step got an HTTP status it cannot continue from.
    Status {
        /// The step (`sign-in page`, `credentials`, `confirmation`).
        step: &'static str,
        /// The status.
        status: u16,
    },
    /// The sign-in page lacks a value the flow needs (`csrf`, `transId`, `hosts.tenant`).
    PageMissing {
        /// The value.
        what: &'static str,
    },
    /// B2C refused the credentials, with its own message.
    Rejected {
        /// B2C's `status` field.
        status: String,
        /// B2C's `message`.
        message: String,
    },
    /// The credentials answer was not B2C's JSON.
    UnexpectedAnswer {
        /// The step.
        step: &'static str,
    },
    /// B2C shows another page (multi-factor, password change, terms) instead of redirecting.
    MoreSteps {
        /// The page's `api` value, when it has one.
        api: Option<String>,
    },
    /// More than a few redirects before the sign-in page.
    TooManyRedirects,
    /// The final redirect does not carry a usable code.
    Redirect(RedirectError),
    /// [`HeadlessLogin::handle_response`] was called after the flow ended.
    Finished,
}

impl fmt::Display for HeadlessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadlessError::BadUrl => {
                f.write_str("the authorization URL is not an absolute http(s) URL")
            }
            HeadlessError::Status { step, status } => {
                write!(f, "headless sign-in: the {step} request got HTTP {status}")
            }
            HeadlessError::PageMissing { what } => write!(
                f,
                "headless sign-in: the sign-in page has no {what} (the provider's page changed; \
                 log in with --loopback or --paste instead)"
            ),
            HeadlessError::Rejected { status, message } if message.is_empty() => {
                write!(f, "the provider refused the sign-in (status {status})")
            }
            HeadlessError::Rejected { message, .. } => {
                write!(f, "the provider refused the sign-in: {message}")
            }
            HeadlessError::UnexpectedAnswer { step } => write!(
                f,
                "headless sign-in: the {step} answer is not what the provider's page API sends"
            ),
            HeadlessError::MoreSteps { api } => write!(
                f,
                "the provider asks for another sign-in step{} that a headless login cannot \
                 complete; log in with --loopback or --paste",
                api.as_deref()
                    .map(|a| format!(" ({a})"))
                    .unwrap_or_default()
            ),
            HeadlessError::TooManyRedirects => {
                f.write_str("headless sign-in: too many redirects before the sign-in page")
            }
            HeadlessError::Redirect(e) => write!(f, "headless sign-in: {e}"),
            HeadlessError::Finished => f.write_str("headless sign-in: the flow has already ended"),
        }
    }
}

impl std::error::Error for HeadlessError {}

/// What to do after a response.
#[derive(Debug)]
#[non_exhaustive]
pub enum Next {
    /// Send this request and hand its response (redirects not followed) back.
    Send(HttpRequest),
    /// Signed in: exchange this code.
    Code(AuthorizationCode),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Page { redirects: u8 },
    Credentials,
    Confirmation,
    Done,
}

/// What the sign-in page says.
#[derive(Debug, Clone)]
struct Page {
    csrf: String,
    trans_id: String,
    tenant: String,
    policy: Option<String>,
    api: String,
}

/// A headless sign-in in progress.
pub struct HeadlessLogin {
    request: AuthorizationRequest,
    credentials: Credentials,
    config: HeadlessConfig,
    origin: String,
    /// Cookies of the B2C origin, in the order first set.
    cookies: Vec<(String, String)>,
    page: Option<Page>,
    field: String,
    step: Step,
}

impl HeadlessLogin {
    /// Starts a sign-in for the login `request` (from
    /// [`authorization_request`](crate::authorize::authorization_request)); returns the
    /// first request to send.
    ///
    /// # Errors
    /// [`HeadlessError::BadUrl`] when the authorization URL has no origin.
    pub fn start(
        request: AuthorizationRequest,
        credentials: Credentials,
        config: HeadlessConfig,
    ) -> Result<(HeadlessLogin, HttpRequest), HeadlessError> {
        let origin = origin(&request.url)
            .ok_or(HeadlessError::BadUrl)?
            .to_owned();
        let field = config.username_field.clone();
        let login = HeadlessLogin {
            request,
            credentials,
            config,
            origin,
            cookies: Vec::new(),
            page: None,
            field,
            step: Step::Page { redirects: 0 },
        };
        let first = login.get(login.request.url.clone());
        Ok((login, first))
    }

    /// Takes the response to the last request.
    ///
    /// # Errors
    /// [`HeadlessError`]; the flow is over then.
    pub fn handle_response(&mut self, response: &HttpResponse) -> Result<Next, HeadlessError> {
        let step = core::mem::replace(&mut self.step, Step::Done);
        self.take_cookies(response);
        match step {
            Step::Done => Err(HeadlessError::Finished),
            Step::Page { redirects } => self.on_page(response, redirects),
            Step::Credentials => self.on_credentials(response),
            Step::Confirmation => self.on_confirmation(response),
        }
    }

    fn on_page(&mut self, response: &HttpResponse, redirects: u8) -> Result<Next, HeadlessError> {
        if (300..400).contains(&response.status) {
            let location = header(response, "location").unwrap_or_default();
            let target = self.resolve(location);
            // Only the B2C origin's own pages are followed; anything else is the redirect
            // URI already (a session cookie signed the user in) or a foreign site.
            if target.starts_with(&format!("{}/", self.origin)) {
                if redirects >= MAX_PAGE_REDIRECTS {
                    return Err(HeadlessError::TooManyRedirects);
                }
                self.step = Step::Page {
                    redirects: redirects + 1,
                };
                return Ok(Next::Send(self.get(target)));
            }
            return self.finish(location);
        }
        if response.status != 200 {
            return Err(HeadlessError::Status {
                step: "sign-in page",
                status: response.status,
            });
        }
        let html = String::from_utf8_lossy(&response.body);
        let settings = script_object(&html, "SETTINGS");
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        let get = |what: &'static str, path: &[&str]| {
            let mut v = settings.as_ref();
            for key in path {
                v = v.and_then(|o| o.get(*key));
            }
            text(v)
                .filter(|s| !s.is_empty())
                .ok_or(HeadlessError::PageMissing { what })
        };
        // A page without them in SETTINGS: the csrf token from the `x-ms-cpim-csrf` cookie,
        // the transaction from the `x-ms-cpim-trans` cookie, the tenant from the URL (the
        // Go client of FACTS.md §3.2 works this way).
        let cookie = |name: &str| {
            self.cookies
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        let page = Page {
            csrf: get("csrf", &["csrf"]).or_else(|e| cookie("x-ms-cpim-csrf").ok_or(e))?,
            trans_id: get("transId", &["transId"]).or_else(|e| {
                cookie("x-ms-cpim-trans")
                    .and_then(|c| trans_id_from_cookie(&c))
                    .ok_or(e)
            })?,
            tenant: get("hosts.tenant", &["hosts", "tenant"])
                .or_else(|e| tenant_from_url(&self.request.url, &self.origin).ok_or(e))?,
            policy: get("hosts.policy", &["hosts", "policy"]).ok(),
            api: get("api", &["api"]).unwrap_or_else(|_| "CombinedSigninAndSignup".to_owned()),
        };
        if let Some(field) = sign_in_field(&html) {
            self.field = field;
        }
        let mut url = format!("{}{}/SelfAsserted", self.origin, tenant_path(&page.tenant));
        url = form::append_query(&url, &self.query(&page, false));
        let mut req = HttpRequest::new(Method::Post, url);
        req.push_header("X-CSRF-TOKEN", page.csrf.clone());
        req.push_header("X-Requested-With", "XMLHttpRequest");
        req.push_header(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=UTF-8",
        );
        req.push_header("Accept", "application/json, text/javascript, */*; q=0.01");
        self.common_headers(&mut req);
        req.body = form::encode(&[
            ("request_type", "RESPONSE"),
            (self.field.as_str(), self.credentials.username.as_str()),
            ("password", self.credentials.password.expose()),
        ])
        .into_bytes();
        self.page = Some(page);
        self.step = Step::Credentials;
        Ok(Next::Send(req))
    }

    fn on_credentials(&mut self, response: &HttpResponse) -> Result<Next, HeadlessError> {
        if response.status != 200 {
            return Err(HeadlessError::Status {
                step: "credentials",
                status: response.status,
            });
        }
        let answer: Value = serde_json::from_slice(&response.body).map_err(|_| {
            HeadlessError::UnexpectedAnswer {
                step: "credentials",
            }
        })?;
        let status = match answer.get("status") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(HeadlessError::UnexpectedAnswer {
                    step: "credentials",
                });
            }
        };
        if status != "200" {
            let message = answer
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect();
            return Err(HeadlessError::Rejected { status, message });
        }
        let Some(page) = self.page.clone() else {
            return Err(HeadlessError::Finished);
        };
        let mut url = format!(
            "{}{}/api/{}/confirmed",
            self.origin,
            tenant_path(&page.tenant),
            page.api
        );
        url = form::append_query(&url, &self.query(&page, true));
        self.step = Step::Confirmation;
        Ok(Next::Send(self.get(url)))
    }

    fn on_confirmation(&mut self, response: &HttpResponse) -> Result<Next, HeadlessError> {
        if (300..400).contains(&response.status) {
            let location = header(response, "location").unwrap_or_default();
            return self.finish(location);
        }
        if response.status == 200 {
            let html = String::from_utf8_lossy(&response.body);
            let api = script_object(&html, "SETTINGS")
                .and_then(|s| s.get("api").and_then(Value::as_str).map(str::to_owned));
            return Err(HeadlessError::MoreSteps { api });
        }
        Err(HeadlessError::Status {
            step: "confirmation",
            status: response.status,
        })
    }

    fn finish(&mut self, location: &str) -> Result<Next, HeadlessError> {
        let code = parse_redirect(location, &self.request, &self.config.code_params)
            .map_err(HeadlessError::Redirect)?;
        self.step = Step::Done;
        Ok(Next::Code(code))
    }

    /// `tx`, `p` (and `csrf_token` for the confirmation), as B2C's page script sends them.
    fn query<'a>(&'a self, page: &'a Page, confirm: bool) -> Vec<(&'a str, &'a str)> {
        let mut q = Vec::new();
        if confirm {
            q.push(("rememberMe", "false"));
            q.push(("csrf_token", page.csrf.as_str()));
        }
        q.push(("tx", page.trans_id.as_str()));
        if let Some(p) = page.policy.as_deref() {
            q.push(("p", p));
        }
        q
    }

    fn get(&self, url: String) -> HttpRequest {
        let mut req = HttpRequest::new(Method::Get, url);
        req.push_header("Accept", "text/html,application/xhtml+xml");
        self.common_headers(&mut req);
        req
    }

    fn common_headers(&self, req: &mut HttpRequest) {
        if let Some(ua) = &self.config.user_agent {
            req.push_header("User-Agent", ua.clone());
        }
        if !self.cookies.is_empty() && req.url.starts_with(&format!("{}/", self.origin)) {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            req.push_header("Cookie", jar.join("; "));
        }
    }

    /// Keeps the cookies B2C sets (name and value; every request goes to its one origin). A
    /// cookie set empty or with `Max-Age=0` is dropped; the jar is bounded.
    fn take_cookies(&mut self, response: &HttpResponse) {
        for (name, value) in &response.headers {
            if !name.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let mut parts = value.split(';');
            let Some((n, v)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let (n, v) = (n.trim(), v.trim());
            if n.is_empty() || v.len() > MAX_COOKIE_LEN || !n.bytes().all(is_cookie_name_byte) {
                continue;
            }
            let expired = parts.any(|a| {
                let a = a.trim();
                // Byte-wise: a non-ASCII attribute must not be sliced inside a character.
                a.as_bytes()
                    .get(..8)
                    .is_some_and(|p| p.eq_ignore_ascii_case(b"max-age="))
                    && a.get(8..).is_some_and(|rest| rest.trim() == "0")
            });
            self.cookies.retain(|(k, _)| k != n);
            if !expired && !v.is_empty() && self.cookies.len() < MAX_COOKIES {
                self.cookies.push((n.to_owned(), v.to_owned()));
            }
        }
    }

    /// An absolute URL for a `Location` value (absolute, or a path on the B2C origin).
    fn resolve(&self, location: &str) -> String {
        if location.starts_with('/') && !location.starts_with("//") {
            format!("{}{location}", self.origin)
        } else {
            location.to_owned()
        }
    }
}

impl fmt::Debug for HeadlessLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Cookie values, the csrf token and the password are session secrets: names only.
        let cookies: Vec<&str> = self.cookies.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("HeadlessLogin")
            .field("origin", &self.origin)
            .field("step", &self.step)
            .field("username", &self.credentials.username)
            .field("field", &self.field)
            .field("cookies", &cookies)
            .finish_non_exhaustive()
    }
}

fn is_cookie_name_byte(b: u8) -> bool {
    b.is_ascii_graphic()
        && !matches!(
            b,
            b'(' | b')'
                | b'<'
                | b'>'
                | b'@'
                | b','
                | b';'
                | b':'
                | b'\\'
                | b'"'
                | b'/'
                | b'['
                | b']'
                | b'?'
                | b'='
                | b'{'
                | b'}'
        )
}

/// `scheme://host[:port]` of an absolute http(s) URL.
fn origin(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let host_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    (host_len > 0).then(|| &url[..url.len() - rest.len() + host_len])
}

/// The tenant path as a path: `/tenant/policy`, with one leading slash.
/// `StateProperties=<base64url of {"TID":"<C_ID>"}>` from the `x-ms-cpim-trans` cookie
/// (base64 of JSON with the transaction's `C_ID`).
fn trans_id_from_cookie(cookie: &str) -> Option<String> {
    use base64::Engine as _;
    let raw = cookie.trim_matches('"');
    let json = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .or_else(|_| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw.trim_end_matches('='))
        })
        .ok()?;
    let v: Value = serde_json::from_slice(&json).ok()?;
    let id = v
        .get("C_ID")?
        .as_str()
        .filter(|s| !s.is_empty() && s.len() <= 256)?;
    let state = serde_json::json!({ "TID": id }).to_string();
    Some(format!(
        "StateProperties={}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(state)
    ))
}

/// `/<tenant>/<policy>` from an authorization URL on `origin`: the policy is the path's
/// second segment (`/tfp/` dropped), or the `p` query parameter of `/<tenant>/oauth2/…`.
fn tenant_from_url(url: &str, origin: &str) -> Option<String> {
    let rest = url.strip_prefix(origin)?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut parts = path.split('/').filter(|p| !p.is_empty());
    let mut tenant = parts.next()?;
    if tenant.eq_ignore_ascii_case("tfp") {
        tenant = parts.next()?;
    }
    let second = parts.next()?;
    let policy = if second.eq_ignore_ascii_case("oauth2") {
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k.eq_ignore_ascii_case("p"))
            .map(|(_, v)| v.into_owned())?
    } else {
        second.to_owned()
    };
    Some(format!("/{tenant}/{policy}"))
}

fn tenant_path(tenant: &str) -> String {
    format!("/{}", tenant.trim_start_matches('/'))
}

fn header<'a>(response: &'a HttpResponse, name: &str) -> Option<&'a str> {
    response
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The JSON object assigned to `var NAME =` in the page's scripts.
fn script_object(html: &str, name: &str) -> Option<Value> {
    let marker = format!("var {name}");
    let mut from = 0;
    while let Some(at) = html.get(from..)?.find(&marker) {
        let after = &html[from + at + marker.len()..];
        let rest = after.trim_start();
        if let Some(obj) = rest.strip_prefix('=') {
            let obj = obj.trim_start();
            let mut values = serde_json::Deserializer::from_str(obj).into_iter::<Value>();
            if let Some(Ok(v @ Value::Object(_))) = values.next() {
                return Some(v);
            }
        }
        from += at + marker.len();
    }
    None
}

/// The first non-password input of `SA_FIELDS` (the page's own name for the sign-in field).
fn sign_in_field(html: &str) -> Option<String> {
    let fields = script_object(html, "SA_FIELDS")?;
    fields
        .get("AttributeFields")?
        .as_array()?
        .iter()
        .find(|f| f.get("IS_PASSWORD").and_then(Value::as_bool) == Some(false))?
        .get("ID")?
        .as_str()
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 64
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
        .map(str::to_owned)
}

#[cfg(test)]
mod tests;
