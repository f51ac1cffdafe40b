//! Where renewed pairs come from: the [`RenewalSource`] trait, local self-signed
//! regeneration and watched files. The cloud source is in `cloud.rs`.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use latchkey_pki::key::{KeyType, PrivateKey};
use latchkey_pki::request::{Certificate, RequestParams, SelfSignedParams};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::keeper::KeeperError;
use crate::rt::Rt;
use crate::runtime::Runtime;

/// A certificate (PEM: the leaf, then any chain) and its private key (PEM), as a source
/// gives it. The key is wiped from memory when the pair is dropped and never printed.
pub struct CertifiedPair {
    /// The certificate PEM; further certificates after the leaf are its chain.
    pub cert_pem: Vec<u8>,
    key_pem: Zeroizing<Vec<u8>>,
}

impl CertifiedPair {
    /// A pair from PEM bytes.
    #[must_use]
    pub fn new(cert_pem: Vec<u8>, key_pem: Vec<u8>) -> Self {
        CertifiedPair {
            cert_pem,
            key_pem: Zeroizing::new(key_pem),
        }
    }

    /// The private key PEM.
    #[must_use]
    pub fn key_pem(&self) -> &[u8] {
        &self.key_pem
    }
}

impl fmt::Debug for CertifiedPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertifiedPair")
            .field("cert_pem_len", &self.cert_pem.len())
            .finish_non_exhaustive()
    }
}

/// Why a source gave no pair. Messages never hold key material.
#[derive(Debug)]
#[non_exhaustive]
pub enum SourceError {
    /// The operating system's random source failed; nothing made from it was kept.
    Random(String),
    /// Making a key, CSR or certificate failed.
    Build(latchkey_pki::Error),
    /// No access token for the cloud call.
    Token(KeeperError),
    /// The cloud service's answer (status, shape) was not a certificate.
    Api(String),
    /// A watched file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The source gave no answer within [`SOURCE_TIMEOUT`](super::SOURCE_TIMEOUT).
    TimedOut,
    /// Another source's reason.
    Other(String),
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::Random(e) => write!(f, "the OS random source failed: {e}"),
            SourceError::Build(e) => write!(f, "{e}"),
            SourceError::Token(e) => write!(f, "no access token for the certificate request: {e}"),
            SourceError::Api(e) => write!(f, "the certificate request failed: {e}"),
            SourceError::Read { path, reason } => {
                write!(f, "cannot read {}: {reason}", path.display())
            }
            SourceError::TimedOut => write!(
                f,
                "the source gave no answer within {} s",
                super::SOURCE_TIMEOUT.as_secs()
            ),
            SourceError::Other(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for SourceError {}

/// Gives new certificate/key pairs to a [`CertRenewer`](super::CertRenewer).
///
/// A source makes or fetches pairs; it never decides when (the schedule does) nor whether a
/// pair is acceptable (validation does).
pub trait RenewalSource: Send + Sync + 'static {
    /// A new pair, asked for when renewal is due (and once at start when nothing is stored).
    /// `now` is the renewer's wall clock (Unix seconds), for sources that set validity.
    fn renew(&self, now: u64) -> impl Future<Output = Result<CertifiedPair, SourceError>> + Send;

    /// How often to call [`RenewalSource::changed`]; `None` (the default) for sources that
    /// change only when asked.
    fn watch_interval(&self) -> Option<Duration> {
        None
    }

    /// A pair that appeared on its own since the last call, if any; an error is reported
    /// once per distinct error. Only called when [`RenewalSource::watch_interval`] is set.
    fn changed(&self) -> impl Future<Output = Result<Option<CertifiedPair>, SourceError>> + Send {
        std::future::ready(Ok(None))
    }
}

/// notBefore of a regenerated self-signed certificate is this far before `now` by default,
/// so a client whose clock is a little behind still accepts it (as `latchkey cert generate`).
pub const DEFAULT_BACKDATE: u64 = 300;

/// Regenerates a self-signed certificate locally: a new key and a certificate with the
/// same subject, names and usages, valid from `now − backdate` for the configured lifetime.
/// The door station's case (`CN=doorstation.local`, ten years).
#[derive(Debug, Clone)]
pub struct SelfSignedSource {
    request: RequestParams,
    lifetime: u64,
    backdate: u64,
    key_type: KeyType,
}

impl SelfSignedSource {
    /// Certificates for `request` (subject, SANs, usages) valid for `lifetime` (at least
    /// one second); P-256 keys, notBefore [`DEFAULT_BACKDATE`] seconds back.
    #[must_use]
    pub fn new(request: RequestParams, lifetime: Duration) -> Self {
        SelfSignedSource {
            request,
            lifetime: lifetime.as_secs().max(1),
            backdate: DEFAULT_BACKDATE,
            key_type: KeyType::P256,
        }
    }

