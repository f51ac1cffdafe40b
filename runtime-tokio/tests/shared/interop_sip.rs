//! latchkey's SIP user agent against Kamailio 5.6 over mutual TLS, with SIPp as the door
//! station and the gate (interop/kamailio.sh sets the environment; both digest algorithms,
//! both runtimes). Each test registers its own user, so contacts never cross.
//!
//! Ignored in a plain `cargo test`; run with `--include-ignored` without the script's
//! environment they fail, naming the missing variable — they never pass by skipping.
//!
//! Shared cases: run on every runtime through `crate::rt`.

use std::future::Future;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use latchkey_protocol::sip::agent::{
    Account, AgentConfig, Backoff, CallEnd, Event, GateConfig, Server, StreamTransport,
};

use crate::rt::block_on;
use crate::rt::http::Roots;
use crate::rt::sip::{Outcome, SipClient, SipConfig, SipDriver, SipEvent};
use crate::rt::tls::{Identity, LiveIdentity};

const REASON: &str = "needs interop/kamailio.sh (Kamailio + SIPp)";

/// The run's Kamailio, from the script's environment.
struct Env {
    port: u16,
    udp: u16,
    gate: u16,
    password: String,
    certs: PathBuf,
    sipp: PathBuf,
    ctl: PathBuf,
    work: PathBuf,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: {REASON}"))
}

fn env() -> Env {
    Env {
        port: var("LATCHKEY_KAM_TLS_PORT").parse().expect("port"),
        udp: var("LATCHKEY_KAM_UDP_PORT").parse().expect("port"),
        gate: var("LATCHKEY_KAM_GATE_PORT").parse().expect("port"),
        password: var("LATCHKEY_KAM_PASSWORD"),
        certs: var("LATCHKEY_KAM_CERTS").into(),
        sipp: var("LATCHKEY_KAM_SIPP").into(),
        ctl: var("LATCHKEY_KAM_CTL").into(),
        work: var("LATCHKEY_KAM_WORK").into(),
    }
}

impl Env {
    fn identity(&self, name: &str) -> LiveIdentity {
        let read =
            |ext: &str| std::fs::read(self.certs.join(format!("{name}.{ext}"))).expect("cert");
        LiveIdentity::new(Identity::from_pem(&read("crt"), &read("key")).expect("identity"))
    }

    /// A profile for a user of its own, connecting to `port` (Kamailio or a proxy).
    fn config(&self, user: &str, port: u16) -> SipConfig {
        let account = Account::new(user, "127.0.0.1", self.password.clone());
        let mut agent = AgentConfig::new(
            account,
            Server::new("localhost", port, StreamTransport::Tls),
        );
        agent.gate = Some(GateConfig::new(
            "sip:gate@127.0.0.1",
            "text/plain",
            r#"{"jsonrpc":"2.0","id":"{id}","method":"lock.setStatus","params":[{"status":"open","receiver":{"plant":{"coal":{"id":"lock-1"}}}}]}"#,
        ));
        agent.keepalive.interval = None;
        agent.refresh.margin = Duration::from_secs(5);
        agent.backoff = Backoff::default();
        agent.backoff.initial = Duration::from_millis(500);
        agent.backoff.max = Duration::from_secs(2);
        agent.connect_timeout = Duration::from_secs(5);
        let mut c = SipConfig::new(agent);
        c.roots = Roots::Pem(std::fs::read(self.certs.join("ca.crt")).expect("ca"));
        c.identity = Some(self.identity("client"));
        c.connect_to = Some(("127.0.0.1".to_owned(), port));
        c
    }

    fn ctl(&self, what: &str) {
        let ok = Command::new("bash")
            .arg(&self.ctl)
            .arg(what)
            .arg(&self.work)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .expect("ctl.sh")
            .success();
        assert!(ok, "ctl.sh {what} failed");
    }

    /// The SIPp gate: answers one MESSAGE whose body matches `lock.setStatus` with 200.
    fn sipp_gate(&self) -> Sipp {
        Sipp::spawn(&[
            "-sf",
            &self.sipp.join("gate.xml").to_string_lossy(),
            "-i",
            "127.0.0.1",
            "-p",
            &self.gate.to_string(),
            "-m",
            "1",
            "-key",
            "body_re",
            r"lock\.setStatus",
            "-nostdin",
            "-timeout",
            "40",
        ])
    }

