//! `latchkey login` and `latchkey token …`: the OAuth commands over `latchkey-tokio`'s
//! `TokenKeeper`. Argument handling, prompts and printing only; every rule is in
//! `latchkey-oauth-core`.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use latchkey_oauth_core::authorize::{
    AuthorizationCode, AuthorizationRequest, AuthorizeOptions, authorization_request,
    parse_redirect,
};
use latchkey_oauth_core::b2c::{Credentials, HeadlessConfig, HeadlessLogin, Next as HeadlessNext};
use latchkey_oauth_core::device::{DeviceEvent, DeviceFlow};
use latchkey_oauth_core::discovery::{discovery_request, parse_discovery};
use latchkey_oauth_core::import::{ImportError, ImportFormat, MAX_IMPORT_BYTES, import_session};
use latchkey_oauth_core::profile::Profile;
use latchkey_oauth_core::request;
use latchkey_oauth_core::response::parse_token_response;
use latchkey_oauth_core::secret::Secret;
use latchkey_oauth_core::session::{Event, Grant, Phase, SessionConfig, Status};
use latchkey_tokio::http::{HttpClient, HttpConfig};
use latchkey_tokio::keeper::{TokenKeeper, now};
use latchkey_tokio::state::StateDir;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Largest profile, secret, CA or password file read (they are a few KiB).
const MAX_SETTINGS_FILE: usize = crate::MAX_SMALL_FILE;

/// Which provider and where its state lives (shared by every OAuth command).
#[derive(Args, Debug, Clone)]
pub(crate) struct ProviderArgs {
    /// Provider profile: watts, bticino-diy, bticino-c100x, utec, generic.
    #[arg(long, default_value = "generic")]
    provider: String,
    /// A profile of your own (TOML, same schema as the shipped ones) instead of --provider.
    #[arg(long)]
    profile_file: Option<PathBuf>,
    /// Client id (U-tec "Access Key", a generic provider's registration).
    #[arg(long)]
    client_id: Option<String>,
    /// File holding the client secret (U-tec "Secret Key"); never pass secrets as arguments.
    #[arg(long)]
    client_secret_file: Option<PathBuf>,
    /// Issuer URL of a generic provider (endpoints found by discovery).
    #[arg(long)]
    issuer: Option<String>,
    /// Redirect URI registered for the client.
    #[arg(long)]
    redirect_uri: Option<String>,
    /// Extra CA certificates (PEM) to trust, for private providers.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Ignore the client settings saved by an earlier login or import
    /// (`provider-<name>.json`) and use only those given now (and an imported file's); a
    /// `login` or `token import` that succeeds saves those in their place.
    #[arg(long)]
    reset_settings: bool,
    /// State directory.
    #[arg(long, default_value = "./latchkey-data")]
    state_dir: PathBuf,
}

impl ProviderArgs {
    /// The arguments of a built-in provider (or a profile file) with no overrides.
    pub(crate) fn for_provider(
        name: &str,
        state_dir: PathBuf,
        ca_file: Option<PathBuf>,
        profile_file: Option<PathBuf>,
    ) -> Self {
        ProviderArgs {
            provider: name.to_owned(),
            profile_file,
            client_id: None,
            client_secret_file: None,
            issuer: None,
            redirect_uri: None,
            ca_file,
            reset_settings: false,
            state_dir,
        }
    }
}

/// How `latchkey login` gets the authorization.
#[derive(Args, Debug, Clone)]
pub(crate) struct LoginMode {
    /// Capture the redirect on http://127.0.0.1:PORT/callback (RFC 8252).
    #[arg(long, conflicts_with_all = ["paste", "device", "headless"])]
    loopback: bool,
    /// Port for --loopback (0 picks a free one).
    #[arg(long, requires = "loopback", conflicts_with_all = ["paste", "device"])]
    port: Option<u16>,
    /// Print the login URL and read the redirect URL you paste (custom-scheme apps).
    #[arg(long, conflicts_with_all = ["device", "headless"])]
    paste: bool,
    /// Device flow: enter a code on another device (RFC 8628).
    #[arg(long)]
    device: bool,
    /// Also open the login URL in the desktop's browser (xdg-open, open or start).
    #[arg(long, conflicts_with_all = ["device", "headless"])]
    open: bool,
    /// Azure AD B2C only, opt-in: sign in without a browser by posting the e-mail and
    /// password to the provider's own sign-in page API (breaks if the provider changes that
    /// page; stops at MFA or password-change pages).
    #[arg(long, conflicts_with = "device", requires = "username")]
    headless: bool,
    /// The account's e-mail or user name, for --headless.
    #[arg(long, requires = "headless")]
    username: Option<String>,
    /// File holding the password for --headless (read from standard input when absent);
    /// never pass passwords as arguments.
    #[arg(long, requires = "headless")]
    password_file: Option<PathBuf>,
}

