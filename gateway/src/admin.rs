//! The door-station admin: first-boot setup, login, dashboard, password, certificate, and
//! the admin JSON API.
//!
//! * Sessions come from the guard's [`SessionStore`](latchkey_protocol::guard::SessionStore)
//!   (32 random bytes, 30-min idle and 8-h absolute timeouts, 5 per user, id rotated on
//!   login and password change) and travel in `__Host-lk_session` (`Path=/; Secure;
//!   HttpOnly; SameSite=Strict`).
//! * CSRF: every form carries a synchronizer token, HMAC-SHA256 of the session id under a
//!   key drawn at start-up (so it is tied to the session and changes with it); the API takes
//!   it in `X-CSRF-Token` (`GET /api/session` hands it out). The setup and login forms,
//!   before any session, are tied the same way to a random `__Host-lk_pre` cookie.
//!   `Sec-Fetch-Site: cross-site` on a state-changing request is refused as well.

use std::string::String;
use std::vec::Vec;

use latchkey_pki::validate::{Bundle, validate};
use latchkey_protocol::guard::{ClientKey, DeviceCredentials, DeviceId, Now, PasswordError};
use rand_core::CryptoRng;
use serde_json::{Value, json};

use crate::app::{Admin, App, Effect, random_hex};
use crate::html::{escape, hidden, notice, page};
use crate::http::{Form, Method, Request, Response};
use crate::model::{Io, MAX_PANELS, MAX_STRING, RemoteUi, pages_from_json, value_text};
use crate::panels::error;
use crate::passwords::{HashWhen, PasswordWork};
use crate::{panels, utec, ws, xml};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "__Host-lk_session";
/// The pre-session (login and setup CSRF) cookie's name.
pub const PRE_COOKIE: &str = "__Host-lk_pre";

fn set_cookie(name: &str, value: &str) -> String {
    format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict")
}

