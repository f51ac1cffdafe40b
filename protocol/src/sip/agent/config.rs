//! The profile of one account: who the agent is, where it connects, and every timing and
//! policy knob, with defaults taken from RFC 3261 / RFC 5626 and the reference clients
//! (../shared/design/REFERENCE.md). Vendor presets live in [`super::preset`]; nothing here
//! knows a vendor.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use crate::sip::headers::ContentType;
use crate::sip::uri::{SipUri, Uri};

/// A password. `Debug` prints `Password(<redacted>)`, there is no `Display`, comparison is
/// constant-time and the bytes are overwritten when it is dropped (best effort).
#[derive(Clone)]
pub struct Password(Vec<u8>);

impl Password {
    /// Wrap a password.
    pub fn new(password: impl Into<String>) -> Self {
        Password(password.into().into_bytes())
    }

    /// The password, for the digest computation and nothing else.
    #[must_use]
    pub fn expose(&self) -> &str {
        // Built from a `String`, so always UTF-8.
        core::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// Whether the password is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl PartialEq for Password {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.0.len() == other.0.len() && bool::from(self.0.ct_eq(&other.0))
    }
}

impl Eq for Password {}

impl Drop for Password {
    fn drop(&mut self) {
        self.0.fill(0);
        core::hint::black_box(&mut self.0);
    }
}

/// The SIP account: address of record and digest credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Account {
    /// User part of the address of record (`sip:<user>@<domain>`).
    pub user: String,
    /// Host part of the address of record; also the default registrar and digest realm.
    pub domain: String,
    /// Digest username (usually the same as `user`).
    pub auth_user: String,
    /// Digest password.
    pub password: Password,
    /// Display name written in From headers, if any.
    pub display_name: Option<String>,
}

impl Account {
    /// An account whose digest username is its user part.
    pub fn new(
        user: impl Into<String>,
        domain: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        let user = user.into();
        Account {
            auth_user: user.clone(),
            user,
            domain: domain.into(),
            password: Password::new(password),
            display_name: None,
        }
    }

    /// The same account with another digest username.
    #[must_use]
    pub fn with_auth_user(mut self, auth_user: impl Into<String>) -> Self {
        self.auth_user = auth_user.into();
        self
    }

    /// The address of record, `sip:<user>@<domain>`.
    #[must_use]
    pub fn aor(&self) -> String {
        alloc::format!("sip:{}@{}", self.user, self.domain)
    }
}

/// The stream transport of the connection. Datagram transports are not supported: the agent
/// relies on a reliable transport (no retransmission timers, RFC 3261 §17.1.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StreamTransport {
    /// Plain TCP.
    Tcp,
    /// TLS over TCP (the driver verifies the server; a client certificate is optional).
    Tls,
}

impl StreamTransport {
    /// The Via transport token (`TCP`, `TLS`).
    #[must_use]
    pub const fn via_token(self) -> &'static str {
        match self {
            StreamTransport::Tcp => "TCP",
            StreamTransport::Tls => "TLS",
        }
    }

    /// The URI `transport` parameter value (`tcp`, `tls`).
    #[must_use]
    pub const fn uri_param(self) -> &'static str {
        match self {
            StreamTransport::Tcp => "tcp",
            StreamTransport::Tls => "tls",
        }
    }

    pub(super) const fn header_transport(self) -> crate::sip::headers::Transport<'static> {
        match self {
            StreamTransport::Tcp => crate::sip::headers::Transport::Tcp,
            StreamTransport::Tls => crate::sip::headers::Transport::Tls,
        }
    }
}

/// Where the driver connects (the agent itself never resolves or connects).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Server {
    /// Host name or address to connect to; also the TLS server name to verify.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Transport.
    pub transport: StreamTransport,
}

impl Server {
    /// A server address.
    pub fn new(host: impl Into<String>, port: u16, transport: StreamTransport) -> Self {
        Server {
            host: host.into(),
            port,
            transport,
        }
    }
}

