//! Tests of the user agent: behaviour groups against the two-party harness, and property
//! tests of every timing rule and invariant.

mod calls;
mod config;
mod harness;
mod lifecycle;
mod messages;
mod props;
mod registration;
