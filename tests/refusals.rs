//! `--max-clients` under a burst: each connection beyond it is told, and refusing costs the
//! server no thread each.

use std::io::Write;
use std::net::TcpStream;
use std::sync::mpsc;

use crate::support::peer::Peer;
use crate::support::proc::{has_proc, threads_and_fds};
use crate::support::serve::start_server;
use crate::support::{LIMIT, require};

#[test]
fn a_burst_of_refused_connections_takes_no_thread_each_and_each_is_told() {
    if !require(has_proc(), "/proc, to count a process's threads and files") {
        return;
    }
    const BURST: usize = 300;
    let (server, addr) = start_server(&["--max-clients", "2"]);
    let pid = server.child.id();
    let (mut ana, _) = Peer::raw(addr);
    ana.send("/nick ana");
    ana.line_where(|l| l.contains("now known as ana"));
    let mut bia = Peer::structured(addr, "bia");
    let (steady, steady_fds) = threads_and_fds(pid);

    // The server's threads and files, watched while the burst lasts.
    let (stop, stopped) = mpsc::channel::<()>();
    let watcher = std::thread::spawn(move || {
        let mut peak = (0, 0);
        while stopped.try_recv().is_err() {
            let (threads, fds) = threads_and_fds(pid);
            peak = (peak.0.max(threads), peak.1.max(fds));
        }
        peak
    });
    // Each refused client stays connected and says hello: a server that held a thread per
    // refusal until the client left would hold them all at once.
    let refused: Vec<TcpStream> = (0..BURST)
        .map(|_| {
            let mut stream = TcpStream::connect_timeout(&addr, LIMIT).unwrap();
            stream
                .write_all(b"{\"type\":\"hello\",\"version\":1,\"name\":\"x\"}\n")
                .unwrap();
            stream
        })
        .collect();
    for stream in refused {
        let mut peer = Peer::new(stream);
        let line = peer.line();
        assert!(line.starts_with("* server full"), "{line}");
        assert!(peer.closed(), "then end of stream");
    }
    stop.send(()).unwrap();
    let (threads, fds) = watcher.join().unwrap();
    assert!(
        threads <= steady + 16,
        "{threads} threads at the peak of {BURST} refusals, {steady} before"
    );
    assert!(
        fds <= steady_fds + 64 + 16,
        "{fds} files at the peak of {BURST} refusals, {steady_fds} before"
    );
    // The members never noticed.
    bia.say("ainda aqui");
    ana.line_where(|l| l.contains("<bia> ainda aqui"));
}
