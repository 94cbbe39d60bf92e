use super::*;

fn sample() -> Table {
    let mut table = Table::new(["Proto", "Local Address", "State"]);
    table.row(["tcp", "127.0.0.1:22", "LISTEN"]);
    table.row(["udp", "[::1]:53", "-"]);
    table
}

#[test]
fn cells_fill_rows_in_order() {
    let table = sample();
    assert_eq!(table.row_count(), 2);
    assert_eq!(
        table.rows().collect::<Vec<_>>(),
        [["tcp", "127.0.0.1:22", "LISTEN"], ["udp", "[::1]:53", "-"]]
    );
}

#[test]
fn a_column_replaced_afterwards_reads_as_if_filled_at_once() {
    let mut later = Table::new(["Proto", "Owner", "State"]);
    later.row(["tcp", "-", "LISTEN"]).row(["udp6", "-", "-"]);
    later.replace_column(1, |row, text| text.push_str(["1/sshd,20/sshd", ""][row]));
    let mut at_once = Table::new(["Proto", "Owner", "State"]);
    at_once
        .row(["tcp", "1/sshd,20/sshd", "LISTEN"])
        .row(["udp6", "", "-"]);
    assert_eq!(later, at_once);
    for (column, cell) in [(0, "x"), (2, "CLOSE_WAIT")] {
        let mut table = sample();
        let second_row = ["udp", "[::1]:53", "-"];
        table.replace_column(column, |row, text| {
            text.push_str(if row == 0 { cell } else { second_row[column] })
        });
        assert_eq!(table.rows().next().unwrap()[column], cell);
        assert_eq!(table.rows().nth(1).unwrap(), second_row);
    }
}

#[test]
fn a_large_plain_table_put_together_on_two_threads_keeps_its_order() {
    let mut table = Table::new(["Row", "Value"]);
    for row in 0..9000u32 {
        table.row([format!("r{row}"), "x".repeat(row as usize % 13)]);
    }
    table.set_order((0..9000).rev().collect());
    let text = render_table(&table, Style::Plain);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 9001);
    for (line, row) in lines[1..].iter().zip((0..9000u32).rev()) {
        let expected = format!(
            "{:<5}  {}",
            format!("r{row}"),
            "x".repeat(row as usize % 13)
        );
        assert_eq!(*line, expected.trim_end());
    }
}

#[test]
fn rows_print_in_the_order_set() {
    let mut table = sample();
    table.set_order(vec![1, 0]);
    let text = render_table(&table, Style::Plain);
    let lines: Vec<_> = text.lines().collect();
    assert!(
        lines[1].starts_with("udp") && lines[2].starts_with("tcp"),
        "{text}"
    );
}

#[test]
fn plain_pads_by_display_width_not_bytes_or_characters() {
    let mut table = Table::new(["Name", "X"]);
    table.row(["ação", "1"]);
    table.row(["ab", "2"]);
    // Two wide characters take four columns; e + a combining acute accent takes one.
    table.row(["漢字", "3"]);
    table.row(["cafe\u{301}", "4"]);
    let text = render_table(&table, Style::Plain);
    assert_eq!(text, "Name  X\nação  1\nab    2\n漢字  3\ncafe\u{301}  4\n");
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

/// A socket-like table whose rows must each stay on one line, Class last and expendable.
fn one_line_sample() -> Table {
    let mut table = Table::new(["Proto", "Send-Q", "Local Address", "Class"]);
    table.row(["tcp", "4163072", "127.0.0.1:39948", "registered"]);
    table.one_line_per_row(vec![3]);
    table
}

#[test]
fn one_line_rows_never_wrap_a_number_or_an_address() {
    let table = one_line_sample();
    // Bordered with every column: 50 columns wide.
    let wide = render_table(&table, Style::Terminal { width: Some(60) });
    assert_eq!(
        wide.lines().count(),
        5,
        "top, header, rule, row, bottom: {wide}"
    );
    assert!(
        wide.contains("registered") && wide.contains("4163072"),
        "{wide}"
    );
    // Too narrow for Class: left out, the rest bordered.
    let narrow = render_table(&table, Style::Terminal { width: Some(40) });
    assert!(!narrow.contains("registered"), "{narrow}");
    assert!(narrow.lines().all(|l| l.chars().count() <= 40), "{narrow}");
    assert!(narrow.contains("127.0.0.1:39948"), "{narrow}");
    // Too narrow even so: plain, one line per row, overflowing.
    let tiny = render_table(&table, Style::Terminal { width: Some(20) });
    assert_eq!(
        tiny,
        "Proto  Send-Q   Local Address\ntcp    4163072  127.0.0.1:39948\n"
    );
}

#[test]
fn a_screen_that_cannot_overflow_loses_whole_columns_from_the_right() {
    let mut table = one_line_sample();
    table.never_overflow(false);
    let text = render_table(&table, Style::Terminal { width: Some(20) });
    assert_eq!(text, "Proto  Send-Q\ntcp    4163072\n");
    let mut table = Table::new(["Proto", "Send-Q", "Local Address", "Flow"]);
    table.row(["tcp", "4163072", "127.0.0.1:39948", "stuck"]);
    table.one_line_per_row(Vec::new());
    table.never_overflow(true);
    let text = render_table(&table, Style::Terminal { width: Some(22) });
    assert_eq!(text, "Proto  Send-Q   Flow\ntcp    4163072  stuck\n");
}

#[test]
fn without_header_prints_only_rows() {
    let mut table = sample();
    table.without_header();
    assert_eq!(render_table(&table, Style::Plain).lines().count(), 2);
    let mut table = one_line_sample();
    table.without_header();
    let text = render_table(&table, Style::Terminal { width: Some(20) });
    assert_eq!(text, "tcp  4163072  127.0.0.1:39948\n");
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
fn json_rows_are_one_array_one_object_per_line() {
    let mut out = Vec::new();
    write_json_rows(
        &mut out,
        &[serde_json::json!({"a": 1}), serde_json::json!({"a": 2})],
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text, "[\n{\"a\":1},\n{\"a\":2}\n]\n");
    let empty = {
        let mut out = Vec::new();
        write_json_rows::<u8>(&mut out, &[]).unwrap();
        String::from_utf8(out).unwrap()
    };
    assert_eq!(
        serde_json::from_str::<Vec<u8>>(&empty).unwrap(),
        Vec::<u8>::new()
    );
}

#[test]
fn json_ends_with_a_newline() {
    let mut out = Vec::new();
    write_json(&mut out, &vec![1, 2]).unwrap();
    assert!(String::from_utf8(out).unwrap().ends_with("]\n"));
}
