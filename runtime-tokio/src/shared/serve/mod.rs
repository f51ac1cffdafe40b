//! The local gateway (`latchkey serve`): the pure [`latchkey_gateway::App`] served over
//! HTTPS with WebSocket upgrades, plus a plain-HTTP port that redirects to it.
//!
//! This driver frames HTTP/1.1 ([`http1`], with `httparse`), runs TLS with a
//! [`LiveIdentity`](crate::tls::LiveIdentity) kept by a [`CertRenewer`] (a self-signed
//! certificate generated through `latchkey-pki` on first start, renewed before it ends,
//! replaced by an administrator's upload or regeneration without dropping connections),
//! frames WebSocket messages with tungstenite's codec, and performs the application's
//! effects: atomic state files, certificate swaps, token refreshes, messages to other
//! panels. No rule about provisioning, authentication or sessions lives here.
//!
//! # Limits
//!
//! * [`Limits`]: head size and field count, body size, slowloris timeouts on the head and the
//!   body, keep-alive idle time, write time, TLS handshake time.
//! * [`ServeConfig::max_connections`] open connections in all, and
//!   [`ServeConfig::max_connections_per_ip`] from one address: a connection past either is
//!   closed at once, before its TLS handshake.
//! * [`ws::MAX_QUEUED`] messages waiting for one panel: a panel that reads slower is closed.
//! * Password hashing (login, setup, password change) runs on the blocking pool without the
//!   application lock ([`latchkey_gateway::passwords`]), as many at once as the machine has
//!   cores (each holds Argon2id's memory, 19 MiB at the default cost); other requests and
//!   panel messages go on meanwhile.
//!
//! # State files (in the state directory, 0600, written atomically)
//!
//! | file | what |
//! |---|---|
//! | `gateway.json` | the application's state (admin hash, panels and their secrets, IOs, settings) |
//! | `guard.bin` | bans and counters (written on security events, every 5 minutes and at shutdown) |
//! | `https.*` | the TLS certificate and key, as the certificate renewer keeps them |
//!
//! A state write finishes before the response that depends on it is sent (a panel never
//! holds a secret the gateway could lose); writes are coalesced, newest wins.
//!
//! # Shutdown
//!
//! [`Gateway::shutdown`] stops accepting, lets requests in flight finish (their connections
//! close after the answer), sends WebSocket panels a 1001 close, waits at most
//! [`ServeConfig::shutdown_grace`], cuts the connections still open, then writes the state
//! and the guard's snapshot.

pub mod http1;
mod ws;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_lock::Semaphore;
use event_listener::Event as Signal;
use latchkey_gateway::passwords::PasswordResults;
use latchkey_gateway::{App, AppConfig, ConnId, Effect, Method, Now, Request, Response};
use latchkey_pki::request::{DistinguishedName, RequestParams, SubjectAltName};
use latchkey_protocol::guard::SecurityEvent;
use latchkey_protocol::time::Instant;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub use self::http1::Limits;
use self::http1::{Incoming, read_request, write_with_timeout};
pub use self::ws::MAX_QUEUED;
use self::ws::{Outbox, Outgoing};
use crate::keeper::TokenKeeper;
use crate::renewer::{CertRenewer, CertifiedPair, RenewError, RenewalEvent, SelfSignedSource};
use crate::rt::Rt;
pub use crate::rt::Spawner;
use crate::runtime::Runtime;
pub(crate) use crate::runtime::race;
use crate::state::{StateDir, StateError};
use crate::tls::{ClientAuth, server_config};
use latchkey_gateway::http1::encode_response;

/// The application state file.
pub const STATE_FILE: &str = "gateway.json";
/// The guard's snapshot file.
pub const GUARD_FILE: &str = "guard.bin";
/// The certificate renewer's record name (its files start with it).
pub const CERT_NAME: &str = "https";
/// How often the guard's counters are saved besides security events and shutdown.
pub const GUARD_SNAPSHOT_EVERY: Duration = Duration::from_secs(300);

/// Receives every [`ServeEvent`]; called on the gateway's tasks, so keep it short.
pub type Observer = Box<dyn Fn(&ServeEvent) + Send + Sync>;

