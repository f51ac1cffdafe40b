//! `latchkey serve`: the local gateway (RemoteUI panels, the door-station admin pages, U-tec
//! compatible health and token endpoints) on tokio or on smol.
//!
//! Everything it does is `latchkey_tokio::serve` / `latchkey_smol::serve` (the same shared
//! driver) over `latchkey-gateway`; this file picks the runtime, turns SIGINT/SIGTERM into a
//! graceful shutdown and prints one JSON line per event on standard output.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use serde_json::json;

use crate::oauth::{Failure, ProviderArgs, fail};

/// Which async runtime drives the gateway.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum RuntimeArg {
    /// tokio (multi-threaded).
    Tokio,
    /// smol (async-executor on as many threads, async-io reactor).
    Smol,
}

/// Arguments of `latchkey serve`.
#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    /// State directory (created 0700; files 0600).
    #[arg(long, default_value = "./latchkey-data")]
    state_dir: PathBuf,
    /// HTTPS address.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Plain-HTTP address that redirects to HTTPS.
    #[arg(long, default_value = "127.0.0.1:8080", conflicts_with = "no_http")]
    http_listen: SocketAddr,
    /// No redirecting HTTP port.
    #[arg(long)]
    no_http: bool,
    /// Host name for the setup link (default: the HTTPS address).
    #[arg(long)]
    public_host: Option<String>,
    /// Extra DNS name or IP address for the self-signed certificate (repeatable).
    #[arg(long = "cert-name")]
    cert_names: Vec<String>,
    /// Async runtime.
    #[arg(long, value_enum, default_value_t = RuntimeArg::Tokio)]
    runtime: RuntimeArg,
    /// Worker threads (default: the number of CPUs).
    #[arg(long)]
    threads: Option<usize>,
    /// Open connections at most.
    #[arg(long, default_value_t = 4096)]
    max_connections: usize,
    /// Open connections from one IP address at most.
    #[arg(long, default_value_t = 256)]
    max_connections_per_ip: usize,
    /// Panel WebSocket connections at most.
    #[arg(long, default_value_t = 1024)]
    max_panels: usize,
    /// Show and refresh this provider's token session (from `latchkey login`) on `/health`
    /// and the dashboard.
    #[arg(long)]
    token_provider: Option<String>,
}

/// Runs `latchkey serve` until SIGINT or SIGTERM.
pub(crate) fn run(args: ServeArgs) -> Result<(), Failure> {
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
    });
    if threads == 0 {
        return Err(fail(2, "--threads must be at least 1"));
    }
    match args.runtime {
        RuntimeArg::Tokio => run_tokio(&args, threads),
        RuntimeArg::Smol => run_smol(&args, threads),
    }
}

/// Prints a gateway event as one JSON line.
fn print_event(event: &str, fields: serde_json::Value) {
    let mut line = json!({"event": event});
    if let (Some(line), Some(fields)) = (line.as_object_mut(), fields.as_object()) {
        line.extend(fields.clone());
    }
    out!("{line}");
}

macro_rules! serve_on {
    ($module:ident, $crate_:ident) => {
        mod $module {
            use super::*;
            use ::$crate_::serve::{Gateway, ServeConfig, ServeEvent};
            use ::$crate_::state::StateDir;

            pub(super) fn config(args: &ServeArgs) -> ServeConfig {
                let mut config = ServeConfig::default();
                config.https = args.listen;
                config.http_redirect = (!args.no_http).then_some(args.http_listen);
                config.public_host = args.public_host.clone();
                config.cert_names = args.cert_names.clone();
                config.max_connections = args.max_connections;
                config.max_connections_per_ip = args.max_connections_per_ip;
                config.app.max_connections = args.max_panels;
                config.observer = Some(Box::new(|event: &ServeEvent| observe(event)));
                config
            }

            fn observe(event: &ServeEvent) {
                match event {
                    ServeEvent::Listening { https, http } => {
                        print_event("listening", json!({"https": https.to_string(),
                            "http": http.map(|h| h.to_string())}));
                    }
                    ServeEvent::SetupLink { url } => {
                        print_event("setup_link", json!({"url": url}));
                        err!("Set the admin password (once) at: {url}");
                    }
                    ServeEvent::IoState { io, state } => {
                        print_event("io_state", json!({"io": io, "state": state}));
                    }
                    ServeEvent::ShuttingDown { connections } => {
                        print_event("shutting_down", json!({"connections": connections}));
                    }
                    ServeEvent::Stopped => print_event("stopped", json!({})),
                    ServeEvent::PersistFailed { file, reason } => {
                        print_event("persist_failed", json!({"file": file, "reason": reason}));
                    }
                    other => {
                        let kind = match other {
                            ServeEvent::Certificate(_) => "certificate",
                            ServeEvent::Security(_) => "security",
                            ServeEvent::TokenSettings { .. } => "token_settings",
                            _ => "gateway",
                        };
                        print_event(kind, json!({"detail": other.to_string()}));
                    }
                }
            }

            pub(super) async fn start(
                config: ServeConfig,
                state_dir: &std::path::Path,
            ) -> Result<Gateway, Failure> {
                let state = StateDir::open(state_dir)
                    .await
                    .map_err(|e| fail(2, e.to_string()))?;
                // Could not start (a port taken, unusable state): exit 2, as every command
                // that cannot run.
                Gateway::start(config, state)
                    .await
                    .map_err(|e| fail(2, e.to_string()))
            }
        }
    };
}

