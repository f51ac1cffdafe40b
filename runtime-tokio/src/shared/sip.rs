//! A SIP user agent on a TLS (or TCP) connection: registers, keeps the registration and the
//! connection alive, reports doorbell rings and messages, sends MESSAGE commands (the gate),
//! reconnects with backoff and re-registers — the pure
//! [`Agent`] driven over a real socket.
//!
//! [`SipClient::new`] returns a handle and a [`SipDriver`]; spawn [`SipDriver::run`] on the
//! executor (it is `Send`), keep the handle (cheap to clone) to read events and issue
//! commands:
//!
//! `examples/listen_doorbell.rs` and `examples/open_gate.rs` show both sides; the crate
//! documentation has a short example.
//!
//! # The driver loop
//!
//! [`SipDriver::run`] is the loop of the agent's documentation and nothing more: it feeds
//! bytes read from the connection and the monotonic `now` into the agent, performs its
//! transmits (connect with TLS, write, close), hands its events to the handles, and sleeps
//! until [`Agent::poll_timeout`](latchkey_protocol::sip::agent::Agent::poll_timeout), the
//! next bytes, a command or a new client certificate, whichever comes first. Every SIP rule
//! — registration, digest, keep-alive and stale detection, backoff, the command queue and
//! its time limits, answering rings — is the agent's.
//!
//! # Bounds
//!
//! One read buffer of [`READ_BUFFER`] bytes; events wait for the application in a queue of
//! [`SipConfig::event_capacity`] (the oldest are dropped beyond it and
//! [`SipEvent::Lagged`] says how many); at most [`MAX_COMMANDS`] commands wait for the
//! driver; connecting (resolution, TCP, TLS) is limited by the agent's `connect_timeout`,
//! each write by [`SipConfig::write_timeout`]; the agent bounds everything else. Nothing
//! here logs, and the password only ever reaches the digest computation.
//!
//! # Client certificate renewal
//!
//! With [`SipConfig::identity`] set, the client certificate is whatever the
//! [`LiveIdentity`] holds at each handshake. After [`LiveIdentity::replace`] (directly or
//! through [`SipClient::update_identity`]) the driver asks the agent for a graceful
//! reconnect: the command in flight is finished, a new connection presents the new
//! certificate, the registration is renewed there, queued commands go out on it.
//!
//! Shared source: compiled into both `latchkey-tokio` and `latchkey-smol`.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use event_listener::Event as Signal;
use latchkey_protocol::sip::agent::{
    Agent, AgentConfig, Answer, CallHandle, CommandError, Event, FailReason, MessageId, State,
    StreamTransport, Transmit,
};
use latchkey_protocol::time::Instant;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rustls::pki_types::ServerName;

use crate::http::{ConfigError, Roots};
use crate::rt::Rt;
use crate::runtime::{Runtime, race};
use crate::tls::{Identity, LiveIdentity};

/// Bytes read from the connection at a time.
pub const READ_BUFFER: usize = 16 * 1024;
/// Commands waiting for the driver to take them (the agent's own queue holds the rest).
pub const MAX_COMMANDS: usize = 64;
/// The longest the driver sleeps without a deadline from the agent.
const MAX_IDLE: Duration = Duration::from_secs(3600);

/// How the driver connects and what it presents, around the agent's [`AgentConfig`].
#[derive(Clone)]
#[non_exhaustive]
pub struct SipConfig {
    /// The agent's profile (account, server, timers, gate command).
    pub agent: AgentConfig,
    /// Trust anchors for the server certificate (the Legrand CA chain for BTicino, with
    /// [`Roots::Pem`]). Default [`Roots::WebPki`].
    pub roots: Roots,
    /// The client certificate presented when the server asks for one (mutual TLS).
    pub identity: Option<LiveIdentity>,
    /// Connect here instead of `agent.server.host:port` (a test peer, a pinned address);
    /// the TLS server name is still `agent.server.host`.
    pub connect_to: Option<(String, u16)>,
    /// Events kept for the application; the oldest are dropped beyond it. Default 256.
    pub event_capacity: usize,
    /// The longest one write may take. Default 10 s.
    pub write_timeout: Duration,
}

