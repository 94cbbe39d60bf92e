//! soquete's integration tests: one binary that runs the real `soquete` against sockets and
//! programs it starts itself on 127.0.0.1 and [::1]. The harnesses are in `support`; each other
//! module is about one thing a user checks.

mod brute_force;
mod chat;
mod cli;
mod cluster;
mod cluster_chat;
mod ddns;
mod door;
mod failover;
mod frames;
mod idle;
mod limits;
mod listeners;
mod names;
mod password;
mod probe;
mod probe_dns;
mod reconnect;
mod refusals;
mod resets;
mod serve;
mod serve_tls;
mod serve_tls_files;
mod serve_tls_handshakes;
mod serve_tls_operator;
mod serve_tls_password;
mod single;
mod sockets;
mod sockets_fidelity;
mod sockets_habits;
mod sockets_info;
mod sockets_terminal;
mod split;
mod support;
mod telnet;
mod terminal;
mod tls;
mod tls_probe;
mod tokens;
