//! The U-tec / Ultraloq (Xthings) OpenAPI action endpoint (../shared/providers/FACTS.md
//! §2.2): every operation is a `POST {base}/action` with an envelope
//! `{header:{namespace, name, messageId, payloadVersion:"1"}, payload}`, and errors come back
//! as HTTP 200 with `payload.error{code, message}` (`INVALID_TOKEN` among them).

use serde_json::{Value, json};

use crate::http::{HttpRequest, HttpResponse, Method};
use crate::profile::Profile;
use crate::secret::Secret;

use super::{ApiError, body_json, pick_str};

/// The action API of a `utec` profile.
#[derive(Debug, Clone)]
pub struct UtecApi {
    url: String,
}

/// A device from `Uhome.Device/Discovery`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Device {
    /// The (encrypted) device id used in every later call.
    pub id: String,
    /// Name.
    pub name: String,
    /// `LOCK`, …
    pub category: String,
    /// `utec-lock`, …
    pub handle_type: String,
    /// `deviceInfo.model`, when given.
    pub model: Option<String>,
}

/// One state from `Uhome.Device/Query`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct DeviceState {
    /// The device.
    pub device_id: String,
    /// `st.Lock`, `st.BatteryLevel`, `st.healthCheck`, …
    pub capability: String,
    /// `lockState`, `level`, `status`, …
    pub name: String,
    /// The value as sent.
    pub value: Value,
}

/// Lock or unlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockCommand {
    /// `st.lock` / `lock`.
    Lock,
    /// `st.lock` / `unlock`.
    Unlock,
}

impl UtecApi {
    /// The action endpoint of the profile's `[api] base_url`.
    ///
    /// # Errors
    /// [`ApiError::Profile`] without a base URL.
    pub fn for_profile(profile: &Profile) -> Result<Self, ApiError> {
        let base = profile.api.base_url.as_deref().ok_or(ApiError::Profile {
            missing: "api.base_url",
        })?;
        Ok(UtecApi {
            url: format!("{}/action", base.trim_end_matches('/')),
        })
    }

    fn action(
        &self,
        token: &Secret,
        namespace: &str,
        name: &str,
        message_id: [u8; 16],
        payload: Value,
    ) -> HttpRequest {
        let mut req = HttpRequest::new(Method::Post, self.url.clone());
        req.push_header("Authorization", format!("Bearer {}", token.expose()));
        req.push_header("Content-Type", "application/json");
        req.push_header("Accept", "application/json");
        req.body = json!({
            "header": {
                "namespace": namespace,
                "name": name,
                "messageId": uuid_v4(message_id),
                "payloadVersion": "1",
            },
            "payload": payload,
        })
        .to_string()
        .into_bytes();
        req
    }

    /// `Uhome.User/Get`. `message_id` is 16 random bytes (made a UUID v4).
    #[must_use]
    pub fn user(&self, token: &Secret, message_id: [u8; 16]) -> HttpRequest {
        self.action(token, "Uhome.User", "Get", message_id, json!({}))
    }

    /// `Uhome.Device/Discovery`.
    #[must_use]
    pub fn discovery(&self, token: &Secret, message_id: [u8; 16]) -> HttpRequest {
        self.action(token, "Uhome.Device", "Discovery", message_id, json!({}))
    }

    /// `Uhome.Device/Query` for `device_ids`.
    #[must_use]
    pub fn query(&self, token: &Secret, device_ids: &[&str], message_id: [u8; 16]) -> HttpRequest {
        let devices: Vec<Value> = device_ids.iter().map(|id| json!({ "id": id })).collect();
        self.action(
            token,
            "Uhome.Device",
            "Query",
            message_id,
            json!({ "devices": devices }),
        )
    }

    /// `Uhome.Device/Command` with `st.lock` `lock` or `unlock`. The answer is deferred
    /// (`st.deferredResponse`); the outcome shows in a later Query.
    #[must_use]
    pub fn lock(
        &self,
        token: &Secret,
        device_id: &str,
        command: LockCommand,
        message_id: [u8; 16],
    ) -> HttpRequest {
        let name = match command {
            LockCommand::Lock => "lock",
            LockCommand::Unlock => "unlock",
        };
        self.action(
            token,
            "Uhome.Device",
            "Command",
            message_id,
            json!({"devices": [{"id": device_id, "command": {"capability": "st.lock", "name": name}}]}),
        )
    }
}

/// The payload of an action answer; `payload.error` becomes [`ApiError`] (`INVALID_TOKEN`
/// is [`ApiError::Unauthorized`]).
///
/// # Errors
/// [`ApiError`] for a failed call, an error payload or a body without a payload.
pub fn parse_payload(response: &HttpResponse, what: &'static str) -> Result<Value, ApiError> {
    let v = body_json(response, what)?;
    let payload = v
        .get("payload")
        .cloned()
        .ok_or(ApiError::shape(what, "no payload"))?;
    if let Some(error) = payload.get("error") {
        let code = pick_str(error, &["code"]).unwrap_or_default();
        if code.eq_ignore_ascii_case("INVALID_TOKEN") || code.eq_ignore_ascii_case("TOKEN_EXPIRED")
        {
            return Err(ApiError::Unauthorized);
        }
        let message = pick_str(error, &["message"]).unwrap_or_default();
        return Err(ApiError::Status {
            what,
            status: response.status,
            message: Some(format!("{code}: {message}").chars().take(200).collect()),
        });
    }
    Ok(payload)
}

