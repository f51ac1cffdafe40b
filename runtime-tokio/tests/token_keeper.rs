//! The token keeper: single flight across threads, restart from the state file, retry-once
//! on 401, two processes on one state file.
//!
//! Runs the shared cases in `latchkey-tokio`'s `tests/shared/token_keeper.rs` on tokio.

#[path = "shared/token_keeper.rs"]
mod cases;
mod rt;
#[path = "shared/support.rs"]
mod support;
