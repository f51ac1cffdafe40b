//! The server side for requests that arrive: checks, dispatch, non-INVITE server
//! transactions (RFC 3261 §17.2.2; on a reliable transport Timer J is zero, but the response
//! is remembered for 64·T1 so a retransmission is answered identically and never reported
//! twice), MESSAGE/NOTIFY/OPTIONS and the error answers.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use bytes::Bytes;
use rand_core::CryptoRng;

use super::calls::InviteInfo;
use super::event::{Event, IncomingKind, IncomingMessage};
use super::{Agent, schedule};
use crate::sip::builder::{BuildError, MessageWriter};
use crate::sip::header::HeaderName;
use crate::sip::message::{Message, Method};
use crate::time::Instant;

/// Server transactions remembered for retransmissions.
const MAX_RECENT: usize = 32;

/// The methods the agent answers (RFC 3261 §20.5).
const ALLOW: [Method<'static>; 7] = [
    Method::Invite,
    Method::Ack,
    Method::Cancel,
    Method::Bye,
    Method::Options,
    Method::Message,
    Method::Notify,
];

/// Recently answered requests: (transaction key, method) → the response.
#[derive(Default)]
pub(super) struct Recent {
    list: VecDeque<Remembered>,
}

struct Remembered {
    key: String,
    method: String,
    response: Bytes,
    forget_at: Instant,
}

impl Recent {
    fn find(&self, key: &str, method: &str) -> Option<Bytes> {
        self.list
            .iter()
            .find(|r| r.key == key && r.method == method)
            .map(|r| r.response.clone())
    }

    /// The To tag of the answer remembered for the INVITE transaction `key`: `None` when
    /// there is none, `Some(None)` when that answer has no tag.
    pub(super) fn invite_to_tag(&self, key: &str) -> Option<Option<String>> {
        let answer = self.find(key, Method::Invite.as_str())?;
        let msg = Message::parse(&answer).ok();
        Some(msg.and_then(|m| m.to().ok().and_then(|t| t.tag().map(String::from))))
    }

    pub(super) fn expire(&mut self, now: Instant) {
        self.list.retain(|r| r.forget_at > now);
    }

    pub(super) fn deadline(&self) -> Option<Instant> {
        self.list.iter().map(|r| r.forget_at).min()
    }
}

/// The request an [`Agent::answer_remembered`] answer goes to: when, its server transaction,
/// its method and the dialog's local tag if it has one.
#[derive(Clone, Copy)]
struct Answer<'k> {
    now: Instant,
    key: &'k str,
    method: Method<'k>,
    local_tag: Option<&'k str>,
}

impl<R: CryptoRng> Agent<R> {
    /// A request from the peer.
    pub(super) fn on_request(&mut self, now: Instant, msg: &Message<'_>, raw: &Bytes) {
        let Some(method) = msg.method() else {
            return;
        };
        // What every transaction needs (a lenient check on purpose: the full strict check
        // would let a harmless deviation of a gateway silence the doorbell).
        let needed = (|| {
            let via = msg.top_via()?;
            let from = msg.from()?;
            let to = msg.to()?;
            let call_id = msg.call_id()?;
            let cseq = msg.cseq()?;
            Ok::<_, crate::sip::headers::HeaderError>((via, from, to, call_id, cseq))
        })();
        let (via, from, to, call_id, cseq) = match needed {
            Ok(v) => v,
            Err(e) => {
                if method != Method::Ack {
                    let reason = sanitize(&format!("Bad Request ({e})"));
                    self.reply_once(msg, 400, &reason);
                }
                return;
            }
        };
        if cseq.method != method {
            if method != Method::Ack {
                self.reply_once(
                    msg,
                    400,
                    "Bad Request (CSeq method differs from the request)",
                );
            }
            return;
        }
        let remote_tag = from.tag().unwrap_or("");
        let local_tag = to.tag();
        // The server transaction key (§17.2.3): the branch, or for RFC 2543 peers the
        // fields that identify the transaction.
        let key: String = match via.branch() {
            Some(b) if via.has_rfc3261_branch() => b.into(),
            _ => format!("{call_id}|{}|{remote_tag}|{}", cseq.seq, via.host),
        };
        if method == Method::Ack {
            self.on_ack(now, &key, call_id, remote_tag, local_tag);
            return;
        }
        if let Some(resp) = self.recent.find(&key, method.as_str()) {
            self.send_if_room(resp);
            return;
        }
        if method == Method::Cancel {
            self.on_cancel(now, msg, &key, call_id);
            return;
        }
        // What a remembered answer needs of this request (the INVITE path takes `key` instead).
        let answer = Answer {
            now,
            key: &key,
            method,
            local_tag,
        };
        let unsupported: Vec<&str> = msg.require().flatten().take(8).collect();
        if !unsupported.is_empty() {
            // §8.2.2.3: no extension is supported.
            let list = unsupported.join(", ");
            self.answer_remembered(msg, answer, 420, "Bad Extension", |w| {
                w.header("Unsupported", &list).map(|_| ())
            });
            return;
        }
        match method {
            Method::Invite => {
                let info = InviteInfo {
                    key,
                    call_id,
                    remote_tag,
                    local_tag,
                    cseq: cseq.seq,
                };
                self.on_invite(now, msg, raw, info);
            }
            Method::Bye => self.on_bye(now, msg, &key, call_id, remote_tag, local_tag),
            Method::Message | Method::Notify => {
                let kind = if method == Method::Message {
                    IncomingKind::Message
                } else {
                    IncomingKind::Notify
                };
                self.on_incoming_message(now, msg, raw, &key, kind);
            }
            Method::Options => {
                self.answer_remembered(msg, answer, 200, "OK", |w| w.allow(&ALLOW).map(|_| ()));
            }
            _ => {
                self.answer_remembered(msg, answer, 405, "Method Not Allowed", |w| {
                    w.allow(&ALLOW).map(|_| ())
                });
            }
        }
    }

