//! The approximate vector index of a large dataset: a hierarchical navigable small-world
//! graph (HNSW, the `instant-distance` crate) over the dataset's normalized vectors,
//! searched in a few hundred comparisons instead of one per segment. Built off the async
//! workers once the vectors are loaded; until it is ready, and for searches it cannot
//! answer well (a metadata filter keeping a small part of the dataset, more candidates
//! than its search breadth), the exact scan answers.

use std::sync::Arc;

use instant_distance::{Builder, Hnsw, Point, Search};

/// Candidates kept while searching the graph's bottom layer (its `ef`): the most a search
/// returns, and what decides its recall.
pub const SEARCH_BREADTH: usize = 256;
/// Memory the graph takes per row, about: its links on the bottom layer (64 of 4 bytes),
/// its point, and its share of the upper layers.
pub const BYTES_PER_ROW: usize = 300;
/// Candidates kept while building (`ef_construction`).
const BUILD_BREADTH: usize = 128;

/// A row of the dataset's vectors: a place in the shared, normalized data.
#[derive(Clone)]
struct Row {
    data: Arc<[f32]>,
    dims: u32,
    row: u32,
}

impl Row {
    fn vector(&self) -> &[f32] {
        let start = self.row as usize * self.dims as usize;
        &self.data[start..start + self.dims as usize]
    }
}

impl Point for Row {
    /// 1 − cosine (the vectors have length 1).
    fn distance(&self, other: &Self) -> f32 {
        let dot: f32 = self
            .vector()
            .iter()
            .zip(other.vector())
            .map(|(a, b)| a * b)
            .sum();
        1.0 - dot
    }
}

/// The graph over one dataset's vectors.
pub struct ApproximateIndex {
    graph: Hnsw<Row>,
    dims: usize,
}

impl ApproximateIndex {
    /// Builds the graph over `data` (`dims` values per row, each row normalized), on half
    /// the cores. CPU-bound (measured in BENCHMARKS.md).
    pub fn build(data: Arc<[f32]>, dims: usize) -> ApproximateIndex {
        let rows = data.len().checked_div(dims).unwrap_or(0);
        let points: Vec<Row> = (0..rows)
            .map(|row| Row {
                data: data.clone(),
                dims: dims as u32,
                row: row as u32,
            })
            .collect();
        let build = move || {
            Builder::default()
                .ef_search(SEARCH_BREADTH)
                .ef_construction(BUILD_BREADTH)
                .seed(rows as u64)
                .build_hnsw(points)
                .0
        };
        // Half the cores, so that requests keep the others while a graph is built.
        let threads = std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1));
        let graph = match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
            Ok(pool) => pool.install(build),
            Err(_) => build(),
        };
        ApproximateIndex { graph, dims }
    }

    /// The rows nearest to `query` (normalized, of the index's dimensions) with their
    /// cosines, best first, those `keep` accepts, at most `n` of them.
    pub fn nearest(
        &self,
        query: &[f32],
        n: usize,
        keep: impl Fn(usize) -> bool,
    ) -> Vec<(usize, f32)> {
        if query.len() != self.dims {
            return Vec::new();
        }
        let point = Row {
            data: Arc::from(query),
            dims: self.dims as u32,
            row: 0,
        };
        let mut search = Search::default();
        self.graph
            .search(&point, &mut search)
            .map(|item| (item.point.row as usize, 1.0 - item.distance))
            .filter(|(row, _)| keep(*row))
            .take(n)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random vectors in clusters, as embeddings of texts on a few
    /// topics are.
    fn clustered(rows: usize, dims: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 10_000) as f32 / 10_000.0 - 0.5
        };
        let centres: Vec<Vec<f32>> = (0..20)
            .map(|_| (0..dims).map(|_| next()).collect())
            .collect();
        let mut data = Vec::with_capacity(rows * dims);
        for i in 0..rows {
            let centre = &centres[i % centres.len()];
            let v: Vec<f32> = centre.iter().map(|c| c + 0.3 * next()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            data.extend(v.iter().map(|x| x / norm));
        }
        data
    }

    fn exact(data: &[f32], dims: usize, query: &[f32], n: usize) -> Vec<usize> {
        let mut scored: Vec<(usize, f32)> = data
            .chunks_exact(dims)
            .enumerate()
            .map(|(i, v)| (i, v.iter().zip(query).map(|(a, b)| a * b).sum()))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        scored.into_iter().take(n).map(|(i, _)| i).collect()
    }

    #[test]
    fn the_graph_finds_almost_all_of_the_exact_nearest() {
        let dims = 32;
        let data = clustered(2000, dims, 7);
        let index = ApproximateIndex::build(Arc::from(data.as_slice()), dims);
        let queries = clustered(50, dims, 99);
        let (mut found, mut wanted) = (0, 0);
        for query in queries.chunks_exact(dims) {
            let truth = exact(&data, dims, query, 20);
            let approximate: Vec<usize> = index
                .nearest(query, 20, |_| true)
                .into_iter()
                .map(|(i, _)| i)
                .collect();
            assert_eq!(approximate.len(), 20);
            found += truth.iter().filter(|i| approximate.contains(i)).count();
            wanted += truth.len();
        }
        let recall = found as f64 / wanted as f64;
        assert!(recall >= 0.95, "recall@20 {recall}");
        // Cosines are exact for what is found, best first.
        let query = &queries[..dims];
        let hits = index.nearest(query, 5, |_| true);
        for pair in hits.windows(2) {
            assert!(pair[0].1 >= pair[1].1);
        }
        let (row, cosine) = hits[0];
        let direct: f32 = data[row * dims..(row + 1) * dims]
            .iter()
            .zip(query)
            .map(|(a, b)| a * b)
            .sum();
        assert!((cosine - direct).abs() < 1e-5);
        // A filter keeps only what it accepts; other dimensions find nothing.
        assert!(
            index
                .nearest(query, 10, |row| row % 2 == 0)
                .iter()
                .all(|(row, _)| row % 2 == 0)
        );
        assert!(index.nearest(&[1.0; 3], 5, |_| true).is_empty());
    }
}
