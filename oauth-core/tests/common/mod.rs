//! A deterministic two-party harness: a `TokenSession` against a model authorization server
//! that rotates refresh tokens and revokes the whole grant when an old one is replayed
//! (RFC 9700 §4.14.2, as oidc-provider does), with a model state file (compare-and-swap on
//! the revision) and virtual time.

#![allow(dead_code, unreachable_pub)]

use std::collections::{HashMap, HashSet, VecDeque};

use latchkey_oauth_core::form;
use latchkey_oauth_core::http::{HttpRequest, HttpResponse, TransportError, TransportErrorKind};
use latchkey_oauth_core::profile::Profile;
use latchkey_oauth_core::response::parse_token_response;
use latchkey_oauth_core::session::{
    Event, Grant, PersistId, RequestId, SessionConfig, Snapshot, TokenAnswer, TokenSession,
};

/// The model authorization server.
#[derive(Debug)]
pub struct Server {
    pub lifetime: u64,
    pub rotate: bool,
    /// Current refresh token of each grant.
    pub live: HashMap<u64, String>,
    /// Refresh tokens already used, and their grant.
    pub spent: HashMap<String, u64>,
    pub revoked: HashSet<u64>,
    pub counter: u64,
    /// Refresh requests received.
    pub refreshes: u32,
    /// When each refresh request arrived.
    pub refresh_times: Vec<u64>,
    /// Answer 503 while set.
    pub down: bool,
    /// Leave `refresh_token` out of responses.
    pub omit_refresh_token: bool,
    /// Revoke the whole grant when a rotated refresh token is replayed (default true).
    pub revoke_on_reuse: bool,
    /// Access tokens issued, with their expiry.
    pub access: HashMap<String, u64>,
    /// Answer refreshes with a field the strict reading refuses (`scope` as an array) while
    /// still rotating the refresh token.
    pub odd_scope: bool,
}

impl Server {
    pub fn new(lifetime: u64) -> Self {
        Server {
            lifetime,
            rotate: true,
            live: HashMap::new(),
            spent: HashMap::new(),
            revoked: HashSet::new(),
            counter: 0,
            refreshes: 0,
            refresh_times: Vec::new(),
            down: false,
            omit_refresh_token: false,
            revoke_on_reuse: true,
            access: HashMap::new(),
            odd_scope: false,
        }
    }