/// How the gateway runs.
#[non_exhaustive]
pub struct ServeConfig {
    /// The HTTPS address (default 127.0.0.1:8443).
    pub https: SocketAddr,
    /// The plain-HTTP address that redirects to HTTPS (default 127.0.0.1:8080; `None`: no
    /// such port).
    pub http_redirect: Option<SocketAddr>,
    /// The host name the setup link and redirects name (default: the HTTPS address's IP).
    pub public_host: Option<String>,
    /// Extra names the self-signed certificate carries besides `localhost`, 127.0.0.1, ::1
    /// and the HTTPS address.
    pub cert_names: Vec<String>,
    /// Lifetime of self-signed certificates (default 398 days, the CA/Browser Forum's cap,
    /// so browsers that enforce it for user-trusted roots accept it too).
    pub cert_lifetime: Duration,
    /// Framing limits and timeouts.
    pub limits: Limits,
    /// Open connections at most, both ports together (default 4,096).
    pub max_connections: usize,
    /// Open connections from one IP address at most (default 256).
    pub max_connections_per_ip: usize,
    /// How long shutdown waits for connections to finish (default 10 s).
    pub shutdown_grace: Duration,
    /// The application's configuration.
    pub app: AppConfig,
    /// The token session shown on `/health` and the dashboard and refreshed by the admin.
    pub token: Option<TokenKeeper>,
    /// Receives every event.
    pub observer: Option<Observer>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            https: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8443),
            http_redirect: Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080)),
            public_host: None,
            cert_names: Vec::new(),
            cert_lifetime: Duration::from_secs(398 * 86_400),
            limits: Limits::default(),
            max_connections: 4096,
            max_connections_per_ip: 256,
            shutdown_grace: Duration::from_secs(10),
            app: AppConfig::default(),
            token: None,
            observer: None,
        }
    }
}

impl fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeConfig")
            .field("https", &self.https)
            .field("http_redirect", &self.http_redirect)
            .field("public_host", &self.public_host)
            .field("limits", &self.limits)
            .field("max_connections", &self.max_connections)
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .finish_non_exhaustive()
    }
}

/// What the gateway reports. Never carries a secret, except the one-time setup link, which
/// exists to be shown to the person starting the gateway.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ServeEvent {
    /// Listening.
    Listening {
        /// The HTTPS address.
        https: SocketAddr,
        /// The redirecting HTTP address.
        http: Option<SocketAddr>,
    },
    /// No admin password is set yet: open this link to set it (valid once).
    SetupLink {
        /// The link.
        url: String,
    },
    /// The certificate renewer's events (renewed, scheduled, failed).
    Certificate(RenewalEvent),
    /// The guard's security events (blacklists, blocks, locked accounts).
    Security(SecurityEvent),
    /// An IO's state was set (by the API or a panel).
    IoState {
        /// The IO.
        io: String,
        /// The state.
        state: String,
    },
    /// The admin changed the token keeper's settings.
    TokenSettings {
        /// Refresh automatically.
        auto_refresh_enabled: bool,
        /// Minutes before expiry.
        refresh_buffer_minutes: u32,
    },
    /// A state file could not be written (the request that needed it got a 500).
    PersistFailed {
        /// The file.
        file: &'static str,
        /// Why.
        reason: String,
    },
    /// Shutting down: no new connections; waiting for these to finish.
    ShuttingDown {
        /// Connections still open.
        connections: usize,
    },
    /// Stopped; the state is saved.
    Stopped,
}

impl fmt::Display for ServeEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeEvent::Listening { https, http } => match http {
                Some(http) => write!(f, "listening on https://{https} (http://{http} redirects)"),
                None => write!(f, "listening on https://{https}"),
            },
            ServeEvent::SetupLink { url } => write!(f, "set the admin password: {url}"),
            ServeEvent::Certificate(e) => write!(f, "certificate: {e}"),
            ServeEvent::Security(e) => write!(f, "security: {e:?}"),
            ServeEvent::IoState { io, state } => write!(f, "io {io} set to {state}"),
            ServeEvent::TokenSettings {
                auto_refresh_enabled,
                refresh_buffer_minutes,
            } => write!(
                f,
                "token settings: auto refresh {auto_refresh_enabled}, {refresh_buffer_minutes} min ahead"
            ),
            ServeEvent::PersistFailed { file, reason } => {
                write!(f, "could not save {file}: {reason}")
            }
            ServeEvent::ShuttingDown { connections } => {
                write!(f, "shutting down; {connections} connection(s) finishing")
            }
            ServeEvent::Stopped => f.write_str("stopped"),
        }
    }
}

/// Why the gateway could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServeError {
    /// The state directory or a state file.
    State(StateError),
    /// The saved application state is unusable (nothing was overwritten).
    Restore(String),
    /// The TLS certificate could not be loaded or generated.
    Certificate(RenewError),
    /// The TLS configuration.
    Tls(String),
    /// A listening socket.
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: io::Error,
    },
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::State(e) => write!(f, "state directory: {e}"),
            ServeError::Restore(e) => write!(
                f,
                "{STATE_FILE} is unusable ({e}); it was left as it is — move it away to start afresh"
            ),
            ServeError::Certificate(e) => write!(f, "TLS certificate: {e}"),
            ServeError::Tls(e) => write!(f, "TLS configuration: {e}"),
            ServeError::Bind { addr, error } => write!(f, "cannot listen on {addr}: {error}"),
        }
    }
}

impl std::error::Error for ServeError {}

/// A running gateway. Cheap to clone; all clones share one gateway.
#[derive(Clone)]
pub struct Gateway {
    server: Arc<Server>,
    listeners: Arc<Listeners>,
}

impl fmt::Debug for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gateway")
            .field("https", &self.listeners.https_addr)
            .field("http", &self.listeners.http_addr)
            .finish_non_exhaustive()
    }
}

