//! Registration (RFC 3261 §10.2): REGISTER, digest, granted expiry, refresh, 423, failures,
//! Contact correction from `received`/`rport` (RFC 3581), un-REGISTER.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::time::Duration;

use rand_core::CryptoRng;

use super::config::{AgentConfig, MAX_EXPIRES};
use super::event::Event;
use super::{Agent, Conn, DisconnectReason, schedule};
use crate::sip::builder::{Address, BuildError, MessageWriter, RequestHead, ViaSpec};
use crate::sip::digest::{ChallengeKind, DigestClient, DigestRequest};
use crate::sip::header::HeaderName;
use crate::sip::message::{Message, Method};
use crate::sip::uri::SipUri;
use crate::time::Instant;

/// At most this many challenges are answered in a row for one REGISTER (a fresh one, a
/// stale-nonce renewal, and one spare for a realm change).
const MAX_CHALLENGES: u8 = 3;
/// At most this many 423 answers are followed in a row.
const MAX_TOO_BRIEF: u8 = 2;
/// Bindings of earlier contacts remembered for removal.
const MAX_STALE_CONTACTS: usize = 4;
/// The longest Retry-After followed.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// What the REGISTER in flight is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RegKind {
    /// No binding on this connection yet (first, after a Contact correction, after a lapse).
    Initial,
    /// Refreshing the binding in place.
    Refresh,
    /// Removing the binding (shutdown).
    Unregister,
}

/// Registration state that outlives connections: Call-ID, From tag and CSeq stay for the
/// agent's lifetime (§10.2.4), the digest client keeps its nonce.
pub(super) struct Registration {
    call_id: String,
    from_tag: String,
    cseq: u32,
    auth: DigestClient,
    /// The expiry asked for (raised by 423).
    requested: u32,
    /// The binding in place on the current connection.
    active: Option<Active>,
    /// The REGISTER in flight.
    tx: Option<RegTx>,
    /// A transient failure is retried at this time.
    retry_at: Option<Instant>,
    /// Contacts of earlier connections whose bindings may still exist at the registrar.
    stale: Vec<String>,
    /// The Contact was corrected on this connection already.
    rewrote: bool,
    /// [`Event::Registered`] was emitted on this connection.
    announced: bool,
}

struct Active {
    contact: String,
    expires_at: Instant,
    refresh_at: Instant,
}

struct RegTx {
    kind: RegKind,
    branch: String,
    sent_at: Instant,
    deadline: Instant,
    contact: String,
    removing: Vec<String>,
    expires: u32,
    challenges: u8,
    too_brief: u8,
}

impl Registration {
    pub(super) fn new<R: CryptoRng + ?Sized>(config: &AgentConfig, rng: &mut R) -> Self {
        Registration {
            call_id: schedule::call_id(rng),
            from_tag: schedule::tag(rng),
            cseq: schedule::first_cseq(rng),
            auth: config.digest_client(),
            requested: config.expires,
            active: None,
            tx: None,
            retry_at: None,
            stale: Vec::new(),
            rewrote: false,
            announced: false,
        }
    }

    pub(super) fn is_active(&self) -> bool {
        self.active.is_some()
    }

    pub(super) fn expires_at(&self) -> Option<Instant> {
        self.active.as_ref().map(|a| a.expires_at)
    }

    /// Whether a binding may exist on this connection (in place, or being made).
    pub(super) fn has_binding(&self) -> bool {
        self.active.is_some() || self.tx.is_some()
    }

    /// Whether a REGISTER is in flight.
    pub(super) fn busy(&self) -> bool {
        self.tx.is_some()
    }

    pub(super) fn tx_branch(&self) -> Option<&str> {
        self.tx.as_ref().map(|t| t.branch.as_str())
    }

    /// Forget the connection's registration without a REGISTER (shutdown without binding).
    pub(super) fn abandon(&mut self) {
        self.tx = None;
        self.active = None;
        self.retry_at = None;
    }

    /// The registration's next deadline. Consistent with `registration_timeouts`: a refresh
    /// time is reported only while nothing is in flight and no retry is scheduled.
    pub(super) fn deadline(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut take = |c: Instant| {
            if t.is_none_or(|cur| c < cur) {
                t = Some(c);
            }
        };
        if let Some(tx) = &self.tx {
            take(tx.deadline);
        }
        if let Some(a) = &self.active {
            take(a.expires_at);
        }
        if self.tx.is_none() {
            match (self.retry_at, &self.active) {
                (Some(r), _) => take(r),
                (None, Some(a)) => take(a.refresh_at),
                (None, None) => {}
            }
        }
        t
    }

