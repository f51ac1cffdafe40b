//! The doorbell: incoming INVITE, CANCEL, ACK, BYE (RFC 3261 §9, §13–§17).

use alloc::vec::Vec;
use core::time::Duration;

use super::harness::{GATEWAY, Pair, invite};
use crate::sip::agent::{Answer, CallEnd, CallHandle, CommandError, Event, State};
use crate::sip::message::{Message, Method};

fn doorbells(p: &Pair) -> Vec<crate::sip::agent::Doorbell> {
    p.event_list()
        .into_iter()
        .filter_map(|e| match e {
            Event::Doorbell(d) => Some(d.clone()),
            _ => None,
        })
        .collect()
}

fn ended(p: &Pair) -> Vec<(CallHandle, CallEnd)> {
    p.event_list()
        .into_iter()
        .filter_map(|e| match e {
            Event::CallEnded { call, reason } => Some((*call, *reason)),
            _ => None,
        })
        .collect()
}

fn codes(p: &Pair, method: &str) -> Vec<u16> {
    p.peer.answers_to(method).iter().map(|a| a.code).collect()
}

#[test]
fn an_invite_rings_once_with_100_and_180_then_486_after_the_ring_time() {
    // FACTS §1.6: 180 at once, 486 after 2 s; RFC 3261 §8.2.6 mirrors, §12.1.1 To tag.
    let mut p = Pair::registered(100);
    let contact = p.contact();
    p.peer.ring(GATEWAY, &contact, "call-1");
    p.run_for(Duration::from_millis(100));
    let rings = doorbells(&p);
    assert_eq!(rings.len(), 1);
    let d = &rings[0];
    assert_eq!(d.from, "sip:c100x@gw.example");
    assert_eq!(d.from_display.as_deref(), Some("Door \"1\""));
    assert_eq!(d.to, "sip:alice@gw.example");
    assert_eq!(d.call_id, "call-1");
    assert_eq!(d.content_type.as_deref(), Some("application/sdp"));
    assert!(d.body.starts_with(b"v=0"));
    assert_eq!(codes(&p, "INVITE"), [100, 180]);
    let ringing = p.peer.answers_to("INVITE")[1].clone();
    assert!(ringing.to_tag.is_some());
    assert_eq!(ringing.call_id, "call-1");
    assert!(
        ringing
            .raw
            .contains("Record-Route: <sip:proxy.gw.example;transport=tls;lr>")
    );
    assert!(
        ringing
            .raw
            .contains(&alloc::format!("Contact: <{contact}>"))
    );
    p.run_for(Duration::from_secs(2));
    assert_eq!(codes(&p, "INVITE"), [100, 180, 486]);
    let busy = p.peer.answers_to("INVITE")[2].clone();
    assert_eq!(
        busy.to_tag, ringing.to_tag,
        "one To tag for the transaction"
    );
    assert!(busy.at - ringing.at >= Duration::from_secs(2));
    assert_eq!(ended(&p), [(d.call, CallEnd::Declined { status: 486 })]);
}

#[test]
fn a_retransmitted_invite_gets_the_last_response_and_no_second_doorbell() {
    // RFC 3261 §17.2.1: the server transaction absorbs retransmissions.
    let mut p = Pair::registered(101);
    let contact = p.contact();
    let branch = p.peer.ring(GATEWAY, &contact, "call-2");
    p.run_for(Duration::from_millis(100));
    p.peer
        .send_request(invite(GATEWAY, &contact, "call-2", &branch, "ftag", 1));
    p.run_for(Duration::from_millis(100));
    assert_eq!(doorbells(&p).len(), 1);
    assert_eq!(codes(&p, "INVITE"), [100, 180, 180]);
    p.run_for(Duration::from_secs(3));
    p.peer
        .send_request(invite(GATEWAY, &contact, "call-2", &branch, "ftag", 1));
    p.run_for(Duration::from_millis(100));
    assert_eq!(codes(&p, "INVITE"), [100, 180, 180, 486, 486]);
    assert_eq!(doorbells(&p).len(), 1);
    assert_eq!(ended(&p).len(), 1);
}

