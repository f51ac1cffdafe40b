//! When to renew a certificate: a pure function of its validity, a policy, a per-device seed
//! and the persisted failure history.
//!
//! # The renewal point
//!
//! With lifetime `L = notAfter − notBefore`, the point comes from the first source that is
//! set, in this precedence — **window > explicit > fraction > emergency floor**:
//!
//! 1. an ARI-style [`RenewalWindow`] (RFC 9773 `suggestedWindow`, clamped into the
//!    validity): a uniform point inside it, chosen by the seed;
//! 2. an explicit [`RenewalPolicy::renew_before`] lead (30 days for BTicino/Legrand);
//! 3. a [`LifetimeFraction`]: renew with 1/3 of the lifetime left, 1/2 when the lifetime is
//!    under 10 days (certbot ≥ 4.0 and Let's Encrypt);
//! 4. the emergency threshold itself, when no other source is configured.
//!
//! For sources 2–4 the lead is capped at `L/2`, so a certificate is always used for at
//! least half its life and a short-lived certificate cannot cause a renewal storm; the
//! point is then moved earlier by a per-device jitter, uniform in `[0, lead × jitter]`
//! (default 1/10 of the lead), drawn from the seed and the validity: stable for a device,
//! spread across a fleet, reproducible in tests.
//!
//! # Emergency mode
//!
//! With `E = min(max(L × 1/50, 1 h), L/2)` (Caddy's 1/50 of the lifetime, with a floor),
//! emergency mode starts at `notAfter − E`. It is a backstop: whatever the source, renewal
//! is due no later than that moment, and from then on (expired included) the action is
//! [`Action::Emergency`] and failed attempts retry at most every
//! [`EmergencyPolicy::retry`] (10 min, Caddy's check interval).
//!
//! # Failures, wake-ups, clocks
//!
//! * **Backoff**: after `n` consecutive failures the next attempt waits
//!   `min(initial × factor^(n−1), max)` — 1 min, 10 min, 100 min, then 100 min (certbot's
//!   sequence; set `max` to a day for certbot's daily retries). Even after a success, a
//!   second attempt waits `initial`: a driver that "renews" without getting a new
//!   certificate cannot loop. The count lives in [`RenewalHistory`], which the driver
//!   persists.
//! * **Wake-ups** are capped by [`WakeCap`] (default 12 h, at most 7 days; `WEEKLY`
//!   reproduces the BTicino client), so every sleep fits any timer (JavaScript's 2³¹−1 ms,
//!   .NET's `Int32.MaxValue` ms, tokio's far-deadline panics) by construction. A driver
//!   simply calls [`RenewalSchedule::decide`] again at `wake_at`.
//! * **Clock sanity**: a wall clock more than [`RenewalPolicy::clock_skew`] (1 day) before
//!   notBefore — an unsynchronised device booting in 1970 — gives
//!   [`Action::ClockUnreliable`] and a re-check in [`RenewalPolicy::clock_recheck`]
//!   (5 min), not a renewal. A clock that jumps backwards behind the last recorded attempt
//!   allows one immediate attempt (the history is from "the future"); forward jumps simply
//!   make renewal due. Because [`RenewalSchedule::decide`] is a pure function of `now`, no
//!   jump can skip a renewal.

use core::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// One hour in seconds.
pub const HOUR: u64 = 3_600;
/// One day in seconds.
pub const DAY: u64 = 86_400;

/// A certificate's validity period, wall-clock Unix seconds (notAfter inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Validity {
    /// notBefore.
    pub not_before: u64,
    /// notAfter.
    pub not_after: u64,
}

impl Validity {
    /// A validity period. A notAfter before notBefore is treated as an empty lifetime.
    #[must_use]
    pub fn new(not_before: u64, not_after: u64) -> Self {
        Validity {
            not_before,
            not_after,
        }
    }

    /// `notAfter − notBefore` (0 when reversed).
    #[must_use]
    pub fn lifetime(&self) -> u64 {
        self.not_after.saturating_sub(self.not_before)
    }

    fn end(&self) -> u64 {
        self.not_after.max(self.not_before)
    }
}

