//! The device authorization grant (RFC 8628) as a state machine: for devices that cannot
//! open a browser, the user enters a short code on another device while this one polls.
//!
//! Rules (RFC 8628 §3.5): poll no faster than `interval` (default 5 s); `slow_down` adds 5 s
//! to this and every later interval; `authorization_pending` keeps polling; `access_denied`
//! and `expired_token` stop; the flow ends at the code's expiry. Network errors and 5xx
//! answers are retried at the next interval (doubled each time, up to a minute), never
//! faster.

use core::fmt;
use std::collections::VecDeque;

use serde_json::Value;

use crate::http::{HttpRequest, HttpResponse, TransportError};
use crate::profile::{Profile, ProfileError};
use crate::request;
use crate::response::{self, ErrorClass, TokenError, TokenResponse};
use crate::secret::Secret;
use crate::session::RequestId;

/// Interval RFC 8628 §3.2 prescribes when the server gives none.
pub const DEFAULT_INTERVAL: u64 = 5;
/// Longest interval latchkey waits between polls after failures.
const MAX_INTERVAL: u64 = 60;
/// Longest polling interval believed from a server (an hour: the code rarely lives longer);
/// shorter ones are kept as given — polling faster than the server asks breaks RFC 8628
/// §3.5 and draws `slow_down`.
const MAX_SERVER_INTERVAL: u64 = 3600;

/// What to show the user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserCode {
    /// The code to type (not a secret on its own; short-lived).
    pub user_code: String,
    /// Where to type it.
    pub verification_uri: String,
    /// A URI that includes the code, for a QR code or a click, if the server gave one.
    pub verification_uri_complete: Option<String>,
    /// When the code expires (local wall clock).
    pub expires_at: u64,
}

/// Why the device flow ended without tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceFlowError {
    /// The user refused (`access_denied`).
    Denied,
    /// The code expired before the user finished (`expired_token`, or the deadline passed).
    Expired,
    /// The device authorization response is unusable.
    Malformed {
        /// What is wrong, naming the field.
        reason: String,
    },
    /// The server refused the request (a terminal token error).
    Refused(TokenError),
    /// The profile lacks what the flow needs.
    Profile(ProfileError),
}

impl fmt::Display for DeviceFlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceFlowError::Denied => f.write_str("the sign-in was refused on the other device"),
            DeviceFlowError::Expired => {
                f.write_str("the code expired before the sign-in was completed; start again")
            }
            DeviceFlowError::Malformed { reason } => {
                write!(f, "unusable device authorization response: {reason}")
            }
            DeviceFlowError::Refused(e) => write!(f, "device sign-in failed: {e}"),
            DeviceFlowError::Profile(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for DeviceFlowError {}

/// What the flow tells its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceEvent {
    /// Perform this request; answer with [`DeviceFlow::handle_response`].
    SendRequest {
        /// Answer with this id.
        id: RequestId,
        /// The request.
        request: HttpRequest,
    },
    /// Show this to the user.
    ShowCode(UserCode),
    /// The user signed in: hand these to `TokenSession::handle_login`.
    Completed(Box<TokenResponse>),
    /// The flow ended without tokens.
    Failed(DeviceFlowError),
}

#[derive(Debug)]
enum State {
    Authorizing { request: RequestId },
    Sleeping { until: u64 },
    Polling { request: RequestId },
    Done,
}

/// One run of the device flow. See the [module docs](self).
#[derive(Debug)]
pub struct DeviceFlow {
    profile: Profile,
    state: State,
    device_code: Option<Secret>,
    interval: u64,
    failures: u32,
    deadline: u64,
    events: VecDeque<DeviceEvent>,
    next_id: u64,
}

impl DeviceFlow {
    /// Starts the flow at `now`: queues the device authorization request.
    ///
    /// # Errors
    /// [`ProfileError`] when the profile has no device authorization endpoint, token
    /// endpoint or client id.
    pub fn start(profile: Profile, now: u64) -> Result<Self, ProfileError> {
        let req = request::device_authorization(&profile)?;
        profile.token_endpoint()?;
        let mut flow = DeviceFlow {
            profile,
            state: State::Done,
            device_code: None,
            interval: DEFAULT_INTERVAL,
            failures: 0,
            deadline: now.saturating_add(600),
            events: VecDeque::new(),
            next_id: 1,
        };
        let id = flow.id();
        flow.state = State::Authorizing { request: id };
        flow.events
            .push_back(DeviceEvent::SendRequest { id, request: req });
        Ok(flow)
    }

    /// The current polling interval in seconds.
    #[must_use]
    pub fn interval(&self) -> u64 {
        self.interval
    }

    /// Whether the flow has ended (completed or failed).
    #[must_use]
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The answer to a [`DeviceEvent::SendRequest`].
    pub fn handle_response(
        &mut self,
        now: u64,
        id: RequestId,
        result: Result<HttpResponse, TransportError>,
    ) {
        match self.state {
            State::Authorizing { request } if request == id => self.authorized(now, result),
            State::Polling { request } if request == id => self.polled(now, result),
            _ => {}
        }
    }

