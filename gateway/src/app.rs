//! The application: configuration, persisted state, effects and request dispatch.

use core::net::IpAddr;
use core::time::Duration;
use std::collections::BTreeMap;
use std::fmt;
use std::string::String;
use std::vec::Vec;

use hmac::{Hmac, KeyInit as _, Mac as _};
use latchkey_oauth_core::session::Status;
use latchkey_pki::inspect::CertInfo;
use latchkey_protocol::guard::{
    Argon2Params, ClientKey, DeviceCredentials, DeviceDirectory, DeviceId, Guard, GuardConfig, Now,
    PasswordError, PasswordHasher, PasswordPolicy, SecurityEvent, Verification,
};
use latchkey_protocol::time::Instant;
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

use crate::http::{Method, Request, Response};
use crate::model::{IoRegistry, RemoteUi, Variant};
use crate::passwords::{PasswordResults, PasswordWork};
use crate::utec::UtecSettings;
use crate::ws::WsSession;
use crate::{admin, html, panels, utec};

/// How the application behaves; [`Default`] is the production setting.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppConfig {
    /// Device authentication, abuse control, login throttle and sessions.
    pub guard: GuardConfig,
    /// Argon2id costs of new password hashes (default: OWASP minimum).
    pub argon2: Argon2Params,
    /// Password rules for setup and change.
    pub password_policy: PasswordPolicy,
    /// The admin account's name (default `admin`).
    pub admin_user: String,
    /// Time between WebSocket pings (default 30 s).
    pub ping_interval: Duration,
    /// How long a pong may take before the connection is closed (default 30 s).
    pub pong_timeout: Duration,
    /// calaos_base's `server_config.sync_interval` (default 1000).
    pub sync_interval: u32,
    /// Days before a certificate's end when the dashboard warns (default 30).
    pub cert_warn_days: u64,
    /// Open WebSocket connections at most (default 1,024); further upgrades get 503.
    pub max_connections: usize,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            guard: GuardConfig::default(),
            argon2: Argon2Params::default(),
            password_policy: PasswordPolicy::default(),
            admin_user: String::from("admin"),
            ping_interval: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(30),
            sync_interval: 1000,
            cert_warn_days: 30,
            max_connections: 1024,
        }
    }
}

impl AppConfig {
    /// The production configuration with cheap Argon2 costs (for tests and fuzzing only).
    #[must_use]
    pub fn for_tests() -> AppConfig {
        AppConfig {
            argon2: Argon2Params {
                m_kib: 64,
                t: 1,
                p: 1,
            },
            ..AppConfig::default()
        }
    }
}

