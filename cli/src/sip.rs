//! `latchkey sip listen | open-gate | message`: the SIP user agent of `latchkey-tokio` over
//! mutual TLS, configured from the BTicino Node.js client's files (`sip_account.json`,
//! `client-certs.json`) or latchkey's own (`bticino-<flavour>-registration.json` with its
//! `bticino-<flavour>-client-key.pem`). This file reads files and arguments, builds the
//! profile with the BTicino preset, and prints; the agent does the SIP.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use latchkey_oauth_core::cloud::legrand::files::{parse_client_certs_file, parse_sip_account_file};
use latchkey_oauth_core::cloud::legrand::setup::Registration;
use latchkey_protocol::sip::agent::preset::{Bticino, BticinoFlavour};
use latchkey_protocol::sip::agent::{
    AgentConfig, CallEnd, DisconnectReason, Event, FailReason, GateConfig, Server, StreamTransport,
};
use latchkey_tokio::http::Roots;
use latchkey_tokio::sip::{Outcome, SipClient, SipConfig, SipEvent};
use latchkey_tokio::tls::{Identity, LiveIdentity};
use serde_json::{Value, json};

use crate::bticino::Flavour;
use crate::oauth::{Failure, fail, runtime};

/// Where and as whom to connect (shared by every `sip` command that talks to a server).
#[derive(Args, Debug)]
pub(crate) struct ConnectArgs {
    /// The SIP account: the Node.js client's sip_account.json, or latchkey's
    /// bticino-FLAVOUR-registration.json (which also supplies the certificate, the CA
    /// chain and the lock; the key is read from the bticino-FLAVOUR-client-key.pem beside it).
    #[arg(long)]
    account: PathBuf,
    /// Client certificate: a PEM file (with --key) or the Node.js client's client-certs.json
    /// (certificate and key).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// Private key (PEM) of --cert.
    #[arg(long)]
    key: Option<PathBuf>,
    /// CA certificates (PEM) the server must chain to (the Legrand CACerts chain); default:
    /// the registration's CA chain, else the compiled-in web PKI roots.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Connect to HOST:PORT instead of vdesip.bs.iotleg.com:5228 (also the TLS name
    /// checked and the outbound proxy).
    #[arg(long)]
    server: Option<String>,
    /// App flavour (decides the gateway's SIP user).
    #[arg(long, value_enum, default_value_t = Flavour::C100x)]
    flavour: Flavour,
    /// The lock module id for open-gate (default: the registration's first lock).
    #[arg(long)]
    lock: Option<String>,
    /// Send the gate command to this URI instead of sip:GATEWAY-USER@DOMAIN.
    #[arg(long)]
    gate_uri: Option<String>,
    /// Let anyone ring (default: only the gateway's user at the account's domain).
    #[arg(long)]
    any_caller: bool,
    /// Registration expiry to ask for, seconds (default 600).
    #[arg(long)]
    expires: Option<u32>,
}

impl ConnectArgs {
    /// The account `latchkey bticino setup` saved (`registration` names its file; the
    /// certificate, CA chain and key come with it).
    pub(crate) fn registration(
        registration: PathBuf,
        flavour: Flavour,
        lock: Option<String>,
        server: Option<String>,
        ca: Option<PathBuf>,
    ) -> ConnectArgs {
        ConnectArgs {
            account: registration,
            cert: None,
            key: None,
            ca,
            server,
            flavour,
            lock,
            gate_uri: None,
            any_caller: false,
            expires: None,
        }
    }
}

impl ConnectArgs {
    /// The lock module id given (by `--lock` or a saved registration's choice).
    pub(crate) fn lock(&self) -> Option<&str> {
        self.lock.as_deref()
    }
}

/// `latchkey sip listen`
#[derive(Args, Debug)]
pub(crate) struct ListenArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Stop (un-REGISTER) after this many seconds; default: run until killed.
    #[arg(long)]
    duration: Option<u64>,
}

/// `latchkey sip open-gate`
#[derive(Args, Debug)]
pub(crate) struct OpenGateArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Register before sending (the reference gate opener does not).
    #[arg(long)]
    register: bool,
}

/// `latchkey sip message`
#[derive(Args, Debug)]
pub(crate) struct MessageArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Request-URI and To of the MESSAGE.
    #[arg(long)]
    to: String,
    /// Content-Type of the body.
    #[arg(long, default_value = "text/plain")]
    content_type: String,
    /// The body.
    #[arg(long)]
    body: String,
    /// Register before sending.
    #[arg(long)]
    register: bool,
}

