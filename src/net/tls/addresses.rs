//! The addresses a server is reached by, for its self-signed certificate: the one it listens
//! on, or, on a wildcard (`0.0.0.0`, `::`), the machine's interface addresses of that family
//! (sysinfo), as they are when the certificate is made.

use std::net::IpAddr;

/// The addresses clients reach a server listening on `listening` by, `interfaces` being the
/// machine's: `listening` itself, unless it is a wildcard; then the interfaces' addresses it
/// covers (`0.0.0.0` IPv4 only, `::` both), without IPv6 link-local ones (they need a zone,
/// which no certificate names).
pub fn reached_by(listening: IpAddr, interfaces: &[IpAddr]) -> Vec<IpAddr> {
    if !listening.is_unspecified() {
        return vec![listening];
    }
    let mut found: Vec<IpAddr> = interfaces
        .iter()
        .copied()
        .filter(|ip| listening.is_ipv6() || ip.is_ipv4())
        .filter(|ip| !ip.is_unspecified() && !ip.is_multicast())
        .filter(|ip| match ip {
            IpAddr::V6(v6) => !v6.is_unicast_link_local(),
            IpAddr::V4(_) => true,
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

/// This machine's interface addresses (none when they cannot be listed).
pub fn interfaces() -> Vec<IpAddr> {
    let Ok(networks) = sysinfo::Networks::new_with_refreshed_list() else {
        return Vec::new();
    };
    networks
        .values()
        .flat_map(|data| data.ip_networks().iter().map(|network| network.addr))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_is_reached_by_the_interfaces_of_its_family() {
        let ips =
            |list: &[&str]| -> Vec<IpAddr> { list.iter().map(|ip| ip.parse().unwrap()).collect() };
        let machine = ips(&[
            "127.0.0.1",
            "10.0.0.7",
            "::1",
            "fe80::1",
            "2001:db8::7",
            "10.0.0.7",
        ]);
        let specific = "10.0.0.7".parse().unwrap();
        assert_eq!(reached_by(specific, &machine), ips(&["10.0.0.7"]));
        let v4 = "0.0.0.0".parse().unwrap();
        assert_eq!(reached_by(v4, &machine), ips(&["10.0.0.7", "127.0.0.1"]));
        let v6 = "::".parse().unwrap();
        assert_eq!(
            reached_by(v6, &machine),
            ips(&["10.0.0.7", "127.0.0.1", "::1", "2001:db8::7"])
        );
        assert!(interfaces().iter().any(IpAddr::is_loopback), "lo is listed");
    }
}
