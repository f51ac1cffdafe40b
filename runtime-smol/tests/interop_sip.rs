//! The SIP user agent against Kamailio and SIPp (interop/kamailio.sh), on smol.
//!
//! Runs the shared cases in `latchkey-tokio`'s `tests/shared/interop_sip.rs`.

#[path = "../../runtime-tokio/tests/shared/interop_sip.rs"]
mod cases;
mod rt;
