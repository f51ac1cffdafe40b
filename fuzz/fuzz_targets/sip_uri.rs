//! Arbitrary text into the SIP/SIPS/tel URI parser and its accessors.
#![no_main]

use latchkey_protocol::sip::uri::{self, Uri};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match Uri::parse(s) {
        Ok(Uri::Sip(u)) => {
            let _ = (
                u.user(),
                u.password(),
                u.host(),
                u.port(),
                u.params().iter().count(),
            );
            let _ = u.headers().count();
            if let Some(user) = u.user() {
                let _ = uri::unescape(user).count();
            }
            let _ = u.host().to_string();
        }
        Ok(other) => {
            let _ = other.scheme();
        }
        Err(e) => {
            assert!(e.offset() <= s.len());
            let _ = e.to_string();
        }
    }
});
