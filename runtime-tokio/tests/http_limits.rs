//! Slow, oversized, broken or malformed responses end in the right transport error.
//!
//! Runs the shared cases in `tests/shared/http_limits.rs` on tokio.

#[path = "shared/http_limits.rs"]
mod cases;
mod rt;
#[path = "shared/support.rs"]
mod support;
