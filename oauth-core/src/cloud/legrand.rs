//! The Legrand API behind BTicino door entry (../shared/providers/FACTS.md §1.2–1.3): plants,
//! modules (gateway and locks), SIP accounts, the CA chain and client-certificate issuance.
//!
//! Every call carries `Authorization: Bearer <token>`, the app's `Ocp-Apim-Subscription-Key`
//! (from the profile's `[api] headers`), `UserToken: <user token>`, and JSON content types.
//! Responses are read tolerantly where clients disagree on the shape: plant lists come bare,
//! as `{plants:[…]}` or `{value:[…]}`; one plant bare or as `{plant:{…}}`.
//!
//! Request builders take the access token as an argument: the driver gets it from the token
//! keeper and, on [`ApiError::Unauthorized`], refreshes once and retries.

use serde_json::{Value, json};

use crate::http::{HttpRequest, HttpResponse, Method};
use crate::profile::Profile;
use crate::secret::Secret;

use super::{ApiError, body_json, pick_str};

/// The Legrand API of a `bticino-diy` or `bticino-c100x` profile. `Debug` names the extra
/// headers without their values (`Ocp-Apim-Subscription-Key` is a credential).
#[derive(Clone)]
pub struct LegrandApi {
    base: String,
    headers: Vec<(String, String)>,
    template: String,
    ou: String,
    gateway_user: String,
}

impl core::fmt::Debug for LegrandApi {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("LegrandApi")
            .field("base", &self.base)
            .field("headers", &names)
            .field("template", &self.template)
            .field("ou", &self.ou)
            .field("gateway_user", &self.gateway_user)
            .finish()
    }
}

/// A plant (an installation).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Plant {
    /// Plant id.
    pub id: String,
    /// Name shown in the app.
    pub name: String,
    /// Country code.
    pub country: String,
    /// Plant type.
    pub kind: String,
    /// The owner's id (the SIP SAN's first part).
    pub owner_id: String,
    /// The owner's e-mail (the CSR's emailAddress).
    pub owner_email: String,
}

/// A module of a plant: the gateway, a lock, a light, an indoor or outdoor unit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Module {
    /// Module id; a lock's id is the door-release receiver id.
    pub id: String,
    /// Name shown in the app.
    pub name: String,
    /// `device` (`gateway`, `lock`, `light`, `audioVideoTerminal`, …).
    pub device: String,
    /// Subtype (`EU`, `IU`, …) when given.
    pub subtype: Option<String>,
    /// The plant it belongs to, when given.
    pub plant_id: Option<String>,
}

/// A SIP account registered on a gateway.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct SipAccount {
    /// The account's id (for deletion).
    pub sip_id: String,
    /// The client id chosen at registration.
    pub client_id: String,
    /// The client name shown in the app.
    pub client_name: String,
    /// `<userOid>_<clientId>@<gatewayId>.bs.iotleg.com`.
    pub sip_uri: String,
    /// SIP user name (`<userOid>_<clientId>`).
    pub username: String,
    /// The SIP password (only in a registration's answer and the account list).
    #[serde(skip)]
    pub password: Option<Secret>,
    /// The gateway it is registered on.
    pub device_id: String,
}

impl core::fmt::Debug for SipAccount {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SipAccount")
            .field("sip_id", &self.sip_id)
            .field("client_id", &self.client_id)
            .field("sip_uri", &self.sip_uri)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

impl LegrandApi {
    /// The API of a BTicino profile: base URL and headers from `[api]`, the certificate
    /// template, OU and gateway SIP user from `[vendor]` (kept consistent per app flavour).
    ///
    /// # Errors
    /// [`ApiError::Profile`] when the profile lacks one of them.
    pub fn for_profile(profile: &Profile) -> Result<Self, ApiError> {
        let vendor = |k: &'static str| {
            profile
                .vendor
                .get(k)
                .cloned()
                .ok_or(ApiError::Profile { missing: k })
        };
        Ok(LegrandApi {
            base: profile
                .api
                .base_url
                .clone()
                .ok_or(ApiError::Profile {
                    missing: "api.base_url",
                })?
                .trim_end_matches('/')
                .to_owned(),
            headers: profile
                .api
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            template: vendor("certificate_template")?,
            ou: vendor("certificate_ou")?,
            gateway_user: vendor("gateway_sip_user")?,
        })
    }

    /// The certificate template (`sipuser-DIY` or `sipuser`).
    #[must_use]
    pub fn template(&self) -> &str {
        &self.template
    }

    /// The CSR's organisational unit (`DIY` or `C100X`).
    #[must_use]
    pub fn certificate_ou(&self) -> &str {
        &self.ou
    }