/// Runs `latchkey sip listen`: one JSON line per event on stdout until `--duration` passes.
pub(crate) fn listen(args: ListenArgs) -> Result<(), Failure> {
    let config = sip_config(&args.connect, true)?;
    listen_with(config, args.duration)
}

/// Listens with `config` until `duration` passes or SIGINT/SIGTERM arrives, then
/// un-REGISTERs and returns.
pub(crate) fn listen_with(config: SipConfig, duration: Option<u64>) -> Result<(), Failure> {
    runtime()?.block_on(listen_async(config, duration, |_| std::future::pending()))
}

/// [`listen_with`] inside a runtime, running `beside` (a certificate renewer, a control
/// socket) with a handle of the client meanwhile.
pub(crate) async fn listen_async<F>(
    config: SipConfig,
    duration: Option<u64>,
    beside: impl FnOnce(SipClient) -> F,
) -> Result<(), Failure>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let (client, driver) = SipClient::new(config).map_err(|e| fail(2, e.to_string()))?;
    tokio::spawn(driver.run());
    let beside = tokio::spawn(beside(client.clone()));
    // SIGINT/SIGTERM stop it whether or not a duration is set: it then un-REGISTERs.
    let stop = async {
        match duration {
            Some(s) => tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(s)) => {}
                () = crate::serve::wait_for_signal_tokio() => {}
            },
            None => crate::serve::wait_for_signal_tokio().await,
        }
    };
    tokio::pin!(stop);
    loop {
        tokio::select! {
            event = client.next_event() => match event {
                Some(e) => print_event(&e),
                None => {
                    beside.abort();
                    return Ok(());
                }
            },
            () = &mut stop => break,
        }
    }
    let (_, ()) = tokio::join!(
        async {
            while let Some(e) = client.next_event().await {
                print_event(&e);
            }
        },
        client.shutdown()
    );
    beside.abort();
    Ok(())
}

/// Runs `latchkey sip open-gate`.
pub(crate) fn open_gate(args: OpenGateArgs) -> Result<(), Failure> {
    let config = sip_config(&args.connect, args.register)?;
    open_gate_with(config)
}

/// Sends the gate command of `config` once.
pub(crate) fn open_gate_with(config: SipConfig) -> Result<(), Failure> {
    if config.agent.gate.is_none() {
        return Err(fail(
            2,
            "no lock to open: give --lock (or use a registration file that lists locks)",
        ));
    }
    one_shot(config, None)
}

/// Runs `latchkey sip message`.
pub(crate) fn message(args: MessageArgs) -> Result<(), Failure> {
    let config = sip_config(&args.connect, args.register)?;
    one_shot(
        config,
        Some((args.to, args.content_type, args.body.into_bytes())),
    )
}

/// Sends one MESSAGE (the gate command when `message` is `None`), prints its outcome as a
/// JSON line, shuts down. Exit 0 on 2xx, 1 with the status and reason otherwise.
pub(crate) fn one_shot(
    config: SipConfig,
    message: Option<(String, String, Vec<u8>)>,
) -> Result<(), Failure> {
    let (client, driver) = SipClient::new(config).map_err(|e| fail(2, e.to_string()))?;
    let outcome = runtime()?.block_on(async move {
        tokio::spawn(driver.run());
        let outcome = match &message {
            Some((to, ct, body)) => client.send_message(to, ct, body).await,
            None => client.open_gate().await,
        };
        // Connection errors seen on the way explain a NotSent failure.
        let mut errors = Vec::new();
        while let Some(e) = client.try_next_event() {
            if let SipEvent::ConnectFailed { error, .. } | SipEvent::ConnectionError { error } = e {
                errors.push(error);
            }
        }
        client.shutdown().await;
        (outcome, errors)
    });
    match outcome {
        (Ok(Outcome::Delivered { status }), _) => {
            out!("{}", json!({"outcome": "delivered", "status": status}));
            Ok(())
        }
        (Ok(Outcome::Failed { status, reason }), errors) => {
            out!(
                "{}",
                json!({"outcome": "failed", "status": status, "reason": reason.to_string()})
            );
            let mut text = match &reason {
                FailReason::Rejected { status, phrase } => format!("SIP {status} {phrase}"),
                other => other.to_string(),
            };
            if let Some(e) = errors.last() {
                text.push_str(&format!(" ({e})"));
            }
            Err(fail(1, format!("the MESSAGE failed: {text}")))
        }
        (Ok(other), _) => Err(fail(1, format!("{other:?}"))),
        (Err(e), _) => Err(fail(1, format!("the MESSAGE was not issued: {e}"))),
    }
}

