//! The knowledge benchmark of `bench/knowledge`. DOCS documents of generated prose (a fixed
//! pseudo-random vocabulary spread as content words are, paragraphs and headings), about
//! SEGMENTS segments each, are added to a HIGH_QUALITY dataset embedded by the ECHO
//! provider. It reports:
//!
//! - ingestion: segments per second from the first `createDocument` to the last COMPLETED
//!   (reading, splitting, token counting, keywords, embeddings, writing);
//! - retrieval: QUERIES `searchDataset` calls of two or three words, one at a time, with
//!   the dataset keyword-only (switched to KEYWORD) and then hybrid (HIGH_QUALITY again);
//!   latency p50/p99 as the client sees it, the first hybrid search (which loads the
//!   dataset's vectors into memory) apart.
//!
//!   knowledge_bench DOCS SEGMENTS QUERIES
//!
//! Reads WEFT_URL (the server).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

// Shared with the other benchmark clients; this one opens no socket.
#[allow(dead_code)]
#[path = "support/api.rs"]
mod api;

use api::Error;

/// Tokens per segment asked of the splitter.
const MAX_TOKENS: u64 = 100;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: u64| -> u64 {
        args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run(number(0, 100), number(1, 1000), number(2, 300)))
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A word index by the Zipf-Mandelbrot law p(r) ∝ 1/(r + 100): the spread of the
    /// words of English prose once its hundred or so most common (stop) words are left out,
    /// as full-text search leaves them out.
    fn word(&mut self, vocabulary: usize) -> usize {
        const Q: f64 = 100.0;
        let u = (self.below(1_000_000) as f64 + 1.0) / 1_000_001.0;
        let v = vocabulary as f64;
        let r = Q * ((v + Q) / Q).powf(u) - Q;
        (r as usize).min(vocabulary - 1)
    }
}

const SYLLABLES: [&str; 32] = [
    "ka", "lo", "mi", "ren", "tal", "vos", "dun", "pel", "sor", "gri", "mab", "tek", "zu", "nor",
    "fi", "bal", "qua", "sim", "dra", "wen", "hol", "pry", "cas", "lum", "ber", "tor", "vin",
    "xel", "mor", "jas", "yul", "gan",
];

/// 20,000 made-up words of two or three syllables.
fn vocabulary() -> Vec<String> {
    let mut words = Vec::new();
    'outer: for a in SYLLABLES {
        for b in SYLLABLES {
            words.push(format!("{a}{b}"));
            for c in SYLLABLES {
                words.push(format!("{a}{b}{c}"));
                if words.len() >= 20_000 {
                    break 'outer;
                }
            }
        }
    }
    words
}

