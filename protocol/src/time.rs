//! Time as the pure crates see it.
//!
//! latchkey never reads a clock inside a pure crate: the driver passes `now` in.
//! Two representations are used, each for what it measures:
//!
//! * [`Instant`] — a monotonic point for protocol timers (transactions, keep-alives, nonce
//!   lifetimes, rate windows). It counts nanoseconds from an origin the driver picks once
//!   (typically the `std::time::Instant` at start-up) and never goes backwards.
//! * Wall-clock facts (a SIP `Date`, a certificate's validity, a token's `expires_on`) are
//!   plain seconds since the Unix epoch (`u64`), because the fact itself is wall time.

use core::ops::{Add, Sub};
use core::time::Duration;

/// A monotonic point in time, as nanoseconds since a driver-chosen origin.
///
/// Drivers create it with [`Instant::from_duration_since_origin`] (for example
/// `Instant::from_duration_since_origin(start.elapsed())`); tests create any value they like
/// and jump time by passing a later one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant {
    nanos: u64,
}

impl Instant {
    /// The origin itself.
    pub const ORIGIN: Instant = Instant { nanos: 0 };

    /// The point `elapsed` after the origin (saturating at about 584 years).
    #[must_use]
    pub fn from_duration_since_origin(elapsed: Duration) -> Self {
        Instant {
            nanos: u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
        }
    }

    /// The point `secs` seconds after the origin; convenient in tests.
    #[must_use]
    pub const fn from_secs(secs: u64) -> Self {
        Instant {
            nanos: secs.saturating_mul(1_000_000_000),
        }
    }

    /// The point `millis` milliseconds after the origin; convenient in tests.
    #[must_use]
    pub const fn from_millis(millis: u64) -> Self {
        Instant {
            nanos: millis.saturating_mul(1_000_000),
        }
    }

    /// Time since the origin.
    #[must_use]
    pub const fn duration_since_origin(self) -> Duration {
        Duration::from_nanos(self.nanos)
    }

    /// Time from `earlier` to `self`, or zero when `earlier` is later.
    #[must_use]
    pub const fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.nanos.saturating_sub(earlier.nanos))
    }

    /// `self + d`, saturating instead of overflowing.
    #[must_use]
    pub fn saturating_add(self, d: Duration) -> Instant {
        let add = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Instant {
            nanos: self.nanos.saturating_add(add),
        }
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        self.saturating_add(d)
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}
