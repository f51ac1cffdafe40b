//! A panel's WebSocket session after the authenticated upgrade: messages in the
//! `{"msg": type, "data": …}` envelope, and liveness by ping/pong.
//!
//! | direction | `msg` | data |
//! |---|---|---|
//! | → panel | `remote_ui_config` | name, room, theme, brightness, timeout, pages |
//! | → panel | `remote_ui_config_update` | calaos_base: name, brightness, grid, screensaver, pages, room, io_items; design: `{config}` |
//! | → panel | `remote_ui_io_states` | `{io_id: {id, type, state, gui_type, name}}` for the referenced IOs only |
//! | → panel | `io_state` | `{io_id, state}`, only for referenced IOs |
//! | panel → | `remote_ui_get_config` | — (answered with `remote_ui_config`) |
//! | panel → | `set_state` | `{io, state}` (or calaos's `{id, value}`); referenced IOs only |
//!
//! On connect a design panel gets `remote_ui_config` then `remote_ui_io_states`; a
//! calaos_base panel gets `remote_ui_config_update` then `remote_ui_io_states`, as
//! calaos_base sends them.

use std::string::String;
use std::vec::Vec;

use latchkey_protocol::guard::Now;
use latchkey_protocol::time::Instant;
use serde_json::{Map, Value, json};

use crate::app::{App, AppConfig, ConnId, Effect};
use crate::http::MAX_BODY_BYTES;
use crate::model::{MAX_STRING, RemoteUi, Variant};

/// A frame for the driver to send on the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WsFrame {
    /// A text message.
    Text(String),
    /// A ping with this payload.
    Ping(Vec<u8>),
    /// A close frame; the driver closes the connection after sending it.
    Close {
        /// Close code (1000 normal, 1008 policy, 1009 too big, 1011 error).
        code: u16,
        /// Reason.
        reason: String,
    },
}

/// What one input produced.
#[derive(Debug, Default)]
#[must_use]
pub struct WsOutput {
    /// Frames for this connection, in order.
    pub frames: Vec<WsFrame>,
    /// Effects (messages to other connections, IO states to forward, state to persist).
    pub effects: Vec<Effect>,
}

/// Where the session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Liveness {
    /// Next ping at this point.
    Idle { ping_at: Instant },
    /// A ping was sent; the pong is due by this point.
    AwaitingPong { deadline: Instant },
    /// Closed; nothing more happens.
    Closed,
}

/// One panel connection (see the module docs). Created by the application on a
/// successful upgrade ([`Effect::UpgradeWebSocket`]); the driver owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsSession {
    conn: ConnId,
    liveness: Liveness,
    interval: core::time::Duration,
    pong_timeout: core::time::Duration,
    pings: u64,
}

impl WsSession {
    pub(crate) fn new(conn: ConnId, now: Instant, config: &AppConfig) -> WsSession {
        WsSession {
            conn,
            liveness: Liveness::Idle {
                ping_at: now + config.ping_interval,
            },
            interval: config.ping_interval,
            pong_timeout: config.pong_timeout,
            pings: 0,
        }
    }

    /// The connection.
    #[must_use]
    pub fn conn(&self) -> ConnId {
        self.conn
    }

