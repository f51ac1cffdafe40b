//! The assembled guard: the full device check in calaos_base's order, events, sweeping,
//! and memory under address churn.

use alloc::string::ToString;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv6Addr};

use proptest::prelude::*;

use super::{SECRET, T0, TOKEN, at, directory, key, rng, v4, v6};
use crate::guard::*;
use crate::time::Instant;

fn signer(v: SigningVariant) -> Signer {
    Signer::new(TOKEN, SECRET, v).unwrap()
}

#[test]
fn a_correctly_signed_request_authenticates_once() {
    let mut g = Guard::new(GuardConfig::default(), &mut rng(1)).unwrap();
    let dev = directory(SigningVariant::CalaosBase);
    let s = signer(SigningVariant::CalaosBase);
    let h = s.sign(T0, &mut rng(2));
    assert_eq!(
        g.authenticate_device(at(0), key(1), &h.as_auth_headers(&s), &dev),
        Ok(DeviceId(1))
    );
    let replay = g
        .authenticate_device(at(1), key(2), &h.as_auth_headers(&s), &dev)
        .unwrap_err();
    assert_eq!(
        (replay, replay.status(), replay.reason()),
        (AuthError::NonceReplayed, 401, "invalid_nonce")
    );
    assert_eq!(
        g.poll_event(),
        Some(SecurityEvent::NonceReplayed {
            device: DeviceId(1),
            client: key(2)
        })
    );
}

#[test]
fn rate_limit_comes_first_and_counts_every_attempt() {
    let mut g = Guard::new(GuardConfig::default(), &mut rng(1)).unwrap();
    let dev = directory(SigningVariant::RemoteUiDesign);
    let s = signer(SigningVariant::RemoteUiDesign);
    for i in 0..3 {
        let h = s.sign(T0, &mut rng(i));
        g.authenticate_device(at(0), key(1), &h.as_auth_headers(&s), &dev)
            .unwrap();
    }
    // The fourth, even perfectly signed, is limited — and so is a request with no headers.
    let h = s.sign(T0, &mut rng(9));
    let e = g
        .authenticate_device(at(0), key(1), &h.as_auth_headers(&s), &dev)
        .unwrap_err();
    assert_eq!((e.status(), e.reason()), (429, "rate_limited"));
    assert_eq!(e.retry_after(), Some(core::time::Duration::from_secs(20)));
    let e = g
        .authenticate_device(at(0), key(1), &AuthHeaders::default(), &dev)
        .unwrap_err();
    assert_eq!(e.status(), 429);
    // calaos_base's quota lets twenty through.
    let cfg = GuardConfig {
        auth_rate: Quota::CALAOS_BASE_AUTH,
        ..GuardConfig::default()
    };
    let mut g = Guard::new(cfg, &mut rng(1)).unwrap();
    for _ in 0..20 {
        assert_eq!(
            g.authenticate_device(at(0), key(1), &AuthHeaders::default(), &dev)
                .unwrap_err()
                .status(),
            400
        );
    }
    assert_eq!(
        g.authenticate_device(at(0), key(1), &AuthHeaders::default(), &dev)
            .unwrap_err()
            .status(),
        429
    );
}

#[test]
fn a_device_flooding_nonces_is_refused_with_429_and_reported() {
    let cfg = GuardConfig {
        auth_rate: Quota::new(1000, core::time::Duration::from_secs(1)).unwrap(),
        nonces: NonceConfig {
            per_device_cap: 3,
            ..NonceConfig::default()
        },
        ..GuardConfig::default()
    };
    let mut g = Guard::new(cfg, &mut rng(1)).unwrap();
    let dev = directory(SigningVariant::CalaosBase);
    let s = signer(SigningVariant::CalaosBase);
    for i in 0..3 {
        g.authenticate_device(
            at(0),
            key(1),
            &s.sign(T0, &mut rng(i)).as_auth_headers(&s),
            &dev,
        )
        .unwrap();
    }
    let e = g
        .authenticate_device(
            at(0),
            key(1),
            &s.sign(T0, &mut rng(7)).as_auth_headers(&s),
            &dev,
        )
        .unwrap_err();
    assert_eq!((e, e.status()), (AuthError::NonceQuotaExceeded, 429));
    assert_eq!(
        g.poll_event(),
        Some(SecurityEvent::NonceQuotaExceeded {
            device: DeviceId(1)
        })
    );
}

