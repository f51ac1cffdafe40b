//! Address keys, prefix grouping and trusted-proxy `X-Forwarded-For` handling.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv6Addr};

use proptest::prelude::*;

use super::{v4, v6};
use crate::guard::*;

#[test]
fn ipv6_addresses_in_one_slash_64_share_a_key_by_default() {
    let p = AddressPolicy::default();
    assert_eq!(
        p.key(v6("2001:db8:1:2::1")),
        p.key(v6("2001:db8:1:2:ffff:1:2:3"))
    );
    assert_ne!(p.key(v6("2001:db8:1:2::1")), p.key(v6("2001:db8:1:3::1")));
    assert_eq!(p.key(v6("2001:db8:1:2::1")).to_ip(), v6("2001:db8:1:2::"));
}

#[test]
fn configurable_prefix_groups_wider_or_per_host() {
    let wide = AddressPolicy::new(32, 48).unwrap();
    assert_eq!(
        wide.key(v6("2001:db8:1:2::1")),
        wide.key(v6("2001:db8:1:ffff::1"))
    );
    let host = AddressPolicy::new(32, 128).unwrap();
    assert_ne!(host.key(v6("2001:db8::1")), host.key(v6("2001:db8::2")));
    assert_eq!(
        AddressPolicy::new(33, 64),
        Err(AddressError::PrefixTooLong {
            prefix: 33,
            max: 32
        })
    );
    assert!(AddressPolicy::new(24, 129).is_err());
}

#[test]
fn ipv4_and_its_mapped_ipv6_form_are_one_client() {
    let p = AddressPolicy::default();
    assert_eq!(p.key(v4(192, 0, 2, 7)), p.key(v6("::ffff:192.0.2.7")));
    assert_ne!(p.key(v4(192, 0, 2, 7)), p.key(v4(192, 0, 2, 8)));
    assert_eq!(p.key(v4(192, 0, 2, 7)).to_ip(), v4(192, 0, 2, 7));
    assert_eq!(format!("{}", p.key(v4(192, 0, 2, 7))), "192.0.2.7");
}

#[test]
fn ipnet_parses_blocks_and_hosts() {
    let n: IpNet = "10.0.0.0/8".parse().unwrap();
    assert!(n.contains(v4(10, 9, 8, 7)));
    assert!(n.contains(v6("::ffff:10.1.1.1")));
    assert!(!n.contains(v4(11, 0, 0, 1)));
    // IPv4-mapped blocks, however they are made, are the IPv4 blocks they map.
    let mapped = IpNet::new(v6("::ffff:10.0.0.1"), 128).unwrap();
    assert!(mapped.contains(v4(10, 0, 0, 1)));
    assert!(mapped.contains(v6("::ffff:10.0.0.1")));
    assert!(!mapped.contains(v4(10, 0, 0, 2)));
    let mapped: IpNet = "::ffff:10.0.0.0/120".parse().unwrap();
    assert!(mapped.contains(v4(10, 0, 0, 7)));
    assert!(!mapped.contains(v4(10, 0, 1, 7)));
    let mapped: IpNet = "::ffff:10.0.0.1".parse().unwrap();
    assert!(mapped.contains(v4(10, 0, 0, 1)));
    // Under /96 a mapped block would reach other IPv6 addresses (::1, NAT64): refused.
    assert_eq!(
        "::ffff:10.0.0.0/8".parse::<IpNet>(),
        Err(AddressError::MappedPrefixTooShort { prefix: 8 })
    );
    let h: IpNet = "2001:db8::1".parse().unwrap();
    assert!(h.contains(v6("2001:db8::1")));
    assert!(!h.contains(v6("2001:db8::2")));
    assert_eq!(
        "10.0.0.0/33".parse::<IpNet>(),
        Err(AddressError::PrefixTooLong {
            prefix: 33,
            max: 32
        })
    );
    assert_eq!("banana".parse::<IpNet>(), Err(AddressError::BadNetwork));
}

fn proxies() -> TrustedProxies {
    TrustedProxies::new([
        "10.0.0.0/8".parse().unwrap(),
        "2001:db8:ffff::/48".parse().unwrap(),
    ])
}

#[test]
fn forwarded_for_is_ignored_unless_proxies_are_configured() {
    let none = TrustedProxies::none();
    assert_eq!(
        none.client_ip(v4(10, 0, 0, 1), ["203.0.113.9"]),
        (v4(10, 0, 0, 1), ClientSource::Peer)
    );
}

