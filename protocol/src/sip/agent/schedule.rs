//! Timing rules and random identifiers, as small pure functions (each proven by property
//! tests in `tests/props.rs`).

use alloc::string::String;
use core::time::Duration;

use rand_core::CryptoRng;

use super::config::{Backoff, RefreshPolicy};

/// Delay from sending a REGISTER to refreshing it, for a granted expiry of `granted`:
/// `min(granted / 2, granted − margin)`, never below `granted / 4`, minus a random part of up
/// to `jitter_percent` % of it. The result always lies in `[0.2·granted, 0.5·granted]`, so
/// the refresh goes out with at least half the expiry left and never loops.
pub(super) fn refresh_delay<R: CryptoRng + ?Sized>(
    granted: Duration,
    policy: &RefreshPolicy,
    rng: &mut R,
) -> Duration {
    let half = granted / 2;
    let nominal = half
        .min(granted.saturating_sub(policy.margin))
        .max(granted / 4);
    let jitter = nominal.mul_f64(f64::from(policy.jitter_percent.min(50)) / 100.0);
    nominal.saturating_sub(uniform(jitter, rng))
}

/// Reconnect delay after `failures` consecutive failures (at least 1): uniform in
/// `[d/2, d]` with `d = min(max, initial · 2^(failures−1))`.
pub(super) fn backoff_delay<R: CryptoRng + ?Sized>(
    policy: &Backoff,
    failures: u32,
    rng: &mut R,
) -> Duration {
    let nominal = backoff_nominal(policy, failures);
    let half = nominal / 2;
    half + uniform(nominal - half, rng)
}

/// The nominal (upper) delay after `failures` consecutive failures.
pub(super) fn backoff_nominal(policy: &Backoff, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    policy
        .initial
        .checked_mul(1u32 << exp)
        .unwrap_or(policy.max)
        .min(policy.max)
}

/// Time to the next keep-alive ping: uniform in `[0.8·interval, interval]` (RFC 5626 §4.4.1).
pub(super) fn keepalive_delay<R: CryptoRng + ?Sized>(interval: Duration, rng: &mut R) -> Duration {
    let low = interval.mul_f64(0.8);
    low + uniform(interval - low, rng)
}

/// A duration uniform in `[0, max]` (nanosecond resolution).
pub(super) fn uniform<R: CryptoRng + ?Sized>(max: Duration, rng: &mut R) -> Duration {
    let n = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    if n == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(below(rng, n.saturating_add(1)))
}

/// A number in `[0, n)` (n ≥ 1), by multiply-shift (bias below 2⁻³² for the ranges used).
pub(super) fn below<R: CryptoRng + ?Sized>(rng: &mut R, n: u64) -> u64 {
    let wide = u128::from(rng.next_u64()) * u128::from(n);
    u64::try_from(wide >> 64).unwrap_or(0)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `bytes` random bytes (at most 16) as lowercase hex.
fn hex_token<R: CryptoRng + ?Sized>(rng: &mut R, bytes: usize) -> String {
    let mut raw = [0u8; 16];
    let raw = &mut raw[..bytes.min(16)];
    rng.fill_bytes(raw);
    let mut s = String::with_capacity(raw.len() * 2 + 7);
    for b in raw.iter() {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// A Via branch: the RFC 3261 magic cookie and 96 random bits (§8.1.1.7).
pub(super) fn branch<R: CryptoRng + ?Sized>(rng: &mut R) -> String {
    let mut s = String::from(crate::sip::headers::BRANCH_MAGIC_COOKIE);
    s.push_str(&hex_token(rng, 12));
    s
}

/// A From/To tag: 64 random bits (§19.3 asks for at least 32).
pub(super) fn tag<R: CryptoRng + ?Sized>(rng: &mut R) -> String {
    hex_token(rng, 8)
}

/// A Call-ID: 128 random bits (§8.1.1.4).
pub(super) fn call_id<R: CryptoRng + ?Sized>(rng: &mut R) -> String {
    hex_token(rng, 16)
}

/// A placeholder host for Via and Contact while the local address is unknown
/// (`<random>.invalid`, as RFC 7118 clients do; the registrar's `received`/`rport` tells the
/// real one).
pub(super) fn placeholder_host<R: CryptoRng + ?Sized>(rng: &mut R) -> String {
    let mut s = hex_token(rng, 6);
    s.push_str(".invalid");
    s
}

/// A first CSeq number: small, random, far below 2³¹ so a long session never wraps.
pub(super) fn first_cseq<R: CryptoRng + ?Sized>(rng: &mut R) -> u32 {
    1 + u32::try_from(below(rng, 1 << 16)).unwrap_or(0)
}
