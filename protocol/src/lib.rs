//! # latchkey-protocol
//!
//! The pure (sans-IO) protocol layer of latchkey: the SIP wire layer used for door entry
//! (BTicino/Legrand style SIP over TLS) — a zero-copy message parser with typed header views
//! and a strict RFC 3261 check, an incremental stream framer (RFC 5626 keep-alives), a
//! builder that writes into caller-owned buffers, and HTTP digest authentication
//! (RFC 7616 / RFC 8760, client and server side) — and [`guard`], device authentication and
//! abuse control for local servers (RemoteUI HMAC request authentication with a replay cache,
//! GCRA rate limits per address, provisioning abuse, login throttling, PHC passwords and
//! sessions).
//!
//! Nothing here reads a clock, a random source, a file, the environment or a socket: bytes,
//! [`time::Instant`]s and randomness (`&mut impl rand_core::CryptoRng`) come in as arguments;
//! bytes to send, events and deadlines come out. The crate is `no_std` + `alloc` with the
//! default `std` feature off, so ESP32 door stations and wall panels can use it.
//!
//! ## Reading a stream
//!
//! A driver owns the socket and loops: feed what arrived, drain the frames.
//!
//! ```no_run
//! use latchkey_protocol::sip::framing::{Decoder, Frame};
//! use latchkey_protocol::sip::Message;
//!
//! # fn read_socket(_: &mut [u8]) -> usize { 0 }
//! # fn send(_: &[u8]) {}
//! let mut decoder = Decoder::new(Default::default());
//! let mut buf = [0u8; 4096];
//! loop {
//!     let n = read_socket(&mut buf);
//!     decoder.feed(&buf[..n]);
//!     while let Some(frame) = decoder.next_frame() {
//!         match frame {
//!             Ok(Frame::Message(bytes)) => match Message::parse(&bytes) {
//!                 Ok(msg) => { /* hand to the user agent */ let _ = msg.call_id(); }
//!                 Err(e) => { /* answer 400 with e's reason, or drop */ let _ = e; }
//!             },
//!             Ok(Frame::Ping) => send(b"\r\n"), // RFC 5626 §4.4.1: answer CRLFCRLF with CRLF
//!             Ok(Frame::Pong) => { /* feed the keep-alive watchdog */ }
//!             Ok(_) => {} // `Frame` is non-exhaustive
//!             Err(e) => { /* framing lost: close the connection */ let _ = e; return; }
//!         }
//!     }
//! }
//! ```
//!
//! ## Dependencies
//!
//! `memchr` (SIMD byte search, no_std), `smallvec` (inline header index so typical messages
//! parse without allocating), `bytes` (zero-copy frames), RustCrypto `md-5` / `sha2` / `subtle`
//! for digest, and `rand_core` for the randomness trait; `hmac` and RustCrypto `argon2` /
//! `pbkdf2` / `password-hash` for the guard. All with default features off.

#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod guard;
pub mod sip;
pub mod time;

/// The README's Rust examples run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
