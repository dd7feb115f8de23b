//! The embeddings of datasets held in memory for vector search. They are stored in
//! PostgreSQL (`document_segments.embedding`); PostgreSQL without pgvector has no fast way to
//! compare them (a full scan computing cosines in SQL took 2.5 s over 100,000 segments of
//! 256 dimensions), so each instance loads a dataset's vectors once, normalized, and
//! compares them here. A dataset's `embedding_version` changes with its embeddings, and a
//! search that finds a different version loads them again. What is kept is bounded by
//! `WEFT_VECTOR_CACHE_MB`; the least recently used datasets are dropped first.
//!
//! Searches ask a `VectorIndex`. A dataset's vectors answer by scanning them all (exact),
//! or, for a dataset of at least `WEFT_VECTOR_APPROXIMATE_ABOVE` vectors once its graph is
//! built in the background (`approximate`), by walking the graph. A deployment whose
//! vectors outgrow one process's memory answers the same two questions from an external
//! engine (see ARCHITECTURE.md, "Vectors at scale").

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::approximate::{self, ApproximateIndex};
use crate::db::schema::document_segments;
use crate::error::AppResult;

/// What a search asks of a dataset's vectors. In memory here (`DatasetVectors`); an
/// external engine (pgvector, a vector database) would answer the same two questions.
pub trait VectorIndex: Send + Sync {
    /// The `n` segments most similar to `query` (cosine), best first, among the segments
    /// of `documents` when given; none when the dimensions differ.
    fn nearest(
        &self,
        query: &[f32],
        n: usize,
        documents: Option<&HashSet<Uuid>>,
    ) -> Vec<(Uuid, f32)>;
    /// The cosine between `query` and each of `ids` that has a vector.
    fn cosines(&self, query: &[f32], ids: &[Uuid]) -> Vec<(Uuid, f32)>;
}

/// One dataset's vectors, normalized to length 1 (so a dot product is the cosine).
pub struct DatasetVectors {
    pub version: i64,
    pub dims: usize,
    ids: Vec<Uuid>,
    /// The document of each segment, for metadata filters.
    documents: Vec<Uuid>,
    /// Each segment's place in `ids`.
    index: HashMap<Uuid, u32>,
    data: Arc<[f32]>,
    /// The graph, once built (large datasets only).
    approximate: OnceLock<ApproximateIndex>,
    last_used: AtomicU64,
}

impl DatasetVectors {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Memory held: the vectors, ids and map, and the graph's links when built.
    fn bytes(&self) -> usize {
        let graph = if self.approximate.get().is_some() {
            self.ids.len() * approximate::BYTES_PER_ROW
        } else {
            0
        };
        self.data.len() * 4 + self.ids.len() * 56 + graph
    }

    /// Builds the graph (CPU-bound: call it off the async workers).
    pub fn build_approximate(&self) {
        if self.approximate.get().is_none() {
            let _ = self
                .approximate
                .set(ApproximateIndex::build(self.data.clone(), self.dims));
        }
    }

    /// Whether searches walk the graph.
    pub fn is_approximate(&self) -> bool {
        self.approximate.get().is_some()
    }

    /// The `n` nearest by walking the graph, when it is built and can answer: enough of
    /// the dataset is kept by the filter for `n` to be found among the candidates it
    /// visits. `None`: scan instead.
    fn nearest_approximate(
        &self,
        query: &[f32],
        n: usize,
        documents: Option<&HashSet<Uuid>>,
    ) -> Option<Vec<(Uuid, f32)>> {
        let graph = self.approximate.get()?;
        if n * 2 > approximate::SEARCH_BREADTH {
            return None;
        }
        if let Some(only) = documents {
            let kept = self.documents.iter().filter(|d| only.contains(d)).count();
            if kept * approximate::SEARCH_BREADTH < 2 * n * self.ids.len() {
                return None;
            }
        }
        let found = graph.nearest(query, n, |row| {
            documents.is_none_or(|only| only.contains(&self.documents[row]))
        });
        (found.len() == n.min(self.ids.len())).then(|| {
            found
                .into_iter()
                .map(|(row, c)| (self.ids[row], c))
                .collect()
        })
    }