/// `latchkey token …`
#[derive(Subcommand, Debug)]
pub(crate) enum TokenCommand {
    /// Expiry, refresh-token age, last and next refresh.
    Status {
        #[command(flatten)]
        provider: ProviderArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Refresh now.
    Refresh {
        #[command(flatten)]
        provider: ProviderArgs,
    },
    /// Print a valid access token (refreshing first if needed), for scripts:
    /// curl -H "Authorization: Bearer $(latchkey token get)" …
    Get {
        #[command(flatten)]
        provider: ProviderArgs,
    },
    /// Keep tokens fresh; serve GET /health and POST /api/oauth/refresh on --listen, and
    /// with --utec every endpoint of the uteclocal gateways (devices, status, lock, unlock,
    /// config) so their Home Assistant integrations work unchanged.
    Keep {
        #[command(flatten)]
        provider: ProviderArgs,
        /// Address of the endpoints (loopback by default; the uteclocal gateways use 8000;
        /// port 0 picks a free one, printed at start).
        #[arg(long, default_value = "127.0.0.1:8000")]
        listen: String,
        /// Serve the uteclocal gateways' device endpoints through the U-tec API.
        #[arg(long)]
        utec: bool,
        /// A host name clients reach the endpoints by, besides IP addresses and localhost
        /// (repeatable). Requests naming any other host, or coming from a web page, are
        /// refused: these endpoints move a lock and take no credentials.
        #[arg(long = "allow-host", value_name = "NAME")]
        allow_hosts: Vec<String>,
    },
    /// Take over a session another client saved, without a new login: the BTicino Node.js
    /// client's token cache, or a U-tec local gateway's config.json (its access and secret
    /// keys become the client id and secret). Stop the other client afterwards: a rotating
    /// refresh token must have one holder.
    Import {
        #[command(flatten)]
        provider: ProviderArgs,
        /// The file to read.
        #[arg(long)]
        from: PathBuf,
        /// bticino-token-cache or utec-config (detected from the fields when absent).
        #[arg(long)]
        format: Option<String>,
        /// Replace a session already stored for this provider.
        #[arg(long)]
        replace: bool,
    },
}

pub(crate) type Failure = (u8, String);

pub(crate) fn fail(code: u8, message: impl Into<String>) -> Failure {
    (code, message.into())
}

/// Runs `latchkey login`.
pub(crate) fn login(args: ProviderArgs, mode: LoginMode) -> Result<(), Failure> {
    runtime()?.block_on(async move {
        // The settings given are saved only once the login succeeded: one given up halfway
        // leaves the saved ones, which the stored session may still refresh with.
        let Setup {
            profile,
            client,
            state,
            settings,
        } = setup_with(&args, true, ClientSettings::default()).await?;
        let tokens = if mode.device {
            device_login(&profile, &client).await?
        } else if mode.headless {
            headless_login(&profile, &client, &mode).await?
        } else {
            code_login(&profile, &client, &mode).await?
        };
        if tokens.refresh_token.is_none() {
            err!(
                "warning: the provider issued no refresh token; the session ends when the \
                 access token expires (ask for the offline_access scope, with consent)"
            );
        }
        let keeper = TokenKeeper::open(profile, session_config(), state.clone(), client)
            .await
            .map_err(|e| fail(2, e.to_string()))?;
        keeper
            .login(tokens, Grant::RefreshToken)
            .await
            .map_err(|e| fail(1, e.to_string()))?;
        settings.save(&state).await?;
        let st = keeper.status();
        err!(
            "logged in; access token valid until {}, refresh token {}",
            st.access_expires_at
                .map_or_else(|| "unknown".to_owned(), |t| t.to_string()),
            if st.has_refresh_token {
                "stored"
            } else {
                "not issued"
            }
        );
        Ok(())
    })
}

/// Runs `latchkey token …`.
pub(crate) fn token(command: TokenCommand) -> Result<(), Failure> {
    runtime()?.block_on(async move {
        match command {
            TokenCommand::Status { provider, json } => {
                let keeper = open(&provider).await?;
                let st = keeper.status();
                if json {
                    out!("{}", status_json(&st));
                } else {
                    out!("{}", status_text(&st).trim_end_matches('\n'));
                }
                Ok(())
            }
            TokenCommand::Refresh { provider } => {
                let keeper = open(&provider).await?;
                keeper.refresh().await.map_err(|e| fail(1, e.to_string()))?;
                err!(
                    "refreshed; valid until {}",
                    keeper.status().access_expires_at.unwrap_or(0)
                );
                Ok(())
            }
            TokenCommand::Get { provider } => {
                let keeper = open(&provider).await?;
                let (token, _) = keeper
                    .access_token()
                    .await
                    .map_err(|e| fail(1, e.to_string()))?;
                let mut out = std::io::stdout().lock();
                writeln!(out, "{}", token.expose()).map_err(|e| fail(2, e.to_string()))?;
                Ok(())
            }
            TokenCommand::Keep {
                provider,
                listen,
                utec,
                allow_hosts,
            } => {
                let keeper = open(&provider).await?;
                let api = if utec {
                    let (profile, _, _) = setup(&provider).await?;
                    let base = profile.api.base_url.clone().unwrap_or_default();
                    let scope = profile.client.scopes.join(" ");
                    let api = latchkey_oauth_core::cloud::utec::UtecApi::for_profile(&profile)
                        .map_err(|e| fail(2, e.to_string()))?;
                    Some(UtecLocal {
                        api,
                        base,
                        scope,
                        latest: std::sync::Mutex::new(None),
                    })
                } else {
                    None
                };
                keep(keeper, &listen, api.map(std::sync::Arc::new), allow_hosts).await
            }
            TokenCommand::Import {
                provider,
                from,
                format,
                replace,
            } => import(&provider, &from, format.as_deref(), replace).await,
        }
    })
}

/// `token import`: read another client's saved session and store it as this provider's.
async fn import(
    args: &ProviderArgs,
    from: &std::path::Path,
    format: Option<&str>,
    replace: bool,
) -> Result<(), Failure> {
    let format = match format {
        None => None,
        Some(name) => Some(ImportFormat::from_name(name).ok_or_else(|| {
            let known: Vec<&str> = ImportFormat::ALL.iter().map(|f| f.name()).collect();
            fail(
                2,
                format!(
                    "unknown import format {name:?} (known: {})",
                    known.join(", ")
                ),
            )
        })?),
    };
    let bytes = crate::read_limited(from, MAX_IMPORT_BYTES)?;
    let imported = import_session(&bytes, format, now())
        .map_err(|e| fail(2, format!("{}: {e}", from.display())))?;
    let profile_name = match &args.profile_file {
        Some(_) => None,
        None => Some(args.provider.as_str()),
    };
    if let Some(name) = profile_name.filter(|n| !imported.format.fits_provider(n)) {
        return Err(fail(
            2,
            ImportError::WrongProvider {
                format: imported.format,
                provider: name.to_owned(),
            }
            .to_string(),
        ));
    }
    // Refuse before anything is written: the stored session and overrides stay as they are.
    let current = {
        let (profile, client, state) = setup(args).await?;
        TokenKeeper::open(profile, session_config(), state, client)
            .await
            .map_err(|e| fail(2, e.to_string()))?
            .status()
    };
    if !replace && !matches!(current.state, Phase::NoSession | Phase::ReauthRequired) {
        return Err(fail(
            2,
            format!(
                "a session for {} is already stored in {} (state {}); pass --replace to \
                 overwrite it with the imported one",
                args.provider,
                args.state_dir.display(),
                current.state
            ),
        ));
    }
    let from_file = ClientSettings {
        client_id: imported.client_id.clone(),
        client_secret: imported
            .client_secret
            .as_ref()
            .map(|s| s.expose().to_owned()),
        redirect_uri: imported.redirect_uri.clone(),
        ..ClientSettings::default()
    };
    let Setup {
        profile,
        client,
        state,
        settings,
    } = setup_with(args, true, from_file).await?;
    if let (Some(theirs), Some(ours)) = (&imported.token_endpoint, &profile.endpoints.token)
        && theirs != ours
    {
        err!(
            "note: the file names the token endpoint {theirs}; the {} profile's {ours} is used",
            profile.name
        );
    }
    for note in &imported.notes {
        err!("note: {note}");
    }
    let keeper = TokenKeeper::open(profile, session_config(), state.clone(), client)
        .await
        .map_err(|e| fail(2, e.to_string()))?;
    keeper
        .login(imported.tokens, Grant::RefreshToken)
        .await
        .map_err(|e| fail(1, e.to_string()))?;
    settings.save(&state).await?;
    err!(
        "imported a {} session into {}; stop the client that saved it: its copy of the refresh \
         token must not be used again (a provider that rotates refresh tokens revokes the \
         session when a spent one is replayed)",
        imported.format,
        args.state_dir.display()
    );
    Ok(())
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(2, format!("cannot start the async runtime: {e}")))
}

