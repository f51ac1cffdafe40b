//! Connection lifecycle and keep-alives (RFC 5626 §4.4.1).

use alloc::vec::Vec;
use core::time::Duration;

use super::harness::{Pair, config};
use crate::sip::agent::{DisconnectReason, Event, State, Transmit};

#[test]
fn the_agent_waits_for_start_and_asks_for_a_connection() {
    let mut p = Pair::new(config(), 300);
    assert_eq!(p.agent.state(), State::Disconnected);
    assert_eq!(p.agent.poll_timeout(), None);
    assert_eq!(p.agent.poll_transmit(), None);
    p.agent.start(p.now);
    assert_eq!(p.agent.state(), State::Connecting);
    assert_eq!(
        p.agent.poll_transmit(),
        Some(Transmit::Connect { attempt: 1 })
    );
}

#[test]
fn pings_go_out_at_80_to_100_percent_of_the_interval() {
    // RFC 5626 §4.4.1.
    let mut c = config();
    c.keepalive.interval = Some(Duration::from_secs(30));
    let mut p = Pair::new(c, 301);
    p.start();
    let start = p.now;
    p.run_for(Duration::from_secs(600));
    let pings = p.peer.pings.clone();
    assert!(pings.len() >= 20, "{}", pings.len());
    let mut last = start;
    for t in pings {
        let gap = t - last;
        assert!(
            gap >= Duration::from_secs(24) && gap <= Duration::from_secs(30) + p.latency,
            "{gap:?}"
        );
        last = t;
    }
    assert_eq!(p.agent.state(), State::Registered);
    assert_eq!(p.connects.len(), 1);
}

#[test]
fn a_ping_from_the_server_is_answered_with_one_crlf() {
    let mut p = Pair::registered(302);
    let before = p.agent.poll_timeout();
    p.agent.handle_input(p.now, b"\r\n\r\n");
    let sent: Vec<_> = core::iter::from_fn(|| p.agent.poll_transmit()).collect();
    assert_eq!(sent, [Transmit::Send(bytes::Bytes::from_static(b"\r\n"))]);
    assert_eq!(p.agent.poll_timeout(), before);
}

#[test]
fn silence_after_a_proven_pong_is_stale_and_the_agent_reconnects() {
    // Half-open TCP: the server answered pings before and now sends nothing.
    let mut c = config();
    c.keepalive.interval = Some(Duration::from_secs(30));
    let mut p = Pair::new(c, 303);
    p.start();
    p.run_for(Duration::from_secs(40));
    assert!(!p.peer.pings.is_empty());
    p.peer.answers_pings = false;
    p.run_for(Duration::from_secs(45));
    let stale = p.count(|e| matches!(e, Event::ConnectionStale { .. }));
    assert_eq!(stale, 1, "{:?}", p.events);
    assert!(p.event_list().iter().any(|e| matches!(
        e,
        Event::Reconnecting {
            reason: DisconnectReason::Stale,
            ..
        }
    )));
    assert_eq!(p.connects.len(), 2);
    assert_eq!(p.agent.state(), State::Registered);
}

#[test]
fn silence_is_stale_even_when_the_pong_timeout_exceeds_the_ping_interval() {
    // Found against Kamailio (interop_sip): a ping sent while the previous one was still
    // unanswered used to push the pong deadline back, so it never passed.
    let mut c = config();
    c.keepalive.interval = Some(Duration::from_secs(2));
    c.keepalive.pong_timeout = Some(Duration::from_secs(5));
    let mut p = Pair::new(c, 306);
    p.start();
    p.run_for(Duration::from_secs(10));
    assert!(!p.peer.pings.is_empty());
    p.peer.answers_pings = false;
    p.run_for(Duration::from_secs(12));
    assert_eq!(
        p.count(|e| matches!(e, Event::ConnectionStale { .. })),
        1,
        "{:?}",
        p.events
    );
}