/// A WebSocket connection's identifier, assigned at the upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// Something the driver must do. Perform effects in order, and before writing the
/// response they came with (a provisioning answer's secret is on disk before the device
/// sees it). `Debug` leaves out the secrets: the state bytes (device secrets, the password
/// hash) are shown by length and the private key not at all.
#[non_exhaustive]
pub enum Effect {
    /// Write the application state (JSON, secrets inside: mode 0600) atomically.
    PersistState(Vec<u8>),
    /// Write the guard's snapshot (bans and counters) atomically.
    PersistGuard(Vec<u8>),
    /// An uploaded certificate passed validation: persist it (key 0600) and hot-swap the TLS
    /// configuration, then call [`App::set_certificate`].
    SwapCertificate {
        /// Certificate chain, PEM (leaf first).
        cert_pem: String,
        /// Private key, PEM.
        key_pem: String,
        /// The CA certificates the chain was checked against (PEM), when the administrator
        /// gave them: the driver checks it against the same.
        roots_pem: Option<String>,
    },
    /// Generate a new self-signed certificate (latchkey-pki), persist, hot-swap, then call
    /// [`App::set_certificate`].
    RegenerateSelfSigned,
    /// Refresh the OAuth token now (the token keeper), then call
    /// [`App::set_token_status`].
    RefreshToken,
    /// The token keeper's settings changed.
    TokenSettingsChanged {
        /// Refresh automatically.
        auto_refresh_enabled: bool,
        /// Refresh this many minutes before expiry.
        refresh_buffer_minutes: u32,
    },
    /// An IO's state was set (through the API or a panel): forward it to real hardware if
    /// there is any.
    SetIoState {
        /// The IO.
        io: String,
        /// Its new state.
        state: String,
    },
    /// The upgrade succeeded: complete the WebSocket handshake and drive this session.
    UpgradeWebSocket(WsSession),
    /// Send a text message on connection `conn`.
    SendWs {
        /// The connection.
        conn: ConnId,
        /// The JSON text.
        text: String,
        /// Set on messages that carry the newest state of one thing (an `io_state` carries
        /// the IO's id): a message with the same key still waiting to be sent on `conn` is
        /// obsolete, and a driver that queues messages should drop it and queue this one at
        /// the end. A burst of changes to one IO then costs a slow reader one message, not
        /// one per change, and the last state always arrives.
        supersedes: Option<String>,
    },
    /// Close connection `conn`.
    CloseWs {
        /// The connection.
        conn: ConnId,
        /// WebSocket close code.
        code: u16,
        /// Reason.
        reason: String,
    },
    /// A security event to log.
    Security(SecurityEvent),
    /// If the state write of this request fails (its answer then says so), hand this to
    /// [`App::undo`]: what the request changed in memory is taken back, so a retry finds
    /// the state the failed answer described (a device whose provisioning answer was a 500
    /// can provision again instead of finding its code used).
    UndoIfNotSaved(Undo),
}

/// What [`App::undo`] takes back (opaque; see [`Effect::UndoIfNotSaved`]). Its `Debug`
/// names the panel, never the credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Undo(UndoKind);

impl fmt::Debug for Undo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            UndoKind::Provisioning { panel, .. } => f
                .debug_struct("Undo")
                .field("provisioning", panel)
                .finish_non_exhaustive(),
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
enum UndoKind {
    /// The credentials given to `panel` (recognised by their token, so newer ones stay).
    Provisioning { panel: String, auth_token: String },
}

impl Undo {
    pub(crate) fn provisioning(panel: &str, auth_token: &str) -> Undo {
        Undo(UndoKind::Provisioning {
            panel: String::from(panel),
            auth_token: String::from(auth_token),
        })
    }
}

/// Why a saved state could not be restored.
#[derive(Debug)]
#[non_exhaustive]
pub enum RestoreError {
    /// The state file is not the expected JSON.
    State(String),
    /// The state is JSON but breaks a limit.
    Invalid(String),
    /// The guard snapshot could not be read (restore again without it to start with
    /// empty guard tables).
    GuardSnapshot(String),
    /// The guard configuration is inconsistent.
    Config(String),
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreError::State(e) => write!(f, "state file is not valid: {e}"),
            RestoreError::Invalid(e) => write!(f, "state file breaks a limit: {e}"),
            RestoreError::GuardSnapshot(e) => write!(f, "guard snapshot is not valid: {e}"),
            RestoreError::Config(e) => write!(f, "configuration: {e}"),
        }
    }
}

impl std::error::Error for RestoreError {}

/// The admin account.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Admin {
    pub(crate) user: String,
    pub(crate) password_hash: String,
}

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admin")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Everything that survives a restart (sessions do not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct State {
    pub(crate) version: u32,
    pub(crate) admin: Option<Admin>,
    pub(crate) panels: Vec<RemoteUi>,
    pub(crate) ios: IoRegistry,
    pub(crate) utec: UtecSettings,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: 1,
            admin: None,
            panels: Vec::new(),
            ios: IoRegistry::default(),
            utec: UtecSettings::default(),
        }
    }
}

/// An open panel connection.
#[derive(Debug, Clone)]
pub(crate) struct Conn {
    pub(crate) panel: String,
}

