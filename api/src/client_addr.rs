//! The client address the per-address limits count against. Only a configured trusted proxy
//! (`rate_limit.trusted_proxies`, CIDRs) may name it, in `X-Real-IP`, which our nginx sets to
//! the address it accepted the connection from, replacing whatever the client sent. Anyone
//! else is counted by the TCP peer address. `X-Forwarded-For` and `Forwarded` are never read:
//! their first value is whatever the client wrote.
//!
//! IPv6 clients are counted per /64, the block one subscriber line gets, so that rotating
//! through one's own addresses gains nothing.

use std::net::{IpAddr, Ipv6Addr};

use actix_web::HttpRequest;
pub use tirage_core::cidr::Cidr;
use tirage_core::cidr::masked;

pub const REAL_IP_HEADER: &str = "x-real-ip";

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
    Cidr::loopback().to_vec()
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn nets(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn loopback_is_the_default_proxy_and_mapped_peers_match_it() {
        assert_eq!(loopback(), nets(&["127.0.0.0/8", "::1/128"]));
        // A dual-stack listener reports an IPv4 peer as ::ffff:a.b.c.d.
        assert!(loopback()[0].contains("::ffff:127.0.0.1".parse().unwrap()));
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
