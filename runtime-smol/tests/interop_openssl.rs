//! Mutual TLS against a real `openssl s_server -Verify` on loopback, on smol. Ignored in a
//! plain `cargo test`; `interop/openssl.sh` starts the server and runs these with
//! `--include-ignored` (see interop/README.md).
//!
//! Runs the shared cases in `latchkey-tokio`'s `tests/shared/interop_openssl.rs`.

#[path = "../../runtime-tokio/tests/shared/interop_openssl.rs"]
mod cases;
mod rt;
