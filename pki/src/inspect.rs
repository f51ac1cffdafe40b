//! Reading a certificate: who it names, who signed it, when it expires.
//!
//! [`CertInfo`] holds what a certificate says; [`CertInfo::expiry`] judges it at a given
//! `now` against an expiring-soon threshold ([`DEFAULT_WARN_BEFORE`], 30 days, the BTicino
//! app's rule); [`inspect`] does both for every certificate in a PEM or DER input and gives
//! serde-serializable [`Report`]s (for `latchkey cert info --json`).
//!
//! "Self-signed" means the subject equals the issuer **and** the signature verifies with the
//! certificate's own public key, not just the names. Expiry follows RFC 5280 (notAfter is
//! inclusive) and agrees with `openssl x509 -checkend N`: expiring when
//! `notAfter < now + N`.

use core::fmt;
use core::net::IpAddr;
use core::time::Duration;

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use x509_cert::der::asn1::{
    Any, BmpString, Ia5StringRef, ObjectIdentifier, PrintableStringRef, TeletexStringRef,
    Utf8StringRef,
};
use x509_cert::der::{DateTime, Decode as _, Encode as _, Tag, Tagged as _};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, SubjectAltName};
use x509_cert::name::Name;
use x509_cert::spki::SubjectPublicKeyInfoRef;

use crate::asn1;
use crate::key::KeyAlgorithm;
use crate::pem::{self, PemError};
use crate::schedule::Validity;

/// The default expiring-soon threshold: 30 days, as the BTicino app and both seed clients.
pub const DEFAULT_WARN_BEFORE: u64 = 30 * 86_400;

/// One subject or issuer attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct NameAttribute {
    /// Short name (`CN`, `O`, `emailAddress`, …) or the dotted OID when unknown.
    pub name: String,
    /// The value; non-string values as `#` + hex of their DER.
    pub value: String,
}

/// A subject alternative name found in a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum San {
    /// dNSName.
    Dns(String),
    /// iPAddress.
    Ip(IpAddr),
    /// uniformResourceIdentifier.
    Uri(String),
    /// rfc822Name.
    Email(String),
    /// Any other form (otherName, directoryName, …), by kind.
    Other {
        /// The GeneralName choice, e.g. `otherName`.
        kind: &'static str,
    },
}

impl fmt::Display for San {
    /// `DNS:…`, `IP:…`, `URI:…`, `email:…` as openssl prints them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            San::Dns(v) => write!(f, "DNS:{v}"),
            San::Ip(v) => write!(f, "IP:{v}"),
            San::Uri(v) => write!(f, "URI:{v}"),
            San::Email(v) => write!(f, "email:{v}"),
            San::Other { kind } => write!(f, "{kind}:<unsupported>"),
        }
    }
}

/// Serialized as `{"type": "dns" | "ip" | "uri" | "email" | "other", "value": "…"}`.
impl Serialize for San {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            value: String,
        }
        let (kind, value) = match self {
            San::Dns(v) => ("dns", v.clone()),
            San::Ip(v) => ("ip", v.to_string()),
            San::Uri(v) => ("uri", v.clone()),
            San::Email(v) => ("email", v.clone()),
            San::Other { kind } => ("other", (*kind).to_owned()),
        };
        View { kind, value }.serialize(serializer)
    }
}

/// What a certificate says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CertInfo {
    /// The subject's first common name.
    pub subject_cn: Option<String>,
    /// The full subject, attributes in certificate order, `TYPE=value` joined by `, `
    /// (openssl's order, not RFC 4514's reversed one).
    pub subject: String,
    /// The subject's attributes, in order.
    pub subject_attributes: Vec<NameAttribute>,
    /// The full issuer, same form as `subject`.
    pub issuer: String,
    /// The issuer's attributes, in order.
    pub issuer_attributes: Vec<NameAttribute>,
    /// Serial number, upper-case hex, as `openssl x509 -serial` prints it.
    pub serial: String,
    /// Subject alternative names, in order.
    pub subject_alt_names: Vec<San>,
    /// notBefore, wall-clock Unix seconds.
    pub not_before: u64,
    /// notAfter, wall-clock Unix seconds (inclusive).
    pub not_after: u64,
    /// notBefore as RFC 3339 UTC (`2025-01-01T00:00:00Z`).
    pub not_before_utc: String,
    /// notAfter as RFC 3339 UTC.
    pub not_after_utc: String,
    /// Subject and issuer are the same name.
    pub self_issued: bool,
    /// Self-issued and the signature verifies with the certificate's own key.
    pub self_signed: bool,
    /// basicConstraints cA is set.
    pub is_ca: bool,
    /// The subject public key's algorithm.
    pub key_algorithm: KeyAlgorithm,
    /// The signature algorithm (`ecdsa-with-SHA256`, `sha256WithRSAEncryption`, …).
    pub signature_algorithm: String,
    /// Extended key usages (`serverAuth`, `clientAuth`, … or dotted OIDs).
    pub extended_key_usage: Vec<String>,
    /// SHA-256 of the DER, upper-case hex with colons (as `openssl x509 -fingerprint
    /// -sha256` prints it).
    pub fingerprint_sha256: String,
    #[serde(skip)]
    spki: Vec<u8>,
}

