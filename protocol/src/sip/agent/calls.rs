//! Incoming calls: the INVITE server transaction on a reliable transport (RFC 3261 §17.2.1,
//! Timer G never runs; Timer H = 64·T1 waits for the ACK of a non-2xx final), the early and
//! confirmed dialog of an accepted call (§12–§15), CANCEL (§9.2), BYE both ways.

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use bytes::Bytes;
use rand_core::CryptoRng;

use super::config::Answer;
use super::event::{CallEnd, CallHandle, CommandError, Doorbell, Event};
use super::{Agent, Conn, schedule};
use crate::sip::builder::{Address, BuildError, MessageWriter, RequestHead, ViaSpec};
use crate::sip::header::HeaderName;
use crate::sip::message::{Message, Method};

/// RFC 3261 §17.1.2.2's T2: the longest interval between retransmissions of a 2xx.
const T2: Duration = Duration::from_secs(4);
use crate::time::Instant;

/// Calls that are ringing or in progress at once; more are answered 486 at once.
pub(super) const MAX_LIVE_CALLS: usize = 8;
/// Call records kept (live ones and ended ones still absorbing retransmissions).
const MAX_CALL_RECORDS: usize = 16;
/// At most this many m-lines are answered in an SDP answer.
const MAX_M_LINES: usize = 16;

#[derive(Default)]
pub(super) struct Calls {
    list: Vec<Call>,
    next: u64,
}

struct Call {
    handle: CallHandle,
    call_id: String,
    remote_tag: String,
    local_tag: String,
    /// The INVITE's top Via branch (or the fallback key, for RFC 2543 peers).
    key: String,
    cseq: u32,
    /// The INVITE, while a response or a BYE may still have to be built from it.
    invite: Option<Bytes>,
    /// The last response to the INVITE, sent again for a retransmission.
    last_response: Option<Bytes>,
    /// Our CSeq for requests in the dialog (BYE).
    local_cseq: u32,
    phase: Phase,
    /// [`Event::CallEnded`] was emitted.
    ended: bool,
}

enum Phase {
    /// 180 sent; the final answer is due at `answer_at`.
    Ringing { answer_at: Instant },
    /// A non-2xx final sent; the record absorbs the ACK and retransmissions until `until`
    /// (Timer H).
    Completed { until: Instant },
    /// 200 sent; the ACK is due by `ack_by`, the call is hung up at `end_at`. Until the ACK
    /// the 200 is sent again at `resend_at`, `interval` apart (doubling up to T2), as RFC
    /// 3261 §13.3.1.4 asks even on a reliable transport (a later hop may not be); a hang-up
    /// meanwhile waits in `pending_end` — no BYE before the ACK (§15).
    Accepted {
        ack_by: Instant,
        end_at: Instant,
        resend_at: Instant,
        interval: Duration,
        pending_end: Option<CallEnd>,
    },
    /// ACK received; hung up at `end_at`.
    Confirmed { end_at: Instant },
    /// Our BYE is in flight.
    Ending { branch: String, until: Instant },
    /// Over; kept until `forget_at` so late retransmissions are recognised.
    Terminated { forget_at: Instant },
}

impl Calls {
    fn live(&self) -> usize {
        self.list.iter().filter(|c| c.is_live()).count()
    }

    fn index(&self, handle: CallHandle) -> Option<usize> {
        self.list.iter().position(|c| c.handle == handle)
    }

    fn by_key(&self, key: &str, call_id: &str) -> Option<usize> {
        self.list
            .iter()
            .position(|c| c.key == key && c.call_id == call_id)
    }

    fn by_dialog(&self, call_id: &str, remote_tag: &str, local_tag: &str) -> Option<usize> {
        self.list.iter().position(|c| {
            c.call_id == call_id && c.remote_tag == remote_tag && c.local_tag == local_tag
        })
    }

    /// Whether one of our BYEs is in flight (a shutdown waits for it).
    /// Whether a call still has a BYE to send or to see answered: shutdown waits for these.
    pub(super) fn any_ending(&self) -> bool {
        self.list.iter().any(|c| {
            matches!(
                c.phase,
                Phase::Ending { .. }
                    | Phase::Accepted {
                        pending_end: Some(_),
                        ..
                    }
            )
        })
    }

