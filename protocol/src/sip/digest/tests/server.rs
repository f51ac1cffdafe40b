//! Server behaviour: nonces, expiry, replay protection, field checks.

use super::super::*;
use super::{param, register, rng};
use crate::time::Instant;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use alloc::{format, vec};
use core::time::Duration;
use rand_chacha::ChaCha20Rng;

struct Pair {
    server: DigestServer,
    client: DigestClient,
    rng: ChaCha20Rng,
}

impl Pair {
    fn new(cfg: ServerConfig, user: &str, password: &str) -> Pair {
        Pair {
            server: DigestServer::new(cfg, b"0123456789abcdef0123").unwrap(),
            client: DigestClient::new(user, password),
            rng: rng(11),
        }
    }

    fn challenge(&mut self, now: Instant, stale: bool) -> ChallengeOutcome {
        let chs = self.server.challenges(now, stale, &mut self.rng);
        self.client
            .handle_challenges(ChallengeKind::Www, chs.iter().map(String::as_str))
            .unwrap()
    }

    fn credentials(&mut self, request: &DigestRequest<'_>) -> String {
        self.client
            .authorize(request, &mut self.rng)
            .unwrap()
            .remove(0)
            .value
    }

    fn verify(
        &mut self,
        now: Instant,
        value: &str,
        request: &DigestRequest<'_>,
        pw: &[u8],
    ) -> Result<Verified, VerifyError> {
        let creds = Credentials::parse(value).unwrap();
        let user = creds.username().into_owned();
        self.server
            .verify(now, &creds, request, &user, Secret::Password(pw))
    }
}

#[test]
fn server_challenge_lists_algorithms_in_order_with_one_nonce() {
    let mut cfg = ServerConfig::new("gw.example");
    cfg.algorithms = vec![Algorithm::Sha512_256, Algorithm::Sha256, Algorithm::Md5];
    cfg.qop = vec![Qop::Auth, Qop::AuthInt];
    cfg.opaque = Some("op".into());
    cfg.userhash = true;
    let server = DigestServer::new(cfg, &[5; 16]).unwrap();
    let chs = server.challenges(Instant::from_secs(3), true, &mut rng(12));
    assert_eq!(chs.len(), 3);
    let parsed: Vec<_> = chs.iter().map(|c| Challenge::parse(c).unwrap()).collect();
    assert_eq!(parsed[0].algorithm(), Ok(Algorithm::Sha512_256));
    assert_eq!(parsed[2].algorithm(), Ok(Algorithm::Md5));
    assert!(
        parsed
            .iter()
            .all(|p| p.nonce() == parsed[0].nonce() && p.stale() && p.userhash())
    );
    assert_eq!(parsed[0].nonce().as_raw().len(), 80);
    assert!(chs[0].starts_with("Digest realm=\"gw.example\", nonce=\""));
    assert!(chs[0].ends_with(
        ", algorithm=SHA-512-256, qop=\"auth,auth-int\", opaque=\"op\", stale=true, userhash=true"
    ));
}

#[test]
fn expired_nonce_is_stale_only_when_the_digest_is_right() {
    let mut p = Pair::new(ServerConfig::new("gw"), "u", "pw");
    let t0 = Instant::from_secs(1_000);
    p.challenge(t0, false);
    let value = p.credentials(&register());
    let late = t0 + Duration::from_secs(301);
    assert_eq!(
        p.verify(late, &value, &register(), b"pw"),
        Err(VerifyError::Stale(StaleReason::Expired))
    );
    assert_eq!(
        p.verify(late, &value, &register(), b"nope"),
        Err(VerifyError::BadResponse)
    );
    // Re-challenge with stale=true; the client retries without treating it as a failure.
    assert_eq!(p.challenge(late, true), ChallengeOutcome::Stale);
    let value = p.credentials(&register());
    let ok = p.verify(late, &value, &register(), b"pw").unwrap();
    assert_eq!(ok.nonce_expires_at, late + Duration::from_secs(300));
    assert!(VerifyError::Stale(StaleReason::Expired).is_stale());
}

