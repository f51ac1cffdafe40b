//! State files are atomic, 0600 in a 0700 directory, and never torn.
//!
//! Runs the shared cases in `latchkey-tokio`'s `tests/shared/state_files.rs` on the smol family.

#[path = "../../runtime-tokio/tests/shared/state_files.rs"]
mod cases;
mod rt;
#[path = "../../runtime-tokio/tests/shared/support.rs"]
mod support;