    /// The gateway's SIP user for door release (`diy` or `c100x`).
    #[must_use]
    pub fn gateway_sip_user(&self) -> &str {
        &self.gateway_user
    }

    fn request(&self, method: Method, path: &str, token: &Secret) -> HttpRequest {
        let mut req = HttpRequest::new(method, format!("{}{path}", self.base));
        req.push_header("Authorization", format!("Bearer {}", token.expose()));
        req.push_header("UserToken", token.expose().to_owned());
        for (k, v) in &self.headers {
            req.push_header(k.clone(), v.clone());
        }
        req.push_header("Accept", "application/json");
        req
    }

    fn with_json(mut req: HttpRequest, body: &Value) -> HttpRequest {
        req.push_header("Content-Type", "application/json");
        req.body = body.to_string().into_bytes();
        req
    }

    /// `GET /servicecatalog/api/v3.0/plants`.
    #[must_use]
    pub fn plants(&self, token: &Secret) -> HttpRequest {
        self.request(Method::Get, "/servicecatalog/api/v3.0/plants", token)
    }

    /// `GET /servicecatalog/api/v3.0/plants/{id}/modules`.
    #[must_use]
    pub fn modules(&self, token: &Secret, plant_id: &str) -> HttpRequest {
        self.request(
            Method::Get,
            &format!(
                "/servicecatalog/api/v3.0/plants/{}/modules",
                segment(plant_id)
            ),
            token,
        )
    }

    /// `GET /vde/sip/v1.0/devices/{gateway}/sipaccounts`.
    #[must_use]
    pub fn sip_accounts(&self, token: &Secret, gateway_id: &str) -> HttpRequest {
        self.request(
            Method::Get,
            &format!("/vde/sip/v1.0/devices/{}/sipaccounts", segment(gateway_id)),
            token,
        )
    }

    /// `POST /vde/sip/v1.0/devices/{gateway}/sipaccount` registering `client_id` as
    /// `<user_oid>_<client_id>@<gateway>.bs.iotleg.com`.
    #[must_use]
    pub fn register_sip_account(
        &self,
        token: &Secret,
        gateway_id: &str,
        user_oid: &str,
        client_id: &str,
        client_name: &str,
    ) -> HttpRequest {
        let body = json!({
            "clientId": client_id,
            "clientName": client_name,
            "sipUri": sip_uri(user_oid, client_id, gateway_id),
        });
        Self::with_json(
            self.request(
                Method::Post,
                &format!("/vde/sip/v1.0/devices/{}/sipaccount", segment(gateway_id)),
                token,
            ),
            &body,
        )
    }

    /// `DELETE /vde/sip/v1.0/devices/{gateway}/sipaccount/{id}`.
    #[must_use]
    pub fn delete_sip_account(
        &self,
        token: &Secret,
        gateway_id: &str,
        sip_id: &str,
    ) -> HttpRequest {
        self.request(
            Method::Delete,
            &format!(
                "/vde/sip/v1.0/devices/{}/sipaccount/{}",
                segment(gateway_id),
                segment(sip_id)
            ),
            token,
        )
    }

    /// `GET /certificate/api/v1.0/ca/information/CACerts`.
    #[must_use]
    pub fn ca_chain(&self, token: &Secret) -> HttpRequest {
        self.request(
            Method::Get,
            "/certificate/api/v1.0/ca/information/CACerts",
            token,
        )
    }

    /// `POST /certificate/api/v1.0/ca/information/clientCerts`: a client certificate for
    /// `csr_base64_der` (the CSR's DER in base64, no PEM armour), for `plant`, with the
    /// flavour's template. `app_token`, when given, goes into `Authorization` and the user's
    /// token into `UserToken` (the C100X app's split); otherwise the user token is in both.
    #[must_use]
    pub fn issue_certificate(
        &self,
        user_token: &Secret,
        app_token: Option<&Secret>,
        csr_base64_der: &str,
        plant: &Plant,
    ) -> HttpRequest {
        let mut req = self.request(
            Method::Post,
            "/certificate/api/v1.0/ca/information/clientCerts",
            user_token,
        );
        if let Some(app) = app_token {
            for (name, value) in &mut req.headers {
                if name == "Authorization" {
                    *value = format!("Bearer {}", app.expose());
                }
            }
        }
        let body = json!({
            "csr": csr_base64_der,
            "sender": {
                "addressType": "addressLocation",
                "system": "information",
                "plant": {
                    "_gatewayDbIdx": -1,
                    "dbIdx": -1,
                    "id": plant.id,
                    "name": plant.name,
                    "country": plant.country,
                    "ownerEmail": plant.owner_email,
                    "ownerId": plant.owner_id,
                    "type": plant.kind,
                },
            },
            "template": self.template,
        });
        Self::with_json(req, &body)
    }
}

