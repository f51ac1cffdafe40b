//! kill -9 of a process whose `TokenKeeper` is in the middle of a refresh, against
//! oidc-provider, then a restart on the same state file.
//!
//! The provider holds the child's refresh request (admin `POST /hold`), so the test kills the
//! child exactly while the refresh is in flight — the request parked at the provider, the
//! in-flight marker on disk. Two outcomes, each what the core is designed to do:
//!
//! * the held request is dropped unprocessed: the persisted refresh token is still good, and
//!   the restarted keeper, once the dead process's lease has run out, refreshes with it — new
//!   tokens, no login;
//! * the provider processed the request (the refresh token rotated) but the child died before
//!   saving the answer: the persisted refresh token is spent, using it trips oidc-provider's
//!   reuse detection, which revokes the grant, and the restarted keeper asks for a login
//!   exactly once, persisted, and sends nothing more.
//!
//! The child is this test binary run again, limited to [`child_keeper_process`], which opens
//! a keeper on the state directory named by [`CHILD_STATE_ENV`] and keeps it running until it
//! is killed: the same code on every runtime.
//!
//! Ignored in a plain `cargo test`; `interop/oidc.sh` runs them with `--include-ignored`.
//! Without the provider they fail, never pass by skipping.
//!
//! Shared cases: run on every runtime through `crate::rt`.

use std::path::Path;
use std::time::Duration;

use latchkey_oauth_core::profile::Profile;
use latchkey_oauth_core::session::{Event, Grant, Phase, SessionConfig, Snapshot, TokenSource};

use crate::oidc::keeper::{self, Recorded};
use crate::oidc::process::{Process, reexec, test_name};
use crate::oidc::{
    ACCESS_TTL, Admin, Deadline, Env, Hold, browser, exclusive, scratch, wall_clock,
};
use crate::rt::block_on;
use crate::rt::keeper::KeeperError;
use crate::rt::sleep;

/// Names the state directory of [`child_keeper_process`]; without it that function does
/// nothing.
const CHILD_STATE_ENV: &str = "LATCHKEY_INTEROP_CHILD_STATE";
/// A child nobody kills ends itself after this long.
const CHILD_LIFETIME: Duration = Duration::from_secs(60);
/// Both keepers' HTTP limits. A refresh lease — how long a process that finds another
/// process's in-flight marker waits before it takes over — is the longer of the two
/// processes' request timeouts (the marker records the holder's), which the keeper raises
/// to `connect + read + 5 s` ([`restart_config`] asks for less), plus 5 s for the holder's
/// marker write.
const CONNECT: Duration = Duration::from_secs(2);
const READ: Duration = Duration::from_secs(4);
const LEASE: Duration = Duration::from_secs(2 + 4 + 5 + 5);

/// The restarted keeper's configuration: no proactive refresh (only what the restart
/// itself does), and the shortest lease its HTTP limits allow ([`LEASE`]).
fn restart_config(profile: &Profile) -> SessionConfig {
    keeper::config(profile, |c| {
        c.keep_fresh = false;
        c.request_timeout = 1;
    })
}

/// Not a test: the body of the child process the kill -9 tests start (see the module
/// docs). Returns at once unless [`CHILD_STATE_ENV`] is set.
#[test]
#[ignore = "the kill -9 tests' child process; a no-op without LATCHKEY_INTEROP_CHILD_STATE"]
fn child_keeper_process() {
    let Some(dir) = std::env::var_os(CHILD_STATE_ENV) else {
        return;
    };
    let env = Env::from_env();
    block_on(async {
        let client = keeper::client_with_limits(&env, CONNECT, READ);
        let profile = env.profile(&client).await;
        // Proactive refresh on (the default): the 5-second token is refreshed at half-life.
        let config = keeper::config(&profile, |_| {});
        let keeper = keeper::open(
            &profile,
            config,
            &client,
            Path::new(&dir),
            &Recorded::default(),
        )
        .await;
        keeper::while_running(&keeper, sleep(CHILD_LIFETIME)).await;
    });
    panic!("the child was not killed within {CHILD_LIFETIME:?}");
}

/// What the test saw when it killed the child.
struct Killed {
    /// The login's snapshot, before the child started.
    login: Snapshot,
    /// The snapshot on disk at the kill: the in-flight marker.
    marked: Snapshot,
}

