//! Holds many authenticated RemoteUI panel WebSockets open against a running
//! `latchkey serve`, for `benches/gateway.sh` (which measures the server's RSS meanwhile).
//!
//! ```text
//! cargo run --release -p latchkey-benches --example panels -- \
//!     ADDR CERT_PEM ADMIN_COOKIE CSRF COUNT HOLD_SECS
//! ```
//!
//! The gateway keeps at most 256 panels (`latchkey_gateway::model::MAX_PANELS`), so up to 250
//! panels are added through the admin API and provisioned (calaos_base shape), and COUNT
//! connections are spread over them, each a signed upgrade from a loopback address of its
//! own (127.1.x.y) — so the per-address provisioning and authentication limits apply
//! unchanged. Pings from the gateway are answered; the summary is one JSON line.

#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use latchkey_protocol::guard::{Signer, SigningVariant};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

type Tls = TlsStream<tokio::net::TcpStream>;

struct Ctx {
    addr: SocketAddr,
    tls: TlsConnector,
    cookie: String,
    csrf: String,
}

fn source(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8))
}

async fn connect(ctx: &Ctx, from: IpAddr) -> std::io::Result<Tls> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    let tcp = socket.connect(ctx.addr).await?;
    tcp.set_nodelay(true)?;
    ctx.tls
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// Reads one response head and its Content-Length body.
async fn read_reply(stream: &mut Tls) -> std::io::Result<(u16, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let mut fields = [httparse::EMPTY_HEADER; 64];
        let mut r = httparse::Response::new(&mut fields);
        if let Ok(httparse::Status::Complete(n)) = r.parse(&buf) {
            let code = r.code.unwrap_or(0);
            let len = r
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                .unwrap_or(0usize);
            let len = if code == 101 { 0 } else { len };
            while buf.len() < n + len {
                let got = stream.read(&mut chunk).await?;
                if got == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..got]);
            }
            return Ok((code, buf[n..n + len].to_vec()));
        }
        let got = stream.read(&mut chunk).await?;
        if got == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..got]);
    }
}

async fn request(
    ctx: &Ctx,
    from: IpAddr,
    method: &str,
    path: &str,
    admin: bool,
    body: &str,
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = connect(ctx, from).await?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if admin {
        head.push_str(&format!(
            "Cookie: __Host-lk_session={}\r\nX-CSRF-Token: {}\r\n",
            ctx.cookie, ctx.csrf
        ));
    }
    head.push_str("\r\n");
    head.push_str(body);
    s.write_all(head.as_bytes()).await?;
    read_reply(&mut s).await
}

/// Provisions panel `i` (from its own address); its signer.
async fn provision(ctx: &Ctx, i: usize) -> Result<Signer, String> {
    let code = format!("B{i:07}");
    let (status, body) = request(
        ctx,
        source(i),
        "POST",
        "/api/v3/provision/request",
        false,
        &format!(
            r#"{{"code":"{code}","device_info":{{"type":"esp32","mac_address":"AA:BB:CC:00:{:02X}:{:02X}","hardware_id":"bench-panel"}}}}"#,
            i / 256,
            i % 256
        ),
    )
    .await
    .map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!(
            "provisioning {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    Signer::new(
        v["auth_token"].as_str().unwrap_or(""),
        v["device_secret"].as_str().unwrap_or("").as_bytes(),
        SigningVariant::CalaosBase,
    )
    .map_err(|e| format!("{e:?}"))
}