/// The certificate currently served.
#[derive(Debug, Clone)]
pub(crate) struct ServedCert {
    pub(crate) info: CertInfo,
}

/// The gateway application (see the crate docs). `Debug` shows its configuration and counts,
/// never the CSRF key, the setup token, device secrets or the password hash.
pub struct App {
    pub(crate) config: AppConfig,
    pub(crate) guard: Guard,
    pub(crate) devices: DeviceDirectory,
    pub(crate) device_panels: BTreeMap<u32, String>,
    pub(crate) state: State,
    pub(crate) hasher: PasswordHasher,
    csrf_key: [u8; 32],
    pub(crate) setup_token: Option<String>,
    pub(crate) conns: BTreeMap<ConnId, Conn>,
    next_conn: u64,
    pub(crate) token_status: Option<Status>,
    pub(crate) cert: Option<ServedCert>,
    /// Password work done outside the lock for the request being handled.
    precomputed: Option<PasswordResults>,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("config", &self.config)
            .field("panels", &self.state.panels.len())
            .field("ios", &self.state.ios.len())
            .field("devices", &self.device_panels.len())
            .field("connections", &self.conns.len())
            .field("setup_pending", &self.setup_token.is_some())
            .field("token_status", &self.token_status)
            .field("cert", &self.cert.as_ref().map(|c| &c.info.subject))
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = |b: &Vec<u8>| format!("<{} bytes>", b.len());
        match self {
            Effect::PersistState(b) => f.debug_tuple("PersistState").field(&bytes(b)).finish(),
            Effect::PersistGuard(b) => f.debug_tuple("PersistGuard").field(&bytes(b)).finish(),
            Effect::SwapCertificate { cert_pem, .. } => f
                .debug_struct("SwapCertificate")
                .field("cert_pem", &format_args!("<{} bytes>", cert_pem.len()))
                .field("key_pem", &format_args!("<redacted>"))
                .finish(),
            Effect::RegenerateSelfSigned => f.write_str("RegenerateSelfSigned"),
            Effect::RefreshToken => f.write_str("RefreshToken"),
            Effect::TokenSettingsChanged {
                auto_refresh_enabled,
                refresh_buffer_minutes,
            } => f
                .debug_struct("TokenSettingsChanged")
                .field("auto_refresh_enabled", auto_refresh_enabled)
                .field("refresh_buffer_minutes", refresh_buffer_minutes)
                .finish(),
            Effect::SetIoState { io, state } => f
                .debug_struct("SetIoState")
                .field("io", io)
                .field("state", state)
                .finish(),
            Effect::UpgradeWebSocket(session) => {
                f.debug_tuple("UpgradeWebSocket").field(session).finish()
            }
            Effect::SendWs {
                conn,
                text,
                supersedes,
            } => f
                .debug_struct("SendWs")
                .field("conn", conn)
                .field("text", text)
                .field("supersedes", supersedes)
                .finish(),
            Effect::CloseWs { conn, code, reason } => f
                .debug_struct("CloseWs")
                .field("conn", conn)
                .field("code", code)
                .field("reason", reason)
                .finish(),
            Effect::Security(event) => f.debug_tuple("Security").field(event).finish(),
            Effect::UndoIfNotSaved(undo) => f.debug_tuple("UndoIfNotSaved").field(undo).finish(),
        }
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(H[usize::from(b >> 4)]));
        s.push(char::from(H[usize::from(b & 15)]));
    }
    s
}

/// 32 random bytes as 64 lower-case hex digits.
pub(crate) fn random_hex<R: CryptoRng + ?Sized>(rng: &mut R) -> String {
    let mut b = [0u8; 32];
    rng.fill_bytes(&mut b);
    hex(&b)
}

