//! PEM and base64-DER in and out.
//!
//! Reading goes through `rustls-pki-types`' [`PemObject`] (rustls-pemfile is unmaintained,
//! RUSTSEC-2025-0134); writing is the RFC 7468 strict form: `-----BEGIN <label>-----`, base64
//! lines of 64 characters, `-----END <label>-----`, each line ending in `\n`.
//!
//! Inputs are bounded: at most [`MAX_INPUT_LEN`] bytes and [`MAX_CERTIFICATES`] certificates,
//! so no input can make the crate allocate more than a small multiple of its own size.

use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::{self, PemObject, SectionKind};

/// Largest PEM or DER input accepted (4 MiB: a large system root bundle fits).
pub const MAX_INPUT_LEN: usize = 4 << 20;

/// Most certificates read from one PEM input.
pub const MAX_CERTIFICATES: usize = 512;

/// What went wrong reading PEM or base64.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PemError {
    /// The input holds no block with the expected label.
    NotFound {
        /// The label that was looked for, e.g. `CERTIFICATE`.
        label: &'static str,
    },
    /// A block is malformed (bad armour, bad base64, missing end line).
    Malformed {
        /// What the PEM reader said.
        reason: String,
    },
    /// The input is larger than [`MAX_INPUT_LEN`].
    TooLarge {
        /// Input length in bytes.
        len: usize,
    },
    /// The input holds more than [`MAX_CERTIFICATES`] certificates.
    TooManyCertificates,
    /// A base64 string (no armour) does not decode.
    Base64 {
        /// What the decoder said.
        reason: String,
    },
}

impl fmt::Display for PemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PemError::NotFound { label } => write!(f, "no PEM block labelled {label} found"),
            PemError::Malformed { reason } => write!(f, "malformed PEM: {reason}"),
            PemError::TooLarge { len } => write!(
                f,
                "input of {len} bytes is larger than the {MAX_INPUT_LEN}-byte limit"
            ),
            PemError::TooManyCertificates => {
                write!(f, "more than {MAX_CERTIFICATES} certificates in one input")
            }
            PemError::Base64 { reason } => write!(f, "invalid base64: {reason}"),
        }
    }
}

impl std::error::Error for PemError {}

impl From<pem::Error> for PemError {
    fn from(e: pem::Error) -> Self {
        match e {
            pem::Error::NoItemsFound => PemError::NotFound {
                label: "CERTIFICATE",
            },
            other => PemError::Malformed {
                reason: other.to_string(),
            },
        }
    }
}

/// Encodes `der` as a PEM block labelled `label` (e.g. `CERTIFICATE`, `PRIVATE KEY`,
/// `CERTIFICATE REQUEST`), 64 base64 characters per line.
#[must_use]
pub fn encode(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = String::with_capacity(body.len() + body.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in body.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(core::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Encodes a certificate as PEM.
#[must_use]
pub fn encode_certificate(der: &[u8]) -> String {
    encode("CERTIFICATE", der)
}

/// Base64 of `der` with no armour and no line breaks: the form the Legrand certificate API
/// takes (`csr`) and returns (`cert`).
#[must_use]
pub fn to_base64(der: &[u8]) -> String {
    STANDARD.encode(der)
}

/// Decodes base64 DER with no armour (line breaks and spaces are ignored), e.g. the `cert`
/// field of a Legrand `clientCerts` reply. The result is not parsed; pass it to
/// [`crate::inspect::CertInfo::from_der`] or [`encode_certificate`].
pub fn from_base64(text: &str) -> Result<Vec<u8>, PemError> {
    if text.len() > MAX_INPUT_LEN {
        return Err(PemError::TooLarge { len: text.len() });
    }
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(compact).map_err(|e| PemError::Base64 {
        reason: e.to_string(),
    })
}

/// Every `CERTIFICATE` block in `pem`, in order. Other blocks (keys, CSRs) are skipped.
///
/// Errors: no certificate at all, a malformed block, input over [`MAX_INPUT_LEN`] or more than
/// [`MAX_CERTIFICATES`] certificates.
pub fn parse_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, PemError> {
    check_len(pem)?;
    let mut out = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem) {
        let cert = item.map_err(PemError::from)?;
        if out.len() == MAX_CERTIFICATES {
            return Err(PemError::TooManyCertificates);
        }
        out.push(cert);
    }
    if out.is_empty() {
        return Err(PemError::NotFound {
            label: "CERTIFICATE",
        });
    }
    Ok(out)
}

/// Certificates from either PEM (one or more blocks) or a single raw DER certificate
/// (input starting with a DER SEQUENCE tag, `0x30`).
pub fn parse_certificates_pem_or_der(
    input: &[u8],
) -> Result<Vec<CertificateDer<'static>>, PemError> {
    check_len(input)?;
    if input.first() == Some(&0x30) {
        return Ok(vec![CertificateDer::from(input.to_vec())]);
    }
    parse_certificates(input)
}

/// The labels of the PEM blocks in `pem`, in order (for error messages such as "this file
/// holds a CERTIFICATE REQUEST, not a certificate"). Stops at the first malformed block.
#[must_use]
pub fn block_labels(pem: &[u8]) -> Vec<&'static str> {
    if check_len(pem).is_err() {
        return Vec::new();
    }
    let mut labels = Vec::new();
    for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem) {
        let Ok((kind, _)) = item else { break };
        if labels.len() == MAX_CERTIFICATES {
            break;
        }
        labels.push(label_of(kind));
    }
    labels
}