struct Listeners {
    https: <Rt as Runtime>::Listener,
    https_addr: SocketAddr,
    http: Option<<Rt as Runtime>::Listener>,
    http_addr: Option<SocketAddr>,
}

/// The application, the clocks and everything the connections share.
pub(crate) struct Server {
    config: ServeConfig,
    /// Shared with the certificate renewer's observer.
    observer: Arc<Option<Observer>>,
    core: Mutex<Core>,
    /// Password hashes under way at most: one per core (each holds Argon2's memory).
    hashing: Semaphore,
    hub: Mutex<HashMap<ConnId, Arc<Outbox>>>,
    origin: std::time::Instant,
    stop: Signal,
    stopping: AtomicBool,
    /// Set when the shutdown grace is over: connection tasks end at their next await.
    finished: AtomicBool,
    finish: Signal,
    active: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    drained: Signal,
    state_file: Persister,
    guard_file: Persister,
    renewer: CertRenewer<SelfSignedSource>,
    acceptor: <Rt as Runtime>::Acceptor,
    https_port: u16,
    public_host: String,
}

/// What the application lock guards.
pub(crate) struct Core {
    pub(crate) app: App,
    rng: ChaCha20Rng,
}

impl Gateway {
    /// Opens the state (creating a self-signed certificate and a fresh application state on
    /// the first start), binds the ports and returns the gateway, not yet serving: call
    /// [`Gateway::run`].
    ///
    /// # Errors
    /// [`ServeError`] naming the file, the certificate or the address at fault. A state
    /// file that cannot be read is never overwritten.
    pub async fn start(mut config: ServeConfig, state: StateDir) -> Result<Gateway, ServeError> {
        let observer: Arc<Option<Observer>> = Arc::new(config.observer.take());
        let https = Rt::bind(config.https)
            .await
            .map_err(|error| ServeError::Bind {
                addr: config.https,
                error,
            })?;
        let https_addr = Rt::listener_addr(&https).map_err(|error| ServeError::Bind {
            addr: config.https,
            error,
        })?;
        let (http, http_addr) = match config.http_redirect {
            Some(addr) => {
                let l = Rt::bind(addr)
                    .await
                    .map_err(|error| ServeError::Bind { addr, error })?;
                let bound =
                    Rt::listener_addr(&l).map_err(|error| ServeError::Bind { addr, error })?;
                (Some(l), Some(bound))
            }
            None => (None, None),
        };
        let renewer = {
            let observer = Arc::clone(&observer);
            CertRenewer::builder(SelfSignedSource::new(
                certificate_request(&config, https_addr),
                config.cert_lifetime,
            ))
            .persist(state.clone(), CERT_NAME)
            .observer(Box::new(move |event: &RenewalEvent| {
                if let Some(o) = observer.as_ref() {
                    o(&ServeEvent::Certificate(event.clone()));
                }
            }))
            .start()
            .await
            .map_err(ServeError::Certificate)?
        };
        let tls = server_config(renewer.identity(), &ClientAuth::None, &[b"http/1.1"])
            .map_err(|e| ServeError::Tls(e.to_string()))?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| ServeError::Tls(format!("no operating-system randomness: {e}")))?;
        let mut rng = ChaCha20Rng::from_seed(seed);
        let origin = std::time::Instant::now();
        let now = Now::new(Instant::ORIGIN, unix_now());
        let app_config = config.app.clone();
        let mut app = match state.read(STATE_FILE).await.map_err(ServeError::State)? {
            Some(saved) => {
                let guard = state.read(GUARD_FILE).await.map_err(ServeError::State)?;
                App::restore(app_config, now, &mut rng, &saved, guard.as_deref())
                    .map_err(|e| ServeError::Restore(e.to_string()))?
            }
            None => {
                App::new(app_config, &mut rng).map_err(|e| ServeError::Restore(e.to_string()))?
            }
        };
        let chain: String = renewer
            .identity()
            .current()
            .chain()
            .iter()
            .map(|der| latchkey_pki::pem::encode_certificate(der))
            .collect();
        let _ = app.set_certificate(chain.as_bytes());
        if let Some(keeper) = &config.token {
            // The keeper refreshes as the settings the admin page shows say.
            let settings = app.utec_settings();
            apply_token_settings(
                keeper,
                settings.auto_refresh_enabled,
                settings.refresh_buffer_minutes,
            );
            app.set_token_status(Some(keeper.status()));
        }
        let first_state = app.state_json();
        let public_host = config
            .public_host
            .clone()
            .unwrap_or_else(|| match https_addr.ip() {
                IpAddr::V6(ip) if ip.is_unspecified() => "localhost".to_owned(),
                IpAddr::V4(ip) if ip.is_unspecified() => "localhost".to_owned(),
                IpAddr::V6(ip) => format!("[{ip}]"),
                IpAddr::V4(ip) => ip.to_string(),
            });
        let server = Arc::new(Server {
            acceptor: Rt::acceptor(tls),
            https_port: https_addr.port(),
            public_host,
            core: Mutex::new(Core { app, rng }),
            hashing: Semaphore::new(
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            ),
            hub: Mutex::new(HashMap::new()),
            origin,
            stop: Signal::new(),
            stopping: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            finish: Signal::new(),
            active: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            drained: Signal::new(),
            state_file: Persister::new(STATE_FILE, state.clone()),
            guard_file: Persister::new(GUARD_FILE, state),
            renewer,
            observer,
            config,
        });
        // A fresh state is on disk before anyone can see its setup link.
        let generation = server.state_file.submit(first_state);
        server.state_file.write_pending().await;
        server
            .state_file
            .wait(generation)
            .await
            .map_err(|reason| ServeError::Restore(format!("could not be written: {reason}")))?;
        Ok(Gateway {
            server,
            listeners: Arc::new(Listeners {
                https,
                https_addr,
                http,
                http_addr,
            }),
        })
    }

    /// The HTTPS address (port 0 resolved).
    #[must_use]
    pub fn https_addr(&self) -> SocketAddr {
        self.listeners.https_addr
    }

    /// The redirecting HTTP address.
    #[must_use]
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.listeners.http_addr
    }

    /// The one-time setup link while no admin password is set.
    #[must_use]
    pub fn setup_url(&self) -> Option<String> {
        let path = self.server.lock().app.setup_path()?;
        Some(format!(
            "https://{}:{}{path}",
            self.server.public_host, self.server.https_port
        ))
    }

    /// The certificate renewer that keeps the HTTPS identity.
    #[must_use]
    pub fn renewer(&self) -> &CertRenewer<SelfSignedSource> {
        &self.server.renewer
    }

    /// Stops the gateway gracefully (see the module docs); [`Gateway::run`] returns when
    /// it is done.
    pub fn shutdown(&self) {
        self.server.stopping.store(true, Ordering::Release);
        self.server.stop.notify(usize::MAX);
    }

    /// Serves until [`Gateway::shutdown`], spawning a task per connection on `spawner`.
    pub async fn run(&self, spawner: Spawner) {
        let server = &self.server;
        server.emit(&ServeEvent::Listening {
            https: self.listeners.https_addr,
            http: self.listeners.http_addr,
        });
        if let Some(url) = self.setup_url() {
            server.emit(&ServeEvent::SetupLink { url });
        }
        let serving = async {
            race(
                accept_loop(server, &self.listeners.https, true, &spawner),
                race(
                    async {
                        if let Some(http) = &self.listeners.http {
                            accept_loop(server, http, false, &spawner).await;
                        } else {
                            server.stopped().await;
                        }
                    },
                    race(
                        async {
                            app_timer(server).await;
                        },
                        race(
                            async {
                                // `run` returns at once when the embedding application runs
                                // this renewer's loop itself; serving goes on regardless.
                                race(
                                    async {
                                        Box::pin(server.renewer.run()).await;
                                        std::future::pending::<()>().await;
                                    },
                                    server.stopped(),
                                )
                                .await;
                            },
                            async {
                                match &server.config.token {
                                    // The keeper refreshes ahead of expiry; the application
                                    // shows its status.
                                    Some(keeper) => {
                                        race(
                                            async {
                                                race(
                                                    async {
                                                        Box::pin(keeper.run()).await;
                                                        std::future::pending::<()>().await;
                                                    },
                                                    server.stopped(),
                                                )
                                                .await;
                                            },
                                            token_status(server, keeper),
                                        )
                                        .await;
                                    }
                                    None => server.stopped().await,
                                }
                            },
                        ),
                    ),
                ),
            )
            .await;
            server.drain().await;
            // Connections still open now are cut at their next await, so nothing changes the
            // state after the last write below, and no request waits for a write that would
            // never come (an answer is only sent once its state is on disk, so what a
            // cut request changed was acknowledged to nobody).
            server.finished.store(true, Ordering::Release);
            server.finish.notify(usize::MAX);
            // A token refresh under way is answered and saved before the process may go
            // (stopping in the middle could lose a rotated refresh token); no request is
            // left to start another.
            if let Some(keeper) = &server.config.token {
                keeper.settle(crate::keeper::SETTLE_LIMIT).await;
            }
            // The last word: the state and the guard's counters.
            let now = server.now();
            let (state, guard) = {
                let core = server.lock();
                (core.app.state_json(), core.app.guard_snapshot(now))
            };
            let a = server.state_file.submit(state);
            let b = server.guard_file.submit(guard);
            let _ = server.state_file.wait(a).await;
            let _ = server.guard_file.wait(b).await;
        };
        // Boxed: the joined futures are large, and a caller's `block_on` may poll this on a
        // small thread stack.
        race(
            Box::pin(serving),
            Box::pin(race(
                server.state_file.run(server),
                server.guard_file.run(server),
            )),
        )
        .await;
        server.emit(&ServeEvent::Stopped);
    }
}