#[test]
fn a_server_that_never_answers_pings_is_not_declared_stale() {
    let mut c = config();
    c.keepalive.interval = Some(Duration::from_secs(30));
    let mut p = Pair::new(c, 304);
    p.peer.answers_pings = false;
    p.start();
    p.run_for(Duration::from_secs(1800));
    assert_eq!(p.count(|e| matches!(e, Event::ConnectionStale { .. })), 0);
    assert_eq!(p.connects.len(), 1);
    assert_eq!(p.agent.state(), State::Registered);
}

#[test]
fn a_dropped_connection_backs_off_reconnects_and_registers_again() {
    let mut p = Pair::registered(305);
    let t0 = p.now;
    p.drop_connection();
    assert_eq!(p.agent.state(), State::Reconnecting);
    let Some(Event::Reconnecting {
        reason,
        attempt,
        retry_at,
    }) = p.event_list().last().cloned().cloned()
    else {
        panic!()
    };
    assert_eq!(reason, DisconnectReason::Closed);
    assert_eq!(attempt, 1);
    let delay = retry_at - t0;
    assert!(
        delay >= Duration::from_millis(500) && delay <= Duration::from_secs(1),
        "{delay:?}"
    );
    p.run_for(Duration::from_secs(2));
    assert_eq!(p.agent.state(), State::Registered);
    assert_eq!(p.count(|e| matches!(e, Event::Registered { .. })), 2);
}

#[test]
fn failed_attempts_back_off_exponentially_up_to_the_cap() {
    let mut p = Pair::registered(306);
    p.accept = false;
    p.drop_connection();
    p.run_for(Duration::from_secs(1000));
    let delays: Vec<(u32, Duration)> = p
        .events
        .iter()
        .filter_map(|(at, e)| match e {
            Event::Reconnecting {
                attempt, retry_at, ..
            } => Some((*attempt, *retry_at - *at)),
            _ => None,
        })
        .collect();
    assert!(delays.len() > 10);
    for (attempt, d) in delays {
        let nominal =
            Duration::from_secs(1u64 << (attempt - 1).min(10)).min(Duration::from_secs(60));
        assert!(d >= nominal / 2 && d <= nominal, "attempt {attempt}: {d:?}");
    }
    p.accept = true;
    p.run_for(Duration::from_secs(61));
    assert_eq!(p.agent.state(), State::Registered);
}

#[test]
fn a_connection_never_reported_is_abandoned_after_the_connect_timeout() {
    let mut p = Pair::new(config(), 307);
    p.agent.start(p.now);
    assert_eq!(
        p.agent.poll_transmit(),
        Some(Transmit::Connect { attempt: 1 })
    );
    let deadline = p.agent.poll_timeout().unwrap();
    assert_eq!(deadline - p.now, Duration::from_secs(20));
    p.agent.handle_timeout(deadline);
    assert_eq!(p.agent.poll_transmit(), Some(Transmit::Close));
    assert_eq!(p.agent.state(), State::Reconnecting);
}

#[test]
fn early_and_repeated_timeouts_change_nothing() {
    let mut p = Pair::registered(308);
    let deadline = p.agent.poll_timeout().unwrap();
    let before = p.events.len();
    for _ in 0..3 {
        p.agent.handle_timeout(p.now);
    }
    assert!(p.agent.poll_transmit().is_none());
    assert!(p.agent.poll_event().is_none());
    assert_eq!(p.agent.poll_timeout(), Some(deadline));
    assert_eq!(p.events.len(), before);
}

#[test]
fn a_framing_error_drops_the_connection_and_reconnects() {
    let mut p = Pair::registered(309);
    p.peer
        .send_raw(b"MESSAGE sip:a@b SIP/2.0\r\nVia: x\r\n\r\n");
    p.run_for(Duration::from_millis(100));
    assert!(p.event_list().iter().any(|e| matches!(
        e,
        Event::Reconnecting {
            reason: DisconnectReason::Framing(_),
            ..
        }
    )));
    p.run_for(Duration::from_secs(2));
    assert_eq!(p.agent.state(), State::Registered);
}

