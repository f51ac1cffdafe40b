//! Thin smol-family drivers for latchkey's sans-IO cores: an HTTPS client and atomic state
//! files. The same API as `latchkey-tokio`, on async-net, async-io and futures-rustls.
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
//!   over HTTPS, connection tasks spawned on an `async-executor` the caller runs —
//!   `latchkey serve --runtime smol`.
//! - [`renewer`]: [`CertRenewer`](renewer::CertRenewer) keeps such an identity renewed —
//!   from a cloud CA through the token keeper, by self-signed regeneration, or from files an
//!   outside tool replaces — running `latchkey-pki`'s schedule and validating every pair
//!   before it is persisted and swapped in.
//!
//! ```no_run
//! use latchkey_smol::http::{HttpClient, HttpConfig, HttpRequest, Method};
//! use latchkey_smol::state::StateDir;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # async_io::block_on(async {
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
//! # })
//! # }
//! ```
//!//!
//! # Certificate renewal
//!
//! ```no_run
//! use latchkey_pki::request::{DistinguishedName, RequestParams, SubjectAltName};
//! use latchkey_smol::renewer::{CertRenewer, RenewalEvent, SelfSignedSource};
//! use latchkey_smol::state::StateDir;
//! use latchkey_smol::tls::{ClientAuth, server_config};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # async_io::block_on(async {
//! let request = RequestParams::new(DistinguishedName::common_name("doorstation.local"))
//!     .with_san(SubjectAltName::Dns("doorstation.local".into()));
//! let ten_years = std::time::Duration::from_secs(3650 * 86_400);
//! let renewer = CertRenewer::builder(SelfSignedSource::new(request, ten_years))
//!     .persist(StateDir::open("./latchkey-data").await?, "https")
//!     .observer(Box::new(|event: &RenewalEvent| eprintln!("{event}")))
//!     .start()
//!     .await?; // the stored pair, or a first one from the source
//! let tls = server_config(renewer.identity(), &ClientAuth::None, &[b"http/1.1"])?;
//! std::thread::spawn({
//!     let renewer = renewer.clone();
//!     move || async_io::block_on(renewer.run())
//! });
//! // Accept connections with `tls`: a renewed certificate reaches every later handshake,
//! // connections already open keep theirs.
//! # let _ = tls;
//! # Ok(())
//! # })
//! # }
//! ```

//! # Runtimes
//!
//! The crate depends on the pieces smol is made of — `async-net` (sockets, resolver),
//! `async-io` (timers, reactor), `blocking` (thread pool for file system calls),
//! `futures-lite` — rather than on `smol` itself, so it pulls no executor and no process or
//! file-system wrappers. All I/O goes through the `futures-io` traits: it runs under
//! `smol::block_on`, any `async-executor`, async-std, or a plain `futures_lite::future::block_on`
//! (async-io then drives its reactor on its own thread).
//!
//! # Time
//!
//! Limits and sleeps are [`std::time::Duration`]s measured with async-io's monotonic timers.
//! The token keeper and the certificate renewer also read the wall clock (Unix seconds),
//! because token expiry and certificate validity are wall-clock facts; they decide again
//! after every wake, so a clock step is noticed at the next one (the keeper wakes at least every
//! [`keeper::WAKE_CAP`]; [`keeper::TokenKeeper::with_clock`] replaces its clock).
//!
//! # One source, two runtimes
//!
//! Everything that does not depend on the runtime — configuration, root stores, URL
//! handling, redirect policy, the ureq-proto driving, error mapping, the blocking state-file
//! core — is written once, in `latchkey-tokio`'s `src/shared/`, against a small private
//! `Runtime` trait (resolve, connect, TLS handshake, read, write, timeout, blocking pool).
//! This crate implements the trait in its `src/rt.rs` and compiles the shared files as its
//! own modules through `#[path]` attributes, so it does not depend on `latchkey-tokio` and
//! never compiles tokio. The tests are shared the same way. `latchkey-tokio`'s crate docs
//! give the reasons for this choice over the alternatives.
//!
//! # Dependencies and why
//!
//! - `rustls` 0.23 with the `ring` provider, `std` and `tls12` only (no aws-lc-rs, no C
//!   build); `futures-rustls` 0.26 with the same features.
//! - `ureq-proto` 0.7 (client only): sans-IO HTTP/1.1 framing; its `http` 1.x types parse URLs.
//! - `webpki-roots` 1 (default roots, compiled in) and `rustls-native-certs` 0.8 (system
//!   store, on request). PEM is read with `rustls-pki-types`' `PemObject`, not the
//!   unmaintained `rustls-pemfile`.
//! - `async-net` 2, `async-io` 2, `blocking` 1, `futures-lite` 2 (see Runtimes above).
//! - `latchkey-pki`: every certificate rule the renewer follows (schedule, validation, keys,
//!   CSRs); `rand_core` hands it the OS random source (`getrandom`) as an argument.
//! - `sha2` (the watched files' content hash), `zeroize` (key bytes wiped after use),
//!   `serde`/`serde_json` (the renewer's record file).
#![forbid(unsafe_code)]

#[path = "../../runtime-tokio/src/shared/http/mod.rs"]
pub mod http;
#[path = "../../runtime-tokio/src/shared/keeper.rs"]
pub mod keeper;
#[path = "../../runtime-tokio/src/shared/renewer/mod.rs"]
pub mod renewer;
mod rt;
#[path = "../../runtime-tokio/src/shared/runtime.rs"]
mod runtime;
#[path = "../../runtime-tokio/src/shared/serve/mod.rs"]
pub mod serve;
#[path = "../../runtime-tokio/src/shared/sip.rs"]
pub mod sip;
#[path = "../../runtime-tokio/src/shared/state.rs"]
pub mod state;
#[path = "../../runtime-tokio/src/shared/tls.rs"]
pub mod tls;
