//! The keeper's authorized-request helper against a real resource: oidc-provider's userinfo
//! endpoint (`/me`), which answers 401 for an access token the provider revoked (admin
//! `POST /revoke-access`) even though it has not expired. One 401 costs one refresh and
//! one retry with the new token; a second 401 in a row is handed back, not retried.
//!
//! The provider logs every `/me` request with its status and the fingerprint of the bearer
//! token it carried, so the test sees which token each request sent.
//!
//! Ignored in a plain `cargo test`; `interop/oidc.sh` runs it with `--include-ignored`.
//! Without the provider it fails, never passes by skipping.
//!
//! Shared cases: run on every runtime through `crate::rt`.

use latchkey_oauth_core::http::{HttpRequest, Method};
use latchkey_oauth_core::session::{Grant, Phase, Unauthorized};
use serde_json::Value;

use crate::oidc::keeper::{self, Recorded};
use crate::oidc::{Env, browser, exclusive, scratch, wall_clock};
use crate::rt::block_on;

#[test]
#[ignore = "needs interop/oidc.sh (oidc-provider)"]
fn a_revoked_unexpired_token_gets_one_refresh_and_one_retry_and_a_second_401_is_not_retried() {
    let _serial = exclusive();
    let env = Env::from_env();
    let dir = scratch("unauthorized");
    block_on(async {
        let admin = env.admin();
        admin.fresh().await;
        let client = env.client();
        let profile = env.profile(&client).await;
        let recorded = Recorded::default();
        // No proactive refresh, so every refresh counted below is the 401's. The provider's
        // tokens live 5 s, less than the default 30-s "just obtained" cooldown, which would
        // (rightly) refuse to refresh a token that young.
        let config = keeper::config(&profile, |c| {
            c.keep_fresh = false;
            c.unauthorized_cooldown = 0;
        });
        let keeper = keeper::open(&profile, config, &client, &dir, &recorded).await;
        let tokens = browser::login(&env, &client, &profile, "grace").await;
        keeper
            .login(tokens, Grant::RefreshToken)
            .await
            .unwrap_or_else(|e| panic!("store the login: {e}"));
        // A fresh 5-second token, so all that follows happens well before it expires.
        keeper
            .refresh()
            .await
            .unwrap_or_else(|e| panic!("manual refresh: {e}"));
        let (refused, refused_generation) = keeper.access_token().await.expect("a token");
        let me = HttpRequest::new(Method::Get, format!("{}/me", env.issuer));
        admin.reset().await;

        // The provider revokes the access token the keeper holds.
        let revoked = admin.revoke_access().await;
        assert!(revoked >= 1, "nothing to revoke");
        let status = keeper.status();
        assert!(
            status.token_valid && status.access_expires_at.is_some_and(|t| t > wall_clock()),
            "the refused token must still be unexpired: {status:?}"
        );

        let response = keeper
            .send_authorized(&me)
            .await
            .unwrap_or_else(|e| panic!("send_authorized: {e}"));
        assert_eq!(response.status, 200, "the retry succeeds");
        let claims: Value = serde_json::from_slice(&response.body).expect("userinfo JSON");
        assert_eq!(claims["sub"], "grace", "the user's claims: {claims}");

        let (fresh, fresh_generation) = keeper.access_token().await.expect("a token");
        assert_eq!(fresh_generation, refused_generation + 1);
        assert_ne!(fresh.fingerprint(), refused.fingerprint());
        let stats = admin.stats().await;
        assert_eq!(
            stats.grants("refresh_token"),
            1,
            "one refresh for the 401: {stats:?}"
        );
        assert_eq!(stats.errors.values().sum::<u64>(), 0, "{stats:?}");
        assert_eq!(
            stats.userinfo,
            [
                (401, Some(refused.fingerprint())),
                (200, Some(fresh.fingerprint())),
            ],
            "the refused token once, then the retry with the new token"
        );

        // The new token is revoked too: the 401 comes back to the caller, no second refresh,
        // no second request.
        assert!(admin.revoke_access().await >= 1);
        let response = keeper
            .send_authorized(&me)
            .await
            .unwrap_or_else(|e| panic!("send_authorized: {e}"));
        assert_eq!(response.status, 401, "a second 401 in a row is handed back");
        let stats = admin.stats().await;
        assert_eq!(
            stats.grants("refresh_token"),
            1,
            "no refresh for the second 401: {stats:?}"
        );
        assert_eq!(
            stats.userinfo[2..],
            [(401, Some(fresh.fingerprint()))],
            "sent once, not retried"
        );
        // Asked again, the keeper still says no: never a loop.
        assert!(matches!(
            keeper.unauthorized(fresh_generation),
            Unauthorized::GiveUp { .. }
        ));
        let status = keeper.status();
        assert_eq!(status.state, Phase::Ready);
        assert_eq!(status.generation, fresh_generation);
        assert_eq!(recorded.reauth(), 0);
        assert_eq!(admin.stats().await.grants("refresh_token"), 1);
    });
    let _ = std::fs::remove_dir_all(&dir);
}