    /// Every vector compared with `query`: the exact `n` nearest.
    fn nearest_exact(
        &self,
        query: &[f32],
        n: usize,
        documents: Option<&HashSet<Uuid>>,
    ) -> Vec<(Uuid, f32)> {
        // A bounded min-heap of the best so far.
        let mut best: std::collections::BinaryHeap<std::cmp::Reverse<(Ordered, usize)>> =
            std::collections::BinaryHeap::with_capacity(n + 1);
        for (i, vector) in self.data.chunks_exact(self.dims).enumerate() {
            if documents.is_some_and(|only| !only.contains(&self.documents[i])) {
                continue;
            }
            let score: f32 = vector.iter().zip(query).map(|(a, b)| a * b).sum();
            if best.len() < n {
                best.push(std::cmp::Reverse((Ordered(score), i)));
            } else if best
                .peek()
                .is_some_and(|std::cmp::Reverse((worst, _))| score > worst.0)
            {
                best.pop();
                best.push(std::cmp::Reverse((Ordered(score), i)));
            }
        }
        let mut found: Vec<(Uuid, f32)> = best
            .into_iter()
            .map(|std::cmp::Reverse((score, i))| (self.ids[i], score.0))
            .collect();
        found.sort_by(|a, b| b.1.total_cmp(&a.1));
        found
    }
}

impl VectorIndex for DatasetVectors {
    fn nearest(
        &self,
        query: &[f32],
        n: usize,
        documents: Option<&HashSet<Uuid>>,
    ) -> Vec<(Uuid, f32)> {
        let Some(query) = normalized(query) else {
            return Vec::new();
        };
        if query.len() != self.dims || n == 0 {
            return Vec::new();
        }
        self.nearest_approximate(&query, n, documents)
            .unwrap_or_else(|| self.nearest_exact(&query, n, documents))
    }

    fn cosines(&self, query: &[f32], ids: &[Uuid]) -> Vec<(Uuid, f32)> {
        let Some(query) = normalized(query) else {
            return Vec::new();
        };
        if query.len() != self.dims {
            return Vec::new();
        }
        ids.iter()
            .filter_map(|id| {
                let row = *self.index.get(id)? as usize;
                let vector = &self.data[row * self.dims..(row + 1) * self.dims];
                Some((*id, vector.iter().zip(&query).map(|(a, b)| a * b).sum()))
            })
            .collect()
    }
}

