//! Validating a certificate bundle before it is used or swapped in.
//!
//! [`validate`] checks, in this order, and stops at the first failure — each with its own
//! [`ValidationError`] variant (the ESP32 door station's list and a few more):
//!
//! 1. the certificate PEM parses (the first `CERTIFICATE` block is the leaf; further blocks
//!    in the same input, as in a `fullchain.pem`, join the chain) → [`ValidationError::InvalidCertificate`];
//! 2. the key PEM parses → [`ValidationError::InvalidKey`], [`ValidationError::UnsupportedKey`];
//! 3. the key belongs to the certificate, by public-key comparison; an undecidable answer is
//!    a failure → [`ValidationError::KeyMismatch`], [`ValidationError::KeyCheckUnsupported`];
//! 4. `now` lies within the leaf's validity → [`ValidationError::NotYetValid`],
//!    [`ValidationError::Expired`];
//! 5. trust: with roots, rustls-webpki builds a path from the leaf through the chain to one
//!    of them at `now` (signatures, validity of every certificate, CA constraints, the
//!    requested [`Usage`]); a leaf identical to a root is trusted as pinned. Without roots
//!    the leaf must be self-signed (its signature verifies with its own key) →
//!    [`ValidationError::UntrustedChain`], [`ValidationError::NotSelfSigned`],
//!    [`ValidationError::UsageNotAllowed`];
//! 6. the expected host, if any, matches a DNS or IP subject alternative name with
//!    rustls-webpki's RFC 6125 rules (a `*` only as the whole left-most label, matching one
//!    label) → [`ValidationError::NameMismatch`], [`ValidationError::InvalidHost`]. The
//!    common name is consulted only when [`Bundle::allow_cn_fallback`] is set **and** the
//!    certificate has no subject alternative names at all; it must then equal the host
//!    (ASCII case-insensitive, no wildcards).
//!
//! On success the [`ValidBundle`] carries everything a TLS configuration needs.
//!
//! # Timing tolerance
//!
//! [`validate_allowing`] is [`validate`] with a [`TimingTolerance`]: a bundle refused at
//! `now` *only* for when it is valid ([`ValidationError::NotYetValid`] or
//! [`ValidationError::Expired`], so its certificates and key are readable and belong
//! together) is accepted if it passes every check at the one moment the tolerance picks from
//! its leaf's notBefore and notAfter — the chain and the host included, checked there as
//! they would be at `now`. A bundle that fails at that moment too is refused with the error
//! it got at `now`. Besides [`TimingTolerance::Exact`] (no other moment) there are two:
//!
//! * [`TimingTolerance::NotBeforeAhead`], for a pair just issued or uploaded: a notBefore at
//!   most `skew` seconds after `now` (a CA that does not backdate, a device clock some
//!   seconds behind the CA's) is accepted, checked at notBefore. [`TimingTolerance::fresh`]
//!   takes the skew from [`RenewalPolicy::clock_skew`], the bound the schedule itself
//!   tolerates before it calls the clock unreliable. An expired pair is never accepted so.
//! * [`TimingTolerance::NearestValidMoment`], for a pair already in use and handed in from
//!   outside (a registration's certificate): checked at the moment of its validity nearest
//!   to `now` — notBefore when `now` is before it, notAfter when after — so a driver can
//!   keep it and renew it at once rather than refuse it and be left without one.

use core::fmt;
use core::time::Duration;

use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use webpki::{EndEntityCert, KeyUsage};

use crate::inspect::{CertInfo, San};
use crate::key::{KeyError, KeyMatch, PrivateKey};
use crate::pem;
use crate::schedule::{RenewalPolicy, Validity};

/// Most intermediates accepted in one bundle.
pub const MAX_CHAIN_LEN: usize = 16;

/// What the certificate will be used for (checked against extendedKeyUsage when the chain is
/// verified; a certificate without that extension allows any use).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Usage {
    /// A TLS server (the door station's HTTPS).
    #[default]
    ServerAuth,
    /// A TLS client (the SIP client certificate).
    ClientAuth,
}

/// The inputs of [`validate`]. Borrowed; build with [`Bundle::new`] and the `with_*` methods.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Bundle<'a> {
    /// The certificate PEM; the first certificate is the leaf, any others are chain.
    pub cert_pem: &'a [u8],
    /// The private key PEM.
    pub key_pem: &'a [u8],
    /// Optional intermediates (PEM).
    pub chain_pem: Option<&'a [u8]>,
    /// Optional trust anchors (PEM, one or more). Without them the leaf must be self-signed.
    pub roots_pem: Option<&'a [u8]>,
    /// Optional host name or IP address the certificate must be valid for.
    pub expected_host: Option<&'a str>,
    /// The intended use.
    pub usage: Usage,
    /// Whether to fall back to the subject CN when there are no SANs (see module docs).
    pub allow_cn_fallback: bool,
}