fn session_config() -> SessionConfig {
    SessionConfig::default()
}

/// The profile with the user's overrides, an HTTPS client, and the state directory. The
/// overrides are the arguments over the ones saved in `provider-<name>.json` (a successful
/// `login` or `token import` saves them, so later commands need only `--provider`).
pub(crate) async fn setup(args: &ProviderArgs) -> Result<(Profile, HttpClient, StateDir), Failure> {
    let setup = setup_with(args, false, ClientSettings::default()).await?;
    Ok((setup.profile, setup.client, setup.state))
}

/// What [`setup_with`] prepared.
struct Setup {
    profile: Profile,
    client: HttpClient,
    state: StateDir,
    /// The settings to save once the command succeeds.
    settings: SettingsUpdate,
}

/// The client settings `provider-<name>.json` keeps: what a login or an import was given
/// beyond the profile. No `Debug`: it holds the client secret.
#[derive(Default)]
struct ClientSettings {
    client_id: Option<String>,
    /// In the clear: the file is mode 0600, like the tokens next to it.
    client_secret: Option<String>,
    issuer: Option<String>,
    redirect_uri: Option<String>,
    ca_file: Option<String>,
}

impl ClientSettings {
    /// The settings in a saved `provider-<name>.json` (fields of other types ignored).
    fn from_saved(saved: &Value) -> ClientSettings {
        let get = |key: &str| saved.get(key).and_then(Value::as_str).map(str::to_owned);
        ClientSettings {
            client_id: get("client_id"),
            client_secret: get("client_secret"),
            issuer: get("issuer"),
            redirect_uri: get("redirect_uri"),
            ca_file: get("ca_file"),
        }
    }

    /// These settings with `over`'s values wherever it has one. A secret belongs to its
    /// client: when `over` names a client other than ours (`default_id` being the profile's)
    /// and brings no secret, ours is dropped rather than sent with the other client's id.
    fn overlaid(self, over: ClientSettings, default_id: &str) -> ClientSettings {
        let ours = self.client_id.as_deref().unwrap_or(default_id);
        let other_client = over.client_id.as_deref().is_some_and(|id| id != ours);
        let client_secret = match over.client_secret {
            Some(secret) => Some(secret),
            None if other_client => None,
            None => self.client_secret,
        };
        ClientSettings {
            client_id: over.client_id.or(self.client_id),
            client_secret,
            issuer: over.issuer.or(self.issuer),
            redirect_uri: over.redirect_uri.or(self.redirect_uri),
            ca_file: over.ca_file.or(self.ca_file),
        }
    }

    fn fields(&self) -> [(&'static str, Option<&String>); 5] {
        [
            ("client_id", self.client_id.as_ref()),
            ("issuer", self.issuer.as_ref()),
            ("redirect_uri", self.redirect_uri.as_ref()),
            ("client_secret", self.client_secret.as_ref()),
            ("ca_file", self.ca_file.as_ref()),
        ]
    }
}

/// The new content of `provider-<name>.json`, written by [`SettingsUpdate::save`] only when
/// the command that was given the settings succeeded (an unfinished login leaves the saved
/// ones as they were).
struct SettingsUpdate {
    name: String,
    /// `None` when the file would not change.
    bytes: Option<Vec<u8>>,
}

impl SettingsUpdate {
    /// `saved` (fields this version does not know kept) with `settings` written over it.
    fn new(name: String, saved: &Value, settings: &ClientSettings) -> SettingsUpdate {
        let mut doc = saved.as_object().cloned().unwrap_or_default();
        for (key, value) in settings.fields() {
            match value {
                Some(v) => doc.insert(key.to_owned(), Value::String(v.clone())),
                None => doc.remove(key),
            };
        }
        let doc = Value::Object(doc);
        let bytes = (doc != *saved).then(|| serde_json::to_vec_pretty(&doc).unwrap_or_default());
        SettingsUpdate { name, bytes }
    }

