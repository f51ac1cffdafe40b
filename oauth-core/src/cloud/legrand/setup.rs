//! BTicino device registration as one resumable, idempotent flow (FACTS.md §1.2–1.3):
//! pick the plant → find its gateway and locks → register a SIP account (client id in the
//! apps' format) → key + CSR with the Legrand subject and SAN → client certificate and the
//! CA chain.
//!
//! The flow is a state machine over a persisted [`Registration`]. Every fact is persisted
//! (an [`Step::Persist`] the driver writes atomically and acknowledges) *before* the step
//! that depends on it, so an interruption anywhere resumes without a duplicate:
//!
//! * the client id is chosen once and saved before the account is registered; on resume the
//!   gateway's account list is read first, and an account already carrying this client id is
//!   adopted, never registered twice;
//! * an account found without its password (the process died between the registration and
//!   the save) is deleted and registered again, as the password cannot be read back;
//! * the key is made and stored by the driver (it owns randomness and the 0600 file) before
//!   the CSR leaves, and reused on resume, so no orphaned key is left behind;
//! * a gateway that already has three clients is reported as [`ApiError::ClientLimit`]
//!   before any registration is tried.
//!
//! Requests are built with the access token the driver passes in on each call, so a token
//! refreshed between steps is used; on [`ApiError::Unauthorized`] the driver refreshes and
//! calls [`RegistrationFlow::next`] again (the step is repeated, never skipped).

use serde::{Deserialize, Serialize};

use crate::http::HttpResponse;
use crate::response::jwt_claims;
use crate::secret::Secret;

use super::{
    ApiError, AppCredentials, CLIENT_LIMIT, LegrandApi, Module, Plant, SipAccount, gateway, locks,
    new_client_id, parse_ca_chain, parse_issued_certificate, parse_modules, parse_plants,
    parse_registered_account, parse_sip_accounts,
};
use crate::http::HttpRequest;

/// The format version of [`Registration`].
pub const REGISTRATION_VERSION: u32 = 1;

/// Everything registration learned and made, persisted after each step (holds the SIP
/// password: the driver writes it with mode 0600).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Registration {
    /// [`REGISTRATION_VERSION`].
    pub version: u32,
    /// The client id (21–23 digits), chosen once.
    pub client_id: String,
    /// The name shown in the app.
    pub client_name: String,
    /// The user's object id (`oid` claim), the first part of the SIP user.
    pub user_oid: Option<String>,
    /// The chosen plant.
    pub plant: Option<StoredPlant>,
    /// The plant's gateway module id.
    pub gateway_id: Option<String>,
    /// The plant's locks (door-release receivers): id and name.
    #[serde(default)]
    pub locks: Vec<(String, String)>,
    /// The registered SIP account.
    pub account: Option<StoredAccount>,
    /// The driver stored the private key (its path is the driver's business).
    #[serde(default)]
    pub key_stored: bool,
    /// The client certificate, PEM.
    pub certificate_pem: Option<String>,
    /// The CA chain, PEM.
    pub ca_chain_pem: Option<String>,
}

/// The plant facts the certificate request needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoredPlant {
    /// Plant id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Country.
    pub country: String,
    /// Type.
    pub kind: String,
    /// Owner id.
    pub owner_id: String,
    /// Owner e-mail.
    pub owner_email: String,
}

impl From<&Plant> for StoredPlant {
    fn from(p: &Plant) -> Self {
        StoredPlant {
            id: p.id.clone(),
            name: p.name.clone(),
            country: p.country.clone(),
            kind: p.kind.clone(),
            owner_id: p.owner_id.clone(),
            owner_email: p.owner_email.clone(),
        }
    }
}

impl StoredPlant {
    /// The plant as the API client takes it.
    #[must_use]
    pub fn to_plant(&self) -> Plant {
        Plant {
            id: self.id.clone(),
            name: self.name.clone(),
            country: self.country.clone(),
            kind: self.kind.clone(),
            owner_id: self.owner_id.clone(),
            owner_email: self.owner_email.clone(),
        }
    }
}

