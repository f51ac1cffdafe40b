//! TLS identities (certificate chain + private key) that can be replaced while connections
//! run: a renewed server certificate serves every handshake after the swap, connections
//! already open keep the certificate they were made with, and a replacement that does not
//! hold together (no certificate, unreadable key, key not matching the certificate) is
//! refused before anything changes — the last good identity stays.
//!
//! [`LiveIdentity`] is a rustls certificate resolver for both sides: a server built with
//! [`server_config`] asks it on every handshake, and a client built with [`client_config`]
//! presents it when the server asks for a certificate (mutual TLS, e.g. BTicino's SIP
//! endpoint). Swapping is [`LiveIdentity::replace`]; nothing is rebuilt and no listener is
//! restarted.
//!
//! Session resumption would defeat a swap: a resumed TLS 1.3 session carries the
//! certificates of the handshake it resumes, so a client resuming after the swap would still
//! see — or, with mutual TLS, still present — the old certificate until the session ages out.
//! Both configurations therefore keep their resumption caches per identity generation: a swap
//! starts an empty cache, and every later connection makes a full handshake with the new
//! certificate once. Whether a certificate is *acceptable* (validity dates, chain, name) is the pure
//! `latchkey-pki` crate's question, asked before `replace`; this module only guarantees that
//! the pair is usable by rustls.
//!
//! Shared source: compiled into both `latchkey-tokio` and `latchkey-smol`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use std::sync::Mutex;

use rustls::client::{
    ClientSessionMemoryCache, ClientSessionStore, ResolvesClientCert, Resumption,
    Tls12ClientSessionValue, Tls13ClientSessionValue,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{
    ClientHello, ResolvesServerCert, ServerSessionMemoryCache, StoresServerSessions,
    WebPkiClientVerifier,
};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, NamedGroup, RootCertStore, ServerConfig, SignatureScheme};

use crate::http::{ConfigError, Roots};

/// Why a certificate chain and key cannot serve as a TLS identity.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityError {
    /// The chain holds no certificate.
    NoCertificate,
    /// The certificate PEM cannot be read.
    CertificatePem(String),
    /// The key PEM holds no private key or cannot be read.
    KeyPem(String),
    /// The key is of a kind the crypto provider cannot sign with.
    UnsupportedKey(String),
    /// The key is not the one the certificate was issued for.
    KeyMismatch,
    /// Whether key and certificate match could not be established; refused, since a wrong
    /// pair would only fail later, at a peer's handshake.
    KeyMatchUnknown,
    /// The certificate cannot be parsed.
    Certificate(String),
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityError::NoCertificate => {
                f.write_str("the certificate file holds no certificate")
            }
            IdentityError::CertificatePem(e) => {
                write!(f, "the certificate PEM cannot be read: {e}")
            }
            IdentityError::KeyPem(e) => write!(f, "the private key PEM cannot be read: {e}"),
            IdentityError::UnsupportedKey(e) => write!(f, "the private key cannot be used: {e}"),
            IdentityError::KeyMismatch => {
                f.write_str("the private key does not belong to the certificate")
            }
            IdentityError::KeyMatchUnknown => f.write_str(
                "cannot tell whether the private key belongs to the certificate; refused",
            ),
            IdentityError::Certificate(e) => write!(f, "the certificate cannot be parsed: {e}"),
        }
    }
}

impl std::error::Error for IdentityError {}

/// A certificate chain (end entity first) with the private key of its first certificate,
/// checked to belong together.
#[derive(Clone)]
pub struct Identity {
    key: Arc<CertifiedKey>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The signing key never prints.
        f.debug_struct("Identity")
            .field("certificates", &self.key.cert.len())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Reads a PEM certificate chain (end entity first) and a PEM private key (PKCS#8,
    /// SEC1 or PKCS#1).
    ///
    /// # Errors
    /// [`IdentityError`] naming what is wrong.
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Identity, IdentityError> {
        let chain = CertificateDer::pem_slice_iter(chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| IdentityError::CertificatePem(e.to_string()))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| IdentityError::KeyPem(e.to_string()))?;
        Identity::from_der(chain, key)
    }

    /// Builds an identity from DER.
    ///
    /// # Errors
    /// [`IdentityError`] naming what is wrong.
    pub fn from_der(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Identity, IdentityError> {
        if chain.is_empty() {
            return Err(IdentityError::NoCertificate);
        }
        let signer = provider()
            .key_provider
            .load_private_key(key)
            .map_err(|e| IdentityError::UnsupportedKey(e.to_string()))?;
        let key = CertifiedKey::new(chain, signer);
        match key.keys_match() {
            Ok(()) => Ok(Identity { key: Arc::new(key) }),
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
                Err(IdentityError::KeyMismatch)
            }
            Err(rustls::Error::InconsistentKeys(_)) => Err(IdentityError::KeyMatchUnknown),
            Err(e) => Err(IdentityError::Certificate(e.to_string())),
        }
    }

    /// The certificates, end entity first.
    #[must_use]
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.key.cert
    }
}

/// The identity a server or client presents now; [`LiveIdentity::replace`] swaps it for
/// every later handshake. Cheap to clone (all clones share the identity).
#[derive(Clone)]
pub struct LiveIdentity {
    inner: Arc<Inner>,
}

struct Inner {
    current: RwLock<Arc<CertifiedKey>>,
    generation: AtomicU64,
    /// Notified after every replacement.
    replaced: event_listener::Event,
}

