//! Subjects and subject alternative names: what a CSR or certificate names.

use core::fmt;
use core::net::IpAddr;
use core::str::FromStr;

use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::der::asn1::{
    Any, Ia5String, ObjectIdentifier, OctetString, PrintableStringRef, SetOfVec, Utf8StringRef,
};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use super::RequestError;

/// A subject attribute type this crate can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttributeType {
    /// `CN`, commonName (2.5.4.3).
    CommonName,
    /// `OU`, organizationalUnitName (2.5.4.11).
    OrganizationalUnit,
    /// `O`, organizationName (2.5.4.10).
    Organization,
    /// `L`, localityName (2.5.4.7).
    Locality,
    /// `ST`, stateOrProvinceName (2.5.4.8).
    State,
    /// `C`, countryName (2.5.4.6): two letters.
    Country,
    /// `emailAddress` (PKCS #9, 1.2.840.113549.1.9.1).
    EmailAddress,
}

impl AttributeType {
    /// The short name openssl uses (`CN`, `OU`, `O`, `L`, `ST`, `C`, `emailAddress`).
    #[must_use]
    pub fn short_name(self) -> &'static str {
        match self {
            AttributeType::CommonName => "CN",
            AttributeType::OrganizationalUnit => "OU",
            AttributeType::Organization => "O",
            AttributeType::Locality => "L",
            AttributeType::State => "ST",
            AttributeType::Country => "C",
            AttributeType::EmailAddress => "emailAddress",
        }
    }

    /// The type for a short name, case-insensitively (`email` and `E` are accepted for
    /// `emailAddress`).
    #[must_use]
    pub fn from_short_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "cn" => AttributeType::CommonName,
            "ou" => AttributeType::OrganizationalUnit,
            "o" => AttributeType::Organization,
            "l" => AttributeType::Locality,
            "st" => AttributeType::State,
            "c" => AttributeType::Country,
            "emailaddress" | "email" | "e" => AttributeType::EmailAddress,
            _ => return None,
        })
    }

    fn oid(self) -> ObjectIdentifier {
        ObjectIdentifier::new_unwrap(match self {
            AttributeType::CommonName => "2.5.4.3",
            AttributeType::OrganizationalUnit => "2.5.4.11",
            AttributeType::Organization => "2.5.4.10",
            AttributeType::Locality => "2.5.4.7",
            AttributeType::State => "2.5.4.8",
            AttributeType::Country => "2.5.4.6",
            AttributeType::EmailAddress => "1.2.840.113549.1.9.1",
        })
    }

    fn max_len(self) -> usize {
        match self {
            AttributeType::CommonName
            | AttributeType::OrganizationalUnit
            | AttributeType::Organization => 64,
            AttributeType::Locality | AttributeType::State => 128,
            AttributeType::Country => 2,
            AttributeType::EmailAddress => 255,
        }
    }
}

/// A subject: attributes in order, one per RDN.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DistinguishedName {
    attributes: Vec<(AttributeType, String)>,
}

impl DistinguishedName {
    /// An empty subject.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A subject with just a common name.
    #[must_use]
    pub fn common_name(cn: &str) -> Self {
        Self::new().with(AttributeType::CommonName, cn)
    }

    /// Appends an attribute (builder form).
    #[must_use]
    pub fn with(mut self, kind: AttributeType, value: &str) -> Self {
        self.push(kind, value);
        self
    }

    /// Appends an attribute. Values are checked when the request is built.
    pub fn push(&mut self, kind: AttributeType, value: &str) {
        self.attributes.push((kind, value.to_owned()));
    }

    /// The attributes, in order.
    #[must_use]
    pub fn attributes(&self) -> &[(AttributeType, String)] {
        &self.attributes
    }

