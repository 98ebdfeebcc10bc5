//! Where Docket may post: not to loopback, private, link-local or other non-public addresses,
//! unless `DOCKET_WEBHOOK_ALLOW_PRIVATE` says so. An endpoint's host is checked when it is saved,
//! and again on every connection (the resolver below), so a name that later resolves to an
//! inside address (DNS rebinding) is refused too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether `ip` is an address of the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        // 100.64.0.0/10, carrier-grade NAT: inside someone's network.
        || (a == 100 && (64..128).contains(&b))
        // 0.0.0.0/8 and 240.0.0.0/4.
        || a == 0
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // fc00::/7 unique local, fe80::/10 link-local.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80)
}

/// Why an endpoint's address is refused, in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressRefusal {
    #[error("points at a private or local address ({0}); Docket posts only to public addresses")]
    Private(IpAddr),
    #[error("has a host that does not resolve: {0}")]
    Unresolved(String),
}

/// Checks that `url`'s host is public (when private addresses are not allowed).
pub async fn check(url: &str, allow_private: bool) -> Result<(), AddressRefusal> {
    if allow_private {
        return Ok(());
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| AddressRefusal::Unresolved(e.to_string()))?;
    let host = match parsed.host() {
        Some(url::Host::Ipv4(v4)) => return public_or_refused(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => return public_or_refused(IpAddr::V6(v6)),
        Some(url::Host::Domain(name)) => name.to_string(),
        None => return Err(AddressRefusal::Unresolved("no host".into())),
    };
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| AddressRefusal::Unresolved(format!("{host}: {e}")))?
        .collect();
    if addresses.is_empty() {
        return Err(AddressRefusal::Unresolved(host));
    }
    for address in addresses {
        public_or_refused(address.ip())?;
    }
    Ok(())
}

/// The address of `url`, when it is written as an inside address (and those are not allowed).
pub fn private_literal(url: &str, allow_private: bool) -> Option<IpAddr> {
    if allow_private {
        return None;
    }
    let ip = match reqwest::Url::parse(url).ok()?.host()? {
        url::Host::Ipv4(v4) => IpAddr::V4(v4),
        url::Host::Ipv6(v6) => IpAddr::V6(v6),
        url::Host::Domain(_) => return None,
    };
    (!is_public(ip)).then_some(ip)
}

fn public_or_refused(ip: IpAddr) -> Result<(), AddressRefusal> {
    if is_public(ip) {
        Ok(())
    } else {
        Err(AddressRefusal::Private(ip))
    }
}

/// A resolver for the deliverer's HTTP client that keeps only public addresses (unless private
/// ones are allowed): a name that resolves only to inside addresses fails to connect.
#[derive(Debug, Clone, Copy)]
pub struct PublicOnly {
    pub allow_private: bool,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|address| allow_private || is_public(address.ip()))
                .collect();
            if found.is_empty() {
                let refusal: Box<dyn std::error::Error + Send + Sync> =
                    format!("{host} resolves to no public address").into();
                return Err(refusal);
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn inside_addresses_are_not_public() {
        for inside in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.9",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::5",
            "::ffff:10.0.0.1",
            "::",
        ] {
            assert!(!is_public(ip(inside)), "{inside}");
        }
        for outside in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(ip(outside)), "{outside}");
        }
    }

    #[tokio::test]
    async fn a_literal_inside_address_is_refused_unless_allowed() {
        assert_eq!(
            check("http://127.0.0.1:9000/hook", false).await,
            Err(AddressRefusal::Private(ip("127.0.0.1")))
        );
        assert_eq!(
            check("http://[::1]:9000/hook", false).await,
            Err(AddressRefusal::Private(ip("::1")))
        );
        assert_eq!(check("http://127.0.0.1:9000/hook", true).await, Ok(()));
        assert_eq!(
            private_literal("http://10.0.0.1/hook", false),
            Some(ip("10.0.0.1"))
        );
        assert_eq!(private_literal("http://10.0.0.1/hook", true), None);
        assert_eq!(private_literal("https://example.com/hook", false), None);
        // `localhost` resolves (from /etc/hosts, no network) to loopback.
        assert!(matches!(
            check("http://localhost:9000/hook", false).await,
            Err(AddressRefusal::Private(_))
        ));
    }
}
