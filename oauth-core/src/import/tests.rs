use super::*;
use proptest::prelude::*;

const NOW: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

/// What `BticinoProxy.exchangeCode` returns and `_enrich` extends, saved by
/// `examples/auth_and_save.js` (s-dimaio/BTicinoDoorEntry).
const BTICINO_ENRICHED: &str = r#"{
  "b2cAccessToken": "eyJ.access.sig",
  "b2cRefreshToken": "eyJ.refresh.sig",
  "expiresIn": 3600,
  "tokenType": "Bearer",
  "receivedAt": "2025-12-31T23:30:00.000Z",
  "expiresAt": "2026-01-01T00:30:00.000Z",
  "receivedAtMs": 1767223800000,
  "expiresAtMs": 1767227400000
}"#;

/// `Wheresitat/uteclocal-HA :: gateway/main.py` `config_data` after a login.
const UTEC_HA: &str = r#"{
  "api_base_url": "https://api.u-tec.com",
  "oauth_base_url": "https://oauth.u-tec.com/",
  "action_path": "/action",
  "access_key": "AK-123",
  "secret_key": "SK-456",
  "scope": "openapi",
  "redirect_uri": "https://example.org/callback",
  "access_token": "utec-access",
  "refresh_token": "utec-refresh",
  "token_expires_at": "2026-01-01T01:00:00.123456",
  "status_poll_interval": 60,
  "auto_refresh_enabled": true,
  "refresh_buffer_minutes": 15
}"#;

/// `Wheresitat/uteclocal :: gateway/config.py` after `/oauth/exchange`.
const UTEC_LOCAL: &str = r#"{
  "base_url": "https://api.u-tec.com",
  "oauth_base_url": "https://oauth.u-tec.com",
  "devices_path": "/openapi/v1/devices",
  "action_path": "/action",
  "access_key": "AK-123",
  "secret_key": "SK-456",
  "auth_code": "",
  "access_token": "utec-access",
  "refresh_token": "utec-refresh",
  "token_type": "Bearer",
  "token_expires_in": 7200,
  "log_level": "INFO",
  "scope": "openapi",
  "redirect_url": "https://example.org/cb",
  "status_poll_seconds": 60
}"#;

#[test]
fn bticino_cache_is_detected_and_keeps_the_saved_expiry() {
    let got = import_session(BTICINO_ENRICHED.as_bytes(), None, NOW).unwrap();
    assert_eq!(got.format, ImportFormat::BticinoTokenCache);
    assert_eq!(got.tokens.access_token.expose(), "eyJ.access.sig");
    assert_eq!(
        got.tokens.refresh_token.as_ref().map(Secret::expose),
        Some("eyJ.refresh.sig")
    );
    assert_eq!(got.tokens.expires_at, Some(1_767_227_400));
    assert_eq!(got.tokens.expiry_source, ExpirySource::Imported);
    assert_eq!(got.tokens.token_type, "Bearer");
    // Received 30 minutes before the import, as receivedAtMs says.
    assert_eq!(got.tokens.received_at, 1_767_223_800);
    assert!(got.notes.is_empty());
    assert_eq!(got.client_id, None);
}

#[test]
fn bticino_cache_without_ms_fields_uses_the_iso_expiry() {
    // The shape `BticinoProxy` returns before enrichment.
    let doc = r#"{"b2cAccessToken":"a","b2cRefreshToken":"r","expiresIn":3600,
        "tokenType":"Bearer","receivedAt":"2025-12-31T23:30:00.000Z",
        "expiresAt":"2026-01-01T00:30:00.000Z"}"#;
    let got = import_session(doc.as_bytes(), None, NOW).unwrap();
    assert_eq!(got.tokens.expires_at, Some(1_767_227_400));
}

