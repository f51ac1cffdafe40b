//! The Via header (RFC 3261 §20.42, §18.2.1 received/rport per RFC 3581).

use core::fmt;

use super::ValueError;
use crate::sip::lex::{self, Cursor, Param, Params};
use crate::sip::uri::{self, Host};

/// The transport named in a Via's sent-protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport<'a> {
    /// UDP
    Udp,
    /// TCP
    Tcp,
    /// TLS
    Tls,
    /// SCTP
    Sctp,
    /// TLS-SCTP
    TlsSctp,
    /// WS (RFC 7118)
    Ws,
    /// WSS (RFC 7118)
    Wss,
    /// Any other token, as written.
    Other(&'a str),
}

impl<'a> Transport<'a> {
    /// Classify a transport token (case-insensitive).
    #[must_use]
    pub fn from_token(t: &'a str) -> Transport<'a> {
        const UDP: u64 = lex::short_key(b"udp");
        const TCP: u64 = lex::short_key(b"tcp");
        const TLS: u64 = lex::short_key(b"tls");
        const SCTP: u64 = lex::short_key(b"sctp");
        const TLS_SCTP: u64 = lex::short_key(b"tls-sctp");
        const WS: u64 = lex::short_key(b"ws");
        const WSS: u64 = lex::short_key(b"wss");
        match (t.len(), lex::short_key(t.as_bytes())) {
            (3, UDP) => Transport::Udp,
            (3, TCP) => Transport::Tcp,
            (3, TLS) => Transport::Tls,
            (4, SCTP) => Transport::Sctp,
            (8, TLS_SCTP) => Transport::TlsSctp,
            (2, WS) => Transport::Ws,
            (3, WSS) => Transport::Wss,
            _ => Transport::Other(t),
        }
    }

    /// The canonical token.
    #[must_use]
    pub fn as_str(&self) -> &'a str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Sctp => "SCTP",
            Transport::TlsSctp => "TLS-SCTP",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
            Transport::Other(t) => t,
        }
    }

    /// Whether the transport is reliable (a stream), which changes the transaction timers and
    /// makes Content-Length mandatory.
    #[must_use]
    pub fn is_reliable(&self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

impl fmt::Display for Transport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One Via value: `SIP/2.0/TLS host:port;branch=z9hG4bK…;received=…;rport=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    /// Protocol name, normally `SIP`.
    pub protocol: &'a str,
    /// Protocol version, normally `2.0`.
    pub version: &'a str,
    /// Transport.
    pub transport: Transport<'a>,
    /// sent-by host.
    pub host: Host<'a>,
    /// sent-by port, when present.
    pub port: Option<u16>,
    /// The parameters (`branch`, `received`, `rport`, `maddr`, `ttl`, extensions).
    pub params: Params<'a>,
    /// The parameters with a grammar, checked and remembered in the one pass over the list.
    known: Known<'a>,
}

/// The first `branch`, `received`, `rport`, `maddr` and `ttl` of a Via.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Known<'a> {
    branch: Option<&'a str>,
    received: Option<Host<'a>>,
    rport: Option<Option<u16>>,
    maddr: Option<&'a str>,
    ttl: Option<u8>,
}

impl<'a> Known<'a> {
    /// Check one parameter and remember it if it is the first of its name.
    fn visit(&mut self, p: Param<'a>, at: usize) -> Result<(), (usize, &'static str)> {
        const BRANCH: u64 = lex::short_key(b"branch");
        const RECEIVED: u64 = lex::short_key(b"received");
        const RPORT: u64 = lex::short_key(b"rport");
        const MADDR: u64 = lex::short_key(b"maddr");
        const TTL: u64 = lex::short_key(b"ttl");
        let name = p.name.as_bytes();
        // The length and one word compare pick the parameter (names of other lengths are not
        // looked at further).
        if !matches!(name.len(), 3 | 5 | 6 | 8) {
            return Ok(());
        }
        match (name.len(), lex::short_key(name)) {
            (6, BRANCH) => {
                let v = p
                    .value
                    .filter(|v| !v.is_empty())
                    .ok_or((at, "branch needs a value"))?;
                self.branch.get_or_insert(v);
            }
            (8, RECEIVED) => {
                let ip = p
                    .value
                    .and_then(parse_ip)
                    .ok_or((at, "received must be an IP address"))?;
                self.received.get_or_insert(ip);
            }
            (5, RPORT) => {
                let port = match p.value {
                    None => None,
                    Some(v) => Some(parse_port(v).ok_or((at, "rport must be a port number"))?),
                };
                self.rport.get_or_insert(port);
            }
            (5, MADDR) => {
                let v = p
                    .value
                    .filter(|v| !v.is_empty())
                    .ok_or((at, "maddr needs a value"))?;
                self.maddr.get_or_insert(v);
            }
            (3, TTL) => {
                let ttl = p
                    .value
                    .and_then(|v| lex::parse_u64(v, 3))
                    .and_then(|n| u8::try_from(n).ok())
                    .ok_or((at, "ttl must be 0-255"))?;
                self.ttl.get_or_insert(ttl);
            }
            _ => {}
        }
        Ok(())
    }
}

/// The RFC 3261 branch magic cookie.
pub const BRANCH_MAGIC_COOKIE: &str = "z9hG4bK";

impl<'a> Via<'a> {
    /// Parse one Via value (one element of a possibly comma-separated header).
    pub fn parse(value: &'a str) -> Result<Via<'a>, ValueError> {
        match Self::parse_common(value) {
            Some(via) => Ok(via),
            None => Self::parse_full(value),
        }
    }

    /// The shape nearly every Via has, read in one pass over the bytes:
    /// `SIP/2.0/transport SP host[:port]` followed by `;name[=value]` parameters with no white
    /// space, quotes or anything after them. `None` for anything else (the full grammar then
    /// decides, errors included); when it returns a value, [`Via::parse_full`] returns the same
    /// (a property test checks it on generated and mutated values).
    #[inline]
    pub(super) fn parse_common(value: &'a str) -> Option<Via<'a>> {
        const SIP_2_0: &[u8] = b"SIP/2.0/";
        let b = value.as_bytes();
        if b.get(..SIP_2_0.len()) != Some(SIP_2_0) {
            return None;
        }
        let t_start = SIP_2_0.len();
        let t_len = lex::token_run_len(b, t_start);
        let host_start = t_start + t_len + 1;
        if t_len == 0 || b.get(host_start - 1) != Some(&b' ') {
            return None;
        }
        let (host, port, host_end) = match uri::host_port_common(value, host_start) {
            Some((host, _, port, end)) => (host, port, end),
            None => {
                let mut c = Cursor::at(value, host_start);
                let (host, port) = uri::parse_host_port(&mut c).ok()?;
                (host, port, c.pos())
            }
        };
        let mut known = Known::default();
        let params = lex::scan_params_common(value, host_end, |p, at| known.visit(p, at).is_ok())?;
        Some(Via {
            protocol: value.get(..3)?,
            version: value.get(4..7)?,
            transport: Transport::from_token(value.get(t_start..t_start + t_len)?),
            host,
            port,
            params,
            known,
        })
    }

    /// The full RFC 3261 grammar (LWS around separators, quoted parameter values, errors).
    #[inline(never)] // kept out of the one-pass reader that runs first
    pub(super) fn parse_full(value: &'a str) -> Result<Via<'a>, ValueError> {
        let mut c = Cursor::new(value);
        c.skip_lws();
        let protocol = c
            .token()
            .ok_or(ValueError::new(c.pos(), "expected protocol name"))?;
        if !c.eat_sep(b'/') {
            return Err(ValueError::new(c.pos(), "expected '/' after protocol name"));
        }
        let version = c
            .token()
            .ok_or(ValueError::new(c.pos(), "expected protocol version"))?;
        if !c.eat_sep(b'/') {
            return Err(ValueError::new(
                c.pos(),
                "expected '/' after protocol version",
            ));
        }
        let transport = c
            .token()
            .ok_or(ValueError::new(c.pos(), "expected transport"))?;
        if !c.skip_lws() {
            return Err(ValueError::new(
                c.pos(),
                "expected white space before sent-by",
            ));
        }
        let (host, port) =
            uri::parse_host_port(&mut c).map_err(|o| ValueError::new(o, "invalid sent-by"))?;
        let mut known = Known::default();
        let params = if c.eat_sep(b';') {
            lex::scan_params_visit(&mut c, |p, at| known.visit(p, at))
                .map_err(|(at, reason)| ValueError::new(at, reason))?
        } else {
            Params::default()
        };
        c.skip_lws();
        if !c.is_empty() {
            return Err(ValueError::new(c.pos(), "unexpected characters after Via"));
        }
        Ok(Via {
            protocol,
            version,
            transport: Transport::from_token(transport),
            host,
            port,
            params,
            known,
        })
    }

    /// The `branch` parameter.
    #[must_use]
    pub fn branch(&self) -> Option<&'a str> {
        self.known.branch
    }

    /// Whether the branch carries the RFC 3261 magic cookie (`z9hG4bK`).
    #[must_use]
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch()
            .is_some_and(|b| b.starts_with(BRANCH_MAGIC_COOKIE))
    }

    /// The `received` parameter (RFC 3261 §18.2.1).
    #[must_use]
    pub fn received(&self) -> Option<Host<'a>> {
        self.known.received
    }

    /// The `rport` parameter (RFC 3581): `None` when absent, `Some(None)` when present without
    /// a value (a request asking for it), `Some(Some(port))` in a response.
    #[must_use]
    pub fn rport(&self) -> Option<Option<u16>> {
        self.known.rport
    }

    /// The `maddr` parameter.
    #[must_use]
    pub fn maddr(&self) -> Option<&'a str> {
        self.known.maddr
    }

    /// The `ttl` parameter.
    #[must_use]
    pub fn ttl(&self) -> Option<u8> {
        self.known.ttl
    }
}

/// An IP address as `received` carries it: IPv4, or IPv6 with or without brackets
/// (RFC 3261 §20.42 writes it bare; RFC 5118 §4.5 notes both forms in the field).
fn parse_ip(v: &str) -> Option<Host<'_>> {
    // Dotted-quad first, without a cursor: what `Host::parse` returns for it, and the common
    // case (anything `ipv4` rejects goes the general way below).
    if let Some(a) = uri::ipv4(v) {
        return Some(Host::Ipv4(a));
    }
    match Host::parse(v) {
        Ok(h @ (Host::Ipv4(_) | Host::Ipv6(_))) => Some(h),
        Ok(_) => None,
        Err(_) => v.parse::<core::net::Ipv6Addr>().ok().map(Host::Ipv6),
    }
}

/// A port: 1–5 decimal digits, at most 65535 (no sign).
fn parse_port(v: &str) -> Option<u16> {
    lex::parse_u64(v, 5).and_then(|n| u16::try_from(n).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    #[test]
    fn parses_transport_sent_by_and_parameters() {
        let v = Via::parse(
            "SIP/2.0/TLS 192.0.2.4:5061;branch=z9hG4bKnashds7;rport=5062;received=198.51.100.1",
        )
        .unwrap();
        assert_eq!(v.protocol, "SIP");
        assert_eq!(v.version, "2.0");
        assert_eq!(v.transport, Transport::Tls);
        assert_eq!(v.host, Host::Ipv4(Ipv4Addr::new(192, 0, 2, 4)));
        assert_eq!(v.port, Some(5061));
        assert_eq!(v.branch(), Some("z9hG4bKnashds7"));
        assert!(v.has_rfc3261_branch());
        assert_eq!(v.rport(), Some(Some(5062)));
        assert_eq!(
            v.received(),
            Some(Host::Ipv4(Ipv4Addr::new(198, 51, 100, 1)))
        );
    }

    #[test]
    fn rport_flag_without_value_and_lws_around_separators() {
        // RFC 3261 §25.1 allows LWS around SLASH and SEMI.
        let v = Via::parse("SIP / 2.0 / UDP host.example.com ; rport ; branch = z9hG4bK1").unwrap();
        assert_eq!(v.transport, Transport::Udp);
        assert_eq!(v.host, Host::Domain("host.example.com"));
        assert_eq!(v.port, None);
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.branch(), Some("z9hG4bK1"));
    }

    #[test]
    fn ipv6_sent_by() {
        let v = Via::parse("SIP/2.0/TCP [2001:db8::9:1]:5060;branch=z9hG4bKas").unwrap();
        assert!(matches!(v.host, Host::Ipv6(_)));
        assert_eq!(v.port, Some(5060));
    }

    #[test]
    fn faults_name_their_offset() {
        assert_eq!(Via::parse("SIP/2.0 host").unwrap_err().offset, 7);
        assert_eq!(
            Via::parse("SIP/2.0/UDP host;ttl=300").unwrap_err().reason,
            "ttl must be 0-255"
        );
        assert!(Via::parse("SIP/2.0/UDP host;received=notanip").is_err());
        assert!(Via::parse("SIP/2.0/UDP host:99999").is_err());
        assert!(Via::parse("SIP/2.0/UDP host extra").is_err());
        assert!(
            Via::parse("SIP/2.0/UDP host;rport=+5060").is_err(),
            "no sign on ports"
        );
    }

    #[test]
    fn received_accepts_bare_and_bracketed_ipv6() {
        // RFC 3261 §20.42: via-received = "received" EQUAL (IPv4address / IPv6address).
        let v = Via::parse("SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1;received=2001:db8::9")
            .unwrap();
        assert_eq!(
            v.received(),
            Some(Host::Ipv6("2001:db8::9".parse().unwrap()))
        );
        let v =
            Via::parse("SIP/2.0/UDP [2001:db8::1];branch=z9hG4bK1;received=[2001:db8::9]").unwrap();
        assert_eq!(
            v.received(),
            Some(Host::Ipv6("2001:db8::9".parse().unwrap()))
        );
    }
}
