//! The Watts Home API (`https://home.watts.com/api`, ../shared/providers/FACTS.md §3.1):
//! user, locations, devices, device settings and away state, every answer in the envelope
//! `{errorNumber, errorMessage, body}` (`errorNumber` ≠ 0 is a failure), every request with
//! the profile's `Api-Version: 2.0`.
//!
//! # Unconfirmed
//!
//! FACTS.md names the endpoints and the `{"Settings":{…}}` / `{"awayState":0|1}` bodies, and
//! a Go client's rule that the heat and cool setpoints are sent together (one alone can
//! silently reset the other). The names of the setpoint fields inside `Settings` and of the
//! id and name fields in answers are not confirmed by a capture: the setpoint names are
//! [`SetpointFields`] (default `Heat`/`Cool`, `HeatHold`/`CoolHold` while a schedule runs),
//! and the parsers accept each id and name under the spellings seen in public clients.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value, json};

use crate::http::{HttpRequest, HttpResponse, Method};
use crate::profile::Profile;
use crate::secret::Secret;

use super::{ApiError, body_json, pick_str};

/// The Watts Home API of a `watts` profile.
#[derive(Debug, Clone)]
pub struct WattsApi {
    base: String,
    headers: Vec<(String, String)>,
}

/// A location (a home).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Location {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
}

/// A thermostat (or other device) of a location.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct Device {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The device as the API sent it (settings, readings, model).
    pub raw: Value,
}

/// The names of the setpoint fields inside `Settings` (unconfirmed; see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SetpointFields {
    /// The heating setpoint's field.
    pub heat: String,
    /// The cooling setpoint's field.
    pub cool: String,
}

impl SetpointFields {
    /// `Heat` and `Cool`: the setpoints when no schedule is running.
    #[must_use]
    pub fn plain() -> Self {
        SetpointFields {
            heat: "Heat".into(),
            cool: "Cool".into(),
        }
    }

    /// `HeatHold` and `CoolHold`: a hold while a schedule runs (marked unverified by the
    /// client that names them).
    #[must_use]
    pub fn hold() -> Self {
        SetpointFields {
            heat: "HeatHold".into(),
            cool: "CoolHold".into(),
        }
    }
}

