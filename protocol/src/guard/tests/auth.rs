//! HMAC request authentication: vectors for both signing strings, every error and its
//! calaos_base status, the inclusive tolerance edges, and signer/verifier agreement.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use proptest::prelude::*;

use super::{NONCE, SECRET, T0, TOKEN, creds, directory, rng};
use crate::guard::*;

/// Computed independently (Python `hmac`/`hashlib`) for TOKEN, timestamp T0, NONCE, SECRET.
const CALAOS_MAC: &str = "6abd2c52880219ada5f60d794b3aafb8a2a1d6973dde45d4c5f9cee49a9a5560";
const DESIGN_MAC: &str = "cda8a4c1f571191b8caaf2b91545b482d47db2eb7313656bfc07e31d8ee11220";

fn headers<'a>(ts: &'a str, nonce: &'a str, mac: &'a str) -> AuthHeaders<'a> {
    AuthHeaders::new(
        Some("Bearer remote_ui_ABC123"),
        Some(ts),
        Some(nonce),
        Some(mac),
    )
}

fn verify<'h>(
    variant: SigningVariant,
    now: u64,
    h: &AuthHeaders<'h>,
) -> Result<Verified<'h>, AuthError> {
    let c = creds(1, variant);
    verify_request(now, h, |t| (t == TOKEN).then_some(&c))
}

/// A token shaped as calaos_base issues them (64 hex digits: exactly one SHA-256 block,
/// which the device's precomputed signing prefix absorbs), and the MACs of its signing
/// strings for timestamp T0, NONCE and SECRET, computed independently (Python
/// `hmac`/`hashlib`).
const BLOCK_TOKEN: &str = "9c1f9c1f9c1f9c1f9c1f9c1f9c1f9c1f9c1f9c1f9c1f9c1f9c1f9c1f9c1f9c1f";
const BLOCK_TOKEN_CALAOS_MAC: &str =
    "4a343306b57b2abf7bf3b076e092d49e2883482d4b22a2f168b59347b202955d";
const BLOCK_TOKEN_DESIGN_MAC: &str =
    "4ae4366582e2afc0b5f17db9fecffd5f7cba639b7f75b4889fac4e3024e466c9";

#[test]
fn a_token_of_one_whole_hash_block_signs_and_verifies_as_computed_independently() {
    let ts = T0.to_string();
    let authorization = format!("Bearer {BLOCK_TOKEN}");
    for (variant, mac) in [
        (SigningVariant::CalaosBase, BLOCK_TOKEN_CALAOS_MAC),
        (SigningVariant::RemoteUiDesign, BLOCK_TOKEN_DESIGN_MAC),
    ] {
        let c = DeviceCredentials::new(DeviceId(7), BLOCK_TOKEN, SECRET, variant).unwrap();
        let h = AuthHeaders::new(Some(&authorization), Some(&ts), Some(NONCE), Some(mac));
        let v = verify_request(T0, &h, |t| (t == BLOCK_TOKEN).then_some(&c)).unwrap();
        assert_eq!(v.device, DeviceId(7));
        let mut nonce = [0u8; 32];
        for (i, b) in nonce.iter_mut().enumerate() {
            *b = u8::from_str_radix(&NONCE[2 * i..2 * i + 2], 16).unwrap();
        }
        let signed = Signer::new(BLOCK_TOKEN, SECRET, variant)
            .unwrap()
            .sign_with_nonce(T0, &nonce);
        assert_eq!(signed.hmac(), mac, "{variant:?}");
    }
}

proptest! {
    /// The precomputed prefix (token and separator) gives the HMAC of the whole signing
    /// string whatever the token's length relative to the hash's 64-byte blocks.
    #[test]
    fn signer_and_verifier_compute_the_plain_hmac_of_the_signing_string(
        token_len in 1usize..=200,
        calaos in any::<bool>(),
        nonce in proptest::array::uniform32(any::<u8>()),
        ts in 1u64..=u64::from(u32::MAX),
    ) {
        use hmac::{Hmac, KeyInit as _, Mac as _};
        let variant = if calaos {
            SigningVariant::CalaosBase
        } else {
            SigningVariant::RemoteUiDesign
        };
        let token: String = (0..token_len)
            .map(|i| char::from(b'!' + (i % 94) as u8))
            .collect();
        let signed = Signer::new(&token, SECRET, variant)
            .unwrap()
            .sign_with_nonce(ts, &nonce);
        let sep = if calaos { ":" } else { "" };
        let mut plain = Hmac::<sha2::Sha256>::new_from_slice(SECRET).unwrap();
        plain.update(format!("{token}{sep}{ts}{sep}{}", signed.nonce()).as_bytes());
        let expected: String = plain
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        prop_assert_eq!(signed.hmac(), expected.as_str());
        let c = DeviceCredentials::new(DeviceId(3), &token, SECRET, variant).unwrap();
        let authorization = format!("Bearer {token}");
        let ts_text = ts.to_string();
        let h = AuthHeaders::new(
            Some(&authorization),
            Some(&ts_text),
            Some(signed.nonce()),
            Some(&expected),
        );
        prop_assert!(verify_request(ts, &h, |t| (t == token).then_some(&c)).is_ok());
    }
}