    /// MESSAGE or NOTIFY: 200 OK and [`Event::Message`], or 503 while the application is not
    /// draining events (the peer may retry; nothing is accepted that cannot be reported).
    fn on_incoming_message(
        &mut self,
        now: Instant,
        msg: &Message<'_>,
        raw: &Bytes,
        key: &str,
        kind: IncomingKind,
    ) {
        let tag = msg
            .to()
            .ok()
            .and_then(|t| t.tag())
            .is_none()
            .then(|| schedule::tag(&mut self.rng));
        if !self.room_for_peer_event() {
            self.reply_once_tagged(msg, 503, "Service Unavailable", tag.as_deref(), |w| {
                w.header("Retry-After", "5").map(|_| ())
            });
            return;
        }
        let Some(resp) = self.respond(msg, 200, "OK", tag.as_deref(), |_| Ok(()), None) else {
            return;
        };
        self.send_bytes(resp.clone());
        self.recent_remember(now, key, msg.method().map_or("", |m| m.as_str()), resp);
        let body_at = msg.body_offset().min(raw.len());
        let body_end = body_at.saturating_add(msg.body().len()).min(raw.len());
        let event = IncomingMessage {
            kind,
            from: msg
                .from()
                .map(|f| f.uri.as_str().into())
                .unwrap_or_default(),
            to: msg.to().map(|t| t.uri.as_str().into()).unwrap_or_default(),
            content_type: msg.header(HeaderName::ContentType).map(|h| h.value.into()),
            event: msg.header(HeaderName::Event).map(|h| h.value.into()),
            body: raw.slice(body_at..body_end),
            at: now,
        };
        self.push_event(Event::Message(event));
    }

    /// Answer with a fresh To tag and remember the answer for retransmissions.
    pub(super) fn reply_remembered(
        &mut self,
        now: Instant,
        msg: &Message<'_>,
        key: &str,
        code: u16,
        reason: &str,
    ) {
        let has_tag = msg.to().ok().and_then(|t| t.tag()).is_some();
        let tag = (!has_tag).then(|| schedule::tag(&mut self.rng));
        if let Some(r) = self.respond(msg, code, reason, tag.as_deref(), |_| Ok(()), None) {
            self.send_bytes(r.clone());
            let method = msg.method().map_or("", |m| m.as_str());
            self.recent_remember(now, key, method, r);
        }
    }

    /// Answer without remembering (for faults: a corrected retransmission gets a fresh look).
    fn reply_once(&mut self, msg: &Message<'_>, code: u16, reason: &str) {
        let has_tag = msg.to().ok().and_then(|t| t.tag()).is_some();
        let tag = (!has_tag).then(|| schedule::tag(&mut self.rng));
        self.reply_once_tagged(msg, code, reason, tag.as_deref(), |_| Ok(()));
    }

    fn reply_once_tagged(
        &mut self,
        msg: &Message<'_>,
        code: u16,
        reason: &str,
        tag: Option<&str>,
        extra: impl FnOnce(&mut MessageWriter<'_, Vec<u8>>) -> Result<(), BuildError>,
    ) {
        if let Some(r) = self.respond(msg, code, reason, tag, extra, None) {
            self.send_bytes(r);
        }
    }

    /// Answers `msg` (with a new To-tag when its dialog has none) with `code` and the
    /// headers `extra` writes, sends the answer and remembers it for retransmissions.
    fn answer_remembered(
        &mut self,
        msg: &Message<'_>,
        answer: Answer<'_>,
        code: u16,
        reason: &str,
        extra: impl FnOnce(&mut MessageWriter<'_, Vec<u8>>) -> Result<(), BuildError>,
    ) {
        let tag = answer
            .local_tag
            .is_none()
            .then(|| schedule::tag(&mut self.rng));
        if let Some(r) = self.respond(msg, code, reason, tag.as_deref(), extra, None) {
            self.send_bytes(r.clone());
            self.recent_remember(answer.now, answer.key, answer.method.as_str(), r);
        }
    }

    pub(super) fn recent_remember(
        &mut self,
        now: Instant,
        key: &str,
        method: &str,
        response: Bytes,
    ) {
        let list = &mut self.recent.list;
        if list.len() >= MAX_RECENT {
            list.pop_front();
        }
        list.push_back(Remembered {
            key: key.into(),
            method: method.into(),
            response,
            forget_at: now + self.config.transaction_timeout(),
        });
    }

    /// Write a response to `msg` (mirroring Via, From, To, Call-ID, CSeq; `to_tag` added
    /// when its To has none); `None` when it cannot be written or the transmit queue is full
    /// (the driver is not draining; the peer's retransmission or timeout takes over).
    pub(super) fn respond(
        &mut self,
        msg: &Message<'_>,
        code: u16,
        reason: &str,
        to_tag: Option<&str>,
        extra: impl FnOnce(&mut MessageWriter<'_, Vec<u8>>) -> Result<(), BuildError>,
        body: Option<(&str, &[u8])>,
    ) -> Option<Bytes> {
        let mut out = Vec::with_capacity(512 + body.map_or(0, |b| b.1.len()));
        let written = (|| {
            let mut w = MessageWriter::response_to(&mut out, msg, code, reason, to_tag)?;
            extra(&mut w)?;
            w.finish(body)
        })();
        if written.is_err() || !self.room_for_response(out.len()) {
            return None;
        }
        Some(out.into())
    }
}

/// A reason phrase from arbitrary text: printable ASCII only, at most 120 characters.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(120)
        .collect()
}
