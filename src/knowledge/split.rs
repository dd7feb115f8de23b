//! Splitting a document into segments: by structure first (a Markdown heading starts a new
//! section, paragraphs stay whole where they fit), then by size (sentences, then words),
//! with each segment at most `max_tokens` long and, inside a section, starting with the
//! last `overlap_tokens` or so of the one before.

use std::collections::VecDeque;

use super::tokens;

/// How a document is split (`documents.process_rule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SplitRule {
    pub max_tokens: usize,
    pub overlap_tokens: usize,
}

impl Default for SplitRule {
    fn default() -> Self {
        SplitRule {
            max_tokens: 500,
            overlap_tokens: 50,
        }
    }
}

pub const MIN_MAX_TOKENS: usize = 50;
pub const MAX_MAX_TOKENS: usize = 4000;

impl SplitRule {
    /// The rule, or what is wrong with it (the field and why).
    pub fn checked(self) -> Result<SplitRule, (&'static str, String)> {
        if !(MIN_MAX_TOKENS..=MAX_MAX_TOKENS).contains(&self.max_tokens) {
            return Err((
                "maxTokens",
                format!("maxTokens is between {MIN_MAX_TOKENS} and {MAX_MAX_TOKENS}"),
            ));
        }
        if self.overlap_tokens > self.max_tokens / 2 {
            return Err((
                "overlapTokens",
                "overlapTokens is at most half of maxTokens".into(),
            ));
        }
        Ok(self)
    }
}

/// One segment's text and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub content: String,
    pub tokens: usize,
}

/// A sentence (or a slice of a long one) and how it joins the text before it.
#[derive(Debug, Clone)]
struct Unit {
    text: String,
    tokens: usize,
    /// First of its paragraph: joined with a blank line, not a space.
    opens_paragraph: bool,
}

/// Splits cleaned text (see `text::clean`) into pieces.
pub fn split(text: &str, rule: SplitRule) -> Vec<Piece> {
    let mut pieces = Vec::new();
    for section in sections(text) {
        split_section(&section, rule, &mut pieces);
    }
    pieces
}

fn is_heading(line: &str) -> bool {
    let hashes = line.chars().take_while(|c| *c == '#').count();
    (1..=6).contains(&hashes) && line[hashes..].starts_with(' ')
}

/// Sections (a heading and what follows it), each a list of paragraphs.
fn sections(text: &str) -> Vec<Vec<String>> {
    let mut sections: Vec<Vec<String>> = Vec::new();
    let mut paragraphs: Vec<String> = Vec::new();
    for paragraph in text.split("\n\n") {
        let mut current = String::new();
        for line in paragraph.lines() {
            if is_heading(line.trim_start()) {
                if !current.is_empty() {
                    paragraphs.push(std::mem::take(&mut current));
                }
                if !paragraphs.is_empty() {
                    sections.push(std::mem::take(&mut paragraphs));
                }
                paragraphs.push(line.trim().to_string());
                continue;
            }
            if !current.is_empty() {
                current.push('\n');
            }
            current.push_str(line);
        }
        if !current.trim().is_empty() {
            paragraphs.push(current);
        }
    }
    if !paragraphs.is_empty() {
        sections.push(paragraphs);
    }
    sections
}

/// Sentences of a paragraph: after `.`, `!`, `?` or `;` followed by white space (closing
/// quotes and brackets stay with their sentence), after `。！？；` at once, and at line ends.
fn sentences(paragraph: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in paragraph.lines() {
        let chars: Vec<char> = line.chars().collect();
        let mut start = 0;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let wide = matches!(c, '。' | '！' | '？' | '；');
            if wide || matches!(c, '.' | '!' | '?' | ';') {
                let mut end = i + 1;
                while end < chars.len() && matches!(chars[end], '"' | '\'' | ')' | ']' | '”' | '’')
                {
                    end += 1;
                }
                if wide
                    || end == chars.len()
                    || (chars[end].is_whitespace()
                        && !(c == '.' && abbreviated(&chars, start, i, end)))
                {
                    let sentence: String = chars[start..end].iter().collect();
                    if !sentence.trim().is_empty() {
                        out.push(sentence.trim().to_string());
                    }
                    start = end;
                    i = end;
                    continue;
                }
            }
            i += 1;
        }
        let rest: String = chars[start..].iter().collect();
        if !rest.trim().is_empty() {
            out.push(rest.trim().to_string());
        }
    }
    out
}