impl App {
    /// A first-boot application: no admin password yet (a one-time setup link is drawn from
    /// `rng`, see [`setup_path`](Self::setup_path)), no panels, no IOs.
    ///
    /// # Errors
    ///
    /// [`RestoreError::Config`] when the guard configuration or Argon2 costs are refused.
    pub fn new<R: CryptoRng + ?Sized>(config: AppConfig, rng: &mut R) -> Result<App, RestoreError> {
        let guard = Guard::new(config.guard.clone(), rng)
            .map_err(|e| RestoreError::Config(e.to_string()))?;
        App::assemble(config, guard, State::default(), rng)
    }

    /// An application from a saved [`Effect::PersistState`] (and optionally
    /// [`Effect::PersistGuard`]) at `now`. Sessions are not kept: admins log in again.
    ///
    /// # Errors
    ///
    /// [`RestoreError`] naming what could not be read.
    pub fn restore<R: CryptoRng + ?Sized>(
        config: AppConfig,
        now: Now,
        rng: &mut R,
        state: &[u8],
        guard_snapshot: Option<&[u8]>,
    ) -> Result<App, RestoreError> {
        let state: State =
            serde_json::from_slice(state).map_err(|e| RestoreError::State(e.to_string()))?;
        if state.panels.len() > crate::model::MAX_PANELS {
            return Err(RestoreError::Invalid(String::from("too many panels")));
        }
        for p in &state.panels {
            p.validate()
                .map_err(|e| RestoreError::Invalid(e.to_string()))?;
        }
        for io in state.ios.iter() {
            io.validate()
                .map_err(|e| RestoreError::Invalid(e.to_string()))?;
        }
        let guard = match guard_snapshot {
            Some(s) => Guard::restore(config.guard.clone(), rng, now, s)
                .map_err(|e| RestoreError::GuardSnapshot(e.to_string()))?,
            None => Guard::new(config.guard.clone(), rng)
                .map_err(|e| RestoreError::Config(e.to_string()))?,
        };
        App::assemble(config, guard, state, rng)
    }

    fn assemble<R: CryptoRng + ?Sized>(
        config: AppConfig,
        guard: Guard,
        state: State,
        rng: &mut R,
    ) -> Result<App, RestoreError> {
        let hasher =
            PasswordHasher::new(config.argon2).map_err(|e| RestoreError::Config(e.to_string()))?;
        let mut csrf_key = [0u8; 32];
        rng.fill_bytes(&mut csrf_key);
        let setup_token = state.admin.is_none().then(|| random_hex(rng));
        let mut app = App {
            devices: DeviceDirectory::new(rng),
            device_panels: BTreeMap::new(),
            config,
            guard,
            state,
            hasher,
            csrf_key,
            setup_token,
            conns: BTreeMap::new(),
            next_conn: 1,
            token_status: None,
            cert: None,
            precomputed: None,
        };
        let ids: Vec<String> = app.state.panels.iter().map(|p| p.id.clone()).collect();
        for id in ids {
            // A panel whose stored credentials are refused (a state file edited by hand
            // with a duplicate token) is kept and shown; its device cannot connect until
            // the admin resets it.
            let _ = app.register_device(&id);
        }
        Ok(app)
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &AppConfig {
        &self.config
    }

    /// The one-time setup link's path and query (`/setup?token=…`) while no admin password
    /// is set; the driver prints it with its own origin. `None` once set up.
    #[must_use]
    pub fn setup_path(&self) -> Option<String> {
        self.setup_token
            .as_ref()
            .map(|t| format!("/setup?token={t}"))
    }

    /// The panels.
    #[must_use]
    pub fn panels(&self) -> &[RemoteUi] {
        &self.state.panels
    }

    /// The IO registry.
    #[must_use]
    pub fn ios(&self) -> &IoRegistry {
        &self.state.ios
    }

    /// The U-tec compatible token settings.
    #[must_use]
    pub fn utec_settings(&self) -> &UtecSettings {
        &self.state.utec
    }

    /// The state as [`Effect::PersistState`] would carry it.
    #[must_use]
    pub fn state_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(&self.state).unwrap_or_default()
    }

    /// The guard's snapshot (bans and counters).
    #[must_use]
    pub fn guard_snapshot(&self, now: Now) -> Vec<u8> {
        self.guard.snapshot(now, false)
    }