#[test]
fn bticino_cache_with_only_received_at_and_lifetime_adds_them() {
    let doc = r#"{"b2cAccessToken":"a","b2cRefreshToken":"r","expiresIn":"900",
        "receivedAt":"2026-01-01T00:00:00Z"}"#;
    let got = import_session(doc.as_bytes(), None, NOW).unwrap();
    assert_eq!(got.tokens.expires_at, Some(NOW + 900));
}

#[test]
fn bticino_cache_without_received_at_takes_it_from_expiry_minus_lifetime() {
    let doc = r#"{"b2cAccessToken":"a","b2cRefreshToken":"r","expiresIn":3600,
        "expiresAt":"2026-01-01T00:30:00Z"}"#;
    let got = import_session(doc.as_bytes(), None, NOW).unwrap();
    assert_eq!(got.tokens.received_at, NOW - 1800);
    // Never later than the import, whatever the file claims.
    let doc = r#"{"b2cAccessToken":"a","b2cRefreshToken":"r","receivedAt":"2027-01-01T00:00:00Z"}"#;
    let got = import_session(doc.as_bytes(), None, NOW).unwrap();
    assert_eq!(got.tokens.received_at, NOW);
}

#[test]
fn utec_config_with_expiry_and_lifetime_gives_the_received_time_else_the_import_time() {
    let doc = r#"{"access_token":"a","refresh_token":"r","access_key":"AK","secret_key":"SK",
        "token_expires_in":7200,"token_expires_at":"2026-01-01T01:00:00"}"#;
    let got = import_session(doc.as_bytes(), None, NOW).unwrap();
    assert_eq!(got.format, ImportFormat::UtecGatewayConfig);
    assert_eq!(got.tokens.received_at, NOW - 3600);
    let got = import_session(UTEC_HA.as_bytes(), None, NOW).unwrap();
    assert_eq!(got.tokens.received_at, NOW, "no lifetime: the import time");
}

#[test]
fn raw_token_names_are_read_when_the_format_is_named() {
    // `_enrich` accepts raw token-endpoint fields; so does the import.
    let doc = r#"{"access_token":"a","refresh_token":"r","expires_in":60,
        "receivedAtMs":1767225600000,"id_token":"i","scope":"openid"}"#;
    let got = import_session(doc.as_bytes(), Some(ImportFormat::BticinoTokenCache), NOW).unwrap();
    assert_eq!(got.tokens.expires_at, Some(NOW + 60));
    assert_eq!(got.tokens.id_token.as_ref().map(Secret::expose), Some("i"));
    assert_eq!(got.tokens.scope.as_deref(), Some("openid"));
}

#[test]
fn an_unknown_expiry_is_taken_as_expired_with_a_note() {
    let doc = r#"{"b2cAccessToken":"a","b2cRefreshToken":"r"}"#;
    let got = import_session(doc.as_bytes(), None, NOW).unwrap();
    assert_eq!(got.tokens.expires_at, Some(NOW));
    assert_eq!(got.notes.len(), 1);
    assert!(got.notes[0].contains("refreshed at first use"));
}

#[test]
fn utec_ha_config_gives_tokens_client_and_endpoint() {
    let got = import_session(UTEC_HA.as_bytes(), None, NOW).unwrap();
    assert_eq!(got.format, ImportFormat::UtecGatewayConfig);
    assert_eq!(got.tokens.access_token.expose(), "utec-access");
    // Naive ISO time written by `datetime.utcnow().isoformat()`: UTC.
    assert_eq!(got.tokens.expires_at, Some(NOW + 3600));
    assert_eq!(got.client_id.as_deref(), Some("AK-123"));
    assert_eq!(
        got.client_secret.as_ref().map(Secret::expose),
        Some("SK-456")
    );
    assert_eq!(
        got.redirect_uri.as_deref(),
        Some("https://example.org/callback")
    );
    assert_eq!(
        got.token_endpoint.as_deref(),
        Some("https://oauth.u-tec.com/token")
    );
    assert_eq!(got.tokens.scope.as_deref(), Some("openapi"));
    assert!(got.notes.is_empty());
}

