//! The stream framer under arbitrary chunking: the frames (and the first error) must not
//! depend on how the bytes were split, and the buffer never grows past the limits.
#![no_main]

use latchkey_protocol::sip::framing::{Decoder, Frame, Limits};
use libfuzzer_sys::fuzz_target;

fn run(data: &[u8], cuts: &[u8]) -> Vec<Result<Vec<u8>, String>> {
    let limits = Limits::default();
    let cap = limits.max_message_bytes + 4096;
    let mut d = Decoder::new(limits);
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = if cuts.is_empty() {
            rest.len()
        } else {
            usize::from(cuts[i % cuts.len()]) % 64 + 1
        };
        let n = n.min(rest.len());
        d.feed(&rest[..n]);
        rest = &rest[n..];
        i += 1;
        while let Some(f) = d.next_frame() {
            match f {
                Ok(Frame::Message(b)) => out.push(Ok(b.to_vec())),
                Ok(Frame::Ping) => out.push(Ok(b"PING".to_vec())),
                Ok(Frame::Pong) => out.push(Ok(b"PONG".to_vec())),
                Ok(_) => out.push(Ok(b"OTHER".to_vec())),
                Err(e) => {
                    out.push(Err(e.to_string()));
                    return out;
                }
            }
        }
        assert!(d.buffered() <= cap, "buffered {} bytes", d.buffered());
    }
    out
}

fuzz_target!(|input: &[u8]| {
    if input.len() < 2 {
        return;
    }
    let ncuts = usize::from(input[0]) % 16;
    let (cuts, data) = input[1..].split_at(ncuts.min(input.len() - 1));
    let whole = run(data, &[]);
    let chunked = run(data, cuts);
    assert_eq!(whole, chunked, "frames depend on chunking");
});