fn clear_cookie(name: &str) -> String {
    format!("{name}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict")
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The valid session behind the request's cookie, if any (marks it used).
fn session(app: &mut App, now: Now, req: &Request) -> Option<(String, String)> {
    let cookie = req.cookie(SESSION_COOKIE)?;
    let info = app
        .guard
        .sessions_mut()
        .validate(now.instant, cookie)
        .ok()?;
    Some((String::from(cookie), info.user))
}

fn cross_site(req: &Request) -> bool {
    req.header("sec-fetch-site")
        .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"))
}

/// The pre-session cookie value: the request's, or a new one (with its Set-Cookie).
fn pre_cookie<R: CryptoRng + ?Sized>(req: &Request, rng: &mut R) -> (String, Option<String>) {
    match req.cookie(PRE_COOKIE).filter(|c| is_hex64(c)) {
        Some(c) => (String::from(c), None),
        None => {
            let v = random_hex(rng);
            let header = set_cookie(PRE_COOKIE, &v);
            (v, Some(header))
        }
    }
}

fn with_cookie(mut r: Response, cookie: Option<String>) -> Response {
    if let Some(c) = cookie {
        r.set_header("Set-Cookie", c);
    }
    r
}

// ---------------------------------------------------------------------------------------
// HTML pages
// ---------------------------------------------------------------------------------------

/// Every non-API path.
pub(crate) fn pages<R: CryptoRng + ?Sized>(
    app: &mut App,
    now: Now,
    client: ClientKey,
    req: &Request,
    rng: &mut R,
    fx: &mut Vec<Effect>,
) -> Response {
    let path = req.path.as_str();
    let m = &req.method;
    if !m.is_safe() && *m != Method::Post {
        return not_found();
    }
    if *m == Method::Post && cross_site(req) {
        return Response::html(
            403,
            page(
                "Refused",
                false,
                None,
                &notice("cross-site form posts are refused", true),
            ),
        );
    }
    match (path, m.is_safe()) {
        ("/", true) => Response::see_other("/admin"),
        ("/setup", true) => setup_form(app, req, rng, ""),
        ("/setup", false) => setup_post(app, now, req, rng, fx),
        ("/login", true) => login_form(app, req, rng, "", 200),
        ("/login", false) => login_post(app, now, client, req, rng, fx),
        ("/logout", false) => logout(app, now, req),
        _ => {
            let Some((cookie, user)) = session(app, now, req) else {
                return if app.state.admin.is_none() {
                    Response::html(
                        200,
                        page(
                            "Set up",
                            false,
                            None,
                            "<p>This gateway has no admin password yet. Open the one-time setup link printed by the server when it started.</p>",
                        ),
                    )
                } else {
                    Response::see_other("/login")
                };
            };
            let csrf = app.csrf_token("session", &cookie);
            if !m.is_safe() {
                let form = req.form();
                if !app.csrf_ok("session", &cookie, form.text("csrf")) {
                    return Response::html(
                        403,
                        page(
                            "Refused",
                            false,
                            None,
                            &notice(
                                "the form's CSRF token is missing or wrong: reload the page and try again",
                                true,
                            ),
                        ),
                    );
                }
                return admin_post(app, now, client, req, &form, &cookie, &user, rng, fx);
            }
            match path {
                "/admin" => dashboard(
                    app,
                    now,
                    &csrf,
                    req.query_param("msg").as_deref().unwrap_or(""),
                ),
                "/admin/password" => password_form(&csrf, "", false, 200),
                "/admin/certificate" => certificate_page(app, now, &csrf, ""),
                _ => not_found(),
            }
        }
    }
}

fn not_found() -> Response {
    Response::html(
        404,
        page(
            "Not found",
            false,
            None,
            "<p><a href=\"/admin\">Back to the dashboard</a></p>",
        ),
    )
}

fn setup_form<R: CryptoRng + ?Sized>(
    app: &App,
    req: &Request,
    rng: &mut R,
    message: &str,
) -> Response {
    if app.state.admin.is_some() {
        return Response::see_other("/login");
    }
    let token = req
        .query_param("token")
        .or_else(|| req.form().get("token").map(String::from))
        .unwrap_or_default();
    if !setup_token_ok(app, &token) {
        return invalid_setup_link();
    }
    let (pre, set) = pre_cookie(req, rng);
    let csrf = app.csrf_token("pre", &pre);
    let rules = rules_text(app);
    let body = format!(
        "{}<p>Choose the admin password for user <b>{}</b>. {}</p>\
         <form method=\"post\" action=\"/setup\">{}{}\
         <label>Password<input type=\"password\" id=\"pw\" name=\"password\" autocomplete=\"new-password\" required></label>\
         <label>Again<input type=\"password\" name=\"confirm\" autocomplete=\"new-password\" required></label>\
         <button type=\"button\" data-toggle=\"pw\">Show</button> <button type=\"submit\">Save</button></form>",
        notice(message, true),
        escape(&app.config.admin_user),
        escape(&rules),
        hidden("token", &token),
        hidden("csrf", &csrf)
    );
    with_cookie(
        Response::html(
            if message.is_empty() { 200 } else { 400 },
            page("Set up", false, None, &body),
        ),
        set,
    )
}

/// The answer to a setup page or form whose one-time token is missing, wrong or used.
fn invalid_setup_link() -> Response {
    Response::html(
        403,
        page(
            "Set up",
            false,
            None,
            &notice(
                "this setup link is not valid; use the link the server printed",
                true,
            ),
        ),
    )
}

fn setup_token_ok(app: &App, token: &str) -> bool {
    app.setup_token.as_ref().is_some_and(|t| {
        t.len() == token.len()
            && bool::from(subtle::ConstantTimeEq::ct_eq(
                t.as_bytes(),
                token.as_bytes(),
            ))
    })
}

fn rules_text(app: &App) -> String {
    let p = &app.config.password_policy;
    let mut s = format!("At least {} characters", p.min_chars);
    if p.require_uppercase {
        s.push_str(", an upper-case letter");
    }
    if p.require_lowercase {
        s.push_str(", a lower-case letter");
    }
    if p.require_digit {
        s.push_str(", a digit");
    }
    s.push('.');
    s
}

fn setup_post<R: CryptoRng + ?Sized>(
    app: &mut App,
    now: Now,
    req: &Request,
    rng: &mut R,
    fx: &mut Vec<Effect>,
) -> Response {
    if app.state.admin.is_some() {
        return Response::see_other("/login");
    }
    let form = req.form();
    if !setup_token_ok(app, form.text("token")) {
        return invalid_setup_link();
    }
    let pre = req.cookie(PRE_COOKIE).unwrap_or("");
    if !is_hex64(pre) || !app.csrf_ok("pre", pre, form.text("csrf")) {
        return setup_form(app, req, rng, "The form expired: please try again.");
    }
    let pw = form.text("password");
    if pw != form.text("confirm") {
        return setup_form(app, req, rng, "The two passwords differ.");
    }
    if let Err(v) = app.config.password_policy.check(pw) {
        return setup_form(app, req, rng, &policy_message(&v.to_string()));
    }
    let Ok(hash) = app.hash_password(pw, rng) else {
        return setup_form(app, req, rng, "The password could not be stored.");
    };
    let user = app.config.admin_user.clone();
    app.state.admin = Some(Admin {
        user: user.clone(),
        password_hash: hash,
    });
    app.setup_token = None;
    app.persist(fx);
    start_session(app, now, req, &user, rng, "/admin?msg=password-set")
}

/// The password work of a costly request that gets as far as its handler's first hash
/// ([`crate::passwords`]): the same checks, in the same order, as [`setup_post`],
/// [`login_post`] and [`change_password`] make before hashing; `None` when one fails (the
/// handler then answers without hashing) or the route has none.
pub(crate) fn password_work<R: CryptoRng + ?Sized>(
    app: &mut App,
    now: Now,
    client: ClientKey,
    req: &Request,
    rng: &mut R,
) -> Option<PasswordWork> {
    if cross_site(req) {
        return None;
    }
    let form = req.form();
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    let pre_ok = |app: &App| {
        let pre = req.cookie(PRE_COOKIE).unwrap_or("");
        is_hex64(pre) && app.csrf_ok("pre", pre, form.text("csrf"))
    };
    let (verify, hash) = match req.path.as_str() {
        "/setup" => {
            let pw = form.text("password");
            if app.state.admin.is_some()
                || !setup_token_ok(app, form.text("token"))
                || !pre_ok(app)
                || pw != form.text("confirm")
                || app.config.password_policy.check(pw).is_err()
            {
                return None;
            }
            (None, Some((String::from(pw), salt, HashWhen::Always)))
        }
        "/login" => {
            let admin = app.state.admin.as_ref()?;
            let (user, pw) = (form.text("user"), form.text("password"));
            if !pre_ok(app)
                || user != admin.user
                || app.guard.check_login(now, client, Some(user)).is_err()
            {
                return None;
            }
            (
                Some((admin.password_hash.clone(), String::from(pw))),
                Some((String::from(pw), salt, HashWhen::IfRehash)),
            )
        }
        "/admin/password" => {
            let (cookie, user) = session(app, now, req)?;
            let admin = app.state.admin.as_ref()?;
            if !app.csrf_ok("session", &cookie, form.text("csrf"))
                || app.guard.check_login(now, client, Some(&user)).is_err()
            {
                return None;
            }
            let pw = form.text("password");
            let new = (pw == form.text("confirm") && app.config.password_policy.check(pw).is_ok())
                .then(|| (String::from(pw), salt, HashWhen::IfVerified));
            (
                Some((
                    admin.password_hash.clone(),
                    String::from(form.text("current")),
                )),
                new,
            )
        }
        _ => return None,
    };
    Some(PasswordWork {
        hasher: app.hasher,
        verify,
        hash,
    })
}

fn policy_message(s: &str) -> String {
    let mut m = String::from(s);
    if let Some(first) = m.get(0..1) {
        let up = first.to_uppercase();
        m.replace_range(0..1, &up);
    }
    m.push('.');
    m
}

fn start_session<R: CryptoRng + ?Sized>(
    app: &mut App,
    now: Now,
    req: &Request,
    user: &str,
    rng: &mut R,
    to: &str,
) -> Response {
    match app
        .guard
        .sessions_mut()
        .login(now.instant, user, req.cookie(SESSION_COOKIE), rng)
    {
        Ok(s) => {
            let mut r = Response::see_other(to);
            r.set_header("Set-Cookie", set_cookie(SESSION_COOKIE, &s.id.to_hex()));
            r.set_header("Set-Cookie", clear_cookie(PRE_COOKIE));
            r
        }
        Err(e) => Response::html(
            503,
            page("Busy", false, None, &notice(&e.to_string(), true)),
        ),
    }
}

fn login_form<R: CryptoRng + ?Sized>(
    app: &App,
    req: &Request,
    rng: &mut R,
    message: &str,
    status: u16,
) -> Response {
    if app.state.admin.is_none() {
        return Response::html(
            200,
            page(
                "Set up",
                false,
                None,
                "<p>This gateway has no admin password yet. Open the one-time setup link printed by the server when it started.</p>",
            ),
        );
    }
    let (pre, set) = pre_cookie(req, rng);
    let csrf = app.csrf_token("pre", &pre);
    let body = format!(
        "{}<form method=\"post\" action=\"/login\">{}\
         <label>User<input type=\"text\" name=\"user\" value=\"{}\" autocomplete=\"username\" required></label>\
         <label>Password<input type=\"password\" id=\"pw\" name=\"password\" autocomplete=\"current-password\" required></label>\
         <button type=\"button\" data-toggle=\"pw\">Show</button> <button type=\"submit\">Log in</button></form>",
        notice(message, true),
        hidden("csrf", &csrf),
        escape(&app.config.admin_user)
    );
    with_cookie(
        Response::html(status, page("Log in", false, None, &body)),
        set,
    )
}

fn login_post<R: CryptoRng + ?Sized>(
    app: &mut App,
    now: Now,
    client: ClientKey,
    req: &Request,
    rng: &mut R,
    fx: &mut Vec<Effect>,
) -> Response {
    let Some(admin) = app.state.admin.clone() else {
        return Response::see_other("/");
    };
    let form = req.form();
    let pre = req.cookie(PRE_COOKIE).unwrap_or("");
    if !is_hex64(pre) || !app.csrf_ok("pre", pre, form.text("csrf")) {
        return login_form(app, req, rng, "The form expired: please try again.", 400);
    }
    let user = form.text("user");
    let account = (user == admin.user).then_some(admin.user.as_str());
    if let Err(refusal) = app.guard.check_login(now, client, account) {
        let mins = refusal
            .until()
            .saturating_duration_since(now.instant)
            .as_secs()
            .div_ceil(60)
            .max(1);
        let msg = format!(
            "Too many failed logins. Try again in {mins} minute{}.",
            if mins == 1 { "" } else { "s" }
        );
        return login_form(app, req, rng, &msg, 429);
    }
    let verified = if account.is_some() {
        app.verify_password(&admin.password_hash, form.text("password"))
    } else {
        Err(PasswordError::Mismatch)
    };
    match verified {
        Ok(v) => {
            app.guard.login_succeeded(now, client, account);
            if v.needs_rehash
                && let Ok(h) = app.hash_password(form.text("password"), rng)
                && let Some(a) = app.state.admin.as_mut()
            {
                a.password_hash = h;
                app.persist(fx);
            }
            start_session(app, now, req, &admin.user, rng, "/admin")
        }
        Err(_) => {
            let out = app.guard.login_failed(now, client, account);
            let msg = if out.address_blocked_until.is_some() || out.account_locked_until.is_some() {
                "Wrong user name or password. Too many failed logins: try again in 5 minutes."
            } else {
                "Wrong user name or password."
            };
            login_form(app, req, rng, msg, 401)
        }
    }
}

fn logout(app: &mut App, now: Now, req: &Request) -> Response {
    if let Some((cookie, _)) = session(app, now, req) {
        if !app.csrf_ok("session", &cookie, req.form().text("csrf")) {
            return Response::html(
                403,
                page(
                    "Refused",
                    false,
                    None,
                    &notice("the form's CSRF token is missing or wrong", true),
                ),
            );
        }
        app.guard.sessions_mut().logout(&cookie);
    }
    let mut r = Response::see_other("/login");
    r.set_header("Set-Cookie", clear_cookie(SESSION_COOKIE));
    r
}

fn message_text(code: &str) -> &'static str {
    match code {
        "password-set" => "Password saved.",
        "password-changed" => "Password changed. Other sessions were logged out.",
        "cert-swapped" => "Certificate accepted; it is being installed.",
        "cert-regenerating" => "A new self-signed certificate is being generated.",
        "panel-added" => {
            "Provisioning code added. The device will be provisioned at its next attempt (every 10 s)."
        }
        "panel-deleted" => "Panel removed.",
        "panel-reset" => "Panel reset: the device must provision again with its code.",
        "io-saved" => "IO saved.",
        "refresh" => "Token refresh requested.",
        _ => "",
    }
}

