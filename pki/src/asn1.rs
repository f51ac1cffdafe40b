//! Small DER helpers and object identifiers shared by the modules (internal).
//!
//! Everything here works on borrowed input through the `der` crate that x509-cert re-exports,
//! so there is one ASN.1 implementation in the crate.

use x509_cert::der::asn1::{AnyRef, BitStringRef, ObjectIdentifier, UintRef};
use x509_cert::der::{self, Decode, Reader, SliceReader, Tag, Tagged};

/// `id-ecPublicKey` (RFC 5480).
pub(crate) const EC_PUBLIC_KEY: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `secp256r1` / `prime256v1` / P-256.
pub(crate) const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// `secp384r1` / P-384.
pub(crate) const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// `secp521r1` / P-521.
pub(crate) const SECP521R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
/// `id-Ed25519` (RFC 8410).
pub(crate) const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// `id-Ed448` (RFC 8410).
pub(crate) const ED448: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.113");
/// `rsaEncryption` (RFC 8017).
pub(crate) const RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// `id-RSASSA-PSS` (RFC 4055).
pub(crate) const RSASSA_PSS: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
/// `ecdsa-with-SHA256` (RFC 5758).
pub(crate) const ECDSA_WITH_SHA256: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

/// The three parts of a signed structure (certificate or CSR), borrowed from its encoding.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SignedParts<'a> {
    /// The signed data, tag and length included (what the signature covers).
    pub(crate) tbs: &'a [u8],
    /// The contents of the signature `AlgorithmIdentifier` (without its SEQUENCE header),
    /// the form rustls-webpki's algorithm tables compare against.
    pub(crate) algorithm: &'a [u8],
    /// The signature bits.
    pub(crate) signature: &'a [u8],
}

/// Splits `SEQUENCE { tbs, AlgorithmIdentifier, BIT STRING }` without re-encoding anything,
/// so the signature is checked over the exact bytes that were signed.
pub(crate) fn split_signed(input: &[u8]) -> der::Result<SignedParts<'_>> {
    let mut reader = SliceReader::new(input)?;
    let parts = reader.sequence(|r| {
        let tbs = r.tlv_bytes()?;
        let algorithm = AnyRef::decode(r)?;
        let signature = BitStringRef::decode(r)?;
        Ok((tbs, algorithm, signature))
    })?;
    let (tbs, algorithm, signature) = reader.finish(parts)?;
    if algorithm.tag() != Tag::Sequence {
        return Err(Tag::Sequence.value_error());
    }
    let signature = signature
        .as_bytes()
        .ok_or_else(|| Tag::BitString.value_error())?;
    Ok(SignedParts {
        tbs,
        algorithm: algorithm.value(),
        signature,
    })
}

/// The contents of a DER TLV (drops the tag and length).
pub(crate) fn tlv_contents(tlv: &[u8]) -> der::Result<&[u8]> {
    Ok(AnyRef::from_der(tlv)?.value())
}

/// The bit length of an RSA modulus from an `RSAPublicKey` encoding, or `None`.
pub(crate) fn rsa_modulus_bits(rsa_public_key: &[u8]) -> Option<u32> {
    let mut reader = SliceReader::new(rsa_public_key).ok()?;
    let modulus = reader
        .sequence(|r| {
            let n = UintRef::decode(r)?;
            let _e = UintRef::decode(r)?;
            Ok(n)
        })
        .ok()?;
    let bytes = modulus.as_bytes();
    let first = *bytes.first()?;
    let len = u32::try_from(bytes.len()).ok()?;
    Some((len - 1) * 8 + (8 - first.leading_zeros()))
}

/// Lower-case hex without separators.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Upper-case hex with `:` between bytes (the form `openssl x509 -fingerprint` prints).
pub(crate) fn hex_colons(bytes: &[u8]) -> String {
    let plain = hex(bytes).to_ascii_uppercase();
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, pair) in plain.as_bytes().chunks(2).enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(core::str::from_utf8(pair).unwrap_or("??"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_forms_match_openssl_style() {
        assert_eq!(hex(&[0x0a, 0xff]), "0aff");
        assert_eq!(hex_colons(&[0x0a, 0xff, 0x10]), "0A:FF:10");
        assert_eq!(hex_colons(&[]), "");
    }

    #[test]
    fn split_signed_rejects_garbage_and_trailing_bytes() {
        assert!(split_signed(&[]).is_err());
        assert!(split_signed(&[0x30, 0x00]).is_err());
        // SEQUENCE { SEQUENCE {}, SEQUENCE {}, BIT STRING (0 unused) } + trailing byte.
        let ok = [0x30, 0x07, 0x30, 0x00, 0x30, 0x00, 0x03, 0x01, 0x00];
        assert!(split_signed(&ok).is_ok());
        let mut trailing = ok.to_vec();
        trailing.push(0);
        assert!(split_signed(&trailing).is_err());
    }

    #[test]
    fn rsa_modulus_bits_counts_significant_bits() {
        // SEQUENCE { INTEGER 0x00ff.. (9 bits: 0x01ff), INTEGER 3 }
        let der = [0x30, 0x07, 0x02, 0x02, 0x01, 0xff, 0x02, 0x01, 0x03];
        assert_eq!(rsa_modulus_bits(&der), Some(9));
        assert_eq!(rsa_modulus_bits(&[0x30]), None);
    }
}
