//! Arbitrary pasted text into the redirect parser (users paste whatever their browser shows).
#![no_main]

use latchkey_oauth_core::authorize::{AuthorizeOptions, authorization_request, parse_redirect};
use latchkey_oauth_core::profile::Profile;
use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let profile = Profile::builtin("watts").expect("shipped profile");
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let req = authorization_request(&profile, &AuthorizeOptions::default(), &mut rng)
        .expect("watts has every field");
    let codes = ["code".to_owned(), "authorization_code".to_owned()];
    match parse_redirect(s, &req, &codes) {
        Ok(code) => assert!(!code.code.is_empty()),
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