#[test]
fn a_merged_invite_by_another_branch_is_answered_482() {
    // RFC 3261 §8.2.2.2.
    let mut p = Pair::registered(102);
    let contact = p.contact();
    p.peer.ring(GATEWAY, &contact, "call-3");
    p.run_for(Duration::from_millis(100));
    p.peer.send_request(invite(
        GATEWAY,
        &contact,
        "call-3",
        "z9hG4bK-other",
        "ftag",
        1,
    ));
    p.run_for(Duration::from_millis(100));
    assert_eq!(doorbells(&p).len(), 1);
    assert_eq!(codes(&p, "INVITE"), [100, 180, 482]);
}

#[test]
fn cancel_while_ringing_gets_200_and_the_invite_487() {
    // RFC 3261 §9.2.
    let mut p = Pair::registered(103);
    let contact = p.contact();
    let branch = p.peer.ring(GATEWAY, &contact, "call-4");
    p.run_for(Duration::from_millis(100));
    p.peer.cancel(GATEWAY, &contact, "call-4", &branch);
    p.run_for(Duration::from_millis(100));
    assert_eq!(codes(&p, "CANCEL"), [200]);
    assert_eq!(codes(&p, "INVITE"), [100, 180, 487]);
    let call = doorbells(&p)[0].call;
    assert_eq!(ended(&p), [(call, CallEnd::Cancelled)]);
    // The ring timer no longer fires.
    p.run_for(Duration::from_secs(5));
    assert_eq!(codes(&p, "INVITE"), [100, 180, 487]);
    assert_eq!(ended(&p).len(), 1);
}

#[test]
fn cancel_of_an_unknown_invite_is_481() {
    let mut p = Pair::registered(104);
    let contact = p.contact();
    p.peer.cancel(GATEWAY, &contact, "nope", "z9hG4bK-nope");
    p.run_for(Duration::from_millis(100));
    assert_eq!(codes(&p, "CANCEL"), [481]);
}

#[test]
fn cancel_after_the_invite_was_refused_gets_200_with_the_refusal_to_tag() {
    // RFC 3261 §9.2: a CANCEL matching a transaction that has its final response has no
    // effect, but it matched, so it is answered 200, with the To tag of that response.
    let mut p = Pair::registered(116);
    let contact = p.contact();
    let branch = p.peer.ring("mallory", &contact, "call-16");
    p.run_for(Duration::from_millis(100));
    assert_eq!(codes(&p, "INVITE"), [486]);
    p.peer.cancel("mallory", &contact, "call-16", &branch);
    p.run_for(Duration::from_millis(100));
    assert_eq!(codes(&p, "CANCEL"), [200]);
    let refusal = p.peer.answers_to("INVITE")[0].to_tag.clone();
    assert!(refusal.is_some());
    assert_eq!(p.peer.answers_to("CANCEL")[0].to_tag, refusal);
    // Nothing else is sent for the INVITE.
    assert_eq!(codes(&p, "INVITE"), [486]);
}

#[test]
fn the_ack_of_a_rejection_completes_the_transaction_silently() {
    // RFC 3261 §17.2.1: an ACK gets no response.
    let mut p = Pair::registered(105);
    let contact = p.contact();
    let branch = p.peer.ring(GATEWAY, &contact, "call-5");
    p.run_for(Duration::from_secs(3));
    let tag = p.peer.answers_to("INVITE")[2].to_tag.clone().unwrap();
    let before = p.peer.answered.len();
    p.peer.ack_failure(&contact, "call-5", &branch, &tag);
    p.run_for(Duration::from_millis(100));
    assert_eq!(p.peer.answered.len(), before);
    assert_eq!(ended(&p).len(), 1);
}

