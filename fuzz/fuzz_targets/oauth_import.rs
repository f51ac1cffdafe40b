//! Arbitrary files into the saved-session import (users point it at whatever file they have).
#![no_main]

use latchkey_oauth_core::import::{ImportFormat, import_session};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the format: detected, or one of the named ones.
    let (format, body) = match data.split_first() {
        Some((b, rest)) => (ImportFormat::ALL.get(usize::from(*b % 3)).copied(), rest),
        None => (None, data),
    };
    match import_session(body, format, 1_767_225_600) {
        Ok(got) => {
            // A session without a refresh token or an expiry is never produced.
            assert!(got.tokens.refresh_token.is_some());
            assert!(got.tokens.expires_at.is_some());
            if let Some(f) = format {
                assert_eq!(got.format, f);
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