    /// Replaces the file (atomically, mode 0600: it may hold the client secret).
    async fn save(self, state: &StateDir) -> Result<(), Failure> {
        let Some(bytes) = self.bytes else {
            return Ok(());
        };
        state.write(&self.name, bytes).await.map_err(|e| {
            fail(
                2,
                format!(
                    "the session is stored, but the client settings could not be saved \
                     ({e}); later commands need the same --client-id, --client-secret-file, \
                     --issuer, --redirect-uri and --ca-file arguments"
                ),
            )
        })
    }
}

/// [`setup`] with the settings to save. `imported` (an imported file's client id, secret and
/// redirect URI) goes over the saved settings and under the arguments. `saving`: the command
/// saves the settings when it succeeds, so a saved file that is not JSON is replaced then
/// rather than refused now.
async fn setup_with(
    args: &ProviderArgs,
    saving: bool,
    imported: ClientSettings,
) -> Result<Setup, Failure> {
    let state = StateDir::open(&args.state_dir)
        .await
        .map_err(|e| fail(2, e.to_string()))?;
    let mut profile = match &args.profile_file {
        Some(path) => {
            let text = crate::read_text_limited(path, MAX_SETTINGS_FILE)
                .map_err(|(code, e)| fail(code, format!("--profile-file: {e}")))?;
            Profile::from_toml(&text).map_err(|e| fail(2, e.to_string()))?
        }
        None => Profile::builtin(&args.provider).map_err(|e| fail(2, e.to_string()))?,
    };
    let saved_name = format!("provider-{}.json", profile.name);
    let saved: Value = match state
        .read(&saved_name)
        .await
        .map_err(|e| fail(2, e.to_string()))?
    {
        Some(bytes) => match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) if saving => {
                err!("note: {saved_name} is not valid JSON ({e}); it is replaced at the end");
                json!({})
            }
            Err(e) => return Err(fail(2, format!("{saved_name} is not valid JSON: {e}"))),
        },
        None => json!({}),
    };
    let given = ClientSettings {
        client_id: args.client_id.clone(),
        client_secret: match &args.client_secret_file {
            Some(path) => Some(
                crate::read_text_limited(path, MAX_SETTINGS_FILE)
                    .map_err(|(code, e)| fail(code, format!("--client-secret-file: {e}")))?
                    .trim()
                    .to_owned(),
            ),
            None => None,
        },
        issuer: args.issuer.clone(),
        redirect_uri: args.redirect_uri.clone(),
        ca_file: args.ca_file.as_ref().map(|p| p.display().to_string()),
    };
    let default_id = profile.client.id.clone();
    let kept = if args.reset_settings {
        ClientSettings::default()
    } else {
        ClientSettings::from_saved(&saved)
    };
    let settings = kept
        .overlaid(imported, &default_id)
        .overlaid(given, &default_id);
    // Where a setting that fails came from: the arguments or the saved file.
    let origin = |given: bool| {
        if given {
            String::new()
        } else {
            format!(" (saved in {saved_name}; `--reset-settings` with a login forgets it)")
        }
    };
    if let Some(id) = &settings.client_id {
        profile = profile.with_client_id(id.clone());
    }
    if let Some(s) = &settings.client_secret {
        profile = profile.with_client_secret(Secret::new(s.clone()));
    }
    if let Some(r) = &settings.redirect_uri {
        profile = profile.with_redirect_uri(r.clone());
    }
    let mut http = HttpConfig::default();
    if let Some(path) = &settings.ca_file {
        let pem = crate::read_limited(std::path::Path::new(path), MAX_SETTINGS_FILE).map_err(
            |(code, e)| {
                fail(
                    code,
                    format!("--ca-file: {e}{}", origin(args.ca_file.is_some())),
                )
            },
        )?;
        http.extra_roots_pem = Some(pem);
    }
    let client = HttpClient::new(http).map_err(|e| fail(2, e.to_string()))?;
    if let Some(issuer) = &settings.issuer {
        profile = profile
            .with_issuer(issuer.clone())
            .map_err(|e| fail(2, e.to_string()))?;
        if profile.endpoints.token.is_none() {
            let resp = client.send(&discovery_request(issuer)).await.map_err(|e| {
                fail(
                    1,
                    format!(
                        "discovery at {issuer} failed: {e}{}",
                        origin(args.issuer.is_some())
                    ),
                )
            })?;
            let endpoints = parse_discovery(&resp, issuer).map_err(|e| fail(1, e.to_string()))?;
            profile = profile
                .with_endpoints(endpoints)
                .map_err(|e| fail(1, e.to_string()))?;
        }
    }
    let settings = SettingsUpdate::new(saved_name, &saved, &settings);
    Ok(Setup {
        profile,
        client,
        state,
        settings,
    })
}

pub(crate) async fn open(args: &ProviderArgs) -> Result<TokenKeeper, Failure> {
    let (profile, client, state) = setup(args).await?;
    let observer: latchkey_tokio::keeper::Observer = Box::new(|event: &Event| {
        if let Some(line) = event_json(event) {
            err!("{line}");
        }
    });
    Ok(TokenKeeper::open(profile, session_config(), state, client)
        .await
        .map_err(|e| fail(2, e.to_string()))?
        .with_observer(observer))
}

