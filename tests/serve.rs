//! `soquete serve` with real clients on 127.0.0.1.
