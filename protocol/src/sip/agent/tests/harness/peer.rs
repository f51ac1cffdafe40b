//! The peer: a registrar (digest server side, bindings, 423), a gate (407 then 200) and a
//! gateway that rings, cancels, hangs up and sends MESSAGEs, built from the wire layer, with
//! scripted faults.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::{DOMAIN, GATEWAY, PASSWORD, USER};
use crate::sip::builder::{Address, MessageWriter, RequestHead, ViaSpec};
use crate::sip::digest::{DigestRequest, DigestServer, Secret, ServerConfig};
use crate::sip::framing::{Decoder, Frame, Limits};
use crate::sip::header::HeaderName;
use crate::sip::headers::Transport;
use crate::sip::message::{Message, Method};
use crate::time::Instant;

/// A fault the registrar applies to the next REGISTER (before looking at it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in super::super) enum Fault {
    /// 401 with a fresh nonce, even to right credentials.
    ChallengeAgain,
    /// 401 with `stale=true`.
    Stale,
    /// 423 with this Min-Expires (also raises the registrar's minimum).
    TooBrief(u32),
    /// 423 with a Min-Expires this much above what the REGISTER asked for.
    RaiseMin(u32),
    /// A final status (403, 404, 503, …).
    Status(u16),
    /// A final status with `Retry-After: <seconds>`.
    StatusRetryAfter(u16, u32),
    /// No answer at all.
    Silence,
    /// The connection drops when the request arrives.
    Drop,
}

/// A fault the gate applies to the next MESSAGE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in super::super) enum MsgFault {
    /// A final status.
    Status(u16),
    /// No answer.
    Silence,
    /// The connection drops when it arrives.
    Drop,
    /// 407 even to right credentials.
    ChallengeAgain,
}

/// A binding the registrar holds.
#[derive(Debug, Clone)]
pub(in super::super) struct Binding {
    pub(in super::super) contact: String,
    pub(in super::super) expires_at: Instant,
}

/// A request the peer received, reduced to what tests look at.
#[derive(Debug, Clone)]
pub(in super::super) struct Seen {
    pub(in super::super) at: Instant,
    pub(in super::super) method: String,
    pub(in super::super) raw: String,
}

impl Seen {
    pub(in super::super) fn header(&self, name: &str) -> Option<String> {
        let m = Message::parse(self.raw.as_bytes()).ok()?;
        m.header_by_name(name).map(|h| h.value.to_string())
    }

    pub(in super::super) fn headers(&self, name: &str) -> Vec<String> {
        let Ok(m) = Message::parse(self.raw.as_bytes()) else {
            return Vec::new();
        };
        let kind = HeaderName::from_name(name);
        m.headers()
            .iter()
            .filter(|h| {
                h.kind == kind && (kind != HeaderName::Other || h.name.eq_ignore_ascii_case(name))
            })
            .map(|h| h.value.to_string())
            .collect()
    }

    pub(in super::super) fn cseq(&self) -> u32 {
        Message::parse(self.raw.as_bytes())
            .unwrap()
            .cseq()
            .unwrap()
            .seq
    }

    pub(in super::super) fn body(&self) -> String {
        let m = Message::parse(self.raw.as_bytes()).unwrap();
        String::from_utf8_lossy(m.body()).into_owned()
    }
}

/// A response the agent sent to a request of the peer.
#[derive(Debug, Clone)]
pub(in super::super) struct Answered {
    pub(in super::super) at: Instant,
    pub(in super::super) code: u16,
    pub(in super::super) method: String,
    pub(in super::super) call_id: String,
    pub(in super::super) to_tag: Option<String>,
    pub(in super::super) raw: String,
}

