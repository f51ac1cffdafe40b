use super::*;

fn api(flavour: &str) -> LegrandApi {
    LegrandApi::for_profile(&Profile::builtin(flavour).unwrap()).unwrap()
}

fn token() -> Secret {
    Secret::new("user-token")
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn plant_fixture() -> Plant {
    Plant {
        id: "p-1".into(),
        name: "Home".into(),
        country: "IT".into(),
        kind: "residential".into(),
        owner_id: "oid-9".into(),
        owner_email: "owner@example.com".into(),
    }
}

#[test]
fn every_call_carries_bearer_user_token_and_subscription_key() {
    let req = api("bticino-diy").plants(&token());
    assert_eq!(req.method, Method::Get);
    assert_eq!(
        req.url,
        "https://api.developer.legrand.com/servicecatalog/api/v3.0/plants"
    );
    assert_eq!(header(&req, "authorization"), Some("Bearer user-token"));
    assert_eq!(header(&req, "usertoken"), Some("user-token"));
    assert_eq!(
        header(&req, "ocp-apim-subscription-key"),
        Some("f36968e522bf4ec3877fa491109d3d14")
    );
    assert_eq!(header(&req, "accept"), Some("application/json"));
    // The key is a credential: the API's Debug names the header, not its value.
    let shown = format!("{:?}", api("bticino-diy"));
    assert!(shown.contains("Ocp-Apim-Subscription-Key"), "{shown}");
    assert!(
        !shown.contains("f36968e522bf4ec3877fa491109d3d14"),
        "{shown}"
    );
}

#[test]
fn flavours_keep_template_ou_and_gateway_user_consistent() {
    let diy = api("bticino-diy");
    assert_eq!(
        (diy.template(), diy.certificate_ou(), diy.gateway_sip_user()),
        ("sipuser-DIY", "DIY", "diy")
    );
    let c100x = api("bticino-c100x");
    assert_eq!(
        (
            c100x.template(),
            c100x.certificate_ou(),
            c100x.gateway_sip_user()
        ),
        ("sipuser", "C100X", "c100x")
    );
    assert_eq!(
        LegrandApi::for_profile(&Profile::builtin("watts").unwrap()).unwrap_err(),
        ApiError::Profile {
            missing: "certificate_template"
        }
    );
}

#[test]
fn plant_lists_are_read_bare_or_wrapped() {
    let one = r#"{"id":"p-1","name":"Home","country":"IT","type":"residential","ownerId":"oid-9","ownerEmail":"owner@example.com"}"#;
    for body in [
        format!("[{one}]"),
        format!(r#"{{"plants":[{one}]}}"#),
        format!(r#"{{"value":[{one}]}}"#),
    ] {
        let plants = parse_plants(&HttpResponse::new(200, body.clone())).unwrap();
        assert_eq!(plants, vec![plant_fixture()], "{body}");
    }
    let wrapped = format!(r#"{{"plant":{one}}}"#);
    assert_eq!(
        parse_plant(&HttpResponse::new(200, wrapped)).unwrap(),
        plant_fixture()
    );
    assert_eq!(
        parse_plant(&HttpResponse::new(200, one)).unwrap(),
        plant_fixture()
    );
    assert!(matches!(
        parse_plants(&HttpResponse::new(200, r#"{"other":1}"#)),
        Err(ApiError::Shape { .. })
    ));
}

#[test]
fn modules_give_the_gateway_and_the_locks_of_the_plant() {
    let body = r#"[
        {"id":"gw-1","name":"Gateway","device":"gateway","plantId":"p-1"},
        {"id":"lock-1","name":"Front door","device":"lock","plantId":"p-1"},
        {"id":"eu-1","name":"Door station","device":"audioVideoTerminal","subtype":"EU","plantId":"p-1"},
        {"id":"lock-x","name":"Elsewhere","device":"lock","plantId":"p-2"}
    ]"#;
    let modules = parse_modules(&HttpResponse::new(200, body), "p-1").unwrap();
    assert_eq!(modules.len(), 3);
    assert_eq!(gateway(&modules).map(|m| m.id.as_str()), Some("gw-1"));
    let locks: Vec<&str> = locks(&modules).iter().map(|m| m.id.as_str()).collect();
    assert_eq!(locks, ["lock-1"]);
    assert_eq!(modules[2].subtype.as_deref(), Some("EU"));
    let req = api("bticino-c100x").modules(&token(), "p 1/x");
    assert!(
        req.url
            .ends_with("/servicecatalog/api/v3.0/plants/p%201%2Fx/modules"),
        "path segments are escaped: {}",
        req.url
    );
}

#[test]
fn a_sip_account_is_registered_with_the_apps_uri_form() {
    let req = api("bticino-diy").register_sip_account(
        &token(),
        "gw-1",
        "oid-9",
        "123456789012345678901",
        "latchkey",
    );
    assert_eq!(req.method, Method::Post);
    assert!(req.url.ends_with("/vde/sip/v1.0/devices/gw-1/sipaccount"));
    assert_eq!(header(&req, "content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(
        body,
        json!({"clientId":"123456789012345678901","clientName":"latchkey","sipUri":"oid-9_123456789012345678901@gw-1.bs.iotleg.com"})
    );
    let answer = r#"{"clientId":"123456789012345678901","clientName":"latchkey","deviceId":"gw-1","plantId":"p-1","sipId":"s-7","sipPassword":"pw-secret","sipUri":"oid-9_123456789012345678901@gw-1.bs.iotleg.com","userOid":"oid-9","username":"oid-9_123456789012345678901"}"#;
    let account = parse_registered_account(&HttpResponse::new(200, answer), 1).unwrap();
    assert_eq!(account.sip_id, "s-7");
    assert_eq!(account.username, "oid-9_123456789012345678901");
    assert_eq!(
        account.password.as_ref().map(Secret::expose),
        Some("pw-secret")
    );
    assert!(!format!("{account:?}").contains("pw-secret"));
    assert!(
        !serde_json::to_string(&account)
            .unwrap()
            .contains("pw-secret")
    );
}

#[test]
fn a_fourth_client_is_reported_as_the_client_limit() {
    let refused = HttpResponse::new(400, "");
    assert_eq!(
        parse_registered_account(&refused, 3).unwrap_err(),
        ApiError::ClientLimit
    );
    assert!(ApiError::ClientLimit.to_string().contains("(3)"));
    // With room left, a 400 is the service's own complaint.
    let other = HttpResponse::new(400, r#"{"message":"clientId is invalid"}"#);
    assert_eq!(
        parse_registered_account(&other, 1).unwrap_err().to_string(),
        "sip account registration: HTTP 400: clientId is invalid"
    );
    let no_password = HttpResponse::new(200, r#"{"sipUri":"a_b@c.bs.iotleg.com"}"#);
    assert!(matches!(
        parse_registered_account(&no_password, 0),
        Err(ApiError::Shape { .. })
    ));
}

#[test]
fn an_expired_token_is_unauthorized_whatever_the_shape() {
    for response in [
        HttpResponse::new(401, ""),
        HttpResponse::new(200, r#"{"code":"INVALID_TOKEN"}"#),
        HttpResponse::new(403, r#"{"error":"invalid_token"}"#),
    ] {
        assert_eq!(parse_plants(&response).unwrap_err(), ApiError::Unauthorized);
    }
    let html = HttpResponse::new(502, "<html>Bad gateway</html>");
    assert_eq!(
        parse_plants(&html).unwrap_err(),
        ApiError::Status {
            what: "plants",
            status: 502,
            message: None
        }
    );
}

#[test]
fn sip_accounts_list_and_delete() {
    let list = r#"[{"sipId":"s-1","clientId":"1","sipUri":"oid_1@gw.bs.iotleg.com"},{"sipId":"s-2","clientId":"2","sipUri":"sip:oid_2@gw.bs.iotleg.com"}]"#;
    let accounts = parse_sip_accounts(&HttpResponse::new(200, list)).unwrap();
    assert_eq!(accounts.len(), 2);
    assert_eq!(accounts[1].username, "oid_2", "from the URI when not given");
    let del = api("bticino-diy").delete_sip_account(&token(), "gw", "s-2");
    assert_eq!(del.method, Method::Delete);
    assert!(del.url.ends_with("/vde/sip/v1.0/devices/gw/sipaccount/s-2"));
}

#[test]
fn a_certificate_request_carries_csr_sender_plant_and_template() {
    let app = Secret::new("app-token");
    let req =
        api("bticino-c100x").issue_certificate(&token(), Some(&app), "MIIBCSR", &plant_fixture());
    assert_eq!(header(&req, "authorization"), Some("Bearer app-token"));
    assert_eq!(header(&req, "usertoken"), Some("user-token"));
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["csr"], "MIIBCSR");
    assert_eq!(body["template"], "sipuser");
    assert_eq!(body["sender"]["addressType"], "addressLocation");
    assert_eq!(body["sender"]["system"], "information");
    assert_eq!(body["sender"]["plant"]["_gatewayDbIdx"], -1);
    assert_eq!(body["sender"]["plant"]["dbIdx"], -1);
    assert_eq!(body["sender"]["plant"]["ownerEmail"], "owner@example.com");
    assert_eq!(body["sender"]["plant"]["ownerId"], "oid-9");
    let diy = api("bticino-diy").issue_certificate(&token(), None, "MIIB", &plant_fixture());
    assert_eq!(header(&diy, "authorization"), Some("Bearer user-token"));
    let diy_body: Value = serde_json::from_slice(&diy.body).unwrap();
    assert_eq!(diy_body["template"], "sipuser-DIY");
}

#[test]
fn issued_certificates_and_the_ca_chain_come_back_as_pem() {
    let b64 = "A".repeat(100);
    let pem = parse_issued_certificate(&HttpResponse::new(
        201,
        format!(r#"{{"cert":"{b64}","receiver":{{}}}}"#),
    ))
    .unwrap();
    let lines: Vec<&str> = pem.lines().collect();
    assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
    assert_eq!(lines[1].len(), 64);
    assert_eq!(lines[2].len(), 36);
    assert_eq!(lines[3], "-----END CERTIFICATE-----");
    let chain = parse_ca_chain(&HttpResponse::new(200, r#"{"chain":["QUJD","REVG"]}"#)).unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
    let pem_chain = "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n";
    let chain = parse_ca_chain(&HttpResponse::new(
        200,
        serde_json::to_string(&json!({ "chain": pem_chain })).unwrap(),
    ))
    .unwrap();
    assert_eq!(chain, pem_chain);
}

#[test]
fn client_ids_look_like_the_apps() {
    for seed in 0u8..=255 {
        let random: Vec<u8> = (0..32)
            .map(|i| seed.wrapping_mul(31).wrapping_add(i))
            .collect();
        let id = new_client_id(&random);
        assert!((21..=23).contains(&id.len()), "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_digit()));
        assert_ne!(id.as_bytes()[0], b'0');
    }
    assert_eq!(new_client_id(&[]), "");
}

#[test]
fn door_release_and_light_bodies_are_the_apps_json_rpc() {
    // Field order as the apps write it (serde_json keeps insertion order here).
    assert_eq!(
        lock_release_body("lock-1", 123456789),
        r#"{"jsonrpc":"2.0","id":"123456789","method":"lock.setStatus","params":[{"status":"open","receiver":{"plant":{"coal":{"id":"lock-1"}}}}]}"#
    );
    let light: Value = serde_json::from_str(&light_on_body("st-1", 7)).unwrap();
    assert_eq!(light["method"], "light.setStatus");
    assert_eq!(light["params"][0]["status"], "on");
    assert_eq!(
        light["params"][0]["receiver"]["plant"]["coal"]["id"],
        "st-1"
    );
    assert_eq!(light["id"], "7");
    assert_eq!(gate_uri("c100x", "gw-1"), "sip:c100x@gw-1.bs.iotleg.com");
}
