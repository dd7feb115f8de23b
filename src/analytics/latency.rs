//! Reply latency percentiles from the slots' histograms: `{"<milliseconds>": count}`, the
//! milliseconds kept to two significant digits (`weft_latency_bin`), so a percentile is within 5%
//! of the exact one and exact for latencies that are round to two digits.

use std::collections::BTreeMap;

use serde_json::Value;

/// The merged histogram of a bucket.
#[derive(Default)]
pub struct Histogram {
    counts: BTreeMap<u64, u64>,
    total: u64,
}

impl Histogram {
    /// Adds one slot's histogram; keys that are not counts of milliseconds are skipped.
    pub fn add(&mut self, slot: &Value) {
        let Some(bins) = slot.as_object() else {
            return;
        };
        for (ms, count) in bins {
            if let (Ok(ms), Some(count)) = (ms.parse::<u64>(), count.as_u64()) {
                *self.counts.entry(ms).or_default() += count;
                self.total += count;
            }
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
        for (ms, count) in &self.counts {
            seen += count;
            if n < seen {
                return Some(*ms as f64);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn percentiles_interpolate_like_percentile_cont() {
        let mut h = Histogram::default();
        h.add(&json!({"100": 1, "200": 2}));
        h.add(&json!({"400": 1, "x": 9}));
        // 100, 200, 200, 400: p50 at rank 1.5 -> 200; p95 at rank 2.85 -> 200 + 0.85 * 200.
        assert_eq!(h.percentile(0.5), Some(200.0));
        assert!((h.percentile(0.95).unwrap() - 370.0).abs() < 1e-9);
        assert_eq!(h.percentile(0.0), Some(100.0));
        assert_eq!(h.percentile(1.0), Some(400.0));
        assert_eq!(Histogram::default().percentile(0.5), None);
    }
}
