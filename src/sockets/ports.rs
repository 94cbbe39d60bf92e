//! Port knowledge: service names (a built-in table, then the system's services database) and the
//! rule that picks which end of a connection names its service.

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::sync::OnceLock;

use super::model::Proto;
use crate::net::sanitize::neutralize;
use crate::platform::SERVICES_FILE;

/// Services every student meets first; they win over the system database so that names are the
/// same on every OS.
const BUILT_IN_SERVICES: &[(u16, &str)] = &[
    (20, "ftp-data"),
    (21, "ftp"),
    (22, "ssh"),
    (23, "telnet"),
    (25, "smtp"),
    (53, "domain"),
    (67, "dhcp"),
    (68, "dhcp"),
    (80, "http"),
    (110, "pop3"),
    (123, "ntp"),
    (143, "imap"),
    (161, "snmp"),
    (443, "https"),
    (3306, "mysql"),
    (5004, "rtp"),
    (5938, "teamviewer"),
    (65432, "soquete"),
];

/// The service name of `port` for `proto`, if known.
pub fn service_name(proto: Proto, port: u16) -> Option<&'static str> {
    let table = match proto {
        Proto::Tcp => &services().tcp,
        Proto::Udp => &services().udp,
    };
    let index = table.ports.binary_search(&port).ok()?;
    Some(table.names[index].as_str())
}

/// Service names for one protocol, sorted by port: searched once or twice per socket listed, so
/// a lookup is a binary search over plain integers.
#[derive(Default)]
struct ServiceTable {
    ports: Vec<u16>,
    names: Vec<String>,
}

impl ServiceTable {
    fn build(system: &HashMap<(Proto, u16), String>, proto: Proto) -> ServiceTable {
        let mut entries: HashMap<u16, String> = system
            .iter()
            .filter(|((p, _), _)| *p == proto)
            .map(|((_, port), name)| (*port, name.clone()))
            .collect();
        for (port, name) in BUILT_IN_SERVICES {
            entries.insert(*port, (*name).to_string());
        }
        let mut sorted: Vec<(u16, String)> = entries.into_iter().collect();
        sorted.sort_unstable();
        let (ports, names) = sorted.into_iter().unzip();
        ServiceTable { ports, names }
    }
}

struct Services {
    tcp: ServiceTable,
    udp: ServiceTable,
}

/// The built-in table merged over the system database, built once, on first use.
fn services() -> &'static Services {
    static SERVICES: OnceLock<Services> = OnceLock::new();
    SERVICES.get_or_init(|| {
        let system = SERVICES_FILE
            .and_then(|path| std::fs::read_to_string(path).ok())
            .map(|text| parse_services(&text))
            .unwrap_or_default();
        Services {
            tcp: ServiceTable::build(&system, Proto::Tcp),
            udp: ServiceTable::build(&system, Proto::Udp),
        }
    })
}

/// Parses the `/etc/services` format: `name port/proto [aliases...] [# comment]`.
pub fn parse_services(text: &str) -> HashMap<(Proto, u16), String> {
    let mut services = HashMap::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let (Some(name), Some(port_proto)) = (fields.next(), fields.next()) else {
            continue;
        };
        let Some((port, proto)) = port_proto.split_once('/') else {
            continue;
        };
        let proto = match proto {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            _ => continue,
        };
        if let Ok(port) = port.parse::<u16>() {
            // The first entry for a port is its canonical name. The file is the system's, not
            // ours: neutralised once here, so no row has to be.
            services
                .entry((proto, port))
                .or_insert_with(|| neutralize(name).into_owned());
        }
    }
    services
}

/// The service port of a socket (rules below) and that port's service name.
pub fn service_of(
    proto: Proto,
    local_port: u16,
    remote: Option<(IpAddr, u16)>,
    ephemeral: Option<&RangeInclusive<u16>>,
) -> (u16, Option<&'static str>) {
    let Some((_, remote_port)) = remote else {
        return (local_port, service_name(proto, local_port));
    };
    let local_name = service_name(proto, local_port);
    let remote_name = service_name(proto, remote_port);
    match (local_name, remote_name) {
        (Some(_), None) => return (local_port, local_name),
        (None, Some(_)) => return (remote_port, remote_name),
        _ => {}
    }
    let port = service_port(proto, local_port, remote, ephemeral);
    (
        port,
        if port == local_port {
            local_name
        } else {
            remote_name
        },
    )
}