impl fmt::Debug for SipConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // AgentConfig's Debug redacts the password.
        f.debug_struct("SipConfig")
            .field("agent", &self.agent)
            .field("roots", &self.roots)
            .field("identity", &self.identity)
            .field("connect_to", &self.connect_to)
            .field("event_capacity", &self.event_capacity)
            .field("write_timeout", &self.write_timeout)
            .finish()
    }
}

impl SipConfig {
    /// The agent profile with the defaults above.
    #[must_use]
    pub fn new(agent: AgentConfig) -> Self {
        SipConfig {
            agent,
            roots: Roots::WebPki,
            identity: None,
            connect_to: None,
            event_capacity: 256,
            write_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a client could not be made or a command could not be issued.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SipError {
    /// The agent profile is unusable.
    Agent(latchkey_protocol::sip::agent::ConfigError),
    /// The trust anchors are unusable.
    Tls(ConfigError),
    /// The TLS server name (`agent.server.host`) is not a DNS name or an IP address.
    ServerName(String),
    /// The operating system's random source failed.
    Random(String),
    /// The agent refused the command (it has no id and produces no event).
    Command(CommandError),
    /// Too many commands wait for the driver.
    Busy,
    /// The driver has stopped (shut down, or its future was dropped).
    Stopped,
    /// [`SipClient::update_identity`] on a client made without a client certificate.
    NoIdentity,
}

impl fmt::Display for SipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SipError::Agent(e) => e.fmt(f),
            SipError::Tls(e) => write!(f, "SIP TLS configuration: {e}"),
            SipError::ServerName(h) => write!(f, "{h:?} is not a valid TLS server name"),
            SipError::Random(e) => write!(f, "no OS randomness: {e}"),
            SipError::Command(e) => e.fmt(f),
            SipError::Busy => write!(f, "more than {MAX_COMMANDS} commands wait; try again"),
            SipError::Stopped => f.write_str("the SIP driver has stopped"),
            SipError::NoIdentity => f.write_str("the SIP client has no client certificate"),
        }
    }
}

impl std::error::Error for SipError {}

/// How an outgoing MESSAGE ended (the agent's [`Event::MessageDelivered`] /
/// [`Event::MessageFailed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// A 2xx final response.
    Delivered {
        /// The status.
        status: u16,
    },
    /// Anything else: a final error status, a timeout, a lost connection, never sent.
    Failed {
        /// The final status, if one arrived.
        status: Option<u16>,
        /// Why.
        reason: FailReason,
    },
}

/// What the application is told, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SipEvent {
    /// An event of the agent (registered, doorbell, message, reconnecting, …).
    Agent(Event),
    /// A connection is open (TLS handshake done); registration follows.
    Connected {
        /// The agent's connection attempt.
        attempt: u32,
        /// Our address.
        local: SocketAddr,
        /// The server's address.
        peer: SocketAddr,
    },
    /// A connection attempt failed (resolution, TCP, TLS handshake); the agent backs off.
    ConnectFailed {
        /// The agent's connection attempt.
        attempt: u32,
        /// What went wrong (a TLS error names the alert or the certificate fault).
        error: String,
    },
    /// An open connection failed while reading or writing (a TLS alert after the handshake,
    /// e.g. a client certificate the server refused, or a reset).
    ConnectionError {
        /// What went wrong.
        error: String,
    },
    /// This many events were dropped because the application did not read them in time.
    Lagged {
        /// How many.
        missed: u64,
    },
}

/// The handle of a running user agent. Cheap to clone; when the last handle is dropped the
/// driver shuts the agent down (un-REGISTER) and ends.
pub struct SipClient {
    shared: Arc<Shared>,
}

