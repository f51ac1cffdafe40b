//! The SIP wire layer (RFC 3261): parse, frame, build and authenticate SIP messages.
//!
//! * [`Message::parse`] — zero-copy parse into a borrowed view: start line, an index of
//!   header (name, value) slices in arrival order, body slice. Typed header views
//!   ([`headers`]) are computed on demand.
//! * [`Message::validate`] — the strict check: every fault for which RFC 3261 has a user agent
//!   answer 400 (Bad Request), each naming the header and byte offset.
//! * [`framing::Decoder`] — incremental stream framing with RFC 5626 keep-alives.
//! * [`builder`] — requests and responses written into a caller-owned buffer.
//! * [`digest`] — HTTP digest authentication (RFC 7616 / RFC 8760), client and server side.
//! * [`uri`] — SIP, SIPS and tel URIs.
//! * [`agent`] — a sans-IO user agent: registration, keep-alive, doorbell, gate commands.

pub mod agent;
pub mod builder;
pub mod digest;
pub mod framing;
pub mod header;
pub mod headers;
mod lex;
pub mod message;
pub mod uri;
pub mod validate;

pub use header::{Header, HeaderName};
pub use lex::{Param, ParamIter, Params};
pub use message::{Message, Method, ParseError, RequestLine, StartLine, StatusLine};
pub use uri::{Host, Uri};
pub use validate::Violation;
