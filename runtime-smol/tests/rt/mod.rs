//! The runtime under test: the smol family (async-net, async-io, blocking). The shared
//! cases in `latchkey-tokio`'s `tests/shared/` use only this module's names.
#![allow(dead_code)]

use std::future::Future;

#[allow(unused_imports)] // each test file uses its own subset
pub(crate) use latchkey_smol::{http, keeper, state};

/// Runs `fut` to completion with async-io's `block_on` (no executor needed).
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    async_io::block_on(fut)
}

/// Sleeps for `duration` on async-io's timer.
pub(crate) async fn sleep(duration: std::time::Duration) {
    async_io::Timer::after(duration).await;
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
