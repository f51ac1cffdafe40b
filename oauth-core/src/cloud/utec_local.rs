//! The HTTP endpoints of the two uteclocal gateways (../shared/providers/FACTS.md §2.3), so
//! that Home Assistant integrations written for them work against `latchkey token keep
//! --utec` unchanged: which request is which operation, and the answer shapes. No I/O: the
//! driver frames HTTP, calls [`route`], performs the cloud call the [`Route`] names through
//! its token keeper, and answers with the functions here.
//!
//! | endpoint | variant | operation |
//! |---|---|---|
//! | `GET /health` | A (`{status}`) and B (token fields) | [`health`] — B's shape, a superset of A's |
//! | `GET /api/config` | B | [`config`], secrets masked `***` |
//! | `GET /api/devices`, `GET /devices` | A, B | Discovery, answered `{payload:{devices}}` |
//! | `POST /api/status` (`{id}` or `{devices:[{id}]}`), `GET /api/status?id=` | A, B | Query, the cloud's answer |
//! | `GET /api/status/latest` | A | the last Query answer with `last_updated` |
//! | `POST /api/lock`, `/lock`, `/api/unlock`, `/unlock` (`{id}`) | A, B | Command, the cloud's answer |
//! | `POST /api/oauth/refresh` | B | a refresh now |
//!
//! Configuration writes (`POST /config`, `POST /api/config`) and the OAuth set-up endpoints
//! are answered 405 with a pointer to `latchkey login` / the profile: latchkey keeps those
//! in its own state, and a gateway that let anyone on the network change its keys would be
//! a hole.

use serde_json::{Value, json};

use super::utec::LockCommand;
use crate::response::rfc3339;
use crate::session::Status;

/// Largest request body read (JSON bodies here are tiny).
pub const MAX_BODY: usize = 16 * 1024;

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route {
    /// `GET /health`.
    Health,
    /// `GET /api/config`.
    Config,
    /// Discovery.
    Devices,
    /// Query of these devices.
    Status(Vec<String>),
    /// The last Query answer.
    StatusLatest,
    /// Lock or unlock one device.
    Lock(String, LockCommand),
    /// Refresh the token now.
    Refresh,
    /// Answer this status and JSON as they are.
    Answer(u16, Value),
}

fn error(status: u16, message: &str) -> Route {
    let (status, body) = refusal(status, message);
    Route::Answer(status, body)
}

/// Which operation a request is. `query` is the query string without `?`.
#[must_use]
pub fn route(method: &str, path: &str, query: &str, body: &[u8]) -> Route {
    let path = path.trim_end_matches('/');
    match (method, path) {
        ("GET" | "HEAD", "/health") => Route::Health,
        ("GET", "/api/config") => Route::Config,
        ("POST", "/api/config" | "/config") => error(
            405,
            "configuration is read-only here: latchkey keeps the keys in its profile and \
             session (latchkey login / token import)",
        ),
        ("GET", "/api/devices" | "/devices") => Route::Devices,
        ("GET", "/api/status/latest") => Route::StatusLatest,
        ("GET", "/api/status") => {
            let ids: Vec<String> = form_urlencoded::parse(query.as_bytes())
                .filter(|(k, _)| k == "id")
                .map(|(_, v)| v.into_owned())
                .filter(|v| !v.is_empty())
                .collect();
            if ids.is_empty() {
                error(400, "missing id")
            } else {
                Route::Status(ids)
            }
        }
        ("POST", "/api/status") => match json_body(body) {
            Ok(v) => {
                let mut ids = Vec::new();
                if let Some(id) = id_of(&v) {
                    ids.push(id);
                }
                if let Some(list) = v.get("devices").and_then(Value::as_array) {
                    ids.extend(list.iter().filter_map(id_of));
                }
                if ids.is_empty() || ids.len() > 100 {
                    error(400, "give id or devices:[{id}] (at most 100)")
                } else {
                    Route::Status(ids)
                }
            }
            Err(r) => r,
        },
        ("POST", "/api/lock" | "/lock" | "/api/unlock" | "/unlock") => match json_body(body) {
            Ok(v) => match id_of(&v) {
                Some(id) => {
                    let command = if path.ends_with("unlock") {
                        LockCommand::Unlock
                    } else {
                        LockCommand::Lock
                    };
                    Route::Lock(id, command)
                }
                None => error(400, "missing id"),
            },
            Err(r) => r,
        },
        ("POST", "/api/oauth/refresh") => Route::Refresh,
        ("GET", "/api/oauth/authorize-url")
        | ("POST", "/api/oauth/exchange" | "/oauth/start" | "/oauth/exchange") => error(
            405,
            "log in with `latchkey login --provider utec` (or take over a session with `latchkey token import`)",
        ),
        (
            _,
            "/health" | "/api/config" | "/api/devices" | "/devices" | "/api/status" | "/api/lock"
            | "/lock" | "/api/unlock" | "/unlock" | "/api/oauth/refresh",
        ) => error(405, "method not allowed"),
        _ => error(404, "not found"),
    }
}

