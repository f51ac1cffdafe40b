//! U-tec local gateway compatibility (`Wheresitat/uteclocal-HA`): `/health`,
//! `/api/config` and `/api/oauth/refresh`, answered from the token keeper's
//! [`Status`](latchkey_oauth_core::session::Status).

use std::string::String;
use std::vec::Vec;

use latchkey_protocol::guard::Now;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::app::{App, Effect};
use crate::http::{Request, Response};
use crate::model::MAX_STRING;
use crate::panels::error;

/// What `/api/config` shows and changes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UtecSettings {
    /// Cloud API base URL.
    pub api_base_url: String,
    /// OAuth base URL.
    pub oauth_base_url: String,
    /// Action path.
    pub action_path: String,
    /// OAuth client id (shown masked).
    pub access_key: String,
    /// OAuth client secret (shown masked).
    pub secret_key: String,
    /// OAuth scope.
    pub scope: String,
    /// Redirect URI.
    pub redirect_uri: String,
    /// Status poll interval, seconds (at least 5).
    pub status_poll_interval: u32,
    /// Refresh tokens automatically.
    pub auto_refresh_enabled: bool,
    /// Refresh this many minutes before expiry (1–1440).
    pub refresh_buffer_minutes: u32,
}

impl core::fmt::Debug for UtecSettings {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("UtecSettings")
            .field("api_base_url", &self.api_base_url)
            .field("auto_refresh_enabled", &self.auto_refresh_enabled)
            .field("refresh_buffer_minutes", &self.refresh_buffer_minutes)
            .finish_non_exhaustive()
    }
}

impl Default for UtecSettings {
    fn default() -> Self {
        UtecSettings {
            api_base_url: String::from("https://api.u-tec.com"),
            oauth_base_url: String::from("https://oauth.u-tec.com"),
            action_path: String::from("/action"),
            access_key: String::new(),
            secret_key: String::new(),
            scope: String::from("openapi"),
            redirect_uri: String::new(),
            status_poll_interval: 60,
            auto_refresh_enabled: true,
            refresh_buffer_minutes: 5,
        }
    }
}

/// The mask shown instead of a secret; posting it back leaves the secret unchanged.
pub const MASK: &str = "***";

fn mask(s: &str) -> &str {
    if s.is_empty() { "" } else { MASK }
}

struct TokenView {
    valid: bool,
    expires_at: Option<u64>,
    has_refresh: bool,
}

fn token_view(app: &App) -> TokenView {
    app.token_status.as_ref().map_or(
        TokenView {
            valid: false,
            expires_at: None,
            has_refresh: false,
        },
        |s| TokenView {
            valid: s.token_valid,
            expires_at: s.access_expires_at,
            has_refresh: s.has_refresh_token,
        },
    )
}

/// `GET /health`: `{status, health, token_valid, token_expires_at, token_expires_at_utc,
/// time_until_expiry, auto_refresh_enabled}`; `health` is `healthy` when the token is valid
/// for longer than the refresh buffer.
pub(crate) fn health(app: &App, now: Now) -> Response {
    let t = token_view(app);
    let left = t.expires_at.map(|e| e as i64 - now.unix_secs as i64);
    let buffer = i64::from(app.state.utec.refresh_buffer_minutes) * 60;
    let healthy = t.valid && left.is_some_and(|l| l > buffer);
    Response::json(
        200,
        &json!({
            "status": "ok",
            "health": if healthy { "healthy" } else { "token_expiring_or_missing" },
            "token_valid": t.valid,
            "token_expires_at": t.expires_at,
            "token_expires_at_utc": t.expires_at.map(latchkey_pki::inspect::rfc3339),
            "time_until_expiry": left,
            "auto_refresh_enabled": app.state.utec.auto_refresh_enabled,
        }),
    )
}

