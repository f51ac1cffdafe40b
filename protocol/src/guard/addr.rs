//! Client addresses as the guard counts them: one [`ClientKey`] per IPv4 address or per IPv6
//! prefix ([`AddressPolicy`], default /64 — one home or one customer), and the client address
//! recovered from `X-Forwarded-For` when — and only when — the peer is a trusted proxy
//! ([`TrustedProxies`]).

use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::str::FromStr;

/// The identity a per-address limit is kept under: an IPv4 address (as its IPv4-mapped IPv6
/// form) or an IPv6 address masked to the configured prefix. Two addresses with the same key
/// share every counter.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientKey(u128);

impl ClientKey {
    /// The key as 128 bits (IPv4 keys are `::ffff:a.b.c.d`).
    #[must_use]
    pub const fn to_bits(self) -> u128 {
        self.0
    }

    /// A key from its 128-bit form (as stored in a snapshot).
    #[must_use]
    pub const fn from_bits(bits: u128) -> Self {
        ClientKey(bits)
    }

    /// The key as an address (the prefix's first address for grouped IPv6).
    #[must_use]
    pub fn to_ip(self) -> IpAddr {
        let v6 = Ipv6Addr::from_bits(self.0);
        match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        }
    }

    /// The two 64-bit words table slots store.
    #[inline]
    pub(crate) const fn words(self) -> [u64; 2] {
        [(self.0 >> 64) as u64, self.0 as u64]
    }

    /// The key back from [`words`](Self::words).
    #[inline]
    pub(crate) const fn from_words(w: [u64; 2]) -> Self {
        ClientKey(((w[0] as u128) << 64) | w[1] as u128)
    }
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientKey({self})")
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_ip(), f)
    }
}

/// How addresses are grouped into [`ClientKey`]s.
///
/// IPv6 hosts usually hold a whole /64 (SLAAC and privacy addresses rotate inside it), so
/// counting per /128 lets one host look like 2⁶⁴ clients. The default groups IPv6 by /64 and
/// keeps IPv4 per address (/32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPolicy {
    ipv4_prefix: u8,
    ipv6_prefix: u8,
}

impl Default for AddressPolicy {
    fn default() -> Self {
        AddressPolicy {
            ipv4_prefix: 32,
            ipv6_prefix: 64,
        }
    }
}

impl AddressPolicy {
    /// Groups IPv4 addresses by `ipv4_prefix` bits (0..=32) and IPv6 addresses by
    /// `ipv6_prefix` bits (0..=128).
    ///
    /// # Errors
    ///
    /// [`AddressError::PrefixTooLong`] when a prefix is longer than its address.
    pub fn new(ipv4_prefix: u8, ipv6_prefix: u8) -> Result<Self, AddressError> {
        if ipv4_prefix > 32 {
            return Err(AddressError::PrefixTooLong {
                prefix: ipv4_prefix,
                max: 32,
            });
        }
        if ipv6_prefix > 128 {
            return Err(AddressError::PrefixTooLong {
                prefix: ipv6_prefix,
                max: 128,
            });
        }
        Ok(AddressPolicy {
            ipv4_prefix,
            ipv6_prefix,
        })
    }

    /// The IPv6 prefix length.
    #[must_use]
    pub const fn ipv6_prefix(&self) -> u8 {
        self.ipv6_prefix
    }

    /// The IPv4 prefix length.
    #[must_use]
    pub const fn ipv4_prefix(&self) -> u8 {
        self.ipv4_prefix
    }

    /// The key `ip` is counted under. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, as a
    /// dual-stack socket reports IPv4 peers) count as the IPv4 address.
    #[must_use]
    pub fn key(&self, ip: IpAddr) -> ClientKey {
        let v4_key = |v4: Ipv4Addr| {
            let bits = v4.to_bits() & mask32(self.ipv4_prefix);
            ClientKey(Ipv4Addr::from_bits(bits).to_ipv6_mapped().to_bits())
        };
        match ip {
            IpAddr::V4(v4) => v4_key(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4_key(v4),
                None => ClientKey(v6.to_bits() & mask128(self.ipv6_prefix)),
            },
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p => u32::MAX << (32 - u32::from(p.min(32))),
    }
}

fn mask128(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p => u128::MAX << (128 - u32::from(p.min(128))),
    }
}

/// An address block (`10.0.0.0/8`, `2001:db8::/32`, or a bare address for one host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// The block of `addr` with `prefix` leading bits. An IPv4-mapped IPv6 block
    /// (`::ffff:a.b.c.d/96` or longer) is the IPv4 block it maps, as addresses are compared
    /// in their IPv4 form.
    ///
    /// # Errors
    ///
    /// [`AddressError::PrefixTooLong`] when `prefix` is longer than the address;
    /// [`AddressError::MappedPrefixTooShort`] for an IPv4-mapped block under /96.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, AddressError> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(AddressError::PrefixTooLong { prefix, max });
        }
        if let (IpAddr::V4(v4), true) = (canonical(addr), addr.is_ipv6()) {
            if prefix < 96 {
                return Err(AddressError::MappedPrefixTooShort { prefix });
            }
            return Ok(IpNet {
                addr: IpAddr::V4(v4),
                prefix: prefix - 96,
            });
        }
        Ok(IpNet { addr, prefix })
    }

    /// Whether `ip` is inside the block (IPv4-mapped IPv6 addresses match IPv4 blocks).
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let m = mask32(self.prefix);
                net.to_bits() & m == ip.to_bits() & m
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let m = mask128(self.prefix);
                net.to_bits() & m == ip.to_bits() & m
            }
            _ => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, AddressError> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr = IpAddr::from_str(addr.trim()).map_err(|_| AddressError::BadNetwork)?;
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .map_err(|_| AddressError::BadNetwork)?,
            None if addr.is_ipv4() => 32,
            None => 128,
        };
        IpNet::new(addr, prefix)
    }
}

