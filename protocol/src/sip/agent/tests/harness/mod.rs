//! The deterministic two-party harness: the agent against a pure registrar + gate built from
//! the wire layer (framing, parser, builder, digest server), over a virtual network with
//! latency and virtual time that jumps to the next deadline.

mod peer;

pub(super) use peer::{Fault, MsgFault, Peer, invite};

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::sip::agent::{Account, Agent, AgentConfig, Event, Server, StreamTransport, Transmit};
use crate::time::Instant;

pub(super) const USER: &str = "alice";
pub(super) const DOMAIN: &str = "gw.example";
pub(super) const PASSWORD: &str = "s3cret";
pub(super) const GATEWAY: &str = "c100x";

/// A configuration for the harness: TLS to the peer, the gateway as the only caller.
pub(super) fn config() -> AgentConfig {
    let mut c = AgentConfig::new(
        Account::new(USER, DOMAIN, PASSWORD),
        Server::new("sip.gw.example", 5061, StreamTransport::Tls),
    );
    c.allowed_callers = vec![crate::sip::agent::CallerPattern::user_at(GATEWAY, DOMAIN)];
    c.gate = Some(crate::sip::agent::GateConfig::new(
        format!("sip:{GATEWAY}@{DOMAIN}"),
        "text/plain",
        r#"{"id":"{id}","method":"lock.setStatus"}"#,
    ));
    c
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    ToPeer,
    ToAgent,
}

/// The agent, the peer, a network between them and virtual time.
pub(super) struct Pair {
    pub(super) agent: Agent<ChaCha20Rng>,
    pub(super) peer: Peer,
    pub(super) now: Instant,
    /// One-way network latency.
    pub(super) latency: Duration,
    /// Whether a connection attempt succeeds.
    pub(super) accept: bool,
    /// Whether the local address is reported with the connection.
    pub(super) local: Option<core::net::SocketAddr>,
    /// Bytes to the agent are fed in chunks of these sizes, cycled (empty: whole).
    pub(super) chunks: Vec<usize>,
    chunk_at: usize,
    pub(super) connected: bool,
    generation: u64,
    wire: VecDeque<(Instant, u64, Dir, Vec<u8>)>,
    pub(super) events: Vec<(Instant, Event)>,
    pub(super) connects: Vec<Instant>,
    pub(super) closes: Vec<Instant>,
    /// Called after every step with the pair (for invariants such as "never lapses").
    pub(super) check: Option<fn(&Pair)>,
}

impl Pair {
    pub(super) fn new(config: AgentConfig, seed: u64) -> Self {
        let agent = Agent::new(config, ChaCha20Rng::seed_from_u64(seed)).unwrap();
        Pair {
            agent,
            peer: Peer::new(seed),
            now: Instant::from_secs(1_000),
            latency: Duration::from_millis(20),
            accept: true,
            local: None,
            chunks: Vec::new(),
            chunk_at: 0,
            connected: false,
            generation: 0,
            wire: VecDeque::new(),
            events: Vec::new(),
            connects: Vec::new(),
            closes: Vec::new(),
            check: None,
        }
    }

    /// A started pair, run until registered.
    pub(super) fn registered(seed: u64) -> Self {
        let mut p = Pair::new(config(), seed);
        p.start();
        p.run_for(Duration::from_secs(2));
        assert!(
            p.agent.state() == crate::sip::agent::State::Registered,
            "not registered: {:?}",
            p.events
        );
        p
    }

    pub(super) fn start(&mut self) {
        self.agent.start(self.now);
        self.settle();
    }

    /// Drop the connection now (as the network would).
    pub(super) fn drop_connection(&mut self) {
        if self.connected {
            self.connected = false;
            self.generation += 1;
            self.agent.handle_disconnected(self.now);
            self.settle();
        }
    }

    /// Move every message that can move at `now`.
    pub(super) fn settle(&mut self) {
        for _ in 0..10_000 {
            let mut progressed = false;
            while let Some(t) = self.agent.poll_transmit() {
                progressed = true;
                match t {
                    Transmit::Connect { .. } => {
                        self.connects.push(self.now);
                        if self.accept {
                            self.connected = true;
                            self.generation += 1;
                            self.peer.new_connection();
                            match self.local {
                                Some(a) => self.agent.handle_connected_from(self.now, a),
                                None => self.agent.handle_connected(self.now),
                            }
                        } else {
                            self.agent.handle_disconnected(self.now);
                        }
                    }
                    Transmit::Send(b) => {
                        assert!(self.connected, "bytes sent without a connection");
                        self.wire.push_back((
                            self.now + self.latency,
                            self.generation,
                            Dir::ToPeer,
                            b.to_vec(),
                        ));
                    }
                    Transmit::Close => {
                        self.closes.push(self.now);
                        self.connected = false;
                        self.generation += 1;
                    }
                }
            }
            while let Some(e) = self.agent.poll_event() {
                progressed = true;
                self.events.push((self.now, e));
            }
            while let Some(b) = self.peer.out.pop_front() {
                progressed = true;
                if self.connected {
                    self.wire.push_back((
                        self.now + self.latency,
                        self.generation,
                        Dir::ToAgent,
                        b,
                    ));
                }
            }
            if self.peer.drop_now {
                self.peer.drop_now = false;
                progressed = true;
                self.drop_connection();
            }
            // Deliver what is due, in send order.
            if let Some(i) = self.wire.iter().position(|w| w.0 <= self.now) {
                progressed = true;
                let (_, generation, dir, bytes) = self.wire.remove(i).unwrap();
                if generation == self.generation && self.connected {
                    match dir {
                        Dir::ToPeer => self.peer.handle_input(self.now, &bytes),
                        Dir::ToAgent => self.feed_agent(&bytes),
                    }
                }
            }
            if let Some(check) = self.check {
                check(self);
            }
            if !progressed {
                return;
            }
        }
        panic!("the pair does not settle (a message loop)");
    }

    fn feed_agent(&mut self, bytes: &[u8]) {
        if self.chunks.is_empty() {
            self.agent.handle_input(self.now, bytes);
            return;
        }
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = self.chunks[self.chunk_at % self.chunks.len()].clamp(1, rest.len());
            self.chunk_at += 1;
            self.agent.handle_input(self.now, &rest[..n]);
            rest = &rest[n..];
        }
    }

    /// The next time anything happens.
    fn next_time(&self) -> Option<Instant> {
        let wire = self.wire.iter().map(|w| w.0).min();
        match (wire, self.agent.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Run until `until`, jumping from deadline to deadline.
    pub(super) fn run_until(&mut self, until: Instant) {
        self.settle();
        for _ in 0..1_000_000 {
            let Some(next) = self.next_time() else { break };
            if next > until {
                break;
            }
            // Deadlines in the past fire now; time never goes back.
            self.now = self.now.max(next);
            if let Some(check) = self.check {
                check(self);
            }
            self.agent.handle_timeout(self.now);
            self.settle();
        }
        self.now = self.now.max(until);
        if let Some(check) = self.check {
            check(self);
        }
    }

    pub(super) fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Events so far, without the times.
    pub(super) fn event_list(&self) -> Vec<&Event> {
        self.events.iter().map(|(_, e)| e).collect()
    }

    /// How many events match.
    pub(super) fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|(_, e)| f(e)).count()
    }

    /// The agent's current Contact URI.
    pub(super) fn contact(&self) -> String {
        self.agent.contact().expect("connected").to_string()
    }
}
