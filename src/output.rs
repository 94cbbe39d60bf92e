//! The only place that prints rows: a table for terminals, plain aligned columns for pipes, and
//! JSON, all over the same plain data.

use std::io::Write;

use comfy_table::{ContentArrangement, Table as ComfyTable, presets};
use serde::Serialize;
use unicode_width::UnicodeWidthStr;

use crate::error::{Context, Result};

/// Rows of text cells under a header, ready to print. Cells live in one text buffer, so a table
/// of 20,000 sockets costs a handful of allocations, not 200,000.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    header: Vec<String>,
    text: String,
    /// Where each cell ends in `text`; cells fill rows left to right.
    ends: Vec<u32>,
    /// The order rows are printed in, when not the order they were added in.
    order: Option<Vec<u32>>,
    /// On a terminal, one line per row: never wrap a cell; these columns go first, in this
    /// order, when the terminal is too narrow (see [`Table::one_line_per_row`]).
    one_line: Option<Vec<usize>>,
    /// With `one_line`, on a screen redrawn in place: columns that would overflow the terminal
    /// are left out whole, from the right, rather than cut at its edge; `Some(true)` keeps the
    /// last column (a mark) all the same.
    never_overflow: Option<bool>,
    /// Print no header line.
    no_header: bool,
}

impl Table {
    /// An empty table with these column headers.
    pub fn new<I, S>(header: I) -> Table
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Table {
            header: header.into_iter().map(Into::into).collect(),
            text: String::new(),
            ends: Vec::new(),
            order: None,
            one_line: None,
            never_overflow: None,
            no_header: false,
        }
    }

    /// On a terminal, every row on one line, as `ss` prints: a number or an address is never
    /// wrapped or cut. When the bordered table is wider than the terminal, the `expendable`
    /// columns are left out (in this order) until it fits; if it still does not, the rows are
    /// printed plain (no borders) and a line longer than the terminal overflows.
    pub fn one_line_per_row(&mut self, expendable: Vec<usize>) {
        self.one_line = Some(expendable);
    }

    /// With [`Table::one_line_per_row`], for a screen redrawn in place, where a long line cannot
    /// overflow: when even plain rows are too wide, the columns that do not fit are left out
    /// whole, from the right (never fewer than one), but for the last one if `keep_last`.
    pub fn never_overflow(&mut self, keep_last: bool) {
        self.never_overflow = Some(keep_last);
    }

    /// Prints the rows without the header line (`ss --no-header`).
    pub fn without_header(&mut self) {
        self.no_header = true;
    }

    /// The same table with only the columns `keep` (indices, in order).
    fn only_columns(&self, keep: &[usize]) -> Table {
        let header = keep.iter().map(|&column| self.header[column].clone());
        let mut table = Table::new(header);
        table.no_header = self.no_header;
        for index in 0..self.row_count() {
            let cells: Vec<&str> = self.row_cells(index).collect();
            for &column in keep {
                table.text(cells[column]);
            }
        }
        table.order = self.order.clone();
        table
    }

    /// Widest cell of each column, the header included (when printed).
    fn column_widths(&self) -> Vec<usize> {
        let columns = self.columns();
        let mut widths: Vec<usize> = match self.no_header {
            true => Vec::new(),
            false => self.header.iter().map(|h| width_of(h)).collect(),
        };
        widths.resize(columns, 0);
        let complete = self.row_count() * columns;
        let mut column = 0;
        for cell in self.cell_widths().take(complete) {
            widths[column] = widths[column].max(cell);
            column = if column + 1 == columns { 0 } else { column + 1 };
        }
        widths
    }

    /// Prints rows in this order (indices of rows as added), so a table can be filled while
    /// its order is still being worked out.
    pub fn set_order(&mut self, order: Vec<u32>) {
        debug_assert_eq!(order.len(), self.row_count());
        self.order = Some(order);
    }

    /// Row indices in printing order.
    fn printing_order(&self) -> Box<dyn Iterator<Item = usize> + '_> {
        match &self.order {
            Some(order) => Box::new(order.iter().map(|&index| index as usize)),
            None => Box::new(0..self.row_count()),
        }
    }

    /// A table from ready-made rows.
    pub fn from_rows(header: Vec<String>, rows: Vec<Vec<String>>) -> Table {
        let mut table = Table::new(header);
        for row in rows {
            table.row(row);
        }
        table
    }

    /// Replaces the cells of `column`: `fill` appends the new cell of each row (given its index,
    /// in the order rows were added) to the string it is handed. For a column worked out after
    /// the others.
    pub fn replace_column(&mut self, column: usize, mut fill: impl FnMut(usize, &mut String)) {
        let columns = self.columns();
        if column >= columns {
            return;
        }
        let old = std::mem::take(&mut self.text);
        self.text.reserve(old.len() + old.len() / 4);
        let mut row_start = 0;
        for (row, ends) in self.ends.chunks_exact_mut(columns).enumerate() {
            let cell_start = match column {
                0 => row_start,
                _ => ends[column - 1] as usize,
            };
            let (cell_end, row_end) = (ends[column] as usize, ends[columns - 1] as usize);
            let shift_before = self.text.len().wrapping_sub(row_start);
            self.text.push_str(&old[row_start..cell_start]);
            fill(row, &mut self.text);
            let shift_after = self.text.len().wrapping_sub(cell_end);
            self.text.push_str(&old[cell_end..row_end]);
            for (index, end) in ends.iter_mut().enumerate() {
                let shift = if index < column {
                    shift_before
                } else {
                    shift_after
                };
                *end = u32::try_from((*end as usize).wrapping_add(shift))
                    .expect("a table under 4 GiB");
            }
            row_start = row_end;
        }
    }

    /// Makes room for `rows` more rows of about `bytes_per_row` bytes.
    pub fn reserve(&mut self, rows: usize, bytes_per_row: usize) {
        self.ends.reserve(rows * self.columns());
        self.text.reserve(rows * bytes_per_row);
    }

    /// Appends one cell; a row is complete after as many cells as there are columns.
    pub fn cell(&mut self, value: impl std::fmt::Display) -> &mut Self {
        use std::fmt::Write as _;
        let _ = write!(self.text, "{value}");
        self.ends
            .push(u32::try_from(self.text.len()).expect("a table under 4 GiB"));
        self
    }

    /// Appends one cell of plain text: [`Table::cell`] without the formatting machinery, which
    /// costs more than the copy for the 100,000 short cells of a large socket table.
    pub fn text(&mut self, value: &str) -> &mut Self {
        self.text.push_str(value);
        self.ends
            .push(u32::try_from(self.text.len()).expect("a table under 4 GiB"));
        self
    }

    /// Display width of every cell, in cell order.
    fn cell_widths(&self) -> impl Iterator<Item = usize> + '_ {
        let mut start = 0;
        // ASCII, most of what a table holds, is as wide as it is long: one check for the lot.
        let ascii = self.text.is_ascii();
        self.ends.iter().map(move |&end| {
            let cell = &self.text[start..end as usize];
            start = end as usize;
            if ascii { cell.len() } else { width_of(cell) }
        })
    }

    /// Appends one whole row.
    pub fn row<I>(&mut self, cells: I) -> &mut Self
    where
        I: IntoIterator,
        I::Item: std::fmt::Display,
    {
        for value in cells {
            self.cell(value);
        }
        self
    }

    /// The column headers.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// Number of columns.
    pub fn columns(&self) -> usize {
        self.header.len().max(1)
    }

    /// Number of complete rows.
    pub fn row_count(&self) -> usize {
        self.ends.len() / self.columns()
    }

    /// The cells of row `index`.
    pub fn row_cells(&self, index: usize) -> impl Iterator<Item = &str> + '_ {
        let columns = self.columns();
        (index * columns..(index + 1) * columns).map(move |cell| {
            let start = if cell == 0 {
                0
            } else {
                self.ends[cell - 1] as usize
            };
            &self.text[start..self.ends[cell] as usize]
        })
    }

    /// Every complete row, as cells, in printing order.
    pub fn rows(&self) -> impl Iterator<Item = Vec<&str>> + '_ {
        self.printing_order()
            .map(|index| self.row_cells(index).collect())
    }
}