impl<'a> Bundle<'a> {
    /// A bundle of a certificate and its key.
    #[must_use]
    pub fn new(cert_pem: &'a [u8], key_pem: &'a [u8]) -> Self {
        Bundle {
            cert_pem,
            key_pem,
            chain_pem: None,
            roots_pem: None,
            expected_host: None,
            usage: Usage::ServerAuth,
            allow_cn_fallback: false,
        }
    }

    /// Adds intermediates.
    #[must_use]
    pub fn with_chain(mut self, chain_pem: &'a [u8]) -> Self {
        self.chain_pem = Some(chain_pem);
        self
    }

    /// Adds trust anchors.
    #[must_use]
    pub fn with_roots(mut self, roots_pem: &'a [u8]) -> Self {
        self.roots_pem = Some(roots_pem);
        self
    }

    /// Requires the certificate to be valid for `host` (DNS name or IP address).
    #[must_use]
    pub fn with_host(mut self, host: &'a str) -> Self {
        self.expected_host = Some(host);
        self
    }

    /// Sets the intended use.
    #[must_use]
    pub fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = usage;
        self
    }

    /// Allows the CN fallback for certificates without SANs (see module docs).
    #[must_use]
    pub fn allow_cn_fallback(mut self) -> Self {
        self.allow_cn_fallback = true;
        self
    }
}

/// Which moment other than `now` [`validate_allowing`] may check a bundle at, when the only
/// fault found at `now` is when the bundle is valid (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimingTolerance {
    /// No other moment: [`validate_allowing`] is [`validate`].
    #[default]
    Exact,
    /// A pair just issued or uploaded: a notBefore after `now` by at most `skew` seconds is
    /// accepted, the bundle being checked at notBefore. Never accepts an expired pair.
    NotBeforeAhead {
        /// Seconds notBefore may lie after `now` (inclusive).
        skew: u64,
    },
    /// A pair already in use, handed in from outside: checked at the moment of its validity
    /// nearest to `now` (notBefore before it, notAfter after it), so a pair not yet valid or
    /// expired is accepted when everything else about it holds. A validity whose notAfter is
    /// before its notBefore has no such moment.
    NearestValidMoment,
}

impl TimingTolerance {
    /// The tolerance for a pair just issued or uploaded under `policy`:
    /// [`TimingTolerance::NotBeforeAhead`] by [`RenewalPolicy::clock_skew`], the same bound
    /// past which [`RenewalSchedule::decide`](crate::schedule::RenewalSchedule::decide)
    /// calls the clock unreliable.
    #[must_use]
    pub fn fresh(policy: &RenewalPolicy) -> Self {
        TimingTolerance::NotBeforeAhead {
            skew: policy.clock_skew,
        }
    }

    /// The moment a bundle whose leaf has `validity`, refused at `now` for its timing alone,
    /// is checked at instead; `None` when this tolerance does not cover it. Never panics or
    /// overflows.
    ///
    /// * [`Exact`](TimingTolerance::Exact): always `None`.
    /// * [`NotBeforeAhead`](TimingTolerance::NotBeforeAhead): notBefore when
    ///   `now < notBefore ≤ now + skew`, else `None`.
    /// * [`NearestValidMoment`](TimingTolerance::NearestValidMoment): `now` clamped into
    ///   `[notBefore, notAfter]`; `None` when notAfter is before notBefore.
    #[must_use]
    pub fn moment(self, now: u64, validity: Validity) -> Option<u64> {
        let (not_before, not_after) = (validity.not_before, validity.not_after);
        match self {
            TimingTolerance::Exact => None,
            TimingTolerance::NotBeforeAhead { skew } => {
                (not_before > now && not_before - now <= skew).then_some(not_before)
            }
            TimingTolerance::NearestValidMoment => {
                (not_before <= not_after).then(|| now.clamp(not_before, not_after))
            }
        }
    }
}

/// How the leaf was trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Trust {
    /// No roots given; the leaf is self-signed.
    SelfSigned,
    /// The leaf is itself one of the given roots.
    PinnedRoot,
    /// A path through `intermediates` certificates to a given root was verified.
    Chain {
        /// How many intermediates the verified path used.
        intermediates: usize,
    },
}