/// A fraction `num/den`, clamped to `[0, 1]`; `den == 0` means 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Ratio {
    /// Numerator.
    pub num: u32,
    /// Denominator.
    pub den: u32,
}

impl Ratio {
    /// `num/den`.
    #[must_use]
    pub const fn new(num: u32, den: u32) -> Self {
        Ratio { num, den }
    }

    /// `x × num/den`, rounded down, never more than `x`.
    #[must_use]
    pub fn of(self, x: u64) -> u64 {
        if self.den == 0 {
            return 0;
        }
        let num = u128::from(self.num.min(self.den));
        u64::try_from(u128::from(x) * num / u128::from(self.den)).unwrap_or(x)
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

/// Renew when a fraction of the lifetime is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct LifetimeFraction {
    /// Share of the lifetime left at renewal (default 1/3).
    pub remaining: Ratio,
    /// Lifetimes strictly below this many seconds use `short_remaining` (default 10 days).
    pub short_lifetime: u64,
    /// Share left at renewal for short lifetimes (default 1/2).
    pub short_remaining: Ratio,
}

impl Default for LifetimeFraction {
    fn default() -> Self {
        LifetimeFraction {
            remaining: Ratio::new(1, 3),
            short_lifetime: 10 * DAY,
            short_remaining: Ratio::new(1, 2),
        }
    }
}

impl LifetimeFraction {
    /// The lead (time before notAfter) for a lifetime, before the `L/2` cap.
    #[must_use]
    pub fn lead(&self, lifetime: u64) -> u64 {
        if lifetime < self.short_lifetime {
            self.short_remaining.of(lifetime)
        } else {
            self.remaining.of(lifetime)
        }
    }
}

/// Emergency mode near expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct EmergencyPolicy {
    /// Share of the lifetime before notAfter where emergency mode starts (default 1/50).
    pub fraction: Ratio,
    /// Emergency mode starts at least this long before notAfter (default 1 h).
    pub floor: u64,
    /// Longest wait between attempts in emergency mode (default 10 min).
    pub retry: u64,
}

impl Default for EmergencyPolicy {
    fn default() -> Self {
        EmergencyPolicy {
            fraction: Ratio::new(1, 50),
            floor: HOUR,
            retry: 10 * 60,
        }
    }
}

impl EmergencyPolicy {
    /// `E = min(max(L × fraction, floor), L/2)`: how long before notAfter emergency mode
    /// starts.
    #[must_use]
    pub fn threshold(&self, lifetime: u64) -> u64 {
        self.fraction.of(lifetime).max(self.floor).min(lifetime / 2)
    }
}

/// Capped geometric backoff after failed attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct BackoffPolicy {
    /// Wait after the first failure, and the least time between any two attempts
    /// (default 60 s; at least 1).
    pub initial: u64,
    /// Growth per further failure (default 10; at least 1).
    pub factor: u32,
    /// Longest wait (default 6 000 s = 100 min; at least `initial`).
    pub max: u64,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial: 60,
            factor: 10,
            max: 6_000,
        }
    }
}

impl BackoffPolicy {
    /// The wait after `failures` consecutive failures: `initial × factor^(failures−1)`
    /// capped at `max`; with no failure, `initial` (the least gap between attempts).
    /// Non-decreasing in `failures`, always in `[1, max(initial, max)]`.
    #[must_use]
    pub fn delay(&self, failures: u32) -> u64 {
        let initial = self.initial.max(1);
        let max = self.max.max(initial);
        let factor = u64::from(self.factor.max(1));
        let mut delay = initial;
        for _ in 1..failures {
            if delay >= max {
                break;
            }
            delay = delay.saturating_mul(factor);
        }
        delay.min(max)
    }
}

/// The longest a driver ever sleeps between two [`RenewalSchedule::decide`] calls.
///
/// Always within `[1 s, 7 days]`, so it fits a 32-bit millisecond timer (24.8 days) by
/// construction; out-of-range values are clamped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "u64", into = "u64")]
pub struct WakeCap(u64);

impl WakeCap {
    /// The largest cap: 7 days.
    pub const MAX: WakeCap = WakeCap(7 * DAY);
    /// The default: 12 hours.
    pub const TWELVE_HOURS: WakeCap = WakeCap(12 * HOUR);
    /// Weekly, as the BTicino client polls.
    pub const WEEKLY: WakeCap = WakeCap(7 * DAY);

