//! `SipClient` over real mutual TLS on loopback against a stand-in registrar
//! (`sip_peer.rs`): registration, the gate MESSAGE and its outcome, a ring answered 180 then
//! 486, certificate renewal (reconnect + re-register, queued command kept), reconnect after a
//! dropped connection, stale detection when pings go unanswered, graceful shutdown
//! (un-REGISTER), a TLS error named clearly without a busy loop, and pending commands
//! resolved when the driver goes away.
//!
//! Shared cases: run on every runtime through `crate::rt`.

use std::future::Future;
use std::time::Duration;

use latchkey_protocol::sip::agent::{
    Account, AgentConfig, Backoff, Event, FailReason, GateConfig, Server, StreamTransport,
};

use crate::peer::{Peer, Seen, pki};
use crate::rt::block_on;
use crate::rt::http::Roots;
use crate::rt::sip::{Outcome, SipClient, SipConfig, SipDriver, SipError, SipEvent};
use crate::rt::tls::LiveIdentity;

const BODY: &str =
    r#"{"jsonrpc":"2.0","id":"{id}","method":"lock.setStatus","params":[{"status":"open"}]}"#;

fn config(peer: &Peer, identity: Option<LiveIdentity>) -> SipConfig {
    let account = Account::new("panel", "127.0.0.1", "secret");
    let server = Server::new("localhost", peer.addr.port(), StreamTransport::Tls);
    let mut agent = AgentConfig::new(account, server);
    agent.gate = Some(GateConfig::new("sip:gate@127.0.0.1", "text/plain", BODY));
    agent.keepalive.interval = None;
    agent.answer.ring_time = Duration::from_millis(200);
    agent.backoff = Backoff::default();
    agent.backoff.initial = Duration::from_millis(200);
    agent.backoff.max = Duration::from_millis(800);
    agent.connect_timeout = Duration::from_secs(5);
    agent.shutdown_timeout = Duration::from_secs(2);
    let mut c = SipConfig::new(agent);
    c.roots = Roots::Pem(pki().ca_pem.clone().into_bytes());
    c.identity = identity;
    c.connect_to = Some(("127.0.0.1".to_owned(), peer.addr.port()));
    c
}

fn panel1() -> LiveIdentity {
    LiveIdentity::new(pki().panel1.identity())
}

/// Runs `body` while the driver runs, on the runtime under test, within 30 s.
fn with_driver<T>(driver: SipDriver, body: impl Future<Output = T>) -> T {
    block_on(async move {
        let run = async move {
            driver.run().await;
            std::future::pending::<T>().await
        };
        let limit = async {
            crate::rt::sleep(Duration::from_secs(30)).await;
            panic!("the SIP exchange did not finish within 30 s");
        };
        race(body, race(run, limit)).await
    })
}

async fn race<T>(a: impl Future<Output = T>, b: impl Future<Output = T>) -> T {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(v) = a.as_mut().poll(cx) {
            return std::task::Poll::Ready(v);
        }
        b.as_mut().poll(cx)
    })
    .await
}

/// The next event matching `pred`, skipping others (returned in `skipped`), within `limit`.
async fn until(
    client: &SipClient,
    limit: Duration,
    what: &str,
    pred: impl Fn(&SipEvent) -> bool,
) -> (SipEvent, Vec<SipEvent>) {
    let mut skipped = Vec::new();
    let find = async {
        loop {
            match client.next_event().await {
                Some(e) if pred(&e) => return Some(e),
                Some(e) => skipped.push(e),
                None => return None,
            }
        }
    };
    let found = race(find, async {
        crate::rt::sleep(limit).await;
        None
    })
    .await;
    match found {
        Some(e) => (e, skipped),
        None => panic!("no {what} within {limit:?}; saw {skipped:?}"),
    }
}

/// Whether `pred` holds over what the peer saw within `limit` (polled without blocking the
/// driver, which runs on the same thread).
async fn seen_within(peer: &Peer, limit: Duration, pred: impl Fn(&[Seen]) -> bool) -> bool {
    let end = std::time::Instant::now() + limit;
    while std::time::Instant::now() < end {
        if pred(&peer.seen()) {
            return true;
        }
        crate::rt::sleep(Duration::from_millis(20)).await;
    }
    pred(&peer.seen())
}

fn registered(e: &SipEvent) -> bool {
    matches!(e, SipEvent::Agent(Event::Registered { .. }))
}