impl fmt::Debug for SipClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SipClient")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// The future that runs the agent over the connection: spawn [`SipDriver::run`]. Dropping
/// it (or the future) stops the agent; every pending command then resolves to
/// [`SipError::Stopped`].
pub struct SipDriver {
    shared: Arc<Shared>,
    agent: Agent<ChaCha20Rng>,
    connector: Option<<Rt as Runtime>::Connector>,
    server_name: Option<ServerName<'static>>,
    connect_to: (String, u16),
    connect_timeout: Duration,
    write_timeout: Duration,
    identity: Option<LiveIdentity>,
    origin: std::time::Instant,
    pending: HashMap<MessageId, Arc<Slot<Result<Outcome, SipError>>>>,
}

impl fmt::Debug for SipDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SipDriver")
            .field("agent", &self.agent)
            .finish_non_exhaustive()
    }
}

/// What a handle asks the driver.
enum Command {
    Send {
        target: String,
        content_type: String,
        body: Vec<u8>,
        reply: Arc<Slot<Result<Outcome, SipError>>>,
    },
    Gate {
        reply: Arc<Slot<Result<Outcome, SipError>>>,
    },
    Answer {
        call: CallHandle,
        answer: Answer,
        reply: Arc<Slot<Result<(), SipError>>>,
    },
    HangUp {
        call: CallHandle,
        reply: Arc<Slot<Result<(), SipError>>>,
    },
    Reconnect,
    Shutdown,
}

/// State shared by the handles and the driver.
struct Shared {
    inner: Mutex<Inner>,
    /// Wakes the driver: a command, the last handle gone.
    wake_driver: Signal,
    /// Wakes readers of events and waiters for the end.
    wake_app: Signal,
    handles: AtomicUsize,
    event_capacity: usize,
    identity: Option<LiveIdentity>,
}

struct Inner {
    commands: VecDeque<Command>,
    events: VecDeque<SipEvent>,
    lagged: u64,
    state: State,
    stopped: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn command(&self, command: Command) -> Result<(), SipError> {
        let mut inner = self.lock();
        if inner.stopped {
            return Err(SipError::Stopped);
        }
        // A shutdown is never refused for a full queue (the caller waits for the stop it
        // asks for); one queued is enough, so the queue stays bounded.
        let shutdown = matches!(command, Command::Shutdown);
        if shutdown
            && inner
                .commands
                .iter()
                .any(|c| matches!(c, Command::Shutdown))
        {
            return Ok(());
        }
        if !shutdown && inner.commands.len() >= MAX_COMMANDS {
            return Err(SipError::Busy);
        }
        inner.commands.push_back(command);
        drop(inner);
        self.wake_driver.notify(1);
        Ok(())
    }

    fn push_event(&self, event: SipEvent) {
        let mut inner = self.lock();
        if inner.events.len() >= self.event_capacity {
            inner.events.pop_front();
            inner.lagged = inner.lagged.saturating_add(1);
        }
        inner.events.push_back(event);
        drop(inner);
        self.wake_app.notify(usize::MAX);
    }
}

/// A one-shot value: set by the driver, awaited by a handle.
struct Slot<T> {
    value: Mutex<Option<T>>,
    ready: Signal,
}

impl<T> Slot<T> {
    fn new() -> Arc<Self> {
        Arc::new(Slot {
            value: Mutex::new(None),
            ready: Signal::new(),
        })
    }

    fn set(&self, v: T) {
        let mut value = self.value.lock().unwrap_or_else(PoisonError::into_inner);
        if value.is_none() {
            *value = Some(v);
        }
        drop(value);
        self.ready.notify(usize::MAX);
    }

