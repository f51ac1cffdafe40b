//! Certificate signing requests (PKCS#10) and self-signed certificates.
//!
//! Both are built with RustCrypto x509-cert's types and signed by [`PrivateKey`] over the
//! exact DER that goes on the wire. The subject keeps one attribute per RDN in the order
//! given (Legrand's CA expects `CN, OU, O, L, ST, C, emailAddress`). Self-signed
//! certificates always carry the validity they are given (never a 1975–4096 default) and a
//! serial number drawn from the injected random source.
//!
//! Attribute encodings: `C` is a PrintableString of two letters, `emailAddress` an
//! IA5String, everything else a UTF8String (RFC 5280 §4.1.2.4); lengths are bounded by
//! RFC 5280's upper bounds (`CN`, `O`, `OU` 64; `L`, `ST` 128; `emailAddress` 255).

use core::fmt;
use core::time::Duration;

use rand_core::CryptoRng;
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer};
use sha2::{Digest as _, Sha256};
use x509_cert::attr::{Attribute, Attributes};
use x509_cert::certificate::{TbsCertificate, Version};
use x509_cert::der::asn1::{BitString, GeneralizedTime, ObjectIdentifier, OctetString, UtcTime};
use x509_cert::der::flagset::FlagSet;
use x509_cert::der::oid::AssociatedOid;
use x509_cert::der::{DateTime, Decode as _, Encode};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{
    BasicConstraints, ExtendedKeyUsage as EkuExtension, KeyUsage as KuExtension, KeyUsages,
    SubjectAltName as SanExtension, SubjectKeyIdentifier,
};
use x509_cert::request::{CertReq, CertReqInfo, ExtensionReq};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

use crate::key::{KeyError, PrivateKey};
use crate::pem;

mod names;

pub use names::{AttributeType, DistinguishedName, SubjectAltName};

/// A key usage bit (RFC 5280 §4.2.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyUsage {
    /// digitalSignature: TLS handshakes with ECDSA/Ed25519 keys.
    DigitalSignature,
    /// nonRepudiation / contentCommitment.
    NonRepudiation,
    /// keyEncipherment: RSA key transport.
    KeyEncipherment,
    /// dataEncipherment.
    DataEncipherment,
    /// keyAgreement: ECDH.
    KeyAgreement,
    /// keyCertSign: CA certificates.
    KeyCertSign,
    /// cRLSign.
    CrlSign,
}

impl KeyUsage {
    fn flag(self) -> KeyUsages {
        match self {
            KeyUsage::DigitalSignature => KeyUsages::DigitalSignature,
            KeyUsage::NonRepudiation => KeyUsages::NonRepudiation,
            KeyUsage::KeyEncipherment => KeyUsages::KeyEncipherment,
            KeyUsage::DataEncipherment => KeyUsages::DataEncipherment,
            KeyUsage::KeyAgreement => KeyUsages::KeyAgreement,
            KeyUsage::KeyCertSign => KeyUsages::KeyCertSign,
            KeyUsage::CrlSign => KeyUsages::CRLSign,
        }
    }
}

/// An extended key usage (RFC 5280 §4.2.1.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExtendedKeyUsage {
    /// id-kp-serverAuth: TLS servers (the door station's HTTPS).
    ServerAuth,
    /// id-kp-clientAuth: TLS clients (the SIP client certificate).
    ClientAuth,
}

impl ExtendedKeyUsage {
    fn oid(self) -> ObjectIdentifier {
        ObjectIdentifier::new_unwrap(match self {
            ExtendedKeyUsage::ServerAuth => "1.3.6.1.5.5.7.3.1",
            ExtendedKeyUsage::ClientAuth => "1.3.6.1.5.5.7.3.2",
        })
    }
}

/// What a CSR asks for; also the identity part of a self-signed certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestParams {
    /// The subject, one attribute per RDN, in order.
    pub subject: DistinguishedName,
    /// Subject alternative names, in order.
    pub subject_alt_names: Vec<SubjectAltName>,
    /// Key usage bits (the extension is left out when empty).
    pub key_usage: Vec<KeyUsage>,
    /// Extended key usages (the extension is left out when empty).
    pub extended_key_usage: Vec<ExtendedKeyUsage>,
}