#[test]
fn registers_over_mutual_tls_then_the_gate_message_is_delivered() {
    let peer = Peer::start(600);
    let (client, driver) = SipClient::new(config(&peer, Some(panel1()))).expect("client");
    with_driver(driver, async {
        let (e, before) = until(&client, Duration::from_secs(5), "Registered", registered).await;
        assert!(
            before
                .iter()
                .any(|e| matches!(e, SipEvent::Connected { attempt: 1, .. })),
            "{before:?}"
        );
        let SipEvent::Agent(Event::Registered { expires, contact }) = e else {
            unreachable!()
        };
        assert_eq!(expires, Duration::from_secs(600));
        assert!(contact.starts_with("sip:panel@127.0.0.1:"), "{contact}");
        let outcome = client.open_gate().await.expect("issued");
        assert_eq!(outcome, Outcome::Delivered { status: 200 });
    });
    let seen = peer.seen();
    assert_eq!(seen[0], Seen::Connected("panel-1".into()));
    assert!(seen.contains(&Seen::Register {
        expires: 600,
        cn: "panel-1".into()
    }));
    let bodies: Vec<_> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Message { target, body } => Some((target.clone(), body.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(bodies.len(), 1, "{seen:?}");
    assert_eq!(bodies[0].0, "sip:gate@127.0.0.1");
    assert!(bodies[0].1.contains("lock.setStatus") && !bodies[0].1.contains("{id}"));
}

#[test]
fn a_rejected_message_resolves_to_failed_with_the_sip_status() {
    let peer = Peer::start(600);
    peer.set_message_status(486);
    let (client, driver) = SipClient::new(config(&peer, Some(panel1()))).expect("client");
    with_driver(driver, async {
        let outcome = client
            .send_message("sip:someone@127.0.0.1", "application/json", b"{}")
            .await
            .expect("issued");
        match outcome {
            Outcome::Failed {
                status: Some(486),
                reason: FailReason::Rejected { status: 486, .. },
            } => {}
            other => panic!("{other:?}"),
        }
        let refused = client.send_message("not a uri", "text/plain", b"x").await;
        assert!(matches!(refused, Err(SipError::Command(_))), "{refused:?}");
    });
}

#[test]
fn a_ring_is_one_doorbell_event_answered_180_then_486() {
    let peer = Peer::start(600);
    let (client, driver) = SipClient::new(config(&peer, Some(panel1()))).expect("client");
    with_driver(driver, async {
        until(&client, Duration::from_secs(5), "Registered", registered).await;
        peer.ring("ring-1");
        let (e, _) = until(&client, Duration::from_secs(5), "Doorbell", |e| {
            matches!(e, SipEvent::Agent(Event::Doorbell(_)))
        })
        .await;
        let SipEvent::Agent(Event::Doorbell(ring)) = e else {
            unreachable!()
        };
        assert_eq!(ring.from, "sip:c100x@127.0.0.1");
        assert_eq!(ring.call_id, "ring-1");
        let (_, between) = until(&client, Duration::from_secs(5), "CallEnded", |e| {
            matches!(e, SipEvent::Agent(Event::CallEnded { .. }))
        })
        .await;
        assert!(
            !between
                .iter()
                .any(|e| matches!(e, SipEvent::Agent(Event::Doorbell(_)))),
            "{between:?}"
        );
    });
    assert!(
        peer.wait_for(Duration::from_secs(2), |s| {
            let codes: Vec<u16> = s
                .iter()
                .filter_map(|x| match x {
                    Seen::Response(c) => Some(*c),
                    _ => None,
                })
                .filter(|c| *c != 100)
                .collect();
            codes == [180, 486]
        }),
        "{:?}",
        peer.seen()
    );
}

#[test]
fn a_new_client_certificate_reconnects_and_re_registers_keeping_queued_commands() {
    let peer = Peer::start(600);
    let live = panel1();
    let (client, driver) = SipClient::new(config(&peer, Some(live.clone()))).expect("client");
    with_driver(driver, async {
        until(&client, Duration::from_secs(5), "Registered", registered).await;
        let generation = client
            .update_identity(pki().panel2.identity())
            .expect("swap");
        assert_eq!(generation, 1);
        // Issued right after the swap: waits for the new connection and goes out there.
        let outcome = client.open_gate().await.expect("issued");
        assert_eq!(outcome, Outcome::Delivered { status: 200 });
        let (_, skipped) = until(
            &client,
            Duration::from_secs(5),
            "Registered again",
            registered,
        )
        .await;
        let _ = skipped;
    });
    let seen = peer.seen();
    let second = seen
        .iter()
        .position(|s| *s == Seen::Connected("panel-2".into()))
        .unwrap_or_else(|| panic!("no connection with the new certificate: {seen:?}"));
    assert!(
        seen[second..].contains(&Seen::Register {
            expires: 600,
            cn: "panel-2".into()
        }),
        "{seen:?}"
    );
    assert!(
        seen[second..]
            .iter()
            .any(|s| matches!(s, Seen::Message { .. })),
        "the gate command went out on the new connection: {seen:?}"
    );
    assert_eq!(live.generation(), 1);
}

#[test]
fn a_dropped_connection_reconnects_with_backoff_and_re_registers() {
    let peer = Peer::start(600);
    let (client, driver) = SipClient::new(config(&peer, Some(panel1()))).expect("client");
    with_driver(driver, async {
        until(&client, Duration::from_secs(5), "Registered", registered).await;
        peer.cut();
        let (e, _) = until(&client, Duration::from_secs(5), "Reconnecting", |e| {
            matches!(e, SipEvent::Agent(Event::Reconnecting { .. }))
        })
        .await;
        let SipEvent::Agent(Event::Reconnecting { attempt, .. }) = e else {
            unreachable!()
        };
        assert_eq!(attempt, 1);
        until(
            &client,
            Duration::from_secs(5),
            "Registered again",
            registered,
        )
        .await;
        let outcome = client.open_gate().await.expect("issued");
        assert_eq!(outcome, Outcome::Delivered { status: 200 });
    });
    let registers = peer
        .seen()
        .iter()
        .filter(|s| matches!(s, Seen::Register { .. }))
        .count();
    assert!(registers >= 2, "{:?}", peer.seen());
}

#[test]
fn a_server_that_stops_answering_pings_is_detected_stale_and_left() {
    let peer = Peer::start(600);
    let mut c = config(&peer, Some(panel1()));
    c.agent.keepalive.interval = Some(Duration::from_secs(1));
    c.agent.keepalive.pong_timeout = Some(Duration::from_millis(500));
    let (client, driver) = SipClient::new(c).expect("client");
    with_driver(driver, async {
        until(&client, Duration::from_secs(5), "Registered", registered).await;
        assert!(
            seen_within(&peer, Duration::from_secs(5), |s| s.contains(&Seen::Ping)).await,
            "no ping"
        );
        // Let the first pong prove the server answers pings, then go silent.
        crate::rt::sleep(Duration::from_millis(300)).await;
        peer.set_pong(false);
        until(&client, Duration::from_secs(8), "ConnectionStale", |e| {
            matches!(e, SipEvent::Agent(Event::ConnectionStale { .. }))
        })
        .await;
        peer.set_pong(true);
        until(
            &client,
            Duration::from_secs(5),
            "Registered again",
            registered,
        )
        .await;
    });
}

#[test]
fn shutdown_unregisters_and_ends_the_event_stream() {
    let peer = Peer::start(600);
    let (client, driver) = SipClient::new(config(&peer, Some(panel1()))).expect("client");
    with_driver(driver, async {
        until(&client, Duration::from_secs(5), "Registered", registered).await;
        client.shutdown().await;
        assert!(client.is_stopped());
        let mut rest = Vec::new();
        while let Some(e) = client.next_event().await {
            rest.push(e);
        }
        assert_eq!(
            rest.last(),
            Some(&SipEvent::Agent(Event::Closed)),
            "{rest:?}"
        );
        assert_eq!(client.open_gate().await, Err(SipError::Stopped));
    });
    assert!(peer.seen().contains(&Seen::Register {
        expires: 0,
        cn: "panel-1".into()
    }));
}

#[test]
fn an_untrusted_server_certificate_is_a_clear_tls_error_without_a_busy_loop() {
    let peer = Peer::start(600);
    let mut c = config(&peer, Some(panel1()));
    c.roots = Roots::Pem(pki().other_ca_pem.clone().into_bytes());
    let (client, driver) = SipClient::new(c).expect("client");
    let failures = with_driver(driver, async {
        let (e, _) = until(&client, Duration::from_secs(5), "ConnectFailed", |e| {
            matches!(e, SipEvent::ConnectFailed { .. })
        })
        .await;
        let SipEvent::ConnectFailed { error, .. } = e else {
            unreachable!()
        };
        assert!(
            error.contains("TLS error") && error.contains("UnknownIssuer"),
            "{error}"
        );
        // Backoff 200–800 ms: in 2 s at most a handful of attempts, never a spin.
        crate::rt::sleep(Duration::from_secs(2)).await;
        let mut failures = 1;
        while let Some(e) = client.try_next_event() {
            failures += usize::from(matches!(e, SipEvent::ConnectFailed { .. }));
        }
        failures
    });
    assert!((2..=12).contains(&failures), "{failures} attempts in ~2 s");
}

#[test]
fn dropping_the_driver_resolves_pending_commands_as_stopped() {
    let peer = Peer::start(600);
    let (client, driver) = SipClient::new(config(&peer, Some(panel1()))).expect("client");
    drop(driver);
    assert!(client.is_stopped());
    let r = block_on(client.open_gate());
    assert_eq!(r, Err(SipError::Stopped));
    assert_eq!(block_on(client.next_event()), None);
}

/// The driver future can be spawned on a multi-threaded executor.
#[allow(dead_code)]
fn driver_is_send(driver: SipDriver, client: &SipClient) {
    fn is_send<T: Send>(_: &T) {}
    is_send(&driver.run());
    is_send(&client.open_gate());
    is_send(&client.next_event());
}

#[test]
fn shutdown_stops_the_driver_even_with_a_full_command_queue() {
    let peer = Peer::start(600);
    let (client, driver) = SipClient::new(config(&peer, Some(panel1()))).expect("client");
    // Commands pile up while the driver is busy (here: not yet running) until refused.
    let mut queued = 0;
    while client.reconnect().is_ok() {
        queued += 1;
    }
    assert!(matches!(client.reconnect(), Err(SipError::Busy)));
    assert!(queued > 0);
    with_driver(driver, async {
        let stopped = race(
            async {
                client.shutdown().await;
                true
            },
            async {
                crate::rt::sleep(Duration::from_secs(10)).await;
                false
            },
        )
        .await;
        assert!(stopped, "shutdown() had not returned after 10 s");
    });
}
