//! Token endpoint responses (RFC 6749 §5.1, §5.2) and how their failures are classified.
//!
//! Lenient where providers differ, strict where it matters:
//! * `expires_in` may be a number, a string of digits, or absent; then `expires_on` (Azure AD
//!   B2C), then the access token's JWT `exp` claim (read, never trusted for anything else),
//!   then the profile's `default_expires_in`; otherwise the expiry is unknown.
//! * Absolute times from the server (`expires_on`, JWT `exp`, `not_before`) are converted to
//!   the local clock with the skew estimated from the response's `Date` header; an expiry
//!   past 10^11 is read as milliseconds, and no lifetime is believed beyond ten years.
//! * U-tec's `{"code":200,"data":{…}}` wrapper is unwrapped when the profile says so.
//!
//! Failures are classified ([`ErrorClass`]) so that a revoked refresh token is never retried
//! forever and a passing outage never costs the session: only what the authorization server
//! says in OAuth terms (RFC 6749 §5.2 codes, an unknown `error` code with the 400 or 401 that
//! §5.2 prescribes, or a bare 401) is terminal; anything else (5xx, 429, a JSON error page with
//! another status, HTML error pages, broken JSON, network errors) is transient and retried
//! with backoff.

use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::http::{HttpResponse, TransportError};
use crate::profile::{ResponseConfig, Wrapper};
use crate::secret::Secret;

/// Largest token response body accepted.
pub const MAX_BODY: usize = 256 * 1024;

/// Longest lifetime believed (ten years); larger values are treated as this, from
/// `expires_in` and from absolute times alike.
const MAX_LIFETIME: u64 = 10 * 365 * 24 * 3600;

/// Unix seconds reach 10^11 only in the year 5138: an absolute time (`expires_on`, a JWT's
/// `exp`) that large is in milliseconds, a server mistake that would otherwise make a token
/// look valid for millennia.
const MILLIS_FROM: u64 = 100_000_000_000;

/// A successful token response, times on the local wall clock (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenResponse {
    /// The access token.
    pub access_token: Secret,
    /// `token_type` as sent (`Bearer` when absent).
    pub token_type: String,
    /// When the access token expires, if known.
    pub expires_at: Option<u64>,
    /// Where [`TokenResponse::expires_at`] came from.
    pub expiry_source: ExpirySource,
    /// `not_before` (B2C), local clock.
    pub not_before: Option<u64>,
    /// A refresh token, when one came back (a rotated one replaces the stored one).
    pub refresh_token: Option<Secret>,
    /// When that refresh token expires, from `refresh_token_expires_in`.
    pub refresh_expires_at: Option<u64>,
    /// `id_token`, if any.
    pub id_token: Option<Secret>,
    /// `scope` granted, if the server said.
    pub scope: Option<String>,
    /// The local time the response was handled.
    pub received_at: u64,
    /// Server clock minus local clock in seconds, from the `Date` header (0 when absent or
    /// within its one-second resolution).
    pub clock_skew: i64,
}

/// Where an access token's expiry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExpirySource {
    /// `expires_in` (relative, immune to clock skew).
    ExpiresIn,
    /// `expires_on` (absolute, skew-corrected).
    ExpiresOn,
    /// The JWT `exp` claim of the access token (absolute, skew-corrected).
    JwtExp,
    /// The profile's `default_expires_in`.
    ProfileDefault,
    /// Nothing said; the token is used until the resource server answers 401.
    Unknown,
    /// Read from another client's saved session ([`crate::import`]).
    Imported,
}

/// How a failure is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorClass {
    /// `invalid_grant`: the refresh token (or code) is dead. Before giving up, check whether
    /// another process rotated it.
    InvalidGrant,
    /// The server rejected the client or the request itself: retrying cannot help.
    Terminal,
    /// Worth retrying later (with backoff; after `retry_after` seconds when given).
    Transient,
}