/// The final answer to a ringing INVITE. No media is ever handled: `Accept` answers 200 OK
/// with an SDP answer that rejects every offered stream (port 0, RFC 3264 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Answer {
    /// 486 Busy Here (what listen-only clients answer, FACTS.md §1.6).
    Busy,
    /// 603 Decline.
    Decline,
    /// 200 OK (stops the ringing elsewhere; the call is hung up after
    /// [`AnswerPolicy::max_call`] or by [`Agent::hang_up`](super::Agent::hang_up)).
    Accept,
}

impl Answer {
    /// Status code and reason phrase of the final response.
    #[must_use]
    pub const fn status(self) -> (u16, &'static str) {
        match self {
            Answer::Busy => (486, "Busy Here"),
            Answer::Decline => (603, "Decline"),
            Answer::Accept => (200, "OK"),
        }
    }
}

/// How a ringing INVITE is answered when the application says nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AnswerPolicy {
    /// How long the agent rings (180 sent) before it sends `default`. Default 2 s.
    pub ring_time: Duration,
    /// The answer after `ring_time`. Default [`Answer::Busy`].
    pub default: Answer,
    /// An accepted call is hung up (BYE) after this long. Default 70 s (the official BTicino
    /// app's in-call timeout).
    pub max_call: Duration,
}

impl Default for AnswerPolicy {
    fn default() -> Self {
        AnswerPolicy {
            ring_time: Duration::from_secs(2),
            default: Answer::Busy,
            max_call: Duration::from_secs(70),
        }
    }
}

/// Which callers may ring: a From URI matches when every part given here equals its part
/// (user case-sensitively, host case-insensitively, RFC 3261 §19.1.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CallerPattern {
    /// Required user part, if any.
    pub user: Option<String>,
    /// Required host part, if any.
    pub host: Option<String>,
}

impl CallerPattern {
    /// Callers with this user part at this host.
    pub fn user_at(user: impl Into<String>, host: impl Into<String>) -> Self {
        CallerPattern {
            user: Some(user.into()),
            host: Some(host.into()),
        }
    }

    /// Whether `uri` matches.
    #[must_use]
    pub fn matches(&self, uri: &SipUri<'_>) -> bool {
        let user_ok = match &self.user {
            Some(u) => uri.user() == Some(u.as_str()),
            None => true,
        };
        let host_ok = match &self.host {
            Some(h) => uri
                .host_str()
                .trim_end_matches('.')
                .eq_ignore_ascii_case(h.trim_end_matches('.')),
            None => true,
        };
        user_ok && host_ok
    }
}

/// RFC 5626 §4.4.1 CRLF keep-alives on the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeepAlive {
    /// Send a CRLFCRLF ping this often (each one at a random point between 80 % and 100 %
    /// of it, RFC 5626 §4.4.1); `None` sends none. Default 120 s.
    pub interval: Option<Duration>,
    /// A connection whose server has answered a ping before and now sends nothing within
    /// this long after a ping is stale ([`Event::ConnectionStale`](super::Event)). Default
    /// 10 s (RFC 5626 §4.4.1). A server that never answers pings is not declared stale for
    /// it; REGISTER refresh timeouts still find a dead connection.
    pub pong_timeout: Option<Duration>,
}

impl Default for KeepAlive {
    fn default() -> Self {
        KeepAlive {
            interval: Some(Duration::from_secs(120)),
            pong_timeout: Some(Duration::from_secs(10)),
        }
    }
}

/// Reconnect backoff: after the n-th consecutive failure the delay is drawn uniformly from
/// `[d/2, d]` with `d = min(max, initial · 2ⁿ⁻¹)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Backoff {
    /// The nominal first delay. Default 1 s.
    pub initial: Duration,
    /// The cap. Default 60 s.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