/// A MESSAGE's outcome as the one JSON line the commands print.
pub(crate) fn outcome_json(outcome: &Result<Outcome, latchkey_tokio::sip::SipError>) -> Value {
    match outcome {
        Ok(Outcome::Delivered { status }) => json!({"outcome": "delivered", "status": status}),
        Ok(Outcome::Failed { status, reason }) => {
            json!({"outcome": "failed", "status": status, "reason": reason.to_string()})
        }
        Ok(other) => json!({"outcome": "failed", "reason": format!("{other:?}")}),
        Err(e) => json!({"outcome": "not_sent", "reason": e.to_string()}),
    }
}

/// The account as read from either file format.
struct AccountFile {
    username: String,
    domain: String,
    password: String,
    cert_pem: Option<String>,
    key_pem: Option<Vec<u8>>,
    ca_pem: Option<String>,
    lock: Option<String>,
}

/// Largest account, certificate, key or CA file read (they are a few KiB).
const MAX_FILE: usize = 4 * 1024 * 1024;

fn read(path: &Path, what: &str) -> Result<Vec<u8>, Failure> {
    crate::read_limited(path, MAX_FILE).map_err(|(code, e)| fail(code, format!("{what}: {e}")))
}

/// Whether the certificate `renewed` (PEM) was issued after `original` (none counts as
/// older).
fn issued_after(renewed: &[u8], original: Option<&str>) -> bool {
    let not_before = |pem: &[u8]| {
        latchkey_pki::inspect::CertInfo::from_pem(pem)
            .ok()
            .and_then(|certs| certs.into_iter().next())
            .map(|leaf| leaf.not_before)
    };
    match (
        not_before(renewed),
        original.map(|o| not_before(o.as_bytes())),
    ) {
        (Some(renewed), Some(Some(original))) => renewed > original,
        (Some(_), None | Some(None)) => true,
        (None, _) => false,
    }
}

fn account_file(path: &Path) -> Result<AccountFile, Failure> {
    let bytes = read(path, "the account file")?;
    let doc: Value = serde_json::from_slice(&bytes)
        .map_err(|e| fail(2, format!("{}: not JSON: {e}", path.display())))?;
    if doc.get("client_id").is_some() && doc.get("version").is_some() {
        let reg: Registration = serde_json::from_value(doc).map_err(|e| {
            fail(
                2,
                format!("{}: not a latchkey registration: {e}", path.display()),
            )
        })?;
        let account = reg.account.as_ref().ok_or_else(|| {
            fail(
                2,
                format!(
                    "{}: no SIP account yet; run `latchkey bticino setup`",
                    path.display()
                ),
            )
        })?;
        let uri = account.sip_uri.trim_start_matches("sip:");
        let domain = uri
            .split_once('@')
            .map(|(_, h)| h)
            .unwrap_or(uri)
            .to_owned();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let prefix = name.strip_suffix("-registration.json");
        let key_pem = prefix
            .map(|prefix| path.with_file_name(format!("{prefix}-client-key.pem")))
            .filter(|p| p.exists())
            .map(|p| read(&p, "the client key"))
            .transpose()?;
        // `bticino listen` renews the certificate into its own files: a command without a
        // running listener presents the newest of the two.
        let renewed = match (prefix, path.parent()) {
            (Some(prefix), Some(dir)) => {
                latchkey_tokio::renewer::read_stored_pair(dir, &format!("{prefix}-sip-client"))
                    .map_err(|e| fail(2, e.to_string()))?
            }
            _ => None,
        };
        let (cert_pem, key_pem) = match renewed {
            Some(pair) if issued_after(&pair.cert_pem, reg.certificate_pem.as_deref()) => (
                Some(String::from_utf8_lossy(&pair.cert_pem).into_owned()),
                Some(pair.key_pem().to_vec()),
            ),
            _ => (reg.certificate_pem.clone(), key_pem),
        };
        return Ok(AccountFile {
            username: account.username.clone(),
            domain,
            password: account.password.expose().to_owned(),
            cert_pem,
            key_pem,
            ca_pem: reg.ca_chain_pem.clone(),
            lock: reg.locks.first().map(|(id, _)| id.clone()),
        });
    }
    let saved =
        parse_sip_account_file(&bytes).map_err(|e| fail(2, format!("{}: {e}", path.display())))?;
    let domain = saved
        .sip_uri
        .split_once('@')
        .map(|(_, h)| h.to_owned())
        .unwrap_or_default();
    Ok(AccountFile {
        username: saved.username,
        domain,
        password: saved.password.expose().to_owned(),
        cert_pem: None,
        key_pem: None,
        ca_pem: None,
        lock: None,
    })
}

