//! Single flight against oidc-provider: ten threads, each on its own runtime, ask one
//! `TokenKeeper` for a token the moment it has expired. The provider holds the refresh
//! (admin `POST /hold`) until all ten are waiting, so they really overlap the refresh; it
//! counts exactly one refresh request, and all ten get its token.
//!
//! Ignored in a plain `cargo test`; `interop/oidc.sh` runs it with `--include-ignored`.
//! Without the provider it fails, never passes by skipping.
//!
//! Shared cases: run on every runtime through `crate::rt`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use latchkey_oauth_core::session::{Grant, Phase};

use crate::oidc::keeper::{self, Recorded};
use crate::oidc::{ACCESS_TTL, Deadline, Env, Hold, browser, exclusive, scratch};
use crate::rt::block_on;

const CALLERS: usize = 10;

#[test]
#[ignore = "needs interop/oidc.sh (oidc-provider)"]
fn ten_concurrent_callers_at_expiry_make_exactly_one_refresh_request_at_the_provider() {
    let _serial = exclusive();
    let env = Env::from_env();
    let dir = scratch("single-flight");
    let admin = env.admin();
    let client = env.client();
    let recorded = Recorded::default();
    let (keeper, expired_generation) = block_on(async {
        admin.fresh().await;
        let profile = env.profile(&client).await;
        // No proactive refresh: the token is left to expire, so the callers must refresh.
        let config = keeper::config(&profile, |c| c.keep_fresh = false);
        let keeper = keeper::open(&profile, config, &client, &dir, &recorded).await;
        let tokens = browser::login(&env, &client, &profile, "mallory").await;
        keeper
            .login(tokens, Grant::RefreshToken)
            .await
            .unwrap_or_else(|e| panic!("store the login: {e}"));
        let deadline = Deadline::new(
            Duration::from_secs(3 * ACCESS_TTL),
            "the login's token to expire",
        );
        while keeper.status().token_valid {
            deadline.tick(&format!("{:?}", keeper.status())).await;
        }
        let generation = keeper.status().generation;
        admin.reset().await;
        admin.hold(Hold::Before).await;
        (keeper, generation)
    });

    let start = Arc::new(Barrier::new(CALLERS + 1));
    let entered = Arc::new(AtomicUsize::new(0));
    let returned = Arc::new(AtomicUsize::new(0));
    let (answers, received) = mpsc::channel();
    for _ in 0..CALLERS {
        let keeper = keeper.clone();
        let start = Arc::clone(&start);
        let entered = Arc::clone(&entered);
        let returned = Arc::clone(&returned);
        let answers = answers.clone();
        std::thread::spawn(move || {
            start.wait();
            entered.fetch_add(1, Ordering::SeqCst);
            let answer = block_on(keeper.access_token())
                .map(|(token, generation)| (token.fingerprint(), generation))
                .map_err(|e| e.to_string());
            returned.fetch_add(1, Ordering::SeqCst);
            let _ = answers.send(answer);
        });
    }
    drop(answers);
    start.wait();

    block_on(async {
        let stats = admin
            .wait_for(
                Duration::from_secs(20),
                "one refresh request held at the provider",
                |s| s.parked >= 1,
            )
            .await;
        assert_eq!(stats.parked, 1, "{stats:?}");
        let deadline = Deadline::new(Duration::from_secs(10), "all callers to ask");
        while entered.load(Ordering::SeqCst) < CALLERS {
            deadline.tick("callers still starting").await;
        }
        assert_eq!(
            returned.load(Ordering::SeqCst),
            0,
            "a caller got an answer while the only refresh was held"
        );
        assert_eq!(keeper.status().state, Phase::Refreshing);
        let stats = admin.stats().await;
        assert_eq!(
            stats.parked, 1,
            "ten waiting callers, one request: {stats:?}"
        );
        admin.release(false).await;
    });

    let end = Instant::now() + Duration::from_secs(30);
    let mut results = Vec::new();
    for _ in 0..CALLERS {
        let left = end.saturating_duration_since(Instant::now());
        let answer = received
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("{} of {CALLERS} callers answered: {e}", results.len()));
        results.push(answer.unwrap_or_else(|e| panic!("a caller got no token: {e}")));
    }
    let (fingerprint, generation) = results[0].clone();
    assert_eq!(generation, expired_generation + 1, "the refreshed token");
    assert!(
        results
            .iter()
            .all(|r| *r == (fingerprint.clone(), generation)),
        "every caller got the one refreshed token: {results:?}"
    );

    block_on(async {
        let stats = admin.stats().await;
        assert_eq!(
            stats.grants("refresh_token"),
            1,
            "exactly one refresh request reached the provider: {stats:?}"
        );
        assert_eq!(stats.parked, 0);
        assert_eq!(stats.errors.values().sum::<u64>(), 0, "{stats:?}");
        assert_eq!(recorded.refreshed(), 1, "{:?}", recorded.events());
        let (token, _) = keeper.access_token().await.expect("a token");
        assert_eq!(token.fingerprint(), fingerprint);
        assert_eq!(env.userinfo(&client, token.expose()).await.status, 200);
    });
    let _ = std::fs::remove_dir_all(&dir);
}