/// A failed token request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// An RFC 6749 §5.2 error response.
    OAuth {
        /// HTTP status.
        status: u16,
        /// The `error` code.
        error: String,
        /// `error_description`.
        description: Option<String>,
        /// `Retry-After` in seconds, if sent.
        retry_after: Option<u64>,
    },
    /// A non-success status without an OAuth error body (a proxy page, an outage).
    Status {
        /// HTTP status.
        status: u16,
        /// `Retry-After` in seconds, if sent.
        retry_after: Option<u64>,
    },
    /// A success status whose body is not a usable token response.
    Malformed {
        /// What is wrong, naming the field.
        reason: String,
    },
    /// No response at all.
    Transport(TransportError),
    /// The driver never answered within the request deadline.
    Timeout,
    /// The tokens could not be saved (disk full, permissions); nothing was sent.
    Storage {
        /// The driver's explanation.
        reason: String,
    },
}

impl TokenError {
    /// How this failure is to be handled.
    #[must_use]
    pub fn class(&self) -> ErrorClass {
        match self {
            TokenError::OAuth { status, error, .. } => match error.as_str() {
                "invalid_grant" => ErrorClass::InvalidGrant,
                "invalid_client"
                | "unauthorized_client"
                | "invalid_request"
                | "unsupported_grant_type"
                | "invalid_scope"
                | "access_denied" => ErrorClass::Terminal,
                "temporarily_unavailable"
                | "server_error"
                | "slow_down"
                | "authorization_pending" => ErrorClass::Transient,
                // An unknown code is the server's word only with the statuses RFC 6749 §5.2
                // gives its errors (400, 401); with any other (a proxy's or WAF's 403/404
                // JSON page, an outage) it is not, and costing the session would be wrong.
                _ if matches!(*status, 400 | 401) => ErrorClass::Terminal,
                _ => ErrorClass::Transient,
            },
            TokenError::Status { status: 401, .. } => ErrorClass::Terminal,
            TokenError::Status { .. }
            | TokenError::Malformed { .. }
            | TokenError::Transport(_)
            | TokenError::Timeout
            | TokenError::Storage { .. } => ErrorClass::Transient,
        }
    }

    /// `Retry-After` in seconds, when the server sent one.
    #[must_use]
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            TokenError::OAuth { retry_after, .. } | TokenError::Status { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::OAuth {
                status,
                error,
                description,
                ..
            } => {
                write!(f, "token endpoint answered {status} {error}")?;
                if let Some(d) = description {
                    write!(f, ": {d}")?;
                }
                let hint = match self.class() {
                    ErrorClass::InvalidGrant => {
                        " (the refresh token was revoked, expired or already used; log in again)"
                    }
                    ErrorClass::Terminal if error == "invalid_client" => {
                        " (the client id or secret is wrong)"
                    }
                    ErrorClass::Terminal => " (the request was refused; check the profile)",
                    ErrorClass::Transient => " (temporary; will retry)",
                };
                f.write_str(hint)
            }
            TokenError::Status {
                status,
                retry_after,
            } => {
                write!(
                    f,
                    "token endpoint answered HTTP {status} without an OAuth error"
                )?;
                if let Some(r) = retry_after {
                    write!(f, " (retry after {r} s)")?;
                }
                Ok(())
            }
            TokenError::Malformed { reason } => write!(f, "unusable token response: {reason}"),
            TokenError::Transport(e) => write!(f, "token request failed: {e}"),
            TokenError::Timeout => f.write_str("token request got no answer in time"),
            TokenError::Storage { reason } => write!(f, "cannot save the token state: {reason}"),
        }
    }
}

impl std::error::Error for TokenError {}

