//! Thin tokio drivers for latchkey's sans-IO cores: an HTTPS client and atomic state files.
//!
//! The pure crates (`latchkey-oauth-core`, …) hold every protocol rule and never touch a
//! socket, a clock or a file. This crate is the layer that does: it performs the effects the
//! cores emit and feeds the results back. No protocol rule lives here — if a driver needs an
//! `if` about OAuth or SIP, that `if` belongs in a core.
//!
//! - [`http`]: performs an [`HttpRequest`](http::HttpRequest) over HTTPS/1.1 and returns the
//!   [`HttpResponse`](http::HttpResponse) or a [`TransportError`](http::TransportError) — the
//!   values of `latchkey_oauth_core::http`.
//! - [`keeper`]: [`TokenKeeper`](keeper::TokenKeeper) drives an OAuth token session: HTTPS
//!   requests, compare-and-swap writes of its state file, timers.
//! - [`sip`]: [`SipClient`](sip::SipClient) runs the SIP user agent of `latchkey-protocol`
//!   over TLS (mutual TLS with a [`LiveIdentity`](tls::LiveIdentity)): registration, doorbell
//!   rings, gate MESSAGEs, reconnects with backoff, certificate renewal.
//! - [`state`]: reads and atomically replaces small files in the state directory (mode 0600,
//!   directory 0700), as the cores' `Persist` effects require.
//! - [`tls`]: TLS identities (certificate + key) swapped while connections run, and the
//!   server and client configurations that present them (mutual TLS included).
//! - [`serve`]: [`Gateway`](serve::Gateway) serves the pure `latchkey-gateway` application
//!   over HTTPS (HTTP/1.1 framed with `httparse`, WebSocket frames by tungstenite's codec),
//!   with limits, slow-client timeouts, connection caps, a redirecting HTTP port, hot-swapped
//!   certificates and graceful shutdown — `latchkey serve`.
//! - [`renewer`]: [`CertRenewer`](renewer::CertRenewer) keeps such an identity renewed —
//!   from a cloud CA through the token keeper, by self-signed regeneration, or from files an
//!   outside tool replaces — running `latchkey-pki`'s schedule and validating every pair
//!   before it is persisted and swapped in.
//!
//! ```no_run
//! use latchkey_tokio::http::{HttpClient, HttpConfig, HttpRequest, Method};
//! use latchkey_tokio::state::StateDir;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = HttpConfig::default();
//! config.read_timeout = std::time::Duration::from_secs(15);
//! let client = HttpClient::new(config)?;
//!
//! let mut request = HttpRequest::new(Method::Post, "https://login.example.com/token");
//! request.push_header("Content-Type", "application/x-www-form-urlencoded");
//! request.body = b"grant_type=refresh_token&refresh_token=...".to_vec();
//! let response = client.send(&request).await?; // hand it to the core: handle_http_response
//!
//! let state = StateDir::open("./latchkey-data").await?;
//! state.write("tokens.json", response.body).await?; // then acknowledge: handle_persisted
//! let _again = state.read("tokens.json").await?;
//! # Ok(())
//! # }
//! ```
//!//!
//! # Certificate renewal
//!
//! ```no_run
//! use latchkey_pki::request::{DistinguishedName, RequestParams, SubjectAltName};
//! use latchkey_tokio::renewer::{CertRenewer, RenewalEvent, SelfSignedSource};
//! use latchkey_tokio::state::StateDir;
//! use latchkey_tokio::tls::{ClientAuth, server_config};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let request = RequestParams::new(DistinguishedName::common_name("doorstation.local"))
//!     .with_san(SubjectAltName::Dns("doorstation.local".into()));
//! let ten_years = std::time::Duration::from_secs(3650 * 86_400);
//! let renewer = CertRenewer::builder(SelfSignedSource::new(request, ten_years))
//!     .persist(StateDir::open("./latchkey-data").await?, "https")
//!     .observer(Box::new(|event: &RenewalEvent| eprintln!("{event}")))
//!     .start()
//!     .await?; // the stored pair, or a first one from the source
//! let tls = server_config(renewer.identity(), &ClientAuth::None, &[b"http/1.1"])?;
//! tokio::spawn({
//!     let renewer = renewer.clone();
//!     async move { renewer.run().await }
//! });
//! // Accept connections with `tls`: a renewed certificate reaches every later handshake,
//! // connections already open keep theirs.
//! # let _ = tls;
//! # Ok(())
//! # }
//! ```