/// Whether a request may reach the endpoints at all, judged by its header fields (`(name,
/// value)` pairs, names in any case). These endpoints move a real lock with the user's token
/// and take no credentials (the uteclocal gateways take none either), so what a web page in
/// the user's browser could send them is refused with 403:
///
/// * a request carrying `Origin`, or `Sec-Fetch-Site` other than `none` — browsers add them
///   to the cross-site requests a page makes (`fetch`, a posted form); Home Assistant's HTTP
///   client and curl send neither;
/// * a `Host` naming something other than an IP address, `localhost` or one of
///   `allowed_hosts` (compared without case and without a trailing dot) — a page that
///   re-points its own name at the listener (DNS rebinding) still sends its own name.
///
/// A request without `Host` (HTTP/1.0) is admitted: browsers always send one.
pub fn admit<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    allowed_hosts: &[String],
) -> Result<(), (u16, Value)> {
    for (name, value) in headers {
        let value = value.trim();
        if name.eq_ignore_ascii_case("origin") {
            return Err(refusal(
                403,
                "requests from web pages are refused (the request has an Origin header)",
            ));
        }
        if name.eq_ignore_ascii_case("sec-fetch-site") && !value.eq_ignore_ascii_case("none") {
            return Err(refusal(
                403,
                "requests from web pages are refused (Sec-Fetch-Site is not none)",
            ));
        }
        if name.eq_ignore_ascii_case("host") && !host_allowed(value, allowed_hosts) {
            return Err(refusal(
                403,
                "the Host header names another server: add it with --allow-host if this \
                 gateway is reached by that name",
            ));
        }
    }
    Ok(())
}

/// An error answer in the uteclocal shape: `{"status": "error", "message": …}`.
fn refusal(status: u16, message: &str) -> (u16, Value) {
    (status, json!({"status": "error", "message": message}))
}

