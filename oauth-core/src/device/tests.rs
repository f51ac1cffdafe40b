use super::*;

const NOW: u64 = 1_800_000_000;

fn profile() -> Profile {
    let mut p = Profile::builtin("generic").unwrap().with_client_id("tv");
    p.endpoints.token = Some("https://idp.example/token".into());
    p.endpoints.device_authorization = Some("https://idp.example/device".into());
    p
}

fn next_request(flow: &mut DeviceFlow) -> (RequestId, HttpRequest) {
    while let Some(e) = flow.poll_event() {
        if let DeviceEvent::SendRequest { id, request } = e {
            return (id, request);
        }
    }
    panic!("no request queued")
}

fn started(interval: Option<u64>) -> (DeviceFlow, Vec<DeviceEvent>) {
    let mut flow = DeviceFlow::start(profile(), NOW).unwrap();
    let (id, req) = next_request(&mut flow);
    assert_eq!(req.url, "https://idp.example/device");
    let body = match interval {
        Some(i) => format!(r#"{{"device_code":"DC","user_code":"WDJB-MJHT","verification_uri":"https://idp.example/device","verification_uri_complete":"https://idp.example/device?user_code=WDJB-MJHT","expires_in":1800,"interval":{i}}}"#),
        None => r#"{"device_code":"DC","user_code":"WDJB-MJHT","verification_uri":"https://idp.example/device","expires_in":1800}"#.to_owned(),
    };
    flow.handle_response(NOW, id, Ok(HttpResponse::new(200, body)));
    let mut events = Vec::new();
    while let Some(e) = flow.poll_event() {
        events.push(e);
    }
    (flow, events)
}

fn poll_at(flow: &mut DeviceFlow, t: u64, body: (u16, &str)) {
    flow.handle_timeout(t);
    let (id, req) = next_request(flow);
    let text = String::from_utf8(req.body).unwrap();
    assert!(text.contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"));
    assert!(text.contains("device_code=DC"));
    flow.handle_response(t, id, Ok(HttpResponse::new(body.0, body.1)));
}

const PENDING: (u16, &str) = (400, r#"{"error":"authorization_pending"}"#);
const SLOW: (u16, &str) = (400, r#"{"error":"slow_down"}"#);

/// RFC 8628 §3.2: the code is shown; the default interval is 5 s when none is given.
#[test]
fn the_user_code_is_shown_and_polling_waits_the_default_interval() {
    let (flow, events) = started(None);
    match &events[..] {
        [DeviceEvent::ShowCode(code)] => {
            assert_eq!(code.user_code, "WDJB-MJHT");
            assert_eq!(code.expires_at, NOW + 1800);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(flow.interval(), 5);
    assert_eq!(flow.poll_timeout(), Some(NOW + 5));
}

/// RFC 8628 §3.2/§3.5: a long interval from the server is kept (polling faster would draw
/// `slow_down`); only an absurd one is capped, at an hour.
#[test]
fn a_long_server_interval_is_kept() {
    let (flow, _) = started(Some(120));
    assert_eq!(flow.interval(), 120);
    assert_eq!(flow.poll_timeout(), Some(NOW + 120));
    let (flow, _) = started(Some(1_000_000));
    assert_eq!(flow.interval(), 3600);
    let (flow, _) = started(Some(0));
    assert_eq!(flow.interval(), 1);
}

/// RFC 8628 §3.5: `slow_down` adds 5 s to this and all later polls.
#[test]
fn slow_down_adds_five_seconds_for_good() {
    let (mut flow, _) = started(Some(5));
    poll_at(&mut flow, NOW + 5, PENDING);
    assert_eq!(flow.poll_timeout(), Some(NOW + 10));
    poll_at(&mut flow, NOW + 10, SLOW);
    assert_eq!(flow.interval(), 10);
    assert_eq!(flow.poll_timeout(), Some(NOW + 20));
    poll_at(&mut flow, NOW + 20, PENDING);
    assert_eq!(flow.poll_timeout(), Some(NOW + 30));
    poll_at(&mut flow, NOW + 30, SLOW);
    assert_eq!(flow.poll_timeout(), Some(NOW + 45));
    // An early timeout call does not poll.
    flow.handle_timeout(NOW + 40);
    assert!(flow.poll_event().is_none());
}

#[test]
fn success_completes_with_the_tokens() {
    let (mut flow, _) = started(Some(5));
    poll_at(&mut flow, NOW + 5, PENDING);
    poll_at(
        &mut flow,
        NOW + 10,
        (
            200,
            r#"{"access_token":"AT","refresh_token":"RT","expires_in":60}"#,
        ),
    );
    match flow.poll_event() {
        Some(DeviceEvent::Completed(t)) => {
            assert_eq!(t.access_token.expose(), "AT");
            assert_eq!(t.refresh_token.as_ref().unwrap().expose(), "RT");
        }
        other => panic!("{other:?}"),
    }
    assert!(flow.is_done());
    assert_eq!(flow.poll_timeout(), None);
}

#[test]
fn access_denied_and_expired_token_stop_the_flow() {
    for (body, want) in [
        (r#"{"error":"access_denied"}"#, DeviceFlowError::Denied),
        (r#"{"error":"expired_token"}"#, DeviceFlowError::Expired),
    ] {
        let (mut flow, _) = started(Some(5));
        poll_at(&mut flow, NOW + 5, (400, body));
        assert_eq!(flow.poll_event(), Some(DeviceEvent::Failed(want)));
        assert!(flow.is_done());
    }
}

#[test]
fn the_flow_ends_at_the_codes_expiry() {
    let (mut flow, _) = started(Some(5));
    let mut t = NOW;
    while !flow.is_done() {
        t = flow.poll_timeout().unwrap();
        flow.handle_timeout(t);
        while let Some(e) = flow.poll_event() {
            if let DeviceEvent::SendRequest { id, .. } = e {
                flow.handle_response(t, id, Ok(HttpResponse::new(PENDING.0, PENDING.1)));
            }
        }
    }
    assert_eq!(t, NOW + 1800);
}

#[test]
fn network_errors_back_off_instead_of_ending_the_flow() {
    let (mut flow, _) = started(Some(5));
    flow.handle_timeout(NOW + 5);
    let (id, _) = next_request(&mut flow);
    flow.handle_response(
        NOW + 5,
        id,
        Err(TransportError::new(
            crate::http::TransportErrorKind::Timeout,
            "read",
        )),
    );
    assert!(!flow.is_done());
    assert_eq!(flow.poll_timeout(), Some(NOW + 5 + 10));
}

#[test]
fn a_malformed_device_authorization_names_the_field() {
    let mut flow = DeviceFlow::start(profile(), NOW).unwrap();
    let (id, _) = next_request(&mut flow);
    flow.handle_response(
        NOW,
        id,
        Ok(HttpResponse::new(
            200,
            r#"{"device_code":"DC","user_code":"U"}"#,
        )),
    );
    assert_eq!(
        flow.poll_event(),
        Some(DeviceEvent::Failed(DeviceFlowError::Malformed {
            reason: "`verification_uri` is missing".into()
        }))
    );
}

#[test]
fn a_profile_without_a_device_endpoint_is_refused_up_front() {
    let mut p = profile();
    p.endpoints.device_authorization = None;
    assert!(DeviceFlow::start(p, NOW).is_err());
}
