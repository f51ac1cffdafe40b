//! `parse_typed`: a whole parse, then the typed core headers a transaction layer reads for
//! every message — the top Via (its branch), From and To (URI and tag), CSeq and Call-ID —
//! through each implementation's own typed accessors. The same fields for everyone
//! ([`latchkey_benches::Core`]); a test in the crate checks that all three read the same values.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use latchkey_benches::{Core, checked, ezk_peer, inputs, latchkey, rsip_peer};

/// Hand the typed values to the optimizer as used.
fn consume(core: &Core<'_>) {
    black_box(core);
}

fn parse_typed(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse_typed");
    for (name, raw) in inputs::TYPICAL {
        g.throughput(Throughput::Bytes(raw.len() as u64));
        if checked(
            "parse_typed",
            "latchkey",
            name,
            latchkey::core(raw, consume),
        )
        .is_some()
        {
            g.bench_with_input(BenchmarkId::new("latchkey", name), raw, |b, raw| {
                b.iter(|| latchkey::core(black_box(raw), consume));
            });
        }
        if checked("parse_typed", "rsip", name, rsip_peer::core(raw, consume)).is_some() {
            g.bench_with_input(BenchmarkId::new("rsip", name), raw, |b, raw| {
                b.iter(|| rsip_peer::core(black_box(raw), consume));
            });
        }
        let buffer = Bytes::from_static(raw);
        if checked("parse_typed", "ezk", name, ezk_peer::core(&buffer, consume)).is_some() {
            g.bench_with_input(BenchmarkId::new("ezk", name), &buffer, |b, buffer| {
                b.iter(|| ezk_peer::core(black_box(buffer), consume));
            });
        }
    }
    g.finish();
}

criterion_group!(benches, parse_typed);
criterion_main!(benches);
