//! The files `serve` keeps and reads for TLS, tried as another user of the machine would: a
//! kept key in a folder others can write is refused (as ssh refuses such keys), a CA's key others
//! can read is warned about; a FIFO, a device or a huge file given as a certificate is refused in
//! one line, at start and on reload, never read for ever; `--tls-name` is a DNS name or an
//! address; a half-written PEM is said in words.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::support::process::{Running, lines_until, soquete, wait_line};
use crate::support::serve::{Serve, console_line, listening_on, type_at_console};
use crate::support::tls::{Certs, Pair, fingerprint_of};
use crate::support::{LIMIT, is_root};

/// `soquete serve --port 0 ARGS` that is expected not to start: its exit code, what it printed
/// on stdout, and its stderr lines (killed after [`LIMIT`]: a code of None).
fn refused(args: &[&str]) -> (Option<i32>, String, Vec<String>) {
    let output = soquete()
        .args(["serve", "--port", "0"])
        .args(args)
        .timeout(LIMIT)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr.lines().map(str::to_string).collect(),
    )
}

/// Refused at start with exit code `code` and one line on stderr, which it returns.
#[track_caller]
fn one_line_refusal(args: &[&str], code: i32) -> String {
    let (status, stdout, stderr) = refused(args);
    assert_eq!(status, Some(code), "{args:?}: {stderr:?}");
    assert!(stdout.is_empty(), "nothing listens: {stdout}");
    assert_eq!(stderr.len(), 1, "{stderr:?}");
    stderr[0].clone()
}

/// A server with `--tls-cert` and `--tls-key` (a new certificate), its console a pipe, looking
/// at its files every `reload_ms`, once it has printed its certificate.
fn files_server(reload_ms: &str) -> (Certs, Pair, Running) {
    let certs = Certs::new();
    let pair = certs.self_signed("server", &["localhost"]);
    let first = fingerprint_of(&pair.cert);
    let (server, _) = Serve::new(&["--tls-cert", text(&pair.cert), "--tls-key", text(&pair.key)])
        .env("SOQUETE_TLS_RELOAD_MS", reload_ms)
        .console()
        .start();
    console_line(&server, |line| line.contains(&first));
    (certs, pair, server)
}

/// The fingerprint a TLS server printed at start.
fn printed_fingerprint(server: &Running) -> String {
    let line = console_line(server, |line| line.starts_with("tls: certificate "));
    line.split_whitespace().nth(2).unwrap().to_string()
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(made.success(), "mkfifo {}", path.display());
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn a_kept_key_another_user_could_swap_or_read_is_refused_with_the_fix() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("st");
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    chmod(&dir, 0o777);
    chmod(&tls, 0o777);
    let args = ["--tls", "--state-dir", text(&dir)];
    let said = one_line_refusal(&args, 1);
    assert!(
        said.contains(&format!("{} is writable by", tls.display()))
            && said.contains(&format!("chmod 700 {}", tls.display())),
        "{said}"
    );
    assert!(
        std::fs::read_dir(&tls).unwrap().next().is_none(),
        "no key written there"
    );

    chmod(&tls, 0o700);
    // The state folder itself: whoever may rename what it holds may put a tls folder of their
    // own, with their own key, in place of the server's.
    let said = one_line_refusal(&args, 1);
    assert!(
        said.contains(&format!("{} is writable by", dir.display()))
            && said.contains(&format!("chmod 700 {}", dir.display())),
        "{said}"
    );
    chmod(&dir, 0o1777);
    let (mut server, _) = Serve::new(&args).start();
    assert!(server.interrupt(LIMIT).is_some(), "sticky, as /tmp: served");
    chmod(&dir, 0o755);
    let (mut server, _) = Serve::new(&args).start();
    let made = printed_fingerprint(&server);
    assert!(server.interrupt(LIMIT).is_some());

    let key = tls.join("server-key.pem");
    chmod(&key, 0o644);
    let said = one_line_refusal(&args, 1);
    assert!(
        said.contains(&format!("{} is readable by", key.display()))
            && said.contains(&format!("chmod 600 {}", key.display())),
        "{said}"
    );
    chmod(&key, 0o600);
    chmod(&tls, 0o770);
    let said = one_line_refusal(&args, 1);
    assert!(said.contains("writable by its group"), "{said}");
    chmod(&tls, 0o700);

    if is_root() {
        // Another user's folder, however private, is theirs to fill.
        std::os::unix::fs::chown(&tls, Some(65534), None).unwrap();
        let said = one_line_refusal(&args, 1);
        assert!(
            said.contains(&format!("{} belongs to user 65534", tls.display())),
            "{said}"
        );
        std::os::unix::fs::chown(&tls, Some(0), None).unwrap();
    }
    let (server, _) = Serve::new(&args).start();
    assert_eq!(
        printed_fingerprint(&server),
        made,
        "the kept certificate, once its folder is fixed"
    );
}

#[test]
fn a_ca_key_others_can_read_is_warned_about_at_start_and_on_reload_but_served() {
    let certs = Certs::new();
    let Pair { cert, key } = certs.self_signed("server", &["localhost"]);
    chmod(&key, 0o644);
    let mut server = Running::start_with_stdin(&[
        "serve",
        "--port",
        "0",
        "--tls-cert",
        text(&cert),
        "--tls-key",
        text(&key),
    ]);
    let errors = server.stderr_lines();
    listening_on(&server);
    let warned =
        wait_line(&errors, LIMIT, |line| line.contains("warning")).expect("a warning at start");
    assert!(
        warned.contains(&format!("{} is readable by others", key.display()))
            && warned.contains("chmod"),
        "{warned}"
    );
    type_at_console(&mut server, "/reload");
    let said = lines_until(&server.lines, |line| line.starts_with("tls: warning"));
    assert!(said.last().unwrap().contains(text(&key)), "{said:?}");

    // Readable by its group only (a CA's ssl-cert group): no warning.
    chmod(&key, 0o640);
    type_at_console(&mut server, "/reload");
    type_at_console(&mut server, "/help");
    let said = lines_until(&server.lines, |line| line.starts_with("/reload "));
    assert!(
        !said.iter().any(|line| line.contains("warning")),
        "{said:?}"
    );
}

