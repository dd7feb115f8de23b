//! Splitting a document into segments: by structure first (a Markdown heading starts a new
//! section, paragraphs and code blocks stay whole where they fit; the structure is read by
//! `pulldown-cmark`), then by size (sentences, then words; lines of code),
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
    /// PARENT_CHILD documents: the longest parent segment (`chunk`); `max_tokens` is then
    /// the longest child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_max_tokens: Option<usize>,
}

impl Default for SplitRule {
    fn default() -> Self {
        SplitRule {
            max_tokens: 500,
            overlap_tokens: 50,
            parent_max_tokens: None,
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
        if let Some(parent) = self.parent_max_tokens {
            if !(MIN_MAX_TOKENS..=MAX_MAX_TOKENS).contains(&parent) {
                return Err((
                    "parentMaxTokens",
                    format!("parentMaxTokens is between {MIN_MAX_TOKENS} and {MAX_MAX_TOKENS}"),
                ));
            }
            if self.max_tokens > parent {
                return Err((
                    "maxTokens",
                    "maxTokens (of the child segments) is at most parentMaxTokens".into(),
                ));
            }
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
    /// Joined with a line break (it starts a line of its block), not a space.
    line_break: bool,
}

/// Splits cleaned text (see `text::clean`) into pieces.
pub fn split(text: &str, rule: SplitRule) -> Vec<Piece> {
    let mut pieces = Vec::new();
    for section in sections(text) {
        split_section(&section, rule, &mut pieces);
    }
    pieces
}

/// A block of a section: a paragraph (a list, a quote and a table count as one) or a
/// code block, as its Markdown source.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    text: String,
    code: bool,
}

/// Sections (a heading and the blocks that follow it), read by `pulldown-cmark`: a `#`
/// line inside a code block is code, not a heading; setext headings (`Title` over `===`)
/// are headings too, written as `#` headings.
fn sections(text: &str) -> Vec<Vec<Block>> {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let mut sections: Vec<Vec<Block>> = Vec::new();
    let mut blocks: Vec<Block> = Vec::new();
    let mut depth = 0usize;
    // The heading being read: its level and text.
    let mut heading: Option<(usize, String)> = None;
    for (event, range) in Parser::new_ext(text, Options::ENABLE_TABLES).into_offset_iter() {
        match event {
            Event::Start(tag) => {
                if depth == 0 {
                    match tag {
                        Tag::Heading { level, .. } => {
                            heading = Some((level as usize, String::new()))
                        }
                        Tag::CodeBlock(_) => blocks.push(Block {
                            text: text[range].trim_end().to_string(),
                            code: true,
                        }),
                        _ => {
                            let source = text[range].trim();
                            if !source.is_empty() {
                                blocks.push(Block {
                                    text: source.to_string(),
                                    code: false,
                                });
                            }
                        }
                    }
                }
                depth += 1;
            }
            Event::End(tag) => {
                depth = depth.saturating_sub(1);
                if depth == 0
                    && matches!(tag, TagEnd::Heading(_))
                    && let Some((level, title)) = heading.take()
                {
                    if !blocks.is_empty() {
                        sections.push(std::mem::take(&mut blocks));
                    }
                    let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
                    blocks.push(Block {
                        text: format!("{} {title}", "#".repeat(level))
                            .trim_end()
                            .to_string(),
                        code: false,
                    });
                }
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some((_, title)) = heading.as_mut() {
                    title.push_str(&t);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some((_, title)) = heading.as_mut() {
                    title.push(' ');
                }
            }
            _ => {}
        }
    }
    if !blocks.is_empty() {
        sections.push(blocks);
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
/// overlap; a code block is one unit when it fits, else runs of whole lines.
fn units(blocks: &[Block], rule: SplitRule) -> Vec<Vec<Unit>> {
    let cap = rule.max_tokens - rule.overlap_tokens;
    blocks
        .iter()
        .map(|block| {
            let mut units: Vec<Unit> = Vec::new();
            let push = |units: &mut Vec<Unit>, text: String, tokens: usize, line_break: bool| {
                units.push(Unit {
                    text,
                    tokens,
                    opens_paragraph: units.is_empty(),
                    line_break,
                })
            };
            if block.code {
                let whole = tokens::count(&block.text);
                if whole <= cap {
                    push(&mut units, block.text.clone(), whole, true);
                    return units;
                }
                let mut run = String::new();
                let mut run_tokens = 0;
                for line in block.text.lines() {
                    let n = tokens::count(line) + 1;
                    if n > cap {
                        if !run.is_empty() {
                            push(&mut units, std::mem::take(&mut run), run_tokens, true);
                            run_tokens = 0;
                        }
                        for (text, tokens) in slices(line, cap) {
                            push(&mut units, text, tokens, true);
                        }
                        continue;
                    }
                    if run_tokens + n > cap && !run.is_empty() {
                        push(&mut units, std::mem::take(&mut run), run_tokens, true);
                        run_tokens = 0;
                    }
                    if !run.is_empty() {
                        run.push('\n');
                    }
                    run.push_str(line);
                    run_tokens += n;
                }
                if !run.is_empty() {
                    let n = tokens::count(&run);
                    push(&mut units, run, n, true);
                }
                return units;
            }
            // A line's first sentence keeps its line break (list items, table rows).
            for line in block.text.lines() {
                for (i, sentence) in sentences(line).into_iter().enumerate() {
                    let n = tokens::count(&sentence);
                    if n <= cap {
                        push(&mut units, sentence, n, i == 0);
                    } else {
                        for (j, (text, tokens)) in slices(&sentence, cap).into_iter().enumerate() {
                            push(&mut units, text, tokens, i == 0 && j == 0);
                        }
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
            text.push_str(if unit.opens_paragraph {
                "\n\n"
            } else if unit.line_break {
                "\n"
            } else {
                " "
            });
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
                line_break: false,
            });
        }
    }
    if let Some(first) = taken.first_mut() {
        first.opens_paragraph = false;
    }
    taken
}

/// Packs a section's units into segments.
fn split_section(blocks: &[Block], rule: SplitRule, out: &mut Vec<Piece>) {
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
    for paragraph in units(blocks, rule) {
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
            parent_max_tokens: None,
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
                "## Beta\n\nSecond part.\nStill second."
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
    fn code_blocks_are_kept_whole_and_their_hash_lines_are_not_headings() {
        let code = "```python\n# not a heading\ndef tide(t):\n\n    return t * 2\n```";
        let text = format!(
            "# Tides\n\nIntro sentence. Another one.\n\n{code}\n\nAfter the code.\n\nSetext title\n============\n\nLast."
        );
        let pieces = split(&text, SplitRule::default());
        let contents: Vec<&str> = pieces.iter().map(|p| p.content.as_str()).collect();
        assert_eq!(
            contents,
            vec![
                format!("# Tides\n\nIntro sentence. Another one.\n\n{code}\n\nAfter the code."),
                "# Setext title\n\nLast.".to_string(),
            ]
        );
        // A code block that does not fit the rest of a segment starts the next one whole.
        let filler = (0..30)
            .map(|i| format!("Filler sentence {i} about boats."))
            .collect::<Vec<_>>()
            .join(" ");
        let block = format!(
            "```\n{}\n```",
            (0..12)
                .map(|i| format!("let berth_{i} = harbour.berth({i});"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let pieces = split(&format!("{filler}\n\n{block}"), rule(300, 0));
        assert!(
            pieces.iter().any(|p| p.content.ends_with(&block)),
            "{pieces:?}"
        );
        assert!(
            pieces
                .iter()
                .all(|p| !p.content.contains("```") || p.content.contains(&block))
        );
    }

    #[test]
    fn a_code_block_longer_than_a_segment_is_cut_at_line_ends() {
        let lines: Vec<String> = (0..80)
            .map(|i| format!("    call_harbour_master({i}, \"berth\");"))
            .collect();
        let text = format!("```\n{}\n```", lines.join("\n"));
        let pieces = split(&text, rule(100, 0));
        assert!(pieces.len() > 2);
        for piece in &pieces {
            assert!(piece.tokens <= 100);
            for line in piece.content.lines() {
                assert!(
                    line == "```" || lines.iter().any(|l| l == line),
                    "cut inside a line: {line:?}"
                );
            }
        }
        for line in &lines {
            assert!(pieces.iter().any(|p| p.content.lines().any(|l| l == line)));
        }
    }

    #[test]
    fn rules_are_checked() {
        assert!(rule(500, 50).checked().is_ok());
        assert_eq!(rule(10, 0).checked().unwrap_err().0, "maxTokens");
        assert_eq!(rule(100, 60).checked().unwrap_err().0, "overlapTokens");
        let parent = |p| SplitRule {
            parent_max_tokens: Some(p),
            ..rule(200, 20)
        };
        assert!(parent(1000).checked().is_ok());
        assert_eq!(parent(150).checked().unwrap_err().0, "maxTokens");
        assert_eq!(parent(9000).checked().unwrap_err().0, "parentMaxTokens");
    }
}