/// The request for self-signed certificates: CN `latchkey gateway`, SANs for every name the
/// gateway is reached by on this machine.
fn certificate_request(config: &ServeConfig, https: SocketAddr) -> RequestParams {
    let mut request = RequestParams::new(DistinguishedName::common_name("latchkey gateway"))
        .with_san(SubjectAltName::Dns("localhost".into()))
        .with_san(SubjectAltName::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)))
        .with_san(SubjectAltName::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    if !https.ip().is_unspecified() && !https.ip().is_loopback() {
        request = request.with_san(SubjectAltName::Ip(https.ip()));
    }
    for name in &config.cert_names {
        request = request.with_san(match name.parse::<IpAddr>() {
            Ok(ip) => SubjectAltName::Ip(ip),
            Err(_) => SubjectAltName::Dns(name.clone()),
        });
    }
    request
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Server {
    pub(crate) fn now(&self) -> Now {
        Now::new(
            Instant::from_duration_since_origin(self.origin.elapsed()),
            unix_now(),
        )
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        // Nothing panics while holding it; a poisoned lock still holds consistent state.
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Completes once shutdown has begun.
    async fn stopped(&self) {
        loop {
            let listener = self.stop.listen();
            if self.stopping() {
                return;
            }
            listener.await;
        }
    }

    /// Completes once the shutdown grace is over.
    async fn finished(&self) {
        loop {
            let listener = self.finish.listen();
            if self.finished.load(Ordering::Acquire) {
                return;
            }
            listener.await;
        }
    }

    fn emit(&self, event: &ServeEvent) {
        if let Some(observer) = self.observer.as_ref() {
            observer(event);
        }
    }

    /// Takes a connection slot for `ip`, or refuses it (over a limit, or shutting down).
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        if self.stopping() {
            return None;
        }
        let mut per_ip = self.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
        let count = per_ip.entry(ip).or_insert(0);
        if *count >= self.config.max_connections_per_ip
            || self.active.load(Ordering::Acquire) >= self.config.max_connections
        {
            if *count == 0 {
                per_ip.remove(&ip);
            }
            return None;
        }
        *count += 1;
        self.active.fetch_add(1, Ordering::AcqRel);
        Some(Slot {
            server: Arc::clone(self),
            ip,
        })
    }

    /// Waits until every connection has ended or the grace time has passed.
    async fn drain(&self) {
        let open = self.active.load(Ordering::Acquire);
        self.emit(&ServeEvent::ShuttingDown { connections: open });
        let _ = Rt::timeout(self.config.shutdown_grace, async {
            loop {
                let listener = self.drained.listen();
                if self.active.load(Ordering::Acquire) == 0 {
                    return;
                }
                listener.await;
            }
        })
        .await;
    }

    /// Runs the application on one request. The password hashing of a costly one is
    /// planned under the application lock, done on the blocking pool without it (at most
    /// [`Server::hashing`] at once), and handed to the application with the request.
    async fn handle(self: &Arc<Self>, peer: IpAddr, request: Request) -> (Response, Vec<Effect>) {
        if !request.is_costly() {
            return self.handle_locked(peer, &request, None);
        }
        let work = {
            let now = self.now();
            let mut core = self.lock();
            let Core { app, rng } = &mut *core;
            app.password_work(now, peer, &request, rng)
        };
        let results = match work {
            Some(work) => {
                let _permit = self.hashing.acquire().await;
                match Rt::unblock(move || work.run()).await {
                    Ok(results) => results,
                    Err(_) => return (refusal(503, "shutting down"), Vec::new()),
                }
            }
            None => PasswordResults::default(),
        };
        self.handle_locked(peer, &request, Some(results))
    }

    /// The application's answer to `request` (with the password work done for it, if any),
    /// its messages to panels already queued (see [`Server::post_locked`]).
    fn handle_locked(
        &self,
        peer: IpAddr,
        request: &Request,
        results: Option<PasswordResults>,
    ) -> (Response, Vec<Effect>) {
        let now = self.now();
        let mut core = self.lock();
        let Core { app, rng } = &mut *core;
        let (response, effects) = match results {
            Some(results) => app.handle_request_with(now, peer, request, rng, results),
            None => app.handle_request(now, peer, request, rng),
        };
        let effects = self.post_locked(&core, effects);
        (response, effects)
    }

    /// Queues the application's messages to panels while the caller still holds the
    /// application lock (`_core` is the proof): they then leave in the order the application
    /// made them, whichever task made them (two panels setting one IO cannot leave a third
    /// with the older state), and a new panel connection's outbox joins the hub before any
    /// broadcast can miss it. Returns the other effects, for after the lock.
    pub(crate) fn post_locked(&self, _core: &Core, effects: Vec<Effect>) -> Vec<Effect> {
        let mut rest = Vec::new();
        for effect in effects {
            match effect {
                Effect::UpgradeWebSocket(session) => {
                    self.hub_lock()
                        .insert(session.conn(), Arc::new(Outbox::default()));
                    rest.push(Effect::UpgradeWebSocket(session));
                }
                Effect::SendWs { .. } | Effect::CloseWs { .. } => self.queue_effect(effect),
                other => rest.push(other),
            }
        }
        rest
    }

    /// Performs a request's effects in order and settles the response: a state write or a
    /// certificate swap that fails turns it into a 500 naming the failure. Returns the
    /// WebSocket session of a successful upgrade.
    async fn perform(
        &self,
        mut response: Response,
        effects: Vec<Effect>,
    ) -> (Response, Option<(latchkey_gateway::WsSession, Arc<Outbox>)>) {
        let mut upgrade = None;
        let mut state_generation = None;
        let mut guard_generation = None;
        let mut failure: Option<String> = None;
        let mut undo = Vec::new();
        for effect in effects {
            match effect {
                Effect::UndoIfNotSaved(u) => undo.push(u),
                Effect::PersistState(bytes) => {
                    state_generation = Some(self.state_file.submit(bytes))
                }
                Effect::PersistGuard(bytes) => {
                    guard_generation = Some(self.guard_file.submit(bytes))
                }
                Effect::SwapCertificate {
                    cert_pem,
                    key_pem,
                    roots_pem,
                } => {
                    let pair = CertifiedPair::new(cert_pem.into_bytes(), key_pem.into_bytes());
                    let installed = match roots_pem {
                        Some(roots) => {
                            self.renewer
                                .install_pair_trusting(&pair, roots.as_bytes())
                                .await
                        }
                        None => self.renewer.install_pair(&pair).await,
                    };
                    match installed {
                        Ok(()) => self.certificate_changed(),
                        Err(RenewError::Unchanged { .. }) => {}
                        Err(e) => failure = Some(format!("the certificate was not installed: {e}")),
                    }
                }
                Effect::RegenerateSelfSigned => match self.renewer.renew_now().await {
                    Ok(()) => self.certificate_changed(),
                    Err(e) => failure = Some(format!("no new certificate: {e}")),
                },
                Effect::RefreshToken => {
                    if let Some(keeper) = &self.config.token {
                        let result = keeper.refresh().await;
                        self.lock().app.set_token_status(Some(keeper.status()));
                        if let Err(e) = result {
                            failure = Some(format!("the token refresh failed: {e}"));
                        }
                    }
                }
                Effect::UpgradeWebSocket(session) => {
                    // In the hub since `post_locked`, with the greeting queued.
                    let outbox = Arc::clone(self.hub_lock().entry(session.conn()).or_default());
                    upgrade = Some((session, outbox));
                }
                other => self.queue_effect(other),
            }
        }
        for (file, generation) in [
            (&self.state_file, state_generation),
            (&self.guard_file, guard_generation),
        ] {
            if let Some(generation) = generation
                && let Err(reason) = file.wait(generation).await
            {
                failure = Some(format!("{} could not be saved: {reason}", file.name));
                if std::ptr::eq(file, &self.state_file) && !undo.is_empty() {
                    // The answer says the change failed: take it back in memory too.
                    let effects = {
                        let mut core = self.lock();
                        let effects: Vec<Effect> = std::mem::take(&mut undo)
                            .into_iter()
                            .flat_map(|u| core.app.undo(u))
                            .collect();
                        self.post_locked(&core, effects)
                    };
                    self.queue_effects(effects);
                }
            }
        }
        if let Some(reason) = failure {
            response = refusal(500, &reason);
            if let Some((session, _)) = upgrade.take() {
                let conn = session.conn();
                self.lock().app_session_closed(session);
                self.hub_remove(conn);
            }
        }
        (response, upgrade)
    }

    /// The effects that need no waiting (from WebSocket messages and timers). Takes the
    /// application lock for token settings, so never call it holding that lock.
    pub(crate) fn queue_effects(&self, effects: Vec<Effect>) {
        for effect in effects {
            self.queue_effect(effect);
        }
    }

    fn queue_effect(&self, effect: Effect) {
        match effect {
            Effect::PersistState(bytes) => {
                self.state_file.submit(bytes);
            }
            Effect::PersistGuard(bytes) => {
                self.guard_file.submit(bytes);
            }
            Effect::SendWs {
                conn,
                text,
                supersedes,
            } => {
                if let Some(outbox) = self.hub_lock().get(&conn) {
                    outbox.push(Outgoing::Text { text, supersedes });
                }
            }
            Effect::CloseWs { conn, code, reason } => {
                if let Some(outbox) = self.hub_lock().get(&conn) {
                    outbox.push(Outgoing::Close(code, reason));
                }
            }
            Effect::SetIoState { io, state } => self.emit(&ServeEvent::IoState { io, state }),
            Effect::TokenSettingsChanged {
                auto_refresh_enabled,
                refresh_buffer_minutes,
            } => {
                if let Some(keeper) = &self.config.token {
                    apply_token_settings(keeper, auto_refresh_enabled, refresh_buffer_minutes);
                    self.lock().app.set_token_status(Some(keeper.status()));
                }
                self.emit(&ServeEvent::TokenSettings {
                    auto_refresh_enabled,
                    refresh_buffer_minutes,
                });
            }
            Effect::Security(event) => self.emit(&ServeEvent::Security(event)),
            // Certificate, token and upgrade effects come only with requests.
            _ => {}
        }
    }

    /// Tells the application the live certificate changed.
    fn certificate_changed(&self) {
        let chain: String = self
            .renewer
            .identity()
            .current()
            .chain()
            .iter()
            .map(|der| latchkey_pki::pem::encode_certificate(der))
            .collect();
        let _ = self.lock().app.set_certificate(chain.as_bytes());
    }

    fn hub_lock(&self) -> MutexGuard<'_, HashMap<ConnId, Arc<Outbox>>> {
        self.hub.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn hub_remove(&self, conn: ConnId) {
        self.hub_lock().remove(&conn);
    }
}

impl Core {
    /// Ends a session whose upgrade was not completed.
    fn app_session_closed(&mut self, mut session: latchkey_gateway::WsSession) {
        session.closed(&mut self.app);
    }
}

/// A connection's place in the limits; freed when dropped.
struct Slot {
    server: Arc<Server>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        {
            let mut per_ip = self
                .server
                .per_ip
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(count) = per_ip.get_mut(&self.ip) {
                *count -= 1;
                if *count == 0 {
                    per_ip.remove(&self.ip);
                }
            }
        }
        if self.server.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.server.drained.notify(usize::MAX);
        }
    }
}