    /// Whether the session has closed (after a close frame in either direction).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.liveness == Liveness::Closed
    }

    /// A text message from the panel.
    pub fn handle_message(&mut self, now: Now, app: &mut App, text: &str) -> WsOutput {
        let mut out = WsOutput::default();
        if self.is_closed() {
            return out;
        }
        self.seen(now.instant);
        if text.len() > MAX_BODY_BYTES {
            self.close(&mut out, 1009, "message too big");
            return out;
        }
        let Some((panel, _)) = app.conn_panel(self.conn) else {
            self.close(&mut out, 1008, "panel removed or reset");
            return out;
        };
        let panel_id = panel.id.clone();
        if let Some(p) = app.state.panels.iter_mut().find(|p| p.id == panel_id) {
            p.last_seen = Some(now.unix_secs);
        }
        let Ok(Value::Object(msg)) = serde_json::from_str::<Value>(text) else {
            out.frames.push(error_frame(None, "invalid JSON message"));
            return out;
        };
        let msg_id = msg.get("msg_id").cloned();
        match msg.get("msg").and_then(Value::as_str) {
            Some("remote_ui_get_config") => {
                if let Some((p, v)) = app.conn_panel(self.conn) {
                    out.frames.push(WsFrame::Text(envelope(
                        "remote_ui_config",
                        p.config_json(v),
                        msg_id,
                    )));
                }
            }
            Some("set_state") => {
                let data = msg.get("data").cloned().unwrap_or(Value::Null);
                match set_state(app, self.conn, &data, &mut out.effects) {
                    Ok(()) => out.frames.push(WsFrame::Text(envelope(
                        "set_state",
                        json!({"success": true}),
                        msg_id,
                    ))),
                    Err(e) => out.frames.push(error_frame(msg_id, e)),
                }
            }
            Some("pong") | Some("ping") => {
                // Application-level keep-alives some firmwares send; liveness is noted above.
            }
            Some(other) => {
                let mut shown: String = other.chars().take(64).collect();
                if shown.len() > MAX_STRING {
                    shown.truncate(0);
                }
                out.frames.push(error_frame(
                    msg_id,
                    &format!("unsupported message type {shown:?}"),
                ));
            }
            None => out.frames.push(error_frame(msg_id, "missing \"msg\"")),
        }
        out
    }

    /// A binary message from the panel. RemoteUI speaks JSON text only, so the session
    /// closes with 1003 (unsupported data, RFC 6455 §7.4.1).
    pub fn handle_binary(&mut self, now: Instant) -> WsOutput {
        let mut out = WsOutput::default();
        if self.is_closed() {
            return out;
        }
        self.seen(now);
        self.close(&mut out, 1003, "binary messages are not accepted");
        out
    }

    /// A pong (or any frame) arrived: the panel is alive.
    pub fn handle_pong(&mut self, now: Instant) {
        self.seen(now);
    }

    /// The peer closed the connection, or the driver lost it: the application forgets it.
    pub fn closed(&mut self, app: &mut App) {
        self.liveness = Liveness::Closed;
        app.close_conn(self.conn);
    }

    /// A deadline passed: send a ping when one is due, or close when the pong is late.
    /// Early calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant, app: &mut App) -> WsOutput {
        let mut out = WsOutput::default();
        match self.liveness {
            Liveness::Idle { ping_at } if now >= ping_at => {
                self.pings += 1;
                out.frames
                    .push(WsFrame::Ping(self.pings.to_be_bytes().to_vec()));
                self.liveness = Liveness::AwaitingPong {
                    deadline: now + self.pong_timeout,
                };
            }
            Liveness::AwaitingPong { deadline } if now >= deadline => {
                self.close(&mut out, 1011, "no pong within the timeout");
                app.close_conn(self.conn);
            }
            _ => {}
        }
        out
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has work: the next ping, or the
    /// pong deadline; `None` once closed. Changes after every `handle_*` call.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.liveness {
            Liveness::Idle { ping_at } => Some(ping_at),
            Liveness::AwaitingPong { deadline } => Some(deadline),
            Liveness::Closed => None,
        }
    }

    fn seen(&mut self, now: Instant) {
        if self.liveness != Liveness::Closed {
            self.liveness = Liveness::Idle {
                ping_at: now + self.interval,
            };
        }
    }

    fn close(&mut self, out: &mut WsOutput, code: u16, reason: &str) {
        self.liveness = Liveness::Closed;
        out.frames.push(WsFrame::Close {
            code,
            reason: String::from(reason),
        });
    }
}

fn envelope(kind: &str, data: Value, msg_id: Option<Value>) -> String {
    let mut o = Map::new();
    o.insert("msg".into(), kind.into());
    o.insert("data".into(), data);
    if let Some(id) = msg_id.filter(|v| v.is_string() || v.is_number()) {
        o.insert("msg_id".into(), id);
    }
    Value::Object(o).to_string()
}

fn error_frame(msg_id: Option<Value>, error: &str) -> WsFrame {
    WsFrame::Text(envelope("error", json!({"error": error}), msg_id))
}

fn text_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn set_state(
    app: &mut App,
    conn: ConnId,
    data: &Value,
    fx: &mut Vec<Effect>,
) -> Result<(), &'static str> {
    let io = text_of(data.get("io").or_else(|| data.get("id"))).ok_or("set_state needs data.io")?;
    let state = text_of(data.get("state").or_else(|| data.get("value")))
        .ok_or("set_state needs data.state")?;
    let (panel, _) = app.conn_panel(conn).ok_or("panel removed")?;
    if !panel.referenced_ios().contains(io.as_str()) {
        return Err("this panel does not show that IO");
    }
    match app.state.ios.set_state(&io, &state) {
        Err(_) => Err("state is too long"),
        Ok(None) => Err("no such IO"),
        Ok(Some(changed)) => {
            // The command always reaches the application; an unchanged state is neither
            // written again nor sent to the panels (a chatty panel would cost a write each).
            fx.push(Effect::SetIoState {
                io: io.clone(),
                state: state.clone(),
            });
            if changed {
                app.broadcast_io(&io, &state, fx);
                app.persist(fx);
            }
            Ok(())
        }
    }
}

/// The states of the IOs `panel` references, as the design's `remote_ui_io_states` data.
pub(crate) fn io_states(app: &App, panel: &RemoteUi) -> Value {
    let mut o = Map::new();
    for id in panel.referenced_ios() {
        if let Some(io) = app.state.ios.get(id) {
            o.insert(String::from(id), io.to_json());
        }
    }
    Value::Object(o)
}