    fn remember_stale(&mut self, contact: String) {
        if self.stale.contains(&contact) {
            return;
        }
        if self.stale.len() >= MAX_STALE_CONTACTS {
            self.stale.remove(0);
        }
        self.stale.push(contact);
    }

    fn next_cseq(&mut self) -> u32 {
        if self.cseq >= (1 << 31) - 2 {
            self.cseq = 1;
        } else {
            self.cseq += 1;
        }
        self.cseq
    }
}

impl<R: CryptoRng> Agent<R> {
    /// A connection is up: register on it.
    pub(super) fn registration_link_up(&mut self, now: Instant) {
        let r = &mut self.reg;
        r.active = None;
        r.tx = None;
        r.retry_at = None;
        r.rewrote = false;
        r.announced = false;
        self.send_register(now, RegKind::Initial, 0, 0);
    }

    /// The connection is gone: its binding (and one being made) must be removed from the
    /// next connection.
    pub(super) fn registration_link_down(&mut self) {
        let r = &mut self.reg;
        if let Some(a) = r.active.take() {
            r.remember_stale(a.contact);
        }
        if let Some(tx) = r.tx.take()
            && tx.kind != RegKind::Unregister
        {
            r.remember_stale(tx.contact);
        }
        r.retry_at = None;
    }

    /// Write and queue a REGISTER of `kind`; `challenges` and `too_brief` carry the counts of
    /// the transaction it follows up.
    pub(super) fn send_register(
        &mut self,
        now: Instant,
        kind: RegKind,
        challenges: u8,
        too_brief: u8,
    ) {
        let Conn::Up(link) = &self.conn else {
            return;
        };
        let contact = link.contact.clone();
        let sent_by = link.sent_by.clone();
        let expires = if kind == RegKind::Unregister {
            0
        } else {
            self.reg.requested
        };
        let removing: Vec<String> = self
            .reg
            .stale
            .iter()
            .filter(|c| **c != contact)
            .cloned()
            .collect();
        if kind == RegKind::Unregister {
            self.reg.active = None;
        }
        let cseq = self.reg.next_cseq();
        let branch = schedule::branch(&mut self.rng);
        let auths = match self.reg.auth.authorize(
            &DigestRequest::new("REGISTER", &self.config.registrar, b""),
            &mut self.rng,
        ) {
            Ok(a) => a,
            Err(_) => {
                // A nonce used 2^32 times: start over with the next challenge.
                self.reg.auth.clear();
                Vec::new()
            }
        };
        let cfg = &self.config;
        let aor = cfg.account.aor();
        let mut from = Address::new(&aor).with_tag(&self.reg.from_tag);
        let mut to = Address::new(&aor);
        if let Some(d) = &cfg.account.display_name {
            from = from.with_display_name(d);
            to = to.with_display_name(d);
        }
        let head = RequestHead {
            method: Method::Register,
            uri: &cfg.registrar,
            via: ViaSpec::new(cfg.server.transport.header_transport(), &sent_by, &branch),
            from,
            to,
            call_id: &self.reg.call_id,
            cseq,
            max_forwards: 70,
        };
        let mut out = Vec::with_capacity(1024);
        let written = (|| -> Result<(), BuildError> {
            let mut w = MessageWriter::request(&mut out, &head)?;
            if let Some(p) = &cfg.outbound_proxy {
                w.header("Route", &format!("<{p}>"))?;
            }
            w.contact(&Address::new(&contact), Some(expires))?;
            for c in &removing {
                w.contact(&Address::new(c), Some(0))?;
            }
            w.expires(expires)?;
            if !cfg.supported.is_empty() {
                w.header("Supported", &cfg.supported.join(", "))?;
            }
            for a in &auths {
                w.header(a.kind.credentials_header(), &a.value)?;
            }
            w.header("User-Agent", &cfg.user_agent)?;
            w.finish(None)
        })();
        if let Err(e) = written {
            // The configuration was validated, so this means a bad Contact host: permanent.
            let reason = format!("REGISTER could not be written: {e}");
            self.fail_permanently(now, None, reason);
            return;
        }
        self.send_bytes(out.into());
        self.reg.tx = Some(RegTx {
            kind,
            branch,
            sent_at: now,
            deadline: now + self.config.transaction_timeout(),
            contact,
            removing,
            expires,
            challenges,
            too_brief,
        });
    }

