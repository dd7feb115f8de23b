//! The text of an uploaded file: plain text and Markdown as they are, HTML without its
//! markup (headings kept as Markdown headings so that splitting sees the structure), PDF
//! through `pdf-extract` (text PDFs; scanned pages have no text to find).

/// The media types a document can be made from.
pub const SUPPORTED: &[&str] = &[
    "text/plain",
    "text/markdown",
    "text/html",
    "application/pdf",
];

/// Whether a file of `mime_type` can become a document.
pub fn supported(mime_type: &str) -> bool {
    let base = mime_type.split(';').next().unwrap_or("").trim();
    SUPPORTED.contains(&base) || base == "text/x-markdown"
}

/// The file's text, or why there is none. CPU-bound (PDF especially): call it off the
/// async workers.
pub fn text_of(mime_type: &str, bytes: &[u8]) -> Result<String, String> {
    let base = mime_type.split(';').next().unwrap_or("").trim();
    if base == "application/pdf" {
        return pdf_text(bytes);
    }
    if base != "text/html" && !supported(base) {
        return Err(format!(
            "files of type {base} cannot be indexed (supported: {})",
            SUPPORTED.join(", ")
        ));
    }
    let html = base == "text/html";
    let text = decode(bytes, html)?;
    Ok(if html { html_to_text(&text) } else { text })
}

/// A text file's bytes as text, in whatever encoding it was saved: the encoding its byte
/// order mark names (UTF-8, UTF-16LE, UTF-16BE); UTF-8 when the bytes are; an HTML file's
/// `<meta charset>`; otherwise the encoding Mozilla's detector (`chardetng`) judges most
/// likely (windows-1252, GBK, Big5, Shift_JIS, EUC-KR...). Bytes that are not text at all
/// (NUL bytes) are refused.
fn decode(bytes: &[u8], html: bool) -> Result<String, String> {
    if let Some((encoding, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, _) = encoding.decode_without_bom_handling(&bytes[bom..]);
        return text_only(text.into_owned());
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return text_only(text.to_string());
    }
    let declared = if html { meta_charset(bytes) } else { None };
    let encoding = declared.unwrap_or_else(|| {
        let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
        detector.feed(bytes, true);
        detector.guess(None, chardetng::Utf8Detection::Deny)
    });
    let (text, _) = encoding.decode_without_bom_handling(bytes);
    text_only(text.into_owned())
}

fn text_only(text: String) -> Result<String, String> {
    if text.contains('\0') {
        Err("the file is not text (it holds NUL bytes)".into())
    } else {
        Ok(text)
    }
}

/// The encoding an HTML file declares in its first 1,024 bytes (`<meta charset="...">` or
/// `content="text/html; charset=..."`), when encoding_rs knows the label.
fn meta_charset(bytes: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).to_ascii_lowercase();
    let at = head.find("charset=")? + "charset=".len();
    let label: String = head[at..]
        .trim_start_matches(['"', '\''])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
        .collect();
    encoding_rs::Encoding::for_label(label.as_bytes())
        // A page saying UTF-16 in ASCII bytes is not UTF-16 (as browsers read it).
        .map(|e| {
            if e == encoding_rs::UTF_16LE || e == encoding_rs::UTF_16BE {
                encoding_rs::UTF_8
            } else {
                e
            }
        })
}

/// What a PDF's streams may inflate to, together: a file of a few hundred kilobytes can
/// hold a stream that inflates to gigabytes (a decompression bomb), which the parser would
/// hold in memory whole.
pub const MAX_PDF_INFLATED_BYTES: u64 = 64 << 20;

/// A PDF's text. Its streams are measured first (`MAX_PDF_INFLATED_BYTES`). The parser may
/// panic on a malformed file: that is caught and reported as an unreadable file, never
/// taking the worker down.
fn pdf_text(bytes: &[u8]) -> Result<String, String> {
    inflated_within(bytes, MAX_PDF_INFLATED_BYTES)?;
    let extracted = std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem(bytes));
    match extracted {
        Ok(Ok(text)) if !text.trim().is_empty() => Ok(text),
        Ok(Ok(_)) => Err("the PDF has no text (a scan needs text recognition first)".into()),
        Ok(Err(e)) => Err(format!("the PDF cannot be read: {e}")),
        Err(_) => Err("the PDF cannot be read: it is malformed".into()),
    }
}

/// Refuses a PDF whose streams inflate to more than `limit` bytes, measured by inflating
/// each Flate stream into nothing, at most `limit` bytes in all.
fn inflated_within(bytes: &[u8], limit: u64) -> Result<(), String> {
    use std::io::Read;
    let document = std::panic::catch_unwind(|| lopdf::Document::load_mem(bytes))
        .map_err(|_| "the PDF cannot be read: it is malformed".to_string())?
        .map_err(|e| format!("the PDF cannot be read: {e}"))?;
    let too_large = || {
        format!(
            "the PDF expands to more than {} MiB of content; it is not indexed",
            limit >> 20
        )
    };
    let mut total: u64 = 0;
    for object in document.objects.values() {
        let lopdf::Object::Stream(stream) = object else {
            continue;
        };
        let flate = match stream.dict.get(b"Filter") {
            Ok(lopdf::Object::Name(name)) => name == b"FlateDecode",
            Ok(lopdf::Object::Array(filters)) => filters
                .iter()
                .any(|f| matches!(f, lopdf::Object::Name(n) if n == b"FlateDecode")),
            _ => false,
        };
        let size = if flate {
            let left = limit.saturating_sub(total) + 1;
            let mut inflated = flate2::read::ZlibDecoder::new(&stream.content[..]).take(left);
            // A stream that does not inflate is the parser's to judge; count what came out.
            std::io::copy(&mut inflated, &mut std::io::sink()).unwrap_or(0)
        } else {
            stream.content.len() as u64
        };
        total = total.saturating_add(size);
        if total > limit {
            return Err(too_large());
        }
    }
    Ok(())
}