#[test]
fn client_key_uses_proxies_and_prefixes() {
    let cfg = GuardConfig {
        proxies: TrustedProxies::new(["10.0.0.0/8".parse().unwrap()]),
        ..GuardConfig::default()
    };
    let g = Guard::new(cfg, &mut rng(1)).unwrap();
    assert_eq!(
        g.client_key(v4(10, 0, 0, 1), ["2001:db8:1:2::9"]),
        g.client_key(v6("2001:db8:1:2::1"), core::iter::empty())
    );
    assert_eq!(
        g.client_key(v4(192, 0, 2, 1), ["2001:db8:1:2::9"]),
        key(0xc000_0201)
    );
}

#[test]
fn poll_timeout_is_none_when_idle_and_handle_timeout_tolerates_early_calls() {
    let mut g = Guard::new(GuardConfig::default(), &mut rng(1)).unwrap();
    assert_eq!(g.poll_timeout(), None);
    g.handle_timeout(at(0));
    g.login_failed(at(0), key(1), None);
    let due = g.poll_timeout().unwrap();
    assert_eq!(due, at(1).instant);
    g.handle_timeout(at(0)); // early: no-op
    assert_eq!(g.poll_timeout(), Some(due));
    g.handle_timeout(at(1));
    assert_eq!(g.poll_timeout(), Some(at(2).instant));
    // Once the failure leaves the window the tables drain and the guard goes idle.
    g.handle_timeout(at(900));
    assert_eq!(g.poll_timeout(), None);
}

#[test]
fn a_flood_of_a_million_addresses_stays_under_the_stated_cap() {
    let cfg = GuardConfig {
        max_rate_keys: 65_536,
        ..GuardConfig::default()
    };
    let mut g = Guard::new(cfg, &mut rng(1)).unwrap();
    let dev = directory(SigningVariant::CalaosBase);
    let mut peak = 0;
    for i in 0..1_000_000u64 {
        let ip = IpAddr::V6(Ipv6Addr::from_bits(
            0x2001_0db8_u128 << 96 | u128::from(i) << 64,
        ));
        let k = g.client_key(ip, core::iter::empty());
        let now = Now::new(Instant::from_millis(1_000_000 + i), T0 + i / 1000);
        let _ = g.authenticate_device(now, k, &AuthHeaders::default(), &dev);
        if i % 1000 == 0 {
            g.handle_timeout(now);
        }
        peak = peak.max(g.memory().total_bytes());
    }
    // 65,536 cells need at most 131,072 slots of 24 bytes: 3 MiB.
    assert!(g.memory().auth_rate.entries <= 65_536);
    assert!(peak <= 131_072 * 24 + 64 * 1024, "peak {peak}");
}

#[test]
fn sweeping_reclaims_memory_after_a_flood() {
    let mut g = Guard::new(GuardConfig::default(), &mut rng(1)).unwrap();
    for i in 0..50_000u32 {
        g.login_failed(at(0), key(i), None);
        let _ = g.check_provisioning(at(0), key(i), "ABC");
    }
    assert!(g.memory().total_bytes() > 1_000_000);
    let mut t = 3600;
    let mut sweeps = 0;
    while g.poll_timeout().is_some() {
        g.handle_timeout(at(t));
        t += 1;
        sweeps += 1;
        assert!(
            sweeps < 400,
            "sweeping must finish in a bounded number of calls"
        );
    }
    assert_eq!(g.memory().total_bytes(), 0);
}

#[test]
fn events_queue_is_bounded() {
    let cfg = GuardConfig {
        max_events: 2,
        ..GuardConfig::default()
    };
    let mut g = Guard::new(cfg, &mut rng(1)).unwrap();
    for i in 0..5u32 {
        for t in 0..5 {
            g.login_failed(at(t), key(i), None);
        }
    }
    let got: Vec<_> = core::iter::from_fn(|| g.poll_event()).collect();
    assert_eq!(got.len(), 2);
    assert_eq!(g.events_dropped(), 3);
}

