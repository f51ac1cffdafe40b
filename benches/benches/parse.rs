//! `parse`: one whole message from bytes to each implementation's message type — start line,
//! headers, body — and nothing more. Typed header views are the `parse_typed` group.
//!
//! What "parse" means differs by design, and the numbers should be read with it in mind:
//! latchkey indexes the header fields as borrowed slices and leaves the Request-URI and the
//! header values for on-demand views; rsip tokenizes with nom and copies every header into an
//! owned `String` inside a `Header` enum (parsing the Request-URI); ezk-sip-types splits lines,
//! parses the start line (Request-URI included) and copies each header value into its
//! `Headers` map.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use latchkey_benches::{checked, ezk_peer, inputs, latchkey, rsip_peer};

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    for (name, raw) in inputs::PARSE {
        g.throughput(Throughput::Bytes(raw.len() as u64));
        if checked("parse", "latchkey", name, latchkey::parse(raw)).is_some() {
            g.bench_with_input(BenchmarkId::new("latchkey", name), raw, |b, raw| {
                b.iter(|| latchkey::parse(black_box(raw)));
            });
        }
        if checked("parse", "rsip", name, rsip_peer::parse(raw)).is_some() {
            g.bench_with_input(BenchmarkId::new("rsip", name), raw, |b, raw| {
                b.iter(|| rsip_peer::parse(black_box(raw)));
            });
        }
        let buffer = Bytes::from_static(raw);
        if checked("parse", "ezk", name, ezk_peer::parse(&buffer)).is_some() {
            g.bench_with_input(BenchmarkId::new("ezk", name), &buffer, |b, buffer| {
                b.iter(|| ezk_peer::parse(black_box(buffer)));
            });
        }
    }
    g.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
