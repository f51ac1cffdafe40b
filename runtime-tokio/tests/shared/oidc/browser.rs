//! A headless browser for oidc-provider's development interactions: a cookie jar, an HTML
//! form reader, manual redirects, and the two walks the tests need — an authorization-code
//! login up to the redirect to the client, and a device-code approval.
//!
//! The browser stays on the issuer's origin: a redirect anywhere else (the loopback or
//! custom-scheme redirect URI) is where the walk ends and is returned, never followed.
//! Cookies are kept by name only (one origin; oidc-provider's cookie names are distinct),
//! and removed when the server expires them.

use latchkey_oauth_core::authorize::{
    AuthorizationCode, AuthorizationRequest, AuthorizeOptions, authorization_request,
    parse_redirect,
};
use latchkey_oauth_core::device::UserCode;
use latchkey_oauth_core::form;
use latchkey_oauth_core::http::{HttpRequest, HttpResponse, Method};
use latchkey_oauth_core::profile::Profile;
use latchkey_oauth_core::request;
use latchkey_oauth_core::response::{TokenResponse, parse_http_date, parse_token_response};

use super::{Env, redact_url, rng, send, wall_clock};
use crate::rt::http::HttpClient;

/// The password typed into the development login form (it accepts any).
const PASSWORD: &str = "interop-password";
/// Most pages and redirects one walk may visit.
const MAX_HOPS: usize = 30;

// ---------------------------------------------------------------------------------------
// Cookies

/// Cookies by name, for one origin.
#[derive(Debug, Default, Clone)]
pub(crate) struct CookieJar {
    cookies: Vec<(String, String)>,
}

impl CookieJar {
    /// Applies one `Set-Cookie` value received at wall-clock `now`: stores it, or removes
    /// the cookie when it is already expired (`Max-Age` ≤ 0 or `Expires` in the past).
    pub(crate) fn store(&mut self, set_cookie: &str, now: u64) {
        let mut parts = set_cookie.split(';');
        let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
            return;
        };
        let name = name.trim();
        if name.is_empty() {
            return;
        }
        let mut expired = false;
        for attribute in parts {
            let (key, val) = attribute.split_once('=').unwrap_or((attribute, ""));
            let key = key.trim().to_ascii_lowercase();
            let val = val.trim();
            match key.as_str() {
                "max-age" => expired |= val.parse::<i64>().is_ok_and(|s| s <= 0),
                "expires" => expired |= parse_http_date(val).is_some_and(|at| at <= now),
                _ => {}
            }
        }
        self.cookies.retain(|(n, _)| n != name);
        if !expired {
            self.cookies
                .push((name.to_owned(), value.trim().trim_matches('"').to_owned()));
        }
    }

    /// The `Cookie` header value, if any cookie is held.
    pub(crate) fn header(&self) -> Option<String> {
        (!self.cookies.is_empty()).then(|| {
            self.cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// The value of cookie `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

// ---------------------------------------------------------------------------------------
// Forms

/// An HTML form: where it goes and the fields a browser would submit without a click
/// (hidden and text inputs, checked boxes, textareas; no buttons).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Form {
    /// The `id` attribute.
    pub(crate) id: Option<String>,
    /// `get` or `post` (lower case; `get` when absent).
    pub(crate) method: String,
    /// The `action` attribute, entities decoded (`None`: the page's own URL).
    pub(crate) action: Option<String>,
    /// Field names and values, in document order.
    pub(crate) fields: Vec<(String, String)>,
}

impl Form {
    /// The value of field `name`.
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets field `name` (adding it if absent).
    pub(crate) fn set(&mut self, name: &str, value: &str) {
        match self.fields.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => value.clone_into(v),
            None => self.fields.push((name.to_owned(), value.to_owned())),
        }
    }
}

/// A tag: lower-case name (with a leading `/` for end tags) and decoded attributes.
#[derive(Debug)]
struct Tag {
    name: String,
    attributes: Vec<(String, String)>,
}

impl Tag {
    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn has(&self, name: &str) -> bool {
        self.attribute(name).is_some()
    }
}

/// Every form in `html`, with its fields. Inputs outside a form join the form their
/// `form="id"` attribute names. Comments, scripts and styles are skipped; `select` is not
/// supported (oidc-provider's pages have none).
pub(crate) fn parse_forms(html: &str) -> Vec<Form> {
    let mut forms: Vec<Form> = Vec::new();
    let mut open: Option<Form> = None;
    let mut detached: Vec<(String, (String, String))> = Vec::new();
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let Some((tag, after)) = read_tag(rest) else {
            rest = &rest[1..];
            continue;
        };
        rest = after;
        match tag.name.as_str() {
            "script" | "style" => {
                let close = format!("</{}", tag.name);
                rest = find_ascii_ci(rest, &close).map_or("", |i| &rest[i..]);
            }
            "form" => {
                if let Some(form) = open.take() {
                    forms.push(form);
                }
                open = Some(Form {
                    id: tag.attribute("id").map(str::to_owned),
                    method: tag
                        .attribute("method")
                        .unwrap_or("get")
                        .to_ascii_lowercase(),
                    action: tag.attribute("action").map(str::to_owned),
                    fields: Vec::new(),
                });
            }
            "/form" => {
                if let Some(form) = open.take() {
                    forms.push(form);
                }
            }
            "input" | "textarea" => {
                let value = if tag.name == "textarea" {
                    let end = find_ascii_ci(rest, "</textarea").unwrap_or(rest.len());
                    let text = decode_entities(&rest[..end]);
                    rest = &rest[end..];
                    Some(text)
                } else {
                    input_value(&tag)
                };
                let (Some(name), Some(value)) = (tag.attribute("name"), value) else {
                    continue;
                };
                if tag.has("disabled") {
                    continue;
                }
                let field = (name.to_owned(), value);
                match (tag.attribute("form"), open.as_mut()) {
                    (Some(owner), _) => detached.push((owner.to_owned(), field)),
                    (None, Some(form)) => form.fields.push(field),
                    (None, None) => {}
                }
            }
            _ => {}
        }
    }
    if let Some(form) = open.take() {
        forms.push(form);
    }
    for (owner, field) in detached {
        if let Some(form) = forms.iter_mut().find(|f| f.id.as_deref() == Some(&owner)) {
            form.fields.push(field);
        }
    }
    forms
}