/// A bundle that passed [`validate`]: ready to be persisted and swapped in.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ValidBundle {
    /// The leaf's details.
    pub leaf: CertInfo,
    /// The leaf followed by the chain, in the order given (what a TLS peer is sent).
    pub cert_chain: Vec<CertificateDer<'static>>,
    /// The private key.
    pub key: PrivateKey,
    /// How the leaf was trusted.
    pub trust: Trust,
}

impl ValidBundle {
    /// The private key in rustls' form.
    #[must_use]
    pub fn private_key_der(&self) -> PrivateKeyDer<'static> {
        self.key.to_private_key_der()
    }
}

/// Why a bundle is not acceptable. One variant per failure; messages name the part.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValidationError {
    /// The certificate (or a chain or root certificate) is not valid PEM/DER X.509.
    InvalidCertificate {
        /// Which input: `certificate`, `chain` or `roots`.
        part: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The key is not a readable private key.
    InvalidKey {
        /// What is wrong.
        reason: String,
    },
    /// The key is readable but of an algorithm this crate cannot handle.
    UnsupportedKey {
        /// What is wrong.
        reason: String,
    },
    /// The key does not belong to the certificate.
    KeyMismatch {
        /// The certificate's key algorithm.
        certificate_key: String,
        /// The private key's algorithm.
        private_key: String,
    },
    /// Whether the key belongs to the certificate could not be decided.
    KeyCheckUnsupported {
        /// The certificate's key algorithm.
        certificate_key: String,
    },
    /// `now` is before notBefore.
    NotYetValid {
        /// notBefore.
        not_before: u64,
        /// The `now` checked.
        now: u64,
    },
    /// `now` is after notAfter.
    Expired {
        /// notAfter.
        not_after: u64,
        /// The `now` checked.
        now: u64,
    },
    /// No roots were given and the certificate is not self-signed.
    NotSelfSigned {
        /// The certificate's issuer.
        issuer: String,
    },
    /// No path to a given root could be verified.
    UntrustedChain {
        /// Why, in words.
        reason: String,
    },
    /// The certificate's extendedKeyUsage does not allow the requested [`Usage`].
    UsageNotAllowed {
        /// The requested use.
        usage: Usage,
    },
    /// The expected host is neither a DNS name nor an IP address.
    InvalidHost {
        /// The host given.
        host: String,
    },
    /// The certificate is not valid for the expected host.
    NameMismatch {
        /// The host given.
        host: String,
        /// The names the certificate carries (SANs, then `CN:…`).
        names: Vec<String>,
    },
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValidationError::InvalidCertificate { part, reason } => {
                write!(f, "invalid format: {part}: {reason}")
            }
            ValidationError::InvalidKey { reason } => write!(f, "invalid format: key: {reason}"),
            ValidationError::UnsupportedKey { reason } => write!(f, "unsupported key: {reason}"),
            ValidationError::KeyMismatch {
                certificate_key,
                private_key,
            } => write!(
                f,
                "key mismatch: the private key ({private_key}) does not belong to the \
                 certificate ({certificate_key})"
            ),
            ValidationError::KeyCheckUnsupported { certificate_key } => write!(
                f,
                "key mismatch: cannot tell whether the private key belongs to a \
                 {certificate_key} certificate"
            ),
            ValidationError::NotYetValid { not_before, now } => write!(
                f,
                "not yet valid: valid from {} (now {})",
                crate::inspect::rfc3339(*not_before),
                crate::inspect::rfc3339(*now)
            ),
            ValidationError::Expired { not_after, now } => write!(
                f,
                "expired: valid until {} (now {})",
                crate::inspect::rfc3339(*not_after),
                crate::inspect::rfc3339(*now)
            ),
            ValidationError::NotSelfSigned { issuer } => write!(
                f,
                "untrusted chain: no root given and the certificate is not self-signed \
                 (issuer {issuer})"
            ),
            ValidationError::UntrustedChain { reason } => write!(f, "untrusted chain: {reason}"),
            ValidationError::UsageNotAllowed { usage } => write!(
                f,
                "wrong usage: the certificate's extended key usage does not allow {}",
                match usage {
                    Usage::ServerAuth => "TLS server authentication",
                    Usage::ClientAuth => "TLS client authentication",
                }
            ),
            ValidationError::InvalidHost { host } => {
                write!(
                    f,
                    "invalid host: '{host}' is neither a DNS name nor an IP address"
                )
            }
            ValidationError::NameMismatch { host, names } if names.is_empty() => {
                write!(f, "name mismatch: {host} (the certificate names nothing)")
            }
            ValidationError::NameMismatch { host, names } => {
                write!(f, "name mismatch: {host} is not among {}", names.join(", "))
            }
        }
    }
}

impl std::error::Error for ValidationError {}