/// When a registration is refreshed: at `min(granted / 2, granted − margin)` after the
/// REGISTER was sent (never earlier than `granted / 4`), minus a random part of up to
/// `jitter_percent` of that delay (so refreshes of many agents spread out and never move
/// later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshPolicy {
    /// Time left for the refresh transaction (with its digest round) before expiry.
    /// Default 60 s (about two Timer F periods).
    pub margin: Duration,
    /// Up to this share of the delay is taken off at random. Default 10; at most 50.
    pub jitter_percent: u8,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        RefreshPolicy {
            margin: Duration::from_secs(60),
            jitter_percent: 10,
        }
    }
}

/// What [`Agent::open_gate`](super::Agent::open_gate) sends: a MESSAGE to `target` with
/// `body_template`, in which every `{id}` is replaced by a fresh random decimal number (a
/// JSON-RPC id, for example).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GateConfig {
    /// Request-URI and To of the MESSAGE.
    pub target: String,
    /// Content-Type of the body.
    pub content_type: String,
    /// The body, with `{id}` placeholders.
    pub body_template: String,
}

impl GateConfig {
    /// A gate command.
    pub fn new(
        target: impl Into<String>,
        content_type: impl Into<String>,
        body_template: impl Into<String>,
    ) -> Self {
        GateConfig {
            target: target.into(),
            content_type: content_type.into(),
            body_template: body_template.into(),
        }
    }
}

/// The outgoing command queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueuePolicy {
    /// Commands waiting to be sent (one is in flight at a time, besides these). When full, a
    /// new command is refused at once with [`CommandError::QueueFull`](super::CommandError),
    /// so it never gets an id that could be lost. Default 16.
    pub capacity: usize,
    /// A command not sent within this long of being issued (no connection, not registered)
    /// fails with [`FailReason::NotSent`](super::FailReason): a gate must not open minutes
    /// after the button was pressed. Default 20 s (the reference client's wait).
    pub max_wait: Duration,
}

impl Default for QueuePolicy {
    fn default() -> Self {
        QueuePolicy {
            capacity: 16,
            max_wait: Duration::from_secs(20),
        }
    }
}

/// Everything the agent needs to know about one account and how to run it.
/// `#[non_exhaustive]`: start from [`AgentConfig::new`] (or a preset) and assign fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AgentConfig {
    /// The account.
    pub account: Account,
    /// Where the driver connects.
    pub server: Server,
    /// Request-URI of REGISTER. Default `sip:<domain>`.
    pub registrar: String,
    /// A URI put in a `Route` header (loose routing) on every out-of-dialog request.
    pub outbound_proxy: Option<String>,
    /// Register at all. Without registration the agent is ready as soon as it is connected
    /// (enough to send MESSAGEs; nothing can ring).
    pub register: bool,
    /// Registration expiry asked for, seconds. Default 600.
    pub expires: u32,
    /// When registrations are refreshed.
    pub refresh: RefreshPolicy,
    /// CRLF keep-alives.
    pub keepalive: KeepAlive,
    /// How ringing INVITEs are answered.
    pub answer: AnswerPolicy,
    /// Who may ring; empty means anyone. INVITEs from others are answered 486 at once and
    /// reported as [`Event::CallFiltered`](super::Event).
    pub allowed_callers: Vec<CallerPattern>,
    /// What [`Agent::open_gate`](super::Agent::open_gate) sends.
    pub gate: Option<GateConfig>,
    /// `User-Agent` of requests.
    pub user_agent: String,
    /// Option tags for a `Supported` header on REGISTER (none by default).
    pub supported: Vec<String>,
    /// Reconnect backoff.
    pub backoff: Backoff,
    /// After a permanent registration failure (403, 404, credentials rejected), try again
    /// after this long; `None` stays failed until [`Agent::start`](super::Agent::start).
    /// Default 300 s.
    pub retry_after_failure: Option<Duration>,
    /// RFC 3261 T1 (round-trip estimate); Timer B/F are 64·T1. Default 500 ms.
    pub t1: Duration,
    /// A connection attempt the driver has not reported within this long is abandoned.
    /// Default 20 s.
    pub connect_timeout: Duration,
    /// How long a shutdown waits for the un-REGISTER and an in-flight command. Default 4 s.
    pub shutdown_timeout: Duration,
    /// The outgoing command queue.
    pub queue: QueuePolicy,
    /// Largest body of an outgoing MESSAGE, bytes. Default 16 KiB.
    pub max_body: usize,
    /// Accept MD5 digest challenges (see [`ClientConfig::allow_md5`](crate::sip::digest::ClientConfig)).
    /// Default `true`.
    pub allow_md5: bool,
}