    /// The first common name, if any.
    #[must_use]
    pub fn cn(&self) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| *k == AttributeType::CommonName)
            .map(|(_, v)| v.as_str())
    }

    /// The subject Legrand's CA expects (FACTS §1.3): `CN=<client_id>, OU=<unit>,
    /// O=LEGRAND, L=Paris, ST=France, C=FR, emailAddress=<owner_email>`, where `unit` is
    /// `DIY` for the Door Entry app and `C100X` for the Classe 100X app.
    #[must_use]
    pub fn legrand(client_id: &str, unit: &str, owner_email: &str) -> Self {
        Self::common_name(client_id)
            .with(AttributeType::OrganizationalUnit, unit)
            .with(AttributeType::Organization, "LEGRAND")
            .with(AttributeType::Locality, "Paris")
            .with(AttributeType::State, "France")
            .with(AttributeType::Country, "FR")
            .with(AttributeType::EmailAddress, owner_email)
    }

    pub(super) fn to_name(&self) -> Result<Name, RequestError> {
        let mut rdns = Vec::with_capacity(self.attributes.len());
        for (kind, value) in &self.attributes {
            let invalid = |reason: &str| RequestError::InvalidAttribute {
                attribute: kind.short_name(),
                reason: reason.to_owned(),
            };
            if value.is_empty() {
                return Err(invalid("empty value"));
            }
            if value.chars().count() > kind.max_len() {
                return Err(invalid(&format!(
                    "longer than {} characters",
                    kind.max_len()
                )));
            }
            let any = match kind {
                AttributeType::Country => {
                    if value.len() != 2 || !value.bytes().all(|b| b.is_ascii_alphabetic()) {
                        return Err(invalid("must be a two-letter country code"));
                    }
                    Any::encode_from(&PrintableStringRef::new(value).map_err(der(invalid))?)
                }
                AttributeType::EmailAddress => {
                    if !value.contains('@') {
                        return Err(invalid("not an e-mail address"));
                    }
                    Any::encode_from(
                        &Ia5String::new(value).map_err(|_| invalid("must be ASCII (IA5String)"))?,
                    )
                }
                _ => Any::encode_from(&Utf8StringRef::new(value).map_err(der(invalid))?),
            }
            .map_err(der(invalid))?;
            let atv = AttributeTypeAndValue {
                oid: kind.oid(),
                value: any,
            };
            let set = SetOfVec::try_from(vec![atv]).map_err(der(invalid))?;
            rdns.push(RelativeDistinguishedName(set));
        }
        Ok(RdnSequence(rdns))
    }
}

impl FromStr for DistinguishedName {
    type Err = RequestError;

    /// openssl's `-subj` form: `/CN=client/OU=DIY/O=LEGRAND/C=FR/emailAddress=a@b.c`, in
    /// order; `\/` escapes a slash inside a value.
    fn from_str(s: &str) -> Result<Self, RequestError> {
        let bad = |reason: String| RequestError::InvalidSubject { reason };
        let rest = s
            .strip_prefix('/')
            .ok_or_else(|| bad("must start with '/' (e.g. /CN=name/O=org)".to_owned()))?;
        let mut parts = Vec::new();
        let mut current = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => current.push(chars.next().unwrap_or('\\')),
                '/' => parts.push(core::mem::take(&mut current)),
                _ => current.push(c),
            }
        }
        parts.push(current);
        let mut dn = DistinguishedName::new();
        for part in parts.iter().filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| bad(format!("'{part}' is not TYPE=value")))?;
            let kind = AttributeType::from_short_name(key.trim()).ok_or_else(|| {
                bad(format!(
                    "unknown attribute '{key}' (use CN, OU, O, L, ST, C, emailAddress)"
                ))
            })?;
            dn.push(kind, value);
        }
        if dn.attributes.is_empty() {
            return Err(bad("no attributes".to_owned()));
        }
        Ok(dn)
    }
}

/// A subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SubjectAltName {
    /// A DNS name (`*.` allowed as the whole left-most label).
    Dns(String),
    /// An IP address.
    Ip(IpAddr),
    /// A URI, e.g. `sip:<ownerId>_<clientId>@<gatewayId>.bs.iotleg.com`.
    Uri(String),
    /// An e-mail address (rfc822Name).
    Email(String),
}

