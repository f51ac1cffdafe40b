//! What a session persists: one JSON document, written atomically by the driver.

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// The format version written by this crate.
pub const SNAPSHOT_VERSION: u32 = 1;

/// How new tokens are obtained when the current ones run out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Grant {
    /// With the refresh token (user logins).
    #[default]
    RefreshToken,
    /// By running the client-credentials grant again (no user, no refresh token).
    ClientCredentials,
}

/// A refresh that was started and not known to have finished: if the process died, the
/// refresh token in the snapshot may already have been spent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InFlight {
    /// When it started (local wall clock).
    pub started_at: u64,
    /// The session instance that started it.
    pub instance: u64,
    /// Fingerprint of the refresh token being spent.
    pub refresh_token: String,
    /// The holder's request timeout in seconds: other processes honour the longer of
    /// theirs and this one (capped at [`MAX_LEASE_TIMEOUT`]). Absent in files written
    /// before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

/// The longest request timeout another process's marker can make a session wait for (ten
/// minutes): a broken or hostile file cannot hold a session back for longer.
pub const MAX_LEASE_TIMEOUT: u64 = 600;

/// Everything a session needs to resume after a restart. Holds secrets: the driver writes it
/// with mode 0600, atomically (temp file, fsync, rename).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Snapshot {
    /// [`SNAPSHOT_VERSION`].
    pub version: u32,
    /// The provider profile name.
    pub provider: String,
    /// Raised by every write (by one; a login by one plus a random step below 2^32); the
    /// driver refuses a write whose expected revision is not the one on disk
    /// (compare-and-swap between processes sharing the file).
    pub revision: u64,
    /// Incremented each time new tokens are obtained.
    pub generation: u64,
    /// How tokens are renewed.
    #[serde(default)]
    pub grant: Grant,
    /// The access token.
    pub access_token: Option<Secret>,
    /// When it expires (local wall clock), if known.
    pub access_expires_at: Option<u64>,
    /// When it was received.
    pub access_issued_at: u64,
    /// `not_before`, if the server gave one.
    #[serde(default)]
    pub access_not_before: Option<u64>,
    /// The refresh token.
    pub refresh_token: Option<Secret>,
    /// When the refresh token was received.
    pub refresh_issued_at: Option<u64>,
    /// When the refresh token expires, if known.
    pub refresh_expires_at: Option<u64>,
    /// The `id_token`, if any.
    #[serde(default)]
    pub id_token: Option<Secret>,
    /// Granted scope.
    #[serde(default)]
    pub scope: Option<String>,
    /// When the user logged in.
    pub session_started_at: u64,
    /// When tokens were last refreshed.
    pub last_refresh_at: Option<u64>,
    /// Server clock minus local clock at the last response.
    #[serde(default)]
    pub clock_skew: i64,
    /// A refresh that may be in flight.
    #[serde(default)]
    pub refresh_in_flight: Option<InFlight>,
    /// Set when the server refused the session for good; nothing is retried until a login.
    #[serde(default)]
    pub reauth_required: Option<String>,
}

/// Why a persisted snapshot cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Not JSON of the expected shape.
    Format {
        /// The JSON parser's explanation (line and column).
        message: String,
    },
    /// Written by a newer latchkey.
    Version {
        /// The version found.
        found: u32,
    },
    /// Belongs to another provider.
    Provider {
        /// The provider expected.
        expected: String,
        /// The provider found.
        found: String,
    },
}

impl core::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SnapshotError::Format { message } => {
                write!(f, "token state file is not valid: {message}")
            }
            SnapshotError::Version { found } => write!(
                f,
                "token state file has format version {found}; this latchkey reads version {SNAPSHOT_VERSION}"
            ),
            SnapshotError::Provider { expected, found } => write!(
                f,
                "token state file belongs to provider {found:?}, not {expected:?}"
            ),
        }
    }
}

impl std::error::Error for SnapshotError {}

impl Snapshot {
    /// Serializes to pretty JSON (the state file's content).
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Parses a state file.
    ///
    /// # Errors
    /// [`SnapshotError`] for malformed JSON or an unknown version.
    pub fn from_json(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let v: Version = serde_json::from_slice(bytes).map_err(|e| SnapshotError::Format {
            message: e.to_string(),
        })?;
        if v.version != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version { found: v.version });
        }
        serde_json::from_slice(bytes).map_err(|e| SnapshotError::Format {
            message: e.to_string(),
        })
    }
}
