//! Gathers one snapshot of sockets: asks the OS backend, explains each socket (class, service,
//! ephemeral), filters, and looks up owners only when asked. Never prints.

use std::collections::HashMap;
use std::ops::RangeInclusive;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use super::filter::Filters;
use super::model::{PortClass, RawSocket, SocketRow};
use super::ports;
use crate::error::Result;
use crate::net::sanitize::neutralize;
use crate::platform::{self, Selection};

/// What one look at the system should gather.
#[derive(Debug, Clone)]
pub struct Request {
    /// Which sockets to ask the OS for.
    pub selection: Selection,
    /// Which of them to keep.
    pub filters: Filters,
    /// Look up owning PIDs and program names even if no filter needs them (`-p`).
    pub show_owners: bool,
}

impl Request {
    /// True when rows need owners (`-p`, or an owner filter): rows are then complete only once
    /// the walk for owners is done, not as the OS lists them.
    pub fn wants_owners(&self) -> bool {
        self.show_owners || self.filters.need_owners()
    }
}

/// The result of one look.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The sockets kept by the filters, in the OS's order.
    pub rows: Vec<SocketRow>,
    /// Some owners could not be seen (processes of other users, when not root).
    pub owners_hidden: bool,
    /// Processes the owner filters (`--pid`, `--process`) name whose sockets could not be seen:
    /// PID and program name.
    pub hidden_matches: Vec<(u32, String)>,
    /// Sockets the owner filters left out because their owners could not be seen.
    pub unchecked: usize,
    /// The PIDs `--pid` names that are no process.
    pub missing_pids: Vec<u32>,
}

/// How many hidden processes the note names before it says "and N more".
const NAMED_IN_NOTE: usize = 3;

impl Snapshot {
    /// Every note for stderr (or under a watch frame's header): `--pid` values that are no
    /// process, then [`Snapshot::hidden_owners_note`].
    pub fn notes(&self) -> Vec<String> {
        let missing = self.missing_pids.iter();
        let missing = missing.map(|pid| format!("soquete: no process {pid}"));
        missing.chain(self.hidden_owners_note()).collect()
    }

    /// The note that says, as netstat does, why some owners show as `-`, or why an owner filter
    /// found nothing of a process it names: only when that is so.
    pub fn hidden_owners_note(&self) -> Option<String> {
        const NOTE: &str = "soquete: not all processes could be identified:";
        if !self.hidden_matches.is_empty() {
            let mut named: Vec<String> = self
                .hidden_matches
                .iter()
                .take(NAMED_IN_NOTE)
                .map(|(pid, name)| format!("PID {pid} ({})", neutralize(name)))
                .collect();
            let more = self.hidden_matches.len().saturating_sub(NAMED_IN_NOTE);
            if more > 0 {
                named.push(format!("{more} more"));
            }
            let (whose, verb) = match self.hidden_matches.len() {
                1 => ("its", "belongs"),
                _ => ("their", "belong"),
            };
            return Some(format!(
                "{NOTE} {} {verb} to another user, {whose} sockets cannot be seen; run as root \
                 to see them",
                named.join(", ")
            ));
        }
        let some_hidden = self.owners_hidden && self.rows.iter().any(|row| row.pids.is_none());
        if some_hidden {
            return Some(format!(
                "{NOTE} sockets of other users' processes show '-'; run as root to see them all"
            ));
        }
        (self.unchecked > 0).then(|| {
            format!(
                "{NOTE} {} sockets of other users' processes could not be checked against \
                 --pid/--process; run as root to see them all",
                self.unchecked
            )
        })
    }
}

/// Takes one snapshot.
pub fn snapshot(request: &Request) -> Result<Snapshot> {
    snapshot_with(request, &mut |_| {})
}