/// Authorization code login: loopback capture or paste.
async fn code_login(
    profile: &Profile,
    client: &HttpClient,
    mode: &LoginMode,
) -> Result<latchkey_oauth_core::response::TokenResponse, Failure> {
    let mut rng = crate::OsRng;
    let listener = if mode.loopback {
        Some(
            TcpListener::bind(("127.0.0.1", mode.port.unwrap_or(0)))
                .await
                .map_err(|e| {
                    fail(
                        2,
                        format!("cannot listen on 127.0.0.1:{}: {e}", mode.port.unwrap_or(0)),
                    )
                })?,
        )
    } else {
        None
    };
    let mut options = AuthorizeOptions::default();
    if let Some(l) = &listener {
        let port = l.local_addr().map_err(|e| fail(2, e.to_string()))?.port();
        options.redirect_uri = Some(format!("http://127.0.0.1:{port}/callback"));
    }
    let auth =
        authorization_request(profile, &options, &mut rng).map_err(|e| fail(2, e.to_string()))?;
    err!("Open this URL in a browser and sign in:\n\n{}\n", auth.url);
    if mode.open {
        open_in_browser(&auth.url);
    }
    let redirect = match listener {
        Some(l) => capture_redirect(l).await?,
        None => {
            err!("Then paste the whole URL the browser was sent to (it may show an error page):");
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| fail(2, format!("cannot read standard input: {e}")))?;
            line
        }
    };
    let code = parse_redirect(&redirect, &auth, &profile.authorize.code_params)
        .map_err(|e| fail(1, e.to_string()))?;
    exchange_code(profile, client, &code, &auth).await
}

/// Exchanges the authorization `code` that answered `auth` for tokens at the token endpoint.
async fn exchange_code(
    profile: &Profile,
    client: &HttpClient,
    code: &AuthorizationCode,
    auth: &AuthorizationRequest,
) -> Result<latchkey_oauth_core::response::TokenResponse, Failure> {
    let req =
        request::authorization_code(profile, &code.code, auth.pkce.as_ref(), &auth.redirect_uri)
            .map_err(|e| fail(2, e.to_string()))?;
    let resp = client
        .send(&req)
        .await
        .map_err(|e| fail(1, e.to_string()))?;
    parse_token_response(&resp, now(), &profile.response).map_err(|e| fail(1, e.to_string()))
}

/// `--headless`: B2C's sign-in page API driven by `latchkey_oauth_core::b2c`, then the
/// usual code exchange. The password is read from a file or standard input (not echoed on a
/// terminal), never stored.
async fn headless_login(
    profile: &Profile,
    client: &HttpClient,
    mode: &LoginMode,
) -> Result<latchkey_oauth_core::response::TokenResponse, Failure> {
    let username = mode.username.clone().unwrap_or_default();
    let password = match &mode.password_file {
        Some(path) => crate::read_text_limited(path, MAX_SETTINGS_FILE)
            .map_err(|(code, e)| fail(code, format!("--password-file: {e}")))?,
        None => {
            // Not shown as it is typed when standard input is a terminal.
            err!("Password for {username}:");
            crate::tty::read_secret_line().map_err(|e| match e {
                crate::tty::ReadError::Cancelled => fail(2, "cancelled"),
                crate::tty::ReadError::Failed(message) => fail(2, message),
                crate::tty::ReadError::Signalled(status) => {
                    fail(status, "interrupted by a signal at the password prompt")
                }
            })?
        }
    };
    let password = Secret::new(password.trim_end_matches(['\r', '\n']).to_owned());
    if password.expose().is_empty() {
        return Err(fail(2, "the password is empty"));
    }
    let auth = authorization_request(profile, &AuthorizeOptions::default(), &mut crate::OsRng)
        .map_err(|e| fail(2, e.to_string()))?;
    let config = HeadlessConfig::for_profile(profile);
    let (mut flow, mut request) =
        HeadlessLogin::start(auth.clone(), Credentials::new(username, password), config)
            .map_err(|e| fail(2, e.to_string()))?;
    // Page, its same-site redirects, credentials, confirmation: a dozen exchanges at most.
    let mut code = None;
    for _ in 0..12 {
        let response = client
            .send(&request)
            .await
            .map_err(|e| fail(1, format!("headless sign-in: {e}")))?;
        match flow
            .handle_response(&response)
            .map_err(|e| fail(1, e.to_string()))?
        {
            HeadlessNext::Send(next) => request = next,
            HeadlessNext::Code(c) => {
                code = Some(c);
                break;
            }
            _ => break,
        }
    }
    let code = code.ok_or_else(|| fail(1, "headless sign-in: no code after 12 exchanges"))?;
    exchange_code(profile, client, &code, &auth).await
}

/// Hands `url` to the desktop's opener without waiting for it; a failure only prints a note
/// (the URL is already on the screen).
fn open_in_browser(url: &str) {
    let mut command = if cfg!(target_os = "macos") {
        std::process::Command::new("open")
    } else if cfg!(windows) {
        let mut c = std::process::Command::new("cmd");
        // `start` takes the first quoted argument as a window title.
        c.args(["/C", "start", ""]);
        c
    } else {
        std::process::Command::new("xdg-open")
    };
    let spawned = command
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match spawned {
        // Reap it in the background so no zombie stays behind.
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
        }
        Err(e) => err!("note: could not open a browser ({e}); open the URL yourself"),
    }
}

