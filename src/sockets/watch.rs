//! `soquete sockets --watch`: redraws in place, marking sockets that appeared (+) and closed (-),
//! and with `-i` each connection's throughput since the previous frame and whether it is stuck.

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

use crossterm::{cursor, execute, terminal};
use unicode_width::UnicodeWidthChar;

use super::collect::{self, Request};
use super::flow;
use super::model::{Identity, SocketRow};
use super::query::Query;
use super::sort::sort_rows;
use super::view::{self, Change, Columns};
use crate::error::{Context, Error, Result};
use crate::output::{self, Style};

/// Redraws until Ctrl-C, then restores the terminal and returns Ok. With `-i`, each
/// connection's throughput since the previous frame, and `stuck` where it is.
pub fn run(query: &Query, request: &Request, interval: Duration) -> Result<()> {
    let (sort, info) = (query.sort, query.info);
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
    ctrlc::set_handler(move || {
        let _ = stop_tx.try_send(());
    })
    .map_err(|err| Error::Unsupported(format!("cannot catch Ctrl-C: {err}")))?;

    let mut screen = Screen::open().context("writing output")?;
    let mut previous: Vec<SocketRow> = Vec::new();
    let mut previous_at = Instant::now();
    let mut first = true;
    let mut warned = false;
    loop {
        let mut snapshot = collect::snapshot(request)?;
        let taken_at = Instant::now();
        sort_rows(&mut snapshot.rows, sort);
        let flows = info.then(|| flow::flows(&previous, &snapshot.rows, taken_at - previous_at));
        let notes = snapshot.notes();
        if !warned && !screen.is_terminal {
            for note in &notes {
                eprintln!("{note}");
            }
            warned = true;
        }
        let columns = Columns {
            flows: flows.as_deref(),
            ..Columns::of(query, request)
        };
        let (mut frame, rows) = frame(
            &columns,
            &previous,
            &snapshot.rows,
            first,
            interval,
            screen.style(),
        );
        // On the alternate screen a line on stderr would be drawn over at once: the note is part
        // of every frame instead, under the header.
        if screen.is_terminal && !notes.is_empty() {
            let header_end = frame.find('\n').map_or(frame.len(), |at| at + 1);
            frame.insert_str(header_end, &(notes.join("\n") + "\n"));
        }
        screen.draw(&frame, rows).context("writing output")?;
        previous = snapshot.rows;
        previous_at = taken_at;
        first = false;
        if stop_rx.recv_timeout(interval).is_ok() {
            return Ok(());
        }
    }
}

/// One frame: a header line with counts, then the table with marks; and how many rows the
/// table has.
fn frame(
    columns: &Columns,
    previous: &[SocketRow],
    current: &[SocketRow],
    first: bool,
    interval: Duration,
    style: Style,
) -> (String, usize) {
    let before: HashSet<Identity> = previous.iter().map(SocketRow::identity).collect();
    let now: HashSet<Identity> = current.iter().map(SocketRow::identity).collect();
    let mut rows: Vec<SocketRow> = current.to_vec();
    let mut changes: Vec<Change> = current
        .iter()
        .map(|row| match first || before.contains(&row.identity()) {
            true => Change::Same,
            false => Change::Appeared,
        })
        .collect();
    let appeared = changes.iter().filter(|c| **c == Change::Appeared).count();
    let closed: Vec<&SocketRow> = previous
        .iter()
        .filter(|row| !now.contains(&row.identity()))
        .collect();
    for row in &closed {
        rows.push((*row).clone());
        changes.push(Change::Closed);
    }
    let header = format!(
        "Every {:.1}s  {}  total {}  (+{} -{})  {}\n",
        interval.as_secs_f64(),
        clock(),
        current.len(),
        appeared,
        closed.len(),
        view::state_counts(current),
    );
    let columns = Columns {
        changes: Some(&changes),
        ..*columns
    };
    let mut table = view::socket_table(&rows, &columns);
    // Redrawn in place: what does not fit is left out whole rather than cut at the edge.
    // With -i the last column is the `stuck` mark: it stays.
    table.never_overflow(columns.flows.is_some());
    (
        header + &output::render_table(&table, style),
        table.row_count(),
    )
}