/// Accepts connections until shutdown; each runs as its own task.
async fn accept_loop(
    server: &Arc<Server>,
    listener: &<Rt as Runtime>::Listener,
    tls: bool,
    spawner: &Spawner,
) {
    loop {
        let accepted = race(async { Some(Rt::accept(listener).await) }, async {
            server.stopped().await;
            None
        })
        .await;
        let Some(accepted) = accepted else { return };
        match accepted {
            Ok((tcp, peer)) => {
                // Over a limit: the socket is dropped (closed) before any handshake.
                let Some(slot) = server.admit(peer.ip()) else {
                    continue;
                };
                let server = Arc::clone(server);
                Rt::spawn(spawner, async move {
                    // The end of the grace is looked at first, at every wake-up.
                    race(server.finished(), connection(&server, tcp, peer, tls)).await;
                    drop(slot);
                });
            }
            // Out of descriptors or a connection reset while queued: pause, never spin.
            Err(_) => {
                let _ = Rt::timeout(Duration::from_millis(100), server.stopped()).await;
            }
        }
    }
}

/// Serves one connection: requests in order (keep-alive, pipelining), then, after a
/// successful upgrade, the WebSocket.
async fn connection(server: &Arc<Server>, tcp: <Rt as Runtime>::Tcp, peer: SocketAddr, tls: bool) {
    let limits = &server.config.limits;
    let mut stream = if tls {
        match Rt::timeout(
            limits.handshake_timeout,
            Rt::accept_tls(&server.acceptor, tcp),
        )
        .await
        {
            Some(Ok(stream)) => stream,
            _ => return,
        }
    } else {
        Rt::plain(tcp)
    };
    let mut buf = Vec::new();
    loop {
        let framed = match read_request(&mut stream, &mut buf, limits, server).await {
            Ok(Incoming::Request(framed)) => framed,
            Ok(Incoming::Closed) | Err(_) => break,
            Ok(Incoming::Refuse(status, reason)) => {
                let bytes = encode_response(&refusal(status, reason), false, false, unix_now());
                let _ = write_with_timeout(&mut stream, &bytes, limits).await;
                break;
            }
        };
        let head_only = framed.request.method == Method::Head;
        if !tls {
            let keep_alive = framed.keep_alive && !server.stopping();
            let response = latchkey_gateway::redirect_to_https(&framed.request, server.https_port);
            let bytes = encode_response(&response, head_only, keep_alive, unix_now());
            if write_with_timeout(&mut stream, &bytes, limits)
                .await
                .is_err()
                || !keep_alive
            {
                break;
            }
            continue;
        }
        let (response, effects) = server.handle(peer.ip(), framed.request).await;
        let (response, upgrade) = server.perform(response, effects).await;
        // Decided after the request ran: a shutdown that began meanwhile closes the
        // connection after this answer (and says so) instead of waiting for another.
        let keep_alive = framed.keep_alive && !server.stopping();
        let bytes = encode_response(&response, head_only, keep_alive, unix_now());
        let written = write_with_timeout(&mut stream, &bytes, limits)
            .await
            .is_ok();
        if let Some((session, outbox)) = upgrade {
            if written {
                ws::run(
                    server,
                    &mut stream,
                    session,
                    outbox,
                    std::mem::take(&mut buf),
                )
                .await;
            } else {
                let conn = session.conn();
                server.lock().app_session_closed(session);
                server.hub_remove(conn);
            }
            break;
        }
        if !written || !keep_alive {
            break;
        }
    }
    let _ = Rt::timeout(Duration::from_secs(1), Rt::close(&mut stream)).await;
}