#[test]
fn refresh_reuses_credentials_until_the_nonce_expires() {
    let mut p = Pair::new(ServerConfig::new("gw"), "u", "pw");
    let t0 = Instant::from_secs(50);
    p.challenge(t0, false);
    for (i, dt) in [0u64, 100, 200].into_iter().enumerate() {
        let value = p.credentials(&register());
        let v = p
            .verify(t0 + Duration::from_secs(dt), &value, &register(), b"pw")
            .unwrap();
        assert_eq!(v.nonce_count, Some(u32::try_from(i).unwrap() + 1));
    }
}

#[test]
fn replayed_nonce_count_is_refused() {
    let mut p = Pair::new(ServerConfig::new("gw"), "u", "pw");
    let now = Instant::from_secs(5);
    p.challenge(now, false);
    let first = p.credentials(&register());
    let second = p.credentials(&register());
    p.verify(now, &second, &register(), b"pw").unwrap();
    assert_eq!(
        p.verify(now, &first, &register(), b"pw"),
        Err(VerifyError::Stale(StaleReason::NonceCountReplayed)),
        "nc 1 after nc 2"
    );
    assert_eq!(
        p.verify(now, &second, &register(), b"pw"),
        Err(VerifyError::Stale(StaleReason::NonceCountReplayed))
    );
}

#[test]
fn replay_table_eviction_never_reopens_a_replay() {
    let mut cfg = ServerConfig::new("gw");
    cfg.replay_table_capacity = 2;
    let mut server = DigestServer::new(cfg, &[6; 32]).unwrap();
    let mut r = rng(13);
    let mut creds = Vec::new();
    for i in 0..3u64 {
        let now = Instant::from_secs(10 + i);
        let mut client = DigestClient::new("u", "pw");
        let chs = server.challenges(now, false, &mut r);
        client
            .handle_challenges(ChallengeKind::Www, chs.iter().map(String::as_str))
            .unwrap();
        let first = client
            .authorize(&register(), &mut r)
            .unwrap()
            .remove(0)
            .value;
        let second = client
            .authorize(&register(), &mut r)
            .unwrap()
            .remove(0)
            .value;
        creds.push((first, second));
    }
    let now = Instant::from_secs(20);
    let mut verify = |v: &str| {
        let c = Credentials::parse(v).unwrap();
        server.verify(now, &c, &register(), "u", Secret::Password(b"pw"))
    };
    verify(&creds[0].0).unwrap();
    verify(&creds[1].0).unwrap();
    verify(&creds[2].0).unwrap(); // evicts the nonce issued first
    assert_eq!(
        verify(&creds[0].1),
        Err(VerifyError::Stale(StaleReason::ReplayStateForgotten))
    );
    assert_eq!(
        verify(&creds[0].0),
        Err(VerifyError::Stale(StaleReason::ReplayStateForgotten))
    );
    verify(&creds[2].1).unwrap();
    assert_eq!(server.replay_table_len(), 2);
    assert_eq!(server::replay_watermark(&server), Some(10_000));
}

#[test]
fn forged_or_foreign_nonce_is_never_accepted() {
    let mut p = Pair::new(ServerConfig::new("gw"), "u", "pw");
    let now = Instant::from_secs(9);
    p.challenge(now, false);
    let value = p.credentials(&register());
    let nonce = param(&value, "nonce").unwrap().to_string();
    // Flip one issued-at digit: the MAC no longer matches. The client recomputes its digest
    // for the forged nonce, so the digest is right and the answer is Stale(UnknownNonce).
    let mut forged = nonce.clone().into_bytes();
    forged[15] = if forged[15] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).unwrap();
    let mut client = DigestClient::new("u", "pw");
    let ch = format!("Digest realm=\"gw\", nonce=\"{forged}\", qop=\"auth\", algorithm=SHA-256");
    client
        .handle_challenges(ChallengeKind::Www, [ch.as_str()])
        .unwrap();
    let v = client
        .authorize(&register(), &mut rng(14))
        .unwrap()
        .remove(0)
        .value;
    assert_eq!(
        p.verify(now, &v, &register(), b"pw"),
        Err(VerifyError::Stale(StaleReason::UnknownNonce))
    );
    // Another server (another secret) does not accept this server's nonces either.
    let mut other = DigestServer::new(ServerConfig::new("gw"), &[8; 32]).unwrap();
    let c = Credentials::parse(&value).unwrap();
    assert_eq!(
        other.verify(now, &c, &register(), "u", Secret::Password(b"pw")),
        Err(VerifyError::Stale(StaleReason::UnknownNonce))
    );
}

