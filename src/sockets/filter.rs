//! Row filters of `soquete sockets`: their parsing from the command line and their matching.

use std::str::FromStr;

use super::model::{PortClass, SocketRow, TcpState};

/// A `--state` value: one TCP state, or `unconnected` for UDP, named as netstat or ss would (case
/// and `-`/`_` ignored). `established` also takes connected UDP sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateFilter(pub TcpState);

impl FromStr for StateFilter {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let wanted = normalise_state(text);
        let aliases: &[(&str, TcpState)] = &[
            ("estab", TcpState::Established),
            ("synrecv", TcpState::SynRecv),
            ("synreceived", TcpState::SynRecv),
            ("closed", TcpState::Close),
            ("finwait1", TcpState::FinWait1),
            ("finwait2", TcpState::FinWait2),
            ("listening", TcpState::Listen),
            ("unconn", TcpState::Unconnected),
            ("unconnected", TcpState::Unconnected),
        ];
        TcpState::ALL
            .iter()
            .map(|&state| (normalise_state(state.filter_name()), state))
            .chain(
                aliases
                    .iter()
                    .map(|&(name, state)| (name.to_string(), state)),
            )
            .find(|(name, _)| *name == wanted)
            .map(|(_, state)| StateFilter(state))
            .ok_or_else(|| {
                let names: Vec<_> = TcpState::ALL.iter().map(|s| s.filter_name()).collect();
                format!(
                    "unknown state (expected one of: {}; or unconnected, for UDP)",
                    names.join(", ")
                )
            })
    }
}

fn normalise_state(text: &str) -> String {
    text.chars()
        .filter(|c| *c != '-' && *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// A `--port` value: one port `N` or an inclusive range `N-M`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// The lowest port of the range.
    pub first: u16,
    /// The highest port of the range, `first` for one port.
    pub last: u16,
}

impl PortRange {
    /// True when `port` lies within the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

impl FromStr for PortRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let port = |s: &str| {
            s.trim()
                .parse::<u16>()
                .map_err(|_| format!("'{s}' is not a port (0-65535)"))
        };
        let (first, last) = match text.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => (port(text)?, port(text)?),
        };
        if first > last {
            return Err(format!(
                "the range {first}-{last} is empty (write it low-high)"
            ));
        }
        Ok(PortRange { first, last })
    }
}

/// Every filter of one `soquete sockets` run; an empty list means "no filter on that".
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// TCP states to keep.
    pub states: Vec<TcpState>,
    /// Port ranges either end may fall in.
    pub ports: Vec<PortRange>,
    /// IANA classes of the service port to keep.
    pub classes: Vec<PortClass>,
    /// Owning PIDs to keep.
    pub pids: Vec<u32>,
    /// Lower-cased substring of the program name.
    pub process: Option<String>,
}

impl Filters {
    /// True when the filters need to know which processes own each socket.
    pub fn need_owners(&self) -> bool {
        !self.pids.is_empty() || self.process.is_some()
    }

    /// Filters that need only the socket itself (cheap: applied before owners are looked up).
    pub fn keep_by_socket(&self, row: &SocketRow) -> bool {
        let state_ok =
            self.states.is_empty() || row.state.is_some_and(|state| self.states.contains(&state));
        let port_ok = self.ports.is_empty()
            || self.ports.iter().any(|range| {
                range.contains(row.local_port) || row.remote_port.is_some_and(|p| range.contains(p))
            });
        let class_ok = self.classes.is_empty() || self.classes.contains(&row.class);
        state_ok && port_ok && class_ok
    }