    /// A cap of `seconds`, clamped to `[1, 7 days]`.
    #[must_use]
    pub fn new(seconds: u64) -> Self {
        WakeCap(seconds.clamp(1, Self::MAX.0))
    }

    /// The cap in seconds.
    #[must_use]
    pub fn seconds(self) -> u64 {
        self.0
    }
}

impl Default for WakeCap {
    fn default() -> Self {
        Self::TWELVE_HOURS
    }
}

impl From<u64> for WakeCap {
    fn from(seconds: u64) -> Self {
        WakeCap::new(seconds)
    }
}

impl From<WakeCap> for u64 {
    fn from(cap: WakeCap) -> u64 {
        cap.0
    }
}

/// How and when to renew. Serde-friendly with defaults for every field, so a TOML or JSON
/// configuration can set only what it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct RenewalPolicy {
    /// A fixed lead before notAfter, seconds (`None` by default; 30 days for BTicino).
    pub renew_before: Option<u64>,
    /// The lifetime-fraction rule (on by default).
    pub fraction: Option<LifetimeFraction>,
    /// Emergency mode.
    pub emergency: EmergencyPolicy,
    /// Largest share of the lead by which the per-device jitter moves the point earlier
    /// (default 1/10).
    pub jitter: Ratio,
    /// Backoff after failures.
    pub backoff: BackoffPolicy,
    /// Longest sleep between checks.
    pub wake_cap: WakeCap,
    /// How far the wall clock may lag notBefore before it is called unreliable
    /// (default 1 day).
    pub clock_skew: u64,
    /// Re-check interval while the clock is unreliable (default 5 min; capped by
    /// `wake_cap`).
    pub clock_recheck: u64,
}

impl Default for RenewalPolicy {
    fn default() -> Self {
        RenewalPolicy {
            renew_before: None,
            fraction: Some(LifetimeFraction::default()),
            emergency: EmergencyPolicy::default(),
            jitter: Ratio::new(1, 10),
            backoff: BackoffPolicy::default(),
            wake_cap: WakeCap::default(),
            clock_skew: DAY,
            clock_recheck: 5 * 60,
        }
    }
}

impl RenewalPolicy {
    /// The BTicino/Legrand seed's rule: renew 30 days before notAfter, check weekly.
    #[must_use]
    pub fn bticino() -> Self {
        RenewalPolicy {
            renew_before: Some(30 * DAY),
            wake_cap: WakeCap::WEEKLY,
            ..Self::default()
        }
    }

    /// This policy with a fixed lead of `seconds` before notAfter.
    #[must_use]
    pub fn with_renew_before(mut self, seconds: u64) -> Self {
        self.renew_before = Some(seconds);
        self
    }

    /// This policy with another wake-up cap.
    #[must_use]
    pub fn with_wake_cap(mut self, cap: WakeCap) -> Self {
        self.wake_cap = cap;
        self
    }
}

/// A server-suggested renewal window (ACME ARI, RFC 9773 `suggestedWindow`), absolute Unix
/// seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RenewalWindow {
    /// Window start.
    pub start: u64,
    /// Window end (a window ending before it starts is read as the single point `start`).
    pub end: u64,
}

impl RenewalWindow {
    /// A window from `start` to `end`.
    #[must_use]
    pub fn new(start: u64, end: u64) -> Self {
        RenewalWindow { start, end }
    }
}

/// The persisted record of renewal attempts. The driver stores it with the certificate and
/// updates it after every attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct RenewalHistory {
    /// Consecutive failed attempts since the last success.
    pub failures: u32,
    /// When the last attempt (failed or not) ended, Unix seconds.
    pub last_attempt: Option<u64>,
    /// The last failure's message, for `latchkey cert schedule`.
    pub last_error: Option<String>,
}

impl RenewalHistory {
    /// Records a failed attempt that ended at `now`.
    pub fn record_failure(&mut self, now: u64, reason: &str) {
        self.failures = self.failures.saturating_add(1);
        self.last_attempt = Some(now);
        self.last_error = Some(reason.chars().take(500).collect());
    }

