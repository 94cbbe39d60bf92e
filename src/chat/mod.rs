//! The chat of the socket labs: the wire protocol, the server (`soquete serve`) and the client
//! (`soquete chat`).

pub mod client;
pub mod protocol;
pub mod server;