/// Which port of a socket names its service, by these rules in order:
/// 1. no peer (a listener, an unconnected UDP socket): the local port;
/// 2. exactly one end's port has a known service name: that port;
/// 3. exactly one end's port lies outside the OS's ephemeral range: that port, since the other end
///    is a client port the OS handed out;
/// 4. otherwise the lower-numbered port.
pub fn service_port(
    proto: Proto,
    local_port: u16,
    remote: Option<(IpAddr, u16)>,
    ephemeral: Option<&RangeInclusive<u16>>,
) -> u16 {
    let Some((_, remote_port)) = remote else {
        return local_port;
    };
    let named = |port| service_name(proto, port).is_some();
    match (named(local_port), named(remote_port)) {
        (true, false) => return local_port,
        (false, true) => return remote_port,
        _ => {}
    }
    if let Some(range) = ephemeral {
        match (range.contains(&local_port), range.contains(&remote_port)) {
            (false, true) => return local_port,
            (true, false) => return remote_port,
            _ => {}
        }
    }
    local_port.min(remote_port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16) -> Option<(IpAddr, u16)> {
        Some(("127.0.0.1".parse().unwrap(), port))
    }

    #[test]
    fn built_in_names_cover_the_course_table() {
        for (port, name) in [
            (20, "ftp-data"),
            (21, "ftp"),
            (22, "ssh"),
            (23, "telnet"),
            (25, "smtp"),
            (53, "domain"),
            (67, "dhcp"),
            (68, "dhcp"),
            (80, "http"),
            (110, "pop3"),
            (143, "imap"),
            (161, "snmp"),
            (443, "https"),
            (3306, "mysql"),
            (5004, "rtp"),
            (5938, "teamviewer"),
        ] {
            assert_eq!(service_name(Proto::Tcp, port), Some(name), "port {port}");
        }
    }

    #[test]
    fn services_file_is_parsed_per_protocol() {
        let text = "# comment\nfoo 7000/tcp alias # x\nbar 7000/udp\nbad line\nbaz 7001/sctp\nfoo2 7000/tcp\n";
        let parsed = parse_services(text);
        assert_eq!(
            parsed.get(&(Proto::Tcp, 7000)).map(String::as_str),
            Some("foo")
        );
        assert_eq!(
            parsed.get(&(Proto::Udp, 7000)).map(String::as_str),
            Some("bar")
        );
        assert_eq!(parsed.len(), 2);
    }

    #[test]
    fn a_hostile_services_file_cannot_reach_the_terminal() {
        let parsed = parse_services("evil\u{1b}]0;PWNED\u{7}name 7002/tcp\n");
        assert_eq!(
            parsed.get(&(Proto::Tcp, 7002)).map(String::as_str),
            Some("evilname")
        );
    }

    #[test]
    fn listener_is_named_by_its_local_port() {
        assert_eq!(service_port(Proto::Tcp, 41000, None, None), 41000);
    }

    #[test]
    fn named_end_wins() {
        assert_eq!(service_port(Proto::Tcp, 52000, peer(443), None), 443);
        assert_eq!(service_port(Proto::Tcp, 22, peer(50000), None), 22);
    }

    #[test]
    fn non_ephemeral_end_wins_over_a_client_port() {
        let linux = 32768..=60999;
        // The chat server on 65432 talks to a client the OS gave port 41000.
        assert_eq!(
            service_port(Proto::Tcp, 41000, peer(61234), Some(&linux)),
            61234
        );
        assert_eq!(
            service_port(Proto::Tcp, 61234, peer(41000), Some(&linux)),
            61234
        );
    }

    #[test]
    fn otherwise_the_lower_port() {
        assert_eq!(
            service_port(Proto::Tcp, 40000, peer(41000), Some(&(32768..=60999))),
            40000
        );
        assert_eq!(service_port(Proto::Tcp, 9000, peer(8000), None), 8000);
    }
}