//! # Time
//!
//! Limits and sleeps are [`std::time::Duration`]s measured on tokio's monotonic timer. The
//! token keeper and the certificate renewer also read the wall clock (Unix seconds), because
//! token expiry and certificate validity are wall-clock facts; they decide again after every
//! wake, so a clock step is noticed at the next one (the keeper wakes at least every
//! [`keeper::WAKE_CAP`]; [`keeper::TokenKeeper::with_clock`] replaces its clock).
//!
//! # One source, two runtimes
//!
//! `latchkey-smol` offers the same API on the smol family. Everything that does not depend on
//! the runtime — configuration, root stores, URL handling, redirect policy, the ureq-proto
//! driving, error mapping, the blocking state-file core — is written once, in this crate's
//! `src/shared/`, against a small private `Runtime` trait (resolve, connect, TLS handshake,
//! read, write, timeout, blocking pool). Each crate implements that trait in its `src/rt.rs`
//! (~100 lines, like quinn's runtime files) and compiles `src/shared/` as its own modules;
//! `latchkey-smol` does so with `#[path]` attributes pointing here. The tests are shared the
//! same way (`tests/shared/`), so both runtimes pass the very same behaviour tests.
//!
//! Why not the alternatives: a module of this crate re-used by `latchkey-smol` would make smol
//! users compile tokio; writing the tokio side against futures-io through `tokio-util`'s
//! compat layer would add an adapter to every read and still leave the shared code needing a
//! home; a third crate would be a top-level folder the architecture does not have. The cost
//! of `#[path]`: `latchkey-smol` cannot be packaged for crates.io on its own as is (both are
//! `publish = false`), and a shared file may only use dependencies both crates declare.
//!
//! # Dependencies and why
//!
//! - `rustls` 0.23 with the `ring` provider, `std` and `tls12` only: no aws-lc-rs (no C/CMake
//!   build, no NASM), no logging. TLS 1.2 stays enabled because some cloud API gateways still
//!   end there. The provider is passed explicitly, never installed process-wide.
//! - `tokio-rustls` 0.26 (`ring`, `tls12`; default features off).
//! - `tokio` 1 with `net`, `time`, `io-util`, `rt` only.
//! - `ureq-proto` 0.7 (client only): sans-IO HTTP/1.1 — request serialization, response
//!   parsing via httparse, chunked and length-delimited bodies, redirect target resolution.
//!   It is what `ureq` 3 runs on, and sans-IO fits latchkey's layering. Its `http` 1.x types
//!   also parse URLs (IPv6 literals included), so no URL crate is added.
//! - `webpki-roots` 1: Mozilla's roots, compiled in, the default trust store.
//! - `rustls-native-certs` 0.8: the system store, on request.
//! - PEM is read with `rustls-pki-types`' own `PemObject` (re-exported by rustls), not the
//!   unmaintained `rustls-pemfile`.
//! - `latchkey-pki`: every certificate rule the renewer follows (schedule, validation, keys,
//!   CSRs); `rand_core` hands it the OS random source (`getrandom`) as an argument.
//! - `sha2` (the watched files' content hash), `zeroize` (key bytes wiped after use),
//!   `serde`/`serde_json` (the renewer's record file).
//! - `async-lock` 3 (smol-rs, `std` only): the renewer's one-install-at-a-time lock, held
//!   across the pair's save — an async mutex that works the same on any executor.
#![forbid(unsafe_code)]

#[path = "shared/http/mod.rs"]
pub mod http;
#[path = "shared/keeper.rs"]
pub mod keeper;
#[path = "shared/renewer/mod.rs"]
pub mod renewer;
mod rt;
#[path = "shared/runtime.rs"]
mod runtime;
#[path = "shared/serve/mod.rs"]
pub mod serve;
#[path = "shared/sip.rs"]
pub mod sip;
#[path = "shared/state.rs"]
pub mod state;
#[path = "shared/tls.rs"]
pub mod tls;
