//! The client address the per-address limits count against. Only a configured trusted proxy
//! (`rate_limit.trusted_proxies`, CIDRs) may name it, in `X-Real-IP`, which our nginx sets to
//! the address it accepted the connection from, replacing whatever the client sent. Anyone
//! else is counted by the TCP peer address. `X-Forwarded-For` and `Forwarded` are never read:
//! their first value is whatever the client wrote.
//!
//! IPv6 clients are counted per /64, the block one subscriber line gets, so that rotating
//! through one's own addresses gains nothing.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use actix_web::HttpRequest;
use serde::Deserialize;

pub const REAL_IP_HEADER: &str = "x-real-ip";

/// A network in CIDR notation (`10.0.0.0/8`, `::1/128`; a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
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
fn masked(addr: u128, prefix: u8, bits: u32) -> u128 {
    let keep = u32::from(prefix).min(bits);
    if keep == 0 {
        return 0;
    }
    let shift = bits - keep;
    (addr >> shift) << shift
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a CIDR (like 10.0.0.0/8 or ::1/128)");
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
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The address `req` counts against: the one a trusted proxy names in `X-Real-IP`, else
/// the TCP peer's. `unknown` only when neither is known (never over TCP).
pub fn client_address(req: &HttpRequest, trusted: &[Cidr]) -> String {
    let Some(peer) = req.peer_addr().map(|a| a.ip().to_canonical()) else {
        return "unknown".to_owned();
    };
    let named = trusted
        .iter()
        .any(|net| net.contains(peer))
        .then(|| {
            req.headers()
                .get(REAL_IP_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<IpAddr>().ok())
        })
        .flatten();
    counted(named.unwrap_or(peer))
}

/// How an address is counted: IPv4 as is, IPv6 by its /64.
fn counted(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let block = Ipv6Addr::from(masked(u128::from(v6), 64, 128));
            format!("{block}/64")
        }
    }
}

/// Loopback only: nginx on the same host. Anything else is set in the configuration.
pub fn loopback() -> Vec<Cidr> {
    vec![
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

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn nets(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn cidrs_parse_and_match() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.255.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(
            net.contains("::ffff:10.1.0.9".parse().unwrap()),
            "v4-mapped"
        );
        assert!(!net.contains("::1".parse().unwrap()));
        let one: Cidr = "::1".parse().unwrap();
        assert_eq!(one.to_string(), "::1/128");
        assert!(
            "0.0.0.0/0"
                .parse::<Cidr>()
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?} accepted");
        }
        assert_eq!(loopback(), nets(&["127.0.0.0/8", "::1/128"]));
    }

    #[test]
    fn only_a_trusted_peer_names_the_client() {
        let spoofed = |peer: &str| {
            TestRequest::default()
                .peer_addr(peer.parse().unwrap())
                .insert_header(("X-Forwarded-For", "1.2.3.4"))
                .insert_header(("Forwarded", "for=1.2.3.5"))
                .insert_header((REAL_IP_HEADER, "198.51.100.7"))
                .to_http_request()
        };
        let trusted = nets(&["127.0.0.0/8"]);
        assert_eq!(
            client_address(&spoofed("127.0.0.1:5000"), &trusted),
            "198.51.100.7"
        );
        assert_eq!(
            client_address(&spoofed("203.0.113.9:5000"), &trusted),
            "203.0.113.9",
            "an untrusted peer's headers are ignored"
        );
        assert_eq!(client_address(&spoofed("127.0.0.1:5000"), &[]), "127.0.0.1");
        let no_header = TestRequest::default()
            .peer_addr("127.0.0.1:1".parse().unwrap())
            .insert_header(("X-Forwarded-For", "1.2.3.4"))
            .to_http_request();
        assert_eq!(client_address(&no_header, &trusted), "127.0.0.1");
    }

    #[test]
    fn ipv6_clients_count_per_64() {
        let from = |ip: &str| {
            TestRequest::default()
                .peer_addr(format!("[{ip}]:443").parse().unwrap())
                .to_http_request()
        };
        assert_eq!(
            client_address(&from("2001:db8:1:2:aaaa::1"), &[]),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            client_address(&from("2001:db8:1:2:ffff::9"), &[]),
            client_address(&from("2001:db8:1:2::1"), &[])
        );
    }
}
