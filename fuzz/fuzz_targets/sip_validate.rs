//! Arbitrary bytes into the strict check, for both transports; a fault's offset is always
//! inside the input.
#![no_main]

use latchkey_protocol::sip::validate::{self, Options};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for options in [
        Options::stream(),
        Options::datagram(),
        Options::datagram().with_rfc2543_compat(true),
    ] {
        match validate::check(data, options) {
            Ok(m) => {
                // Accepted messages have every mandatory typed header.
                assert!(
                    m.cseq().is_ok() && m.call_id().is_ok() && m.from().is_ok() && m.to().is_ok()
                );
                assert!(m.top_via().is_ok());
            }
            Err(v) => {
                assert!(v.offset <= data.len(), "offset {} past the input", v.offset);
                let _ = v.to_string();
            }
        }
    }
});
