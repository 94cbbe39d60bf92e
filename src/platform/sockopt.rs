//! Socket options whose availability differs by OS: how a chat connection notices a peer that
//! vanished without a word (TCP keepalive, and on Linux a limit on unacknowledged data); and a
//! write that never waits on a blocking socket.

use std::io::{self, IoSlice};
use std::net::TcpStream;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};

/// How soon a silent or vanished peer is given up on.
#[derive(Debug, Clone, Copy)]
pub struct DeadPeerDetection {
    /// Idle time before the first keepalive probe.
    pub idle: Duration,
    /// Time between probes once they started.
    pub interval: Duration,
    /// Unanswered probes after which the kernel drops the connection.
    pub probes: u32,
    /// Data sent and never acknowledged for this long ends the connection (Linux only; elsewhere
    /// TCP's own retransmission limit applies).
    pub unacked: Duration,
}

/// Turns on TCP keepalive as `how` says, with every part this OS supports.
pub fn detect_dead_peers(stream: &TcpStream, how: &DeadPeerDetection) -> io::Result<()> {
    let socket = SockRef::from(stream);
    let keepalive = TcpKeepalive::new().with_time(how.idle);
    #[cfg(any(target_os = "linux", target_os = "macos", target_os = "windows"))]
    let keepalive = keepalive
        .with_interval(how.interval)
        .with_retries(how.probes);
    socket.set_tcp_keepalive(&keepalive)?;
    #[cfg(target_os = "linux")]
    socket.set_tcp_user_timeout(Some(how.unacked))?;
    Ok(())
}

/// Writes what the socket takes at once, without waiting even though it blocks (its timeouts
/// untouched, as its reader relies on them): nothing taken is `WouldBlock`. Where the OS has no
/// such write, always `WouldBlock` (the caller writes some other way).
pub fn send_now(stream: &TcpStream, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    #[cfg(unix)]
    {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let flags = libc::MSG_DONTWAIT;
        SockRef::from(stream).send_vectored_with_flags(bufs, flags)
    }
    #[cfg(not(unix))]
    {
        let _ = (stream, bufs);
        Err(io::ErrorKind::WouldBlock.into())
    }
}
