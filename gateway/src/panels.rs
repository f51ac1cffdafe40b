//! RemoteUI endpoints: provisioning, the authenticated WebSocket upgrade, list and status.

use std::string::String;
use std::vec::Vec;

use latchkey_protocol::guard::{AuthHeaders, ClientKey, Now};
use rand_core::CryptoRng;
use serde_json::{Map, Value, json};

use crate::app::{App, Effect, Undo, random_hex};
use crate::http::{Request, Response};
use crate::model::{Credentials, MAX_ATTRIBUTES, MAX_STRING, RemoteUi, Variant};
use crate::ws::WsSession;

/// calaos_base's error answer: `{"status":"error","error":…}` with `status`.
pub(crate) fn error(status: u16, message: &str) -> Response {
    Response::json(status, &json!({"status": "error", "error": message}))
}

/// The WebSocket URL a device should use, from the request's `Host` (calaos_base hard-codes
/// `ws://localhost:5454`; this gateway serves TLS, so `wss://` on the host it was reached at).
fn websocket_url(req: &Request) -> String {
    let host = req
        .header("host")
        .filter(|h| {
            !h.is_empty()
                && h.len() <= MAX_STRING
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("wss://{host}/api/v3/remote_ui/ws")
}

struct ProvisionRequest {
    code: String,
    variant: Variant,
    device_info: Vec<(String, String)>,
}

fn parse_provision(body: &[u8]) -> Result<ProvisionRequest, Response> {
    if body.is_empty() {
        return Err(error(400, "Empty request body"));
    }
    let v: Value = serde_json::from_slice(body).map_err(|_| error(400, "Invalid JSON"))?;
    let Value::Object(o) = v else {
        return Err(error(400, "Invalid provisioning request"));
    };
    let invalid = || error(400, "Invalid provisioning request");
    // calaos_base's field wins when a request carries both (it is what the code reads).
    let (code, variant) = match (o.get("code"), o.get("provisioning_code")) {
        (Some(Value::String(c)), _) => (c.clone(), Variant::CalaosBase),
        (None, Some(Value::String(c))) => (c.clone(), Variant::RemoteUiDesign),
        _ => return Err(invalid()),
    };
    if code.is_empty() {
        return Err(invalid());
    }
    let info = match o.get("device_info") {
        Some(Value::Object(info)) => Some(info),
        None if variant == Variant::RemoteUiDesign => None,
        _ => return Err(invalid()),
    };
    if variant == Variant::CalaosBase {
        let info = info.ok_or_else(invalid)?;
        for required in ["type", "mac_address"] {
            if !matches!(info.get(required), Some(Value::String(_))) {
                return Err(invalid());
            }
        }
    }
    let mut device_info = Vec::new();
    if let Some(info) = info {
        if info.len() > MAX_ATTRIBUTES {
            return Err(error(413, "Device info fields too long"));
        }
        for (k, v) in info {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if k.len() > MAX_STRING || text.len() > MAX_STRING {
                return Err(error(413, "Device info fields too long"));
            }
            // A name or value io.xml could not carry is dropped: device metadata is
            // informative, and refusing the device over it would be harsher than calaos_base.
            if crate::model::is_attribute_name(k) && crate::model::is_xml_text(&text) {
                device_info.push((k.clone(), text));
            }
        }
    }
    if code.len() > MAX_STRING {
        return Err(error(413, "Device info fields too long"));
    }
    Ok(ProvisionRequest {
        code,
        variant,
        device_info,
    })
}

/// `POST /api/v3/provision/request`.
pub(crate) fn provision<R: CryptoRng + ?Sized>(
    app: &mut App,
    now: Now,
    client: ClientKey,
    req: &Request,
    rng: &mut R,
    fx: &mut Vec<Effect>,
) -> Response {
    let p = match parse_provision(&req.body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Err(denied) = app.guard.check_provisioning(now, client, &p.code) {
        let mut r = error(denied.status(), "Too many requests or blacklisted");
        if let latchkey_protocol::guard::ProvisioningDenied::RateLimited { retry_after } = denied {
            r.set_header("Retry-After", retry_after_secs(retry_after));
        }
        return r;
    }
    let Some(idx) = app
        .state
        .panels
        .iter()
        .position(|u| !u.provisioning_code.is_empty() && u.provisioning_code == p.code)
    else {
        return error(404, "Invalid provisioning code");
    };
    if app.state.panels[idx].is_provisioned() {
        // The design: "verify that the code exists and is not already used". calaos_base
        // would hand the existing secret to anyone who knows the code; the admin resets the
        // panel instead when a device must provision again.
        return error(409, "Provisioning code already used");
    }
    let creds = Credentials {
        auth_token: random_hex(rng),
        device_secret: random_hex(rng),
        variant: p.variant,
        provisioned_at: Some(now.unix_secs),
    };
    let panel = &mut app.state.panels[idx];
    for (k, v) in &p.device_info {
        if panel.device_info.len() < MAX_ATTRIBUTES || panel.device_info.iter().any(|(x, _)| x == k)
        {
            panel.set_device_info(k, v);
        }
    }
    // calaos_base copies these device_info fields into parameters.
    for (from, to) in [
        ("hardware_id", "device_type"),
        ("manufacturer", "device_manufacturer"),
        ("platform", "device_platform"),
        ("version", "device_version"),
        ("mac_address", "mac_address"),
    ] {
        if let Some((_, v)) = p.device_info.iter().find(|(k, _)| k == from) {
            set_device_param(panel, to, v);
        }
    }
    panel.credentials = Some(creds.clone());
    let panel = panel.clone();
    let id = panel.id.clone();
    // Fresh random credentials (256-bit token): the directory takes them.
    let _ = app.register_device(&id);
    app.persist(fx);
    fx.push(Effect::UndoIfNotSaved(Undo::provisioning(
        &id,
        &creds.auth_token,
    )));
    let ws = websocket_url(req);
    let body = match p.variant {
        Variant::CalaosBase => json!({
            "status": "accepted",
            "device_id": panel.id,
            "auth_token": creds.auth_token,
            "device_secret": creds.device_secret,
            "server_config": {"websocket_url": ws, "sync_interval": app.config.sync_interval},
            "remote_ui_config": {"name": panel.name(), "pages": panel.pages_json(Variant::CalaosBase)},
        }),
        Variant::RemoteUiDesign => json!({
            "success": true,
            "remote_ui": {
                "id": panel.id,
                "auth_token": creds.auth_token,
                "device_secret": creds.device_secret,
                "websocket_endpoint": ws,
                "config": panel.config_json(Variant::RemoteUiDesign),
            },
            "websocket_endpoint": ws,
        }),
    };
    Response::json(200, &body)
}

/// `GET /api/v3/remote_ui/ws`: authenticates the upgrade with the guard.
pub(crate) fn upgrade(
    app: &mut App,
    now: Now,
    client: ClientKey,
    req: &Request,
    fx: &mut Vec<Effect>,
) -> Response {
    let is_upgrade = req
        .header("upgrade")
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    if !is_upgrade {
        let mut r = error(426, "WebSocket upgrade required");
        r.set_header("Upgrade", "websocket");
        return r;
    }
    let accept = match crate::ws::handshake_accept(req) {
        Ok(accept) => accept,
        Err(mut r) => {
            r.set_header("Sec-WebSocket-Version", "13");
            return r;
        }
    };
    let auth = AuthHeaders::from_pairs(req.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let device = match app
        .guard
        .authenticate_device(now, client, &auth, &app.devices)
    {
        Ok(d) => d,
        Err(e) => {
            let mut r = Response::json(
                e.status(),
                &json!({"error": e.reason(), "status": "authentication_failed"}),
            );
            if let Some(after) = e.retry_after() {
                r.set_header("Retry-After", retry_after_secs(after));
            }
            return r;
        }
    };
    let Some(panel_id) = app.device_panels.get(&device.0).cloned() else {
        return Response::json(
            401,
            &json!({"error": "invalid_token", "status": "authentication_failed"}),
        );
    };
    if app.conns.len() >= app.config.max_connections {
        return error(503, "Too many connections");
    }
    let Some(panel) = app.state.panels.iter_mut().find(|p| p.id == panel_id) else {
        return error(500, "Internal server error");
    };
    for (header, param) in [
        ("x-device-version", "device_version"),
        ("x-device-hardware-id", "device_type"),
    ] {
        if let Some(v) = req
            .header(header)
            .filter(|v| !v.is_empty() && v.len() <= MAX_STRING && crate::model::is_xml_text(v))
        {
            set_device_param(panel, param, v);
        }
    }
    panel.last_seen = Some(now.unix_secs);
    let conn = app.open_conn(&panel_id);
    app.persist(fx);
    let session = WsSession::new(conn, now.instant, &app.config);
    fx.push(Effect::UpgradeWebSocket(session));
    for text in crate::ws::greeting(app, conn) {
        fx.push(Effect::SendWs {
            conn,
            text,
            supersedes: None,
        });
    }
    let mut r = Response::new(101);
    r.set_header("Upgrade", "websocket");
    r.set_header("Connection", "Upgrade");
    r.set_header("Sec-WebSocket-Accept", accept);
    r
}

/// `GET /api/v3/remote_ui/list`.
pub(crate) fn list(app: &App) -> Response {
    let items: Vec<Value> = app.state.panels.iter().map(|p| summary(app, p)).collect();
    Response::json(200, &json!({"remote_uis": items}))
}

fn rfc3339(unix: Option<u64>) -> Value {
    unix.map_or(Value::Null, |t| {
        Value::String(latchkey_pki::inspect::rfc3339(t))
    })
}

fn summary(app: &App, p: &RemoteUi) -> Value {
    let info: Map<String, Value> = p
        .device_info
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "id": p.id,
        "name": p.name(),
        "room": p.param("room").unwrap_or(""),
        "is_online": app.conns.values().any(|c| c.panel == p.id),
        "is_provisioned": p.is_provisioned(),
        "last_seen": rfc3339(p.last_seen),
        "device_info": info,
    })
}

/// `GET /api/v3/remote_ui/status/{id}`.
pub(crate) fn status(app: &App, id: &str) -> Response {
    let Some(p) = app.state.panels.iter().find(|p| p.id == id) else {
        return error(404, "RemoteUI not found");
    };
    let mut v = summary(app, p);
    let variant = p.credentials.as_ref().map(|c| c.variant);
    if let Value::Object(o) = &mut v {
        o.insert(
            "provisioned_at".into(),
            rfc3339(p.credentials.as_ref().and_then(|c| c.provisioned_at)),
        );
        o.insert(
            "signing_variant".into(),
            variant.map_or(Value::Null, |v| v.as_str().into()),
        );
        let cfg = p.config_json(variant.unwrap_or(Variant::RemoteUiDesign));
        o.insert(
            "config".into(),
            json!({"brightness": cfg["brightness"], "timeout": cfg["timeout"], "theme": cfg["theme"]}),
        );
        o.insert(
            "referenced_ios".into(),
            p.referenced_ios().into_iter().collect::<Vec<_>>().into(),
        );
    }
    Response::json(200, &v)
}

/// Sets a parameter the device reports (device_info copies, version headers) unless that
/// would add one past [`MAX_ATTRIBUTES`]: what a device sends must never leave the panel in
/// a state that fails [`RemoteUi::validate`] (the state file would no longer load, and every
/// admin edit of the panel would be refused).
fn set_device_param(panel: &mut RemoteUi, name: &str, value: &str) {
    if panel.param(name).is_some() || panel.params.len() < MAX_ATTRIBUTES {
        panel.set_param(name, value);
    }
}

/// A `Retry-After` value: whole seconds rounded up (a client waiting exactly that long is
/// past the limit), at least 1.
fn retry_after_secs(wait: core::time::Duration) -> String {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1).to_string()
}
