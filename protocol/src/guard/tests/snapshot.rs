//! Snapshot and restore: bans and counters survive, downtime counts, garbage is refused.

use alloc::format;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::{NONCE, SECRET, T0, TOKEN, at, directory, key, rng};
use crate::guard::*;
use crate::time::Instant;

fn guard() -> Guard {
    Guard::new(GuardConfig::default(), &mut rng(11)).unwrap()
}

/// The clocks of a driver restarted at wall time `T0 + restart`: its monotonic clock started
/// then (3 s after a fresh origin); `at(t)` reads both clocks at wall time `T0 + t`.
fn restarted(restart: u64) -> impl Fn(u64) -> Now {
    move |t| Now::new(Instant::from_secs(3 + (t - restart)), T0 + t)
}

fn restore(bytes: &[u8], now: Now) -> Guard {
    Guard::restore(GuardConfig::default(), &mut rng(12), now, bytes).unwrap()
}

#[test]
fn empty_guard_round_trips() {
    let g = guard();
    let bytes = g.snapshot(at(0), true);
    assert_eq!(&bytes[..7], b"LKGUARD");
    let r = restore(&bytes, at(0));
    assert_eq!(r.memory().total_bytes(), 0);
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn provisioning_blacklist_survives_a_restart_and_downtime_counts() {
    let mut g = guard();
    for i in 0..11 {
        let _ = g.check_provisioning(at(i * 10), key(1), &format!("C{i}"));
    }
    // Blacklisted at t=100 until t=3700.
    let bytes = g.snapshot(at(200), false);
    // The process was down for 1000 s; the driver's monotonic clock restarted near zero.
    let clock = restarted(1200);
    let mut r = restore(&bytes, clock(1200));
    assert_eq!(
        r.check_provisioning(clock(1200), key(1), "C0"),
        Err(ProvisioningDenied::Blacklisted {
            until_unix: T0 + 3700
        })
    );
    assert_eq!(
        r.check_provisioning(clock(3699), key(1), "C0"),
        Err(ProvisioningDenied::Blacklisted {
            until_unix: T0 + 3700
        })
    );
    r.check_provisioning(clock(3700), key(1), "C0").unwrap();
}

#[test]
fn a_ban_that_ended_during_downtime_is_dropped() {
    let mut g = guard();
    for i in 0..11 {
        let _ = g.check_provisioning(at(i * 10), key(1), &format!("C{i}"));
    }
    let r = restore(&g.snapshot(at(200), false), restarted(5000)(5000));
    assert_eq!(r.memory().provisioning.entries, 0);
}

#[test]
fn login_failures_and_account_counts_survive() {
    let mut g = guard();
    for i in 0..4 {
        g.login_failed(at(i), key(1), Some("admin"));
    }
    let clock = restarted(20);
    let mut r = restore(&g.snapshot(at(10), false), clock(20));
    // The fifth failure within the window still blocks: the first four came back.
    let o = r.login_failed(clock(21), key(1), Some("admin"));
    assert!(o.address_blocked_until.is_some());
    assert_eq!(o.account_failures, 5);
    assert_eq!(r.login_mut().account_failures("admin"), 5);
}

#[test]
fn restored_failures_older_than_the_origin_still_leave_the_window_on_time() {
    let mut g = guard();
    for i in 0..4 {
        g.login_failed(at(i), key(1), None);
    }
    // Restart 800 s later; the failures (at 0..3) leave the 900-s window at 900..903, long
    // before the new driver's monotonic origin is 900 s old.
    let clock = restarted(800);
    let mut r = restore(&g.snapshot(at(800), false), clock(800));
    assert!(
        r.login_failed(clock(899), key(1), None)
            .address_blocked_until
            .is_some()
    );
    let mut r = restore(&g.snapshot(at(800), false), clock(800));
    assert_eq!(
        r.login_failed(clock(904), key(1), None)
            .address_blocked_until,
        None
    );
}

#[test]
fn rate_limit_cells_survive_rounded_up_to_the_second() {
    let mut g = guard();
    let dev = directory(SigningVariant::CalaosBase);
    let bad = AuthHeaders::new(Some("Bearer nobody"), Some("1"), Some(NONCE), Some("0"));
    for _ in 0..3 {
        let _ = g.authenticate_device(at(0), key(1), &bad, &dev);
    }
    let clock = restarted(1);
    let mut r = restore(&g.snapshot(at_ms_now(500), false), clock(1));
    // Three attempts at t=0 fill the design quota until t=20 (TAT 60 s, tolerance 40 s);
    // the snapshot rounds the TAT up to the next whole second (60 s).
    let e = r
        .authenticate_device(clock(19), key(1), &bad, &dev)
        .unwrap_err();
    assert!(matches!(e, AuthError::RateLimited { .. }), "{e:?}");
    let e = r
        .authenticate_device(clock(20), key(1), &bad, &dev)
        .unwrap_err();
    assert_eq!(e, AuthError::UnknownToken);
}

fn at_ms_now(ms: u64) -> Now {
    super::at_ms(ms)
}

#[test]
fn nonces_survive_so_a_restart_does_not_reopen_replay() {
    let mut g = guard();
    let dev = directory(SigningVariant::CalaosBase);
    let signer = Signer::new(TOKEN, SECRET, SigningVariant::CalaosBase).unwrap();
    let signed = signer.sign(T0, &mut rng(1));
    g.authenticate_device(at(0), key(1), &signed.as_auth_headers(&signer), &dev)
        .unwrap();
    let clock = restarted(10);
    let mut r = restore(&g.snapshot(at(5), false), clock(10));
    assert!(r.nonces().contains(clock(10), DeviceId(1), signed.nonce()));
    assert_eq!(
        r.authenticate_device(clock(10), key(2), &signed.as_auth_headers(&signer), &dev),
        Err(AuthError::NonceReplayed)
    );
    assert_eq!(
        r.poll_event(),
        Some(SecurityEvent::NonceReplayed {
            device: DeviceId(1),
            client: key(2)
        })
    );
}

#[test]
fn sessions_are_left_out_unless_asked_and_then_stored_as_digests() {
    let mut g = guard();
    let id = g
        .sessions_mut()
        .create(at(0).instant, "admin", &mut rng(1))
        .unwrap()
        .id;
    let without = g.snapshot(at(1), false);
    let clock = restarted(2);
    assert_eq!(restore(&without, clock(2)).sessions().len(), 0);
    let with = g.snapshot(at(1), true);
    let raw = id.to_hex();
    let id_bytes = SessionId::parse(&raw).unwrap();
    // The id's bytes appear nowhere in the snapshot; its digest does.
    let digest = id_bytes.digest();
    assert!(with.windows(32).any(|w| w == digest));
    assert!(!with.windows(8).any(|w| raw.as_bytes()[..8] == *w));
    let mut r = restore(&with, clock(2));
    let info = r.sessions_mut().validate(clock(2).instant, &raw).unwrap();
    assert_eq!(info.user, "admin");
    // Its age survived: the absolute end is 8 h after creation, not after the restart.
    let mut t = 2;
    while t + 1500 < 8 * 3600 {
        t += 1500;
        r.sessions_mut().validate(clock(t).instant, &raw).unwrap();
    }
    assert_eq!(
        r.sessions_mut().validate(clock(8 * 3600).instant, &raw),
        Err(SessionError::AbsoluteTimeout)
    );
}

#[test]
fn damaged_snapshots_are_refused_with_a_located_error() {
    let mut g = guard();
    g.login_failed(at(0), key(1), Some("admin"));
    let good = g.snapshot(at(1), false);
    let cfg = GuardConfig::default;
    let now = at(1);
    assert_eq!(
        Guard::restore(cfg(), &mut rng(1), now, b"nope").unwrap_err(),
        SnapshotError::BadMagic
    );
    let mut v = good.clone();
    v[7] = 9;
    assert_eq!(
        Guard::restore(cfg(), &mut rng(1), now, &v).unwrap_err(),
        SnapshotError::UnsupportedVersion { version: 9 }
    );
    for cut in 8..good.len() {
        let e = Guard::restore(cfg(), &mut rng(1), now, &good[..cut]).unwrap_err();
        assert!(
            matches!(e, SnapshotError::Truncated { .. }),
            "cut {cut}: {e:?}"
        );
    }
    let mut v = good.clone();
    v.push(0);
    assert!(matches!(
        Guard::restore(cfg(), &mut rng(1), now, &v).unwrap_err(),
        SnapshotError::TrailingBytes { .. }
    ));
    let mut v = good[..16].to_vec();
    v.push(42);
    assert_eq!(
        Guard::restore(cfg(), &mut rng(1), now, &v).unwrap_err(),
        SnapshotError::UnknownSection {
            tag: 42,
            offset: 16
        }
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn restore_never_panics_on_arbitrary_bytes(tail in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut bytes = b"LKGUARD\x01".to_vec();
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&tail);
        let _ = Guard::restore(GuardConfig::default(), &mut rng(1), at(0), &bytes);
    }

    #[test]
    fn restored_guard_decides_like_the_original_after_the_restart(
        events in proptest::collection::vec((0u8..3, 0u32..6, 0u64..120), 1..40),
        downtime in 0u64..4_000,
    ) {
        // Provisioning requests and login failures from a few addresses; then snapshot,
        // restart after `downtime`, and compare decisions at a series of later times.
        let mut g = guard();
        let mut now = 0u64;
        for (kind, addr, gap) in &events {
            now += gap;
            match kind {
                0 => { let _ = g.check_provisioning(at(now), key(*addr), &format!("C{gap}")); }
                1 => { g.login_failed(at(now), key(*addr), Some("admin")); }
                _ => { g.login_succeeded(at(now), key(*addr), Some("admin")); }
            }
        }
        let bytes = g.snapshot(at(now), false);
        let restart_wall = now + downtime;
        let mut r = restore(&bytes, Now::new(Instant::from_secs(7), T0 + restart_wall));
        let mut orig = g;
        let later: Vec<u64> = (0..6).map(|i| restart_wall + i * 400).collect();
        for t in later {
            let r_now = Now::new(Instant::from_secs(7 + (t - restart_wall)), T0 + t);
            for addr in 0..6 {
                // Whole-second times convert exactly, so decisions must match exactly.
                let a = orig.check_login(at(t), key(addr), Some("admin")).is_ok();
                let b = r.check_login(r_now, key(addr), Some("admin")).is_ok();
                prop_assert_eq!(a, b, "login, addr {} at {}", addr, t);
            }
            for addr in 0..6 {
                let a = orig.provisioning_mut().blacklisted_until(at(t).instant, key(addr)).is_some();
                let b = r.provisioning_mut().blacklisted_until(r_now.instant, key(addr)).is_some();
                prop_assert_eq!(a, b, "provisioning, addr {} at {}", addr, t);
            }
        }
    }
}

/// A snapshot written while the wall clock ran a day ahead, restored once it is right again:
/// no ban, block, lock or session may outlast its own rule counted from the restore.
#[test]
fn times_from_a_clock_that_ran_ahead_do_not_outlast_their_rules() {
    const DAY: u64 = 86_400;
    let mut g = guard();
    // Provisioning blacklist, address block and account lock, a session: all "a day ahead".
    for i in 0..11 {
        let _ = g.check_provisioning(at(DAY + i * 10), key(1), &format!("C{i}"));
    }
    for i in 0..100 {
        g.login_failed(at(DAY + 120 + i / 2), key(2), Some("admin"));
    }
    let raw = g
        .sessions_mut()
        .create(at(DAY + 200).instant, "admin", &mut rng(2))
        .unwrap()
        .id
        .to_hex();
    let bytes = g.snapshot(at(DAY + 200), true);
    // The clock is right again: the driver restarts at wall time T0 + 300.
    let clock = restarted(300);
    let mut r = restore(&bytes, clock(300));
    let blacklist = GuardConfig::default().provisioning.blacklist.as_secs();
    assert!(r.check_provisioning(clock(300), key(1), "C0").is_err());
    r.check_provisioning(clock(300 + blacklist), key(1), "C0")
        .expect("the blacklist ends one blacklist after the restore at the latest");
    let login = GuardConfig::default().login;
    assert!(
        r.check_login(clock(300), key(2), None).is_err(),
        "address blocked"
    );
    assert!(
        r.check_login(clock(300), key(9), Some("admin")).is_err(),
        "account locked"
    );
    let later = 300 + login.block.as_secs().max(login.account_lock.as_secs());
    r.check_login(clock(later), key(2), None)
        .expect("the address block ends one block after the restore at the latest");
    r.check_login(clock(later), key(9), Some("admin"))
        .expect("the account lock ends one lock after the restore at the latest");
    let absolute = GuardConfig::default().sessions.absolute.as_secs();
    let idle = GuardConfig::default().sessions.idle.as_secs();
    let mut t = 300;
    while t + idle / 2 < 300 + absolute {
        t += idle / 2;
        if r.sessions_mut().validate(clock(t).instant, &raw).is_err() {
            break;
        }
    }
    assert!(
        r.sessions_mut()
            .validate(clock(300 + absolute).instant, &raw)
            .is_err(),
        "the session ends one absolute timeout after the restore at the latest"
    );
}