pub(crate) fn check_len(input: &[u8]) -> Result<(), PemError> {
    if input.len() > MAX_INPUT_LEN {
        return Err(PemError::TooLarge { len: input.len() });
    }
    Ok(())
}

fn label_of(kind: SectionKind) -> &'static str {
    match kind {
        SectionKind::Certificate => "CERTIFICATE",
        SectionKind::PublicKey => "PUBLIC KEY",
        SectionKind::RsaPrivateKey => "RSA PRIVATE KEY",
        SectionKind::PrivateKey => "PRIVATE KEY",
        SectionKind::EcPrivateKey => "EC PRIVATE KEY",
        SectionKind::Crl => "X509 CRL",
        SectionKind::Csr => "CERTIFICATE REQUEST",
        _ => "OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_wraps_at_64_columns_and_round_trips() {
        let der: Vec<u8> = (0..=255u8).collect();
        let text = encode("CERTIFICATE", &der);
        assert!(text.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(text.ends_with("-----END CERTIFICATE-----\n"));
        assert!(
            text.lines()
                .all(|l| l.len() <= 64 || l.starts_with("-----"))
        );
        let back = parse_certificates(text.as_bytes()).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].as_ref(), der.as_slice());
    }

    #[test]
    fn base64_round_trips_and_ignores_line_breaks() {
        let der = [0x30, 0x03, 0x02, 0x01, 0x05];
        let b64 = to_base64(&der);
        assert!(!b64.contains('\n'));
        assert_eq!(from_base64(&b64).unwrap(), der);
        assert_eq!(from_base64("MAMC\nAQU=\n").unwrap(), der);
        assert!(matches!(from_base64("@@"), Err(PemError::Base64 { .. })));
    }

    #[test]
    fn parse_certificates_reports_missing_and_malformed_blocks() {
        assert_eq!(
            parse_certificates(b"hello"),
            Err(PemError::NotFound {
                label: "CERTIFICATE"
            })
        );
        let key_only = encode("PRIVATE KEY", &[1, 2, 3]);
        assert!(matches!(
            parse_certificates(key_only.as_bytes()),
            Err(PemError::NotFound { .. })
        ));
        let broken = "-----BEGIN CERTIFICATE-----\nAAAA\n";
        assert!(matches!(
            parse_certificates(broken.as_bytes()),
            Err(PemError::Malformed { .. })
        ));
    }

    #[test]
    fn parse_certificates_pem_or_der_accepts_raw_der() {
        let der = [0x30, 0x00];
        let certs = parse_certificates_pem_or_der(&der).unwrap();
        assert_eq!(certs[0].as_ref(), &der);
    }

    #[test]
    fn oversized_input_is_rejected_before_parsing() {
        let big = vec![b'A'; MAX_INPUT_LEN + 1];
        assert!(matches!(
            parse_certificates(&big),
            Err(PemError::TooLarge { .. })
        ));
        assert!(block_labels(&big).is_empty());
    }

    #[test]
    fn block_labels_lists_every_block_in_order() {
        let text = encode("CERTIFICATE REQUEST", &[1]) + &encode("PRIVATE KEY", &[2]);
        assert_eq!(
            block_labels(text.as_bytes()),
            vec!["CERTIFICATE REQUEST", "PRIVATE KEY"]
        );
    }

    #[test]
    fn too_many_certificates_are_refused() {
        let one = encode_certificate(&[0x30, 0x00]);
        let many = one.repeat(MAX_CERTIFICATES + 1);
        assert_eq!(
            parse_certificates(many.as_bytes()),
            Err(PemError::TooManyCertificates)
        );
    }
}