/// What an `<input>` submits without a click, if anything.
fn input_value(tag: &Tag) -> Option<String> {
    let kind = tag.attribute("type").unwrap_or("text").to_ascii_lowercase();
    match kind.as_str() {
        "submit" | "button" | "image" | "reset" | "file" => None,
        "checkbox" | "radio" => tag
            .has("checked")
            .then(|| tag.attribute("value").unwrap_or("on").to_owned()),
        _ => Some(tag.attribute("value").unwrap_or("").to_owned()),
    }
}

/// Reads the tag at the start of `s` (which starts with `<`). `None` if it is not a tag.
fn read_tag(s: &str) -> Option<(Tag, &str)> {
    let bytes = s.as_bytes();
    let mut i = 1;
    let closing = bytes.get(i) == Some(&b'/');
    if closing {
        i += 1;
    }
    let start = i;
    while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
        i += 1;
    }
    if i == start || !bytes[start].is_ascii_alphabetic() {
        return None;
    }
    let mut name = s[start..i].to_ascii_lowercase();
    if closing {
        name.insert(0, '/');
    }
    let mut attributes = Vec::new();
    loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() {
            return None;
        }
        if bytes[i] == b'>' {
            i += 1;
            break;
        }
        let key_start = i;
        while i < bytes.len()
            && !bytes[i].is_ascii_whitespace()
            && !matches!(bytes[i], b'=' | b'>' | b'/')
        {
            i += 1;
        }
        let key = s[key_start..i].to_ascii_lowercase();
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if bytes.get(i) == Some(&b'=') {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            match bytes.get(i) {
                Some(&q @ (b'"' | b'\'')) => {
                    let end = s[i + 1..].find(char::from(q))? + i + 1;
                    value = decode_entities(&s[i + 1..end]);
                    i = end + 1;
                }
                Some(_) => {
                    let v_start = i;
                    while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                        i += 1;
                    }
                    value = decode_entities(&s[v_start..i]);
                }
                None => return None,
            }
        }
        if !key.is_empty() {
            attributes.push((key, value));
        } else {
            i += 1;
        }
    }
    Some((Tag { name, attributes }, &s[i..]))
}

