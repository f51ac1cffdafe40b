//! `latchkey bticino …`: BTicino/Legrand door entry. `setup` is the first-run experience of
//! the original Node.js client in one command: log in (if no session is stored), choose the
//! plant, find the gateway and locks, register a SIP account, make a key and CSR, get the
//! client certificate and the CA chain, and save everything — resumable at every step (the
//! flow is `latchkey_oauth_core::cloud::legrand::setup`; this file only performs its steps).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use latchkey_oauth_core::cloud::ApiError;
use latchkey_oauth_core::cloud::legrand::LegrandApi;
use latchkey_oauth_core::cloud::legrand::files::{client_certs_json, sip_account_json};
use latchkey_oauth_core::cloud::legrand::setup::{
    Progress, Registration, RegistrationFlow, SetupError, Step,
};
use latchkey_oauth_core::session::{Phase, Unauthorized};
use latchkey_pki::inspect::rfc3339;
use latchkey_pki::key::{KeyType, PrivateKey};
use latchkey_pki::request::{Csr, RequestParams};
use latchkey_pki::validate::{Bundle, Usage, validate};

use crate::oauth::{self, Failure, LoginMode, ProviderArgs, fail};

/// The app flavour: client, certificate template and gateway SIP user stay consistent.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Flavour {
    /// The "Door Entry" DIY app (`bticino-diy`).
    Diy,
    /// The Classe 100X app (`bticino-c100x`).
    C100x,
}

impl Flavour {
    fn provider(self) -> &'static str {
        match self {
            Flavour::Diy => "bticino-diy",
            Flavour::C100x => "bticino-c100x",
        }
    }
}

/// `latchkey bticino …`
#[derive(Subcommand, Debug)]
pub(crate) enum BticinoCommand {
    /// Log in if needed, register this device with the plant's gateway and get its SIP
    /// account and client certificate. Safe to run again: it resumes where it stopped and
    /// never registers twice.
    Setup(SetupArgs),
    /// Open a door lock: the `lock.setStatus` MESSAGE to the gateway over a one-shot
    /// registered connection with the account and certificate `setup` saved.
    Open(OpenArgs),
    /// Switch the staircase light on (`light.setStatus`), like `open`.
    Light(LightArgs),
    /// Stay registered and print one JSON line per event (doorbell rings from the gateway
    /// only, answered 180 then 486 after 2 s; registration, reconnects) until SIGINT or
    /// SIGTERM, which un-REGISTERs first.
    Listen(ListenArgs),
}

/// What `open`, `light` and `listen` share: where the registration is and how to reach the
/// SIP server.
#[derive(Args, Debug)]
pub(crate) struct SavedAccountArgs {
    /// App flavour (the registration of `setup --flavour`).
    #[arg(long, value_enum, default_value_t = Flavour::C100x)]
    flavour: Flavour,
    /// State directory.
    #[arg(long, default_value = "./latchkey-data")]
    state_dir: PathBuf,
    /// Connect to HOST:PORT instead of vdesip.bs.iotleg.com:5228 (tests, proxies).
    #[arg(long)]
    server: Option<String>,
    /// CA certificates (PEM) the SIP server must chain to (default: the saved CA chain).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Extra CA certificates (PEM) to trust for the Legrand API (tests, proxies).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// A profile of your own instead of the flavour's (tests, other tenants).
    #[arg(long)]
    profile_file: Option<PathBuf>,
}

/// Arguments of `latchkey bticino open`.
#[derive(Args, Debug)]
pub(crate) struct OpenArgs {
    #[command(flatten)]
    account: SavedAccountArgs,
    /// The lock, by name or module id (default: the only lock).
    #[arg(long)]
    lock: Option<String>,
    /// Content-Type of the MESSAGE (FACTS: text/plain as the apps; application/json seen).
    #[arg(long, default_value = "text/plain")]
    content_type: String,
}

/// Arguments of `latchkey bticino light`.
#[derive(Args, Debug)]
pub(crate) struct LightArgs {
    #[command(flatten)]
    account: SavedAccountArgs,
    /// The staircase light's module id.
    #[arg(long)]
    light: String,
    /// Content-Type of the MESSAGE.
    #[arg(long, default_value = "text/plain")]
    content_type: String,
}