/// About `segments` segments of prose: sentences of 6 to 16 words, paragraphs of 3 to 6
/// sentences, a heading every 5 paragraphs.
fn document(rng: &mut Rng, words: &[String], segments: u64) -> String {
    // The made-up words are about three tokens each: some 25 fill a segment.
    let target_words = segments * 25;
    let mut text = String::new();
    let mut written = 0;
    let mut paragraph = 0;
    while written < target_words {
        if paragraph % 5 == 0 {
            text.push_str(&format!("## Part {}\n\n", paragraph / 5 + 1));
        }
        for _ in 0..3 + rng.below(4) {
            let n = 6 + rng.below(11);
            for i in 0..n {
                let word = &words[rng.word(words.len())];
                if i == 0 {
                    let mut chars = word.chars();
                    if let Some(first) = chars.next() {
                        text.extend(first.to_uppercase());
                        text.push_str(chars.as_str());
                    }
                } else {
                    text.push(' ');
                    text.push_str(word);
                }
            }
            text.push_str(". ");
            written += n;
        }
        text.push_str("\n\n");
        paragraph += 1;
    }
    text
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn run(docs: u64, segments: u64, queries: u64) -> Result<(), Error> {
    let api = api::Api::from_env();
    let (token, workspace) = api.builder("knowledge-bench").await?;
    let t = Some(token.as_str());
    let provider = api
        .call(
            "mutation($i: CreateLlmProviderInput!) { createLlmProvider(input: $i) { id } }",
            json!({ "i": { "workspaceId": workspace, "name": "Echo", "providerType": "ECHO",
                           "models": ["echo"], "defaultModel": "echo" } }),
            t,
        )
        .await?["createLlmProvider"]["id"]
        .clone();
    let dataset = api
        .call(
            "mutation($i: CreateDatasetInput!) { createDataset(input: $i) { id } }",
            json!({ "i": { "workspaceId": workspace, "name": "Bench", "indexingTechnique": "HIGH_QUALITY",
                           "embeddingProviderId": provider, "embeddingModel": "echo", "topK": 10 } }),
            t,
        )
        .await?["createDataset"]["id"]
        .clone();

    let words = vocabulary();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let texts: Vec<String> = (0..docs)
        .map(|_| document(&mut rng, &words, segments))
        .collect();
    let megabytes = texts.iter().map(String::len).sum::<usize>() as f64 / 1e6;
    println!("== ingestion: {docs} documents, {megabytes:.1} MB of text, maxTokens {MAX_TOKENS}");
    let started = Instant::now();
    for (i, text) in texts.iter().enumerate() {
        api.call(
            "mutation($i: CreateDocumentInput!) { createDocument(input: $i) { id } }",
            json!({ "i": { "datasetId": dataset, "name": format!("doc-{i}"), "text": text,
                           "maxTokens": MAX_TOKENS, "overlapTokens": 0 } }),
            t,
        )
        .await?;
    }
    let status = "query($id: UUID!) { dataset(id: $id) {
        done: documents(first: 1, filter: { indexingStatus: COMPLETED }) { totalCount }
        failed: documents(first: 1, filter: { indexingStatus: ERROR }) { totalCount } } }";
    loop {
        let read = api.call(status, json!({ "id": dataset }), t).await?;
        let done = read["dataset"]["done"]["totalCount"].as_u64().unwrap_or(0);
        let failed = read["dataset"]["failed"]["totalCount"]
            .as_u64()
            .unwrap_or(0);
        if failed > 0 {
            return Err(format!("{failed} documents failed to index").into());
        }
        if done == docs {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let counted = api
        .call(
            "query($id: UUID!) { dataset(id: $id) { tokens documents(first: 100) { nodes { segments(first: 1) { totalCount } } } } }",
            json!({ "id": dataset }),
            t,
        )
        .await?;
    let total: u64 = counted["dataset"]["documents"]["nodes"]
        .as_array()
        .map(|d| {
            d.iter()
                .map(|n| n["segments"]["totalCount"].as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0);
    println!(
        "  {total} segments ({} tokens) in {elapsed:.1} s: {:.0} segments/s, {:.2} MB/s",
        counted["dataset"]["tokens"],
        total as f64 / elapsed,
        megabytes / elapsed
    );

    let query_texts: Vec<String> = (0..queries)
        .map(|_| {
            let n = 2 + rng.below(2);
            (0..n)
                .map(|_| words[rng.word(words.len())].clone())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let search = "query($d: UUID!, $q: String!) { searchDataset(datasetId: $d, query: $q, topK: 10) { score } }";
    let set_technique = async |technique: &str| {
        api.call(
            "mutation($i: UpdateDatasetInput!) { updateDataset(input: $i) { id } }",
            json!({ "i": { "id": dataset, "indexingTechnique": technique } }),
            t,
        )
        .await
    };
    for (label, technique) in [("keyword", "KEYWORD"), ("hybrid", "HIGH_QUALITY")] {
        set_technique(technique).await?;
        let mut latencies = Vec::new();
        let mut found = 0usize;
        let mut first = None;
        for q in &query_texts {
            let at = Instant::now();
            let answer: Value = api.call(search, json!({ "d": dataset, "q": q }), t).await?;
            let ms = at.elapsed().as_secs_f64() * 1000.0;
            found += answer["searchDataset"].as_array().map_or(0, Vec::len);
            if first.is_none() {
                first = Some(ms);
                continue;
            }
            latencies.push(ms);
        }
        latencies.sort_by(f64::total_cmp);
        println!(
            "== {label} search over {total} segments, {} queries: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; first {:.1} ms; {:.1} results per query",
            latencies.len(),
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies.last().copied().unwrap_or(0.0),
            first.unwrap_or(0.0),
            found as f64 / query_texts.len().max(1) as f64,
        );
    }
    Ok(())
}