/// The lines of `frame` (whose table has `rows` rows, one line each, at its end) that fit in
/// `room` lines: all of them, or as many as fit but one, then `… N more (of M)`.
fn fit_to_screen(frame: &str, rows: usize, room: usize) -> Vec<Cow<'_, str>> {
    let lines: Vec<&str> = frame.lines().collect();
    if lines.len() <= room {
        return lines.into_iter().map(Cow::Borrowed).collect();
    }
    // A bordered table ends with its bottom border, a plain one with its last row.
    let after_rows = usize::from(lines.last().is_some_and(|line| line.starts_with('└')));
    let first_row = lines.len().saturating_sub(after_rows + rows);
    let shown = room.saturating_sub(1).max(1);
    let rows_shown = shown.saturating_sub(first_row).min(rows);
    let mut fitted: Vec<Cow<str>> = lines[..shown].iter().map(|&l| Cow::Borrowed(l)).collect();
    fitted.push(Cow::Owned(format!(
        "… {} more (of {rows})",
        rows - rows_shown
    )));
    fitted
}

/// Local time of day, for the header.
fn clock() -> String {
    chrono::Local::now().format("%H:%M:%S").to_string()
}

/// The terminal while watching: the alternate screen, restored on drop (so also on errors).
struct Screen {
    is_terminal: bool,
}

impl Screen {
    fn open() -> io::Result<Screen> {
        let is_terminal = std::io::stdout().is_terminal();
        if is_terminal {
            // A row wider than the screen is clipped at its edge, as top and watch do, rather
            // than wrapped over the rows below.
            execute!(
                std::io::stdout(),
                terminal::EnterAlternateScreen,
                terminal::DisableLineWrap,
                cursor::Hide
            )?;
        }
        Ok(Screen { is_terminal })
    }

    fn style(&self) -> Style {
        Style::for_stdout()
    }

    /// Draws `frame`, whose table has `rows` rows.
    fn draw(&mut self, frame: &str, rows: usize) -> io::Result<()> {
        let mut out = std::io::stdout().lock();
        if self.is_terminal {
            let height = terminal::size().map_or(usize::MAX, |(_, rows)| usize::from(rows));
            execute!(
                out,
                cursor::MoveTo(0, 0),
                terminal::Clear(terminal::ClearType::All)
            )?;
            // Keep within the screen so the header never scrolls away; lines end in CR LF
            // because the cursor may be anywhere after the clear.
            let room = height.saturating_sub(1).max(1);
            let width = terminal::size().map_or(usize::MAX, |(columns, _)| usize::from(columns));
            for line in fit_to_screen(frame, rows, room) {
                write!(out, "{}\r\n", clip(&line, width))?;
            }
        } else {
            writeln!(out, "{frame}")?;
        }
        out.flush()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        if self.is_terminal {
            let _ = execute!(
                std::io::stdout(),
                cursor::Show,
                terminal::EnableLineWrap,
                terminal::LeaveAlternateScreen
            );
        }
    }
}

/// `line` cut to `width` terminal columns: for the header and the notes (the table leaves out
/// what does not fit whole).
fn clip(line: &str, width: usize) -> &str {
    let mut used = 0;
    for (at, character) in line.char_indices() {
        used += character.width().unwrap_or(0);
        if used > width {
            return &line[..at];
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_clipped_to_the_screen_by_display_width() {
        assert_eq!(clip("Every 1s  total 3", 8), "Every 1s");
        assert_eq!(clip("│漢字│", 4), "│漢");
        assert_eq!(clip("short", 80), "short");
    }

    #[test]
    fn a_frame_taller_than_the_screen_ends_with_how_many_rows_it_left_out() {
        let bordered = "Every 1s\n┌─┐\n│h│\n╞═╡\n│a│\n│b│\n│c│\n└─┘\n";
        assert_eq!(fit_to_screen(bordered, 3, 8).len(), 8, "fits whole");
        assert_eq!(
            fit_to_screen(bordered, 3, 6),
            ["Every 1s", "┌─┐", "│h│", "╞═╡", "│a│", "… 2 more (of 3)"]
        );
        let plain = "Every 1s\nh\na\nb\nc\n";
        assert_eq!(
            fit_to_screen(plain, 3, 3),
            ["Every 1s", "h", "… 3 more (of 3)"]
        );
    }
}
