//! A sans-IO SIP user agent for one account over one stream connection (TCP or TLS): it
//! registers and keeps the registration alive, keeps the connection alive, rings on incoming
//! INVITEs (the doorbell), answers MESSAGE/NOTIFY/OPTIONS, and sends MESSAGE commands (the
//! gate). Built on the wire layer: [`framing`](crate::sip::framing) reads the stream,
//! [`Message`] parses, [`builder`](crate::sip::builder) writes,
//! [`digest`](crate::sip::digest) authenticates.
//!
//! # The driver loop
//!
//! The agent never touches a socket or a clock. A driver feeds it bytes and `now`, writes out
//! what [`Agent::poll_transmit`] gives (including when to connect and close), hands
//! [`Agent::poll_event`] to the application, and sleeps until [`Agent::poll_timeout`]:
//!
//! ```no_run
//! use latchkey_protocol::sip::agent::{Account, Agent, AgentConfig, Event, Server, StreamTransport, Transmit};
//! use latchkey_protocol::time::Instant;
//! # struct Conn;
//! # impl Conn { fn write(&mut self, _: &[u8]) {} fn read(&mut self, _: &mut [u8], _: Option<Instant>) -> Option<usize> { None } }
//! # fn open(_: &str, _: u16) -> Option<Conn> { None }
//! # fn clock() -> Instant { Instant::ORIGIN }
//! # fn rng() -> rand_chacha::ChaCha20Rng { rand_core::SeedableRng::from_seed([0; 32]) }
//!
//! let account = Account::new("alice", "example.com", "secret");
//! let config = AgentConfig::new(account, Server::new("sip.example.com", 5061, StreamTransport::Tls));
//! let mut agent = Agent::new(config, rng()).expect("valid configuration");
//! agent.start(clock());
//! let mut conn: Option<Conn> = None;
//! let mut buf = [0u8; 4096];
//! loop {
//!     while let Some(t) = agent.poll_transmit() {
//!         match t {
//!             Transmit::Connect { .. } => {
//!                 let c = agent.config().server.clone();
//!                 conn = open(&c.host, c.port);
//!                 match conn { Some(_) => agent.handle_connected(clock()), None => agent.handle_disconnected(clock()) }
//!             }
//!             Transmit::Send(bytes) => if let Some(c) = &mut conn { c.write(&bytes) },
//!             Transmit::Close => conn = None,
//!             _ => {}
//!         }
//!     }
//!     while let Some(event) = agent.poll_event() {
//!         match event {
//!             Event::Doorbell(ring) => println!("ring from {}", ring.from),
//!             Event::Closed => return,
//!             other => println!("{other:?}"),
//!         }
//!     }
//!     // Wait for bytes or the deadline, whichever comes first.
//!     let deadline = agent.poll_timeout();
//!     match conn.as_mut().map(|c| c.read(&mut buf, deadline)) {
//!         Some(Some(0)) => agent.handle_disconnected(clock()),
//!         Some(Some(n)) => agent.handle_input(clock(), &buf[..n]),
//!         _ => agent.handle_timeout(clock()),
//!     }
//! }
//! ```
//!
//! Commands ([`Agent::send_message`], [`Agent::open_gate`], [`Agent::answer`],
//! [`Agent::hang_up`], [`Agent::reconnect`], [`Agent::shutdown`]) are plain calls between
//! those steps; the transmits and events they cause come out of the same `poll_*` calls.
//!
//! # What it does
//!
//! * **Registration** (RFC 3261 §10.2): REGISTER with the AOR in From/To, one Call-ID for the
//!   agent's lifetime and a rising CSeq (§10.2.4); 401/407 answered with digest credentials
//!   (reused pre-emptively on refreshes, `stale=true` renewals followed); the granted expiry
//!   read from our Contact's `expires` or the `Expires` header (§10.2.4); refreshed at
//!   `min(granted/2, granted − margin)` minus jitter ([`RefreshPolicy`]); 423 retried with
//!   Min-Expires (§10.2.8); 403/404/credentials rejected → [`Event::RegistrationFailed`]
//!   with `permanent: true`; 408/480/5xx retried with backoff (Retry-After honoured), before
//!   the current binding lapses. The top Via of the 200 (`received`/`rport`, RFC 3581) corrects
//!   the Contact once per connection; bindings of earlier contacts are removed (`expires=0`)
//!   in the next REGISTER. Shutdown un-REGISTERs (`Expires: 0`).
//! * **Keep-alive** (RFC 5626 §4.4.1): CRLFCRLF pings at 80–100 % of the interval, pings from
//!   the server answered with CRLF; once the server has answered a ping, silence for the pong
//!   timeout after a ping is [`Event::ConnectionStale`] and a reconnect.
//! * **Doorbell**: an INVITE from an allowed caller gets 100 and 180 and one
//!   [`Event::Doorbell`]; retransmissions (same branch) get the last response again and no new
//!   event, a merged request (same Call-ID/From tag/CSeq, other branch) gets 482 (§8.2.2.2).
//!   The final answer is the application's ([`Agent::answer`]) or, after the ring time, the
//!   configured default (486). CANCEL → 200 + 487 (§9.2); ACK ends the transaction; BYE →
//!   200. Every ring ends in exactly one [`Event::CallEnded`].
//! * **Incoming MESSAGE/NOTIFY** → 200 and [`Event::Message`]; OPTIONS → 200 with Allow;
//!   other methods → 405 with Allow; unknown `Require` → 420 (§8.2.2.3).
//! * **Outgoing MESSAGE** ([`Agent::send_message`], [`Agent::open_gate`]): one at a time,
//!   FIFO; a 401/407 answered once (plus one stale-nonce renewal); 2xx →
//!   [`Event::MessageDelivered`], anything else or Timer F → [`Event::MessageFailed`].
//! * **Transactions** for a reliable transport (§17): no retransmission timers, Timer B/F =
//!   64·T1 for client transactions, server transactions remembered for 64·T1 so
//!   retransmissions are answered identically — except the 2xx to an accepted INVITE, which
//!   the core sends again at T1, 2·T1, … up to T2 until the ACK (§13.3.1.4: a later hop may
//!   not be reliable); no BYE goes out before that ACK or the end of its wait (§15). Branches, tags, Call-IDs and first CSeqs come
//!   from the injected CSPRNG.
//! * **Lifecycle**: [`State`] Disconnected → Connecting → Registering → Registered, and
//!   Reconnecting with capped, jittered backoff ([`Backoff`]) after any loss. Queued commands
//!   survive reconnects until [`QueuePolicy::max_wait`]; a command in flight when the
//!   connection drops fails as [`FailReason::ConnectionLost`] (it may have been delivered, so
//!   it is not sent twice). None is ever dropped without an event.
//!
//! # Bounds
//!
//! Every buffer and table is bounded: the framer's message limit (64 KiB), the command queue
//! ([`QueuePolicy::capacity`]), at most 8 live calls and 32 remembered server transactions,
//! events caused by the peer are refused (503 / 486 to the peer) once 64 events wait
//! undrained, lifecycle events are coalesced beyond 128, and responses are not queued past
//! 256 KiB of undrained transmits. Any byte input is handled without panicking (fuzzed by
//! `fuzz/fuzz_targets/sip_agent.rs`).

