//! The runtime under test: tokio. The shared cases in `tests/shared/` use only this module's
//! names, so the same cases run against `latchkey-smol` with its own `rt` module.
#![allow(dead_code)]

use std::future::Future;

#[allow(unused_imports)] // each test file uses its own subset
pub(crate) use latchkey_tokio::{http, keeper, state};

/// Runs `fut` to completion on a fresh current-thread tokio runtime.
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(fut)
}

/// Sleeps for `duration` on tokio's timer.
pub(crate) async fn sleep(duration: std::time::Duration) {
    tokio::time::sleep(duration).await;
}

/// Asserts at compile time that `send` and the state-file futures can be spawned on a
/// multi-threaded executor.
fn _futures_are_send(
    client: &http::HttpClient,
    request: &http::HttpRequest,
    dir: &state::StateDir,
) {
    fn is_send<T: Send>(_: &T) {}
    is_send(&client.send(request));
    is_send(&dir.write("x", Vec::new()));
    is_send(&dir.read("x"));
    is_send(&state::StateDir::open("x"));
}