    pub(super) fn deadline(&self) -> Option<Instant> {
        self.list.iter().map(Call::deadline).min()
    }

    /// Room for a new call: fewer than the live limit, evicting the oldest ended record.
    fn make_room(&mut self) -> bool {
        if self.live() >= MAX_LIVE_CALLS {
            return false;
        }
        if self.list.len() >= MAX_CALL_RECORDS
            && let Some(i) = self.list.iter().position(|c| !c.is_live())
        {
            self.list.remove(i);
        }
        true
    }
}

impl Call {
    fn is_live(&self) -> bool {
        !matches!(
            self.phase,
            Phase::Completed { .. } | Phase::Terminated { .. }
        )
    }

    fn deadline(&self) -> Instant {
        match &self.phase {
            Phase::Ringing { answer_at } => *answer_at,
            Phase::Completed { until } => *until,
            Phase::Accepted {
                ack_by,
                end_at,
                resend_at,
                pending_end,
                ..
            } => {
                // A hang-up already waits for the ACK: the call length no longer matters.
                let end = if pending_end.is_some() {
                    *ack_by
                } else {
                    *end_at
                };
                (*ack_by).min(end).min(*resend_at)
            }
            Phase::Confirmed { end_at } => *end_at,
            Phase::Ending { until, .. } => *until,
            Phase::Terminated { forget_at } => *forget_at,
        }
    }
}

/// What an INVITE said, read before the call table is touched.
pub(super) struct InviteInfo<'m> {
    pub(super) key: String,
    pub(super) call_id: &'m str,
    pub(super) remote_tag: &'m str,
    pub(super) local_tag: Option<&'m str>,
    pub(super) cseq: u32,
}

impl<R: CryptoRng> Agent<R> {
    /// Give a ringing call its final answer now (instead of the default after the ring time).
    ///
    /// # Errors
    /// [`CommandError::UnknownCall`] when no call has this handle (or it ended),
    /// [`CommandError::AlreadyAnswered`] when it was answered.
    pub fn answer(
        &mut self,
        now: Instant,
        call: CallHandle,
        answer: Answer,
    ) -> Result<(), CommandError> {
        let i = self.calls.index(call).ok_or(CommandError::UnknownCall)?;
        match self.calls.list[i].phase {
            Phase::Ringing { .. } => {
                self.final_answer(now, i, answer);
                Ok(())
            }
            Phase::Terminated { .. } => Err(CommandError::UnknownCall),
            _ if self.calls.list[i].ended => Err(CommandError::UnknownCall),
            _ => Err(CommandError::AlreadyAnswered),
        }
    }

    /// End a call: an accepted one with BYE (once its ACK has come, or the wait for it has
    /// ended: RFC 3261 §15), a ringing one with 603 Decline.
    ///
    /// # Errors
    /// [`CommandError::UnknownCall`] when the call is not ringing or accepted.
    pub fn hang_up(&mut self, now: Instant, call: CallHandle) -> Result<(), CommandError> {
        let i = self.calls.index(call).ok_or(CommandError::UnknownCall)?;
        match self.calls.list[i].phase {
            Phase::Ringing { .. } => self.final_answer(now, i, Answer::Decline),
            Phase::Accepted {
                ref mut pending_end,
                ..
            } => {
                pending_end.get_or_insert(CallEnd::LocalHangUp);
            }
            Phase::Confirmed { .. } => self.send_bye(now, i, CallEnd::LocalHangUp),
            _ => return Err(CommandError::UnknownCall),
        }
        Ok(())
    }

