//! The command line as a whole: help, version, completions, usage errors.

use crate::support::LIMIT;
use crate::support::process::soquete;

#[test]
fn help_lists_the_four_subcommands() {
    let output = soquete().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for sub in ["sockets", "serve", "chat", "probe"] {
        assert!(help.contains(sub), "--help mentions {sub}:\n{help}");
    }
}

#[test]
fn unknown_flag_is_one_line_and_exit_64() {
    let output = soquete().args(["sockets", "--bogus"]).output().unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("soquete: "), "{stderr}");
    assert!(stderr.contains("--bogus"), "{stderr}");
}

#[test]
fn no_subcommand_is_a_usage_error_with_the_help_on_stderr() {
    let output = soquete().output().unwrap();
    assert_eq!(output.status.code(), Some(64), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("probe"),
        "the help lists the subcommands:\n{stderr}"
    );
}

/// `serve --ddns NAME` checks NAME as `probe` does, before anything listens, and never prints a
/// terminal escape it was given.
#[test]
fn a_ddns_name_that_is_no_host_name_is_a_usage_error() {
    for name in ["bad name!", "x\u{1b}[31mRED.test", "a..test"] {
        let mut server = soquete();
        server.args(["serve", "--port", "0", "--ddns", name]);
        server.timeout(LIMIT);
        let output = server.output().unwrap();
        assert_eq!(output.status.code(), Some(64), "{name:?}: {output:?}");
        assert!(output.stdout.is_empty(), "nothing listens: {output:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("host name"), "{stderr}");
        assert!(!stderr.contains('\u{1b}'), "no raw escape: {stderr:?}");
    }
}

#[test]
fn bash_completion_is_printed() {
    let output = soquete().args(["completions", "bash"]).output().unwrap();
    assert!(output.status.success());
    let script = String::from_utf8(output.stdout).unwrap();
    assert!(script.contains("_soquete"), "{script}");
}

#[test]
fn a_rate_limit_no_reader_could_keep_is_a_usage_error_before_anything_listens() {
    for rate in ["1e-300/s", "0.001/s", "1e12/s", "inf/s", "NaN/s"] {
        let output = soquete()
            .args(["serve", "--port", "0", "--rate-limit", rate])
            .timeout(LIMIT)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(64), "{rate}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("soquete: ") && stderr.contains("--rate-limit"),
            "{stderr}"
        );
        assert!(output.stdout.is_empty(), "nothing listened: {output:?}");
    }
}

/// `::1:80` reads as the address ::1:80 or as [::1]:80: every subcommand refuses it alike, in
/// one line (exit 64) that gives the bracketed form, before anything is sent or listens.
#[test]
fn an_ipv6_address_with_a_port_needs_brackets_everywhere() {
    let run = |args: &[&str]| {
        let output = soquete().args(args).timeout(LIMIT).output().unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(64), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        stderr
    };
    let probe = run(&["probe", "::1:80"]);
    assert!(probe.contains("[::1]:80"), "{probe}");
    assert_eq!(run(&["chat", "::1:80"]), probe);
    let serve = ["serve", "--port", "0", "--ddns", "ddns.test"];
    for (flag, fix) in [("--ddns-authority", "[::1]:53"), ("--stun", "[::1]:53")] {
        let stderr = run(&[&serve[..], &[flag, "::1:53"]].concat());
        assert!(stderr.contains(fix), "{flag}: {stderr}");
        assert!(stderr.contains("needs brackets"), "{flag}: {stderr}");
    }
    let probe_server = run(&["probe", "127.0.0.1:1", "--server", "::1:53"]);
    assert!(probe_server.contains("[::1]:53"), "{probe_server}");
}