mod calls;
mod config;
mod event;
mod outgoing;
pub mod preset;
mod register;
mod schedule;
mod uas;

#[cfg(test)]
mod tests;

pub use config::{
    Account, AgentConfig, Answer, AnswerPolicy, Backoff, CallerPattern, ConfigError, GateConfig,
    KeepAlive, Password, QueuePolicy, RefreshPolicy, Server, StreamTransport,
};
pub use event::{
    CallEnd, CallHandle, CommandError, DisconnectReason, Doorbell, Event, FailReason, IncomingKind,
    IncomingMessage, MessageId, State, Transmit,
};

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::{String, ToString};
use core::fmt;
use core::net::SocketAddr;

use bytes::Bytes;
use rand_core::CryptoRng;

use crate::sip::framing::{Decoder, Frame, Limits};
use crate::sip::message::Message;
use crate::time::Instant;

/// Events waiting beyond this are coalesced (lifecycle ones replace the oldest lifecycle one).
const MAX_EVENTS: usize = 128;
/// Events caused by the peer (rings, messages) are refused, with an error answer to the peer,
/// while this many events wait undrained.
const PEER_EVENT_ROOM: usize = 64;
/// Responses are not queued while this many bytes of transmits wait undrained.
const MAX_QUEUED_BYTES: usize = 256 * 1024;