impl RequestParams {
    /// Parameters with a subject and nothing else.
    #[must_use]
    pub fn new(subject: DistinguishedName) -> Self {
        RequestParams {
            subject,
            ..Self::default()
        }
    }

    /// Adds a subject alternative name.
    #[must_use]
    pub fn with_san(mut self, san: SubjectAltName) -> Self {
        self.subject_alt_names.push(san);
        self
    }

    /// Adds a key usage bit.
    #[must_use]
    pub fn with_key_usage(mut self, usage: KeyUsage) -> Self {
        self.key_usage.push(usage);
        self
    }

    /// Adds an extended key usage.
    #[must_use]
    pub fn with_extended_key_usage(mut self, usage: ExtendedKeyUsage) -> Self {
        self.extended_key_usage.push(usage);
        self
    }

    /// The CSR Legrand's CA expects for a SIP client certificate (FACTS §1.3): the
    /// [`DistinguishedName::legrand`] subject and the [`SubjectAltName::legrand_sip`] URI.
    /// `unit` is `DIY` or `C100X`.
    #[must_use]
    pub fn legrand(
        client_id: &str,
        owner_id: &str,
        gateway_id: &str,
        owner_email: &str,
        unit: &str,
    ) -> Self {
        Self::new(DistinguishedName::legrand(client_id, unit, owner_email))
            .with_san(SubjectAltName::legrand_sip(owner_id, client_id, gateway_id))
    }

    fn extensions(&self) -> Result<Vec<Extension>, RequestError> {
        let mut out = Vec::new();
        if !self.subject_alt_names.is_empty() {
            let names = self
                .subject_alt_names
                .iter()
                .map(SubjectAltName::to_general_name)
                .collect::<Result<Vec<_>, _>>()?;
            // RFC 5280 §4.2.1.6: critical when the subject is empty.
            let critical = self.subject.attributes().is_empty();
            out.push(extension(&SanExtension(names), critical)?);
        }
        if !self.key_usage.is_empty() {
            let flags = self
                .key_usage
                .iter()
                .fold(FlagSet::<KeyUsages>::default(), |acc, u| acc | u.flag());
            out.push(extension(&KuExtension(flags), true)?);
        }
        if !self.extended_key_usage.is_empty() {
            let mut oids: Vec<ObjectIdentifier> = Vec::new();
            for usage in &self.extended_key_usage {
                if !oids.contains(&usage.oid()) {
                    oids.push(usage.oid());
                }
            }
            out.push(extension(&EkuExtension(oids), false)?);
        }
        Ok(out)
    }
}

/// What went wrong building a CSR or certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// A subject attribute value is not acceptable.
    InvalidAttribute {
        /// The attribute's short name (`CN`, `C`, …).
        attribute: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A subject string (openssl `-subj` form) does not parse.
    InvalidSubject {
        /// What is wrong with it.
        reason: String,
    },
    /// A subject alternative name is not acceptable.
    InvalidSan {
        /// The name, as `type:value`.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The validity period is empty, reversed or outside 1970–9999.
    InvalidValidity {
        /// What is wrong with it.
        reason: String,
    },
    /// The key cannot sign (RSA), or the random source failed.
    Key(KeyError),
    /// DER encoding failed (should not happen for valid input).
    Encoding {
        /// The encoder's message.
        reason: String,
    },
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::InvalidAttribute { attribute, reason } => {
                write!(f, "subject attribute {attribute}: {reason}")
            }
            RequestError::InvalidSubject { reason } => write!(f, "invalid subject: {reason}"),
            RequestError::InvalidSan { value, reason } => {
                write!(f, "subject alternative name {value}: {reason}")
            }
            RequestError::InvalidValidity { reason } => write!(f, "invalid validity: {reason}"),
            RequestError::Key(e) => write!(f, "{e}"),
            RequestError::Encoding { reason } => write!(f, "DER encoding failed: {reason}"),
        }
    }
}

impl std::error::Error for RequestError {}

impl From<KeyError> for RequestError {
    fn from(e: KeyError) -> Self {
        RequestError::Key(e)
    }
}

/// A PKCS#10 certificate signing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Csr {
    der: Vec<u8>,
}

