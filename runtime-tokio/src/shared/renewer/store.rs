//! The renewer's files in the state directory.
//!
//! * `<name>-<n>.cert.pem` (mode 0644) and `<name>-<n>.key.pem` (mode 0600): pair number `n`;
//! * `<name>.json` (mode 0600): the record — which pair is current, its fingerprint, and the
//!   [`RenewalHistory`] (failure count, last attempt, last error), so backoff survives a
//!   restart.
//!
//! A new pair is written under the next number first; only then is the record replaced (one
//! atomic rename), which is the switch; the old pair's files are removed last. A crash
//! before the switch leaves the old record naming the old, whole pair (the next attempt
//! overwrites the orphaned files, which have the same number); a crash after it leaves the
//! new one. Every file is written atomically by [`StateDir`].

use latchkey_pki::schedule::RenewalHistory;
use serde::{Deserialize, Serialize};

use super::RenewError;
use super::source::CertifiedPair;
use crate::state::{FileMode, StateDir};

/// The record file's content.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    /// The current pair's number.
    serial: u64,
    /// Its certificate file.
    cert: String,
    /// Its key file.
    key: String,
    /// Its leaf's SHA-256 fingerprint (for people reading the file).
    fingerprint: String,
    /// The attempts.
    #[serde(default)]
    history: RenewalHistory,
}

/// The files of one renewer.
#[derive(Debug)]
pub(super) struct Store {
    state: StateDir,
    name: String,
}

/// The pair a renewer named `name` keeps in the state directory `dir`, read with blocking
/// file operations (for a command-line tool before it starts a runtime); `None` when that
/// renewer has saved nothing yet.
///
/// # Errors
/// [`RenewError::Stored`] when the record is unreadable or names a missing file.
pub fn read_stored_pair(
    dir: &std::path::Path,
    name: &str,
) -> Result<Option<CertifiedPair>, RenewError> {
    let record_name = format!("{name}.json");
    let unusable = |reason: String| RenewError::Stored {
        file: record_name.clone(),
        reason,
    };
    let bytes = match std::fs::read(dir.join(&record_name)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unusable(e.to_string())),
    };
    let record: Record = serde_json::from_slice(&bytes).map_err(|e| unusable(e.to_string()))?;
    let read = |file: &str| {
        std::fs::read(dir.join(file))
            .map_err(|e| unusable(format!("it names {file}, which cannot be read: {e}")))
    };
    Ok(Some(CertifiedPair::new(
        read(&record.cert)?,
        read(&record.key)?,
    )))
}

/// What [`Store::load`] found.
pub(super) struct Stored {
    pub(super) pair: CertifiedPair,
    pub(super) history: RenewalHistory,
    pub(super) serial: u64,
}

impl Store {
    pub(super) fn new(state: StateDir, name: String) -> Self {
        Store { state, name }
    }

    /// `<name>.json`.
    pub(super) fn record_name(&self) -> String {
        format!("{}.json", self.name)
    }

    fn pair_names(&self, serial: u64) -> (String, String) {
        (
            format!("{}-{serial}.cert.pem", self.name),
            format!("{}-{serial}.key.pem", self.name),
        )
    }

    /// The current pair and history, or `None` when nothing was saved yet.
    pub(super) async fn load(&self) -> Result<Option<Stored>, RenewError> {
        let Some(record) = self.read_record().await? else {
            return Ok(None);
        };
        let cert = self.read_named(&record.cert).await?;
        let key = self.read_named(&record.key).await?;
        Ok(Some(Stored {
            pair: CertifiedPair::new(cert, key),
            history: record.history,
            serial: record.serial,
        }))
    }

    /// Saves `pair` as the next number after `serial`, switches the record to it with
    /// `history`, removes pair `serial`; returns the new number.
    pub(super) async fn save_pair(
        &self,
        serial: u64,
        pair: &CertifiedPair,
        fingerprint: &str,
        history: &RenewalHistory,
    ) -> Result<u64, RenewError> {
        let next = serial.saturating_add(1);
        let (cert, key) = self.pair_names(next);
        self.state
            .write_with_mode(&cert, pair.cert_pem.clone(), FileMode::Public)
            .await
            .map_err(RenewError::State)?;
        self.state
            .write(&key, pair.key_pem().to_vec())
            .await
            .map_err(RenewError::State)?;
        let record = Record {
            serial: next,
            cert,
            key,
            fingerprint: fingerprint.to_owned(),
            history: history.clone(),
        };
        self.write_record(&record).await?;
        if serial > 0 && serial != next {
            // Best effort: a leftover old pair is harmless, the record names the new one.
            let (old_cert, old_key) = self.pair_names(serial);
            let _ = self.state.remove(&old_key).await;
            let _ = self.state.remove(&old_cert).await;
        }
        Ok(next)
    }

    /// Replaces the history in the record of pair `serial`.
    pub(super) async fn save_history(
        &self,
        serial: u64,
        history: &RenewalHistory,
    ) -> Result<(), RenewError> {
        let Some(mut record) = self.read_record().await? else {
            return Ok(());
        };
        if record.serial != serial {
            return Err(RenewError::Stored {
                file: self.record_name(),
                reason: format!(
                    "it names pair {} while pair {serial} is in use (another process?)",
                    record.serial
                ),
            });
        }
        record.history = history.clone();
        self.write_record(&record).await
    }

    async fn read_record(&self) -> Result<Option<Record>, RenewError> {
        let file = self.record_name();
        let Some(bytes) = self.state.read(&file).await.map_err(RenewError::State)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| RenewError::Stored {
                file,
                reason: e.to_string(),
            })
    }

    async fn write_record(&self, record: &Record) -> Result<(), RenewError> {
        let bytes = serde_json::to_vec_pretty(record).map_err(|e| RenewError::Stored {
            file: self.record_name(),
            reason: e.to_string(),
        })?;
        self.state
            .write(&self.record_name(), bytes)
            .await
            .map_err(RenewError::State)
    }

    async fn read_named(&self, file: &str) -> Result<Vec<u8>, RenewError> {
        let missing = || RenewError::Stored {
            file: self.record_name(),
            reason: format!("it names {file}, which does not exist"),
        };
        self.state
            .read(file)
            .await
            .map_err(RenewError::State)?
            .ok_or_else(missing)
    }
}