/// The user agent. See the [module documentation](self) for the driver loop and the rules.
///
/// `R` is the randomness source (a CSPRNG seeded from the OS by the driver; a seeded
/// generator in tests): Via branches, tags, Call-IDs, digest cnonces and jitter come from it.
pub struct Agent<R> {
    config: AgentConfig,
    rng: R,
    conn: Conn,
    reg: register::Registration,
    outbox: outgoing::Outbox,
    calls: calls::Calls,
    recent: uas::Recent,
    /// Consecutive connection or registration failures (reset on success).
    failures: u32,
    /// Connections asked for so far.
    attempts: u32,
    /// The last connection or registration error, for [`FailReason::NotSent`].
    last_error: Option<String>,
    /// Via/Contact host while the driver has not said the local address.
    placeholder_host: String,
    transmits: VecDeque<Transmit>,
    queued_bytes: usize,
    events: VecDeque<Event>,
}

/// The connection, as a state that carries what it needs.
enum Conn {
    /// Not started.
    Idle,
    /// [`Transmit::Connect`] emitted.
    Connecting { deadline: Instant },
    /// Connected.
    Up(Box<Link>),
    /// Waiting out the backoff.
    Backoff { until: Instant },
    /// Registration failed permanently.
    Failed {
        retry_at: Option<Instant>,
        reason: String,
    },
    /// Shut down.
    Closed,
}

/// One open connection.
struct Link {
    decoder: Decoder,
    /// Via sent-by (`host[:port]`).
    sent_by: String,
    /// The Contact URI in use.
    contact: String,
    /// When the server last sent anything.
    last_rx: Instant,
    /// When the next CRLFCRLF ping goes out.
    next_ping: Option<Instant>,
    /// A ping is outstanding; the server must send something before this.
    pong_due: Option<Instant>,
    /// The server has answered a ping on this connection (so it does answer them).
    pong_proven: bool,
    /// [`Agent::reconnect`]: send nothing new, close once the command in flight is done.
    draining: bool,
    /// [`Agent::shutdown`]: close by this time at the latest.
    shutdown_by: Option<Instant>,
    /// When the connection came up.
    up_since: Instant,
}

impl<R> fmt::Debug for Agent<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Agent")
            .field("aor", &self.config.account.aor())
            .field("state", &self.state())
            .field("queued_commands", &self.outbox.queued())
            .field("events", &self.events.len())
            .field("transmits", &self.transmits.len())
            .finish_non_exhaustive()
    }
}

impl<R> Agent<R> {
    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// The connection state. Changes with every `handle_*` call and command.
    #[must_use]
    pub fn state(&self) -> State {
        match &self.conn {
            Conn::Idle => State::Disconnected,
            Conn::Connecting { .. } => State::Connecting,
            Conn::Backoff { .. } => State::Reconnecting,
            Conn::Failed { .. } => State::Failed,
            Conn::Closed => State::Closed,
            Conn::Up(l) if l.shutdown_by.is_some() => State::ShuttingDown,
            Conn::Up(_) if !self.config.register => State::Connected,
            Conn::Up(_) if self.reg.is_active() => State::Registered,
            Conn::Up(_) => State::Registering,
        }
    }

    /// When the current registration expires, if one is in place on this connection.
    #[must_use]
    pub fn registration_expires_at(&self) -> Option<Instant> {
        self.reg.expires_at()
    }

    /// The Contact URI of the current connection.
    #[must_use]
    pub fn contact(&self) -> Option<&str> {
        match &self.conn {
            Conn::Up(l) => Some(&l.contact),
            _ => None,
        }
    }

