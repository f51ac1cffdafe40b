//! Certificate hot swap over real TLS on loopback (server and client identities).
//!
//! Runs the shared cases in `latchkey-tokio`'s `tests/shared/tls_identity.rs` on tokio.

#[path = "shared/tls_identity.rs"]
mod cases;
mod rt;
