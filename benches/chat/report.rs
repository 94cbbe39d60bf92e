//! What the scenarios' JSON reports share: numbers written with the decimals they have always
//! had, and how the closed clients ended.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

use crate::bench::Client;
use crate::tally::Tally;

/// A number reported with `N` decimals, the value `format!("{:.N}")` writes (an integer when
/// `N` is 0); null when it is not finite, which JSON cannot say.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decimals<const N: usize>(pub f64);

impl<const N: usize> Serialize for Decimals<N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        number(&format!("{:.*}", N, self.0), self.0, serializer)
    }
}

/// A number reported as `format!("{}")` writes it: a whole one as an integer (`5000`, not
/// `5000.0`), as it was given on the command line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AsGiven(pub f64);

impl Serialize for AsGiven {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        number(&self.0.to_string(), self.0, serializer)
    }
}

/// Serialises `value` as the JSON number `text` says: an integer when it is one, null when the
/// value is not finite.
fn number<S: Serializer>(text: &str, value: f64, serializer: S) -> Result<S::Ok, S::Error> {
    if !value.is_finite() {
        return serializer.serialize_none();
    }
    if let Ok(whole) = text.parse::<i64>() {
        return serializer.serialize_i64(whole);
    }
    serializer.serialize_f64(text.parse().unwrap_or(value))
}

/// What the receivers' checks found, in every talking scenario's report (flattened into it).
#[derive(Debug, Serialize)]
pub struct Checks {
    /// Lines never received: sequence gaps, and what was missing at the end.
    pub lost: u64,
    /// Lines whose sequence went back (duplicated or reordered).
    pub backwards: u64,
    /// Lines that did not parse exactly (glued, cut).
    pub corrupted: u64,
    /// Test lines naming the receiver itself or no client of the run.
    pub wrong_sender: u64,
    /// soquete's `! ` error lines.
    pub errors: u64,
    /// soquete's `* ` notices.
    pub notices: u64,
}

impl Checks {
    /// The checks' counts in `t`.
    pub fn of(t: &Tally) -> Checks {
        Checks {
            lost: t.lost,
            backwards: t.backwards,
            corrupted: t.corrupted,
            wrong_sender: t.wrong_sender,
            errors: t.errors,
            notices: t.notices,
        }
    }
}

/// How the closed clients ended, and the `* bye` lines the clients got: counts of each.
pub struct Endings {
    /// Why each closed client was closed (`end of stream`, `read: …`), and how many.
    pub reasons: BTreeMap<String, usize>,
    /// Each `* bye` line received, and how many clients received it.
    pub byes: BTreeMap<String, usize>,
}

impl Endings {
    /// Counts the endings of `clients`.
    pub fn of(clients: &[Client]) -> Endings {
        let mut reasons = BTreeMap::new();
        let mut byes = BTreeMap::new();
        for c in clients {
            if !c.open {
                *reasons
                    .entry(c.close_reason.clone().unwrap_or_default())
                    .or_default() += 1;
            }
            if let Some(bye) = &c.bye {
                *byes.entry(bye.clone()).or_default() += 1;
            }
        }
        Endings { reasons, byes }
    }
}

/// The difference of two readings of a counter, when both were taken.
pub fn spent(before: Option<f64>, after: Option<f64>) -> Option<Decimals<3>> {
    Some(Decimals(after? - before?))
}
