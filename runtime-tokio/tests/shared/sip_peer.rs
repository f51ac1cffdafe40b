//! A stand-in SIP server for the driver tests: a mutual-TLS registrar and message sink on
//! loopback, on std threads with rustls (the same peer whichever runtime the client uses).
//! It grants every REGISTER (no digest: the digest rounds are proven by the agent's harness
//! and against Kamailio), answers MESSAGEs with a chosen status, answers CRLFCRLF pings,
//! rings the client on demand, and logs what it saw with the client certificate's name.
//!
//! Shared source: included by `latchkey-tokio`'s and `latchkey-smol`'s tests.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::CertificateDer;
use rustls::{ServerConnection, StreamOwned};

use crate::rt::tls::{ClientAuth, Identity, LiveIdentity, server_config};

/// A certificate and key, PEM.
pub(crate) struct Pair {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
}

impl Pair {
    pub(crate) fn identity(&self) -> Identity {
        Identity::from_pem(self.cert_pem.as_bytes(), self.key_pem.as_bytes()).expect("identity")
    }
}

/// The test PKI: a CA, the server's leaf (`localhost`, `127.0.0.1`), two client leaves, and
/// an unrelated CA with its own client leaf.
pub(crate) struct Pki {
    pub(crate) ca_pem: String,
    /// The CA itself (a stand-in certificate authority signs renewals with it).
    pub(crate) ca: CertifiedIssuer<'static, KeyPair>,
    pub(crate) server: Pair,
    pub(crate) panel1: Pair,
    pub(crate) panel2: Pair,
    pub(crate) other_ca_pem: String,
    pub(crate) intruder: Pair,
}

pub(crate) fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca = make_ca("sip test CA");
        let other = make_ca("unrelated CA");
        Pki {
            ca_pem: ca.pem(),
            server: leaf(&ca, "localhost", &["localhost", "127.0.0.1"]),
            panel1: leaf(&ca, "panel-1", &["panel-1"]),
            panel2: leaf(&ca, "panel-2", &["panel-2"]),
            other_ca_pem: other.pem(),
            intruder: leaf(&other, "intruder", &["intruder"]),
            ca,
        }
    })
}

fn make_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("ca key")).expect("ca")
}

fn leaf(issuer: &CertifiedIssuer<'static, KeyPair>, cn: &str, names: &[&str]) -> Pair {
    let key = KeyPair::generate().expect("key");
    let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    let mut params = CertificateParams::new(names).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let cert = params.signed_by(&key, issuer).expect("leaf");
    Pair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// What the peer saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seen {
    /// A TLS connection from the client certificate with this CN.
    Connected(String),
    /// A REGISTER with this Expires (or Contact expires), over the connection of this CN.
    Register { expires: u32, cn: String },
    /// A MESSAGE to this Request-URI with this body.
    Message { target: String, body: String },
    /// A response from the client to our INVITE.
    Response(u16),
    /// An ACK.
    Ack,
    /// A CRLFCRLF ping.
    Ping,
    /// The connection ended.
    Closed,
}

struct State {
    seen: Vec<Seen>,
    /// The status MESSAGEs get.
    message_status: u16,
    /// Bumped to make every connection close.
    cut: u64,
    /// INVITEs to send on the current connection.
    ring: Vec<String>,
    /// Answer pings.
    pong: bool,
}

