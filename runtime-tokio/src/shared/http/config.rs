//! Client configuration and the rustls setup built from it.
//!
//! Shared source: compiled into both `latchkey-tokio` and `latchkey-smol`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

/// The `User-Agent` sent when a request does not set one: `latchkey/<crate version>`.
pub const DEFAULT_USER_AGENT: &str = concat!("latchkey/", env!("CARGO_PKG_VERSION"));

/// How an [`HttpClient`](super::HttpClient) connects, what it trusts and what it accepts.
///
/// Start from [`HttpConfig::default()`] and change the fields you need (the crate docs show
/// an example).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Limit for name resolution, the TCP connection and the TLS handshake together
    /// (per request, and again per followed redirect). Default 10 s.
    pub connect_timeout: Duration,
    /// Limit for sending the request and receiving the whole response, body included
    /// (per request, and again per followed redirect). Default 30 s.
    pub read_timeout: Duration,
    /// Largest accepted response body, after de-chunking; a larger one fails with
    /// `TooLarge`. Default 4 MiB.
    pub max_body_size: usize,
    /// Which certificate authorities are trusted. Default [`Roots::WebPki`].
    pub roots: Roots,
    /// Further CA certificates (PEM) trusted in addition to [`HttpConfig::roots`], e.g. a
    /// private CA next to the public web roots. Default none.
    pub extra_roots_pem: Option<Vec<u8>>,
    /// How many redirects to follow; 0 (the default) returns every 3xx response as it is.
    ///
    /// A redirect is followed only to an `https://` URL; a `POST`, `PUT`, `PATCH` or
    /// `DELETE` answered with 307 or 308 is not followed (its body would be re-sent); 301, 302
    /// and 303 turn the request into a `GET` without a body. To another origin (scheme, host
    /// or port) only `Accept`, `Accept-Language` and `User-Agent` are forwarded, so
    /// `Authorization` and every other credential header stay with the origin they were
    /// meant for. A redirect that is not followed is returned as the response.
    pub max_redirects: u8,
    /// `User-Agent` sent when the request does not set one. Default [`DEFAULT_USER_AGENT`].
    pub user_agent: String,
    /// Allow plain `http://` URLs. Off by default, for tests and loopback services only:
    /// a request to an `http://` URL otherwise fails with `InvalidUrl` before any I/O.
    pub allow_plain_http: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            max_body_size: 4 * 1024 * 1024,
            roots: Roots::WebPki,
            extra_roots_pem: None,
            max_redirects: 0,
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            allow_plain_http: false,
        }
    }
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("max_body_size", &self.max_body_size)
            .field("roots", &self.roots)
            .field(
                "extra_roots_pem",
                &self.extra_roots_pem.as_ref().map(|p| PemLen(p.len())),
            )
            .field("max_redirects", &self.max_redirects)
            .field("user_agent", &self.user_agent)
            .field("allow_plain_http", &self.allow_plain_http)
            .finish()
    }
}

/// The certificate authorities a client trusts.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Roots {
    /// Mozilla's root program, compiled in (`webpki-roots`): the same everywhere, no
    /// dependency on the host's store. The default.
    WebPki,
    /// The operating system's store (`rustls-native-certs`), read once by
    /// [`HttpClient::new`](super::HttpClient::new); honours `SSL_CERT_FILE` / `SSL_CERT_DIR`.
    System,
    /// Only the CA certificates in this PEM bundle (private CAs, tests). Blocks other than
    /// `CERTIFICATE` are ignored.
    Pem(Vec<u8>),
}

impl fmt::Debug for Roots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Roots::WebPki => f.write_str("WebPki"),
            Roots::System => f.write_str("System"),
            Roots::Pem(pem) => f.debug_tuple("Pem").field(&PemLen(pem.len())).finish(),
        }
    }
}

struct PemLen(usize);

impl fmt::Debug for PemLen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes of PEM>", self.0)
    }
}

