//! An HTTPS/1.1 client that performs the [`HttpRequest`] values the pure cores emit.
//!
//! One request is one connection: resolve, connect, TLS handshake, send the request with
//! `Connection: close`, read the whole response, close. There is no pooling — a token keeper
//! sends a request every few minutes, and a fresh connection per request keeps the driver
//! free of pool state and of stale-connection retries. HTTP/1.1 framing (request
//! serialization, status line and header parsing, `Content-Length`, chunked and
//! close-delimited bodies, interim 1xx responses) is ureq-proto's; this module adds the
//! limits, the error mapping and the redirect policy.
//!
//! Every failure is a [`TransportError`] whose message names the host, the limit or the rule
//! that failed, and never a header value, a body or a query value (they may be credentials).
//!
//! Shared source: compiled into both `latchkey-tokio` and `latchkey-smol`; the runtime is
//! `crate::rt::Rt`.

pub(crate) mod config;
mod exchange;
mod target;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

pub use latchkey_oauth_core::http::{
    HttpRequest, HttpResponse, Method, TransportError, TransportErrorKind,
};
use ureq_proto::http::HeaderValue;

pub use self::config::{ConfigError, DEFAULT_USER_AGENT, HttpConfig, Roots};
use self::exchange::{Completed, Exchange, READ_SIZE};
use self::target::{Hop, Target};
use crate::rt::Rt;
use crate::runtime::Runtime;

/// An HTTPS/1.1 client: one connection per request, bounded in time and size.
///
/// Cheap to clone (the configuration and TLS setup are shared); `send` may run concurrently
/// from several tasks.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: HttpConfig,
    user_agent: HeaderValue,
    connector: <Rt as Runtime>::Connector,
}

impl HttpClient {
    /// A client for `config`: checks it and builds the TLS configuration (loading the system
    /// store for [`Roots::System`], which reads files).
    pub fn new(config: HttpConfig) -> Result<HttpClient, ConfigError> {
        config::validate(&config)?;
        let tls = config::tls_config(&config)?;
        let user_agent =
            HeaderValue::from_str(&config.user_agent).map_err(|_| ConfigError::Invalid {
                field: "user_agent",
                reason: "is not a valid header value",
            })?;
        Ok(HttpClient {
            inner: Arc::new(Inner {
                config,
                user_agent,
                connector: Rt::connector(tls),
            }),
        })
    }

    /// The configuration the client was built from.
    #[must_use]
    pub fn config(&self) -> &HttpConfig {
        &self.inner.config
    }

    /// Performs `request` and returns the complete response, whatever its status.
    ///
    /// A 3xx is returned as it is unless [`HttpConfig::max_redirects`] allows following it.
    /// `Host`, `Content-Length`, `Connection`, `Transfer-Encoding`, `TE`, `Upgrade` and
    /// `Expect` in the request are ignored (the driver sets the ones it needs); `User-Agent`
    /// is added unless the request has one.
    ///
    /// Dropping the future closes the connection; nothing is retried.
    pub async fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let config = &self.inner.config;
        let mut hop = Hop::first(request, config.allow_plain_http)?;
        let mut followed = 0;
        loop {
            let done = self.exchange(&hop).await?;
            let next = match done.redirect {
                Some(redirect) if followed < config.max_redirects => hop.follow(redirect),
                _ => None,
            };
            match next {
                Some(next) => {
                    hop = next;
                    followed += 1;
                }
                None => return Ok(done.response),
            }
        }
    }

    /// One connection: connect, send, receive.
    async fn exchange(&self, hop: &Hop<'_>) -> Result<Completed, TransportError> {
        let config = &self.inner.config;
        let target = &hop.target;
        let (mut exchange, wire) = Exchange::start(
            hop.request(&self.inner.user_agent)?,
            hop.body(),
            config.max_body_size,
        )?;
        let mut stream = Rt::timeout(config.connect_timeout, self.connect(target))
            .await
            .ok_or_else(|| {
                TransportError::new(
                    TransportErrorKind::Timeout,
                    format!(
                        "connecting to {target} took longer than {:?}",
                        config.connect_timeout
                    ),
                )
            })??;
        let transfer = async {
            Rt::write_all(&mut stream, &wire)
                .await
                .map_err(|e| stream_error(target, "sending the request to", &e))?;
            let mut buf = vec![0; READ_SIZE];
            loop {
                match Rt::read(&mut stream, &mut buf).await {
                    Ok(0) => return exchange.handle_eof(true),
                    Ok(n) => {
                        if let Some(done) = exchange.handle_input(&buf[..n])? {
                            return Ok(done);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        return exchange.handle_eof(false);
                    }
                    Err(e) => return Err(stream_error(target, "receiving the response from", &e)),
                }
            }
        };
        Rt::timeout(config.read_timeout, transfer)
            .await
            .ok_or_else(|| {
                TransportError::new(
                    TransportErrorKind::Timeout,
                    format!(
                        "no complete response from {target} within {:?}",
                        config.read_timeout
                    ),
                )
            })?
    }

    /// Resolves, connects over TCP (addresses in turn) and runs the TLS handshake.
    async fn connect(&self, target: &Target) -> Result<<Rt as Runtime>::Stream, TransportError> {
        let addrs = match target.ip {
            Some(ip) => vec![SocketAddr::new(ip, target.port)],
            None => Rt::resolve(&target.host, target.port).await.map_err(|e| {
                TransportError::new(
                    TransportErrorKind::Dns,
                    format!("could not resolve {}: {e}", target.host),
                )
            })?,
        };
        let mut last_error = None;
        let mut tcp = None;
        for addr in addrs {
            match Rt::connect_tcp(addr).await {
                Ok(socket) => {
                    tcp = Some(socket);
                    break;
                }
                Err(e) => last_error = Some(e),
            }
        }
        let Some(tcp) = tcp else {
            return Err(match last_error {
                Some(e) => TransportError::new(
                    TransportErrorKind::Connect,
                    format!("could not connect to {target}: {e}"),
                ),
                None => TransportError::new(
                    TransportErrorKind::Dns,
                    format!("{} resolved to no address", target.host),
                ),
            });
        };
        match &target.tls {
            None => Ok(Rt::plain(tcp)),
            Some(name) => Rt::start_tls(&self.inner.connector, name.clone(), tcp)
                .await
                .map_err(|e| {
                    let why = match tls_cause(&e) {
                        Some(tls) => tls.to_string(),
                        None => e.to_string(),
                    };
                    TransportError::new(
                        TransportErrorKind::Tls,
                        format!("TLS handshake with {target} failed: {why}"),
                    )
                }),
        }
    }
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// The rustls error inside an I/O error from a TLS stream, if that is what it is.
fn tls_cause(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// An error on an established connection: `Tls` when rustls raised it, `Io` otherwise.
fn stream_error(target: &Target, doing: &str, e: &io::Error) -> TransportError {
    match tls_cause(e) {
        Some(tls) => {
            TransportError::new(TransportErrorKind::Tls, format!("{doing} {target}: {tls}"))
        }
        None => TransportError::new(
            TransportErrorKind::Io,
            format!("{doing} {target} failed: {e}"),
        ),
    }
}
