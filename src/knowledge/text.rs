//! Text as indexing sees it: cleaned, its words counted, its keywords picked.

use std::collections::HashMap;

/// Normalizes line ends and spaces, drops control and zero-width characters, trims each
/// line's trailing spaces and keeps at most one blank line between paragraphs.
pub fn clean(raw: &str) -> String {
    let unified = raw.replace("\r\n", "\n").replace('\r', "\n");
    let mut lines: Vec<String> = Vec::new();
    for line in unified.split('\n') {
        let mut out = String::with_capacity(line.len());
        let mut last_space = false;
        for c in line.chars() {
            let c = match c {
                '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{FEFF}' => continue,
                '\t' | '\u{00A0}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' => ' ',
                c if c.is_control() => continue,
                c => c,
            };
            if c == ' ' {
                // Leading indentation is kept (lists, code); runs inside a line are not.
                if last_space && !out.trim().is_empty() {
                    continue;
                }
                last_space = true;
            } else {
                last_space = false;
            }
            out.push(c);
        }
        lines.push(out.trim_end().to_string());
    }
    let mut text = String::with_capacity(unified.len());
    let mut blank_run = 0;
    for line in lines {
        if line.is_empty() {
            blank_run += 1;
            continue;
        }
        if !text.is_empty() {
            text.push_str(if blank_run > 0 { "\n\n" } else { "\n" });
        }
        blank_run = 0;
        text.push_str(&line);
    }
    text
}

fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30FF}' | '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}'
        | '\u{AC00}'..='\u{D7AF}' | '\u{F900}'..='\u{FAFF}')
}

/// Words: runs separated by white space; in Chinese, Japanese and Korean text, where words
/// are not separated, each character counts as one.
pub fn word_count(text: &str) -> usize {
    text.split_whitespace()
        .map(|piece| {
            let cjk = piece.chars().filter(|c| is_cjk(*c)).count();
            let rest = piece
                .split(is_cjk)
                .filter(|s| s.chars().any(char::is_alphanumeric))
                .count();
            cjk + rest
        })
        .sum()
}

const STOPWORDS: &[&str] = &[
    "about", "above", "after", "again", "against", "all", "also", "among", "and", "any", "are",
    "because", "been", "before", "being", "below", "between", "both", "but", "can", "could", "did",
    "does", "doing", "down", "during", "each", "else", "even", "ever", "every", "few", "for",
    "from", "further", "had", "has", "have", "having", "her", "here", "hers", "him", "his", "how",
    "into", "its", "itself", "just", "let", "like", "made", "make", "many", "may", "more", "most",
    "much", "must", "near", "nor", "not", "now", "off", "often", "once", "one", "only", "other",
    "ought", "our", "ours", "out", "over", "own", "same", "shall", "she", "should", "since",
    "some", "still", "such", "than", "that", "the", "their", "theirs", "them", "then", "there",
    "these", "they", "this", "those", "though", "through", "thus", "too", "under", "until", "upon",
    "very", "was", "were", "what", "when", "where", "which", "while", "who", "whom", "whose",
    "why", "will", "with", "within", "without", "would", "yet", "you", "your", "yours",
];

/// The `n` words that say most about `text`: the most frequent words of three letters or
/// more that are not common English words, ties in order of appearance.
pub fn keywords(text: &str, n: usize) -> Vec<String> {
    let mut seen: HashMap<String, (usize, usize)> = HashMap::new();
    let words = text
        .split(|c: char| !c.is_alphanumeric() && c != '-' && c != '\'')
        .map(|w| w.strip_suffix("'s").unwrap_or(w))
        .map(|w| w.trim_matches(|c: char| c == '-' || c == '\''))
        .filter(|w| w.chars().count() >= 3 && w.chars().any(char::is_alphabetic))
        .map(str::to_lowercase)
        .filter(|w| STOPWORDS.binary_search(&w.as_str()).is_err());
    for (i, word) in words.enumerate() {
        seen.entry(word).or_insert((0, i)).0 += 1;
    }
    let mut ranked: Vec<(String, (usize, usize))> = seen.into_iter().collect();
    ranked.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.1.1.cmp(&b.1.1)));
    ranked.into_iter().take(n).map(|(w, _)| w).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning_normalizes_space_and_blank_lines() {
        let raw = "Title\r\n\r\n\r\n\r\nFirst\u{200B}  line\t here   \r\nsecond\u{0007} line\n\n\n  - item";
        assert_eq!(
            clean(raw),
            "Title\n\nFirst line here\nsecond line\n\n  - item"
        );
    }

    #[test]
    fn words_are_counted_in_spaced_and_unspaced_scripts() {
        assert_eq!(word_count("The quick brown fox."), 4);
        assert_eq!(word_count("知识库 is here"), 5);
        assert_eq!(word_count(" -- "), 0);
    }

    #[test]
    fn keywords_are_frequent_uncommon_words() {
        let text = "The lighthouse keeper trimmed the lighthouse lamp. The keeper's lamp burned \
                    all night, and the lighthouse stood.";
        assert_eq!(keywords(text, 3), vec!["lighthouse", "keeper", "lamp"]);
    }

    #[test]
    fn the_stopword_list_is_sorted_for_binary_search() {
        assert!(STOPWORDS.windows(2).all(|w| w[0] < w[1]));
    }
}