serve_on!(on_tokio, latchkey_tokio);
serve_on!(on_smol, latchkey_smol);

fn run_tokio(args: &ServeArgs, threads: usize) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| fail(2, format!("cannot start the tokio runtime: {e}")))?;
    runtime.block_on(async {
        let mut config = on_tokio::config(args);
        if let Some(provider) = &args.token_provider {
            let keeper = crate::oauth::open(&ProviderArgs::for_provider(
                provider,
                args.state_dir.clone(),
                None,
                None,
            ))
            .await?;
            config.token = Some(keeper);
        }
        let gateway = on_tokio::start(config, &args.state_dir).await?;
        let stopper = gateway.clone();
        tokio::spawn(async move {
            wait_for_signal_tokio().await;
            stopper.shutdown();
            // A second signal does not wait for the graceful end (up to 10 s of requests
            // and 30 s of a token refresh).
            wait_for_signal_tokio().await;
            err!("a second signal: stopping at once");
            std::process::exit(130);
        });
        gateway.run(tokio::runtime::Handle::current()).await;
        Ok(())
    })
}

/// Completes at SIGINT or SIGTERM.
pub(crate) async fn wait_for_signal_tokio() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn run_smol(args: &ServeArgs, threads: usize) -> Result<(), Failure> {
    // The provider's profile and its extra CA roots, resolved as every OAuth command does
    // (that resolution happens to use the tokio client; nothing of it runs later).
    let token = match &args.token_provider {
        Some(provider) => {
            let provider = ProviderArgs::for_provider(provider, args.state_dir.clone(), None, None);
            let (profile, client, _) =
                crate::oauth::runtime()?.block_on(crate::oauth::setup(&provider))?;
            Some((profile, client.config().extra_roots_pem.clone()))
        }
        None => None,
    };
    let executor = Arc::new(async_executor::Executor::new());
    let done = event_listener::Event::new();
    let finished = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 1..threads {
            let executor = Arc::clone(&executor);
            let (done, finished) = (&done, &finished);
            scope.spawn(move || {
                async_io::block_on(executor.run(async {
                    loop {
                        let listener = done.listen();
                        if finished.load(std::sync::atomic::Ordering::Acquire) {
                            return;
                        }
                        listener.await;
                    }
                }));
            });
        }
        let result = async_io::block_on(executor.run(async {
            let mut config = on_smol::config(args);
            if let Some((profile, extra_roots_pem)) = token {
                config.token = Some(smol_keeper(profile, extra_roots_pem, &args.state_dir).await?);
            }
            let gateway = on_smol::start(config, &args.state_dir).await?;
            let stopper = gateway.clone();
            executor
                .spawn(async move {
                    wait_for_signal_smol().await;
                    stopper.shutdown();
                    // A second signal does not wait for the graceful end.
                    wait_for_signal_smol().await;
                    err!("a second signal: stopping at once");
                    std::process::exit(130);
                })
                .detach();
            gateway.run(Arc::clone(&executor)).await;
            Ok(())
        }));
        finished.store(true, std::sync::atomic::Ordering::Release);
        done.notify(usize::MAX);
        result
    })
}

async fn wait_for_signal_smol() {
    use futures_lite::StreamExt as _;
    match async_signal::Signals::new([async_signal::Signal::Int, async_signal::Signal::Term]) {
        Ok(mut signals) => {
            let _ = signals.next().await;
        }
        // No signal handling: run until killed.
        Err(_) => std::future::pending().await,
    }
}

/// The token keeper on the smol-family driver.
async fn smol_keeper(
    profile: latchkey_oauth_core::profile::Profile,
    extra_roots_pem: Option<Vec<u8>>,
    state_dir: &std::path::Path,
) -> Result<latchkey_smol::keeper::TokenKeeper, Failure> {
    let state = latchkey_smol::state::StateDir::open(state_dir)
        .await
        .map_err(|e| fail(2, e.to_string()))?;
    let mut http = latchkey_smol::http::HttpConfig::default();
    http.extra_roots_pem = extra_roots_pem;
    let client = latchkey_smol::http::HttpClient::new(http).map_err(|e| fail(2, e.to_string()))?;
    latchkey_smol::keeper::TokenKeeper::open(
        profile,
        latchkey_oauth_core::session::SessionConfig::default(),
        state,
        client,
    )
    .await
    .map_err(|e| fail(2, e.to_string()))
}