fn dashboard(app: &App, now: Now, csrf: &str, msg: &str) -> Response {
    let mut b = notice(message_text(msg), false);
    b.push_str("<h2>Panels</h2><table><tr><th>Panel</th><th>Code</th><th>State</th><th>Last seen</th><th></th></tr>");
    for p in &app.state.panels {
        let online = app.conns.values().any(|c| c.panel == p.id);
        let state = match (p.is_provisioned(), online) {
            (_, true) => "online",
            (true, false) => "offline",
            (false, _) => "waiting for device",
        };
        let seen = p
            .last_seen
            .map_or_else(|| String::from("never"), latchkey_pki::inspect::rfc3339);
        b.push_str(&format!(
            "<tr><td>{}<br><span class=\"muted\">{}</span></td><td><code>{}</code></td><td>{}</td><td>{}</td><td>\
             <form class=\"inline\" method=\"post\" action=\"/admin/panels/reset\" data-confirm=\"Reset this panel? The device must provision again.\">{}{}<button>Reset</button></form> \
             <form class=\"inline\" method=\"post\" action=\"/admin/panels/delete\" data-confirm=\"Remove this panel?\">{}{}<button>Remove</button></form></td></tr>",
            escape(p.name()),
            escape(&p.id),
            escape(&p.provisioning_code),
            state,
            escape(&seen),
            hidden("csrf", csrf),
            hidden("id", &p.id),
            hidden("csrf", csrf),
            hidden("id", &p.id),
        ));
    }
    b.push_str("</table>");
    b.push_str(&format!(
        "<h2>Add a provisioning code</h2><form method=\"post\" action=\"/admin/panels\">{}\
         <label>Name<input type=\"text\" name=\"name\" maxlength=\"255\" required></label>\
         <label>Code shown by the device<input type=\"text\" name=\"code\" maxlength=\"64\" required></label>\
         <button type=\"submit\">Add</button></form>",
        hidden("csrf", csrf)
    ));
    b.push_str("<h2>IOs</h2><table><tr><th>IO</th><th>Type</th><th>State</th></tr>");
    for io in app.state.ios.iter().take(500) {
        b.push_str(&format!(
            "<tr><td>{}<br><span class=\"muted\">{}</span></td><td>{}</td><td>\
             <form class=\"inline\" method=\"post\" action=\"/admin/ios/state\">{}{}\
             <input type=\"text\" name=\"state\" value=\"{}\" maxlength=\"255\" aria-label=\"state\"><button>Set</button></form></td></tr>",
            escape(&io.name),
            escape(&io.id),
            escape(&io.kind),
            hidden("csrf", csrf),
            hidden("id", &io.id),
            escape(&io.state)
        ));
    }
    b.push_str(&format!(
        "</table><details><summary>Add or change an IO</summary><form method=\"post\" action=\"/admin/ios\">{}\
         <label>Id<input type=\"text\" name=\"id\" maxlength=\"255\" required></label>\
         <label>Type<input type=\"text\" name=\"type\" maxlength=\"255\" placeholder=\"light\"></label>\
         <label>Name<input type=\"text\" name=\"name\" maxlength=\"255\"></label>\
         <label>State<input type=\"text\" name=\"state\" maxlength=\"255\"></label>\
         <label>GUI type<input type=\"text\" name=\"gui_type\" maxlength=\"255\" placeholder=\"light_dimmer\"></label>\
         <p class=\"muted\">Fields left blank keep an existing IO's values.</p>\
         <button type=\"submit\">Save</button></form></details>",
        hidden("csrf", csrf)
    ));
    b.push_str("<h2>Token</h2>");
    match &app.token_status {
        None => b.push_str("<p>No token keeper is running.</p>"),
        Some(s) => {
            // A time as RFC 3339 with the minutes from now.
            let at = |t: Option<u64>, none: &str| {
                t.map_or_else(
                    || none.to_owned(),
                    |t| {
                        format!(
                            "{} ({:+} min)",
                            latchkey_pki::inspect::rfc3339(t),
                            (t as i64 - now.unix_secs as i64) / 60
                        )
                    },
                )
            };
            let exp = at(s.access_expires_at, "unknown");
            let next = at(s.next_action_at, "none scheduled");
            b.push_str(&format!(
                "<table><tr><th>Valid</th><td>{}</td></tr><tr><th>Expires</th><td>{}</td></tr>\
                 <tr><th>Next refresh</th><td>{}</td></tr>\
                 <tr><th>Refresh token</th><td>{}</td></tr><tr><th>Failures</th><td>{}</td></tr>{}</table>",
                if s.token_valid { "yes" } else { "no" },
                escape(&exp),
                escape(&next),
                if s.has_refresh_token { "held" } else { "none" },
                s.failures,
                s.reauth_reason.as_ref().map_or_else(String::new, |r| format!("<tr><th>Login needed</th><td>{}</td></tr>", escape(r)))
            ));
        }
    }
    b.push_str(&format!(
        "<p>Automatic refresh: {}, {} min before expiry.</p>\
         <form method=\"post\" action=\"/admin/token/refresh\">{}<button>Refresh now</button></form>",
        if app.state.utec.auto_refresh_enabled { "on" } else { "off" },
        app.state.utec.refresh_buffer_minutes,
        hidden("csrf", csrf)
    ));
    b.push_str("<h2>Certificate</h2>");
    b.push_str(&cert_summary(app, now));
    b.push_str("<p><a href=\"/admin/certificate\">Details, upload, regenerate</a></p>");
    Response::html(200, page("Dashboard", true, Some(csrf), &b))
}