    fn take(&self) -> Option<T> {
        self.value
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    async fn wait(&self) -> T {
        loop {
            if let Some(v) = self.take() {
                return v;
            }
            let listener = self.ready.listen();
            if let Some(v) = self.take() {
                return v;
            }
            listener.await;
        }
    }
}

impl SipClient {
    /// A user agent for `config`: the handle, and the driver to spawn. Nothing connects
    /// until the driver runs.
    ///
    /// # Errors
    /// [`SipError`] when the profile, the trust anchors or the server name are unusable, or
    /// the OS random source fails.
    pub fn new(config: SipConfig) -> Result<(SipClient, SipDriver), SipError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| SipError::Random(e.to_string()))?;
        let rng = ChaCha20Rng::from_seed(seed);
        seed.fill(0);
        let agent_config = config.agent;
        let server = agent_config.server.clone();
        let connect_timeout = agent_config.connect_timeout;
        let agent = Agent::new(agent_config, rng).map_err(SipError::Agent)?;
        let (connector, server_name) = match server.transport {
            StreamTransport::Tcp => (None, None),
            _ => {
                let tls =
                    crate::tls::client_config(&config.roots, None, config.identity.as_ref(), &[])
                        .map_err(SipError::Tls)?;
                let name = ServerName::try_from(server.host.clone())
                    .map_err(|_| SipError::ServerName(server.host.clone()))?;
                (Some(Rt::connector(tls)), Some(name))
            }
        };
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                commands: VecDeque::new(),
                events: VecDeque::new(),
                lagged: 0,
                state: State::Disconnected,
                stopped: false,
            }),
            wake_driver: Signal::new(),
            wake_app: Signal::new(),
            handles: AtomicUsize::new(1),
            event_capacity: config.event_capacity.max(1),
            identity: config.identity.clone(),
        });
        let driver = SipDriver {
            shared: shared.clone(),
            agent,
            connector,
            server_name,
            connect_to: config.connect_to.unwrap_or((server.host, server.port)),
            connect_timeout,
            write_timeout: config.write_timeout,
            identity: config.identity,
            origin: std::time::Instant::now(),
            pending: HashMap::new(),
        };
        Ok((SipClient { shared }, driver))
    }

    /// The next event, in order; `None` once the driver has stopped and every event was
    /// read.
    pub async fn next_event(&self) -> Option<SipEvent> {
        loop {
            let listener = {
                let mut inner = self.shared.lock();
                if inner.lagged > 0 {
                    let missed = std::mem::take(&mut inner.lagged);
                    return Some(SipEvent::Lagged { missed });
                }
                if let Some(e) = inner.events.pop_front() {
                    return Some(e);
                }
                if inner.stopped {
                    return None;
                }
                self.shared.wake_app.listen()
            };
            listener.await;
        }
    }

    /// The next event if one is waiting, without waiting.
    #[must_use]
    pub fn try_next_event(&self) -> Option<SipEvent> {
        let mut inner = self.shared.lock();
        if inner.lagged > 0 {
            let missed = std::mem::take(&mut inner.lagged);
            return Some(SipEvent::Lagged { missed });
        }
        inner.events.pop_front()
    }

    /// The agent's state after the driver's last step.
    #[must_use]
    pub fn state(&self) -> State {
        self.shared.lock().state
    }

    /// Whether the driver has stopped.
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        self.shared.lock().stopped
    }

    /// Send a MESSAGE and wait for its outcome. Queued while the agent is not registered,
    /// for at most the profile's `queue.max_wait`; exactly one outcome per command.
    ///
    /// # Errors
    /// [`SipError::Command`] when the agent refuses it (invalid target, content type, body
    /// too large, queue full, failed or shut down), [`SipError::Busy`],
    /// [`SipError::Stopped`].
    pub async fn send_message(
        &self,
        target: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<Outcome, SipError> {
        let reply = Slot::new();
        self.shared.command(Command::Send {
            target: target.to_owned(),
            content_type: content_type.to_owned(),
            body: body.to_vec(),
            reply: reply.clone(),
        })?;
        reply.wait().await
    }

    /// Send the profile's gate command and wait for its outcome.
    ///
    /// # Errors
    /// As [`SipClient::send_message`]; [`CommandError::NoGate`] without a gate in the
    /// profile.
    pub async fn open_gate(&self) -> Result<Outcome, SipError> {
        let reply = Slot::new();
        self.shared.command(Command::Gate {
            reply: reply.clone(),
        })?;
        reply.wait().await
    }

    /// Give a ringing call its final answer now.
    ///
    /// # Errors
    /// [`SipError::Command`] when the call is unknown or answered, [`SipError::Stopped`].
    pub async fn answer(&self, call: CallHandle, answer: Answer) -> Result<(), SipError> {
        let reply = Slot::new();
        self.shared.command(Command::Answer {
            call,
            answer,
            reply: reply.clone(),
        })?;
        reply.wait().await
    }

    /// End a call (a ringing one is declined, an accepted one gets a BYE).
    ///
    /// # Errors
    /// [`SipError::Command`] when the call is not ringing or accepted, [`SipError::Stopped`].
    pub async fn hang_up(&self, call: CallHandle) -> Result<(), SipError> {
        let reply = Slot::new();
        self.shared.command(Command::HangUp {
            call,
            reply: reply.clone(),
        })?;
        reply.wait().await
    }

    /// Reconnect gracefully now (the command in flight is finished first; queued commands
    /// and the registration move to the new connection).
    ///
    /// # Errors
    /// [`SipError::Busy`], [`SipError::Stopped`].
    pub fn reconnect(&self) -> Result<(), SipError> {
        self.shared.command(Command::Reconnect)
    }

    /// Present `identity` from the next handshake on: replaces the client certificate of
    /// [`SipConfig::identity`], which the driver watches — it reconnects gracefully and
    /// re-registers with the new certificate, keeping queued commands. Returns the
    /// identity's new generation.
    ///
    /// # Errors
    /// [`SipError::NoIdentity`] when the client was made without a client certificate.
    pub fn update_identity(&self, identity: Identity) -> Result<u64, SipError> {
        match &self.shared.identity {
            Some(live) => Ok(live.replace(identity)),
            None => Err(SipError::NoIdentity),
        }
    }

    /// Shut down: the agent un-REGISTERs, fails queued commands, ends calls and closes;
    /// returns once the driver has stopped (bounded by the profile's `shutdown_timeout`,
    /// or its `connect_timeout` while a connection is being opened).
    pub async fn shutdown(&self) {
        // Refused only once the driver has stopped, which is what this waits for.
        let _ = self.shared.command(Command::Shutdown);
        loop {
            let listener = {
                if self.shared.lock().stopped {
                    return;
                }
                self.shared.wake_app.listen()
            };
            if self.shared.lock().stopped {
                return;
            }
            listener.await;
        }
    }
}

