//! Incoming MESSAGE/NOTIFY/OPTIONS and the other requests, and outgoing MESSAGE commands.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use super::harness::{DOMAIN, GATEWAY, MsgFault, Pair, USER, config};
use crate::sip::agent::{CommandError, Event, FailReason, IncomingKind, MessageId, State};
use crate::sip::builder::{Address, MessageWriter, RequestHead, ViaSpec};
use crate::sip::headers::Transport;
use crate::sip::message::Method;

fn outcomes(p: &Pair) -> Vec<(MessageId, Result<u16, FailReason>)> {
    p.event_list()
        .into_iter()
        .filter_map(|e| match e {
            Event::MessageDelivered { id, status } => Some((*id, Ok(*status))),
            Event::MessageFailed { id, reason, .. } => Some((*id, Err(reason.clone()))),
            _ => None,
        })
        .collect()
}

/// A request of any method to the agent, with optional extra headers.
fn request(
    method: Method<'static>,
    contact: &str,
    call_id: &str,
    extra: &[(&str, &str)],
) -> Vec<u8> {
    let mut out = Vec::new();
    let to = format!("sip:{USER}@{DOMAIN}");
    let branch = format!("z9hG4bK-{call_id}");
    let head = RequestHead {
        method,
        uri: contact,
        via: ViaSpec::new(Transport::Tls, "proxy.gw.example", &branch),
        from: Address::new("sip:c100x@gw.example").with_tag("x"),
        to: Address::new(&to),
        call_id,
        cseq: 3,
        max_forwards: 70,
    };
    let mut w = MessageWriter::request(&mut out, &head).unwrap();
    for (n, v) in extra {
        w.header(n, v).unwrap();
    }
    w.finish(None).unwrap();
    out
}

#[test]
fn an_incoming_message_is_answered_200_and_reported_once() {
    // RFC 3428 §7: a 200 with a To tag; a retransmission is answered the same, not reported.
    let mut p = Pair::registered(200);
    let contact = p.contact();
    p.peer.message(&contact, "m-1", "hello");
    p.run_for(Duration::from_millis(100));
    p.peer.message(&contact, "m-1", "hello");
    p.run_for(Duration::from_millis(100));
    let answers = p.peer.answers_to("MESSAGE");
    assert_eq!(
        answers.iter().map(|a| a.code).collect::<Vec<_>>(),
        [200, 200]
    );
    assert_eq!(answers[0].raw, answers[1].raw, "the same response again");
    assert!(answers[0].to_tag.is_some());
    let got: Vec<_> = p
        .event_list()
        .into_iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].kind, IncomingKind::Message);
    assert_eq!(got[0].from, "sip:c100x@gw.example");
    assert_eq!(got[0].content_type.as_deref(), Some("text/plain"));
    assert_eq!(&got[0].body[..], b"hello");
}

#[test]
fn an_unsolicited_notify_is_answered_200_and_reported() {
    let mut p = Pair::registered(201);
    let contact = p.contact();
    p.peer.send_request(request(
        Method::Notify,
        &contact,
        "n-1",
        &[("Event", "message-summary")],
    ));
    p.run_for(Duration::from_millis(100));
    assert_eq!(p.peer.answers_to("NOTIFY")[0].code, 200);
    assert_eq!(
        p.count(
            |e| matches!(e, Event::Message(m) if m.kind == IncomingKind::Notify
            && m.event.as_deref() == Some("message-summary"))
        ),
        1
    );
}

#[test]
fn options_is_answered_200_with_allow_and_no_event() {
    // RFC 3261 §11.2.
    let mut p = Pair::registered(202);
    let contact = p.contact();
    let before = p.events.len();
    p.peer
        .send_request(request(Method::Options, &contact, "o-1", &[]));
    p.run_for(Duration::from_millis(100));
    let a = p.peer.answers_to("OPTIONS")[0].clone();
    assert_eq!(a.code, 200);
    assert!(
        a.raw
            .contains("Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, NOTIFY\r\n")
    );
    assert_eq!(p.events.len(), before);
}

