//! What comes out of the agent: transmits for the connection, events for the application, the
//! public view of the connection state, and the errors of its commands.

use alloc::string::String;
use core::fmt;
use core::time::Duration;

use bytes::Bytes;

use crate::sip::builder::BuildError;
use crate::sip::framing::FramingError;
use crate::time::Instant;

/// Identifies an outgoing MESSAGE issued with [`Agent::send_message`](super::Agent::send_message)
/// or [`Agent::open_gate`](super::Agent::open_gate). Each one ends in exactly one
/// [`Event::MessageDelivered`] or [`Event::MessageFailed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub u64);

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "message #{}", self.0)
    }
}

/// Identifies an incoming call (a ring). Each [`Event::Doorbell`] is followed by exactly one
/// [`Event::CallEnded`] with the same handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallHandle(pub u64);

impl fmt::Display for CallHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call #{}", self.0)
    }
}

/// Something the driver must do with the connection, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transmit {
    /// Open a connection to [`AgentConfig::server`](super::AgentConfig) (TLS with the client
    /// identity, when configured), then call
    /// [`Agent::handle_connected`](super::Agent::handle_connected) — or
    /// [`Agent::handle_disconnected`](super::Agent::handle_disconnected) if it failed.
    Connect {
        /// How many connections the agent has asked for, this one included.
        attempt: u32,
    },
    /// Write these bytes to the connection.
    Send(Bytes),
    /// Close the connection (or abandon the connection attempt) after writing everything
    /// before it. Do not report it with `handle_disconnected` (doing so is harmless).
    Close,
}

/// The connection lifecycle, as [`Agent::state`](super::Agent::state) reports it.
///
/// ```text
/// Disconnected --start--> Connecting --connected--> Registering --200--> Registered
///                             ^                         |   \--403/404/rejected--> Failed --retry--> Connecting
///                             |                         v
///                         Reconnecting <--drop/stale/timeout-- (any connected state)
/// any --shutdown--> ShuttingDown (un-REGISTER) --> Closed
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Not started ([`Agent::start`](super::Agent::start) connects).
    Disconnected,
    /// Waiting for the driver to open the connection.
    Connecting,
    /// Connected; the registration is not (yet) in place.
    Registering,
    /// Connected and registered: calls can ring, commands are sent.
    Registered,
    /// Connected with registration turned off: commands are sent, nothing rings.
    Connected,
    /// Waiting out the backoff before the next connection attempt.
    Reconnecting,
    /// The registration failed permanently; waiting for the retry or for `start`.
    Failed,
    /// Un-registering before closing.
    ShuttingDown,
    /// Shut down for good.
    Closed,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The driver reported the connection closed or failed.
    Closed,
    /// The connection attempt was not reported within the connect timeout.
    ConnectTimeout,
    /// The server stopped answering keep-alives.
    Stale,
    /// The byte stream could not be framed; nothing after the fault can be trusted.
    Framing(FramingError),
    /// A REGISTER got no final response within Timer F (64·T1).
    RegistrarSilent,
    /// [`Agent::reconnect`](super::Agent::reconnect) asked for a new connection.
    Requested,
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisconnectReason::Closed => f.write_str("connection closed"),
            DisconnectReason::ConnectTimeout => f.write_str("connection attempt timed out"),
            DisconnectReason::Stale => f.write_str("server stopped answering keep-alives"),
            DisconnectReason::Framing(e) => write!(f, "unreadable stream: {e}"),
            DisconnectReason::RegistrarSilent => {
                f.write_str("REGISTER not answered within Timer F")
            }
            DisconnectReason::Requested => f.write_str("reconnect requested"),
        }
    }
}

/// A ring: an INVITE from an allowed caller.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Doorbell {
    /// The handle for [`Agent::answer`](super::Agent::answer) and [`Event::CallEnded`].
    pub call: CallHandle,
    /// The caller's URI (From).
    pub from: String,
    /// The caller's display name, unescaped.
    pub from_display: Option<String>,
    /// The called URI (To).
    pub to: String,
    /// The Call-ID.
    pub call_id: String,
    /// When the INVITE arrived.
    pub at: Instant,
    /// Content-Type of the INVITE body (an SDP offer, typically).
    pub content_type: Option<String>,
    /// The INVITE body.
    pub body: Bytes,
}

