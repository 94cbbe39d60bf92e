//! The load generator's unit tests, one module per file they test: the root of the
//! `chat_generator` test target (a `harness = false` bench never runs a `#[test]`), which takes
//! the generator in as a module.

#[allow(dead_code)] // `main` and what only it reaches run in the bench, not here
#[path = "../chat.rs"]
mod generator;
// The generator's modules at this crate's root, where their `crate::` paths look for them.
use generator::*;

mod line_tests {
    use crate::line::*;

    fn line(from: usize, seq: u32, sent_ns: u64, size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        write_line(&mut out, from, seq, sent_ns, size);
        out
    }

    #[test]
    fn a_written_line_reads_back_whole() {
        let out = line(17, 123, 1_234_567, 64);
        assert_eq!(out.len(), 64);
        assert!(out.starts_with(b"c0017 0000123 0000001234567 "));
        let body = &out[..out.len() - 1];
        let expected = Body::Test {
            from: 17,
            seq: 123,
            sent_ns: 1_234_567,
        };
        assert_eq!(parse_body(body, 64), Some(expected));
    }

    #[test]
    fn a_hello_reads_back() {
        let mut out = Vec::new();
        write_hello(&mut out, 42);
        assert_eq!(out, b"h0042\n");
        assert_eq!(parse_body(b"h0042", 64), Some(Body::Hello(42)));
    }

    #[test]
    fn glued_cut_or_repadded_lines_are_rejected() {
        let out = line(3, 9, 5, 64);
        let body = &out[..63];
        assert_eq!(parse_body(&body[..40], 64), None, "cut");
        let glued = [&body[..40], &line(4, 1, 5, 64)[..23]].concat();
        assert_eq!(parse_body(&glued, 64), None, "glued");
        let mut repadded = body.to_vec();
        repadded[50] = if repadded[50] == b'z' { b'a' } else { b'z' };
        assert_eq!(parse_body(&repadded, 64), None, "wrong padding");
        assert_eq!(parse_body(b"h00x2", 64), None, "hello with a letter");
    }
}

mod report_tests {
    use serde::Serialize;

    use crate::report::*;

    fn json<T: Serialize>(value: T) -> String {
        serde_json::to_string(&value).unwrap()
    }

    #[test]
    fn decimals_are_the_old_fixed_format_as_a_json_number() {
        assert_eq!(json(Decimals::<3>(1.23456)), "1.235");
        assert_eq!(json(Decimals::<3>(2.0)), "2.0");
        assert_eq!(json(Decimals::<4>(0.00012)), "0.0001");
        assert_eq!(json(Decimals::<1>(0.26)), "0.3");
        assert_eq!(json(Decimals::<0>(12345.6)), "12346");
        assert_eq!(json(Decimals::<2>(f64::NAN)), "null");
        assert_eq!(json(Decimals::<0>(f64::INFINITY)), "null");
    }

    #[test]
    fn numbers_as_given_stay_whole_when_whole() {
        assert_eq!(json(AsGiven(5000.0)), "5000");
        assert_eq!(json(AsGiven(0.5)), "0.5");
        assert_eq!(json(AsGiven(f64::NAN)), "null");
    }

    #[test]
    fn spent_needs_both_readings() {
        assert_eq!(spent(Some(1.0), Some(3.5)), Some(Decimals(2.5)));
        assert_eq!(spent(None, Some(3.5)), None);
        assert_eq!(spent(Some(1.0), None), None);
    }
}

mod latency_tests {
    use crate::latency::*;
    use crate::report::Decimals;

    #[test]
    fn percentiles_of_a_thousand_samples() {
        let mut samples: Vec<u64> = (1..=1000).rev().map(|ms| ms * 1_000_000).collect();
        let l = Latency::of(&mut samples);
        assert_eq!(l.count, 1000);
        assert_eq!(l.p50_ms, Decimals(501.0));
        assert_eq!(l.p90_ms, Decimals(900.0));
        assert_eq!(l.p999_ms, Decimals(999.0));
        assert_eq!(l.max_ms, Decimals(1000.0));
    }

    #[test]
    fn no_samples_give_nulls() {
        let json = serde_json::to_string(&Latency::of(&mut [])).unwrap();
        assert_eq!(
            json,
            r#"{"count":0,"p50_ms":null,"p90_ms":null,"p99_ms":null,"p999_ms":null,"max_ms":null}"#
        );
    }
}

mod timeline_tests {
    use std::time::Duration;

    use crate::timeline::*;

    #[test]
    fn seconds_and_the_longest_silence() {
        // Silent: bucket 3, buckets 12 to 16, and from bucket 22 to the window's end (30).
        let mut buckets = vec![5; 22];
        buckets[3] = 0;
        buckets[12..17].fill(0);
        let t = Timeline::of(&buckets, Duration::from_secs(3));
        assert_eq!(t.per_second, vec![45, 25, 10]);
        assert!((t.longest_silence_s - 0.8).abs() < 1e-9, "{t:?}");
        assert!((t.longest_silence_from_s - 2.2).abs() < 1e-9, "{t:?}");
    }

