//! Property tests: every timing rule stays in its bounds, and the invariants the agent
//! promises hold under arbitrary peers, faults, chunkings and command sequences.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::super::config::{Backoff, RefreshPolicy};
use super::super::schedule;
use super::harness::{Fault, GATEWAY, MsgFault, Pair, config, invite};
use crate::sip::agent::{Event, MessageId, State, Transmit};
use crate::time::Instant;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn refresh_delay_stays_between_an_eighth_and_half_of_the_expiry(
        granted_ms in 1u64..=(1u64 << 31) * 1000,
        margin in 0u64..=3_600,
        jitter in 0u8..=50,
        seed in any::<u64>(),
    ) {
        let g = Duration::from_millis(granted_ms);
        let policy = RefreshPolicy { margin: Duration::from_secs(margin), jitter_percent: jitter };
        let d = schedule::refresh_delay(g, &policy, &mut ChaCha20Rng::seed_from_u64(seed));
        prop_assert!(d <= g / 2, "{d:?} > half of {g:?}");
        prop_assert!(d >= g / 8, "{d:?} < an eighth of {g:?}");
        if jitter <= 10 && g > Duration::from_secs(2 * margin) {
            prop_assert!(d >= (g / 2).mul_f64(0.9) - Duration::from_nanos(1));
        }
    }

    #[test]
    fn backoff_delay_lies_between_half_and_all_of_the_nominal_and_never_over_the_cap(
        initial_ms in 1u64..=60_000,
        extra_ms in 0u64..=3_600_000,
        failures in 1u32..=u32::MAX,
        seed in any::<u64>(),
    ) {
        let policy = Backoff {
            initial: Duration::from_millis(initial_ms),
            max: Duration::from_millis(initial_ms + extra_ms),
        };
        let d = schedule::backoff_delay(&policy, failures, &mut ChaCha20Rng::seed_from_u64(seed));
        let nominal = schedule::backoff_nominal(&policy, failures);
        prop_assert!(nominal <= policy.max);
        prop_assert!(nominal >= policy.initial.min(policy.max));
        prop_assert!(d <= nominal && d >= nominal / 2, "{d:?} vs {nominal:?}");
        let exp = failures.saturating_sub(1).min(30);
        let doubled = policy.initial.checked_mul(1 << exp);
        prop_assert_eq!(nominal, doubled.map_or(policy.max, |x| x.min(policy.max)));
    }

    #[test]
    fn keepalive_delay_lies_between_80_and_100_percent_of_the_interval(
        interval_ms in 1_000u64..=86_400_000,
        seed in any::<u64>(),
    ) {
        let i = Duration::from_millis(interval_ms);
        let d = schedule::keepalive_delay(i, &mut ChaCha20Rng::seed_from_u64(seed));
        prop_assert!(d <= i && d >= i.mul_f64(0.8) - Duration::from_nanos(1));
    }
}

/// Once registered, the registrar holds a binding at every moment and the agent says
/// Registered.
fn never_lapses(p: &Pair) {
    if p.count(|e| matches!(e, Event::Registered { .. })) == 0 {
        return;
    }
    assert!(
        p.peer.registered_at(p.now),
        "binding lapsed at {:?}; events {:?}",
        p.now,
        p.events
    );
    assert_eq!(p.agent.state(), State::Registered, "{:?}", p.events);
}