/// The application credentials of the C100X app (FACTS.md §1.3): the official app gets an
/// application token by the client-credentials grant and sends it in `Authorization` on the
/// certificate call, with the user's token in `UserToken` (confirmed live by
/// alpichlabs/ha-bticino-c100x). The client id is public (profile key `app_client_id`); the token endpoint
/// (`app_token_endpoint`), an optional scope (`app_scope`) and the secret are not in FACTS
/// and come from the user. Without them latchkey sends the user token in both headers, as
/// the DIY client does.
#[derive(Clone)]
pub struct AppCredentials {
    profile: Profile,
    scope: Option<String>,
}

impl core::fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AppCredentials")
            .field("token_endpoint", &self.profile.endpoints.token)
            .field("client_id", &self.profile.client.id)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl AppCredentials {
    /// The application credentials of `profile` (its `[vendor]` keys `app_token_endpoint`,
    /// `app_client_id`, `app_scope`) with `secret`.
    ///
    /// # Errors
    /// [`ApiError::Profile`] naming the key the profile lacks.
    pub fn from_profile(profile: &Profile, secret: Secret) -> Result<AppCredentials, ApiError> {
        let key = |k: &'static str| {
            profile
                .vendor
                .get(k)
                .filter(|v| !v.trim().is_empty())
                .cloned()
                .ok_or(ApiError::Profile { missing: k })
        };
        let endpoint = key("app_token_endpoint")?;
        let client_id = key("app_client_id")?;
        let mut app = Profile::builtin("generic")
            .map_err(|_| ApiError::Profile {
                missing: "app_token_endpoint",
            })?
            .with_client_id(client_id)
            .with_client_secret(secret);
        app.client.auth = crate::profile::ClientAuth::ClientSecretPost;
        app.endpoints.token = Some(endpoint);
        Ok(AppCredentials {
            profile: app,
            scope: profile.vendor.get("app_scope").cloned(),
        })
    }

    /// The client-credentials token request (RFC 6749 §4.4.2, secret in the form body).
    ///
    /// # Errors
    /// [`ApiError::Profile`] when the endpoint is not an https URL the grant can use.
    pub fn token_request(&self) -> Result<HttpRequest, ApiError> {
        let scopes: Vec<&str> = self.scope.as_deref().into_iter().collect();
        crate::request::client_credentials(&self.profile, &scopes).map_err(|_| ApiError::Profile {
            missing: "app_token_endpoint",
        })
    }

    /// The application token in the token endpoint's answer.
    ///
    /// # Errors
    /// [`ApiError::Status`] with the endpoint's own error for a refusal (a wrong secret is
    /// `invalid_client`), [`ApiError::Shape`] for an answer without a token.
    pub fn parse_token(&self, response: &HttpResponse) -> Result<Secret, ApiError> {
        // Only the token is used (for one call, at once), so its expiry is not computed.
        match crate::response::parse_token_response(response, 0, &self.profile.response) {
            Ok(tokens) => Ok(tokens.access_token),
            Err(_) if (200..300).contains(&response.status) => Err(ApiError::shape(
                "application token",
                "the answer carries no access_token",
            )),
            Err(e) => Err(ApiError::Status {
                what: "application token",
                status: response.status,
                message: Some(e.to_string()),
            }),
        }
    }
}

/// The SIP URI door-release MESSAGEs go to: `sip:<gateway user>@<gateway_id>.bs.iotleg.com`
/// (`c100x` or `diy` per flavour, FACTS.md §1.5).
#[must_use]
pub fn gate_uri(gateway_user: &str, gateway_id: &str) -> String {
    format!("sip:{gateway_user}@{gateway_id}.bs.iotleg.com")
}

/// The JSON-RPC 2.0 body that opens the lock `lock_id` (`lock.setStatus`, status `open`,
/// receiver `plant.coal.id`), compact as the apps send it; `rpc_id` is sent as a string.
#[must_use]
pub fn lock_release_body(lock_id: &str, rpc_id: u32) -> String {
    set_status_body("lock.setStatus", "open", lock_id, rpc_id)
}

/// The JSON-RPC 2.0 body that switches the staircase light `light_id` on (`light.setStatus`).
#[must_use]
pub fn light_on_body(light_id: &str, rpc_id: u32) -> String {
    set_status_body("light.setStatus", "on", light_id, rpc_id)
}

