//! Redirects: returned as-is by default; followed only to https, never leaking credentials.
//!
//! Runs the shared cases in `latchkey-tokio`'s `tests/shared/http_redirects.rs` on the smol family.

#[path = "../../runtime-tokio/tests/shared/http_redirects.rs"]
mod cases;
mod rt;
#[path = "../../runtime-tokio/tests/shared/support.rs"]
mod support;
