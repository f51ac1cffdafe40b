//! State files are atomic, 0600 in a 0700 directory, and never torn.
//!
//! Runs the shared cases in `tests/shared/state_files.rs` on tokio.

#[path = "shared/state_files.rs"]
mod cases;
mod rt;
#[path = "shared/support.rs"]
mod support;
