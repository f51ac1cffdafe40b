//! Passwords: the door station's rules, Argon2id by default, PBKDF2 imports and rehash.

use alloc::string::ToString;

use proptest::prelude::*;

use super::rng;
use crate::guard::*;

/// Reference vector of the Argon2 reference implementation (phc-winner-argon2 `test.c`):
/// "password", salt "somesalt", Argon2id v=19, m=256 KiB, t=2, p=1.
const ARGON2ID_REFERENCE: &str =
    "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4";

/// Door-station blob (salt 00..0f, PBKDF2-HMAC-SHA256 10,000 iterations of "Door2026pass"),
/// computed with Python's `hashlib.pbkdf2_hmac`.
const DOOR_BLOB_HEX: &str = "000102030405060708090a0b0c0d0e0fde59585418304176ac971970cc7309cadaefc3a30e29838173875baf3c6d38e8";
const DOOR_PHC: &str = "$pbkdf2-sha256$i=10000,l=32$AAECAwQFBgcICQoLDA0ODw$3llYVBgwQXaslxlwzHMJytrvw6MOKYOBc4dbrzxtOOg";
/// PHC form as RustCrypto `pbkdf2` writes it ("Another1pass", 1,000 iterations).
const PBKDF2_PHC: &str =
    "$pbkdf2-sha256$i=1000,l=32$c2FsdHNhbHRzYWx0MTIzNA$jDufKBhW0caMGlVObl/Jmm/89LrVVl2nX4bssRUdCUE";

fn small() -> PasswordHasher {
    PasswordHasher::new(Argon2Params {
        m_kib: 64,
        t: 1,
        p: 1,
    })
    .unwrap()
}

#[test]
fn door_station_rules_list_every_problem_clearly() {
    let p = PasswordPolicy::default();
    p.check("Door2026pass").unwrap();
    let e = p.check("door").unwrap_err();
    assert_eq!(
        e.rules(),
        &[
            PasswordRule::TooShort { min: 8, got: 4 },
            PasswordRule::NoUppercase,
            PasswordRule::NoDigit
        ]
    );
    assert_eq!(
        e.to_string(),
        "password does not meet the rules: use at least 8 characters (this one has 4); \
         add an upper-case letter (A-Z); add a digit (0-9)"
    );
    assert_eq!(
        p.check("ALLUPPER123").unwrap_err().rules(),
        &[PasswordRule::NoLowercase]
    );
    assert!(p.check(&"Aa1".repeat(400)).is_err());
    // Characters, not bytes: eight accented letters are eight characters.
    p.check("Éléphant9").unwrap();
}

#[test]
fn argon2id_reference_vector_verifies() {
    let h = PasswordHasher::new(Argon2Params {
        m_kib: 256,
        t: 2,
        p: 1,
    })
    .unwrap();
    // Its 8-byte salt is under the 16 bytes new hashes get, so it is due for a rehash even
    // against equal costs.
    let v = h.verify(ARGON2ID_REFERENCE, "password").unwrap();
    assert!(v.needs_rehash);
    assert_eq!(
        h.verify(ARGON2ID_REFERENCE, "Password"),
        Err(PasswordError::Mismatch)
    );
    // Against the OWASP default the same hash is too weak and must be rehashed.
    let owasp = PasswordHasher::default();
    assert!(
        owasp
            .verify(ARGON2ID_REFERENCE, "password")
            .unwrap()
            .needs_rehash
    );
}

#[test]
fn default_hash_is_argon2id_with_owasp_minimum_costs() {
    let h = PasswordHasher::default();
    assert_eq!(
        h.params(),
        Argon2Params {
            m_kib: 19_456,
            t: 2,
            p: 1
        }
    );
    let phc = h.hash("Door2026pass", &mut rng(1)).unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    assert!(!h.verify(&phc, "Door2026pass").unwrap().needs_rehash);
    assert_eq!(h.verify(&phc, "Door2026pasS"), Err(PasswordError::Mismatch));
}

#[test]
fn salts_come_from_the_injected_randomness() {
    let h = small();
    assert_eq!(
        h.hash("x", &mut rng(1)).unwrap(),
        h.hash("x", &mut rng(1)).unwrap()
    );
    assert_ne!(
        h.hash("x", &mut rng(1)).unwrap(),
        h.hash("x", &mut rng(2)).unwrap()
    );
}

#[test]
fn door_station_blob_imports_as_pbkdf2_phc_and_asks_for_rehash() {
    let phc = import_door_station_hex(DOOR_BLOB_HEX).unwrap();
    assert_eq!(phc, DOOR_PHC);
    let h = small();
    let v = h.verify(&phc, "Door2026pass").unwrap();
    assert!(v.needs_rehash);
    assert_eq!(h.verify(&phc, "door2026pass"), Err(PasswordError::Mismatch));
    assert_eq!(
        import_door_station(&[0; 47]),
        Err(PasswordError::BadImport { len: 47 })
    );
    assert!(import_door_station_hex("zz").is_err());
}

#[test]
fn rustcrypto_pbkdf2_phc_strings_verify() {
    let v = small().verify(PBKDF2_PHC, "Another1pass").unwrap();
    assert!(v.needs_rehash);
    assert!(small().needs_rehash(PBKDF2_PHC));
}