fn set_status_body(method: &str, status: &str, receiver: &str, rpc_id: u32) -> String {
    json!({
        "jsonrpc": "2.0",
        "id": rpc_id.to_string(),
        "method": method,
        "params": [{"status": status, "receiver": {"plant": {"coal": {"id": receiver}}}}],
    })
    .to_string()
}

/// `<user_oid>_<client_id>@<gateway_id>.bs.iotleg.com`, the `sipUri` the app registers (no
/// `sip:` prefix).
#[must_use]
pub fn sip_uri(user_oid: &str, client_id: &str, gateway_id: &str) -> String {
    format!("{user_oid}_{client_id}@{gateway_id}.bs.iotleg.com")
}

/// A new client id as the apps make them: 21–23 decimal digits, no leading zero, from
/// `random` (at least 24 bytes are used; fewer give a shorter id, never a panic).
#[must_use]
pub fn new_client_id(random: &[u8]) -> String {
    let len = 21 + usize::from(random.first().copied().unwrap_or(0) % 3);
    let mut id = String::with_capacity(len);
    for (i, b) in random.iter().skip(1).take(len).enumerate() {
        let digit = if i == 0 { 1 + b % 9 } else { b % 10 };
        id.push(char::from(b'0' + digit));
    }
    id
}

/// Reads the plant list (a bare list, `{plants:[…]}` or `{value:[…]}`).
///
/// # Errors
/// [`ApiError`] for a failed call or a body that is not a plant list.
pub fn parse_plants(response: &HttpResponse) -> Result<Vec<Plant>, ApiError> {
    let v = body_json(response, "plants")?;
    let list = match &v {
        Value::Array(a) => a,
        Value::Object(o) => match o.get("plants").or_else(|| o.get("value")) {
            Some(Value::Array(a)) => a,
            _ => return Err(ApiError::shape("plants", "no plant list")),
        },
        _ => return Err(ApiError::shape("plants", "no plant list")),
    };
    list.iter().map(plant).collect()
}

/// Reads one plant (bare or `{plant:{…}}`).
///
/// # Errors
/// [`ApiError`] for a failed call or a body that is not a plant.
pub fn parse_plant(response: &HttpResponse) -> Result<Plant, ApiError> {
    let v = body_json(response, "plant")?;
    plant(v.get("plant").unwrap_or(&v))
}

fn plant(v: &Value) -> Result<Plant, ApiError> {
    let id =
        pick_str(v, &["id", "plantId"]).ok_or(ApiError::shape("plants", "a plant has no id"))?;
    Ok(Plant {
        id,
        name: pick_str(v, &["name"]).unwrap_or_default(),
        country: pick_str(v, &["country"]).unwrap_or_default(),
        kind: pick_str(v, &["type"]).unwrap_or_default(),
        owner_id: pick_str(v, &["ownerId"]).unwrap_or_default(),
        owner_email: pick_str(v, &["ownerEmail"]).unwrap_or_default(),
    })
}

/// Reads a module list (bare, `{modules:[…]}` or `{value:[…]}`), keeping those of
/// `plant_id` when a module names its plant.
///
/// # Errors
/// [`ApiError`] for a failed call or a body that is not a module list.
pub fn parse_modules(response: &HttpResponse, plant_id: &str) -> Result<Vec<Module>, ApiError> {
    let v = body_json(response, "modules")?;
    let list = match &v {
        Value::Array(a) => a,
        Value::Object(o) => match o.get("modules").or_else(|| o.get("value")) {
            Some(Value::Array(a)) => a,
            _ => return Err(ApiError::shape("modules", "no module list")),
        },
        _ => return Err(ApiError::shape("modules", "no module list")),
    };
    let mut out = Vec::new();
    for m in list {
        let id = pick_str(m, &["id"]).ok_or(ApiError::shape("modules", "a module has no id"))?;
        let module = Module {
            id,
            name: pick_str(m, &["name"]).unwrap_or_default(),
            device: pick_str(m, &["device", "deviceType"]).unwrap_or_default(),
            subtype: pick_str(m, &["subtype", "subType"]),
            plant_id: pick_str(m, &["plantId"]),
        };
        if module.plant_id.as_deref().is_none_or(|p| p == plant_id) {
            out.push(module);
        }
    }
    Ok(out)
}

/// The plant's gateway (the module whose `device` is `gateway`).
#[must_use]
pub fn gateway(modules: &[Module]) -> Option<&Module> {
    modules
        .iter()
        .find(|m| m.device.eq_ignore_ascii_case("gateway"))
}