/// Validates `bundle` at `now` (wall-clock Unix seconds). See the module docs for the checks
/// and their order.
pub fn validate(bundle: &Bundle<'_>, now: u64) -> Result<ValidBundle, ValidationError> {
    validate_allowing(bundle, now, TimingTolerance::Exact)
}

/// [`validate`] of `bundle` at `now`, except that a bundle refused there only as
/// [`ValidationError::NotYetValid`] or [`ValidationError::Expired`] is accepted if it passes
/// every check at the moment `tolerance` picks ([`TimingTolerance::moment`]); when there is
/// no such moment, or the bundle fails there too, the error at `now` is returned. See the
/// module docs.
pub fn validate_allowing(
    bundle: &Bundle<'_>,
    now: u64,
    tolerance: TimingTolerance,
) -> Result<ValidBundle, ValidationError> {
    let parsed = parse(bundle)?;
    let Err(refusal) = check_validity(&parsed.leaf, now) else {
        return trust_and_name(parsed, bundle, now);
    };
    let Some(at) = tolerance.moment(now, parsed.leaf.validity()) else {
        return Err(refusal);
    };
    match check_validity(&parsed.leaf, at) {
        Ok(()) => trust_and_name(parsed, bundle, at).map_err(|_| refusal),
        Err(_) => Err(refusal),
    }
}

/// A bundle's certificates and key, read and matched: checks 1–3, which do not depend on
/// the time.
struct Parsed {
    leaf: CertInfo,
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKey,
}

/// Checks 1–3.
fn parse(bundle: &Bundle<'_>) -> Result<Parsed, ValidationError> {
    // 1. Certificates.
    let mut certs = pem::parse_certificates(bundle.cert_pem).map_err(|e| {
        ValidationError::InvalidCertificate {
            part: "certificate",
            reason: e.to_string(),
        }
    })?;
    if let Some(chain_pem) = bundle.chain_pem {
        let chain = pem::parse_certificates(chain_pem).map_err(|e| {
            ValidationError::InvalidCertificate {
                part: "chain",
                reason: e.to_string(),
            }
        })?;
        certs.extend(chain);
    }
    if certs.len() > MAX_CHAIN_LEN + 1 {
        return Err(ValidationError::InvalidCertificate {
            part: "chain",
            reason: format!("more than {MAX_CHAIN_LEN} intermediates"),
        });
    }
    let leaf =
        CertInfo::from_der(certs[0].as_ref()).map_err(|e| ValidationError::InvalidCertificate {
            part: "certificate",
            reason: e.to_string(),
        })?;
    for extra in &certs[1..] {
        CertInfo::from_der(extra.as_ref()).map_err(|e| ValidationError::InvalidCertificate {
            part: "chain",
            reason: e.to_string(),
        })?;
    }

    // 2. Key.
    let key = PrivateKey::from_pem(bundle.key_pem).map_err(|e| match e {
        KeyError::Unsupported { .. } | KeyError::Rejected { .. } => {
            ValidationError::UnsupportedKey {
                reason: e.to_string(),
            }
        }
        other => ValidationError::InvalidKey {
            reason: other.to_string(),
        },
    })?;

    // 3. Key belongs to the certificate.
    match key.matches_public_key(leaf.public_key_der()) {
        KeyMatch::Match => {}
        KeyMatch::Mismatch => {
            return Err(ValidationError::KeyMismatch {
                certificate_key: leaf.key_algorithm.to_string(),
                private_key: key.algorithm().to_string(),
            });
        }
        _ => {
            return Err(ValidationError::KeyCheckUnsupported {
                certificate_key: leaf.key_algorithm.to_string(),
            });
        }
    }

    Ok(Parsed { leaf, certs, key })
}

/// Checks 5 and 6 at `now` (check 4 has passed there): the finished bundle.
fn trust_and_name(
    parsed: Parsed,
    bundle: &Bundle<'_>,
    now: u64,
) -> Result<ValidBundle, ValidationError> {
    let Parsed { leaf, certs, key } = parsed;

    // 5. Trust.
    let trust = match bundle.roots_pem {
        None if leaf.self_signed => Trust::SelfSigned,
        None => {
            return Err(ValidationError::NotSelfSigned {
                issuer: leaf.issuer.clone(),
            });
        }
        Some(roots_pem) => verify_chain(&certs, roots_pem, bundle.usage, now)?,
    };

    // 6. Name.
    if let Some(host) = bundle.expected_host {
        check_name(&certs[0], &leaf, host, bundle.allow_cn_fallback)?;
    }

    Ok(ValidBundle {
        leaf,
        cert_chain: certs,
        key,
        trust,
    })
}

