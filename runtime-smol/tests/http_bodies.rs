//! Responses arrive whole however the body is framed, and requests go out as asked.
//!
//! Runs the shared cases in `latchkey-tokio`'s `tests/shared/http_bodies.rs` on the smol family.

#[path = "../../runtime-tokio/tests/shared/http_bodies.rs"]
mod cases;
mod rt;
#[path = "../../runtime-tokio/tests/shared/support.rs"]
mod support;