/// Runs the application's timers (sweeps, session expiry) and the periodic guard snapshot.
async fn app_timer(server: &Server) {
    let mut next_snapshot = server.now().instant + GUARD_SNAPSHOT_EVERY;
    let mut generation = server.renewer.identity().generation();
    loop {
        // A scheduled renewal swapped the certificate: the dashboard shows the new one.
        let live = server.renewer.identity().generation();
        if live != generation {
            generation = live;
            server.certificate_changed();
        }
        let now = server.now();
        let (effects, wake) = {
            let mut core = server.lock();
            let mut effects = core.app.handle_timeout(now);
            if now.instant >= next_snapshot {
                effects.push(Effect::PersistGuard(core.app.guard_snapshot(now)));
                next_snapshot = now.instant + GUARD_SNAPSHOT_EVERY;
            }
            let wake = core.app.poll_timeout();
            (server.post_locked(&core, effects), wake)
        };
        server.queue_effects(effects);
        let wait = wake
            .map_or(Duration::from_secs(5), |at| {
                at.saturating_duration_since(now.instant)
            })
            .clamp(Duration::from_millis(50), Duration::from_secs(5));
        if Rt::timeout(wait, server.stopped()).await.is_some() {
            return;
        }
    }
}

/// Keeps the application's view of the token session current.
/// The admin's token settings applied to the running keeper: auto refresh on or off, and
/// the refresh made that many minutes before expiry (a fixed margin; the core still caps it
/// at half the token's lifetime).
fn apply_token_settings(keeper: &TokenKeeper, auto_refresh: bool, buffer_minutes: u32) {
    let mut margin = keeper.margin_policy();
    margin.fixed = Some(u64::from(buffer_minutes) * 60);
    keeper.set_refresh_policy(auto_refresh, margin);
}