    fn issue(&mut self, now: u64, grant: u64, with_rt: bool) -> String {
        self.counter += 1;
        let at = format!("at-{}", self.counter);
        self.access.insert(at.clone(), now + self.lifetime);
        let mut body = format!(
            r#"{{"access_token":"{at}","token_type":"Bearer","expires_in":{}"#,
            self.lifetime
        );
        if with_rt {
            let rt = format!("rt-{grant}-{}", self.counter);
            self.live.insert(grant, rt.clone());
            body.push_str(&format!(r#","refresh_token":"{rt}""#));
        }
        if self.odd_scope {
            body.push_str(r#","scope":["openid","offline_access"]"#);
        }
        body.push('}');
        body
    }

    /// A login: a new grant. Returns the token response body.
    pub fn login(&mut self, now: u64) -> HttpResponse {
        let grant = self.counter + 1000;
        HttpResponse::new(200, self.issue(now, grant, true))
    }

    /// Whether `rt` would be accepted now.
    pub fn accepts(&self, rt: &str) -> bool {
        self.live
            .iter()
            .any(|(g, live)| live == rt && !self.revoked.contains(g))
    }

    /// Whether the access token is valid at `now`.
    pub fn access_valid(&self, at: &str, now: u64) -> bool {
        self.access.get(at).is_some_and(|exp| now < *exp)
    }

    pub fn handle(&mut self, now: u64, req: &HttpRequest) -> HttpResponse {
        if self.down {
            return HttpResponse::new(503, "<html>maintenance</html>");
        }
        let fields = form::decode(std::str::from_utf8(&req.body).unwrap());
        let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        match get("grant_type").as_deref() {
            Some("refresh_token") => {
                self.refreshes += 1;
                self.refresh_times.push(now);
                let rt = get("refresh_token").unwrap_or_default();
                let grant = self
                    .live
                    .iter()
                    .find(|(_, live)| **live == rt)
                    .map(|(g, _)| *g);
                match grant {
                    Some(g) if !self.revoked.contains(&g) => {
                        if self.rotate && !self.omit_refresh_token {
                            self.spent.insert(rt, g);
                            HttpResponse::new(200, self.issue(now, g, true))
                        } else {
                            // No rotation: the old refresh token stays live.
                            HttpResponse::new(200, self.issue(now, g, false))
                        }
                    }
                    _ => {
                        if let Some(g) = self.spent.get(&rt).filter(|_| self.revoke_on_reuse) {
                            // Reuse of a rotated token: revoke the whole grant.
                            self.revoked.insert(*g);
                        }
                        HttpResponse::new(
                            400,
                            r#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#,
                        )
                    }
                }
            }
            _ => HttpResponse::new(400, r#"{"error":"unsupported_grant_type"}"#),
        }
    }
}

/// The test profile: a generic provider with a token endpoint.
pub fn profile() -> Profile {
    let mut p = Profile::builtin("generic")
        .unwrap()
        .with_client_id("client");
    p.endpoints.token = Some("https://idp.example/token".into());
    p
}

/// A write the session asked for and the rig has not performed yet.
#[derive(Debug, Clone)]
pub struct PendingWrite {
    pub id: PersistId,
    pub expected: Option<u64>,
    pub snapshot: Snapshot,
}

/// Session + server + state file + virtual clock.
#[derive(Debug)]
pub struct Rig {
    pub session: TokenSession,
    pub server: Server,
    pub disk: Option<Snapshot>,
    pub now: u64,
    pub requests: VecDeque<(RequestId, HttpRequest)>,
    pub responses: VecDeque<(RequestId, Result<HttpResponse, TransportError>)>,
    pub writes: VecDeque<PendingWrite>,
    pub events: Vec<Event>,
    /// Fail state-file writes while set.
    pub disk_full: bool,
    /// Drop the network (transport errors) while set.
    pub offline: bool,
    /// Answers the server gave that the session never received (cancelled after its
    /// deadline): the one case where a rotated refresh token is lost for good.
    pub lost_responses: usize,
}

pub const T0: u64 = 1_800_000_000;

impl Rig {
    pub fn new(lifetime: u64, config: SessionConfig, seed: u64) -> Self {
        Rig {
            session: TokenSession::new(profile(), config, seed),
            server: Server::new(lifetime),
            disk: None,
            now: T0,
            requests: VecDeque::new(),
            responses: VecDeque::new(),
            writes: VecDeque::new(),
            events: Vec::new(),
            disk_full: false,
            offline: false,
            lost_responses: 0,
        }
    }

    /// A rig already logged in, tokens persisted.
    pub fn logged_in(lifetime: u64, config: SessionConfig, seed: u64) -> Self {
        let mut rig = Rig::new(lifetime, config, seed);
        rig.login();
        rig.settle();
        rig
    }

    pub fn login(&mut self) {
        let resp = self.server.login(self.now);
        let tokens = parse_token_response(&resp, self.now, &profile().response).unwrap();
        self.session
            .handle_login(self.now, tokens, Grant::RefreshToken);
        self.collect();
    }

    /// Moves the session's events into the rig's queues.
    pub fn collect(&mut self) {
        while let Some(ev) = self.session.poll_event() {
            match &ev {
                Event::Persist {
                    id,
                    expected_revision,
                    snapshot,
                } => self.writes.push_back(PendingWrite {
                    id: *id,
                    expected: *expected_revision,
                    snapshot: (**snapshot).clone(),
                }),
                Event::SendRequest { id, request } => {
                    self.requests.push_back((*id, request.clone()));
                }
                Event::CancelRequest { id } => {
                    self.requests.retain(|(r, _)| r != id);
                    let before = self.responses.len();
                    self.responses.retain(|(r, _)| r != id);
                    // The server handled it but the answer never arrived.
                    self.lost_responses += before - self.responses.len();
                }
                Event::ReloadSnapshot => {
                    let disk = self.disk.clone();
                    self.events.push(ev.clone());
                    self.session.handle_reloaded(self.now, disk);
                    continue;
                }
                _ => {}
            }
            self.events.push(ev);
        }
    }

    /// Performs the oldest pending write (compare-and-swap on the revision).
    pub fn write_one(&mut self) -> bool {
        let Some(w) = self.writes.pop_front() else {
            return false;
        };
        if self.disk_full {
            self.session
                .handle_persist_failed(self.now, w.id, "No space left on device");
        } else if let Some(expected) = w.expected
            && self.disk.as_ref().map_or(0, |d| d.revision) != expected
        {
            let disk = self.disk.clone();
            self.session.handle_persist_conflict(self.now, w.id, disk);
        } else {
            self.disk = Some(w.snapshot);
            self.session.handle_persisted(self.now, w.id);
        }
        self.collect();
        true
    }

    /// The server handles the oldest request; the answer is queued for the session.
    pub fn serve_one(&mut self) -> bool {
        let Some((id, req)) = self.requests.pop_front() else {
            return false;
        };
        let result = if self.offline {
            Err(TransportError::new(
                TransportErrorKind::Connect,
                "connection refused",
            ))
        } else {
            Ok(self.server.handle(self.now, &req))
        };
        self.responses.push_back((id, result));
        true
    }

    /// The session receives the oldest answer.
    pub fn answer_one(&mut self) -> bool {
        let Some((id, result)) = self.responses.pop_front() else {
            return false;
        };
        self.session.handle_response(self.now, id, result);
        self.collect();
        true
    }

    /// Performs every queued write, request and answer until nothing is left.
    pub fn settle(&mut self) {
        loop {
            let progressed = self.write_one() || self.serve_one() || self.answer_one();
            if !progressed {
                break;
            }
        }
    }

    /// Advances virtual time to `t` (not past it), firing timeouts on the way and settling
    /// after each.
    pub fn run_until(&mut self, t: u64) {
        let mut guard = 0;
        loop {
            self.settle();
            match self.session.poll_timeout() {
                Some(d) if d <= t => {
                    self.now = self.now.max(d);
                    self.session.handle_timeout(self.now);
                    self.collect();
                }
                _ => break,
            }
            guard += 1;
            assert!(guard < 100_000, "timeouts do not converge");
        }
        self.now = self.now.max(t);
        self.session.handle_timeout(self.now);
        self.collect();
        self.settle();
    }

    /// The token a caller would get now, after letting any refresh finish.
    pub fn token_now(&mut self) -> Option<String> {
        for _ in 0..10 {
            match self.session.access_token(self.now) {
                TokenAnswer::Ready { token, .. } => return Some(token.expose().to_owned()),
                TokenAnswer::Wait => {
                    self.collect();
                    self.settle();
                    if self.requests.is_empty() && self.writes.is_empty() {
                        // Waiting on a timer (floor or lease): jump to it.
                        if let Some(t) = self.session.poll_timeout() {
                            self.run_until(t);
                        }
                    }
                }
                _ => return None,
            }
        }
        None
    }

    pub fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|e| f(e)).count()
    }

    pub fn refreshed_events(&self) -> usize {
        self.count(|e| matches!(e, Event::TokenRefreshed { .. }))
    }

    pub fn reauth_events(&self) -> usize {
        self.count(|e| matches!(e, Event::ReauthRequired { .. }))
    }

    /// Simulates a crash and restart: everything in memory and in flight is lost; a request
    /// already delivered to the server stays delivered.
    pub fn crash_and_restart(&mut self, config: SessionConfig, seed: u64) {
        self.requests.clear();
        self.responses.clear();
        self.writes.clear();
        match self.disk.clone() {
            Some(snap) => {
                self.session =
                    TokenSession::restore(profile(), config, seed, snap, self.now).unwrap();
            }
            None => self.session = TokenSession::new(profile(), config, seed),
        }
        self.collect();
    }
}
