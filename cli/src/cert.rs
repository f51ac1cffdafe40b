//! `latchkey cert …`: keys, CSRs, self-signed certificates, inspection, bundle checks and
//! renewal timing, over `latchkey-pki`. Argument handling, file writing and printing only;
//! every rule is in the pure crate.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use latchkey_pki::inspect::{CertInfo, DEFAULT_WARN_BEFORE, Report, inspect, rfc3339};
use latchkey_pki::key::{KeyType, PrivateKey};
use latchkey_pki::request::{
    Certificate, Csr, DistinguishedName, ExtendedKeyUsage, KeyUsage, RequestParams,
    SelfSignedParams, SubjectAltName,
};
use latchkey_pki::schedule::{
    RenewalHistory, RenewalPolicy, RenewalSchedule, Validity, seed_from_identity,
};
use latchkey_pki::validate::{Bundle, Trust, Usage, validate};
use latchkey_tokio::keeper::now;
use serde_json::json;

/// Largest certificate, key or chain file read.
const MAX_FILE: usize = 4 * 1024 * 1024;

/// Seconds in a day.
const DAY: u64 = 86_400;

/// `latchkey cert …`
#[derive(Subcommand, Debug)]
pub(crate) enum CertCommand {
    /// Make a key and a self-signed certificate with explicit validity: cert.pem (mode 0644)
    /// and key.pem (mode 0600) in --out. Existing files are never replaced without --force.
    Generate {
        /// Common name, also the first subject alternative name (a DNS name or an IP).
        #[arg(long)]
        cn: String,
        /// Validity in days from now (notBefore is set 5 minutes back for clock skew).
        #[arg(long, default_value_t = 3650)]
        days: u32,
        /// More subject alternative names: dns:NAME, ip:ADDR, uri:URI, email:ADDR.
        #[arg(long)]
        san: Vec<String>,
        /// Key type.
        #[arg(long, default_value = "p256")]
        key_type: String,
        /// What the certificate is for.
        #[arg(long, value_enum, default_value_t = UsageArg::Server)]
        usage: UsageArg,
        /// Directory to write cert.pem and key.pem into.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Replace existing cert.pem / key.pem.
        #[arg(long)]
        force: bool,
    },
    /// Make a certificate signing request (PEM on standard output).
    Csr {
        /// The private key (PEM: PKCS#8, SEC1 or PKCS#1).
        #[arg(long)]
        key: PathBuf,
        /// Create the key first (P-256, mode 0600); refused if the file exists.
        #[arg(long)]
        new_key: bool,
        /// Subject in openssl's form, one attribute per RDN in order:
        /// "/CN=…/OU=…/O=…/L=…/ST=…/C=…/emailAddress=…".
        #[arg(long)]
        subject: Option<String>,
        /// Subject alternative names: dns:NAME, ip:ADDR, uri:URI, email:ADDR.
        #[arg(long)]
        san: Vec<String>,
        /// Key usage and extended key usage to request.
        #[arg(long, value_enum)]
        usage: Option<UsageArg>,
        /// Print the DER as base64 on one line (the Legrand API's form) instead of PEM.
        #[arg(long)]
        der_base64: bool,
    },
    /// Show what a certificate file holds (every certificate in it) and its expiry.
    Info {
        /// PEM (one or more certificates) or DER.
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// "Expiring soon" threshold in days.
        #[arg(long, default_value_t = DEFAULT_WARN_BEFORE / DAY)]
        warn_days: u64,
    },
    /// Check that a certificate, its key and chain belong together and are usable now;
    /// exit 1 naming the first fault.
    Check {
        /// The certificate (PEM; further certificates in it count as the chain).
        #[arg(long)]
        cert: PathBuf,
        /// Its private key.
        #[arg(long)]
        key: PathBuf,
        /// Intermediate certificates.
        #[arg(long)]
        chain: Option<PathBuf>,
        /// Trusted root(s); without one the certificate must be self-signed.
        #[arg(long)]
        root: Option<PathBuf>,
        /// The host name or IP the certificate must be valid for.
        #[arg(long)]
        host: Option<String>,
        /// Required extended key usage.
        #[arg(long, value_enum)]
        usage: Option<UsageArg>,
    },
    /// When the certificate will be renewed under a policy, and why.
    Schedule {
        /// The certificate (its first one is scheduled).
        file: PathBuf,
        /// Renew this many days before expiry (the BTicino rule is 30); without it, renew
        /// with a third of the lifetime left (half under 10 days).
        #[arg(long)]
        renew_before_days: Option<u64>,
        /// Identity that spreads renewals across devices (default: the certificate's
        /// SHA-256 fingerprint).
        #[arg(long)]
        seed: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve a certificate and key over TLS (an echo listener for diagnostics), swapping in
    /// a new pair when the files are replaced; one JSON line per event on standard output.
    Serve(crate::cert_serve::ServeArgs),
}

/// What a certificate is for.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum UsageArg {
    /// TLS server (serverAuth).
    Server,
    /// TLS client, e.g. SIP mutual TLS (clientAuth).
    Client,
}