    /// Records a successful attempt that ended at `now` (a new certificate is in place).
    pub fn record_success(&mut self, now: u64) {
        self.failures = 0;
        self.last_attempt = Some(now);
        self.last_error = None;
    }
}

/// What the driver should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// Nothing yet; call [`RenewalSchedule::decide`] again at `wake_at`.
    Wait,
    /// Renewal is due: renew now, then record the outcome in the history.
    Renew,
    /// Renewal is due but the last attempt was too recent; retry at `wake_at`.
    Backoff,
    /// Renewal is overdue and expiry is near (or past): renew now, loudly.
    Emergency,
    /// The wall clock is far before notBefore; do not renew, re-check at `wake_at`.
    ClockUnreliable,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Wait => "wait",
            Action::Renew => "renew",
            Action::Backoff => "backoff",
            Action::Emergency => "emergency",
            Action::ClockUnreliable => "clock unreliable",
        })
    }
}

/// Which rule placed the renewal point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PointSource {
    /// A server-suggested window.
    Window,
    /// The explicit renew-before lead.
    RenewBefore,
    /// The lifetime fraction.
    Fraction,
    /// The emergency threshold (no other rule configured).
    EmergencyFloor,
}

impl fmt::Display for PointSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PointSource::Window => "the server's renewal window",
            PointSource::RenewBefore => "the fixed renew-before lead",
            PointSource::Fraction => "the lifetime fraction",
            PointSource::EmergencyFloor => "the emergency threshold",
        })
    }
}

/// The answer of [`RenewalSchedule::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct Decision {
    /// What to do.
    pub action: Action,
    /// When to call `decide` again (equals `now` for `Renew` and `Emergency`).
    pub wake_at: u64,
    /// `wake_at − now`: never more than the policy's [`WakeCap`].
    pub wake_in: u64,
    /// The planned renewal time (jittered, backstopped by `emergency_at`).
    pub renew_at: u64,
    /// The renewal time the rule gives before jitter (for a window: its clamped end).
    pub policy_point: u64,
    /// When emergency mode starts.
    pub emergency_at: u64,
    /// Which rule placed the point.
    pub source: PointSource,
    /// When backing off, the time of the next attempt (may be beyond `wake_at`).
    pub retry_at: Option<u64>,
}

/// The renewal schedule of one certificate. Cheap to build; rebuild it when the certificate
/// (or its ARI window) changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RenewalSchedule {
    validity: Validity,
    policy: RenewalPolicy,
    seed: u64,
    window: Option<RenewalWindow>,
}

impl RenewalSchedule {
    /// The schedule of a certificate with `validity` under `policy`; `seed` spreads devices
    /// (see [`seed_from_identity`]).
    #[must_use]
    pub fn new(validity: Validity, policy: RenewalPolicy, seed: u64) -> Self {
        RenewalSchedule {
            validity,
            policy,
            seed,
            window: None,
        }
    }

    /// This schedule with a server-suggested window (highest precedence).
    #[must_use]
    pub fn with_window(mut self, window: RenewalWindow) -> Self {
        self.window = Some(window);
        self
    }

    /// The validity this schedule is for.
    #[must_use]
    pub fn validity(&self) -> Validity {
        self.validity
    }

    /// The policy.
    #[must_use]
    pub fn policy(&self) -> &RenewalPolicy {
        &self.policy
    }

    /// When emergency mode starts: `notAfter − E` (see module docs).
    #[must_use]
    pub fn emergency_at(&self) -> u64 {
        let end = self.validity.end();
        end - self
            .policy
            .emergency
            .threshold(self.validity.lifetime())
            .min(end - self.validity.not_before)
    }

    /// The rule's renewal time before jitter and which rule gave it.
    #[must_use]
    pub fn policy_point(&self) -> (u64, PointSource) {
        let plan = self.plan();
        (plan.policy_point, plan.source)
    }

    /// The largest jitter this schedule can apply (for a window: its clamped length).
    #[must_use]
    pub fn max_jitter(&self) -> u64 {
        self.plan().max_jitter
    }

