//! latchkey's OAuth core and HTTPS client against a real oidc-provider 9 on loopback:
//! discovery, a headless PKCE login, proactive refresh with rotation, refresh-token replay
//! revoking the grant, the device flow with `slow_down`, and an outage of the token endpoint.
//!
//! Every test is ignored in a plain `cargo test` (it needs the provider); `interop/oidc.sh`
//! starts it and runs them with `--include-ignored`. Asked to run without the provider,
//! they fail: they never pass by skipping.
//!
//! Shared cases: run on every runtime through `crate::rt`.

use std::time::Duration;

use latchkey_oauth_core::device::{DeviceEvent, DeviceFlow};
use latchkey_oauth_core::response::{ErrorClass, TokenError, parse_token_response};
use latchkey_oauth_core::session::{Event, SessionConfig, TokenSource};
use latchkey_oauth_core::{discovery, request};

use crate::oidc::browser::{self, Landing};
use crate::oidc::driver::Driver;
use crate::oidc::{
    ACCESS_TTL, CUSTOM_REDIRECT, DEVICE_GRANT, Env, exclusive, free_port, loopback_redirect,
    scratch, send, until_wall, wall_clock,
};
use crate::rt::block_on;
use crate::rt::sleep;
use crate::rt::state::StateDir;

/// A session configuration for 5-second tokens whose backoff stays short.
fn config(profile: &latchkey_oauth_core::profile::Profile) -> SessionConfig {
    let mut config = SessionConfig::from_profile(profile);
    config.backoff.initial = 1;
    config.backoff.max = 2;
    config
}

#[test]
#[ignore = "needs interop/oidc.sh (oidc-provider)"]
fn discovery_finds_the_endpoints() {
    let _serial = exclusive();
    let env = Env::from_env();
    block_on(async {
        env.admin().fresh().await;
        let client = env.client();
        let response = send(&client, &discovery::discovery_request(&env.issuer)).await;
        let endpoints = discovery::parse_discovery(&response, &env.issuer).expect("discovery");
        let at = |path: &str| Some(format!("{}{path}", env.issuer));
        assert_eq!(endpoints.authorization, at("/auth"));
        assert_eq!(endpoints.token, at("/token"));
        assert_eq!(endpoints.device_authorization, at("/device/auth"));
        // Another issuer's name is refused (OpenID Connect Discovery §4.3).
        let other = env.issuer.replace("127.0.0.1", "localhost");
        assert!(matches!(
            discovery::parse_discovery(&response, &other),
            Err(discovery::DiscoveryError::IssuerMismatch { .. })
        ));
    });
}

#[test]
#[ignore = "needs interop/oidc.sh (oidc-provider)"]
fn headless_login_on_a_loopback_redirect_uri_with_any_port() {
    let _serial = exclusive();
    let env = Env::from_env();
    block_on(async {
        env.admin().fresh().await;
        let client = env.client();
        let profile = env.profile(&client).await;
        let admin = env.admin();
        admin.reset().await;
        let redirect_uri = loopback_redirect(free_port());
        let authorized = browser::authorize(&env, &client, &profile, &redirect_uri, "alice").await;
        // RFC 9207: oidc-provider names itself in the redirect; the core hands it back as an
        // extra parameter.
        assert!(
            authorized
                .code
                .extra
                .iter()
                .any(|(k, v)| k == "iss" && *v == env.issuer),
            "no iss={} in the redirect's extra parameters",
            env.issuer
        );
        let before = wall_clock();
        let tokens = browser::exchange(&client, &profile, &authorized).await;
        assert_eq!(tokens.token_type, "Bearer");
        assert!(
            tokens.refresh_token.is_some(),
            "offline_access gave no refresh token"
        );
        assert!(tokens.id_token.is_some(), "openid gave no id_token");
        let expires_at = tokens.expires_at.expect("expires_in");
        assert!(
            (before + ACCESS_TTL..=wall_clock() + ACCESS_TTL).contains(&expires_at),
            "expires_at {expires_at} is not {ACCESS_TTL} s after the exchange"
        );
        let scope = tokens.scope.clone().unwrap_or_default();
        assert!(scope.split(' ').any(|s| s == "offline_access"), "{scope}");
        let me = env.userinfo(&client, tokens.access_token.expose()).await;
        assert_eq!(me.status, 200, "userinfo with the new access token");

        // The code is single use: a second exchange is invalid_grant (and oidc-provider
        // revokes what the code gave).
        let again = request::authorization_code(
            &profile,
            &authorized.code.code,
            authorized.request.pkce.as_ref(),
            &authorized.request.redirect_uri,
        )
        .expect("request");
        let refused = parse_token_response(
            &send(&client, &again).await,
            wall_clock(),
            &profile.response,
        )
        .expect_err("a reused code must be refused");
        assert_eq!(refused.class(), ErrorClass::InvalidGrant, "{refused}");
        let me = env.userinfo(&client, tokens.access_token.expose()).await;
        assert_eq!(
            me.status, 401,
            "the access token of a replayed code is revoked"
        );

        let stats = admin.stats().await;
        assert_eq!(stats.grants("authorization_code"), 2, "{stats:?}");
        assert_eq!(stats.errors("invalid_grant"), 1, "{stats:?}");
    });
}