/// Logs `account` in, starts the child keeper while the provider holds refresh requests at
/// `stage`, and kills it with SIGKILL once its refresh is parked at the provider and its
/// in-flight marker is on disk; then releases the held request with its connection closed.
async fn kill_the_child_during_its_refresh(
    env: &Env,
    admin: &Admin,
    profile: &Profile,
    dir: &Path,
    stage: Hold,
    account: &str,
) -> Killed {
    let client = env.client();
    let tokens = browser::login(env, &client, profile, account).await;
    {
        let config = keeper::config(profile, |c| c.keep_fresh = false);
        let k = keeper::open(profile, config, &client, dir, &Recorded::default()).await;
        k.login(tokens, Grant::RefreshToken)
            .await
            .unwrap_or_else(|e| panic!("store the login: {e}"));
    }
    let login = keeper::on_disk(dir).expect("the login is on disk");
    let login_refresh = login
        .refresh_token
        .as_ref()
        .expect("the login has a refresh token")
        .fingerprint();
    admin.reset().await;
    admin.hold(stage).await;

    let mut command = reexec(&test_name(module_path!(), "child_keeper_process"));
    command.env(CHILD_STATE_ENV, dir);
    let mut child = Process::spawn("the keeper child", command, false);
    let deadline = Deadline::new(
        Duration::from_secs(6 * ACCESS_TTL),
        "the child's refresh to be held at the provider with its in-flight marker on disk",
    );
    let marked = loop {
        let stats = admin.stats().await;
        let disk = keeper::on_disk(dir);
        let marked = disk.as_ref().is_some_and(|s| s.refresh_in_flight.is_some());
        if stats.parked == 1 && marked {
            break disk.expect("checked");
        }
        assert!(
            child.running(),
            "the child ended before its refresh was held; stderr:\n{}",
            child.stderr()
        );
        deadline
            .tick(&format!("{stats:?}, marker on disk: {marked}"))
            .await;
    };
    child.kill_9();

    let in_flight = marked.refresh_in_flight.as_ref().expect("checked");
    assert_eq!(
        in_flight.refresh_token, login_refresh,
        "the marker names the refresh token being spent"
    );
    assert!(in_flight.started_at <= wall_clock());
    assert_eq!(marked.generation, login.generation, "no new tokens saved");
    assert_eq!(marked.refresh_token, login.refresh_token);

    admin.release(true).await;
    let stats = admin.stats().await;
    assert_eq!(stats.parked, 0, "{stats:?}");
    assert_eq!(stats.dropped, 1, "{stats:?}");
    Killed { login, marked }
}