/// Arguments of `latchkey bticino listen`.
#[derive(Args, Debug)]
pub(crate) struct ListenArgs {
    #[command(flatten)]
    account: SavedAccountArgs,
    /// Stop (un-REGISTER) after this many seconds; default: until SIGINT/SIGTERM.
    #[arg(long)]
    duration: Option<u64>,
    /// The C100X app's application secret (a file): renewals then ask for the certificate
    /// as the app does, with an application token (needs app_token_endpoint in the profile).
    #[arg(long)]
    app_secret_file: Option<PathBuf>,
}

/// Arguments of `latchkey bticino setup`.
#[derive(Args, Debug)]
pub(crate) struct SetupArgs {
    /// App flavour.
    #[arg(long, value_enum, default_value_t = Flavour::C100x)]
    flavour: Flavour,
    /// The plant, by id or name, when the account has several.
    #[arg(long)]
    plant: Option<String>,
    /// The name this device shows in the app.
    #[arg(long, default_value = "latchkey")]
    client_name: String,
    /// Also write the Node.js client's sip_account.json and client-certs.json here.
    #[arg(long)]
    export: Option<PathBuf>,
    /// State directory.
    #[arg(long, default_value = "./latchkey-data")]
    state_dir: PathBuf,
    /// Extra CA certificates (PEM) to trust (tests, proxies).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// A profile of your own instead of the flavour's (tests, other tenants).
    #[arg(long)]
    profile_file: Option<PathBuf>,
    /// The C100X app's application secret (a file): the certificate is then asked for as the
    /// app does, with an application token in Authorization and the user's in UserToken
    /// (needs app_token_endpoint, and app_scope if the endpoint wants one, in the profile).
    #[arg(long)]
    app_secret_file: Option<PathBuf>,
    #[command(flatten)]
    login: LoginMode,
}

/// Runs `latchkey bticino …`.
pub(crate) fn run(command: BticinoCommand) -> Result<(), Failure> {
    match command {
        BticinoCommand::Setup(args) => setup(args),
        BticinoCommand::Open(args) => open(&args),
        BticinoCommand::Light(args) => light(&args),
        BticinoCommand::Listen(args) => listen(&args),
    }
}

