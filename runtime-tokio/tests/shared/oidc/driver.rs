//! A small `TokenSession` driver for the interop tests, written from the crate docs' driver
//! loop: the virtual clock is the real wall clock, requests go over the runtime's
//! `HttpClient`, snapshots go to a real `StateDir` with compare-and-swap on the revision,
//! and the loop sleeps until `poll_timeout()`.
//!
//! It records every event, and every request it sent, so tests can compare what the
//! session did with what the provider counted.

use std::time::{Duration, Instant};

use latchkey_oauth_core::form;
use latchkey_oauth_core::profile::Profile;
use latchkey_oauth_core::response::TokenResponse;
use latchkey_oauth_core::secret::Secret;
use latchkey_oauth_core::session::{
    Event, Grant, SessionConfig, Snapshot, TokenAnswer, TokenSession,
};

use super::{os_random_u64, until_wall, wall_clock};
use crate::rt::http::HttpClient;
use crate::rt::sleep;
use crate::rt::state::StateDir;

/// The state file's name in the state directory.
pub(crate) const STATE_FILE: &str = "tokens.json";
/// Longest single sleep of the loop, so predicates are re-checked at least this often.
const MAX_NAP: Duration = Duration::from_millis(500);

/// A session, its state directory and what happened to it.
#[derive(Debug)]
pub(crate) struct Driver {
    pub(crate) session: TokenSession,
    pub(crate) client: HttpClient,
    pub(crate) state: StateDir,
    /// Every event the session emitted, in order, with the wall-clock second it was seen.
    pub(crate) events: Vec<(u64, Event)>,
    /// The `grant_type` of every request sent to the token endpoint.
    pub(crate) sent: Vec<String>,
}

impl Driver {
    /// A new session (no tokens yet) persisting to `state`.
    pub(crate) fn new(
        profile: Profile,
        config: SessionConfig,
        client: HttpClient,
        state: StateDir,
    ) -> Driver {
        Driver {
            session: TokenSession::new(profile, config, os_random_u64()),
            client,
            state,
            events: Vec::new(),
            sent: Vec::new(),
        }
    }

    /// A session resumed from what `state` holds (panics if it holds nothing usable).
    pub(crate) async fn restore(
        profile: Profile,
        config: SessionConfig,
        client: HttpClient,
        state: StateDir,
    ) -> Driver {
        let snapshot = read_snapshot(&state)
            .await
            .expect("a persisted snapshot to restore");
        let session =
            TokenSession::restore(profile, config, os_random_u64(), snapshot, wall_clock())
                .unwrap_or_else(|e| panic!("restore: {e}"));
        Driver {
            session,
            client,
            state,
            events: Vec::new(),
            sent: Vec::new(),
        }
    }

    /// Hands a login's tokens to the session and performs the resulting effects.
    pub(crate) async fn login(&mut self, tokens: TokenResponse) {
        self.session
            .handle_login(wall_clock(), tokens, Grant::RefreshToken);
        self.pump().await;
    }

    /// Performs every effect the session asked for, until it asks for nothing more.
    pub(crate) async fn pump(&mut self) {
        while let Some(event) = self.session.poll_event() {
            let now = wall_clock();
            match &event {
                Event::Persist {
                    id,
                    expected_revision,
                    snapshot,
                } => {
                    let on_disk = read_snapshot(&self.state).await;
                    let current = on_disk.as_ref().map(|s| s.revision);
                    if expected_revision.is_some() && current != *expected_revision {
                        self.session.handle_persist_conflict(now, *id, on_disk);
                    } else {
                        match self.state.write(STATE_FILE, snapshot.to_json()).await {
                            Ok(()) => self.session.handle_persisted(wall_clock(), *id),
                            Err(e) => {
                                self.session.handle_persist_failed(
                                    wall_clock(),
                                    *id,
                                    &e.to_string(),
                                );
                            }
                        }
                    }
                }
                Event::SendRequest { id, request } => {
                    let body = String::from_utf8_lossy(&request.body);
                    let grant_type = form::decode(&body)
                        .into_iter()
                        .find(|(k, _)| k == "grant_type")
                        .map(|(_, v)| v)
                        .unwrap_or_default();
                    self.sent.push(grant_type);
                    let result = self.client.send(request).await;
                    self.session.handle_response(wall_clock(), *id, result);
                }
                Event::ReloadSnapshot => {
                    let on_disk = read_snapshot(&self.state).await;
                    self.session.handle_reloaded(now, on_disk);
                }
                _ => {}
            }
            self.events.push((now, event));
        }
    }

    /// Runs the loop (events, then sleep until `poll_timeout`, then `handle_timeout`) until
    /// `done` holds or `limit` passes; returns whether `done` held.
    pub(crate) async fn run_until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&Driver) -> bool,
    ) -> bool {
        let end = Instant::now() + limit;
        loop {
            self.pump().await;
            if done(self) {
                return true;
            }
            let now = Instant::now();
            if now >= end {
                return false;
            }
            let nap = self
                .session
                .poll_timeout()
                .map_or(MAX_NAP, until_wall)
                .min(MAX_NAP)
                .min(end - now);
            sleep(nap).await;
            self.session.handle_timeout(wall_clock());
        }
    }

    /// Runs the loop for `duration`.
    pub(crate) async fn run_for(&mut self, duration: Duration) {
        self.run_until(duration, |_| false).await;
    }

    /// What a caller asking for a token now would get: the token and its expiry, or why not.
    pub(crate) async fn token(&mut self) -> Result<(Secret, Option<u64>), String> {
        let answer = match self.session.access_token(wall_clock()) {
            TokenAnswer::Ready {
                token, expires_at, ..
            } => Ok((token.clone(), expires_at)),
            other => Err(format!("{other:?}")),
        };
        self.pump().await;
        answer
    }

    /// Events matching `f`.
    pub(crate) fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|(_, e)| f(e)).count()
    }

    /// `TokenRefreshed` events.
    pub(crate) fn refreshed(&self) -> usize {
        self.count(|e| matches!(e, Event::TokenRefreshed { .. }))
    }

    /// `RefreshFailed` events.
    pub(crate) fn failed(&self) -> usize {
        self.count(|e| matches!(e, Event::RefreshFailed { .. }))
    }

    /// `ReauthRequired` events.
    pub(crate) fn reauth(&self) -> usize {
        self.count(|e| matches!(e, Event::ReauthRequired { .. }))
    }

    /// Requests sent with `grant_type`.
    pub(crate) fn sent(&self, grant_type: &str) -> usize {
        self.sent.iter().filter(|g| *g == grant_type).count()
    }

    /// The snapshot on disk.
    pub(crate) async fn on_disk(&self) -> Option<Snapshot> {
        read_snapshot(&self.state).await
    }
}

/// The snapshot in `state`, if there is a readable one.
pub(crate) async fn read_snapshot(state: &StateDir) -> Option<Snapshot> {
    let bytes = state.read(STATE_FILE).await.expect("read the state file")?;
    Some(Snapshot::from_json(&bytes).unwrap_or_else(|e| panic!("state file: {e}")))
}
