//! Fusing a dataset's keyword and vector candidates into one score from 0 to 1: a convex
//! combination of the two scores, each first normalized over the candidates (min-max), so
//! that neither side's scale (BM25 is unbounded, cosines of one model crowd into a narrow
//! band) decides the weight instead of `w`:
//!
//! `score = w × vector′ + (1 − w) × keyword′`, with `w` the dataset's
//! `vector_similarity_weight`, `keyword′ = (bm25 − min) / (max − min)` and the same for
//! the cosine. Every candidate (from either side) has both scores: the keyword side's from
//! the postings, the vector side's from the vectors in memory. A dataset searched by
//! keywords only scores `keyword′` alone, from 0 (BM25 over its best: `min` is 0 there).

use uuid::Uuid;

/// A candidate segment with both its scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub id: Uuid,
    /// BM25 (0 when it holds none of the query's terms).
    pub bm25: f64,
    /// The cosine with the query, for a dataset searched by vector (`None` for a segment
    /// without an embedding).
    pub cosine: Option<f64>,
}

/// A candidate's scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Fused {
    pub id: Uuid,
    pub score: f64,
    /// BM25 normalized over the candidates (0 to 1).
    pub keyword: f64,
    /// The cosine, for candidates with an embedding.
    pub vector: Option<f64>,
}

/// (min, max) of `values`; (0, 0) when there are none.
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .fold(None, |acc: Option<(f64, f64)>, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
        .unwrap_or((0.0, 0.0))
}

fn scaled(v: f64, (lo, hi): (f64, f64)) -> f64 {
    if hi > lo {
        (v - lo) / (hi - lo)
    } else if v > 0.0 {
        1.0
    } else {
        0.0
    }
}

/// Fuses `candidates` with weight `w` on the vector side when `by_vector` (a dataset
/// searched by vector too): every candidate, best first (ties by id).
pub fn fuse(candidates: &[Candidate], w: f64, by_vector: bool) -> Vec<Fused> {
    let keyword_bounds = if by_vector {
        bounds(candidates.iter().map(|c| c.bm25))
    } else {
        (0.0, bounds(candidates.iter().map(|c| c.bm25)).1)
    };
    let vector_bounds = bounds(candidates.iter().filter_map(|c| c.cosine));
    let mut fused: Vec<Fused> = candidates
        .iter()
        .map(|c| {
            let keyword = scaled(c.bm25, keyword_bounds);
            let score = if by_vector {
                let vector = c.cosine.map_or(0.0, |v| scaled(v, vector_bounds));
                w * vector + (1.0 - w) * keyword
            } else {
                keyword
            };
            Fused {
                id: c.id,
                score,
                keyword,
                vector: c.cosine,
            }
        })
        .collect();
    fused.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(n: u128, bm25: f64, cosine: Option<f64>) -> Candidate {
        Candidate {
            id: Uuid::from_u128(n),
            bm25,
            cosine,
        }
    }

    #[test]
    fn keyword_only_scores_relative_to_the_best() {
        let fused = fuse(
            &[candidate(1, 2.0, None), candidate(2, 8.0, None)],
            0.7,
            false,
        );
        assert_eq!(fused[0].id, Uuid::from_u128(2));
        assert_eq!(fused[0].score, 1.0);
        assert_eq!(fused[1].score, 0.25);
    }

    #[test]
    fn both_sides_are_scaled_to_the_candidates_then_weighed() {
        // Cosines crowd into 0.60..0.64; BM25 spreads over 1..9.
        let fused = fuse(
            &[
                candidate(1, 9.0, Some(0.60)),
                candidate(2, 5.0, Some(0.64)),
                candidate(3, 1.0, Some(0.62)),
                candidate(4, 3.0, None),
            ],
            0.5,
            true,
        );
        let score = |n| {
            fused
                .iter()
                .find(|f| f.id == Uuid::from_u128(n))
                .map(|f| f.score)
                .unwrap_or(f64::NAN)
        };
        assert!((score(1) - 0.5).abs() < 1e-12);
        assert!((score(2) - 0.75).abs() < 1e-12);
        assert!((score(3) - 0.25).abs() < 1e-12);
        // No embedding: its vector part is 0.
        assert!((score(4) - 0.125).abs() < 1e-12);
        assert_eq!(fused[0].id, Uuid::from_u128(2));
        assert_eq!(fused[0].vector, Some(0.64));
        // All weight on one side orders by it.
        let vectors = fuse(
            &[candidate(1, 9.0, Some(0.60)), candidate(2, 5.0, Some(0.64))],
            1.0,
            true,
        );
        assert_eq!(vectors[0].id, Uuid::from_u128(2));
    }
}