impl WattsApi {
    /// The API of the profile's `[api]` section (base URL and headers).
    ///
    /// # Errors
    /// [`ApiError::Profile`] without a base URL.
    pub fn for_profile(profile: &Profile) -> Result<Self, ApiError> {
        let base = profile.api.base_url.as_deref().ok_or(ApiError::Profile {
            missing: "api.base_url",
        })?;
        Ok(WattsApi {
            base: base.trim_end_matches('/').to_owned(),
            headers: profile
                .api
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }

    fn request(
        &self,
        method: Method,
        token: &Secret,
        path: &str,
        body: Option<Value>,
    ) -> HttpRequest {
        let mut req = HttpRequest::new(method, format!("{}{path}", self.base));
        req.push_header("Authorization", format!("Bearer {}", token.expose()));
        req.push_header("Accept", "application/json");
        for (k, v) in &self.headers {
            req.push_header(k.clone(), v.clone());
        }
        if let Some(body) = body {
            req.push_header("Content-Type", "application/json");
            req.body = body.to_string().into_bytes();
        }
        req
    }

    /// `GET /User`.
    #[must_use]
    pub fn user(&self, token: &Secret) -> HttpRequest {
        self.request(Method::Get, token, "/User", None)
    }

    /// `GET /Location`.
    #[must_use]
    pub fn locations(&self, token: &Secret) -> HttpRequest {
        self.request(Method::Get, token, "/Location", None)
    }

    /// `GET /Location/{id}/Devices`.
    #[must_use]
    pub fn devices(&self, token: &Secret, location_id: &str) -> HttpRequest {
        self.request(
            Method::Get,
            token,
            &format!("/Location/{}/Devices", seg(location_id)),
            None,
        )
    }

    /// `GET /Device/{id}`.
    #[must_use]
    pub fn device(&self, token: &Secret, device_id: &str) -> HttpRequest {
        self.request(
            Method::Get,
            token,
            &format!("/Device/{}", seg(device_id)),
            None,
        )
    }

    /// `PATCH /Device/{id}` with both setpoints in one `Settings` object (never one alone).
    #[must_use]
    pub fn set_setpoints(
        &self,
        token: &Secret,
        device_id: &str,
        fields: &SetpointFields,
        heat: f64,
        cool: f64,
    ) -> HttpRequest {
        let mut settings = Map::new();
        settings.insert(fields.heat.clone(), json!(heat));
        settings.insert(fields.cool.clone(), json!(cool));
        self.request(
            Method::Patch,
            token,
            &format!("/Device/{}", seg(device_id)),
            Some(json!({ "Settings": settings })),
        )
    }

    /// `PATCH /Location/{id}/State` with `{"awayState": 1}` (away) or `0` (home).
    #[must_use]
    pub fn set_away(&self, token: &Secret, location_id: &str, away: bool) -> HttpRequest {
        self.request(
            Method::Patch,
            token,
            &format!("/Location/{}/State", seg(location_id)),
            Some(json!({ "awayState": u8::from(away) })),
        )
    }
}

/// Everything but RFC 3986's unreserved characters is escaped in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn seg(id: &str) -> String {
    utf8_percent_encode(id, SEGMENT).to_string()
}

/// The `body` of an envelope answer; `errorNumber` ≠ 0 is [`ApiError::Status`] with the
/// `errorMessage`, a 401 (or an invalid-token answer) [`ApiError::Unauthorized`].
///
/// # Errors
/// [`ApiError`] for a failed call or an answer that is not the envelope.
pub fn parse_envelope(response: &HttpResponse, what: &'static str) -> Result<Value, ApiError> {
    let v = body_json(response, what)?;
    let number = match v.get("errorNumber") {
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or(ApiError::shape(what, "errorNumber is not an integer"))?,
        Some(Value::Null) | None => {
            return Err(ApiError::shape(
                what,
                "no errorNumber: not the Watts envelope",
            ));
        }
        Some(_) => return Err(ApiError::shape(what, "errorNumber is not a number")),
    };
    if number != 0 {
        let message = pick_str(&v, &["errorMessage"]).unwrap_or_default();
        return Err(ApiError::Status {
            what,
            status: response.status,
            message: Some(
                format!("error {number}: {message}")
                    .chars()
                    .take(200)
                    .collect(),
            ),
        });
    }
    Ok(v.get("body").cloned().unwrap_or(Value::Null))
}

const ID_KEYS: &[&str] = &[
    "LocationId",
    "locationId",
    "DeviceId",
    "deviceId",
    "Id",
    "id",
];
const NAME_KEYS: &[&str] = &["Name", "name", "LocationName", "DeviceName", "Description"];

fn items<'a>(
    body: &'a Value,
    what: &'static str,
    keys: &[&str],
) -> Result<&'a Vec<Value>, ApiError> {
    match body {
        Value::Array(a) => Ok(a),
        Value::Object(o) => keys
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_array))
            .ok_or(ApiError::shape(what, "no list in the body")),
        _ => Err(ApiError::shape(what, "the body is not a list")),
    }
}

/// The locations of a `GET /Location` answer.
///
/// # Errors
/// [`ApiError`] as [`parse_envelope`], or a body without a list of locations with ids.
pub fn parse_locations(response: &HttpResponse) -> Result<Vec<Location>, ApiError> {
    let body = parse_envelope(response, "locations")?;
    items(&body, "locations", &["Locations", "locations"])?
        .iter()
        .map(|l| {
            Ok(Location {
                id: pick_str(l, ID_KEYS)
                    .ok_or(ApiError::shape("locations", "a location without an id"))?,
                name: pick_str(l, NAME_KEYS).unwrap_or_default(),
            })
        })
        .collect()
}

