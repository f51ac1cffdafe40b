//! Certificate renewal driven end to end: due renewals hot-swapped under a running TLS
//! server, bad pairs refused with backoff, history across restarts, watched files, the cloud
//! (Legrand) source through the token keeper, clock jumps.
//!
//! Runs the shared cases in `latchkey-tokio`'s `tests/shared/cert_renewer.rs` on smol.

#[path = "../../runtime-tokio/tests/shared/cert_renewer.rs"]
mod cases;
mod rt;
#[path = "../../runtime-tokio/tests/shared/support.rs"]
mod support;