/// `GET /api/config`: the settings with secrets masked, and the token status.
pub(crate) fn get_config(app: &App, now: Now) -> Response {
    let s = &app.state.utec;
    let t = token_view(app);
    Response::json(
        200,
        &json!({
            "api_base_url": s.api_base_url,
            "oauth_base_url": s.oauth_base_url,
            "action_path": s.action_path,
            "access_key": mask(&s.access_key),
            "secret_key": mask(&s.secret_key),
            "scope": s.scope,
            "redirect_uri": s.redirect_uri,
            "status_poll_interval": s.status_poll_interval,
            "auto_refresh_enabled": s.auto_refresh_enabled,
            "refresh_buffer_minutes": s.refresh_buffer_minutes,
            "token_status": {
                "has_token": t.expires_at.is_some() || t.valid,
                "has_refresh_token": t.has_refresh,
                "expires_at": t.expires_at,
                "is_expired": t.expires_at.is_some_and(|e| e <= now.unix_secs),
                "time_until_expiry": t.expires_at.map(|e| e as i64 - now.unix_secs as i64),
            },
        }),
    )
}

/// `POST /api/config` (admin): any of the settings; unknown fields are refused.
pub(crate) fn post_config(app: &mut App, req: &Request, fx: &mut Vec<Effect>) -> Response {
    let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(&req.body) else {
        return error(400, "body must be a JSON object");
    };
    let mut s = app.state.utec.clone();
    for (k, v) in &o {
        let text = |v: &Value| -> Result<String, Response> {
            match v {
                Value::String(t) if t.len() <= MAX_STRING => Ok(t.clone()),
                Value::String(_) => Err(error(
                    400,
                    &format!("{k} is longer than {MAX_STRING} bytes"),
                )),
                _ => Err(error(400, &format!("{k} must be a string"))),
            }
        };
        let result = match k.as_str() {
            "api_base_url" => text(v).map(|t| s.api_base_url = t),
            "oauth_base_url" => text(v).map(|t| s.oauth_base_url = t),
            "action_path" => text(v).map(|t| s.action_path = t),
            "scope" => text(v).map(|t| s.scope = t),
            "redirect_uri" | "redirect_url" => text(v).map(|t| s.redirect_uri = t),
            "access_key" => text(v).map(|t| {
                if t != MASK {
                    s.access_key = t;
                }
            }),
            "secret_key" => text(v).map(|t| {
                if t != MASK {
                    s.secret_key = t;
                }
            }),
            "status_poll_interval" => match v.as_u64() {
                Some(n) if (5..=86_400).contains(&n) => {
                    s.status_poll_interval = n as u32;
                    Ok(())
                }
                _ => Err(error(
                    400,
                    "status_poll_interval must be a whole number of seconds from 5 to 86400",
                )),
            },
            "auto_refresh_enabled" => match v.as_bool() {
                Some(b) => {
                    s.auto_refresh_enabled = b;
                    Ok(())
                }
                None => Err(error(400, "auto_refresh_enabled must be true or false")),
            },
            "refresh_buffer_minutes" => match v.as_u64() {
                Some(n) if (1..=1440).contains(&n) => {
                    s.refresh_buffer_minutes = n as u32;
                    Ok(())
                }
                _ => Err(error(
                    400,
                    "refresh_buffer_minutes must be a whole number from 1 to 1440",
                )),
            },
            _ => Err(error(
                400,
                &format!(
                    "unknown setting {:?}",
                    k.chars().take(64).collect::<String>()
                ),
            )),
        };
        if let Err(r) = result {
            return r;
        }
    }
    let changed_keeper = s.auto_refresh_enabled != app.state.utec.auto_refresh_enabled
        || s.refresh_buffer_minutes != app.state.utec.refresh_buffer_minutes;
    app.state.utec = s;
    app.persist(fx);
    if changed_keeper {
        fx.push(Effect::TokenSettingsChanged {
            auto_refresh_enabled: app.state.utec.auto_refresh_enabled,
            refresh_buffer_minutes: app.state.utec.refresh_buffer_minutes,
        });
    }
    Response::json(
        200,
        &json!({"status": "ok", "message": "configuration saved"}),
    )
}

/// `POST /api/oauth/refresh` (admin): asks the token keeper to refresh now.
pub(crate) fn refresh(app: &App, fx: &mut Vec<Effect>) -> Response {
    fx.push(Effect::RefreshToken);
    Response::json(
        202,
        &json!({
            "status": "ok",
            "message": "refresh requested",
            "expires_at": token_view(app).expires_at,
        }),
    )
}
