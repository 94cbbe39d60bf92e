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
