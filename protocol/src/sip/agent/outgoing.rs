//! Outgoing MESSAGE commands (RFC 3428): a bounded FIFO queue, one non-INVITE client
//! transaction at a time (RFC 3261 §17.1.2; on a reliable transport only Timer F), one
//! digest challenge answered.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::time::Duration;

use bytes::Bytes;
use rand_core::CryptoRng;

use super::config::AgentConfig;
use super::event::{CommandError, Event, FailReason, MessageId};
use super::{Agent, Conn, schedule};
use crate::sip::builder::{Address, BuildError, MessageWriter, RequestHead, ViaSpec};
use crate::sip::digest::{ChallengeKind, DigestClient, DigestRequest};
use crate::sip::header::HeaderName;
use crate::sip::message::{Message, Method};
use crate::sip::uri::Uri;
use crate::time::Instant;

/// Challenges answered for one command: one, plus one stale-nonce renewal.
const MAX_CHALLENGES: u8 = 2;

/// The command queue and the transaction in flight. The digest client is separate from the
/// registration's, so two challenges can never be mistaken for a rejection of one.
pub(super) struct Outbox {
    queue: VecDeque<Command>,
    in_flight: Option<InFlight>,
    auth: DigestClient,
    next_id: u64,
}

struct Command {
    id: MessageId,
    target: String,
    content_type: String,
    body: Bytes,
    issued: Instant,
}

struct InFlight {
    cmd: Command,
    call_id: String,
    from_tag: String,
    cseq: u32,
    branch: String,
    deadline: Instant,
    challenges: u8,
}

impl Outbox {
    pub(super) fn new(config: &AgentConfig) -> Self {
        Outbox {
            queue: VecDeque::new(),
            in_flight: None,
            auth: config.digest_client(),
            next_id: 1,
        }
    }

    pub(super) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The branch of the MESSAGE in flight.
    pub(super) fn in_flight(&self) -> Option<&str> {
        self.in_flight.as_ref().map(|f| f.branch.as_str())
    }