    /// Another key type (P-256 or Ed25519).
    #[must_use]
    pub fn with_key_type(mut self, key_type: KeyType) -> Self {
        self.key_type = key_type;
        self
    }

    /// Sets notBefore `seconds` before `now`.
    #[must_use]
    pub fn with_backdate(mut self, seconds: u64) -> Self {
        self.backdate = seconds;
        self
    }
}

impl RenewalSource for SelfSignedSource {
    fn renew(&self, now: u64) -> impl Future<Output = Result<CertifiedPair, SourceError>> + Send {
        let not_before = now.saturating_sub(self.backdate);
        let params = SelfSignedParams::new(
            self.request.clone(),
            not_before,
            now.saturating_add(self.lifetime),
        );
        let made = (|| {
            let mut rng = OsRandom::default();
            let key = PrivateKey::generate(self.key_type, &mut rng);
            rng.check()?;
            let key = key.map_err(|e| SourceError::Build(e.into()))?;
            let cert = Certificate::self_signed(&params, &key, &mut rng);
            rng.check()?;
            let cert = cert.map_err(|e| SourceError::Build(e.into()))?;
            Ok(CertifiedPair::new(
                cert.to_pem().into_bytes(),
                key.to_pem().as_bytes().to_vec(),
            ))
        })();
        std::future::ready(made)
    }
}

/// How often [`WatchedFiles`] looks at its files by default.
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(10);

/// Largest certificate, key or chain file read (as `latchkey_pki::pem`'s input limit).
pub const MAX_FILE_LEN: u64 = latchkey_pki::pem::MAX_INPUT_LEN as u64;

/// A certificate and key (and optional chain) that an outside tool replaces — certbot, an
/// ACME client, an administrator's upload.
///
/// The files are read at every interval; a pair counts as new when any file's
/// modification time, size or SHA-256 differs from the last look. A new pair is validated
/// like any renewal, so a half-written pair — the certificate replaced, the key not yet —
/// fails validation (the key does not match) and is never swapped in; the next look, once
/// the key is there too, installs it. When renewal falls due and the files still hold the
/// certificate in use, the attempt fails and the schedule's backoff applies.
///
/// **Advice for the outside tool:** write each new file under a temporary name in the same
/// directory and `rename` it over the old one — the key first, then the certificate — so
/// that no file is ever seen half-written. A pair seen between the two renames is refused
/// and picked up at the next look. (A single file holding both certificate and key, given
/// as both paths, changes in one rename.)
#[derive(Debug)]
pub struct WatchedFiles {
    cert: PathBuf,
    key: PathBuf,
    chain: Option<PathBuf>,
    interval: Duration,
    last: Mutex<Option<Look>>,
}

/// What one look at the files saw: a fingerprint per file, or an error.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Look {
    Files(Vec<Stamp>),
    Error(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    sha256: [u8; 32],
}

impl WatchedFiles {
    /// Watches `cert` (PEM, leaf first; a chain may follow) and `key` (PEM), every
    /// [`DEFAULT_WATCH_INTERVAL`].
    #[must_use]
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        WatchedFiles {
            cert: cert.into(),
            key: key.into(),
            chain: None,
            interval: DEFAULT_WATCH_INTERVAL,
            last: Mutex::new(None),
        }
    }