    /// A final or provisional response to the REGISTER in flight.
    pub(super) fn on_register_response(&mut self, now: Instant, msg: &Message<'_>, code: u16) {
        if code < 200 {
            return;
        }
        let Some(tx) = self.reg.tx.take() else {
            return;
        };
        let phrase = msg.status_line().map_or("", |s| s.reason);
        let status = format!("{code} {phrase}");
        if tx.kind == RegKind::Unregister {
            // Shutting down: answer one challenge, accept any other outcome.
            if matches!(code, 401 | 407) && tx.challenges == 0 && self.take_challenge(msg, code) {
                self.send_register(now, RegKind::Unregister, 1, 0);
            } else if (200..300).contains(&code) {
                self.reg.stale.retain(|c| !tx.removing.contains(c));
            }
            return;
        }
        match code {
            200..=299 => self.registered(now, msg, tx),
            401 | 407 => {
                if tx.challenges >= MAX_CHALLENGES {
                    let reason = format!("{status}: challenged {} times in a row", tx.challenges);
                    self.fail_permanently(now, Some(code), reason);
                } else {
                    let kind = if code == 401 {
                        ChallengeKind::Www
                    } else {
                        ChallengeKind::Proxy
                    };
                    let name = if code == 401 {
                        HeaderName::WwwAuthenticate
                    } else {
                        HeaderName::ProxyAuthenticate
                    };
                    let values = msg.headers_named(name).map(|h| h.value);
                    match self.reg.auth.handle_challenges(kind, values) {
                        Ok(_) => {
                            self.send_register(now, tx.kind, tx.challenges + 1, tx.too_brief);
                        }
                        Err(e) => self.fail_permanently(now, Some(code), format!("{status}: {e}")),
                    }
                }
            }
            423 => match msg.min_expires() {
                Ok(min)
                    if min > tx.expires && min <= MAX_EXPIRES && tx.too_brief < MAX_TOO_BRIEF =>
                {
                    self.reg.requested = min;
                    self.send_register(now, tx.kind, tx.challenges, tx.too_brief + 1);
                }
                Ok(min) => {
                    let reason = format!("{status} (Min-Expires {min} not usable)");
                    self.fail_permanently(now, Some(code), reason);
                }
                Err(e) => self.fail_permanently(now, Some(code), format!("{status}: {e}")),
            },
            408 | 480 | 500..=599 => {
                let after = retry_after(msg);
                self.registration_retry(now, Some(code), status, after);
            }
            _ => self.fail_permanently(now, Some(code), status),
        }
    }

    /// Feed a 401/407's challenges to the digest client; whether they can be answered.
    fn take_challenge(&mut self, msg: &Message<'_>, code: u16) -> bool {
        let (kind, name) = if code == 401 {
            (ChallengeKind::Www, HeaderName::WwwAuthenticate)
        } else {
            (ChallengeKind::Proxy, HeaderName::ProxyAuthenticate)
        };
        self.reg
            .auth
            .handle_challenges(kind, msg.headers_named(name).map(|h| h.value))
            .is_ok()
    }

    /// A 2xx to a REGISTER.
    fn registered(&mut self, now: Instant, msg: &Message<'_>, tx: RegTx) {
        self.reg.stale.retain(|c| !tx.removing.contains(c));
        let granted = granted_expiry(msg, &tx.contact, tx.expires);
        if granted == 0 {
            let reason = "registrar answered 2xx but kept no binding (expires 0)".to_owned();
            self.registration_retry(now, msg.status(), reason, None);
            return;
        }
        if !self.reg.rewrote
            && let Some(contact) = self.corrected_contact(msg, &tx.contact)
        {
            // RFC 3581: the registrar sees us at another address. Register that one and remove
            // the binding just made (it points nowhere reachable).
            self.reg.rewrote = true;
            self.reg.remember_stale(tx.contact);
            if let Conn::Up(link) = &mut self.conn {
                link.contact = contact;
            }
            self.send_register(now, RegKind::Initial, 0, 0);
            return;
        }
        let g = Duration::from_secs(u64::from(granted));
        let delay = schedule::refresh_delay(g, &self.config.refresh, &mut self.rng);
        let contact = tx.contact;
        self.reg.active = Some(Active {
            contact: contact.clone(),
            expires_at: tx.sent_at + g,
            refresh_at: tx.sent_at + delay,
        });
        self.reg.retry_at = None;
        // A refresh proves the connection; a first registration on a new one does not yet
        // (see `Agent::lose_connection`).
        if self.reg.announced {
            self.failures = 0;
        }
        self.last_error = None;
        if self.reg.announced {
            self.push_event(Event::RegistrationRefreshed { expires: g });
        } else {
            self.reg.announced = true;
            self.push_event(Event::Registered {
                expires: g,
                contact,
            });
        }
    }