fn cert_summary(app: &App, now: Now) -> String {
    let Some(c) = &app.cert else {
        return String::from("<p>No certificate information yet.</p>");
    };
    let e = c
        .info
        .expiry(now.unix_secs, app.config.cert_warn_days * 86_400);
    let warn = if e.expiring_soon {
        " — renew soon"
    } else {
        ""
    };
    format!(
        "<table><tr><th>Subject</th><td>{}</td></tr><tr><th>Issuer</th><td>{}</td></tr>\
         <tr><th>Valid until</th><td>{}</td></tr><tr><th>Days left</th><td>{}{}</td></tr>\
         <tr><th>Self-signed</th><td>{}</td></tr><tr><th>SHA-256</th><td><code>{}</code></td></tr></table>",
        escape(&c.info.subject),
        escape(&c.info.issuer),
        escape(&c.info.not_after_utc),
        e.days_until_expiry,
        warn,
        if c.info.self_signed { "yes" } else { "no" },
        escape(&c.info.fingerprint_sha256)
    )
}

fn password_form(csrf: &str, message: &str, error: bool, status: u16) -> Response {
    let body = format!(
        "{}<form method=\"post\" action=\"/admin/password\">{}\
         <label>Current password<input type=\"password\" name=\"current\" autocomplete=\"current-password\" required></label>\
         <label>New password<input type=\"password\" id=\"pw\" name=\"password\" autocomplete=\"new-password\" required></label>\
         <label>Again<input type=\"password\" name=\"confirm\" autocomplete=\"new-password\" required></label>\
         <button type=\"button\" data-toggle=\"pw\">Show</button> <button type=\"submit\">Change</button></form>",
        notice(message, error),
        hidden("csrf", csrf)
    );
    Response::html(status, page("Password", true, Some(csrf), &body))
}