#[test]
fn the_application_can_decline_at_once_with_603() {
    let mut p = Pair::registered(106);
    let contact = p.contact();
    p.peer.ring(GATEWAY, &contact, "call-6");
    p.run_for(Duration::from_millis(100));
    let call = doorbells(&p)[0].call;
    p.agent.answer(p.now, call, Answer::Decline).unwrap();
    p.run_for(Duration::from_millis(100));
    assert_eq!(codes(&p, "INVITE"), [100, 180, 603]);
    assert_eq!(ended(&p), [(call, CallEnd::Declined { status: 603 })]);
    assert_eq!(
        p.agent.answer(p.now, call, Answer::Busy),
        Err(CommandError::UnknownCall)
    );
}

#[test]
fn accepting_answers_200_with_every_stream_rejected_and_bye_ends_it() {
    // RFC 3264 §6: port 0 rejects a stream; RFC 3261 §15: BYE ends the dialog.
    let mut p = Pair::registered(107);
    let contact = p.contact();
    p.peer.ring(GATEWAY, &contact, "call-7");
    p.run_for(Duration::from_millis(100));
    let call = doorbells(&p)[0].call;
    p.agent.answer(p.now, call, Answer::Accept).unwrap();
    p.run_for(Duration::from_millis(100));
    let ok = p.peer.answers_to("INVITE")[2].clone();
    assert_eq!(ok.code, 200);
    let m = Message::parse(ok.raw.as_bytes()).unwrap();
    let body = core::str::from_utf8(m.body()).unwrap();
    assert!(body.contains("m=audio 0 RTP/SAVP 0\r\n"), "{body}");
    assert!(body.contains("m=video 0 RTP/SAVP 96\r\n"), "{body}");
    assert!(
        m.contacts().next().is_some(),
        "2xx to INVITE carries Contact (§12.1.1)"
    );
    assert_eq!(
        p.agent.answer(p.now, call, Answer::Busy),
        Err(CommandError::AlreadyAnswered)
    );
    let tag = ok.to_tag.unwrap();
    p.peer
        .in_dialog(Method::Ack, &contact, "call-7", &tag, 1, "z9hG4bK-ack7");
    p.peer
        .in_dialog(Method::Bye, &contact, "call-7", &tag, 2, "z9hG4bK-bye7");
    p.run_for(Duration::from_millis(100));
    assert_eq!(codes(&p, "BYE"), [200]);
    assert_eq!(ended(&p), [(call, CallEnd::RemoteHangUp)]);
    // Nothing more happens when max_call would have passed.
    p.run_for(Duration::from_secs(80));
    assert!(p.peer.requests("BYE").is_empty());
}

#[test]
fn hang_up_sends_a_bye_in_the_dialog() {
    // RFC 3261 §15.1.1 / §12.2.1.1: Request-URI = remote target, Route = Record-Route set,
    // From/To swapped with both tags.
    let mut p = Pair::registered(108);
    let contact = p.contact();
    p.peer.ring(GATEWAY, &contact, "call-8");
    p.run_for(Duration::from_millis(100));
    let call = doorbells(&p)[0].call;
    p.agent.answer(p.now, call, Answer::Accept).unwrap();
    p.run_for(Duration::from_millis(100));
    let tag = p.peer.answers_to("INVITE")[2].to_tag.clone().unwrap();
    p.peer
        .in_dialog(Method::Ack, &contact, "call-8", &tag, 1, "z9hG4bK-ack8");
    p.run_for(Duration::from_millis(100));
    p.agent.hang_up(p.now, call).unwrap();
    p.run_for(Duration::from_millis(100));
    let byes = p.peer.requests("BYE");
    assert_eq!(byes.len(), 1);
    let bye = byes[0];
    assert!(
        bye.raw
            .starts_with("BYE sip:c100x@198.51.100.7:5061;transport=tls SIP/2.0\r\n")
    );
    assert_eq!(
        bye.header("Route").as_deref(),
        Some("<sip:proxy.gw.example;transport=tls;lr>")
    );
    assert_eq!(
        bye.header("From").unwrap(),
        alloc::format!("<sip:alice@gw.example>;tag={tag}")
    );
    assert_eq!(
        bye.header("To").as_deref(),
        Some("<sip:c100x@gw.example>;tag=ftag")
    );
    assert_eq!(bye.header("Call-ID").as_deref(), Some("call-8"));
    assert_eq!(ended(&p), [(call, CallEnd::LocalHangUp)]);
}

