//! Clients of the cloud APIs latchkey's providers put behind their OAuth sessions: request
//! builders that return [`HttpRequest`](crate::http::HttpRequest) values and parsers of the
//! responses, pure like the rest of the crate. The drivers send them with a token from the
//! keeper and retry once after [`ApiError::Unauthorized`].
//!
//! * [`legrand`]: BTicino/Legrand door entry — plants, modules, SIP accounts, the CA chain,
//!   client certificates.
//! * [`utec`]: U-tec / Ultraloq — the Xthings action endpoint (user, discovery, query,
//!   lock and unlock).
//! * [`utec_local`]: the endpoints of the uteclocal gateways, for `latchkey token keep --utec`.
//! * [`watts`]: Watts Home — user, locations, devices, setpoints, away state.

use serde_json::Value;

use crate::http::HttpResponse;

pub mod legrand;
pub mod utec;
pub mod utec_local;
pub mod watts;

/// Largest API answer read, in bytes.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// Why an API call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiError {
    /// 401, or the API's own invalid-token answer: refresh the token and retry once.
    Unauthorized,
    /// Any other non-success status, with the service's message when it gave one.
    Status {
        /// What was asked.
        what: &'static str,
        /// The status.
        status: u16,
        /// The service's message (shortened).
        message: Option<String>,
    },
    /// The answer is not the documented shape.
    Shape {
        /// What was asked.
        what: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The gateway already has as many SIP clients as the service allows.
    ClientLimit,
    /// The profile lacks a value the API needs.
    Profile {
        /// The profile key.
        missing: &'static str,
    },
}

impl ApiError {
    pub(crate) const fn shape(what: &'static str, reason: &'static str) -> ApiError {
        ApiError::Shape { what, reason }
    }
}

impl core::fmt::Display for ApiError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ApiError::Unauthorized => f.write_str("the API refused the access token (401)"),
            ApiError::Status {
                what,
                status,
                message: Some(m),
            } => write!(f, "{what}: HTTP {status}: {m}"),
            ApiError::Status { what, status, .. } => write!(f, "{what}: HTTP {status}"),
            ApiError::Shape { what, reason } => write!(f, "{what}: unexpected answer: {reason}"),
            ApiError::ClientLimit => f.write_str(
                "the gateway already has the most SIP clients the service allows (3); remove \
                 one in the app or with `latchkey bticino accounts --delete ID`",
            ),
            ApiError::Profile { missing } => write!(f, "the profile has no {missing}"),
        }
    }
}

impl std::error::Error for ApiError {}

/// The JSON body of a successful (2xx) answer; 401 and an `INVALID_TOKEN`-style body are
/// [`ApiError::Unauthorized`].
pub(crate) fn body_json(response: &HttpResponse, what: &'static str) -> Result<Value, ApiError> {
    if response.body.len() > MAX_BODY {
        return Err(ApiError::shape(what, "the answer is too large"));
    }
    let parsed: Option<Value> = serde_json::from_slice(&response.body).ok();
    if response.status == 401 || parsed.as_ref().is_some_and(says_invalid_token) {
        return Err(ApiError::Unauthorized);
    }
    if !(200..300).contains(&response.status) {
        let message = parsed
            .as_ref()
            .and_then(|v| {
                pick_str(
                    v,
                    &["message", "errorMessage", "error_description", "error"],
                )
            })
            .or_else(|| {
                let text = String::from_utf8_lossy(&response.body);
                let t = text.trim();
                (!t.is_empty() && !t.starts_with('<')).then(|| t.to_owned())
            })
            .map(|m| m.chars().take(200).collect());
        return Err(ApiError::Status {
            what,
            status: response.status,
            message,
        });
    }
    parsed.ok_or(ApiError::shape(what, "not JSON"))
}

/// Whether an API answer means "refresh the token and retry once": a 401, or an
/// `INVALID_TOKEN`-style answer inside a 200 (U-tec's `payload.error.code`, or a top-level
/// `code`/`error`). Drivers apply the retry-once rule with it.
#[must_use]
pub fn is_unauthorized(response: &HttpResponse) -> bool {
    if response.status == 401 {
        return true;
    }
    if response.body.len() > MAX_BODY || !response.body.trim_ascii_start().starts_with(b"{") {
        return false;
    }
    let Ok(v) = serde_json::from_slice::<Value>(&response.body) else {
        return false;
    };
    says_invalid_token(&v)
        || v.pointer("/payload/error/code")
            .and_then(Value::as_str)
            .is_some_and(|c| {
                c.eq_ignore_ascii_case("INVALID_TOKEN") || c.eq_ignore_ascii_case("TOKEN_EXPIRED")
            })
}

fn says_invalid_token(v: &Value) -> bool {
    ["code", "error", "errorCode"].iter().any(|k| {
        v.get(*k).and_then(Value::as_str).is_some_and(|s| {
            s.eq_ignore_ascii_case("INVALID_TOKEN") || s.eq_ignore_ascii_case("invalid_token")
        })
    })
}

/// The first of `keys` that is a string (or a number, as text).
pub(crate) fn pick_str(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match v.get(*k)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// A base64 DER certificate as PEM with 64-character lines.
pub(crate) fn pem_certificate(b64: &str) -> String {
    let clean: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in clean.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[cfg(test)]
mod unauthorized_tests {
    use super::*;

    fn answer(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn invalid_token_inside_a_200_counts_as_a_401() {
        assert!(is_unauthorized(&answer(401, "")));
        assert!(is_unauthorized(&answer(
            200,
            r#"{"header":{},"payload":{"error":{"code":"INVALID_TOKEN","message":"x"}}}"#
        )));
        assert!(is_unauthorized(&answer(200, r#"{"code":"INVALID_TOKEN"}"#)));
        assert!(!is_unauthorized(&answer(
            200,
            r#"{"payload":{"devices":[]}}"#
        )));
        assert!(!is_unauthorized(&answer(
            200,
            r#"{"payload":{"error":{"code":"DEVICE_OFFLINE"}}}"#
        )));
        assert!(!is_unauthorized(&answer(500, "INVALID_TOKEN")));
    }
}
