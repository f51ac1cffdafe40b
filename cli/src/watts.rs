//! `latchkey watts …`: the Watts Home API (thermostats) with the session of
//! `latchkey login --provider watts`. Requests and parsing are
//! `latchkey_oauth_core::cloud::watts`; the token keeper sends them (refresh and one retry
//! after a 401). Setpoint field names are unconfirmed (see that module); `--hold` picks the
//! schedule-hold names.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use latchkey_oauth_core::cloud::watts::{self, SetpointFields, WattsApi};
use latchkey_oauth_core::http::{HttpRequest, HttpResponse};
use latchkey_oauth_core::secret::Secret;
use latchkey_tokio::keeper::TokenKeeper;
use serde_json::json;

use crate::oauth::{self, Failure, ProviderArgs, fail};

/// Where the session lives (shared by every `watts` command).
#[derive(Args, Debug)]
pub(crate) struct WattsArgs {
    /// State directory (the session of `latchkey login --provider watts`).
    #[arg(long, default_value = "./latchkey-data")]
    state_dir: PathBuf,
    /// Extra CA certificates (PEM) to trust (tests, proxies).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// A profile of your own instead of the shipped `watts` one (tests, other tenants).
    #[arg(long)]
    profile_file: Option<PathBuf>,
}

/// `latchkey watts …`
#[derive(Subcommand, Debug)]
pub(crate) enum WattsCommand {
    /// List every location and its devices (one JSON line each with --json).
    Devices {
        #[command(flatten)]
        args: WattsArgs,
        /// One JSON object per device.
        #[arg(long)]
        json: bool,
    },
    /// Set a thermostat's heat and cool setpoints (always both: one alone can reset the
    /// other).
    Set {
        #[command(flatten)]
        args: WattsArgs,
        /// The device id.
        #[arg(long)]
        device: String,
        /// Heating setpoint.
        #[arg(long)]
        heat: f64,
        /// Cooling setpoint.
        #[arg(long)]
        cool: f64,
        /// Hold while a schedule runs (`HeatHold`/`CoolHold`; unverified).
        #[arg(long)]
        hold: bool,
    },
    /// Set a location away or home.
    Away {
        #[command(flatten)]
        args: WattsArgs,
        /// The location id.
        #[arg(long)]
        location: String,
        /// on (away) or off (home).
        state: OnOff,
    },
}

/// Away on or off.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum OnOff {
    /// Away.
    On,
    /// Home.
    Off,
}

/// Runs `latchkey watts …`.
pub(crate) fn run(command: WattsCommand) -> Result<(), Failure> {
    oauth::runtime()?.block_on(async move {
        match command {
            WattsCommand::Devices { args, json } => devices(&args, json).await,
            WattsCommand::Set {
                args,
                device,
                heat,
                cool,
                hold,
            } => {
                if !heat.is_finite() || !cool.is_finite() || heat > cool {
                    return Err(fail(
                        2,
                        format!("--heat {heat} must be a number at most --cool {cool}"),
                    ));
                }
                let fields = if hold {
                    SetpointFields::hold()
                } else {
                    SetpointFields::plain()
                };
                let (api, keeper) = open(&args).await?;
                let r = call(&keeper, |t| {
                    api.set_setpoints(t, &device, &fields, heat, cool)
                })
                .await?;
                watts::parse_envelope(&r, "set setpoints").map_err(|e| fail(1, e.to_string()))?;
                out!(
                    "{}",
                    json!({"device": device, "heat": heat, "cool": cool, "hold": hold})
                );
                Ok(())
            }
            WattsCommand::Away {
                args,
                location,
                state,
            } => {
                let (api, keeper) = open(&args).await?;
                let away = state == OnOff::On;
                let r = call(&keeper, |t| api.set_away(t, &location, away)).await?;
                watts::parse_envelope(&r, "away state").map_err(|e| fail(1, e.to_string()))?;
                out!("{}", json!({"location": location, "away": away}));
                Ok(())
            }
        }
    })
}

async fn open(args: &WattsArgs) -> Result<(WattsApi, TokenKeeper), Failure> {
    let provider = ProviderArgs::for_provider(
        "watts",
        args.state_dir.clone(),
        args.ca_file.clone(),
        args.profile_file.clone(),
    );
    let (profile, _, _) = oauth::setup(&provider).await?;
    let api = WattsApi::for_profile(&profile).map_err(|e| fail(2, e.to_string()))?;
    let keeper = oauth::open(&provider).await?;
    Ok((api, keeper))
}

async fn call<F>(keeper: &TokenKeeper, build: F) -> Result<HttpResponse, Failure>
where
    F: Fn(&Secret) -> HttpRequest + Send + Sync,
{
    keeper
        .send_authorized_with(build)
        .await
        .map_err(|e| fail(1, e.to_string()))
}

async fn devices(args: &WattsArgs, as_json: bool) -> Result<(), Failure> {
    let (api, keeper) = open(args).await?;
    let r = call(&keeper, |t| api.locations(t)).await?;
    let locations = watts::parse_locations(&r).map_err(|e| fail(1, e.to_string()))?;
    for location in &locations {
        let r = call(&keeper, |t| api.devices(t, &location.id)).await?;
        let devices = watts::parse_devices(&r).map_err(|e| fail(1, e.to_string()))?;
        if !as_json {
            out!("{} ({})", location.name, location.id);
        }
        for d in devices {
            if as_json {
                out!(
                    "{}",
                    json!({"location": location.id, "location_name": location.name,
                           "id": d.id, "name": d.name, "device": d.raw})
                );
            } else {
                out!("  {} ({})", d.name, d.id);
            }
        }
    }
    Ok(())
}
