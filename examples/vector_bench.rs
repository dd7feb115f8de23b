//! The vector index benchmark of `bench/vectors`: ROWS vectors of DIMS dimensions in
//! clusters (as embeddings of texts on a few hundred topics are), searched for their 100
//! nearest (what retrieval asks of each dataset) by scanning every vector and through the
//! approximate graph, in this process. It reports the graph's build time, the latency of
//! both (p50/p99 over QUERIES queries) and the graph's recall of the exact 100.
//!
//!   vector_bench ROWS DIMS QUERIES

use std::time::Instant;

use uuid::Uuid;
use weft::knowledge::vectors::{self, VectorIndex};

/// xorshift: the same vectors on every run.
struct Numbers(u64);

impl Numbers {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % 1_000_000) as f32 / 1_000_000.0 - 0.5
    }
}

/// `rows` vectors, each one of the `centres` (all of the same dimensions) moved a little.
fn clustered(rows: usize, numbers: &mut Numbers, centres: &[Vec<f32>]) -> Vec<Vec<f32>> {
    (0..rows)
        .map(|i| {
            let centre = &centres[(i * 7919) % centres.len()];
            centre.iter().map(|c| c + 0.6 * numbers.next()).collect()
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn timed(label: &str, index: &dyn VectorIndex, queries: &[Vec<f32>]) -> Vec<Vec<Uuid>> {
    let mut latencies = Vec::with_capacity(queries.len());
    let mut found = Vec::with_capacity(queries.len());
    for query in queries {
        let at = Instant::now();
        let nearest = index.nearest(query, 100, None);
        latencies.push(at.elapsed().as_secs_f64() * 1000.0);
        found.push(nearest.into_iter().map(|(id, _)| id).collect());
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "== {label}: p50 {:.2} ms, p99 {:.2} ms over {} queries",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.len()
    );
    found
}

fn main() {
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let (rows, dims, queries) = (arg(1, 100_000), arg(2, 384), arg(3, 300));
    let mut numbers = Numbers(0x9E37_79B9_7F4A_7C15);
    let centres: Vec<Vec<f32>> = (0..300)
        .map(|_| (0..dims).map(|_| numbers.next()).collect())
        .collect();
    let document = Uuid::new_v4();
    let data: Vec<vectors::Row> = clustered(rows, &mut numbers, &centres)
        .into_iter()
        .map(|v| {
            (
                Uuid::new_v4(),
                document,
                Some(v.into_iter().map(Some).collect()),
            )
        })
        .collect();
    let questions = clustered(queries, &mut numbers, &centres);
    let index = vectors::build(1, data);
    println!("== {} vectors of {dims} dimensions", index.len());
    let exact = timed("exact scan, 100 nearest", &index, &questions);
    let at = Instant::now();
    index.build_approximate();
    println!("== graph built in {:.1} s", at.elapsed().as_secs_f64());
    assert!(index.is_approximate());
    let approximate = timed("graph, 100 nearest", &index, &questions);
    let (mut hit, mut wanted) = (0usize, 0usize);
    for (truth, got) in exact.iter().zip(&approximate) {
        wanted += truth.len();
        hit += truth.iter().filter(|id| got.contains(id)).count();
    }
    println!(
        "== recall of the exact 100: {:.3}",
        hit as f64 / wanted as f64
    );
}
