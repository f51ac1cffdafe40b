//! `guard`: the cost of authenticating one RemoteUI panel request, and of the per-address
//! rate limit alone, over 1,000,000 distinct client addresses — latchkey's guard side by
//! side with the HMAC it must compute anyway and with `governor`'s keyed limiter.
//!
//! * `full_check/1m_addresses` — [`Guard::authenticate_device`] on calaos_base headers
//!   picked out of a request's header list: the attempt charged to the client's GCRA cell
//!   (1,000,000 distinct /64s tracked at once, each request from the next one), bearer,
//!   timestamp and nonce checks, the token found in a [`DeviceDirectory`], the HMAC verified
//!   in constant time, the nonce recorded in the replay cache (≈120,000 live entries), and
//!   `handle_timeout` whenever `poll_timeout` says so, as a driver would. Virtual time
//!   advances 1 ms per request; the quota is long-lived (one per hour with a burst of
//!   1,000,000, so a cell lives an hour and all 1,000,000 stay tracked) and generous (no
//!   request is refused — the loop counts refusals and the bench aborts on any). GCRA costs
//!   the same whatever the quota. Requests are signed 128 at a time, untimed, just before
//!   they are checked, so their headers are in cache as a server's freshly read ones are.
//! * `full_check/1k_addresses` — the same with 1,000 addresses (the rate cells stay in
//!   cache; the replay cache is as large as above). `full_check/1k_addresses_hot` — 1,000
//!   addresses and 100 ms per request, so the replay cache holds ≈1,200 nonces and every
//!   table stays in cache: the guard's own work without memory latency.
//! * `hmac_alone/from_key` — HMAC-SHA256 keyed with the device secret, over the same
//!   signing string, compared to the 32 presented bytes in constant time: what calaos_base
//!   does per request. `hmac_alone/keyed_state` — the same from a pre-keyed state (the guard
//!   kept one per device before it kept the next), and `hmac_alone/prefixed` from a state
//!   that has also absorbed the token and the separator, as the guard's credentials now
//!   keep it: the part of `full_check` that is pure HMAC. The token is shaped as
//!   calaos_base issues them (64 hex digits, one SHA-256 block), so the three take six,
//!   four and three compressions.
//! * `rate_limit/latchkey` — [`RateLimiter::check`] alone on 1,000,000 distinct keys.
//!   `rate_limit/governor` — `governor` 0.10's `check_key` on a `DashMap` keyed limiter
//!   with the same quota and keys, with its default clock (quanta, read on every check) and
//!   with its `FakeRelativeClock` (no clock read), so both the deployed cost and the data
//!   structure alone are visible.
//!
//! Memory per tracked address is printed on stderr: exact heap bytes for latchkey's tables,
//! and the resident-set growth (from `/proc/self/statm`) of filling each limiter with
//! 1,000,000 keys.
//!
//! Under `cargo test` (criterion's test mode, which runs each benchmark once as a smoke
//! check) the setting shrinks to 10,000 addresses and warm-up requests: filling 1,000,000
//! in an unoptimised build took minutes of every CI run and measured nothing. The figures
//! come from `cargo bench`, which passes `--bench` and gets the full setting.

use std::hint::black_box;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::{Duration, Instant as WallInstant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use governor::clock::FakeRelativeClock;
use hmac::{Hmac, KeyInit as _, Mac as _};
use latchkey_benches::guard_setting::{self, SECRET, TOKEN};
use latchkey_protocol::guard::{
    AddressPolicy, AuthHeaders, ClientKey, DeviceCredentials, DeviceDirectory, DeviceId, Guard,
    Now, Quota, RateLimiter, SignedHeaders, Signer, SigningVariant,
};
use latchkey_protocol::time::Instant;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sha2::Sha256;

/// Requests signed, then checked, at a time in the timed loops (about 40 KiB of headers).
const BATCH: u64 = 128;

/// Client addresses (and warm-up requests) of the full setting.
const FULL_KEYS: u64 = 1_000_000;

/// Client addresses (and warm-up requests): [`FULL_KEYS`] when benchmarking, 10,000 in
/// criterion's test mode (see the module docs).
fn key_count() -> u64 {
    if std::env::args().any(|a| a == "--bench") {
        FULL_KEYS
    } else {
        10_000
    }
}
const T0: u64 = 1_767_225_600;

/// Client `i`: its own IPv6 /64.
fn ip(i: u64) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from_bits(
        (0x2001_0db8_u128 << 96) | (u128::from(i) << 64) | 1,
    ))
}

fn keys() -> Vec<ClientKey> {
    let p = AddressPolicy::default();
    (0..key_count()).map(|i| p.key(ip(i))).collect()
}

/// Resident set size in bytes (Linux; 0 elsewhere).
fn rss() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn mib(b: usize) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// The header values a panel sent, as the server's HTTP parser hands them over.
struct Request {
    timestamp: String,
    nonce: String,
    hmac: String,
}

