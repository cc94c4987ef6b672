//! Server-side request forgery guard for batch callbacks. A callback URL comes from a user;
//! without this check it could make a worker call the cloud metadata service, Redis, or
//! anything else on the internal network.
//!
//! The host is resolved once, every address is checked, and the request then connects to
//! the checked address itself, so a DNS answer that changes between check and connect
//! (DNS rebinding) cannot redirect it.

use std::net::{IpAddr, SocketAddr};

use url::Url;

use tirage_core::cidr::Cidr;

mod ranges;

pub use ranges::forbidden_class;

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
    #[error("callback port {port} is not one of the allowed ports {allowed:?}")]
    Port { port: u16, allowed: Vec<u16> },
}

impl CallbackTargetError {
    pub fn code(&self) -> &'static str {
        match self {
            CallbackTargetError::InvalidUrl(_) | CallbackTargetError::Scheme(_) => {
                "invalid_callback_url"
            }
            CallbackTargetError::Resolve { .. } => "callback_unresolvable",
            CallbackTargetError::Forbidden { .. } => "callback_forbidden_address",
            CallbackTargetError::Port { .. } => "callback_forbidden_port",
        }
    }

    /// Whether trying again later could succeed (DNS may come back; a bad URL never will).
    pub fn is_transient(&self) -> bool {
        matches!(self, CallbackTargetError::Resolve { .. })
    }
}

/// What callback URLs may reach, from the `[worker]` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackPolicy {
    /// Skips the address classes (loopback, private, ...): tests and closed networks only.
    pub allow_private: bool,
    /// The only ports a URL may name; empty allows any.
    pub ports: Vec<u16>,
    /// Networks allowed despite their class: an internal receiver the operator names.
    pub allowed_networks: Vec<Cidr>,
}

impl CallbackPolicy {
    fn refuses(&self, ip: IpAddr) -> Option<&'static str> {
        if self.allow_private {
            return None;
        }
        let class = forbidden_class(ip)?;
        let plain = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        (!self.allowed_networks.iter().any(|n| n.contains(plain))).then_some(class)
    }
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
/// get). `policy.allow_private` skips the address classes, never the scheme check;
/// `policy.allowed_networks` lets named networks through. The port must be one of
/// `policy.ports` (an empty list allows any): an internal service on an odd port of a
/// public address (a proxy, an admin console) is no webhook receiver either.
pub async fn resolve_callback(
    raw: &str,
    policy: &CallbackPolicy,
) -> Result<CallbackTarget, CallbackTargetError> {
    let allowed_ports = policy.ports.as_slice();
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
    if !allowed_ports.is_empty() && !allowed_ports.contains(&port) {
        return Err(CallbackTargetError::Port {
            port,
            allowed: allowed_ports.to_vec(),
        });
    }
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
    for addr in &addrs {
        if let Some(class) = policy.refuses(addr.ip()) {
            return Err(CallbackTargetError::Forbidden {
                addr: addr.ip(),
                class,
            });
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

    fn policy(allow_private: bool, ports: &[u16]) -> CallbackPolicy {
        CallbackPolicy {
            allow_private,
            ports: ports.to_vec(),
            allowed_networks: vec![],
        }
    }

    #[tokio::test]
    async fn named_networks_pass_and_nothing_else_does() {
        let policy = CallbackPolicy {
            allow_private: false,
            ports: vec![],
            allowed_networks: vec![
                "127.0.0.2/32".parse().unwrap(),
                "fd00:1::/32".parse().unwrap(),
            ],
        };
        for url in [
            "http://127.0.0.2:9000/hook",
            "http://[::ffff:127.0.0.2]:9000/hook",
            "http://[fd00:1::5]/",
        ] {
            assert!(resolve_callback(url, &policy).await.is_ok(), "{url}");
        }
        for url in [
            "http://127.0.0.1:9000/",
            "http://[fd00:2::5]/",
            "http://10.0.0.1/",
        ] {
            let err = resolve_callback(url, &policy).await.unwrap_err();
            assert_eq!(err.code(), "callback_forbidden_address", "{url}");
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
            let err = resolve_callback(url, &policy(false, &[]))
                .await
                .unwrap_err();
            assert_eq!(err.code(), "callback_forbidden_address", "{url}: {err}");
        }
        let ok = resolve_callback("http://127.0.0.1:8080/hook", &policy(true, &[]))
            .await
            .unwrap();
        assert_eq!(ok.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(ok.host, None);
        let ok = resolve_callback("http://localhost:8080/hook", &policy(true, &[]))
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
            let err = resolve_callback(url, &policy(true, &[])).await.unwrap_err();
            assert_eq!(err.code(), "invalid_callback_url", "{url}");
        }
        let err = resolve_callback("http://u:p@127.0.0.1/", &policy(true, &[]))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_callback_url");
        assert!(
            resolve_callback("not a url", &policy(true, &[]))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn only_the_allowed_ports_pass() {
        let ports = [80, 443];
        for url in [
            "http://8.8.8.8:22/",
            "https://8.8.8.8:8443/",
            "http://8.8.8.8:6379/",
            "http://8.8.8.8:443/",
            "https://8.8.8.8:80/",
        ] {
            // 443 over http and 80 over https are allowed: the port is what is checked.
            let result = resolve_callback(url, &policy(false, &ports)).await;
            if url.ends_with(":443/") || url.ends_with(":80/") {
                assert!(result.is_ok(), "{url}: {result:?}");
            } else {
                let err = result.unwrap_err();
                assert_eq!(err.code(), "callback_forbidden_port", "{url}");
                assert!(!err.is_transient());
            }
        }
        for url in ["http://8.8.8.8/", "https://8.8.8.8/hook"] {
            assert!(
                resolve_callback(url, &policy(false, &ports)).await.is_ok(),
                "{url}"
            );
        }
        // The port is checked before the name is resolved: no DNS query for a bad port.
        let err = resolve_callback("http://name.invalid:25/", &policy(false, &ports))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "callback_forbidden_port");
    }
}