    /// Filters on owners (applied once PIDs and program names are known).
    pub fn keep_by_owner(&self, row: &SocketRow) -> bool {
        let pids = row.pids.as_deref().unwrap_or_default();
        let pid_ok = self.pids.is_empty() || pids.iter().any(|pid| self.pids.contains(pid));
        let process_ok = self.process.is_none()
            || row
                .programs
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|name| self.names_process(name));
        pid_ok && process_ok
    }

    /// True when the `--process` filter (if any) takes a program of this name.
    pub fn names_process(&self, name: &str) -> bool {
        self.process
            .as_ref()
            .is_none_or(|wanted| name.to_lowercase().contains(wanted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sockets::model::Proto;

    fn row(local_port: u16, remote_port: Option<u16>, state: Option<TcpState>) -> SocketRow {
        SocketRow {
            proto: if state.is_some() {
                Proto::Tcp
            } else {
                Proto::Udp
            },
            family: "ipv4",
            local_addr: "127.0.0.1".parse().unwrap(),
            local_port,
            remote_addr: remote_port.map(|_| "127.0.0.1".parse().unwrap()),
            remote_port,
            state,
            recv_q: Some(0),
            send_q: Some(0),
            pids: Some(vec![42]),
            programs: Some(vec!["Firefox".into()]),
            class: PortClass::of(local_port),
            service_port: local_port,
            service: None,
            ephemeral: Some(false),
            uid: None,
            inode: None,
            tcp_info: None,
        }
    }

    #[test]
    fn states_parse_in_netstat_and_ss_spellings() {
        for (text, state) in [
            ("established", TcpState::Established),
            ("ESTABLISHED", TcpState::Established),
            ("estab", TcpState::Established),
            ("time-wait", TcpState::TimeWait),
            ("TIME_WAIT", TcpState::TimeWait),
            ("close-wait", TcpState::CloseWait),
            ("Listen", TcpState::Listen),
            ("fin-wait-1", TcpState::FinWait1),
            ("FIN_WAIT1", TcpState::FinWait1),
            ("syn-recv", TcpState::SynRecv),
        ] {
            assert_eq!(
                text.parse::<StateFilter>(),
                Ok(StateFilter(state)),
                "{text}"
            );
        }
        let err = "bogus".parse::<StateFilter>().unwrap_err();
        assert!(err.contains("established"), "{err}");
    }

    #[test]
    fn ports_parse_as_single_or_range() {
        assert_eq!(
            "22".parse(),
            Ok(PortRange {
                first: 22,
                last: 22
            })
        );
        assert_eq!(
            "1000-2000".parse(),
            Ok(PortRange {
                first: 1000,
                last: 2000
            })
        );
        assert!("2000-1000".parse::<PortRange>().is_err());
        assert!("70000".parse::<PortRange>().is_err());
        assert!("http".parse::<PortRange>().is_err());
    }

    #[test]
    fn port_filter_matches_either_end() {
        let filters = Filters {
            ports: vec!["443".parse().unwrap()],
            ..Filters::default()
        };
        assert!(filters.keep_by_socket(&row(443, None, Some(TcpState::Listen))));
        assert!(filters.keep_by_socket(&row(50000, Some(443), Some(TcpState::Established))));
        assert!(!filters.keep_by_socket(&row(50000, Some(80), Some(TcpState::Established))));
    }

    #[test]
    fn udp_states_parse_in_ss_spelling() {
        for text in ["unconn", "UNCONN", "unconnected"] {
            assert_eq!(
                text.parse::<StateFilter>(),
                Ok(StateFilter(TcpState::Unconnected))
            );
        }
    }

    #[test]
    fn state_filter_leaves_out_stateless_udp() {
        let filters = Filters {
            states: vec![TcpState::Established],
            ..Filters::default()
        };
        assert!(filters.keep_by_socket(&row(1, Some(2), Some(TcpState::Established))));
        assert!(!filters.keep_by_socket(&row(1, Some(2), Some(TcpState::TimeWait))));
        assert!(!filters.keep_by_socket(&row(1, Some(2), None)));
    }

    #[test]
    fn class_filter_uses_the_row_class() {
        let filters = Filters {
            classes: vec![PortClass::WellKnown],
            ..Filters::default()
        };
        assert!(filters.keep_by_socket(&row(22, None, Some(TcpState::Listen))));
        assert!(!filters.keep_by_socket(&row(8080, None, Some(TcpState::Listen))));
    }

    #[test]
    fn owner_filters_match_pid_and_program_substring() {
        let by_pid = Filters {
            pids: vec![42],
            ..Filters::default()
        };
        assert!(by_pid.keep_by_owner(&row(1, None, None)));
        let other_pid = Filters {
            pids: vec![7],
            ..Filters::default()
        };
        assert!(!other_pid.keep_by_owner(&row(1, None, None)));
        let by_name = Filters {
            process: Some("fox".into()),
            ..Filters::default()
        };
        assert!(by_name.keep_by_owner(&row(1, None, None)));
        let no_name = Filters {
            process: Some("chrome".into()),
            ..Filters::default()
        };
        assert!(!no_name.keep_by_owner(&row(1, None, None)));
    }
}