    /// The Contact to register instead of `contact` when the 2xx's top Via says the
    /// registrar sees us elsewhere (`received`, `rport`).
    fn corrected_contact(&self, msg: &Message<'_>, contact: &str) -> Option<String> {
        let via = msg.top_via().ok()?;
        let received = via.received();
        let rport = via.rport().flatten();
        if received.is_none() && rport.is_none() {
            return None;
        }
        let ours = SipUri::parse(contact).ok()?;
        let host = received.map_or_else(|| ours.host_str().to_owned(), |h| h.to_string());
        let port = rport.or(ours.port());
        if host.eq_ignore_ascii_case(ours.host_str()) && port == ours.port() {
            return None;
        }
        let host_port = match port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        };
        let corrected = self.contact_uri(&host_port);
        // Only a Contact the builder accepts (a hostile `received` cannot break the REGISTER).
        SipUri::parse(&corrected).ok().map(|_| corrected.clone())
    }

    /// A transient failure: retry on this connection after a backoff (or Retry-After), and
    /// before the current binding lapses.
    fn registration_retry(
        &mut self,
        now: Instant,
        status: Option<u16>,
        reason: String,
        after: Option<Duration>,
    ) {
        self.failures = self.failures.saturating_add(1);
        // Retry-After is a floor (RFC 3261 §20.33: not before), never a reason to go faster
        // than the backoff: `Retry-After: 0` from a busy registrar must not have the agent
        // re-REGISTER at round-trip speed.
        let backoff = schedule::backoff_delay(&self.config.backoff, self.failures, &mut self.rng);
        let mut delay = after.map_or(backoff, |a| a.max(backoff));
        if let Some(a) = &self.reg.active {
            let left = a.expires_at.saturating_duration_since(now);
            delay = delay.min(left / 2).max(self.config.t1);
        }
        let retry_at = now + delay;
        self.reg.retry_at = Some(retry_at);
        self.last_error = Some(reason.clone());
        self.push_event(Event::RegistrationFailed {
            status,
            reason,
            permanent: false,
            retry_at: Some(retry_at),
        });
    }

    /// Registration deadlines: Timer F, expiry, refresh, retry.
    pub(super) fn registration_timeouts(&mut self, now: Instant) {
        if !matches!(self.conn, Conn::Up(_)) {
            return;
        }
        if let Some(tx) = &self.reg.tx
            && tx.deadline <= now
        {
            let kind = tx.kind;
            self.reg.tx = None;
            if kind != RegKind::Unregister {
                self.lose_connection(now, DisconnectReason::RegistrarSilent);
            }
            return;
        }
        if let Some(a) = &self.reg.active
            && a.expires_at <= now
        {
            self.reg.active = None;
            self.reg.announced = false;
            self.push_event(Event::RegistrationLapsed);
            if self.reg.tx.is_none() && self.reg.retry_at.is_none() {
                self.send_register(now, RegKind::Initial, 0, 0);
            }
        }
        if self.reg.tx.is_some() {
            return;
        }
        match (self.reg.retry_at, &self.reg.active) {
            (Some(t), active) if t <= now => {
                let kind = if active.is_some() {
                    RegKind::Refresh
                } else {
                    RegKind::Initial
                };
                self.reg.retry_at = None;
                self.send_register(now, kind, 0, 0);
            }
            (None, Some(a)) if a.refresh_at <= now => {
                self.send_register(now, RegKind::Refresh, 0, 0);
            }
            _ => {}
        }
    }
}

/// The expiry granted to `contact` by a 2xx (RFC 3261 §10.2.4): the `expires` parameter of
/// the Contact that is ours, else of the only Contact listed, else the Expires header, else
/// what was asked; never more than what was asked.
fn granted_expiry(msg: &Message<'_>, contact: &str, requested: u32) -> u32 {
    let header = msg.expires().ok();
    let ours = SipUri::parse(contact).ok();
    let mut listed = 0usize;
    let mut only = None;
    for c in msg.contacts().flatten() {
        let Some(addr) = c.addr() else { continue };
        listed += 1;
        only = addr.expires();
        if let (Some(o), Some(u)) = (&ours, addr.uri.as_sip())
            && same_binding(o, u)
        {
            return addr
                .expires()
                .or(header)
                .unwrap_or(requested)
                .min(requested);
        }
    }
    let granted = match (listed, only) {
        (1, Some(e)) => e,
        _ => header.unwrap_or(requested),
    };
    granted.min(requested)
}

/// Whether two contact URIs name the same binding: user, host (case-insensitive), port.
fn same_binding(a: &SipUri<'_>, b: &SipUri<'_>) -> bool {
    a.user() == b.user() && a.host_str().eq_ignore_ascii_case(b.host_str()) && a.port() == b.port()
}

/// `Retry-After: <seconds>` (RFC 3261 §20.33), capped.
fn retry_after(msg: &Message<'_>) -> Option<Duration> {
    let v = msg.header(HeaderName::RetryAfter)?.value;
    let digits = v.split(|c: char| !c.is_ascii_digit()).next()?;
    let secs: u64 = digits.get(..digits.len().min(10))?.parse().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}