/// Parses a token endpoint response received at local time `now`.
///
/// # Errors
/// [`TokenError`] for an error status (classified), or a success whose body lacks a usable
/// `access_token`.
pub fn parse_token_response(
    response: &HttpResponse,
    now: u64,
    config: &ResponseConfig,
) -> Result<TokenResponse, TokenError> {
    let skew = clock_skew(response, now);
    let retry_after = retry_after(response, now);
    if response.body.len() > MAX_BODY {
        return Err(if is_success(response.status) {
            malformed(format!(
                "body of {} bytes is over the {MAX_BODY}-byte limit",
                response.body.len()
            ))
        } else {
            TokenError::Status {
                status: response.status,
                retry_after,
            }
        });
    }
    let json: Option<Value> = serde_json::from_slice(&response.body).ok();
    let mut object = match json {
        Some(Value::Object(map)) => Some(map),
        _ => None,
    };
    let mut status = response.status;
    if config.wrapper == Wrapper::CodeData
        && let Some(map) = object.take()
    {
        let (inner, code) = unwrap_code_data(map);
        object = Some(inner);
        if let Some(code) = code.filter(|c| *c != 0 && !is_success(*c)) {
            status = code;
        }
    }
    if !is_success(status) {
        if let Some(map) = &object
            && let Some(error) = map.get("error").and_then(Value::as_str)
        {
            return Err(TokenError::OAuth {
                status,
                error: error.to_owned(),
                description: map
                    .get("error_description")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                retry_after,
            });
        }
        return Err(TokenError::Status {
            status,
            retry_after,
        });
    }
    let Some(map) = object else {
        return Err(malformed("the body is not a JSON object".to_owned()));
    };
    // Some servers answer 200 with an error object.
    if let Some(error) = map.get("error").and_then(Value::as_str)
        && map.get("access_token").is_none()
    {
        return Err(TokenError::OAuth {
            status,
            error: error.to_owned(),
            description: map
                .get("error_description")
                .and_then(Value::as_str)
                .map(str::to_owned),
            retry_after,
        });
    }
    token_fields(&map, now, skew, config)
}

/// The refresh token in a success answer, read as leniently as possible: the body (after
/// the profile's wrapper) is a JSON object whose `refresh_token` is a non-empty string.
/// [`TokenSession`](crate::session::TokenSession) keeps it when the strict reading of the
/// same answer fails ([`TokenError::Malformed`]): the server has rotated the token it was
/// sent, so this one is the session's only way on.
#[must_use]
pub fn rotated_refresh_token(response: &HttpResponse, config: &ResponseConfig) -> Option<Secret> {
    if !is_success(response.status) || response.body.len() > MAX_BODY {
        return None;
    }
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&response.body) else {
        return None;
    };
    let map = if config.wrapper == Wrapper::CodeData {
        let (inner, code) = unwrap_code_data(map);
        if code.is_some_and(|c| c != 0 && !is_success(c)) {
            return None;
        }
        inner
    } else {
        map
    };
    match map.get("refresh_token") {
        Some(Value::String(s)) if !s.is_empty() => Some(Secret::new(s.clone())),
        _ => None,
    }
}

