//! URLs are checked before any I/O; plain http is refused unless allowed.
//!
//! Runs the shared cases in `tests/shared/http_urls.rs` on tokio.

#[path = "shared/http_urls.rs"]
mod cases;
mod rt;
#[path = "shared/support.rs"]
mod support;