/// Byte offset of `needle` (ASCII) in `haystack`, ignoring ASCII case.
fn find_ascii_ci(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Decodes the character references oidc-provider's templates produce (`&amp;`, `&lt;`,
/// `&gt;`, `&quot;`, `&#39;`, `&apos;`, decimal and hex); others are kept as they are.
pub(crate) fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').filter(|&semi| semi <= 10).and_then(|semi| {
            let entity = &rest[1..semi];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => entity.strip_prefix('#').and_then(|num| {
                    let code = match num.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => num.parse().ok(),
                    };
                    code.and_then(char::from_u32)
                }),
            };
            c.map(|c| (c, semi))
        });
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `location` resolved against `base` (an absolute `http(s)` URL): absolute URLs and other
/// schemes as they are, `//host…`, `/path…`, `?query` and relative paths.
pub(crate) fn resolve(base: &str, location: &str) -> String {
    let location = location.trim();
    let has_scheme = location.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    if has_scheme {
        return location.to_owned();
    }
    let (scheme, after) = base.split_once("://").expect("an absolute base URL");
    let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let origin = format!("{scheme}://{}", &after[..authority_end]);
    let path_and_query = &after[authority_end..];
    let path = path_and_query
        .split(['?', '#'])
        .next()
        .filter(|p| !p.is_empty())
        .unwrap_or("/");
    if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{origin}{location}")
    } else if location.starts_with('?') {
        format!("{origin}{path}{location}")
    } else if location.is_empty() || location.starts_with('#') {
        base.split('#').next().unwrap_or(base).to_owned()
    } else {
        let dir = &path[..=path.rfind('/').unwrap_or(0)];
        format!("{origin}{dir}{location}")
    }
}

// ---------------------------------------------------------------------------------------
// The browser

/// Where a walk ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Landing {
    /// A redirect off the issuer's origin (to the client's redirect URI): not followed.
    Redirect(String),
    /// A page without a form to submit (or an error status).
    Page {
        /// Its status.
        status: u16,
        /// Its body as text.
        body: String,
    },
}

/// What the simulated user types.
#[derive(Debug, Clone, Default)]
pub(crate) struct User {
    /// The login typed into the login form.
    pub(crate) account: String,
    /// The device user code typed into the device page, if any.
    pub(crate) user_code: Option<String>,
}

/// A headless browser on the provider's origin.
#[derive(Debug)]
pub(crate) struct Browser {
    client: HttpClient,
    origin: String,
    jar: CookieJar,
    user: User,
    /// Paths visited (no queries), for failure messages.
    trail: Vec<String>,
}

impl Browser {
    /// A browser with an empty jar that stays on `env.issuer`'s origin.
    pub(crate) fn new(env: &Env, client: &HttpClient, user: User) -> Browser {
        Browser {
            client: client.clone(),
            origin: env.issuer.trim_end_matches('/').to_owned(),
            jar: CookieJar::default(),
            user,
            trail: Vec::new(),
        }
    }

    /// The cookie jar.
    pub(crate) fn jar(&self) -> &CookieJar {
        &self.jar
    }

    fn on_origin(&self, url: &str) -> bool {
        url == self.origin
            || url
                .strip_prefix(&self.origin)
                .is_some_and(|rest| rest.starts_with(['/', '?', '#']))
    }

    async fn fetch(&mut self, mut request: HttpRequest) -> HttpResponse {
        if let Some(cookie) = self.jar.header() {
            request.push_header("Cookie", cookie);
        }
        request.push_header("Accept", "text/html");
        self.trail
            .push(format!("{} {}", request.method, redact_url(&request.url)));
        let response = send(&self.client, &request).await;
        let now = wall_clock();
        for (name, value) in &response.headers {
            if name.eq_ignore_ascii_case("set-cookie") {
                self.jar.store(value, now);
            }
        }
        response
    }

    /// Opens `url` and acts as the user until the walk leaves the origin or reaches a page
    /// with nothing to submit: follows redirects, types the login (any password), the
    /// device user code, and submits consent, confirmation and auto-submit forms as they are.
    pub(crate) async fn walk(&mut self, url: &str) -> Landing {
        let mut request = HttpRequest::new(Method::Get, url);
        for _ in 0..MAX_HOPS {
            let current = request.url.clone();
            assert!(
                self.on_origin(&current),
                "the browser was sent off the issuer's origin: {}",
                redact_url(&current)
            );
            let response = self.fetch(request).await;
            if (300..400).contains(&response.status) {
                let location = response
                    .header("location")
                    .unwrap_or_else(|| panic!("{} without Location", response.status));
                let next = resolve(&current, location);
                if !self.on_origin(&next) {
                    return Landing::Redirect(next);
                }
                request = HttpRequest::new(Method::Get, next);
                continue;
            }
            let body = String::from_utf8_lossy(&response.body).into_owned();
            if response.status != 200 {
                return Landing::Page {
                    status: response.status,
                    body,
                };
            }
            let Some(form) = self.fill(parse_forms(&body)) else {
                return Landing::Page {
                    status: response.status,
                    body,
                };
            };
            let action = resolve(&current, form.action.as_deref().unwrap_or(&current));
            let pairs: Vec<(&str, &str)> = form
                .fields
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            request = if form.method == "post" {
                let mut post = HttpRequest::new(Method::Post, action);
                post.push_header("Content-Type", "application/x-www-form-urlencoded");
                post.body = form::encode(&pairs).into_bytes();
                post
            } else {
                HttpRequest::new(Method::Get, form::append_query(&action, &pairs))
            };
        }
        panic!(
            "no landing after {MAX_HOPS} pages and redirects: {:#?}",
            self.trail
        );
    }