    /// The next thing to do with the connection: connect, send bytes, close, in order.
    ///
    /// Any `handle_*` call and any command can queue transmits.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = self.transmits.pop_front()?;
        if let Transmit::Send(b) = &t {
            self.queued_bytes = self.queued_bytes.saturating_sub(b.len());
        }
        Some(t)
    }

    /// The next thing the application should know.
    ///
    /// Any `handle_*` call and any command can queue events.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Agent::handle_timeout`] is next due; `None` when nothing is scheduled (not
    /// started, failed for good, or closed).
    ///
    /// Changes after every `handle_*` call and every command. Never earlier than a deadline
    /// that `handle_timeout` would act on, so calling it at this time always makes progress.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = None;
        match &self.conn {
            Conn::Connecting { deadline } => earliest(&mut t, Some(*deadline)),
            Conn::Backoff { until } => earliest(&mut t, Some(*until)),
            Conn::Failed { retry_at, .. } => earliest(&mut t, *retry_at),
            Conn::Up(l) => {
                earliest(&mut t, l.next_ping);
                earliest(&mut t, l.pong_due);
                earliest(&mut t, l.shutdown_by);
                earliest(&mut t, self.reg.deadline());
            }
            Conn::Idle | Conn::Closed => {}
        }
        earliest(&mut t, self.outbox.deadline(self.config.queue.max_wait));
        earliest(&mut t, self.calls.deadline());
        earliest(&mut t, self.recent.deadline());
        t
    }
}

impl<R: CryptoRng> Agent<R> {
    /// An agent for `config`, drawing its randomness from `rng`. It starts
    /// [`State::Disconnected`]; [`Agent::start`] asks for the first connection.
    pub fn new(config: AgentConfig, mut rng: R) -> Result<Self, ConfigError> {
        config.validate()?;
        let reg = register::Registration::new(&config, &mut rng);
        let outbox = outgoing::Outbox::new(&config);
        let placeholder_host = schedule::placeholder_host(&mut rng);
        Ok(Agent {
            config,
            rng,
            conn: Conn::Idle,
            reg,
            outbox,
            calls: calls::Calls::default(),
            recent: uas::Recent::default(),
            failures: 0,
            attempts: 0,
            last_error: None,
            placeholder_host,
            transmits: VecDeque::new(),
            queued_bytes: 0,
            events: VecDeque::new(),
        })
    }

    /// Ask for a connection ([`Transmit::Connect`]). Acts in [`State::Disconnected`] and
    /// [`State::Failed`] (a restart after a permanent failure); elsewhere a no-op.
    pub fn start(&mut self, now: Instant) {
        if matches!(self.conn, Conn::Idle | Conn::Failed { .. }) {
            self.connect(now);
        }
    }

    /// The connection asked for by [`Transmit::Connect`] is open; the local address is not
    /// known (Via and Contact use a `.invalid` placeholder until the registrar's
    /// `received`/`rport` tells the address it sees). Ignored unless connecting (or not
    /// started, for drivers that connect first).
    pub fn handle_connected(&mut self, now: Instant) {
        self.connected(now, None);
    }

    /// [`Agent::handle_connected`] with the connection's local address, used in Via and
    /// Contact.
    pub fn handle_connected_from(&mut self, now: Instant, local: SocketAddr) {
        self.connected(now, Some(local));
    }

    /// The connection closed or could not be opened. Ignored unless connecting or connected.
    pub fn handle_disconnected(&mut self, now: Instant) {
        if matches!(self.conn, Conn::Up(_) | Conn::Connecting { .. }) {
            self.lose_connection(now, DisconnectReason::Closed);
            self.pump(now);
        }
    }