/// The devices of a Discovery answer.
///
/// # Errors
/// [`ApiError`] as [`parse_payload`], or a payload without `devices`.
pub fn parse_devices(response: &HttpResponse) -> Result<Vec<Device>, ApiError> {
    let payload = parse_payload(response, "device discovery")?;
    let Some(Value::Array(devices)) = payload.get("devices") else {
        return Err(ApiError::shape("device discovery", "no devices list"));
    };
    devices
        .iter()
        .map(|d| {
            Ok(Device {
                id: pick_str(d, &["id"])
                    .ok_or(ApiError::shape("device discovery", "a device has no id"))?,
                name: pick_str(d, &["name"]).unwrap_or_default(),
                category: pick_str(d, &["category"]).unwrap_or_default(),
                handle_type: pick_str(d, &["handleType"]).unwrap_or_default(),
                model: d.get("deviceInfo").and_then(|i| pick_str(i, &["model"])),
            })
        })
        .collect()
}

/// The states of a Query answer, flattened.
///
/// # Errors
/// [`ApiError`] as [`parse_payload`], or a payload without `devices`.
pub fn parse_states(response: &HttpResponse) -> Result<Vec<DeviceState>, ApiError> {
    let payload = parse_payload(response, "device query")?;
    let Some(Value::Array(devices)) = payload.get("devices") else {
        return Err(ApiError::shape("device query", "no devices list"));
    };
    let mut out = Vec::new();
    for d in devices {
        let device_id = pick_str(d, &["id"]).unwrap_or_default();
        for s in d
            .get("states")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.push(DeviceState {
                device_id: device_id.clone(),
                capability: pick_str(s, &["capability"]).unwrap_or_default(),
                name: pick_str(s, &["name"]).unwrap_or_default(),
                value: s.get("value").cloned().unwrap_or(Value::Null),
            });
        }
    }
    Ok(out)
}

/// A UUID v4 (RFC 9562 §5.4) from 16 random bytes.
#[must_use]
pub fn uuid_v4(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> UtecApi {
        UtecApi::for_profile(&Profile::builtin("utec").unwrap()).unwrap()
    }

    #[test]
    fn an_unlock_is_one_command_action_with_a_v4_message_id() {
        let req = api().lock(&Secret::new("t"), "dev-1", LockCommand::Unlock, [0xff; 16]);
        assert_eq!(req.url, "https://api.u-tec.com/action");
        assert_eq!(req.method, Method::Post);
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(body["header"]["namespace"], "Uhome.Device");
        assert_eq!(body["header"]["name"], "Command");
        assert_eq!(body["header"]["payloadVersion"], "1");
        assert_eq!(
            body["header"]["messageId"],
            "ffffffff-ffff-4fff-bfff-ffffffffffff"
        );
        assert_eq!(
            body["payload"],
            json!({"devices":[{"id":"dev-1","command":{"capability":"st.lock","name":"unlock"}}]})
        );
        assert!(
            req.headers
                .iter()
                .any(|(n, v)| n == "Authorization" && v == "Bearer t")
        );
    }

    #[test]
    fn discovery_and_query_answers_are_read() {
        let discovery = r#"{"header":{"namespace":"Uhome.Device","name":"Discovery"},"payload":{"devices":[{"id":"enc-1","name":"Front","category":"LOCK","handleType":"utec-lock","deviceInfo":{"manufacturer":"U-tec","model":"U-Bolt-PRO"}}]}}"#;
        let devices = parse_devices(&HttpResponse::new(200, discovery)).unwrap();
        assert_eq!(devices[0].id, "enc-1");
        assert_eq!(devices[0].model.as_deref(), Some("U-Bolt-PRO"));
        let query = r#"{"payload":{"devices":[{"id":"enc-1","states":[{"capability":"st.Lock","name":"lockState","value":"locked"},{"capability":"st.BatteryLevel","name":"level","value":4}]}]}}"#;
        let states = parse_states(&HttpResponse::new(200, query)).unwrap();
        assert_eq!(states.len(), 2);
        assert_eq!(states[0].value, json!("locked"));
        assert_eq!(states[1].value, json!(4));
    }

    #[test]
    fn errors_inside_a_200_are_errors_and_invalid_token_asks_for_a_refresh() {
        let expired = r#"{"payload":{"error":{"code":"INVALID_TOKEN","message":"token expired"}}}"#;
        assert_eq!(
            parse_devices(&HttpResponse::new(200, expired)).unwrap_err(),
            ApiError::Unauthorized
        );
        let other =
            r#"{"payload":{"error":{"code":"DEVICE_OFFLINE","message":"device is offline"}}}"#;
        assert_eq!(
            parse_states(&HttpResponse::new(200, other))
                .unwrap_err()
                .to_string(),
            "device query: HTTP 200: DEVICE_OFFLINE: device is offline"
        );
        assert!(matches!(
            parse_devices(&HttpResponse::new(200, "{}")),
            Err(ApiError::Shape { .. })
        ));
    }

    #[test]
    fn uuid_v4_sets_version_and_variant() {
        let id = uuid_v4([0; 16]);
        assert_eq!(id, "00000000-0000-4000-8000-000000000000");
    }
}