#[derive(Clone, Copy, PartialEq)]
struct Ordered(f32);
impl Eq for Ordered {}
impl PartialOrd for Ordered {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ordered {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// `v` scaled to length 1; `None` for a zero or non-finite vector.
pub fn normalized(v: &[f32]) -> Option<Vec<f32>> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    (norm.is_finite() && norm > 0.0).then(|| v.iter().map(|x| x / norm).collect())
}

/// The vectors of the datasets searched recently, in this instance.
pub struct VectorCache {
    datasets: Mutex<HashMap<Uuid, Arc<DatasetVectors>>>,
    /// One load at a time (a burst of searches of a new dataset loads it once).
    loading: tokio::sync::Mutex<()>,
    budget_bytes: usize,
    /// Datasets of at least this many vectors get a graph.
    approximate_above: usize,
    clock: AtomicU64,
}

impl VectorCache {
    pub fn new(budget_mb: usize, approximate_above: usize) -> VectorCache {
        VectorCache {
            datasets: Mutex::new(HashMap::new()),
            loading: tokio::sync::Mutex::new(()),
            budget_bytes: budget_mb.saturating_mul(1024 * 1024),
            approximate_above,
            clock: AtomicU64::new(0),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Arc<DatasetVectors>>> {
        self.datasets.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cached(&self, dataset_id: Uuid, version: i64) -> Option<Arc<DatasetVectors>> {
        let found = self
            .map()
            .get(&dataset_id)
            .filter(|v| v.version == version)
            .cloned();
        if let Some(v) = &found {
            let now = self.clock.fetch_add(1, Ordering::Relaxed);
            AtomicU64::store(&v.last_used, now, Ordering::Relaxed);
        }
        found
    }

    /// The vectors of `dataset_id` at `version` (read from its row before this call).
    pub async fn of(
        &self,
        conn: &mut AsyncPgConnection,
        dataset_id: Uuid,
        version: i64,
    ) -> AppResult<Arc<DatasetVectors>> {
        if let Some(found) = self.cached(dataset_id, version) {
            return Ok(found);
        }
        let _one_at_a_time = self.loading.lock().await;
        if let Some(found) = self.cached(dataset_id, version) {
            return Ok(found);
        }
        let rows: Vec<Row> = document_segments::table
            .filter(document_segments::dataset_id.eq(dataset_id))
            .filter(document_segments::embedding.is_not_null())
            .select((
                document_segments::id,
                document_segments::document_id,
                document_segments::embedding,
            ))
            .load(conn)
            .await?;
        let loaded = Arc::new(build(version, rows));
        if loaded.len() >= self.approximate_above {
            // Searches scan until the graph is ready; it is dropped with the vectors. A
            // thread of its own, not a blocking task: shutting down does not wait for it.
            let building = loaded.clone();
            let started = std::thread::Builder::new()
                .name("vector-graph".into())
                .spawn(move || building.build_approximate());
            if let Err(e) = started {
                tracing::warn!(%e, "the vector graph could not be built; searches scan");
            }
        }
        // Just used: the last to be dropped.
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        AtomicU64::store(&loaded.last_used, now, Ordering::Relaxed);
        let mut map = self.map();
        map.insert(dataset_id, loaded.clone());
        // Over budget: drop the least recently used others.
        let mut total: usize = map.values().map(|v| v.bytes()).sum();
        while total > self.budget_bytes {
            let oldest = map
                .iter()
                .filter(|(id, _)| **id != dataset_id)
                .min_by_key(|(_, v)| AtomicU64::load(&v.last_used, Ordering::Relaxed))
                .map(|(id, v)| (*id, v.bytes()));
            match oldest {
                Some((id, bytes)) => {
                    map.remove(&id);
                    total -= bytes;
                }
                None => break,
            }
        }
        Ok(loaded)
    }
}

/// A segment's id, its document's and its embedding.
pub type Row = (Uuid, Uuid, Option<Vec<Option<f32>>>);

/// A dataset's vectors from its rows (as `VectorCache` loads them), without a graph.
pub fn build(version: i64, rows: Vec<Row>) -> DatasetVectors {
    // The dimension of the dataset's embeddings is that of most of them (a model changed
    // half-way leaves some of another size; those cannot be compared and are left out).
    let mut sizes: HashMap<usize, usize> = HashMap::new();
    for (_, _, v) in &rows {
        if let Some(v) = v {
            *sizes.entry(v.len()).or_default() += 1;
        }
    }
    let dims = sizes
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map_or(0, |(d, _)| d);
    let mut ids = Vec::with_capacity(rows.len());
    let mut documents = Vec::with_capacity(rows.len());
    let mut data = Vec::with_capacity(rows.len() * dims);
    for (id, document, vector) in rows {
        let Some(vector) = vector else { continue };
        if vector.len() != dims || dims == 0 {
            continue;
        }
        let plain: Vec<f32> = vector.into_iter().map(|x| x.unwrap_or(0.0)).collect();
        if let Some(unit) = normalized(&plain) {
            ids.push(id);
            documents.push(document);
            data.extend(unit);
        }
    }
    let index = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i as u32))
        .collect();
    DatasetVectors {
        version,
        dims,
        ids,
        documents,
        index,
        data: Arc::from(data),
        approximate: OnceLock::new(),
        last_used: AtomicU64::new(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_ranks_by_cosine_and_skips_other_dimensions() {
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        let c = Uuid::new_v4();
        let odd = Uuid::new_v4();
        let (one, two) = (Uuid::new_v4(), Uuid::new_v4());
        let v = |x: &[f32]| Some(x.iter().map(|f| Some(*f)).collect());
        let vectors = build(
            3,
            vec![
                (a, one, v(&[1.0, 0.0])),
                (b, two, v(&[0.7, 0.7])),
                (c, two, v(&[0.0, 5.0])),
                (odd, one, v(&[1.0, 0.0, 0.0])),
            ],
        );
        assert_eq!(vectors.len(), 3);
        let found = vectors.nearest(&[2.0, 0.1], 2, None);
        assert_eq!(found.iter().map(|f| f.0).collect::<Vec<_>>(), vec![a, b]);
        assert!((found[0].1 - 0.99875).abs() < 1e-3);
        let of_two = vectors.nearest(&[2.0, 0.1], 2, Some(&HashSet::from([two])));
        assert_eq!(of_two.iter().map(|f| f.0).collect::<Vec<_>>(), vec![b, c]);
        let cosines = vectors.cosines(&[2.0, 0.1], &[c, odd, Uuid::new_v4()]);
        assert_eq!(
            cosines.len(),
            1,
            "only segments with a vector of the dimensions"
        );
        assert!((cosines[0].1 - 0.0499).abs() < 1e-3);
        assert!(vectors.nearest(&[1.0, 0.0, 0.0], 2, None).is_empty());
        assert!(vectors.nearest(&[0.0, 0.0], 2, None).is_empty());
    }
}