#[test]
fn reconnect_waits_for_the_command_in_flight_then_reconnects_at_once() {
    let mut p = Pair::registered(310);
    let id = p
        .agent
        .send_message(p.now, "sip:c100x@gw.example", "text/plain", b"x")
        .unwrap();
    p.agent.reconnect(p.now);
    let queued = p
        .agent
        .send_message(p.now, "sip:c100x@gw.example", "text/plain", b"y")
        .unwrap();
    p.run_for(Duration::from_secs(1));
    assert_eq!(p.connects.len(), 2, "one new connection, no backoff");
    assert_eq!(p.count(|e| matches!(e, Event::Reconnecting { .. })), 0);
    let delivered: Vec<_> = p
        .event_list()
        .into_iter()
        .filter_map(|e| match e {
            Event::MessageDelivered { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(delivered, [id, queued]);
    assert_eq!(p.agent.state(), State::Registered);
    // The new Contact replaced the old binding.
    assert_eq!(p.peer.bindings.len(), 1);
}

#[test]
fn bytes_before_connecting_or_after_closing_are_ignored() {
    let mut p = Pair::new(config(), 311);
    p.agent.handle_input(p.now, b"SIP/2.0 200 OK\r\n\r\n");
    p.agent.handle_disconnected(p.now);
    assert_eq!(p.agent.state(), State::Disconnected);
    assert!(p.agent.poll_transmit().is_none());
    let mut q = Pair::registered(312);
    q.agent.shutdown(q.now);
    q.run_for(Duration::from_secs(5));
    q.agent.handle_input(q.now, b"\r\n\r\n");
    q.agent.handle_connected(q.now);
    assert_eq!(q.agent.state(), State::Closed);
    assert!(q.agent.poll_transmit().is_none());
}

/// A peer that pings without reading our answers cannot grow the outgoing queue past its
/// bound: pong answers (and replayed responses) are dropped while it is full.
#[test]
fn pings_from_a_peer_that_does_not_read_are_not_answered_without_bound() {
    let mut p = Pair::registered(3);
    while p.agent.poll_transmit().is_some() {}
    let now = p.now;
    p.agent.handle_input(now, &b"\r\n\r\n".repeat(200_000));
    let mut queued = 0usize;
    let mut pongs = 0usize;
    while let Some(t) = p.agent.poll_transmit() {
        if let Transmit::Send(b) = t {
            queued += b.len();
            pongs += usize::from(&b[..] == b"\r\n");
        }
    }
    assert!(pongs > 1000, "pings are still answered: {pongs}");
    assert!(queued <= 256 * 1024, "{queued} bytes queued");
}

#[test]
fn a_connection_dropped_after_each_registration_still_backs_off() {
    // The server takes the connection and the REGISTER, then drops the connection at once
    // (another instance on the same account, a one-connection-per-certificate limit): the
    // delays must grow as for any failure, not restart from `backoff.initial` each time.
    let mut p = Pair::registered(9001);
    let start = p.now;
    let first = p.connects.len();
    while p.now < start + Duration::from_secs(600) {
        p.run_for(Duration::from_millis(50));
        if p.agent.state() == State::Registered {
            p.drop_connection();
        }
    }
    let n = p.connects.len() - first;
    // Delays of 1 s doubling to the 60-s cap: about 15 attempts in ten minutes.
    assert!(
        n <= 20,
        "{n} connections in 600 s (the backoff never grows)"
    );
    assert!(n >= 8, "{n} connections in 600 s");
}

#[test]
fn a_connection_that_lived_past_the_longest_backoff_reconnects_quickly_when_lost() {
    let mut p = Pair::registered(9002);
    // Two quick drops raise the count...
    for _ in 0..2 {
        p.drop_connection();
        p.run_for(Duration::from_secs(5));
    }
    // ...then a connection lives long and is lost: the next attempt comes soon again.
    p.run_for(Duration::from_secs(120));
    assert_eq!(p.agent.state(), State::Registered);
    let lost_at = p.now;
    let before = p.connects.len();
    p.drop_connection();
    p.run_for(Duration::from_secs(3));
    assert!(
        p.connects.len() > before,
        "no reconnect within 3 s of losing a long-lived connection (since {lost_at:?})"
    );
}
