//! soquete's integration tests: one binary that runs the real `soquete` against sockets it opens
//! itself on 127.0.0.1 and [::1].

mod chat;
mod cli;
mod probe;
mod serve;
mod sockets;
mod support;
