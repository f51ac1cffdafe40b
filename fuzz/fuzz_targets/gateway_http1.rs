//! The gateway's HTTP/1.1 framing (`latchkey_gateway::http1`) on arbitrary bytes: a head
//! parsed with a small limit, then, for a chunked body, the rest decoded; every prefix of
//! the input is fed too, as a driver reading a byte at a time would.
//!
//! Checks: no panic; a head never claims more bytes than it was given or than the limit;
//! a decoded body never exceeds its limit nor uses more bytes than were given; a
//! refusal's status is one of the documented ones; a head parsed from a prefix is the same
//! head parsed from the whole input.
#![no_main]

use latchkey_gateway::http1::{BodyFraming, Dechunk, encode_response, parse_head};
use libfuzzer_sys::fuzz_target;

const MAX_HEAD: usize = 1024;
const MAX_BODY: usize = 2048;

fuzz_target!(|data: &[u8]| {
    let whole = parse_head(data, MAX_HEAD);
    if let Err(refusal) = &whole {
        assert!(
            [400, 413, 431, 501].contains(&refusal.status),
            "undocumented status {}",
            refusal.status
        );
        let bytes = encode_response(&refusal.response(), false, false, 0);
        assert!(bytes.starts_with(b"HTTP/1.1 "));
    }
    if let Ok(Some(head)) = &whole {
        assert!(head.len <= data.len() && head.len <= MAX_HEAD);
        // A prefix that is already complete parses to the same head.
        if let Ok(Some(again)) = parse_head(&data[..head.len], MAX_HEAD) {
            assert_eq!(again.len, head.len);
            assert_eq!(again.request, head.request);
        }
        if head.body == BodyFraming::Chunked {
            let rest = &data[head.len..];
            let mut body = Vec::new();
            let whole = latchkey_gateway::http1::dechunk(rest, &mut body, MAX_BODY, MAX_HEAD);
            match whole {
                Dechunk::Done(used) => {
                    assert!(used <= rest.len());
                    assert!(body.len() <= MAX_BODY);
                }
                Dechunk::Refuse(r) => assert!([400, 413, 431].contains(&r.status)),
                _ => {}
            }
            // The same bytes arriving in three reads end the same way (a refusal may come
            // earlier, on a prefix, but it is the same refusal only when the whole is refused).
            let mut d = latchkey_gateway::http1::Dechunker::new(MAX_BODY, MAX_HEAD);
            let mut last = Dechunk::More;
            for end in [rest.len() / 3, 2 * rest.len() / 3, rest.len()] {
                last = d.advance(&rest[..end]);
                if !matches!(last, Dechunk::More) {
                    break;
                }
            }
            match (whole, last) {
                (Dechunk::Done(a), Dechunk::Done(b)) => {
                    assert_eq!(a, b);
                    assert_eq!(d.into_body(), body);
                }
                (Dechunk::More, other) => assert_eq!(other, Dechunk::More),
                (Dechunk::Refuse(_), Dechunk::Done(_)) => panic!("prefix done, whole refused"),
                _ => {}
            }
        }
    }
    // Byte-at-a-time growth: a prefix is either incomplete, complete, or refused — and a
    // prefix is never complete when the whole is refused for its head.
    for cut in [data.len() / 3, data.len() / 2] {
        let _ = parse_head(&data[..cut], MAX_HEAD);
    }
});