impl fmt::Debug for LiveIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveIdentity")
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl LiveIdentity {
    /// Starts with `identity` (generation 0).
    #[must_use]
    pub fn new(identity: Identity) -> LiveIdentity {
        LiveIdentity {
            inner: Arc::new(Inner {
                current: RwLock::new(identity.key),
                generation: AtomicU64::new(0),
                replaced: event_listener::Event::new(),
            }),
        }
    }

    /// Makes `identity` the one every later handshake uses; connections already open keep
    /// theirs. Returns the new generation (one more per replacement), which a client that
    /// must reconnect to present the new certificate (a SIP registration) watches.
    pub fn replace(&self, identity: Identity) -> u64 {
        let mut current = self
            .inner
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *current = identity.key;
        // Under the lock, so generation and identity change together.
        let generation = self.inner.generation.fetch_add(1, Ordering::AcqRel) + 1;
        drop(current);
        self.inner.replaced.notify(usize::MAX);
        generation
    }

    /// A future that completes at the next [`LiveIdentity::replace`] after this call (a
    /// driver that must reconnect to present a new certificate waits on it next to its
    /// socket; compare [`LiveIdentity::generation`] before and after, as the listener may
    /// also complete for a replacement that raced with its creation).
    pub fn replaced(&self) -> event_listener::EventListener {
        self.inner.replaced.listen()
    }

    /// How many times the identity was replaced.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// The identity in use now.
    #[must_use]
    pub fn current(&self) -> Identity {
        Identity {
            key: self.certified_key(),
        }
    }

    fn certified_key(&self) -> Arc<CertifiedKey> {
        self.inner
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl ResolvesServerCert for LiveIdentity {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.certified_key())
    }
}

impl ResolvesClientCert for LiveIdentity {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.certified_key())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Whether a server asks its clients for certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuth {
    /// No client certificates.
    None,
    /// Every client must present a certificate issued by one of these CAs (PEM).
    Required {
        /// The accepted issuers.
        roots_pem: Vec<u8>,
    },
}

/// A server configuration (ring provider, TLS 1.3 and 1.2) that presents `identity` —
/// whatever it holds at each handshake — with `alpn` protocols (e.g. `http/1.1`).
///
/// # Errors
/// [`ConfigError`] when the client CA bundle is unusable.
pub fn server_config(
    identity: &LiveIdentity,
    client_auth: &ClientAuth,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, ConfigError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Tls(e.to_string()))?;
    let builder = match client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Required { roots_pem } => {
            let roots = Arc::new(crate::http::config::root_store(
                &Roots::Pem(roots_pem.clone()),
                None,
            )?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
                .build()
                .map_err(|e| ConfigError::Tls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(Arc::new(identity.clone()));
    config.session_storage = Arc::new(ServerSessions::new(identity, || {
        ServerSessionMemoryCache::new(SESSIONS)
    }));
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// A client configuration (ring provider, TLS 1.3 and 1.2) trusting `roots` (plus
/// `extra_roots_pem`), presenting `identity` when the server asks for a certificate.
///
/// # Errors
/// [`ConfigError`] when a root bundle is unusable.
pub fn client_config(
    roots: &Roots,
    extra_roots_pem: Option<&[u8]>,
    identity: Option<&LiveIdentity>,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, ConfigError> {
    let store: RootCertStore = crate::http::config::root_store(roots, extra_roots_pem)?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Tls(e.to_string()))?
        .with_root_certificates(store);
    let mut config = match identity {
        Some(identity) => {
            let mut config = builder.with_client_cert_resolver(Arc::new(identity.clone()));
            config.resumption = Resumption::store(Arc::new(ClientSessions::new(identity, || {
                Arc::new(ClientSessionMemoryCache::new(SESSIONS))
            })));
            config
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Sessions remembered for resumption (rustls' default size).
const SESSIONS: usize = 256;

/// A resumption cache that starts empty whenever `identity` is replaced.
struct PerIdentity<T> {
    identity: LiveIdentity,
    cache: Mutex<(u64, Arc<T>)>,
    fresh: fn() -> Arc<T>,
}

impl<T> PerIdentity<T> {
    fn new(identity: &LiveIdentity, fresh: fn() -> Arc<T>) -> Self {
        PerIdentity {
            identity: identity.clone(),
            cache: Mutex::new((identity.generation(), fresh())),
            fresh,
        }
    }

    /// The cache of the current identity generation.
    fn current(&self) -> Arc<T> {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let generation = self.identity.generation();
        if cache.0 != generation {
            *cache = (generation, (self.fresh)());
        }
        cache.1.clone()
    }
}

impl<T> fmt::Debug for PerIdentity<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerIdentity")
            .field("generation", &self.identity.generation())
            .finish_non_exhaustive()
    }
}

/// The server's resumption cache, emptied when the identity is replaced.
type ServerSessions = PerIdentity<ServerSessionMemoryCache>;

impl StoresServerSessions for ServerSessions {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.current().put(key, value)
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.current().get(key)
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.current().take(key)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

/// The client's resumption cache, emptied when its identity is replaced.
type ClientSessions = PerIdentity<ClientSessionMemoryCache>;

impl ClientSessionStore for ClientSessions {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.current().set_kx_hint(server_name, group);
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.current().kx_hint(server_name)
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.current().set_tls12_session(server_name, value);
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.current().tls12_session(server_name)
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.current().remove_tls12_session(server_name);
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        self.current().insert_tls13_ticket(server_name, value);
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        self.current().take_tls13_ticket(server_name)
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