/// Opens connection `j` for the panel of `signer` from address `source(j)`: the stream
/// after the 101.
async fn connect_ws(ctx: &Ctx, signer: &Signer, j: usize) -> Result<Tls, String> {
    let i = j;
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let signed = signer.sign(unix, &mut ChaCha20Rng::seed_from_u64(i as u64));
    let mut head = String::from(
        "GET /api/v3/remote_ui/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
    );
    for (n, val) in signed.pairs(signer) {
        head.push_str(&format!("{n}: {val}\r\n"));
    }
    head.push_str("\r\n");
    let mut s = connect(ctx, source(i)).await.map_err(|e| e.to_string())?;
    s.write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let (status, body) = read_reply(&mut s).await.map_err(|e| e.to_string())?;
    if status != 101 {
        return Err(format!(
            "upgrade {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(s)
}

/// Reads frames until the connection ends, answering pings with masked pongs.
async fn hold(mut s: Tls) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // Complete frames at the front of `buf` (server frames are unmasked).
        while buf.len() >= 2 {
            let opcode = buf[0] & 0x0f;
            let (len, at) = match buf[1] & 0x7f {
                126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
                127 if buf.len() >= 10 => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&buf[2..10]);
                    (u64::from_be_bytes(b) as usize, 10)
                }
                126 | 127 => break,
                n => (n as usize, 2),
            };
            if buf.len() < at + len {
                break;
            }
            let payload: Vec<u8> = buf[at..at + len].to_vec();
            buf.drain(..at + len);
            match opcode {
                0x9 => {
                    let mut pong = vec![0x8a, 0x80 | payload.len() as u8, 0, 0, 0, 0];
                    pong.extend_from_slice(&payload);
                    if s.write_all(&pong).await.is_err() {
                        return;
                    }
                }
                0x8 => return,
                _ => {}
            }
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 7 {
        eprintln!("usage: panels ADDR CERT_PEM ADMIN_COOKIE CSRF COUNT HOLD_SECS");
        std::process::exit(2);
    }
    let addr: SocketAddr = args[1].parse().expect("ADDR");
    let cert = std::fs::read(&args[2]).expect("CERT_PEM");
    let count: usize = args[5].parse().expect("COUNT");
    let hold_secs: u64 = args[6].parse().expect("HOLD_SECS");
    let mut roots = rustls::RootCertStore::empty();
    for c in latchkey_pki::pem::parse_certificates(&cert).expect("a certificate") {
        roots.add(c).expect("root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let ctx = Arc::new(Ctx {
        addr,
        tls: TlsConnector::from(Arc::new(config)),
        cookie: args[3].clone(),
        csrf: args[4].clone(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let started = Instant::now();
        let panels = count.min(250);
        // The admin adds every panel's code (64 at a time).
        let next = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        for _ in 0..64 {
            let (ctx, next) = (Arc::clone(&ctx), Arc::clone(&next));
            workers.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= panels {
                        return;
                    }
                    let body = format!(r#"{{"name":"Bench {i}","provisioning_code":"B{i:07}"}}"#);
                    match request(
                        &ctx,
                        IpAddr::V4(Ipv4Addr::LOCALHOST),
                        "POST",
                        "/api/v3/remote_ui",
                        true,
                        &body,
                    )
                    .await
                    {
                        Ok((201, _)) => {}
                        Ok((s, b)) => {
                            panic!("adding panel {i}: {s} {}", String::from_utf8_lossy(&b))
                        }
                        Err(e) => panic!("adding panel {i}: {e}"),
                    }
                }
            }));
        }
        for w in workers {
            w.await.unwrap();
        }
        let mut signers = Vec::with_capacity(panels);
        for i in 0..panels {
            match provision(&ctx, i).await {
                Ok(signer) => signers.push(signer),
                Err(e) => panic!("panel {i}: {e}"),
            }
        }
        let signers = Arc::new(signers);
        let added = started.elapsed();
        // Every connection signs its upgrade (64 at a time), then is held open.
        let connected = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let next = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        for _ in 0..64 {
            let ctx = Arc::clone(&ctx);
            let signers = Arc::clone(&signers);
            let next = Arc::clone(&next);
            let connected = Arc::clone(&connected);
            let failed = Arc::clone(&failed);
            workers.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        return;
                    }
                    match connect_ws(&ctx, &signers[i % signers.len()], i).await {
                        Ok(s) => {
                            connected.fetch_add(1, Ordering::Relaxed);
                            tokio::spawn(hold(s));
                        }
                        Err(e) => {
                            if failed.fetch_add(1, Ordering::Relaxed) < 5 {
                                eprintln!("panel {i}: {e}");
                            }
                        }
                    }
                }
            }));
        }
        for w in workers {
            w.await.unwrap();
        }
        let all = started.elapsed();
        println!(
            "{}",
            serde_json::json!({
                "event": "connected",
                "connected": connected.load(Ordering::Relaxed),
                "failed": failed.load(Ordering::Relaxed),
                "panels": panels,
                "provision_secs": added.as_secs_f64(),
                "connect_secs": (all - added).as_secs_f64(),
            })
        );
        tokio::time::sleep(Duration::from_secs(hold_secs)).await;
        println!("{}", serde_json::json!({"event": "done"}));
    });
}