impl SubjectAltName {
    /// The SIP URI Legrand's CA expects (FACTS §1.3):
    /// `sip:<owner_id>_<client_id>@<gateway_id>.bs.iotleg.com`.
    #[must_use]
    pub fn legrand_sip(owner_id: &str, client_id: &str, gateway_id: &str) -> Self {
        SubjectAltName::Uri(format!(
            "sip:{owner_id}_{client_id}@{gateway_id}.bs.iotleg.com"
        ))
    }

    pub(super) fn to_general_name(&self) -> Result<GeneralName, RequestError> {
        let invalid = |reason: &str| RequestError::InvalidSan {
            value: self.to_string(),
            reason: reason.to_owned(),
        };
        let ia5 = |s: &str| Ia5String::new(s).map_err(|_| invalid("must be ASCII"));
        Ok(match self {
            SubjectAltName::Dns(name) => {
                if !is_dns_name(name) {
                    return Err(invalid(
                        "not a DNS name (letters, digits, '-', dots; '*.' only as the first label)",
                    ));
                }
                GeneralName::DnsName(ia5(name)?)
            }
            SubjectAltName::Ip(ip) => {
                let bytes = match ip {
                    IpAddr::V4(v4) => v4.octets().to_vec(),
                    IpAddr::V6(v6) => v6.octets().to_vec(),
                };
                GeneralName::IpAddress(OctetString::new(bytes).map_err(der(invalid))?)
            }
            SubjectAltName::Uri(uri) => {
                let scheme_ok = uri.split_once(':').is_some_and(|(scheme, rest)| {
                    !scheme.is_empty()
                        && !rest.is_empty()
                        && scheme
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                });
                if !scheme_ok
                    || uri
                        .bytes()
                        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
                {
                    return Err(invalid("not a URI (scheme:rest, no spaces)"));
                }
                GeneralName::UniformResourceIdentifier(ia5(uri)?)
            }
            SubjectAltName::Email(addr) => {
                if addr.split('@').count() != 2 || addr.starts_with('@') || addr.ends_with('@') {
                    return Err(invalid("not an e-mail address"));
                }
                GeneralName::Rfc822Name(ia5(addr)?)
            }
        })
    }
}

impl fmt::Display for SubjectAltName {
    /// `dns:…`, `ip:…`, `uri:…` or `email:…` — the form [`FromStr`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubjectAltName::Dns(v) => write!(f, "dns:{v}"),
            SubjectAltName::Ip(v) => write!(f, "ip:{v}"),
            SubjectAltName::Uri(v) => write!(f, "uri:{v}"),
            SubjectAltName::Email(v) => write!(f, "email:{v}"),
        }
    }
}

impl FromStr for SubjectAltName {
    type Err = RequestError;

    /// `dns:name`, `ip:addr`, `uri:scheme:…`, `email:addr` (prefixes case-insensitive);
    /// a bare value is an IP address if it parses as one, else a DNS name.
    fn from_str(s: &str) -> Result<Self, RequestError> {
        let (prefix, rest) = s.split_once(':').unwrap_or(("", s));
        let san = match prefix.to_ascii_lowercase().as_str() {
            "dns" => SubjectAltName::Dns(rest.to_owned()),
            "uri" => SubjectAltName::Uri(rest.to_owned()),
            "email" => SubjectAltName::Email(rest.to_owned()),
            "ip" => SubjectAltName::Ip(rest.parse().map_err(|_| RequestError::InvalidSan {
                value: s.to_owned(),
                reason: "not an IP address".to_owned(),
            })?),
            _ => match s.parse::<IpAddr>() {
                Ok(ip) => SubjectAltName::Ip(ip),
                Err(_) => SubjectAltName::Dns(s.to_owned()),
            },
        };
        san.to_general_name()?;
        Ok(san)
    }
}

fn is_dns_name(name: &str) -> bool {
    let body = name.strip_prefix("*.").unwrap_or(name);
    !body.is_empty()
        && name.len() <= 253
        && body.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn der<'a>(
    invalid: impl Fn(&str) -> RequestError + 'a,
) -> impl Fn(x509_cert::der::Error) -> RequestError + 'a {
    move |e| invalid(&e.to_string())
}