/// The saved registration as SIP connection arguments, with `lock` (a name or an id)
/// resolved to a lock module id; the registration's locks come back too.
fn saved(
    args: &SavedAccountArgs,
    lock: Option<&str>,
    any_lock: bool,
) -> Result<(crate::sip::ConnectArgs, Vec<(String, String)>), Failure> {
    let path = args.state_dir.join(registration_file(args.flavour));
    let bytes = crate::read_limited(&path, crate::MAX_SMALL_FILE).map_err(|(_, e)| {
        fail(
            2,
            format!(
                "{e}; run `latchkey bticino setup --flavour {}` first",
                match args.flavour {
                    Flavour::Diy => "diy",
                    Flavour::C100x => "c100x",
                }
            ),
        )
    })?;
    let reg: Registration = serde_json::from_slice(&bytes).map_err(|e| {
        fail(
            2,
            format!("{}: not a latchkey registration: {e}", path.display()),
        )
    })?;
    let known = || {
        reg.locks
            .iter()
            .map(|(id, name)| format!("{name} ({id})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let lock_id = match lock {
        Some(wanted) => {
            let found = reg.locks.iter().find(|(id, _)| id == wanted).or_else(|| {
                reg.locks
                    .iter()
                    .find(|(_, name)| name.eq_ignore_ascii_case(wanted))
            });
            match found {
                Some((id, _)) => Some(id.clone()),
                None => {
                    return Err(fail(
                        2,
                        format!(
                            "no lock named or numbered {wanted:?}; the plant's locks: {}",
                            known()
                        ),
                    ));
                }
            }
        }
        None => match reg.locks.as_slice() {
            [] => None,
            [(id, _)] => Some(id.clone()),
            // Only the gateway's address is needed, which every lock shares.
            [(id, _), ..] if any_lock => Some(id.clone()),
            _ => {
                return Err(fail(
                    2,
                    format!(
                        "the plant has several locks; choose one with --lock: {}",
                        known()
                    ),
                ));
            }
        },
    };
    let connect = crate::sip::ConnectArgs::registration(
        path,
        args.flavour,
        lock_id,
        args.server.clone(),
        args.ca.clone(),
    );
    Ok((connect, reg.locks.clone()))
}

/// `bticino listen`: the listener, with the client certificate renewed through Legrand's
/// certificate endpoint 30 days before it ends (a renewal is swapped in and the SIP
/// connection reconnects gracefully). Without an OAuth session the listener runs and says
/// that renewal is off.
fn listen(args: &ListenArgs) -> Result<(), Failure> {
    let (connect, _) = saved(&args.account, None, true)?;
    let mut config = crate::sip::sip_config(&connect, true)?;
    let duration = args.duration;
    oauth::runtime()?.block_on(async move {
        let renewer = match renewal(&args.account, args.app_secret_file.as_deref()).await {
            Ok(renewer) => {
                config.identity = Some(renewer.identity().clone());
                Some(renewer)
            }
            Err(reason) => {
                out!(
                    "{}",
                    serde_json::json!({"event": "renewal_off", "reason": reason})
                );
                None
            }
        };
        let control = control_path(&args.account);
        let beside = move |client: latchkey_tokio::sip::SipClient| async move {
            let renew = async move {
                match renewer {
                    Some(renewer) => renewer.run().await,
                    None => std::future::pending().await,
                }
            };
            tokio::join!(renew, control_socket(control, client));
        };
        crate::sip::listen_async(config, duration, beside).await
    })
}

/// The certificate renewer of the saved registration (see [`listen`]).
async fn renewal(
    args: &SavedAccountArgs,
    app_secret_file: Option<&std::path::Path>,
) -> Result<
    latchkey_tokio::renewer::CertRenewer<
        latchkey_tokio::renewer::CloudSource<latchkey_tokio::renewer::LegrandIssuer>,
    >,
    String,
> {
    use latchkey_tokio::renewer::CloudSource;
    use latchkey_tokio::renewer::{CertRenewer, CertifiedPair, RenewalEvent};
    let path = args.state_dir.join(registration_file(args.flavour));
    let reg: Registration = crate::read_limited(&path, crate::MAX_SMALL_FILE)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| format!("{} is unreadable", path.display()))?;
    let (Some(plant), Some(gateway), Some(cert), Some(roots)) = (
        reg.plant.as_ref(),
        reg.gateway_id.as_ref(),
        reg.certificate_pem.clone(),
        reg.ca_chain_pem.clone(),
    ) else {
        return Err("the registration lacks its plant, gateway, certificate or CA chain".into());
    };
    let key = crate::read_limited(
        &args.state_dir.join(key_file(args.flavour)),
        crate::MAX_SMALL_FILE,
    )
    .map_err(|(_, e)| format!("the client key: {e}"))?;
    let provider = oauth::ProviderArgs::for_provider(
        args.flavour.provider(),
        args.state_dir.clone(),
        args.ca_file.clone(),
        args.profile_file.clone(),
    );
    let (profile, _, state) = oauth::setup(&provider).await.map_err(|(_, m)| m)?;
    let keeper = oauth::open(&provider).await.map_err(|(_, m)| m)?;
    if keeper.status().state == Phase::NoSession {
        return Err(format!(
            "no OAuth session to renew the certificate with: `latchkey login --provider {}`",
            args.flavour.provider()
        ));
    }
    let api = LegrandApi::for_profile(&profile).map_err(|e| e.to_string())?;
    let mut source = CloudSource::legrand(keeper, api, plant.to_plant(), &reg.client_id, gateway);
    if let Some(app) = app_credentials(&profile, app_secret_file).map_err(|(_, m)| m)? {
        source = source.with_app_credentials(app);
    }
    CertRenewer::builder(source)
        .policy(latchkey_pki::schedule::RenewalPolicy::bticino())
        .usage(Usage::ClientAuth)
        .roots(roots.into_bytes())
        .seed_identity(reg.client_id.as_bytes())
        .persist(state, format!("{}-sip-client", args.flavour.provider()))
        .initial_pair(CertifiedPair::new(cert.into_bytes(), key))
        .observer(Box::new(|event: &RenewalEvent| {
            out!(
                "{}",
                serde_json::json!({"event": "certificate", "detail": event.to_string()})
            );
        }))
        .start()
        .await
        .map_err(|e| e.to_string())
}

/// The C100X app's application credentials of `profile` with the secret in `secret_file`
/// (trimmed), if one was given.
fn app_credentials(
    profile: &latchkey_oauth_core::profile::Profile,
    secret_file: Option<&std::path::Path>,
) -> Result<Option<latchkey_oauth_core::cloud::legrand::AppCredentials>, Failure> {
    let Some(path) = secret_file else {
        return Ok(None);
    };
    let secret =
        crate::read_text_limited(path, crate::MAX_SMALL_FILE).map_err(|(code, e)| fail(code, e))?;
    let secret = secret.trim();
    if secret.is_empty() {
        return Err(fail(2, format!("{} is empty", path.display())));
    }
    latchkey_oauth_core::cloud::legrand::AppCredentials::from_profile(
        profile,
        latchkey_oauth_core::secret::Secret::new(secret.to_owned()),
    )
    .map(Some)
    .map_err(|e| {
        fail(
            2,
            format!("--app-secret-file: {e} (set it under [vendor] in a --profile-file)"),
        )
    })
}

/// Where a running `listen` takes commands: a Unix socket in the state directory (mode
/// 0600 in a 0700 directory: only this user), so `open` and `light` use the registered
/// connection instead of a one-shot one.
fn control_path(args: &SavedAccountArgs) -> PathBuf {
    args.state_dir
        .join(format!("{}-listen.sock", args.flavour.provider()))
}

/// Serves `{"to","content_type","body"}` lines with one outcome line each, until the
/// listener stops. Without Unix sockets (or when the socket cannot be made) it does nothing.
async fn control_socket(path: PathBuf, client: latchkey_tokio::sip::SipClient) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
        let _ = std::fs::remove_file(&path);
        let Ok(listener) = tokio::net::UnixListener::bind(&path) else {
            return;
        };
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        let _guard = RemoveOnDrop(path);
        // Commands in flight at most; more are answered "busy" at once.
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of descriptors (or a reset while queued): pause, never spin.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            };
            let Ok(slot) = std::sync::Arc::clone(&slots).try_acquire_owned() else {
                let (_, mut write) = stream.into_split();
                let busy = serde_json::json!({"outcome": "not_sent", "reason": "busy"});
                let _ = write.write_all(format!("{busy}\n").as_bytes()).await;
                continue;
            };
            let client = client.clone();
            tokio::spawn(async move {
                let _slot = slot;
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                let mut reader = tokio::io::BufReader::new(read.take(64 * 1024));
                let read = tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    reader.read_line(&mut line),
                )
                .await;
                let answer = match (read, serde_json::from_str::<serde_json::Value>(&line)) {
                    (Ok(Ok(_)), Ok(v)) => match (
                        v["to"].as_str(),
                        v["content_type"].as_str(),
                        v["body"].as_str(),
                    ) {
                        (Some(to), Some(ct), Some(body)) => crate::sip::outcome_json(
                            &client.send_message(to, ct, body.as_bytes()).await,
                        ),
                        _ => {
                            serde_json::json!({"outcome": "not_sent", "reason": "give to, content_type and body"})
                        }
                    },
                    _ => serde_json::json!({"outcome": "not_sent", "reason": "not one JSON line"}),
                };
                let _ = write.write_all(format!("{answer}\n").as_bytes()).await;
            });
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (path, client);
        std::future::pending::<()>().await;
    }
}

