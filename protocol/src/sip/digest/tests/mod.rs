//! Digest tests: RFC vectors, parsing, client behaviour, server behaviour, and properties
//! (client ↔ server agreement, parser robustness).

mod client;
mod parse;
mod props;
mod server;
mod vectors;

use super::{Credentials, DigestClient, DigestRequest};
use alloc::string::String;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub(super) fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

/// The value of parameter `name` in a rendered header (quotes removed).
pub(super) fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    Credentials::parse(value)
        .ok()?
        .params()
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .map(|p| p.value.as_raw())
}

/// Answer the client's only session with a fixed cnonce (the RFC examples fix it).
pub(super) fn answer_with_cnonce(
    client: &mut DigestClient,
    request: &DigestRequest<'_>,
    cnonce: &str,
) -> String {
    let mut out = String::new();
    client.write_session(0, request, cnonce, &mut out).unwrap();
    out
}

pub(super) fn register() -> DigestRequest<'static> {
    DigestRequest::new("REGISTER", "sip:bt.example", b"")
}
