//! Pure (sans-IO) certificates for latchkey: keys, CSRs, self-signed certificates,
//! inspection, bundle validation and renewal timing.
//!
//! This crate never reads a clock, a random source, a file, an environment variable or a
//! socket. **Time** is wall-clock Unix seconds (`u64`, the same representation as
//! `latchkey-oauth-core`): certificate validity is a wall-clock fact that must survive
//! restarts, so every `now` is passed in by the driver and every deadline comes back as
//! Unix seconds. **Randomness** comes in as `&mut impl rand_core::CryptoRng` (key
//! generation, serial numbers) or as a `u64` seed (renewal jitter). **Bytes** come in as
//! slices (PEM or DER) and go out as `Vec<u8>`/`String`; persisting and swapping are the
//! driver's job.
//!
//! * [`key`]: P-256 (default) and Ed25519 keys from injected randomness; PKCS#8, SEC1 and
//!   PKCS#1 in; PKCS#8 PEM/DER out; RSA keys read and matched, not generated.
//! * [`request`]: PKCS#10 CSRs (Legrand subject and SIP SAN URI helpers, base64-DER output)
//!   and self-signed certificates with explicit validity.
//! * [`inspect`]: subject, issuer, serial, SANs, validity, self-signed check, key
//!   algorithm, SHA-256 fingerprint, expiry at `now`; serde [`inspect::Report`] for JSON.
//! * [`validate`]: a cert/key/chain/root/host bundle checked at `now`, one error variant
//!   per failure; [`validate::validate_allowing`] with a [`validate::TimingTolerance`] for
//!   a fresh pair's notBefore up to the policy's clock skew ahead, or a pair handed in from
//!   outside checked at the nearest moment of its validity.
//! * [`schedule`]: [`schedule::RenewalSchedule`] — renewal point, jitter, capped wake-ups,
//!   backoff, emergency mode and clock sanity.
//! * [`pem`]: PEM and base64 helpers.
//!
//! # The driver loop
//!
//! A `CertRenewer` in a runtime crate runs the schedule, renews, validates, persists and
//! swaps. Every rule it needs is here:
//!
//! ```no_run
//! use latchkey_pki::inspect::CertInfo;
//! use latchkey_pki::schedule::{Action, RenewalHistory, RenewalPolicy, RenewalSchedule};
//! use latchkey_pki::schedule::seed_from_identity;
//! use latchkey_pki::validate::{validate, Bundle, Usage};
//!
//! # fn wall_clock() -> u64 { 0 }
//! # fn sleep_secs(_: u64) {}
//! # fn read_bundle() -> (Vec<u8>, Vec<u8>, RenewalHistory) { unimplemented!() }
//! # fn renew() -> Result<(Vec<u8>, Vec<u8>), String> { unimplemented!() }
//! # fn persist(_: &[u8], _: &[u8], _: &RenewalHistory) {}
//! # fn persist_history(_: &RenewalHistory) {}
//! # fn swap(_: &latchkey_pki::validate::ValidBundle) {}
//! # fn roots() -> Vec<u8> { Vec::new() }
//! let policy = RenewalPolicy::bticino(); // 30 days before notAfter, weekly checks
//! let seed = seed_from_identity(b"client-id-of-this-device");
//! let (mut cert_pem, mut key_pem, mut history) = read_bundle();
//! loop {
//!     let now = wall_clock();
//!     let leaf = &CertInfo::from_pem(&cert_pem)?[0];
//!     let decision = RenewalSchedule::new(leaf.validity(), policy, seed).decide(now, &history);
//!     match decision.action {
//!         Action::Renew | Action::Emergency => match renew() {
//!             // Validate before swapping: a bad or half-written pair never goes live.
//!             Ok((new_cert, new_key)) => {
//!                 let roots = roots();
//!                 let bundle = Bundle::new(&new_cert, &new_key)
//!                     .with_roots(&roots)
//!                     .with_usage(Usage::ClientAuth);
//!                 match validate(&bundle, wall_clock()) {
//!                     Ok(valid) => {
//!                         history.record_success(wall_clock());
//!                         persist(&new_cert, &new_key, &history); // atomically, key 0600
//!                         swap(&valid); // new connections use it; open ones keep theirs
//!                         (cert_pem, key_pem) = (new_cert, new_key);
//!                     }
//!                     Err(why) => {
//!                         history.record_failure(wall_clock(), &why.to_string());
//!                         persist_history(&history);
//!                     }
//!                 }
//!             }
//!             Err(why) => {
//!                 history.record_failure(wall_clock(), &why);
//!                 persist_history(&history);
//!             }
//!         },
//!         // Wait, Backoff, ClockUnreliable: sleep; `wake_in` never exceeds the cap.
//!         _ => sleep_secs(decision.wake_in),
//!     }
//! #   let _ = &key_pem;
//! }
//! # #[allow(unreachable_code)]
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Dependencies, and why
//!
//! * **x509-cert** (RustCrypto) builds *and* parses certificates and CSRs, so there is one
//!   ASN.1 stack (`der`, `spki`, `const-oid`), shared with `p256`. It was chosen over
//!   x509-parser, which would add `nom`, `asn1-rs`, `der-parser`, `oid-registry` and
//!   more, and over rcgen for building: rcgen's `DistinguishedName` is a
//!   `std::collections::HashMap`, whose `RandomState` reads the OS random source (a
//!   purity breach), it holds one value per attribute type, and it would add `yasna` and
//!   `time`. Signatures are checked over the exact signed bytes, never a re-encoding.
//! * **p256** (RustCrypto) for P-256 keys and ECDSA: signing is RFC 6979 deterministic
//!   (*ring*'s ECDSA signer draws from the OS random source). Keys are made from injected
//!   bytes, never through `SecretKey::random`.
//! * ***ring*** (already the workspace's TLS backend) for Ed25519 keys from a seed
//!   (deterministic signatures), RSA private-key checks (2048–4096 bits) and, through
//!   **rustls-webpki**'s algorithm tables, signature verification (ECDSA P-256/P-384,
//!   Ed25519, RSA PKCS#1/PSS). rustls-webpki also verifies chains at a given time and
//!   matches host names (RFC 6125 wildcards, IP SANs) — the same code rustls runs.
//! * **rustls-pki-types** reads PEM (`PemObject`; rustls-pemfile is unmaintained,
//!   RUSTSEC-2025-0134) and carries DER types the TLS drivers take as they are.
//! * **sha2** for fingerprints, key identifiers and seeds; **base64** for PEM output and
//!   the Legrand API's base64 DER; **zeroize** wipes private-key copies; **serde** for
//!   reports, policies and the persisted history.
//! * No RSA generation or signing: the RustCrypto `rsa` crate has RUSTSEC-2023-0071 (Marvin
//!   timing attack, no fixed release) and *ring* signs RSA only with an OS random source.
//!
//! Known advisories were checked for every dependency; the workspace pins minimum
//! versions past them (rustls-webpki ≥ 0.103.13, *ring* ≥ 0.17.12).
#![forbid(unsafe_code)]