#[test]
fn an_unsupported_method_is_405_with_allow() {
    // RFC 3261 §8.2.1.
    let mut p = Pair::registered(203);
    let contact = p.contact();
    p.peer.send_request(request(
        Method::Subscribe,
        &contact,
        "s-1",
        &[("Event", "dialog")],
    ));
    p.run_for(Duration::from_millis(100));
    let a = p.peer.answers_to("SUBSCRIBE")[0].clone();
    assert_eq!(a.code, 405);
    assert!(a.raw.contains("Allow: INVITE"));
}

#[test]
fn a_required_extension_is_refused_420_with_unsupported() {
    // RFC 3261 §8.2.2.3.
    let mut p = Pair::registered(204);
    let contact = p.contact();
    p.peer.send_request(request(
        Method::Message,
        &contact,
        "r-1",
        &[("Require", "100rel, foo")],
    ));
    p.run_for(Duration::from_millis(100));
    let a = p.peer.answers_to("MESSAGE")[0].clone();
    assert_eq!(a.code, 420);
    assert!(a.raw.contains("Unsupported: 100rel, foo\r\n"));
    assert_eq!(p.count(|e| matches!(e, Event::Message(_))), 0);
}

#[test]
fn a_request_with_a_broken_header_is_400_naming_it() {
    let mut p = Pair::registered(205);
    let contact = p.contact();
    let raw = format!(
        "MESSAGE {contact} SIP/2.0\r\nVia: SIP/2.0/TLS proxy.gw.example;branch=z9hG4bK-b\r\n\
Max-Forwards: 70\r\nFrom: <sip:c100x@gw.example>;tag=1\r\nTo: <sip:alice@gw.example>\r\n\
Call-ID: b-1\r\nCSeq: nine MESSAGE\r\nContent-Length: 0\r\n\r\n"
    );
    p.peer.send_raw(raw.as_bytes());
    p.run_for(Duration::from_millis(100));
    let a = p.peer.answered.last().unwrap().clone();
    assert_eq!(a.code, 400);
    assert!(
        a.raw
            .starts_with("SIP/2.0 400 Bad Request (invalid CSeq header at byte"),
        "{}",
        a.raw
    );
    assert_eq!(
        p.agent.state(),
        State::Registered,
        "a bad request is not a bad stream"
    );
}

