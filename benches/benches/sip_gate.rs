//! `sip_gate`: gate-open latency against Kamailio on loopback (mutual TLS, digest), two ways,
//! in the same run:
//!
//! * `established` — latchkey's way: one `SipClient` registered once; each iteration is one
//!   MESSAGE on the open connection (Proxy-Authorization answered as the registrar asks)
//!   until its 200 from the SIPp gate behind Kamailio.
//! * `per_command` — the original Node.js client's way: each iteration opens a new TLS
//!   connection (client certificate), REGISTERs (401 → digest → 200), then sends the MESSAGE
//!   (407 → digest → 200), and closes.
//!
//! Needs the environment of `interop/kamailio/bench.sh` (Kamailio and a SIPp gate answering
//! every MESSAGE); without it the bench prints why and measures nothing, so `cargo bench`
//! and `cargo bench --no-run` still work everywhere.
#![allow(clippy::print_stderr, missing_docs)]

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use latchkey_protocol::sip::agent::{
    Account, AgentConfig, Event, GateConfig, Server, StreamTransport,
};
use latchkey_tokio::http::Roots;
use latchkey_tokio::sip::{Outcome, SipClient, SipConfig, SipEvent};
use latchkey_tokio::tls::{Identity, LiveIdentity};

struct Env {
    port: u16,
    password: String,
    certs: std::path::PathBuf,
}

fn env() -> Option<Env> {
    let get = |n: &str| std::env::var(n).ok();
    Some(Env {
        port: get("LATCHKEY_KAM_TLS_PORT")?.parse().ok()?,
        password: get("LATCHKEY_KAM_PASSWORD")?,
        certs: get("LATCHKEY_KAM_CERTS")?.into(),
    })
}

fn config(env: &Env, user: &str) -> SipConfig {
    let mut agent = AgentConfig::new(
        Account::new(user, "127.0.0.1", env.password.clone()),
        Server::new("localhost", env.port, StreamTransport::Tls),
    );
    agent.gate = Some(GateConfig::new(
        "sip:gate@127.0.0.1",
        "text/plain",
        r#"{"jsonrpc":"2.0","id":"{id}","method":"lock.setStatus","params":[{"status":"open","receiver":{"plant":{"coal":{"id":"lock-1"}}}}]}"#,
    ));
    agent.keepalive.interval = None;
    let read = |f: &str| std::fs::read(env.certs.join(f)).expect("certificate file");
    let mut c = SipConfig::new(agent);
    c.roots = Roots::Pem(read("ca.crt"));
    c.identity = Some(LiveIdentity::new(
        Identity::from_pem(&read("client.crt"), &read("client.key")).expect("identity"),
    ));
    c.connect_to = Some(("127.0.0.1".to_owned(), env.port));
    c
}

async fn registered(client: &SipClient) {
    while let Some(e) = client.next_event().await {
        if matches!(e, SipEvent::Agent(Event::Registered { .. })) {
            return;
        }
    }
    panic!("the driver stopped before registering");
}

fn delivered(o: Outcome) {
    assert!(matches!(o, Outcome::Delivered { status: 200 }), "{o:?}");
}

fn sip_gate(c: &mut Criterion) {
    let Some(env) = env() else {
        eprintln!(
            "sip_gate: skipped — LATCHKEY_KAM_TLS_PORT/PASSWORD/CERTS not set; \
             run interop/kamailio/bench.sh (starts Kamailio and a SIPp gate)"
        );
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("sip_gate");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(10));

    let (client, driver) = SipClient::new(config(&env, "bench-established")).expect("client");
    rt.spawn(driver.run());
    rt.block_on(registered(&client));
    group.bench_function("established", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let outcome = client.open_gate().await.expect("issued");
                    let events: Vec<_> = std::iter::from_fn(|| client.try_next_event()).collect();
                    if !matches!(outcome, Outcome::Delivered { status: 200 }) {
                        panic!("{outcome:?} after {events:?}");
                    }
                }
                start.elapsed()
            })
        });
    });
    rt.block_on(client.shutdown());

    let mut n = 0u64;
    group.bench_function("per_command", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let (client, driver) =
                    SipClient::new(config(&env, &format!("bench-once-{n}"))).expect("client");
                let start = Instant::now();
                rt.block_on(async {
                    let run = rt.spawn(driver.run());
                    registered(&client).await;
                    delivered(client.open_gate().await.expect("issued"));
                    total += start.elapsed();
                    // The original client just closes the socket: no un-REGISTER.
                    run.abort();
                });
            }
            total
        });
    });
    group.finish();
}

criterion_group!(benches, sip_gate);
criterion_main!(benches);
