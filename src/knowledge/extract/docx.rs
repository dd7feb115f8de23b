//! DOCX documents: the archive opened by `zip`, its XML read by `quick-xml`. What is read
//! is `word/document.xml`: each paragraph a paragraph, headings (by their style's outline
//! level in `word/styles.xml`, or the built-in `Heading1`..`Heading9` and `Title` styles)
//! as `#` headings, numbered and bulleted paragraphs as `- ` items, tables one row per line
//! with cells apart, tabs and line breaks kept. Deleted text of tracked changes and field
//! codes are not text (they are other elements than `w:t`).

use std::collections::HashMap;
use std::io::{Cursor, Read};

use quick_xml::events::{BytesStart, Event};

use super::MAX_ARCHIVE_INFLATED_BYTES;

fn unreadable(e: impl std::fmt::Display) -> String {
    format!("the DOCX file cannot be read: {e}")
}

/// One archive entry as text, read at most to the archive limit.
fn entry(
    archive: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
) -> Result<Option<String>, String> {
    let file = match archive.by_name(name) {
        Ok(file) => file,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(unreadable(e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_ARCHIVE_INFLATED_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_ARCHIVE_INFLATED_BYTES {
        return Err(format!(
            "the DOCX file expands to more than {} MiB; it is not indexed",
            MAX_ARCHIVE_INFLATED_BYTES >> 20
        ));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| unreadable(format!("{name} is not UTF-8")))
}

/// The value of attribute `w:val` (or another) of an element.
fn attribute(element: &BytesStart, name: &str) -> Option<String> {
    element
        .attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .map(|a| a.value.to_string())
}

/// The heading level of each paragraph style that is a heading: its outline level, or
/// the name Word gives built-in headings ("heading 1", "Title").
fn heading_styles(styles_xml: &str) -> Result<HashMap<String, usize>, String> {
    let mut levels = HashMap::new();
    let mut reader = quick_xml::Reader::from_str(styles_xml);
    let mut style: Option<String> = None;
    loop {
        match reader.read_event().map_err(unreadable)? {
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                "style" => style = attribute(&e, "w:styleId"),
                "name" => {
                    if let (Some(id), Some(name)) = (&style, attribute(&e, "w:val")) {
                        let name = name.to_ascii_lowercase();
                        if name == "title" {
                            levels.insert(id.clone(), 1);
                        } else if let Some(n) = name
                            .strip_prefix("heading ")
                            .and_then(|n| n.parse::<usize>().ok())
                        {
                            levels.insert(id.clone(), n.clamp(1, 6));
                        }
                    }
                }
                "outlineLvl" => {
                    if let (Some(id), Some(level)) = (
                        &style,
                        attribute(&e, "w:val").and_then(|v| v.parse::<usize>().ok()),
                    ) && level < 9
                    {
                        levels.insert(id.clone(), (level + 1).min(6));
                    }
                }
                _ => {}
            },
            Event::End(e) if e.local_name().as_ref() == "style" => style = None,
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(levels)
}

/// A paragraph being read.
#[derive(Default)]
struct Paragraph {
    text: String,
    style: Option<String>,
    outline: Option<usize>,
    listed: bool,
}

/// The document's text (see the module's comment).
pub(super) fn text(bytes: &[u8]) -> Result<String, String> {
    super::archive_within_limit(bytes, "DOCX")?;
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(unreadable)?;
    let document = entry(&mut archive, "word/document.xml")?
        .ok_or_else(|| unreadable("it has no word/document.xml"))?;
    let headings = match entry(&mut archive, "word/styles.xml")? {
        Some(styles) => heading_styles(&styles)?,
        None => HashMap::new(),
    };
    let level_of = |p: &Paragraph| {
        p.outline.or_else(|| {
            let style = p.style.as_deref()?;
            headings.get(style).copied().or_else(|| {
                let lower = style.to_ascii_lowercase();
                if lower == "title" {
                    return Some(1);
                }
                lower
                    .strip_prefix("heading")
                    .and_then(|n| n.parse::<usize>().ok())
                    .map(|n| n.clamp(1, 6))
            })
        })
    };

    let mut blocks: Vec<String> = Vec::new();
    let mut reader = quick_xml::Reader::from_str(&document);
    let mut paragraph: Option<Paragraph> = None;
    let mut in_text = false;
    // Tables being read (nested tables read into their cell): rows of cells.
    let mut tables: Vec<Vec<Vec<String>>> = Vec::new();
    loop {
        let event = reader.read_event().map_err(unreadable)?;
        match event {
            Event::Start(e) => match e.local_name().as_ref() {
                "p" => paragraph = Some(Paragraph::default()),
                "t" => in_text = true,
                "tbl" => tables.push(Vec::new()),
                "tr" => {
                    if let Some(table) = tables.last_mut() {
                        table.push(Vec::new());
                    }
                }
                "tc" => {
                    if let Some(row) = tables.last_mut().and_then(|t| t.last_mut()) {
                        row.push(String::new());
                    }
                }
                _ => {}
            },
            Event::Empty(e) => {
                let Some(p) = paragraph.as_mut() else {
                    continue;
                };
                match e.local_name().as_ref() {
                    "pStyle" => p.style = attribute(&e, "w:val"),
                    "outlineLvl" => {
                        p.outline = attribute(&e, "w:val")
                            .and_then(|v| v.parse::<usize>().ok())
                            .filter(|l| *l < 9)
                            .map(|l| (l + 1).min(6));
                    }
                    "numId" => p.listed = attribute(&e, "w:val").is_some_and(|v| v != "0"),
                    "tab" => p.text.push('\t'),
                    "br" | "cr" => p.text.push('\n'),
                    _ => {}
                }
            }
            Event::Text(t) if in_text => {
                if let Some(p) = paragraph.as_mut() {
                    p.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) if in_text => {
                if let Some(p) = paragraph.as_mut() {
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(c)) => Some(c.to_string()),
                        _ => quick_xml::escape::resolve_predefined_entity(&r).map(str::to_string),
                    };
                    p.text.push_str(resolved.as_deref().unwrap_or(""));
                }
            }
            Event::End(e) => match e.local_name().as_ref() {
                "t" => in_text = false,
                "p" => {
                    let Some(p) = paragraph.take() else { continue };
                    let text = p.text.trim().to_string();
                    if text.is_empty() {
                        continue;
                    }
                    if let Some(cell) = tables
                        .last_mut()
                        .and_then(|t| t.last_mut())
                        .and_then(|r| r.last_mut())
                    {
                        if !cell.is_empty() {
                            cell.push(' ');
                        }
                        cell.push_str(&text.replace('\n', " "));
                    } else if let Some(level) = level_of(&p) {
                        blocks.push(format!("{} {}", "#".repeat(level), text.replace('\n', " ")));
                    } else if p.listed {
                        blocks.push(format!("- {text}"));
                    } else {
                        blocks.push(text);
                    }
                }
                "tbl" => {
                    let Some(table) = tables.pop() else { continue };
                    let rows: Vec<String> = table
                        .iter()
                        .map(|row| row.join(" | "))
                        .filter(|row| row.chars().any(|c| c != '|' && !c.is_whitespace()))
                        .collect();
                    let text = rows.join("\n");
                    match tables
                        .last_mut()
                        .and_then(|t| t.last_mut())
                        .and_then(|r| r.last_mut())
                    {
                        Some(cell) => {
                            if !cell.is_empty() {
                                cell.push(' ');
                            }
                            cell.push_str(&rows.join(" "));
                        }
                        None if !text.is_empty() => blocks.push(text),
                        None => {}
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    // Consecutive list items form one list.
    let mut out = String::new();
    for (i, block) in blocks.iter().enumerate() {
        if i > 0 {
            let both_items = block.starts_with("- ") && blocks[i - 1].starts_with("- ");
            out.push_str(if both_items { "\n" } else { "\n\n" });
        }
        out.push_str(block);
    }
    if out.trim().is_empty() {
        return Err("the DOCX file has no text".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::tests::archive;
    use super::*;

    const W: &str = r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main""#;

    fn docx(body: &str, styles: Option<&str>) -> Vec<u8> {
        let document =
            format!(r#"<?xml version="1.0"?><w:document {W}><w:body>{body}</w:body></w:document>"#);
        let mut entries = vec![("word/document.xml", document)];
        if let Some(styles) = styles {
            entries.push((
                "word/styles.xml",
                format!(r#"<?xml version="1.0"?><w:styles {W}>{styles}</w:styles>"#),
            ));
        }
        archive(&entries)
    }

    fn p(style: Option<&str>, runs: &str) -> String {
        let props = style.map_or(String::new(), |s| {
            format!(r#"<w:pPr><w:pStyle w:val="{s}"/></w:pPr>"#)
        });
        format!("<w:p>{props}{runs}</w:p>")
    }

    #[test]
    fn documents_keep_headings_lists_tables_and_breaks() {
        let body = [
            p(Some("Title"), "<w:r><w:t>Harbour guide</w:t></w:r>"),
            p(Some("Heading2"), "<w:r><w:t>Tides</w:t></w:r>"),
            p(
                None,
                r#"<w:r><w:t xml:space="preserve">High water at </w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t>noon</w:t></w:r><w:r><w:t> &amp; midnight</w:t><w:br/><w:t>Low water between.</w:t></w:r>"#,
            ),
            // Deleted text of a tracked change and a field code are not text.
            p(
                None,
                r#"<w:del><w:r><w:delText>removed</w:delText></w:r></w:del><w:r><w:instrText>PAGE</w:instrText></w:r><w:r><w:t>Kept</w:t></w:r>"#,
            ),
            r#"<w:p><w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="3"/></w:numPr></w:pPr><w:r><w:t>Moor fore</w:t></w:r></w:p>"#.into(),
            r#"<w:p><w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="3"/></w:numPr></w:pPr><w:r><w:t>Moor aft</w:t></w:r></w:p>"#.into(),
            format!(
                "<w:tbl><w:tr><w:tc>{}</w:tc><w:tc>{}</w:tc></w:tr><w:tr><w:tc>{}</w:tc><w:tc>{}{}</w:tc></w:tr></w:tbl>",
                p(None, "<w:r><w:t>Berth</w:t></w:r>"),
                p(None, "<w:r><w:t>Depth</w:t></w:r>"),
                p(None, "<w:r><w:t>North</w:t></w:r>"),
                p(None, "<w:r><w:t>12</w:t></w:r>"),
                p(None, "<w:r><w:t>metres</w:t></w:r>"),
            ),
            // A custom style that Word names "heading 3" (a localized id).
            p(Some("berschrift3"), "<w:r><w:t>Fees</w:t></w:r>"),
            p(None, "<w:r><w:t>Ten</w:t><w:tab/><w:t>euros</w:t></w:r>"),
        ]
        .concat();
        let styles = r#"<w:style w:type="paragraph" w:styleId="berschrift3"><w:name w:val="heading 3"/></w:style>"#;
        assert_eq!(
            text(&docx(&body, Some(styles))).unwrap(),
            "# Harbour guide\n\n## Tides\n\nHigh water at noon & midnight\nLow water between.\n\nKept\n\n- Moor fore\n- Moor aft\n\nBerth | Depth\nNorth | 12 metres\n\n### Fees\n\nTen\teuros"
        );
    }

    #[test]
    fn broken_and_empty_documents_are_refused() {
        assert!(text(b"not a zip").unwrap_err().contains("cannot be read"));
        assert!(
            text(&archive(&[("other.xml", "<a/>".into())]))
                .unwrap_err()
                .contains("no word/document.xml")
        );
        assert!(
            text(&docx("<w:p><w:r><w:t>unclosed", None))
                .unwrap_err()
                .contains("cannot be read")
        );
        assert!(text(&docx("<w:p/>", None)).unwrap_err().contains("no text"));
    }
}
