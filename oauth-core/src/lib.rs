//! Pure (sans-IO) OAuth 2.0 token lifecycle for latchkey.
#![forbid(unsafe_code)]

pub mod http;