    /// The token keeper's latest [`Status`], for `/health` and the dashboard.
    pub fn set_token_status(&mut self, status: Option<Status>) {
        self.token_status = status;
    }

    /// The certificate now served (PEM, leaf first), for the dashboard; after start-up and
    /// after every swap.
    ///
    /// # Errors
    ///
    /// The inspection error's message when the PEM holds no readable certificate.
    pub fn set_certificate(&mut self, cert_pem: &[u8]) -> Result<(), String> {
        let info = CertInfo::from_pem(cert_pem)
            .map_err(|e| e.to_string())?
            .into_iter()
            .next()
            .ok_or_else(|| String::from("no certificate in the PEM"))?;
        self.cert = Some(ServedCert { info });
        Ok(())
    }

    /// Open panel connections.
    #[must_use]
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has work (the guard's sweeps).
    /// Changes after any `handle_*` call.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.guard.poll_timeout()
    }

    /// Sweeps expired guard entries; early calls do nothing.
    pub fn handle_timeout(&mut self, now: Now) -> Vec<Effect> {
        self.guard.handle_timeout(now);
        let mut fx = Vec::new();
        self.drain_guard(now, &mut fx);
        fx
    }

    /// Answers one request from `peer` (the TCP peer; `X-Forwarded-For` is believed only
    /// from configured proxies). Returns the response (security headers included) and the
    /// effects to perform before writing it.
    pub fn handle_request<R: CryptoRng + ?Sized>(
        &mut self,
        now: Now,
        peer: IpAddr,
        request: &Request,
        rng: &mut R,
    ) -> (Response, Vec<Effect>) {
        let mut fx = Vec::new();
        let client = self
            .guard
            .client_key(peer, request.headers_named("x-forwarded-for"));
        let mut resp = if request.body.len() > crate::http::MAX_BODY_BYTES {
            panels::error(413, "Request body too large")
        } else {
            self.route(now, client, request, rng, &mut fx)
        };
        secure_headers(&mut resp, &request.path);
        self.drain_guard(now, &mut fx);
        (resp, fx)
    }

    /// What a costly request ([`Request::is_costly`]) will verify or hash, for a driver to
    /// do without holding the application ([`crate::passwords`]); `None` for other requests
    /// and for costly ones that will be refused before any hashing.
    pub fn password_work<R: CryptoRng + ?Sized>(
        &mut self,
        now: Now,
        peer: IpAddr,
        request: &Request,
        rng: &mut R,
    ) -> Option<PasswordWork> {
        if !request.is_costly() || request.body.len() > crate::http::MAX_BODY_BYTES {
            return None;
        }
        let client = self
            .guard
            .client_key(peer, request.headers_named("x-forwarded-for"));
        admin::password_work(self, now, client, request, rng)
    }

    /// [`App::handle_request`], with the results of [`App::password_work`] done beforehand:
    /// the handlers use them where their inputs match and hash anything else themselves.
    pub fn handle_request_with<R: CryptoRng + ?Sized>(
        &mut self,
        now: Now,
        peer: IpAddr,
        request: &Request,
        rng: &mut R,
        results: PasswordResults,
    ) -> (Response, Vec<Effect>) {
        self.precomputed = Some(results);
        let out = self.handle_request(now, peer, request, rng);
        self.precomputed = None;
        out
    }

    /// Takes back what a request changed when its state write failed (see
    /// [`Effect::UndoIfNotSaved`]); returns the effects (a state write) to perform. Does
    /// nothing when the state has moved on since (the panel was reset or provisioned anew).
    pub fn undo(&mut self, undo: Undo) -> Vec<Effect> {
        let mut fx = Vec::new();
        match undo.0 {
            UndoKind::Provisioning { panel, auth_token } => {
                let Some(p) = self.state.panels.iter_mut().find(|p| p.id == panel) else {
                    return fx;
                };
                if p.credentials
                    .as_ref()
                    .is_none_or(|c| c.auth_token != auth_token)
                {
                    return fx;
                }
                p.credentials = None;
                // Nobody holds these credentials: no connection can use them.
                let _ = self.unregister_device(&panel);
                self.persist(&mut fx);
            }
        }
        fx
    }

