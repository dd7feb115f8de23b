//! Chunk modes: how a document becomes what search finds and what the model is given.
//!
//! - GENERAL: segments (`split`), each searched and given as it is.
//! - PARENT_CHILD: the document is cut into parent segments of up to `parentMaxTokens`
//!   (sections kept whole where they fit), each parent into child segments of up to
//!   `maxTokens`. Children are searched, precise because they are small; a child found
//!   stands for its parent, which is what the model is given (several children of one
//!   parent count once).
//! - QA: rows of question and answer (a CSV file, CSV text or a spreadsheet, its first
//!   two columns; a first row naming them is a heading). The question is searched, the
//!   pair is given.

use super::split::{self, Piece, SplitRule};
use super::tokens;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkMode {
    General,
    ParentChild,
    Qa,
}

impl ChunkMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ChunkMode::General => "GENERAL",
            ChunkMode::ParentChild => "PARENT_CHILD",
            ChunkMode::Qa => "QA",
        }
    }

    /// The stored mode (`documents.chunk_mode`); an unknown one reads as GENERAL.
    pub fn of(stored: &str) -> ChunkMode {
        match stored {
            "PARENT_CHILD" => ChunkMode::ParentChild,
            "QA" => ChunkMode::Qa,
            _ => ChunkMode::General,
        }
    }
}

/// One searched segment: its text (for QA, the question), the parent it stands for (an
/// index into `Chunks::parents`), and the answer of a QA pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub piece: Piece,
    pub parent: Option<usize>,
    pub answer: Option<String>,
}

/// What indexing writes for a document.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Chunks {
    pub parents: Vec<Piece>,
    pub segments: Vec<Chunk>,
}

/// GENERAL: the segments of `split`.
pub fn general(text: &str, rule: SplitRule) -> Chunks {
    Chunks {
        parents: Vec::new(),
        segments: split::split(text, rule)
            .into_iter()
            .map(|piece| Chunk {
                piece,
                parent: None,
                answer: None,
            })
            .collect(),
    }
}

/// PARENT_CHILD: parents of up to `rule.parent_max_tokens` (no overlap: the model is
/// given whole parents), each split into children by `rule`.
pub fn parent_child(text: &str, rule: SplitRule) -> Chunks {
    let parent_rule = SplitRule {
        max_tokens: rule.parent_max_tokens.unwrap_or(DEFAULT_PARENT_MAX_TOKENS),
        overlap_tokens: 0,
        parent_max_tokens: None,
    };
    let child_rule = SplitRule {
        parent_max_tokens: None,
        ..rule
    };
    let parents = split::split(text, parent_rule);
    let mut segments = Vec::new();
    for (index, parent) in parents.iter().enumerate() {
        for piece in split::split(&parent.content, child_rule) {
            segments.push(Chunk {
                piece,
                parent: Some(index),
                answer: None,
            });
        }
    }
    Chunks { parents, segments }
}

/// The parent size when none is given.
pub const DEFAULT_PARENT_MAX_TOKENS: usize = 1000;

/// The child rule of a PARENT_CHILD document when none is given: small children.
pub const DEFAULT_CHILD_RULE: SplitRule = SplitRule {
    max_tokens: 200,
    overlap_tokens: 20,
    parent_max_tokens: Some(DEFAULT_PARENT_MAX_TOKENS),
};

/// Rows read as question-and-answer pairs: the first two cells of each row; a first row
/// whose cells name the columns ("question", "answer", "Q", "A", "问题", "答案") is their
/// heading. A row without both, or a pair longer than a segment may be, is refused with
/// its number (counted from 1, as a spreadsheet shows it).
pub fn pairs(rows: &[Vec<String>]) -> Result<Vec<(String, String)>, String> {
    let heading = |cell: Option<&String>, names: &[&str]| {
        cell.is_some_and(|c| names.contains(&c.trim().to_lowercase().as_str()))
    };
    let skip = usize::from(rows.first().is_some_and(|first| {
        heading(first.first(), &["question", "questions", "q", "问题"])
            && heading(first.get(1), &["answer", "answers", "a", "答案"])
    }));
    let mut out = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate().skip(skip) {
        let number = i + 1;
        let question = row.first().map(|c| c.trim()).unwrap_or("");
        let answer = row.get(1).map(|c| c.trim()).unwrap_or("");
        if question.is_empty() || answer.is_empty() {
            return Err(format!(
                "row {number} needs a question (first column) and an answer (second column)"
            ));
        }
        let n = tokens::count(question) + tokens::count(answer);
        if n > split::MAX_MAX_TOKENS {
            return Err(format!(
                "row {number} is {n} tokens long; a pair holds at most {}",
                split::MAX_MAX_TOKENS
            ));
        }
        out.push((question.to_string(), answer.to_string()));
    }
    if out.is_empty() {
        return Err("there are no question-and-answer rows".into());
    }
    Ok(out)
}

