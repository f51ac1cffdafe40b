//! Interop with a real oidc-provider 9 on loopback, on tokio: kill -9 of a keeper process
//! during a refresh, then a restart. Ignored in a plain `cargo test`; `interop/oidc.sh` starts
//! the provider and runs these with `--include-ignored` (see interop/README.md).
//!
//! Runs the shared cases in `tests/shared/interop_oidc_crash.rs` with the harness in
//! `tests/shared/oidc/`.

#[path = "shared/interop_oidc_crash.rs"]
mod cases;
#[path = "shared/oidc/mod.rs"]
mod oidc;
mod rt;