/// Which request carried an [`IncomingMessage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IncomingKind {
    /// MESSAGE (RFC 3428).
    Message,
    /// NOTIFY (RFC 6665), answered 200 even outside a subscription.
    Notify,
}

/// A MESSAGE or NOTIFY the agent answered 200 OK.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IncomingMessage {
    /// MESSAGE or NOTIFY.
    pub kind: IncomingKind,
    /// The sender's URI (From).
    pub from: String,
    /// The recipient URI (To).
    pub to: String,
    /// The `Content-Type` value, as sent.
    pub content_type: Option<String>,
    /// The `Event` header of a NOTIFY.
    pub event: Option<String>,
    /// The body.
    pub body: Bytes,
    /// When it arrived.
    pub at: Instant,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallEnd {
    /// The agent answered with this non-2xx final status (486, 603, …).
    Declined {
        /// The status sent.
        status: u16,
    },
    /// The caller cancelled before an answer (CANCEL → 200, INVITE → 487).
    Cancelled,
    /// The caller hung up (BYE).
    RemoteHangUp,
    /// The agent hung up (BYE): asked by the application or after `max_call`.
    LocalHangUp,
    /// The 200 OK was never acknowledged (RFC 3261 §13.3.1.4); a BYE was sent.
    NoAck,
    /// The connection dropped.
    ConnectionLost,
    /// The agent shut down.
    Shutdown,
}

/// Why an outgoing MESSAGE failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailReason {
    /// The peer answered with a final non-2xx status.
    Rejected {
        /// The status code.
        status: u16,
        /// The reason phrase.
        phrase: String,
    },
    /// A digest challenge could not be answered, or was repeated after being answered.
    AuthenticationFailed {
        /// 401 or 407.
        status: u16,
        /// What went wrong.
        detail: String,
    },
    /// No final response within Timer F (64·T1).
    Timeout,
    /// The connection dropped while the request was outstanding: it may or may not have
    /// reached the peer, so it is not sent again.
    ConnectionLost,
    /// It was never sent: no usable connection within
    /// [`QueuePolicy::max_wait`](super::QueuePolicy).
    NotSent {
        /// How long it waited.
        waited: Duration,
        /// The state the agent was in.
        state: State,
        /// The last registration or connection error, if any.
        last_error: Option<String>,
    },
    /// The registration failed permanently; the queue was flushed.
    RegistrationFailed {
        /// The registration failure.
        reason: String,
    },
    /// The agent shut down first.
    Shutdown,
    /// The request could not be written.
    Build(BuildError),
}

impl FailReason {
    /// The SIP status involved, if a response was received.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            FailReason::Rejected { status, .. }
            | FailReason::AuthenticationFailed { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl fmt::Display for FailReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailReason::Rejected { status, phrase } => write!(f, "rejected: {status} {phrase}"),
            FailReason::AuthenticationFailed { status, detail } => {
                write!(f, "authentication failed ({status}): {detail}")
            }
            FailReason::Timeout => f.write_str("no final response within Timer F"),
            FailReason::ConnectionLost => f.write_str(
                "connection lost while waiting for the answer (it may have been delivered)",
            ),
            FailReason::NotSent {
                waited,
                state,
                last_error,
            } => {
                write!(f, "not sent within {} s (agent {state:?}", waited.as_secs())?;
                if let Some(e) = last_error {
                    write!(f, "; last error: {e}")?;
                }
                f.write_str(")")
            }
            FailReason::RegistrationFailed { reason } => {
                write!(f, "registration failed: {reason}")
            }
            FailReason::Shutdown => f.write_str("agent shut down"),
            FailReason::Build(e) => write!(f, "request could not be written: {e}"),
        }
    }
}