mod asn1;
pub mod inspect;
pub mod key;
pub mod pem;
pub mod request;
pub mod schedule;
pub mod validate;

use core::fmt;

/// Any error of this crate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// PEM or base64 input.
    Pem(pem::PemError),
    /// A private key.
    Key(key::KeyError),
    /// Building a CSR or certificate.
    Request(request::RequestError),
    /// Reading a certificate.
    Inspect(inspect::InspectError),
    /// Validating a bundle.
    Validation(validate::ValidationError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Pem(e) => e.fmt(f),
            Error::Key(e) => e.fmt(f),
            Error::Request(e) => e.fmt(f),
            Error::Inspect(e) => e.fmt(f),
            Error::Validation(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Pem(e) => Some(e),
            Error::Key(e) => Some(e),
            Error::Request(e) => Some(e),
            Error::Inspect(e) => Some(e),
            Error::Validation(e) => Some(e),
        }
    }
}

impl From<pem::PemError> for Error {
    fn from(e: pem::PemError) -> Self {
        Error::Pem(e)
    }
}

impl From<key::KeyError> for Error {
    fn from(e: key::KeyError) -> Self {
        Error::Key(e)
    }
}

impl From<request::RequestError> for Error {
    fn from(e: request::RequestError) -> Self {
        Error::Request(e)
    }
}

impl From<inspect::InspectError> for Error {
    fn from(e: inspect::InspectError) -> Self {
        Error::Inspect(e)
    }
}

impl From<validate::ValidationError> for Error {
    fn from(e: validate::ValidationError) -> Self {
        Error::Validation(e)
    }
}