    /// The form the user submits on a page, filled in; `None` when the page has none.
    fn fill(&self, forms: Vec<Form>) -> Option<Form> {
        let mut form = forms.into_iter().next()?;
        if form.field("login").is_some() {
            form.set("login", &self.user.account);
            form.set("password", PASSWORD);
        }
        if form.field("user_code") == Some("") {
            let code = self
                .user
                .user_code
                .as_deref()
                .expect("the device page asks for a user code but none was given");
            form.set("user_code", code);
        }
        Some(form)
    }
}

// ---------------------------------------------------------------------------------------
// The walks

/// A login that reached the client's redirect URI.
#[derive(Debug)]
pub(crate) struct Authorized {
    /// The authorization request (state, PKCE verifier, redirect URI).
    pub(crate) request: AuthorizationRequest,
    /// The redirect the browser was sent to (holds the code: do not print).
    pub(crate) redirect: String,
    /// The code, checked against the state by `parse_redirect`.
    pub(crate) code: AuthorizationCode,
}

/// Logs `account` in headlessly: the core's authorization URL (PKCE S256, `prompt=consent`
/// so oidc-provider keeps `offline_access` and issues a refresh token), the development
/// login and consent forms, and the redirect to `redirect_uri`, parsed by `parse_redirect`.
pub(crate) async fn authorize(
    env: &Env,
    client: &HttpClient,
    profile: &Profile,
    redirect_uri: &str,
    account: &str,
) -> Authorized {
    let mut options = AuthorizeOptions::default();
    options.prompt = Some("consent".to_owned());
    options.redirect_uri = Some(redirect_uri.to_owned());
    let request =
        authorization_request(profile, &options, &mut rng()).expect("authorization request");
    let mut browser = Browser::new(
        env,
        client,
        User {
            account: account.to_owned(),
            user_code: None,
        },
    );
    let redirect = match browser.walk(&request.url).await {
        Landing::Redirect(to) => to,
        Landing::Page { status, body } => {
            panic!("the login ended on a page ({status}), not at the redirect URI: {body}")
        }
    };
    assert!(
        redirect.starts_with(redirect_uri),
        "redirected to {}, not to {redirect_uri}",
        redact_url(&redirect)
    );
    let code = parse_redirect(&redirect, &request, &profile.authorize.code_params)
        .unwrap_or_else(|e| panic!("parse_redirect: {e}"));
    Authorized {
        request,
        redirect,
        code,
    }
}

/// Exchanges an authorization code for tokens (the core's request, the core's parser).
pub(crate) async fn exchange(
    client: &HttpClient,
    profile: &Profile,
    authorized: &Authorized,
) -> TokenResponse {
    let request = request::authorization_code(
        profile,
        &authorized.code.code,
        authorized.request.pkce.as_ref(),
        &authorized.request.redirect_uri,
    )
    .expect("code exchange request");
    let response = send(client, &request).await;
    parse_token_response(&response, wall_clock(), &profile.response)
        .unwrap_or_else(|e| panic!("code exchange: {e}"))
}

/// A full headless login on the profile's redirect URI: tokens with a refresh token.
pub(crate) async fn login(
    env: &Env,
    client: &HttpClient,
    profile: &Profile,
    account: &str,
) -> TokenResponse {
    let redirect_uri = profile.redirect_uri().expect("redirect URI").to_owned();
    let authorized = authorize(env, client, profile, &redirect_uri, account).await;
    exchange(client, profile, &authorized).await
}

