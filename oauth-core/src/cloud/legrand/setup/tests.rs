use super::*;
use crate::http::Method;
use crate::profile::Profile;
use base64::Engine;
use serde_json::{Value, json};

/// An access token whose payload carries `oid` (unsigned: only read, never verified).
fn token() -> Secret {
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(br#"{"oid":"oid-9","exp":4102444800}"#);
    Secret::new(format!("eyJhbGciOiJub25lIn0.{payload}.sig"))
}

fn api() -> LegrandApi {
    LegrandApi::for_profile(&Profile::builtin("bticino-c100x").unwrap()).unwrap()
}

/// A stand-in Legrand service: one plant with a gateway and a lock, SIP accounts kept per
/// gateway with the 3-client limit, certificates issued for any CSR.
struct Model {
    plants: usize,
    accounts: Vec<Value>,
    registered: usize,
    deleted: usize,
    issued: usize,
    next_id: usize,
}

impl Model {
    fn new(other_clients: usize) -> Self {
        let accounts = (0..other_clients)
            .map(|i| json!({"sipId": format!("other-{i}"), "clientId": format!("9{i}"), "sipUri": format!("x_9{i}@gw-1.bs.iotleg.com")}))
            .collect();
        Model {
            plants: 1,
            accounts,
            registered: 0,
            deleted: 0,
            issued: 0,
            next_id: 0,
        }
    }

    fn answer(&mut self, req: &HttpRequest) -> HttpResponse {
        let path = req
            .url
            .trim_start_matches("https://api.developer.legrand.com");
        match (req.method, path) {
            (Method::Get, "/servicecatalog/api/v3.0/plants") => {
                let plants: Vec<Value> = (0..self.plants)
                    .map(|i| json!({"id": format!("p-{i}"), "name": format!("Home {i}"), "ownerId": "oid-9", "ownerEmail": "owner@example.com", "country": "IT", "type": "residential"}))
                    .collect();
                HttpResponse::new(200, json!({ "plants": plants }).to_string())
            }
            (Method::Get, p) if p.ends_with("/modules") => HttpResponse::new(
                200,
                r#"[{"id":"gw-1","device":"gateway"},{"id":"lock-1","name":"Front","device":"lock"}]"#,
            ),
            (Method::Get, "/vde/sip/v1.0/devices/gw-1/sipaccounts") => {
                // The list never shows passwords.
                HttpResponse::new(200, Value::Array(self.accounts.clone()).to_string())
            }
            (Method::Post, "/vde/sip/v1.0/devices/gw-1/sipaccount") => {
                if self.accounts.len() >= 3 {
                    return HttpResponse::new(400, "");
                }
                let body: Value = serde_json::from_slice(&req.body).unwrap();
                self.registered += 1;
                self.next_id += 1;
                let account = json!({"sipId": format!("s-{}", self.next_id), "clientId": body["clientId"], "sipUri": body["sipUri"]});
                self.accounts.push(account.clone());
                let mut answer = account;
                answer["sipPassword"] = json!("pw-secret");
                HttpResponse::new(200, answer.to_string())
            }
            (Method::Delete, p) if p.starts_with("/vde/sip/v1.0/devices/gw-1/sipaccount/") => {
                let id = p.rsplit('/').next().unwrap();
                self.accounts.retain(|a| a["sipId"] != id);
                self.deleted += 1;
                HttpResponse::new(204, "")
            }
            (Method::Post, "/certificate/api/v1.0/ca/information/clientCerts") => {
                self.issued += 1;
                let body: Value = serde_json::from_slice(&req.body).unwrap();
                assert_eq!(body["template"], "sipuser");
                HttpResponse::new(
                    201,
                    json!({"cert": format!("CERT-FOR-{}", body["csr"].as_str().unwrap())})
                        .to_string(),
                )
            }
            (Method::Get, "/certificate/api/v1.0/ca/information/CACerts") => {
                HttpResponse::new(200, r#"{"chain":["Q0E="]}"#)
            }
            other => panic!("unexpected call {other:?}"),
        }
    }

    fn ours(&self, client_id: &str) -> usize {
        self.accounts
            .iter()
            .filter(|a| a["clientId"] == client_id)
            .count()
    }
}

/// The driver's side: the persisted registration and the key file.
#[derive(Default)]
struct Disk {
    registration: Option<Registration>,
    key: Option<String>,
    keys_made: usize,
}

/// Runs the flow; `crash_after` stops it (dropping everything not on disk) after that many
/// steps, a `Send` step's request having reached the service but its answer being lost.
fn run(
    model: &mut Model,
    disk: &mut Disk,
    crash_after: Option<usize>,
    plant: Option<&str>,
) -> Result<Option<Registration>, SetupError> {
    let reg = disk
        .registration
        .clone()
        .unwrap_or_else(|| Registration::new("latchkey", &[7; 32]));
    let mut flow = RegistrationFlow::new(api(), reg, plant.map(str::to_owned));
    for n in 0..100 {
        let step = flow.next(&token())?;
        let crash = crash_after == Some(n);
        match step {
            Step::Send(req) => {
                let answer = model.answer(&req);
                if crash {
                    return Ok(None);
                }
                flow.handle_response(&answer)?;
            }
            Step::Persist(r) => {
                if crash {
                    return Ok(None);
                }
                disk.registration = Some(r);
                flow.handle_persisted();
            }
            Step::MakeCsr(spec) => {
                assert_eq!(spec.unit, "C100X");
                assert_eq!(spec.owner_id, "oid-9");
                assert_eq!(spec.gateway_id, "gw-1");
                assert_eq!(spec.owner_email, "owner@example.com");
                // A stored key is reused whatever the registration says.
                if disk.key.is_none() {
                    disk.keys_made += 1;
                    disk.key = Some(format!("KEY-{}", disk.keys_made));
                }
                if crash {
                    return Ok(None);
                }
                flow.handle_csr(format!("CSR-OF-{}", disk.key.as_deref().unwrap()));
            }
            Step::Done(r) => {
                assert_eq!(
                    Some(&r),
                    disk.registration.as_ref(),
                    "done only once persisted"
                );
                return Ok(Some(r));
            }
        }
    }
    panic!("the flow did not finish in 100 steps");
}

#[test]
fn a_fresh_registration_runs_every_step_once() {
    let mut model = Model::new(1);
    let mut disk = Disk::default();
    let reg = run(&mut model, &mut disk, None, None).unwrap().unwrap();
    assert!(reg.is_complete());
    assert_eq!(reg.gateway_id.as_deref(), Some("gw-1"));
    assert_eq!(reg.locks, [("lock-1".to_owned(), "Front".to_owned())]);
    let account = reg.account.as_ref().unwrap();
    assert_eq!(
        account.sip_uri,
        format!("oid-9_{}@gw-1.bs.iotleg.com", reg.client_id)
    );
    assert_eq!(account.password.expose(), "pw-secret");
    assert!(
        reg.certificate_pem
            .as_deref()
            .unwrap()
            .contains("CERT-FOR-CSR-OF-KEY-1")
    );
    assert!(
        reg.ca_chain_pem
            .as_deref()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    assert_eq!((model.registered, model.issued, disk.keys_made), (1, 1, 1));
    assert_eq!(model.ours(&reg.client_id), 1);
    // The persisted form never prints the password in Debug.
    assert!(!format!("{reg:?}").contains("pw-secret"));
}

#[test]
fn an_interruption_at_any_step_resumes_without_duplicates_or_lost_facts() {
    for crash in 0..30 {
        let mut model = Model::new(1);
        let mut disk = Disk::default();
        let first = run(&mut model, &mut disk, Some(crash), None).unwrap();
        let reg = match first {
            Some(done) => done,
            None => run(&mut model, &mut disk, None, None).unwrap().unwrap(),
        };
        assert!(reg.is_complete(), "crash {crash}");
        assert_eq!(
            model.ours(&reg.client_id),
            1,
            "crash {crash}: one account of ours"
        );
        assert_eq!(
            model.accounts.len(),
            2,
            "crash {crash}: the other client untouched"
        );
        assert!(disk.keys_made <= 1, "crash {crash}: one key, reused");
        assert_eq!(
            reg.account.as_ref().unwrap().password.expose(),
            "pw-secret",
            "crash {crash}"
        );
        assert_eq!(
            disk.registration.as_ref().map(|r| r.client_id.as_str()),
            Some(reg.client_id.as_str()),
            "crash {crash}: one client id from start to end"
        );
    }
}

#[test]
fn an_account_registered_but_not_saved_is_replaced_not_duplicated() {
    let mut model = Model::new(0);
    let mut disk = Disk::default();
    // Run until the registration request has reached the service, then lose its answer.
    let mut crash = 0;
    loop {
        let mut probe = Model::new(0);
        let mut probe_disk = Disk::default();
        run(&mut probe, &mut probe_disk, Some(crash), None).unwrap();
        if probe.registered == 1 {
            break;
        }
        crash += 1;
    }
    run(&mut model, &mut disk, Some(crash), None).unwrap();
    assert_eq!(model.registered, 1);
    let reg = run(&mut model, &mut disk, None, None).unwrap().unwrap();
    assert_eq!(model.deleted, 1, "the password-less account is removed");
    assert_eq!(model.registered, 2);
    assert_eq!(model.ours(&reg.client_id), 1);
}

#[test]
fn a_full_gateway_is_reported_before_registering() {
    let mut model = Model::new(3);
    let mut disk = Disk::default();
    let err = run(&mut model, &mut disk, None, None).unwrap_err();
    assert_eq!(err, SetupError::Api(ApiError::ClientLimit));
    assert_eq!(model.registered, 0);
    assert!(err.to_string().contains("(3)"));
}

#[test]
fn several_plants_need_a_choice_by_id_or_name() {
    let mut model = Model::new(0);
    model.plants = 2;
    let err = run(&mut model, &mut Disk::default(), None, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "choose a plant with --plant ID (available: p-0 (Home 0), p-1 (Home 1))"
    );
    let reg = run(&mut model, &mut Disk::default(), None, Some("home 1"))
        .unwrap()
        .unwrap();
    assert_eq!(reg.plant.unwrap().id, "p-1");
    assert!(matches!(
        run(&mut model, &mut Disk::default(), None, Some("p-7")),
        Err(SetupError::ChoosePlant { .. })
    ));
}

#[test]
fn a_token_without_a_user_id_is_refused() {
    let mut flow = RegistrationFlow::new(api(), Registration::new("x", &[1; 32]), None);
    assert_eq!(
        flow.next(&Secret::new("opaque-token")).unwrap_err(),
        SetupError::NoUserId
    );
}

#[test]
fn the_client_id_is_saved_before_any_call() {
    let mut flow = RegistrationFlow::new(api(), Registration::new("x", &[3; 32]), None);
    match flow.next(&token()).unwrap() {
        Step::Persist(r) => {
            assert_eq!(r.user_oid.as_deref(), Some("oid-9"));
            assert!((21..=23).contains(&r.client_id.len()));
        }
        other => panic!("expected a persist first, got {other:?}"),
    }
}

/// The C100X profile with application credentials pointing at a stand-in token endpoint.
fn app_credentials(secret: &str) -> AppCredentials {
    let mut profile = Profile::builtin("bticino-c100x").unwrap();
    profile.vendor.insert(
        "app_token_endpoint".into(),
        "https://login.example.com/tenant/oauth2/v2.0/token".into(),
    );
    profile.vendor.insert(
        "app_scope".into(),
        "https://api.example.com/.default".into(),
    );
    AppCredentials::from_profile(&profile, Secret::new(secret.to_owned())).unwrap()
}

/// Runs the flow with application credentials against `model`; the application token
/// endpoint accepts only `app-secret`. Returns the certificate call's Authorization and
/// UserToken headers.
fn run_with_app(
    model: &mut Model,
    secret: &str,
) -> Result<(Registration, String, String), SetupError> {
    let mut flow = RegistrationFlow::new(api(), Registration::new("latchkey", &[7; 32]), None)
        .with_app_credentials(app_credentials(secret));
    let mut seen = None;
    let mut token_calls = 0;
    for _ in 0..100 {
        match flow.next(&token())? {
            Step::Send(req) if req.url.starts_with("https://login.example.com/") => {
                token_calls += 1;
                assert_eq!(req.method, Method::Post);
                let form = String::from_utf8(req.body.clone()).unwrap();
                assert!(form.contains("grant_type=client_credentials"), "{form}");
                assert!(
                    form.contains("client_id=c7d272d9-e76a-41b7-824f-a988ad964cf8"),
                    "{form}"
                );
                assert!(
                    form.contains("scope=https%3A%2F%2Fapi.example.com%2F.default"),
                    "{form}"
                );
                let answer = if form.contains("client_secret=app-secret") {
                    HttpResponse::new(
                        200,
                        r#"{"access_token":"app-at","token_type":"Bearer","expires_in":3599}"#,
                    )
                } else {
                    HttpResponse::new(
                        401,
                        r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#,
                    )
                };
                flow.handle_response(&answer)?;
            }
            Step::Send(req) => {
                if req.url.ends_with("/clientCerts") {
                    let header = |n: &str| {
                        req.headers
                            .iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case(n))
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default()
                    };
                    seen = Some((header("Authorization"), header("UserToken")));
                }
                let answer = model.answer(&req);
                flow.handle_response(&answer)?;
            }
            Step::Persist(_) => flow.handle_persisted(),
            Step::MakeCsr(_) => flow.handle_csr("CSR".into()),
            Step::Done(r) => {
                assert_eq!(token_calls, 1, "one application token per run");
                let (auth, user) = seen.expect("a certificate call");
                return Ok((r, auth, user));
            }
        }
    }
    panic!("the flow did not finish");
}

#[test]
fn with_app_credentials_the_certificate_call_carries_the_app_token_and_the_user_token() {
    let mut model = Model::new(0);
    let (reg, auth, user) = run_with_app(&mut model, "app-secret").unwrap();
    assert!(reg.is_complete());
    assert_eq!(auth, "Bearer app-at");
    assert_eq!(user, token().expose());
    assert_eq!(model.issued, 1);
    // The application token is never persisted.
    assert!(!serde_json::to_string(&reg).unwrap().contains("app-at"));
}

#[test]
fn a_refused_app_secret_is_named_and_never_taken_for_the_user_token() {
    let mut model = Model::new(0);
    let err = run_with_app(&mut model, "not-the-secret-42").unwrap_err();
    assert!(matches!(err, SetupError::AppToken(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("invalid_client"), "{text}");
    assert!(
        !text.contains("not-the-secret-42"),
        "the secret is not echoed: {text}"
    );
    assert_eq!(model.issued, 0);
}

#[test]
fn app_credentials_need_an_endpoint_and_never_show_the_secret() {
    let profile = Profile::builtin("bticino-c100x").unwrap();
    let err = AppCredentials::from_profile(&profile, Secret::new("s3cret".to_owned())).unwrap_err();
    assert_eq!(
        err,
        ApiError::Profile {
            missing: "app_token_endpoint"
        }
    );
    assert!(!format!("{:?}", app_credentials("s3cret")).contains("s3cret"));
}
