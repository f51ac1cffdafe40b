//! The files the BTicino Node.js client (`s-dimaio/BTicinoDoorEntry`) keeps, written and read
//! so users can move between it and latchkey: `sip_account.json` (`{storedAt, payload}`
//! around the SIP account; `payload` or `result` or the account itself are read) and
//! `client-certs.json` (`{cert, key}` PEM). Both hold secrets: the driver writes them 0600.

use serde_json::{Value, json};

use crate::secret::Secret;

use super::ApiError;
use super::setup::Registration;

/// A SIP account as another client saved it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SavedAccount {
    /// `<user>@<gateway>.bs.iotleg.com` (a `sip:` prefix removed).
    pub sip_uri: String,
    /// SIP user name (from the URI when not saved).
    pub username: String,
    /// SIP password.
    pub password: Secret,
    /// Client id, when saved.
    pub client_id: Option<String>,
    /// Plant id, when saved.
    pub plant_id: Option<String>,
    /// Gateway id (from the URI's host when not saved).
    pub gateway_id: Option<String>,
}

/// `sip_account.json` for `reg` (`None` until the account is registered), stamped `now_iso`.
#[must_use]
pub fn sip_account_json(reg: &Registration, now_iso: &str) -> Option<String> {
    let account = reg.account.as_ref()?;
    let doc = json!({
        "storedAt": now_iso,
        "payload": {
            "clientId": reg.client_id,
            "clientName": reg.client_name,
            "sipUri": account.sip_uri,
            "username": account.username,
            "sipPassword": account.password.expose(),
            "sipId": account.sip_id,
            "plantId": reg.plant.as_ref().map(|p| p.id.clone()),
            "gatewayId": reg.gateway_id,
            "userOid": reg.user_oid,
        },
    });
    serde_json::to_string_pretty(&doc).ok()
}

/// `client-certs.json`: `{cert, key}` PEM.
#[must_use]
pub fn client_certs_json(cert_pem: &str, key_pem: &str) -> String {
    serde_json::to_string_pretty(&json!({ "cert": cert_pem, "key": key_pem })).unwrap_or_default()
}

/// Reads a saved `sip_account.json` (wrapped in `payload` or `result`, or bare).
///
/// # Errors
/// [`ApiError::Shape`] naming what is missing.
pub fn parse_sip_account_file(bytes: &[u8]) -> Result<SavedAccount, ApiError> {
    let what = "sip_account.json";
    let doc: Value =
        serde_json::from_slice(bytes).map_err(|_| ApiError::shape(what, "not JSON"))?;
    let account = doc
        .get("payload")
        .or_else(|| doc.get("result"))
        .unwrap_or(&doc);
    let text = |k: &str| {
        account
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let sip_uri = text("sipUri")
        .ok_or(ApiError::shape(what, "no sipUri"))?
        .trim_start_matches("sip:")
        .to_owned();
    let password = text("sipPassword").ok_or(ApiError::shape(what, "no sipPassword"))?;
    let (user, host) = sip_uri
        .split_once('@')
        .ok_or(ApiError::shape(what, "sipUri has no @"))?;
    let gateway_from_uri = host.split(".bs.").next().filter(|g| *g != host);
    Ok(SavedAccount {
        username: text("username").unwrap_or_else(|| user.to_owned()),
        password: Secret::new(password),
        client_id: text("clientId").or_else(|| text("sipClientId")),
        plant_id: text("plantId"),
        gateway_id: text("gatewayId").or_else(|| gateway_from_uri.map(str::to_owned)),
        sip_uri,
    })
}

/// Reads `client-certs.json`: the certificate and key PEM.
///
/// # Errors
/// [`ApiError::Shape`] naming what is missing.
pub fn parse_client_certs_file(bytes: &[u8]) -> Result<(String, Secret), ApiError> {
    let what = "client-certs.json";
    let doc: Value =
        serde_json::from_slice(bytes).map_err(|_| ApiError::shape(what, "not JSON"))?;
    let get = |k: &str| {
        doc.get(k)
            .and_then(Value::as_str)
            .filter(|s| s.contains("-----BEGIN"))
    };
    let cert = get("cert").ok_or(ApiError::shape(what, "no PEM cert"))?;
    let key = get("key").ok_or(ApiError::shape(what, "no PEM key"))?;
    Ok((cert.to_owned(), Secret::new(key)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::legrand::setup::{StoredAccount, StoredPlant};

    fn registration() -> Registration {
        let mut r = Registration::new("latchkey", &[5; 32]);
        r.user_oid = Some("oid-9".into());
        r.gateway_id = Some("gw-1".into());
        r.account = Some(
            serde_json::from_value::<StoredAccount>(json!({
                "sip_id": "s-1",
                "sip_uri": "oid-9_1@gw-1.bs.iotleg.com",
                "username": "oid-9_1",
                "password": "pw"
            }))
            .unwrap(),
        );
        r.plant = Some(serde_json::from_value::<StoredPlant>(json!({
            "id": "p-1", "name": "Home", "country": "IT", "kind": "r", "owner_id": "oid-9", "owner_email": "e@x"
        })).unwrap());
        r
    }

    #[test]
    fn written_files_read_back_and_carry_what_the_node_client_reads() {
        let reg = registration();
        let text = sip_account_json(&reg, "2026-11-23T00:00:00Z").unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["payload"]["clientId"], reg.client_id.as_str());
        assert_eq!(v["payload"]["plantId"], "p-1");
        let back = parse_sip_account_file(text.as_bytes()).unwrap();
        assert_eq!(back.sip_uri, "oid-9_1@gw-1.bs.iotleg.com");
        assert_eq!(back.password.expose(), "pw");
        assert_eq!(back.gateway_id.as_deref(), Some("gw-1"));
        let certs = client_certs_json(
            "-----BEGIN CERTIFICATE-----\nA\n",
            "-----BEGIN PRIVATE KEY-----\nB\n",
        );
        let (cert, key) = parse_client_certs_file(certs.as_bytes()).unwrap();
        assert!(cert.contains("CERTIFICATE"));
        assert!(key.expose().contains("PRIVATE KEY"));
    }

    #[test]
    fn bare_and_result_wrapped_accounts_are_read_and_the_gateway_comes_from_the_uri() {
        for doc in [
            r#"{"sipUri":"sip:u_1@gw-7.bs.iotleg.com","sipPassword":"p"}"#,
            r#"{"result":{"sipUri":"u_1@gw-7.bs.iotleg.com","sipPassword":"p"}}"#,
        ] {
            let a = parse_sip_account_file(doc.as_bytes()).unwrap();
            assert_eq!(a.username, "u_1");
            assert_eq!(a.gateway_id.as_deref(), Some("gw-7"));
        }
        assert!(
            parse_sip_account_file(br#"{"sipUri":"u@h"}"#)
                .unwrap_err()
                .to_string()
                .contains("no sipPassword")
        );
        assert!(parse_client_certs_file(br#"{"cert":"x","key":"y"}"#).is_err());
        assert!(sip_account_json(&Registration::new("x", &[1; 32]), "t").is_none());
    }
}
