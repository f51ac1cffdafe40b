//! The guard's snapshot: a compact, versioned byte format.
//!
//! ```text
//! "LKGUARD" version=1 taken_unix:u64
//! { tag:u8 count:u32 entry* }*   0 (end)
//! tag 1  auth rate cell          key:u128  tat_unix:u64
//! tag 2  provisioning rate cell  key:u128  tat_unix:u64
//! tag 3  provisioning address    key:u128  ban_end_unix:u64 (0 none)  n:u8  n × (code_fp:u64 seen_unix:u64)
//! tag 4  login address           key:u128  block_end_unix:u64 (0 none)  n:u8  n × failed_unix:u64
//! tag 5  login account           fp:u128  consecutive:u32  lock_end_unix:u64 (0 none)
//! tag 6  nonce                   device:u32  len:u8  bytes:[u8; 32]  expires_unix:u64
//! tag 7  session (optional)      sha256(id):[u8; 32]  user_len:u16  user  created_unix:u64  last_seen_unix:u64
//! ```
//!
//! Integers are little-endian. Every time is wall-clock Unix seconds; monotonic times are
//! converted with the `now` of [`Guard::snapshot`] and back with the `now` of
//! [`Guard::restore`], rounded so that bans, blocks, windows and GCRA cells end *later* (by
//! under a second), never earlier. Entries that expired while the process was down are
//! dropped; entries beyond the configured caps are dropped. Sessions are included only on
//! request and only as the SHA-256 of their id, so a leaked snapshot cannot be replayed as
//! a cookie. Hashing keys are not included: a restored guard draws new ones.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use rand_core::CryptoRng;

use super::addr::ClientKey;
use super::nonce::NonceKey;
use super::session::Session;
use super::{ConfigError, Guard, GuardConfig, Now};

const MAGIC: &[u8; 7] = b"LKGUARD";
const VERSION: u8 = 1;

const END: u8 = 0;
const AUTH_RATE: u8 = 1;
const PROVISIONING_RATE: u8 = 2;
const PROVISIONING: u8 = 3;
const LOGIN_ADDRESS: u8 = 4;
const LOGIN_ACCOUNT: u8 = 5;
const NONCE: u8 = 6;
const SESSION: u8 = 7;

/// Longest user name restored with a session.
const MAX_USER_LEN: usize = 1024;

/// A snapshot that cannot be restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnapshotError {
    /// It does not start with `LKGUARD`.
    BadMagic,
    /// A format version this build does not read.
    UnsupportedVersion {
        /// The version found.
        version: u8,
    },
    /// It ends inside a field.
    Truncated {
        /// Byte offset where more was needed.
        offset: usize,
    },
    /// An unknown section tag.
    UnknownSection {
        /// The tag.
        tag: u8,
        /// Its byte offset.
        offset: usize,
    },
    /// A field with an impossible value.
    BadValue {
        /// The field.
        field: &'static str,
        /// Its byte offset.
        offset: usize,
    },
    /// Bytes after the end marker.
    TrailingBytes {
        /// Offset of the first one.
        offset: usize,
    },
    /// The configuration given to restore is invalid.
    Config(ConfigError),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::BadMagic => f.write_str("not a guard snapshot (no LKGUARD header)"),
            SnapshotError::UnsupportedVersion { version } => {
                write!(
                    f,
                    "guard snapshot version {version} is not supported (this build reads {VERSION})"
                )
            }
            SnapshotError::Truncated { offset } => {
                write!(f, "guard snapshot ends early at byte {offset}")
            }
            SnapshotError::UnknownSection { tag, offset } => {
                write!(
                    f,
                    "guard snapshot has unknown section {tag} at byte {offset}"
                )
            }
            SnapshotError::BadValue { field, offset } => {
                write!(
                    f,
                    "guard snapshot field {field} at byte {offset} is invalid"
                )
            }
            SnapshotError::TrailingBytes { offset } => {
                write!(
                    f,
                    "guard snapshot has bytes after its end marker at byte {offset}"
                )
            }
            SnapshotError::Config(e) => write!(f, "cannot restore guard snapshot: {e}"),
        }
    }
}

impl core::error::Error for SnapshotError {}

struct Writer {
    out: Vec<u8>,
}