/// The SIP account as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoredAccount {
    /// The account's id.
    pub sip_id: String,
    /// `<user>@<gateway>.bs.iotleg.com`.
    pub sip_uri: String,
    /// SIP user name.
    pub username: String,
    /// SIP password.
    pub password: Secret,
}

impl Registration {
    /// A new registration: `random` (at least 24 bytes) picks the client id.
    #[must_use]
    pub fn new(client_name: &str, random: &[u8]) -> Self {
        Registration {
            version: REGISTRATION_VERSION,
            client_id: new_client_id(random),
            client_name: client_name.to_owned(),
            user_oid: None,
            plant: None,
            gateway_id: None,
            locks: Vec::new(),
            account: None,
            key_stored: false,
            certificate_pem: None,
            ca_chain_pem: None,
        }
    }

    /// Whether every step is done.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.account.is_some()
            && self.key_stored
            && self.certificate_pem.is_some()
            && self.ca_chain_pem.is_some()
    }
}

/// What the certificate request must say (the driver builds it with `latchkey-pki`'s
/// `RequestParams::legrand`, stores the key, and hands back the CSR).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CsrSpec {
    /// CN.
    pub client_id: String,
    /// First part of the SAN's user.
    pub owner_id: String,
    /// The gateway (SAN host).
    pub gateway_id: String,
    /// emailAddress.
    pub owner_email: String,
    /// OU (`DIY` or `C100X`).
    pub unit: String,
    /// Whether a key was already stored (reuse it; make one otherwise).
    pub key_exists: bool,
}

/// What the driver does next.
#[derive(Debug)]
#[non_exhaustive]
pub enum Step {
    /// Send this request and pass the response to [`RegistrationFlow::handle_response`].
    Send(HttpRequest),
    /// Write this registration atomically (0600), then call
    /// [`RegistrationFlow::handle_persisted`].
    Persist(Registration),
    /// Make (or reuse) the key, store it, and pass the CSR's base64 DER to
    /// [`RegistrationFlow::handle_csr`].
    MakeCsr(CsrSpec),
    /// Done: the registration is complete (and persisted).
    Done(Registration),
}

/// Progress worth telling the user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// The plant was chosen.
    PlantChosen {
        /// Its name.
        name: String,
    },
    /// The gateway was found.
    GatewayFound {
        /// Its id.
        id: String,
        /// How many locks the plant has.
        locks: usize,
    },
    /// A SIP account was registered (or an earlier one adopted).
    AccountReady {
        /// Its URI.
        sip_uri: String,
        /// Adopted from an interrupted earlier run.
        adopted: bool,
    },
    /// The client certificate was issued.
    CertificateIssued,
}

/// Why registration stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SetupError {
    /// An API call failed (refresh and retry on [`ApiError::Unauthorized`]).
    Api(ApiError),
    /// The account has no plant.
    NoPlant,
    /// Several plants and none chosen, or the chosen one does not exist.
    ChoosePlant {
        /// The plants, as `id (name)`.
        available: Vec<String>,
    },
    /// The plant has no gateway module.
    NoGateway,
    /// The access token carries no `oid`/`sub` claim to build the SIP user from.
    NoUserId,
    /// A call out of order (a response with no request outstanding).
    OutOfOrder,
    /// The application token (C100X app credentials) could not be obtained.
    AppToken(ApiError),
}

impl core::fmt::Display for SetupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SetupError::Api(e) => e.fmt(f),
            SetupError::NoPlant => f.write_str("the account has no plant"),
            SetupError::ChoosePlant { available } => write!(
                f,
                "choose a plant with --plant ID (available: {})",
                available.join(", ")
            ),
            SetupError::NoGateway => f.write_str("the plant has no gateway module"),
            SetupError::NoUserId => {
                f.write_str("the access token carries no oid or sub claim (the SIP user's id)")
            }
            SetupError::OutOfOrder => f.write_str("registration step out of order"),
            SetupError::AppToken(e) => write!(
                f,
                "the application token (C100X app credentials) was refused: {e}; check \
                 app_token_endpoint, app_client_id, app_scope and the secret"
            ),
        }
    }
}

