//! The SIP user agent under arbitrary operation sequences: raw bytes from the peer, time
//! steps, connection events, commands, and — so the fuzzer reaches past the first REGISTER —
//! answers to the agent's own last request (any status, with challenges, Contact expiries,
//! Min-Expires, Retry-After, received/rport) and requests from a gateway (INVITE, CANCEL,
//! ACK, BYE, MESSAGE) built from templates with fuzzed fields.
//!
//! Checks: no panic; after `handle_timeout(now)` the next deadline is strictly later (no busy
//! loop); undrained transmits, events and the command queue stay bounded; every accepted
//! command ends in at most one outcome, and in exactly one once the agent is closed.
#![no_main]

use std::collections::BTreeMap;
use std::time::Duration;

use latchkey_protocol::sip::Message;
use latchkey_protocol::sip::agent::{
    Account, Agent, AgentConfig, Answer, CallHandle, CallerPattern, Event, GateConfig, MessageId,
    Server, State, StreamTransport, Transmit,
};
use latchkey_protocol::sip::builder::MessageWriter;
use latchkey_protocol::sip::digest::{DigestServer, ServerConfig};
use latchkey_protocol::time::Instant;
use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// A cursor over the fuzz input.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }
    fn u16(&mut self) -> u16 {
        u16::from(self.byte().unwrap_or(0)) << 8 | u16::from(self.byte().unwrap_or(0))
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, rest) = self.0.split_at(n);
        self.0 = rest;
        a
    }
}

fn config(flags: u8) -> AgentConfig {
    let mut c = AgentConfig::new(
        Account::new("alice", "gw.example", "pw"),
        Server::new("sip.gw.example", 5061, StreamTransport::Tls),
    );
    c.register = flags & 1 == 0;
    if flags & 2 != 0 {
        c.allowed_callers = vec![CallerPattern::user_at("c100x", "gw.example")];
    }
    c.gate = Some(GateConfig::new(
        "sip:c100x@gw.example",
        "text/plain",
        r#"{"id":"{id}"}"#,
    ));
    c.queue.capacity = 4;
    if flags & 4 != 0 {
        c.outbound_proxy = Some("sip:proxy.gw.example;lr".into());
    }
    c
}

const STATUSES: [u16; 16] = [
    100, 180, 200, 202, 401, 407, 423, 403, 404, 408, 480, 486, 500, 503, 603, 302,
];
const METHODS: [&str; 6] = ["INVITE", "CANCEL", "ACK", "BYE", "MESSAGE", "OPTIONS"];

/// An answer to the last request the agent sent, shaped by the input.
fn answer(
    last: &[u8],
    input: &mut Input<'_>,
    server: &DigestServer,
    now: Instant,
    rng: &mut ChaCha20Rng,
) -> Option<Vec<u8>> {
    let mut text = String::from_utf8_lossy(last).into_owned();
    let shape = input.byte()?;
    if shape & 1 != 0 {
        let port = input.u16();
        text = text.replacen(
            ";rport\r\n",
            &format!(";rport={port};received=203.0.113.{}\r\n", shape >> 1),
            1,
        );
    }
    let req = Message::parse(text.as_bytes()).ok()?;
    let code = STATUSES[usize::from(input.byte()? % 16)];
    let mut out = Vec::new();
    let mut w = MessageWriter::response_to(&mut out, &req, code, "Fuzz", Some("peer")).ok()?;
    let extra = input.byte().unwrap_or(0);
    if code == 401 || code == 407 {
        let name = if code == 401 {
            "WWW-Authenticate"
        } else {
            "Proxy-Authenticate"
        };
        for c in server.challenges(now, extra & 1 != 0, rng) {
            w.header(name, &c).ok()?;
        }
        if extra & 2 != 0 {
            let junk = String::from_utf8_lossy(input.bytes(40)).replace(['\r', '\n', '\0'], " ");
            let _ = w.header(name, &format!("Digest {junk}"));
        }
    }
    if code / 100 == 2 && extra & 4 != 0 {
        let contact = req
            .contacts()
            .flatten()
            .next()
            .and_then(|c| c.addr().map(|a| a.uri.as_str().to_owned()));
        if let Some(c) = contact {
            w.header("Contact", &format!("<{c}>;expires={}", input.u16()))
                .ok()?;
        }
    }
    if extra & 8 != 0 {
        w.header("Expires", &input.u16().to_string()).ok()?;
    }
    if code == 423 {
        w.header("Min-Expires", &(u32::from(input.u16()) * 16).to_string())
            .ok()?;
    }
    if extra & 16 != 0 {
        w.header("Retry-After", &(input.byte().unwrap_or(0)).to_string())
            .ok()?;
    }
    w.finish(None).ok()?;
    Some(out)
}

