//! IP addresses, MAC addresses and host names as the readers report them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::normalise_mac;

/// Parses an IP address as agents write it and returns it in canonical text form, or
/// `None` when it cannot identify the device: invalid, unspecified, loopback or
/// link-local (`169.254.0.0/16`, `fe80::/10`). A zone (`%eth0`) or prefix length (`/24`)
/// after the address is ignored.
pub(crate) fn usable_ip(value: &str) -> Option<String> {
    let address = value.trim();
    let address = address.split(['%', '/']).next().unwrap_or(address);
    let ip: IpAddr = address.parse().ok()?;
    let usable = match ip {
        IpAddr::V4(v4) => is_usable_ipv4(v4),
        IpAddr::V6(v6) => is_usable_ipv6(v6),
    };
    usable.then(|| ip.to_string())
}

fn is_usable_ipv4(ip: Ipv4Addr) -> bool {
    !(ip.is_unspecified() || ip.is_loopback() || ip.is_link_local() || ip.is_broadcast())
}

fn is_usable_ipv6(ip: Ipv6Addr) -> bool {
    !(ip.is_unspecified() || ip.is_loopback() || ip.is_unicast_link_local())
}

/// Returns the normalised MACs of `values`, dropping invalid ones and placeholders.
pub(crate) fn usable_macs<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    values.into_iter().filter_map(normalise_mac).collect()
}

/// Checks whether a MAC address was assigned by its manufacturer rather than by
/// software: the locally administered bit (second bit of the first byte) is clear.
pub(crate) fn is_universal_mac(mac: &str) -> bool {
    u8::from_str_radix(mac.get(..2).unwrap_or(""), 16).is_ok_and(|first| first & 0x02 == 0)
}

/// A host name as reported, split into the short name and, when the report is a fully
/// qualified name, the lower-case FQDN.
#[derive(Debug, PartialEq)]
pub(crate) struct HostName {
    pub(crate) name: String,
    pub(crate) fqdn: Option<String>,
}

/// Splits a reported host name (`sw-core-1.example.org`, `PC-0142`, `iMac de Marie`). A
/// name is only taken as an FQDN when every label is a valid DNS label and its domain
/// passes [`dns_domain`]. Anything else is kept whole as the name.
pub(crate) fn split_host_name(reported: &str) -> Option<HostName> {
    let reported = reported.trim().trim_end_matches('.');
    if reported.is_empty() {
        return None;
    }
    if let Some((host, domain)) = reported.split_once('.')
        && is_dns_label(host)
        && let Some(domain) = dns_domain(domain)
    {
        return Some(HostName {
            name: host.to_owned(),
            fqdn: Some(format!("{}.{domain}", host.to_ascii_lowercase())),
        });
    }
    Some(HostName {
        name: reported.to_owned(),
        fqdn: None,
    })
}

/// Joins a short host name and a DNS domain into a lower-case FQDN, when both are valid.
pub(crate) fn join_fqdn(host: &str, domain: &str) -> Option<String> {
    let host = host.trim();
    if !is_dns_label(host) {
        return None;
    }
    let domain = dns_domain(domain)?;
    Some(format!("{}.{domain}", host.to_ascii_lowercase()))
}

/// Returns `value` lower-cased when it is a DNS domain: at least two valid labels and a
/// last label that is not a number (so an IPv4 address is not taken for a domain). A
/// single label such as a Windows workgroup (`WORKGROUP`) or the mDNS `local` is not.
pub(crate) fn dns_domain(value: &str) -> Option<String> {
    let domain = value.trim().trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = domain.split('.').collect();
    let last = labels.last()?;
    let valid = labels.len() >= 2
        && labels.iter().all(|label| is_dns_label(label))
        && !last.chars().all(|c| c.is_ascii_digit());
    valid.then_some(domain)
}

/// Checks a host name label: 1 to 63 letters, digits or hyphens, not starting or
/// ending with a hyphen (RFC 1123).
fn is_dns_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usable_ip_drops_loopback_and_link_local() {
        assert_eq!(usable_ip("127.0.0.1"), None);
        assert_eq!(usable_ip("::1"), None);
        assert_eq!(usable_ip("fe80::dd76:c250:1435:8e89"), None);
        assert_eq!(usable_ip("169.254.10.2"), None);
        assert_eq!(usable_ip("0.0.0.0"), None);
        assert_eq!(usable_ip("not an address"), None);
    }

    #[test]
    fn usable_ip_keeps_and_canonicalises() {
        assert_eq!(
            usable_ip(" 192.168.1.103 ").as_deref(),
            Some("192.168.1.103")
        );
        assert_eq!(usable_ip("FD00:0::2").as_deref(), Some("fd00::2"));
        assert_eq!(usable_ip("10.0.0.5/24").as_deref(), Some("10.0.0.5"));
        assert_eq!(
            usable_ip("2001:db8::1%eth0").as_deref(),
            Some("2001:db8::1")
        );
    }

    #[test]
    fn universal_mac_bit() {
        assert!(is_universal_mac("00:17:f2:d1:14:32"));
        assert!(!is_universal_mac("0a:00:00:13:12:60"));
        assert!(!is_universal_mac("02:fc:00:00:00:01"));
    }

    #[test]
    fn host_name_with_domain_is_split() {
        let host = split_host_name("3k-1-pa3.glpi-project.infra").unwrap();
        assert_eq!(host.name, "3k-1-pa3");
        assert_eq!(host.fqdn.as_deref(), Some("3k-1-pa3.glpi-project.infra"));
    }

    #[test]
    fn host_name_without_domain_is_kept_whole() {
        for reported in ["PC-0142", "iMac de Marie", "10.1.2.3", "host.local"] {
            let host = split_host_name(reported).unwrap();
            assert_eq!(host.name, reported);
            assert_eq!(host.fqdn, None, "{reported} has no DNS domain");
        }
        assert_eq!(split_host_name("  "), None);
    }

    #[test]
    fn fqdn_needs_a_dns_domain() {
        assert_eq!(
            join_fqdn("LF014", "ad.crosoft.com").as_deref(),
            Some("lf014.ad.crosoft.com")
        );
        assert_eq!(join_fqdn("PC-0142", "WORKGROUP"), None);
        assert_eq!(join_fqdn("MacBook", "local"), None);
        assert_eq!(join_fqdn("iMac de Marie", "example.org"), None);
        assert_eq!(join_fqdn("pc", "10.0.0.1"), None);
    }
}