    /// An INVITE (out of dialog when `info.local_tag` is `None`).
    pub(super) fn on_invite(
        &mut self,
        now: Instant,
        msg: &Message<'_>,
        raw: &Bytes,
        info: InviteInfo<'_>,
    ) {
        if let Some(local_tag) = info.local_tag {
            // A re-INVITE: no media is ever negotiated.
            let (code, reason) =
                match self
                    .calls
                    .by_dialog(info.call_id, info.remote_tag, local_tag)
                {
                    Some(_) => (488, "Not Acceptable Here"),
                    None => (481, "Call/Transaction Does Not Exist"),
                };
            self.reply_remembered(now, msg, &info.key, code, reason);
            return;
        }
        if let Some(i) = self.calls.by_key(&info.key, info.call_id) {
            // A retransmission (§17.2.1): the last response again, no new event.
            if let Some(r) = self.calls.list[i].last_response.clone() {
                self.send_if_room(r);
            }
            return;
        }
        if self.calls.list.iter().any(|c| {
            c.call_id == info.call_id && c.remote_tag == info.remote_tag && c.cseq == info.cseq
        }) {
            // A merged request (§8.2.2.2): the same INVITE by another path.
            self.reply_remembered(now, msg, &info.key, 482, "Loop Detected");
            return;
        }
        if matches!(&self.conn, Conn::Up(l) if l.shutdown_by.is_some()) {
            self.reply_remembered(now, msg, &info.key, 480, "Temporarily Unavailable");
            return;
        }
        let from = msg.from().ok();
        let from_uri = from.as_ref().map(|f| f.uri);
        let callers = &self.config.allowed_callers;
        let allowed = callers.is_empty()
            || from_uri
                .as_ref()
                .and_then(|u| u.as_sip())
                .is_some_and(|u| callers.iter().any(|p| p.matches(u)));
        if !allowed {
            self.reply_remembered(now, msg, &info.key, 486, "Busy Here");
            if self.room_for_peer_event() {
                let from = from_uri.map(|u| u.as_str().into()).unwrap_or_default();
                self.push_event(Event::CallFiltered { from });
            }
            return;
        }
        if !self.room_for_peer_event() || !self.calls.make_room() {
            self.reply_remembered(now, msg, &info.key, 486, "Busy Here");
            return;
        }
        let local_tag = schedule::tag(&mut self.rng);
        let handle = CallHandle(self.calls.next);
        self.calls.next += 1;
        let local_cseq = schedule::first_cseq(&mut self.rng);
        self.calls.list.push(Call {
            handle,
            call_id: info.call_id.into(),
            remote_tag: info.remote_tag.into(),
            local_tag,
            key: info.key,
            cseq: info.cseq,
            invite: Some(raw.clone()),
            last_response: None,
            local_cseq,
            phase: Phase::Ringing {
                answer_at: now + self.config.answer.ring_time,
            },
            ended: false,
        });
        let i = self.calls.list.len() - 1;
        if let Some(trying) = self.respond(msg, 100, "Trying", None, |_| Ok(()), None) {
            self.send_bytes(trying);
        }
        let ringing = self.invite_response(i, 180, "Ringing", true, None);
        self.calls.list[i].last_response = ringing;
        let body_at = msg.body_offset().min(raw.len());
        let body_end = body_at.saturating_add(msg.body().len()).min(raw.len());
        let doorbell = Doorbell {
            call: handle,
            from: from_uri.map(|u| u.as_str().into()).unwrap_or_default(),
            from_display: from.and_then(|f| f.display_name).map(|d| {
                let mut s = String::new();
                d.write_unescaped(&mut s);
                s
            }),
            to: msg.to().map(|t| t.uri.as_str().into()).unwrap_or_default(),
            call_id: info.call_id.into(),
            at: now,
            content_type: msg.header(HeaderName::ContentType).map(|h| h.value.into()),
            body: raw.slice(body_at..body_end),
        };
        self.push_event(Event::Doorbell(doorbell));
    }

    /// An ACK: ends a non-2xx INVITE transaction (same branch, §17.2.1) or confirms an
    /// accepted call (in the dialog, §13.3.1.4).
    pub(super) fn on_ack(
        &mut self,
        now: Instant,
        key: &str,
        call_id: &str,
        remote_tag: &str,
        local_tag: Option<&str>,
    ) {
        let forget_at = now + self.config.transaction_timeout();
        if let Some(i) = self.calls.by_key(key, call_id)
            && let Phase::Completed { .. } = self.calls.list[i].phase
        {
            // Timer I is zero on a reliable transport; the record stays to recognise
            // retransmissions.
            self.calls.list[i].phase = Phase::Terminated { forget_at };
            return;
        }
        if let Some(tag) = local_tag
            && let Some(i) = self.calls.by_dialog(call_id, remote_tag, tag)
            && let Phase::Accepted {
                end_at,
                pending_end,
                ..
            } = self.calls.list[i].phase
        {
            self.calls.list[i].phase = Phase::Confirmed { end_at };
            // A hang-up (or the call's length limit) waited for this ACK.
            if let Some(reason) = pending_end {
                self.send_bye(now, i, reason);
            } else if end_at <= now {
                self.send_bye(now, i, CallEnd::LocalHangUp);
            }
        }
    }

