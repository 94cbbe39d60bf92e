//! The codec against RFC 5769's test vectors, and hostile datagrams.

use super::*;

/// RFC 5769 section 2's transaction ID.
const ID: TransactionId = [
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
];

/// RFC 5769 section 2.1, the sample request (with SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME,
/// MESSAGE-INTEGRITY and FINGERPRINT).
const SAMPLE_REQUEST: [u8; 108] = [
    0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73,
    0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,
    0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09,
    0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76, 0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14,
    0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49,
    0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
];

/// RFC 5769 section 2.2, the sample IPv4 response: 192.0.2.1 port 32853.
const SAMPLE_IPV4_RESPONSE: [u8; 80] = [
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
    0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
    0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9,
    0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7, 0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
];

/// RFC 5769 section 2.3's XOR-MAPPED-ADDRESS (2001:db8:1234:5678:11:2233:4455:6677 port 32853),
/// after the same SOFTWARE attribute; the integrity and fingerprint attributes are left out (this
/// client reads neither) and the length is that of what is kept.
fn sample_ipv6_response() -> Vec<u8> {
    let mut message = vec![0x01, 0x01, 0x00, 0x28, 0x21, 0x12, 0xa4, 0x42];
    message.extend_from_slice(&ID);
    message.extend_from_slice(&SAMPLE_IPV4_RESPONSE[20..36]);
    message.extend_from_slice(&[
        0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1,
        0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
    ]);
    message
}

#[test]
fn a_request_is_the_rfc_header_with_no_attributes() {
    let request = encode_request(&ID);
    // The vector's header, but for its length: ours carries no attribute.
    assert_eq!(request[..2], SAMPLE_REQUEST[..2]);
    assert_eq!(request[2..4], [0, 0]);
    assert_eq!(request[4..], SAMPLE_REQUEST[4..20]);
}

#[test]
fn the_rfc_sample_request_is_stun_but_not_an_answer() {
    let (kind, attributes) = split(&SAMPLE_REQUEST).unwrap();
    assert_eq!(kind, BINDING_REQUEST);
    let kinds: Vec<u16> = Attributes(attributes).map(|(kind, _)| kind).collect();
    assert_eq!(kinds, [0x8022, 0x0024, 0x8029, 0x0006, 0x0008, 0x8028]);
    assert_eq!(
        decode_response(&SAMPLE_REQUEST, &ID),
        Err(DecodeError::NotOurs)
    );
}

#[test]
fn the_rfc_ipv4_response_gives_its_mapped_address() {
    assert_eq!(
        decode_response(&SAMPLE_IPV4_RESPONSE, &ID),
        Ok("192.0.2.1:32853".parse().unwrap())
    );
}

#[test]
fn the_rfc_ipv6_response_gives_its_mapped_address() {
    assert_eq!(
        decode_response(&sample_ipv6_response(), &ID),
        Ok("[2001:db8:1234:5678:11:2233:4455:6677]:32853"
            .parse()
            .unwrap())
    );
}

#[test]
fn another_transaction_is_not_our_answer() {
    let mut other = ID;
    other[11] ^= 1;
    assert_eq!(
        decode_response(&SAMPLE_IPV4_RESPONSE, &other),
        Err(DecodeError::NotOurs)
    );
}

#[test]
fn an_old_servers_plain_mapped_address_is_read() {
    let mut message = vec![0x01, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42];
    message.extend_from_slice(&ID);
    message.extend_from_slice(&[
        0x00, 0x01, 0x00, 0x08, 0x00, 0x01, 0x80, 0x55, 198, 51, 100, 7,
    ]);
    assert_eq!(
        decode_response(&message, &ID),
        Ok("198.51.100.7:32853".parse().unwrap())
    );
}

#[test]
fn hostile_datagrams_are_refused_without_panic() {
    let good = SAMPLE_IPV4_RESPONSE;
    assert_eq!(decode_response(&good[..19], &ID), Err(DecodeError::NotStun));
    assert_eq!(decode_response(&good[..40], &ID), Err(DecodeError::NotStun));
    let mut cookie = good;
    cookie[4] ^= 0xff;
    assert_eq!(decode_response(&cookie, &ID), Err(DecodeError::NotStun));
    // An attribute that claims more bytes than the message has ends the walk.
    let mut long = good.to_vec();
    long[38..40].copy_from_slice(&[0xff, 0xff]);
    assert_eq!(decode_response(&long, &ID), Err(DecodeError::NoAddress));
    // An address of an unknown family, or cut short, is no address.
    let mut family = good;
    family[41] = 0x03;
    assert_eq!(decode_response(&family, &ID), Err(DecodeError::NoAddress));
    let mut empty = good[..20].to_vec();
    empty[3] = 0;
    assert_eq!(decode_response(&empty, &ID), Err(DecodeError::NoAddress));
    for size in 0..good.len() {
        let _ = decode_response(&good[..size], &ID);
    }
}

#[test]
fn a_server_that_answers_gives_the_address_and_a_silent_one_times_out() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let responder = std::thread::spawn(move || {
        let mut buffer = [0u8; 64];
        let (size, from) = server.recv_from(&mut buffer).unwrap();
        assert_eq!(size, HEADER_BYTES);
        // A stray datagram first: it is skipped.
        server.send_to(b"not stun", from).unwrap();
        let mut answer = SAMPLE_IPV4_RESPONSE[..48].to_vec();
        answer[3] = 28;
        answer[8..20].copy_from_slice(&buffer[8..20]);
        server.send_to(&answer, from).unwrap();
    });
    let found = public_address(addr, Duration::from_secs(5)).unwrap();
    assert_eq!(found, "192.0.2.1:32853".parse().unwrap());
    responder.join().unwrap();

    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let started = Instant::now();
    let err = public_address(silent.local_addr().unwrap(), Duration::from_millis(300)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(2));
}