/// Abbreviations a period follows without ending the sentence (lower case, without their
/// last period).
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "rev", "gen", "col", "lt", "sgt",
    "e.g", "i.e", "cf", "vs", "viz", "al", "fig", "figs", "eq", "eqs", "vol", "vols", "p", "pp",
    "ch", "sec", "approx", "ca", "est", "dept", "univ", "inc", "ltd", "co", "corp", "jan", "feb",
    "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mon", "tue", "wed",
    "thu", "fri", "sat", "sun", "a.m", "p.m", "u.s", "u.k", "ph.d",
];

/// Whether the period at `at` (a sentence of `chars` running from `start`) closes an
/// abbreviation or an initial ("Dr.", "e.g.", "Jan.", "J. Smith") rather than the sentence;
/// a period followed by a lower-case word does not end one either ("approx. three").
fn abbreviated(chars: &[char], start: usize, at: usize, after: usize) -> bool {
    let word_start = chars[start..at]
        .iter()
        .rposition(|c| c.is_whitespace() || matches!(c, '(' | '[' | '"' | '“'))
        .map_or(start, |p| start + p + 1);
    let word: String = chars[word_start..at]
        .iter()
        .collect::<String>()
        .to_lowercase();
    let initial = word.chars().count() == 1 && word.chars().all(char::is_alphabetic);
    let next_lower = chars[after..]
        .iter()
        .find(|c| !c.is_whitespace())
        .is_some_and(|c| c.is_lowercase());
    // "No. 5" is a number; "the answer is no. Then" ends a sentence.
    let numbered = matches!(word.as_str(), "no" | "nos")
        && chars[after..]
            .iter()
            .find(|c| !c.is_whitespace())
            .is_some_and(|c| c.is_ascii_digit());
    initial || next_lower || numbered || ABBREVIATIONS.contains(&word.as_str())
}

/// Slices of at most `cap` tokens of a text too long to be one unit: by words, and a word
/// too long by characters.
fn slices(text: &str, cap: usize) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut current_tokens = 0;
    let mut words: VecDeque<String> = text.split_whitespace().map(str::to_string).collect();
    while let Some(word) = words.pop_front() {
        let word_tokens = tokens::count(&word);
        if word_tokens > cap {
            // A word longer than a segment (a URL, an encoded blob): cut it by characters.
            let chars: Vec<char> = word.chars().collect();
            let step = (chars.len() * cap / word_tokens.max(1)).max(1);
            for part in chars.chunks(step).rev() {
                words.push_front(part.iter().collect());
            }
            continue;
        }
        let joined = if current.is_empty() {
            word.clone()
        } else {
            format!("{current} {word}")
        };
        let joined_tokens = if current.is_empty() {
            word_tokens
        } else {
            tokens::count(&joined)
        };
        if joined_tokens > cap && !current.is_empty() {
            out.push((std::mem::take(&mut current), current_tokens));
            current = word;
            current_tokens = word_tokens;
        } else {
            current = joined;
            current_tokens = joined_tokens;
        }
    }
    if !current.is_empty() {
        out.push((current, current_tokens));
    }
    out
}

/// The units of a section: sentences, long ones sliced so that one still fits after an
/// overlap.
fn units(paragraphs: &[String], rule: SplitRule) -> Vec<Vec<Unit>> {
    let cap = rule.max_tokens - rule.overlap_tokens;
    paragraphs
        .iter()
        .map(|paragraph| {
            let mut units = Vec::new();
            for sentence in sentences(paragraph) {
                let n = tokens::count(&sentence);
                if n <= cap {
                    units.push(Unit {
                        text: sentence,
                        tokens: n,
                        opens_paragraph: units.is_empty(),
                    });
                } else {
                    for (text, tokens) in slices(&sentence, cap) {
                        units.push(Unit {
                            text,
                            tokens,
                            opens_paragraph: units.is_empty(),
                        });
                    }
                }
            }
            units
        })
        .filter(|units| !units.is_empty())
        .collect()
}