/// How a table is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Borders, fitted to the terminal width (`width` columns, when known).
    Terminal {
        /// The terminal's width in columns.
        width: Option<u16>,
    },
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
    let mut text = Vec::new();
    write_table(&mut text, table, style).expect("writing into a Vec cannot fail");
    String::from_utf8(text).expect("tables hold UTF-8")
}

/// Writes `table` in `style` to `out`.
pub fn write_table(out: &mut dyn Write, table: &Table, style: Style) -> std::io::Result<()> {
    match style {
        Style::Terminal { width } if table.one_line.is_some() => {
            write_one_line_per_row(out, table, width.map(usize::from))
        }
        Style::Terminal { width } => {
            let mut comfy = with_borders(table, ContentArrangement::Dynamic);
            if let Some(width) = width {
                comfy.set_width(width);
            }
            writeln!(out, "{comfy}")
        }
        Style::Plain => write_plain(out, table),
    }
}

/// A terminal table whose rows each take one line (see [`Table::one_line_per_row`]): bordered
/// when that fits in `width`, after leaving out expendable columns if need be; else plain.
fn write_one_line_per_row(
    out: &mut dyn Write,
    table: &Table,
    width: Option<usize>,
) -> std::io::Result<()> {
    let widths = table.column_widths();
    // `│ a │ b │`: each column costs its width and three more, the table one more.
    let bordered = |keep: &[usize]| keep.iter().map(|&c| widths[c] + 3).sum::<usize>() + 1;
    let mut keep: Vec<usize> = (0..table.columns()).collect();
    let expendable = table.one_line.as_deref().unwrap_or_default();
    let fits = |keep: &[usize]| width.is_none_or(|width| bordered(keep) <= width);
    for column in expendable {
        if fits(&keep) {
            break;
        }
        keep.retain(|kept| kept != column);
    }
    let bordered_fits = fits(&keep);
    if let (Some(width), Some(keep_last)) = (width, table.never_overflow)
        && !bordered_fits
    {
        // Plain: each column costs its width, and two blanks before all but the first.
        let plain = |keep: &[usize]| keep.iter().map(|&c| widths[c] + 2).sum::<usize>() - 2;
        let least = 1 + usize::from(keep_last);
        while keep.len() > least && plain(&keep) > width {
            keep.remove(keep.len() - least);
        }
    }
    let narrowed;
    let table = if keep.len() == table.columns() {
        table
    } else {
        narrowed = table.only_columns(&keep);
        &narrowed
    };
    if !bordered_fits {
        return write_plain(out, table);
    }
    writeln!(out, "{}", with_borders(table, ContentArrangement::Disabled))
}