/// IPv4-mapped IPv6 addresses as IPv4; everything else unchanged.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The proxies whose `X-Forwarded-For` entries are believed. Empty by default: the peer
/// address is the client and `X-Forwarded-For` is ignored, because any client can send one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    max_hops: usize,
}

/// Where [`TrustedProxies::client_ip`] found the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientSource {
    /// The peer is not a trusted proxy (or none are configured): the peer is the client.
    Peer,
    /// The first untrusted hop from the right of `X-Forwarded-For`.
    Forwarded,
    /// Every hop was trusted; the leftmost one is taken as the client.
    LeftmostTrusted,
    /// A hop could not be parsed (or the hop limit was reached): the last address believed —
    /// the proxy that recorded it — is taken, so such clients share that proxy's limits.
    Unparsable,
}

impl TrustedProxies {
    /// Most `X-Forwarded-For` hops examined before giving up (see [`ClientSource::Unparsable`]).
    pub const DEFAULT_MAX_HOPS: usize = 16;

    /// No trusted proxies: `X-Forwarded-For` is ignored.
    #[must_use]
    pub fn none() -> Self {
        TrustedProxies {
            nets: Vec::new(),
            max_hops: Self::DEFAULT_MAX_HOPS,
        }
    }

    /// Trust the given blocks (for example the reverse proxy's address).
    #[must_use]
    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> Self {
        TrustedProxies {
            nets: nets.into_iter().collect(),
            max_hops: Self::DEFAULT_MAX_HOPS,
        }
    }

    /// Examine at most `max_hops` entries of `X-Forwarded-For` (at least one).
    #[must_use]
    pub fn with_max_hops(mut self, max_hops: usize) -> Self {
        self.max_hops = max_hops.max(1);
        self
    }

    /// Whether any proxy is trusted.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        !self.nets.is_empty()
    }

    /// Whether `ip` is a trusted proxy.
    #[must_use]
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(ip))
    }

    /// The client address of a request that arrived from `peer` with the given
    /// `X-Forwarded-For` field values (every occurrence, in order received; each may hold a
    /// comma-separated list). Reading from the right, trusted proxies are skipped and the
    /// first untrusted hop is the client — entries further left were written by that client
    /// and prove nothing. Hops may be bare addresses, `a.b.c.d:port` or `[v6]:port`.
    #[must_use]
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl IntoIterator<Item = &'a str, IntoIter: DoubleEndedIterator>,
    ) -> (IpAddr, ClientSource) {
        let peer = canonical(peer);
        if !self.is_trusted(peer) {
            return (peer, ClientSource::Peer);
        }
        let mut believed = peer;
        let mut hops = 0;
        for value in forwarded_for.into_iter().rev() {
            for hop in value.rsplit(',') {
                let hop = hop.trim_matches([' ', '\t']);
                if hop.is_empty() {
                    continue;
                }
                hops += 1;
                if hops > self.max_hops {
                    return (believed, ClientSource::Unparsable);
                }
                let Some(ip) = parse_hop(hop) else {
                    return (believed, ClientSource::Unparsable);
                };
                if !self.is_trusted(ip) {
                    return (ip, ClientSource::Forwarded);
                }
                believed = ip;
            }
        }
        if believed == peer {
            (peer, ClientSource::Peer)
        } else {
            (believed, ClientSource::LeftmostTrusted)
        }
    }
}

/// One `X-Forwarded-For` hop: `addr`, `v4:port` or `[v6]` / `[v6]:port`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if hop.len() > 64 {
        return None;
    }
    if let Some(rest) = hop.strip_prefix('[') {
        let (v6, tail) = rest.split_once(']')?;
        if !(tail.is_empty() || tail.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        return Ipv6Addr::from_str(v6)
            .ok()
            .map(|a| canonical(IpAddr::V6(a)));
    }
    if let Ok(ip) = IpAddr::from_str(hop) {
        return Some(canonical(ip));
    }
    let (v4, port) = hop.rsplit_once(':')?;
    if !is_port(port) {
        return None;
    }
    Ipv4Addr::from_str(v4).ok().map(IpAddr::V4)
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Errors of address configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressError {
    /// A prefix length longer than the address.
    PrefixTooLong {
        /// The prefix given.
        prefix: u8,
        /// The longest prefix for that address family.
        max: u8,
    },
    /// A network that is not `address` or `address/prefix`.
    BadNetwork,
    /// An IPv4-mapped IPv6 block (`::ffff:a.b.c.d`) shorter than /96: it would reach past
    /// the mapped range into other IPv6 addresses. Write the IPv4 block instead.
    MappedPrefixTooShort {
        /// The prefix given.
        prefix: u8,
    },
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressError::PrefixTooLong { prefix, max } => {
                write!(
                    f,
                    "prefix length /{prefix} is longer than the address (at most /{max})"
                )
            }
            AddressError::BadNetwork => {
                f.write_str("network is not `address` or `address/prefix-length`")
            }
            AddressError::MappedPrefixTooShort { prefix } => write!(
                f,
                "an IPv4-mapped block needs a prefix of /96 or more (got /{prefix}); \
                 write the IPv4 block instead"
            ),
        }
    }
}

impl core::error::Error for AddressError {}
