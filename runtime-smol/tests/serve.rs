//! The gateway (`serve`) over real TLS and WebSockets on loopback.
//!
//! Runs the shared cases in `latchkey-tokio`'s `tests/shared/serve.rs` on smol.

#[path = "../../runtime-tokio/tests/shared/serve.rs"]
mod cases;
mod rt;