    #[test]
    fn deliveries_after_the_window_do_not_count() {
        let t = Timeline::of(&[1; 30], Duration::from_secs(2));
        assert_eq!(t.per_second, vec![10, 10]);
        assert_eq!(t.longest_silence_s, 0.0);
    }
}

mod cli_tests {
    use clap::Parser;

    use crate::bench::{Bench, Kind};
    use crate::cli::*;

    fn parse(args: &str) -> Cli {
        Cli::try_parse_from(std::iter::once("chat").chain(args.split_whitespace()))
            .unwrap_or_else(|e| panic!("{args}: {e}"))
    }

    #[test]
    fn the_fanout_of_chat_sh() {
        let cli = parse(
            "fanout --clients 50 --lines 4000 --size 64 --threads 2 --addr 127.0.0.1:4000 \
             --kind broker --server-pid 77",
        );
        let Scenario::Fanout(a) = &cli.scenario else {
            panic!("{cli:?}")
        };
        assert_eq!((a.clients, a.lines, a.size, a.threads), (50, 4000, 64, 2));
        assert_eq!(a.server.addr, "127.0.0.1:4000".parse().unwrap());
        assert_eq!(
            (a.server.kind, a.server.server_pid),
            (Kind::Broker, Some(77))
        );
        assert_eq!(cli.validate(), Ok(()));
    }

    #[test]
    fn a_cluster_run_deals_the_clients_out_to_its_servers_in_turn() {
        let cli = parse(
            "fanout --clients 4 --addr 127.0.0.1:4000 --also 127.0.0.1:4001 --also 127.0.0.1:4002",
        );
        let Scenario::Fanout(a) = &cli.scenario else {
            panic!("{cli:?}")
        };
        let mut bench = Bench::new(a.server.addr, a.server.kind, 64).unwrap();
        bench.also.clone_from(&a.server.also);
        let ports: Vec<u16> = (0..5).map(|k| bench.address_of(k).port()).collect();
        assert_eq!(ports, [4000, 4001, 4002, 4000, 4001]);
    }

    #[test]
    fn the_paced_runs_of_chat_sh() {
        let cli = parse(
            "paced --clients 50 --stalled 1 --rate 5000 --duration 15 --stall-rcvbuf 4096 \
             --size 64 --addr 127.0.0.1:4000 --kind soquete --server-pid 77",
        );
        let Scenario::Paced(a) = &cli.scenario else {
            panic!("{cli:?}")
        };
        assert_eq!(
            (a.clients, a.stalled, a.stall_rcvbuf, a.size),
            (50, 1, 4096, 64)
        );
        assert_eq!(
            (a.rate, a.duration, a.warmup, a.latency),
            (5000.0, 15.0, 0.0, false)
        );
        let cli = parse("paced --clients 20 --rate 1000 --duration 11 --warmup 1 --latency");
        let Scenario::Paced(a) = &cli.scenario else {
            panic!("{cli:?}")
        };
        assert_eq!(
            (a.clients, a.stalled, a.warmup, a.latency),
            (20, 0, 1.0, true)
        );
        assert_eq!(a.server.kind, Kind::Soquete, "the default");
    }

    #[test]
    fn the_idle_run_of_chat_sh() {
        let cli = parse("idle --clients 10000 --connect-rate 1000 --hold 5 --kind ncat");
        let Scenario::Idle(a) = &cli.scenario else {
            panic!("{cli:?}")
        };
        assert_eq!((a.clients, a.connect_rate, a.hold), (10000, 1000.0, 5.0));
        assert_eq!(a.server.kind, Kind::Ncat);
        assert_eq!(a.server.server_pid, None);
    }

    #[test]
    fn what_clap_cannot_check() {
        let check = |args: &str| parse(args).validate();
        assert_eq!(
            check("fanout --threads 0"),
            Err("--threads must be at least 1".into())
        );
        assert_eq!(
            check("paced --size 29"),
            Err("--size must be at least 30".into())
        );
        assert_eq!(check("paced --size 30"), Ok(()));
        let too_many = Err("at most 9999 talking clients".into());
        assert_eq!(check("paced --clients 9999 --stalled 1"), too_many);
        assert_eq!(check("idle --clients 10000"), Ok(()));
        assert_eq!(
            check("paced --clients 10 --listeners 9990"),
            Err("at most 9999 clients in all".into())
        );
        assert_eq!(
            check("queue --size 20"),
            Err("--size must be at least 30".into())
        );
    }