    /// The planned renewal time: the policy point moved earlier by the per-device jitter,
    /// never before notBefore and never after [`RenewalSchedule::emergency_at`].
    #[must_use]
    pub fn renew_at(&self) -> u64 {
        self.plan().renew_at
    }

    /// What to do at `now` (wall-clock Unix seconds) given the persisted `history`.
    #[must_use]
    pub fn decide(&self, now: u64, history: &RenewalHistory) -> Decision {
        let plan = self.plan();
        let cap = self.policy.wake_cap.seconds();
        let emergency_at = self.emergency_at();
        let decision = |action, wake_at: u64, retry_at| Decision {
            action,
            wake_at,
            wake_in: wake_at - now,
            renew_at: plan.renew_at,
            policy_point: plan.policy_point,
            emergency_at,
            source: plan.source,
            retry_at,
        };

        if now.saturating_add(self.policy.clock_skew) < self.validity.not_before {
            let recheck = self.policy.clock_recheck.clamp(1, cap);
            return decision(Action::ClockUnreliable, now.saturating_add(recheck), None);
        }
        if now < plan.renew_at {
            return decision(
                Action::Wait,
                plan.renew_at.min(now.saturating_add(cap)),
                None,
            );
        }
        let emergency = now >= emergency_at;
        if let Some(last) = history.last_attempt
            && last <= now
        {
            let mut delay = self.policy.backoff.delay(history.failures);
            if emergency {
                delay = delay.min(self.policy.emergency.retry.max(1));
            }
            let retry_at = last.saturating_add(delay);
            if now < retry_at {
                return decision(
                    Action::Backoff,
                    retry_at.min(now.saturating_add(cap)),
                    Some(retry_at),
                );
            }
        }
        let action = if emergency {
            Action::Emergency
        } else {
            Action::Renew
        };
        decision(action, now, None)
    }

    fn plan(&self) -> Plan {
        let not_before = self.validity.not_before;
        let end = self.validity.end();
        let lifetime = end - not_before;
        let unit = unit_interval(self.seed, not_before, end);
        let emergency_at = self.emergency_at();

        if let Some(window) = self.window {
            let start = window.start.clamp(not_before, end);
            let stop = window.end.max(window.start).clamp(not_before, end);
            let point = start + scale(stop - start, unit);
            return Plan {
                renew_at: point.min(emergency_at),
                policy_point: stop,
                max_jitter: stop - start,
                source: PointSource::Window,
            };
        }
        let (lead, source) = match (self.policy.renew_before, self.policy.fraction) {
            (Some(lead), _) => (lead.min(lifetime / 2), PointSource::RenewBefore),
            (None, Some(fraction)) => (
                fraction.lead(lifetime).min(lifetime / 2),
                PointSource::Fraction,
            ),
            (None, None) => (end - emergency_at, PointSource::EmergencyFloor),
        };
        let policy_point = end - lead;
        let max_jitter = self.policy.jitter.of(lead);
        let renew_at = policy_point
            .saturating_sub(scale(max_jitter, unit))
            .max(not_before)
            .min(emergency_at);
        Plan {
            renew_at,
            policy_point,
            max_jitter,
            source,
        }
    }
}

struct Plan {
    renew_at: u64,
    policy_point: u64,
    max_jitter: u64,
    source: PointSource,
}

/// A jitter seed from a stable device identity (e.g. the SIP client ID or a device serial):
/// the first 8 bytes of its SHA-256, so every device of a fleet gets its own stable spread.
#[must_use]
pub fn seed_from_identity(identity: &[u8]) -> u64 {
    let digest = Sha256::digest(identity);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// A value in `[0, 2⁶⁴)` standing for `[0, 1)`, from the seed and the certificate's
/// validity (SplitMix64 mixing): the same device gets the same point for the same
/// certificate, and a new point for each new certificate.
fn unit_interval(seed: u64, not_before: u64, not_after: u64) -> u64 {
    splitmix(seed ^ splitmix(not_before ^ splitmix(not_after)))
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `span × unit / 2⁶⁴`: in `[0, span]` (equal to `span` only when `span` is 0).
fn scale(span: u64, unit: u64) -> u64 {
    u64::try_from((u128::from(span) * u128::from(unit)) >> 64).unwrap_or(span)
}

#[cfg(test)]
mod tests;