/// The running peer (its threads live until the test process ends).
pub(crate) struct Peer {
    pub(crate) addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Peer {
    /// Starts the peer: it grants `expires` seconds to every REGISTER.
    pub(crate) fn start(expires: u32) -> Peer {
        let pki = pki();
        let live = LiveIdentity::new(pki.server.identity());
        let config = server_config(
            &live,
            &ClientAuth::Required {
                roots_pem: pki.ca_pem.clone().into_bytes(),
            },
            &[],
        )
        .expect("server config");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State {
            seen: Vec::new(),
            message_status: 200,
            cut: 0,
            ring: Vec::new(),
            pong: true,
        }));
        let st = state.clone();
        thread::spawn(move || {
            for sock in listener.incoming() {
                let Ok(sock) = sock else { continue };
                let (config, st) = (config.clone(), st.clone());
                thread::spawn(move || serve(sock, config, st, expires));
            }
        });
        Peer { addr, state }
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.state.lock().expect("state").seen.clone()
    }

    pub(crate) fn set_message_status(&self, status: u16) {
        self.state.lock().expect("state").message_status = status;
    }

    pub(crate) fn set_pong(&self, pong: bool) {
        self.state.lock().expect("state").pong = pong;
    }

    /// Closes every open connection.
    pub(crate) fn cut(&self) {
        self.state.lock().expect("state").cut += 1;
    }

    /// Sends an INVITE from `sip:c100x@127.0.0.1` to the client on its connection.
    pub(crate) fn ring(&self, call_id: &str) {
        let invite = format!(
            "INVITE sip:panel@127.0.0.1 SIP/2.0\r\n\
             Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK{call_id}\r\n\
             Max-Forwards: 70\r\n\
             From: \"Door\" <sip:c100x@127.0.0.1>;tag=door{call_id}\r\n\
             To: <sip:panel@127.0.0.1>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:c100x@127.0.0.1:5061;transport=tls>\r\n\
             Content-Length: 0\r\n\r\n"
        );
        self.state.lock().expect("state").ring.push(invite);
    }

    /// Waits up to `limit` until `pred` holds over what the peer saw.
    pub(crate) fn wait_for(&self, limit: Duration, pred: impl Fn(&[Seen]) -> bool) -> bool {
        let end = Instant::now() + limit;
        loop {
            if pred(&self.state.lock().expect("state").seen) {
                return true;
            }
            if Instant::now() > end {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

fn serve(sock: TcpStream, config: Arc<rustls::ServerConfig>, st: Arc<Mutex<State>>, expires: u32) {
    let _ = sock.set_read_timeout(Some(Duration::from_millis(20)));
    let Ok(conn) = ServerConnection::new(config) else {
        return;
    };
    let mut tls = StreamOwned::new(conn, sock);
    // Finish the handshake (reads time out while the client thinks).
    let start = Instant::now();
    while tls.conn.is_handshaking() {
        match tls.conn.complete_io(&mut tls.sock) {
            Ok(_) => {}
            Err(e) if timed_out(&e) && start.elapsed() < Duration::from_secs(5) => {}
            Err(_) => return,
        }
    }
    let cn = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(common_name)
        .unwrap_or_default();
    let cut_at_start = {
        let mut s = st.lock().expect("state");
        s.seen.push(Seen::Connected(cn.clone()));
        s.cut
    };
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let (ring, cut) = {
            let mut s = st.lock().expect("state");
            (std::mem::take(&mut s.ring), s.cut)
        };
        if cut != cut_at_start {
            let _ = tls.sock.shutdown(std::net::Shutdown::Both);
            break;
        }
        for invite in ring {
            if tls.write_all(invite.as_bytes()).is_err() {
                break;
            }
        }
        match tls.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if timed_out(&e) => continue,
            Err(_) => break,
        }
        while let Some(msg) = next_message(&mut buf) {
            let reply = match msg {
                Msg::Ping => {
                    let mut s = st.lock().expect("state");
                    s.seen.push(Seen::Ping);
                    s.pong.then(|| "\r\n".to_owned())
                }
                Msg::Sip(text, body) => handle(&text, &body, &st, &cn, expires),
            };
            if let Some(r) = reply
                && tls.write_all(r.as_bytes()).is_err()
            {
                break;
            }
        }
    }
    st.lock().expect("state").seen.push(Seen::Closed);
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

enum Msg {
    Ping,
    Sip(String, String),
}

fn next_message(buf: &mut Vec<u8>) -> Option<Msg> {
    if buf.starts_with(b"\r\n\r\n") {
        buf.drain(..4);
        return Some(Msg::Ping);
    }
    while buf.starts_with(b"\r\n") && buf.len() >= 2 && !buf.starts_with(b"\r\n\r") {
        buf.drain(..2);
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let len = header(&head, "content-length", "l")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    if buf.len() < end + 4 + len {
        return None;
    }
    let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
    buf.drain(..end + 4 + len);
    Some(Msg::Sip(head, body))
}

fn header<'a>(head: &'a str, name: &str, compact: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        let n = n.trim();
        (n.eq_ignore_ascii_case(name) || n.eq_ignore_ascii_case(compact)).then(|| v.trim())
    })
}

fn handle(head: &str, body: &str, st: &Mutex<State>, cn: &str, expires: u32) -> Option<String> {
    let start = head.lines().next().unwrap_or_default();
    let mut s = st.lock().expect("state");
    if let Some(rest) = start.strip_prefix("SIP/2.0 ") {
        let code = rest.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        s.seen.push(Seen::Response(code));
        return None;
    }
    let mut parts = start.split(' ');
    let (method, target) = (parts.next()?, parts.next()?.to_owned());
    match method {
        "REGISTER" => {
            let asked = header(head, "expires", "expires")
                .and_then(|v| v.parse::<u32>().ok())
                .or_else(|| {
                    let c = header(head, "contact", "m")?;
                    let e = c.split(";expires=").nth(1)?;
                    e.split(|ch: char| !ch.is_ascii_digit())
                        .next()?
                        .parse()
                        .ok()
                })
                .unwrap_or(expires);
            let granted = asked.min(expires);
            s.seen.push(Seen::Register {
                expires: granted,
                cn: cn.to_owned(),
            });
            let contact = header(head, "contact", "m").unwrap_or_default();
            let contact = contact.split(";expires").next().unwrap_or_default();
            let extra = format!("Contact: {contact};expires={granted}\r\nExpires: {granted}\r\n");
            Some(response(head, 200, "OK", &extra))
        }
        "MESSAGE" => {
            s.seen.push(Seen::Message {
                target,
                body: body.to_owned(),
            });
            let status = s.message_status;
            Some(response(
                head,
                status,
                if status == 200 { "OK" } else { "Nope" },
                "",
            ))
        }
        "ACK" => {
            s.seen.push(Seen::Ack);
            None
        }
        _ => Some(response(head, 200, "OK", "")),
    }
}

fn response(head: &str, code: u16, reason: &str, extra: &str) -> String {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for l in head.lines().skip(1) {
        let name = l
            .split(':')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match name.as_str() {
            "via" | "v" | "from" | "f" | "call-id" | "i" | "cseq" => {
                out.push_str(l);
                out.push_str("\r\n");
            }
            "to" | "t" => {
                out.push_str(l);
                if !l.contains("tag=") {
                    out.push_str(";tag=peer");
                }
                out.push_str("\r\n");
            }
            _ => {}
        }
    }
    out.push_str(extra);
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

/// The CN of a certificate (enough for test certificates: the first printable run after the
/// CN attribute's OID).
fn common_name(cert: &CertificateDer<'_>) -> String {
    let der = cert.as_ref();
    // OID 2.5.4.3 = 06 03 55 04 03; take the *last* CN (the subject follows the issuer).
    let oid = [0x06, 0x03, 0x55, 0x04, 0x03];
    let Some(pos) = der.windows(5).rposition(|w| w == oid) else {
        return String::new();
    };
    let (len_at, val_at) = (pos + 6, pos + 7);
    let len = usize::from(*der.get(len_at).unwrap_or(&0));
    String::from_utf8_lossy(der.get(val_at..val_at + len).unwrap_or_default()).into_owned()
}