    /// A deadline passed (early calls are harmless).
    pub fn handle_timeout(&mut self, now: u64) {
        if matches!(self.state, State::Done) {
            return;
        }
        if now >= self.deadline {
            self.fail(DeviceFlowError::Expired);
            return;
        }
        if let State::Sleeping { until } = self.state
            && now >= until
        {
            let Some(code) = &self.device_code else {
                return;
            };
            match request::device_token(&self.profile, code) {
                Ok(req) => {
                    let id = self.id();
                    self.state = State::Polling { request: id };
                    self.events
                        .push_back(DeviceEvent::SendRequest { id, request: req });
                }
                Err(e) => self.fail(DeviceFlowError::Profile(e)),
            }
        }
    }

    /// When [`DeviceFlow::handle_timeout`] is next due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        match self.state {
            State::Sleeping { until } => Some(until.min(self.deadline)),
            State::Authorizing { .. } | State::Polling { .. } => Some(self.deadline),
            State::Done => None,
        }
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<DeviceEvent> {
        self.events.pop_front()
    }

    fn id(&mut self) -> RequestId {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        id
    }

    fn fail(&mut self, e: DeviceFlowError) {
        self.state = State::Done;
        self.device_code = None;
        self.events.push_back(DeviceEvent::Failed(e));
    }

    fn sleep(&mut self, now: u64) {
        self.state = State::Sleeping {
            until: now.saturating_add(self.interval),
        };
    }

    fn transient(&mut self, now: u64) {
        self.failures = self.failures.saturating_add(1);
        let backoff = self
            .interval
            .saturating_mul(1 << self.failures.min(4))
            .min(MAX_INTERVAL.max(self.interval));
        self.state = State::Sleeping {
            until: now.saturating_add(backoff),
        };
    }

    fn authorized(&mut self, now: u64, result: Result<HttpResponse, TransportError>) {
        let resp = match result {
            Ok(r) => r,
            Err(e) => return self.fail(DeviceFlowError::Refused(TokenError::Transport(e))),
        };
        if !(200..300).contains(&resp.status) {
            let e = response::parse_token_response(&resp, now, &self.profile.response)
                .err()
                .unwrap_or(TokenError::Status {
                    status: resp.status,
                    retry_after: None,
                });
            return self.fail(DeviceFlowError::Refused(e));
        }
        match parse_device_authorization(&resp.body, now) {
            Ok((code, user, interval)) => {
                self.device_code = Some(code);
                self.interval = interval;
                self.deadline = user.expires_at;
                self.events.push_back(DeviceEvent::ShowCode(user));
                self.sleep(now);
            }
            Err(reason) => self.fail(DeviceFlowError::Malformed { reason }),
        }
    }

    fn polled(&mut self, now: u64, result: Result<HttpResponse, TransportError>) {
        let parsed = match result {
            Ok(resp) => response::parse_token_response(&resp, now, &self.profile.response),
            Err(e) => Err(TokenError::Transport(e)),
        };
        match parsed {
            Ok(tokens) => {
                self.state = State::Done;
                self.device_code = None;
                self.events
                    .push_back(DeviceEvent::Completed(Box::new(tokens)));
            }
            Err(TokenError::OAuth { ref error, .. }) if error == "authorization_pending" => {
                self.failures = 0;
                self.sleep(now);
            }
            Err(TokenError::OAuth { ref error, .. }) if error == "slow_down" => {
                self.interval = self.interval.saturating_add(5);
                self.sleep(now);
            }
            Err(TokenError::OAuth { ref error, .. }) if error == "access_denied" => {
                self.fail(DeviceFlowError::Denied);
            }
            Err(TokenError::OAuth { ref error, .. }) if error == "expired_token" => {
                self.fail(DeviceFlowError::Expired);
            }
            Err(e) if e.class() == ErrorClass::Transient => self.transient(now),
            Err(e) => self.fail(DeviceFlowError::Refused(e)),
        }
    }
}

/// Parses RFC 8628 §3.2: `device_code`, `user_code`, `verification_uri` (Google's
/// `verification_url` accepted), `verification_uri_complete`, `expires_in`, `interval`.
fn parse_device_authorization(body: &[u8], now: u64) -> Result<(Secret, UserCode, u64), String> {
    if body.len() > response::MAX_BODY {
        return Err("body too large".to_owned());
    }
    let v: Value = serde_json::from_slice(body).map_err(|_| "the body is not JSON".to_owned())?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let n = |k: &str| match v.get(k) {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    let device_code = s("device_code").ok_or("`device_code` is missing")?;
    let user_code = s("user_code").ok_or("`user_code` is missing")?;
    let verification_uri = s("verification_uri")
        .or_else(|| s("verification_url"))
        .ok_or("`verification_uri` is missing")?;
    let expires_in = n("expires_in").ok_or("`expires_in` is missing or not a number")?;
    let interval = n("interval")
        .unwrap_or(DEFAULT_INTERVAL)
        .clamp(1, MAX_SERVER_INTERVAL);
    Ok((
        Secret::new(device_code),
        UserCode {
            user_code: user_code.to_owned(),
            verification_uri: verification_uri.to_owned(),
            verification_uri_complete: s("verification_uri_complete").map(str::to_owned),
            expires_at: now.saturating_add(expires_in.min(86_400)),
        },
        interval,
    ))
}

#[cfg(test)]
mod tests;