#[test]
fn uteclocal_config_without_an_expiry_time_refreshes_at_first_use() {
    // `token_expires_in` has no base time: the age of the token is unknown.
    let got = import_session(UTEC_LOCAL.as_bytes(), None, NOW).unwrap();
    assert_eq!(got.tokens.expires_at, Some(NOW));
    assert_eq!(got.redirect_uri.as_deref(), Some("https://example.org/cb"));
    assert_eq!(got.notes.len(), 1);
}

#[test]
fn a_file_without_a_refresh_token_is_refused_by_name() {
    let doc = r#"{"access_key":"k","access_token":"a","refresh_token":""}"#;
    let err = import_session(doc.as_bytes(), None, NOW).unwrap_err();
    assert_eq!(
        err,
        ImportError::Missing {
            format: ImportFormat::UtecGatewayConfig,
            field: "refresh_token"
        }
    );
    assert_eq!(
        err.to_string(),
        "utec-config: the file has no refresh_token"
    );
}

#[test]
fn a_wrong_typed_field_is_named() {
    let doc = r#"{"b2cAccessToken":"a","b2cRefreshToken":"r","expiresAtMs":"soon"}"#;
    let err = import_session(doc.as_bytes(), None, NOW).unwrap_err();
    assert!(
        matches!(
            err,
            ImportError::Invalid {
                field: "expiresAtMs",
                ..
            }
        ),
        "{err:?}"
    );
    let doc = r#"{"b2cAccessToken":"a","b2cRefreshToken":["r"]}"#;
    let err = import_session(doc.as_bytes(), None, NOW).unwrap_err();
    assert_eq!(
        err.to_string(),
        "bticino-token-cache: b2cRefreshToken is not a string"
    );
    let doc = r#"{"access_key":"k","access_token":"a","refresh_token":"r","token_expires_at":"tomorrow"}"#;
    let err = import_session(doc.as_bytes(), None, NOW).unwrap_err();
    assert_eq!(
        err.to_string(),
        "utec-config: token_expires_at is not an ISO 8601 date and time"
    );
}

#[test]
fn errors_never_quote_a_secret() {
    let doc = r#"{"b2cAccessToken":"a","b2cRefreshToken":"s3cr3t-value","expiresAtMs":-5}"#;
    let err = import_session(doc.as_bytes(), None, NOW).unwrap_err();
    assert!(!err.to_string().contains("s3cr3t"));
    let broken = br#"{"b2cRefreshToken":"s3cr3t-value",}"#;
    let err = import_session(broken, None, NOW).unwrap_err();
    assert!(matches!(err, ImportError::Json { .. }));
    assert!(!err.to_string().contains("s3cr3t"));
    let got = import_session(BTICINO_ENRICHED.as_bytes(), None, NOW).unwrap();
    assert!(!format!("{got:?}").contains("eyJ.refresh.sig"));
}

#[test]
fn undecidable_and_non_object_files_are_explained() {
    let ambiguous = br#"{"access_token":"a","refresh_token":"r"}"#;
    let err = import_session(ambiguous, None, NOW).unwrap_err();
    assert_eq!(err, ImportError::UnknownFormat);
    assert!(
        err.to_string()
            .contains("bticino-token-cache (b2cRefreshToken")
    );
    let both = br#"{"b2cRefreshToken":"r","access_key":"k"}"#;
    assert_eq!(
        import_session(both, None, NOW).unwrap_err(),
        ImportError::UnknownFormat
    );
    assert_eq!(
        import_session(b"[1,2]", None, NOW).unwrap_err(),
        ImportError::NotAnObject
    );
    let big = vec![b' '; MAX_IMPORT_BYTES + 1];
    assert!(matches!(
        import_session(&big, None, NOW).unwrap_err(),
        ImportError::TooLarge { .. }
    ));
}