    /// Timer F of the transaction in flight, or the wait limit of the oldest queued command.
    pub(super) fn deadline(&self, max_wait: Duration) -> Option<Instant> {
        let f = self.in_flight.as_ref().map(|f| f.deadline);
        let q = self.queue.front().map(|c| c.issued + max_wait);
        match (f, q) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl<R: CryptoRng> Agent<R> {
    /// Send a MESSAGE to `target` (a `sip:`/`sips:` URI) with a body of `content_type`.
    ///
    /// Returns its id at once; the outcome comes later as exactly one
    /// [`Event::MessageDelivered`] or [`Event::MessageFailed`]. Commands go out one at a time
    /// in the order issued, once the agent is registered (or connected, with registration
    /// off); they wait across reconnects for at most
    /// [`QueuePolicy::max_wait`](super::QueuePolicy).
    ///
    /// # Errors
    /// A refused command has no id and no event: [`CommandError::QueueFull`] when
    /// [`QueuePolicy::capacity`](super::QueuePolicy) commands wait already (the newest is
    /// refused, nothing queued is dropped), an invalid target, content type or body size,
    /// [`CommandError::Failed`] while the registration has failed permanently ([`State::Failed`](super::State),
    /// until the retry or [`Agent::start`]), [`CommandError::ShutDown`] once shutting down.
    pub fn send_message(
        &mut self,
        now: Instant,
        target: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<MessageId, CommandError> {
        match &self.conn {
            Conn::Closed => return Err(CommandError::ShutDown),
            Conn::Up(l) if l.shutdown_by.is_some() => return Err(CommandError::ShutDown),
            Conn::Failed { reason, .. } => {
                return Err(CommandError::Failed {
                    reason: reason.clone(),
                });
            }
            _ => {}
        }
        check_target(target)?;
        if super::config::content_type(content_type, "content_type").is_err() {
            return Err(CommandError::InvalidContentType);
        }
        if body.len() > self.config.max_body {
            return Err(CommandError::BodyTooLarge {
                len: body.len(),
                max: self.config.max_body,
            });
        }
        if self.outbox.queue.len() >= self.config.queue.capacity {
            return Err(CommandError::QueueFull {
                capacity: self.config.queue.capacity,
            });
        }
        let id = MessageId(self.outbox.next_id);
        self.outbox.next_id += 1;
        self.outbox.queue.push_back(Command {
            id,
            target: target.into(),
            content_type: content_type.into(),
            body: Bytes::copy_from_slice(body),
            issued: now,
        });
        self.pump(now);
        Ok(id)
    }

    /// Send the profile's gate command ([`AgentConfig::gate`]) with a fresh id in the body.
    ///
    /// # Errors
    /// [`CommandError::NoGate`] without a gate in the profile; otherwise as
    /// [`Agent::send_message`].
    pub fn open_gate(&mut self, now: Instant) -> Result<MessageId, CommandError> {
        let Some(gate) = &self.config.gate else {
            return Err(CommandError::NoGate);
        };
        let id = schedule::below(&mut self.rng, 1_000_000_000).to_string();
        let body = gate.body_template.replace("{id}", &id);
        let (target, content_type) = (gate.target.clone(), gate.content_type.clone());
        self.send_message(now, &target, &content_type, body.as_bytes())
    }

    /// Send the next queued command when nothing is in flight and the agent is ready; fail
    /// the ones that waited too long.
    pub(super) fn pump_outbox(&mut self, now: Instant) {
        if self.outbox.in_flight.is_some() || !self.ready() {
            return;
        }
        while let Some(cmd) = self.outbox.queue.pop_front() {
            if cmd.issued + self.config.queue.max_wait <= now {
                self.fail_not_sent(now, cmd);
                continue;
            }
            let call_id = schedule::call_id(&mut self.rng);
            let from_tag = schedule::tag(&mut self.rng);
            let cseq = schedule::first_cseq(&mut self.rng);
            self.send_command(now, cmd, call_id, from_tag, cseq, 0);
            break;
        }
    }

    /// Write and queue the MESSAGE for `cmd` (a first attempt, or the retry after a
    /// challenge with the same Call-ID and From tag and the next CSeq).
    fn send_command(
        &mut self,
        now: Instant,
        cmd: Command,
        call_id: String,
        from_tag: String,
        cseq: u32,
        challenges: u8,
    ) {
        let Conn::Up(link) = &self.conn else {
            self.outbox.queue.push_front(cmd);
            return;
        };
        let sent_by = link.sent_by.clone();
        let branch = schedule::branch(&mut self.rng);
        let request = DigestRequest::new("MESSAGE", &cmd.target, &cmd.body);
        let auths = self
            .outbox
            .auth
            .authorize(&request, &mut self.rng)
            .unwrap_or_else(|_| {
                self.outbox.auth.clear();
                Vec::new()
            });
        let cfg = &self.config;
        let aor = cfg.account.aor();
        let mut from = Address::new(&aor).with_tag(&from_tag);
        if let Some(d) = &cfg.account.display_name {
            from = from.with_display_name(d);
        }
        let head = RequestHead {
            method: Method::Message,
            uri: &cmd.target,
            via: ViaSpec::new(cfg.server.transport.header_transport(), &sent_by, &branch),
            from,
            to: Address::new(&cmd.target),
            call_id: &call_id,
            cseq,
            max_forwards: 70,
        };
        let mut out = Vec::with_capacity(768 + cmd.body.len());
        let written = (|| -> Result<(), BuildError> {
            let mut w = MessageWriter::request(&mut out, &head)?;
            if let Some(p) = &cfg.outbound_proxy {
                w.header("Route", &format!("<{p}>"))?;
            }
            for a in &auths {
                w.header(a.kind.credentials_header(), &a.value)?;
            }
            w.header("User-Agent", &cfg.user_agent)?;
            w.finish(Some((&cmd.content_type, &cmd.body)))
        })();
        if let Err(e) = written {
            self.finish_command(cmd.id, None, Err(FailReason::Build(e)));
            return;
        }
        self.send_bytes(out.into());
        self.outbox.in_flight = Some(InFlight {
            cmd,
            call_id,
            from_tag,
            cseq,
            branch,
            deadline: now + self.config.transaction_timeout(),
            challenges,
        });
    }

    /// A response to the MESSAGE in flight.
    pub(super) fn on_message_response(&mut self, now: Instant, msg: &Message<'_>, code: u16) {
        if code < 200 {
            return;
        }
        let Some(f) = self.outbox.in_flight.take() else {
            return;
        };
        let phrase = msg.status_line().map_or("", |s| s.reason);
        match code {
            200..=299 => self.finish_command(f.cmd.id, Some(code), Ok(())),
            401 | 407 => {
                let (kind, name) = if code == 401 {
                    (ChallengeKind::Www, HeaderName::WwwAuthenticate)
                } else {
                    (ChallengeKind::Proxy, HeaderName::ProxyAuthenticate)
                };
                if f.challenges >= MAX_CHALLENGES {
                    let detail = format!("{code} {phrase} again after answering a challenge");
                    let reason = FailReason::AuthenticationFailed {
                        status: code,
                        detail,
                    };
                    self.finish_command(f.cmd.id, Some(code), Err(reason));
                    return;
                }
                let values = msg.headers_named(name).map(|h| h.value);
                match self.outbox.auth.handle_challenges(kind, values) {
                    Ok(_) => {
                        let next = f.cseq.saturating_add(1);
                        self.send_command(
                            now,
                            f.cmd,
                            f.call_id,
                            f.from_tag,
                            next,
                            f.challenges + 1,
                        );
                    }
                    Err(e) => {
                        let reason = FailReason::AuthenticationFailed {
                            status: code,
                            detail: e.to_string(),
                        };
                        self.finish_command(f.cmd.id, Some(code), Err(reason));
                    }
                }
            }
            _ => {
                let reason = FailReason::Rejected {
                    status: code,
                    phrase: phrase.into(),
                };
                self.finish_command(f.cmd.id, Some(code), Err(reason));
            }
        }
    }

    /// Timer F of the transaction in flight and the wait limit of queued commands.
    pub(super) fn outbox_timeouts(&mut self, now: Instant) {
        if self
            .outbox
            .in_flight
            .as_ref()
            .is_some_and(|f| f.deadline <= now)
            && let Some(f) = self.outbox.in_flight.take()
        {
            self.finish_command(f.cmd.id, None, Err(FailReason::Timeout));
        }
        while self
            .outbox
            .queue
            .front()
            .is_some_and(|c| c.issued + self.config.queue.max_wait <= now)
        {
            if let Some(cmd) = self.outbox.queue.pop_front() {
                self.fail_not_sent(now, cmd);
            }
        }
    }

    /// The connection is gone: the command in flight fails with `reason` (it may have been
    /// delivered, so it is not resent); queued ones wait for the next connection.
    pub(super) fn outbox_link_down(&mut self, reason: FailReason) {
        if let Some(f) = self.outbox.in_flight.take() {
            self.finish_command(f.cmd.id, None, Err(reason));
        }
    }

    /// Fail every queued command (shutdown, permanent registration failure).
    pub(super) fn fail_queue(&mut self, reason: impl Fn() -> FailReason) {
        while let Some(cmd) = self.outbox.queue.pop_front() {
            self.finish_command(cmd.id, None, Err(reason()));
        }
    }

    fn fail_not_sent(&mut self, now: Instant, cmd: Command) {
        let reason = FailReason::NotSent {
            waited: now - cmd.issued,
            state: self.state(),
            last_error: self.last_error.clone(),
        };
        self.finish_command(cmd.id, None, Err(reason));
    }

    /// The one outcome event of a command.
    fn finish_command(
        &mut self,
        id: MessageId,
        status: Option<u16>,
        outcome: Result<(), FailReason>,
    ) {
        let event = match outcome {
            Ok(()) => Event::MessageDelivered {
                id,
                status: status.unwrap_or(200),
            },
            Err(reason) => Event::MessageFailed {
                id,
                status: status.or_else(|| reason.status()),
                reason,
            },
        };
        self.push_event(event);
    }
}

/// A target the builder will accept: a `sip:`/`sips:` URI without brackets or spaces.
fn check_target(target: &str) -> Result<(), CommandError> {
    if target.contains(['<', '>', ' ', '\r', '\n', '\0']) {
        return Err(CommandError::InvalidTarget {
            reason: "contains <, >, white space or a control character",
        });
    }
    match Uri::parse(target) {
        Ok(Uri::Sip(u)) if !u.has_headers() => Ok(()),
        Ok(Uri::Sip(_)) => Err(CommandError::InvalidTarget {
            reason: "URI headers (?…) are not allowed",
        }),
        Ok(_) => Err(CommandError::InvalidTarget {
            reason: "not a sip: or sips: URI",
        }),
        Err(e) => Err(CommandError::InvalidTarget { reason: e.reason() }),
    }
}
