//! The profile: validation, secrecy, and the BTicino preset against FACTS.md §1.4–1.6.

use alloc::format;
use alloc::string::{String, ToString};
use core::time::Duration;

use rand_core::SeedableRng;

use super::harness::config;
use crate::sip::agent::preset::{BTICINO_PORT, BTICINO_SERVER, Bticino, BticinoFlavour};
use crate::sip::agent::{
    Account, Agent, AgentConfig, Answer, ConfigError, Password, StreamTransport,
};
use crate::sip::uri::SipUri;

#[test]
fn the_password_never_prints() {
    let a = Account::new("u", "d.example", "hunter2");
    let dbg = format!("{a:?} {:?}", config());
    assert!(!dbg.contains("hunter2") && !dbg.contains("s3cret"), "{dbg}");
    assert!(dbg.contains("Password(<redacted>)"));
    assert_eq!(Password::new("x"), Password::new("x"));
    assert_ne!(Password::new("x"), Password::new("y"));
    let agent = Agent::new(config(), rand_chacha::ChaCha20Rng::seed_from_u64(1)).unwrap();
    assert!(!format!("{agent:?}").contains("s3cret"));
}

#[test]
fn invalid_fields_are_named() {
    let mut c = config();
    c.account.user = "bad user".into();
    assert_eq!(
        c.validate(),
        Err(ConfigError::Invalid {
            field: "account",
            reason: "user@domain does not form a SIP URI"
        })
    );
    let mut c = config();
    c.registrar = "http://x".into();
    assert!(matches!(
        c.validate(),
        Err(ConfigError::Invalid {
            field: "registrar",
            ..
        })
    ));
    let mut c = config();
    c.expires = 0;
    assert!(matches!(
        c.validate(),
        Err(ConfigError::Invalid {
            field: "expires",
            ..
        })
    ));
    let mut c = config();
    c.queue.capacity = 0;
    assert!(matches!(
        c.validate(),
        Err(ConfigError::Invalid {
            field: "queue.capacity",
            ..
        })
    ));
    let mut c = config();
    c.user_agent = "a\r\nX: y".into();
    assert!(matches!(
        c.validate(),
        Err(ConfigError::Invalid {
            field: "user_agent",
            ..
        })
    ));
    let mut c = config();
    c.account.domain = String::new();
    assert_eq!(
        c.validate(),
        Err(ConfigError::Empty {
            field: "account.domain"
        })
    );
    let e = ConfigError::Invalid {
        field: "expires",
        reason: "zero",
    };
    assert_eq!(e.to_string(), "SIP agent configuration: expires: zero");
}

#[test]
fn the_bticino_preset_follows_the_published_facts() {
    let b = Bticino::new("0a1b_2c3d", "gw123.bs.iotleg.com", "pw").with_lock("lock-7");
    let c: AgentConfig = b.config().unwrap();
    // §1.4: server, TLS, Route, AOR, expiry, Supported, keep-alive, reconnect delay.
    assert_eq!(
        (c.server.host.as_str(), c.server.port),
        (BTICINO_SERVER, BTICINO_PORT)
    );
    assert_eq!(c.server.transport, StreamTransport::Tls);
    assert_eq!(
        c.outbound_proxy.as_deref(),
        Some("sip:vdesip.bs.iotleg.com;transport=tls;lr")
    );
    assert_eq!(c.account.aor(), "sip:0a1b_2c3d@gw123.bs.iotleg.com");
    assert_eq!(c.registrar, "sip:gw123.bs.iotleg.com");
    assert_eq!(c.expires, 600);
    assert_eq!(c.supported, ["replaces", "outbound", "gruu", "path"]);
    assert_eq!(c.keepalive.interval, Some(Duration::from_secs(30)));
    assert_eq!(c.backoff.initial, Duration::from_secs(10));
    // §1.6: rings from c100x@domain only, 486 after 2 s.
    let gw = SipUri::parse("sip:c100x@GW123.bs.iotleg.com").unwrap();
    let other = SipUri::parse("sip:someone@gw123.bs.iotleg.com").unwrap();
    assert!(c.allowed_callers[0].matches(&gw));
    assert!(!c.allowed_callers[0].matches(&other));
    assert_eq!(
        (c.answer.ring_time, c.answer.default),
        (Duration::from_secs(2), Answer::Busy)
    );
    // §1.5: the gate MESSAGE.
    let gate = c.gate.as_ref().unwrap();
    assert_eq!(gate.target, "sip:c100x@gw123.bs.iotleg.com");
    assert_eq!(gate.content_type, "text/plain");
    assert_eq!(
        gate.body_template,
        r#"{"jsonrpc":"2.0","id":"{id}","method":"lock.setStatus","params":[{"status":"open","receiver":{"plant":{"coal":{"id":"lock-7"}}}}]}"#
    );
    let diy = Bticino::new("u", "gw.bs.iotleg.com", "pw")
        .with_flavour(BticinoFlavour::Diy)
        .with_lock("a\"b")
        .config()
        .unwrap();
    assert_eq!(
        diy.gate.as_ref().unwrap().target,
        "sip:diy@gw.bs.iotleg.com"
    );
    assert!(diy.gate.unwrap().body_template.contains(r#""id":"a\"b""#));
    assert!(
        Bticino::new("u", "gw", "pw")
            .config()
            .unwrap()
            .gate
            .is_none()
    );
}