fn join(units: &[Unit]) -> String {
    let mut text = String::new();
    for (i, unit) in units.iter().enumerate() {
        if i > 0 {
            text.push_str(if unit.opens_paragraph { "\n\n" } else { " " });
        }
        text.push_str(&unit.text);
    }
    text
}

/// The end of a finished segment that the next one starts with: whole sentences while they
/// fit in `overlap`, else the last words of its last sentence.
fn overlap_of(units: &[Unit], overlap: usize) -> Vec<Unit> {
    if overlap == 0 {
        return Vec::new();
    }
    let mut taken: Vec<Unit> = Vec::new();
    let mut total = 0;
    for unit in units.iter().rev() {
        if total + unit.tokens > overlap {
            break;
        }
        total += unit.tokens + 1;
        taken.insert(0, unit.clone());
    }
    if taken.is_empty()
        && let Some(last) = units.last()
    {
        let words: Vec<&str> = last.text.split_whitespace().collect();
        let mut tail: Vec<&str> = Vec::new();
        for word in words.iter().rev() {
            tail.insert(0, word);
            if tokens::count(&tail.join(" ")) > overlap {
                tail.remove(0);
                break;
            }
        }
        if !tail.is_empty() && tail.len() < words.len() {
            let text = tail.join(" ");
            taken.push(Unit {
                tokens: tokens::count(&text),
                text,
                opens_paragraph: false,
            });
        }
    }
    if let Some(first) = taken.first_mut() {
        first.opens_paragraph = false;
    }
    taken
}