/// Where a certificate stands at a given `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ExpiryState {
    /// `now` is before notBefore.
    NotYetValid,
    /// Valid and not expiring within the threshold.
    Valid,
    /// Valid, but notAfter is within the threshold.
    ExpiringSoon,
    /// `now` is after notAfter.
    Expired,
}

/// The expiry judgement of a certificate at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Expiry {
    /// The state.
    pub state: ExpiryState,
    /// notAfter − now (negative once expired).
    pub seconds_until_expiry: i64,
    /// `seconds_until_expiry` in whole days, rounded down (−1 on the first day after
    /// expiry).
    pub days_until_expiry: i64,
    /// notAfter < now + threshold (what `openssl x509 -checkend threshold` reports as
    /// "will expire"); true for expired certificates too.
    pub expiring_soon: bool,
    /// The threshold used, in seconds.
    pub warn_before: u64,
}

/// A certificate and its expiry at `now`: the `cert info --json` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// What the certificate says.
    pub certificate: CertInfo,
    /// The `now` the expiry was judged at (Unix seconds).
    pub now: u64,
    /// The judgement.
    pub expiry: Expiry,
}

/// What went wrong reading a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InspectError {
    /// The PEM layer failed (no certificate, malformed block, too large).
    Pem(PemError),
    /// The DER is not an X.509 certificate.
    Der {
        /// The decoder's message, with the byte position.
        reason: String,
    },
    /// A known extension is malformed or duplicated.
    Extension {
        /// The extension's name.
        name: &'static str,
        /// The decoder's message.
        reason: String,
    },
}

impl fmt::Display for InspectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InspectError::Pem(e) => write!(f, "{e}"),
            InspectError::Der { reason } => write!(f, "not a DER X.509 certificate: {reason}"),
            InspectError::Extension { name, reason } => {
                write!(f, "malformed {name} extension: {reason}")
            }
        }
    }
}

impl std::error::Error for InspectError {}

impl From<PemError> for InspectError {
    fn from(e: PemError) -> Self {
        InspectError::Pem(e)
    }
}

impl CertInfo {
    /// Reads one DER certificate (trailing bytes are an error).
    pub fn from_der(der: &[u8]) -> Result<Self, InspectError> {
        pem::check_len(der)?;
        let der_error = |e: x509_cert::der::Error| InspectError::Der {
            reason: e.to_string(),
        };
        let cert = x509_cert::Certificate::from_der(der).map_err(der_error)?;
        let tbs = &cert.tbs_certificate;

        let spki = tbs.subject_public_key_info.to_der().map_err(der_error)?;
        let key_algorithm =
            KeyAlgorithm::of(&SubjectPublicKeyInfoRef::from_der(&spki).map_err(der_error)?);
        let subject_attributes = name_attributes(&tbs.subject);
        let issuer_attributes = name_attributes(&tbs.issuer);
        let self_issued = tbs.subject == tbs.issuer;
        let self_signed = self_issued && is_signed_by(der, &spki);

        let subject_alt_names = match tbs.get::<SubjectAltName>() {
            Ok(Some((_, names))) => names.0.iter().map(san).collect(),
            Ok(None) => Vec::new(),
            Err(e) => return Err(ext_error("subjectAltName", &e)),
        };
        let is_ca = match tbs.get::<BasicConstraints>() {
            Ok(found) => found.is_some_and(|(_, bc)| bc.ca),
            Err(e) => return Err(ext_error("basicConstraints", &e)),
        };
        let extended_key_usage = match tbs.get::<ExtendedKeyUsage>() {
            Ok(found) => found
                .map(|(_, eku)| eku.0.iter().map(eku_name).collect())
                .unwrap_or_default(),
            Err(e) => return Err(ext_error("extendedKeyUsage", &e)),
        };

        let not_before = tbs.validity.not_before.to_unix_duration().as_secs();
        let not_after = tbs.validity.not_after.to_unix_duration().as_secs();
        Ok(CertInfo {
            subject_cn: subject_attributes
                .iter()
                .find(|a| a.name == "CN")
                .map(|a| a.value.clone()),
            subject: join(&subject_attributes),
            issuer: join(&issuer_attributes),
            subject_attributes,
            issuer_attributes,
            serial: serial_hex(tbs.serial_number.as_bytes()),
            subject_alt_names,
            not_before,
            not_after,
            not_before_utc: rfc3339(not_before),
            not_after_utc: rfc3339(not_after),
            self_issued,
            self_signed,
            is_ca,
            key_algorithm,
            signature_algorithm: signature_name(&cert.signature_algorithm.oid),
            extended_key_usage,
            fingerprint_sha256: asn1::hex_colons(&Sha256::digest(der)),
            spki,
        })
    }