#[test]
fn rehash_after_pbkdf2_login_yields_a_current_argon2id_hash() {
    let h = small();
    let stored = import_door_station_hex(DOOR_BLOB_HEX).unwrap();
    assert!(h.verify(&stored, "Door2026pass").unwrap().needs_rehash);
    let new = h.hash("Door2026pass", &mut rng(3)).unwrap();
    assert!(!h.needs_rehash(&new));
    assert!(!h.verify(&new, "Door2026pass").unwrap().needs_rehash);
}

#[test]
fn planted_hashes_with_huge_costs_are_refused_before_work() {
    let h = small();
    assert_eq!(
        h.verify("$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", "x"),
        Err(PasswordError::ParamsOutOfRange { param: "m" })
    );
    assert_eq!(
        h.verify("$argon2id$v=19$m=256,t=1000,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", "x"),
        Err(PasswordError::ParamsOutOfRange { param: "t" })
    );
    assert_eq!(
        h.verify("$pbkdf2-sha256$i=4000000000,l=32$AAECAwQFBgcICQoLDA0ODw$3llYVBgwQXaslxlwzHMJytrvw6MOKYOBc4dbrzxtOOg", "x"),
        Err(PasswordError::ParamsOutOfRange { param: "i" })
    );
}

#[test]
fn malformed_and_unsupported_hashes_are_told_apart() {
    let h = small();
    for bad in [
        "",
        "plain",
        "$argon2id$",
        "$pbkdf2-sha256$i=10$AAECAwQFBgcICQoLDA0ODw",
        "$argon2id$v=19$m=256,t=2$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
    ] {
        assert_eq!(h.verify(bad, "x"), Err(PasswordError::Malformed), "{bad}");
        assert!(h.needs_rehash(bad));
    }
    assert_eq!(
        h.verify("$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E", "x"),
        Err(PasswordError::Unsupported)
    );
    assert!(!PasswordError::Unsupported.to_string().is_empty());
}

#[test]
fn invalid_argon2_params_are_refused_at_construction() {
    assert!(
        PasswordHasher::new(Argon2Params {
            m_kib: 1,
            t: 1,
            p: 1
        })
        .is_err()
    );
    assert!(
        PasswordHasher::new(Argon2Params {
            m_kib: 64,
            t: 0,
            p: 1
        })
        .is_err()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn hash_then_verify_accepts_only_the_same_password(pw in ".{0,40}", other in ".{0,40}", seed in any::<u8>()) {
        let h = PasswordHasher::new(Argon2Params { m_kib: 8, t: 1, p: 1 }).unwrap();
        let phc = h.hash(&pw, &mut rng(seed)).unwrap();
        prop_assert!(h.verify(&phc, &pw).is_ok());
        if other != pw {
            prop_assert_eq!(h.verify(&phc, &other), Err(PasswordError::Mismatch));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn verify_never_panics_on_arbitrary_stored_strings(stored in "\\$?[a-z0-9=,$/+-]{0,120}", pw in ".{0,10}") {
        let _ = small().verify(&stored, &pw);
        let _ = small().needs_rehash(&stored);
    }

    #[test]
    fn policy_accepts_exactly_long_enough_mixed_passwords(pw in ".{0,20}") {
        let ok = pw.chars().count() >= 8
            && pw.chars().any(char::is_uppercase)
            && pw.chars().any(char::is_lowercase)
            && pw.bytes().any(|b| b.is_ascii_digit());
        prop_assert_eq!(PasswordPolicy::default().check(&pw).is_ok(), ok);
    }
}

/// A hasher's costs may lie above the default verification ceilings (t ≤ 16, p ≤ 16,
/// m ≤ 256 MiB), or above ceilings given later: its own hashes still verify (they were
/// refused, and an admin set up with such a hasher could never log in again).
#[test]
fn a_hasher_verifies_the_hashes_it_writes_whatever_costs_it_accepted() {
    let h = PasswordHasher::new(Argon2Params {
        m_kib: 64,
        t: 17,
        p: 1,
    })
    .expect("costs accepted at construction");
    let phc = h.hash("Correct1Horse", &mut rng(3)).unwrap();
    let ok = Ok(Verification {
        needs_rehash: false,
    });
    assert_eq!(h.verify(&phc, "Correct1Horse"), ok);
    let lowered = h.with_limits(crate::guard::password::VerifyLimits {
        max_m_kib: 8,
        max_t: 1,
        max_p: 1,
        max_pbkdf2_iterations: 1,
    });
    assert_eq!(lowered.verify(&phc, "Correct1Horse"), ok);
    // The ceilings still apply to other hashes.
    let costlier = PasswordHasher::new(Argon2Params {
        m_kib: 64,
        t: 18,
        p: 1,
    })
    .unwrap()
    .hash("Correct1Horse", &mut rng(4))
    .unwrap();
    assert_eq!(
        lowered.verify(&costlier, "Correct1Horse"),
        Err(PasswordError::ParamsOutOfRange { param: "t" })
    );
}
