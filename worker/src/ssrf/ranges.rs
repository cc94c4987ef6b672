//! Which addresses a callback may not reach: every range of the IANA special-purpose
//! address registries (IPv4 and IPv6) that is not globally reachable, plus the cloud
//! metadata addresses, and any address a translation prefix (NAT64, 6to4, Teredo) embeds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The class of a forbidden address, or `None` for an ordinary public address.
pub fn forbidden_class(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) {
        return Some("metadata");
    }
    if ip.is_unspecified() || a == 0 {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip.is_private() {
        return Some("private");
    }
    if ip.is_link_local() {
        return Some("link-local");
    }
    // 100.64.0.0/10, carrier-grade NAT: internal to the provider's network.
    if a == 100 && (64..128).contains(&b) {
        return Some("cgnat");
    }
    if ip.is_multicast() {
        return Some("multicast");
    }
    if ip.is_broadcast() {
        return Some("broadcast");
    }
    // The documentation networks (RFC 5737) are never a real receiver.
    if (a, b, c) == (192, 0, 2) || (a, b, c) == (198, 51, 100) || (a, b, c) == (203, 0, 113) {
        return Some("documentation");
    }
    // 240.0.0.0/4 reserved, 192.0.0.0/24 protocol assignments, 198.18.0.0/15 benchmarking,
    // and the anycast service blocks of the IANA special-purpose registry (192.31.196.0/24
    // AS112, 192.52.193.0/24 AMT, 192.88.99.0/24 6to4 relays, 192.175.48.0/24 AS112
    // delegation): nothing legitimate answers a webhook there.
    if a >= 240
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || (a == 192 && matches!((b, c), (31, 196) | (52, 193) | (88, 99) | (175, 48)))
    {
        return Some("reserved");
    }
    None
}

/// The IPv4 address carried by two 16-bit segments.
fn embedded_v4(hi: u16, lo: u16) -> Ipv4Addr {
    let [a, b] = hi.to_be_bytes();
    let [c, d] = lo.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    // ::ffff:a.b.c.d reaches the IPv4 address a.b.c.d.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    let seg = ip.segments();
    if seg == [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254] {
        return Some("metadata");
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // 64:ff9b::/96 (well-known NAT64 prefix) embeds an IPv4 address the gateway will
    // reach: allowed exactly when that address is.
    if seg[0] == 0x0064 && seg[1] == 0xff9b && seg[2..6] == [0, 0, 0, 0] {
        return forbidden_v4(embedded_v4(seg[6], seg[7]));
    }
    // 64:ff9b:1::/48, NAT64 for local use (RFC 8215): translates into a private network.
    if seg[0] == 0x0064 && seg[1] == 0xff9b && seg[2] == 0x0001 {
        return Some("nat64-local");
    }
    // 2001::/32, Teredo: tunnels to an IPv4 address (obfuscated in the last 32 bits) the
    // relay will reach; refused whatever it embeds.
    if seg[0] == 0x2001 && seg[1] == 0 {
        return Some("teredo");
    }
    // 2001:db8::/32 and 3fff::/20, documentation (RFC 3849, RFC 9637).
    if (seg[0] == 0x2001 && seg[1] == 0x0db8) || (seg[0] == 0x3fff && seg[1] < 0x1000) {
        return Some("documentation");
    }
    // 2001::/23, IETF protocol assignments: PCP and TURN anycast, benchmarking
    // (2001:2::/48), AMT, AS112, ORCHID; none is a webhook receiver.
    if seg[0] == 0x2001 && seg[1] < 0x0200 {
        return Some("reserved");
    }
    // 2002::/16 (6to4) embeds an IPv4 address too.
    if seg[0] == 0x2002
        && let Some(class) = forbidden_v4(embedded_v4(seg[1], seg[2]))
    {
        return Some(class);
    }
    // 2620:4f:8000::/48, AS112 direct delegation (anycast DNS sinks).
    if seg[0] == 0x2620 && seg[1] == 0x004f && seg[2] == 0x8000 {
        return Some("reserved");
    }
    if (seg[0] & 0xfe00) == 0xfc00 {
        return Some("unique-local");
    }
    if (seg[0] & 0xffc0) == 0xfe80 {
        return Some("link-local");
    }
    // fec0::/10, deprecated site-local: still routed internally by some networks.
    if (seg[0] & 0xffc0) == 0xfec0 {
        return Some("site-local");
    }
    if ip.is_multicast() {
        return Some("multicast");
    }
    // Everything outside 2000::/3, the only block IANA allocates as global unicast: ::/8
    // (IPv4-compatible and other NAT64 prefixes), 100::/64 discard-only, 100:0:0:1::/64
    // dummy, 5f00::/16 SRv6 SIDs, and unassigned space.
    if (seg[0] & 0xe000) != 0x2000 {
        return Some("reserved");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Option<&'static str> {
        forbidden_class(s.parse().unwrap())
    }

    #[test]
    fn every_internal_ipv4_class_is_refused() {
        for (ip, want) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.254", "private"),
            ("192.168.1.1", "private"),
            ("169.254.1.1", "link-local"),
            ("169.254.169.254", "metadata"),
            ("100.64.0.1", "cgnat"),
            ("100.127.255.254", "cgnat"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "unspecified"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
            ("192.0.0.9", "reserved"),
            ("192.0.2.10", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.200", "documentation"),
            ("198.18.0.1", "reserved"),
            ("198.19.255.255", "reserved"),
            ("192.31.196.1", "reserved"),
            ("192.52.193.1", "reserved"),
            ("192.88.99.1", "reserved"),
            ("192.175.48.1", "reserved"),
        ] {
            assert_eq!(class(ip), Some(want), "{ip}");
        }
    }

    #[test]
    fn every_internal_ipv6_class_is_refused() {
        for (ip, want) in [
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fe80::1", "link-local"),
            ("fc00::1", "unique-local"),
            ("fd12:3456::1", "unique-local"),
            ("fd00:ec2::254", "metadata"),
            ("ff02::1", "multicast"),
            ("fec0::1", "site-local"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "metadata"),
            ("::ffff:10.0.0.1", "private"),
            ("64:ff9b::a00:1", "private"),
            ("2002:7f00:1::", "loopback"),
            ("2001::1", "teredo"),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "teredo"),
            ("64:ff9b:1::a00:1", "nat64-local"),
            ("64:ff9b:1::808:808", "nat64-local"),
            ("64:ff9b::1:0:0:1", "reserved"),
            ("::a00:1", "reserved"),
            ("100::1", "reserved"),
            ("100:0:0:1::1", "reserved"),
            ("2001:1::1", "reserved"),
            ("2001:2::1", "reserved"),
            ("2001:3::1", "reserved"),
            ("2001:4:112::1", "reserved"),
            ("2001:10::1", "reserved"),
            ("2001:20::1", "reserved"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("3fff:fff::1", "documentation"),
            ("5f00::1", "reserved"),
            ("2620:4f:8000::1", "reserved"),
            ("4000::1", "reserved"),
            ("2002:a00:1::", "private"),
        ] {
            assert_eq!(class(ip), Some(want), "{ip}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4007:80c::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:200::1",
            "2001:4860:4860::8888",
            "3001::1",
            "3fff:1000::1",
            "192.0.3.1",
            "203.0.114.1",
        ] {
            assert_eq!(class(ip), None, "{ip}");
        }
    }
}
