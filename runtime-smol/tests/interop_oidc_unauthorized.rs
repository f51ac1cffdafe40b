//! Interop with a real oidc-provider 9 on loopback, on the smol family: the keeper's retry-once
//! on a 401 from oidc-provider's userinfo endpoint. Ignored in a plain `cargo test`;
//! `interop/oidc.sh` starts the provider and runs these with `--include-ignored` (see
//! interop/README.md).
//!
//! Runs the shared cases in `latchkey-tokio`'s `tests/shared/interop_oidc_unauthorized.rs` with
//! the harness in `tests/shared/oidc/`.

#[path = "../../runtime-tokio/tests/shared/interop_oidc_unauthorized.rs"]
mod cases;
#[path = "../../runtime-tokio/tests/shared/oidc/mod.rs"]
mod oidc;
mod rt;