fn token_fields(
    map: &Map<String, Value>,
    now: u64,
    skew: i64,
    config: &ResponseConfig,
) -> Result<TokenResponse, TokenError> {
    let access_token = match map.get("access_token") {
        Some(Value::String(s)) if !s.is_empty() => Secret::new(s.clone()),
        Some(_) => {
            return Err(malformed(
                "`access_token` is not a non-empty string".to_owned(),
            ));
        }
        None => return Err(malformed("`access_token` is missing".to_owned())),
    };
    let token_type = match map.get("token_type") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => "Bearer".to_owned(),
        Some(_) => return Err(malformed("`token_type` is not a string".to_owned())),
    };
    if !token_type.eq_ignore_ascii_case("bearer") {
        return Err(malformed(format!(
            "`token_type` is {token_type:?}; only Bearer tokens are supported"
        )));
    }
    let to_local = |server: u64| -> u64 {
        if skew >= 0 {
            server.saturating_sub(skew.unsigned_abs())
        } else {
            server.saturating_add(skew.unsigned_abs())
        }
    };
    // An absolute expiry on the local clock, read as milliseconds when it can only be those
    // and capped like a lifetime.
    let absolute = |at: u64| {
        let at = if at >= MILLIS_FROM { at / 1000 } else { at };
        to_local(at).min(now.saturating_add(MAX_LIFETIME))
    };
    let (expires_at, expiry_source) = if let Some(secs) = seconds(map, "expires_in")? {
        (
            Some(now.saturating_add(secs.min(MAX_LIFETIME))),
            ExpirySource::ExpiresIn,
        )
    } else if let Some(at) = seconds(map, "expires_on")? {
        (Some(absolute(at)), ExpirySource::ExpiresOn)
    } else if let Some(at) = jwt_exp(access_token.expose()) {
        (Some(absolute(at)), ExpirySource::JwtExp)
    } else if let Some(secs) = config.default_expires_in {
        (Some(now.saturating_add(secs)), ExpirySource::ProfileDefault)
    } else {
        (None, ExpirySource::Unknown)
    };
    let not_before = seconds(map, "not_before")?.map(to_local);
    let refresh_token = optional_string(map, "refresh_token")?.map(Secret::new);
    let refresh_expires_at =
        seconds(map, "refresh_token_expires_in")?.map(|s| now.saturating_add(s.min(MAX_LIFETIME)));
    let id_token = optional_string(map, "id_token")?.map(Secret::new);
    let scope = optional_string(map, "scope")?;
    Ok(TokenResponse {
        access_token,
        token_type,
        expires_at,
        expiry_source,
        not_before,
        refresh_token,
        refresh_expires_at,
        id_token,
        scope,
        received_at: now,
        clock_skew: skew,
    })
}

/// Unwraps `{"code":…,"data":{…}}`; returns the inner object (or the outer one when there is
/// no `data` object) and the wrapper's code.
fn unwrap_code_data(mut map: Map<String, Value>) -> (Map<String, Value>, Option<u16>) {
    let code = match map.get("code") {
        Some(Value::Number(n)) => n.as_u64().and_then(|c| u16::try_from(c).ok()),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    match map.remove("data") {
        Some(Value::Object(inner)) => (inner, code),
        other => {
            if let Some(other) = other {
                map.insert("data".to_owned(), other);
            }
            // An error in the wrapper's own terms becomes an OAuth-shaped error.
            if code.is_some_and(|c| !is_success(c)) && !map.contains_key("error") {
                let msg = ["message", "msg"]
                    .iter()
                    .find_map(|k| map.get(*k).and_then(Value::as_str).map(str::to_owned));
                map.insert(
                    "error".to_owned(),
                    Value::String("provider_error".to_owned()),
                );
                if let Some(m) = msg {
                    map.insert("error_description".to_owned(), Value::String(m));
                }
            }
            (map, code)
        }
    }
}

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

fn malformed(reason: String) -> TokenError {
    TokenError::Malformed { reason }
}

/// A non-negative whole number of seconds given as a JSON number or a string of digits.
fn seconds(map: &Map<String, Value>, field: &str) -> Result<Option<u64>, TokenError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(v) = n.as_u64() {
                Ok(Some(v))
            } else if let Some(f) = n.as_f64().filter(|f| f.is_finite() && *f >= 0.0) {
                // Truncation is intended: a fraction of a second is not worth keeping.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Ok(Some(f.min(u64::MAX as f64) as u64))
            } else {
                Err(malformed(format!("`{field}` is not a non-negative number")))
            }
        }
        Some(Value::String(s)) => s.trim().parse::<u64>().map(Some).map_err(|_| {
            malformed(format!(
                "`{field}` is the string {s:?}, not a number of seconds"
            ))
        }),
        Some(_) => Err(malformed(format!("`{field}` is not a number"))),
    }
}

fn optional_string(map: &Map<String, Value>, field: &str) -> Result<Option<String>, TokenError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(malformed(format!("`{field}` is not a string"))),
    }
}

