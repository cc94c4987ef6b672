//! Server-side request forgery guard for batch callbacks. A callback URL comes from a user;
//! without this check it could make a worker call the cloud metadata service, Redis, or
//! anything else on the internal network.
//!
//! The host is resolved once, every address is checked, and the request then connects to
//! the checked address itself, so a DNS answer that changes between check and connect
//! (DNS rebinding) cannot redirect it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::Url;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackTargetError {
    #[error("callback URL is invalid: {0}")]
    InvalidUrl(String),
    #[error("callback URL scheme {0:?} is not http or https")]
    Scheme(String),
    #[error("callback host {host} did not resolve: {reason}")]
    Resolve { host: String, reason: String },
    #[error("callback host resolves to {addr}, a {class} address")]
    Forbidden { addr: IpAddr, class: &'static str },
}

impl CallbackTargetError {
    pub fn code(&self) -> &'static str {
        match self {
            CallbackTargetError::InvalidUrl(_) | CallbackTargetError::Scheme(_) => {
                "invalid_callback_url"
            }
            CallbackTargetError::Resolve { .. } => "callback_unresolvable",
            CallbackTargetError::Forbidden { .. } => "callback_forbidden_address",
        }
    }

    /// Whether trying again later could succeed (DNS may come back; a bad URL never will).
    pub fn is_transient(&self) -> bool {
        matches!(self, CallbackTargetError::Resolve { .. })
    }
}

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
    // 240.0.0.0/4 reserved, 192.0.0.0/24 protocol assignments, 198.18.0.0/15 benchmarking:
    // nothing legitimate answers a webhook there.
    if a >= 240 || (a == 192 && b == 0 && c == 0) || (a == 198 && (b == 18 || b == 19)) {
        return Some("reserved");
    }
    None
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
    // 64:ff9b::/96 (NAT64) embeds an IPv4 address the gateway will reach.
    if seg[0] == 0x0064 && seg[1] == 0xff9b && seg[2..6] == [0, 0, 0, 0] {
        let v4 = Ipv4Addr::new(
            (seg[6] >> 8) as u8,
            seg[6] as u8,
            (seg[7] >> 8) as u8,
            seg[7] as u8,
        );
        return forbidden_v4(v4);
    }
    // 2002::/16 (6to4) embeds an IPv4 address too.
    if seg[0] == 0x2002 {
        let v4 = Ipv4Addr::new(
            (seg[1] >> 8) as u8,
            seg[1] as u8,
            (seg[2] >> 8) as u8,
            seg[2] as u8,
        );
        if let Some(class) = forbidden_v4(v4) {
            return Some(class);
        }
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
    // ::/96 IPv4-compatible (deprecated) and other addresses in ::/8.
    if seg[0] == 0 {
        return Some("reserved");
    }
    None
}

/// A callback URL checked and pinned to one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackTarget {
    pub url: Url,
    /// The host name to pin, when the URL names one (an IP literal needs no pinning).
    pub host: Option<String>,
    pub addr: SocketAddr,
}

/// Parses and checks `raw`, resolving its host. Every address the name resolves to must be
/// allowed (one bad answer is enough to refuse: an attacker controls which one we would
/// get). `allow_private` skips the address classes, never the scheme check.
pub async fn resolve_callback(
    raw: &str,
    allow_private: bool,
) -> Result<CallbackTarget, CallbackTargetError> {
    let url = Url::parse(raw).map_err(|e| CallbackTargetError::InvalidUrl(e.to_string()))?;
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(CallbackTargetError::Scheme(other.to_string())),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(CallbackTargetError::InvalidUrl(
            "credentials in the URL are not allowed".into(),
        ));
    }
    let port = url
        .port_or_known_default()
        .ok_or_else(|| CallbackTargetError::InvalidUrl("no port".into()))?;
    let (host, addrs): (Option<String>, Vec<SocketAddr>) = match url.host() {
        Some(url::Host::Ipv4(ip)) => (None, vec![SocketAddr::new(IpAddr::V4(ip), port)]),
        Some(url::Host::Ipv6(ip)) => (None, vec![SocketAddr::new(IpAddr::V6(ip), port)]),
        Some(url::Host::Domain(name)) => {
            let name = name.to_string();
            let addrs = tokio::net::lookup_host((name.as_str(), port))
                .await
                .map_err(|e| CallbackTargetError::Resolve {
                    host: name.clone(),
                    reason: e.to_string(),
                })?
                .collect::<Vec<_>>();
            (Some(name), addrs)
        }
        None => return Err(CallbackTargetError::InvalidUrl("no host".into())),
    };
    let Some(first) = addrs.first().copied() else {
        return Err(CallbackTargetError::Resolve {
            host: host.unwrap_or_default(),
            reason: "no addresses".into(),
        });
    };
    if !allow_private {
        for addr in &addrs {
            if let Some(class) = forbidden_class(addr.ip()) {
                return Err(CallbackTargetError::Forbidden {
                    addr: addr.ip(),
                    class,
                });
            }
        }
    }
    Ok(CallbackTarget {
        url,
        host,
        addr: first,
    })
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
        ] {
            assert_eq!(class(ip), None, "{ip}");
        }
    }

    #[tokio::test]
    async fn urls_pointing_inside_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://[::1]/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/",
            "http://10.0.0.5/",
            "http://localhost:9/hook",
        ] {
            let err = resolve_callback(url, false).await.unwrap_err();
            assert_eq!(err.code(), "callback_forbidden_address", "{url}: {err}");
        }
        let ok = resolve_callback("http://127.0.0.1:8080/hook", true)
            .await
            .unwrap();
        assert_eq!(ok.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(ok.host, None);
        let ok = resolve_callback("http://localhost:8080/hook", true)
            .await
            .unwrap();
        assert_eq!(ok.host.as_deref(), Some("localhost"));
        assert!(ok.addr.ip().is_loopback());
    }

    #[tokio::test]
    async fn bad_schemes_and_credentials_are_refused_even_when_private_is_allowed() {
        for url in [
            "file:///etc/passwd",
            "gopher://127.0.0.1/",
            "ftp://example.com/",
        ] {
            let err = resolve_callback(url, true).await.unwrap_err();
            assert_eq!(err.code(), "invalid_callback_url", "{url}");
        }
        let err = resolve_callback("http://u:p@127.0.0.1/", true)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_callback_url");
        assert!(resolve_callback("not a url", true).await.is_err());
    }
}