impl std::error::Error for SetupError {}

impl From<ApiError> for SetupError {
    fn from(e: ApiError) -> Self {
        SetupError::Api(e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    Nothing,
    Plants,
    Modules,
    Accounts,
    Register { existing: usize },
    Delete,
    Persisted,
    Csr,
    AppToken,
    Certificate,
    Chain,
}

/// The registration flow over a [`Registration`] (new, or loaded to resume).
#[derive(Debug)]
pub struct RegistrationFlow {
    api: LegrandApi,
    reg: Registration,
    plant_choice: Option<String>,
    waiting: Waiting,
    /// The accounts were listed in this run (so a resumed registration is checked first).
    listed: bool,
    /// Accounts on the gateway other than ours (for the client limit).
    existing: usize,
    /// An earlier account of ours without its password, to delete before registering.
    pending_delete: Option<String>,
    csr: Option<String>,
    /// The C100X app's application credentials, when the user gave them.
    app: Option<AppCredentials>,
    /// The application token obtained with them in this run (never persisted).
    app_token: Option<Secret>,
    dirty: bool,
    progress: Vec<Progress>,
}

impl RegistrationFlow {
    /// Starts or resumes `registration`; `plant` picks a plant by id or name when the
    /// account has several.
    #[must_use]
    pub fn new(api: LegrandApi, registration: Registration, plant: Option<String>) -> Self {
        RegistrationFlow {
            api,
            reg: registration,
            plant_choice: plant,
            waiting: Waiting::Nothing,
            listed: false,
            existing: 0,
            pending_delete: None,
            csr: None,
            app: None,
            app_token: None,
            dirty: true,
            progress: Vec::new(),
        }
    }

    /// Asks for the certificate as the C100X app does: first an application token with
    /// `app` (client credentials), sent in `Authorization` on the certificate call with the
    /// user's token in `UserToken` ([`AppCredentials`]).
    #[must_use]
    pub fn with_app_credentials(mut self, app: AppCredentials) -> Self {
        self.app = Some(app);
        self
    }

    /// The registration as it stands.
    #[must_use]
    pub fn registration(&self) -> &Registration {
        &self.reg
    }

    /// Progress since the last call (drained).
    pub fn poll_progress(&mut self) -> Option<Progress> {
        if self.progress.is_empty() {
            None
        } else {
            Some(self.progress.remove(0))
        }
    }

    /// The next thing to do; requests carry `token` (the current access token).
    ///
    /// # Errors
    /// [`SetupError::NoUserId`] when the token has no `oid`/`sub`.
    pub fn next(&mut self, token: &Secret) -> Result<Step, SetupError> {
        if self.reg.user_oid.is_none() {
            let claims = jwt_claims(token.expose()).ok_or(SetupError::NoUserId)?;
            let oid = ["oid", "sub"]
                .iter()
                .find_map(|k| claims.get(*k).and_then(serde_json::Value::as_str))
                .ok_or(SetupError::NoUserId)?;
            self.reg.user_oid = Some(oid.to_owned());
        }
        if self.dirty {
            // The client id (and whatever else changed) is on disk before it is used.
            self.dirty = false;
            self.waiting = Waiting::Persisted;
            return Ok(Step::Persist(self.reg.clone()));
        }
        let r = &self.reg;
        let step = if r.plant.is_none() {
            self.waiting = Waiting::Plants;
            Step::Send(self.api.plants(token))
        } else if r.gateway_id.is_none() {
            self.waiting = Waiting::Modules;
            let plant = r.plant.as_ref().map(|p| p.id.clone()).unwrap_or_default();
            Step::Send(self.api.modules(token, &plant))
        } else if r.account.is_none() && !self.listed {
            self.waiting = Waiting::Accounts;
            Step::Send(self.api.sip_accounts(token, self.gateway()))
        } else if let (None, Some(id)) = (&r.account, &self.pending_delete) {
            self.waiting = Waiting::Delete;
            Step::Send(self.api.delete_sip_account(token, self.gateway(), id))
        } else if r.account.is_none() {
            // Listed and not adopted: register (the list's size was checked).
            let existing = self.existing;
            self.waiting = Waiting::Register { existing };
            Step::Send(self.api.register_sip_account(
                token,
                self.gateway(),
                r.user_oid.as_deref().unwrap_or_default(),
                &r.client_id,
                &r.client_name,
            ))
        } else if r.certificate_pem.is_none() && self.csr.is_none() {
            self.waiting = Waiting::Csr;
            let plant = r
                .plant
                .clone()
                .map(|p| p.to_plant())
                .unwrap_or_else(empty_plant);
            // The SAN user is the one the account was registered with (`<oid>_<client id>`;
            // FACTS.md names it the owner id, the same value for the plant's owner).
            Step::MakeCsr(CsrSpec {
                client_id: r.client_id.clone(),
                owner_id: r.user_oid.clone().unwrap_or_default(),
                gateway_id: self.gateway().to_owned(),
                owner_email: plant.owner_email,
                unit: self.api.certificate_ou().to_owned(),
                key_exists: r.key_stored,
            })
        } else if r.certificate_pem.is_none()
            && self.app_token.is_none()
            && let Some(app) = &self.app
        {
            self.waiting = Waiting::AppToken;
            Step::Send(app.token_request()?)
        } else if r.certificate_pem.is_none() {
            self.waiting = Waiting::Certificate;
            let plant = r
                .plant
                .clone()
                .map(|p| p.to_plant())
                .unwrap_or_else(empty_plant);
            Step::Send(self.api.issue_certificate(
                token,
                self.app_token.as_ref(),
                self.csr.as_deref().unwrap_or_default(),
                &plant,
            ))
        } else if r.ca_chain_pem.is_none() {
            self.waiting = Waiting::Chain;
            Step::Send(self.api.ca_chain(token))
        } else {
            self.waiting = Waiting::Nothing;
            Step::Done(self.reg.clone())
        };
        Ok(step)
    }

    fn gateway(&self) -> &str {
        self.reg.gateway_id.as_deref().unwrap_or_default()
    }

    /// The response to the last [`Step::Send`].
    ///
    /// # Errors
    /// [`SetupError`]; after [`ApiError::Unauthorized`] refresh the token and call
    /// [`RegistrationFlow::next`] again.
    pub fn handle_response(&mut self, response: &HttpResponse) -> Result<(), SetupError> {
        let waiting = core::mem::replace(&mut self.waiting, Waiting::Nothing);
        match waiting {
            Waiting::Plants => {
                let plants = parse_plants(response)?;
                let plant = self.choose(&plants)?;
                self.progress.push(Progress::PlantChosen {
                    name: plant.name.clone(),
                });
                self.reg.plant = Some(StoredPlant::from(&plant));
            }
            Waiting::Modules => {
                let plant = self
                    .reg
                    .plant
                    .as_ref()
                    .map(|p| p.id.clone())
                    .unwrap_or_default();
                let modules: Vec<Module> = parse_modules(response, &plant)?;
                let gw = gateway(&modules).ok_or(SetupError::NoGateway)?;
                self.reg.gateway_id = Some(gw.id.clone());
                self.reg.locks = locks(&modules)
                    .into_iter()
                    .map(|m| (m.id.clone(), m.name.clone()))
                    .collect();
                self.progress.push(Progress::GatewayFound {
                    id: gw.id.clone(),
                    locks: self.reg.locks.len(),
                });
            }
            Waiting::Accounts => {
                let accounts = parse_sip_accounts(response)?;
                self.listed = true;
                match accounts.iter().find(|a| a.client_id == self.reg.client_id) {
                    Some(a) if a.password.is_some() => {
                        self.adopt(a, true);
                    }
                    Some(a) => {
                        // Registered by a run that died before saving the password, which
                        // cannot be read back: remove it and register again.
                        self.pending_delete = Some(a.sip_id.clone());
                        self.existing = accounts.len().saturating_sub(1);
                        return Ok(());
                    }
                    None => {
                        if accounts.len() >= CLIENT_LIMIT {
                            return Err(SetupError::Api(ApiError::ClientLimit));
                        }
                        self.existing = accounts.len();
                        return Ok(());
                    }
                }
            }
            Waiting::Register { existing } => {
                let account = parse_registered_account(response, existing)?;
                self.adopt(&account, false);
            }
            Waiting::Delete => {
                if !(200..300).contains(&response.status) && response.status != 404 {
                    super::body_json(response, "sip account deletion")?;
                }
                self.pending_delete = None;
                return Ok(());
            }
            Waiting::AppToken => {
                let app = self.app.as_ref().ok_or(SetupError::OutOfOrder)?;
                // Its own failure, never taken for the user token's 401.
                let token = app.parse_token(response).map_err(SetupError::AppToken)?;
                self.app_token = Some(token);
                return Ok(());
            }
            Waiting::Certificate => {
                self.reg.certificate_pem = Some(parse_issued_certificate(response)?);
                self.progress.push(Progress::CertificateIssued);
            }
            Waiting::Chain => {
                self.reg.ca_chain_pem = Some(parse_ca_chain(response)?);
            }
            Waiting::Nothing | Waiting::Persisted | Waiting::Csr => {
                return Err(SetupError::OutOfOrder);
            }
        }
        self.dirty = true;
        Ok(())
    }

    fn adopt(&mut self, account: &SipAccount, adopted: bool) {
        self.reg.account = Some(StoredAccount {
            sip_id: account.sip_id.clone(),
            sip_uri: account.sip_uri.clone(),
            username: account.username.clone(),
            password: account
                .password
                .clone()
                .unwrap_or_else(|| Secret::new(String::new())),
        });
        self.progress.push(Progress::AccountReady {
            sip_uri: account.sip_uri.clone(),
            adopted,
        });
    }

    /// The registration from the last [`Step::Persist`] is on disk.
    pub fn handle_persisted(&mut self) {
        if self.waiting == Waiting::Persisted {
            self.waiting = Waiting::Nothing;
        }
    }

    /// The driver stored the key and made the CSR (`csr_base64_der`).
    pub fn handle_csr(&mut self, csr_base64_der: String) {
        if self.waiting == Waiting::Csr {
            self.waiting = Waiting::Nothing;
            self.csr = Some(csr_base64_der);
            if !self.reg.key_stored {
                self.reg.key_stored = true;
                self.dirty = true;
            }
        }
    }

    fn choose(&self, plants: &[Plant]) -> Result<Plant, SetupError> {
        if plants.is_empty() {
            return Err(SetupError::NoPlant);
        }
        let available = || {
            plants
                .iter()
                .map(|p| format!("{} ({})", p.id, p.name))
                .collect()
        };
        match &self.plant_choice {
            Some(choice) => plants
                .iter()
                .find(|p| &p.id == choice || p.name.eq_ignore_ascii_case(choice))
                .cloned()
                .ok_or_else(|| SetupError::ChoosePlant {
                    available: available(),
                }),
            None if plants.len() == 1 => Ok(plants[0].clone()),
            None => Err(SetupError::ChoosePlant {
                available: available(),
            }),
        }
    }
}

fn empty_plant() -> Plant {
    Plant {
        id: String::new(),
        name: String::new(),
        country: String::new(),
        kind: String::new(),
        owner_id: String::new(),
        owner_email: String::new(),
    }
}

#[cfg(test)]
mod tests;