type Failure = (u8, String);

fn fail(code: u8, message: impl Into<String>) -> Failure {
    (code, message.into())
}

/// Runs `latchkey cert …`.
pub(crate) fn run(command: CertCommand) -> Result<(), Failure> {
    match command {
        CertCommand::Generate {
            cn,
            days,
            san,
            key_type,
            usage,
            out,
            force,
        } => generate(&cn, days, &san, &key_type, usage, &out, force),
        CertCommand::Csr {
            key,
            new_key,
            subject,
            san,
            usage,
            der_base64,
        } => csr(&key, new_key, subject.as_deref(), &san, usage, der_base64),
        CertCommand::Info {
            file,
            json,
            warn_days,
        } => info(&file, json, warn_days),
        CertCommand::Check {
            cert,
            key,
            chain,
            root,
            host,
            usage,
        } => check(
            &cert,
            &key,
            chain.as_deref(),
            root.as_deref(),
            host.as_deref(),
            usage,
        ),
        CertCommand::Schedule {
            file,
            renew_before_days,
            seed,
            json,
        } => schedule(&file, renew_before_days, seed.as_deref(), json),
        CertCommand::Serve(args) => crate::cert_serve::serve(args),
    }
}

fn parse_sans(sans: &[String]) -> Result<Vec<SubjectAltName>, Failure> {
    sans.iter()
        .map(|s| {
            s.parse::<SubjectAltName>()
                .map_err(|e| fail(2, format!("--san {s}: {e}")))
        })
        .collect()
}

fn with_usage(mut params: RequestParams, usage: UsageArg) -> RequestParams {
    params = params.with_key_usage(KeyUsage::DigitalSignature);
    match usage {
        UsageArg::Server => params.with_extended_key_usage(ExtendedKeyUsage::ServerAuth),
        UsageArg::Client => params.with_extended_key_usage(ExtendedKeyUsage::ClientAuth),
    }
}

fn generate(
    cn: &str,
    days: u32,
    sans: &[String],
    key_type: &str,
    usage: UsageArg,
    out: &Path,
    force: bool,
) -> Result<(), Failure> {
    if days == 0 {
        return Err(fail(2, "--days must be at least 1"));
    }
    let key_type: KeyType = key_type
        .parse()
        .map_err(|e| fail(2, format!("--key-type {key_type}: {e}")))?;
    let extra = parse_sans(sans)?;
    let cert_path = out.join("cert.pem");
    let key_path = out.join("key.pem");
    if !force {
        for p in [&cert_path, &key_path] {
            if p.exists() {
                return Err(fail(
                    2,
                    format!("{} exists; pass --force to replace it", p.display()),
                ));
            }
        }
    }
    let not_before = now().saturating_sub(300);
    let mut params = SelfSignedParams::server(cn, &extra, not_before, days)
        .map_err(|e| fail(2, format!("--cn {cn}: {e}")))?;
    if usage == UsageArg::Client {
        // Same subject, names and validity; clientAuth instead of serverAuth.
        let mut request = RequestParams::new(DistinguishedName::common_name(cn));
        for san in cn
            .parse::<SubjectAltName>()
            .into_iter()
            .chain(extra.iter().cloned())
        {
            request = request.with_san(san);
        }
        params = SelfSignedParams::new(
            with_usage(request, UsageArg::Client),
            params.not_before,
            params.not_after,
        );
    }
    let mut rng = crate::OsRng;
    let key = PrivateKey::generate(key_type, &mut rng).map_err(|e| fail(2, e.to_string()))?;
    let cert =
        Certificate::self_signed(&params, &key, &mut rng).map_err(|e| fail(2, e.to_string()))?;
    std::fs::create_dir_all(out)
        .map_err(|e| fail(2, format!("cannot create {}: {e}", out.display())))?;
    // The key first: a certificate without its key is useless, a key alone is harmless.
    write_atomic(&key_path, key.to_pem().as_bytes(), true)?;
    write_atomic(&cert_path, cert.to_pem().as_bytes(), false)?;
    let info = CertInfo::from_der(cert.der()).map_err(|e| fail(2, e.to_string()))?;
    err!(
        "wrote {} and {} (key 0600): {}, valid until {}, SHA-256 {}",
        cert_path.display(),
        key_path.display(),
        info.subject,
        info.not_after_utc,
        info.fingerprint_sha256
    );
    Ok(())
}