/// Why an [`HttpConfig`] could not be turned into a client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A PEM bundle could not be read or held no `CERTIFICATE` block.
    Pem {
        /// Which field: `roots` or `extra_roots_pem`.
        field: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A certificate in a PEM bundle is not usable as a trust anchor.
    Certificate {
        /// Which field: `roots` or `extra_roots_pem`.
        field: &'static str,
        /// Position of the certificate in the bundle, from 0.
        index: usize,
        /// Why it was rejected.
        reason: String,
    },
    /// [`Roots::System`] was asked for but no certificate could be loaded from the system.
    SystemRoots {
        /// What went wrong while loading.
        reason: String,
    },
    /// A field has a value the client cannot work with.
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// rustls refused the TLS configuration.
    Tls(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Pem { field, reason } => write!(f, "{field}: bad PEM bundle: {reason}"),
            ConfigError::Certificate {
                field,
                index,
                reason,
            } => write!(
                f,
                "{field}: certificate #{index} is not a usable CA: {reason}"
            ),
            ConfigError::SystemRoots { reason } => {
                write!(
                    f,
                    "roots: no system CA certificate could be loaded: {reason}"
                )
            }
            ConfigError::Invalid { field, reason } => write!(f, "{field}: {reason}"),
            ConfigError::Tls(reason) => write!(f, "TLS configuration refused: {reason}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Checks the plain fields of `config`.
pub(crate) fn validate(config: &HttpConfig) -> Result<(), ConfigError> {
    let invalid = |field, reason| Err(ConfigError::Invalid { field, reason });
    if config.connect_timeout.is_zero() {
        return invalid("connect_timeout", "must be longer than zero");
    }
    if config.read_timeout.is_zero() {
        return invalid("read_timeout", "must be longer than zero");
    }
    if config.max_body_size == 0 || config.max_body_size == usize::MAX {
        return invalid("max_body_size", "must be between 1 and usize::MAX - 1");
    }
    if ureq_proto::http::HeaderValue::from_str(&config.user_agent).is_err() {
        return invalid("user_agent", "is not a valid header value");
    }
    Ok(())
}

/// The rustls client configuration for `config`: ring provider, safe default protocol
/// versions (TLS 1.3 and 1.2), the configured roots, ALPN `http/1.1`, no client certificate.
pub(crate) fn tls_config(config: &HttpConfig) -> Result<Arc<ClientConfig>, ConfigError> {
    let roots = root_store(&config.roots, config.extra_roots_pem.as_deref())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(tls))
}

pub(crate) fn root_store(
    roots: &Roots,
    extra: Option<&[u8]>,
) -> Result<RootCertStore, ConfigError> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::WebPki => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Roots::System => {
            let loaded = rustls_native_certs::load_native_certs();
            let (added, _ignored) = store.add_parsable_certificates(loaded.certs);
            if added == 0 {
                let reason = match loaded.errors.first() {
                    Some(e) => e.to_string(),
                    None => "the store is empty".to_owned(),
                };
                return Err(ConfigError::SystemRoots { reason });
            }
        }
        Roots::Pem(pem) => add_pem(&mut store, "roots", pem)?,
    }
    if let Some(pem) = extra {
        add_pem(&mut store, "extra_roots_pem", pem)?;
    }
    Ok(store)
}

fn add_pem(store: &mut RootCertStore, field: &'static str, pem: &[u8]) -> Result<(), ConfigError> {
    let mut count = 0;
    for (index, cert) in CertificateDer::pem_slice_iter(pem).enumerate() {
        let cert = cert.map_err(|e| ConfigError::Pem {
            field,
            reason: e.to_string(),
        })?;
        store.add(cert).map_err(|e| ConfigError::Certificate {
            field,
            index,
            reason: e.to_string(),
        })?;
        count += 1;
    }
    if count == 0 {
        return Err(ConfigError::Pem {
            field,
            reason: "no CERTIFICATE block found".to_owned(),
        });
    }
    Ok(())
}