    /// Reads every certificate in a PEM input (or one raw DER certificate), in order.
    pub fn from_pem(input: &[u8]) -> Result<Vec<Self>, InspectError> {
        pem::parse_certificates_pem_or_der(input)?
            .iter()
            .map(|der| Self::from_der(der.as_ref()))
            .collect()
    }

    /// The subject public key as DER `SubjectPublicKeyInfo`.
    #[must_use]
    pub fn public_key_der(&self) -> &[u8] {
        &self.spki
    }

    /// The validity period, for [`crate::schedule::RenewalSchedule`].
    #[must_use]
    pub fn validity(&self) -> Validity {
        Validity::new(self.not_before, self.not_after)
    }

    /// The expiry judgement at `now` with an expiring-soon threshold of `warn_before`
    /// seconds ([`DEFAULT_WARN_BEFORE`] is 30 days).
    #[must_use]
    pub fn expiry(&self, now: u64, warn_before: u64) -> Expiry {
        let seconds = i128::from(self.not_after) - i128::from(now);
        let seconds_until_expiry =
            i64::try_from(seconds).unwrap_or(if seconds < 0 { i64::MIN } else { i64::MAX });
        let expiring_soon = u128::from(self.not_after) < u128::from(now) + u128::from(warn_before);
        let state = if now < self.not_before {
            ExpiryState::NotYetValid
        } else if now > self.not_after {
            ExpiryState::Expired
        } else if expiring_soon {
            ExpiryState::ExpiringSoon
        } else {
            ExpiryState::Valid
        };
        Expiry {
            state,
            seconds_until_expiry,
            days_until_expiry: seconds_until_expiry.div_euclid(86_400),
            expiring_soon,
            warn_before,
        }
    }
}

/// Every certificate in `input` (PEM, or one DER certificate) with its expiry at `now`.
pub fn inspect(input: &[u8], now: u64, warn_before: u64) -> Result<Vec<Report>, InspectError> {
    Ok(CertInfo::from_pem(input)?
        .into_iter()
        .map(|certificate| Report {
            expiry: certificate.expiry(now, warn_before),
            certificate,
            now,
        })
        .collect())
}

/// Whether the signed structure `signed_der` (a certificate or a CSR) carries a valid
/// signature by the key in the DER `SubjectPublicKeyInfo` `spki_der`. Uses rustls-webpki's
/// *ring* algorithm table (ECDSA P-256/P-384, Ed25519, RSA PKCS#1 and PSS, 2048–8192 bits);
/// any other algorithm answers `false`.
#[must_use]
pub fn is_signed_by(signed_der: &[u8], spki_der: &[u8]) -> bool {
    let Ok(parts) = asn1::split_signed(signed_der) else {
        return false;
    };
    let Ok(spki) = SubjectPublicKeyInfoRef::from_der(spki_der) else {
        return false;
    };
    let Ok(key_alg) = spki.algorithm.to_der() else {
        return false;
    };
    let Ok(key_alg) = asn1::tlv_contents(&key_alg) else {
        return false;
    };
    let Some(public_key) = spki.subject_public_key.as_bytes() else {
        return false;
    };
    webpki::ALL_VERIFICATION_ALGS
        .iter()
        .filter(|alg| {
            alg.signature_alg_id().as_ref() == parts.algorithm
                && alg.public_key_alg_id().as_ref() == key_alg
        })
        .any(|alg| {
            alg.verify_signature(public_key, parts.tbs, parts.signature)
                .is_ok()
        })
}

/// RFC 3339 UTC for a Unix time (`9999-12-31T23:59:59Z` at most).
#[must_use]
pub fn rfc3339(unix: u64) -> String {
    match DateTime::from_unix_duration(Duration::from_secs(unix)) {
        Ok(dt) => dt.to_string(),
        Err(_) => format!("@{unix}"),
    }
}

fn ext_error(name: &'static str, e: &x509_cert::der::Error) -> InspectError {
    InspectError::Extension {
        name,
        reason: e.to_string(),
    }
}

fn name_attributes(name: &Name) -> Vec<NameAttribute> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .map(|atv| NameAttribute {
            name: attribute_name(&atv.oid),
            value: attribute_value(&atv.value),
        })
        .collect()
}

