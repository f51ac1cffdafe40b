//! Vendor presets: configurations assembled from published protocol facts. The agent itself
//! knows no vendor; a preset only fills in an [`AgentConfig`].
//!
//! # BTicino / Legrand door entry (Classe 100X, DIY "Door Entry")
//!
//! From ../shared/providers/FACTS.md §1.4–1.6:
//!
//! * server `vdesip.bs.iotleg.com`, port 5228, TLS with a client certificate (the driver's
//!   business); the same host as a loose `Route` on out-of-dialog requests;
//! * AOR `sip:<username>@<gatewayId>.bs.iotleg.com` (the domain is the host of the account's
//!   `sipUri`), digest with the SIP password, REGISTER expiry 600 s,
//!   `Supported: replaces, outbound, gruu, path`;
//! * keep-alive every 30 s (the official app), reconnect after 10 s (both reference clients);
//! * a ring is an INVITE from `c100x@<domain>` (C100X) — others are declined busy — answered
//!   180 and then 486 after 2 s;
//! * the door opens with a MESSAGE to `sip:c100x@<domain>` (`sip:diy@<domain>` for the DIY
//!   app), `text/plain`, JSON-RPC 2.0 `lock.setStatus` naming the lock module, a random
//!   numeric id as a string.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use core::time::Duration;

use super::config::{
    Account, AgentConfig, Answer, Backoff, CallerPattern, ConfigError, GateConfig, Password,
    Server, StreamTransport,
};

/// The BTicino SIP server.
pub const BTICINO_SERVER: &str = "vdesip.bs.iotleg.com";
/// Its port.
pub const BTICINO_PORT: u16 = 5228;

/// Which BTicino app's account this is; it decides the gateway's SIP user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BticinoFlavour {
    /// "Door Entry for Classe 100X": gateway user `c100x`.
    C100x,
    /// The DIY "Door Entry" app: gateway user `diy`.
    Diy,
}

impl BticinoFlavour {
    /// The gateway's SIP user part.
    #[must_use]
    pub const fn gateway_user(self) -> &'static str {
        match self {
            BticinoFlavour::C100x => "c100x",
            BticinoFlavour::Diy => "diy",
        }
    }
}

/// A BTicino/Legrand SIP account (the fields of the cloud's SipUser record).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Bticino {
    /// SIP username, `<userOid>_<clientId>`.
    pub username: String,
    /// SIP domain, `<gatewayId>.bs.iotleg.com` (the host of `sipUri`).
    pub domain: String,
    /// SIP password (`sipPassword`).
    pub password: Password,
    /// Which app the account belongs to.
    pub flavour: BticinoFlavour,
    /// The lock module id for the gate command; without it there is no gate command.
    pub lock_module_id: Option<String>,
}

impl Bticino {
    /// A C100X account without a gate command.
    pub fn new(
        username: impl Into<String>,
        domain: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Bticino {
            username: username.into(),
            domain: domain.into(),
            password: Password::new(password),
            flavour: BticinoFlavour::C100x,
            lock_module_id: None,
        }
    }

    /// The same account with a gate command for `lock_module_id`.
    #[must_use]
    pub fn with_lock(mut self, lock_module_id: impl Into<String>) -> Self {
        self.lock_module_id = Some(lock_module_id.into());
        self
    }

    /// The same account for another app flavour.
    #[must_use]
    pub fn with_flavour(mut self, flavour: BticinoFlavour) -> Self {
        self.flavour = flavour;
        self
    }

    /// The agent configuration.
    ///
    /// # Errors
    /// [`ConfigError`] when the username or domain do not form a SIP URI.
    pub fn config(&self) -> Result<AgentConfig, ConfigError> {
        let mut account = Account::new(self.username.clone(), self.domain.clone(), "");
        account.password = self.password.clone();
        let server = Server::new(BTICINO_SERVER, BTICINO_PORT, StreamTransport::Tls);
        let mut c = AgentConfig::new(account, server);
        c.outbound_proxy = Some(format!("sip:{BTICINO_SERVER};transport=tls;lr"));
        c.expires = 600;
        c.supported = vec![
            "replaces".into(),
            "outbound".into(),
            "gruu".into(),
            "path".into(),
        ];
        c.keepalive.interval = Some(Duration::from_secs(30));
        c.backoff = Backoff {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(120),
        };
        c.answer.ring_time = Duration::from_secs(2);
        c.answer.default = Answer::Busy;
        let gateway = self.flavour.gateway_user();
        c.allowed_callers = vec![CallerPattern::user_at(gateway, self.domain.clone())];
        c.queue.max_wait = Duration::from_secs(20);
        if let Some(lock) = &self.lock_module_id {
            let body = format!(
                concat!(
                    r#"{{"jsonrpc":"2.0","id":"{{id}}","method":"lock.setStatus","params":"#,
                    r#"[{{"status":"open","receiver":{{"plant":{{"coal":{{"id":"{}"}}}}}}}}]}}"#
                ),
                json_escape(lock)
            );
            c.gate = Some(GateConfig::new(
                format!("sip:{gateway}@{}", self.domain),
                "text/plain",
                body,
            ));
        }
        c.validate()?;
        Ok(c)
    }
}

/// `s` as the inside of a JSON string.
fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}
