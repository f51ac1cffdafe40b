//! The SIP user agent driver over real mutual TLS on loopback.
//!
//! Runs the shared cases in `tests/shared/sip_client.rs` on tokio.

#[path = "shared/sip_client.rs"]
mod cases;
#[path = "shared/sip_peer.rs"]
mod peer;
mod rt;