/// Takes one snapshot, and when no owner filter can leave rows out later, hands each row kept
/// to `early` as soon as the OS lists it, while the rest are still coming, in the order of the
/// snapshot's `rows`: without their owners, which come only after (with `-p`). With an owner
/// filter, `early` sees nothing.
pub fn snapshot_with(request: &Request, early: &mut dyn FnMut(&SocketRow)) -> Result<Snapshot> {
    let ephemeral = platform::ephemeral_port_range();
    let want_owners = request.wants_owners();
    let final_rows = !request.filters.need_owners();
    let (rows, owners) = std::thread::scope(|scope| {
        // The walk for owners does not need the socket list: both run at once.
        let walker = want_owners.then(|| scope.spawn(platform::socket_owners));
        let mut rows: Vec<SocketRow> = Vec::new();
        let listed = platform::for_each_socket(&request.selection, &mut |socket| {
            let row = explain(socket, ephemeral.as_ref());
            if request.filters.keep_by_socket(&row) {
                if final_rows {
                    early(&row);
                }
                rows.push(row);
            }
        });
        let owners = walker.map(|walker| {
            walker.join().unwrap_or_else(|_| platform::Owners {
                hidden: true,
                ..platform::Owners::default()
            })
        });
        (listed.map(|()| rows), owners)
    });
    let mut rows = rows?;

    let mut owners_hidden = false;
    let mut hidden_matches = Vec::new();
    let mut unchecked = 0;
    let mut missing_pids = Vec::new();
    match owners {
        Some(owners) => {
            let (first, second) = in_halves(&mut rows, |rows| attach_owners(rows, &owners));
            owners_hidden = first || second;
            attach_program_names(&mut rows);
            if request.filters.need_owners() {
                rows.retain(|row| {
                    let keep = request.filters.keep_by_owner(row);
                    unchecked += usize::from(!keep && row.pids.is_none());
                    keep
                });
                hidden_matches = hidden_matches_of(&request.filters, &owners.hidden_pids);
            }
            if !request.filters.pids.is_empty() {
                let alive = program_names(&request.filters.pids);
                let pids = request.filters.pids.iter().copied();
                missing_pids = pids.filter(|pid| !alive.contains_key(pid)).collect();
            }
        }
        None => {
            for row in &mut rows {
                // netstat2 backends hand owners over for free, but they were not asked for.
                row.pids = None;
            }
        }
    }
    Ok(Snapshot {
        rows,
        owners_hidden,
        hidden_matches,
        unchecked,
        missing_pids,
    })
}

/// The hidden processes that the owner filters name: what a filter that found nothing missed.
fn hidden_matches_of(filters: &Filters, hidden_pids: &[u32]) -> Vec<(u32, String)> {
    let candidates: Vec<u32> = hidden_pids
        .iter()
        .copied()
        .filter(|pid| filters.pids.is_empty() || filters.pids.contains(pid))
        .collect();
    // The name of another user's process can be read (only its open files cannot).
    let names = program_names(&candidates);
    candidates
        .into_iter()
        .filter_map(|pid| {
            let name = names.get(&pid).cloned().unwrap_or_else(|| "?".to_string());
            filters.names_process(&name).then_some((pid, name))
        })
        .collect()
}

/// Adds soquete's explanations to a raw socket.
fn explain(socket: RawSocket, ephemeral: Option<&RangeInclusive<u16>>) -> SocketRow {
    let (service_port, service) =
        ports::service_of(socket.proto, socket.local_port, socket.remote, ephemeral);
    SocketRow {
        proto: socket.proto,
        family: if socket.local_addr.is_ipv4() {
            "ipv4"
        } else {
            "ipv6"
        },
        local_addr: socket.local_addr,
        local_port: socket.local_port,
        remote_addr: socket.remote.map(|(addr, _)| addr),
        remote_port: socket.remote.map(|(_, port)| port),
        state: socket.state,
        recv_q: socket.recv_q,
        send_q: socket.send_q,
        pids: socket.pids,
        programs: None,
        class: PortClass::of(service_port),
        service_port,
        service,
        ephemeral: ephemeral.map(|range| range.contains(&socket.local_port)),
        uid: socket.uid,
        inode: socket.inode,
        tcp_info: socket.tcp_info,
    }
}

/// Fills `pids` where the backend did not, in ascending order (the walk of `/proc` finds a shared
/// socket's holders in whatever order its threads ran). Returns whether some owners are hidden.
fn attach_owners(rows: &mut [SocketRow], owners: &platform::Owners) -> bool {
    let mut hidden = false;
    for pids in rows.iter_mut().filter_map(|row| row.pids.as_mut()) {
        pids.sort_unstable();
        pids.dedup();
    }
    for row in rows.iter_mut().filter(|row| row.pids.is_none()) {
        row.pids = match row.inode.map(|inode| owners.holders(inode)) {
            // No inode (TIME_WAIT, for one): no process holds the socket any more.
            None => Some(Vec::new()),
            // Not found: either nobody holds it, or somebody we may not look at.
            Some(pids) if pids.len() == 0 && owners.hidden => {
                hidden = true;
                None
            }
            Some(pids) => Some(pids.collect()),
        };
    }
    hidden
}

