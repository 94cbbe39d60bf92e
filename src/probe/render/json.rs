//! `--json` for a single round: nothing while the probe runs, then the whole [`Report`] as one
//! pretty JSON document.

use super::{Renderer, encoded};
use crate::error::Result;
use crate::probe::report::{Event, Report};

/// One pretty JSON document at the end.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl Renderer for Json {
    fn event(&self, _event: &Event) -> Result<Vec<u8>> {
        Ok(Vec::new())
    }

    fn finish(&self, report: &Report) -> Result<Vec<u8>> {
        let mut bytes = encoded(serde_json::to_vec_pretty(report))?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::connect::Verdict;
    use crate::probe::report::sample::{attempt, dns, report};

    #[test]
    fn prints_nothing_until_the_end_then_one_document() {
        let events = [dns(1), attempt(1, Verdict::Closed, 0.25)];
        assert!(Json.event(&events[1]).unwrap().is_empty());
        let bytes = Json.finish(&report(&events)).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("{\n  \"targets\": [\n"), "{text}");
        assert!(text.ends_with("\n  \"exit_code\": 2\n}\n"), "{text}");
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let address = &doc["targets"][0]["addresses"][0];
        assert_eq!(address["last_verdict"], "closed");
        assert_eq!(address["sent"], 1);
    }
}