impl Writer {
    fn u8(&mut self, v: u8) {
        self.out.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    fn u128(&mut self, v: u128) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
    }
    /// Writes `tag`, a count placeholder, the entries, then patches the count.
    fn section(&mut self, tag: u8, body: impl FnOnce(&mut Writer) -> u32) {
        self.u8(tag);
        let at = self.out.len();
        self.u32(0);
        let n = body(self);
        self.out[at..at + 4].copy_from_slice(&n.to_le_bytes());
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let Some(end) = end else {
            return Err(SnapshotError::Truncated { offset: self.at });
        };
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, SnapshotError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, SnapshotError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn u128(&mut self) -> Result<u128, SnapshotError> {
        Ok(u128::from_le_bytes(self.array()?))
    }
    /// A count of entries each at least `min_size` bytes, checked against what is left.
    fn count(&mut self, min_size: usize) -> Result<u32, SnapshotError> {
        let at = self.at;
        let n = self.u32()?;
        if (n as usize).saturating_mul(min_size) > self.b.len() - self.at {
            return Err(SnapshotError::Truncated { offset: at });
        }
        Ok(n)
    }
}

impl Guard {
    /// The guard's state at `now` in the snapshot format (see the module docs), for the
    /// application to write atomically. Sessions are included only when `include_sessions`
    /// (the gateway does not persist them; a restart logs everyone out).
    #[must_use]
    pub fn snapshot(&self, now: Now, include_sessions: bool) -> Vec<u8> {
        let mut w = Writer { out: Vec::new() };
        w.bytes(MAGIC);
        w.u8(VERSION);
        w.u64(now.unix_secs);
        for (tag, limiter) in [
            (AUTH_RATE, &self.auth_rate),
            (PROVISIONING_RATE, &self.provisioning_rate),
        ] {
            w.section(tag, |w| {
                let mut n = 0;
                for (key, tat) in limiter.export(now.instant) {
                    w.u128(key.to_bits());
                    w.u64(now.unix_of_tick(tat));
                    n += 1;
                }
                n
            });
        }
        w.section(PROVISIONING, |w| {
            let mut n = 0;
            for (key, ban, codes) in self.provisioning.export(now.instant) {
                w.u128(key.to_bits());
                w.u64(ban.map_or(0, |t| now.unix_of_tick(t)));
                let codes = &codes[..codes.len().min(255)];
                w.u8(codes.len() as u8);
                for &(fp, seen) in codes {
                    w.u64(fp);
                    w.u64(now.unix_of_tick(seen));
                }
                n += 1;
            }
            n
        });
        w.section(LOGIN_ADDRESS, |w| {
            let mut n = 0;
            for (key, block, fails) in self.login.export_addresses(now.instant) {
                w.u128(key.to_bits());
                w.u64(block.map_or(0, |t| now.unix_of_tick(t)));
                let fails: Vec<u64> = fails.collect();
                w.u8(fails.len() as u8);
                for t in fails {
                    w.u64(now.unix_of_tick(t));
                }
                n += 1;
            }
            n
        });
        w.section(LOGIN_ACCOUNT, |w| {
            let mut n = 0;
            for (fp, consecutive, lock) in self.login.export_accounts(now.instant) {
                w.u64(fp[0]);
                w.u64(fp[1]);
                w.u32(consecutive);
                w.u64(lock.map_or(0, |t| now.unix_of_tick(t)));
                n += 1;
            }
            n
        });
        w.section(NONCE, |w| {
            let mut n = 0;
            for (key, expires) in self.nonces.export(now) {
                w.u32(key.device);
                w.u8(key.len);
                w.bytes(&key.bytes);
                w.u64(expires);
                n += 1;
            }
            n
        });
        if include_sessions {
            w.section(SESSION, |w| {
                let mut n = 0;
                for (digest, s) in self.sessions.export() {
                    let user = s.user.as_bytes();
                    if user.len() > MAX_USER_LEN {
                        continue;
                    }
                    w.bytes(digest);
                    w.u16(user.len() as u16);
                    w.bytes(user);
                    w.u64(now.unix_of_tick(s.created));
                    w.u64(now.unix_of_tick(s.last_seen));
                    n += 1;
                }
                n
            });
        }
        w.u8(END);
        w.out
    }