/// Looks up the program name of every PID that will be shown, and only those.
fn attach_program_names(rows: &mut [SocketRow]) {
    let mut pids: Vec<u32> = Vec::new();
    for &pid in rows.iter().flat_map(|row| row.pids.iter().flatten()) {
        // A busy process holds many sockets in a row: most repeats stop here.
        if pids.last() != Some(&pid) {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    pids.dedup();
    let names = program_names(&pids);
    in_halves(rows, |rows| {
        for row in rows {
            row.programs = row.pids.as_ref().map(|pids| {
                pids.iter()
                    .map(|pid| names.get(pid).cloned().unwrap_or_else(|| "?".to_string()))
                    .collect()
            });
        }
    });
}

/// `work` on each half of `rows`, the two halves on two threads.
fn in_halves<R: Send>(
    rows: &mut [SocketRow],
    work: impl Fn(&mut [SocketRow]) -> R + Sync,
) -> (R, R) {
    let (first, second) = rows.split_at_mut(rows.len() / 2);
    std::thread::scope(|scope| {
        let second = scope.spawn(|| work(second));
        let first = work(first);
        (
            first,
            second
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        )
    })
}

/// The program names of these processes, where they can be read.
fn program_names(pids: &[u32]) -> HashMap<u32, String> {
    let pids: Vec<Pid> = pids.iter().copied().map(Pid::from_u32).collect();
    let mut names: HashMap<u32, String> = HashMap::new();
    if !pids.is_empty()
        && let Ok(mut system) = System::new()
    {
        {
            system.refresh_processes_specifics(
                ProcessesToUpdate::Some(&pids),
                true,
                ProcessRefreshKind::nothing(),
            );
            for pid in pids {
                if let Some(process) = system.process(pid) {
                    names.insert(pid.as_u32(), process.name().to_string_lossy().into_owned());
                }
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sockets::model::Proto;

    #[test]
    fn owners_of_a_shared_socket_come_in_pid_order() {
        let owners = platform::Owners {
            by_inode: vec![(4, 1), (5, 12), (5, 40), (5, 90), (6, 2)],
            ..platform::Owners::default()
        };
        let mut rows = [
            SocketRow {
                inode: Some(5),
                ..SocketRow::listener(Proto::Tcp, 22)
            },
            SocketRow {
                pids: Some(vec![8, 3]),
                ..SocketRow::listener(Proto::Tcp, 23)
            },
        ];
        attach_owners(&mut rows, &owners);
        assert_eq!(rows[0].pids, Some(vec![12, 40, 90]));
        assert_eq!(
            rows[1].pids,
            Some(vec![3, 8]),
            "as a backend handed them over"
        );
    }

    #[test]
    fn the_note_on_hidden_owners_comes_only_when_a_row_lacks_them() {
        let seen = SocketRow {
            pids: Some(vec![1]),
            ..SocketRow::listener(Proto::Tcp, 22)
        };
        let unseen = SocketRow::listener(Proto::Tcp, 80);
        let snapshot = |rows: Vec<SocketRow>, owners_hidden| Snapshot {
            rows,
            owners_hidden,
            ..Snapshot::default()
        };
        let note = snapshot(vec![seen.clone(), unseen.clone()], true).hidden_owners_note();
        assert!(note.is_some_and(|note| note.contains("run as root")));
        assert_eq!(snapshot(vec![seen], true).hidden_owners_note(), None);
        assert_eq!(snapshot(vec![unseen], false).hidden_owners_note(), None);
    }

    #[test]
    fn a_filter_that_found_nothing_says_which_hidden_processes_it_names() {
        let hidden = |matches: Vec<(u32, &str)>| Snapshot {
            owners_hidden: true,
            hidden_matches: matches
                .into_iter()
                .map(|(p, n)| (p, n.to_string()))
                .collect(),
            ..Snapshot::default()
        };
        let note = hidden(vec![(7, "sshd\u{1b}[2J")])
            .hidden_owners_note()
            .unwrap();
        assert!(
            note.contains("PID 7 (sshd) belongs to another user"),
            "{note}"
        );
        assert!(note.contains("run as root"), "{note}");
        let many = hidden((1..=5).map(|pid| (pid, "x")).collect());
        let note = many.hidden_owners_note().unwrap();
        assert!(note.contains("PID 3 (x), 2 more belong"), "{note}");
        let unchecked = Snapshot {
            owners_hidden: true,
            unchecked: 4,
            ..Snapshot::default()
        };
        let note = unchecked.hidden_owners_note().unwrap();
        assert!(
            note.contains("4 sockets") && note.contains("--pid/--process"),
            "{note}"
        );
    }
}