    /// Also reads intermediates from `chain` (appended to the certificate).
    #[must_use]
    pub fn with_chain(mut self, chain: impl Into<PathBuf>) -> Self {
        self.chain = Some(chain.into());
        self
    }

    /// Looks every `interval` (at least 10 ms).
    #[must_use]
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(10));
        self
    }

    /// The certificate file.
    #[must_use]
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// Reads the files on the blocking pool.
    async fn read(&self) -> Result<(CertifiedPair, Vec<Stamp>), SourceError> {
        let mut paths = vec![self.cert.clone(), self.key.clone()];
        paths.extend(self.chain.clone());
        Rt::unblock(move || read_files(&paths))
            .await
            .map_err(|e| SourceError::Other(format!("cannot start a blocking task: {e}")))?
    }
}

impl RenewalSource for WatchedFiles {
    async fn renew(&self, _now: u64) -> Result<CertifiedPair, SourceError> {
        self.read().await.map(|(pair, _)| pair)
    }

    fn watch_interval(&self) -> Option<Duration> {
        Some(self.interval)
    }

    async fn changed(&self) -> Result<Option<CertifiedPair>, SourceError> {
        let result = self.read().await;
        let look = match &result {
            Ok((_, stamps)) => Look::Files(stamps.clone()),
            Err(e) => Look::Error(e.to_string()),
        };
        {
            let mut last = self
                .last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.as_ref() == Some(&look) {
                return Ok(None);
            }
            *last = Some(look);
        }
        result.map(|(pair, _)| Some(pair))
    }
}

/// Reads certificate, key and chain files: the pair (chain appended to the certificate) and
/// a stamp per file.
fn read_files(paths: &[PathBuf]) -> Result<(CertifiedPair, Vec<Stamp>), SourceError> {
    let mut contents = Vec::with_capacity(paths.len());
    let mut stamps = Vec::with_capacity(paths.len());
    for path in paths {
        let (bytes, stamp) = read_file(path)?;
        contents.push(bytes);
        stamps.push(stamp);
    }
    let mut contents = contents.into_iter();
    let mut cert = contents.next().unwrap_or_default();
    let key = Zeroizing::new(contents.next().unwrap_or_default());
    for chain in contents {
        if !cert.ends_with(b"\n") {
            cert.push(b'\n');
        }
        cert.extend_from_slice(&chain);
    }
    Ok((CertifiedPair::new(cert, key.to_vec()), stamps))
}

fn read_file(path: &Path) -> Result<(Vec<u8>, Stamp), SourceError> {
    let failed = |reason: String| SourceError::Read {
        path: path.to_owned(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| failed(e.to_string()))?;
    let meta = file.metadata().map_err(|e| failed(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| failed(e.to_string()))?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(failed(format!("larger than {MAX_FILE_LEN} bytes")));
    }
    let stamp = Stamp {
        modified: meta.modified().ok(),
        len: bytes.len() as u64,
        sha256: Sha256::digest(&bytes).into(),
    };
    Ok((bytes, stamp))
}

/// The operating system's random source as the `rand_core` generator `latchkey-pki` takes.
///
/// `rand_core`'s infallible interface cannot report a failure, so a failed read fills zeros
/// and is remembered; [`OsRandom::check`] must be called before anything made with it is
/// used, and turns the failure into an error.
#[derive(Debug, Default)]
pub(super) struct OsRandom {
    failed: Option<String>,
}

impl OsRandom {
    /// Fails if any read from the OS failed.
    pub(super) fn check(&self) -> Result<(), SourceError> {
        match &self.failed {
            Some(e) => Err(SourceError::Random(e.clone())),
            None => Ok(()),
        }
    }
}

impl rand_core::TryRng for OsRandom {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        if let Err(e) = getrandom::fill(dst) {
            dst.fill(0);
            self.failed.get_or_insert_with(|| e.to_string());
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for OsRandom {}