#[test]
fn formats_fit_their_providers_only() {
    use ImportFormat::*;
    assert!(BticinoTokenCache.fits_provider("bticino-diy"));
    assert!(BticinoTokenCache.fits_provider("bticino-c100x"));
    assert!(!BticinoTokenCache.fits_provider("utec"));
    assert!(!BticinoTokenCache.fits_provider("watts"));
    assert!(UtecGatewayConfig.fits_provider("utec"));
    assert!(!UtecGatewayConfig.fits_provider("bticino-diy"));
    assert!(UtecGatewayConfig.fits_provider("generic"));
    assert!(BticinoTokenCache.fits_provider("my-own-profile"));
    for f in ImportFormat::ALL {
        assert_eq!(ImportFormat::from_name(f.name()), Some(f));
    }
    assert_eq!(ImportFormat::from_name("json"), None);
}

#[test]
fn iso8601_forms_and_offsets() {
    assert_eq!(parse_iso8601("2026-01-01T00:00:00Z"), Some(NOW));
    assert_eq!(parse_iso8601("2026-01-01T00:00:00"), Some(NOW));
    assert_eq!(parse_iso8601("2026-01-01 00:00:00.5"), Some(NOW));
    assert_eq!(parse_iso8601("2026-01-01T01:00:00+01:00"), Some(NOW));
    assert_eq!(parse_iso8601("2025-12-31T23:00:00-0100"), Some(NOW));
    assert_eq!(parse_iso8601("2024-02-29T00:00:00Z"), Some(1_709_164_800));
    for bad in [
        "2025-02-29T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01",
        "2026-01-01T00:00:00.Z",
        "2026-01-01T00:00:00+1",
        "2026-01-01T00:00:00+\u{e9}1",
        "2026-01-01T00:00:00+1\u{e9}",
        "2026-01-01T00:00:00 UTC",
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:00:00+01:00",
        "２026-01-01T00:00:00Z",
    ] {
        assert_eq!(parse_iso8601(bad), None, "{bad}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn iso8601_round_trips_every_second_of_four_centuries(t in 0u64..253_402_300_800) {
        // Formatted by the inverse of the parser's date arithmetic, parsed back.
        let text = crate::response::rfc3339(t);
        prop_assert_eq!(parse_iso8601(&text), Some(t));
    }

    #[test]
    fn iso8601_never_panics(s in "\\PC{0,40}", tail in "[0-9+:Z.\u{e9}-]{0,8}") {
        let _ = parse_iso8601(&s);
        let _ = parse_iso8601(&format!("2026-01-01T00:00:00{tail}"));
    }

    #[test]
    fn import_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = import_session(&bytes, None, NOW);
    }

    #[test]
    fn import_of_any_object_never_panics(
        keys in proptest::collection::vec(
            prop::sample::select(vec![
                "b2cAccessToken", "b2cRefreshToken", "expiresAtMs", "expiresAt", "receivedAt",
                "receivedAtMs", "expiresIn", "access_key", "access_token", "refresh_token",
                "token_expires_at", "oauth_base_url", "secret_key", "scope",
            ]),
            0..8,
        ),
        values in proptest::collection::vec(
            prop_oneof![
                Just("null".to_owned()),
                Just("true".to_owned()),
                any::<i64>().prop_map(|n| n.to_string()),
                any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| f.to_string()),
                "[ -~]{0,30}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            ],
            8,
        ),
    ) {
        let body: Vec<String> = keys
            .iter()
            .zip(&values)
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect();
        let doc = format!("{{{}}}", body.join(","));
        for format in [None, Some(ImportFormat::BticinoTokenCache), Some(ImportFormat::UtecGatewayConfig)] {
            if let Ok(got) = import_session(doc.as_bytes(), format, NOW) {
                prop_assert!(got.tokens.refresh_token.is_some());
                prop_assert!(got.tokens.expires_at.is_some());
            }
        }
    }
}
