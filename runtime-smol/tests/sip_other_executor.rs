//! The smol SIP driver needs no smol executor: it is written against `futures-io` and
//! async-io's reactor, so it runs on any executor. Here it is spawned on
//! `futures-executor`'s thread pool and awaited with `futures_executor::block_on`, neither of
//! which is smol's.
//!
//! The issue asked for async-std's executor; async-std is discontinued (RUSTSEC-2025-0052,
//! "async-std has been discontinued"), so a maintained futures-io executor from the
//! `futures` project stands in for it.

#[path = "../../runtime-tokio/tests/shared/sip_peer.rs"]
mod peer;
mod rt;

use std::time::Duration;

use futures_executor::{ThreadPool, block_on};
use latchkey_protocol::sip::agent::{
    Account, AgentConfig, Event, GateConfig, Server, StreamTransport,
};
use latchkey_smol::http::Roots;
use latchkey_smol::sip::{Outcome, SipClient, SipConfig, SipEvent};
use latchkey_smol::tls::LiveIdentity;

#[test]
fn the_driver_registers_and_opens_the_gate_on_the_futures_thread_pool() {
    let peer = peer::Peer::start(600);
    let pki = peer::pki();
    let mut agent = AgentConfig::new(
        Account::new("panel", "127.0.0.1", "secret"),
        Server::new("localhost", peer.addr.port(), StreamTransport::Tls),
    );
    agent.gate = Some(GateConfig::new(
        "sip:gate@127.0.0.1",
        "text/plain",
        "open {id}",
    ));
    let mut config = SipConfig::new(agent);
    config.roots = Roots::Pem(pki.ca_pem.clone().into_bytes());
    config.identity = Some(LiveIdentity::new(pki.panel1.identity()));
    config.connect_to = Some(("127.0.0.1".to_owned(), peer.addr.port()));
    let (client, driver) = SipClient::new(config).expect("client");
    let pool = ThreadPool::builder().pool_size(1).create().expect("pool");
    pool.spawn_ok(driver.run());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    block_on(async {
        loop {
            assert!(
                std::time::Instant::now() < deadline,
                "not registered in time"
            );
            match client.next_event().await {
                Some(SipEvent::Agent(Event::Registered { .. })) => break,
                Some(_) => {}
                None => panic!("driver stopped"),
            }
        }
        assert_eq!(
            client.open_gate().await.expect("issued"),
            Outcome::Delivered { status: 200 }
        );
        client.shutdown().await;
    });
    assert!(client.is_stopped());
}