    /// The SIPp door station: INVITE to `user` through Kamailio, expects 180 then 486.
    fn sipp_door(&self, user: &str) -> Sipp {
        Sipp::spawn(&[
            &format!("127.0.0.1:{}", self.udp),
            "-sf",
            &self.sipp.join("doorbell.xml").to_string_lossy(),
            "-s",
            user,
            "-i",
            "127.0.0.1",
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "25",
        ])
    }
}

/// A SIPp process, killed if the test ends first.
struct Sipp(Child);

impl Sipp {
    fn spawn(args: &[&str]) -> Sipp {
        let child = Command::new("sipp")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sipp");
        // Let it bind before anything is sent to it.
        std::thread::sleep(Duration::from_millis(300));
        Sipp(child)
    }

    /// Its exit status within `limit` (SIPp exits 0 when the scenario passed).
    fn success_within(&mut self, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Ok(Some(st)) = self.0.try_wait() {
                return st.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn user(tag: &str) -> String {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).expect("random");
    format!("{tag}-{}", u32::from_le_bytes(b))
}

/// Runs `body` while the driver runs, within `limit`.
fn with_driver<T>(driver: SipDriver, limit: Duration, body: impl Future<Output = T>) -> T {
    block_on(async move {
        let run = async move {
            driver.run().await;
            std::future::pending::<T>().await
        };
        let limit = async move {
            crate::rt::sleep(limit).await;
            panic!("the interop exchange did not finish within {limit:?}");
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

/// The next event matching `pred` within `limit`, with the ones skipped on the way.
async fn until(
    client: &SipClient,
    limit: Duration,
    what: &str,
    pred: impl Fn(&SipEvent) -> bool,
) -> (SipEvent, Vec<SipEvent>) {
    let mut skipped = Vec::new();
    let found = race(
        async {
            loop {
                match client.next_event().await {
                    Some(e) if pred(&e) => return Some(e),
                    Some(e) => skipped.push(e),
                    None => return None,
                }
            }
        },
        async {
            crate::rt::sleep(limit).await;
            None
        },
    )
    .await;
    match found {
        Some(e) => (e, skipped),
        None => panic!("no {what} within {limit:?}; saw {skipped:?}"),
    }
}

fn registered(e: &SipEvent) -> bool {
    matches!(e, SipEvent::Agent(Event::Registered { .. }))
}

#[test]
#[ignore = "needs interop/kamailio.sh (Kamailio + SIPp)"]
fn registers_and_refreshes_across_two_short_expiries() {
    let env = env();
    let (client, driver) = SipClient::new(env.config(&user("refresh"), env.port)).expect("client");
    with_driver(driver, Duration::from_secs(60), async {
        let (e, _) = until(&client, Duration::from_secs(10), "Registered", registered).await;
        let SipEvent::Agent(Event::Registered { expires, .. }) = e else {
            unreachable!()
        };
        // lib.sh grants at most KAM_REG_MAX (20 s) whatever the agent asks (600 s).
        assert!(expires <= Duration::from_secs(20), "{expires:?}");
        for n in 1..=2 {
            let (e, skipped) = until(
                &client,
                expires + Duration::from_secs(5),
                "a refresh",
                |e| matches!(e, SipEvent::Agent(Event::RegistrationRefreshed { .. })),
            )
            .await;
            assert!(
                !skipped.iter().any(|e| matches!(
                    e,
                    SipEvent::Agent(Event::RegistrationLapsed | Event::Reconnecting { .. })
                )),
                "refresh {n}: {skipped:?}"
            );
            let _ = e;
        }
        client.shutdown().await;
    });
}

#[test]
#[ignore = "needs interop/kamailio.sh (Kamailio + SIPp)"]
fn a_doorbell_invite_from_sipp_is_one_event_answered_180_then_486() {
    let env = env();
    let me = user("door");
    let (client, driver) = SipClient::new(env.config(&me, env.port)).expect("client");
    let mut door = None;
    with_driver(driver, Duration::from_secs(40), async {
        until(&client, Duration::from_secs(10), "Registered", registered).await;
        door = Some(env.sipp_door(&me));
        let (e, _) = until(&client, Duration::from_secs(10), "Doorbell", |e| {
            matches!(e, SipEvent::Agent(Event::Doorbell(_)))
        })
        .await;
        let SipEvent::Agent(Event::Doorbell(ring)) = e else {
            unreachable!()
        };
        assert!(ring.from.starts_with("sip:door@127.0.0.1"), "{}", ring.from);
        let (e, between) = until(&client, Duration::from_secs(10), "CallEnded", |e| {
            matches!(e, SipEvent::Agent(Event::CallEnded { .. }))
        })
        .await;
        assert_eq!(
            e,
            SipEvent::Agent(Event::CallEnded {
                call: ring.call,
                reason: CallEnd::Declined { status: 486 }
            })
        );
        assert!(
            !between
                .iter()
                .any(|e| matches!(e, SipEvent::Agent(Event::Doorbell(_)))),
            "exactly one doorbell event: {between:?}"
        );
        // No second ring shows up later either (retransmissions are absorbed).
        crate::rt::sleep(Duration::from_secs(1)).await;
        while let Some(e) = client.try_next_event() {
            assert!(!matches!(e, SipEvent::Agent(Event::Doorbell(_))), "{e:?}");
        }
        client.shutdown().await;
    });
    let mut door = door.expect("door station started");
    assert!(
        door.success_within(Duration::from_secs(10)),
        "SIPp (door) did not get 180 then 486"
    );
}

#[test]
#[ignore = "needs interop/kamailio.sh (Kamailio + SIPp)"]
fn a_gate_message_through_kamailio_reaches_the_sipp_gate_and_is_delivered() {
    let env = env();
    let mut gate = env.sipp_gate();
    let (client, driver) = SipClient::new(env.config(&user("gate"), env.port)).expect("client");
    with_driver(driver, Duration::from_secs(40), async {
        until(&client, Duration::from_secs(10), "Registered", registered).await;
        let outcome = client.open_gate().await.expect("issued");
        assert_eq!(outcome, Outcome::Delivered { status: 200 });
        client.shutdown().await;
    });
    assert!(
        gate.success_within(Duration::from_secs(10)),
        "SIPp (gate) did not accept the body"
    );
}

#[test]
#[ignore = "needs interop/kamailio.sh (Kamailio + SIPp)"]
fn kamailio_restarted_mid_session_reconnects_re_registers_and_the_outage_message_is_not_lost() {
    let env = env();
    let mut gate = env.sipp_gate();
    let (client, driver) = SipClient::new(env.config(&user("outage"), env.port)).expect("client");
    let restarted = Arc::new(AtomicBool::new(false));
    with_driver(driver, Duration::from_secs(60), async {
        until(&client, Duration::from_secs(10), "Registered", registered).await;
        env.ctl("stop");
        let (_, _) = until(&client, Duration::from_secs(10), "Reconnecting", |e| {
            matches!(e, SipEvent::Agent(Event::Reconnecting { .. }))
        })
        .await;
        // Issued during the outage: queued (for at most queue.max_wait, 20 s).
        let message = client.open_gate();
        let restart = async {
            // A few failed attempts under backoff first, then the registrar comes back.
            crate::rt::sleep(Duration::from_secs(3)).await;
            env.ctl("start");
            restarted.store(true, Ordering::SeqCst);
        };
        let (outcome, ()) = join(message, restart).await;
        // Delivered after recovery — or reported failed; never lost (one outcome, in time).
        match outcome.expect("issued") {
            Outcome::Delivered { status } => assert_eq!(status, 200),
            Outcome::Failed { reason, .. } => {
                panic!("reported failed, not lost, but expected delivery: {reason}")
            }
            other => panic!("{other:?}"),
        }
        let mut attempts = Vec::new();
        let mut registered_again = false;
        while let Some(e) = client.try_next_event() {
            match e {
                SipEvent::Agent(Event::Reconnecting { attempt, .. }) => attempts.push(attempt),
                SipEvent::Agent(Event::Registered { .. }) => registered_again = true,
                _ => {}
            }
        }
        assert!(registered_again, "re-registered after the restart");
        assert!(
            attempts.len() <= 10 && attempts.windows(2).all(|w| w[1] > w[0]),
            "backoff, not a spin: {attempts:?}"
        );
        client.shutdown().await;
    });
    assert!(restarted.load(Ordering::SeqCst));
    assert!(
        gate.success_within(Duration::from_secs(10)),
        "SIPp (gate) got the command"
    );
}

#[test]
#[ignore = "needs interop/kamailio.sh (Kamailio + SIPp)"]
fn a_peer_that_stops_answering_pings_is_detected_stale_and_reconnected() {
    let env = env();
    let proxy = Proxy::start(env.port);
    let mut config = env.config(&user("stale"), proxy.port);
    config.agent.keepalive.interval = Some(Duration::from_secs(1));
    config.agent.keepalive.pong_timeout = Some(Duration::from_secs(1));
    let (client, driver) = SipClient::new(config).expect("client");
    with_driver(driver, Duration::from_secs(40), async {
        until(&client, Duration::from_secs(10), "Registered", registered).await;
        // Kamailio answers CRLFCRLF with CRLF: let a pong or two prove it, then go silent.
        crate::rt::sleep(Duration::from_millis(2500)).await;
        proxy.freeze();
        let (e, _) = until(&client, Duration::from_secs(10), "ConnectionStale", |e| {
            matches!(e, SipEvent::Agent(Event::ConnectionStale { .. }))
        })
        .await;
        let SipEvent::Agent(Event::ConnectionStale { silent_for }) = e else {
            unreachable!()
        };
        assert!(silent_for >= Duration::from_secs(1), "{silent_for:?}");
        proxy.thaw();
        until(
            &client,
            Duration::from_secs(10),
            "Registered again",
            registered,
        )
        .await;
        client.shutdown().await;
    });
}

#[test]
#[ignore = "needs interop/kamailio.sh (Kamailio + SIPp)"]
fn a_bad_client_certificate_is_a_clear_tls_error_without_a_busy_loop() {
    let env = env();
    let mut config = env.config(&user("intruder"), env.port);
    config.identity = Some(env.identity("foreign"));
    let (client, driver) = SipClient::new(config).expect("client");
    let (errors, attempts) = with_driver(driver, Duration::from_secs(20), async {
        crate::rt::sleep(Duration::from_secs(4)).await;
        let (mut errors, mut attempts) = (Vec::new(), 0);
        while let Some(e) = client.try_next_event() {
            match e {
                SipEvent::ConnectFailed { error, .. } | SipEvent::ConnectionError { error } => {
                    errors.push(error);
                }
                SipEvent::Agent(Event::Registered { .. }) => {
                    panic!("registered with a foreign certificate")
                }
                SipEvent::Connected { .. } => attempts += 1,
                _ => {}
            }
        }
        let n = attempts + errors.len();
        (errors, n)
    });
    assert!(!errors.is_empty(), "no error reported");
    assert!(
        errors
            .iter()
            .all(|e| e.contains("TLS error") || e.contains("reset") || e.contains("closed")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("TLS error") && (e.contains("alert") || e.contains("Alert"))),
        "the server's alert is named: {errors:?}"
    );
    // Backoff 0.5–2 s over 4 s: a handful of attempts, never a spin.
    assert!(
        attempts <= 16,
        "{attempts} connection events in 4 s: {errors:?}"
    );
}

/// Both futures to completion.
async fn join<A, B>(a: impl Future<Output = A>, b: impl Future<Output = B>) -> (A, B) {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(|cx| {
        if ra.is_none()
            && let std::task::Poll::Ready(v) = a.as_mut().poll(cx)
        {
            ra = Some(v);
        }
        if rb.is_none()
            && let std::task::Poll::Ready(v) = b.as_mut().poll(cx)
        {
            rb = Some(v);
        }
        if ra.is_some() && rb.is_some() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    (ra.expect("a"), rb.expect("b"))
}

/// A TCP relay to Kamailio on loopback that can stop forwarding (a half-open path: the
/// connection stays up, nothing gets through) and start again for new connections.
struct Proxy {
    port: u16,
    frozen: Arc<AtomicBool>,
}

impl Proxy {
    fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let frozen = Arc::new(AtomicBool::new(false));
        let f = frozen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                // A connection made while frozen is refused outright.
                if f.load(Ordering::SeqCst) {
                    continue;
                }
                for (from, to) in [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ] {
                    let (Ok(mut from), Ok(mut to)) = (from, to) else {
                        continue;
                    };
                    let f = f.clone();
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        let _ = from.set_read_timeout(Some(Duration::from_secs(60)));
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 {
                                break;
                            }
                            // Frozen: swallow everything, as a dead path does.
                            if !f.load(Ordering::SeqCst) && to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, frozen }
    }

    fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    fn thaw(&self) {
        self.frozen.store(false, Ordering::SeqCst);
    }
}