pub(crate) fn sip_config(args: &ConnectArgs, register: bool) -> Result<SipConfig, Failure> {
    let account = account_file(&args.account)?;
    let flavour = match args.flavour {
        Flavour::C100x => BticinoFlavour::C100x,
        Flavour::Diy => BticinoFlavour::Diy,
    };
    let mut profile = Bticino::new(&account.username, &account.domain, account.password.clone())
        .with_flavour(flavour);
    if let Some(lock) = args.lock.clone().or(account.lock.clone()) {
        profile = profile.with_lock(lock);
    }
    let mut agent: AgentConfig = profile.config().map_err(|e| fail(2, e.to_string()))?;
    agent.register = register;
    if let Some(server) = &args.server {
        let (host, port) = server
            .rsplit_once(':')
            .and_then(|(h, p)| {
                Some((
                    h.trim_start_matches('[').trim_end_matches(']'),
                    p.parse::<u16>().ok()?,
                ))
            })
            .ok_or_else(|| fail(2, format!("--server {server:?}: expected HOST:PORT")))?;
        agent.server = Server::new(host, port, StreamTransport::Tls);
        let host_uri = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        agent.outbound_proxy = Some(format!("sip:{host_uri}:{port};transport=tls;lr"));
    }
    if let Some(uri) = &args.gate_uri
        && let Some(gate) = &agent.gate
    {
        agent.gate = Some(GateConfig::new(
            uri.clone(),
            gate.content_type.clone(),
            gate.body_template.clone(),
        ));
    }
    if args.any_caller {
        agent.allowed_callers.clear();
    }
    if let Some(e) = args.expires {
        agent.expires = e;
    }
    agent.validate().map_err(|e| fail(2, e.to_string()))?;

    let (cert_pem, key_pem) = match (&args.cert, &args.key) {
        (Some(cert), key) => {
            let bytes = read(cert, "the certificate")?;
            if bytes.trim_ascii_start().starts_with(b"{") {
                let (c, k) = parse_client_certs_file(&bytes)
                    .map_err(|e| fail(2, format!("{}: {e}", cert.display())))?;
                (c.into_bytes(), k.expose().as_bytes().to_vec())
            } else {
                let key = match key {
                    Some(k) => read(k, "the key")?,
                    None => account
                        .key_pem
                        .clone()
                        .ok_or_else(|| fail(2, "--cert needs --key (or a client-certs.json)"))?,
                };
                (bytes, key)
            }
        }
        (None, _) => match (&account.cert_pem, &account.key_pem) {
            (Some(c), Some(k)) => (c.clone().into_bytes(), k.clone()),
            _ => return Err(fail(2, "no client certificate: give --cert (and --key)")),
        },
    };
    let identity = Identity::from_pem(&cert_pem, &key_pem)
        .map_err(|e| fail(2, format!("client certificate: {e}")))?;
    let mut config = SipConfig::new(agent);
    config.identity = Some(LiveIdentity::new(identity));
    config.roots = match (&args.ca, &account.ca_pem) {
        (Some(ca), _) => Roots::Pem(read(ca, "the CA file")?),
        (None, Some(pem)) => Roots::Pem(pem.clone().into_bytes()),
        (None, None) => Roots::WebPki,
    };
    Ok(config)
}

/// One event as one JSON line on stdout.
fn print_event(e: &SipEvent) {
    let v = event_json(e);
    out!("{v}");
}