    #[test]
    fn the_runs_of_limits_sh() {
        let cli = parse("fanout --clients 50 --lines 1000 --at-once --kind soquete");
        let Scenario::Fanout(a) = &cli.scenario else {
            panic!("{cli:?}")
        };
        assert!(a.at_once);
        let cli = parse("burst --holders 4 --clients 5000 --hold 3 --server-pid 9");
        let Scenario::Burst(a) = &cli.scenario else {
            panic!("{cli:?}")
        };
        assert_eq!((a.holders, a.clients, a.hold), (4, 5000, 3.0));
        let cli = parse("queue --clients 50 --size 8000 --duration 60");
        let Scenario::Queue(a) = &cli.scenario else {
            panic!("{cli:?}")
        };
        assert_eq!((a.clients, a.size, a.duration), (50, 8000, 60.0));
        assert_eq!(cli.validate(), Ok(()));
        let cli = parse("paced --clients 10 --listeners 100 --rate 1000 --resources");
        let Scenario::Paced(a) = &cli.scenario else {
            panic!("{cli:?}")
        };
        assert_eq!((a.clients, a.listeners, a.resources), (10, 100, true));
        let Scenario::Paced(a) = &parse("paced").scenario else {
            panic!()
        };
        assert_eq!((a.listeners, a.resources), (0, false), "the defaults");
    }
}

mod tally_tests {
    use crate::tally::Tally;

    #[test]
    fn notices_are_counted_by_kind_their_numbers_made_n() {
        let mut t = Tally::default();
        t.count_kind(b"* server full: 4 clients are connected (--max-clients); try again later");
        t.count_kind(b"* server full: 4 clients are connected (--max-clients); try again later");
        t.count_kind(b"* guest-12 joined");
        t.count_kind(b"* guest-3 joined");
        let kinds: Vec<(&str, u64)> = t
            .notice_kinds
            .iter()
            .map(|(k, &n)| (k.as_str(), n))
            .collect();
        assert_eq!(
            kinds,
            [
                ("* guest-N joined", 2),
                (
                    "* server full: N clients are connected (--max-clients); try again later",
                    2
                )
            ]
        );
    }

    #[test]
    fn notice_kinds_beyond_twenty_count_as_other() {
        let mut t = Tally::default();
        for k in 0..25u8 {
            t.count_kind(&[b'*', b' ', b'a' + k]);
        }
        assert_eq!(t.notice_kinds.len(), 21);
        assert_eq!(t.notice_kinds["other"], 5);
    }
}

mod sampler_tests {
    use crate::sampler::Watch;

    #[test]
    fn a_watch_without_a_server_reads_nothing() {
        let r = Watch::start(None).finish();
        assert!(r.idle.is_none() && r.steady.is_none() && r.end.is_none());
        assert_eq!(r.peak.samples, 0);
    }

    #[test]
    fn a_watched_process_has_its_landmarks_and_peaks() {
        // This test's own process: it has memory, threads (the sampler's at least) and fds.
        let mut watch = Watch::start(Some(std::process::id()));
        watch.steady();
        let r = watch.finish();
        let (idle, steady, end) = (r.idle.unwrap(), r.steady.unwrap(), r.end.unwrap());
        assert!(idle.rss_kib > 0 && idle.threads >= 1, "{r:?}");
        assert!(steady.threads >= 2, "the sampler's thread runs: {r:?}");
        assert!(r.peak.samples >= 1, "{r:?}");
        assert!(
            r.peak.rss_kib >= end.rss_kib && r.peak.threads >= end.threads,
            "{r:?}"
        );
        assert!(r.peak.fds >= 3 && r.end_fds.unwrap() >= 3, "{r:?}");
    }
}

mod tls_tests {
    use std::io::Write;
    use std::net::TcpListener;
    use std::sync::{Arc, mpsc};
    use std::time::Duration;

    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use rustls::{ServerConfig, ServerConnection, StreamOwned};

    use crate::bench::Kind;
    use crate::cli::{IdleArgs, ServerArgs};

    /// A TLS server for one client: says whether the handshake finished, then sends a line and
    /// holds the connection until the test's end.
    fn one_tls_client() -> (std::net::SocketAddr, mpsc::Receiver<bool>) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (told, heard) = mpsc::channel();
        std::thread::spawn(move || {
            let (socket, _) = listener.accept().unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let session = ServerConnection::new(Arc::new(config)).unwrap();
            let mut tls = StreamOwned::new(session, socket);
            let mut finished = true;
            while tls.conn.is_handshaking() {
                if tls.conn.complete_io(&mut tls.sock).is_err() {
                    finished = false;
                    break;
                }
            }
            let _ = told.send(finished);
            if finished {
                let _ = tls.write_all(b"* welcome\n");
            }
            std::thread::sleep(Duration::from_secs(10));
        });
        (addr, heard)
    }

    #[test]
    fn idle_clients_speak_tls_when_told() {
        let (addr, heard) = one_tls_client();
        let server = ServerArgs {
            addr,
            also: Vec::new(),
            kind: Kind::Ncat,
            server_pid: None,
            tls: true,
        };
        let args = IdleArgs {
            server,
            clients: 1,
            connect_rate: 1000.0,
            hold: 0.0,
        };
        let report = crate::idle::run(&args).unwrap();
        assert_eq!(heard.recv_timeout(Duration::from_secs(10)), Ok(true));
        assert_eq!(
            (report.open_connected, report.lines_in),
            (1, 1),
            "{report:?}"
        );
    }
}
