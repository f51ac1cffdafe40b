//! The SIP user agent against Kamailio and SIPp (interop/kamailio.sh), on tokio.
//!
//! Runs the shared cases in `tests/shared/interop_sip.rs`.

#[path = "shared/interop_sip.rs"]
mod cases;
mod rt;
