//! Arbitrary text into the digest challenge and credentials parsers.
#![no_main]

use latchkey_protocol::sip::digest::{Challenge, Credentials};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = Challenge::parse(s) {
        let _ = e.to_string();
    }
    if let Err(e) = Credentials::parse(s) {
        let _ = e.to_string();
    }
});
