//! HTML pages as Markdown-shaped text, rendered by `html2text`: entities decoded, scripts,
//! styles and attributes gone (a link is its text, an image its alternative text),
//! headings as `#` headings, lists as `- ` items, table rows one per line, and `<pre>`
//! blocks fenced as code so that splitting keeps them whole and never reads a `#` line in
//! them as a heading.

use html2text::render::{TaggedLine, TextDecorator};

/// What a rendered span is: running text or preformatted text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Span {
    #[default]
    Text,
    Preformatted,
}

/// Renders markup as the Markdown that splitting reads, and nothing else.
#[derive(Clone)]
struct MarkdownShape;

impl TextDecorator for MarkdownShape {
    type Annotation = Span;

    fn decorate_link_start(&mut self, _url: &str) -> (String, Span) {
        (String::new(), Span::Text)
    }
    fn decorate_link_end(&mut self) -> String {
        String::new()
    }
    fn decorate_em_start(&self) -> (String, Span) {
        (String::new(), Span::Text)
    }
    fn decorate_em_end(&self) -> String {
        String::new()
    }
    fn decorate_strong_start(&self) -> (String, Span) {
        (String::new(), Span::Text)
    }
    fn decorate_strong_end(&self) -> String {
        String::new()
    }
    fn decorate_strikeout_start(&self) -> (String, Span) {
        (String::new(), Span::Text)
    }
    fn decorate_strikeout_end(&self) -> String {
        String::new()
    }
    fn decorate_code_start(&self) -> (String, Span) {
        (String::new(), Span::Text)
    }
    fn decorate_code_end(&self) -> String {
        String::new()
    }
    fn decorate_preformat_first(&self) -> Span {
        Span::Preformatted
    }
    fn decorate_preformat_cont(&self) -> Span {
        Span::Preformatted
    }
    fn decorate_image(&mut self, _src: &str, title: &str) -> (String, Span) {
        (title.to_string(), Span::Text)
    }
    fn header_prefix(&self, level: usize) -> String {
        "#".repeat(level.clamp(1, 6)) + " "
    }
    fn quote_prefix(&self) -> String {
        "> ".into()
    }
    fn unordered_item_prefix(&self) -> String {
        "- ".into()
    }
    fn ordered_item_prefix(&self, i: i64) -> String {
        format!("{i}. ")
    }
    fn make_subblock_decorator(&self) -> Self {
        self.clone()
    }
    /// No footnotes of link addresses.
    fn finalise(&mut self, _urls: Vec<String>) -> Vec<TaggedLine<Span>> {
        Vec::new()
    }
}

/// Wide enough that no line of running text is wrapped.
const WIDTH: usize = 1 << 20;

/// The page's text (see the module's comment).
pub(super) fn text(html: &str) -> Result<String, String> {
    let lines = html2text::config::with_decorator(MarkdownShape)
        .no_table_borders()
        .lines_from_read(html.as_bytes(), WIDTH)
        .map_err(|e| format!("the HTML page cannot be read: {e}"))?;
    let lines: Vec<(String, bool)> = lines
        .iter()
        .map(|line| {
            let text: String = line.tagged_strings().map(|s| s.s.as_str()).collect();
            let preformatted = line
                .tagged_strings()
                .any(|s| s.tag.contains(&Span::Preformatted));
            (text.trim_end().to_string(), preformatted)
        })
        .collect();
    let mut out = String::with_capacity(html.len() / 2);
    let mut in_code = false;
    // The fence the open code block began with, to close it with.
    let mut fence = String::new();
    for (i, (text, preformatted)) in lines.iter().enumerate() {
        // A blank line between two preformatted ones belongs to the block.
        let code = *preformatted
            || (in_code
                && text.is_empty()
                && lines[i + 1..]
                    .iter()
                    .find(|(t, _)| !t.is_empty())
                    .is_some_and(|(_, p)| *p));
        if code && !in_code {
            if !out.is_empty() && !out.ends_with("\n\n") {
                out.push('\n');
            }
            fence = fence_for(&lines[i..]);
            out.push_str(&fence);
            out.push('\n');
        } else if !code && in_code {
            out.push_str(&fence);
            out.push('\n');
            if !text.is_empty() {
                out.push('\n');
            }
        }
        in_code = code;
        out.push_str(text);
        out.push('\n');
    }
    if in_code {
        out.push_str(&fence);
        out.push('\n');
    }
    Ok(out.trim().to_string())
}

/// A fence longer than any run of backticks in the block that starts `lines`.
fn fence_for(lines: &[(String, bool)]) -> String {
    let longest = lines
        .iter()
        .take_while(|(_, p)| *p)
        .map(|(t, _)| t.split(|c| c != '`').map(str::len).max().unwrap_or(0))
        .max()
        .unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_keep_their_structure_and_lose_their_markup() {
        let html = r#"<!doctype html><html><head><title>T</title><style>p{}</style></head>
            <body><h1>Tides &amp; Moons</h1><p>The sea
            rises <b>twice</b> a day, see <a href="http://example.com/secret?token=1" onclick="steal()">the chart</a>.</p><!-- note -->
            <script>var x = "<p>no</p>";</script>
            <ul><li>Spring tides</li><li>Neap&#160;tides</li></ul><h2>Next</h2><p data-x="attribute">More&hellip; <img src="a.png" alt="a tide table"></p></body></html>"#;
        let text = text(html).unwrap();
        assert_eq!(
            text,
            // (`text::clean` makes the no-break space a space.)
            "# Tides & Moons\n\nThe sea rises twice a day, see the chart.\n- Spring tides\n- Neap\u{a0}tides\n\n## Next\n\nMore… a tide table"
        );
        for leaked in [
            "example.com",
            "steal",
            "attribute",
            "a.png",
            "var x",
            "note",
        ] {
            assert!(!text.contains(leaked), "{leaked} leaked into {text}");
        }
    }

    #[test]
    fn preformatted_blocks_become_code_blocks() {
        let html = "<p>Before</p><pre>fn main() {\n    let x = 1;\n\n    # not a heading\n}</pre><p>After</p>";
        assert_eq!(
            text(html).unwrap(),
            "Before\n\n```\nfn main() {\n    let x = 1;\n\n    # not a heading\n}\n```\n\nAfter"
        );
        // Backticks inside the block get a longer fence.
        assert_eq!(text("<pre>a ``` b</pre>").unwrap(), "````\na ``` b\n````");
        assert_eq!(
            text("<p>Before</p><pre>a ``` b</pre><p>After</p>").unwrap(),
            "Before\n\n````\na ``` b\n````\n\nAfter"
        );
    }

    #[test]
    fn tables_are_rows_of_cells() {
        let html = "<table><tr><th>Port</th><th>Depth</th></tr><tr><td>Harbour</td><td>12 m</td></tr></table>";
        let text = text(html).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("Port") && lines[0].trim_end().ends_with("Depth"));
        assert!(lines[1].starts_with("Harbour") && lines[1].ends_with("12 m"));
    }

    #[test]
    fn deeply_nested_markup_is_read() {
        let html = format!("{}deep{}", "<div>".repeat(5000), "</div>".repeat(5000));
        assert_eq!(text(&html).unwrap(), "deep");
    }
}