impl Csr {
    /// Builds and signs a CSR for `key` (P-256 or Ed25519). Deterministic: the same
    /// parameters and key give the same bytes (RFC 6979 / Ed25519 signatures).
    pub fn create(params: &RequestParams, key: &PrivateKey) -> Result<Self, RequestError> {
        if !key.can_sign() {
            return Err(RequestError::Key(KeyError::CannotSign {
                algorithm: key.algorithm().to_string(),
            }));
        }
        let extensions = params.extensions()?;
        let mut attributes = Attributes::new();
        if !extensions.is_empty() {
            let attribute = Attribute::try_from(ExtensionReq(extensions)).map_err(encoding)?;
            attributes.insert(attribute).map_err(encoding)?;
        }
        let info = CertReqInfo {
            version: x509_cert::request::Version::V1,
            subject: params.subject.to_name()?,
            public_key: SubjectPublicKeyInfoOwned::from_der(key.public_key_der())
                .map_err(encoding)?,
            attributes,
        };
        let tbs = info.to_der().map_err(encoding)?;
        let (signature, algorithm) = key.sign(&tbs)?;
        let der = CertReq {
            info,
            algorithm,
            signature: BitString::from_bytes(&signature).map_err(encoding)?,
        }
        .to_der()
        .map_err(encoding)?;
        Ok(Csr { der })
    }

    /// The DER encoding.
    #[must_use]
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The DER encoding in rustls-pki-types' form.
    #[must_use]
    pub fn into_der(self) -> CertificateSigningRequestDer<'static> {
        CertificateSigningRequestDer::from(self.der)
    }

    /// PEM (`CERTIFICATE REQUEST`), as `openssl req` reads it.
    #[must_use]
    pub fn to_pem(&self) -> String {
        pem::encode("CERTIFICATE REQUEST", &self.der)
    }

    /// Base64 of the DER with no armour and no line breaks: the `csr` field of Legrand's
    /// `clientCerts` call.
    #[must_use]
    pub fn to_der_base64(&self) -> String {
        pem::to_base64(&self.der)
    }
}

/// Parameters of a self-signed certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SelfSignedParams {
    /// Subject, SANs and usages.
    pub request: RequestParams,
    /// notBefore, wall-clock Unix seconds.
    pub not_before: u64,
    /// notAfter, wall-clock Unix seconds (inclusive, RFC 5280); must be after `not_before`.
    pub not_after: u64,
    /// Whether to mark the certificate as a CA (basicConstraints cA=TRUE, keyCertSign).
    pub is_ca: bool,
}

impl SelfSignedParams {
    /// A self-signed certificate for `request`, valid from `not_before` to `not_after`.
    #[must_use]
    pub fn new(request: RequestParams, not_before: u64, not_after: u64) -> Self {
        SelfSignedParams {
            request,
            not_before,
            not_after,
            is_ca: false,
        }
    }

    /// A TLS server certificate for `host` (the door station's `doorstation.local`):
    /// `CN=host`, a DNS (or IP) SAN for `host` plus `extra_sans`, digitalSignature,
    /// serverAuth, valid `days` days from `not_before`.
    pub fn server(
        host: &str,
        extra_sans: &[SubjectAltName],
        not_before: u64,
        days: u32,
    ) -> Result<Self, RequestError> {
        let own: SubjectAltName = host.parse()?;
        let mut request = RequestParams::new(DistinguishedName::common_name(host))
            .with_san(own.clone())
            .with_key_usage(KeyUsage::DigitalSignature)
            .with_extended_key_usage(ExtendedKeyUsage::ServerAuth);
        for san in extra_sans {
            if *san != own {
                request = request.with_san(san.clone());
            }
        }
        let not_after = not_before
            .checked_add(u64::from(days) * 86_400)
            .ok_or_else(|| RequestError::InvalidValidity {
                reason: "notAfter overflows".to_owned(),
            })?;
        Ok(Self::new(request, not_before, not_after))
    }
}

/// A certificate this crate made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
}

impl Certificate {
    /// Builds a self-signed certificate signed by `key` (P-256 or Ed25519). The serial is 16
    /// bytes from `rng` (positive, 126 random bits); everything else is deterministic.
    /// Extensions: basicConstraints (critical), keyUsage (critical, when given),
    /// extendedKeyUsage, subjectAltName, subjectKeyIdentifier (SHA-256 of the key, first
    /// 160 bits, RFC 7093 §2 method 1).
    pub fn self_signed(
        params: &SelfSignedParams,
        key: &PrivateKey,
        rng: &mut impl CryptoRng,
    ) -> Result<Self, RequestError> {
        let mut serial = [0u8; 16];
        rng.fill_bytes(&mut serial);
        serial[0] = (serial[0] & 0x7f) | 0x40;
        Self::self_signed_with_serial(params, key, &serial)
    }

