//! [`Tmux`]: the interactive chat client on a real terminal, a tmux pane, typed into with
//! `send-keys` and read back with `capture-pane`.

use std::process::Command;

use super::process::soquete_path;
use super::{LIMIT, poll, require, tool};

/// A tmux server on a socket of its own, with one pane named `chat`; killed when dropped.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// A 100×20 pane running `command` in a shell, which stays on screen after it exits; None
    /// (the test is skipped, or fails under CI) without tmux.
    pub fn start(name: &str, command: &str) -> Option<Tmux> {
        Tmux::start_sized(name, command, 100, 20)
    }

    /// [`Tmux::start`] in a pane `width` columns wide and `height` lines high.
    pub fn start_sized(name: &str, command: &str, width: u16, height: u16) -> Option<Tmux> {
        if !require(tool("tmux"), "tmux") {
            return None;
        }
        let tmux = Tmux {
            socket: format!("soquete-{name}-{}", std::process::id()),
        };
        // The pane must be told to stay after its command ends before that command starts: a
        // quick one (a table, then `echo`) could otherwise end first, taking the pane, the
        // session and the tmux server with it, and leave an empty screen. So the pane starts
        // with a placeholder, and `command` replaces it once the option is set.
        tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "chat",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "sleep 600",
        ]);
        tmux.run(&["set-option", "-t", "chat", "remain-on-exit", "on"]);
        tmux.run(&["respawn-pane", "-k", "-t", "chat", command]);
        Some(tmux)
    }

    /// Runs a tmux command against this server; returns what it printed.
    pub fn run(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Types `text` as it is (no key names).
    pub fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "chat", "-l", text]);
    }

    /// Presses the named keys (`Enter`, `C-d`, …) in turn.
    pub fn press(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "chat"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// The pane's visible lines, without trailing blank ones.
    pub fn screen(&self) -> Vec<String> {
        let text = self.run(&["capture-pane", "-p", "-t", "chat"]);
        let mut lines: Vec<String> = text.lines().map(|l| l.trim_end().to_string()).collect();
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        lines
    }

    /// The pane's lines as printed: a line the terminal wrapped at its edge is joined back.
    pub fn screen_joined(&self) -> Vec<String> {
        let text = self.run(&["capture-pane", "-p", "-J", "-t", "chat"]);
        text.lines().map(|l| l.trim_end().to_string()).collect()
    }

    /// Looks at the screen until `wanted` holds (within [`LIMIT`]); returns it, or panics with
    /// the screen, saying it waited for `what`.
    pub fn wait_screen(&self, what: &str, wanted: impl Fn(&[String]) -> bool) -> Vec<String> {
        poll(LIMIT, || {
            Some(self.screen()).filter(|screen| wanted(screen))
        })
        .unwrap_or_else(|| panic!("waiting for {what}: {:#?}", self.screen()))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

/// `soquete chat ARGS` in a shell that then reports the exit status (tmux itself may be late to
/// reap its child).
pub fn in_shell(args: &[&str]) -> String {
    format!(
        "{} chat {}; echo \"exit status $?\"",
        soquete_path().display(),
        args.join(" ")
    )
}

/// The screen's line at which `wanted` is, panicking with the screen if it is not there.
pub fn line_of(screen: &[String], wanted: &str) -> usize {
    screen
        .iter()
        .position(|line| line == wanted)
        .unwrap_or_else(|| panic!("no line {wanted:?}: {screen:#?}"))
}