#[test]
fn an_accepted_call_is_hung_up_after_max_call() {
    let mut p = Pair::registered(109);
    let contact = p.contact();
    p.peer.ring(GATEWAY, &contact, "call-9");
    p.run_for(Duration::from_millis(100));
    let call = doorbells(&p)[0].call;
    p.agent.answer(p.now, call, Answer::Accept).unwrap();
    p.run_for(Duration::from_millis(100));
    let tag = p.peer.answers_to("INVITE")[2].to_tag.clone().unwrap();
    p.peer
        .in_dialog(Method::Ack, &contact, "call-9", &tag, 1, "z9hG4bK-ack9");
    p.run_for(Duration::from_secs(69));
    assert!(p.peer.requests("BYE").is_empty());
    p.run_for(Duration::from_secs(2));
    assert_eq!(p.peer.requests("BYE").len(), 1);
    assert_eq!(ended(&p), [(call, CallEnd::LocalHangUp)]);
}

#[test]
fn a_200_never_acknowledged_is_hung_up_after_64_t1() {
    // RFC 3261 §13.3.1.4.
    let mut p = Pair::registered(110);
    let contact = p.contact();
    p.peer.ring(GATEWAY, &contact, "call-10");
    p.run_for(Duration::from_millis(100));
    let call = doorbells(&p)[0].call;
    p.agent.answer(p.now, call, Answer::Accept).unwrap();
    p.run_for(Duration::from_secs(31));
    assert!(p.peer.requests("BYE").is_empty());
    // The 200 was sent again until then, even on TLS (a later hop may be UDP): at T1, 2·T1,
    // 4·T1, then every T2 (0.5, 1.5, 3.5, 7.5, 11.5 … s), about ten times in 31 s.
    let oks = codes(&p, "INVITE").iter().filter(|&&c| c == 200).count();
    assert!((9..=11).contains(&oks), "{oks} 200s");
    p.run_for(Duration::from_secs(2));
    assert_eq!(p.peer.requests("BYE").len(), 1);
    assert_eq!(ended(&p), [(call, CallEnd::NoAck)]);
}

#[test]
fn a_hang_up_before_the_ack_waits_for_it_and_the_200_stops_at_the_ack() {
    // RFC 3261 §15: no BYE before the ACK; §13.3.1.4: the 2xx is retransmitted until then.
    let mut p = Pair::registered(113);
    let contact = p.contact();
    p.peer.ring(GATEWAY, &contact, "call-13");
    p.run_for(Duration::from_millis(100));
    let call = doorbells(&p)[0].call;
    p.agent.answer(p.now, call, Answer::Accept).unwrap();
    p.run_for(Duration::from_millis(100));
    p.agent.hang_up(p.now, call).unwrap();
    p.run_for(Duration::from_secs(2));
    assert!(p.peer.requests("BYE").is_empty(), "no BYE before the ACK");
    let oks = codes(&p, "INVITE").iter().filter(|&&c| c == 200).count();
    assert!(oks >= 2, "the 200 is sent again while the ACK is missing");
    let tag = p.peer.answers_to("INVITE")[2].to_tag.clone().unwrap();
    p.peer
        .in_dialog(Method::Ack, &contact, "call-13", &tag, 1, "z9hG4bK-ack13");
    p.run_for(Duration::from_millis(100));
    assert_eq!(p.peer.requests("BYE").len(), 1, "the BYE follows the ACK");
    assert_eq!(ended(&p), [(call, CallEnd::LocalHangUp)]);
    let after_ack = codes(&p, "INVITE").iter().filter(|&&c| c == 200).count();
    p.run_for(Duration::from_secs(10));
    assert_eq!(
        codes(&p, "INVITE").iter().filter(|&&c| c == 200).count(),
        after_ack,
        "no 200 after the ACK"
    );
}