/// Removes the control socket when the listener stops.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// How long `open` and `light` wait for a running `listen` to report the outcome of the
/// MESSAGE it took: longer than the listener can take (its queue holds a command up to 20 s,
/// then a MESSAGE transaction and its digest retry take up to 32 s each).
const LISTENER_ANSWER_WAIT: std::time::Duration = std::time::Duration::from_secs(100);

/// Sends one MESSAGE through a running `listen` when there is one; `None` when nothing
/// listens on the control socket (the caller then makes a one-shot connection). Once the
/// listener has taken the request, the answer is its outcome, or an error saying the outcome
/// is unknown: never `None`, which would send the command a second time.
fn via_listener(
    account: &SavedAccountArgs,
    to: &str,
    content_type: &str,
    body: &str,
) -> Option<Result<(), Failure>> {
    #[cfg(unix)]
    {
        use std::io::{BufRead as _, Write as _};
        let path = control_path(account);
        let mut stream = std::os::unix::net::UnixStream::connect(&path).ok()?;
        let _ = stream.set_read_timeout(Some(LISTENER_ANSWER_WAIT));
        let request = serde_json::json!({"to": to, "content_type": content_type, "body": body});
        stream.write_all(format!("{request}\n").as_bytes()).ok()?;
        let mut line = String::new();
        let read = std::io::BufReader::new(stream).read_line(&mut line);
        let Ok(answer) = serde_json::from_str::<serde_json::Value>(&line) else {
            let why = match read {
                Err(e) => e.to_string(),
                Ok(_) => format!("it answered {:?}", line.trim_end()),
            };
            return Some(Err(fail(
                1,
                format!(
                    "the running listener took the command but its outcome is unknown ({why}); \
                     it was not sent again"
                ),
            )));
        };
        out!("{answer}");
        Some(if answer["outcome"] == "delivered" {
            Ok(())
        } else {
            Err(fail(
                1,
                format!("the MESSAGE failed (through the running listener): {answer}"),
            ))
        })
    }
    #[cfg(not(unix))]
    {
        let _ = (account, to, content_type, body);
        None
    }
}