fn join(attributes: &[NameAttribute]) -> String {
    attributes
        .iter()
        .map(|a| format!("{}={}", a.name, a.value))
        .collect::<Vec<_>>()
        .join(", ")
}

fn attribute_name(oid: &ObjectIdentifier) -> String {
    let name = match oid.to_string().as_str() {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.42" => "GN",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        other => return other.to_owned(),
    };
    name.to_owned()
}

fn attribute_value(value: &Any) -> String {
    let text = match value.tag() {
        Tag::Utf8String => Utf8StringRef::try_from(value).ok().map(|s| s.to_string()),
        Tag::PrintableString => PrintableStringRef::try_from(value)
            .ok()
            .map(|s| s.to_string()),
        Tag::Ia5String => Ia5StringRef::try_from(value).ok().map(|s| s.to_string()),
        Tag::TeletexString => TeletexStringRef::try_from(value)
            .ok()
            .map(|s| s.to_string()),
        Tag::BmpString => value
            .to_der()
            .ok()
            .and_then(|d| BmpString::from_der(&d).ok())
            .map(|s| s.to_string()),
        _ => None,
    };
    text.unwrap_or_else(|| {
        let der = value.to_der().unwrap_or_default();
        format!("#{}", asn1::hex(&der))
    })
}

fn san(name: &GeneralName) -> San {
    match name {
        GeneralName::DnsName(v) => San::Dns(v.to_string()),
        GeneralName::UniformResourceIdentifier(v) => San::Uri(v.to_string()),
        GeneralName::Rfc822Name(v) => San::Email(v.to_string()),
        GeneralName::IpAddress(octets) => match octets.as_bytes().len() {
            4 => {
                let mut a = [0u8; 4];
                a.copy_from_slice(octets.as_bytes());
                San::Ip(IpAddr::from(a))
            }
            16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(octets.as_bytes());
                San::Ip(IpAddr::from(a))
            }
            _ => San::Other { kind: "iPAddress" },
        },
        GeneralName::OtherName(_) => San::Other { kind: "otherName" },
        GeneralName::DirectoryName(_) => San::Other {
            kind: "directoryName",
        },
        GeneralName::EdiPartyName(_) => San::Other {
            kind: "ediPartyName",
        },
        GeneralName::RegisteredId(_) => San::Other {
            kind: "registeredID",
        },
    }
}

fn eku_name(oid: &ObjectIdentifier) -> String {
    let name = match oid.to_string().as_str() {
        "1.3.6.1.5.5.7.3.1" => "serverAuth",
        "1.3.6.1.5.5.7.3.2" => "clientAuth",
        "1.3.6.1.5.5.7.3.3" => "codeSigning",
        "1.3.6.1.5.5.7.3.4" => "emailProtection",
        "1.3.6.1.5.5.7.3.8" => "timeStamping",
        "1.3.6.1.5.5.7.3.9" => "OCSPSigning",
        "2.5.29.37.0" => "anyExtendedKeyUsage",
        other => return other.to_owned(),
    };
    name.to_owned()
}

fn signature_name(oid: &ObjectIdentifier) -> String {
    let name = match oid.to_string().as_str() {
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "RSASSA-PSS",
        "1.3.101.112" => "Ed25519",
        "1.3.101.113" => "Ed448",
        other => return other.to_owned(),
    };
    name.to_owned()
}

/// The serial as openssl prints it: upper-case hex of the two's-complement bytes, without
/// the sign-padding zero byte.
fn serial_hex(bytes: &[u8]) -> String {
    let trimmed = match bytes {
        [0, next, ..] if *next >= 0x80 => &bytes[1..],
        _ => bytes,
    };
    asn1::hex(trimmed).to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_hex_drops_only_the_sign_padding_byte() {
        assert_eq!(serial_hex(&[0x00, 0x80, 0x01]), "8001");
        assert_eq!(serial_hex(&[0x01, 0x00]), "0100");
        assert_eq!(serial_hex(&[0x04]), "04");
    }

    #[test]
    fn rfc3339_formats_epoch_and_far_future() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_735_689_600), "2025-01-01T00:00:00Z");
        assert_eq!(rfc3339(u64::MAX), format!("@{}", u64::MAX));
    }

    #[test]
    fn is_signed_by_is_false_for_garbage() {
        assert!(!is_signed_by(b"not der", b"nor this"));
        assert!(!is_signed_by(&[], &[]));
    }

    #[test]
    fn unknown_oids_print_dotted() {
        let oid = ObjectIdentifier::new_unwrap("1.2.3.4");
        assert_eq!(attribute_name(&oid), "1.2.3.4");
        assert_eq!(eku_name(&oid), "1.2.3.4");
        assert_eq!(signature_name(&oid), "1.2.3.4");
    }
}
