//! Addresses a public DNS name should not carry (loopback, private, carrier-grade NAT,
//! link-local, unique-local, unspecified), each with what it means to whoever looks it up: the
//! one judgement `probe` makes of a name's answers and `serve --ddns` of its own name.

use std::net::IpAddr;

/// What kind of address a public name should not carry, and what it means; `None` for an
/// address the Internet can reach.
pub fn unfit_for_public_dns(ip: &IpAddr) -> Option<&'static str> {
    const LOOPBACK: &str = "loopback address: only this very machine can reach it";
    const LINK_LOCAL: &str = "link-local address: valid only on its own network segment";
    const UNSPECIFIED: &str =
        "unspecified address: no machine has it (a client that connects to it reaches itself)";
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some(LOOPBACK)
            } else if v4.is_private() {
                Some(
                    "private (RFC 1918) address: if this name is meant to be reached from the \
                     Internet, the DDNS client published its interface address from behind NAT; \
                     publish the public address instead",
                )
            } else if a == 100 && (64..128).contains(&b) {
                Some(
                    "carrier-grade NAT (100.64.0.0/10) address: the provider's NAT stands in front \
                     of the host, which cannot be reached from outside by this address; ask for a \
                     public address or use a tunnel",
                )
            } else if v4.is_link_local() {
                Some(LINK_LOCAL)
            } else if v4.is_unspecified() {
                Some(UNSPECIFIED)
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some(LOOPBACK)
            } else if first & 0xffc0 == 0xfe80 {
                Some(LINK_LOCAL)
            } else if first & 0xfe00 == 0xfc00 {
                Some("unique-local (private) IPv6 address: not reachable from the Internet")
            } else if v6.is_unspecified() {
                Some(UNSPECIFIED)
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_unfit_for_public_dns_are_noted() {
        for (unfit, words) in [
            ("10.1.2.3", "private (RFC 1918)"),
            ("172.16.0.1", "private (RFC 1918)"),
            ("192.168.1.10", "private (RFC 1918)"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("127.0.0.1", "loopback"),
            ("169.254.1.1", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("::1", "loopback"),
            ("fe80::1", "link-local"),
            ("fd00::1", "unique-local"),
            ("::", "unspecified"),
        ] {
            let note = unfit_for_public_dns(&unfit.parse().unwrap());
            assert!(
                note.is_some_and(|n| n.starts_with(words)),
                "{unfit}: {note:?}"
            );
        }
        // A LAN name in a lab is fine: the note says when it matters, not that it is a fault.
        let private = unfit_for_public_dns(&"192.168.1.10".parse().unwrap()).unwrap();
        assert!(
            private.contains("if this name is meant to be reached from the Internet, "),
            "{private}"
        );
        for public in ["203.0.113.7", "8.8.8.8", "100.128.0.1", "2001:db8::1"] {
            assert_eq!(
                unfit_for_public_dns(&public.parse().unwrap()),
                None,
                "{public}"
            );
        }
    }
}
