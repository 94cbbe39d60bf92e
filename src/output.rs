//! The only place that prints rows: a table for terminals, plain aligned columns for pipes, and
//! JSON, all over the same plain data.

use std::io::Write;

use comfy_table::{ContentArrangement, Table as ComfyTable, presets};
use serde::Serialize;

use crate::error::Result;

/// Rows of text cells under a header, ready to print.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// How a table is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Borders, fitted to the terminal width (`width` columns, when known).
    Terminal { width: Option<u16> },
    /// Space-aligned columns without borders, one row per line: for pipes, `grep`, `awk`.
    Plain,
}

impl Style {
    /// Terminal style when stdout is a terminal, plain otherwise.
    pub fn for_stdout() -> Style {
        use std::io::IsTerminal;
        if std::io::stdout().is_terminal() {
            Style::Terminal {
                width: crossterm::terminal::size().ok().map(|(columns, _)| columns),
            }
        } else {
            Style::Plain
        }
    }
}

/// Renders `table` in `style` as text (ending in a newline unless empty).
pub fn render_table(table: &Table, style: Style) -> String {
    match style {
        Style::Terminal { width } => {
            let mut comfy = ComfyTable::new();
            comfy
                .load_style(presets::UTF8_FULL_CONDENSED)
                .set_content_arrangement(ContentArrangement::Dynamic)
                .set_header(&table.header);
            if let Some(width) = width {
                comfy.set_width(width);
            }
            for row in &table.rows {
                comfy.add_row(row);
            }
            format!("{comfy}\n")
        }
        Style::Plain => render_plain(table),
    }
}

/// Space-aligned columns; the last column is not padded, so lines carry no trailing blanks.
fn render_plain(table: &Table) -> String {
    let columns = table.header.len();
    let mut widths = vec![0usize; columns];
    for row in std::iter::once(&table.header).chain(&table.rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in std::iter::once(&table.header).chain(&table.rows) {
        let mut line = String::new();
        for (index, cell) in row.iter().enumerate() {
            if index + 1 == columns {
                line.push_str(cell);
            } else {
                let pad = widths[index] - cell.chars().count();
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad + 2));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// Writes `value` as pretty JSON followed by a newline.
pub fn write_json<T: Serialize + ?Sized>(out: &mut dyn Write, value: &T) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        Table {
            header: vec!["Proto".into(), "Local Address".into(), "State".into()],
            rows: vec![
                vec!["tcp".into(), "127.0.0.1:22".into(), "LISTEN".into()],
                vec!["udp".into(), "[::1]:53".into(), "-".into()],
            ],
        }
    }

    #[test]
    fn plain_columns_line_up_without_borders() {
        let text = render_table(&sample(), Style::Plain);
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines[0], "Proto  Local Address  State");
        assert_eq!(lines[1], "tcp    127.0.0.1:22   LISTEN");
        assert_eq!(lines[2], "udp    [::1]:53       -");
        for line in &lines[1..] {
            assert_eq!(
                line.split_whitespace().count(),
                3,
                "awk sees three fields: {line}"
            );
        }
    }

    #[test]
    fn terminal_table_fits_the_width() {
        let text = render_table(&sample(), Style::Terminal { width: Some(40) });
        assert!(text.contains("127.0.0.1:22"));
        assert!(
            text.lines().all(|line| line.chars().count() <= 40),
            "{text}"
        );
    }

    #[test]
    fn json_ends_with_a_newline() {
        let mut out = Vec::new();
        write_json(&mut out, &vec![1, 2]).unwrap();
        assert!(String::from_utf8(out).unwrap().ends_with("]\n"));
    }
}
