//! Registration (RFC 3261 §10.2) against the harness registrar.

use alloc::string::ToString;
use alloc::vec;
use core::time::Duration;

use super::harness::{DOMAIN, Fault, Pair, USER, config};
use crate::sip::agent::{Event, State};
use crate::time::Instant;

fn registered_events(p: &Pair) -> usize {
    p.count(|e| matches!(e, Event::Registered { .. }))
}

#[test]
fn register_is_challenged_answered_with_digest_and_registered() {
    // RFC 3261 §22.2 / FACTS §1.4: the retry keeps Call-ID and From tag, CSeq + 1.
    let mut p = Pair::new(config(), 1);
    p.start();
    p.run_for(Duration::from_secs(1));
    assert_eq!(p.agent.state(), State::Registered);
    let regs = p.peer.requests("REGISTER");
    assert_eq!(regs.len(), 2, "challenge, then the authenticated retry");
    assert!(regs[0].header("Authorization").is_none());
    let auth = regs[1]
        .header("Authorization")
        .expect("credentials on the retry");
    assert!(
        auth.contains("algorithm=SHA-256"),
        "strongest offered: {auth}"
    );
    assert!(auth.contains(&alloc::format!("uri=\"sip:{DOMAIN}\"")));
    assert_eq!(regs[1].cseq(), regs[0].cseq() + 1);
    assert_eq!(regs[0].header("Call-ID"), regs[1].header("Call-ID"));
    assert_eq!(regs[0].header("From"), regs[1].header("From"));
    let via0 = regs[0].header("Via").unwrap();
    let via1 = regs[1].header("Via").unwrap();
    assert!(via0.contains(";branch=z9hG4bK") && via0.ends_with(";rport"));
    assert_ne!(via0, via1, "a new branch for the new transaction");
    assert_eq!(
        regs[0].header("To").unwrap(),
        alloc::format!("<sip:{USER}@{DOMAIN}>")
    );
    assert!(regs[1].header("Contact").unwrap().ends_with(";expires=600"));
    assert_eq!(regs[1].header("Expires").as_deref(), Some("600"));
    assert_eq!(registered_events(&p), 1);
    let Some(Event::Registered { expires, contact }) = p
        .event_list()
        .into_iter()
        .find(|e| matches!(e, Event::Registered { .. }))
        .cloned()
    else {
        unreachable!()
    };
    assert_eq!(expires, Duration::from_secs(600));
    assert_eq!(contact, p.contact());
}

#[test]
fn granted_expiry_comes_from_our_contacts_expires_parameter() {
    // RFC 3261 §10.2.4: the registrar may shorten the expiry; the Contact parameter says so.
    let mut p = Pair::new(config(), 2);
    p.peer.max_expires = 120;
    p.start();
    p.run_for(Duration::from_secs(1));
    // Counted from when the REGISTER was sent (the peer saw it one latency later): safe.
    let seen = p.peer.requests("REGISTER")[1].at;
    let expires_at = p.agent.registration_expires_at().unwrap();
    assert_eq!(expires_at + p.latency, seen + Duration::from_secs(120));
    assert!(p.event_list().contains(&&Event::Registered {
        expires: Duration::from_secs(120),
        contact: p.contact()
    }));
}

#[test]
fn refresh_goes_out_before_half_the_expiry_and_never_later() {
    // min(granted/2, granted − margin) minus up to 10 % jitter, counted from the REGISTER.
    let mut p = Pair::new(config(), 3);
    p.start();
    p.run_for(Duration::from_secs(1));
    let first = p.peer.requests("REGISTER")[1].at;
    p.run_for(Duration::from_secs(400));
    let regs = p.peer.requests("REGISTER");
    assert_eq!(regs.len(), 3, "one refresh, reusing the credentials");
    let delay = regs[2].at - first;
    assert!(delay <= Duration::from_secs(300), "{delay:?}");
    assert!(delay >= Duration::from_secs(270), "{delay:?}");
    assert_eq!(
        p.count(|e| matches!(e, Event::RegistrationRefreshed { .. })),
        1
    );
    assert_eq!(p.agent.state(), State::Registered);
}