/// QA: one segment per pair, its content the question.
pub fn question_answer(rows: &[Vec<String>]) -> Result<Chunks, String> {
    Ok(Chunks {
        parents: Vec::new(),
        segments: pairs(rows)?
            .into_iter()
            .map(|(question, answer)| Chunk {
                piece: Piece {
                    tokens: tokens::count(&question),
                    content: question,
                },
                parent: None,
                answer: Some(answer),
            })
            .collect(),
    })
}

/// What the model is given for a QA segment.
pub fn qa_context(question: &str, answer: &str) -> String {
    format!("Question: {question}\nAnswer: {answer}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(rows: &[&[&str]]) -> Vec<Vec<String>> {
        rows.iter()
            .map(|r| r.iter().map(|c| c.to_string()).collect())
            .collect()
    }

    #[test]
    fn children_are_cut_from_their_parents() {
        let section = |name: &str| {
            let body = (0..40)
                .map(|i| format!("Sentence {i} of the {name} section describes berths."))
                .collect::<Vec<_>>()
                .join(" ");
            format!("# {name}\n\n{body}")
        };
        let text = [section("North"), section("South")].join("\n\n");
        let rule = SplitRule {
            max_tokens: 60,
            overlap_tokens: 0,
            parent_max_tokens: Some(1000),
        };
        let chunks = parent_child(&text, rule);
        // The two sections are the two parents, each whole.
        assert_eq!(chunks.parents.len(), 2);
        assert!(chunks.parents[0].content.starts_with("# North"));
        assert!(chunks.parents[1].content.starts_with("# South"));
        assert!(chunks.segments.len() > 4);
        for child in &chunks.segments {
            assert!(child.piece.tokens <= 60);
            let parent = &chunks.parents[child.parent.unwrap()];
            assert!(
                parent.content.contains(
                    child
                        .piece
                        .content
                        .trim_start_matches("# North\n\n")
                        .trim_start_matches("# South\n\n")
                )
            );
        }
        // Both parents have children, in order.
        let owners: Vec<usize> = chunks.segments.iter().map(|c| c.parent.unwrap()).collect();
        assert!(owners.windows(2).all(|w| w[0] <= w[1]) && owners.contains(&1));
    }

    #[test]
    fn rows_become_pairs() {
        let chunks = question_answer(&rows(&[
            &["Question", "Answer"],
            &["When is high tide?", "At noon."],
            &["Where is berth 4?", "North quay.", "ignored"],
        ]))
        .unwrap();
        assert_eq!(chunks.segments.len(), 2);
        assert_eq!(chunks.segments[0].piece.content, "When is high tide?");
        assert_eq!(chunks.segments[0].answer.as_deref(), Some("At noon."));
        // Without a heading, the first row is a pair.
        assert_eq!(pairs(&rows(&[&["a?", "b."]])).unwrap().len(), 1);
        assert_eq!(
            pairs(&rows(&[&["q", "a"], &["x?", "y"], &["only a question"]])).unwrap_err(),
            "row 3 needs a question (first column) and an answer (second column)"
        );
        assert!(
            pairs(&rows(&[&["问题", "答案"]]))
                .unwrap_err()
                .contains("no question")
        );
        let long = "word ".repeat(5000);
        assert!(
            pairs(&rows(&[&["q?", long.as_str()]]))
                .unwrap_err()
                .starts_with("row 1 is")
        );
    }
}
