//! Man pages and shell completions, both generated from the clap definitions in `cli/`.
//!
//! The man pages are committed under `man/`; a test regenerates them and fails when the
//! committed copies are stale (`SOQUETE_BLESS=1 cargo test man_pages` rewrites them).

use std::io::Write;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::{Context, Result};

/// Writes the completion script for `shell` to `out`.
pub fn write_completions(shell: clap_complete::Shell, out: &mut dyn Write) -> Result<()> {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "soquete", out);
    out.flush().context("writing output")
}

/// Every man page soquete ships, as (file name, roff text): `soquete.1` and one per subcommand.
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    let mut root = Cli::command();
    root.build();
    let mut pages = vec![render("soquete.1", root.clone())];
    for sub in root
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
    {
        let name = format!("soquete-{}", sub.get_name());
        let page = sub.clone().name(name.clone()).bin_name(name.clone());
        pages.push(render(&format!("{name}.1"), page));
    }
    pages
}

fn render(file: &str, command: clap::Command) -> (String, Vec<u8>) {
    let mut text = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut text)
        .expect("rendering into a Vec cannot fail");
    (file.to_string(), text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn man_pages_are_fresh() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
        let bless = std::env::var_os("SOQUETE_BLESS").is_some();
        let mut stale = Vec::new();
        for (file, text) in man_pages() {
            let path = dir.join(&file);
            if bless {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &text).unwrap();
            } else if std::fs::read(&path).ok().as_deref() != Some(text.as_slice()) {
                stale.push(file);
            }
        }
        assert!(
            stale.is_empty(),
            "man pages out of date: {stale:?}; run `SOQUETE_BLESS=1 cargo test man_pages` and commit man/"
        );
    }

    #[test]
    fn completions_exist_for_every_shell() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
            clap_complete::Shell::PowerShell,
        ] {
            let mut out = Vec::new();
            write_completions(shell, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(
                text.contains("sockets"),
                "{shell:?} completion names the subcommands"
            );
        }
    }
}