/// Accepts browser connections on the loopback listener until one carries the redirect
/// (bounded: 10 minutes, 64 connections, 16 KiB per request head).
async fn capture_redirect(listener: TcpListener) -> Result<String, Failure> {
    let wait = async {
        for _ in 0..64 {
            let (mut sock, _) = listener
                .accept()
                .await
                .map_err(|e| fail(2, e.to_string()))?;
            let target = read_request_head(&mut sock, 16 * 1024)
                .await
                .map(|(_, path)| path);
            let Some(target) = target.filter(|t| t.starts_with("/callback")) else {
                let _ = sock
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    )
                    .await;
                continue;
            };
            let page = "<!doctype html><title>latchkey</title><p>Signed in. You can close this tab and return to the terminal.</p>";
            let _ = sock
                .write_all(format!("HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}", page.len()).as_bytes())
                .await;
            return Ok(target);
        }
        Err(fail(1, "no redirect arrived on the loopback listener"))
    };
    tokio::time::timeout(Duration::from_secs(600), wait)
        .await
        .map_err(|_| fail(1, "no redirect within 10 minutes"))?
}

async fn device_login(
    profile: &Profile,
    client: &HttpClient,
) -> Result<latchkey_oauth_core::response::TokenResponse, Failure> {
    let mut flow = DeviceFlow::start(profile.clone(), now()).map_err(|e| fail(2, e.to_string()))?;
    loop {
        while let Some(event) = flow.poll_event() {
            match event {
                DeviceEvent::SendRequest { id, request } => {
                    let result = client.send(&request).await;
                    flow.handle_response(now(), id, result);
                }
                DeviceEvent::ShowCode(code) => {
                    err!(
                        "On another device, open {} and enter the code {}",
                        code.verification_uri,
                        code.user_code
                    );
                    if let Some(full) = code.verification_uri_complete {
                        err!("(or open {full})");
                    }
                }
                DeviceEvent::Completed(tokens) => return Ok(*tokens),
                DeviceEvent::Failed(e) => return Err(fail(1, e.to_string())),
                _ => {}
            }
        }
        let Some(at) = flow.poll_timeout() else {
            return Err(fail(1, "device flow ended without tokens"));
        };
        tokio::time::sleep(Duration::from_secs(at.saturating_sub(now()).max(1))).await;
        flow.handle_timeout(now());
    }
}

/// Reads one HTTP/1.1 request head (at most `limit` bytes, 10 s) and returns its method and
/// target; `None` for anything that is not a complete, well-formed head in time.
async fn read_request_head(
    sock: &mut tokio::net::TcpStream,
    limit: usize,
) -> Option<(String, String)> {
    let mut buf = vec![0u8; limit];
    let mut len = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), sock.read(&mut buf[len..])).await {
            Ok(Ok(n)) if n > 0 => len += n,
            _ => return None,
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[..len]) {
            Ok(httparse::Status::Complete(_)) => {
                return Some((req.method?.to_owned(), req.path?.to_owned()));
            }
            Ok(httparse::Status::Partial) if len < buf.len() => {}
            _ => return None,
        }
    }
}

/// What `token keep --utec` needs to answer the device endpoints.
struct UtecLocal {
    api: latchkey_oauth_core::cloud::utec::UtecApi,
    base: String,
    scope: String,
    /// The last Query answer and when it came (`/api/status/latest`).
    latest: std::sync::Mutex<Option<(Value, u64)>>,
}

