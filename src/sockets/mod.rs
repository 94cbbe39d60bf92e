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
    if query.json {
        let snapshot = collect::snapshot(&request)?;
        print_notes(&snapshot);
        let rows = sort::sorted(&snapshot.rows, query.sort);
        return output::write_json_rows(&mut std::io::stdout().lock(), &rows);
    }
    let columns = view::Columns::of(query, &request);
    // Unless an owner filter may still leave rows out, each row is worked out as the OS lists
    // it, while the kernel is still listing the rest: its cells (with `-p`, all but its owners,
    // which come after the walk for them) and, unless that depends on owners, its sort key.
    let early = !request.filters.need_owners();
    let early_order = early && query.sort != Some(SortKey::Pid);
    let mut table = view::empty_socket_table(&columns);
    let mut order = sort::Order::new(query.sort);
    let mut index = 0;
    let snapshot = collect::snapshot_with(&request, &mut |row| {
        view::push_socket_row(&mut table, index, row, &columns);
        index += 1;
        if early_order {
            order.push(row);
        }
    })?;
    let rows = &snapshot.rows;
    let order_of_rows = || match early_order {
        true => order.finish(),
        false => sort::sort_order(rows, query.sort),
    };
    // What is left of the table and the order are independent: one each per core.
    let (mut table, order) = std::thread::scope(|scope| {
        let order = scope.spawn(order_of_rows);
        if !early {
            table = view::socket_table(rows, &columns);
        } else if columns.owners {
            view::fill_owners(&mut table, rows);
        }
        let order = order.join();
        let order = order.unwrap_or_else(|_| (0..rows.len() as u32).collect());
        (table, order)
    });
    print_notes(&snapshot);
    // The rows are in the table now: another thread frees them (and their owners) while the
    // table is written.
    std::thread::spawn(move || drop(snapshot));
    if query.no_header {
        table.without_header();
    }
    table.set_order(order);
    let mut out = std::io::stdout().lock();
    output::write_table(&mut out, &table, Style::for_stdout()).context("writing output")
}

fn print_notes(snapshot: &collect::Snapshot) {
    for note in snapshot.notes() {
        eprintln!("{note}");
    }
}
