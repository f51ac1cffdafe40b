//! The guard's configuration: every limit in one place, the stronger reference as the
//! default and the weaker one reachable (see `REFERENCE.md`), checked as a whole.

use core::fmt;
use core::time::Duration;

use super::{
    AddressPolicy, LoginConfig, NonceConfig, ProvisioningConfig, Quota, SessionConfig,
    SigningVariant, TrustedProxies, login,
};

/// How often and how much [`Guard::handle_timeout`](super::Guard::handle_timeout) sweeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepConfig {
    /// Time between sweeps (default 1 s).
    pub interval: Duration,
    /// Fewest slots examined per table per sweep (default 64). Each sweep examines
    /// `max(min_budget, slots / 64)` slots of a table, so a full pass takes at most 64 sweeps
    /// whatever `min_budget` is, and no sweep touches more than 1/64 of a table beyond
    /// `min_budget`; the minimum only makes passes over small tables quicker (memory they
    /// hold is small anyway), at a cost paid every interval even when idle. (Tables are also
    /// swept 4 slots per insert, so busy tables do not wait for this.)
    pub min_budget: usize,
}

impl Default for SweepConfig {
    fn default() -> Self {
        SweepConfig {
            interval: Duration::from_secs(1),
            min_budget: 64,
        }
    }
}

/// Everything the guard enforces, with the stronger reference as the default and the
/// weaker one reachable (see `REFERENCE.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardConfig {
    /// Device authentication attempts per address (default 3/min, the RemoteUI design;
    /// calaos_base uses [`Quota::CALAOS_BASE_AUTH`], 20/min). Counts every attempt.
    pub auth_rate: Quota,
    /// Provisioning requests per address (default 1 per 10 s).
    pub provisioning_rate: Quota,
    /// Addresses each rate limiter tracks at most (default 1,048,576; 24 bytes per slot).
    pub max_rate_keys: usize,
    /// Address grouping (default IPv4 /32, IPv6 /64).
    pub addresses: AddressPolicy,
    /// Proxies whose `X-Forwarded-For` is believed (default none).
    pub proxies: TrustedProxies,
    /// Replay cache.
    pub nonces: NonceConfig,
    /// Provisioning abuse.
    pub provisioning: ProvisioningConfig,
    /// Login throttle.
    pub login: LoginConfig,
    /// Sessions.
    pub sessions: SessionConfig,
    /// Sweeping.
    pub sweep: SweepConfig,
    /// Security events queued at most (default 1,024); further ones are counted, not kept.
    pub max_events: usize,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            auth_rate: Quota::REMOTE_UI_DESIGN_AUTH,
            provisioning_rate: Quota::PROVISIONING,
            max_rate_keys: 1 << 20,
            addresses: AddressPolicy::default(),
            proxies: TrustedProxies::none(),
            nonces: NonceConfig::default(),
            provisioning: ProvisioningConfig::default(),
            login: LoginConfig::default(),
            sessions: SessionConfig::default(),
            sweep: SweepConfig::default(),
            max_events: 1024,
        }
    }
}

impl GuardConfig {
    /// Checks the limits make sense together.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the first problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let longest_tolerance = u64::from(
            SigningVariant::RemoteUiDesign
                .default_tolerance_secs()
                .max(SigningVariant::CalaosBase.default_tolerance_secs()),
        );
        if self.nonces.retention.as_secs() < 2 * longest_tolerance {
            return Err(ConfigError::NonceRetentionTooShort {
                retention_secs: self.nonces.retention.as_secs(),
                needed_secs: 2 * longest_tolerance,
            });
        }
        let caps = [
            ("max_rate_keys", self.max_rate_keys),
            ("nonces.global_cap", self.nonces.global_cap),
            ("nonces.per_device_cap", self.nonces.per_device_cap as usize),
            ("provisioning.max_tracked", self.provisioning.max_tracked),
            (
                "provisioning.max_codes",
                self.provisioning.max_codes as usize,
            ),
            (
                "login.max_tracked_addresses",
                self.login.max_tracked_addresses,
            ),
            (
                "login.max_tracked_accounts",
                self.login.max_tracked_accounts,
            ),
            ("sessions.per_user", self.sessions.per_user),
            ("sessions.max_sessions", self.sessions.max_sessions),
            ("sweep.min_budget", self.sweep.min_budget),
        ];
        if let Some((what, _)) = caps.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Zero { what });
        }
        let spans = [
            ("provisioning.window", self.provisioning.window),
            ("provisioning.blacklist", self.provisioning.blacklist),
            ("login.window", self.login.window),
            ("login.block", self.login.block),
            ("login.account_lock", self.login.account_lock),
            ("sessions.idle", self.sessions.idle),
            ("sessions.absolute", self.sessions.absolute),
            ("sweep.interval", self.sweep.interval),
        ];
        if let Some((what, _)) = spans.iter().find(|(_, d)| d.is_zero()) {
            return Err(ConfigError::Zero { what });
        }
        if self.login.max_failures == 0 || self.login.max_failures > login::MAX_FAILURES_LIMIT {
            return Err(ConfigError::OutOfRange {
                what: "login.max_failures",
                min: 1,
                max: u64::from(login::MAX_FAILURES_LIMIT),
            });
        }
        if self.login.max_consecutive == 0
            || self.login.max_consecutive > login::NIST_MAX_CONSECUTIVE
        {
            return Err(ConfigError::OutOfRange {
                what: "login.max_consecutive",
                min: 1,
                max: u64::from(login::NIST_MAX_CONSECUTIVE),
            });
        }
        if self.nonces.per_device_cap as usize > self.nonces.global_cap {
            return Err(ConfigError::OutOfRange {
                what: "nonces.per_device_cap",
                min: 1,
                max: self.nonces.global_cap as u64,
            });
        }
        Ok(())
    }
}

/// An inconsistent [`GuardConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The replay cache would forget nonces while their timestamps can still pass.
    NonceRetentionTooShort {
        /// Configured retention.
        retention_secs: u64,
        /// Twice the longest tolerance.
        needed_secs: u64,
    },
    /// A cap or span that must be positive is zero.
    Zero {
        /// The field.
        what: &'static str,
    },
    /// A limit outside its range.
    OutOfRange {
        /// The field.
        what: &'static str,
        /// Least value.
        min: u64,
        /// Greatest value.
        max: u64,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NonceRetentionTooShort {
                retention_secs,
                needed_secs,
            } => write!(
                f,
                "nonces.retention is {retention_secs} s but must be at least {needed_secs} s \
                 (twice the longest timestamp tolerance)"
            ),
            ConfigError::Zero { what } => write!(f, "{what} must be greater than zero"),
            ConfigError::OutOfRange { what, min, max } => {
                write!(f, "{what} must be between {min} and {max}")
            }
        }
    }
}

impl core::error::Error for ConfigError {}
