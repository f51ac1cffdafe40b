//! Cloud provisioning: a new key and CSR for every renewal, sent to a certificate authority's
//! API with an access token from the [`TokenKeeper`] (retried once after a 401 with a
//! refreshed token), the answer read as the new certificate.

use latchkey_oauth_core::cloud::ApiError;
use latchkey_oauth_core::cloud::legrand::{
    AppCredentials, LegrandApi, Plant, parse_ca_chain, parse_issued_certificate,
};
use latchkey_oauth_core::http::{HttpRequest, HttpResponse};
use latchkey_oauth_core::secret::Secret;
use latchkey_pki::key::{KeyType, PrivateKey};
use latchkey_pki::request::{Csr, RequestParams};

use super::source::{CertifiedPair, OsRandom, RenewalSource, SourceError};
use crate::keeper::{KeeperError, TokenKeeper};

/// How one certificate authority's API turns a CSR into a certificate: the request to
/// send and how to read the answer. Pure: the [`CloudSource`] performs the call.
pub trait CertificateIssuer: Send + Sync + 'static {
    /// The request asking for a certificate for `csr_base64_der` (the CSR's DER in base64,
    /// no PEM armour), authorized with `token` (and `app_token`, when
    /// [`app_token_request`](Self::app_token_request) got one). Called again with a
    /// refreshed token for the one retry after a 401.
    fn request(
        &self,
        token: &Secret,
        app_token: Option<&Secret>,
        csr_base64_der: &str,
    ) -> HttpRequest;

    /// A request for an application token to obtain before each certificate call, when the
    /// CA wants one (BTicino's C100X app: client credentials); none by default.
    ///
    /// # Errors
    /// [`ApiError`] when the credentials cannot make a request.
    fn app_token_request(&self) -> Option<Result<HttpRequest, ApiError>> {
        None
    }

    /// The application token in the answer to [`app_token_request`](Self::app_token_request).
    ///
    /// # Errors
    /// [`ApiError`] for a refusal or an answer without a token.
    fn app_token(&self, response: &HttpResponse) -> Result<Secret, ApiError> {
        let _ = response;
        Err(ApiError::Profile {
            missing: "application credentials",
        })
    }

    /// The certificate PEM in the answer (the leaf, then any chain the service sends).
    ///
    /// # Errors
    /// [`ApiError`] for a failed call or an answer without a certificate.
    fn certificate(&self, response: &HttpResponse) -> Result<String, ApiError>;
}

/// BTicino/Legrand's client-certificate issuance (`POST …/clientCerts`) for one plant, with
/// the app flavour's template (`LegrandApi::issue_certificate`, `parse_issued_certificate`).
#[derive(Debug, Clone)]
pub struct LegrandIssuer {
    api: LegrandApi,
    plant: Plant,
    app: Option<AppCredentials>,
}

impl LegrandIssuer {
    /// Certificates for `plant` through `api`.
    #[must_use]
    pub fn new(api: LegrandApi, plant: Plant) -> Self {
        LegrandIssuer {
            api,
            plant,
            app: None,
        }
    }

    /// Asks as the C100X app does: an application token from `app` in `Authorization`, the
    /// user's token in `UserToken` (`AppCredentials`).
    #[must_use]
    pub fn with_app_credentials(mut self, app: AppCredentials) -> Self {
        self.app = Some(app);
        self
    }
}

impl CertificateIssuer for LegrandIssuer {
    fn request(
        &self,
        token: &Secret,
        app_token: Option<&Secret>,
        csr_base64_der: &str,
    ) -> HttpRequest {
        self.api
            .issue_certificate(token, app_token, csr_base64_der, &self.plant)
    }

    fn app_token_request(&self) -> Option<Result<HttpRequest, ApiError>> {
        self.app.as_ref().map(AppCredentials::token_request)
    }

    fn app_token(&self, response: &HttpResponse) -> Result<Secret, ApiError> {
        match &self.app {
            Some(app) => app.parse_token(response),
            None => Err(ApiError::Profile {
                missing: "application credentials",
            }),
        }
    }

    fn certificate(&self, response: &HttpResponse) -> Result<String, ApiError> {
        parse_issued_certificate(response)
    }
}

/// A certificate from a cloud CA for every renewal: a new key (P-256 by default, from the
/// OS random source), a CSR for the configured subject and names, and an authorized call
/// through the token keeper.
#[derive(Debug)]
pub struct CloudSource<I> {
    keeper: TokenKeeper,
    issuer: I,
    request: RequestParams,
    key_type: KeyType,
}