    /// [`Certificate::self_signed`] with a caller-chosen serial (1–20 bytes, big-endian,
    /// read as a positive integer).
    pub fn self_signed_with_serial(
        params: &SelfSignedParams,
        key: &PrivateKey,
        serial: &[u8],
    ) -> Result<Self, RequestError> {
        if !key.can_sign() {
            return Err(RequestError::Key(KeyError::CannotSign {
                algorithm: key.algorithm().to_string(),
            }));
        }
        if params.not_after <= params.not_before {
            return Err(RequestError::InvalidValidity {
                reason: format!(
                    "notAfter ({}) must be after notBefore ({})",
                    params.not_after, params.not_before
                ),
            });
        }
        let validity = Validity {
            not_before: x509_time(params.not_before)?,
            not_after: x509_time(params.not_after)?,
        };
        let subject = params.request.subject.to_name()?;
        let spki = SubjectPublicKeyInfoOwned::from_der(key.public_key_der()).map_err(encoding)?;

        let mut request = params.request.clone();
        if params.is_ca && !request.key_usage.contains(&KeyUsage::KeyCertSign) {
            request.key_usage.push(KeyUsage::KeyCertSign);
        }
        let mut extensions = vec![extension(
            &BasicConstraints {
                ca: params.is_ca,
                path_len_constraint: None,
            },
            true,
        )?];
        extensions.extend(request.extensions()?);
        let key_bits = spki.subject_public_key.raw_bytes();
        let ski = &Sha256::digest(key_bits)[..20];
        extensions.push(extension(
            &SubjectKeyIdentifier(OctetString::new(ski).map_err(encoding)?),
            false,
        )?);

        let serial_number = SerialNumber::new(serial).map_err(|e| RequestError::Encoding {
            reason: format!("serial number: {e}"),
        })?;
        let algorithm = key.signature_algorithm()?;
        let tbs = TbsCertificate {
            version: Version::V3,
            serial_number,
            signature: algorithm.clone(),
            issuer: subject.clone(),
            validity,
            subject,
            subject_public_key_info: spki,
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(extensions),
        };
        let tbs_der = tbs.to_der().map_err(encoding)?;
        let (signature, _) = key.sign(&tbs_der)?;
        let der = x509_cert::Certificate {
            tbs_certificate: tbs,
            signature_algorithm: algorithm,
            signature: BitString::from_bytes(&signature).map_err(encoding)?,
        }
        .to_der()
        .map_err(encoding)?;
        Ok(Certificate { der })
    }

    /// The DER encoding.
    #[must_use]
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The DER encoding in rustls-pki-types' form.
    #[must_use]
    pub fn into_der(self) -> CertificateDer<'static> {
        CertificateDer::from(self.der)
    }

    /// PEM (`CERTIFICATE`).
    #[must_use]
    pub fn to_pem(&self) -> String {
        pem::encode_certificate(&self.der)
    }
}

/// UTCTime before 2050, GeneralizedTime from 2050 on (RFC 5280 §4.1.2.5).
fn x509_time(unix: u64) -> Result<Time, RequestError> {
    let invalid = |e: x509_cert::der::Error| RequestError::InvalidValidity {
        reason: format!("{unix} is outside 1970..=9999: {e}"),
    };
    let dt = DateTime::from_unix_duration(Duration::from_secs(unix)).map_err(invalid)?;
    Ok(if dt.year() < 2050 {
        Time::UtcTime(UtcTime::from_date_time(dt).map_err(invalid)?)
    } else {
        Time::GeneralTime(GeneralizedTime::from_date_time(dt))
    })
}

fn extension<T: AssociatedOid + Encode>(
    value: &T,
    critical: bool,
) -> Result<Extension, RequestError> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(value.to_der().map_err(encoding)?).map_err(encoding)?,
    })
}

fn encoding(e: x509_cert::der::Error) -> RequestError {
    RequestError::Encoding {
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests;