fn reg_fault() -> impl Strategy<Value = Option<Fault>> {
    prop_oneof![
        4 => Just(None),
        1 => Just(Some(Fault::Stale)),
        1 => Just(Some(Fault::ChallengeAgain)),
        1 => Just(Some(Fault::Status(503))),
        1 => Just(Some(Fault::Status(500))),
        1 => (1u32..=300).prop_map(|k| Some(Fault::RaiseMin(k))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn registration_never_lapses_while_the_registrar_answers_in_time(
        seed in any::<u64>(),
        asked in 60u32..=3_600,
        max_expires in 60u32..=7_200,
        nonce_lifetime in 10u64..=900,
        latency_ms in 0u64..=1_000,
        nat in any::<bool>(),
        faults in proptest::collection::vec(reg_fault(), 0..12),
    ) {
        let mut c = config();
        c.expires = asked;
        let mut p = Pair::new(c, seed);
        p.peer.max_expires = max_expires;
        p.peer.set_nonce_lifetime(Duration::from_secs(nonce_lifetime));
        p.latency = Duration::from_millis(latency_ms);
        p.peer.honest = true;
        if nat {
            p.peer.nat = Some(("203.0.113.5", 41_000));
        }
        p.start();
        p.run_for(Duration::from_secs(10));
        prop_assert_eq!(p.agent.state(), State::Registered);
        // Faults hit refreshes only (the registration is in place before the first).
        p.peer.faults.extend(faults.into_iter().flatten());
        p.check = Some(never_lapses);
        let granted = u64::from(asked.min(max_expires).max(300));
        p.run_for(Duration::from_secs(granted * 6));
        prop_assert_eq!(p.agent.state(), State::Registered);
        prop_assert_eq!(p.connects.len(), 1);
        prop_assert_eq!(p.count(|e| matches!(e, Event::RegistrationLapsed)), 0);
    }
}

/// One unit of what the gateway sends.
#[derive(Debug, Clone)]
enum Piece {
    /// A new ring.
    Ring(u8),
    /// A retransmission of ring n.
    Again(u8),
    /// A MESSAGE.
    Message(u8),
    /// A CRLFCRLF ping.
    Ping,
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        3 => (0u8..8).prop_map(Piece::Ring),
        2 => (0u8..8).prop_map(Piece::Again),
        1 => (0u8..8).prop_map(Piece::Message),
        1 => Just(Piece::Ping),
    ]
}

/// Feed `stream` cut at `cuts` (offsets, any order) into a registered agent; the events and
/// transmits that come out.
fn feed(p: Pair, stream: &[u8], cuts: &[usize]) -> (Vec<Event>, Vec<Transmit>) {
    let now = p.now;
    let mut agent = p.agent;
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    at.push(0);
    at.push(stream.len());
    at.sort_unstable();
    at.dedup();
    for w in at.windows(2) {
        agent.handle_input(now, &stream[w[0]..w[1]]);
    }
    let events = core::iter::from_fn(|| agent.poll_event()).collect();
    let transmits = core::iter::from_fn(|| agent.poll_transmit()).collect();
    (events, transmits)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn no_doorbell_is_lost_or_duplicated_under_any_chunking_of_reads(
        seed in 0u64..4,
        pieces in proptest::collection::vec(piece(), 1..24),
        cuts in proptest::collection::vec(any::<usize>(), 0..40),
    ) {
        let pair = Pair::registered(seed);
        let contact = pair.contact();
        let mut stream = Vec::new();
        let mut rung = BTreeMap::new();
        for (i, piece) in pieces.iter().enumerate() {
            match *piece {
                Piece::Ring(n) | Piece::Again(n) => {
                    let call_id = format!("ring-{n}");
                    if matches!(piece, Piece::Ring(_)) || rung.contains_key(&n) {
                        rung.insert(n, ());
                        let branch = format!("z9hG4bK-{call_id}");
                        stream.extend(invite(GATEWAY, &contact, &call_id, &branch, "ftag", 1));
                    }
                }
                Piece::Message(n) => {
                    let m = format!(
                        "MESSAGE {contact} SIP/2.0\r\nVia: SIP/2.0/TLS gw;branch=z9hG4bK-m{i}\r\n\
Max-Forwards: 70\r\nFrom: <sip:c100x@gw.example>;tag=m\r\nTo: <sip:alice@gw.example>\r\n\
Call-ID: msg-{i}\r\nCSeq: {n} MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"
                    );
                    stream.extend(m.as_bytes());
                }
                Piece::Ping => stream.extend(b"\r\n\r\n"),
            }
        }
        let (events, transmits) = feed(pair, &stream, &cuts);
        let mut rings: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                Event::Doorbell(d) => Some(d.call_id.clone()),
                _ => None,
            })
            .collect();
        let mut want: Vec<String> = rung.keys().map(|n| format!("ring-{n}")).collect();
        rings.sort();
        want.sort();
        prop_assert_eq!(rings, want);
        // Chunking never changes anything the agent does.
        let (whole_events, whole_transmits) = feed(Pair::registered(seed), &stream, &[]);
        prop_assert_eq!(events, whole_events);
        prop_assert_eq!(transmits, whole_transmits);
    }
}

