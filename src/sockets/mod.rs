//! `soquete sockets`: list TCP/UDP endpoints like `netstat -tunp`, with filters, JSON and a watch mode.

pub mod collect;
pub mod filter;
pub mod flow;
pub mod model;
pub mod ports;
pub mod query;
pub mod sort;
pub mod view;
mod watch;

use crate::error::{Context, Result};
use crate::output::{self, Style};

pub use query::Query;
pub use sort::SortKey;

/// Runs `soquete sockets`.
pub fn run(query: &Query) -> Result<()> {
    let request = query.request();
    if query.timers {
        eprintln!("soquete: -o: timers are not shown (soquete does not read socket timers)");
    }
    if let Some(interval) = query.watch {
        return watch::run(query, &request, interval);
    }
    let snapshot = collect::snapshot(&request)?;
    for note in snapshot.notes() {
        eprintln!("{note}");
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if query.json {
        output::write_json_rows(&mut out, &sort::sorted(&snapshot.rows, query.sort))
    } else {
        // Filling the table and sorting are independent: one each per core.
        let rows = &snapshot.rows;
        let (mut table, order) = std::thread::scope(|scope| {
            let order = scope.spawn(|| sort::sort_order(rows, query.sort));
            let table = view::socket_table(rows, &view::Columns::of(query, &request));
            (table, order.join())
        });
        if query.no_header {
            table.without_header();
        }
        table.set_order(order.unwrap_or_else(|_| (0..rows.len() as u32).collect()));
        output::write_table(&mut out, &table, Style::for_stdout()).context("writing output")
    }
}