fn open(args: &OpenArgs) -> Result<(), Failure> {
    let (connect, locks) = saved(&args.account, args.lock.as_deref(), false)?;
    if locks.is_empty() {
        return Err(fail(
            2,
            "the registration lists no locks; run `latchkey bticino setup` again",
        ));
    }
    // Like the reference gate opener: no REGISTER for a one-shot command.
    let mut config = crate::sip::sip_config(&connect, false)?;
    if let Some(gate) = &mut config.agent.gate {
        gate.content_type.clone_from(&args.content_type);
        if let Some(lock) = connect.lock() {
            let body = latchkey_oauth_core::cloud::legrand::lock_release_body(lock, rpc_id()?);
            if let Some(done) = via_listener(&args.account, &gate.target, &args.content_type, &body)
            {
                return done;
            }
        }
    }
    crate::sip::open_gate_with(config)
}

fn light(args: &LightArgs) -> Result<(), Failure> {
    let (connect, _) = saved(&args.account, None, true)?;
    let config = crate::sip::sip_config(&connect, false)?;
    let Some(target) = config.agent.gate.as_ref().map(|g| g.target.clone()) else {
        return Err(fail(
            2,
            "the registration lists no gateway locks; run `latchkey bticino setup` again",
        ));
    };
    let body = latchkey_oauth_core::cloud::legrand::light_on_body(&args.light, rpc_id()?);
    if let Some(done) = via_listener(&args.account, &target, &args.content_type, &body) {
        return done;
    }
    crate::sip::one_shot(
        config,
        Some((target, args.content_type.clone(), body.into_bytes())),
    )
}

/// A random non-negative JSON-RPC id (FACTS.md §1.5).
fn rpc_id() -> Result<u32, Failure> {
    let mut id = [0u8; 4];
    getrandom::fill(&mut id).map_err(|e| fail(1, format!("no randomness: {e}")))?;
    Ok(u32::from_le_bytes(id) & 0x7fff_ffff)
}

fn registration_file(flavour: Flavour) -> String {
    format!("{}-registration.json", flavour.provider())
}

fn key_file(flavour: Flavour) -> String {
    format!("{}-client-key.pem", flavour.provider())
}

fn setup(args: SetupArgs) -> Result<(), Failure> {
    let provider = oauth::ProviderArgs::for_provider(
        args.flavour.provider(),
        args.state_dir.clone(),
        args.ca_file.clone(),
        args.profile_file.clone(),
    );
    // A session first: reuse the stored one, log in otherwise.
    let needs_login = oauth::runtime()?.block_on(async {
        let keeper = oauth::open(&provider).await?;
        Ok::<_, Failure>(matches!(
            keeper.status().state,
            Phase::NoSession | Phase::ReauthRequired
        ))
    })?;
    if needs_login {
        err!(
            "No session for {} yet: logging in.",
            args.flavour.provider()
        );
        oauth::login(provider.clone(), args.login.clone())?;
    }
    oauth::runtime()?.block_on(register(&args, &provider))
}

