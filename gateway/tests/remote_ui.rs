//! RemoteUI provisioning, the authenticated WebSocket upgrade and panel sessions.

mod common;

use common::*;
use latchkey_gateway::{Effect, Method, Request, WsFrame};
use latchkey_protocol::guard::SigningVariant;
use latchkey_protocol::time::Instant;

fn provision_req(body: &str) -> Request {
    Request::new(Method::Post, "/api/v3/provision/request").with_body(body.as_bytes().to_vec())
}

#[test]
fn calaos_request_gets_calaos_accepted_shape_with_64_hex_token() {
    let mut h = H::new();
    h.set_up();
    h.admin(
        Method::Post,
        "/api/v3/remote_ui",
        r#"{"id":"io_7","name":"Salon","provisioning_code":"K7Q2M9"}"#,
    );
    let (r, fx) = h.send(
        ip(10),
        provision_req(r#"{"code":"K7Q2M9","device_info":{"type":"esp32","mac_address":"24:0A:C4:00:00:01","hardware_id":"luckfox-86-panel","version":"1.2"}}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = json(&r);
    assert_eq!(v["status"], "accepted");
    assert_eq!(v["device_id"], "io_7");
    let token = v["auth_token"].as_str().unwrap();
    assert_eq!(token.len(), 64);
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(v["device_secret"].as_str().unwrap().len(), 64);
    assert_eq!(v["server_config"]["sync_interval"], 1000);
    assert!(
        v["server_config"]["websocket_url"]
            .as_str()
            .unwrap()
            .ends_with("/api/v3/remote_ui/ws")
    );
    assert_eq!(v["remote_ui_config"]["name"], "Salon");
    assert!(v["remote_ui_config"]["pages"].is_array());
    // The secret is persisted before the answer goes out.
    assert!(matches!(fx.first(), Some(Effect::PersistState(_))));
    let p = &h.app.panels()[0];
    assert_eq!(p.param("device_type"), Some("luckfox-86-panel"));
    assert_eq!(p.param("device_version"), Some("1.2"));
}

#[test]
fn design_request_gets_design_success_shape() {
    let mut h = H::new();
    h.set_up();
    h.admin(
        Method::Post,
        "/api/v3/remote_ui",
        r#"{"name":"Living Room Screen","provisioning_code":"ABC123"}"#,
    );
    let (r, _) = h.send(
        ip(11),
        provision_req(r#"{"provisioning_code":"ABC123","device_info":{"type":"esp32_touch_panel","capabilities":{"touch_support":true}}}"#)
            .with_header("Host", "door.local:8443"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = json(&r);
    assert_eq!(v["success"], true);
    assert_eq!(v["remote_ui"]["id"], "remote_ui_ABC123");
    assert_eq!(v["remote_ui"]["auth_token"].as_str().unwrap().len(), 64);
    assert_eq!(
        v["remote_ui"]["websocket_endpoint"],
        "wss://door.local:8443/api/v3/remote_ui/ws"
    );
    assert_eq!(
        v["websocket_endpoint"],
        "wss://door.local:8443/api/v3/remote_ui/ws"
    );
    assert_eq!(v["remote_ui"]["config"]["name"], "Living Room Screen");
    assert_eq!(
        h.app.panels()[0]
            .device_info
            .iter()
            .find(|(k, _)| k == "capabilities")
            .unwrap()
            .1,
        r#"{"touch_support":true}"#
    );
}

#[test]
fn provisioning_errors_use_calaos_status_and_error_shape() {
    let mut h = H::new();
    let cases = [
        ("", 400, "Empty request body"),
        ("{", 400, "Invalid JSON"),
        (r#"{"code":"X1Y2Z3"}"#, 400, "Invalid provisioning request"),
        (
            r#"{"code":"X1Y2Z3","device_info":{"type":"a"}}"#,
            400,
            "Invalid provisioning request",
        ),
        ("[1]", 400, "Invalid provisioning request"),
    ];
    for (i, (body, status, msg)) in cases.iter().enumerate() {
        let (r, _) = h.send(ip(20 + i as u8), provision_req(body));
        assert_eq!(r.status, *status, "{body}");
        let v = json(&r);
        assert_eq!(v["status"], "error");
        assert_eq!(v["error"], *msg);
    }
    let long = "a".repeat(300);
    let (r, _) = h.send(
        ip(30),
        provision_req(&format!(
            r#"{{"code":"C0DE12","device_info":{{"type":"{long}","mac_address":"x"}}}}"#
        )),
    );
    assert_eq!(
        (r.status, json(&r)["error"].clone()),
        (413, "Device info fields too long".into())
    );
    let (r, _) = h.send(ip(31), provision_req(&"x".repeat(1024 * 1024 + 1)));
    assert_eq!(r.status, 413);
}

#[test]
fn device_retries_every_10_s_until_the_admin_adds_its_code() {
    let mut h = H::new();
    h.set_up();
    let body = r#"{"code":"LATE42","device_info":{"type":"esp32","mac_address":"m"}}"#;
    let (r, _) = h.send(ip(40), provision_req(body));
    assert_eq!(
        (r.status, json(&r)["error"].clone()),
        (404, "Invalid provisioning code".into())
    );
    let (r, _) = h.send(ip(40), provision_req(body));
    assert_eq!(
        (r.status, json(&r)["error"].clone()),
        (429, "Too many requests or blacklisted".into())
    );
    assert!(r.header("retry-after").is_some());
    h.advance(10);
    h.admin(
        Method::Post,
        "/api/v3/remote_ui",
        r#"{"name":"Late","provisioning_code":"LATE42"}"#,
    );
    let (r, _) = h.send(ip(40), provision_req(body));
    assert_eq!(r.status, 200, "{}", r.text());
    h.advance(10);
    let (r, _) = h.send(ip(40), provision_req(body));
    assert_eq!(
        (r.status, json(&r)["error"].clone()),
        (409, "Provisioning code already used".into())
    );
}

#[test]
fn more_than_ten_codes_an_hour_blacklists_the_address_and_persists_the_guard() {
    let mut h = H::new();
    let mut saw_ban = false;
    for i in 0..11 {
        let (r, fx) = h.send(
            ip(50),
            provision_req(&format!(
                r#"{{"code":"GUESS{i:02}","device_info":{{"type":"t","mac_address":"m"}}}}"#
            )),
        );
        if i < 10 {
            assert_eq!(r.status, 404);
        } else {
            assert_eq!(r.status, 429);
            saw_ban = fx.iter().any(|e| matches!(e, Effect::PersistGuard(_)));
        }
        h.advance(11);
    }
    assert!(saw_ban);
}

#[test]
fn upgrade_failures_answer_like_calaos_base() {
    let mut h = H::new();
    h.set_up();
    let (_, signer) = h.provision("AUTH01", SigningVariant::CalaosBase, ip(60));
    let check = |r: &latchkey_gateway::Response, status: u16, reason: &str| {
        assert_eq!(r.status, status, "{}", r.text());
        let v = json(r);
        assert_eq!(v["error"], reason);
        assert_eq!(v["status"], "authentication_failed");
    };
    let bare = Request::new(Method::Get, "/api/v3/remote_ui/ws")
        .with_header("Upgrade", "websocket")
        .with_header("Sec-WebSocket-Version", "13")
        .with_header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
    let (r, _) = h.send(ip(61), bare);
    check(&r, 400, "missing_headers");
    // The RFC 6455 handshake is checked before the device's credentials.
    let old = Request::new(Method::Get, "/api/v3/remote_ui/ws")
        .with_header("Upgrade", "websocket")
        .with_header("Sec-WebSocket-Version", "8")
        .with_header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
    let (r, _) = h.send(ip(61), old);
    assert_eq!(r.status, 426, "{}", r.text());
    assert_eq!(r.header("Sec-WebSocket-Version"), Some("13"));

    let good = h.upgrade_request(&signer);
    let mut forged = good.clone();
    for (n, v) in forged.headers.iter_mut() {
        if n == "X-Auth-HMAC" {
            *v = "0".repeat(64);
        }
    }
    let (r, _) = h.send(ip(62), forged);
    check(&r, 403, "invalid_hmac");

    let mut unknown = good.clone();
    for (n, v) in unknown.headers.iter_mut() {
        if n == "Authorization" {
            *v = format!("Bearer {}", "f".repeat(64));
        }
    }
    let (r, _) = h.send(ip(63), unknown);
    check(&r, 401, "invalid_token");

    let (r, _) = h.send(ip(64), good.clone());
    assert_eq!(r.status, 101);
    let (r, _) = h.send(ip(65), good);
    check(&r, 401, "invalid_nonce");

    let stale = h.upgrade_request(&signer);
    h.advance(31);
    let (r, _) = h.send(ip(66), stale);
    check(&r, 401, "invalid_timestamp");

    for _ in 0..3 {
        let req = h.upgrade_request(&signer);
        let _ = h.send(ip(67), req);
    }
    let req = h.upgrade_request(&signer);
    let (r, _) = h.send(ip(67), req);
    check(&r, 429, "rate_limited");
    assert!(r.header("retry-after").is_some());
}

#[test]
fn signing_variant_recorded_at_provisioning_decides_the_signing_string() {
    let mut h = H::new();
    h.set_up();
    let (_, design) = h.provision("DSGN01", SigningVariant::RemoteUiDesign, ip(70));
    let (_, _) = h.connect(&design, ip(71));
    // The same credentials signed the calaos way are refused for a design device.
    let token = design
        .authorization()
        .trim_start_matches("Bearer ")
        .to_string();
    let secret = h.app.panels()[0]
        .credentials
        .as_ref()
        .unwrap()
        .device_secret
        .clone();
    let wrong = latchkey_protocol::guard::Signer::new(
        &token,
        secret.as_bytes(),
        SigningVariant::CalaosBase,
    )
    .unwrap();
    let req = h.upgrade_request(&wrong);
    let (r, _) = h.send(ip(72), req);
    assert_eq!(r.status, 403);
}

fn set_up_panel_with_ios(
    h: &mut H,
    variant: SigningVariant,
) -> (String, latchkey_protocol::guard::Signer) {
    h.set_up();
    for (id, state) in [("light", "false"), ("temp", "21.5"), ("other", "x")] {
        let (r, _) = h.admin(
            Method::Put,
            &format!("/api/v3/io/{id}"),
            &format!(r#"{{"type":"light","name":"{id}","state":"{state}"}}"#),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let (id, signer) = h.provision("PAGE01", variant, ip(80));
    let cfg = r#"{"theme":"dark","pages":[{"id":"1","name":"Home","widgets":[
        {"type":"button","io":"light","x":10,"y":10,"w":100,"h":50},
        {"type":"temp_display","io_id":"temp","x":"120","y":"10"}]}]}"#;
    let (r, _) = h.admin(Method::Put, &format!("/api/v3/remote_ui/{id}/config"), cfg);
    assert_eq!(r.status, 200, "{}", r.text());
    (id, signer)
}

#[test]
fn design_panel_gets_config_then_states_of_exactly_its_referenced_ios() {
    let mut h = H::new();
    let (_, signer) = set_up_panel_with_ios(&mut h, SigningVariant::RemoteUiDesign);
    let (_, texts) = h.connect(&signer, ip(81));
    assert_eq!(texts.len(), 2);
    let cfg: serde_json::Value = serde_json::from_str(&texts[0]).unwrap();
    assert_eq!(cfg["msg"], "remote_ui_config");
    assert_eq!(cfg["data"]["theme"], "dark");
    assert_eq!(cfg["data"]["pages"][0]["widgets"][0]["w"], 100);
    let states: serde_json::Value = serde_json::from_str(&texts[1]).unwrap();
    assert_eq!(states["msg"], "remote_ui_io_states");
    let keys: Vec<&String> = states["data"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["light", "temp"]);
    assert_eq!(states["data"]["temp"]["state"], "21.5");
}

#[test]
fn calaos_panel_gets_config_update_with_io_items_on_connect() {
    let mut h = H::new();
    let (_, signer) = set_up_panel_with_ios(&mut h, SigningVariant::CalaosBase);
    let (_, texts) = h.connect(&signer, ip(82));
    let cfg: serde_json::Value = serde_json::from_str(&texts[0]).unwrap();
    assert_eq!(cfg["msg"], "remote_ui_config_update");
    assert_eq!(cfg["data"]["grid_width"], 3);
    assert_eq!(cfg["data"]["io_items"].as_array().unwrap().len(), 2);
    assert_eq!(cfg["data"]["pages"][0]["widgets"][0]["w"], "100");
}

#[test]
fn io_changes_reach_only_panels_that_reference_them() {
    let mut h = H::new();
    let (_, signer) = set_up_panel_with_ios(&mut h, SigningVariant::CalaosBase);
    let (session, _) = h.connect(&signer, ip(83));
    let (r, fx) = h.admin(
        Method::Post,
        "/api/v3/io/light/state",
        r#"{"state":"true"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let s = sends(&fx);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].0, session.conn());
    assert_eq!(
        s[0].1,
        serde_json::json!({"msg":"io_state","data":{"io_id":"light","state":"true"}})
    );
    assert!(fx.iter().any(
        |e| matches!(e, Effect::SetIoState { io, state } if io == "light" && state == "true")
    ));
    let (_, fx) = h.admin(Method::Post, "/api/v3/io/other/state", r#"{"state":"y"}"#);
    assert!(sends(&fx).is_empty());
}

#[test]
fn io_state_messages_supersede_older_ones_for_the_same_io_and_greetings_never_do() {
    let mut h = H::new();
    let (_, signer) = set_up_panel_with_ios(&mut h, SigningVariant::CalaosBase);
    let req = h.upgrade_request(&signer);
    let (r, fx) = h.send(ip(86), req);
    assert_eq!(r.status, 101, "{}", r.text());
    let supersedes = |fx: &[Effect]| -> Vec<Option<String>> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::SendWs { supersedes, .. } => Some(supersedes.clone()),
                _ => None,
            })
            .collect()
    };
    // The configuration and the states of every IO: never made obsolete by one IO's change.
    assert_eq!(supersedes(&fx), [None, None]);
    let (r, fx) = h.admin(
        Method::Post,
        "/api/v3/io/light/state",
        r#"{"state":"true"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(supersedes(&fx), [Some("light".to_owned())]);
}

#[test]
fn panel_set_state_is_limited_to_referenced_ios_and_broadcast() {
    let mut h = H::new();
    let (_, signer) = set_up_panel_with_ios(&mut h, SigningVariant::RemoteUiDesign);
    let (mut a, _) = h.connect(&signer, ip(84));
    let (b, _) = h.connect(&signer, ip(85));
    let now = h.now();
    let out = a.handle_message(
        now,
        &mut h.app,
        r#"{"msg":"set_state","msg_id":"7","data":{"io":"light","state":"true"}}"#,
    );
    assert_eq!(
        out.frames,
        vec![WsFrame::Text(
            r#"{"msg":"set_state","data":{"success":true},"msg_id":"7"}"#.into()
        )]
    );
    let conns: Vec<_> = sends(&out.effects).into_iter().map(|(c, _)| c).collect();
    assert_eq!(conns, vec![a.conn(), b.conn()]);
    assert_eq!(h.app.ios().get("light").unwrap().state, "true");
    let out = a.handle_message(
        now,
        &mut h.app,
        r#"{"msg":"set_state","data":{"io":"other","state":"1"}}"#,
    );
    assert!(matches!(&out.frames[0], WsFrame::Text(t) if t.contains("does not show that IO")));
    assert_eq!(h.app.ios().get("other").unwrap().state, "x");
    let out = a.handle_message(now, &mut h.app, r#"{"msg":"remote_ui_get_config"}"#);
    assert!(
        matches!(&out.frames[0], WsFrame::Text(t) if t.starts_with(r#"{"msg":"remote_ui_config""#))
    );
}

#[test]
fn a_set_state_that_changes_nothing_is_neither_saved_nor_broadcast() {
    // A chatty panel repeating a state made a state-file write (and a message to every
    // panel) per message.
    let mut h = H::new();
    let (_, signer) = set_up_panel_with_ios(&mut h, SigningVariant::RemoteUiDesign);
    let (mut a, _) = h.connect(&signer, ip(87));
    let (_b, _) = h.connect(&signer, ip(88));
    let now = h.now();
    let set = r#"{"msg":"set_state","msg_id":"8","data":{"io":"light","state":"true"}}"#;
    let saved = |fx: &[Effect]| fx.iter().any(|e| matches!(e, Effect::PersistState(_)));
    let out = a.handle_message(now, &mut h.app, set);
    assert!(saved(&out.effects));
    assert_eq!(sends(&out.effects).len(), 2);
    let out = a.handle_message(now, &mut h.app, set);
    assert_eq!(
        out.frames,
        vec![WsFrame::Text(
            r#"{"msg":"set_state","data":{"success":true},"msg_id":"8"}"#.into()
        )]
    );
    assert!(!saved(&out.effects), "an unchanged state was written again");
    assert!(
        sends(&out.effects).is_empty(),
        "an unchanged state was broadcast"
    );
    // The command itself still reaches the application.
    assert!(
        out.effects
            .iter()
            .any(|e| matches!(e, Effect::SetIoState { io, .. } if io == "light"))
    );
}

#[test]
fn admin_edit_sends_config_update_to_connected_panel() {
    let mut h = H::new();
    let (id, signer) = set_up_panel_with_ios(&mut h, SigningVariant::RemoteUiDesign);
    let (s, _) = h.connect(&signer, ip(86));
    let (r, fx) = h.admin(
        Method::Put,
        &format!("/api/v3/remote_ui/{id}/config"),
        r#"{"brightness":"90"}"#,
    );
    assert_eq!(r.status, 200);
    let msgs = sends(&fx);
    assert_eq!(msgs[0].0, s.conn());
    assert_eq!(msgs[0].1["msg"], "remote_ui_config_update");
    assert_eq!(msgs[0].1["data"]["config"]["brightness"], 90);
    assert_eq!(msgs[1].1["msg"], "remote_ui_io_states");
}

#[test]
fn ping_every_30_s_and_close_when_the_pong_is_late() {
    let mut h = H::new();
    let (_, signer) = set_up_panel_with_ios(&mut h, SigningVariant::CalaosBase);
    let (mut s, _) = h.connect(&signer, ip(87));
    let start = h.secs;
    assert_eq!(s.poll_timeout(), Some(Instant::from_secs(start + 30)));
    assert!(
        s.handle_timeout(Instant::from_secs(start + 29), &mut h.app)
            .frames
            .is_empty()
    );
    let out = s.handle_timeout(Instant::from_secs(start + 30), &mut h.app);
    assert!(matches!(out.frames[0], WsFrame::Ping(_)));
    s.handle_pong(Instant::from_secs(start + 31));
    assert_eq!(s.poll_timeout(), Some(Instant::from_secs(start + 61)));
    let _ = s.handle_timeout(Instant::from_secs(start + 61), &mut h.app);
    assert_eq!(s.poll_timeout(), Some(Instant::from_secs(start + 91)));
    let out = s.handle_timeout(Instant::from_secs(start + 91), &mut h.app);
    assert!(matches!(out.frames[0], WsFrame::Close { code: 1011, .. }));
    assert!(s.is_closed());
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(h.app.connections(), 0);
}

#[test]
fn reset_panel_closes_its_connection_and_refuses_its_token() {
    let mut h = H::new();
    let (id, signer) = set_up_panel_with_ios(&mut h, SigningVariant::CalaosBase);
    let (mut s, _) = h.connect(&signer, ip(88));
    let (r, fx) = h.admin(Method::Post, &format!("/api/v3/remote_ui/{id}/reset"), "");
    assert_eq!(r.status, 200);
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::CloseWs { conn, .. } if *conn == s.conn()))
    );
    let now = h.now();
    let out = s.handle_message(now, &mut h.app, r#"{"msg":"remote_ui_get_config"}"#);
    assert!(matches!(out.frames[0], WsFrame::Close { code: 1008, .. }));
    let req = h.upgrade_request(&signer);
    let (r, _) = h.send(ip(89), req);
    assert_eq!(r.status, 401);
}

#[test]
fn list_and_status_need_admin_and_show_online_state() {
    let mut h = H::new();
    let (id, signer) = set_up_panel_with_ios(&mut h, SigningVariant::CalaosBase);
    let (r, _) = h.send(ip(90), Request::new(Method::Get, "/api/v3/remote_ui/list"));
    assert_eq!(r.status, 401);
    let _s = h.connect(&signer, ip(91));
    let (r, _) = h.admin(Method::Get, "/api/v3/remote_ui/list", "");
    let v = json(&r);
    assert_eq!(v["remote_uis"][0]["is_online"], true);
    assert_eq!(v["remote_uis"][0]["is_provisioned"], true);
    assert_eq!(v["remote_uis"][0]["last_seen"], "2026-01-01T00:00:00Z");
    let (r, _) = h.admin(Method::Get, &format!("/api/v3/remote_ui/status/{id}"), "");
    let v = json(&r);
    assert_eq!(v["referenced_ios"], serde_json::json!(["light", "temp"]));
    assert_eq!(v["signing_variant"], "calaos-base");
    let (r, _) = h.admin(Method::Get, "/api/v3/remote_ui/status/nope", "");
    assert_eq!(r.status, 404);
}

#[test]
fn config_limits_are_enforced_with_clear_messages() {
    let mut h = H::new();
    let (id, _) = set_up_panel_with_ios(&mut h, SigningVariant::CalaosBase);
    let pages: Vec<String> = (0..51).map(|i| format!(r#"{{"id":"{i}"}}"#)).collect();
    let (r, _) = h.admin(
        Method::Put,
        &format!("/api/v3/remote_ui/{id}/config"),
        &format!(r#"{{"pages":[{}]}}"#, pages.join(",")),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        json(&r)["error"],
        "remote_ui remote_ui_PAGE01: 51 pages, at most 50 are allowed"
    );
    let (r, _) = h.admin(
        Method::Put,
        &format!("/api/v3/remote_ui/{id}/config"),
        &format!(r#"{{"name":"{}"}}"#, "n".repeat(256)),
    );
    assert_eq!(r.status, 400);
    assert!(
        json(&r)["error"]
            .as_str()
            .unwrap()
            .contains("256 bytes, at most 255")
    );
}

#[test]
fn what_a_device_reports_never_pushes_a_panel_past_its_parameter_limit() {
    let mut h = H::new();
    h.set_up();
    h.admin(
        Method::Post,
        "/api/v3/remote_ui",
        r#"{"id":"io_9","name":"Hall","provisioning_code":"P4X8N2"}"#,
    );
    // The admin fills the panel up to the limit of parameters.
    let have = h.app.panels()[0].params.len();
    let extra: Vec<String> = (have..latchkey_gateway::model::MAX_ATTRIBUTES)
        .map(|i| format!(r#""p{i}":"v""#))
        .collect();
    let (r, _) = h.admin(
        Method::Put,
        "/api/v3/remote_ui/io_9/config",
        &format!("{{{}}}", extra.join(",")),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        h.app.panels()[0].params.len(),
        latchkey_gateway::model::MAX_ATTRIBUTES
    );
    // The device's reports that would add parameters are dropped, not stored past the limit.
    let (r, _) = h.send(
        ip(10),
        provision_req(
            r#"{"code":"P4X8N2","device_info":{"type":"esp32","mac_address":"24:0A:C4:00:00:09","hardware_id":"hw","version":"2.0"}}"#,
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let panel = &h.app.panels()[0];
    assert_eq!(panel.params.len(), latchkey_gateway::model::MAX_ATTRIBUTES);
    assert!(panel.validate().is_ok());
    // The admin can still edit the panel (a panel past the limit would refuse every edit).
    let (r, _) = h.admin(
        Method::Put,
        "/api/v3/remote_ui/io_9/config",
        r#"{"name":"Hall 2"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn a_binary_message_closes_the_session_with_1003() {
    let mut h = H::new();
    h.set_up();
    let (_, signer) = h.provision("B1N4RY", SigningVariant::CalaosBase, ip(50));
    let (mut session, _) = h.connect(&signer, ip(50));
    let out = session.handle_binary(h.now().instant);
    assert!(matches!(
        out.frames.as_slice(),
        [WsFrame::Close { code: 1003, .. }]
    ));
    assert!(session.is_closed());
    // Nothing more is answered once closed.
    let later = session.handle_message(h.now(), &mut h.app, r#"{"msg":"remote_ui_get_config"}"#);
    assert!(later.frames.is_empty());
}

#[test]
fn a_provisioning_whose_state_write_failed_is_taken_back_and_the_device_provisions_again() {
    let mut h = H::new();
    h.set_up();
    h.admin(
        Method::Post,
        "/api/v3/remote_ui",
        r#"{"id":"io_8","name":"Hall","provisioning_code":"K7Q2M8"}"#,
    );
    let body = r#"{"code":"K7Q2M8","device_info":{"type":"esp32","mac_address":"24:0A:C4:00:00:02","hardware_id":"luckfox-86-panel","version":"1.2"}}"#;
    let (r, fx) = h.send(ip(11), provision_req(body));
    assert_eq!(r.status, 200, "{}", r.text());
    let lost_token = json(&r)["auth_token"].as_str().unwrap().to_owned();
    let undo: Vec<_> = fx
        .into_iter()
        .filter_map(|e| match e {
            Effect::UndoIfNotSaved(u) => Some(u),
            _ => None,
        })
        .collect();
    assert_eq!(undo.len(), 1);
    let shown = format!("{:?}", undo[0]);
    assert!(!shown.contains(&lost_token), "{shown}");
    // The state write failed (the driver answered 500): the provisioning is taken back.
    let fx = h.app.undo(undo[0].clone());
    assert!(fx.iter().any(|e| matches!(e, Effect::PersistState(_))));
    // The device retries with its code (every 10 s) and gets new credentials (not 409).
    h.advance(10);
    let (r, _) = h.send(ip(11), provision_req(body));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_ne!(json(&r)["auth_token"], lost_token.as_str());
    // An undo that comes late (the panel was provisioned anew since) takes nothing back.
    assert!(h.app.undo(undo[0].clone()).is_empty());
    h.advance(10);
    let (r, _) = h.send(ip(11), provision_req(body));
    assert_eq!(r.status, 409, "{}", r.text());
}

/// Provisions the panel already added with `code` (calaos_base shape) from `peer`.
fn provision_added(
    h: &mut H,
    code: &str,
    peer: std::net::IpAddr,
) -> latchkey_protocol::guard::Signer {
    let body = format!(
        r#"{{"code":"{code}","device_info":{{"type":"esp32","mac_address":"AA:BB:CC:00:00:01","hardware_id":"waveshare-86-panel"}}}}"#
    );
    let (r, _) = h.send(peer, provision_req(&body));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = json(&r);
    latchkey_protocol::guard::Signer::new(
        v["auth_token"].as_str().unwrap(),
        v["device_secret"].as_str().unwrap().as_bytes(),
        SigningVariant::CalaosBase,
    )
    .unwrap()
}

/// The replay cache is keyed by `DeviceId`: a nonce recorded before a restart is still
/// refused after it, whichever order the panels were provisioned in (ids were handed out in
/// registration order, and again in state order on restore).
#[test]
fn a_captured_upgrade_is_refused_after_a_restart_whatever_order_panels_provisioned_in() {
    let mut h = H::new();
    h.set_up();
    for code in ["ORDR01", "ORDR02"] {
        let (r, _) = h.admin(
            Method::Post,
            "/api/v3/remote_ui",
            &format!(r#"{{"name":"Panel {code}","provisioning_code":"{code}"}}"#),
        );
        assert_eq!(r.status, 201, "{}", r.text());
    }
    // The second panel in the state provisions first.
    let second = provision_added(&mut h, "ORDR02", ip(90));
    let _first = provision_added(&mut h, "ORDR01", ip(91));
    let captured = h.upgrade_request(&second);
    let (r, _) = h.send(ip(92), captured.clone());
    assert_eq!(r.status, 101, "{}", r.text());
    let (r, _) = h.send(ip(93), captured.clone());
    assert_eq!(r.status, 401, "a replay before the restart is refused");

    // Graceful restart: state and guard snapshot written, read back 5 s later.
    let state = h.app.state_json();
    let guard = h.app.guard_snapshot(h.now());
    h.advance(5);
    let now = h.now();
    h.app = latchkey_gateway::App::restore(
        latchkey_gateway::AppConfig::for_tests(),
        now,
        &mut h.rng,
        &state,
        Some(&guard),
    )
    .unwrap();
    // The timestamp still passes (±30 s): only the replay cache stands in the way.
    let (r, _) = h.send(ip(94), captured);
    assert_eq!(r.status, 401, "replay accepted after restart: {}", r.text());
    assert_eq!(json(&r)["error"], "invalid_nonce");
}

/// Re-importing io.xml with a panel's own credentials registers it again; that does not
/// reopen a replay of its last upgrade (it got a new `DeviceId`, and with it an empty share
/// of the replay cache).
#[test]
fn a_captured_upgrade_is_refused_after_an_io_xml_reimport_of_the_same_panel() {
    let mut h = H::new();
    h.set_up();
    let (_, signer) = h.provision("XMLR01", SigningVariant::CalaosBase, ip(95));
    let captured = h.upgrade_request(&signer);
    let (r, _) = h.send(ip(96), captured.clone());
    assert_eq!(r.status, 101, "{}", r.text());
    let (r, _) = h.admin(Method::Get, "/api/v3/io.xml", "");
    assert_eq!(r.status, 200, "{}", r.text());
    let xml = r.text();
    let (r, _) = h.admin(Method::Post, "/api/v3/io.xml", &xml);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(json(&r)["replaced"], 1);
    h.advance(2);
    let (r, _) = h.send(ip(97), captured);
    assert_eq!(
        r.status,
        401,
        "replay accepted after re-import: {}",
        r.text()
    );
}

/// An io.xml import whose panel carries an `auth_token` another panel holds (kept, or in
/// the same file), or credentials the guard refuses, is refused as a whole, naming the
/// panel: it answered 200 and showed the panel provisioned while its device was refused on
/// every upgrade (the directory had dropped the duplicate).
#[test]
fn io_xml_import_never_accepts_credentials_no_device_can_use() {
    let mut h = H::new();
    h.set_up();
    let (_, signer_a) = h.provision("AAAA1", SigningVariant::CalaosBase, ip(60));
    let token_a = h.app.panels()[0]
        .credentials
        .as_ref()
        .unwrap()
        .auth_token
        .clone();
    let secret_b = "b".repeat(64);
    let room = |panels: &str| {
        format!(
            r#"<calaos:ioconfig xmlns:calaos="http://www.calaos.fr"><calaos:home><calaos:room name="Hall" type="hall">{panels}</calaos:room></calaos:home></calaos:ioconfig>"#
        )
    };
    let panel = |id: &str, code: &str, token: &str| {
        format!(
            r#"<calaos:remote_ui id="{id}" name="{id}" provisioning_code="{code}" auth_token="{token}" device_secret="{secret_b}"/>"#
        )
    };
    let other = "c".repeat(64);
    for (xml, named) in [
        // A kept panel's token.
        (
            room(&panel("b", "BBBB1", &token_a)),
            "panel b has the auth_token",
        ),
        // Two panels of the file with one token.
        (
            room(&(panel("c", "CCCC1", &other) + &panel("d", "DDDD1", &other))),
            "panel d has the auth_token",
        ),
        // A token the guard refuses (a space is outside visible ASCII).
        (
            room(&panel("e", "EEEE1", "bad token")),
            "panel e's credentials cannot be used",
        ),
    ] {
        let (r, _) = h.admin(Method::Post, "/api/v3/io.xml", &xml);
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().contains(named), "{}", r.text());
        assert_eq!(h.app.panels().len(), 1, "nothing was imported");
    }
    // Panel a still connects.
    let req = h.upgrade_request(&signer_a);
    let (up, _) = h.send(ip(61), req);
    assert_eq!(up.status, 101, "{}", up.text());
}

/// Ids may hold any text of 1 to 255 bytes; the `{id}` routes percent-decode each path
/// segment, so a panel or IO named with a space or a `/` is reachable (the raw segment was
/// compared: 404).
#[test]
fn api_reaches_a_panel_whose_id_needs_percent_encoding() {
    let mut h = H::new();
    h.set_up();
    for (id, path) in [("hall panel", "hall%20panel"), ("a/b", "a%2Fb")] {
        let (r, _) = h.admin(
            Method::Post,
            "/api/v3/remote_ui",
            &format!(r#"{{"id":"{id}","name":"Hall","provisioning_code":"HALL1"}}"#),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        let (r, _) = h.admin(Method::Get, &format!("/api/v3/remote_ui/status/{path}"), "");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(json(&r)["id"], id, "{}", r.text());
        let (r, _) = h.admin(Method::Delete, &format!("/api/v3/remote_ui/{path}"), "");
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let (r, _) = h.admin(Method::Put, "/api/v3/io/a%20b", r#"{"name":"Lamp"}"#);
    assert!(r.status < 300, "{}", r.text());
    let (r, _) = h.admin(Method::Get, "/api/v3/io", "");
    assert!(
        json(&r)
            .as_array()
            .unwrap()
            .iter()
            .any(|io| io["id"] == "a b"),
        "{}",
        r.text()
    );
    // Not UTF-8 once decoded: refused, naming why.
    let (r, _) = h.admin(Method::Get, "/api/v3/remote_ui/status/%FF", "");
    assert_eq!(r.status, 400, "{}", r.text());
}

/// Two panels whose tokens give the same [`DeviceId::from_token`] (32 bits: rare, but
/// found here by a birthday search) both connect: the second gets the next id rather than
/// replacing the first in the device directory.
#[test]
fn two_panels_whose_tokens_share_a_device_id_both_connect() {
    use latchkey_protocol::guard::{DeviceId, Signer};
    // SHA-256("latchkey device id" ‖ token), low 32 bits: 946127092 for both.
    let (t1, t2) = (format!("{:064x}", 80_926), format!("{:064x}", 116_461));
    assert_eq!(DeviceId::from_token(&t1), DeviceId::from_token(&t2));
    let mut h = H::new();
    h.set_up();
    let secret = "5".repeat(64);
    let xml = format!(
        r#"<calaos:ioconfig xmlns:calaos="http://www.calaos.fr"><calaos:home><calaos:room name="Hall" type="hall">
<calaos:remote_ui id="p1" name="One" provisioning_code="PPPP1" auth_token="{t1}" device_secret="{secret}"/>
<calaos:remote_ui id="p2" name="Two" provisioning_code="PPPP2" auth_token="{t2}" device_secret="{secret}"/>
</calaos:room></calaos:home></calaos:ioconfig>"#
    );
    let (r, _) = h.admin(Method::Post, "/api/v3/io.xml", &xml);
    assert_eq!(r.status, 200, "{}", r.text());
    for (i, token) in [&t1, &t2].into_iter().enumerate() {
        let signer = Signer::new(token, secret.as_bytes(), SigningVariant::CalaosBase).unwrap();
        let req = h.upgrade_request(&signer);
        let (up, _) = h.send(ip(70 + i as u8), req);
        assert_eq!(up.status, 101, "panel {}: {}", i + 1, up.text());
    }
}

/// `Retry-After` is whole seconds rounded up: a device waiting exactly that long is let in
/// (9.5 s left was sent as 9, and the retry was refused again).
#[test]
fn retry_after_rounds_the_wait_up_so_a_device_that_waits_it_is_let_in() {
    let mut h = H::new();
    h.set_up();
    let body = r#"{"code":"WAIT42","device_info":{"type":"esp32","mac_address":"m"}}"#;
    let at = |ms: u64| latchkey_protocol::guard::Now::new(Instant::from_millis(ms), T0 + ms / 1000);
    let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::from_seed([3; 32]);
    let (r, _) = h
        .app
        .handle_request(at(1_000), ip(41), &provision_req(body), &mut rng);
    assert_eq!(r.status, 404, "{}", r.text());
    let (r, _) = h
        .app
        .handle_request(at(1_500), ip(41), &provision_req(body), &mut rng);
    assert_eq!(r.status, 429, "{}", r.text());
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert_eq!(wait, 10);
    let (r, _) = h.app.handle_request(
        at(1_500 + wait * 1000),
        ip(41),
        &provision_req(body),
        &mut rng,
    );
    assert_eq!(
        r.status,
        404,
        "refused again after waiting Retry-After: {}",
        r.text()
    );
}

/// An import may move a token from one replaced panel to another (A takes B's, B gets a new
/// one): both devices connect afterwards (A was registered while B still held the token, the
/// directory refused it, and A showed provisioned while its device was refused).
#[test]
fn an_import_moving_a_token_between_replaced_panels_leaves_both_usable() {
    use latchkey_protocol::guard::Signer;
    let mut h = H::new();
    h.set_up();
    let secret = "7".repeat(64);
    let import = |h: &mut H, a: &str, b: &str| {
        let xml = format!(
            r#"<calaos:ioconfig xmlns:calaos="http://www.calaos.fr"><calaos:home><calaos:room name="Hall" type="hall">
<calaos:remote_ui id="a" name="A" provisioning_code="AAAA9" auth_token="{a}" device_secret="{secret}"/>
<calaos:remote_ui id="b" name="B" provisioning_code="BBBB9" auth_token="{b}" device_secret="{secret}"/>
</calaos:room></calaos:home></calaos:ioconfig>"#
        );
        let (r, _) = h.admin(Method::Post, "/api/v3/io.xml", &xml);
        assert_eq!(r.status, 200, "{}", r.text());
    };
    let (t1, t2, t3) = ("1".repeat(64), "2".repeat(64), "3".repeat(64));
    import(&mut h, &t1, &t2);
    import(&mut h, &t2, &t3);
    for (i, token) in [&t2, &t3].into_iter().enumerate() {
        let signer = Signer::new(token, secret.as_bytes(), SigningVariant::CalaosBase).unwrap();
        let req = h.upgrade_request(&signer);
        let (up, _) = h.send(ip(80 + i as u8), req);
        assert_eq!(up.status, 101, "panel {}: {}", i + 1, up.text());
    }
}