/// The devices of a `GET /Location/{id}/Devices` answer.
///
/// # Errors
/// [`ApiError`] as [`parse_envelope`], or a body without a list of devices with ids.
pub fn parse_devices(response: &HttpResponse) -> Result<Vec<Device>, ApiError> {
    let body = parse_envelope(response, "devices")?;
    items(&body, "devices", &["Devices", "devices"])?
        .iter()
        .map(|d| {
            let id_keys = ["DeviceId", "deviceId", "Id", "id"];
            Ok(Device {
                id: pick_str(d, &id_keys)
                    .ok_or(ApiError::shape("devices", "a device without an id"))?,
                name: pick_str(d, NAME_KEYS).unwrap_or_default(),
                raw: d.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> WattsApi {
        WattsApi::for_profile(&Profile::builtin("watts").unwrap()).unwrap()
    }

    fn answer(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn token() -> Secret {
        Secret::new("at".to_owned())
    }

    #[test]
    fn requests_carry_bearer_api_version_and_encoded_ids() {
        let r = api().devices(&token(), "loc/1 2");
        assert_eq!(
            r.url,
            "https://home.watts.com/api/Location/loc%2F1%202/Devices"
        );
        assert!(
            r.headers
                .iter()
                .any(|(k, v)| k == "Api-Version" && v == "2.0")
        );
        assert!(
            r.headers
                .iter()
                .any(|(k, v)| k == "Authorization" && v == "Bearer at")
        );
        assert!(r.body.is_empty());
    }

    #[test]
    fn setpoints_are_always_sent_together() {
        let r = api().set_setpoints(&token(), "d1", &SetpointFields::plain(), 68.0, 76.5);
        assert_eq!(r.method, Method::Patch);
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v, json!({"Settings": {"Heat": 68.0, "Cool": 76.5}}));
        let r = api().set_setpoints(&token(), "d1", &SetpointFields::hold(), 60.0, 80.0);
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v, json!({"Settings": {"HeatHold": 60.0, "CoolHold": 80.0}}));
    }

    #[test]
    fn away_state_is_0_or_1() {
        let r = api().set_away(&token(), "L", true);
        assert_eq!(r.url, "https://home.watts.com/api/Location/L/State");
        assert_eq!(
            serde_json::from_slice::<Value>(&r.body).unwrap(),
            json!({"awayState": 1})
        );
    }

    #[test]
    fn the_envelope_gives_the_body_or_names_the_error() {
        let ok = answer(
            200,
            r#"{"errorNumber":0,"errorMessage":"","body":[{"LocationId":"7","Name":"Home"}]}"#,
        );
        assert_eq!(
            parse_locations(&ok).unwrap(),
            vec![Location {
                id: "7".into(),
                name: "Home".into()
            }]
        );
        let failed = answer(
            200,
            r#"{"errorNumber":12,"errorMessage":"Device offline","body":null}"#,
        );
        let e = parse_envelope(&failed, "device").unwrap_err();
        assert!(e.to_string().contains("error 12: Device offline"), "{e}");
        assert_eq!(
            parse_envelope(&answer(401, ""), "user"),
            Err(ApiError::Unauthorized)
        );
        assert!(matches!(
            parse_envelope(&answer(200, r#"{"body":[]}"#), "user"),
            Err(ApiError::Shape { .. })
        ));
        assert!(matches!(
            parse_envelope(&answer(200, "<html>"), "user"),
            Err(ApiError::Shape { .. })
        ));
    }

    #[test]
    fn devices_accept_the_id_spellings_and_keep_the_raw_answer() {
        let ok = answer(
            200,
            r#"{"errorNumber":0,"body":{"Devices":[{"deviceId":"d-1","Name":"Hall","Settings":{"Heat":68}},{"Id":42}]}}"#,
        );
        let d = parse_devices(&ok).unwrap();
        assert_eq!(d[0].id, "d-1");
        assert_eq!(d[0].raw["Settings"]["Heat"], 68);
        assert_eq!(d[1].id, "42");
        let no_id = answer(200, r#"{"errorNumber":0,"body":[{"Name":"x"}]}"#);
        assert!(parse_devices(&no_id).is_err());
    }
}
