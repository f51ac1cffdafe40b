//! What the renewer tells the application: events, failures, status.

use std::fmt;

use latchkey_pki::inspect::{CertInfo, rfc3339};
use latchkey_pki::schedule::{Action, Decision, RenewalHistory};
use latchkey_pki::validate::ValidationError;

use super::source::SourceError;
use crate::state::StateError;
use crate::tls::IdentityError;

/// Where a renewal attempt stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// The source gave no pair (network, API, files unreadable, no randomness).
    Source,
    /// The pair was refused by `latchkey_pki::validate` or by rustls.
    Validation,
    /// The source gave the certificate already in use (nothing was renewed).
    Unchanged,
    /// The new pair could not be saved; it was not swapped in.
    Persist,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Source => "source",
            Stage::Validation => "validation",
            Stage::Unchanged => "unchanged",
            Stage::Persist => "persist",
        })
    }
}

/// What an application should know about its certificate. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RenewalEvent {
    /// A new certificate is live: every later handshake presents it.
    Renewed {
        /// The [`LiveIdentity`](crate::tls::LiveIdentity) generation it has (a client
        /// reconnects when it changes).
        generation: u64,
        /// The new leaf's SHA-256 fingerprint (upper-case hex with colons, as openssl).
        fingerprint: String,
        /// The new leaf's subject.
        subject: String,
        /// The new leaf's notAfter (Unix seconds).
        not_after: u64,
        /// The renewal was due, or overdue in emergency mode (`false` for a pair that a
        /// watched source offered on its own).
        due: bool,
    },
    /// An attempt failed; the last good identity stays.
    Failed {
        /// Where it stopped.
        stage: Stage,
        /// Why, in words (never key material).
        reason: String,
        /// Consecutive failures so far (persisted).
        failures: u32,
        /// When the schedule allows the next attempt (Unix seconds), if renewal is due.
        retry_at: Option<u64>,
    },
    /// The wall clock is far before the certificate's notBefore (an unsynchronised clock):
    /// nothing is renewed until it is right.
    ClockUnreliable {
        /// The wall clock read.
        now: u64,
        /// The certificate's notBefore.
        not_before: u64,
        /// When the clock is checked again.
        recheck_at: u64,
    },
    /// The plan changed: what the schedule says now, and when it is asked again.
    Scheduled {
        /// `Wait` or `Backoff`.
        action: Action,
        /// The planned renewal time.
        renew_at: u64,
        /// The next check (never further than the policy's wake-up cap).
        next_check: u64,
    },
    /// The history could not be saved; the renewal state in memory is still right, but a
    /// restart would forget the last attempt.
    PersistFailed {
        /// Why.
        reason: String,
    },
}

impl fmt::Display for RenewalEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenewalEvent::Renewed {
                generation,
                fingerprint,
                subject,
                not_after,
                ..
            } => write!(
                f,
                "certificate renewed (generation {generation}): {subject}, valid until \
                 {}, SHA-256 {fingerprint}",
                rfc3339(*not_after)
            ),
            RenewalEvent::Failed {
                stage,
                reason,
                failures,
                retry_at,
            } => {
                write!(f, "renewal failed ({stage}, {failures} in a row): {reason}")?;
                match retry_at {
                    Some(t) => write!(f, "; next attempt {}", rfc3339(*t)),
                    None => Ok(()),
                }
            }
            RenewalEvent::ClockUnreliable {
                now, not_before, ..
            } => write!(
                f,
                "the clock ({}) is far before the certificate's notBefore ({}); not renewing \
                 until it is set",
                rfc3339(*now),
                rfc3339(*not_before)
            ),
            RenewalEvent::Scheduled {
                action,
                renew_at,
                next_check,
            } => write!(
                f,
                "{action}: renewal at {}, next check {}",
                rfc3339(*renew_at),
                rfc3339(*next_check)
            ),
            RenewalEvent::PersistFailed { reason } => {
                write!(f, "could not save the renewal history: {reason}")
            }
        }
    }
}

/// Why the renewer could not start (or, as a message, why an attempt failed).
#[derive(Debug)]
#[non_exhaustive]
pub enum RenewError {
    /// The source gave no pair.
    Source(SourceError),
    /// The pair is not acceptable.
    Invalid(ValidationError),
    /// rustls cannot use the pair.
    Identity(IdentityError),
    /// The source gave the certificate already in use.
    Unchanged {
        /// Its fingerprint.
        fingerprint: String,
    },
    /// The state directory failed.
    State(StateError),
    /// A stored file is unusable (named), so nothing was started rather than guessed.
    Stored {
        /// The file in the state directory.
        file: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for RenewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenewError::Source(e) => write!(f, "{e}"),
            RenewError::Invalid(e) => write!(f, "{e}"),
            RenewError::Identity(e) => write!(f, "{e}"),
            RenewError::Unchanged { fingerprint } => write!(
                f,
                "the source gave the certificate already in use (SHA-256 {fingerprint}), not a \
                 new one"
            ),
            RenewError::State(e) => write!(f, "{e}"),
            RenewError::Stored { file, reason } => {
                write!(
                    f,
                    "the stored certificate record {file} is unusable: {reason}"
                )
            }
        }
    }
}

impl std::error::Error for RenewError {}

impl RenewError {
    pub(super) fn stage(&self) -> Stage {
        match self {
            RenewError::Source(_) => Stage::Source,
            RenewError::Invalid(_) | RenewError::Identity(_) => Stage::Validation,
            RenewError::Unchanged { .. } => Stage::Unchanged,
            RenewError::State(_) | RenewError::Stored { .. } => Stage::Persist,
        }
    }
}

/// Where the renewer stands, for a status page or `latchkey cert schedule`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RenewalStatus {
    /// The [`LiveIdentity`](crate::tls::LiveIdentity) generation (replacements in this process).
    pub generation: u64,
    /// The certificate in use (its leaf).
    pub certificate: CertInfo,
    /// The persisted history of attempts.
    pub history: RenewalHistory,
    /// What the schedule says at `now`.
    pub decision: Decision,
    /// The wall clock the decision was made at.
    pub now: u64,
}
