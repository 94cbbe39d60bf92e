//! What a user asks `soquete sockets` for, as plain data, and netstat's rules that turn it into
//! what to ask the OS, which rows to keep and whether to look up owners.

use std::time::Duration;

use super::collect::Request;
use super::filter::{Filters, PortRange};
use super::model::{PortClass, TcpState};
use super::sort::SortKey;
use crate::platform::Selection;

/// One `soquete sockets` run as the user asked for it: netstat's flags, the filters, the sort
/// key and the output form. Built by the command line (`cli/`); knows nothing of it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// TCP sockets (`-t`). With neither `tcp` nor `udp`, both are listed.
    pub tcp: bool,
    /// UDP sockets (`-u`).
    pub udp: bool,
    /// Only listening sockets and unconnected UDP sockets (`-l`).
    pub listening: bool,
    /// Listening and non-listening sockets (`-a`); wins over `listening`.
    pub all: bool,
    /// IPv4 only (`-4`).
    pub ipv4_only: bool,
    /// IPv6 only (`-6`).
    pub ipv6_only: bool,
    /// Show the PID and program owning each socket (`-p`).
    pub programs: bool,
    /// Only these TCP states; when given, they replace what `listening`/`all` decide.
    pub states: Vec<TcpState>,
    /// Only sockets with either port in one of these ranges.
    pub ports: Vec<PortRange>,
    /// Only sockets whose service port is of one of these IANA classes.
    pub classes: Vec<PortClass>,
    /// Only sockets owned by one of these PIDs.
    pub pids: Vec<u32>,
    /// Only sockets whose program name contains this, ignoring case.
    pub process: Option<String>,
    /// The order of the rows; None is the natural order.
    pub sort: Option<SortKey>,
    /// One JSON array instead of a table.
    pub json: bool,
    /// Redraw at this interval instead of printing once.
    pub watch: Option<Duration>,
    /// TCP internals per socket (`-i`): `tcp_info` in JSON, compact columns in the table, and in
    /// `--watch` each connection's throughput and whether it is stuck.
    pub info: bool,
    /// The User (uid) and Inode columns (`-e`).
    pub extended: bool,
    /// Timers were asked for (`-o`): not shown, and a note says so.
    pub timers: bool,
    /// No header line (`-H`).
    pub no_header: bool,
}

impl Query {
    /// What to ask the OS, how to filter, and whether to look up owners.
    pub fn request(&self) -> Request {
        let (tcp, udp) = match (self.tcp, self.udp) {
            (false, false) => (true, true),
            both => both,
        };
        // An explicit --state says which states to show; otherwise -l/-a decide, as in netstat.
        // A connected UDP socket is established, an unconnected one unconnected (as ss says).
        let udp_established = self.states.contains(&TcpState::Established);
        let udp_unconnected = self.states.contains(&TcpState::Unconnected);
        let (tcp_states, udp_connected) = if !self.states.is_empty() {
            let tcp_states = self.states.iter().copied();
            let tcp_states = tcp_states.filter(|state| TcpState::ALL.contains(state));
            let udp_connected = (udp_established != udp_unconnected).then_some(udp_established);
            (tcp_states.collect(), udp_connected)
        } else if self.all {
            (TcpState::ALL.to_vec(), None)
        } else if self.listening {
            (vec![TcpState::Listen], Some(false))
        } else {
            let not_listening = TcpState::ALL.into_iter().filter(|s| *s != TcpState::Listen);
            (not_listening.collect(), Some(true))
        };
        Request {
            selection: Selection {
                tcp,
                // Of UDP sockets, a state filter can take only the established or unconnected.
                udp: udp && (self.states.is_empty() || udp_established || udp_unconnected),
                // Both -4 and -6: both families, as ss and netstat show.
                ipv4: self.ipv4_only || !self.ipv6_only,
                ipv6: self.ipv6_only || !self.ipv4_only,
                tcp_states,
                udp_connected,
                tcp_info: self.info,
            },
            filters: Filters {
                states: self.states.clone(),
                ports: self.ports.clone(),
                classes: self.classes.clone(),
                pids: self.pids.clone(),
                process: self.process.as_ref().map(|name| name.to_lowercase()),
            },
            // Sorting by PID shows the PIDs it sorts by.
            show_owners: self.programs
                || !self.pids.is_empty()
                || self.process.is_some()
                || self.sort == Some(SortKey::Pid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_flags_tcp_and_udp_connections_are_asked_for_as_netstat_does() {
        let request = Query::default().request();
        let selection = request.selection;
        assert!(selection.tcp && selection.udp && selection.ipv4 && selection.ipv6);
        assert!(!selection.tcp_states.contains(&TcpState::Listen));
        assert_eq!(selection.tcp_states.len(), TcpState::ALL.len() - 1);
        assert_eq!(selection.udp_connected, Some(true));
        assert!(!request.show_owners);
    }

    #[test]
    fn listening_asks_for_listeners_and_unconnected_udp_and_all_wins() {
        let listening = Query {
            tcp: true,
            listening: true,
            ..Query::default()
        };
        let selection = listening.request().selection;
        assert!(selection.tcp && !selection.udp);
        assert_eq!(selection.tcp_states, [TcpState::Listen]);
        assert_eq!(selection.udp_connected, Some(false));
        let both = Query {
            all: true,
            ..listening
        };
        assert_eq!(both.request().selection.tcp_states, TcpState::ALL);
        assert_eq!(both.request().selection.udp_connected, None);
    }

    #[test]
    fn a_state_filter_leaves_udp_out_and_replaces_listening() {
        let query = Query {
            listening: true,
            states: vec![TcpState::TimeWait],
            ..Query::default()
        };
        let request = query.request();
        assert!(!request.selection.udp);
        assert_eq!(request.selection.tcp_states, [TcpState::TimeWait]);
        assert_eq!(request.filters.states, [TcpState::TimeWait]);
    }

    #[test]
    fn established_and_unconnected_take_udp_sockets_too() {
        let request = |states: Vec<TcpState>| {
            Query {
                states,
                ..Query::default()
            }
            .request()
            .selection
        };
        let established = request(vec![TcpState::Established]);
        assert!(established.udp && established.tcp);
        assert_eq!(established.udp_connected, Some(true));
        let unconnected = request(vec![TcpState::Unconnected]);
        assert!(unconnected.udp && unconnected.tcp_states.is_empty());
        assert_eq!(unconnected.udp_connected, Some(false));
        let both = request(vec![TcpState::Unconnected, TcpState::Established]);
        assert_eq!(both.udp_connected, None);
        assert_eq!(both.tcp_states, [TcpState::Established]);
    }

    #[test]
    fn one_family_only() {
        let v4 = Query {
            ipv4_only: true,
            ..Query::default()
        };
        assert!(v4.request().selection.ipv4 && !v4.request().selection.ipv6);
        let v6 = Query {
            ipv6_only: true,
            ..Query::default()
        };
        assert!(!v6.request().selection.ipv4 && v6.request().selection.ipv6);
    }

    #[test]
    fn owner_filters_imply_looking_owners_up_and_names_match_in_lower_case() {
        let query = Query {
            process: Some("FireFox".into()),
            ..Query::default()
        };
        let request = query.request();
        assert!(request.show_owners);
        assert_eq!(request.filters.process.as_deref(), Some("firefox"));
        let by_pid = Query {
            pids: vec![7],
            ..Query::default()
        };
        assert!(by_pid.request().show_owners);
        let programs = Query {
            programs: true,
            ..Query::default()
        };
        assert!(programs.request().show_owners);
    }
}