#[test]
fn callers_outside_the_filter_get_486_and_no_doorbell() {
    // FACTS §1.6: the official app declines other origins as busy.
    let mut p = Pair::registered(111);
    let contact = p.contact();
    p.peer.ring("mallory", &contact, "call-11");
    p.run_for(Duration::from_millis(100));
    assert!(doorbells(&p).is_empty());
    assert_eq!(codes(&p, "INVITE"), [486]);
    assert_eq!(
        p.count(|e| matches!(e, Event::CallFiltered { from } if from == "sip:mallory@gw.example")),
        1
    );
}

#[test]
fn a_re_invite_is_refused_and_bye_outside_a_dialog_is_481() {
    let mut p = Pair::registered(112);
    let contact = p.contact();
    p.peer
        .in_dialog(Method::Bye, &contact, "ghost", "t", 2, "z9hG4bK-g1");
    p.peer
        .in_dialog(Method::Invite, &contact, "ghost", "t", 3, "z9hG4bK-g2");
    p.run_for(Duration::from_millis(100));
    assert_eq!(codes(&p, "BYE"), [481]);
    assert_eq!(codes(&p, "INVITE"), [481]);
    assert!(doorbells(&p).is_empty());
}

#[test]
fn a_ringing_call_ends_when_the_connection_drops() {
    let mut p = Pair::registered(113);
    let contact = p.contact();
    p.peer.ring(GATEWAY, &contact, "call-13");
    p.run_for(Duration::from_millis(100));
    let call = doorbells(&p)[0].call;
    p.drop_connection();
    p.run_for(Duration::from_secs(5));
    assert_eq!(ended(&p), [(call, CallEnd::ConnectionLost)]);
}

#[test]
fn more_live_calls_than_the_limit_are_busy_without_an_event() {
    let mut c = super::harness::config();
    c.answer.ring_time = Duration::from_secs(60);
    let mut p = Pair::new(c, 114);
    p.start();
    p.run_for(Duration::from_secs(1));
    let contact = p.contact();
    for i in 0..10 {
        p.peer.ring(GATEWAY, &contact, &alloc::format!("flood-{i}"));
    }
    p.run_for(Duration::from_millis(100));
    assert_eq!(doorbells(&p).len(), 8);
    assert_eq!(codes(&p, "INVITE").iter().filter(|c| **c == 486).count(), 2);
}

#[test]
fn a_shutdown_before_the_ack_sends_the_bye_once_the_ack_comes() {
    // RFC 3261 §15: no BYE before the ACK; the shutdown waits for it (within its bound).
    let mut p = Pair::registered(116);
    let contact = p.contact();
    p.peer.ring(GATEWAY, &contact, "call-16");
    p.run_for(Duration::from_millis(100));
    let call = doorbells(&p)[0].call;
    p.agent.answer(p.now, call, Answer::Accept).unwrap();
    p.run_for(Duration::from_millis(100));
    p.agent.shutdown(p.now);
    p.run_for(Duration::from_millis(300));
    assert!(p.peer.requests("BYE").is_empty(), "no BYE before the ACK");
    assert!(p.connected, "the link stays up while a BYE waits");
    let tag = p.peer.answers_to("INVITE")[2].to_tag.clone().unwrap();
    p.peer
        .in_dialog(Method::Ack, &contact, "call-16", &tag, 1, "z9hG4bK-ack16");
    p.run_for(Duration::from_secs(1));
    assert_eq!(p.peer.requests("BYE").len(), 1, "the BYE follows the ACK");
    assert_eq!(ended(&p), [(call, CallEnd::Shutdown)]);
    p.run_for(Duration::from_secs(5));
    assert_eq!(p.agent.state(), State::Closed);
}

#[test]
fn shutdown_declines_ringing_calls() {
    let mut p = Pair::registered(115);
    let contact = p.contact();
    p.peer.ring(GATEWAY, &contact, "call-15");
    p.run_for(Duration::from_millis(100));
    let call = doorbells(&p)[0].call;
    p.agent.shutdown(p.now);
    p.run_for(Duration::from_secs(1));
    assert_eq!(codes(&p, "INVITE"), [100, 180, 486]);
    assert_eq!(ended(&p), [(call, CallEnd::Shutdown)]);
}