#[test]
fn stored_ha1_verifies_like_the_password() {
    let mut p = Pair::new(ServerConfig::new("gw"), "u", "pw");
    let now = Instant::from_secs(2);
    p.challenge(now, false);
    let value = p.credentials(&register());
    let creds = Credentials::parse(&value).unwrap();
    let stored = ha1(Algorithm::Sha256, "u", "gw", b"pw");
    let upper = stored.as_str().to_ascii_uppercase();
    p.server
        .verify(now, &creds, &register(), "u", Secret::Ha1(&upper))
        .unwrap();
    let md5_ha1 = ha1(Algorithm::Md5, "u", "gw", b"pw");
    let value = p.credentials(&register());
    let creds = Credentials::parse(&value).unwrap();
    assert_eq!(
        p.server
            .verify(now, &creds, &register(), "u", Secret::Ha1(md5_ha1.as_str())),
        Err(VerifyError::MalformedSecret)
    );
}

#[test]
fn server_rejects_mismatched_fields() {
    let mut p = Pair::new(ServerConfig::new("gw"), "u", "pw");
    let now = Instant::from_secs(2);
    p.challenge(now, false);
    let value = p.credentials(&register());
    let creds = Credentials::parse(&value).unwrap();
    let other_uri = DigestRequest::new("REGISTER", "sip:other", b"");
    let s = &mut p.server;
    assert_eq!(
        s.verify(now, &creds, &other_uri, "u", Secret::Password(b"pw")),
        Err(VerifyError::UriMismatch)
    );
    assert_eq!(
        s.verify(now, &creds, &register(), "v", Secret::Password(b"pw")),
        Err(VerifyError::UsernameMismatch)
    );
    let other_method = DigestRequest::new("INVITE", "sip:bt.example", b"");
    assert_eq!(
        s.verify(now, &creds, &other_method, "u", Secret::Password(b"pw")),
        Err(VerifyError::BadResponse)
    );

    let mut sha_only = ServerConfig::new("gw");
    sha_only.algorithms = vec![Algorithm::Sha256];
    let mut s2 = DigestServer::new(sha_only, &[1; 16]).unwrap();
    let md5 = "Digest username=\"u\", realm=\"gw\", nonce=\"n\", uri=\"sip:bt.example\", \
               response=\"00000000000000000000000000000000\", qop=auth, nc=00000001, cnonce=\"c\"";
    let c = Credentials::parse(md5).unwrap();
    assert_eq!(
        s2.verify(now, &c, &register(), "u", Secret::Password(b"pw")),
        Err(VerifyError::AlgorithmNotOffered {
            algorithm: "MD5".into()
        })
    );
    let no_qop = "Digest username=\"u\", realm=\"gw\", nonce=\"n\", uri=\"sip:bt.example\", \
                  response=\"00\", algorithm=SHA-256";
    let c = Credentials::parse(no_qop).unwrap();
    assert_eq!(
        s2.verify(now, &c, &register(), "u", Secret::Password(b"pw")),
        Err(VerifyError::QopMismatch { sent: None }),
        "no downgrade to the RFC 2069 form when qop is offered"
    );
    let wrong_realm = md5.replace("realm=\"gw\"", "realm=\"xx\"");
    let c = Credentials::parse(&wrong_realm).unwrap();
    assert_eq!(
        s2.verify(now, &c, &register(), "u", Secret::Password(b"pw")),
        Err(VerifyError::RealmMismatch)
    );
}

#[test]
fn opaque_must_be_echoed() {
    let mut cfg = ServerConfig::new("gw");
    cfg.opaque = Some("state-1".into());
    let mut p = Pair::new(cfg, "u", "pw");
    let now = Instant::from_secs(2);
    p.challenge(now, false);
    let value = p.credentials(&register());
    p.verify(now, &value, &register(), b"pw").unwrap();
    let value = p.credentials(&register()).replace("state-1", "state-2");
    assert_eq!(
        p.verify(now, &value, &register(), b"pw"),
        Err(VerifyError::OpaqueMismatch)
    );
}