fn event_json(e: &SipEvent) -> Value {
    match e {
        SipEvent::Connected {
            attempt,
            local,
            peer,
        } => {
            json!({"event": "connected", "attempt": attempt, "local": local.to_string(), "peer": peer.to_string()})
        }
        SipEvent::ConnectFailed { attempt, error } => {
            json!({"event": "connect_failed", "attempt": attempt, "error": error})
        }
        SipEvent::ConnectionError { error } => json!({"event": "connection_error", "error": error}),
        SipEvent::Lagged { missed } => json!({"event": "lagged", "missed": missed}),
        SipEvent::Agent(a) => agent_event_json(a),
        other => json!({"event": "other", "debug": format!("{other:?}")}),
    }
}

fn agent_event_json(e: &Event) -> Value {
    match e {
        Event::Registered { expires, contact } => {
            json!({"event": "registered", "expires": expires.as_secs(), "contact": contact})
        }
        Event::RegistrationRefreshed { expires } => {
            json!({"event": "registration_refreshed", "expires": expires.as_secs()})
        }
        Event::RegistrationFailed {
            status,
            reason,
            permanent,
            ..
        } => {
            json!({"event": "registration_failed", "status": status, "reason": reason, "permanent": permanent})
        }
        Event::RegistrationLapsed => json!({"event": "registration_lapsed"}),
        Event::Reconnecting {
            reason, attempt, ..
        } => {
            let why = match reason {
                DisconnectReason::Stale => "stale".to_owned(),
                other => other.to_string(),
            };
            json!({"event": "reconnecting", "reason": why, "attempt": attempt})
        }
        Event::ConnectionStale { silent_for } => {
            json!({"event": "stale", "silent_ms": u64::try_from(silent_for.as_millis()).unwrap_or(u64::MAX)})
        }
        Event::Doorbell(ring) => json!({
            "event": "doorbell",
            "call": ring.call.0,
            "from": ring.from,
            "from_display": ring.from_display,
            "to": ring.to,
            "call_id": ring.call_id,
            "content_type": ring.content_type,
            "body_len": ring.body.len(),
        }),
        Event::CallEnded { call, reason } => {
            let how = match reason {
                CallEnd::Declined { status } => format!("declined {status}"),
                other => format!("{other:?}"),
            };
            json!({"event": "call_ended", "call": call.0, "reason": how})
        }
        Event::CallFiltered { from } => json!({"event": "call_filtered", "from": from}),
        Event::Message(m) => json!({
            "event": "message",
            "kind": format!("{:?}", m.kind),
            "from": m.from,
            "to": m.to,
            "content_type": m.content_type,
            "body": String::from_utf8_lossy(&m.body),
        }),
        Event::MessageDelivered { id, status } => {
            json!({"event": "message_delivered", "id": id.0, "status": status})
        }
        Event::MessageFailed { id, status, reason } => {
            json!({"event": "message_failed", "id": id.0, "status": status, "reason": reason.to_string()})
        }
        Event::Closed => json!({"event": "closed"}),
        other => json!({"event": "other", "debug": format!("{other:?}")}),
    }
}

#[cfg(test)]
mod tests {
    use latchkey_pki::key::{KeyType, PrivateKey};
    use latchkey_pki::request::{Certificate, DistinguishedName, RequestParams, SelfSignedParams};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::issued_after;

    fn pem(not_before: u64) -> String {
        let mut rng = ChaCha20Rng::seed_from_u64(not_before);
        let key = PrivateKey::generate(KeyType::P256, &mut rng).unwrap();
        let params = SelfSignedParams::new(
            RequestParams::new(DistinguishedName::common_name("panel")),
            not_before,
            not_before + 86_400,
        );
        Certificate::self_signed(&params, &key, &mut rng)
            .unwrap()
            .to_pem()
    }

    #[test]
    fn the_renewed_certificate_is_presented_only_when_issued_after_the_registrations() {
        let (old, new) = (pem(1_800_000_000), pem(1_800_100_000));
        assert!(issued_after(new.as_bytes(), Some(&old)));
        assert!(!issued_after(old.as_bytes(), Some(&new)));
        assert!(!issued_after(old.as_bytes(), Some(&old)));
        // A registration without a certificate: the renewed one; an unreadable renewal: never.
        assert!(issued_after(new.as_bytes(), None));
        assert!(!issued_after(b"not a certificate", Some(&old)));
        assert!(issued_after(new.as_bytes(), Some("garbage")));
    }
}
