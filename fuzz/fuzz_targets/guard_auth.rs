//! Arbitrary sequences of inputs into `protocol::guard`: raw header values (length-prefixed,
//! lossy UTF-8) and correctly signed ones (fresh, replayed, skewed), provisioning codes,
//! login outcomes, session cookies, `X-Forwarded-For` lists, stored password strings,
//! snapshot round trips and arbitrary snapshot bytes, with time moving forward. Checks that
//! nothing panics, that every table stays under its cap, that answers carry calaos_base's
//! statuses, and that a snapshot restores.
#![no_main]

use std::net::{IpAddr, Ipv6Addr};

use latchkey_protocol::guard::password::VerifyLimits;
use latchkey_protocol::guard::{
    AuthHeaders, DeviceCredentials, DeviceDirectory, DeviceId, Guard, GuardConfig, IpNet,
    LoginConfig, NonceConfig, Now, PasswordHasher, ProvisioningConfig, SessionConfig, Signer,
    SigningVariant, TrustedProxies, password::Argon2Params,
};
use latchkey_protocol::time::Instant;
use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const T0: u64 = 1_767_225_600;
const SECRET: &[u8] = b"7f3b5a2d9e1c4b6a8c3f5e2d9a7b4c6e";

fn config() -> GuardConfig {
    GuardConfig {
        max_rate_keys: 64,
        proxies: TrustedProxies::new(["10.0.0.0/8".parse::<IpNet>().expect("net")]),
        nonces: NonceConfig {
            global_cap: 32,
            per_device_cap: 8,
            ..NonceConfig::default()
        },
        provisioning: ProvisioningConfig {
            max_tracked: 16,
            ..ProvisioningConfig::default()
        },
        login: LoginConfig {
            max_tracked_addresses: 16,
            max_tracked_accounts: 4,
            ..LoginConfig::default()
        },
        sessions: SessionConfig {
            max_sessions: 8,
            ..SessionConfig::default()
        },
        ..GuardConfig::default()
    }
}

struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.byte()?).min(self.data.len());
        let (b, rest) = self.data.split_at(n);
        self.data = rest;
        Some(b)
    }
    fn text(&mut self) -> Option<String> {
        self.bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

fn check_caps(g: &Guard) {
    let m = g.memory();
    assert!(m.auth_rate.entries <= 64 && m.provisioning_rate.entries <= 64);
    assert!(m.nonces.entries <= 32);
    assert!(m.provisioning.entries <= 16);
    assert!(m.login_addresses.entries <= 16);
    assert!(m.sessions.entries <= 8);
}

fuzz_target!(|data: &[u8]| {
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let mut g = Guard::new(config(), &mut rng).expect("valid config");
    let mut devices = DeviceDirectory::new(&mut rng);
    let variants = [SigningVariant::CalaosBase, SigningVariant::RemoteUiDesign];
    let mut signers = Vec::new();
    for (i, v) in variants.iter().enumerate() {
        let token = format!("remote_ui_{i}");
        devices
            .insert(DeviceCredentials::new(DeviceId(i as u32), &token, SECRET, *v).expect("creds"))
            .expect("unique");
        signers.push(Signer::new(&token, SECRET, *v).expect("signer"));
    }
    let hasher = PasswordHasher::new(Argon2Params {
        m_kib: 8,
        t: 1,
        p: 1,
    })
    .expect("params")
    .with_limits(VerifyLimits {
        max_m_kib: 64,
        max_t: 2,
        max_p: 2,
        max_pbkdf2_iterations: 2_000,
    });
    let mut mono_ms: u64 = 5_000;
    let mut wall: u64 = T0;
    let mut last_signed = None;
    let mut cookies: Vec<String> = Vec::new();
    let mut input = Input { data };
    while let Some(op) = input.byte() {
        let arg = input.byte().unwrap_or(0);
        let now = Now::new(Instant::from_millis(mono_ms), wall);
        let client = g.client_key(
            IpAddr::V6(Ipv6Addr::from_bits(u128::from(arg & 0x3f) << 64)),
            std::iter::empty(),
        );
        match op % 10 {
            0 => {
                let (a, t, n, m) = (input.text(), input.text(), input.text(), input.text());
                let h = AuthHeaders::new(a.as_deref(), t.as_deref(), n.as_deref(), m.as_deref());
                if let Err(e) = g.authenticate_device(now, client, &h, &devices) {
                    assert!(matches!(e.status(), 400 | 401 | 403 | 429), "{e:?}");
                    assert!(!e.reason().is_empty());
                }
            }
            1 => {
                let s = &signers[usize::from(arg & 1)];
                let skew = i64::from(input.byte().unwrap_or(0) as i8);
                let mut nonce = [0u8; 32];
                nonce[0] = input.byte().unwrap_or(0);
                nonce[1] = arg;
                let signed = s.sign_with_nonce(wall.saturating_add_signed(skew), &nonce);
                let r = g.authenticate_device(now, client, &signed.as_auth_headers(s), &devices);
                match r {
                    Ok(_) => last_signed = Some((usize::from(arg & 1), signed)),
                    Err(e) => assert!(
                        matches!(e.status(), 401 | 429),
                        "a signed request failed with {e:?}"
                    ),
                }
            }
            2 => {
                if let Some((i, signed)) = &last_signed {
                    let s = &signers[*i];
                    // A replay is never accepted.
                    assert!(
                        g.authenticate_device(now, client, &signed.as_auth_headers(s), &devices)
                            .is_err()
                    );
                }
            }
            3 => {
                let code = input.text().unwrap_or_default();
                if let Err(e) = g.check_provisioning(now, client, &code) {
                    assert_eq!(e.status(), 429);
                }
            }
            4 => {
                let account =
                    (arg & 0x40 != 0).then_some(if arg & 1 == 0 { "admin" } else { "viewer" });
                match arg >> 6 {
                    0 => {
                        let _ = g.check_login(now, client, account);
                    }
                    1 | 2 => {
                        let _ = g.login_failed(now, client, account);
                    }
                    _ => g.login_succeeded(now, client, account),
                }
            }
            5 => {
                let user = if arg & 1 == 0 { "admin" } else { "viewer" };
                match arg % 4 {
                    0 => {
                        let prev = cookies.last().cloned();
                        if let Ok(n) =
                            g.sessions_mut()
                                .login(now.instant, user, prev.as_deref(), &mut rng)
                        {
                            cookies.push(n.id.to_hex());
                        }
                    }
                    1 => {
                        let c = input.text().unwrap_or_default();
                        let _ = g.sessions_mut().validate(now.instant, &c);
                    }
                    2 => {
                        if let Some(c) = cookies.get(usize::from(arg) % cookies.len().max(1)) {
                            let _ = g.sessions_mut().validate(now.instant, c);
                        }
                    }
                    _ => {
                        let _ = g
                            .sessions_mut()
                            .password_changed(now.instant, user, &mut rng);
                    }
                }
                if cookies.len() > 64 {
                    cookies.drain(..32);
                }
            }
            6 => {
                let step = u64::from(arg) * u64::from(input.byte().unwrap_or(1));
                mono_ms += step * 97;
                wall += step / 10;
                g.handle_timeout(Now::new(Instant::from_millis(mono_ms), wall));
                if let Some(t) = g.poll_timeout() {
                    assert!(t > Instant::from_millis(mono_ms), "next sweep in the past");
                }
            }
            7 => {
                let xff = input.text().unwrap_or_default();
                let _ = g.client_key(IpAddr::V4([10, 0, 0, arg].into()), [xff.as_str()]);
            }
            8 => {
                let stored = input.text().unwrap_or_default();
                let pw = input.text().unwrap_or_default();
                let _ = hasher.verify(&stored, &pw);
                let _ = hasher.needs_rehash(&stored);
            }
            _ => {
                if arg & 1 == 0 {
                    let snap = g.snapshot(now, arg & 2 != 0);
                    let restored = Guard::restore(config(), &mut rng, now, &snap)
                        .expect("own snapshot restores");
                    check_caps(&restored);
                    if arg & 4 != 0 {
                        g = restored;
                    }
                } else {
                    let mut bytes = b"LKGUARD\x01".to_vec();
                    bytes.extend_from_slice(input.bytes().unwrap_or_default());
                    if let Ok(r) = Guard::restore(config(), &mut rng, now, &bytes) {
                        check_caps(&r);
                    }
                }
            }
        }
        while g.poll_event().is_some() {}
        check_caps(&g);
    }
});