fn csr(
    key_path: &Path,
    new_key: bool,
    subject: Option<&str>,
    sans: &[String],
    usage: Option<UsageArg>,
    der_base64: bool,
) -> Result<(), Failure> {
    // Everything the arguments can get wrong is checked before a new key is written, so a
    // corrected command is not refused for the key a failed one left behind.
    let subject: DistinguishedName = match subject {
        Some(s) => s.parse().map_err(|e| fail(2, format!("--subject: {e}")))?,
        None => DistinguishedName::new(),
    };
    let mut params = RequestParams::new(subject);
    for san in parse_sans(sans)? {
        params = params.with_san(san);
    }
    if let Some(u) = usage {
        params = with_usage(params, u);
    }
    let csr = if new_key {
        if key_path.exists() {
            return Err(fail(
                2,
                format!(
                    "{} exists; --new-key never replaces a key",
                    key_path.display()
                ),
            ));
        }
        let key = PrivateKey::generate(KeyType::P256, &mut crate::OsRng)
            .map_err(|e| fail(2, e.to_string()))?;
        let csr = Csr::create(&params, &key).map_err(|e| fail(2, e.to_string()))?;
        write_atomic(key_path, key.to_pem().as_bytes(), true)?;
        csr
    } else {
        let pem = read_file(key_path)?;
        let key = PrivateKey::from_pem(&pem)
            .map_err(|e| fail(2, format!("{}: {e}", key_path.display())))?;
        Csr::create(&params, &key).map_err(|e| fail(2, e.to_string()))?
    };
    let text = if der_base64 {
        format!("{}\n", csr.to_der_base64())
    } else {
        csr.to_pem()
    };
    print_out(&text)
}

fn info(file: &Path, json: bool, warn_days: u64) -> Result<(), Failure> {
    let bytes = read_file(file)?;
    let now = now();
    let reports = inspect(&bytes, now, warn_days.saturating_mul(DAY))
        .map_err(|e| fail(1, format!("{}: {e}", file.display())))?;
    if json {
        let doc = serde_json::to_string_pretty(&reports)
            .map_err(|e| fail(2, format!("cannot write JSON: {e}")))?;
        return print_out(&format!("{doc}\n"));
    }
    let mut text = String::new();
    for (i, r) in reports.iter().enumerate() {
        if reports.len() > 1 {
            text += &format!("certificate {} of {}\n", i + 1, reports.len());
        }
        text += &describe(r);
    }
    print_out(&text)
}

fn describe(r: &Report) -> String {
    let c = &r.certificate;
    let sans: Vec<String> = c
        .subject_alt_names
        .iter()
        .map(ToString::to_string)
        .collect();
    let e = &r.expiry;
    let state = match e.state {
        latchkey_pki::inspect::ExpiryState::NotYetValid => "not yet valid".to_owned(),
        latchkey_pki::inspect::ExpiryState::Expired => {
            format!("EXPIRED {} days ago", -e.days_until_expiry)
        }
        latchkey_pki::inspect::ExpiryState::ExpiringSoon => format!(
            "expires in {} days (within {} days: renew)",
            e.days_until_expiry,
            e.warn_before / DAY
        ),
        _ => format!("valid, {} days left", e.days_until_expiry),
    };
    let mut s = String::new();
    s += &format!("subject:      {}\n", c.subject);
    s += &format!("issuer:       {}\n", c.issuer);
    s += &format!("serial:       {}\n", c.serial);
    s += &format!(
        "names:        {}\n",
        if sans.is_empty() {
            "(none)".to_owned()
        } else {
            sans.join(", ")
        }
    );
    s += &format!("not before:   {}\n", c.not_before_utc);
    s += &format!("not after:    {}\n", c.not_after_utc);
    s += &format!("status:       {state}\n");
    s += &format!(
        "self-signed:  {}{}\n",
        if c.self_signed { "yes" } else { "no" },
        if c.is_ca { " (CA)" } else { "" }
    );
    s += &format!("key:          {}\n", c.key_algorithm);
    if !c.extended_key_usage.is_empty() {
        s += &format!("usage:        {}\n", c.extended_key_usage.join(", "));
    }
    s += &format!("SHA-256:      {}\n", c.fingerprint_sha256);
    s
}