#[test]
fn userhash_round_trip() {
    let mut cfg = ServerConfig::new("gw");
    cfg.userhash = true;
    let mut p = Pair::new(cfg, "J\u{e4}s\u{f8}n Doe", "pw");
    let now = Instant::from_secs(2);
    p.challenge(now, false);
    let value = p.credentials(&register());
    let creds = Credentials::parse(&value).unwrap();
    assert!(creds.userhash());
    let hashed = p.server.userhash(Algorithm::Sha256, "J\u{e4}s\u{f8}n Doe");
    assert_eq!(creds.username(), hashed.as_str());
    let v = p
        .server
        .verify(
            now,
            &creds,
            &register(),
            "J\u{e4}s\u{f8}n Doe",
            Secret::Password(b"pw"),
        )
        .unwrap();
    assert!(v.userhash);
}

#[test]
fn rfc2069_server_accepts_answers_without_qop_once() {
    let mut cfg = ServerConfig::new("gw");
    cfg.qop = vec![];
    let mut p = Pair::new(cfg, "u", "pw");
    let now = Instant::from_secs(2);
    p.challenge(now, false);
    let value = p.credentials(&register());
    assert_eq!(param(&value, "qop"), None);
    let v = p.verify(now, &value, &register(), b"pw").unwrap();
    assert_eq!((v.qop, v.nonce_count), (None, None));
    assert_eq!(
        p.verify(now, &value, &register(), b"pw"),
        Err(VerifyError::Stale(StaleReason::NonceCountReplayed)),
        "without nc a nonce can only be used once when replays are tracked"
    );
}

#[test]
fn bad_server_configs_are_refused() {
    let secret = [0u8; 16];
    assert_eq!(
        DigestServer::new(ServerConfig::new(""), &secret).unwrap_err(),
        ServerConfigError::EmptyRealm
    );
    assert_eq!(
        DigestServer::new(ServerConfig::new("gw"), &[0; 15]).unwrap_err(),
        ServerConfigError::SecretTooShort { len: 15 }
    );
    let mut cfg = ServerConfig::new("gw");
    cfg.qop = vec![];
    cfg.algorithms = vec![Algorithm::Md5Sess];
    assert_eq!(
        DigestServer::new(cfg, &secret).unwrap_err(),
        ServerConfigError::SessWithoutQop {
            algorithm: Algorithm::Md5Sess
        }
    );
    let mut cfg = ServerConfig::new("g\r\nw");
    cfg.algorithms = vec![Algorithm::Sha256];
    assert_eq!(
        DigestServer::new(cfg, &secret).unwrap_err(),
        ServerConfigError::ControlCharacter { field: "realm" }
    );
}

#[test]
fn nonce_mac_is_hmac_sha256_per_rfc4231() {
    use super::super::server::MacKey;
    // RFC 4231 §4.3 (test case 2) and §4.7 (test case 6: key longer than the block).
    let mac = MacKey::new(b"Jefe").mac(&[b"what do ya ", b"want for nothing?"]);
    assert_eq!(
        HexDigest::from_raw(&mac).as_str(),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    let mac =
        MacKey::new(&[0xaa; 131]).mac(&[b"Test Using Larger Than Block-Size Key - Hash Key First"]);
    assert_eq!(
        HexDigest::from_raw(&mac).as_str(),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}

#[test]
fn nonce_lifetime_boundary_is_inclusive() {
    let mut cfg = ServerConfig::new("gw");
    cfg.replay_table_capacity = 0;
    let mut p = Pair::new(cfg, "u", "pw");
    let t0 = Instant::from_millis(7_000);
    p.challenge(t0, false);
    let value = p.credentials(&register());
    let edge = t0 + Duration::from_secs(300);
    assert!(p.verify(edge, &value, &register(), b"pw").is_ok());
    assert!(
        p.verify(edge, &value, &register(), b"pw").is_ok(),
        "replay table off"
    );
    assert_eq!(
        p.verify(edge + Duration::from_millis(1), &value, &register(), b"pw"),
        Err(VerifyError::Stale(StaleReason::Expired))
    );
    assert_eq!(
        p.verify(Instant::from_millis(6_999), &value, &register(), b"pw"),
        Err(VerifyError::Stale(StaleReason::UnknownNonce)),
        "issued in the future: another clock origin"
    );
    assert_eq!(p.server.replay_table_len(), 0);
}