/// The registrar + gate + caller.
pub(in super::super) struct Peer {
    decoder: Decoder,
    www: DigestServer,
    proxy: DigestServer,
    rng: ChaCha20Rng,
    pub(in super::super) faults: VecDeque<Fault>,
    pub(in super::super) msg_faults: VecDeque<MsgFault>,
    pub(in super::super) min_expires: u32,
    pub(in super::super) max_expires: u32,
    /// Add `received`/`rport` with this address to the top Via of responses.
    pub(in super::super) nat: Option<(&'static str, u16)>,
    pub(in super::super) answers_pings: bool,
    pub(in super::super) challenge_messages: bool,
    pub(in super::super) bindings: Vec<Binding>,
    pub(in super::super) seen: Vec<Seen>,
    pub(in super::super) answered: Vec<Answered>,
    pub(in super::super) pings: Vec<Instant>,
    /// Bytes for the agent.
    pub(in super::super) out: VecDeque<Vec<u8>>,
    /// The connection must drop (a `Drop` fault fired).
    pub(in super::super) drop_now: bool,
    /// Apply faults only to a first attempt, never to the retry that answers a challenge, a
    /// 423 or a 5xx (a registrar that challenges a right answer again is rejecting the
    /// credentials; one that keeps raising Min-Expires is broken): property tests keep the
    /// registrar honest.
    pub(in super::super) honest: bool,
    /// The last REGISTER was answered with something other than 2xx.
    follow_up: bool,
    seq: u32,
}

impl Peer {
    pub(in super::super) fn new(seed: u64) -> Self {
        let mut www = ServerConfig::new(DOMAIN);
        www.nonce_lifetime = Duration::from_secs(300);
        let proxy = www.clone();
        Peer {
            decoder: Decoder::new(Limits::new()),
            www: DigestServer::new(www, &[7u8; 32]).unwrap(),
            proxy: DigestServer::new(proxy, &[8u8; 32]).unwrap(),
            rng: ChaCha20Rng::seed_from_u64(seed ^ 0x5eed),
            faults: VecDeque::new(),
            msg_faults: VecDeque::new(),
            min_expires: 0,
            max_expires: 3600,
            nat: None,
            answers_pings: true,
            challenge_messages: true,
            bindings: Vec::new(),
            seen: Vec::new(),
            answered: Vec::new(),
            pings: Vec::new(),
            out: VecDeque::new(),
            drop_now: false,
            honest: false,
            follow_up: false,
            seq: 0,
        }
    }

    /// Nonces live this long.
    pub(in super::super) fn set_nonce_lifetime(&mut self, d: Duration) {
        let mut c = self.www.config().clone();
        c.nonce_lifetime = d;
        self.www = DigestServer::new(c.clone(), &[7u8; 32]).unwrap();
        self.proxy = DigestServer::new(c, &[8u8; 32]).unwrap();
    }

    pub(in super::super) fn new_connection(&mut self) {
        self.decoder.reset();
    }

    /// Whether the registrar holds a binding valid at `t`.
    pub(in super::super) fn registered_at(&self, t: Instant) -> bool {
        self.bindings.iter().any(|b| b.expires_at > t)
    }

    pub(in super::super) fn requests(&self, method: &str) -> Vec<&Seen> {
        self.seen.iter().filter(|s| s.method == method).collect()
    }

    pub(in super::super) fn answers_to(&self, method: &str) -> Vec<&Answered> {
        self.answered
            .iter()
            .filter(|a| a.method == method)
            .collect()
    }

    pub(in super::super) fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        self.decoder.feed(bytes);
        while let Some(frame) = self.decoder.next_frame() {
            match frame.expect("the agent frames its stream correctly") {
                Frame::Ping => {
                    self.pings.push(now);
                    if self.answers_pings {
                        self.out.push_back(b"\r\n".to_vec());
                    }
                }
                Frame::Pong => {}
                Frame::Message(m) => self.handle_message(now, &m),
            }
        }
    }