/// Approves a device code as the user on another device: the verification page, the user
/// code typed in, the confirmation, the login and the consent. Returns the final page.
pub(crate) async fn approve_device(
    env: &Env,
    client: &HttpClient,
    code: &UserCode,
    account: &str,
) -> String {
    let mut browser = Browser::new(
        env,
        client,
        User {
            account: account.to_owned(),
            user_code: Some(code.user_code.clone()),
        },
    );
    match browser.walk(&code.verification_uri).await {
        Landing::Page { status: 200, body } => body,
        other => panic!("device approval ended with {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_page_form_is_read_with_its_inputs() {
        let html = r#"<form autocomplete="off" action="/interaction/Ab-c_1/login?x=1&amp;y=2" method="post">
  <input type="hidden" name="prompt" value="login"/>
  <input required type="text" name="login" placeholder="Enter any login" autofocus="on">
  <input required type="password" name="password" placeholder="and password" >
  <button type="submit" class="login login-submit">Sign-in</button>
</form><a href="/abort">[ Cancel ]</a>"#;
        let forms = parse_forms(html);
        assert_eq!(forms.len(), 1);
        let f = &forms[0];
        assert_eq!(f.method, "post");
        assert_eq!(
            f.action.as_deref(),
            Some("/interaction/Ab-c_1/login?x=1&y=2")
        );
        assert_eq!(
            f.fields,
            vec![
                ("prompt".into(), "login".into()),
                ("login".into(), String::new()),
                ("password".into(), String::new()),
            ]
        );
    }

    #[test]
    fn device_forms_multiline_inputs_and_buttons_outside_the_form() {
        let html = r#"<style>input[type=text]{x:y}</style>
<form id="op.deviceInputForm" novalidate method="post" action="https://127.0.0.1:1/device">
  <input type="hidden" name="xsrf" value="e2cb95"/>
  <input
    type="text" name="user_code" placeholder="Enter code" onfocus="this.select(); this.onfocus = undefined;" autofocus autocomplete="off"></input>
  </form>
<button type="submit" form="op.deviceInputForm">Continue</button>
<form id="op.deviceConfirmForm" method="post" action="https://127.0.0.1:1/device">
<input type="hidden" name="xsrf" value="e2cb95"/>
<input type="hidden" name="user_code" value="JVZV-PNWV"/>
<input type="hidden" name="confirm" value="yes"/>
</form>
<button type="submit" form="op.deviceConfirmForm" value="yes" name="abort">[ Abort ]</button>"#;
        let forms = parse_forms(html);
        assert_eq!(forms.len(), 2);
        assert_eq!(forms[0].id.as_deref(), Some("op.deviceInputForm"));
        assert_eq!(
            forms[0].fields,
            vec![
                ("xsrf".into(), "e2cb95".into()),
                ("user_code".into(), String::new())
            ]
        );
        // The abort button belongs to the confirm form but is not submitted without a click.
        assert_eq!(forms[1].field("confirm"), Some("yes"));
        assert_eq!(forms[1].field("user_code"), Some("JVZV-PNWV"));
        assert_eq!(forms[1].field("abort"), None);
    }

    #[test]
    fn scripts_comments_quotes_and_associated_inputs() {
        let html = r#"<!-- <form action="/commented"><input name="no" value="1"></form> -->
<script>if (a < b) { document.write('<form action="/scripted">'); }</script>
<FORM METHOD=POST ACTION=/go id=main>
  <input name='single' value='it&#39;s &lt;ok&gt;'>
  <input name=unquoted value=a&amp;b>
  <input type="checkbox" name="box" checked>
  <input type="checkbox" name="off" value="1">
  <input type="radio" name="pick" value="b" checked>
  <input name="gone" value="x" disabled>
  <input type="submit" name="go" value="Go">
  <input name="gt" value="a>b">
  <textarea name="note">x &amp; y</textarea>
</FORM>
<input form="main" name="late" value="&#x41;&#66;">
<input name="orphan" value="z">"#;
        let forms = parse_forms(html);
        assert_eq!(forms.len(), 1, "{forms:?}");
        let f = &forms[0];
        assert_eq!(f.method, "post");
        assert_eq!(f.action.as_deref(), Some("/go"));
        assert_eq!(f.id.as_deref(), Some("main"));
        assert_eq!(
            f.fields,
            vec![
                ("single".into(), "it's <ok>".into()),
                ("unquoted".into(), "a&b".into()),
                ("box".into(), "on".into()),
                ("pick".into(), "b".into()),
                ("gt".into(), "a>b".into()),
                ("note".into(), "x & y".into()),
                ("late".into(), "AB".into()),
            ]
        );
    }

    #[test]
    fn auto_submit_page_and_pages_without_forms() {
        let html = r#"<script>
    document.addEventListener('DOMContentLoaded', function () { document.forms[0].submit() });
  </script></head><body>
  <form method="post" action="https://127.0.0.1:9/device">
    <input type="hidden" name="xsrf" value="353f"/>
<input type="hidden" name="user_code" value="BXBX-HSBL"/>
    <noscript><button autofocus type="submit">Continue</button></noscript>
  </form>"#;
        let forms = parse_forms(html);
        assert_eq!(forms.len(), 1);
        assert_eq!(forms[0].field("user_code"), Some("BXBX-HSBL"));
        assert!(parse_forms("<h1>Sign-in Success</h1><p>a < b</p>").is_empty());
        assert!(parse_forms("").is_empty());
        assert!(parse_forms("<form").is_empty());
        // An unterminated form still yields its inputs.
        let forms = parse_forms("<form action=x><input name=a value=1>");
        assert_eq!(forms[0].fields, vec![("a".into(), "1".into())]);
    }

    #[test]
    fn form_set_replaces_or_adds() {
        let mut f = parse_forms("<form><input name=login></form>").remove(0);
        assert_eq!(f.method, "get");
        f.set("login", "alice");
        f.set("password", "pw");
        assert_eq!(f.field("login"), Some("alice"));
        assert_eq!(f.field("password"), Some("pw"));
    }

    #[test]
    fn entities() {
        assert_eq!(decode_entities("a&amp;b&quot;&apos;&#39;"), "a&b\"''");
        assert_eq!(decode_entities("&#x263A;&#9731;"), "☺☃");
        assert_eq!(decode_entities("&unknown; & &amp"), "&unknown; & &amp");
        assert_eq!(decode_entities("&#xD800;"), "&#xD800;");
        assert_eq!(decode_entities("tail&"), "tail&");
    }

    #[test]
    fn redirect_targets_resolve_against_the_page() {
        let base = "https://127.0.0.1:8443/interaction/abc?x=1";
        assert_eq!(
            resolve(base, "/auth/abc"),
            "https://127.0.0.1:8443/auth/abc"
        );
        assert_eq!(
            resolve(base, "https://127.0.0.1:8443/x"),
            "https://127.0.0.1:8443/x"
        );
        assert_eq!(
            resolve(base, "http://127.0.0.1:5555/callback?code=c"),
            "http://127.0.0.1:5555/callback?code=c"
        );
        assert_eq!(
            resolve(base, "com.example.latchkey:/oauth2redirect?code=c"),
            "com.example.latchkey:/oauth2redirect?code=c"
        );
        assert_eq!(resolve(base, "//other:1/p"), "https://other:1/p");
        assert_eq!(
            resolve(base, "login"),
            "https://127.0.0.1:8443/interaction/login"
        );
        assert_eq!(
            resolve(base, "?y=2"),
            "https://127.0.0.1:8443/interaction/abc?y=2"
        );
        assert_eq!(resolve("https://h:1", "a"), "https://h:1/a");
        assert_eq!(resolve("https://h:1/a#f", ""), "https://h:1/a");
    }

    #[test]
    fn cookie_jar_stores_replaces_and_expires() {
        let now = 1_800_000_000;
        let mut jar = CookieJar::default();
        assert_eq!(jar.header(), None);
        jar.store(
            "_interaction=abc; path=/interaction/abc; expires=Mon, 23 Nov 2099 18:33:50 GMT; samesite=lax; secure; httponly",
            now,
        );
        jar.store("_interaction.sig=s1; path=/interaction/abc", now);
        jar.store("_session=\"q\"; Max-Age=3600", now);
        assert_eq!(
            jar.header().as_deref(),
            Some("_interaction=abc; _interaction.sig=s1; _session=q")
        );
        jar.store("_interaction=def; path=/interaction/def", now);
        assert_eq!(jar.get("_interaction"), Some("def"));
        jar.store(
            "_interaction=; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT",
            now,
        );
        jar.store("_session=gone; Max-Age=0", now);
        assert_eq!(jar.get("_interaction"), None);
        assert_eq!(jar.get("_session"), None);
        assert_eq!(jar.header().as_deref(), Some("_interaction.sig=s1"));
        jar.store("no-equals-sign", now);
        jar.store("=value-without-name", now);
        assert_eq!(jar.header().as_deref(), Some("_interaction.sig=s1"));
    }
}