    /// A CANCEL (§9.2): 200 to it and, while ringing, 487 to the INVITE; 481 when it
    /// matches no INVITE transaction.
    pub(super) fn on_cancel(&mut self, now: Instant, msg: &Message<'_>, key: &str, call_id: &str) {
        let Some(i) = self.calls.by_key(key, call_id) else {
            match self.recent.invite_to_tag(key) {
                // An INVITE refused without a call (filtered, busy, merged): the CANCEL
                // matched its transaction, so 200 with the refusal's To tag, and no effect.
                Some(tag) => {
                    if let Some(ok) = self.respond(msg, 200, "OK", tag.as_deref(), |_| Ok(()), None)
                    {
                        self.send_bytes(ok.clone());
                        self.recent_remember(now, key, Method::Cancel.as_str(), ok);
                    }
                }
                None => {
                    self.reply_remembered(now, msg, key, 481, "Call/Transaction Does Not Exist");
                }
            }
            return;
        };
        let tag = self.calls.list[i].local_tag.clone();
        if let Some(ok) = self.respond(msg, 200, "OK", Some(&tag), |_| Ok(()), None) {
            self.send_bytes(ok.clone());
            self.recent_remember(now, key, Method::Cancel.as_str(), ok);
        }
        if let Phase::Ringing { .. } = self.calls.list[i].phase {
            self.end_call(i, CallEnd::Cancelled);
            self.reject(now, i, 487, "Request Terminated");
        }
    }

    /// A BYE in one of our dialogs → 200 and the call is over; elsewhere 481.
    pub(super) fn on_bye(
        &mut self,
        now: Instant,
        msg: &Message<'_>,
        key: &str,
        call_id: &str,
        remote_tag: &str,
        local_tag: Option<&str>,
    ) {
        let found = local_tag.and_then(|t| self.calls.by_dialog(call_id, remote_tag, t));
        let Some(i) = found else {
            self.reply_remembered(now, msg, key, 481, "Call/Transaction Does Not Exist");
            return;
        };
        self.reply_remembered(now, msg, key, 200, "OK");
        self.end_call(i, CallEnd::RemoteHangUp);
        match self.calls.list[i].phase {
            Phase::Ringing { .. } => self.reject(now, i, 487, "Request Terminated"),
            Phase::Accepted { .. } | Phase::Confirmed { .. } | Phase::Ending { .. } => {
                self.terminate(now, i);
            }
            Phase::Completed { .. } | Phase::Terminated { .. } => {}
        }
    }

    /// A final response to one of our BYEs.
    pub(super) fn on_bye_response(&mut self, now: Instant, branch: &str, code: u16) {
        if code < 200 {
            return;
        }
        if let Some(i) = self
            .calls
            .list
            .iter()
            .position(|c| matches!(&c.phase, Phase::Ending { branch: b, .. } if b == branch))
        {
            self.terminate(now, i);
        }
    }

    /// Ring timers, Timer H, ACK waits, call length limits, BYE timeouts, record expiry.
    pub(super) fn call_timeouts(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.calls.list.len() {
            let c = &self.calls.list[i];
            if c.deadline() > now {
                i += 1;
                continue;
            }
            match c.phase {
                Phase::Ringing { .. } => {
                    let answer = self.config.answer.default;
                    self.final_answer(now, i, answer);
                }
                Phase::Accepted {
                    ack_by,
                    pending_end,
                    ..
                } if ack_by <= now => {
                    self.send_bye(now, i, pending_end.unwrap_or(CallEnd::NoAck));
                }
                Phase::Accepted {
                    resend_at,
                    interval,
                    ..
                } if resend_at <= now => {
                    if let Some(ok) = self.calls.list[i].last_response.clone() {
                        self.send_if_room(ok);
                    }
                    if let Phase::Accepted {
                        resend_at,
                        interval: step,
                        ..
                    } = &mut self.calls.list[i].phase
                    {
                        *resend_at = now + interval;
                        *step = interval.saturating_mul(2).min(T2);
                    }
                    // The call's length limit may be due as well: look at this call again.
                    continue;
                }
                Phase::Accepted { .. } => {
                    // The call's length limit before the ACK: the BYE waits for it.
                    if let Phase::Accepted { pending_end, .. } = &mut self.calls.list[i].phase {
                        pending_end.get_or_insert(CallEnd::LocalHangUp);
                    }
                }
                Phase::Confirmed { .. } => {
                    self.send_bye(now, i, CallEnd::LocalHangUp);
                }
                Phase::Ending { .. } => self.terminate(now, i),
                Phase::Completed { .. } | Phase::Terminated { .. } => {
                    self.calls.list.remove(i);
                    continue;
                }
            }
            i += 1;
        }
    }