    fn handle_message(&mut self, now: Instant, raw: &[u8]) {
        let msg = Message::parse(raw).expect("the agent writes parseable messages");
        if let Some(code) = msg.status() {
            // Responses mirror the request's headers, faults included.
            assert!(msg.is_head_terminated());
            let method = msg
                .cseq()
                .map(|c| c.method.as_str().to_string())
                .unwrap_or_default();
            self.answered.push(Answered {
                at: now,
                code,
                method,
                call_id: msg.call_id().unwrap_or_default().to_string(),
                to_tag: msg.to().ok().and_then(|t| t.tag()).map(String::from),
                raw: String::from_utf8_lossy(raw).into_owned(),
            });
            return;
        }
        msg.validate(crate::sip::validate::Options::stream())
            .expect("the agent's requests pass the strict check");
        let method = msg.method().unwrap().as_str().to_string();
        self.seen.push(Seen {
            at: now,
            method: method.clone(),
            raw: String::from_utf8_lossy(raw).into_owned(),
        });
        match method.as_str() {
            "REGISTER" => self.on_register(now, raw),
            "MESSAGE" => self.on_message(now, raw),
            "BYE" | "OPTIONS" => self.reply(raw, 200, "OK", &[]),
            _ => self.reply(raw, 501, "Not Implemented", &[]),
        }
    }

    fn on_register(&mut self, now: Instant, raw: &[u8]) {
        let follow_up = core::mem::replace(&mut self.follow_up, false);
        let fault = if self.honest && follow_up {
            None
        } else {
            self.faults.pop_front()
        };
        if let Some(f) = fault {
            match f {
                Fault::ChallengeAgain => return self.challenge(now, raw, false, false),
                Fault::Stale => return self.challenge(now, raw, true, false),
                Fault::TooBrief(m) => {
                    self.min_expires = m;
                    return self.reply(
                        raw,
                        423,
                        "Interval Too Brief",
                        &[("Min-Expires", m.to_string())],
                    );
                }
                Fault::RaiseMin(k) => {
                    let asked = Message::parse(raw).unwrap().expires().unwrap();
                    self.min_expires = asked + k;
                    let min = self.min_expires.to_string();
                    return self.reply(raw, 423, "Interval Too Brief", &[("Min-Expires", min)]);
                }
                Fault::Status(code) => return self.reply(raw, code, reason(code), &[]),
                Fault::StatusRetryAfter(code, secs) => {
                    let after = secs.to_string();
                    return self.reply(raw, code, reason(code), &[("Retry-After", after)]);
                }
                Fault::Silence => return,
                Fault::Drop => {
                    self.drop_now = true;
                    return;
                }
            }
        }
        let msg = Message::parse(raw).unwrap();
        let uri = msg.request_line().unwrap().uri;
        let Some(Ok(creds)) = msg.authorization().next() else {
            return self.challenge(now, raw, false, false);
        };
        let req = DigestRequest::new("REGISTER", uri, b"");
        match self.www.verify(
            now,
            &creds,
            &req,
            USER,
            Secret::Password(PASSWORD.as_bytes()),
        ) {
            Ok(_) => {}
            Err(e) if e.is_stale() => return self.challenge(now, raw, true, false),
            Err(_) => return self.challenge(now, raw, false, false),
        }
        let header = msg.expires().ok();
        let mut changes = Vec::new();
        for c in msg.contacts().flatten() {
            let a = c.addr().unwrap();
            let e = a.expires().or(header).unwrap_or(3600);
            if e != 0 && e < self.min_expires {
                return self.reply(
                    raw,
                    423,
                    "Interval Too Brief",
                    &[("Min-Expires", self.min_expires.to_string())],
                );
            }
            changes.push((a.uri.as_str().to_string(), e));
        }
        for (contact, e) in changes {
            self.bindings.retain(|b| b.contact != contact);
            if e > 0 {
                let grant = e.min(self.max_expires);
                self.bindings.push(Binding {
                    contact,
                    expires_at: now + Duration::from_secs(u64::from(grant)),
                });
            }
        }
        self.bindings.retain(|b| b.expires_at > now);
        let contacts: Vec<(&str, String)> = self
            .bindings
            .iter()
            .map(|b| {
                let left = (b.expires_at - now).as_secs();
                ("Contact", format!("<{}>;expires={left}", b.contact))
            })
            .collect();
        let contacts: Vec<(&str, String)> = contacts;
        self.reply(raw, 200, "OK", &contacts);
    }

