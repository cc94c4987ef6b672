//! An IP network in CIDR notation (`10.0.0.0/8`, `fd00::/8`; a bare address is a /32 or
//! /128), for settings that name networks: the API's trusted proxies, the worker's callback
//! allow list. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is its IPv4 address, both in a
//! network written that way and in an address checked against one, so a dual-stack socket's
//! peer address matches the IPv4 network that names it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP network (a.b.c.d/n, x:y::/n or one address)")]
pub struct CidrError(pub String);

impl Cidr {
    /// Loopback only, IPv4 and IPv6: a proxy on the same host.
    pub fn loopback() -> [Cidr; 2] {
        [
            Cidr {
                network: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)),
                prefix: 8,
            },
            Cidr {
                network: IpAddr::V6(Ipv6Addr::LOCALHOST),
                prefix: 128,
            },
        ]
    }

    /// Whether `ip` is inside the network (an IPv4-mapped address as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u128::from(u32::from(ip)), self.prefix, 32)
                    == masked(u128::from(u32::from(net)), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(ip), self.prefix, 128)
                    == masked(u128::from(net), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// The top `prefix` bits of a `bits`-wide address.
pub fn masked(addr: u128, prefix: u8, bits: u32) -> u128 {
    let keep = u32::from(prefix).min(bits);
    if keep == 0 {
        return 0;
    }
    let shift = bits - keep;
    (addr >> shift) << shift
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || CidrError(s.to_owned());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s.trim(), None),
        };
        let network: IpAddr = addr.parse().map_err(|_| bad())?;
        let network = network.to_canonical();
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr { network, prefix })
    }
}

impl TryFrom<String> for Cidr {
    type Error = CidrError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_contain_their_addresses_only() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains(ip("10.1.255.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        let one: Cidr = "127.0.0.2".parse().unwrap();
        assert!(one.contains(ip("127.0.0.2")));
        assert!(!one.contains(ip("127.0.0.1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        assert!(
            !all.contains(ip("::1")),
            "an IPv4 network holds no IPv6 address"
        );
        let v6: Cidr = "fd00:1::/32".parse().unwrap();
        assert!(v6.contains(ip("fd00:1:ffff::1")));
        assert!(!v6.contains(ip("fd00:2::1")));
        assert_eq!(v6.to_string(), "fd00:1::/32");
    }

    #[test]
    fn a_mapped_address_is_its_ipv4_address() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains(ip("::ffff:10.1.0.1")));
        assert!(!net.contains(ip("::ffff:10.2.0.1")));
        let written_mapped: Cidr = "::ffff:192.168.0.0/16".parse().unwrap();
        assert_eq!(written_mapped.to_string(), "192.168.0.0/16");
        assert!(written_mapped.contains(ip("192.168.3.4")));
    }

    #[test]
    fn loopback_is_both_families() {
        let [v4, v6] = Cidr::loopback();
        assert!(v4.contains(ip("127.0.0.53")));
        assert!(v6.contains(ip("::1")));
        assert!(!v4.contains(ip("10.0.0.1")));
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "host/8",
            "10.0.0.0/x",
            "10.0.0/8",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?} accepted");
        }
    }
}
