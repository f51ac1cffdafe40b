//! The client trusts exactly the roots it was given.
//!
//! Runs the shared cases in `tests/shared/http_tls.rs` on tokio.

#[path = "shared/http_tls.rs"]
mod cases;
mod rt;
#[path = "shared/support.rs"]
mod support;