#[test]
fn calaos_base_signing_string_is_colon_separated() {
    let ts = T0.to_string();
    let v = verify(
        SigningVariant::CalaosBase,
        T0,
        &headers(&ts, NONCE, CALAOS_MAC),
    )
    .unwrap();
    assert_eq!(v.device, DeviceId(1));
    assert_eq!(v.timestamp, T0);
    // The design's MAC is not valid for a calaos_base device.
    assert_eq!(
        verify(
            SigningVariant::CalaosBase,
            T0,
            &headers(&ts, NONCE, DESIGN_MAC)
        ),
        Err(AuthError::InvalidHmac)
    );
}

#[test]
fn a_mac_in_upper_case_or_cut_or_extended_is_refused_with_403() {
    let ts = T0.to_string();
    let upper = CALAOS_MAC.to_ascii_uppercase();
    let cut = &CALAOS_MAC[..63];
    let extended = format!("{CALAOS_MAC}0");
    let spaced = format!("{} ", &CALAOS_MAC[..63]);
    for mac in [upper.as_str(), cut, extended.as_str(), spaced.as_str(), ""] {
        let h = AuthHeaders::new(
            Some("Bearer remote_ui_ABC123"),
            Some(&ts),
            Some(NONCE),
            Some(mac),
        );
        let c = creds(1, SigningVariant::CalaosBase);
        let got = verify_request(T0, &h, |t| (t == TOKEN).then_some(&c));
        if mac.is_empty() {
            assert!(
                matches!(got, Err(AuthError::MissingHeader { .. })),
                "{got:?}"
            );
        } else {
            assert_eq!(got, Err(AuthError::InvalidHmac), "{mac:?}");
        }
    }
}

#[test]
fn remote_ui_design_signing_string_is_plain_concatenation() {
    let ts = T0.to_string();
    verify(
        SigningVariant::RemoteUiDesign,
        T0,
        &headers(&ts, NONCE, DESIGN_MAC),
    )
    .unwrap();
    assert_eq!(
        verify(
            SigningVariant::RemoteUiDesign,
            T0,
            &headers(&ts, NONCE, CALAOS_MAC)
        ),
        Err(AuthError::InvalidHmac)
    );
}

#[test]
fn upper_case_hex_mac_is_refused_like_calaos_base() {
    let ts = T0.to_string();
    let upper = CALAOS_MAC.to_ascii_uppercase();
    let e = verify(SigningVariant::CalaosBase, T0, &headers(&ts, NONCE, &upper)).unwrap_err();
    assert_eq!(
        (e, e.status(), e.reason()),
        (AuthError::InvalidHmac, 403, "invalid_hmac")
    );
}