#[test]
#[ignore = "needs interop/oidc.sh (oidc-provider)"]
fn kill_9_while_the_refresh_is_held_unprocessed_then_a_restart_refreshes_without_a_login() {
    let _serial = exclusive();
    let env = Env::from_env();
    let dir = scratch("kill9-unprocessed");
    block_on(async {
        let admin = env.admin();
        admin.fresh().await;
        let profile = env.profile(&env.client()).await;
        let killed =
            kill_the_child_during_its_refresh(&env, &admin, &profile, &dir, Hold::Before, "ivan")
                .await;
        let stats = admin.stats().await;
        assert_eq!(
            stats.grants("refresh_token"),
            0,
            "the dropped request never reached oidc-provider: {stats:?}"
        );

        // The restart: a new process's keeper on the same state file.
        let recorded = Recorded::default();
        let client = keeper::client_with_limits(&env, CONNECT, READ);
        let restarted =
            keeper::open(&profile, restart_config(&profile), &client, &dir, &recorded).await;
        assert_eq!(
            restarted.status().state,
            Phase::WaitingForOtherProcess,
            "the dead process's marker is respected as a lease first"
        );
        let status = keeper::while_running(&restarted, async {
            let deadline = Deadline::new(
                LEASE + Duration::from_secs(20),
                "the restarted keeper to recover",
            );
            loop {
                let status = restarted.status();
                if status.generation > killed.login.generation
                    || status.state == Phase::ReauthRequired
                {
                    break status;
                }
                deadline.tick(&format!("{status:?}")).await;
            }
        })
        .await;
        assert_eq!(status.state, Phase::Ready, "{status:?}");
        assert_eq!(status.generation, killed.login.generation + 1);
        let marked_at = killed
            .marked
            .refresh_in_flight
            .as_ref()
            .expect("marker")
            .started_at;
        assert!(
            status.last_refresh_at >= Some(marked_at + LEASE.as_secs()),
            "the restart waited out the dead process's lease ({LEASE:?} from {marked_at}): \
             {status:?}"
        );
        assert_eq!(recorded.reauth(), 0, "{:?}", recorded.events());
        assert_eq!(recorded.failed(), 0, "{:?}", recorded.events());
        let refreshes: Vec<Event> = recorded
            .events()
            .into_iter()
            .filter(|e| matches!(e, Event::TokenRefreshed { .. }))
            .collect();
        assert!(
            matches!(
                refreshes.as_slice(),
                [Event::TokenRefreshed {
                    rotated: true,
                    source: TokenSource::Refresh,
                    ..
                }]
            ),
            "one refresh of its own, rotated: {refreshes:?}"
        );

        let disk = keeper::on_disk(&dir).expect("snapshot");
        assert!(disk.refresh_in_flight.is_none(), "the marker is cleared");
        assert!(disk.reauth_required.is_none());
        assert_eq!(disk.generation, killed.login.generation + 1);
        assert!(disk.revision > killed.marked.revision);
        assert_ne!(
            disk.refresh_token, killed.login.refresh_token,
            "the provider rotated the refresh token"
        );

        let stats = admin.stats().await;
        assert_eq!(
            stats.grants("refresh_token"),
            1,
            "exactly the restart's refresh reached the provider: {stats:?}"
        );
        assert_eq!(stats.errors.values().sum::<u64>(), 0, "{stats:?}");

        let (token, _) = restarted
            .access_token()
            .await
            .unwrap_or_else(|e| panic!("a token after the restart: {e}"));
        let me = env.userinfo(&env.client(), token.expose()).await;
        assert_eq!(me.status, 200, "the recovered token works");
        let claims: serde_json::Value = serde_json::from_slice(&me.body).expect("userinfo JSON");
        assert_eq!(claims["sub"], "ivan");
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs interop/oidc.sh (oidc-provider)"]
fn kill_9_after_the_provider_rotated_but_before_the_save_asks_for_a_login_exactly_once() {
    let _serial = exclusive();
    let env = Env::from_env();
    let dir = scratch("kill9-rotated");
    block_on(async {
        let admin = env.admin();
        admin.fresh().await;
        let profile = env.profile(&env.client()).await;
        let killed =
            kill_the_child_during_its_refresh(&env, &admin, &profile, &dir, Hold::After, "judy")
                .await;
        let stats = admin.stats().await;
        assert_eq!(
            stats.grants("refresh_token"),
            1,
            "oidc-provider processed the child's refresh: {stats:?}"
        );
        assert_eq!(stats.errors.values().sum::<u64>(), 0, "{stats:?}");

        // The restart finds the marker and the spent refresh token.
        let recorded = Recorded::default();
        let client = keeper::client_with_limits(&env, CONNECT, READ);
        let restarted =
            keeper::open(&profile, restart_config(&profile), &client, &dir, &recorded).await;
        assert_eq!(restarted.status().state, Phase::WaitingForOtherProcess);
        let status = keeper::while_running(&restarted, async {
            let deadline = Deadline::new(
                LEASE + Duration::from_secs(20),
                "the restarted keeper to learn that its refresh token is spent",
            );
            loop {
                let status = restarted.status();
                if status.state == Phase::ReauthRequired
                    || status.generation > killed.login.generation
                {
                    break status;
                }
                deadline.tick(&format!("{status:?}")).await;
            }
        })
        .await;
        assert_eq!(status.state, Phase::ReauthRequired, "{status:?}");
        let reason = status.reauth_reason.clone().unwrap_or_default();
        assert!(reason.contains("invalid_grant"), "{reason}");
        assert_eq!(recorded.refreshed(), 0, "{:?}", recorded.events());
        assert_eq!(recorded.failed(), 0, "invalid_grant is not transient");

        let stats = admin.stats().await;
        assert_eq!(
            stats.grants("refresh_token"),
            2,
            "the child's refresh and the restart's one: {stats:?}"
        );
        assert_eq!(stats.errors("invalid_grant"), 1, "{stats:?}");

        let disk = keeper::on_disk(&dir).expect("snapshot");
        assert!(disk.reauth_required.is_some(), "reauth is persisted");
        assert!(disk.refresh_in_flight.is_none(), "the marker is cleared");
        assert_eq!(disk.refresh_token, killed.login.refresh_token);

        // No retry loop: the keeper keeps running and sends nothing more.
        keeper::while_running(&restarted, sleep(Duration::from_secs(3))).await;
        assert_eq!(recorded.reauth(), 1, "{:?}", recorded.events());
        let after = admin.stats().await;
        assert_eq!(
            after.grant_types, stats.grant_types,
            "nothing more was sent"
        );
        assert!(matches!(
            restarted.access_token().await,
            Err(KeeperError::ReauthRequired(_))
        ));

        // Another restart knows from the file alone: a login is needed, nothing is sent.
        let recorded = Recorded::default();
        let again =
            keeper::open(&profile, restart_config(&profile), &client, &dir, &recorded).await;
        assert_eq!(again.status().state, Phase::ReauthRequired);
        assert!(matches!(
            again.access_token().await,
            Err(KeeperError::ReauthRequired(_))
        ));
        assert_eq!(
            admin.stats().await.grant_types,
            stats.grant_types,
            "a dead session sends nothing"
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
}