async fn register(args: &SetupArgs, provider: &ProviderArgs) -> Result<(), Failure> {
    let (profile, client, state) = oauth::setup(provider).await?;
    let keeper = oauth::open(provider).await?;
    let api = LegrandApi::for_profile(&profile).map_err(|e| fail(2, e.to_string()))?;
    let reg_name = registration_file(args.flavour);
    let registration = match state
        .read(&reg_name)
        .await
        .map_err(|e| fail(2, e.to_string()))?
    {
        Some(bytes) => {
            let reg: Registration = serde_json::from_slice(&bytes)
                .map_err(|e| fail(2, format!("{reg_name} is not valid: {e}")))?;
            err!("Resuming the registration of client {}.", reg.client_id);
            reg
        }
        None => {
            let mut random = [0u8; 32];
            getrandom::fill(&mut random).map_err(|e| fail(2, format!("no OS randomness: {e}")))?;
            Registration::new(&args.client_name, &random)
        }
    };
    let mut flow = RegistrationFlow::new(api, registration, args.plant.clone());
    if let Some(app) = app_credentials(&profile, args.app_secret_file.as_deref())? {
        err!("The certificate is asked for with the application credentials.");
        flow = flow.with_app_credentials(app);
    }
    let key_name = key_file(args.flavour);
    let mut retried = false;
    let done = loop {
        let (token, generation) = keeper
            .access_token()
            .await
            .map_err(|e| fail(1, e.to_string()))?;
        let step = flow.next(&token).map_err(|e| fail(1, e.to_string()))?;
        match step {
            Step::Send(request) => {
                let response = client
                    .send(&request)
                    .await
                    .map_err(|e| fail(1, e.to_string()))?;
                match flow.handle_response(&response) {
                    Ok(()) => retried = false,
                    // The token session decides (one refresh, never a loop); the flow then
                    // repeats the same step with the token `access_token` hands out next.
                    Err(SetupError::Api(ApiError::Unauthorized)) if !retried => {
                        retried = true;
                        if let Unauthorized::GiveUp { reason } = keeper.unauthorized(generation) {
                            return Err(fail(1, format!("the API refused the token: {reason}")));
                        }
                    }
                    Err(e) => return Err(fail(1, e.to_string())),
                }
            }
            Step::Persist(reg) => {
                let bytes = serde_json::to_vec_pretty(&reg)
                    .map_err(|e| fail(2, format!("cannot write {reg_name}: {e}")))?;
                state
                    .write(&reg_name, bytes)
                    .await
                    .map_err(|e| fail(2, e.to_string()))?;
                flow.handle_persisted();
            }
            Step::MakeCsr(spec) => {
                // A stored key is reused: an interrupted run never leaves one behind.
                let key = match state
                    .read(&key_name)
                    .await
                    .map_err(|e| fail(2, e.to_string()))?
                {
                    Some(pem) => PrivateKey::from_pem(&pem)
                        .map_err(|e| fail(2, format!("{key_name}: {e}")))?,
                    None => {
                        let key = PrivateKey::generate(KeyType::P256, &mut crate::OsRng)
                            .map_err(|e| fail(2, e.to_string()))?;
                        state
                            .write(&key_name, key.to_pem().as_bytes().to_vec())
                            .await
                            .map_err(|e| fail(2, e.to_string()))?;
                        key
                    }
                };
                let params = RequestParams::legrand(
                    &spec.client_id,
                    &spec.owner_id,
                    &spec.gateway_id,
                    &spec.owner_email,
                    &spec.unit,
                );
                let csr = Csr::create(&params, &key).map_err(|e| fail(2, e.to_string()))?;
                flow.handle_csr(csr.to_der_base64());
            }
            Step::Done(reg) => break reg,
            _ => return Err(fail(2, "registration asked for an unknown step")),
        }
        while let Some(p) = flow.poll_progress() {
            err!("{}", describe(&p));
        }
    };
    // The Node.js client's files, for tools that read them (and latchkey's SIP commands).
    let now = rfc3339(latchkey_tokio::keeper::now());
    let key_pem = state
        .read(&key_name)
        .await
        .map_err(|e| fail(2, e.to_string()))?
        .unwrap_or_default();
    let cert_pem = done.certificate_pem.clone().unwrap_or_default();
    // The issued certificate must belong to the key and chain to the CA (validated before
    // anything uses it; the registration itself is kept either way).
    let chain = done.ca_chain_pem.clone().unwrap_or_default();
    let bundle = Bundle::new(cert_pem.as_bytes(), &key_pem)
        .with_roots(chain.as_bytes())
        .with_usage(Usage::ClientAuth);
    if let Err(e) = validate(&bundle, latchkey_tokio::keeper::now()) {
        return Err(fail(
            1,
            format!(
                "the certificate the service issued is not usable: {e} (the registration is \
                 saved; run setup again to request a new certificate after removing \
                 certificate_pem from {reg_name})"
            ),
        ));
    }
    let files = [
        (
            "sip_account.json",
            sip_account_json(&done, &now).unwrap_or_default(),
        ),
        (
            "client-certs.json",
            client_certs_json(&cert_pem, &String::from_utf8_lossy(&key_pem)),
        ),
    ];
    for (name, text) in &files {
        state
            .write(name, text.as_bytes().to_vec())
            .await
            .map_err(|e| fail(2, e.to_string()))?;
    }
    if let Some(dir) = &args.export {
        let export = latchkey_tokio::state::StateDir::open(dir)
            .await
            .map_err(|e| fail(2, e.to_string()))?;
        for (name, text) in &files {
            export
                .write(name, text.as_bytes().to_vec())
                .await
                .map_err(|e| fail(2, e.to_string()))?;
        }
    }
    let account = done
        .account
        .as_ref()
        .map(|a| a.sip_uri.as_str())
        .unwrap_or("?");
    err!("Registered: SIP account {account}");
    for (id, name) in &done.locks {
        err!("  lock {id:<24} {name}");
    }
    err!(
        "Saved in {} ({reg_name}, {key_name}, sip_account.json, client-certs.json; secrets 0600).",
        args.state_dir.display()
    );
    Ok(())
}