    /// A guard with `config`, holding the state of `snapshot` as of `now` (see the module
    /// docs for what is kept).
    ///
    /// # Errors
    ///
    /// [`SnapshotError`] when `snapshot` is not a complete snapshot of a known version, or
    /// `config` is invalid. Nothing is restored then.
    pub fn restore<R: CryptoRng + ?Sized>(
        config: GuardConfig,
        rng: &mut R,
        now: Now,
        snapshot: &[u8],
    ) -> Result<Guard, SnapshotError> {
        let mut guard = Guard::new(config, rng).map_err(SnapshotError::Config)?;
        let mut r = Reader { b: snapshot, at: 0 };
        if r.take(MAGIC.len()).ok() != Some(&MAGIC[..]) {
            return Err(SnapshotError::BadMagic);
        }
        let version = r.u8()?;
        if version != VERSION {
            return Err(SnapshotError::UnsupportedVersion { version });
        }
        let _taken = r.u64()?;
        let mine = now.instant;
        loop {
            let offset = r.at;
            let tag = r.u8()?;
            match tag {
                END => break,
                AUTH_RATE | PROVISIONING_RATE => {
                    for _ in 0..r.count(24)? {
                        let key = ClientKey::from_bits(r.u128()?);
                        let tat = now.tick_of_unix(r.u64()?);
                        let limiter = if tag == AUTH_RATE {
                            &mut guard.auth_rate
                        } else {
                            &mut guard.provisioning_rate
                        };
                        limiter.import(mine, key, tat);
                    }
                }
                PROVISIONING => {
                    for _ in 0..r.count(25)? {
                        let key = ClientKey::from_bits(r.u128()?);
                        let ban = r.u64()?;
                        let n = r.u8()?;
                        let mut codes = Vec::with_capacity(usize::from(n));
                        for _ in 0..n {
                            let fp = r.u64()?;
                            let seen = r.u64()?;
                            codes.push((fp, now.tick_of_unix(seen)));
                        }
                        let ban = (ban != 0).then(|| now.tick_of_unix(ban));
                        guard.provisioning.import(mine, key, ban, &codes);
                    }
                }
                LOGIN_ADDRESS => {
                    for _ in 0..r.count(25)? {
                        let key = ClientKey::from_bits(r.u128()?);
                        let block = r.u64()?;
                        let n_at = r.at;
                        let n = r.u8()?;
                        if n > 64 {
                            return Err(SnapshotError::BadValue {
                                field: "login failure count",
                                offset: n_at,
                            });
                        }
                        let mut fails = Vec::with_capacity(usize::from(n));
                        for _ in 0..n {
                            fails.push(now.tick_of_unix(r.u64()?));
                        }
                        let block = (block != 0).then(|| now.tick_of_unix(block));
                        guard.login.import_address(mine, key, block, &fails);
                    }
                }
                LOGIN_ACCOUNT => {
                    for _ in 0..r.count(28)? {
                        let fp = [r.u64()?, r.u64()?];
                        let consecutive = r.u32()?;
                        let lock = r.u64()?;
                        let lock = (lock != 0).then(|| now.tick_of_unix(lock));
                        guard.login.import_account(mine, fp, consecutive, lock);
                    }
                }
                NONCE => {
                    for _ in 0..r.count(45)? {
                        let device = r.u32()?;
                        let len_at = r.at;
                        let len = r.u8()?;
                        if len > 32 && len != 0xff {
                            return Err(SnapshotError::BadValue {
                                field: "nonce length",
                                offset: len_at,
                            });
                        }
                        let bytes = r.array::<32>()?;
                        let expires = r.u64()?;
                        guard
                            .nonces
                            .import(now, NonceKey { device, len, bytes }, expires);
                    }
                }
                SESSION => {
                    for _ in 0..r.count(50)? {
                        let digest = r.array::<32>()?;
                        let len_at = r.at;
                        let len = usize::from(r.u16()?);
                        if len > MAX_USER_LEN {
                            return Err(SnapshotError::BadValue {
                                field: "session user length",
                                offset: len_at,
                            });
                        }
                        let user_at = r.at;
                        let user = core::str::from_utf8(r.take(len)?).map_err(|_| {
                            SnapshotError::BadValue {
                                field: "session user",
                                offset: user_at,
                            }
                        })?;
                        // No later than now: a session stamped while the clock ran ahead
                        // must still reach its idle and absolute ends.
                        let created = now.tick_of_unix(r.u64()?.min(now.unix_secs));
                        let last_seen = now.tick_of_unix(r.u64()?.min(now.unix_secs));
                        guard.sessions.import(
                            mine,
                            digest,
                            Session {
                                user: String::from(user),
                                created,
                                last_seen,
                            },
                        );
                    }
                }
                tag => return Err(SnapshotError::UnknownSection { tag, offset }),
            }
        }
        if r.at != snapshot.len() {
            return Err(SnapshotError::TrailingBytes { offset: r.at });
        }
        guard.nonces.finish_import();
        if !guard.is_idle() {
            guard.next_sweep = Some(mine + guard.config.sweep.interval);
        }
        Ok(guard)
    }
}