    /// Bytes read from the connection, in any chunking. Ignored unless connected.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        let Conn::Up(link) = &mut self.conn else {
            return;
        };
        if bytes.is_empty() {
            return;
        }
        link.decoder.feed(bytes);
        link.last_rx = now;
        let ping_outstanding = link.pong_due.take().is_some();
        while let Conn::Up(link) = &mut self.conn {
            let frame = match link.decoder.next_frame() {
                None => break,
                Some(Ok(frame)) => frame,
                Some(Err(e)) => {
                    self.lose_connection(now, DisconnectReason::Framing(e));
                    break;
                }
            };
            match frame {
                Frame::Message(bytes) => self.on_frame(now, &bytes),
                // A line break while our ping is outstanding is the pong, whichever way the
                // framer's count of consecutive line breaks labels it (pongs do not end a
                // run, so every second one looks like a ping).
                Frame::Ping | Frame::Pong if ping_outstanding => link.pong_proven = true,
                // The server pings us (RFC 5626 §4.4.1): answer with one CRLF — unless the
                // peer is not reading what we send (it will ping again).
                Frame::Ping => self.send_if_room(Bytes::from_static(b"\r\n")),
                Frame::Pong => {}
            }
        }
        self.pump(now);
    }

    /// A deadline passed. Early, late and repeated calls are harmless: only what is due at
    /// `now` happens.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &self.conn {
            Conn::Connecting { deadline } if *deadline <= now => {
                self.lose_connection(now, DisconnectReason::ConnectTimeout);
            }
            Conn::Backoff { until } if *until <= now => self.connect(now),
            Conn::Failed {
                retry_at: Some(t), ..
            } if *t <= now => self.connect(now),
            _ => {}
        }
        self.link_timeouts(now);
        self.registration_timeouts(now);
        self.outbox_timeouts(now);
        self.call_timeouts(now);
        self.recent.expire(now);
        self.pump(now);
    }

    /// Close the connection gracefully and open a new one at once (for example after the
    /// client certificate was renewed): nothing new is sent meanwhile, the command in flight
    /// is waited for, queued commands go out on the new connection, the registration is
    /// renewed there (and the old Contact's binding removed).
    pub fn reconnect(&mut self, now: Instant) {
        match &mut self.conn {
            Conn::Up(l) if l.shutdown_by.is_none() => l.draining = true,
            Conn::Connecting { .. } | Conn::Backoff { .. } => {
                self.teardown(now, FailReason::ConnectionLost, CallEnd::ConnectionLost);
                self.connect(now);
            }
            _ => {}
        }
        self.pump(now);
    }

    /// Shut down: refuse new commands, fail queued ones ([`FailReason::Shutdown`]), end calls,
    /// un-REGISTER when registered, and close once that (and the command in flight) is answered
    /// or [`AgentConfig::shutdown_timeout`] passed. Ends with [`Event::Closed`].
    pub fn shutdown(&mut self, now: Instant) {
        match &self.conn {
            Conn::Closed => return,
            Conn::Up(l) if l.shutdown_by.is_some() => return,
            Conn::Up(_) => {
                let by = now + self.config.shutdown_timeout;
                if let Conn::Up(l) = &mut self.conn {
                    l.shutdown_by = Some(by);
                    l.draining = false;
                }
                self.fail_queue(|| FailReason::Shutdown);
                self.calls_shutdown(now);
                if self.config.register && self.reg.has_binding() {
                    self.send_register(now, register::RegKind::Unregister, 0, 0);
                } else {
                    self.reg.abandon();
                }
            }
            _ => {
                self.teardown(now, FailReason::Shutdown, CallEnd::Shutdown);
                self.fail_queue(|| FailReason::Shutdown);
                self.close_for_good();
            }
        }
        self.pump(now);
    }

    // ----- connection lifecycle -------------------------------------------------------------

    fn connect(&mut self, now: Instant) {
        self.attempts = self.attempts.saturating_add(1);
        self.conn = Conn::Connecting {
            deadline: now + self.config.connect_timeout,
        };
        self.transmits.push_back(Transmit::Connect {
            attempt: self.attempts,
        });
    }

    fn connected(&mut self, now: Instant, local: Option<SocketAddr>) {
        if !matches!(self.conn, Conn::Idle | Conn::Connecting { .. }) {
            return;
        }
        let sent_by = match local {
            Some(SocketAddr::V4(a)) => format!("{}:{}", a.ip(), a.port()),
            Some(SocketAddr::V6(a)) => format!("[{}]:{}", a.ip(), a.port()),
            None => self.placeholder_host.clone(),
        };
        let contact = self.contact_uri(&sent_by);
        let next_ping = self
            .config
            .keepalive
            .interval
            .map(|i| now + schedule::keepalive_delay(i, &mut self.rng));
        self.conn = Conn::Up(Box::new(Link {
            decoder: Decoder::new(Limits::new()),
            sent_by,
            contact,
            last_rx: now,
            next_ping,
            pong_due: None,
            pong_proven: false,
            draining: false,
            shutdown_by: None,
            up_since: now,
        }));
        if self.config.register {
            self.registration_link_up(now);
        } else {
            // The failure count stays until the connection has proven itself (see
            // `lose_connection`): one that is dropped as soon as it is up must back off.
            self.last_error = None;
        }
        self.pump(now);
    }

    /// `sip:<user>@<host[:port]>;transport=<tcp|tls>`.
    fn contact_uri(&self, host_port: &str) -> String {
        format!(
            "sip:{}@{};transport={}",
            self.config.account.user,
            host_port,
            self.config.server.transport.uri_param()
        )
    }

    /// Close the connection (or abandon the attempt) and settle everything that depended on
    /// it: the command in flight fails with `lost`, live calls end with `end`.
    fn teardown(&mut self, now: Instant, lost: FailReason, end: CallEnd) {
        match core::mem::replace(&mut self.conn, Conn::Idle) {
            Conn::Up(_) => {
                self.transmits.push_back(Transmit::Close);
                self.registration_link_down();
                self.outbox_link_down(lost);
                self.calls_link_down(now, end);
            }
            Conn::Connecting { .. } => self.transmits.push_back(Transmit::Close),
            other => self.conn = other,
        }
    }

    /// The connection is gone or unusable: close it and wait out the backoff (or finish a
    /// shutdown).
    fn lose_connection(&mut self, now: Instant, reason: DisconnectReason) {
        let shutting = matches!(&self.conn, Conn::Up(l) if l.shutdown_by.is_some());
        if !matches!(self.conn, Conn::Up(_) | Conn::Connecting { .. }) {
            return;
        }
        if shutting {
            self.teardown(now, FailReason::Shutdown, CallEnd::Shutdown);
            self.close_for_good();
            return;
        }
        // A connection that lived at least the longest backoff was a success: this loss
        // starts counting afresh. One dropped sooner (even right after a successful
        // REGISTER: another instance on the account, a server limit) adds to the count, so
        // the delays grow instead of reconnecting every `backoff.initial` for ever.
        if let Conn::Up(link) = &self.conn
            && now.saturating_duration_since(link.up_since) >= self.config.backoff.max
        {
            self.failures = 0;
        }
        self.teardown(now, FailReason::ConnectionLost, CallEnd::ConnectionLost);
        self.failures = self.failures.saturating_add(1);
        let until =
            now + schedule::backoff_delay(&self.config.backoff, self.failures, &mut self.rng);
        self.last_error = Some(reason.to_string());
        self.conn = Conn::Backoff { until };
        self.push_event(Event::Reconnecting {
            reason,
            attempt: self.failures,
            retry_at: until,
        });
    }

    /// The registration failed in a way retrying on this connection cannot fix.
    fn fail_permanently(&mut self, now: Instant, status: Option<u16>, reason: String) {
        self.teardown(now, FailReason::ConnectionLost, CallEnd::ConnectionLost);
        let retry_at = self.config.retry_after_failure.map(|d| now + d);
        self.last_error = Some(reason.clone());
        self.push_event(Event::RegistrationFailed {
            status,
            reason: reason.clone(),
            permanent: true,
            retry_at,
        });
        let r = reason.clone();
        self.fail_queue(|| FailReason::RegistrationFailed { reason: r.clone() });
        self.conn = Conn::Failed { retry_at, reason };
    }

    fn close_for_good(&mut self) {
        self.conn = Conn::Closed;
        self.reg.abandon();
        self.push_event(Event::Closed);
    }

    /// Keep-alive and shutdown deadlines of the open connection.
    fn link_timeouts(&mut self, now: Instant) {
        let Conn::Up(link) = &mut self.conn else {
            return;
        };
        if link.shutdown_by.is_some_and(|t| t <= now) {
            self.teardown(now, FailReason::Shutdown, CallEnd::Shutdown);
            self.close_for_good();
            return;
        }
        if link.pong_due.is_some_and(|t| t <= now) {
            link.pong_due = None;
            if link.pong_proven {
                let silent_for = now - link.last_rx;
                self.push_event(Event::ConnectionStale { silent_for });
                self.lose_connection(now, DisconnectReason::Stale);
                return;
            }
        }
        if let (Some(t), Some(interval)) = (link.next_ping, self.config.keepalive.interval)
            && t <= now
        {
            link.next_ping = Some(now + schedule::keepalive_delay(interval, &mut self.rng));
            if let Some(timeout) = self.config.keepalive.pong_timeout {
                // A ping still unanswered keeps its deadline: a later ping must not push
                // it back (with a pong timeout at or above the interval it would forever).
                let due = now + timeout;
                link.pong_due = Some(link.pong_due.map_or(due, |d| d.min(due)));
            }
            self.send_bytes(Bytes::from_static(b"\r\n\r\n"));
        }
    }

    /// Whether commands can be sent now.
    fn ready(&self) -> bool {
        match &self.conn {
            Conn::Up(l) => {
                !l.draining
                    && l.shutdown_by.is_none()
                    && (!self.config.register || self.reg.is_active())
            }
            _ => false,
        }
    }

    /// After every input: finish a graceful reconnect or a shutdown that has nothing left to
    /// wait for, and send the next queued command.
    fn pump(&mut self, now: Instant) {
        if let Conn::Up(l) = &self.conn {
            let idle = self.outbox.in_flight().is_none();
            if l.shutdown_by.is_some() && idle && !self.reg.busy() && !self.calls.any_ending() {
                self.teardown(now, FailReason::Shutdown, CallEnd::Shutdown);
                self.close_for_good();
                return;
            }
            if l.draining && l.shutdown_by.is_none() && idle {
                self.teardown(now, FailReason::ConnectionLost, CallEnd::ConnectionLost);
                self.connect(now);
                return;
            }
        }
        self.pump_outbox(now);
    }

    // ----- input dispatch -------------------------------------------------------------------

    fn on_frame(&mut self, now: Instant, bytes: &Bytes) {
        let Ok(msg) = Message::parse(bytes) else {
            // Not a message at all: nothing to answer (no headers to mirror).
            return;
        };
        if msg.is_request() {
            self.on_request(now, &msg, bytes);
        } else {
            self.on_response(now, &msg);
        }
    }

    fn on_response(&mut self, now: Instant, msg: &Message<'_>) {
        // RFC 3261 §8.1.3.3: a response with more than one Via is discarded.
        if msg.via().nth(1).is_some() {
            return;
        }
        let (Ok(via), Ok(cseq), Some(code)) = (msg.top_via(), msg.cseq(), msg.status()) else {
            return;
        };
        let Some(branch) = via.branch() else {
            return;
        };
        use crate::sip::message::Method;
        match cseq.method {
            Method::Register if self.reg.tx_branch() == Some(branch) => {
                self.on_register_response(now, msg, code);
            }
            Method::Message if self.outbox.in_flight() == Some(branch) => {
                self.on_message_response(now, msg, code);
            }
            Method::Bye => self.on_bye_response(now, branch, code),
            _ => {}
        }
    }

    // ----- output helpers -------------------------------------------------------------------

    /// Queue bytes for the open connection (dropped when there is none).
    fn send_bytes(&mut self, b: Bytes) {
        if matches!(self.conn, Conn::Up(_)) {
            self.queued_bytes = self.queued_bytes.saturating_add(b.len());
            self.transmits.push_back(Transmit::Send(b));
        }
    }

    /// Queues `b` if the outgoing queue has room for it (the bound responses keep): for
    /// what a peer makes us send again — pong answers, retransmitted responses — which it
    /// will ask for again if it is dropped.
    fn send_if_room(&mut self, b: Bytes) {
        if self.room_for_response(b.len()) {
            self.send_bytes(b);
        }
    }

    /// Whether a response of `len` bytes may be queued (the driver drains transmits).
    fn room_for_response(&self, len: usize) -> bool {
        self.queued_bytes.saturating_add(len) <= MAX_QUEUED_BYTES
    }

    fn push_event(&mut self, e: Event) {
        if self.events.len() >= MAX_EVENTS
            && e.is_lifecycle()
            && let Some(i) = self.events.iter().position(Event::is_lifecycle)
        {
            self.events.remove(i);
        }
        self.events.push_back(e);
    }

    /// Whether an event caused by the peer can be taken.
    fn room_for_peer_event(&self) -> bool {
        self.events.len() < PEER_EVENT_ROOM
    }
}

fn earliest(t: &mut Option<Instant>, candidate: Option<Instant>) {
    if let Some(c) = candidate
        && t.is_none_or(|cur| c < cur)
    {
        *t = Some(c);
    }
}