#[test]
fn certificate_files_are_regular_files_of_at_most_1_mib_and_links_to_them_work() {
    let certs = Certs::new();
    let Pair { cert, key } = certs.self_signed("server", &["localhost"]);
    let fifo = certs.dir.path().join("fifo.pem");
    mkfifo(&fifo);
    let said = one_line_refusal(&["--tls-cert", text(&fifo), "--tls-key", text(&key)], 1);
    assert!(
        said.contains(text(&fifo)) && said.contains("not a regular file (a FIFO)"),
        "{said}"
    );
    let said = one_line_refusal(&["--tls-cert", text(&cert), "--tls-key", "/dev/zero"], 1);
    assert!(
        said.contains("/dev/zero") && said.contains("not a regular file"),
        "{said}"
    );
    let folder = certs.dir.path();
    let said = one_line_refusal(&["--tls-cert", text(folder), "--tls-key", text(&key)], 1);
    assert!(said.contains("not a regular file (a directory)"), "{said}");
    let huge = certs.dir.path().join("huge.pem");
    let mut pem = std::fs::read(&cert).unwrap();
    pem.resize(1024 * 1024 + 1, b'\n');
    std::fs::write(&huge, pem).unwrap();
    let said = one_line_refusal(&["--tls-cert", text(&huge), "--tls-key", text(&key)], 1);
    assert!(
        said.contains(text(&huge)) && said.contains("larger than 1 MiB"),
        "{said}"
    );

    // Let's Encrypt's live/ names are links to the files in archive/.
    let live = certs.dir.path().join("live");
    std::fs::create_dir(&live).unwrap();
    std::os::unix::fs::symlink(&cert, live.join("fullchain.pem")).unwrap();
    std::os::unix::fs::symlink(&key, live.join("privkey.pem")).unwrap();
    let (server, _) = Serve::new(&[
        "--tls-cert",
        text(&live.join("fullchain.pem")),
        "--tls-key",
        text(&live.join("privkey.pem")),
    ])
    .start();
    let line = console_line(&server, |line| line.starts_with("tls: certificate "));
    assert!(line.contains(&fingerprint_of(&cert)), "{line}");
}

#[test]
fn a_fifo_or_a_huge_file_on_reload_keeps_the_old_certificate_and_later_renewals_are_served() {
    let (certs, Pair { cert, .. }, mut server) = files_server("50");
    // Each new file is made aside and renamed into place, so the watcher sees it whole.
    let aside = certs.dir.path().join("aside");
    mkfifo(&aside);
    std::fs::rename(&aside, &cert).unwrap();
    let said = console_line(&server, |line| line.starts_with("tls: "));
    assert!(
        said.contains("old certificate is still served") && said.contains("(a FIFO)"),
        "the watcher: {said}"
    );
    type_at_console(&mut server, "/reload");
    let said = console_line(&server, |line| line.starts_with("tls: "));
    assert!(said.contains("(a FIFO)"), "the console's /reload: {said}");

    std::fs::write(&aside, vec![b'\n'; 2 * 1024 * 1024]).unwrap();
    std::fs::rename(&aside, &cert).unwrap();
    let said = console_line(&server, |line| line.starts_with("tls: "));
    assert!(
        said.contains("still served") && said.contains("larger than 1 MiB"),
        "{said}"
    );

    certs.self_signed("server", &["localhost"]);
    let second = fingerprint_of(&cert);
    console_line(&server, |line| {
        line.starts_with("tls: new certificate") && line.contains(&second)
    });
}

#[test]
fn a_tls_name_that_is_no_dns_name_nor_address_is_a_usage_error_shown_neutralised() {
    let state = tempfile::tempdir().unwrap();
    for name in [
        "a\nb.example",
        "x\u{1b}[31m.example",
        "bad name",
        "a..example",
    ] {
        let args = [
            "--tls",
            "--tls-name",
            name,
            "--state-dir",
            text(state.path()),
        ];
        let said = one_line_refusal(&args, 64);
        assert!(
            said.contains("--tls-name") && said.contains("DNS name"),
            "{said}"
        );
        assert!(!said.contains('\u{1b}'), "no raw escape: {said:?}");
    }
    let said = one_line_refusal(&["--tls", "--tls-name", "x\u{1b}[31m.example"], 64);
    assert!(said.contains(r"x\u{1b}[31m.example"), "{said}");
    assert!(
        std::fs::read_dir(state.path()).unwrap().next().is_none(),
        "nothing kept"
    );
}

#[test]
fn a_half_written_certificate_is_said_in_words() {
    let (_certs, Pair { cert, key }, mut server) = files_server("3600000");
    let pem = std::fs::read(&cert).unwrap();
    std::fs::write(&cert, &pem[..pem.len() / 2]).unwrap();
    type_at_console(&mut server, "/reload");
    let said = console_line(&server, |line| line.starts_with("tls: "));
    assert!(
        said.contains("missing the end marker of a CERTIFICATE section") && !said.contains("[67"),
        "{said}"
    );
    let said = one_line_refusal(&["--tls-cert", text(&cert), "--tls-key", text(&key)], 64);
    assert!(
        said.contains("missing the end marker of a CERTIFICATE section"),
        "{said}"
    );
}
