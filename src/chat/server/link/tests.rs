//! Tests of the client's transport.

use super::*;

/// Both of the socket's timeouts.
fn set_timeouts(socket: &TcpStream, timeout: Duration) {
    socket.set_read_timeout(Some(timeout)).unwrap();
    socket.set_write_timeout(Some(timeout)).unwrap();
}

#[test]
fn the_line_for_a_plain_client_names_every_way_in() {
    let line = needs_tls_line("127.0.0.1", 7000);
    assert!(line.contains("soquete chat --tls 127.0.0.1:7000"), "{line}");
    assert!(line.contains("ncat --ssl 127.0.0.1 7000"), "{line}");
    assert!(
        line.contains("openssl s_client -quiet -connect 127.0.0.1:7000"),
        "{line}"
    );
    assert!(needs_tls_line("::1", 7000).contains("--tls [::1]:7000"));
    assert!(line.ends_with('\n') && line.is_ascii());
}

#[test]
fn the_handshake_ends_at_its_deadline_even_while_its_answer_is_not_taken() {
    use crate::net::tls::roots::provider;
    use socket2::{Domain, SockRef, Socket, Type};
    // A chain too big for the socket buffers, to a client that never reads.
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
    let leaf = leaf.self_signed(&key).unwrap().pem();
    let chain = leaf + &cert.cert.pem().repeat(400);
    let served =
        crate::net::tls::server::identity(chain.as_bytes(), key.serialize_pem().as_bytes())
            .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    client.set_recv_buffer_size(4096).unwrap();
    client
        .connect(&listener.local_addr().unwrap().into())
        .unwrap();
    let mut client = TcpStream::from(client);
    let (accepted, _) = listener.accept().unwrap();
    SockRef::from(&accepted).set_send_buffer_size(4096).unwrap();
    set_timeouts(&accepted, Duration::from_millis(50));
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = "localhost".try_into().unwrap();
    let mut hello = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    while hello.wants_write() {
        hello.write_tls(&mut client).unwrap();
    }
    let mut link = Link::tls(Arc::new(accepted), served.config, false);
    link.handshake_limit = Duration::from_millis(500);
    let started = Instant::now();
    let begun = link.begin();
    assert!(matches!(begun, Begin::Ended(_)), "{begun:?}");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "the handshake took {took:?}");
}

#[test]
fn a_tls_write_the_socket_takes_at_once_is_not_copied_and_owes_nothing() {
    use crate::net::tls::roots::provider;
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let served =
        crate::net::tls::server::identity(cert.pem().as_bytes(), key.serialize_pem().as_bytes())
            .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    set_timeouts(&client, Duration::from_secs(5));
    set_timeouts(&accepted, Duration::from_secs(5));
    let link = Link::tls(Arc::new(accepted), served.config, false);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = "localhost".try_into().unwrap();
    let mut tls = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let server = std::thread::spawn(move || {
        let begun = link.begin();
        (link, begun)
    });
    while tls.is_handshaking() {
        tls.complete_io(&mut client).unwrap();
    }
    while tls.wants_write() {
        tls.write_tls(&mut client).unwrap();
    }
    let (link, begun) = server.join().unwrap();
    assert_eq!(begun, Begin::Ready { silent: false });

    let (first, second) = (&b"hello "[..], &b"there\n"[..]);
    let written = link.write_vectored(&[IoSlice::new(first), IoSlice::new(second)]);
    assert_eq!(written.unwrap(), Progress::Accepted(12));
    // The socket had room: the records went straight to it, nothing is kept for a next write.
    assert!(
        !link.owes(),
        "the records were copied, and are owed to the socket"
    );

    let mut read = Vec::new();
    let mut buf = [0u8; 64];
    while !read.ends_with(b"\n") {
        tls.complete_io(&mut client).unwrap();
        match tls.reader().read(&mut buf) {
            Ok(n) => read.extend_from_slice(&buf[..n]),
            Err(err) => assert_eq!(err.kind(), io::ErrorKind::WouldBlock),
        }
    }
    assert_eq!(read, b"hello there\n");
}