fn certificate_page(app: &App, now: Now, csrf: &str, message: &str) -> Response {
    let body = format!(
        "{}{}<h2>Upload</h2><p>PEM certificate (leaf first, chain after) and its private key. \
         Without a CA certificate the leaf must be self-signed.</p>\
         <form method=\"post\" action=\"/admin/certificate\">{}\
         <label>Certificate<textarea name=\"cert_pem\" required></textarea></label>\
         <label>Private key<textarea name=\"key_pem\" required></textarea></label>\
         <label>CA certificate (optional)<textarea name=\"roots_pem\"></textarea></label>\
         <button type=\"submit\">Validate and install</button></form>\
         <h2>Self-signed</h2><form method=\"post\" action=\"/admin/certificate/regenerate\" \
         data-confirm=\"Replace the certificate with a new self-signed one?\">{}<button>Regenerate</button></form>",
        notice(message, true),
        cert_summary(app, now),
        hidden("csrf", csrf),
        hidden("csrf", csrf)
    );
    Response::html(
        if message.is_empty() { 200 } else { 400 },
        page("Certificate", true, Some(csrf), &body),
    )
}

#[allow(clippy::too_many_arguments)]
fn admin_post<R: CryptoRng + ?Sized>(
    app: &mut App,
    now: Now,
    client: ClientKey,
    req: &Request,
    form: &Form,
    cookie: &str,
    user: &str,
    rng: &mut R,
    fx: &mut Vec<Effect>,
) -> Response {
    let csrf = app.csrf_token("session", cookie);
    match req.path.as_str() {
        "/admin/password" => change_password(app, now, client, req, form, user, rng, fx),
        "/admin/certificate" => {
            let roots = form.text("roots_pem");
            let mut bundle = Bundle::new(
                form.text("cert_pem").as_bytes(),
                form.text("key_pem").as_bytes(),
            );
            if !roots.trim().is_empty() {
                bundle = bundle.with_roots(roots.as_bytes());
            }
            match validate(&bundle, now.unix_secs) {
                Ok(_) => {
                    fx.push(Effect::SwapCertificate {
                        cert_pem: String::from(form.text("cert_pem")),
                        key_pem: String::from(form.text("key_pem")),
                        roots_pem: (!roots.trim().is_empty()).then(|| String::from(roots)),
                    });
                    Response::see_other("/admin?msg=cert-swapped")
                }
                Err(e) => certificate_page(app, now, &csrf, &format!("Refused: {e}")),
            }
        }
        "/admin/certificate/regenerate" => {
            fx.push(Effect::RegenerateSelfSigned);
            Response::see_other("/admin?msg=cert-regenerating")
        }
        "/admin/token/refresh" => {
            fx.push(Effect::RefreshToken);
            Response::see_other("/admin?msg=refresh")
        }
        "/admin/panels" => match add_panel(app, None, form.text("name"), form.text("code"), fx) {
            Ok(_) => Response::see_other("/admin?msg=panel-added"),
            Err(e) => form_error(&csrf, &e),
        },
        "/admin/panels/delete" => match delete_panel(app, form.text("id"), fx) {
            Ok(()) => Response::see_other("/admin?msg=panel-deleted"),
            Err(e) => form_error(&csrf, &e),
        },
        "/admin/panels/reset" => match reset_panel(app, form.text("id"), fx) {
            Ok(()) => Response::see_other("/admin?msg=panel-reset"),
            Err(e) => form_error(&csrf, &e),
        },
        "/admin/ios" => {
            // A field left blank keeps the IO's current value (a new IO: type `var`, its id
            // as name, empty state and GUI type), so an edit never drops what the form
            // does not show or the admin did not retype.
            let id = form.text("id");
            let current = app.state.ios.iter().find(|io| io.id == id);
            let field = |k: &str, keep: Option<&str>, new: &str| {
                String::from(
                    form.get(k)
                        .filter(|t| !t.is_empty())
                        .or(keep)
                        .unwrap_or(new),
                )
            };
            let io = Io {
                id: String::from(id),
                kind: field("type", current.map(|c| c.kind.as_str()), "var"),
                name: field("name", current.map(|c| c.name.as_str()), id),
                state: field("state", current.map(|c| c.state.as_str()), ""),
                gui_type: field("gui_type", current.map(|c| c.gui_type.as_str()), ""),
            };
            match upsert_io(app, io, fx) {
                Ok(()) => Response::see_other("/admin?msg=io-saved"),
                Err(e) => form_error(&csrf, &e),
            }
        }
        "/admin/ios/state" => match set_io_state(app, form.text("id"), form.text("state"), fx) {
            Ok(()) => Response::see_other("/admin?msg=io-saved"),
            Err(e) => form_error(&csrf, &e),
        },
        _ => not_found(),
    }
}