    fn on_message(&mut self, now: Instant, raw: &[u8]) {
        if let Some(f) = self.msg_faults.pop_front() {
            match f {
                MsgFault::Status(code) => return self.reply(raw, code, reason(code), &[]),
                MsgFault::Silence => return,
                MsgFault::Drop => {
                    self.drop_now = true;
                    return;
                }
                MsgFault::ChallengeAgain => return self.challenge(now, raw, false, true),
            }
        }
        if self.challenge_messages {
            let msg = Message::parse(raw).unwrap();
            let uri = msg.request_line().unwrap().uri;
            let Some(Ok(creds)) = msg.proxy_authorization().next() else {
                return self.challenge(now, raw, false, true);
            };
            let req = DigestRequest::new("MESSAGE", uri, msg.body());
            match self.proxy.verify(
                now,
                &creds,
                &req,
                USER,
                Secret::Password(PASSWORD.as_bytes()),
            ) {
                Ok(_) => {}
                Err(e) if e.is_stale() => return self.challenge(now, raw, true, true),
                Err(_) => return self.challenge(now, raw, false, true),
            }
        }
        self.reply(raw, 200, "OK", &[]);
    }

    fn challenge(&mut self, now: Instant, raw: &[u8], stale: bool, proxy: bool) {
        let (server, name, code, phrase) = if proxy {
            (
                &self.proxy,
                "Proxy-Authenticate",
                407,
                "Proxy Authentication Required",
            )
        } else {
            (&self.www, "WWW-Authenticate", 401, "Unauthorized")
        };
        let values = server.challenges(now, stale, &mut self.rng);
        let headers: Vec<(&str, String)> = values.into_iter().map(|v| (name, v)).collect();
        self.reply(raw, code, phrase, &headers);
    }

    /// Answer a request of the agent, adding `received`/`rport` to its top Via when NAT is on.
    fn reply(&mut self, raw: &[u8], code: u16, phrase: &str, headers: &[(&str, String)]) {
        let mut text = String::from_utf8_lossy(raw).into_owned();
        if let Some((ip, port)) = self.nat
            && let Some(at) = text.find(";rport\r\n")
        {
            text.replace_range(at..at + 8, &format!(";rport={port};received={ip}\r\n"));
        }
        let msg = Message::parse(text.as_bytes()).unwrap();
        if msg.method() == Some(Method::Register) {
            self.follow_up = code >= 300;
        }
        self.seq += 1;
        let tag = format!("peer{}", self.seq);
        let mut out = Vec::new();
        let mut w = MessageWriter::response_to(&mut out, &msg, code, phrase, Some(&tag)).unwrap();
        for (name, value) in headers {
            w.header(name, value).unwrap();
        }
        w.finish(None).unwrap();
        self.out.push_back(out);
    }

    /// Send bytes as they are (garbage, partial messages, pings).
    pub(in super::super) fn send_raw(&mut self, bytes: &[u8]) {
        self.out.push_back(bytes.to_vec());
    }

    /// An INVITE from `from_user` ringing the agent's `contact`; returns its Call-ID, branch.
    pub(in super::super) fn ring(
        &mut self,
        from_user: &str,
        contact: &str,
        call_id: &str,
    ) -> String {
        let branch = format!("z9hG4bK-{call_id}");
        let bytes = invite(from_user, contact, call_id, &branch, "ftag", 1);
        self.out.push_back(bytes);
        branch
    }

    /// Any request to the agent, built by the caller.
    pub(in super::super) fn send_request(&mut self, bytes: Vec<u8>) {
        self.out.push_back(bytes);
    }

    /// A CANCEL of the INVITE with `branch`.
    pub(in super::super) fn cancel(
        &mut self,
        from_user: &str,
        contact: &str,
        call_id: &str,
        branch: &str,
    ) {
        let mut out = Vec::new();
        let from = format!("sip:{from_user}@{DOMAIN}");
        let to = format!("sip:{USER}@{DOMAIN}");
        let head = RequestHead {
            method: Method::Cancel,
            uri: contact,
            via: ViaSpec::new(Transport::Tls, "proxy.gw.example", branch),
            from: Address::new(&from).with_tag("ftag"),
            to: Address::new(&to),
            call_id,
            cseq: 1,
            max_forwards: 70,
        };
        MessageWriter::request(&mut out, &head)
            .unwrap()
            .finish(None)
            .unwrap();
        self.out.push_back(out);
    }

