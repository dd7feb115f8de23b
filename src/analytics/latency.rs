//! Reply latency percentiles from the slots' histograms: `{"<milliseconds>": count}`, the
//! milliseconds kept to two significant digits (`weft_latency_bin`), so a percentile is within 5%
//! of the exact one and exact for latencies that are round to two digits.
//!
//! A bucket merges thousands of slot histograms (a month by day is 2,880 slots), so they are
//! read as text and counted straight into a fixed array of the two-digit values: no map, no
//! JSON tree, no allocation per key.

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};

/// Milliseconds under 100 are kept as they are (100 bins); above, 90 bins per power of ten
/// (10..99 times 10^e), up to 10^13 ms.
const DECADES: usize = 12;
const BINS: usize = 100 + 90 * DECADES;

/// The merged histogram of a bucket.
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BINS],
            total: 0,
        }
    }
}

/// The bin of a latency in milliseconds (rounded to two significant digits).
fn bin(ms: u64) -> usize {
    if ms < 100 {
        return ms as usize;
    }
    // ms = mantissa * 10^exponent with mantissa rounded to 10..99, as `weft_latency_bin`.
    let mut exponent = ms.ilog10() as usize - 1;
    let scale = 10u64.pow(exponent as u32);
    let mut mantissa = ms.saturating_add(scale / 2) / scale;
    if mantissa == 100 {
        // 995 rounds to 1,000: 10 of the next power.
        mantissa = 10;
        exponent += 1;
    }
    (100 + (exponent - 1) * 90 + (mantissa as usize - 10)).min(BINS - 1)
}

/// The milliseconds a bin stands for.
fn value(bin: usize) -> f64 {
    if bin < 100 {
        return bin as f64;
    }
    let exponent = (bin - 100) / 90 + 1;
    let mantissa = (bin - 100) % 90 + 10;
    mantissa as f64 * 10f64.powi(exponent as i32)
}

impl Histogram {
    /// Empties it for the next bucket.
    pub fn clear(&mut self) {
        if self.total > 0 {
            self.counts.iter_mut().for_each(|c| *c = 0);
            self.total = 0;
        }
    }

    fn count(&mut self, ms: u64, n: u64) {
        self.counts[bin(ms)] += n;
        self.total += n;
    }

    /// Adds one slot's histogram given as JSON text; keys that are not counts of
    /// milliseconds are skipped, and so is text that is not such an object.
    pub fn add_json(&mut self, text: &str) {
        let mut de = serde_json::Deserializer::from_str(text);
        if de.deserialize_map(Adder(self)).is_err() {
            tracing::warn!("a latency histogram that is not an object of counts");
        }
    }

    /// The p-th percentile (0 to 1) by linear interpolation between the closest ranks, as
    /// PostgreSQL's `percentile_cont`; None without replies.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = p.clamp(0.0, 1.0) * (self.total - 1) as f64;
        let below = rank.floor() as u64;
        let low = self.nth(below)?;
        let high = self.nth((below + 1).min(self.total - 1))?;
        Some(low + (high - low) * (rank - below as f64))
    }

    /// The value at 0-based rank `n`.
    fn nth(&self, n: u64) -> Option<f64> {
        let mut seen = 0;
        for (bin, count) in self.counts.iter().enumerate() {
            seen += count;
            if n < seen {
                return Some(value(bin));
            }
        }
        None
    }
}

/// Streams a histogram's entries into a `Histogram`.
struct Adder<'h>(&'h mut Histogram);

impl<'de> Visitor<'de> for Adder<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of counts by milliseconds")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<(), A::Error> {
        while let Some(key) = entries.next_key::<std::borrow::Cow<'de, str>>()? {
            let count: serde_json::Value = entries.next_value()?;
            if let (Ok(ms), Some(n)) = (key.parse::<u64>(), count.as_u64()) {
                self.0.count(ms, n);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_like_percentile_cont() {
        let mut h = Histogram::default();
        h.add_json(r#"{"100": 1, "200": 2}"#);
        h.add_json(r#"{"400": 1, "x": 9, "500": "y"}"#);
        // 100, 200, 200, 400: p50 at rank 1.5 -> 200; p95 at rank 2.85 -> 200 + 0.85 * 200.
        assert_eq!(h.percentile(0.5), Some(200.0));
        assert!((h.percentile(0.95).unwrap() - 370.0).abs() < 1e-9);
        assert_eq!(h.percentile(0.0), Some(100.0));
        assert_eq!(h.percentile(1.0), Some(400.0));
        h.clear();
        assert_eq!(h.percentile(0.5), None);
        h.add_json("not json");
        assert_eq!(Histogram::default().percentile(0.5), None);
    }

    #[test]
    fn every_two_digit_latency_has_its_own_bin() {
        let mut seen = std::collections::HashSet::new();
        for ms in (0..100).chain((10..100).flat_map(|m| (1..8).map(move |e| m * 10u64.pow(e)))) {
            let b = bin(ms);
            assert_eq!(value(b), ms as f64, "{ms}");
            assert!(seen.insert(b), "{ms} shares a bin");
        }
        // Values not rounded yet round to two digits.
        assert_eq!(value(bin(1234)), 1200.0);
        assert_eq!(value(bin(1250)), 1300.0);
        assert_eq!(value(bin(995)), 1000.0);
        assert_eq!(value(bin(99_999)), 100_000.0);
    }
}
