//! The SIP user agent driver over real mutual TLS on loopback.
//!
//! Runs the shared cases in `latchkey-tokio`'s `tests/shared/sip_client.rs` on smol.

#[path = "../../runtime-tokio/tests/shared/sip_client.rs"]
mod cases;
#[path = "../../runtime-tokio/tests/shared/sip_peer.rs"]
mod peer;
mod rt;