#[test]
fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    assert_eq!(
        proxies().client_ip(v4(198, 51, 100, 1), ["203.0.113.9"]),
        (v4(198, 51, 100, 1), ClientSource::Peer)
    );
}

#[test]
fn first_untrusted_hop_from_the_right_is_the_client() {
    // The client forged "1.2.3.4"; our proxy chain appended the real client and a proxy.
    let (ip, src) = proxies().client_ip(v4(10, 0, 0, 1), ["1.2.3.4, 203.0.113.9, 10.0.0.2"]);
    assert_eq!((ip, src), (v4(203, 0, 113, 9), ClientSource::Forwarded));
    // Several header lines are one list, in order.
    let (ip, _) = proxies().client_ip(v4(10, 0, 0, 1), ["1.2.3.4", "203.0.113.9", "10.0.0.2"]);
    assert_eq!(ip, v4(203, 0, 113, 9));
}

#[test]
fn forwarded_hops_with_ports_and_brackets_parse() {
    let p = proxies();
    assert_eq!(
        p.client_ip(v4(10, 0, 0, 1), ["203.0.113.9:4711"]).0,
        v4(203, 0, 113, 9)
    );
    assert_eq!(
        p.client_ip(v4(10, 0, 0, 1), ["[2001:db8::5]:443"]).0,
        v6("2001:db8::5")
    );
    assert_eq!(
        p.client_ip(v4(10, 0, 0, 1), ["[2001:db8::5]"]).0,
        v6("2001:db8::5")
    );
    assert_eq!(
        p.client_ip(v4(10, 0, 0, 1), ["2001:db8::5"]).0,
        v6("2001:db8::5")
    );
}

#[test]
fn garbage_hop_stops_at_the_proxy_that_recorded_it() {
    let (ip, src) = proxies().client_ip(v4(10, 0, 0, 1), ["203.0.113.9, unknown, 10.0.0.3"]);
    assert_eq!((ip, src), (v4(10, 0, 0, 3), ClientSource::Unparsable));
}

#[test]
fn all_trusted_hops_give_the_leftmost() {
    let (ip, src) = proxies().client_ip(v4(10, 0, 0, 1), ["10.0.0.9, 10.0.0.2"]);
    assert_eq!((ip, src), (v4(10, 0, 0, 9), ClientSource::LeftmostTrusted));
    let (ip, src) = proxies().client_ip(v4(10, 0, 0, 1), core::iter::empty());
    assert_eq!((ip, src), (v4(10, 0, 0, 1), ClientSource::Peer));
}

#[test]
fn hop_limit_caps_work_on_long_headers() {
    let long: String = (0..1000).map(|_| "10.0.0.2").collect::<Vec<_>>().join(",");
    let (ip, src) = proxies()
        .with_max_hops(4)
        .client_ip(v4(10, 0, 0, 1), [long.as_str()]);
    assert_eq!((ip, src), (v4(10, 0, 0, 2), ClientSource::Unparsable));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn client_is_never_a_trusted_proxy_unless_every_hop_is_trusted(
        hops in proptest::collection::vec(prop_oneof![
            any::<u32>().prop_map(|n| format!("{}", core::net::Ipv4Addr::from_bits(n))),
            (0u8..4).prop_map(|n| format!("10.0.0.{n}")),
            "[ -~]{0,12}",
        ], 0..8),
    ) {
        let p = proxies();
        let joined = hops.join(",");
        let (ip, src) = p.client_ip(v4(10, 0, 0, 1), [joined.as_str()]);
        match src {
            ClientSource::Forwarded => prop_assert!(!p.is_trusted(ip)),
            _ => prop_assert!(p.is_trusted(ip)),
        }
    }

    #[test]
    fn keys_depend_only_on_the_prefix_bits(a in any::<u128>(), b in any::<u128>(), prefix in 0u8..=128) {
        let p = AddressPolicy::new(32, prefix).unwrap();
        let ka = p.key(IpAddr::V6(Ipv6Addr::from_bits(a)));
        let kb = p.key(IpAddr::V6(Ipv6Addr::from_bits(b)));
        let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
        let mapped = |x: u128| Ipv6Addr::from_bits(x).to_ipv4_mapped().is_some();
        if !mapped(a) && !mapped(b) {
            prop_assert_eq!(ka == kb, a & mask == b & mask);
        }
    }
}