/// A request from the gateway with fuzzed call, tags and method.
fn request(contact: &str, input: &mut Input<'_>) -> Option<Vec<u8>> {
    let method = METHODS[usize::from(input.byte()? % 6)];
    let call = input.byte()? % 4;
    let seq = input.byte()? % 3 + 1;
    let branch = input.byte()? % 4;
    let to_tag = match input.byte()? % 3 {
        0 => String::new(),
        1 => ";tag=x".into(),
        _ => String::from_utf8_lossy(input.bytes(8))
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_string())
            .collect::<String>(),
    };
    let to_tag = if to_tag.is_empty() || to_tag.starts_with(';') {
        to_tag
    } else {
        format!(";tag={to_tag}")
    };
    let body = if method == "INVITE" {
        "v=0\r\nm=audio 4000 RTP/AVP 0\r\n"
    } else {
        "hi"
    };
    let ctype = if method == "INVITE" {
        "application/sdp"
    } else {
        "text/plain"
    };
    Some(format!(
        "{method} {contact} SIP/2.0\r\nVia: SIP/2.0/TLS gw.example;branch=z9hG4bK{call}{branch}\r\n\
Max-Forwards: 70\r\nFrom: <sip:c100x@gw.example>;tag=f{call}\r\nTo: <sip:alice@gw.example>{to_tag}\r\n\
Call-ID: call{call}\r\nCSeq: {seq} {method}\r\nContact: <sip:c100x@198.51.100.7>\r\n\
Content-Type: {ctype}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes())
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let flags = input.byte().unwrap_or(0);
    let mut agent =
        Agent::new(config(flags), ChaCha20Rng::seed_from_u64(u64::from(flags))).expect("valid");
    let server = DigestServer::new(ServerConfig::new("gw.example"), &[9u8; 32]).expect("valid");
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let mut now = Instant::from_secs(1_000);
    let mut last_request: Vec<u8> = Vec::new();
    let mut calls: Vec<CallHandle> = Vec::new();
    let mut accepted: Vec<MessageId> = Vec::new();
    let mut outcomes: BTreeMap<MessageId, u32> = BTreeMap::new();
    let mut connected = false;
    agent.start(now);
    while let Some(op) = input.byte() {
        match op % 16 {
            0 | 1 => {
                let n = usize::from(input.byte().unwrap_or(0));
                let bytes = input.bytes(n).to_vec();
                agent.handle_input(now, &bytes);
            }
            2 => {
                now = now + Duration::from_millis(u64::from(input.u16()) * 16);
                agent.handle_timeout(now);
                if let Some(t) = agent.poll_timeout() {
                    assert!(
                        t > now,
                        "deadline {t:?} not after {now:?} in {:?}",
                        agent.state()
                    );
                }
            }
            3 => {
                if let Some(t) = agent.poll_timeout() {
                    now = now.max(t);
                    agent.handle_timeout(now);
                    if let Some(t) = agent.poll_timeout() {
                        assert!(
                            t > now,
                            "deadline {t:?} not after {now:?} in {:?}",
                            agent.state()
                        );
                    }
                }
            }
            4 => agent.handle_connected(now),
            5 => agent.handle_disconnected(now),
            6 => {
                let local = format!("192.0.2.{}:{}", input.byte().unwrap_or(1), input.u16());
                if let Ok(a) = local.parse() {
                    agent.handle_connected_from(now, a);
                }
            }
            7 => {
                let r = if input.byte().unwrap_or(0) & 1 == 0 {
                    agent.open_gate(now)
                } else {
                    let body = input.bytes(16).to_vec();
                    agent.send_message(now, "sip:c100x@gw.example", "text/plain", &body)
                };
                if let Ok(id) = r {
                    assert!(!accepted.contains(&id), "id reused");
                    accepted.push(id);
                }
            }
            8 => {
                if let Some(&call) =
                    calls.get(usize::from(input.byte().unwrap_or(0)) % calls.len().max(1))
                {
                    let a = [Answer::Busy, Answer::Decline, Answer::Accept]
                        [usize::from(input.byte().unwrap_or(0) % 3)];
                    let _ = agent.answer(now, call, a);
                }
            }
            9 => {
                if let Some(&call) = calls.last() {
                    let _ = agent.hang_up(now, call);
                }
            }
            10 => agent.reconnect(now),
            11 => agent.shutdown(now),
            12 => agent.start(now),
            13 | 14 => {
                if let Some(bytes) = answer(&last_request, &mut input, &server, now, &mut rng) {
                    agent.handle_input(now, &bytes);
                }
            }
            _ => {
                let contact = agent.contact().unwrap_or("sip:alice@x.invalid").to_owned();
                if let Some(bytes) = request(&contact, &mut input) {
                    let cut = usize::from(input.byte().unwrap_or(0)) % (bytes.len() + 1);
                    agent.handle_input(now, &bytes[..cut]);
                    agent.handle_input(now, &bytes[cut..]);
                }
            }
        }
        let mut queued = 0usize;
        while let Some(t) = agent.poll_transmit() {
            match t {
                Transmit::Connect { .. } => connected = false,
                Transmit::Close => connected = false,
                Transmit::Send(b) => {
                    queued += b.len();
                    if b.len() > 4 {
                        last_request = b.to_vec();
                    }
                }
                _ => {}
            }
        }
        assert!(
            queued <= 512 * 1024,
            "{queued} bytes of transmits from one step"
        );
        let mut events = 0;
        while let Some(e) = agent.poll_event() {
            events += 1;
            match e {
                Event::Doorbell(d) => calls.push(d.call),
                Event::MessageDelivered { id, .. } | Event::MessageFailed { id, .. } => {
                    *outcomes.entry(id).or_default() += 1;
                    assert!(accepted.contains(&id), "outcome for an unknown id");
                    assert_eq!(outcomes[&id], 1, "two outcomes for {id}");
                }
                _ => {}
            }
        }
        assert!(events <= 256, "{events} events from one step");
        if calls.len() > 64 {
            calls.drain(..32);
        }
    }
    let _ = connected;
    if agent.state() == State::Closed {
        for id in &accepted {
            assert_eq!(
                outcomes.get(id),
                Some(&1),
                "{id} has no outcome after close"
            );
        }
    }
});