impl<I: CertificateIssuer> CloudSource<I> {
    /// Certificates for `request` (subject, SANs, usages) from `issuer`, authorized by
    /// `keeper`.
    #[must_use]
    pub fn new(keeper: TokenKeeper, issuer: I, request: RequestParams) -> Self {
        CloudSource {
            keeper,
            issuer,
            request,
            key_type: KeyType::P256,
        }
    }

    /// Another key type for new keys.
    #[must_use]
    pub fn with_key_type(mut self, key_type: KeyType) -> Self {
        self.key_type = key_type;
        self
    }
}

impl CloudSource<LegrandIssuer> {
    /// The BTicino/Legrand SIP client certificate of `client_id` on `gateway_id` in
    /// `plant`: the CSR Legrand's CA expects (`RequestParams::legrand`: the flavour's OU,
    /// the owner's e-mail, the SAN `sip:<ownerId>_<clientId>@<gatewayId>.bs.iotleg.com`),
    /// issued with the flavour's template. Validate what it gives against Legrand's CA
    /// chain ([`legrand_ca_chain`]) with `Usage::ClientAuth`.
    #[must_use]
    pub fn legrand(
        keeper: TokenKeeper,
        api: LegrandApi,
        plant: Plant,
        client_id: &str,
        gateway_id: &str,
    ) -> Self {
        let request = RequestParams::legrand(
            client_id,
            &plant.owner_id,
            gateway_id,
            &plant.owner_email,
            api.certificate_ou(),
        );
        CloudSource::new(keeper, LegrandIssuer::new(api, plant), request)
    }

    /// Certificates asked for as the C100X app does (`LegrandIssuer::with_app_credentials`).
    #[must_use]
    pub fn with_app_credentials(mut self, app: AppCredentials) -> Self {
        self.issuer = self.issuer.with_app_credentials(app);
        self
    }
}

impl<I: CertificateIssuer> RenewalSource for CloudSource<I> {
    async fn renew(&self, _now: u64) -> Result<CertifiedPair, SourceError> {
        let (key, csr) = self.key_and_csr()?;
        let app_token = match self.issuer.app_token_request() {
            None => None,
            Some(request) => {
                let request = request.map_err(|e| SourceError::Api(e.to_string()))?;
                let response = self.keeper.send(&request).await.map_err(keeper_error)?;
                let token = self
                    .issuer
                    .app_token(&response)
                    .map_err(|e| SourceError::Api(format!("application token: {e}")))?;
                Some(token)
            }
        };
        let response = self
            .keeper
            .send_authorized_with(|token| self.issuer.request(token, app_token.as_ref(), &csr))
            .await
            .map_err(keeper_error)?;
        let cert = self
            .issuer
            .certificate(&response)
            .map_err(|e| SourceError::Api(e.to_string()))?;
        Ok(CertifiedPair::new(
            cert.into_bytes(),
            key.to_pem().as_bytes().to_vec(),
        ))
    }
}

impl<I> CloudSource<I> {
    /// A new key and its CSR in the API's base64-DER form.
    fn key_and_csr(&self) -> Result<(PrivateKey, String), SourceError> {
        let mut rng = OsRandom::default();
        let key = PrivateKey::generate(self.key_type, &mut rng);
        rng.check()?;
        let key = key.map_err(|e| SourceError::Build(e.into()))?;
        let csr = Csr::create(&self.request, &key).map_err(|e| SourceError::Build(e.into()))?;
        Ok((key, csr.to_der_base64()))
    }
}

/// Legrand's CA chain (`GET …/CACerts`) as PEM, fetched through `keeper`: the roots that
/// certificates from [`CloudSource::legrand`] are validated against.
///
/// # Errors
/// No token, a transport failure, or an answer without a chain.
pub async fn legrand_ca_chain(
    keeper: &TokenKeeper,
    api: &LegrandApi,
) -> Result<String, SourceError> {
    let response = keeper
        .send_authorized_with(|token| api.ca_chain(token))
        .await
        .map_err(keeper_error)?;
    parse_ca_chain(&response).map_err(|e| SourceError::Api(e.to_string()))
}

fn keeper_error(e: KeeperError) -> SourceError {
    match e {
        KeeperError::Transport(e) => SourceError::Api(e.to_string()),
        other => SourceError::Token(other),
    }
}
