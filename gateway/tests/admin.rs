//! The admin pages, sessions, CSRF, security headers, U-tec compatibility and restarts.

mod common;

use common::*;
use latchkey_gateway::{App, AppConfig, Effect, Method, Request};
use latchkey_protocol::guard::SigningVariant;

fn login(h: &mut H, password: &str, peer: u8) -> latchkey_gateway::Response {
    let (r, _) = h.send(ip(peer), Request::new(Method::Get, "/login"));
    let pre = cookie_value(&r, "__Host-lk_pre").unwrap();
    let csrf = hidden_value(&r.text(), "csrf").unwrap();
    let (r, _) = h.send(
        ip(peer),
        Request::new(Method::Post, "/login")
            .with_header("Cookie", &format!("__Host-lk_pre={pre}"))
            .with_body(format!("csrf={csrf}&user=admin&password={password}").into_bytes()),
    );
    r
}

#[test]
fn setup_link_works_once_and_sets_host_prefixed_strict_cookie() {
    let mut h = H::new();
    let path = h.app.setup_path().unwrap();
    assert!(path.starts_with("/setup?token=") && path.len() == "/setup?token=".len() + 64);
    let (r, _) = h.send(ip(1), Request::new(Method::Get, "/setup?token=wrong"));
    assert_eq!(r.status, 403);
    h.set_up();
    assert_eq!(h.app.setup_path(), None);
    let (r, _) = h.send(ip(1), Request::new(Method::Get, &path));
    assert_eq!(r.status, 303);
    let r = login(&mut h, PASSWORD, 2);
    assert_eq!(r.status, 303);
    let c = set_cookie_header(&r, "__Host-lk_session").unwrap();
    for flag in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(c.contains(flag), "{c}");
    }
    assert!(!c.contains("Domain"));
}

#[test]
fn setup_refuses_weak_passwords_naming_each_rule() {
    let mut h = H::new();
    let path = h.app.setup_path().unwrap();
    let (r, _) = h.send(ip(1), Request::new(Method::Get, &path));
    let pre = cookie_value(&r, "__Host-lk_pre").unwrap();
    let csrf = hidden_value(&r.text(), "csrf").unwrap();
    let token = path.split("token=").nth(1).unwrap();
    let (r, _) = h.send(
        ip(1),
        Request::new(Method::Post, "/setup")
            .with_header("Cookie", &format!("__Host-lk_pre={pre}"))
            .with_body(format!("token={token}&csrf={csrf}&password=abc&confirm=abc").into_bytes()),
    );
    assert_eq!(r.status, 400);
    let t = r.text();
    assert!(
        t.contains("use at least 8 characters (this one has 3)"),
        "{t}"
    );
    assert!(t.contains("add an upper-case letter"));
    assert!(t.contains("add a digit"));
}

