//! `framing`: throughput of latchkey's stream decoder over 1 MiB of mixed traffic — the
//! REGISTER, INVITE-with-SDP and 200 OK in turn, a CRLFCRLF keep-alive ping after every eighth
//! message — fed in 4 KiB reads, as a TLS record or socket read delivers it, counting frames.
//! `latchkey+parse` also parses every framed message: wire to message.
//!
//! No peer here: neither named peer publishes a stream decoder. rsip parses only complete
//! messages, and ezk-sip-types publishes the line splitter (`PullParser`) that ezk's
//! tokio-based `StreamingDecoder` is built from, but the decoder itself lives in ezk-sip-core.

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use latchkey_benches::{checked, latchkey, stream};

const STREAM_BYTES: usize = 1 << 20;
const READ: usize = 4096;

fn framing(c: &mut Criterion) {
    let s = stream(STREAM_BYTES);
    let mut g = c.benchmark_group("framing");
    g.throughput(Throughput::Bytes(s.bytes.len() as u64));
    // A pass takes milliseconds: a few samples of equal size fit the measurement time.
    g.sampling_mode(SamplingMode::Flat).sample_size(20);
    for (id, parse) in [("latchkey", false), ("latchkey+parse", true)] {
        let first = latchkey::frame(&s.bytes, READ, parse)
            .map_err(|e| e.0)
            .and_then(|n| {
                if (n.messages, n.pings) == (s.messages, s.pings) {
                    Ok(n)
                } else {
                    Err(format!(
                        "framed {n:?}, the stream holds {} messages and {} pings",
                        s.messages, s.pings
                    ))
                }
            });
        if checked("framing", id, "mixed_1mib", first).is_some() {
            g.bench_function(id, |b| b.iter(|| latchkey::frame(&s.bytes, READ, parse)));
        }
    }
    g.finish();
}

criterion_group!(benches, framing);
criterion_main!(benches);