    /// Verifies `password` against `stored`: the result done beforehand for these inputs,
    /// or now.
    pub(crate) fn verify_password(
        &self,
        stored: &str,
        password: &str,
    ) -> Result<Verification, PasswordError> {
        self.precomputed
            .as_ref()
            .and_then(|r| r.verification(stored, password))
            .unwrap_or_else(|| self.hasher.verify(stored, password))
    }

    /// Hashes `password`: the hash done beforehand for it, or now with a salt from `rng`.
    pub(crate) fn hash_password<R: CryptoRng + ?Sized>(
        &mut self,
        password: &str,
        rng: &mut R,
    ) -> Result<String, PasswordError> {
        match self
            .precomputed
            .as_mut()
            .and_then(|r| r.take_hash(password))
        {
            Some(hash) => hash,
            None => self.hasher.hash(password, rng),
        }
    }

    fn route<R: CryptoRng + ?Sized>(
        &mut self,
        now: Now,
        client: ClientKey,
        req: &Request,
        rng: &mut R,
        fx: &mut Vec<Effect>,
    ) -> Response {
        let path = req.path.as_str();
        let m = &req.method;
        match path {
            "/static/app.css" => return static_asset(html::CSS, "text/css; charset=utf-8"),
            "/static/app.js" => {
                return static_asset(html::JS, "text/javascript; charset=utf-8");
            }
            "/health" if m.is_safe() => return utec::health(self, now),
            "/api/v3/provision/request" if *m == Method::Post => {
                return panels::provision(self, now, client, req, rng, fx);
            }
            "/api/v3/remote_ui/ws" if *m == Method::Get => {
                return panels::upgrade(self, now, client, req, fx);
            }
            "/api/config" if m.is_safe() => return utec::get_config(self, now),
            _ => {}
        }
        if path.starts_with("/api/") {
            return admin::api(self, now, req, rng, fx);
        }
        admin::pages(self, now, client, req, rng, fx)
    }

    fn drain_guard(&mut self, now: Now, fx: &mut Vec<Effect>) {
        let mut persist = false;
        while let Some(e) = self.guard.poll_event() {
            persist |= matches!(
                e,
                SecurityEvent::ProvisioningBlacklisted { .. }
                    | SecurityEvent::LoginBlocked { .. }
                    | SecurityEvent::AccountLocked { .. }
            );
            fx.push(Effect::Security(e));
        }
        if persist {
            fx.push(Effect::PersistGuard(self.guard.snapshot(now, false)));
        }
    }

    /// Queues the state for persistence.
    pub(crate) fn persist(&self, fx: &mut Vec<Effect>) {
        fx.push(Effect::PersistState(self.state_json()));
    }

    /// Adds panel `id`'s credentials (if any) to the device directory; `false` when it has
    /// credentials the directory refused (a token another device holds, or one the guard
    /// cannot take: the panel's device would be refused on every connection).
    pub(crate) fn register_device(&mut self, id: &str) -> bool {
        self.unregister_device(id);
        let Some(panel) = self.state.panels.iter().find(|p| p.id == id) else {
            return true;
        };
        let Some(c) = &panel.credentials else {
            return true;
        };
        // Stable across restarts and re-registrations (the replay cache is keyed by it); a
        // collision with another panel's id (2^-32) moves on to the next free one.
        let mut dev = DeviceId::from_token(&c.auth_token);
        while self.device_panels.contains_key(&dev.0) {
            dev = dev.next();
        }
        let Ok(creds) = DeviceCredentials::new(
            dev,
            &c.auth_token,
            c.device_secret.as_bytes(),
            c.variant.signing(),
        ) else {
            return false;
        };
        if self.devices.insert(creds).is_err() {
            return false;
        }
        self.device_panels.insert(dev.0, String::from(id));
        true
    }

