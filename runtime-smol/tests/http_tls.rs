//! The client trusts exactly the roots it was given.
//!
//! Runs the shared cases in `latchkey-tokio`'s `tests/shared/http_tls.rs` on the smol family.

#[path = "../../runtime-tokio/tests/shared/http_tls.rs"]
mod cases;
mod rt;
#[path = "../../runtime-tokio/tests/shared/support.rs"]
mod support;