/// A step of the command-outcome property.
#[derive(Debug, Clone)]
enum Op {
    Send,
    Gate,
    Wait(u16),
    Drop,
    Refuse(bool),
    MsgFault(MsgFault),
    RegFault(Fault),
    Reconnect,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Send),
        1 => Just(Op::Gate),
        4 => (0u16..40_000).prop_map(Op::Wait),
        1 => Just(Op::Drop),
        1 => any::<bool>().prop_map(Op::Refuse),
        1 => prop_oneof![
            Just(MsgFault::Status(404)),
            Just(MsgFault::Silence),
            Just(MsgFault::Drop),
            Just(MsgFault::ChallengeAgain),
        ].prop_map(Op::MsgFault),
        1 => prop_oneof![
            Just(Fault::Status(403)),
            Just(Fault::Status(503)),
            Just(Fault::Silence),
            Just(Fault::Drop),
            Just(Fault::Stale),
        ].prop_map(Op::RegFault),
        1 => Just(Op::Reconnect),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn every_command_ends_in_exactly_one_delivered_or_failed(
        seed in any::<u64>(),
        ops in proptest::collection::vec(op(), 1..40),
        shutdown in any::<bool>(),
    ) {
        let mut c = config();
        c.retry_after_failure = Some(Duration::from_secs(30));
        c.queue.capacity = 4;
        let mut p = Pair::new(c, seed);
        p.start();
        let mut accepted: Vec<MessageId> = Vec::new();
        for op in ops {
            match op {
                Op::Send => {
                    if let Ok(id) = p.agent.send_message(p.now, "sip:c100x@gw.example", "text/plain", b"x") {
                        accepted.push(id);
                    }
                }
                Op::Gate => {
                    if let Ok(id) = p.agent.open_gate(p.now) {
                        accepted.push(id);
                    }
                }
                Op::Wait(ms) => p.run_for(Duration::from_millis(u64::from(ms))),
                Op::Drop => p.drop_connection(),
                Op::Refuse(r) => p.accept = !r,
                Op::MsgFault(f) => p.peer.msg_faults.push_back(f),
                Op::RegFault(f) => p.peer.faults.push_back(f),
                Op::Reconnect => p.agent.reconnect(p.now),
            }
            p.settle();
        }
        if shutdown {
            p.agent.shutdown(p.now);
        }
        p.accept = true;
        p.peer.faults.clear();
        p.peer.msg_faults.clear();
        // Long enough for max_wait, Timer F, the longest backoff and a failure retry.
        p.run_for(Duration::from_secs(200));
        let mut outcomes: BTreeMap<MessageId, usize> = BTreeMap::new();
        for (_, e) in &p.events {
            if let Event::MessageDelivered { id, .. } | Event::MessageFailed { id, .. } = e {
                *outcomes.entry(*id).or_default() += 1;
            }
        }
        for id in &accepted {
            prop_assert_eq!(outcomes.get(id).copied(), Some(1), "{:?}: {:?}", id, p.events);
        }
        prop_assert_eq!(outcomes.len(), accepted.len(), "outcomes for unknown ids");
        if shutdown {
            prop_assert_eq!(p.agent.state(), State::Closed);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3_000))]

    #[test]
    fn arbitrary_input_never_panics_and_every_queue_stays_bounded(
        seed in 0u64..4,
        inputs in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..300), 0u32..5_000),
            1..12,
        ),
        prefix in prop_oneof![
            Just(String::new()),
            Just(String::from("INVITE sip:alice@x SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bKx\r\nFrom: <sip:c100x@gw.example>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: ")),
            Just(String::from("SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/TLS h;branch=z9hG4bKx\r\nCSeq: 2 REGISTER\r\nWWW-Authenticate: Digest ")),
        ],
    ) {
        let mut p = Pair::registered(seed);
        let mut now = p.now;
        let mut first = true;
        for (bytes, step_ms) in inputs {
            now = now + Duration::from_millis(u64::from(step_ms));
            if first {
                p.agent.handle_input(now, prefix.as_bytes());
                first = false;
            }
            p.agent.handle_input(now, &bytes);
            p.agent.handle_timeout(now);
            if let Some(t) = p.agent.poll_timeout() {
                prop_assert!(t > now, "deadline {t:?} not after {now:?}");
            }
            let mut queued = 0usize;
            while let Some(t) = p.agent.poll_transmit() {
                if let Transmit::Send(b) = t {
                    queued += b.len();
                }
            }
            prop_assert!(queued <= 300 * 1024);
            let mut events = 0;
            while p.agent.poll_event().is_some() {
                events += 1;
            }
            prop_assert!(events <= 130);
        }
        let _ = Instant::ORIGIN;
    }
}
