//! The course's Python client, as the lecture writes it: its question without a newline, one
//! `recv`, gone. Run with the server's IP and port as its arguments.

/// The lecture's client (a timeout added, and the server's address from its arguments).
pub const COURSE_CLIENT: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(10)
s.connect((sys.argv[1], int(sys.argv[2])))
s.send("Hello Server".encode())
resp = s.recv(1024).decode()
print(f"Recebido: {resp}")
"#;