fn form_error(csrf: &str, message: &str) -> Response {
    Response::html(
        400,
        page(
            "Not saved",
            true,
            Some(csrf),
            &format!(
                "{}<p><a href=\"/admin\">Back</a></p>",
                notice(message, true)
            ),
        ),
    )
}

#[allow(clippy::too_many_arguments)]
fn change_password<R: CryptoRng + ?Sized>(
    app: &mut App,
    now: Now,
    client: ClientKey,
    req: &Request,
    form: &Form,
    user: &str,
    rng: &mut R,
    fx: &mut Vec<Effect>,
) -> Response {
    let cookie = req.cookie(SESSION_COOKIE).unwrap_or("");
    let csrf = app.csrf_token("session", cookie);
    let Some(admin) = app.state.admin.clone() else {
        return Response::see_other("/");
    };
    if let Err(r) = app.guard.check_login(now, client, Some(user)) {
        return password_form(
            &csrf,
            &format!("{}.", policy_message(&r.to_string()).trim_end_matches('.')),
            true,
            429,
        );
    }
    if app
        .verify_password(&admin.password_hash, form.text("current"))
        .is_err()
    {
        let _ = app.guard.login_failed(now, client, Some(user));
        return password_form(&csrf, "The current password is wrong.", true, 401);
    }
    app.guard.login_succeeded(now, client, Some(user));
    let pw = form.text("password");
    if pw != form.text("confirm") {
        return password_form(&csrf, "The two new passwords differ.", true, 400);
    }
    if let Err(v) = app.config.password_policy.check(pw) {
        return password_form(&csrf, &policy_message(&v.to_string()), true, 400);
    }
    let Ok(hash) = app.hash_password(pw, rng) else {
        return password_form(&csrf, "The password could not be stored.", true, 500);
    };
    if let Some(a) = app.state.admin.as_mut() {
        a.password_hash = hash;
    }
    app.persist(fx);
    match app
        .guard
        .sessions_mut()
        .password_changed(now.instant, user, rng)
    {
        Ok(id) => {
            let mut r = Response::see_other("/admin?msg=password-changed");
            r.set_header("Set-Cookie", set_cookie(SESSION_COOKIE, &id.to_hex()));
            r
        }
        Err(_) => Response::see_other("/login"),
    }
}

// ---------------------------------------------------------------------------------------
// Shared operations
// ---------------------------------------------------------------------------------------

fn valid_code(code: &str) -> bool {
    (4..=64).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Adds a panel waiting for a device with `code`; returns its id.
pub(crate) fn add_panel(
    app: &mut App,
    id: Option<&str>,
    name: &str,
    code: &str,
    fx: &mut Vec<Effect>,
) -> Result<String, String> {
    let code = code.trim();
    if !valid_code(code) {
        return Err(String::from(
            "the code must be 4 to 64 letters, digits, - or _",
        ));
    }
    if name.is_empty() || name.len() > MAX_STRING {
        return Err(format!("the name must be 1 to {MAX_STRING} bytes"));
    }
    if !crate::model::is_xml_text(name) {
        return Err(format!("the name {}", crate::model::XML_TEXT_RULE));
    }
    if app.state.panels.iter().any(|p| p.provisioning_code == code) {
        return Err(String::from("another panel already uses this code"));
    }
    if app.state.panels.len() >= MAX_PANELS {
        return Err(format!("at most {MAX_PANELS} panels"));
    }
    let id = match id {
        Some(id) => {
            if id.is_empty() || id.len() > MAX_STRING {
                return Err(format!("the id must be 1 to {MAX_STRING} bytes"));
            }
            if !crate::model::is_xml_text(id) {
                return Err(format!("the id {}", crate::model::XML_TEXT_RULE));
            }
            if app.state.panels.iter().any(|p| p.id == id) {
                return Err(String::from("another panel has this id"));
            }
            String::from(id)
        }
        None => {
            let base = format!("remote_ui_{code}");
            let mut id = base.clone();
            let mut n = 2;
            while app.state.panels.iter().any(|p| p.id == id) {
                id = format!("{base}_{n}");
                n += 1;
            }
            id
        }
    };
    app.state.panels.push(RemoteUi::new(&id, name, code));
    app.persist(fx);
    Ok(id)
}

fn close_all(conns: Vec<crate::app::ConnId>, reason: &str, fx: &mut Vec<Effect>) {
    for conn in conns {
        fx.push(Effect::CloseWs {
            conn,
            code: 1008,
            reason: String::from(reason),
        });
    }
}

fn delete_panel(app: &mut App, id: &str, fx: &mut Vec<Effect>) -> Result<(), String> {
    let Some(i) = app.state.panels.iter().position(|p| p.id == id) else {
        return Err(String::from("no such panel"));
    };
    let conns = app.unregister_device(id);
    app.state.panels.remove(i);
    close_all(conns, "panel removed", fx);
    app.persist(fx);
    Ok(())
}

fn reset_panel(app: &mut App, id: &str, fx: &mut Vec<Effect>) -> Result<(), String> {
    let Some(p) = app.state.panels.iter_mut().find(|p| p.id == id) else {
        return Err(String::from("no such panel"));
    };
    p.credentials = None;
    let conns = app.unregister_device(id);
    close_all(conns, "panel reset", fx);
    app.persist(fx);
    Ok(())
}

fn upsert_io(app: &mut App, io: Io, fx: &mut Vec<Effect>) -> Result<(), String> {
    let old_state = app.state.ios.get(&io.id).map(|o| o.state.clone());
    let (id, state) = (io.id.clone(), io.state.clone());
    app.state.ios.upsert(io).map_err(|e| e.to_string())?;
    if old_state.as_deref() != Some(state.as_str()) {
        fx.push(Effect::SetIoState {
            io: id.clone(),
            state: state.clone(),
        });
        app.broadcast_io(&id, &state, fx);
    }
    app.persist(fx);
    Ok(())
}

fn set_io_state(app: &mut App, id: &str, state: &str, fx: &mut Vec<Effect>) -> Result<(), String> {
    match app.state.ios.set_state(id, state) {
        Err(e) => Err(e.to_string()),
        Ok(None) => Err(String::from("no such IO")),
        Ok(Some(changed)) => {
            fx.push(Effect::SetIoState {
                io: String::from(id),
                state: String::from(state),
            });
            if changed {
                app.broadcast_io(id, state, fx);
                app.persist(fx);
            }
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------
// JSON API
// ---------------------------------------------------------------------------------------

fn json_body(req: &Request) -> Result<serde_json::Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(o)) => Ok(o),
        _ => Err(error(400, "body must be a JSON object")),
    }
}

fn str_field<'a>(o: &'a serde_json::Map<String, Value>, k: &str) -> Option<&'a str> {
    o.get(k).and_then(Value::as_str)
}

