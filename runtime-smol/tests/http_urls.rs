//! URLs are checked before any I/O; plain http is refused unless allowed.
//!
//! Runs the shared cases in `latchkey-tokio`'s `tests/shared/http_urls.rs` on the smol family.

#[path = "../../runtime-tokio/tests/shared/http_urls.rs"]
mod cases;
mod rt;
#[path = "../../runtime-tokio/tests/shared/support.rs"]
mod support;