    /// The connection is gone: live calls end with `reason` (their transactions died with
    /// it); records stay to absorb retransmissions on the next connection.
    pub(super) fn calls_link_down(&mut self, now: Instant, reason: CallEnd) {
        for i in 0..self.calls.list.len() {
            if self.calls.list[i].is_live() {
                self.end_call(i, reason);
                self.terminate(now, i);
            }
        }
    }

    /// Shutdown: ringing calls get the default non-2xx answer, accepted ones a BYE.
    pub(super) fn calls_shutdown(&mut self, now: Instant) {
        for i in 0..self.calls.list.len() {
            self.end_call(i, CallEnd::Shutdown);
            match self.calls.list[i].phase {
                Phase::Ringing { .. } => {
                    let answer = match self.config.answer.default {
                        Answer::Accept => Answer::Busy,
                        a => a,
                    };
                    self.final_answer(now, i, answer);
                }
                // No BYE before the ACK (§15): it goes when the ACK comes or the wait ends.
                Phase::Accepted {
                    ref mut pending_end,
                    ..
                } => {
                    pending_end.get_or_insert(CallEnd::Shutdown);
                }
                Phase::Confirmed { .. } => self.send_bye(now, i, CallEnd::Shutdown),
                _ => {}
            }
        }
    }

    /// Send the final answer to ringing call `i`.
    fn final_answer(&mut self, now: Instant, i: usize, answer: Answer) {
        let (code, reason) = answer.status();
        if answer != Answer::Accept {
            self.end_call(i, CallEnd::Declined { status: code });
            self.reject(now, i, code, reason);
            return;
        }
        let offer = self.calls.list[i]
            .invite
            .as_ref()
            .and_then(|raw| Message::parse(raw).ok().map(|m| m.body().to_vec()))
            .unwrap_or_default();
        let sdp = reject_all_streams(&offer);
        let ok = self.invite_response(i, 200, "OK", true, Some(("application/sdp", &sdp)));
        let c = &mut self.calls.list[i];
        c.last_response = ok;
        c.phase = Phase::Accepted {
            ack_by: now + self.config.transaction_timeout(),
            end_at: now + self.config.answer.max_call,
            resend_at: now + self.config.t1,
            interval: self.config.t1.saturating_mul(2).min(T2),
            pending_end: None,
        };
    }

    /// Send a non-2xx final to call `i`'s INVITE; the transaction waits for the ACK.
    fn reject(&mut self, now: Instant, i: usize, code: u16, reason: &str) {
        let resp = self.invite_response(i, code, reason, false, None);
        let c = &mut self.calls.list[i];
        c.last_response = resp;
        c.invite = None;
        c.phase = Phase::Completed {
            until: now + self.config.transaction_timeout(),
        };
    }

    fn terminate(&mut self, now: Instant, i: usize) {
        let c = &mut self.calls.list[i];
        c.invite = None;
        c.phase = Phase::Terminated {
            forget_at: now + self.config.transaction_timeout(),
        };
    }

    /// Emit call `i`'s one [`Event::CallEnded`].
    fn end_call(&mut self, i: usize, reason: CallEnd) {
        let c = &mut self.calls.list[i];
        if !c.ended {
            c.ended = true;
            let call = c.handle;
            self.push_event(Event::CallEnded { call, reason });
        }
    }