/// Every `/api/…` path not answered without a session.
pub(crate) fn api<R: CryptoRng + ?Sized>(
    app: &mut App,
    now: Now,
    req: &Request,
    _rng: &mut R,
    fx: &mut Vec<Effect>,
) -> Response {
    let Some((cookie, user)) = session(app, now, req) else {
        return error(401, "admin login required");
    };
    let m = &req.method;
    if !m.is_safe() {
        let presented = req.header("x-csrf-token").unwrap_or("");
        if cross_site(req) || !app.csrf_ok("session", &cookie, presented) {
            return error(403, "missing or wrong X-CSRF-Token");
        }
    }
    // Segments are percent-decoded after the split, so an id holding a space or a `/`
    // (sent as %20, %2F) reaches its routes.
    let mut decoded = Vec::new();
    for seg in req.path.trim_start_matches('/').split('/') {
        match percent_encoding::percent_decode_str(seg).decode_utf8() {
            Ok(d) => decoded.push(d),
            Err(_) => return error(400, "a path segment is not UTF-8 once percent-decoded"),
        }
    }
    let segs: Vec<&str> = decoded.iter().map(AsRef::as_ref).collect();
    let ok = |v: Value| Response::json(200, &v);
    match (m, segs.as_slice()) {
        (Method::Get | Method::Head, ["api", "session"]) => {
            ok(json!({"user": user, "csrf_token": app.csrf_token("session", &cookie)}))
        }
        (Method::Get | Method::Head, ["api", "v3", "remote_ui", "list"]) => panels::list(app),
        (Method::Get | Method::Head, ["api", "v3", "remote_ui", "status", id]) => {
            panels::status(app, id)
        }
        (Method::Post, ["api", "v3", "remote_ui"]) => {
            let o = match json_body(req) {
                Ok(o) => o,
                Err(r) => return r,
            };
            let code = str_field(&o, "provisioning_code")
                .or_else(|| str_field(&o, "code"))
                .unwrap_or("");
            match add_panel(
                app,
                str_field(&o, "id"),
                str_field(&o, "name").unwrap_or(""),
                code,
                fx,
            ) {
                Ok(id) => Response::json(201, &json!({"status": "ok", "id": id})),
                Err(e) => error(400, &e),
            }
        }
        (Method::Put, ["api", "v3", "remote_ui", id, "config"]) => edit_config(app, id, req, fx),
        (Method::Post, ["api", "v3", "remote_ui", id, "reset"]) => match reset_panel(app, id, fx) {
            Ok(()) => ok(json!({"status": "ok"})),
            Err(e) => error(404, &e),
        },
        (Method::Delete, ["api", "v3", "remote_ui", id]) => match delete_panel(app, id, fx) {
            Ok(()) => ok(json!({"status": "ok"})),
            Err(e) => error(404, &e),
        },
        (Method::Get | Method::Head, ["api", "v3", "io"]) => ok(Value::Array(
            app.state.ios.iter().map(Io::to_json).collect(),
        )),
        (Method::Put, ["api", "v3", "io", id]) => {
            let o = match json_body(req) {
                Ok(o) => o,
                Err(r) => return r,
            };
            let text = |k: &str, d: &str| {
                o.get(k).map_or(Ok(String::from(d)), |v| {
                    value_text(v, k).map_err(|e| e.to_string())
                })
            };
            let io = match (
                text("type", "var"),
                text("name", id),
                text("state", ""),
                text("gui_type", ""),
            ) {
                (Ok(kind), Ok(name), Ok(state), Ok(gui_type)) => Io {
                    id: String::from(*id),
                    kind,
                    name,
                    state,
                    gui_type,
                },
                (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => {
                    return error(400, &e);
                }
            };
            match upsert_io(app, io, fx) {
                Ok(()) => ok(json!({"status": "ok"})),
                Err(e) => error(400, &e),
            }
        }
        (Method::Post, ["api", "v3", "io", id, "state"]) => {
            let o = match json_body(req) {
                Ok(o) => o,
                Err(r) => return r,
            };
            let Some(state) = o.get("state").and_then(|v| value_text(v, "state").ok()) else {
                return error(400, "state must be a string, number or boolean");
            };
            match set_io_state(app, id, &state, fx) {
                Ok(()) => ok(json!({"status": "ok"})),
                Err(e) if e == "no such IO" => error(404, &e),
                Err(e) => error(400, &e),
            }
        }
        (Method::Delete, ["api", "v3", "io", id]) => match app.state.ios.remove(id) {
            Some(_) => {
                app.persist(fx);
                ok(json!({"status": "ok"}))
            }
            None => error(404, "no such IO"),
        },
        (Method::Get | Method::Head, ["api", "v3", "io.xml"]) => {
            let layout = match req.query_param("layout").as_deref() {
                None | Some("room") | Some("calaos_base") => xml::Layout::Room,
                Some("design") | Some("remote_uis") => xml::Layout::Design,
                Some(_) => return error(400, "layout must be room or design"),
            };
            let mut r = Response::new(200);
            r.body = xml::export(&app.state.panels, layout).into_bytes();
            r.set_header("Content-Type", "application/xml; charset=utf-8");
            r
        }
        (Method::Post, ["api", "v3", "io.xml"]) => import_xml(app, req, fx),
        (Method::Post, ["api", "config"]) => utec::post_config(app, req, fx),
        (Method::Post, ["api", "oauth", "refresh"]) => utec::refresh(app, fx),
        _ => error(404, "Endpoint not found"),
    }
}

fn edit_config(app: &mut App, id: &str, req: &Request, fx: &mut Vec<Effect>) -> Response {
    let o = match json_body(req) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let Some(i) = app.state.panels.iter().position(|p| p.id == id) else {
        return error(404, "RemoteUI not found");
    };
    let mut p = app.state.panels[i].clone();
    for (k, v) in &o {
        if k == "pages" {
            match pages_from_json(id, v) {
                Ok(pages) => p.pages = pages,
                Err(e) => return error(400, &e.to_string()),
            }
        } else if matches!(
            k.as_str(),
            "id" | "provisioning_code" | "auth_token" | "device_secret"
        ) {
            return error(400, &format!("{k} cannot be changed here"));
        } else if !crate::model::is_attribute_name(k) {
            return error(400, &format!("{k:?} {}", crate::model::ATTRIBUTE_NAME_RULE));
        } else {
            match value_text(v, k) {
                Ok(t) if !crate::model::is_xml_text(&t) => {
                    return error(400, &format!("{k} {}", crate::model::XML_TEXT_RULE));
                }
                Ok(t) => p.set_param(k, &t),
                Err(e) => return error(400, &e.to_string()),
            }
        }
    }
    if let Err(e) = p.validate() {
        return error(400, &e.to_string());
    }
    app.state.panels[i] = p;
    ws::config_changed(app, id, fx);
    app.persist(fx);
    Response::json(200, &json!({"status": "ok"}))
}

fn import_xml(app: &mut App, req: &Request, fx: &mut Vec<Effect>) -> Response {
    let Ok(text) = core::str::from_utf8(&req.body) else {
        return error(400, "io.xml must be UTF-8");
    };
    let imported = match xml::import(text) {
        Ok(p) => p,
        Err(e) => return error(400, &e.to_string()),
    };
    // All or nothing: everything that could refuse the import is checked against the panels
    // it would leave before any panel changes, so a refused import changes nothing.
    let is_new = |id: &str| !app.state.panels.iter().any(|p| p.id == id);
    let added = imported.iter().filter(|p| is_new(&p.id)).count();
    if app.state.panels.len() + added > MAX_PANELS {
        return error(
            400,
            &format!(
                "the import would make {} panels, at most {MAX_PANELS} are allowed; nothing was imported",
                app.state.panels.len() + added
            ),
        );
    }
    // A panel kept as it is (not replaced) must not share a provisioning code with an
    // imported one: provisioning would match whichever came first.
    if let Some(clash) = imported.iter().find(|p| {
        !p.provisioning_code.is_empty()
            && app.state.panels.iter().any(|kept| {
                kept.provisioning_code == p.provisioning_code
                    && !imported.iter().any(|q| q.id == kept.id)
            })
    }) {
        return error(
            400,
            &format!(
                "panel {} uses provisioning code {}, which another panel already uses; nothing was imported",
                clash.id, clash.provisioning_code
            ),
        );
    }
    // Credentials no device could use are refused (the panel would show provisioned while
    // its device is refused on every connection): ones the guard cannot take, and a token
    // another panel holds — a kept one or another in the file.
    let mut tokens: std::collections::BTreeSet<&str> = app
        .state
        .panels
        .iter()
        .filter(|kept| !imported.iter().any(|q| q.id == kept.id))
        .filter_map(|kept| kept.credentials.as_ref().map(|c| c.auth_token.as_str()))
        .collect();
    for p in &imported {
        let Some(c) = &p.credentials else {
            continue;
        };
        if let Err(e) = DeviceCredentials::new(
            DeviceId(1),
            &c.auth_token,
            c.device_secret.as_bytes(),
            c.variant.signing(),
        ) {
            return error(
                400,
                &format!(
                    "panel {}'s credentials cannot be used ({e}); nothing was imported",
                    p.id
                ),
            );
        }
        if !tokens.insert(c.auth_token.as_str()) {
            return error(
                400,
                &format!(
                    "panel {} has the auth_token of another panel; nothing was imported",
                    p.id
                ),
            );
        }
    }
    let replaced = imported.len() - added;
    // Every replaced panel leaves the device directory before any is registered again: a
    // token may move from one replaced panel to another.
    for panel in &imported {
        if app.state.panels.iter().any(|p| p.id == panel.id) {
            let conns = app.unregister_device(&panel.id);
            close_all(conns, "configuration replaced", fx);
        }
    }
    let ids: Vec<String> = imported.iter().map(|p| p.id.clone()).collect();
    for panel in imported {
        match app.state.panels.iter().position(|p| p.id == panel.id) {
            Some(i) => app.state.panels[i] = panel,
            None => app.state.panels.push(panel),
        }
    }
    let refused: Vec<&String> = ids.iter().filter(|id| !app.register_device(id)).collect();
    app.persist(fx);
    if let Some(id) = refused.first() {
        // The checks above rule this out; say so rather than show a panel that never connects.
        return error(
            500,
            &format!("panel {id} was imported but its device could not be registered"),
        );
    }
    Response::json(
        200,
        &json!({"status": "ok", "added": added, "replaced": replaced}),
    )
}
