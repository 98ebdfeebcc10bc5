//! The addresses an API key may be used from: single addresses and CIDR ranges, IPv4 or IPv6.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::values::ValidationError;

/// `203.0.113.7`, `10.0.0.0/8` or `2001:db8::/32`. Kept in its canonical text (the network
/// address with its prefix length), which is also how the log stores it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AddressRange {
    network: IpAddr,
    prefix: u8,
}

impl AddressRange {
    /// Parses one entry of `allowed_ips`; `field` names it in the refusal.
    pub fn parse_field(field: &str, raw: &str) -> Result<Self, ValidationError> {
        let text = raw.trim();
        let invalid = |reason: String| ValidationError::new(field, reason);
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| {
            invalid(format!(
                "`{text}` is not an IP address or range such as 203.0.113.7 or 10.0.0.0/8"
            ))
        })?;
        let width = match address {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(|| invalid(format!("the prefix length must be 0 to {width}")))?,
        };
        Ok(Self {
            network: mask(address, prefix),
            prefix,
        })
    }

    /// Whether `ip` lies in this range. An IPv4 client seen through an IPv6 socket
    /// (`::ffff:203.0.113.7`) is judged by its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                mask(ip, self.prefix) == self.network
            }
            _ => false,
        }
    }
}

/// `address` with every bit past `prefix` cleared.
fn mask(address: IpAddr, prefix: u8) -> IpAddr {
    match address {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((bits & kept).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((bits & kept).into())
        }
    }
}

impl fmt::Display for AddressRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = match self.network {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if self.prefix == width {
            write!(f, "{}", self.network)
        } else {
            write!(f, "{}/{}", self.network, self.prefix)
        }
    }
}

impl TryFrom<String> for AddressRange {
    type Error = ValidationError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse_field("allowed_ips", &text)
    }
}

impl From<AddressRange> for String {
    fn from(range: AddressRange) -> Self {
        range.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn range(text: &str) -> AddressRange {
        AddressRange::parse_field("allowed_ips[0]", text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_single_address_admits_only_itself() {
        let one = range("203.0.113.7");
        assert!(one.contains(ip("203.0.113.7")));
        assert!(!one.contains(ip("203.0.113.8")));
        assert_eq!(one.to_string(), "203.0.113.7");
    }

    #[test]
    fn a_range_admits_its_network_and_is_kept_canonical() {
        let net = range("10.1.2.3/8");
        assert_eq!(net.to_string(), "10.0.0.0/8");
        assert!(net.contains(ip("10.255.0.1")));
        assert!(!net.contains(ip("11.0.0.1")));
        let v6 = range("2001:db8::1/32");
        assert_eq!(v6.to_string(), "2001:db8::/32");
        assert!(v6.contains(ip("2001:db8:ffff::2")));
        assert!(!v6.contains(ip("2001:db9::2")));
        assert!(range("0.0.0.0/0").contains(ip("198.51.100.1")));
    }

    #[test]
    fn an_ipv4_client_behind_an_ipv6_socket_is_judged_by_its_ipv4_address() {
        assert!(range("127.0.0.1").contains(ip("::ffff:127.0.0.1")));
        assert!(!range("127.0.0.1").contains(ip("::1")));
    }

    #[test]
    fn nonsense_is_refused_naming_the_entry() {
        for bad in [
            "",
            "localhost",
            "10.0.0.0/33",
            "10.0.0.0/x",
            "::/129",
            "1.2.3",
        ] {
            let refused = AddressRange::parse_field("allowed_ips[2]", bad);
            assert_eq!(
                refused.as_ref().err().map(|e| e.field.as_str()),
                Some("allowed_ips[2]"),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_stored_text_reads_back_as_the_same_range() {
        let net = range("192.168.10.0/24");
        let stored = serde_json::to_string(&net).unwrap_or_default();
        assert_eq!(stored, "\"192.168.10.0/24\"");
        assert_eq!(
            serde_json::from_str::<AddressRange>(&stored).ok(),
            Some(net)
        );
    }

    proptest! {
        #[test]
        fn every_address_is_in_its_own_networks(a: u32, prefix in 0u8..=32) {
            let address = IpAddr::V4(a.into());
            let net = AddressRange::parse_field("x", &format!("{address}/{prefix}")).ok();
            prop_assert!(net.is_some_and(|n| n.contains(address)));
        }

        #[test]
        fn a_network_admits_exactly_the_addresses_sharing_its_leading_bits(
            a: u32, b: u32, prefix in 0u8..=32
        ) {
            let net = AddressRange::parse_field("x", &format!("{}/{prefix}", IpAddr::V4(a.into())));
            let shared = prefix == 0 || (a ^ b) >> (32 - u32::from(prefix)) == 0;
            prop_assert_eq!(net.ok().map(|n| n.contains(IpAddr::V4(b.into()))), Some(shared));
        }
    }
}