#[test]
fn config_validation_names_the_problem() {
    let mut c = GuardConfig::default();
    c.nonces.retention = core::time::Duration::from_secs(100);
    assert_eq!(
        c.validate(),
        Err(ConfigError::NonceRetentionTooShort {
            retention_secs: 100,
            needed_secs: 120
        })
    );
    let mut c = GuardConfig::default();
    c.sessions.per_user = 0;
    assert_eq!(
        c.validate().unwrap_err().to_string(),
        "sessions.per_user must be greater than zero"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_operation_sequences_never_panic_and_respect_caps(
        ops in proptest::collection::vec((0u8..6, 0u32..50, 0u64..200, any::<u8>()), 1..200),
    ) {
        let cfg = GuardConfig {
            max_rate_keys: 16,
            nonces: NonceConfig { global_cap: 8, per_device_cap: 4, ..NonceConfig::default() },
            provisioning: ProvisioningConfig { max_tracked: 8, ..ProvisioningConfig::default() },
            login: LoginConfig { max_tracked_addresses: 8, max_tracked_accounts: 2, ..LoginConfig::default() },
            sessions: SessionConfig { max_sessions: 4, ..SessionConfig::default() },
            auth_rate: Quota::CALAOS_BASE_AUTH,
            ..GuardConfig::default()
        };
        let mut g = Guard::new(cfg, &mut rng(3)).unwrap();
        let dev = directory(SigningVariant::CalaosBase);
        let s = signer(SigningVariant::CalaosBase);
        let mut now = 0u64;
        for (op, addr, gap, b) in ops {
            now += gap;
            let n = at(now);
            match op {
                0 => { let _ = g.authenticate_device(n, key(addr), &s.sign(T0 + now, &mut rng(b)).as_auth_headers(&s), &dev); }
                1 => { let _ = g.check_provisioning(n, key(addr), &alloc::format!("{b}")); }
                2 => { let _ = g.login_failed(n, key(addr), Some(if b % 2 == 0 { "a" } else { "b" })); }
                3 => { let _ = g.sessions_mut().create(n.instant, "admin", &mut rng(b)); }
                4 => g.handle_timeout(n),
                _ => { let _ = g.check_login(n, key(addr), Some("c")); }
            }
            let m = g.memory();
            prop_assert!(m.auth_rate.entries <= 16);
            prop_assert!(m.nonces.entries <= 8);
            prop_assert!(m.provisioning.entries <= 8);
            prop_assert!(m.login_addresses.entries <= 8);
            prop_assert!(m.sessions.entries <= 4);
            while g.poll_event().is_some() {}
        }
    }
}

/// A wall clock stepped an hour ahead for a moment (then corrected back by NTP) does not let
/// the sweep forget a nonce whose timestamp passes again once the clock is back: only a
/// second of monotonic time went by (the cache expired by wall time alone, and the sweep
/// removes an entry for good).
#[test]
fn a_wall_clock_stepped_ahead_and_back_does_not_reopen_a_replay() {
    let mut g = Guard::new(GuardConfig::default(), &mut rng(1)).unwrap();
    let dev = directory(SigningVariant::CalaosBase);
    let s = signer(SigningVariant::CalaosBase);
    let h = s.sign(T0, &mut rng(2));
    g.authenticate_device(at(0), key(1), &h.as_auth_headers(&s), &dev)
        .unwrap();
    // One monotonic second later the wall clock reads an hour ahead; the sweep runs.
    g.handle_timeout(Now::new(Instant::from_secs(1001), T0 + 3600));
    // NTP steps it back: the captured request's timestamp passes again (±30 s).
    let replay = g.authenticate_device(
        Now::new(Instant::from_secs(1002), T0 + 2),
        key(2),
        &h.as_auth_headers(&s),
        &dev,
    );
    assert_eq!(replay, Err(AuthError::NonceReplayed));
}