/// Check 4: `now` lies within the leaf's validity (notAfter inclusive).
fn check_validity(leaf: &CertInfo, now: u64) -> Result<(), ValidationError> {
    if now < leaf.not_before {
        return Err(ValidationError::NotYetValid {
            not_before: leaf.not_before,
            now,
        });
    }
    if now > leaf.not_after {
        return Err(ValidationError::Expired {
            not_after: leaf.not_after,
            now,
        });
    }
    Ok(())
}

fn verify_chain(
    certs: &[CertificateDer<'static>],
    roots_pem: &[u8],
    usage: Usage,
    now: u64,
) -> Result<Trust, ValidationError> {
    let roots =
        pem::parse_certificates(roots_pem).map_err(|e| ValidationError::InvalidCertificate {
            part: "roots",
            reason: e.to_string(),
        })?;
    if roots.iter().any(|r| r.as_ref() == certs[0].as_ref()) {
        return Ok(Trust::PinnedRoot);
    }
    let mut anchors = Vec::with_capacity(roots.len());
    for root in &roots {
        let anchor = webpki::anchor_from_trusted_cert(root).map_err(|e| {
            ValidationError::InvalidCertificate {
                part: "roots",
                reason: webpki_reason(&e),
            }
        })?;
        anchors.push(anchor);
    }
    let leaf =
        EndEntityCert::try_from(&certs[0]).map_err(|e| ValidationError::InvalidCertificate {
            part: "certificate",
            reason: webpki_reason(&e),
        })?;
    let key_usage = match usage {
        Usage::ServerAuth => KeyUsage::server_auth(),
        Usage::ClientAuth => KeyUsage::client_auth(),
    };
    let time = UnixTime::since_unix_epoch(Duration::from_secs(now));
    let path = leaf
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &certs[1..],
            time,
            key_usage,
            None,
            None,
        )
        .map_err(|e| match e {
            webpki::Error::RequiredEkuNotFoundContext(_) => {
                ValidationError::UsageNotAllowed { usage }
            }
            other => ValidationError::UntrustedChain {
                reason: webpki_reason(&other),
            },
        })?;
    Ok(Trust::Chain {
        intermediates: path.intermediate_certificates().count(),
    })
}

fn check_name(
    leaf_der: &CertificateDer<'static>,
    leaf: &CertInfo,
    host: &str,
    allow_cn_fallback: bool,
) -> Result<(), ValidationError> {
    let server_name = ServerName::try_from(host).map_err(|_| ValidationError::InvalidHost {
        host: host.to_owned(),
    })?;
    let parsed =
        EndEntityCert::try_from(leaf_der).map_err(|e| ValidationError::InvalidCertificate {
            part: "certificate",
            reason: webpki_reason(&e),
        })?;
    if parsed
        .verify_is_valid_for_subject_name(&server_name)
        .is_ok()
    {
        return Ok(());
    }
    let cn_matches = allow_cn_fallback
        && leaf.subject_alt_names.is_empty()
        && leaf
            .subject_cn
            .as_deref()
            .is_some_and(|cn| cn.eq_ignore_ascii_case(host));
    if cn_matches {
        return Ok(());
    }
    let mut names: Vec<String> = leaf
        .subject_alt_names
        .iter()
        .filter(|s| !matches!(s, San::Other { .. }))
        .map(ToString::to_string)
        .collect();
    if let Some(cn) = &leaf.subject_cn {
        names.push(format!("CN:{cn}"));
    }
    Err(ValidationError::NameMismatch {
        host: host.to_owned(),
        names,
    })
}

/// A readable sentence for the rustls-webpki errors a bundle check can meet.
fn webpki_reason(e: &webpki::Error) -> String {
    match e {
        webpki::Error::UnknownIssuer => {
            "no path to a given root (issuer unknown; is an intermediate missing?)".to_owned()
        }
        webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. } => {
            "a certificate in the chain is outside its validity period".to_owned()
        }
        webpki::Error::InvalidSignatureForPublicKey => {
            "a signature in the chain does not verify".to_owned()
        }
        webpki::Error::CaUsedAsEndEntity => {
            "the certificate is a CA certificate, not an end entity".to_owned()
        }
        webpki::Error::EndEntityUsedAsCa => {
            "a chain certificate is not a CA (basicConstraints)".to_owned()
        }
        webpki::Error::UnsupportedSignatureAlgorithmContext(_)
        | webpki::Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            "unsupported signature algorithm in the chain".to_owned()
        }
        webpki::Error::BadDer | webpki::Error::BadDerTime => "malformed DER".to_owned(),
        other => format!("{other:?}"),
    }
}