/// Packs a section's units into segments.
fn split_section(paragraphs: &[String], rule: SplitRule, out: &mut Vec<Piece>) {
    let max = rule.max_tokens;
    let mut current: Vec<Unit> = Vec::new();
    // Units of `current` carried over from the segment before.
    let mut carried = 0;
    let mut used = 0;
    let mut close = |current: &mut Vec<Unit>, carried: &mut usize, used: &mut usize| {
        if current.len() > *carried {
            let mut content = join(current);
            let mut n = tokens::count(&content);
            // The estimate (units plus one token per join) can fall short: give back units.
            let mut given_back: Vec<Unit> = Vec::new();
            while n > max && current.len() > *carried + 1 {
                if let Some(unit) = current.pop() {
                    given_back.insert(0, unit);
                }
                content = join(current);
                n = tokens::count(&content);
            }
            out.push(Piece { content, tokens: n });
            let next = overlap_of(current, rule.overlap_tokens);
            *carried = next.len();
            *used = next.iter().map(|u| u.tokens + 1).sum();
            *current = next;
            for unit in given_back {
                *used += unit.tokens + 1;
                current.push(unit);
            }
        }
    };
    for paragraph in units(paragraphs, rule) {
        let whole: usize = paragraph.iter().map(|u| u.tokens + 1).sum();
        // Structure first: a paragraph that does not fit but would fit a segment of its
        // own starts one, unless the current one is not yet half full.
        if current.len() > carried && used + whole > max && used >= max / 2 {
            close(&mut current, &mut carried, &mut used);
        }
        for unit in paragraph {
            if used + unit.tokens + 1 > max && current.len() > carried {
                close(&mut current, &mut carried, &mut used);
            }
            used += unit.tokens + 1;
            current.push(unit);
        }
    }
    close(&mut current, &mut carried, &mut used);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(max_tokens: usize, overlap_tokens: usize) -> SplitRule {
        SplitRule {
            max_tokens,
            overlap_tokens,
        }
    }

    #[test]
    fn sentences_end_at_terminators_followed_by_space() {
        assert_eq!(
            sentences("Dr. Smith said \"hi.\" Then left! Did he? Yes; 3.14 is pi\nnext line"),
            vec![
                "Dr. Smith said \"hi.\"",
                "Then left!",
                "Did he?",
                "Yes;",
                "3.14 is pi",
                "next line"
            ]
        );
        assert_eq!(sentences("你好。世界！"), vec!["你好。", "世界！"]);
        // Abbreviations, initials and a lower-case continuation do not end a sentence.
        assert_eq!(
            sentences(
                "Tides (e.g. spring tides) peak in Jan. and Feb. Prof. J. R. Smith et al. measured approx. three metres. The U.S. coast too. It ends here."
            ),
            vec![
                "Tides (e.g. spring tides) peak in Jan. and Feb. Prof. J. R. Smith et al. measured approx. three metres.",
                "The U.S. coast too.",
                "It ends here."
            ]
        );
        assert_eq!(
            sentences("See No. 5 first. The answer is no. Then stop."),
            vec!["See No. 5 first.", "The answer is no.", "Then stop."]
        );
    }

    #[test]
    fn a_short_text_is_one_segment() {
        let pieces = split("One paragraph.\n\nAnother one.", SplitRule::default());
        assert_eq!(pieces.len(), 1);
        assert_eq!(pieces[0].content, "One paragraph.\n\nAnother one.");
        assert_eq!(pieces[0].tokens, tokens::count(&pieces[0].content));
    }

    #[test]
    fn headings_start_segments() {
        let text = "# Alpha\n\nFirst part.\n\n## Beta\n\nSecond part.\nStill second.";
        let pieces = split(text, SplitRule::default());
        let contents: Vec<&str> = pieces.iter().map(|p| p.content.as_str()).collect();
        assert_eq!(
            contents,
            vec![
                "# Alpha\n\nFirst part.",
                "## Beta\n\nSecond part. Still second."
            ]
        );
    }

    #[test]
    fn long_text_is_cut_under_the_limit_with_overlap() {
        let sentence =
            |i: usize| format!("Sentence number {i} talks about the harbour and its boats.");
        let text: Vec<String> = (0..60).map(sentence).collect();
        let pieces = split(&text.join(" "), rule(60, 15));
        assert!(pieces.len() > 5, "{}", pieces.len());
        for piece in &pieces {
            assert!(
                piece.tokens <= 60,
                "{} tokens: {}",
                piece.tokens,
                piece.content
            );
            assert_eq!(piece.tokens, tokens::count(&piece.content));
        }
        // Each segment starts with the last sentence of the one before.
        for pair in pieces.windows(2) {
            let last = sentences(&pair[0].content).pop().unwrap_or_default();
            assert!(pair[1].content.starts_with(&last), "{pair:?}");
        }
        // Nothing is lost.
        for i in 0..60 {
            assert!(
                pieces.iter().any(|p| p.content.contains(&sentence(i))),
                "{i}"
            );
        }
    }

    #[test]
    fn paragraphs_stay_whole_when_they_fit() {
        let paragraph = |w: &str| format!("{w} {w} {w} {w} {w} {w} {w} {w} {w} {w}.");
        let text = [paragraph("alpha"), paragraph("beta"), paragraph("gamma")].join("\n\n");
        let pieces = split(&text, rule(50, 0));
        for piece in &pieces {
            for part in piece.content.split("\n\n") {
                assert!(part.ends_with('.'), "a paragraph was cut: {piece:?}");
            }
        }
    }

    #[test]
    fn a_sentence_longer_than_a_segment_is_cut_by_words_and_a_blob_by_characters() {
        let long = (0..400)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let blob = "x".repeat(5000);
        for text in [long, blob] {
            let pieces = split(&text, rule(100, 20));
            assert!(pieces.len() > 2);
            for piece in &pieces {
                assert!(piece.tokens <= 100, "{}", piece.tokens);
            }
        }
    }

    #[test]
    fn rules_are_checked() {
        assert!(rule(500, 50).checked().is_ok());
        assert_eq!(rule(10, 0).checked().unwrap_err().0, "maxTokens");
        assert_eq!(rule(100, 60).checked().unwrap_err().0, "overlapTokens");
    }
}