fn check(
    cert: &Path,
    key: &Path,
    chain: Option<&Path>,
    root: Option<&Path>,
    host: Option<&str>,
    usage: Option<UsageArg>,
) -> Result<(), Failure> {
    let cert_pem = read_file(cert)?;
    let key_pem = read_file(key)?;
    let chain_pem = chain.map(read_file).transpose()?;
    let root_pem = root.map(read_file).transpose()?;
    let mut bundle = Bundle::new(&cert_pem, &key_pem);
    if let Some(c) = &chain_pem {
        bundle = bundle.with_chain(c);
    }
    if let Some(r) = &root_pem {
        bundle = bundle.with_roots(r);
    }
    if let Some(h) = host {
        bundle = bundle.with_host(h);
    }
    match usage {
        Some(UsageArg::Server) => bundle = bundle.with_usage(Usage::ServerAuth),
        Some(UsageArg::Client) => bundle = bundle.with_usage(Usage::ClientAuth),
        None => {}
    }
    let valid = validate(&bundle, now()).map_err(|e| fail(1, e.to_string()))?;
    let trust = match &valid.trust {
        Trust::SelfSigned => "self-signed".to_owned(),
        Trust::PinnedRoot => "the given root itself".to_owned(),
        Trust::Chain { .. } => "a chain to the given root".to_owned(),
        _ => "trusted".to_owned(),
    };
    print_out(&format!(
        "ok: {} (key matches, valid until {}, trusted as {trust}{})\n",
        valid.leaf.subject,
        valid.leaf.not_after_utc,
        host.map(|h| format!(", valid for {h}")).unwrap_or_default()
    ))
}

fn schedule(
    file: &Path,
    renew_before_days: Option<u64>,
    seed: Option<&str>,
    json: bool,
) -> Result<(), Failure> {
    let bytes = read_file(file)?;
    let certs =
        CertInfo::from_pem(&bytes).map_err(|e| fail(1, format!("{}: {e}", file.display())))?;
    let Some(leaf) = certs.first() else {
        return Err(fail(1, format!("{} holds no certificate", file.display())));
    };
    let mut policy = RenewalPolicy::default();
    if let Some(days) = renew_before_days {
        policy = policy.with_renew_before(days.saturating_mul(DAY));
    }
    let seed = seed_from_identity(seed.unwrap_or(&leaf.fingerprint_sha256).as_bytes());
    let validity = Validity::new(leaf.not_before, leaf.not_after);
    let now = now();
    let d = RenewalSchedule::new(validity, policy, seed).decide(now, &RenewalHistory::default());
    if json {
        let doc = json!({
            "certificate": leaf.subject,
            "not_before": leaf.not_before_utc,
            "not_after": leaf.not_after_utc,
            "now": rfc3339(now),
            "decision": d,
            "renew_at_utc": rfc3339(d.renew_at),
            "policy_point_utc": rfc3339(d.policy_point),
            "emergency_at_utc": rfc3339(d.emergency_at),
            "next_check_utc": rfc3339(d.wake_at),
        });
        let text = serde_json::to_string_pretty(&doc)
            .map_err(|e| fail(2, format!("cannot write JSON: {e}")))?;
        return print_out(&format!("{text}\n"));
    }
    let rel = |t: u64| {
        if t >= now {
            format!("{} (in {})", rfc3339(t), span(t - now))
        } else {
            format!("{} ({} ago)", rfc3339(t), span(now - t))
        }
    };
    let mut s = format!("certificate:   {}\n", leaf.subject);
    s += &format!(
        "valid:         {} to {}\n",
        leaf.not_before_utc, leaf.not_after_utc
    );
    s += &format!("action now:    {}\n", d.action);
    s += &format!("renewal at:    {}\n", rel(d.renew_at));
    if d.renew_at == d.emergency_at && d.policy_point > d.emergency_at {
        s += &format!(
            "because:       {} gives {}, but the emergency backstop (the last 1/50 of the \
             lifetime) makes renewal due earlier\n",
            d.source,
            rfc3339(d.policy_point)
        );
    } else {
        s += &format!(
            "because:       {} gives {}; this device's jitter moves it {} earlier\n",
            d.source,
            rfc3339(d.policy_point),
            span(d.policy_point.saturating_sub(d.renew_at))
        );
    }
    s += &format!("emergency at:  {}\n", rel(d.emergency_at));
    s += &format!("next check:    {}\n", rel(d.wake_at));
    print_out(&s)
}

/// `3d 4h`, `12m 5s`, … for a duration in seconds.
fn span(secs: u64) -> String {
    let (d, h, m, s) = (secs / DAY, secs % DAY / 3600, secs % 3600 / 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, Failure> {
    crate::read_limited(path, MAX_FILE)
}

/// Writes `bytes` to `path` atomically: a temporary file beside it (mode 0600 when
/// `secret`), fsync, rename, fsync of the directory.
fn write_atomic(path: &Path, bytes: &[u8], secret: bool) -> Result<(), Failure> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let err = |e: std::io::Error| fail(2, format!("cannot write {}: {e}", path.display()));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(if secret { 0o600 } else { 0o644 });
        }
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

fn print_out(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(fail(2, format!("cannot write output: {e}"))),
    }
}
