//! Redirects: returned as-is by default; followed only to https, never leaking credentials.
//!
//! Runs the shared cases in `tests/shared/http_redirects.rs` on tokio.

#[path = "shared/http_redirects.rs"]
mod cases;
mod rt;
#[path = "shared/support.rs"]
mod support;