impl From<SignedHeaders> for Request {
    fn from(h: SignedHeaders) -> Self {
        Request {
            timestamp: h.timestamp().to_owned(),
            nonce: h.nonce().to_owned(),
            hmac: h.hmac().to_owned(),
        }
    }
}

/// The upgrade request's (name, value) pairs.
fn request<'a>(authorization: &'a str, r: &'a Request) -> [(&'a str, &'a str); 9] {
    guard_setting::upgrade_pairs(authorization, &r.timestamp, &r.nonce, &r.hmac)
}

/// The guard under test, its clock, and the request counter.
struct Bench {
    guard: Guard,
    devices: DeviceDirectory,
    signer: Signer,
    keys: Vec<ClientKey>,
    step_nanos: u64,
    n: u64,
}

impl Bench {
    fn new(addresses: usize, step_nanos: u64) -> Bench {
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let guard = Guard::new(guard_setting::config(), &mut rng).expect("valid config");
        let mut devices = DeviceDirectory::new(&mut rng);
        devices
            .insert(
                DeviceCredentials::new(DeviceId(1), TOKEN, SECRET, SigningVariant::CalaosBase)
                    .expect("credentials"),
            )
            .expect("unique token");
        let signer = Signer::new(TOKEN, SECRET, SigningVariant::CalaosBase).expect("signer");
        Bench {
            guard,
            devices,
            signer,
            keys: keys().into_iter().take(addresses).collect(),
            step_nanos,
            n: 0,
        }
    }

    fn now(&self, n: u64) -> Now {
        let nanos = 1_000_000_000 + n * self.step_nanos;
        Now::new(
            Instant::from_duration_since_origin(Duration::from_nanos(nanos)),
            T0 + nanos / 1_000_000_000,
        )
    }

    /// Signed headers for the next `count` requests (each fresh at its own time).
    fn sign_ahead(&self, count: u64) -> Vec<Request> {
        (self.n..self.n + count)
            .map(|n| {
                let mut nonce = [0u8; 32];
                nonce[..8].copy_from_slice(&n.to_le_bytes());
                self.signer
                    .sign_with_nonce(self.now(n).unix_secs, &nonce)
                    .into()
            })
            .collect()
    }

    /// Runs the requests; returns how many were refused.
    fn run(&mut self, signed: &[Request]) -> u64 {
        let mut refused = 0;
        let authorization = self.signer.authorization();
        for r in signed {
            let now = self.now(self.n);
            let key = self.keys[(self.n % self.keys.len() as u64) as usize];
            // Walked by reference, as the gateway walks its parsed request's headers.
            let pairs = request(authorization, r);
            let headers = AuthHeaders::from_pairs(pairs.iter().copied());
            if black_box(
                self.guard
                    .authenticate_device(now, key, &headers, &self.devices),
            )
            .is_err()
            {
                refused += 1;
            }
            if self.guard.poll_timeout().is_some_and(|t| t <= now.instant) {
                self.guard.handle_timeout(now);
            }
            self.n += 1;
        }
        refused
    }
}

#[allow(clippy::print_stderr)] // the memory report is part of the point
fn full_check(c: &mut Criterion) {
    let mut g = c.benchmark_group("guard");
    g.throughput(Throughput::Elements(1));
    let mut last = None;
    let key_count = key_count();
    for (name, addresses, step_nanos) in [
        ("full_check/1m_addresses", key_count as usize, 1_000_000),
        ("full_check/1k_addresses", 1_000, 1_000_000),
        ("full_check/1k_addresses_hot", 1_000, 100_000_000),
    ] {
        let mut b = Bench::new(addresses, step_nanos);
        // Warm up to the steady state: every key tracked, the replay cache at working size.
        let before = rss();
        let signed = b.sign_ahead(key_count);
        assert_eq!(b.run(&signed), 0, "warm-up requests refused");
        drop(signed);
        let m = b.guard.memory();
        eprintln!(
            "{name}: after {} requests: auth rate {} addresses in {:.1} MiB ({:.1} B/address), \
             replay cache {} nonces in {:.1} MiB ({:.1} B/nonce); RSS grew {:.1} MiB",
            b.n,
            m.auth_rate.entries,
            mib(m.auth_rate.bytes),
            m.auth_rate.bytes as f64 / m.auth_rate.entries as f64,
            m.nonces.entries,
            mib(m.nonces.bytes),
            m.nonces.bytes as f64 / m.nonces.entries.max(1) as f64,
            mib(rss().saturating_sub(before)),
        );
        g.bench_function(name, |bench| {
            bench.iter_custom(|iters| {
                // Signed in batches just before they are checked, as a server checks the
                // headers it has just read (in cache); signing every iteration up front
                // streamed tens of megabytes of headers from memory into the timed loop.
                let mut elapsed = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(BATCH);
                    let signed = b.sign_ahead(n);
                    let start = WallInstant::now();
                    let refused = b.run(&signed);
                    elapsed += start.elapsed();
                    assert_eq!(refused, 0, "requests refused during measurement");
                    left -= n;
                }
                elapsed
            });
        });
        last = Some(b);
    }
    let b = last.expect("ran");

    // HMAC alone, over the same signing strings (a rotating set; the HMAC keeps no state).
    let msgs: Vec<(String, [u8; 32])> = b
        .sign_ahead(1024)
        .iter()
        .map(|h| {
            let mut mac = [0u8; 32];
            for (i, m) in mac.iter_mut().enumerate() {
                *m = u8::from_str_radix(&h.hmac[2 * i..2 * i + 2], 16).expect("hex");
            }
            (format!("{}:{}", h.timestamp, h.nonce), mac)
        })
        .collect();
    let mut i = 0usize;
    let keyed = Hmac::<Sha256>::new_from_slice(SECRET).expect("any key length");
    let mut prefixed = keyed.clone();
    prefixed.update(TOKEN.as_bytes());
    prefixed.update(b":");
    // The state each request starts from (`None`: keyed from the secret per request) and
    // whether it has already absorbed the token and the separator.
    let variants: [(&str, Option<&Hmac<Sha256>>, bool); 3] = [
        ("hmac_alone/from_key", None, false),
        ("hmac_alone/keyed_state", Some(&keyed), false),
        ("hmac_alone/prefixed", Some(&prefixed), true),
    ];
    for (name, start, absorbed) in variants {
        g.bench_function(name, |bench| {
            bench.iter(|| {
                let (msg, mac) = &msgs[i % msgs.len()];
                i += 1;
                let mut m = match start {
                    Some(state) => state.clone(),
                    None => Hmac::<Sha256>::new_from_slice(SECRET).expect("any key length"),
                };
                if !absorbed {
                    m.update(TOKEN.as_bytes());
                    m.update(b":");
                }
                m.update(msg.as_bytes());
                black_box(m.verify_slice(mac)).expect("valid mac");
            });
        });
    }
    g.finish();
}