#[test]
#[ignore = "needs interop/oidc.sh (oidc-provider)"]
fn headless_login_on_the_custom_scheme_redirect_uri() {
    let _serial = exclusive();
    let env = Env::from_env();
    block_on(async {
        env.admin().fresh().await;
        let client = env.client();
        let profile = env.profile(&client).await;
        let authorized = browser::authorize(&env, &client, &profile, CUSTOM_REDIRECT, "bob").await;
        assert!(
            authorized
                .redirect
                .starts_with("com.example.latchkey:/oauth2redirect?")
        );
        let tokens = browser::exchange(&client, &profile, &authorized).await;
        assert!(tokens.refresh_token.is_some());

        // A redirect URI the client did not register ends on the provider's error page,
        // never at that URI.
        let mut options = latchkey_oauth_core::authorize::AuthorizeOptions::default();
        options.redirect_uri = Some("https://attacker.example/callback".to_owned());
        let request = latchkey_oauth_core::authorize::authorization_request(
            &profile,
            &options,
            &mut crate::oidc::rng(),
        )
        .expect("request");
        let mut b = browser::Browser::new(&env, &client, browser::User::default());
        match b.walk(&request.url).await {
            Landing::Page { status, .. } => assert_eq!(status, 400),
            Landing::Redirect(to) => panic!("redirected to {}", crate::oidc::redact_url(&to)),
        }
    });
}