#[test]
fn open_gate_sends_the_profiles_body_and_answers_the_407() {
    // FACTS §1.5: MESSAGE → 407 → MESSAGE with Proxy-Authorization → 200.
    let mut p = Pair::registered(206);
    let id = p.agent.open_gate(p.now).unwrap();
    p.run_for(Duration::from_millis(200));
    assert_eq!(outcomes(&p), [(id, Ok(200))]);
    let sent = p.peer.requests("MESSAGE");
    assert_eq!(sent.len(), 2);
    assert!(
        sent[0]
            .raw
            .starts_with(&format!("MESSAGE sip:{GATEWAY}@{DOMAIN} SIP/2.0\r\n"))
    );
    assert_eq!(
        sent[0].header("Content-Type").as_deref(),
        Some("text/plain")
    );
    let body = sent[1].body();
    assert!(
        body.starts_with(r#"{"id":""#) && body.ends_with(r#"","method":"lock.setStatus"}"#),
        "{body}"
    );
    assert!(!body.contains("{id}"));
    assert!(sent[1].header("Proxy-Authorization").is_some());
    assert_eq!(sent[1].cseq(), sent[0].cseq() + 1);
    assert_eq!(sent[0].header("Call-ID"), sent[1].header("Call-ID"));
    // The next command reuses the nonce: one request, no challenge.
    let id2 = p.agent.open_gate(p.now).unwrap();
    p.run_for(Duration::from_millis(200));
    assert_eq!(p.peer.requests("MESSAGE").len(), 3);
    assert_eq!(outcomes(&p)[1], (id2, Ok(200)));
    let body2 = p.peer.requests("MESSAGE")[2].body();
    assert_ne!(body, body2, "a fresh id every time");
}

#[test]
fn a_rejected_message_reports_the_status_and_phrase() {
    let mut p = Pair::registered(207);
    p.peer.msg_faults.push_back(MsgFault::Status(486));
    let id = p
        .agent
        .send_message(p.now, "sip:c100x@gw.example", "text/plain", b"x")
        .unwrap();
    p.run_for(Duration::from_millis(200));
    assert_eq!(
        outcomes(&p),
        [(
            id,
            Err(FailReason::Rejected {
                status: 486,
                phrase: "Busy Here".into()
            })
        )]
    );
    assert!(p.event_list().iter().any(|e| matches!(
        e,
        Event::MessageFailed {
            status: Some(486),
            ..
        }
    )));
}

#[test]
fn a_challenge_repeated_after_the_answer_fails_the_message() {
    let mut p = Pair::registered(208);
    p.peer
        .msg_faults
        .extend([MsgFault::ChallengeAgain, MsgFault::ChallengeAgain]);
    let id = p
        .agent
        .send_message(p.now, "sip:c100x@gw.example", "text/plain", b"x")
        .unwrap();
    p.run_for(Duration::from_millis(300));
    let o = outcomes(&p);
    assert_eq!(o.len(), 1);
    assert!(
        matches!(&o[0], (i, Err(FailReason::AuthenticationFailed { status: 407, .. })) if *i == id),
        "{o:?}"
    );
    assert_eq!(p.peer.requests("MESSAGE").len(), 2, "no loop");
}

#[test]
fn an_unanswered_message_fails_after_timer_f() {
    // RFC 3261 §17.1.2.2: Timer F = 64·T1.
    let mut p = Pair::registered(209);
    p.peer.msg_faults.push_back(MsgFault::Silence);
    let id = p
        .agent
        .send_message(p.now, "sip:c100x@gw.example", "text/plain", b"x")
        .unwrap();
    p.run_for(Duration::from_secs(31));
    assert!(outcomes(&p).is_empty());
    p.run_for(Duration::from_secs(2));
    assert_eq!(outcomes(&p), [(id, Err(FailReason::Timeout))]);
    assert_eq!(
        p.peer.requests("MESSAGE").len(),
        1,
        "no retransmission on TLS"
    );
}

#[test]
fn a_queued_message_survives_a_reconnect() {
    let mut p = Pair::registered(210);
    p.drop_connection();
    p.accept = false;
    let id = p
        .agent
        .send_message(p.now, "sip:c100x@gw.example", "text/plain", b"x")
        .unwrap();
    p.run_for(Duration::from_secs(2));
    assert!(outcomes(&p).is_empty());
    p.accept = true;
    p.run_for(Duration::from_secs(15));
    assert_eq!(outcomes(&p), [(id, Ok(200))]);
}

#[test]
fn a_message_in_flight_when_the_connection_drops_fails_as_connection_lost() {
    let mut p = Pair::registered(211);
    p.peer.msg_faults.push_back(MsgFault::Drop);
    let id = p
        .agent
        .send_message(p.now, "sip:c100x@gw.example", "text/plain", b"x")
        .unwrap();
    p.run_for(Duration::from_secs(10));
    assert_eq!(outcomes(&p), [(id, Err(FailReason::ConnectionLost))]);
    assert_eq!(p.peer.requests("MESSAGE").len(), 1, "not sent twice");
}

#[test]
fn a_queued_message_fails_not_sent_after_max_wait() {
    let mut p = Pair::registered(212);
    p.drop_connection();
    p.accept = false;
    let id = p
        .agent
        .send_message(p.now, "sip:c100x@gw.example", "text/plain", b"x")
        .unwrap();
    p.run_for(Duration::from_secs(21));
    let o = outcomes(&p);
    assert_eq!(o.len(), 1);
    let (
        got,
        Err(FailReason::NotSent {
            waited,
            state,
            last_error,
        }),
    ) = &o[0]
    else {
        panic!("{o:?}")
    };
    assert_eq!(*got, id);
    assert_eq!(*waited, Duration::from_secs(20));
    assert!(matches!(state, State::Reconnecting | State::Connecting));
    assert!(
        last_error.as_deref().is_some_and(|e| e.contains("closed")),
        "{last_error:?}"
    );
}

#[test]
fn a_full_queue_refuses_the_newest_command_and_keeps_the_rest() {
    let mut p = Pair::registered(213);
    p.drop_connection();
    p.accept = false;
    let mut ids = Vec::new();
    for _ in 0..16 {
        ids.push(
            p.agent
                .send_message(p.now, "sip:c100x@gw.example", "text/plain", b"x")
                .unwrap(),
        );
    }
    assert_eq!(
        p.agent
            .send_message(p.now, "sip:c100x@gw.example", "text/plain", b"x"),
        Err(CommandError::QueueFull { capacity: 16 })
    );
    p.accept = true;
    p.run_for(Duration::from_secs(15));
    let o = outcomes(&p);
    assert_eq!(
        o.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        ids,
        "in order"
    );
    assert!(o.iter().all(|(_, r)| r.is_ok()));
}

#[test]
fn invalid_commands_are_refused_with_the_reason() {
    let mut p = Pair::registered(214);
    let now = p.now;
    let bad_target = p.agent.send_message(now, "mailto:x@y", "text/plain", b"");
    assert!(matches!(
        bad_target,
        Err(CommandError::InvalidTarget { .. })
    ));
    let injected = p
        .agent
        .send_message(now, "sip:a@b\r\nX: y", "text/plain", b"");
    assert!(matches!(injected, Err(CommandError::InvalidTarget { .. })));
    let bad_type = p.agent.send_message(now, "sip:a@b", "text", b"");
    assert_eq!(bad_type, Err(CommandError::InvalidContentType));
    let big = alloc::vec![b'x'; 20_000];
    let too_big = p.agent.send_message(now, "sip:a@b", "text/plain", &big);
    assert_eq!(
        too_big,
        Err(CommandError::BodyTooLarge {
            len: 20_000,
            max: 16 * 1024
        })
    );
    let mut c = config();
    c.gate = None;
    let mut q = Pair::new(c, 1);
    assert_eq!(q.agent.open_gate(q.now), Err(CommandError::NoGate));
    assert!(
        p.events
            .iter()
            .all(|(_, e)| !matches!(e, Event::MessageFailed { .. }))
    );
}

#[test]
fn commands_go_out_one_at_a_time_in_order() {
    let mut p = Pair::registered(215);
    p.peer.challenge_messages = false;
    let ids: Vec<_> = (0..3)
        .map(|i| {
            let body = format!("n{i}");
            p.agent
                .send_message(p.now, "sip:c100x@gw.example", "text/plain", body.as_bytes())
                .unwrap()
        })
        .collect();
    p.settle();
    p.run_for(Duration::from_millis(10));
    assert_eq!(p.peer.requests("MESSAGE").len(), 0, "nothing arrived yet");
    p.run_for(Duration::from_millis(15));
    assert_eq!(p.peer.requests("MESSAGE").len(), 1, "one in flight");
    p.run_for(Duration::from_secs(1));
    let bodies: Vec<String> = p
        .peer
        .requests("MESSAGE")
        .iter()
        .map(|s| s.body())
        .collect();
    assert_eq!(bodies, ["n0", "n1", "n2"]);
    assert_eq!(
        outcomes(&p).iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        ids
    );
}

#[test]
fn commands_after_a_permanent_failure_or_shutdown_are_refused() {
    let mut p = Pair::new(config(), 216);
    p.peer.faults.push_back(super::harness::Fault::Status(403));
    p.start();
    p.run_for(Duration::from_secs(1));
    assert!(matches!(
        p.agent.send_message(p.now, "sip:a@b", "text/plain", b""),
        Err(CommandError::Failed { reason }) if reason.starts_with("403")
    ));
    let mut q = Pair::registered(217);
    q.agent.shutdown(q.now);
    assert_eq!(q.agent.open_gate(q.now), Err(CommandError::ShutDown));
}

#[test]
fn messages_are_sent_without_registration_when_it_is_off() {
    // FACTS §1.4: the gate can be opened without REGISTER.
    let mut c = config();
    c.register = false;
    let mut p = Pair::new(c, 218);
    let id = p.agent.open_gate(p.now).unwrap();
    p.start();
    p.run_for(Duration::from_secs(1));
    assert_eq!(outcomes(&p), [(id, Ok(200))]);
    assert!(p.peer.requests("REGISTER").is_empty());
}