/// The `exp` claim of a JWT, read without verifying anything (only to learn an expiry the
/// response did not state). `None` for anything that is not a JWT with a numeric `exp`.
#[must_use]
pub fn jwt_exp(token: &str) -> Option<u64> {
    let claims = jwt_claims(token)?;
    match claims.get("exp")? {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                // Truncation is intended.
                .map(|f| {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let v = f.min(u64::MAX as f64) as u64;
                    v
                })
        }),
        _ => None,
    }
}

/// The claims of a JWT, read without verifying anything (to learn facts the token carries
/// for its holder, e.g. B2C's `oid`). `None` for anything that is not a JWT.
#[must_use]
pub fn jwt_claims(token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (_header, payload) = (parts.next()?, parts.next()?);
    parts.next()?;
    if payload.len() > MAX_BODY {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.is_object().then_some(claims)
}

/// Server clock minus local clock, from the `Date` header; 0 within its resolution.
fn clock_skew(response: &HttpResponse, now: u64) -> i64 {
    let Some(server) = response.header("date").and_then(parse_http_date) else {
        return 0;
    };
    let skew = i128::from(server) - i128::from(now);
    if skew.abs() <= 1 {
        return 0;
    }
    i64::try_from(skew).unwrap_or(0)
}

/// `Retry-After` as seconds: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
fn retry_after(response: &HttpResponse, now: u64) -> Option<u64> {
    let v = response.header("retry-after")?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(secs);
    }
    parse_http_date(v).map(|at| at.saturating_sub(now))
}

/// Parses an HTTP date (RFC 9110 §5.6.7): IMF-fixdate, and the obsolete RFC 850 and asctime
/// forms a recipient must accept. Returns Unix seconds.
#[must_use]
pub fn parse_http_date(s: &str) -> Option<u64> {
    let s = s.trim();
    let (day, month, year, time) = if let Some((_, rest)) = s.split_once(", ") {
        let rest = rest.strip_suffix(" GMT")?;
        if rest.contains('-') {
            // RFC 850: 06-Nov-94 08:49:37
            let (date, time) = rest.split_once(' ')?;
            let mut d = date.split('-');
            let (day, mon, yy) = (d.next()?, d.next()?, d.next()?);
            let yy: u64 = yy.parse().ok().filter(|_| yy.len() == 2)?;
            // RFC 9110: a two-digit year more than 50 years in the future is in the past.
            let year = if yy < 70 { 2000 + yy } else { 1900 + yy };
            (day.parse().ok()?, mon, year, time)
        } else {
            // IMF-fixdate: 06 Nov 1994 08:49:37
            let mut f = rest.split(' ');
            let (day, mon, year, time) = (f.next()?, f.next()?, f.next()?, f.next()?);
            if f.next().is_some() || day.len() != 2 || year.len() != 4 {
                return None;
            }
            (day.parse().ok()?, mon, year.parse().ok()?, time)
        }
    } else {
        // asctime: Sun Nov  6 08:49:37 1994
        let mut f = s.split_whitespace();
        let (_wd, mon, day, time, year) = (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
        if f.next().is_some() {
            return None;
        }
        (day.parse().ok()?, mon, year.parse().ok()?, time)
    };
    let month = MONTHS.iter().position(|m| *m == month)? as u64 + 1;
    let mut t = time.split(':');
    let (h, m, sec): (u64, u64, u64) = (
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
    );
    if t.next().is_some()
        || h > 23
        || m > 59
        || sec > 60
        || !(1..=31).contains(&day)
        || !(1970..=9999).contains(&year)
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 of a proleptic Gregorian date with year ≥ 1970 (H. Hinnant's
/// `days_from_civil`).
pub(crate) fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `t` (Unix seconds) as `YYYY-MM-DDTHH:MM:SSZ` (H. Hinnant's `civil_from_days`, the inverse
/// of [`days_from_civil`]).
pub(crate) fn rfc3339(t: u64) -> String {
    let days = t / 86_400;
    let secs = t % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests;