#[allow(clippy::print_stderr)] // the memory report is part of the point
fn rate_limit(c: &mut Criterion) {
    let keys = keys();
    let g_keys: Vec<u128> = keys.iter().map(|k| k.to_bits()).collect();
    // Long-lived cells (one per hour, burst 1,000,000), so all 1,000,000 stay tracked in both.
    let burst = NonZeroU32::new(1_000_000).expect("nonzero");
    let quota = Quota::new(1_000_000, Duration::from_secs(1_000_000 * 3600)).expect("quota");
    let gov_quota = governor::Quota::with_period(Duration::from_secs(3600))
        .expect("period")
        .allow_burst(burst);

    let before = rss();
    let mut ours = RateLimiter::new(quota, 1 << 20, &mut ChaCha20Rng::from_seed([1; 32]));
    let mut t: u64 = 1_000_000_000;
    for k in &keys {
        t += 100;
        ours.check(
            Instant::from_duration_since_origin(Duration::from_nanos(t)),
            *k,
        )
        .expect("allowed");
    }
    let ours_rss = rss().saturating_sub(before);
    eprintln!(
        "latchkey RateLimiter: {} keys, {:.1} MiB heap = {:.1} B/address; RSS grew {:.1} MiB = {:.1} B/address",
        ours.len(),
        mib(ours.heap_bytes()),
        ours.heap_bytes() as f64 / ours.len() as f64,
        mib(ours_rss),
        ours_rss as f64 / keys.len() as f64,
    );

    let before = rss();
    let gov = governor::RateLimiter::keyed(gov_quota);
    for k in &g_keys {
        let _ = gov.check_key(k);
    }
    let gov_rss = rss().saturating_sub(before);
    eprintln!(
        "governor keyed (DashMap): {} keys; RSS grew {:.1} MiB = {:.1} B/address",
        gov.len(),
        mib(gov_rss),
        gov_rss as f64 / keys.len() as f64,
    );
    let clock = FakeRelativeClock::default();
    let gov_fake = governor::RateLimiter::dashmap_with_clock(gov_quota, clock.clone());
    for k in &g_keys {
        clock.advance(Duration::from_nanos(100));
        let _ = gov_fake.check_key(k);
    }

    let mut g = c.benchmark_group("rate_limit");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("latchkey", |b| {
        b.iter(|| {
            t += 100;
            let k = keys[i % keys.len()];
            i += 1;
            black_box(ours.check(
                Instant::from_duration_since_origin(Duration::from_nanos(t)),
                k,
            ))
        });
    });
    g.bench_function("governor/quanta_clock", |b| {
        b.iter(|| {
            let k = &g_keys[i % g_keys.len()];
            i += 1;
            black_box(gov.check_key(k))
        });
    });
    g.bench_function("governor/fake_clock", |b| {
        b.iter(|| {
            clock.advance(Duration::from_nanos(100));
            let k = &g_keys[i % g_keys.len()];
            i += 1;
            black_box(gov_fake.check_key(k))
        });
    });
    g.finish();
}

criterion_group!(benches, rate_limit, full_check);
criterion_main!(benches);