/// What the application should know.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A registration is in place on this connection (the first one after connecting, or
    /// again after it lapsed).
    Registered {
        /// The expiry granted.
        expires: Duration,
        /// The Contact registered.
        contact: String,
    },
    /// A registration was refreshed.
    RegistrationRefreshed {
        /// The expiry granted.
        expires: Duration,
    },
    /// A REGISTER failed.
    RegistrationFailed {
        /// The final status, if there was one.
        status: Option<u16>,
        /// What went wrong, with the reason phrase.
        reason: String,
        /// `true` for failures that retrying on this connection cannot fix (403, 404,
        /// credentials rejected): the agent is [`State::Failed`].
        permanent: bool,
        /// When the agent tries again, if it does.
        retry_at: Option<Instant>,
    },
    /// The registration expired before a refresh succeeded; the agent registers again.
    RegistrationLapsed,
    /// The connection ended; the agent reconnects at `retry_at`.
    Reconnecting {
        /// Why the connection ended.
        reason: DisconnectReason,
        /// Consecutive failures so far.
        attempt: u32,
        /// When the next connection attempt starts.
        retry_at: Instant,
    },
    /// The server sent nothing within the pong timeout after a ping (half-open
    /// connection); a [`Transmit::Close`] and a reconnect follow.
    ConnectionStale {
        /// Time since the server last sent anything.
        silent_for: Duration,
    },
    /// An allowed caller rings.
    Doorbell(Doorbell),
    /// A call announced by [`Event::Doorbell`] is over.
    CallEnded {
        /// The call.
        call: CallHandle,
        /// How it ended.
        reason: CallEnd,
    },
    /// An INVITE from a caller outside [`AgentConfig::allowed_callers`](super::AgentConfig)
    /// was answered 486.
    CallFiltered {
        /// The caller's URI.
        from: String,
    },
    /// A MESSAGE or NOTIFY arrived (and was answered 200 OK).
    Message(IncomingMessage),
    /// An outgoing MESSAGE got a 2xx.
    MessageDelivered {
        /// The command.
        id: MessageId,
        /// The 2xx status.
        status: u16,
    },
    /// An outgoing MESSAGE failed.
    MessageFailed {
        /// The command.
        id: MessageId,
        /// The final status, if one arrived.
        status: Option<u16>,
        /// Why.
        reason: FailReason,
    },
    /// The agent is shut down ([`State::Closed`]).
    Closed,
}

impl Event {
    /// Whether the event reports the connection lifecycle (these are coalesced when the
    /// application does not drain events).
    pub(super) fn is_lifecycle(&self) -> bool {
        matches!(
            self,
            Event::Registered { .. }
                | Event::RegistrationRefreshed { .. }
                | Event::RegistrationFailed { .. }
                | Event::RegistrationLapsed
                | Event::Reconnecting { .. }
                | Event::ConnectionStale { .. }
        )
    }
}

/// Why a command was refused. A refused command has no id and produces no event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// The queue holds [`QueuePolicy::capacity`](super::QueuePolicy) commands already.
    QueueFull {
        /// The capacity.
        capacity: usize,
    },
    /// The target is not a usable `sip:`/`sips:` URI.
    InvalidTarget {
        /// What is wrong.
        reason: &'static str,
    },
    /// The content type is not `type/subtype[;params]` or holds a control character.
    InvalidContentType,
    /// The body is over [`AgentConfig::max_body`](super::AgentConfig).
    BodyTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// [`AgentConfig::gate`](super::AgentConfig) is not set.
    NoGate,
    /// The registration failed permanently and the agent is not retrying.
    Failed {
        /// The registration failure.
        reason: String,
    },
    /// The agent is shutting down or shut down.
    ShutDown,
    /// No ringing or accepted call has this handle.
    UnknownCall,
    /// The call was already answered.
    AlreadyAnswered,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::QueueFull { capacity } => {
                write!(
                    f,
                    "command queue full ({capacity} waiting); try again later"
                )
            }
            CommandError::InvalidTarget { reason } => write!(f, "invalid target URI: {reason}"),
            CommandError::InvalidContentType => {
                f.write_str("invalid content type (expected type/subtype)")
            }
            CommandError::BodyTooLarge { len, max } => {
                write!(f, "body of {len} bytes is over the {max}-byte limit")
            }
            CommandError::NoGate => f.write_str("no gate command configured in the profile"),
            CommandError::Failed { reason } => write!(f, "registration failed: {reason}"),
            CommandError::ShutDown => f.write_str("agent is shut down"),
            CommandError::UnknownCall => f.write_str("no such ringing or active call"),
            CommandError::AlreadyAnswered => f.write_str("call already answered"),
        }
    }
}

impl core::error::Error for CommandError {}