#[test]
fn refresh_reuses_credentials_pre_emptively_with_a_rising_nonce_count() {
    // RFC 3261 §22.3; the failure baresip #390 reports.
    let mut p = Pair::new(config(), 4);
    p.start();
    p.run_for(Duration::from_secs(700));
    let regs = p.peer.requests("REGISTER");
    assert!(regs.len() >= 4);
    assert!(
        regs[2]
            .header("Authorization")
            .unwrap()
            .contains("nc=00000002")
    );
    assert!(
        regs[3]
            .header("Authorization")
            .unwrap()
            .contains("nc=00000003")
    );
    assert_eq!(p.peer.answers_to("REGISTER").len(), 0);
}

#[test]
fn stale_nonce_on_refresh_is_renewed_without_a_failure_event() {
    // RFC 7616 §3.3: stale=true means the credentials were right.
    let mut p = Pair::new(config(), 5);
    p.peer.set_nonce_lifetime(Duration::from_secs(100));
    p.start();
    p.run_for(Duration::from_secs(1000));
    assert_eq!(p.agent.state(), State::Registered);
    assert_eq!(
        p.count(|e| matches!(e, Event::RegistrationFailed { .. })),
        0
    );
    assert!(p.count(|e| matches!(e, Event::RegistrationRefreshed { .. })) >= 3);
}

#[test]
fn explicit_stale_challenge_is_answered_with_the_new_nonce() {
    let mut p = Pair::registered(6);
    p.peer.faults.push_back(Fault::Stale);
    p.run_for(Duration::from_secs(301));
    assert_eq!(p.agent.state(), State::Registered);
    assert_eq!(
        p.count(|e| matches!(e, Event::RegistrationRefreshed { .. })),
        1
    );
}