    /// A request from the gateway in the dialog of an answered INVITE (ACK for a 2xx, BYE,
    /// re-INVITE).
    pub(in super::super) fn in_dialog(
        &mut self,
        method: Method<'static>,
        contact: &str,
        call_id: &str,
        to_tag: &str,
        cseq: u32,
        branch: &str,
    ) {
        let mut out = Vec::new();
        let from = format!("sip:{GATEWAY}@{DOMAIN}");
        let to = format!("sip:{USER}@{DOMAIN}");
        let head = RequestHead {
            method,
            uri: contact,
            via: ViaSpec::new(Transport::Tls, "proxy.gw.example", branch),
            from: Address::new(&from).with_tag("ftag"),
            to: Address::new(&to).with_tag(to_tag),
            call_id,
            cseq,
            max_forwards: 70,
        };
        let mut w = MessageWriter::request(&mut out, &head).unwrap();
        if method == Method::Invite {
            w.contact(
                &Address::new("sip:c100x@198.51.100.7:5061;transport=tls"),
                None,
            )
            .unwrap();
        }
        w.finish(None).unwrap();
        self.out.push_back(out);
    }

    /// An ACK for a non-2xx final to the INVITE with `branch` (same branch, §17.1.1.3).
    pub(in super::super) fn ack_failure(
        &mut self,
        contact: &str,
        call_id: &str,
        branch: &str,
        to_tag: &str,
    ) {
        self.in_dialog(Method::Ack, contact, call_id, to_tag, 1, branch);
    }

    /// A MESSAGE to the agent.
    pub(in super::super) fn message(&mut self, contact: &str, call_id: &str, body: &str) {
        let mut out = Vec::new();
        let branch = format!("z9hG4bK-m-{call_id}");
        let to = format!("sip:{USER}@{DOMAIN}");
        let head = RequestHead {
            method: Method::Message,
            uri: contact,
            via: ViaSpec::new(Transport::Tls, "proxy.gw.example", &branch),
            from: Address::new("sip:c100x@gw.example").with_tag("mtag"),
            to: Address::new(&to),
            call_id,
            cseq: 7,
            max_forwards: 70,
        };
        MessageWriter::request(&mut out, &head)
            .unwrap()
            .finish(Some(("text/plain", body.as_bytes())))
            .unwrap();
        self.out.push_back(out);
    }
}

/// An INVITE with an SDP offer (audio + video), through a record-routing proxy.
pub(in super::super) fn invite(
    from_user: &str,
    contact: &str,
    call_id: &str,
    branch: &str,
    from_tag: &str,
    cseq: u32,
) -> Vec<u8> {
    let mut out = Vec::new();
    let from = format!("sip:{from_user}@{DOMAIN}");
    let to = format!("sip:{USER}@{DOMAIN}");
    let head = RequestHead {
        method: Method::Invite,
        uri: contact,
        via: ViaSpec::new(Transport::Tls, "proxy.gw.example", branch),
        from: Address::new(&from)
            .with_tag(from_tag)
            .with_display_name("Door \"1\""),
        to: Address::new(&to),
        call_id,
        cseq,
        max_forwards: 70,
    };
    let sdp = "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n\
m=audio 4000 RTP/SAVP 0 8\r\nm=video 4002 RTP/SAVP 96\r\na=DEVADDR=20\r\n";
    let mut w = MessageWriter::request(&mut out, &head).unwrap();
    w.contact(
        &Address::new("sip:c100x@198.51.100.7:5061;transport=tls"),
        None,
    )
    .unwrap();
    w.header("Record-Route", "<sip:proxy.gw.example;transport=tls;lr>")
        .unwrap();
    w.finish(Some(("application/sdp", sdp.as_bytes()))).unwrap();
    out
}

fn reason(code: u16) -> &'static str {
    match code {
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        486 => "Busy Here",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        _ => "Failure",
    }
}
