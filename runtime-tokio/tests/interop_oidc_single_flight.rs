//! Interop with a real oidc-provider 9 on loopback, on tokio: ten concurrent callers at expiry
//! and one refresh request. Ignored in a plain `cargo test`; `interop/oidc.sh` starts the
//! provider and runs these with `--include-ignored` (see interop/README.md).
//!
//! Runs the shared cases in `tests/shared/interop_oidc_single_flight.rs` with the harness in
//! `tests/shared/oidc/`.

#[path = "shared/interop_oidc_single_flight.rs"]
mod cases;
#[path = "shared/oidc/mod.rs"]
mod oidc;
mod rt;