/// The plant's locks (door-release receivers).
#[must_use]
pub fn locks(modules: &[Module]) -> Vec<&Module> {
    modules
        .iter()
        .filter(|m| m.device.eq_ignore_ascii_case("lock"))
        .collect()
}

/// Reads a SIP account list.
///
/// # Errors
/// [`ApiError`] for a failed call or a body that is not an account list.
pub fn parse_sip_accounts(response: &HttpResponse) -> Result<Vec<SipAccount>, ApiError> {
    let v = body_json(response, "sip accounts")?;
    let list = match &v {
        Value::Array(a) => a,
        Value::Object(o) => match o.get("value").or_else(|| o.get("sipAccounts")) {
            Some(Value::Array(a)) => a,
            _ => return Err(ApiError::shape("sip accounts", "no account list")),
        },
        _ => return Err(ApiError::shape("sip accounts", "no account list")),
    };
    list.iter().map(sip_account).collect()
}

/// Reads the answer to [`LegrandApi::register_sip_account`]: the new account with its
/// password. `existing` is how many accounts the gateway listed before: the service refuses
/// a fourth client with a bare 400 (FACTS.md §1.2), reported as [`ApiError::ClientLimit`].
///
/// # Errors
/// [`ApiError`] for a failed call or a body that is not an account.
pub fn parse_registered_account(
    response: &HttpResponse,
    existing: usize,
) -> Result<SipAccount, ApiError> {
    if response.status == 400 && existing >= CLIENT_LIMIT {
        return Err(ApiError::ClientLimit);
    }
    let v = body_json(response, "sip account registration")?;
    let account = sip_account(&v)?;
    if account.password.is_none() {
        return Err(ApiError::shape(
            "sip account registration",
            "the answer carries no sipPassword",
        ));
    }
    Ok(account)
}

/// SIP clients an account may have on one gateway (observed).
pub const CLIENT_LIMIT: usize = 3;

fn sip_account(v: &Value) -> Result<SipAccount, ApiError> {
    let what = "sip accounts";
    let sip_uri =
        pick_str(v, &["sipUri"]).ok_or(ApiError::shape(what, "an account has no sipUri"))?;
    let client_id = pick_str(v, &["clientId"]).unwrap_or_default();
    Ok(SipAccount {
        sip_id: pick_str(v, &["sipId", "id"]).unwrap_or_default(),
        client_name: pick_str(v, &["clientName"]).unwrap_or_default(),
        username: pick_str(v, &["username"]).unwrap_or_else(|| {
            sip_uri
                .trim_start_matches("sip:")
                .split('@')
                .next()
                .unwrap_or_default()
                .to_owned()
        }),
        password: pick_str(v, &["sipPassword"]).map(Secret::new),
        device_id: pick_str(v, &["deviceId"]).unwrap_or_default(),
        client_id,
        sip_uri,
    })
}

/// Reads the CA chain (`{chain: …}`: PEM text, or a list of base64 DER certificates) as PEM.
///
/// # Errors
/// [`ApiError`] for a failed call or a body without a chain.
pub fn parse_ca_chain(response: &HttpResponse) -> Result<String, ApiError> {
    let v = body_json(response, "CA chain")?;
    match v.get("chain") {
        Some(Value::String(s)) if s.contains("-----BEGIN") => Ok(s.clone()),
        Some(Value::String(s)) => Ok(super::pem_certificate(s)),
        Some(Value::Array(list)) => Ok(list
            .iter()
            .filter_map(Value::as_str)
            .map(|s| {
                if s.contains("-----BEGIN") {
                    s.to_owned()
                } else {
                    super::pem_certificate(s)
                }
            })
            .collect()),
        _ => Err(ApiError::shape("CA chain", "no chain")),
    }
}

/// Reads an issued certificate (`201 {cert: <base64 DER>, …}`) as PEM with 64-character
/// lines.
///
/// # Errors
/// [`ApiError`] for a failed call or a body without a certificate.
pub fn parse_issued_certificate(response: &HttpResponse) -> Result<String, ApiError> {
    let v = body_json(response, "certificate")?;
    let cert = pick_str(&v, &["cert", "certificate"])
        .ok_or(ApiError::shape("certificate", "no cert in the answer"))?;
    if cert.contains("-----BEGIN") {
        return Ok(cert);
    }
    Ok(super::pem_certificate(&cert))
}

/// Characters escaped in a path segment: all but RFC 3986 unreserved ones.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A path segment with the characters that would change the path escaped.
fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

pub mod files;
pub mod setup;

#[cfg(test)]
mod tests;