async fn token_status(server: &Server, keeper: &TokenKeeper) {
    loop {
        server.lock().app.set_token_status(Some(keeper.status()));
        if Rt::timeout(Duration::from_secs(15), server.stopped())
            .await
            .is_some()
        {
            return;
        }
    }
}

/// One state file: writes coalesced (the newest content wins), in order, one at a time.
struct Persister {
    name: &'static str,
    state: StateDir,
    slot: Mutex<PersistSlot>,
    wake: Signal,
    done: Signal,
}

#[derive(Default)]
struct PersistSlot {
    submitted: u64,
    pending: Option<(u64, Vec<u8>)>,
    written: u64,
    failed: Option<(u64, String)>,
}

impl Persister {
    fn new(name: &'static str, state: StateDir) -> Persister {
        Persister {
            name,
            state,
            slot: Mutex::new(PersistSlot::default()),
            wake: Signal::new(),
            done: Signal::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PersistSlot> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `bytes` as the file's next content; the returned generation is on disk once
    /// [`Persister::wait`] says so.
    fn submit(&self, bytes: Vec<u8>) -> u64 {
        let generation = {
            let mut slot = self.lock();
            slot.submitted += 1;
            let generation = slot.submitted;
            slot.pending = Some((generation, bytes));
            generation
        };
        self.wake.notify(usize::MAX);
        generation
    }

    /// Writes whatever is pending (once).
    async fn write_pending(&self) -> Option<Result<(), String>> {
        let (generation, bytes) = self.lock().pending.take()?;
        let result = self
            .state
            .write(self.name, bytes)
            .await
            .map_err(|e| e.to_string());
        {
            let mut slot = self.lock();
            match &result {
                Ok(()) => slot.written = slot.written.max(generation),
                Err(reason) => slot.failed = Some((generation, reason.clone())),
            }
        }
        self.done.notify(usize::MAX);
        Some(result)
    }

    /// Writes submissions as they come; never ends.
    async fn run(&self, server: &Server) {
        loop {
            let listener = self.wake.listen();
            match self.write_pending().await {
                Some(Err(reason)) => server.emit(&ServeEvent::PersistFailed {
                    file: self.name,
                    reason,
                }),
                Some(Ok(())) => {}
                None => listener.await,
            }
        }
    }

    /// Waits until `generation` (or a later one) is on disk; the error when its write failed.
    async fn wait(&self, generation: u64) -> Result<(), String> {
        loop {
            let listener = self.done.listen();
            {
                let slot = self.lock();
                if slot.written >= generation {
                    return Ok(());
                }
                if let Some((failed, reason)) = &slot.failed
                    && *failed >= generation
                {
                    return Err(reason.clone());
                }
            }
            listener.await;
        }
    }
}

/// A plain-text answer naming a fault (the gateway's framing refusals have the same form).
fn refusal(status: u16, reason: &str) -> Response {
    latchkey_gateway::http1::plain_text(status, reason)
}
