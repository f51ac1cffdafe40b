//! Arbitrary TOML into the provider profile loader (users write their own profiles).
#![no_main]

use latchkey_oauth_core::profile::Profile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match Profile::from_toml(s) {
        Ok(p) => {
            let _ = (
                p.token_endpoint(),
                p.authorization_endpoint(),
                p.scope(),
                p.client_id(),
            );
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