impl AgentConfig {
    /// A configuration with the defaults above.
    #[must_use]
    pub fn new(account: Account, server: Server) -> Self {
        let registrar = alloc::format!("sip:{}", account.domain);
        AgentConfig {
            account,
            server,
            registrar,
            outbound_proxy: None,
            register: true,
            expires: 600,
            refresh: RefreshPolicy::default(),
            keepalive: KeepAlive::default(),
            answer: AnswerPolicy::default(),
            allowed_callers: Vec::new(),
            gate: None,
            user_agent: concat!("latchkey/", env!("CARGO_PKG_VERSION")).to_owned(),
            supported: Vec::new(),
            backoff: Backoff::default(),
            retry_after_failure: Some(Duration::from_secs(300)),
            t1: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(20),
            shutdown_timeout: Duration::from_secs(4),
            queue: QueuePolicy::default(),
            max_body: 16 * 1024,
            allow_md5: true,
        }
    }

    /// Timer B / Timer F: 64·T1 (32 s by default).
    #[must_use]
    pub fn transaction_timeout(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// A digest client for the account under this configuration's policy.
    pub(super) fn digest_client(&self) -> crate::sip::digest::DigestClient {
        let digest = crate::sip::digest::ClientConfig {
            allow_md5: self.allow_md5,
            ..Default::default()
        };
        crate::sip::digest::DigestClient::with_config(
            self.account.auth_user.clone(),
            self.account.password.expose(),
            digest,
        )
    }

    /// Check every field; [`Agent::new`](super::Agent::new) calls this.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let a = &self.account;
        nonempty(&a.user, "account.user")?;
        nonempty(&a.domain, "account.domain")?;
        nonempty(&a.auth_user, "account.auth_user")?;
        no_ctl(&a.auth_user, "account.auth_user")?;
        if let Some(d) = &a.display_name {
            no_ctl(d, "account.display_name")?;
        }
        let aor = a.aor();
        match Uri::parse(&aor) {
            Ok(Uri::Sip(u)) if !u.has_headers() && u.params().is_empty() && aor.len() < 512 => {}
            _ => {
                return Err(ConfigError::Invalid {
                    field: "account",
                    reason: "user@domain does not form a SIP URI",
                });
            }
        }
        nonempty(&self.server.host, "server.host")?;
        no_ctl(&self.server.host, "server.host")?;
        if self.server.port == 0 {
            return Err(ConfigError::Invalid {
                field: "server.port",
                reason: "port 0",
            });
        }
        sip_uri(&self.registrar, "registrar")?;
        if let Some(p) = &self.outbound_proxy {
            sip_uri(p, "outbound_proxy")?;
        }
        if self.expires == 0 || self.expires > MAX_EXPIRES {
            return Err(ConfigError::Invalid {
                field: "expires",
                reason: "must be 1 to 2^31-1 seconds",
            });
        }
        if self.refresh.jitter_percent > 50 {
            return Err(ConfigError::Invalid {
                field: "refresh.jitter_percent",
                reason: "at most 50",
            });
        }
        if self
            .keepalive
            .interval
            .is_some_and(|d| d < Duration::from_secs(1))
        {
            return Err(ConfigError::Invalid {
                field: "keepalive.interval",
                reason: "below 1 s",
            });
        }
        if self.keepalive.pong_timeout.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::Invalid {
                field: "keepalive.pong_timeout",
                reason: "zero",
            });
        }
        for p in &self.allowed_callers {
            if p.user.is_none() && p.host.is_none() {
                return Err(ConfigError::Invalid {
                    field: "allowed_callers",
                    reason: "a pattern must name a user or a host",
                });
            }
        }
        if let Some(g) = &self.gate {
            sip_uri(&g.target, "gate.target")?;
            content_type(&g.content_type, "gate.content_type")?;
            if g.body_template.len() > self.max_body {
                return Err(ConfigError::Invalid {
                    field: "gate.body_template",
                    reason: "longer than max_body",
                });
            }
        }
        no_ctl(&self.user_agent, "user_agent")?;
        for tag in &self.supported {
            if tag.is_empty() || !tag.bytes().all(crate::sip::lex::is_token_char) {
                return Err(ConfigError::Invalid {
                    field: "supported",
                    reason: "option tags must be tokens",
                });
            }
        }
        if self.backoff.initial.is_zero() || self.backoff.max < self.backoff.initial {
            return Err(ConfigError::Invalid {
                field: "backoff",
                reason: "initial must be positive and at most max",
            });
        }
        if self.retry_after_failure.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::Invalid {
                field: "retry_after_failure",
                reason: "zero (use None to stay failed)",
            });
        }
        for (d, field) in [
            (self.t1, "t1"),
            (self.connect_timeout, "connect_timeout"),
            (self.shutdown_timeout, "shutdown_timeout"),
            (self.queue.max_wait, "queue.max_wait"),
            (self.answer.max_call, "answer.max_call"),
        ] {
            if d.is_zero() {
                return Err(ConfigError::Invalid {
                    field,
                    reason: "zero",
                });
            }
        }
        if self.queue.capacity == 0 || self.queue.capacity > 1024 {
            return Err(ConfigError::Invalid {
                field: "queue.capacity",
                reason: "must be 1 to 1024",
            });
        }
        if self.max_body > 60 * 1024 {
            return Err(ConfigError::Invalid {
                field: "max_body",
                reason: "above 60 KiB (a stream message is at most 65,535 bytes)",
            });
        }
        Ok(())
    }
}

