//! Pure (sans-IO) OAuth 2.0 token lifecycle for latchkey: log in once, keep the session
//! for good.
//!
//! This crate never reads a clock, a random source, a file or a socket. Time comes in as
//! wall-clock Unix seconds (`u64` — token expiries are wall-clock facts that must survive
//! restarts), randomness as `&mut impl rand_core::CryptoRng` or a seed, responses as
//! [`http::HttpResponse`] values. Out come [`http::HttpRequest`] values to send, snapshots
//! to persist, deadlines and events. The drivers in `latchkey-tokio` and `latchkey-smol` do
//! the I/O.
//!
//! * [`pkce`], [`authorize`]: the login URL and the redirect that answers it (pasted or
//!   captured on loopback).
//! * [`request`], [`response`]: token endpoint requests and responses, with failures
//!   classified as terminal or transient.
//! * [`session::TokenSession`]: refresh timing, single flight, crash-safe rotation,
//!   401 handling, backoff, reauth — the heart of the crate.
//! * [`device::DeviceFlow`]: RFC 8628 for devices without a browser.
//! * [`profile::Profile`]: provider facts as TOML (`watts`, `bticino-diy`, `bticino-c100x`,
//!   `utec`, `generic`); [`discovery`] fills in a generic provider's endpoints.
//!
//! # The driver loop
//!
//! ```no_run
//! use latchkey_oauth_core::http::{HttpRequest, HttpResponse, TransportError};
//! use latchkey_oauth_core::profile::Profile;
//! use latchkey_oauth_core::session::{Event, SessionConfig, Snapshot, TokenSession};
//!
//! # fn wall_clock() -> u64 { 0 }
//! # fn os_random_u64() -> u64 { 0 }
//! # fn send_https(_: &HttpRequest) -> Result<HttpResponse, TransportError> { unimplemented!() }
//! # fn read_state() -> Option<Snapshot> { None }
//! # enum Write { Done, Conflict(Option<Snapshot>), Failed(String) }
//! # fn write_state_if_revision(_: &Snapshot, _: Option<u64>) -> Write { Write::Done }
//! # fn sleep_until(_: Option<u64>) {}
//! let profile = Profile::builtin("watts")?;
//! let config = SessionConfig::from_profile(&profile);
//! let snapshot = read_state().expect("run `latchkey login` first");
//! let mut session =
//!     TokenSession::restore(profile, config, os_random_u64(), snapshot, wall_clock())?;
//! loop {
//!     while let Some(event) = session.poll_event() {
//!         let now = wall_clock();
//!         match event {
//!             // Atomic write (temp file, fsync, rename, mode 0600) under a lock, only if the
//!             // file still holds `expected_revision`.
//!             Event::Persist { id, expected_revision, snapshot } => {
//!                 match write_state_if_revision(&snapshot, expected_revision) {
//!                     Write::Done => session.handle_persisted(now, id),
//!                     Write::Conflict(on_disk) => session.handle_persist_conflict(now, id, on_disk),
//!                     Write::Failed(why) => session.handle_persist_failed(now, id, &why),
//!                 }
//!             }
//!             Event::SendRequest { id, request } => {
//!                 let result = send_https(&request);
//!                 session.handle_response(wall_clock(), id, result);
//!             }
//!             Event::ReloadSnapshot => session.handle_reloaded(now, read_state()),
//!             Event::ReauthRequired { reason } => eprintln!("log in again: {reason}"),
//!             _ => {}
//!         }
//!     }
//!     sleep_until(session.poll_timeout());
//!     session.handle_timeout(wall_clock());
//! }
//! # #[allow(unreachable_code)]
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Callers get tokens with [`session::TokenSession::access_token`]; on
//! [`session::TokenAnswer::Wait`] they wait for the next `TokenRefreshed` (or failure) event
//! and ask again. A 401 from the resource API goes to
//! [`session::TokenSession::handle_unauthorized`], which says whether to retry once.
//!
//! # Dependencies
//!
//! RustCrypto `sha2` (PKCE S256, fingerprints) and `subtle` (constant-time comparison of
//! state values and secrets); `base64`; servo's `form_urlencoded` for form bodies and query
//! strings; `serde_json` for token responses; `toml` for profiles. No HTTP library: the
//! core only describes requests.
#![forbid(unsafe_code)]

pub mod authorize;
pub mod b2c;
pub mod cloud;
pub mod device;
pub mod discovery;
pub mod form;
pub mod http;
pub mod import;
pub mod pkce;
pub mod profile;
pub mod request;
pub mod response;
pub mod secret;
pub mod session;