/// The messages a panel gets right after connecting.
pub(crate) fn greeting(app: &App, conn: ConnId) -> Vec<String> {
    let Some((panel, variant)) = app.conn_panel(conn) else {
        return Vec::new();
    };
    let config = match variant {
        Variant::CalaosBase => envelope(
            "remote_ui_config_update",
            panel.calaos_config_update(&app.state.ios),
            None,
        ),
        Variant::RemoteUiDesign => envelope("remote_ui_config", panel.config_json(variant), None),
    };
    vec![
        config,
        envelope("remote_ui_io_states", io_states(app, panel), None),
    ]
}

/// `remote_ui_config_update` for every connection of `panel_id` (after an admin edit),
/// followed by fresh IO states since the referenced set may have changed.
pub(crate) fn config_changed(app: &App, panel_id: &str, fx: &mut Vec<Effect>) {
    let conns: Vec<ConnId> = app
        .conns
        .iter()
        .filter(|(_, c)| c.panel == panel_id)
        .map(|(k, _)| *k)
        .collect();
    for conn in conns {
        let Some((panel, variant)) = app.conn_panel(conn) else {
            continue;
        };
        let data = match variant {
            Variant::CalaosBase => panel.calaos_config_update(&app.state.ios),
            Variant::RemoteUiDesign => json!({"config": panel.config_json(variant)}),
        };
        fx.push(Effect::SendWs {
            conn,
            text: envelope("remote_ui_config_update", data, None),
            supersedes: None,
        });
        fx.push(Effect::SendWs {
            conn,
            text: envelope("remote_ui_io_states", io_states(app, panel), None),
            supersedes: None,
        });
    }
}

/// The GUID RFC 6455 §1.3 appends to the key.
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2: base64 of the SHA-1
/// of the key followed by the protocol's GUID).
#[must_use]
pub fn accept_key(key: &str) -> String {
    use base64::Engine as _;
    use sha1::Digest as _;
    let mut hash = sha1::Sha1::new();
    hash.update(key.as_bytes());
    hash.update(WS_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(hash.finalize())
}

/// Checks the opening handshake's version and key (RFC 6455 §4.2.1) and gives the
/// `Sec-WebSocket-Accept` value; the error is the answer to send (426 for a version other
/// than 13, 400 for a missing or malformed key).
pub(crate) fn handshake_accept(
    req: &crate::http::Request,
) -> Result<String, crate::http::Response> {
    use base64::Engine as _;
    let refuse = |status: u16, message: &str| {
        crate::http::Response::json(status, &json!({"error": message, "status": "error"}))
    };
    match req.header("sec-websocket-version").map(str::trim) {
        Some("13") => {}
        Some(_) => return Err(refuse(426, "unsupported Sec-WebSocket-Version (13 only)")),
        None => return Err(refuse(400, "missing Sec-WebSocket-Version")),
    }
    let Some(key) = req.header("sec-websocket-key").map(str::trim) else {
        return Err(refuse(400, "missing Sec-WebSocket-Key"));
    };
    let decoded = base64::engine::general_purpose::STANDARD.decode(key);
    if !matches!(decoded, Ok(ref nonce) if nonce.len() == 16) {
        return Err(refuse(400, "Sec-WebSocket-Key is not 16 bytes in base64"));
    }
    Ok(accept_key(key))
}

#[cfg(test)]
mod handshake_tests {
    use super::*;
    use crate::http::{Method, Request};

    /// RFC 6455 §1.3's worked example.
    #[test]
    fn accept_key_matches_rfc6455_section_1_3() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    fn upgrade(version: Option<&str>, key: Option<&str>) -> Request {
        let mut r = Request::new(Method::Get, "/api/v3/remote_ui/ws");
        if let Some(v) = version {
            r = r.with_header("Sec-WebSocket-Version", v);
        }
        if let Some(k) = key {
            r = r.with_header("Sec-WebSocket-Key", k);
        }
        r
    }

    #[test]
    fn handshake_refuses_other_versions_missing_or_short_keys() {
        let key = Some("dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(
            handshake_accept(&upgrade(Some("8"), key))
                .unwrap_err()
                .status,
            426
        );
        assert_eq!(
            handshake_accept(&upgrade(None, key)).unwrap_err().status,
            400
        );
        assert_eq!(
            handshake_accept(&upgrade(Some("13"), None))
                .unwrap_err()
                .status,
            400
        );
        let short = handshake_accept(&upgrade(Some("13"), Some("c2hvcnQ="))).unwrap_err();
        assert_eq!(short.status, 400);
        assert!(String::from_utf8_lossy(&short.body).contains("16 bytes"));
        assert_eq!(
            handshake_accept(&upgrade(Some(" 13 "), key)).unwrap(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