#[test]
fn forms_without_the_session_csrf_token_are_refused() {
    let mut h = H::new();
    h.set_up();
    let cookie = h.cookie.clone().unwrap();
    let (r, fx) = h.send(
        ip(3),
        Request::new(Method::Post, "/admin/panels")
            .with_header("Cookie", &format!("__Host-lk_session={cookie}"))
            .with_body(b"name=x&code=ABCD12".to_vec()),
    );
    assert_eq!(r.status, 403);
    assert!(fx.is_empty());
    let (r, _) = h.send(
        ip(3),
        Request::new(Method::Post, "/api/v3/remote_ui")
            .with_header("Cookie", &format!("__Host-lk_session={cookie}"))
            .with_body(br#"{"name":"x","code":"ABCD12"}"#.to_vec()),
    );
    assert_eq!(r.status, 403);
    // With the token the form goes through.
    let csrf = h.csrf.clone().unwrap();
    let (r, _) = h.send(
        ip(3),
        Request::new(Method::Post, "/admin/panels")
            .with_header("Cookie", &format!("__Host-lk_session={cookie}"))
            .with_body(format!("csrf={csrf}&name=x&code=ABCD12").into_bytes()),
    );
    assert_eq!(r.status, 303);
    assert_eq!(h.app.panels().len(), 1);
}

#[test]
fn five_wrong_passwords_block_the_address_with_a_clear_message() {
    // Hashing under the application (`handle_request`) and apart from it, as the server
    // does it (`password_work`, `run`, `handle_request_with`): the same answers.
    for split in [false, true] {
        let mut h = H::with_split(split);
        h.set_up();
        for _ in 0..5 {
            assert_eq!(login(&mut h, "Wrong1Password", 9).status, 401);
        }
        let r = login(&mut h, PASSWORD, 9);
        assert_eq!(r.status, 429);
        assert!(
            r.text()
                .contains("Too many failed logins. Try again in 5 minutes."),
            "{}",
            r.text()
        );
        // Another address is not blocked.
        assert_eq!(login(&mut h, PASSWORD, 10).status, 303);
        h.advance(301);
        assert_eq!(login(&mut h, PASSWORD, 9).status, 303);
    }
}

#[test]
fn every_response_carries_the_security_headers() {
    let mut h = H::new();
    for target in ["/login", "/health", "/api/v3/remote_ui/list", "/nope"] {
        let (r, _) = h.send(ip(4), Request::new(Method::Get, target));
        let csp = r.header("content-security-policy").unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
        assert!(
            r.header("strict-transport-security")
                .unwrap()
                .starts_with("max-age=")
        );
    }
}

#[test]
fn html_escapes_admin_supplied_names() {
    let mut h = H::new();
    h.set_up();
    h.admin(
        Method::Post,
        "/api/v3/remote_ui",
        r#"{"name":"<script>alert(1)</script>","provisioning_code":"XSS123"}"#,
    );
    let (r, _) = h.admin(Method::Get, "/admin", "");
    let t = r.text();
    assert!(!t.contains("<script>alert"));
    assert!(t.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[test]
fn password_change_rotates_the_session_and_logs_out_others() {
    for split in [false, true] {
        password_change_rotates_the_session_and_logs_out_others_when(split);
    }
}

fn password_change_rotates_the_session_and_logs_out_others_when(split: bool) {
    let mut h = H::with_split(split);
    h.set_up();
    let other = cookie_value(&login(&mut h, PASSWORD, 5), "__Host-lk_session").unwrap();
    let csrf = h.csrf.clone().unwrap();
    let old = h.cookie.clone().unwrap();
    let (r, fx) = h.send(
        ip(200),
        Request::new(Method::Post, "/admin/password")
            .with_header("Cookie", &format!("__Host-lk_session={old}"))
            .with_body(
                format!(
                    "csrf={csrf}&current={PASSWORD}&password=New2Password&confirm=New2Password"
                )
                .into_bytes(),
            ),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(fx.iter().any(|e| matches!(e, Effect::PersistState(_))));
    let new = cookie_value(&r, "__Host-lk_session").unwrap();
    assert_ne!(new, old);
    for stale in [old, other] {
        let (r, _) = h.send(
            ip(5),
            Request::new(Method::Get, "/admin")
                .with_header("Cookie", &format!("__Host-lk_session={stale}")),
        );
        assert_eq!(r.status, 303);
    }
    assert_eq!(login(&mut h, "New2Password", 6).status, 303);
}

#[test]
fn dashboard_shows_token_status_and_certificate_days_left() {
    let mut h = H::new();
    h.set_up();
    let (_, fx) = h.admin(Method::Post, "/admin/certificate", "cert_pem=x&key_pem=y");
    assert!(fx.is_empty());
    let (r, _) = h.admin(Method::Get, "/admin", "");
    assert!(r.text().contains("No token keeper is running"));
    // A self-signed certificate from latchkey-pki.
    let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::from_seed([3; 32]);
    let key = latchkey_pki::key::PrivateKey::generate(latchkey_pki::key::KeyType::P256, &mut rng)
        .unwrap();
    let params =
        latchkey_pki::request::SelfSignedParams::server("door.local", &[], T0 - 86_400, 91)
            .unwrap();
    let cert = latchkey_pki::request::Certificate::self_signed(&params, &key, &mut rng).unwrap();
    let cert_pem = cert.to_pem();
    h.app.set_certificate(cert_pem.as_bytes()).unwrap();
    let (r, _) = h.admin(Method::Get, "/admin", "");
    let t = r.text();
    assert!(t.contains("<th>Days left</th><td>90"), "{t}");
    // An upload whose key does not match is refused with pki's message; the right key passes.
    let other = latchkey_pki::key::PrivateKey::generate(latchkey_pki::key::KeyType::P256, &mut rng)
        .unwrap();
    let csrf = h.csrf.clone().unwrap();
    let form = |k: &str| {
        let enc: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("csrf", &csrf)
            .append_pair("cert_pem", &cert_pem)
            .append_pair("key_pem", k)
            .finish();
        enc
    };
    let body = form(other.to_pem().as_str());
    let (r, fx) = h.admin(Method::Post, "/admin/certificate", &body);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("Refused:"));
    assert!(fx.is_empty());
    let body = form(key.to_pem().as_str());
    let (r, fx) = h.admin(Method::Post, "/admin/certificate", &body);
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(matches!(fx[0], Effect::SwapCertificate { .. }));
}

#[test]
fn utec_health_and_config_mask_secrets_and_need_admin_to_change() {
    let mut h = H::new();
    let (r, _) = h.send(ip(7), Request::new(Method::Get, "/health"));
    let v = json(&r);
    assert_eq!(v["status"], "ok");
    assert_eq!(v["token_valid"], false);
    assert_eq!(v["auto_refresh_enabled"], true);
    assert!(v["token_expires_at"].is_null());
    let (r, _) = h.send(ip(7), Request::new(Method::Post, "/api/oauth/refresh"));
    assert_eq!(r.status, 401);
    h.set_up();
    let (r, fx) = h.admin(
        Method::Post,
        "/api/config",
        r#"{"secret_key":"s3cr3t","auto_refresh_enabled":false,"refresh_buffer_minutes":10}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::TokenSettingsChanged {
            auto_refresh_enabled: false,
            refresh_buffer_minutes: 10
        }
    )));
    let (r, _) = h.send(ip(7), Request::new(Method::Get, "/api/config"));
    let v = json(&r);
    assert_eq!(v["secret_key"], "***");
    assert_eq!(v["refresh_buffer_minutes"], 10);
    // Posting the mask back keeps the secret.
    h.admin(Method::Post, "/api/config", r#"{"secret_key":"***"}"#);
    assert_eq!(h.app.utec_settings().secret_key, "s3cr3t");
    let (r, _) = h.admin(
        Method::Post,
        "/api/config",
        r#"{"refresh_buffer_minutes":0}"#,
    );
    assert_eq!(r.status, 400);
    let (r, fx) = h.admin(Method::Post, "/api/oauth/refresh", "");
    assert_eq!(r.status, 202);
    assert!(matches!(fx[0], Effect::RefreshToken));
}

#[test]
fn restart_keeps_everything_except_sessions() {
    let mut h = H::new();
    h.set_up();
    h.admin(
        Method::Put,
        "/api/v3/io/light",
        r#"{"type":"light","name":"L","state":"true"}"#,
    );
    let (_, signer) = h.provision("KEEP01", SigningVariant::CalaosBase, ip(8));
    let state = h.app.state_json();
    let guard = h.app.guard_snapshot(h.now());
    let now = h.now();
    h.app = App::restore(
        AppConfig::for_tests(),
        now,
        &mut h.rng,
        &state,
        Some(&guard),
    )
    .unwrap();
    assert_eq!(h.app.setup_path(), None);
    assert_eq!(h.app.ios().get("light").unwrap().state, "true");
    // The session is gone; the device still authenticates; the password still works.
    let (r, _) = h.admin(Method::Get, "/api/session", "");
    assert_eq!(r.status, 401);
    h.connect(&signer, ip(9));
    assert_eq!(login(&mut h, PASSWORD, 11).status, 303);
}

#[test]
fn io_xml_round_trips_through_the_admin_api() {
    let mut h = H::new();
    h.set_up();
    let fixture = include_str!("fixtures/calaos_base_io.xml");
    let (r, _) = h.admin(Method::Post, "/api/v3/io.xml", fixture);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(json(&r)["added"], 2);
    // The imported provisioned panel can connect with its stored credentials.
    let p = h.app.panels()[0].clone();
    let c = p.credentials.unwrap();
    let signer = latchkey_protocol::guard::Signer::new(
        &c.auth_token,
        c.device_secret.as_bytes(),
        SigningVariant::CalaosBase,
    )
    .unwrap();
    h.connect(&signer, ip(12));
    let (r, _) = h.admin(Method::Get, "/api/v3/io.xml?layout=design", "");
    let back = latchkey_gateway::xml::import(&r.text()).unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(back[0].credentials, h.app.panels()[0].credentials);
}

#[test]
fn a_refused_io_xml_import_changes_nothing() {
    let mut h = H::new();
    h.set_up();
    let fixture = include_str!("fixtures/calaos_base_io.xml");
    // A panel already waiting for the code one imported panel carries.
    let (r, _) = h.admin(
        Method::Post,
        "/api/v3/remote_ui",
        r#"{"id":"io_7","name":"Hall","provisioning_code":"ZX81AB"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let before = h.app.panels().to_vec();
    let (r, fx) = h.admin(Method::Post, "/api/v3/io.xml", fixture);
    assert_eq!(r.status, 400, "{}", r.text());
    let message = json(&r)["error"].as_str().unwrap().to_owned();
    assert!(
        message.contains("ZX81AB") && message.contains("nothing was imported"),
        "{message}"
    );
    assert_eq!(h.app.panels(), &before[..]);
    assert!(!fx.iter().any(|e| matches!(e, Effect::PersistState(_))));

    // Too many panels in all: refused before the first one is added.
    let (r, _) = h.admin(Method::Delete, "/api/v3/remote_ui/io_7", "");
    assert!(r.status < 300, "{}", r.text());
    for i in 0..latchkey_gateway::model::MAX_PANELS - 1 {
        let (r, _) = h.admin(
            Method::Post,
            "/api/v3/remote_ui",
            &format!(r#"{{"id":"p{i}","name":"P{i}","provisioning_code":"CODE{i:04}"}}"#),
        );
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let before = h.app.panels().to_vec();
    let (r, fx) = h.admin(Method::Post, "/api/v3/io.xml", fixture);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(json(&r)["error"].as_str().unwrap().contains("at most"));
    assert_eq!(h.app.panels(), &before[..]);
    assert!(!fx.iter().any(|e| matches!(e, Effect::PersistState(_))));
}

#[test]
fn plain_http_port_redirects_to_https() {
    let req = Request::new(Method::Get, "/admin").with_header("Host", "127.0.0.1:8080");
    let r = latchkey_gateway::redirect_to_https(&req, 8443);
    assert_eq!(r.header("location"), Some("https://127.0.0.1:8443/admin"));
}

#[test]
fn debug_output_of_the_app_and_its_effects_holds_no_secret() {
    let mut h = H::new();
    let path = h.app.setup_path().unwrap();
    let token = path.split("token=").nth(1).unwrap().to_string();
    let shown = format!("{:?}", h.app);
    assert!(!shown.contains(&token), "{shown}");
    h.set_up();
    let (_, signer) = h.provision("K7Q2M9", SigningVariant::CalaosBase, ip(30));
    let panel = h.app.panels()[0].clone();
    let secret = panel.credentials.unwrap().device_secret;
    // Every effect of a provisioning (the state with the new secret is persisted).
    let (_, fx) = h.admin(
        Method::Put,
        &format!("/api/v3/remote_ui/{}/config", panel.id),
        r#"{"name":"Renamed"}"#,
    );
    assert!(fx.iter().any(|e| matches!(e, Effect::PersistState(_))));
    let shown = format!("{fx:?}{:?}", h.app);
    assert!(!shown.contains(&secret), "{shown}");
    assert!(!shown.contains(signer.authorization()), "{shown}");
    let swap = Effect::SwapCertificate {
        cert_pem: "-----BEGIN CERTIFICATE-----".into(),
        key_pem: "-----BEGIN PRIVATE KEY-----\nsecret-key-bytes".into(),
        roots_pem: None,
    };
    let shown = format!("{swap:?}");
    assert!(!shown.contains("secret-key-bytes"), "{shown}");
}

/// Values reach io.xml from the admin API and from devices too: a character XML 1.0 cannot
/// carry is refused there (a device's metadata field is dropped, as a bad name is), while
/// tabs and line breaks are kept and survive both layouts.
#[test]
fn io_xml_values_from_admins_and_devices_are_ones_xml_can_carry() {
    let mut h = H::new();
    h.set_up();
    let (r, _) = h.admin(
        Method::Post,
        "/api/v3/remote_ui",
        r#"{"id":"bad","name":"Bell\u0007","provisioning_code":"B4D0"}"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("cannot carry"), "{}", r.text());
    let (r, _) = h.admin(
        Method::Post,
        "/api/v3/remote_ui",
        r#"{"id":"io_6","name":"Hall\tscreen\nleft","provisioning_code":"Q9W8E8"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    for body in [
        r#"{"theme":"dark\u0001"}"#,
        r#"{"pages":[{"name":"\uffff","widgets":[]}]}"#,
        r#"{"pages":[{"widgets":[{"type":"label","x":0,"y":0,"text":"\u001b[31m"}]}]}"#,
    ] {
        let (r, _) = h.admin(Method::Put, "/api/v3/remote_ui/io_6/config", body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(r.text().contains("cannot carry"), "{}", r.text());
    }
    let (r, _) = h.admin(
        Method::Put,
        "/api/v3/remote_ui/io_6/config",
        r#"{"theme":"dark\r\nblue"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let (r, _) = h.send(
        ip(41),
        Request::new(Method::Post, "/api/v3/provision/request").with_body(
            br#"{"code":"Q9W8E8","device_info":{"type":"esp32","mac_address":"24:0A:C4:00:00:06","note":"a\u0000b","fw":"1.0\tbeta"}}"#.to_vec(),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let p = h.app.panels()[0].clone();
    assert!(!p.device_info.iter().any(|(k, _)| k == "note"), "{p:?}");
    for layout in ["room", "design"] {
        let (r, _) = h.admin(Method::Get, &format!("/api/v3/io.xml?layout={layout}"), "");
        let text = r.text();
        let back = latchkey_gateway::xml::import(&text)
            .unwrap_or_else(|e| panic!("{layout}: {e}\n{text}"));
        assert_eq!(back[0].name(), "Hall\tscreen\nleft", "{layout}");
        assert_eq!(back[0].param("theme"), Some("dark\r\nblue"), "{layout}");
        assert_eq!(back[0].device_info, p.device_info, "{layout}");
    }
}

#[test]
fn io_xml_export_stays_well_formed_whatever_names_devices_and_admins_send() {
    let mut h = H::new();
    h.set_up();
    h.admin(
        Method::Post,
        "/api/v3/remote_ui",
        r#"{"id":"io_5","name":"Porch","provisioning_code":"Q9W8E7"}"#,
    );
    // A device sends a metadata key io.xml cannot carry: it is dropped, the device accepted.
    let (r, _) = h.send(
        ip(40),
        Request::new(Method::Post, "/api/v3/provision/request").with_body(
            br#"{"code":"Q9W8E7","device_info":{"type":"esp32","mac_address":"24:0A:C4:00:00:05","a b":"x","<x>":"y","fw.build":"7"}}"#.to_vec(),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let info = &h.app.panels()[0].device_info;
    assert!(info.iter().any(|(k, _)| k == "fw.build"));
    assert!(!info.iter().any(|(k, _)| k == "a b" || k == "<x>"));
    // An admin edit with such a name is refused, naming it.
    let (r, _) = h.admin(
        Method::Put,
        "/api/v3/remote_ui/io_5/config",
        r#"{"bad name":"1"}"#,
    );
    assert_eq!(r.status, 400);
    assert!(json(&r)["error"].as_str().unwrap().contains("\"bad name\""));
    let (r, _) = h.admin(
        Method::Put,
        "/api/v3/remote_ui/io_5/config",
        r#"{"pages":[{"id":"p1","widgets":[{"type":"label","x":0,"y":0,"o k":"1"}]}]}"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    // A parameter named like a credential field is not written twice.
    let (r, _) = h.admin(
        Method::Put,
        "/api/v3/remote_ui/io_5/config",
        r#"{"provisioned_at":"1"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    for layout in ["room", "design"] {
        let (r, _) = h.admin(Method::Get, &format!("/api/v3/io.xml?layout={layout}"), "");
        assert_eq!(r.status, 200);
        let text = r.text();
        assert!(text.matches("provisioned_at=").count() <= 1, "{text}");
        let back = latchkey_gateway::xml::import(&text)
            .unwrap_or_else(|e| panic!("{layout}: {e}\n{text}"));
        assert_eq!(back.len(), 1);
    }
}

/// Changing an IO's name on the dashboard keeps what the form does not show or the admin
/// left blank: the GUI type the API gave it was dropped (panels then got `gui_type` =
/// `type`), and a blank type became `var`.
#[test]
fn dashboard_io_edit_keeps_what_the_form_does_not_show() {
    let mut h = H::new();
    h.set_up();
    let (r, _) = h.admin(
        Method::Put,
        "/api/v3/io/lamp",
        r#"{"type":"light","name":"Lamp","state":"false","gui_type":"light_dimmer"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let cookie = h.cookie.clone().unwrap();
    let csrf = h.csrf.clone().unwrap();
    let (r, _) = h.send(
        ip(200),
        Request::new(Method::Post, "/admin/ios")
            .with_header("Cookie", &format!("__Host-lk_session={cookie}"))
            .with_body(
                format!("csrf={csrf}&id=lamp&type=light&name=Hall+lamp&state=false").into_bytes(),
            ),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let io = h.app.ios().get("lamp").unwrap();
    assert_eq!(io.name, "Hall lamp");
    assert_eq!(
        io.gui_type, "light_dimmer",
        "the dashboard edit dropped the GUI type"
    );
    // Only the name given: type, state and GUI type stay.
    let (r, _) = h.send(
        ip(200),
        Request::new(Method::Post, "/admin/ios")
            .with_header("Cookie", &format!("__Host-lk_session={cookie}"))
            .with_body(format!("csrf={csrf}&id=lamp&type=&name=Porch&state=").into_bytes()),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let io = h.app.ios().get("lamp").unwrap();
    assert_eq!(
        (io.name.as_str(), io.kind.as_str(), io.state.as_str()),
        ("Porch", "light", "false")
    );
    assert_eq!(io.gui_type, "light_dimmer");
}
