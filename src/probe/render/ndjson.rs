//! `--json` with several rounds: one compact JSON line per event as it arrives, then a `summary`
//! line per target and an `exit` line, so a pipe sees every attempt at once.

use serde::Serialize;

use super::{Renderer, encoded};
use crate::error::Result;
use crate::probe::report::{Event, Report, TargetReport};

/// One JSON line per event, then the closing lines.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ndjson;

/// The lines that close the stream, tagged by `type` like the events: the same fields, under the
/// same names, as the one-document form (`--json` without `--count`) gives for a target and for
/// the run.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Closing<'a> {
    /// One target's report: its latest DNS answers and per-address statistics over all rounds.
    Summary(&'a TargetReport),
    /// How the run ended, last.
    Exit { interrupted: bool, exit_code: i32 },
}

impl Renderer for Ndjson {
    fn event(&self, event: &Event) -> Result<Vec<u8>> {
        let mut bytes = encoded(serde_json::to_vec(event))?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    fn finish(&self, report: &Report) -> Result<Vec<u8>> {
        let summaries = report.targets.iter().map(Closing::Summary);
        let exit = Closing::Exit {
            interrupted: report.interrupted,
            exit_code: report.exit_code,
        };
        let mut bytes = Vec::new();
        for line in summaries.chain([exit]) {
            // Keys in declaration order, as in the events and the one-document form.
            bytes.extend(encoded(serde_json::to_vec(&line))?);
            bytes.push(b'\n');
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::connect::Verdict;
    use crate::probe::report::sample::{attempt, dns, report};

    #[test]
    fn each_event_is_one_line_as_it_arrives() {
        let bytes = Ndjson.event(&attempt(2, Verdict::Closed, 0.25)).unwrap();
        let line = String::from_utf8(bytes).unwrap();
        assert!(
            line.starts_with(r#"{"type":"attempt","target":"h:1","round":2,"address":"127.0.0.1:1","verdict":"closed","time_ms":0.25,"#),
            "{line}"
        );
        assert!(line.ends_with("}\n") && line.matches('\n').count() == 1);
    }

    #[test]
    fn closes_with_a_summary_per_target_then_the_exit_code() {
        let closed = report(&[dns(1), attempt(1, Verdict::Closed, 0.25)]);
        let text = String::from_utf8(Ndjson.finish(&closed).unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].starts_with(r#"{"type":"summary","target":"h:1","host":"h","port":1,"system":{"source":"system","#),
            "{text}"
        );
        assert!(
            lines[0].ends_with(r#""reachable":false,"soquete":null,"resolved":true,"rounds":1,"lost_rounds":0,"lost_reason":null}"#),
            "{text}"
        );
        assert_eq!(
            lines[1],
            r#"{"type":"exit","interrupted":false,"exit_code":2}"#
        );
    }
}
