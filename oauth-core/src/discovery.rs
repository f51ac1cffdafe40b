//! Endpoint discovery for the `generic` profile: OpenID Connect Discovery 1.0 §4 and
//! RFC 8414 authorization server metadata.

use core::fmt;

use serde_json::Value;

use crate::http::{HttpRequest, HttpResponse, Method};
use crate::profile::{Endpoints, check_url};

/// Why discovery failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The metadata URL answered with an error status.
    Status(u16),
    /// The body is not a JSON object.
    NotJson,
    /// The document's `issuer` differs from the one asked for (OpenID Connect Discovery
    /// §4.3: such a document must not be used).
    IssuerMismatch {
        /// The issuer asked for.
        expected: String,
        /// The issuer in the document.
        found: String,
    },
    /// A required endpoint is missing or not https.
    Endpoint {
        /// The metadata field.
        field: &'static str,
    },
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiscoveryError::Status(s) => write!(f, "discovery document answered HTTP {s}"),
            DiscoveryError::NotJson => f.write_str("discovery document is not a JSON object"),
            DiscoveryError::IssuerMismatch { expected, found } => write!(
                f,
                "discovery document names issuer {found:?}, not {expected:?}; refusing it"
            ),
            DiscoveryError::Endpoint { field } => write!(
                f,
                "discovery document has no usable `{field}` (absolute https URL required)"
            ),
        }
    }
}

impl std::error::Error for DiscoveryError {}

/// `GET {issuer}/.well-known/openid-configuration`.
#[must_use]
pub fn discovery_request(issuer: &str) -> HttpRequest {
    let mut req = HttpRequest::new(
        Method::Get,
        format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        ),
    );
    req.push_header("Accept", "application/json");
    req
}

/// Reads the endpoints from a discovery document fetched for `issuer`.
///
/// # Errors
/// [`DiscoveryError`] for an error status, a non-JSON body, an issuer mismatch, or a
/// missing or non-https authorization or token endpoint.
pub fn parse_discovery(response: &HttpResponse, issuer: &str) -> Result<Endpoints, DiscoveryError> {
    if !(200..300).contains(&response.status) {
        return Err(DiscoveryError::Status(response.status));
    }
    let v: Value = serde_json::from_slice(&response.body).map_err(|_| DiscoveryError::NotJson)?;
    if !v.is_object() {
        return Err(DiscoveryError::NotJson);
    }
    let found = v.get("issuer").and_then(Value::as_str).unwrap_or_default();
    if found.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(DiscoveryError::IssuerMismatch {
            expected: issuer.to_owned(),
            found: found.to_owned(),
        });
    }
    let url = |field: &'static str, required: bool| -> Result<Option<String>, DiscoveryError> {
        match v.get(field).and_then(Value::as_str) {
            Some(u) if check_url("endpoint", u).is_ok() => Ok(Some(u.to_owned())),
            Some(_) => Err(DiscoveryError::Endpoint { field }),
            None if required => Err(DiscoveryError::Endpoint { field }),
            None => Ok(None),
        }
    };
    Ok(Endpoints {
        authorization: url("authorization_endpoint", true)?,
        token: url("token_endpoint", true)?,
        device_authorization: url("device_authorization_endpoint", false)?,
        b2c_policy: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"issuer":"https://idp.example","authorization_endpoint":"https://idp.example/auth","token_endpoint":"https://idp.example/token","device_authorization_endpoint":"https://idp.example/device/auth"}"#;

    #[test]
    fn discovery_url_is_under_well_known() {
        assert_eq!(
            discovery_request("https://idp.example/").url,
            "https://idp.example/.well-known/openid-configuration"
        );
    }

    #[test]
    fn endpoints_are_read_from_the_document() {
        let e = parse_discovery(&HttpResponse::new(200, DOC), "https://idp.example").unwrap();
        assert_eq!(e.token.as_deref(), Some("https://idp.example/token"));
        assert_eq!(
            e.device_authorization.as_deref(),
            Some("https://idp.example/device/auth")
        );
    }

    /// OpenID Connect Discovery 1.0 §4.3: the issuer must match exactly.
    #[test]
    fn a_document_for_another_issuer_is_refused() {
        let e = parse_discovery(&HttpResponse::new(200, DOC), "https://other.example").unwrap_err();
        assert!(matches!(e, DiscoveryError::IssuerMismatch { .. }));
    }

    #[test]
    fn plain_http_endpoints_are_refused() {
        let doc = DOC.replace("https://idp.example/token", "http://idp.example/token");
        let e = parse_discovery(&HttpResponse::new(200, doc), "https://idp.example").unwrap_err();
        assert_eq!(
            e,
            DiscoveryError::Endpoint {
                field: "token_endpoint"
            }
        );
    }
}
