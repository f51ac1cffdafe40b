//! The runtime's `TokenKeeper` against the provider: one opened on a scratch state
//! directory with the profile from discovery, its application events recorded, a plain read
//! of its state file (what another process would see), and a way to keep its timers running
//! while a test waits for something.

use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use latchkey_oauth_core::profile::Profile;
use latchkey_oauth_core::session::{Event, SessionConfig, Snapshot};

use super::Env;
use crate::rt::http::{HttpClient, HttpConfig, Roots};
use crate::rt::keeper::{Observer, TokenKeeper, state_file_name};
use crate::rt::state::StateDir;

/// The profile every interop keeper uses (`Env::profile`), which names the state file.
pub(crate) const PROVIDER: &str = "generic";

/// The state file's name in the state directory.
pub(crate) fn state_file() -> String {
    state_file_name(PROVIDER)
}

/// The application events a keeper emitted, in order (never effects, which hold secrets).
#[derive(Debug, Clone, Default)]
pub(crate) struct Recorded(Arc<Mutex<Vec<Event>>>);

impl Recorded {
    /// An observer appending to this record.
    pub(crate) fn observer(&self) -> Observer {
        let events = Arc::clone(&self.0);
        Box::new(move |event: &Event| {
            events
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(event.clone());
        })
    }

    /// The events so far.
    pub(crate) fn events(&self) -> Vec<Event> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Events matching `f`.
    pub(crate) fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events().iter().filter(|e| f(e)).count()
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
}

/// The session configuration of the interop keepers: the profile's rules with a short
/// backoff (5-second tokens), then `tune`.
pub(crate) fn config(profile: &Profile, tune: impl FnOnce(&mut SessionConfig)) -> SessionConfig {
    let mut config = SessionConfig::from_profile(profile);
    config.backoff.initial = 1;
    config.backoff.max = 2;
    tune(&mut config);
    config
}

/// An HTTPS client for the provider with the given limits. A keeper's refresh lease (how
/// long a process that restarts after a crash waits for the dead one's refresh) is
/// `connect + read + 5 s` at least, so short limits keep restart tests short.
pub(crate) fn client_with_limits(env: &Env, connect: Duration, read: Duration) -> HttpClient {
    let mut http = HttpConfig::default();
    http.roots = Roots::Pem(env.ca_pem.clone());
    http.connect_timeout = connect;
    http.read_timeout = read;
    HttpClient::new(http).expect("HTTPS client for the provider")
}

/// Opens the keeper of `dir` (creating the directory), recording its events in `recorded`.
pub(crate) async fn open(
    profile: &Profile,
    config: SessionConfig,
    client: &HttpClient,
    dir: &Path,
    recorded: &Recorded,
) -> TokenKeeper {
    let state = StateDir::open(dir).await.expect("state dir");
    TokenKeeper::open(profile.clone(), config, state, client.clone())
        .await
        .unwrap_or_else(|e| panic!("open the keeper: {e}"))
        .with_observer(recorded.observer())
}

/// The snapshot in `dir`'s state file, read as another process would.
pub(crate) fn on_disk(dir: &Path) -> Option<Snapshot> {
    let path = dir.join(state_file());
    match std::fs::read(&path) {
        Ok(bytes) => {
            Some(Snapshot::from_json(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("read {}: {e}", path.display()),
    }
}

/// Runs `fut` to completion while `keeper`'s timer loop ([`TokenKeeper::run`]) runs beside
/// it on the same task, and returns `fut`'s output. The loop stops with it.
pub(crate) async fn while_running<T>(keeper: &TokenKeeper, fut: impl Future<Output = T>) -> T {
    let mut fut = pin!(fut);
    let mut run = pin!(keeper.run());
    let mut run_done = false;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(out);
        }
        if !run_done {
            // `run` never returns; should it, `fut` alone decides.
            run_done = run.as_mut().poll(cx).is_ready();
        }
        Poll::Pending
    })
    .await
}