/// `table` with borders, its cells arranged as `arrangement` says.
fn with_borders(table: &Table, arrangement: ContentArrangement) -> ComfyTable {
    let mut comfy = ComfyTable::new();
    comfy
        .load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(arrangement);
    if !table.no_header {
        comfy.set_header(table.header());
    }
    for row in table.rows() {
        comfy.add_row(row);
    }
    comfy
}

/// Display width of a cell in terminal columns: a wide (CJK) character takes two, a combining
/// one none. ASCII, most of what a table holds, is as wide as it is long.
fn width_of(cell: &str) -> usize {
    if cell.is_ascii() {
        cell.len()
    } else {
        UnicodeWidthStr::width(cell)
    }
}

/// Space-aligned columns, two spaces apart; the last column is not padded, so lines carry no
/// trailing blanks. No copy of the table is built: lines are put together in a buffer, written
/// whenever it holds 64 KiB; a large table's second half is put together on another thread
/// meanwhile.
fn write_plain(out: &mut dyn Write, table: &Table) -> std::io::Result<()> {
    const FLUSH_AT: usize = 64 * 1024;
    const SHARED_ABOVE: usize = 4096;
    let widths = table.column_widths();
    // One check for the lot, as in `Table::cell_widths`.
    let ascii = table.text.is_ascii();
    let line = |buffer: &mut Vec<u8>, index: usize| {
        let cells = table.row_cells(index).map(|cell| {
            let width = if ascii { cell.len() } else { width_of(cell) };
            (cell, width)
        });
        plain_line(buffer, cells, &widths);
    };
    let order: Vec<usize> = table.printing_order().collect();
    let half = if order.len() > SHARED_ABOVE {
        order.len() / 2
    } else {
        order.len()
    };
    let (first, second) = order.split_at(half);
    std::thread::scope(|scope| {
        let second = (!second.is_empty()).then(|| {
            scope.spawn(|| {
                let mut buffer = Vec::new();
                second.iter().for_each(|&index| line(&mut buffer, index));
                buffer
            })
        });
        let mut buffer = Vec::with_capacity(FLUSH_AT + 1024);
        if !table.no_header {
            let header = table.header().iter().map(|h| (h.as_str(), width_of(h)));
            plain_line(&mut buffer, header, &widths);
        }
        for &index in first {
            line(&mut buffer, index);
            if buffer.len() >= FLUSH_AT {
                out.write_all(&buffer)?;
                buffer.clear();
            }
        }
        out.write_all(&buffer)?;
        if let Some(second) = second {
            let second = second.join();
            out.write_all(&second.unwrap_or_else(|panic| std::panic::resume_unwind(panic)))?;
        }
        out.flush()
    })
}

/// Appends one plain line to `buffer`: cells (with their display widths) padded to `widths`,
/// trailing empty cells and blanks left out.
fn plain_line<'a>(
    buffer: &mut Vec<u8>,
    cells: impl Iterator<Item = (&'a str, usize)>,
    widths: &[usize],
) {
    let mut pending_pad = 0usize;
    for ((cell, cell_width), width) in cells.zip(widths) {
        if cell.is_empty() {
            pending_pad += width + 2;
            continue;
        }
        buffer.resize(buffer.len() + pending_pad, b' ');
        buffer.extend_from_slice(cell.as_bytes());
        pending_pad = width - cell_width + 2;
    }
    buffer.push(b'\n');
}

/// Writes `value` as pretty JSON followed by a newline.
pub fn write_json<T: Serialize + ?Sized>(out: &mut dyn Write, value: &T) -> Result<()> {
    let mut write = || -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, value)?;
        out.write_all(b"\n")?;
        out.flush()
    };
    write().context("writing output")
}

/// Writes `rows` as one JSON array with one compact object per line: valid JSON for `jq`, yet
/// greppable line by line, and cheap for tens of thousands of rows.
pub fn write_json_rows<T: Serialize>(out: &mut dyn Write, rows: &[T]) -> Result<()> {
    let mut write = || -> std::io::Result<()> {
        let mut buffer = std::io::BufWriter::with_capacity(64 * 1024, &mut *out);
        buffer.write_all(b"[")?;
        for (index, row) in rows.iter().enumerate() {
            buffer.write_all(if index == 0 { b"\n" } else { b",\n" })?;
            serde_json::to_writer(&mut buffer, row)?;
        }
        buffer.write_all(b"\n]\n")?;
        buffer.flush()
    };
    write().context("writing output")
}

#[cfg(test)]
mod tests;