#[test]
fn every_error_maps_to_calaos_base_status_and_reason() {
    let cases: Vec<(AuthError, u16, &str)> = alloc::vec![
        (
            AuthError::MissingHeader {
                name: "X-Auth-Nonce"
            },
            400,
            "missing_headers"
        ),
        (
            AuthError::DuplicateHeader {
                name: "X-Auth-HMAC"
            },
            400,
            "missing_headers"
        ),
        (AuthError::MalformedAuthorization, 400, "missing_headers"),
        (AuthError::UnknownToken, 401, "invalid_token"),
        (AuthError::MalformedTimestamp, 401, "invalid_timestamp"),
        (
            AuthError::StaleTimestamp {
                skew_secs: -31,
                tolerance_secs: 30
            },
            401,
            "invalid_timestamp"
        ),
        (
            AuthError::MalformedNonce {
                len: 3,
                min: 64,
                max: 64
            },
            401,
            "invalid_nonce"
        ),
        (AuthError::NonceReplayed, 401, "invalid_nonce"),
        (AuthError::InvalidHmac, 403, "invalid_hmac"),
        (
            AuthError::RateLimited {
                retry_after: core::time::Duration::from_secs(20)
            },
            429,
            "rate_limited"
        ),
        (AuthError::NonceQuotaExceeded, 429, "rate_limited"),
        (AuthError::NonceCacheFull, 429, "rate_limited"),
    ];
    for (e, status, reason) in cases {
        assert_eq!((e.status(), e.reason()), (status, reason), "{e:?}");
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn error_messages_name_the_header() {
    assert_eq!(
        AuthError::MissingHeader {
            name: X_AUTH_NONCE_NAME
        }
        .to_string(),
        "header X-Auth-Nonce is missing or empty"
    );
    assert_eq!(
        AuthError::StaleTimestamp {
            skew_secs: -31,
            tolerance_secs: 30
        }
        .to_string(),
        "header X-Auth-Timestamp is -31 s from server time (tolerance ±30 s)"
    );
    assert_eq!(
        AuthError::MalformedNonce {
            len: 12,
            min: 64,
            max: 64
        }
        .to_string(),
        "header X-Auth-Nonce must be 64 hex digits (got 12 characters)"
    );
}

const X_AUTH_NONCE_NAME: &str = "X-Auth-Nonce";

#[test]
fn missing_empty_and_repeated_headers_are_400() {
    let ts = T0.to_string();
    let full = headers(&ts, NONCE, CALAOS_MAC);
    for (i, name) in [
        "Authorization",
        "X-Auth-Timestamp",
        "X-Auth-Nonce",
        "X-Auth-HMAC",
    ]
    .iter()
    .enumerate()
    {
        let mut h = full;
        match i {
            0 => h.authorization = None,
            1 => h.timestamp = Some(""),
            2 => h.nonce = None,
            _ => h.hmac = Some("  "),
        }
        let h = AuthHeaders::new(h.authorization, h.timestamp, h.nonce, h.hmac);
        let e = verify(SigningVariant::CalaosBase, T0, &h).unwrap_err();
        assert_eq!(e, AuthError::MissingHeader { name }, "{name}");
        assert_eq!(e.status(), 400);
    }
    let pairs = [
        ("authorization", "Bearer remote_ui_ABC123"),
        ("x-auth-timestamp", ts.as_str()),
        ("X-AUTH-NONCE", NONCE),
        ("X-Auth-HMAC", CALAOS_MAC),
        ("x-auth-hmac", CALAOS_MAC),
    ];
    let h = AuthHeaders::from_pairs(pairs);
    assert_eq!(
        verify(SigningVariant::CalaosBase, T0, &h),
        Err(AuthError::DuplicateHeader {
            name: "X-Auth-HMAC"
        })
    );
    let h = AuthHeaders::from_pairs(
        pairs[..4]
            .iter()
            .copied()
            .chain([("User-Agent", "panel/1.0")]),
    );
    verify(SigningVariant::CalaosBase, T0, &h).unwrap();
}

#[test]
fn header_values_lose_only_surrounding_spaces_and_tabs() {
    let h = AuthHeaders::from_pairs([
        ("Authorization", " \tBearer remote_ui_ABC123\t "),
        ("X-Auth-Timestamp", "   "),
        ("X-Auth-Nonce", "\u{e9}t\u{e9} \t"),
        ("X-Auth-HMAC", "a b"),
    ]);
    assert_eq!(h.authorization, Some("Bearer remote_ui_ABC123"));
    assert_eq!(h.timestamp, Some(""));
    assert_eq!(h.nonce, Some("\u{e9}t\u{e9}"));
    assert_eq!(h.hmac, Some("a b"));
}

#[test]
fn authorization_must_be_bearer_and_a_visible_token() {
    let ts = T0.to_string();
    for bad in [
        "Basic cmVtb3Rl",
        "Bearer",
        "Bearer ",
        "Bearer  remote_ui_ABC123",
        "Bearer a b",
        "Token remote_ui_ABC123",
    ] {
        let h = AuthHeaders::new(Some(bad), Some(&ts), Some(NONCE), Some(CALAOS_MAC));
        assert_eq!(
            verify(SigningVariant::CalaosBase, T0, &h),
            Err(AuthError::MalformedAuthorization),
            "{bad}"
        );
    }
    let h = AuthHeaders::new(
        Some("bearer remote_ui_ABC123"),
        Some(&ts),
        Some(NONCE),
        Some(CALAOS_MAC),
    );
    verify(SigningVariant::CalaosBase, T0, &h).unwrap();
}

#[test]
fn unknown_token_is_401_before_the_mac_is_looked_at() {
    let ts = T0.to_string();
    let h = AuthHeaders::new(
        Some("Bearer someone_else"),
        Some(&ts),
        Some(NONCE),
        Some("zz"),
    );
    let e = verify(SigningVariant::CalaosBase, T0, &h).unwrap_err();
    assert_eq!((e, e.status()), (AuthError::UnknownToken, 401));
}

#[test]
fn lookup_result_is_rechecked_in_constant_time() {
    let ts = T0.to_string();
    let c = creds(1, SigningVariant::CalaosBase);
    let h = AuthHeaders::new(
        Some("Bearer remote_ui_XYZ"),
        Some(&ts),
        Some(NONCE),
        Some(CALAOS_MAC),
    );
    // A lookup that returns the wrong device does not authenticate the request.
    assert_eq!(
        verify_request(T0, &h, |_| Some(&c)),
        Err(AuthError::UnknownToken)
    );
}

#[test]
fn timestamp_syntax_is_strict() {
    for bad in [
        "-1",
        "+1767225600",
        "01767225600",
        "1767225600.5",
        "12345678901234567890",
        "0x10",
        " 1",
    ] {
        let h = headers(bad, NONCE, CALAOS_MAC);
        let e = verify(SigningVariant::CalaosBase, T0, &h).unwrap_err();
        assert!(
            matches!(
                e,
                AuthError::MalformedTimestamp | AuthError::StaleTimestamp { .. }
            ),
            "{bad}: {e:?}"
        );
        assert_eq!(e.status(), 401);
    }
}

#[test]
fn tolerance_bounds_are_inclusive_for_both_variants() {
    for (variant, tol) in [
        (SigningVariant::CalaosBase, 30u64),
        (SigningVariant::RemoteUiDesign, 60),
    ] {
        let signer = Signer::new(TOKEN, SECRET, variant).unwrap();
        let c = creds(1, variant);
        for (skew, ok) in [
            (-(tol as i64), true),
            (tol as i64, true),
            (-(tol as i64) - 1, false),
            (tol as i64 + 1, false),
        ] {
            let ts = (T0 as i64 + skew) as u64;
            let signed = signer.sign(ts, &mut rng(3));
            let r = verify_request(T0, &signed.as_auth_headers(&signer), |_| Some(&c));
            assert_eq!(r.is_ok(), ok, "{variant} skew {skew}: {r:?}");
            if !ok {
                assert_eq!(
                    r.unwrap_err(),
                    AuthError::StaleTimestamp {
                        skew_secs: skew,
                        tolerance_secs: tol as u32
                    }
                );
            }
        }
    }
}

#[test]
fn per_device_tolerance_override_applies() {
    let signer = Signer::new(TOKEN, SECRET, SigningVariant::CalaosBase).unwrap();
    let c = creds(1, SigningVariant::CalaosBase).with_tolerance_secs(5);
    let signed = signer.sign(T0 + 6, &mut rng(3));
    assert!(matches!(
        verify_request(T0, &signed.as_auth_headers(&signer), |_| Some(&c)),
        Err(AuthError::StaleTimestamp {
            skew_secs: 6,
            tolerance_secs: 5
        })
    ));
}

#[test]
fn calaos_base_nonce_must_be_64_hex_digits_design_32_to_128() {
    let ts = T0.to_string();
    let c = creds(1, SigningVariant::CalaosBase);
    let d = creds(1, SigningVariant::RemoteUiDesign);
    let short = &NONCE[..32];
    let e = verify_request(T0, &headers(&ts, short, CALAOS_MAC), |_| Some(&c)).unwrap_err();
    assert_eq!(
        e,
        AuthError::MalformedNonce {
            len: 32,
            min: 64,
            max: 64
        }
    );
    // The design's own example nonce (32 hex digits) is fine for a design device; the MAC
    // is then what fails.
    assert_eq!(
        verify_request(
            T0,
            &headers(&ts, "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d", DESIGN_MAC),
            |_| Some(&d)
        ),
        Err(AuthError::InvalidHmac)
    );
    let not_hex = "g".repeat(64);
    assert!(matches!(
        verify_request(T0, &headers(&ts, &not_hex, CALAOS_MAC), |_| Some(&c)),
        Err(AuthError::MalformedNonce { .. })
    ));
    let odd = "a".repeat(33);
    assert!(matches!(
        verify_request(T0, &headers(&ts, &odd, DESIGN_MAC), |_| Some(&d)),
        Err(AuthError::MalformedNonce { .. })
    ));
    let long = "a".repeat(130);
    assert!(matches!(
        verify_request(T0, &headers(&ts, &long, DESIGN_MAC), |_| Some(&d)),
        Err(AuthError::MalformedNonce { .. })
    ));
}

#[test]
fn signer_writes_what_calaos_base_computes() {
    let signer = Signer::new(TOKEN, SECRET, SigningVariant::CalaosBase).unwrap();
    let mut nonce = [0u8; 32];
    for (i, b) in nonce.iter_mut().enumerate() {
        *b = [
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ][i % 16];
    }
    let h = signer.sign_with_nonce(T0, &nonce);
    assert_eq!(h.timestamp(), "1767225600");
    assert_eq!(h.nonce(), NONCE);
    assert_eq!(h.hmac(), CALAOS_MAC);
    assert_eq!(signer.authorization(), "Bearer remote_ui_ABC123");
    let pairs = h.pairs(&signer);
    assert_eq!(pairs[0], ("Authorization", "Bearer remote_ui_ABC123"));
    assert_eq!(pairs[3], ("X-Auth-HMAC", CALAOS_MAC));
    let d = Signer::new(TOKEN, SECRET, SigningVariant::RemoteUiDesign).unwrap();
    assert_eq!(d.sign_with_nonce(T0, &nonce).hmac(), DESIGN_MAC);
    assert_eq!(signer.sign_with_nonce(0, &nonce).timestamp(), "0");
    assert_eq!(
        signer.sign_with_nonce(u64::MAX, &nonce).timestamp(),
        "18446744073709551615"
    );
}

#[test]
fn variant_follows_the_provisioning_field_name() {
    assert_eq!(
        SigningVariant::from_provisioning_field("provisioning_code"),
        Some(SigningVariant::RemoteUiDesign)
    );
    assert_eq!(
        SigningVariant::from_provisioning_field("code"),
        Some(SigningVariant::CalaosBase)
    );
    assert_eq!(SigningVariant::from_provisioning_field("Code"), None);
    for v in [SigningVariant::RemoteUiDesign, SigningVariant::CalaosBase] {
        assert_eq!(v.as_str().parse::<SigningVariant>(), Ok(v));
    }
}

#[test]
fn credentials_reject_bad_tokens_and_secrets() {
    let v = SigningVariant::CalaosBase;
    assert_eq!(
        DeviceCredentials::new(DeviceId(1), "", SECRET, v).unwrap_err(),
        CredentialError::TokenLength { len: 0 }
    );
    assert_eq!(
        DeviceCredentials::new(DeviceId(1), "a b", SECRET, v).unwrap_err(),
        CredentialError::TokenCharacters
    );
    assert_eq!(
        DeviceCredentials::new(DeviceId(1), "t", b"", v).unwrap_err(),
        CredentialError::SecretLength { len: 0 }
    );
    let dbg = format!("{:?}", creds(1, v));
    assert!(!dbg.contains("7f3b5a2d") && !dbg.contains(TOKEN), "{dbg}");
}

#[test]
fn directory_finds_by_token_and_refuses_duplicate_tokens() {
    let mut d = directory(SigningVariant::CalaosBase);
    assert_eq!(
        d.find_by_token(TOKEN).map(DeviceCredentials::id),
        Some(DeviceId(1))
    );
    assert!(d.find_by_token("remote_ui_ABC124").is_none());
    assert_eq!(
        d.insert(creds(2, SigningVariant::CalaosBase)).unwrap_err(),
        CredentialError::DuplicateToken
    );
    let other = DeviceCredentials::new(
        DeviceId(2),
        "remote_ui_Z",
        SECRET,
        SigningVariant::RemoteUiDesign,
    )
    .unwrap();
    d.insert(other).unwrap();
    assert_eq!(d.len(), 2);
    // Re-inserting id 1 with a new token replaces it.
    let renewed = DeviceCredentials::new(
        DeviceId(1),
        "remote_ui_NEW",
        SECRET,
        SigningVariant::CalaosBase,
    )
    .unwrap();
    assert!(d.insert(renewed).unwrap().is_some());
    assert!(d.find_by_token(TOKEN).is_none());
    assert_eq!(
        d.find_by_token("remote_ui_NEW").map(DeviceCredentials::id),
        Some(DeviceId(1))
    );
    assert!(d.remove(DeviceId(2)).is_some());
    assert!(d.get(DeviceId(2)).is_none());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn signer_and_verifier_agree_for_any_token_secret_and_time(
        token in "[!-~]{1,80}",
        secret in proptest::collection::vec(any::<u8>(), 1..100),
        now in 0u64..4_000_000_000,
        skew in -30i64..=30,
        design in any::<bool>(),
        seed in any::<u8>(),
    ) {
        let variant = if design { SigningVariant::RemoteUiDesign } else { SigningVariant::CalaosBase };
        let signer = Signer::new(&token, &secret, variant).unwrap();
        let c = DeviceCredentials::new(DeviceId(3), &token, &secret, variant).unwrap();
        let ts = now.saturating_add_signed(skew);
        let signed = signer.sign(ts, &mut rng(seed));
        let v = verify_request(now, &signed.as_auth_headers(&signer), |t| (t == token).then_some(&c)).unwrap();
        prop_assert_eq!(v.device, DeviceId(3));
        // Any single-character change of the MAC is refused with 403.
        let mut mac: Vec<u8> = signed.hmac().bytes().collect();
        let i = usize::from(seed) % 64;
        mac[i] = if mac[i] == b'0' { b'1' } else { b'0' };
        let mac = String::from_utf8(mac).unwrap();
        let h = AuthHeaders::new(Some(signer.authorization()), Some(signed.timestamp()), Some(signed.nonce()), Some(&mac));
        prop_assert_eq!(verify_request(now, &h, |_| Some(&c)), Err(AuthError::InvalidHmac));
    }

    #[test]
    fn timestamp_passes_exactly_within_tolerance(ts in any::<u64>(), now in any::<u64>(), tol in any::<u32>()) {
        let diff = (i128::from(ts) - i128::from(now)).unsigned_abs();
        prop_assert_eq!(timestamp_passes(ts, now, tol), diff <= u128::from(tol));
    }

    #[test]
    fn verifier_never_panics_on_arbitrary_header_values(
        a in proptest::option::of(".{0,80}"),
        t in proptest::option::of(".{0,24}"),
        n in proptest::option::of(".{0,140}"),
        m in proptest::option::of(".{0,70}"),
        now in any::<u64>(),
    ) {
        let c = creds(1, SigningVariant::CalaosBase);
        let h = AuthHeaders::new(a.as_deref(), t.as_deref(), n.as_deref(), m.as_deref());
        let r = verify_request(now, &h, |_| Some(&c));
        if let Err(e) = r {
            prop_assert!(matches!(e.status(), 400 | 401 | 403));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The word-wise constant-time token comparison answers what `==` answers, for tokens of
    /// any length around the word size and for ones differing in a single byte anywhere.
    #[test]
    fn token_comparison_word_by_word_agrees_with_plain_equality(
        a in proptest::collection::vec(any::<u8>(), 0..40),
        b in proptest::collection::vec(any::<u8>(), 0..40),
        flip in any::<proptest::sample::Index>(),
        bit in 0u8..8,
    ) {
        prop_assert_eq!(crate::guard::auth::tokens_equal(&a, &b), a == b);
        prop_assert!(crate::guard::auth::tokens_equal(&a, &a));
        if !a.is_empty() {
            let mut c = a.clone();
            c[flip.index(a.len())] ^= 1 << bit;
            prop_assert!(!crate::guard::auth::tokens_equal(&a, &c));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The word-at-a-time hex encoder writes what formatting each byte as `{:02x}` writes,
    /// at every length (whole four-byte steps and the byte-wise tail).
    #[test]
    fn hex_encoding_four_bytes_at_a_time_agrees_with_formatting(
        bytes in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let mut out = alloc::vec![0u8; bytes.len() * 2];
        crate::guard::hex::encode_hex(&bytes, &mut out);
        let expected: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        prop_assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    /// The word-at-a-time hex decoder reads what a digit-by-digit reading of either case
    /// reads, and refuses exactly the strings with a character that is not a hex digit
    /// (anywhere: in a whole eight-digit step or in the tail), or an odd length.
    #[test]
    fn hex_decoding_eight_digits_at_a_time_agrees_with_a_digit_by_digit_reading(
        mut digits in proptest::collection::vec(
            proptest::sample::select(b"0123456789abcdefABCDEF".to_vec()),
            0..80,
        ),
        changed in proptest::option::of((any::<proptest::sample::Index>(), 0u8..0x80)),
    ) {
        if let Some((at, c)) = changed
            && !digits.is_empty()
        {
            let i = at.index(digits.len());
            digits[i] = c;
        }
        let text = String::from_utf8(digits).unwrap();
        let mut out = [0u8; 40];
        let got = crate::guard::hex::decode_hex(&text, &mut out);
        let reference: Option<Vec<u8>> = text.len().is_multiple_of(2)
            .then(|| {
                (0..text.len() / 2)
                    .map(|i| u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()
                        .filter(|_| text.as_bytes()[2 * i..2 * i + 2].iter().all(u8::is_ascii_hexdigit)))
                    .collect()
            })
            .flatten();
        match reference {
            Some(bytes) if bytes.len() <= out.len() => {
                prop_assert_eq!(got, Some(bytes.len()));
                prop_assert_eq!(&out[..bytes.len()], bytes.as_slice());
            }
            _ => prop_assert_eq!(got, None),
        }
    }

    /// The word-at-a-time token character check accepts exactly the tokens whose every
    /// byte is visible ASCII, whatever the length and wherever one bad byte sits.
    #[test]
    fn token_characters_checked_word_by_word_are_exactly_visible_ascii(
        mut bytes in proptest::collection::vec(0x21u8..=0x7e, 1..40),
        at in any::<proptest::sample::Index>(),
        bad in any::<u8>(),
    ) {
        let token = String::from_utf8(bytes.clone()).unwrap();
        prop_assert!(DeviceCredentials::new(DeviceId(1), &token, SECRET, SigningVariant::CalaosBase).is_ok());
        let i = at.index(bytes.len());
        bytes[i] = bad;
        let visible = (0x21..=0x7e).contains(&bad);
        match String::from_utf8(bytes) {
            Ok(token) => {
                let got = DeviceCredentials::new(DeviceId(1), &token, SECRET, SigningVariant::CalaosBase);
                if visible {
                    prop_assert!(got.is_ok());
                } else {
                    prop_assert_eq!(got.unwrap_err(), CredentialError::TokenCharacters);
                }
            }
            Err(_) => prop_assert!(!visible),
        }
    }
}

proptest! {
    /// `from_pairs` reads a header exactly when its name is one of the four in some ASCII
    /// case: any mix of cases is recognised, and one changed character (a byte that differs
    /// only in the case bit, `\r` where a `-` was, any character at all) is not.
    #[test]
    fn header_names_match_in_any_case_and_nothing_else_does(
        which in 0usize..4,
        upper in proptest::collection::vec(any::<bool>(), 16),
        change in proptest::option::of((0usize..16, prop_oneof![
            Just('\r'), Just('@'), Just('['), Just('_'), Just('\u{7f}'), Just('\u{e9}'), any::<char>(),
        ])),
    ) {
        use crate::guard::auth::{AUTHORIZATION, X_AUTH_HMAC, X_AUTH_NONCE, X_AUTH_TIMESTAMP};
        let canonical = [AUTHORIZATION, X_AUTH_TIMESTAMP, X_AUTH_NONCE, X_AUTH_HMAC][which];
        let mut name: String = canonical
            .chars()
            .zip(&upper)
            .map(|(c, &u)| if u { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
            .collect();
        if let Some((at, c)) = change {
            let at = at % name.len();
            name = name.chars().enumerate().map(|(i, x)| if i == at { c } else { x }).collect();
        }
        let expected = name.eq_ignore_ascii_case(canonical);
        let h = AuthHeaders::from_pairs([(name.as_str(), "v")]);
        let read = [h.authorization, h.timestamp, h.nonce, h.hmac];
        for (i, value) in read.iter().enumerate() {
            prop_assert_eq!(value.is_some(), expected && i == which, "{:?}", name);
        }
    }
}

proptest! {
    /// The scheme is `Bearer ` in any ASCII case and nothing else: any mix of cases is
    /// accepted, and one changed character (the case bit flipped on the space, `@` or `[`
    /// beside the letters, a multi-byte character, anything) is refused, exactly as a
    /// case-insensitive comparison decides.
    #[test]
    fn the_bearer_scheme_matches_in_any_case_and_nothing_else_does(
        upper in proptest::collection::vec(any::<bool>(), 7),
        change in proptest::option::of((0usize..7, prop_oneof![
            Just('\0'), Just('@'), Just('['), Just('`'), Just('{'), Just('\u{e9}'), Just('\t'),
            any::<char>(),
        ])),
    ) {
        let mut scheme: String = "Bearer "
            .chars()
            .zip(&upper)
            .map(|(c, &u)| if u { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
            .collect();
        if let Some((at, c)) = change {
            scheme = scheme.chars().enumerate().map(|(i, x)| if i == at { c } else { x }).collect();
        }
        let value = format!("{scheme}{TOKEN}");
        let expected = scheme.len() == 7 && scheme.eq_ignore_ascii_case("Bearer ");
        prop_assert_eq!(
            crate::guard::auth::bearer_token(&value),
            expected.then_some(TOKEN),
            "{:?}", scheme
        );
    }
}

#[test]
fn a_device_id_from_a_token_is_stable_never_zero_and_differs_between_tokens() {
    let a = DeviceId::from_token("a".repeat(64).as_str());
    let b = DeviceId::from_token("b".repeat(64).as_str());
    assert_eq!(a, DeviceId::from_token("a".repeat(64).as_str()));
    assert_ne!(a, b);
    assert_ne!(a.0, 0);
    // Fixed across processes and versions (seed-independent): snapshots rely on it. The
    // low 32 bits of SHA-256("latchkey device id" ‖ token), read little-endian.
    assert_eq!(a, DeviceId(251_824_601));
    assert_eq!(DeviceId(u32::MAX).next(), DeviceId(1));
    assert_eq!(DeviceId(7).next(), DeviceId(8));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The directory answers as a plain map from id to token would, through any sequence of
    /// inserts (new ids, replacements, duplicate tokens refused) and removals: by id, by
    /// token, its length and its contents.
    #[test]
    fn device_directory_agrees_with_a_plain_map_through_inserts_and_removals(
        ops in proptest::collection::vec((any::<bool>(), 1u32..12, 0usize..10), 1..80),
        seed in any::<u8>(),
    ) {
        let token = |t: usize| format!("token-{t}-{}", "x".repeat(t * 7));
        let mut d = DeviceDirectory::new(&mut rng(seed));
        let mut model: alloc::collections::BTreeMap<u32, usize> = alloc::collections::BTreeMap::new();
        for (insert, id, t) in ops {
            if insert {
                let creds = DeviceCredentials::new(DeviceId(id), &token(t), SECRET, SigningVariant::CalaosBase).unwrap();
                let taken = model.iter().any(|(other, tt)| *tt == t && *other != id);
                let got = d.insert(creds);
                if taken {
                    prop_assert_eq!(got.unwrap_err(), CredentialError::DuplicateToken);
                } else {
                    let old = got.unwrap().map(|c| c.token().to_string());
                    prop_assert_eq!(old, model.insert(id, t).map(token));
                }
            } else {
                let old = d.remove(DeviceId(id)).map(|c| c.token().to_string());
                prop_assert_eq!(old, model.remove(&id).map(token));
            }
            prop_assert_eq!(d.len(), model.len());
            for id in 1u32..12 {
                prop_assert_eq!(d.get(DeviceId(id)).map(|c| c.token().to_string()), model.get(&id).map(|t| token(*t)));
            }
            for t in 0usize..10 {
                let owner = model.iter().find(|(_, tt)| **tt == t).map(|(id, _)| DeviceId(*id));
                prop_assert_eq!(d.find_by_token(&token(t)).map(DeviceCredentials::id), owner);
            }
            let mut ids: Vec<u32> = d.iter().map(|c| c.id().0).collect();
            ids.sort_unstable();
            prop_assert_eq!(ids, model.keys().copied().collect::<Vec<_>>());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Timestamps read eight digits at a time are what `str::parse` reads, for every length
    /// up to 19 digits; a non-digit anywhere, a leading zero and 20 digits are refused.
    #[test]
    fn timestamps_read_eight_digits_at_a_time_agree_with_str_parse(
        value in prop_oneof![any::<u64>(), 0u64..100_000, 1_000_000_000u64..10_000_000_000],
        bad in proptest::option::of((any::<proptest::sample::Index>(), any::<u8>())),
    ) {
        let text = value.to_string();
        if text.len() <= 19 {
            prop_assert_eq!(crate::guard::auth::parse_timestamp(&text), Some(value));
        } else {
            prop_assert_eq!(crate::guard::auth::parse_timestamp(&text), None);
        }
        prop_assert_eq!(crate::guard::auth::parse_timestamp(&format!("0{text}")), None);
        if let Some((at, c)) = bad {
            let mut bytes = text.into_bytes();
            let i = at.index(bytes.len());
            bytes[i] = c;
            if let Ok(changed) = String::from_utf8(bytes) {
                let expected = if changed.len() > 19 || (changed.len() > 1 && changed.starts_with('0')) {
                    None
                } else {
                    changed.parse::<u64>().ok().filter(|_| changed.bytes().all(|b| b.is_ascii_digit()))
                };
                prop_assert_eq!(crate::guard::auth::parse_timestamp(&changed), expected);
            }
        }
    }
}