#[test]
#[ignore = "needs interop/oidc.sh (oidc-provider)"]
fn session_refreshes_proactively_and_the_provider_rotates_every_refresh_token() {
    let _serial = exclusive();
    let env = Env::from_env();
    let dir = scratch("rotation");
    block_on(async {
        env.admin().fresh().await;
        let client = env.client();
        let profile = env.profile(&client).await;
        let admin = env.admin();
        let tokens = browser::login(&env, &client, &profile, "carol").await;
        admin.reset().await;
        let state = StateDir::open(&dir).await.expect("state dir");
        let mut driver = Driver::new(profile.clone(), config(&profile), client.clone(), state);
        driver.login(tokens).await;
        assert_eq!(driver.count(|e| matches!(e, Event::TokenCreated { .. })), 1);
        let mut refresh_tokens = vec![
            driver
                .on_disk()
                .await
                .and_then(|s| s.refresh_token)
                .expect("refresh token on disk")
                .fingerprint(),
        ];
        for k in 1..=3 {
            let ok = driver
                .run_until(Duration::from_secs(4 * ACCESS_TTL), |d| d.refreshed() >= k)
                .await;
            assert!(ok, "refresh #{k} did not happen: {:#?}", driver.events);
            let snapshot = driver.on_disk().await.expect("snapshot");
            refresh_tokens.push(
                snapshot
                    .refresh_token
                    .as_ref()
                    .expect("refresh token on disk")
                    .fingerprint(),
            );
            let (token, expires_at) = driver.token().await.expect("a token between refreshes");
            assert!(expires_at.expect("expiry") > wall_clock());
            assert_eq!(env.userinfo(&client, token.expose()).await.status, 200);
        }
        let mut unique = refresh_tokens.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            refresh_tokens.len(),
            "a refresh token was not rotated"
        );

        // Proactive: each refresh happened while the previous token was still valid.
        let mut previous_expiry = None;
        for (seen, event) in &driver.events {
            match event {
                Event::TokenCreated { expires_at } => previous_expiry = *expires_at,
                Event::TokenRefreshed {
                    expires_at,
                    rotated,
                    source,
                } => {
                    assert!(rotated, "oidc-provider rotates on every use");
                    assert_eq!(*source, TokenSource::Refresh);
                    let before = previous_expiry.expect("an expiry before");
                    assert!(
                        *seen <= before,
                        "refreshed at {seen}, after expiry {before}"
                    );
                    previous_expiry = *expires_at;
                }
                _ => {}
            }
        }
        assert_eq!(driver.failed(), 0);
        assert_eq!(driver.reauth(), 0);

        let stats = admin.stats().await;
        let sent = driver.sent("refresh_token");
        assert!(sent >= 3);
        assert_eq!(sent, driver.refreshed(), "every refresh sent succeeded");
        assert_eq!(stats.grants("refresh_token"), sent as u64, "{stats:?}");
        assert_eq!(stats.errors.values().sum::<u64>(), 0, "{stats:?}");
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs interop/oidc.sh (oidc-provider)"]
fn replaying_a_rotated_refresh_token_revokes_the_grant_and_the_session_asks_for_a_login() {
    let _serial = exclusive();
    let env = Env::from_env();
    let dir = scratch("replay");
    block_on(async {
        env.admin().fresh().await;
        let client = env.client();
        let profile = env.profile(&client).await;
        let admin = env.admin();
        let tokens = browser::login(&env, &client, &profile, "dave").await;
        let first_refresh_token = tokens.refresh_token.clone().expect("refresh token");
        admin.reset().await;
        let state = StateDir::open(&dir).await.expect("state dir");
        let mut driver = Driver::new(profile.clone(), config(&profile), client.clone(), state);
        driver.login(tokens).await;
        let ok = driver
            .run_until(Duration::from_secs(4 * ACCESS_TTL), |d| d.refreshed() >= 1)
            .await;
        assert!(ok, "no refresh: {:#?}", driver.events);
        let (live_access, _) = driver.token().await.expect("a token");
        assert_eq!(
            env.userinfo(&client, live_access.expose()).await.status,
            200
        );

        // An attacker (or a confused second process) replays the spent refresh token.
        let replay = request::refresh(&profile, &first_refresh_token).expect("request");
        let response = send(&client, &replay).await;
        assert_eq!(response.status, 400);
        let refused = parse_token_response(&response, wall_clock(), &profile.response)
            .expect_err("replay refused");
        match &refused {
            TokenError::OAuth { error, .. } => assert_eq!(error, "invalid_grant"),
            other => panic!("expected invalid_grant, got {other}"),
        }
        assert_eq!(refused.class(), ErrorClass::InvalidGrant);
        // The whole grant is gone: the session's live access token too.
        assert_eq!(
            env.userinfo(&client, live_access.expose()).await.status,
            401
        );

        // The session's own, current refresh token is refused at its next refresh; it
        // re-reads the state file, finds no newer token, and asks for a login, once.
        let ok = driver
            .run_until(Duration::from_secs(4 * ACCESS_TTL), |d| d.reauth() >= 1)
            .await;
        assert!(ok, "no ReauthRequired: {:#?}", driver.events);
        assert!(
            driver.count(|e| matches!(e, Event::ReloadSnapshot)) >= 1,
            "invalid_grant must make the session re-read its state first"
        );
        driver.run_for(Duration::from_secs(2)).await;
        assert_eq!(driver.reauth(), 1);
        assert_eq!(
            driver.failed(),
            0,
            "invalid_grant is not a transient failure"
        );
        let answer = driver.token().await.expect_err("no token after revocation");
        assert!(answer.contains("ReauthRequired"), "{answer}");
        let snapshot = driver.on_disk().await.expect("snapshot");
        assert!(snapshot.reauth_required.is_some(), "reauth is persisted");

        // The rotated token on disk is dead too.
        let current = snapshot.refresh_token.clone().expect("refresh token kept");
        let response = send(
            &client,
            &request::refresh(&profile, &current).expect("request"),
        )
        .await;
        let refused =
            parse_token_response(&response, wall_clock(), &profile.response).expect_err("revoked");
        assert_eq!(refused.class(), ErrorClass::InvalidGrant, "{refused}");
        let stats = admin.stats().await;
        assert_eq!(
            stats.errors("invalid_grant"),
            3,
            "replay, session refresh, manual check: {stats:?}"
        );

        // After a restart the session still knows: one ReauthRequired, nothing sent.
        let state = StateDir::open(&dir).await.expect("state dir");
        let mut restarted =
            Driver::restore(profile.clone(), config(&profile), client.clone(), state).await;
        restarted.run_for(Duration::from_secs(2)).await;
        assert_eq!(restarted.reauth(), 1, "{:#?}", restarted.events);
        assert!(restarted.sent.is_empty(), "a dead session sends nothing");
        assert_eq!(
            admin.stats().await.grants("refresh_token"),
            stats.grants("refresh_token")
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs interop/oidc.sh (oidc-provider)"]
fn device_flow_slows_down_when_polled_early_and_completes_after_headless_approval() {
    let _serial = exclusive();
    let env = Env::from_env();
    let dir = scratch("device");
    block_on(async {
        env.admin().fresh().await;
        let client = env.client();
        let profile = env.profile(&client).await;
        let admin = env.admin();
        admin.reset().await;
        let mut flow = DeviceFlow::start(profile.clone(), wall_clock()).expect("device flow");
        let mut polls = 0;
        let mut slow_downs_seen = 0;
        let mut shown = None;
        let mut tokens = None;
        let mut early_poll_done = false;
        let mut approved = false;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while tokens.is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "device flow did not finish"
            );
            while let Some(event) = flow.poll_event() {
                match event {
                    DeviceEvent::SendRequest { id, request } => {
                        if request.body.windows(11).any(|w| w == b"device_code") {
                            polls += 1;
                        }
                        let before = flow.interval();
                        let result = client.send(&request).await;
                        flow.handle_response(wall_clock(), id, result);
                        if flow.interval() > before {
                            slow_downs_seen += 1;
                        }
                    }
                    DeviceEvent::ShowCode(code) => {
                        assert!(code.verification_uri.starts_with(&env.issuer));
                        shown = Some(code);
                    }
                    DeviceEvent::Completed(t) => tokens = Some(*t),
                    DeviceEvent::Failed(e) => panic!("device flow failed: {e}"),
                    other => panic!("unexpected {other:?}"),
                }
            }
            if tokens.is_some() {
                break;
            }
            let code = shown.as_ref().expect("a user code");
            if !early_poll_done {
                // Poll once at once, well before the interval: pretend the deadline came.
                early_poll_done = true;
                let due = flow.poll_timeout().expect("a poll is scheduled");
                assert!(due > wall_clock(), "the first poll is not due yet");
                flow.handle_timeout(due);
                continue;
            }
            if !approved {
                approved = true;
                let page = browser::approve_device(&env, &client, code, "erin").await;
                assert!(page.contains("Sign-in Success"), "{page}");
            }
            let due = flow.poll_timeout().expect("a poll is scheduled");
            sleep(until_wall(due)).await;
            flow.handle_timeout(wall_clock());
        }
        let tokens = tokens.expect("tokens");
        assert_eq!(slow_downs_seen, 1, "the early poll must get slow_down");
        assert_eq!(flow.interval(), 5 + 5, "RFC 8628 §3.5: slow_down adds 5 s");
        assert_eq!(polls, 2, "one early poll, one after approval");
        let stats = admin.stats().await;
        assert_eq!(stats.grants(DEVICE_GRANT), 2, "{stats:?}");
        assert_eq!(stats.errors("slow_down"), 1, "{stats:?}");
        assert_eq!(stats.errors("authorization_pending"), 0, "{stats:?}");
        assert!(
            tokens.refresh_token.is_some(),
            "the device grant gave no refresh token"
        );

        // The device flow's tokens keep a session like a browser login's do.
        let state = StateDir::open(&dir).await.expect("state dir");
        let mut driver = Driver::new(profile.clone(), config(&profile), client.clone(), state);
        driver.login(tokens).await;
        let ok = driver
            .run_until(Duration::from_secs(4 * ACCESS_TTL), |d| d.refreshed() >= 1)
            .await;
        assert!(ok, "no refresh: {:#?}", driver.events);
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs interop/oidc.sh (oidc-provider)"]
fn token_endpoint_outage_backs_off_serves_the_valid_token_and_recovers_without_a_login() {
    let _serial = exclusive();
    let env = Env::from_env();
    let dir = scratch("outage");
    block_on(async {
        env.admin().fresh().await;
        let client = env.client();
        let profile = env.profile(&client).await;
        let admin = env.admin();
        let tokens = browser::login(&env, &client, &profile, "frank").await;
        let state = StateDir::open(&dir).await.expect("state dir");
        let mut driver = Driver::new(profile.clone(), config(&profile), client.clone(), state);
        driver.login(tokens).await;
        let ok = driver
            .run_until(Duration::from_secs(4 * ACCESS_TTL), |d| d.refreshed() >= 1)
            .await;
        assert!(ok, "no refresh before the outage: {:#?}", driver.events);
        admin.reset().await;
        let sent_before = driver.sent("refresh_token");
        let refreshed_before = driver.refreshed();

        // 503 with Retry-After: 3 for the next few attempts.
        admin.down(Some(3)).await;
        let ok = driver
            .run_until(Duration::from_secs(3 * ACCESS_TTL), |d| d.failed() >= 1)
            .await;
        assert!(ok, "no RefreshFailed while down: {:#?}", driver.events);
        // The failed refresh was proactive: the current token is still served.
        let (token, expires_at) = driver
            .token()
            .await
            .expect("the valid token is served during the outage");
        assert!(expires_at.expect("expiry") > wall_clock());
        assert_eq!(env.userinfo(&client, token.expose()).await.status, 200);

        let ok = driver
            .run_until(Duration::from_secs(20), |d| d.failed() >= 3)
            .await;
        assert!(ok, "the session stopped retrying: {:#?}", driver.events);
        for (seen, event) in &driver.events {
            if let Event::RefreshFailed {
                error, retry_at, ..
            } = event
            {
                assert!(
                    matches!(error, TokenError::Status { status: 503, .. }),
                    "{error}"
                );
                assert_eq!(error.retry_after(), Some(3));
                assert!(
                    *retry_at >= seen + 2,
                    "Retry-After: 3 not honoured: failed at {seen}, retry at {retry_at}"
                );
            }
        }
        // By now the 5-second token has run out and nothing new could be had.
        let unavailable = driver.token().await.expect_err("no token while down");
        assert!(unavailable.contains("Unavailable"), "{unavailable}");

        admin.up().await;
        let ok = driver
            .run_until(Duration::from_secs(15), |d| {
                d.refreshed() > refreshed_before
            })
            .await;
        assert!(ok, "no recovery after the outage: {:#?}", driver.events);
        assert_eq!(driver.reauth(), 0, "an outage never asks for a login");
        let (token, _) = driver.token().await.expect("a token after recovery");
        assert_eq!(env.userinfo(&client, token.expose()).await.status, 200);

        let stats = admin.stats().await;
        let attempts = (driver.sent("refresh_token") - sent_before) as u64;
        assert_eq!(
            stats.unavailable("refresh_token"),
            driver.failed() as u64,
            "each RefreshFailed is one 503: {stats:?}"
        );
        assert_eq!(
            stats.unavailable("refresh_token") + stats.grants("refresh_token"),
            attempts,
            "{stats:?}"
        );
        assert!(!stats.down);
    });
    let _ = std::fs::remove_dir_all(&dir);
}