impl Clone for SipClient {
    fn clone(&self) -> Self {
        self.shared.handles.fetch_add(1, Ordering::AcqRel);
        SipClient {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for SipClient {
    fn drop(&mut self) {
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.wake_driver.notify(1);
        }
    }
}

/// What woke the driver.
enum Wake {
    Read(io::Result<usize>),
    Command,
    Identity,
    Deadline,
}

impl SipDriver {
    fn now(&self) -> Instant {
        Instant::from_duration_since_origin(self.origin.elapsed())
    }

    /// Run the agent until it is shut down (by [`SipClient::shutdown`] or by dropping every
    /// handle). Returns when it has closed.
    pub async fn run(mut self) {
        let mut stream: Option<<Rt as Runtime>::Stream> = None;
        let mut buf = vec![0u8; READ_BUFFER];
        let mut generation = self.identity.as_ref().map(LiveIdentity::generation);
        let now = self.now();
        self.agent.start(now);
        let mut shutting_down = false;
        loop {
            // Listen before looking, so nothing that happens after the look is missed.
            let wake = self.shared.wake_driver.listen();
            let replaced = self.identity.as_ref().map(LiveIdentity::replaced);
            let now = self.now();
            if let (Some(live), Some(seen)) = (&self.identity, generation.as_mut())
                && live.generation() != *seen
            {
                *seen = live.generation();
                self.agent.reconnect(now);
            }
            if !shutting_down && self.shared.handles.load(Ordering::Acquire) == 0 {
                shutting_down = true;
                self.agent.shutdown(now);
            }
            self.take_commands(now);
            if self.step(&mut stream).await {
                return;
            }
            let now = self.now();
            let wait = match self.agent.poll_timeout() {
                Some(t) => t.saturating_duration_since(now).min(MAX_IDLE),
                None => MAX_IDLE,
            };
            let read = async {
                match stream.as_mut() {
                    Some(s) => Rt::read(s, &mut buf).await,
                    None => std::future::pending().await,
                }
            };
            let identity = async {
                match replaced {
                    Some(l) => l.await,
                    None => std::future::pending().await,
                }
            };
            let woke = Rt::timeout(wait, async {
                race(
                    async { Wake::Read(read.await) },
                    race(
                        async {
                            wake.await;
                            Wake::Command
                        },
                        async {
                            identity.await;
                            Wake::Identity
                        },
                    ),
                )
                .await
            })
            .await
            .unwrap_or(Wake::Deadline);
            let now = self.now();
            match woke {
                Wake::Read(Ok(0)) => {
                    stream = None;
                    self.agent.handle_disconnected(now);
                }
                Wake::Read(Ok(n)) => self.agent.handle_input(now, &buf[..n]),
                Wake::Read(Err(e)) => {
                    stream = None;
                    self.shared.push_event(SipEvent::ConnectionError {
                        error: describe("reading from the SIP server", &e),
                    });
                    self.agent.handle_disconnected(now);
                }
                Wake::Deadline => self.agent.handle_timeout(now),
                Wake::Command | Wake::Identity => {}
            }
        }
    }

    /// Hand queued commands to the agent.
    fn take_commands(&mut self, now: Instant) {
        let commands: Vec<Command> = self.shared.lock().commands.drain(..).collect();
        for command in commands {
            match command {
                Command::Send {
                    target,
                    content_type,
                    body,
                    reply,
                } => match self.agent.send_message(now, &target, &content_type, &body) {
                    Ok(id) => {
                        self.pending.insert(id, reply);
                    }
                    Err(e) => reply.set(Err(SipError::Command(e))),
                },
                Command::Gate { reply } => match self.agent.open_gate(now) {
                    Ok(id) => {
                        self.pending.insert(id, reply);
                    }
                    Err(e) => reply.set(Err(SipError::Command(e))),
                },
                Command::Answer {
                    call,
                    answer,
                    reply,
                } => reply.set(
                    self.agent
                        .answer(now, call, answer)
                        .map_err(SipError::Command),
                ),
                Command::HangUp { call, reply } => {
                    reply.set(self.agent.hang_up(now, call).map_err(SipError::Command));
                }
                Command::Reconnect => self.agent.reconnect(now),
                Command::Shutdown => self.agent.shutdown(now),
            }
        }
    }

    /// Perform the agent's transmits and deliver its events until both are drained. Returns
    /// `true` once the agent has closed.
    async fn step(&mut self, stream: &mut Option<<Rt as Runtime>::Stream>) -> bool {
        let mut closed = false;
        loop {
            let mut progress = false;
            while let Some(t) = self.agent.poll_transmit() {
                progress = true;
                match t {
                    Transmit::Connect { attempt } => {
                        *stream = None;
                        match self.connect().await {
                            Ok((s, local, peer)) => {
                                *stream = Some(s);
                                self.shared.push_event(SipEvent::Connected {
                                    attempt,
                                    local,
                                    peer,
                                });
                                let now = self.now();
                                self.agent.handle_connected_from(now, local);
                            }
                            Err(error) => {
                                self.shared
                                    .push_event(SipEvent::ConnectFailed { attempt, error });
                                let now = self.now();
                                self.agent.handle_disconnected(now);
                            }
                        }
                    }
                    Transmit::Send(bytes) => {
                        let Some(s) = stream.as_mut() else { continue };
                        let written =
                            Rt::timeout(self.write_timeout, Rt::write_all(s, &bytes)).await;
                        let error = match written {
                            Some(Ok(())) => continue,
                            Some(Err(e)) => describe("writing to the SIP server", &e),
                            None => format!(
                                "writing to the SIP server: not done within {:?}",
                                self.write_timeout
                            ),
                        };
                        *stream = None;
                        self.shared.push_event(SipEvent::ConnectionError { error });
                        let now = self.now();
                        self.agent.handle_disconnected(now);
                    }
                    Transmit::Close => *stream = None,
                    _ => {}
                }
            }
            while let Some(event) = self.agent.poll_event() {
                progress = true;
                match &event {
                    Event::MessageDelivered { id, status } => {
                        if let Some(slot) = self.pending.remove(id) {
                            slot.set(Ok(Outcome::Delivered { status: *status }));
                        }
                    }
                    Event::MessageFailed { id, status, reason } => {
                        if let Some(slot) = self.pending.remove(id) {
                            slot.set(Ok(Outcome::Failed {
                                status: *status,
                                reason: reason.clone(),
                            }));
                        }
                    }
                    Event::Closed => closed = true,
                    _ => {}
                }
                self.shared.push_event(SipEvent::Agent(event));
            }
            self.shared.lock().state = self.agent.state();
            if closed {
                return true;
            }
            if !progress {
                return false;
            }
        }
    }

    /// Resolve, connect over TCP (addresses in turn) and run the TLS handshake, within the
    /// agent's connect timeout.
    async fn connect(&self) -> Result<(<Rt as Runtime>::Stream, SocketAddr, SocketAddr), String> {
        let (host, port) = (&self.connect_to.0, self.connect_to.1);
        let attempt = async {
            let addrs = match host.parse::<IpAddr>() {
                Ok(ip) => vec![SocketAddr::new(ip, port)],
                Err(_) => Rt::resolve(host, port)
                    .await
                    .map_err(|e| format!("could not resolve {host}: {e}"))?,
            };
            let mut last = format!("{host} resolved to no address");
            for addr in addrs {
                let tcp = match Rt::connect_tcp(addr).await {
                    Ok(tcp) => tcp,
                    Err(e) => {
                        last = format!("could not connect to {addr}: {e}");
                        continue;
                    }
                };
                let local = Rt::local_addr(&tcp).map_err(|e| format!("local address: {e}"))?;
                let stream = match (&self.connector, &self.server_name) {
                    (Some(connector), Some(name)) => {
                        match Rt::start_tls(connector, name.clone(), tcp).await {
                            Ok(stream) => stream,
                            // Another address of the server may be healthy.
                            Err(e) => {
                                last = describe(&format!("TLS handshake with {addr}"), &e);
                                continue;
                            }
                        }
                    }
                    _ => Rt::plain(tcp),
                };
                return Ok((stream, local, addr));
            }
            Err(last)
        };
        Rt::timeout(self.connect_timeout, attempt)
            .await
            .unwrap_or_else(|| {
                Err(format!(
                    "connecting to {host}:{port}: not done within {:?}",
                    self.connect_timeout
                ))
            })
    }
}

impl Drop for SipDriver {
    fn drop(&mut self) {
        let commands: Vec<Command> = {
            let mut inner = self.shared.lock();
            inner.stopped = true;
            inner.state = State::Closed;
            inner.commands.drain(..).collect()
        };
        for command in commands {
            match command {
                Command::Send { reply, .. } | Command::Gate { reply } => {
                    reply.set(Err(SipError::Stopped));
                }
                Command::Answer { reply, .. } | Command::HangUp { reply, .. } => {
                    reply.set(Err(SipError::Stopped));
                }
                Command::Reconnect | Command::Shutdown => {}
            }
        }
        for (_, slot) in self.pending.drain() {
            slot.set(Err(SipError::Stopped));
        }
        self.shared.wake_app.notify(usize::MAX);
    }
}

/// An I/O error as one line, naming the TLS fault when rustls raised it.
fn describe(doing: &str, e: &io::Error) -> String {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => format!("{doing}: TLS error: {tls}"),
        None => format!("{doing}: {e}"),
    }
}
