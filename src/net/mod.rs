//! What several features share and no feature owns: the address a user types, the clock, the
//! OS-neutral socket model, text made safe for a terminal, the state directory and TLS. Nothing here imports a feature.

pub mod address;
pub mod clock;
pub mod dns;
pub mod sanitize;
pub mod socket;
pub mod state;
pub mod stun;
pub mod target;
pub mod tls;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The course's port: the default of `serve`, `chat` and `probe`.
pub const DEFAULT_PORT: u16 = 65432;

/// Any address and port of `peer`'s family: where a socket that talks to `peer` binds.
pub fn wildcard_for(peer: SocketAddr) -> SocketAddr {
    let any: IpAddr = if peer.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    SocketAddr::new(any, 0)
}
