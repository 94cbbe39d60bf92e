//! The probe's output formats, one file each (text, JSON, NDJSON), over the same data: the
//! [`Event`]s as they arrive and the closed [`Report`]. A renderer only turns data into bytes;
//! the caller writes them, so each format is tested without a terminal or a network.

mod json;
mod ndjson;
mod text;

pub use json::Json;
pub use ndjson::Ndjson;
pub use text::Text;

use super::config::Config;
use super::report::{Event, Report};
use crate::error::{Context, Result};

/// One output format.
pub trait Renderer {
    /// The bytes to print for one event as soon as it arrives (often none).
    fn event(&self, event: &Event) -> Result<Vec<u8>>;
    /// The bytes that close the output, once every event is in and the report is closed.
    fn finish(&self, report: &Report) -> Result<Vec<u8>>;
}

/// The renderer `config` asks for: readable text, or with --json one document, or NDJSON (one
/// line per event, then the summaries) when the probe repeats.
pub fn for_config(config: &Config) -> Box<dyn Renderer> {
    match (config.json, config.repeated()) {
        (false, rounds) => Box::new(Text {
            label_targets: config.targets.len() > 1,
            rounds,
        }),
        (true, false) => Box::new(Json),
        (true, true) => Box::new(Ndjson),
    }
}

/// A serde_json failure as an error with context (our types always serialize; this is a guard).
fn encoded(result: serde_json::Result<Vec<u8>>) -> Result<Vec<u8>> {
    result
        .map_err(std::io::Error::from)
        .context("encoding the probe's JSON")
}
