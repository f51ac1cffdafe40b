//! Pure (sans-IO) local gateway application for latchkey: Calaos RemoteUI panels
//! (provisioning, HMAC-authenticated WebSocket sessions, IO states), an IO registry, the
//! door-station admin pages over HTTPS, U-tec local gateway compatibility, and Calaos
//! io.xml import/export.
//!
//! This crate never reads a clock, a random source, a file, an environment variable or a
//! socket, and knows nothing of HTTP framing: requests come in as [`Request`] values, answers
//! go out as [`Response`] values plus [`Effect`]s (persist state, swap a certificate, refresh
//! a token, set an IO, send on or close a WebSocket) that the driver performs.
//!
//! # Time
//!
//! Time comes in as [`Now`] (`latchkey_protocol::guard::Now`): a monotonic
//! [`latchkey_protocol::time::Instant`] for spans (rate limits, sessions, WebSocket pings)
//! and wall-clock Unix seconds (`u64`) for wall-time facts (HMAC timestamps, last-seen
//! times, token and certificate expiry), the conventions of `latchkey-protocol` and
//! `latchkey-oauth-core`. **Randomness** comes in as `&mut impl rand_core::CryptoRng`.
//!
//! # Routes
//!
//! | Route | Who | Module |
//! |---|---|---|
//! | `POST /api/v3/provision/request` | devices (rate-limited, blacklist) | [`App`], both request shapes |
//! | `GET /api/v3/remote_ui/ws` | devices (HMAC headers on the upgrade) | [`ws`] |
//! | `GET /api/v3/remote_ui/list`, `GET /api/v3/remote_ui/status/{id}` | admin | |
//! | `POST /api/v3/remote_ui`, `PUT /api/v3/remote_ui/{id}/config`, `POST /api/v3/remote_ui/{id}/reset`, `DELETE /api/v3/remote_ui/{id}` | admin | [`model`] limits |
//! | `GET /api/v3/io`, `PUT /api/v3/io/{id}`, `POST /api/v3/io/{id}/state`, `DELETE /api/v3/io/{id}` | admin | [`model::IoRegistry`] |
//! | `GET /api/v3/io.xml?layout=room\|design`, `POST /api/v3/io.xml` | admin | [`xml`] |
//! | `GET /health`, `GET /api/config` | anyone (secrets masked) | [`utec`] |
//! | `POST /api/config`, `POST /api/oauth/refresh` | admin | [`utec`] |
//! | `GET /api/session` | admin (hands out the CSRF token for API clients) | [`admin`] |
//! | `/setup`, `/login`, `/logout`, `/admin`, `/admin/password`, `/admin/certificate`, … | browser | [`admin`] |
//!
//! "admin" means a valid `__Host-lk_session` cookie, and for anything but GET/HEAD the
//! session's CSRF token (form field `csrf` or header `X-CSRF-Token`). The plain-HTTP port
//! answers everything with [`http::redirect_to_https`].
//!
//! # The driver loop
//!
//! ```no_run
//! use latchkey_gateway::{App, AppConfig, Effect, Now, Request, WsFrame};
//! use latchkey_protocol::time::Instant;
//! use rand_chacha::ChaCha20Rng;
//! use rand_core::SeedableRng;
//! # fn clocks() -> Now { Now::new(Instant::ORIGIN, 0) }
//! # fn read_file(_: &str) -> Option<Vec<u8>> { None }
//! # fn write_atomically(_: &str, _: &[u8]) {}
//! # fn next_request() -> (std::net::IpAddr, Request) { unimplemented!() }
//! # fn write_response(_: &latchkey_gateway::Response) {}
//! # fn send(_: latchkey_gateway::ConnId, _: &str) {}
//! let mut rng = ChaCha20Rng::from_seed([7; 32]); // a runtime passes its OS-seeded CSPRNG
//! let config = AppConfig::default();
//! let mut app = match read_file("gateway.json") {
//!     Some(state) => App::restore(config, clocks(), &mut rng, &state,
//!                                 read_file("guard.bin").as_deref())?,
//!     None => App::new(config, &mut rng)?,
//! };
//! if let Some(path) = app.setup_path() {
//!     eprintln!("set the admin password: https://127.0.0.1:8443{path}");
//! }
//! loop {
//!     let (peer, request) = next_request();
//!     let (response, effects) = app.handle_request(clocks(), peer, &request, &mut rng);
//!     for effect in effects {
//!         match effect {
//!             Effect::PersistState(bytes) => write_atomically("gateway.json", &bytes),
//!             Effect::PersistGuard(bytes) => write_atomically("guard.bin", &bytes),
//!             Effect::UpgradeWebSocket(mut session) => {
//!                 // hand `session` to the connection's task; on each text message:
//!                 let out = session.handle_message(clocks(), &mut app, "{\"msg\":\"remote_ui_get_config\"}");
//!                 for frame in out.frames { if let WsFrame::Text(t) = frame { send(session.conn(), &t) } }
//!                 // sleep until session.poll_timeout(), then session.handle_timeout(..)
//!             }
//!             Effect::SendWs { conn, text, .. } => send(conn, &text),
//!             _ => { /* swap certificate, refresh token, close connection, log … */ }
//!         }
//!     }
//!     write_response(&response);
//!     let _ = app.handle_timeout(clocks());
//! }
//! # Ok::<(), latchkey_gateway::RestoreError>(())
//! ```
//!
//! # Dependencies
//!
//! * `latchkey-protocol` (`guard`): HMAC device authentication with both signing variants,
//!   the nonce replay cache, rate limits, the provisioning blacklist, the login throttle,
//!   Argon2id/PBKDF2 passwords and sessions — nothing of that is re-implemented here.
//! * `latchkey-oauth-core`: the token keeper's `Status` for `/health` and the dashboard.
//! * `latchkey-pki`: certificate details and days left, and validation of uploads.
//! * `serde` / `serde_json`: JSON bodies, WebSocket messages and the persisted state.
//! * `quick-xml` (no features, ≥ 0.41 for RUSTSEC-2026-0194/0195): the io.xml reader;
//!   output is written with its escaping helper.
//! * RustCrypto `hmac` + `sha2` (CSRF tokens derived from the session), `subtle`
//!   (constant-time comparisons); `form_urlencoded` for forms and query strings.
//! * No template engine: HTML is built with `format!` and [`html::escape`].
#![forbid(unsafe_code)]

pub mod admin;
mod app;
pub mod html;
pub mod http;
pub mod http1;
pub mod model;
mod panels;
pub mod passwords;
pub mod utec;
pub mod ws;
pub mod xml;

pub use app::{App, AppConfig, ConnId, Effect, RestoreError, Undo};
pub use http::{Method, Request, Response, redirect_to_https};
pub use latchkey_protocol::guard::Now;
pub use ws::{WsFrame, WsOutput, WsSession};