/// `host [":" port]` names an IP address, `localhost` or an allowed name.
fn host_allowed(value: &str, allowed_hosts: &[String]) -> bool {
    if let Some(rest) = value.strip_prefix('[') {
        // An IPv6 reference: `[addr]`, then an optional port.
        return rest.split_once(']').is_some_and(|(addr, tail)| {
            addr.parse::<core::net::Ipv6Addr>().is_ok()
                && (tail.is_empty() || tail.strip_prefix(':').is_some_and(is_port))
        });
    }
    let name = match value.split_once(':') {
        Some((name, port)) if is_port(port) => name,
        Some(_) => return false,
        None => value,
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && (name.parse::<core::net::Ipv4Addr>().is_ok()
            || name.eq_ignore_ascii_case("localhost")
            || allowed_hosts
                .iter()
                .any(|a| a.strip_suffix('.').unwrap_or(a).eq_ignore_ascii_case(name)))
}

/// `1*5DIGIT`.
fn is_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

fn json_body(body: &[u8]) -> Result<Value, Route> {
    if body.len() > MAX_BODY {
        return Err(error(413, "body too large"));
    }
    serde_json::from_slice(body).map_err(|_| error(400, "the body is not JSON"))
}

fn id_of(v: &Value) -> Option<String> {
    match v.get("id")? {
        Value::String(s) if !s.is_empty() && s.len() <= 256 => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `/health` in variant B's shape (variant A's `{"status":"ok"}` is part of it).
#[must_use]
pub fn health(status: &Status, now: u64, auto_refresh: bool) -> Value {
    json!({
        "status": "ok",
        "health": if status.token_valid { "healthy" } else { "token_expiring_or_missing" },
        "token_valid": status.token_valid,
        "token_expires_at": status.access_expires_at,
        "token_expires_at_utc": status.access_expires_at.map(rfc3339),
        "time_until_expiry": status.access_expires_at.map(|t| t.saturating_sub(now)),
        "auto_refresh_enabled": auto_refresh,
    })
}

/// `GET /api/config` in variant B's shape, every secret masked.
#[must_use]
pub fn config(status: &Status, now: u64, api_base_url: &str, scope: &str) -> Value {
    json!({
        "api_base_url": api_base_url,
        "access_key": "***",
        "secret_key": "***",
        "scope": scope,
        "auto_refresh_enabled": true,
        "token_status": {
            "has_token": status.access_expires_at.is_some(),
            "has_refresh_token": status.has_refresh_token,
            "expires_at": status.access_expires_at,
            "is_expired": status.access_expires_at.is_none_or(|t| t <= now),
            "time_until_expiry": status.access_expires_at.map(|t| t.saturating_sub(now)),
        },
    })
}

/// A Discovery answer as the gateways return it: `{payload:{devices:[…]}}`.
#[must_use]
pub fn devices_answer(payload: &Value) -> Value {
    json!({"payload": {"devices": payload.get("devices").cloned().unwrap_or(Value::Array(Vec::new()))}})
}

/// `GET /api/status/latest`: the last Query answer and when it came (`null`s before any).
#[must_use]
pub fn latest_answer(last: Option<&(Value, u64)>) -> Value {
    match last {
        Some((payload, at)) => json!({"payload": payload, "last_updated": rfc3339(*at)}),
        None => json!({"payload": null, "last_updated": null}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(headers: &[(&str, &str)], allowed: &[String]) -> bool {
        match admit(headers.iter().copied(), allowed) {
            Ok(()) => false,
            Err((403, _)) => true,
            Err(other) => panic!("unexpected refusal {other:?}"),
        }
    }

    #[test]
    fn requests_a_web_page_could_make_are_refused() {
        let none: &[String] = &[];
        // What Home Assistant's client or curl sends.
        assert!(!refused(&[("Host", "127.0.0.1:8000")], none));
        assert!(!refused(&[("host", "localhost:8000")], none));
        assert!(!refused(&[("Host", "LOCALHOST.")], none));
        assert!(!refused(&[("Host", "[::1]:8000")], none));
        assert!(!refused(&[("Host", "192.168.1.20")], none));
        assert!(!refused(&[("Sec-Fetch-Site", "none")], none));
        assert!(!refused(&[], none));
        // Cross-site requests from a page.
        assert!(refused(
            &[
                ("Host", "127.0.0.1:8000"),
                ("Origin", "https://evil.example")
            ],
            none
        ));
        assert!(refused(&[("ORIGIN", "null")], none));
        assert!(refused(&[("Sec-Fetch-Site", "cross-site")], none));
        assert!(refused(&[("Sec-Fetch-Site", "same-origin")], none));
        // DNS rebinding: the page's own name.
        assert!(refused(&[("Host", "rebind.evil.example:8000")], none));
        assert!(refused(&[("Host", "localhost.evil.example")], none));
        assert!(refused(&[("Host", "")], none));
        assert!(refused(&[("Host", "[::1")], none));
        assert!(refused(&[("Host", "[::1]x")], none));
        assert!(refused(&[("Host", "127.0.0.1:")], none));
        // A name the user allowed, in any case, with or without port and trailing dot.
        let allowed = ["pi.local".to_owned()];
        assert!(!refused(&[("Host", "PI.local:8000")], &allowed));
        assert!(!refused(&[("Host", "pi.local.")], &allowed));
        assert!(refused(&[("Host", "pi.local.evil.example")], &allowed));
    }

    #[test]
    fn both_variants_routes_are_recognised() {
        assert_eq!(route("GET", "/health", "", b""), Route::Health);
        assert_eq!(route("GET", "/devices", "", b""), Route::Devices);
        assert_eq!(route("GET", "/api/devices/", "", b""), Route::Devices);
        assert_eq!(
            route("GET", "/api/status", "id=a&id=b", b""),
            Route::Status(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            route(
                "POST",
                "/api/status",
                "",
                br#"{"devices":[{"id":"x"},{"id":7}]}"#
            ),
            Route::Status(vec!["x".into(), "7".into()])
        );
        assert_eq!(
            route("POST", "/lock", "", br#"{"id":"d"}"#),
            Route::Lock("d".into(), LockCommand::Lock)
        );
        assert_eq!(
            route("POST", "/api/unlock", "", br#"{"id":"d"}"#),
            Route::Lock("d".into(), LockCommand::Unlock)
        );
        assert_eq!(
            route("GET", "/api/status/latest", "", b""),
            Route::StatusLatest
        );
        assert_eq!(route("POST", "/api/oauth/refresh", "", b""), Route::Refresh);
    }

    #[test]
    fn bad_requests_are_named_and_writes_of_keys_refused() {
        let status = |r: Route| match r {
            Route::Answer(s, _) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!(status(route("POST", "/api/lock", "", b"{}")), 400);
        assert_eq!(status(route("POST", "/api/lock", "", b"not json")), 400);
        assert_eq!(status(route("GET", "/api/status", "", b"")), 400);
        assert_eq!(
            status(route("POST", "/api/config", "", br#"{"secret_key":"x"}"#)),
            405
        );
        assert_eq!(status(route("POST", "/config", "", b"secret_key=x")), 405);
        assert_eq!(status(route("DELETE", "/api/lock", "", b"")), 405);
        assert_eq!(status(route("GET", "/nope", "", b"")), 404);
        assert_eq!(
            status(route("POST", "/api/lock", "", &vec![b' '; MAX_BODY + 1])),
            413
        );
    }

    #[test]
    fn config_masks_secrets_and_dates_are_rfc3339() {
        let st = Status {
            state: crate::session::Phase::NoSession,
            token_valid: false,
            access_expires_at: None,
            has_refresh_token: false,
            refresh_issued_at: None,
            refresh_expires_at: None,
            session_started_at: None,
            last_refresh_at: None,
            next_action_at: None,
            failures: 0,
            last_error: None,
            reauth_reason: None,
            generation: 0,
            clock_skew: 0,
        };
        assert_eq!(
            health(&st, 100, true)["health"],
            "token_expiring_or_missing"
        );
        let c = config(&st, 100, "https://api.u-tec.com", "openapi");
        assert_eq!(c["access_key"], "***");
        assert_eq!(c["secret_key"], "***");
        assert_eq!(c["token_status"]["is_expired"], true);
        assert_eq!(rfc3339(784_111_777), "1994-11-06T08:49:37Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(latest_answer(None)["payload"], Value::Null);
    }
}
