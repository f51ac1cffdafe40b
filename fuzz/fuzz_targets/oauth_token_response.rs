//! Arbitrary token endpoint answers: status, a Date / Retry-After header and a body.
#![no_main]

use latchkey_oauth_core::http::HttpResponse;
use latchkey_oauth_core::profile::Profile;
use latchkey_oauth_core::response::{jwt_exp, parse_http_date, parse_token_response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let status = 100 + u16::from_be_bytes([data[0], data[1]]) % 500;
    let split = usize::from(data[2]).min(data.len() - 3);
    let (header, body) = data[3..].split_at(split);
    let header = String::from_utf8_lossy(header).into_owned();
    let resp = HttpResponse::new(status, body.to_vec())
        .with_header("Date", header.clone())
        .with_header("Retry-After", header.clone());
    let now = 1_800_000_000;
    for name in ["generic", "utec"] {
        let profile = Profile::builtin(name).expect("shipped profile");
        match parse_token_response(&resp, now, &profile.response) {
            Ok(t) => {
                assert!(!t.access_token.is_empty());
                assert!(
                    t.expires_at
                        .is_none_or(|e| e >= now.saturating_sub(u64::from(u32::MAX)))
                );
            }
            Err(e) => {
                let _ = (e.class(), e.retry_after(), e.to_string());
            }
        }
    }
    let _ = parse_http_date(&header);
    let _ = jwt_exp(&String::from_utf8_lossy(body));
});