/// `token keep`: the keeper's timer loop plus the U-tec gateways' endpoints (the routes are
/// `latchkey_oauth_core::cloud::utec_local`'s; without --utec only /health and the refresh).
async fn keep(
    keeper: TokenKeeper,
    listen: &str,
    utec: Option<std::sync::Arc<UtecLocal>>,
    allow_hosts: Vec<String>,
) -> Result<(), Failure> {
    let allow_hosts = std::sync::Arc::new(allow_hosts);
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| fail(2, format!("cannot listen on {listen}: {e}")))?;
    // The address really bound (`--listen 127.0.0.1:0` picks a free port).
    let bound = listener
        .local_addr()
        .map_or_else(|_| listen.to_owned(), |a| a.to_string());
    if utec.is_some() {
        err!("keeping tokens fresh; U-tec gateway endpoints on http://{bound}/");
    } else {
        err!("keeping tokens fresh; health on http://{bound}/health");
    }
    let runner = keeper.clone();
    // At most 32 requests at once; each is bounded in time by `read_request`.
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(32));
    // The requests being answered: stopped before the final settle, so none starts a
    // refresh after it.
    let mut tasks = tokio::task::JoinSet::new();
    let serve = async {
        loop {
            while tasks.try_join_next().is_some() {}
            let (mut sock, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or similar: pause instead of spinning.
                    err!("health endpoint: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().acquire_owned().await else {
                continue;
            };
            let keeper = keeper.clone();
            let utec = utec.clone();
            let allow_hosts = allow_hosts.clone();
            tasks.spawn(async move {
                let _slot = slot;
                let (status, body) = match read_request(&mut sock).await {
                    Ok((head, body)) => {
                        let pairs = head.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
                        match latchkey_oauth_core::cloud::utec_local::admit(pairs, &allow_hosts) {
                            Ok(()) => answer(&keeper, utec.as_deref(), head, body).await,
                            Err(refused) => refused,
                        }
                    }
                    Err((status, message)) => {
                        (status, json!({"status": "error", "message": message}))
                    }
                };
                let body = body.to_string();
                let reason = latchkey_gateway::http1::reason_phrase(status);
                let _ = sock
                    .write_all(format!("HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes())
                    .await;
            });
        }
    };
    tokio::select! {
        () = runner.run() => {}
        () = serve => {}
        () = crate::serve::wait_for_signal_tokio() => {}
    }
    tasks.abort_all();
    // SIGINT/SIGTERM: a refresh under way is answered and saved first (stopping in the
    // middle could lose a rotated refresh token the server already issued; an aborted
    // request's part of it is finished here too).
    tokio::select! {
        settled = keeper.settle(latchkey_tokio::keeper::SETTLE_LIMIT) => {
            if !settled {
                err!("stopping with a refresh still unanswered");
            }
        }
        () = crate::serve::wait_for_signal_tokio() => {
            err!("a second signal: stopping without waiting for the refresh");
        }
    }
    Ok(())
}

/// One request: method, path, query, body (framing rules: `latchkey_gateway::http1`; head
/// 8 KiB, body 16 KiB, 10 s in all).
async fn read_request(
    sock: &mut tokio::net::TcpStream,
) -> Result<(latchkey_gateway::Request, Vec<u8>), (u16, String)> {
    use latchkey_gateway::http1::{BodyFraming, parse_head};
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut read_more = async |buf: &mut Vec<u8>| -> Result<(), (u16, String)> {
        match tokio::time::timeout_at(deadline, sock.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => {
                buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Ok(_) => Err((400, "the request ended early".to_owned())),
            Err(_) => Err((408, "the request did not arrive in time".to_owned())),
        }
    };
    let head = loop {
        match parse_head(&buf, 8192) {
            Ok(Some(head)) => break head,
            Ok(None) => read_more(&mut buf).await?,
            Err(r) => return Err((r.status, r.reason.to_owned())),
        }
    };
    let len = match head.body {
        BodyFraming::Length(n) if n <= latchkey_oauth_core::cloud::utec_local::MAX_BODY => n,
        BodyFraming::Length(_) => return Err((413, "request body too large".to_owned())),
        BodyFraming::Chunked => return Err((411, "send a Content-Length".to_owned())),
        _ => 0,
    };
    while buf.len() < head.len + len {
        read_more(&mut buf).await?;
    }
    let body = buf[head.len..head.len + len].to_vec();
    Ok((head.request, body))
}

/// The answer to one request (see `latchkey_oauth_core::cloud::utec_local`).
async fn answer(
    keeper: &TokenKeeper,
    utec: Option<&UtecLocal>,
    head: latchkey_gateway::Request,
    body: Vec<u8>,
) -> (u16, Value) {
    use latchkey_oauth_core::cloud::utec;
    use latchkey_oauth_core::cloud::utec_local::{self, Route};
    let method = match head.method {
        latchkey_gateway::Method::Get => "GET".to_owned(),
        latchkey_gateway::Method::Head => "HEAD".to_owned(),
        latchkey_gateway::Method::Post => "POST".to_owned(),
        latchkey_gateway::Method::Put => "PUT".to_owned(),
        latchkey_gateway::Method::Delete => "DELETE".to_owned(),
        latchkey_gateway::Method::Other(m) => m,
        _ => "OTHER".to_owned(),
    };
    let route = utec_local::route(&method, &head.path, &head.query, &body);
    let cloud_only = matches!(
        route,
        Route::Config | Route::Devices | Route::Status(_) | Route::StatusLatest | Route::Lock(..)
    );
    let Some(local) = utec.filter(|_| cloud_only) else {
        return match route {
            Route::Health => (200, utec_local::health(&keeper.status(), now(), true)),
            Route::Refresh => match keeper.refresh().await {
                Ok(()) => (
                    200,
                    json!({"status": "ok", "message": "token refreshed", "expires_at": keeper.status().access_expires_at}),
                ),
                Err(e) => (500, json!({"status": "error", "message": e.to_string()})),
            },
            Route::Answer(status, v) => (status, v),
            _ => (
                404,
                json!({"status": "error", "message": "not found (start with --utec)"}),
            ),
        };
    };
    let message_id = || {
        let mut id = [0u8; 16];
        let _ = getrandom::fill(&mut id);
        id
    };
    let fail_502 = |e: String| (502, json!({"status": "error", "message": e}));
    match route {
        Route::Config => (
            200,
            utec_local::config(&keeper.status(), now(), &local.base, &local.scope),
        ),
        Route::StatusLatest => {
            let latest = local
                .latest
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            (200, utec_local::latest_answer(latest.as_ref()))
        }
        Route::Devices => {
            let id = message_id();
            match keeper
                .send_authorized_with(|t| local.api.discovery(t, id))
                .await
            {
                Ok(r) => match utec::parse_payload(&r, "discovery") {
                    Ok(payload) => (200, utec_local::devices_answer(&payload)),
                    Err(e) => fail_502(e.to_string()),
                },
                Err(e) => fail_502(e.to_string()),
            }
        }
        Route::Status(ids) => {
            let id = message_id();
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            match keeper
                .send_authorized_with(|t| local.api.query(t, &refs, id))
                .await
            {
                Ok(r) => match utec::parse_payload(&r, "query") {
                    Ok(payload) => {
                        let v = json!({"payload": payload});
                        *local
                            .latest
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) =
                            Some((v["payload"].clone(), now()));
                        (200, v)
                    }
                    Err(e) => fail_502(e.to_string()),
                },
                Err(e) => fail_502(e.to_string()),
            }
        }
        Route::Lock(device, command) => {
            let id = message_id();
            match keeper
                .send_authorized_with(|t| local.api.lock(t, &device, command, id))
                .await
            {
                Ok(r) => match utec::parse_payload(&r, "lock") {
                    Ok(payload) => (200, json!({"status": "ok", "payload": payload})),
                    Err(e) => fail_502(e.to_string()),
                },
                Err(e) => fail_502(e.to_string()),
            }
        }
        _ => (404, json!({"status": "error", "message": "not found"})),
    }
}

fn status_json(st: &Status) -> Value {
    json!({
        "state": st.state.as_str(),
        "token_valid": st.token_valid,
        "access_expires_at": st.access_expires_at,
        "has_refresh_token": st.has_refresh_token,
        "refresh_issued_at": st.refresh_issued_at,
        "refresh_token_age_secs": st.refresh_issued_at.map(|t| now().saturating_sub(t)),
        "refresh_expires_at": st.refresh_expires_at,
        "session_started_at": st.session_started_at,
        "last_refresh_at": st.last_refresh_at,
        "next_action_at": st.next_action_at,
        "failures": st.failures,
        "last_error": st.last_error,
        "reauth_reason": st.reauth_reason,
        "clock_skew_secs": st.clock_skew,
    })
}

fn status_text(st: &Status) -> String {
    let now = now();
    let rel = |t: Option<u64>| match t {
        Some(t) if t >= now => format!("in {} s (Unix {t})", t - now),
        Some(t) => format!("{} s ago (Unix {t})", now - t),
        None => "unknown".to_owned(),
    };
    let mut s = format!("state:             {}\n", st.state);
    s += &format!(
        "access token:      {}, expires {}\n",
        if st.token_valid { "valid" } else { "not valid" },
        rel(st.access_expires_at)
    );
    s += &format!(
        "refresh token:     {}\n",
        if st.has_refresh_token {
            format!("issued {}", rel(st.refresh_issued_at))
        } else {
            "none".to_owned()
        }
    );
    if st.refresh_expires_at.is_some() {
        s += &format!("refresh expires:   {}\n", rel(st.refresh_expires_at));
    }
    s += &format!("last refresh:      {}\n", rel(st.last_refresh_at));
    s += &format!("next action:       {}\n", rel(st.next_action_at));
    if let Some(e) = &st.last_error {
        s += &format!("last error:        {e} ({} failures)\n", st.failures);
    }
    if let Some(r) = &st.reauth_reason {
        s += &format!("log in again:      {r}\n");
    }
    s
}

/// One JSON line per application event (no secrets: effects are never passed here).
fn event_json(event: &Event) -> Option<String> {
    let v = match event {
        Event::TokenCreated { expires_at } => {
            json!({"event": "token_created", "expires_at": expires_at})
        }
        Event::TokenRefreshed {
            expires_at,
            rotated,
            source,
        } => {
            json!({"event": "token_refreshed", "expires_at": expires_at, "rotated": rotated, "source": format!("{source:?}").to_lowercase()})
        }
        Event::RefreshFailed {
            error,
            failures,
            retry_at,
        } => {
            json!({"event": "refresh_failed", "error": error.to_string(), "failures": failures, "retry_at": retry_at})
        }
        Event::ReauthRequired { reason } => json!({"event": "reauth_required", "reason": reason}),
        Event::ReauthSoon { refresh_expires_at } => {
            json!({"event": "reauth_soon", "refresh_expires_at": refresh_expires_at})
        }
        _ => return None,
    };
    Some(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(id: Option<&str>, secret: Option<&str>) -> ClientSettings {
        ClientSettings {
            client_id: id.map(str::to_owned),
            client_secret: secret.map(str::to_owned),
            ..ClientSettings::default()
        }
    }

    #[test]
    fn given_settings_go_over_the_saved_ones_and_keep_the_rest() {
        let saved = ClientSettings {
            issuer: Some("https://issuer.example".into()),
            ca_file: Some("/etc/ca.pem".into()),
            ..settings(Some("AK-1"), Some("SK-1"))
        };
        let given = ClientSettings {
            redirect_uri: Some("https://example.org/cb".into()),
            ..ClientSettings::default()
        };
        let merged = saved.overlaid(given, "");
        assert_eq!(merged.client_id.as_deref(), Some("AK-1"));
        assert_eq!(merged.client_secret.as_deref(), Some("SK-1"));
        assert_eq!(merged.issuer.as_deref(), Some("https://issuer.example"));
        assert_eq!(
            merged.redirect_uri.as_deref(),
            Some("https://example.org/cb")
        );
        assert_eq!(merged.ca_file.as_deref(), Some("/etc/ca.pem"));
        let merged = merged.overlaid(settings(Some("AK-1"), Some("SK-2")), "");
        assert_eq!(merged.client_secret.as_deref(), Some("SK-2"));
    }

    #[test]
    fn a_saved_secret_is_never_sent_with_another_client_id() {
        let saved = settings(Some("AK-1"), Some("SK-1"));
        let merged = saved.overlaid(settings(Some("AK-2"), None), "");
        assert_eq!(merged.client_id.as_deref(), Some("AK-2"));
        assert_eq!(merged.client_secret, None);
        // The same id given again (or the profile's own, when none is saved) keeps it.
        let merged =
            settings(Some("AK-1"), Some("SK-1")).overlaid(settings(Some("AK-1"), None), "");
        assert_eq!(merged.client_secret.as_deref(), Some("SK-1"));
        let merged =
            settings(None, Some("SK-1")).overlaid(settings(Some("builtin"), None), "builtin");
        assert_eq!(merged.client_secret.as_deref(), Some("SK-1"));
    }

    #[test]
    fn the_saved_file_is_rewritten_only_when_it_changes_and_keeps_unknown_fields() {
        let saved = json!({"client_id": "AK-1", "client_secret": "SK-1", "later": 7});
        let same = ClientSettings::from_saved(&saved);
        assert!(
            SettingsUpdate::new("p.json".into(), &saved, &same)
                .bytes
                .is_none()
        );
        let changed = same.overlaid(settings(Some("AK-2"), None), "");
        let bytes = SettingsUpdate::new("p.json".into(), &saved, &changed)
            .bytes
            .unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v, json!({"client_id": "AK-2", "later": 7}));
    }
}
