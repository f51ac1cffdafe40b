//! Pure (sans-IO) OAuth 2.0 token lifecycle for latchkey.
#![forbid(unsafe_code)]

pub mod authorize;
pub mod form;
pub mod http;
pub mod pkce;
pub mod profile;
pub mod request;
pub mod response;
pub mod secret;
pub mod session;
