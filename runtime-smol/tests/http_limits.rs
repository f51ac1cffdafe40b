//! Slow, oversized, broken or malformed responses end in the right transport error.
//!
//! Runs the shared cases in `latchkey-tokio`'s `tests/shared/http_limits.rs` on the smol family.

#[path = "../../runtime-tokio/tests/shared/http_limits.rs"]
mod cases;
mod rt;
#[path = "../../runtime-tokio/tests/shared/support.rs"]
mod support;
