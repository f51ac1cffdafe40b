//! Responses arrive whole however the body is framed, and requests go out as asked.
//!
//! Runs the shared cases in `tests/shared/http_bodies.rs` on tokio.

#[path = "shared/http_bodies.rs"]
mod cases;
mod rt;
#[path = "shared/support.rs"]
mod support;
