//! The timing rules of a token session, as pure functions (property-tested in
//! `session/tests/timing.rs`).
//!
//! * **Refresh point**: `expires_at − margin − jitter`, where the margin is the profile's fixed
//!   value or `max(margin_min, margin_percent % of the lifetime)`, the jitter is uniform in
//!   `[0, margin / 4]`, and margin + jitter never exceed half the lifetime — so a token shorter
//!   than the margin is refreshed at half-life instead of at once, and can never loop.
//!   The point is never earlier than `floor` after the previous refresh.
//! * **Backoff**: the n-th consecutive failure waits `d/2 + uniform[0, d/2]` with
//!   `d = min(max, initial · 2^(n−1))` ("equal jitter"): always in `[d/2, d]`, never zero,
//!   never above `max`; a server's `Retry-After` lengthens it (capped at [`MAX_RETRY_AFTER`]).

/// Longest `Retry-After` honoured (one hour); longer values are treated as this.
pub const MAX_RETRY_AFTER: u64 = 3600;

/// How far before expiry a token is refreshed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MarginPolicy {
    /// A fixed margin in seconds (U-tec: 300); `None` → computed.
    pub fixed: Option<u64>,
    /// Lower bound of the computed margin (default 60 s).
    pub min: u64,
    /// Share of the lifetime, percent (default 10).
    pub percent: u8,
}

impl Default for MarginPolicy {
    fn default() -> Self {
        MarginPolicy {
            fixed: None,
            min: 60,
            percent: 10,
        }
    }
}

impl MarginPolicy {
    /// The margin for a token of `lifetime` seconds, before the half-life cap.
    #[must_use]
    pub fn margin(&self, lifetime: u64) -> u64 {
        self.fixed.unwrap_or_else(|| {
            self.min
                .max(lifetime.saturating_mul(u64::from(self.percent.min(100))) / 100)
        })
    }
}

/// Capped exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackoffPolicy {
    /// Delay after the first failure, seconds (default 2).
    pub initial: u64,
    /// Longest delay, seconds (default 300).
    pub max: u64,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial: 2,
            max: 300,
        }
    }
}

impl BackoffPolicy {
    /// The ceiling `d` for the `failures`-th consecutive failure (1-based).
    #[must_use]
    pub fn ceiling(&self, failures: u32) -> u64 {
        let initial = self.initial.max(1);
        let max = self.max.max(initial);
        let shift = failures.saturating_sub(1).min(62);
        initial.saturating_mul(1u64 << shift).min(max)
    }

    /// The delay after the `failures`-th failure given a random value `r`, honouring a
    /// server's `retry_after`.
    #[must_use]
    pub fn delay(&self, failures: u32, r: u64, retry_after: Option<u64>) -> u64 {
        let d = self.ceiling(failures);
        let half = d / 2;
        let jittered = (d - half) + r % (half + 1);
        jittered.max(retry_after.unwrap_or(0).min(MAX_RETRY_AFTER))
    }
}

/// When to refresh a token issued at `issued_at` that expires at `expires_at`.
///
/// `r` is a random value for the jitter; `not_before` is the floor (the previous refresh
/// plus the minimum interval).
#[must_use]
pub fn refresh_at(
    policy: &MarginPolicy,
    issued_at: u64,
    expires_at: u64,
    r: u64,
    not_before: u64,
) -> u64 {
    let lifetime = expires_at.saturating_sub(issued_at);
    let margin = policy.margin(lifetime);
    let jitter_max = margin / 4;
    let jitter = r % (jitter_max + 1);
    let lead = margin.saturating_add(jitter).min(lifetime / 2);
    expires_at.saturating_sub(lead).max(not_before)
}

/// A small deterministic generator (SplitMix64) for jitter, seeded from injected randomness,
/// so that schedules are reproducible in tests and spread across a fleet.
#[derive(Debug, Clone)]
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn new(seed: u64) -> Self {
        Jitter(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