/// The largest expiry the agent asks for or accepts (RFC 3261 §20.19: below 2³²; kept below
/// 2³¹ as CSeq is).
pub(super) const MAX_EXPIRES: u32 = (1 << 31) - 1;

/// Why a configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required field is empty.
    Empty {
        /// The field.
        field: &'static str,
    },
    /// A field's value cannot be used.
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Empty { field } => write!(f, "SIP agent configuration: {field} is empty"),
            ConfigError::Invalid { field, reason } => {
                write!(f, "SIP agent configuration: {field}: {reason}")
            }
        }
    }
}

impl core::error::Error for ConfigError {}

fn nonempty(v: &str, field: &'static str) -> Result<(), ConfigError> {
    if v.is_empty() {
        Err(ConfigError::Empty { field })
    } else {
        Ok(())
    }
}

fn no_ctl(v: &str, field: &'static str) -> Result<(), ConfigError> {
    if v.chars().any(char::is_control) {
        Err(ConfigError::Invalid {
            field,
            reason: "contains a control character",
        })
    } else {
        Ok(())
    }
}

fn sip_uri(v: &str, field: &'static str) -> Result<(), ConfigError> {
    nonempty(v, field)?;
    match Uri::parse(v) {
        Ok(Uri::Sip(_)) if !v.contains(['<', '>', ' ', '\r', '\n', '\0']) => Ok(()),
        _ => Err(ConfigError::Invalid {
            field,
            reason: "not a sip: or sips: URI",
        }),
    }
}

pub(super) fn content_type(v: &str, field: &'static str) -> Result<(), ConfigError> {
    nonempty(v, field)?;
    no_ctl(v, field)?;
    ContentType::parse(v)
        .map(|_| ())
        .map_err(|_| ConfigError::Invalid {
            field,
            reason: "not a media type (type/subtype)",
        })
}