#[test]
fn a_second_challenge_right_after_answering_fails_as_credentials_rejected() {
    // RFC 3261 §22.2: a repeated challenge without stale means wrong credentials; stop.
    let mut p = Pair::new(config(), 7);
    p.peer.faults.push_back(Fault::ChallengeAgain); // the first REGISTER
    p.peer.faults.push_back(Fault::ChallengeAgain); // the answer
    p.start();
    p.run_for(Duration::from_secs(5));
    assert_eq!(p.agent.state(), State::Failed);
    let failed: alloc::vec::Vec<_> = p
        .events
        .iter()
        .filter_map(|(at, e)| match e {
            Event::RegistrationFailed {
                status,
                reason,
                permanent,
                retry_at,
            } => Some((*at, *status, reason.clone(), *permanent, *retry_at)),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 1);
    let (at, status, reason, permanent, retry_at) = &failed[0];
    assert_eq!(*status, Some(401));
    assert!(permanent);
    assert!(reason.contains("rejected"), "{reason}");
    assert_eq!(*retry_at, Some(*at + Duration::from_secs(300)));
    assert_eq!(p.peer.requests("REGISTER").len(), 2, "no loop");
    assert!(!p.connected, "the connection is closed");
}

#[test]
fn interval_too_brief_is_retried_with_min_expires() {
    // RFC 3261 §10.2.8.
    let mut p = Pair::new(config(), 8);
    p.peer.min_expires = 900;
    p.start();
    p.run_for(Duration::from_secs(1));
    assert_eq!(p.agent.state(), State::Registered);
    let regs = p.peer.requests("REGISTER");
    let last = regs.last().unwrap();
    assert_eq!(last.header("Expires").as_deref(), Some("900"));
    assert!(last.header("Contact").unwrap().ends_with(";expires=900"));
    assert!(p.event_list().iter().any(
        |e| matches!(e, Event::Registered { expires, .. } if *expires == Duration::from_secs(900))
    ));
}

#[test]
fn repeated_423_without_a_usable_min_expires_fails() {
    let mut p = Pair::new(config(), 9);
    p.peer.faults.extend([
        Fault::TooBrief(700),
        Fault::TooBrief(800),
        Fault::TooBrief(900),
    ]);
    p.start();
    p.run_for(Duration::from_secs(1));
    assert_eq!(p.agent.state(), State::Failed);
}

#[test]
fn forbidden_and_not_found_are_permanent_with_the_reason() {
    for code in [403u16, 404] {
        let mut p = Pair::new(config(), 10);
        p.peer.faults.push_back(Fault::Status(code));
        p.start();
        p.run_for(Duration::from_secs(1));
        assert_eq!(p.agent.state(), State::Failed);
        let reason = p
            .event_list()
            .into_iter()
            .find_map(|e| match e {
                Event::RegistrationFailed {
                    status,
                    reason,
                    permanent: true,
                    ..
                } => {
                    assert_eq!(*status, Some(code));
                    Some(reason.clone())
                }
                _ => None,
            })
            .unwrap();
        assert!(reason.starts_with(&code.to_string()), "{reason}");
        // Retries after the configured delay, on a new connection.
        let connects = p.connects.len();
        p.run_for(Duration::from_secs(301));
        assert_eq!(p.connects.len(), connects + 1);
        assert_eq!(p.agent.state(), State::Registered);
    }
}

#[test]
fn service_unavailable_is_retried_after_retry_after_or_backoff() {
    let mut p = Pair::new(config(), 11);
    p.peer.faults.push_back(Fault::Status(503));
    p.start();
    p.run_for(Duration::from_millis(100));
    assert_eq!(p.agent.state(), State::Registering);
    let Some(Event::RegistrationFailed {
        permanent: false,
        retry_at: Some(at),
        ..
    }) = p
        .event_list()
        .into_iter()
        .find(|e| matches!(e, Event::RegistrationFailed { .. }))
        .cloned()
    else {
        panic!("{:?}", p.events)
    };
    assert!(
        at - p.peer.requests("REGISTER")[0].at
            <= Duration::from_secs(1) + Duration::from_millis(100)
    );
    p.run_for(Duration::from_secs(3));
    assert_eq!(p.agent.state(), State::Registered);
    assert_eq!(p.connects.len(), 1, "retried on the same connection");
}

/// RFC 3261 §20.33: Retry-After says "not before"; `Retry-After: 0` from a busy registrar
/// must not make the agent re-REGISTER at round-trip speed — the backoff still applies.
#[test]
fn retry_after_zero_does_not_beat_the_backoff() {
    let mut p = Pair::new(config(), 13);
    for _ in 0..5 {
        p.peer.faults.push_back(Fault::StatusRetryAfter(503, 0));
    }
    p.start();
    p.run_for(Duration::from_secs(2));
    let sent = p.peer.requests("REGISTER");
    assert!(sent.len() <= 3, "{} REGISTERs in 2 s", sent.len());
    // The first retry waits at least half the initial backoff (jitter), not zero.
    let initial = config().backoff.initial;
    assert!(
        sent[1].at - sent[0].at >= initial / 2,
        "{:?}",
        sent[1].at - sent[0].at
    );
    // A long Retry-After is honoured as it is.
    let mut p = Pair::new(config(), 14);
    p.peer.faults.push_back(Fault::StatusRetryAfter(503, 20));
    p.start();
    p.run_for(Duration::from_secs(19));
    assert_eq!(p.peer.requests("REGISTER").len(), 1);
    p.run_for(Duration::from_secs(3));
    assert_eq!(p.agent.state(), State::Registered);
}

#[test]
fn silent_registrar_times_out_after_timer_f_and_the_agent_reconnects() {
    // RFC 3261 §17.1.2.2: Timer F = 64·T1 on a reliable transport, no retransmissions.
    let mut p = Pair::new(config(), 12);
    p.peer.faults.push_back(Fault::Silence);
    p.start();
    p.run_for(Duration::from_secs(31));
    assert_eq!(
        p.peer.requests("REGISTER").len(),
        1,
        "no retransmission on TLS"
    );
    assert_eq!(p.agent.state(), State::Registering);
    p.run_for(Duration::from_secs(2));
    assert!(p.event_list().iter().any(|e| matches!(
        e,
        Event::Reconnecting {
            reason: crate::sip::agent::DisconnectReason::RegistrarSilent,
            ..
        }
    )));
    p.run_for(Duration::from_secs(5));
    assert_eq!(p.agent.state(), State::Registered);
    assert_eq!(p.connects.len(), 2);
}

#[test]
fn received_and_rport_correct_the_contact_once_and_remove_the_placeholder() {
    // RFC 3581 §9 / RFC 3261 §18.2.1: the registrar's view of our address wins.
    let mut p = Pair::new(config(), 13);
    p.peer.nat = Some(("203.0.113.9", 40_123));
    p.start();
    p.run_for(Duration::from_secs(1));
    assert_eq!(p.agent.state(), State::Registered);
    let want = "sip:alice@203.0.113.9:40123;transport=tls";
    assert_eq!(p.contact(), want);
    let regs = p.peer.requests("REGISTER");
    assert_eq!(regs.len(), 3, "challenge, first binding, corrected binding");
    let contacts = regs[2].headers("Contact");
    assert_eq!(contacts.len(), 2, "{contacts:?}");
    assert_eq!(contacts[0], alloc::format!("<{want}>;expires=600"));
    assert!(
        contacts[1].contains(".invalid;transport=tls>;expires=0"),
        "{contacts:?}"
    );
    assert_eq!(p.peer.bindings.len(), 1);
    assert_eq!(p.peer.bindings[0].contact, want);
    assert_eq!(
        registered_events(&p),
        1,
        "announced once, with the corrected Contact"
    );
    // Refreshes keep the corrected Contact and do not rewrite again.
    p.run_for(Duration::from_secs(400));
    assert_eq!(p.peer.requests("REGISTER").len(), 4);
    assert_eq!(p.contact(), want);
}

#[test]
fn a_known_local_address_needs_no_correction() {
    let mut p = Pair::new(config(), 14);
    p.local = Some("192.0.2.10:50000".parse().unwrap());
    p.peer.nat = Some(("192.0.2.10", 50_000));
    p.start();
    p.run_for(Duration::from_secs(1));
    assert_eq!(p.contact(), "sip:alice@192.0.2.10:50000;transport=tls");
    assert_eq!(p.peer.requests("REGISTER").len(), 2);
    assert!(
        p.peer.requests("REGISTER")[1]
            .header("Via")
            .unwrap()
            .starts_with("SIP/2.0/TLS 192.0.2.10:50000;")
    );
}

#[test]
fn shutdown_unregisters_with_expires_zero_then_closes() {
    let mut p = Pair::registered(15);
    p.agent.shutdown(p.now);
    assert_eq!(p.agent.state(), State::ShuttingDown);
    p.run_for(Duration::from_secs(1));
    assert_eq!(p.agent.state(), State::Closed);
    let last = *p.peer.requests("REGISTER").last().unwrap();
    assert_eq!(last.header("Expires").as_deref(), Some("0"));
    assert!(last.header("Contact").unwrap().ends_with(";expires=0"));
    assert!(p.peer.bindings.is_empty(), "binding removed");
    assert!(matches!(p.event_list().last(), Some(Event::Closed)));
    assert!(!p.connected);
    assert_eq!(p.agent.poll_timeout(), None, "nothing left to do");
}

#[test]
fn shutdown_with_a_silent_registrar_closes_after_the_shutdown_timeout() {
    let mut p = Pair::registered(16);
    p.peer.faults.push_back(Fault::Silence);
    p.agent.shutdown(p.now);
    p.run_for(Duration::from_secs(3));
    assert_eq!(p.agent.state(), State::ShuttingDown);
    p.run_for(Duration::from_secs(2));
    assert_eq!(p.agent.state(), State::Closed);
}

#[test]
fn after_a_reconnect_the_previous_contacts_binding_is_removed() {
    let mut p = Pair::new(config(), 17);
    p.peer.nat = Some(("203.0.113.9", 40_000));
    p.start();
    p.run_for(Duration::from_secs(1));
    p.drop_connection();
    p.peer.nat = Some(("203.0.113.9", 40_001));
    p.run_for(Duration::from_secs(5));
    assert_eq!(p.agent.state(), State::Registered);
    assert_eq!(p.contact(), "sip:alice@203.0.113.9:40001;transport=tls");
    let bound: alloc::vec::Vec<_> = p.peer.bindings.iter().map(|b| b.contact.as_str()).collect();
    assert_eq!(bound, vec!["sip:alice@203.0.113.9:40001;transport=tls"]);
    assert_eq!(registered_events(&p), 2, "one per connection");
}

#[test]
fn expiry_without_a_successful_refresh_lapses_and_registers_again() {
    let mut p = Pair::new(config(), 18);
    p.peer.max_expires = 60;
    p.start();
    p.run_for(Duration::from_secs(1));
    // Every refresh is answered 503 with a long Retry-After... here: plain 503s.
    for _ in 0..20 {
        p.peer.faults.push_back(Fault::Status(503));
    }
    p.run_for(Duration::from_secs(70));
    assert!(p.count(|e| matches!(e, Event::RegistrationLapsed)) >= 1);
    p.peer.faults.clear();
    p.run_for(Duration::from_secs(120));
    assert_eq!(p.agent.state(), State::Registered);
    assert!(registered_events(&p) >= 2);
}

#[test]
fn registration_is_skipped_when_turned_off() {
    let mut c = config();
    c.register = false;
    let mut p = Pair::new(c, 19);
    p.start();
    p.run_for(Duration::from_secs(1));
    assert_eq!(p.agent.state(), State::Connected);
    assert!(p.peer.requests("REGISTER").is_empty());
    let _ = Instant::ORIGIN;
}