fn describe(p: &Progress) -> String {
    match p {
        Progress::PlantChosen { name } => format!("plant: {name}"),
        Progress::GatewayFound { id, locks } => format!("gateway: {id} ({locks} locks)"),
        Progress::AccountReady { sip_uri, adopted } => format!(
            "SIP account: {sip_uri}{}",
            if *adopted {
                " (from the interrupted run)"
            } else {
                ""
            }
        ),
        Progress::CertificateIssued => "client certificate issued".to_owned(),
        _ => format!("{p:?}"),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A running `listen` that takes a command and closes without an outcome (it stopped,
    /// or crashed): the command may have been sent, so `open` and `light` must not send it a
    /// second time over a one-shot connection.
    #[test]
    fn a_command_the_listener_took_is_never_sent_again_when_its_outcome_is_unknown() {
        let dir = std::env::temp_dir().join(format!("lk-control-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let account = SavedAccountArgs {
            flavour: Flavour::C100x,
            state_dir: dir.clone(),
            server: None,
            ca: None,
            ca_file: None,
            profile_file: None,
        };
        let path = control_path(&account);
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let taken = std::thread::spawn(move || {
            use std::io::BufRead as _;
            let (stream, _) = listener.accept().unwrap();
            let mut line = String::new();
            std::io::BufReader::new(&stream)
                .read_line(&mut line)
                .unwrap();
            line
        });
        let answer = via_listener(&account, "sip:c100x@gw.example", "text/plain", "{}");
        assert!(taken.join().unwrap().contains("sip:c100x@gw.example"));
        let Some(Err(failure)) = answer else {
            panic!("a command the listener took must not fall back: {answer:?}");
        };
        assert!(
            format!("{failure:?}").contains("not sent again"),
            "{failure:?}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