/// Elements whose content is not text.
const SKIPPED: &[&str] = &[
    "script", "style", "noscript", "template", "head", "svg", "iframe", "object",
];

/// Elements that break the flow of text.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "header",
    "footer",
    "nav",
    "aside",
    "blockquote",
    "pre",
    "ul",
    "ol",
    "table",
    "tr",
    "form",
    "figure",
    "figcaption",
    "dl",
    "dt",
    "dd",
    "hr",
    "address",
    "body",
    "html",
];

/// HTML to text: markup dropped, block elements on their own paragraphs, `<h1>`..`<h6>` as
/// `#`..`######` headings, list items as `- `, entities decoded.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    let mut skipping: Option<String> = None;
    while let Some(open) = rest.find('<') {
        if skipping.is_none() {
            out.push_str(&decode_entities(&rest[..open]));
        }
        rest = &rest[open..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let Some(close) = rest.find('>') else {
            rest = "";
            break;
        };
        let tag = &rest[1..close];
        rest = &rest[close + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if let Some(skipped) = &skipping {
            if closing && *skipped == name {
                skipping = None;
            }
            continue;
        }
        if SKIPPED.contains(&name.as_str()) && !closing && !tag.ends_with('/') {
            skipping = Some(name);
            continue;
        }
        match name.as_str() {
            "br" => out.push('\n'),
            "li" if !closing => out.push_str("\n- "),
            "td" | "th" if closing => out.push_str(" | "),
            h if h.len() == 2 && h.starts_with('h') && h.as_bytes()[1].is_ascii_digit() => {
                let level = usize::from(h.as_bytes()[1] - b'0').clamp(1, 6);
                if closing {
                    out.push_str("\n\n");
                } else {
                    out.push_str("\n\n");
                    out.push_str(&"#".repeat(level));
                    out.push(' ');
                }
            }
            b if BLOCKS.contains(&b) => out.push_str("\n\n"),
            _ => {}
        }
    }
    if skipping.is_none() {
        out.push_str(&decode_entities(rest));
    }
    // Inside a paragraph, the source's line breaks are only layout; list items keep theirs.
    out.split("\n\n")
        .map(|p| {
            let mut paragraph = String::new();
            for line in p.lines() {
                let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
                if line.is_empty() {
                    continue;
                }
                if !paragraph.is_empty() {
                    paragraph.push(if line.starts_with("- ") { '\n' } else { ' ' });
                }
                paragraph.push_str(&line);
            }
            paragraph
        })
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some(' '),
            "mdash" => Some('—'),
            "ndash" => Some('–'),
            "hellip" => Some('…'),
            "copy" => Some('©'),
            "rsquo" => Some('’'),
            "lsquo" => Some('‘'),
            "rdquo" => Some('”'),
            "ldquo" => Some('“'),
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_keeps_text_structure_and_drops_markup() {
        let html = r#"<!doctype html><html><head><title>T</title><style>p{}</style></head>
            <body><h1>Tides &amp; Moons</h1><p>The sea
            rises <b>twice</b> a day.</p><!-- note --><script>var x = "<p>no</p>";</script>
            <ul><li>Spring tides</li><li>Neap&#160;tides</li></ul><h2>Next</h2><p>More&hellip;</p></body></html>"#;
        assert_eq!(
            html_to_text(html),
            "# Tides & Moons\n\nThe sea rises twice a day.\n\n- Spring tides\n- Neap tides\n\n## Next\n\nMore…"
        );
    }

    #[test]
    fn files_are_read_by_type() {
        assert_eq!(
            text_of("text/plain", b"\xEF\xBB\xBFhello").unwrap(),
            "hello"
        );
        assert_eq!(
            text_of("text/markdown; charset=utf-8", b"# A").unwrap(),
            "# A"
        );
        assert!(
            text_of("text/plain", b"\x00\x01\x02\x03binary")
                .unwrap_err()
                .contains("not text")
        );
        assert!(
            text_of("image/png", b"x")
                .unwrap_err()
                .contains("cannot be indexed")
        );
    }

    #[test]
    fn text_in_other_encodings_is_decoded() {
        // Saved by an old Windows editor (windows-1252).
        assert_eq!(
            text_of(
                "text/plain",
                b"Caf\xe9 cr\xe8me br\xfbl\xe9e, na\xefve \x93quotes\x94"
            )
            .unwrap(),
            "Café crème brûlée, naïve \u{201c}quotes\u{201d}"
        );
        // Simplified Chinese in GBK, with no label: the detector's guess.
        let chinese =
            "知识库把文档切成片段，检索时按关键词和向量找出最相关的片段，交给模型回答用户的问题。";
        let (gbk, _, _) = encoding_rs::GBK.encode(chinese);
        assert_eq!(text_of("text/plain", &gbk).unwrap(), chinese);
        // UTF-16 with its byte order mark, either way round.
        let mut le = vec![0xFF, 0xFE];
        le.extend("Ünïcode 文本".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(text_of("text/plain", &le).unwrap(), "Ünïcode 文本");
        let mut be = vec![0xFE, 0xFF];
        be.extend("Ünïcode 文本".encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(text_of("text/markdown", &be).unwrap(), "Ünïcode 文本");
        // An HTML page says its encoding.
        let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode("<p>日本語のページ</p>");
        let mut page = b"<html><head><meta charset=\"Shift_JIS\"></head><body>".to_vec();
        page.extend_from_slice(&sjis);
        assert_eq!(text_of("text/html", &page).unwrap(), "日本語のページ");
    }
}