    /// Write (and send) a response to call `i`'s INVITE with its To tag.
    fn invite_response(
        &mut self,
        i: usize,
        code: u16,
        reason: &str,
        contact: bool,
        body: Option<(&str, &[u8])>,
    ) -> Option<Bytes> {
        let c = &self.calls.list[i];
        let raw = c.invite.clone()?;
        let tag = c.local_tag.clone();
        let invite = Message::parse(&raw).ok()?;
        let our_contact = match &self.conn {
            Conn::Up(l) if contact => Some(l.contact.clone()),
            _ => None,
        };
        let resp = self.respond(
            &invite,
            code,
            reason,
            Some(&tag),
            |w| {
                if let Some(c) = &our_contact {
                    w.contact(&Address::new(c), None)?;
                }
                Ok(())
            },
            body,
        )?;
        self.send_bytes(resp.clone());
        Some(resp)
    }

    /// Hang up call `i` with a BYE in its dialog (§15.1.1): Request-URI the caller's Contact,
    /// Route the Record-Route set in order, From/To swapped, our own CSeq.
    fn send_bye(&mut self, now: Instant, i: usize, reason: CallEnd) {
        self.end_call(i, reason);
        let branch = schedule::branch(&mut self.rng);
        let bye = self.write_bye(i, &branch);
        match bye {
            Some(bytes) if matches!(self.conn, Conn::Up(_)) => {
                self.send_bytes(bytes);
                let c = &mut self.calls.list[i];
                c.phase = Phase::Ending {
                    branch,
                    until: now + self.config.transaction_timeout(),
                };
            }
            // No Contact to send it to, or no connection: the call is over locally.
            _ => self.terminate(now, i),
        }
    }

    fn write_bye(&mut self, i: usize, branch: &str) -> Option<Bytes> {
        let Conn::Up(link) = &self.conn else {
            return None;
        };
        let c = &mut self.calls.list[i];
        c.local_cseq = c.local_cseq.saturating_add(1).min((1 << 31) - 1);
        let raw = c.invite.clone()?;
        let invite = Message::parse(&raw).ok()?;
        let target = invite
            .contacts()
            .flatten()
            .find_map(|ct| ct.addr().map(|a| a.uri))?;
        let from = invite.to().ok()?;
        let to = invite.from().ok()?;
        let routes: Vec<&str> = invite
            .values(HeaderName::RecordRoute)
            .map(|(_, v)| v)
            .take(16)
            .collect();
        let head = RequestHead {
            method: Method::Bye,
            uri: target.as_str(),
            via: ViaSpec::new(
                self.config.server.transport.header_transport(),
                &link.sent_by,
                branch,
            ),
            from: Address::new(from.uri.as_str()).with_tag(&c.local_tag),
            to: Address::new(to.uri.as_str()).with_tag(&c.remote_tag),
            call_id: &c.call_id,
            cseq: c.local_cseq,
            max_forwards: 70,
        };
        let mut out = Vec::with_capacity(512);
        let written = (|| -> Result<(), BuildError> {
            let mut w = MessageWriter::request(&mut out, &head)?;
            for r in &routes {
                w.header("Route", r)?;
            }
            w.header("User-Agent", &self.config.user_agent)?;
            w.finish(None)
        })();
        written.ok().map(|()| out.into())
    }
}

/// An SDP answer that rejects every offered stream (RFC 3264 §6: same m-lines, port 0, one
/// of the offered formats), so accepting a call never starts media.
fn reject_all_streams(offer: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    out.extend_from_slice(b"v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n");
    let mut m_lines = 0;
    for line in offer.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(rest) = line.strip_prefix(b"m=") else {
            continue;
        };
        let mut parts = rest.split(|&b| b == b' ').filter(|p| !p.is_empty());
        let (Some(media), Some(_port), Some(proto), Some(fmt)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let token = |p: &[u8]| p.iter().all(|b| b.is_ascii_graphic());
        if !(token(media) && token(proto) && token(fmt)) || m_lines >= MAX_M_LINES {
            continue;
        }
        m_lines += 1;
        out.extend_from_slice(b"m=");
        out.extend_from_slice(media);
        out.extend_from_slice(b" 0 ");
        out.extend_from_slice(proto);
        out.push(b' ');
        out.extend_from_slice(fmt);
        out.extend_from_slice(b"\r\n");
    }
    out
}
