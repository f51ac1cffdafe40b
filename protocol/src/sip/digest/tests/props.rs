//! Properties: client and server agree; parsers never panic.

use super::super::*;
use super::rng;
use crate::time::Instant;
use alloc::string::{String, ToString};
use alloc::{format, vec};
use proptest::prelude::*;

fn qop_choices() -> impl Strategy<Value = Option<Qop>> {
    prop_oneof![Just(None), Just(Some(Qop::Auth)), Just(Some(Qop::AuthInt))]
}

proptest! {
    #[test]
    fn client_and_server_agree_for_every_algorithm_and_qop(
        alg_index in 0usize..6,
        qop in qop_choices(),
        user in "[a-zA-Z0-9 \"\\\\é._-]{1,16}",
        password in ".{0,24}",
        method in "[A-Z]{3,9}",
        uri in "sip:[a-z0-9.@;=]{1,24}",
        body in proptest::collection::vec(any::<u8>(), 0..64),
        seed in any::<u8>(),
    ) {
        let algorithm = Algorithm::ALL[alg_index];
        prop_assume!(!(algorithm.is_sess() && qop.is_none()));
        let mut cfg = ServerConfig::new("realm \"q\"");
        cfg.algorithms = vec![algorithm];
        cfg.qop = qop.into_iter().collect();
        let mut server = DigestServer::new(cfg, &[seed; 32]).unwrap();
        let mut r = rng(seed);
        let now = Instant::from_millis(u64::from(seed) * 1_000 + 1);
        let mut client = DigestClient::new(user.clone(), password.clone());
        let chs = server.challenges(now, false, &mut r);
        client.handle_challenges(ChallengeKind::Www, chs.iter().map(String::as_str)).unwrap();
        let request = DigestRequest::new(&method, &uri, &body);
        let value = client.authorize(&request, &mut r).unwrap().remove(0).value;
        let creds = Credentials::parse(&value).unwrap();
        prop_assert_eq!(creds.qop(), qop);
        prop_assert_eq!(creds.username(), user.as_str());

        let wrong = format!("{password}x");
        prop_assert_eq!(
            server.verify(now, &creds, &request, &user, Secret::Password(wrong.as_bytes())),
            Err(VerifyError::BadResponse)
        );
        let mut tampered = body.clone();
        tampered.push(0);
        let tampered_request = DigestRequest::new(&method, &uri, &tampered);
        let tampered_result = server.verify(now, &creds, &tampered_request, &user, Secret::Password(password.as_bytes()));
        if qop == Some(Qop::AuthInt) {
            prop_assert_eq!(tampered_result, Err(VerifyError::BadResponse));
            let v = server.verify(now, &creds, &request, &user, Secret::Password(password.as_bytes())).unwrap();
            prop_assert_eq!(v.algorithm, algorithm);
        } else {
            // auth and the RFC 2069 form do not cover the body.
            let v = tampered_result.unwrap();
            prop_assert_eq!((v.algorithm, v.qop), (algorithm, qop));
        }
    }

    #[test]
    fn parsers_never_panic_and_offsets_stay_in_bounds(s in "\\PC{0,80}") {
        for v in [s.clone(), format!("Digest {s}")] {
            match Challenge::parse(&v) {
                Ok(ch) => { let _ = ch.params().count(); let _ = ch.qop_options().count(); }
                Err(e) => { prop_assert!(e.offset() <= v.len()); let _ = e.to_string(); }
            }
            match Credentials::parse(&v) {
                Ok(c) => { let _ = c.params().count(); let _ = c.username(); }
                Err(e) => prop_assert!(e.offset() <= v.len()),
            }
            let mut client = DigestClient::new("u", "p");
            let _ = client.handle_challenges(ChallengeKind::Www, [v.as_str()]);
        }
    }

    #[test]
    fn parsers_survive_digest_shaped_noise(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("realm".to_string()), Just("nonce".to_string()), Just("qop".to_string()),
                Just("=".to_string()), Just(",".to_string()), Just("\"".to_string()),
                Just("\\".to_string()), Just("\r\n ".to_string()), Just("\r\n".to_string()),
                Just(" ".to_string()), Just("auth".to_string()), Just("é".to_string()),
                "[a-z0-9]{1,4}",
            ],
            0..24,
        ),
    ) {
        let v = format!("Digest {}", parts.concat());
        for result in [Challenge::parse(&v).err(), Credentials::parse(&v).err()].into_iter().flatten() {
            prop_assert!(result.offset() <= v.len());
        }
        if let Ok(ch) = Challenge::parse(&v) {
            // Every parameter the iterator yields was seen by the parser.
            prop_assert!(ch.params().count() <= 64);
        }
    }

    #[test]
    fn rendered_challenges_parse_back(
        realm in "[ -~]{1,20}",
        opaque in proptest::option::of("[ -~]{0,20}"),
        stale in any::<bool>(),
    ) {
        let mut cfg = ServerConfig::new(realm.clone());
        cfg.opaque = opaque.clone();
        cfg.algorithms = vec![Algorithm::Sha512_256Sess];
        let server = DigestServer::new(cfg, &[2; 16]).unwrap();
        let nonce = server.issue_nonce(Instant::from_secs(1), &mut rng(1));
        let mut out = String::new();
        server.write_challenge(&nonce, Algorithm::Sha512_256Sess, stale, &mut out);
        let ch = Challenge::parse(&out).unwrap();
        prop_assert_eq!(ch.realm().unescaped(), realm.as_str());
        prop_assert_eq!(ch.opaque().map(|o| o.unescaped().into_owned()), opaque);
        prop_assert_eq!(ch.stale(), stale);
        prop_assert_eq!(ch.nonce().as_raw(), nonce.as_str());
        prop_assert_eq!(ch.algorithm(), Ok(Algorithm::Sha512_256Sess));
    }
}