    /// Removes panel `id` from the device directory and closes its connections.
    pub(crate) fn unregister_device(&mut self, id: &str) -> Vec<ConnId> {
        let devs: Vec<u32> = self
            .device_panels
            .iter()
            .filter(|(_, p)| *p == id)
            .map(|(d, _)| *d)
            .collect();
        for d in devs {
            self.devices.remove(DeviceId(d));
            self.device_panels.remove(&d);
        }
        let conns: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.panel == id)
            .map(|(k, _)| *k)
            .collect();
        for c in &conns {
            self.conns.remove(c);
        }
        conns
    }

    /// A new connection for panel `panel`.
    pub(crate) fn open_conn(&mut self, panel: &str) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                panel: String::from(panel),
            },
        );
        id
    }

    /// The connection's panel and its variant, while it is open.
    pub(crate) fn conn_panel(&self, conn: ConnId) -> Option<(&RemoteUi, Variant)> {
        let c = self.conns.get(&conn)?;
        let p = self.state.panels.iter().find(|p| p.id == c.panel)?;
        let v = p.credentials.as_ref()?.variant;
        Some((p, v))
    }

    /// A connection ended (the driver calls this through [`WsSession::closed`]).
    pub(crate) fn close_conn(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
    }

    /// `io_state` messages for every open connection whose panel references `io`.
    pub(crate) fn broadcast_io(&self, io: &str, state: &str, fx: &mut Vec<Effect>) {
        let text = serde_json::json!({"msg": "io_state", "data": {"io_id": io, "state": state}})
            .to_string();
        for (conn, c) in &self.conns {
            let Some(p) = self.state.panels.iter().find(|p| p.id == c.panel) else {
                continue;
            };
            if p.referenced_ios().contains(io) {
                fx.push(Effect::SendWs {
                    conn: *conn,
                    text: text.clone(),
                    supersedes: Some(io.to_owned()),
                });
            }
        }
    }

    /// The CSRF token of a session (or pre-session) cookie value: HMAC-SHA256 under a key
    /// drawn at start-up, so it is tied to that cookie and unguessable without it.
    pub(crate) fn csrf_token(&self, purpose: &str, cookie: &str) -> String {
        // HMAC takes keys of any length; the error arm is unreachable.
        let Ok(mut mac) = <Hmac<Sha256>>::new_from_slice(&self.csrf_key) else {
            return String::new();
        };
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(cookie.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// Whether `presented` is the CSRF token of `cookie` (constant time).
    pub(crate) fn csrf_ok(&self, purpose: &str, cookie: &str, presented: &str) -> bool {
        let want = self.csrf_token(purpose, cookie);
        !want.is_empty()
            && want.len() == presented.len()
            && bool::from(want.as_bytes().ct_eq(presented.as_bytes()))
    }
}

fn static_asset(body: &str, content_type: &str) -> Response {
    let mut r = Response::new(200);
    r.body = body.as_bytes().to_vec();
    r.set_header("Content-Type", content_type);
    r.set_header("Cache-Control", "public, max-age=3600");
    r
}

/// The security headers every response carries (on the plain-HTTP redirect port too, where
/// browsers ignore `Strict-Transport-Security`, RFC 6797 §8.1, and it does no harm).
pub(crate) fn secure_headers(r: &mut Response, path: &str) {
    r.set_header(
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    r.set_header("X-Frame-Options", "DENY");
    r.set_header("X-Content-Type-Options", "nosniff");
    r.set_header("Referrer-Policy", "no-referrer");
    r.set_header(
        "Strict-Transport-Security",
        "max-age=31536000; includeSubDomains",
    );
    r.set_header("Cross-Origin-Opener-Policy", "same-origin");
    if !path.starts_with("/static/") {
        r.set_header("Cache-Control", "no-store");
    }
}
