//! The text of an uploaded file, as Markdown-shaped text that splitting reads for its
//! structure: plain text and Markdown as they are; HTML through `html2text` (headings as
//! `#` headings, `<pre>` as code blocks, markup, scripts and attributes dropped); PDF
//! through `pdf-extract` (text PDFs; scanned pages have no text to find); DOCX from its
//! document XML (headings by style, lists, tables); CSV and spreadsheets (XLSX, XLS, ODS
//! through `calamine`) one line per row. Question-and-answer documents read the rows of a
//! CSV or a spreadsheet instead (`rows_of`).

mod docx;
mod html;
mod pdf;
mod sheet;

pub use pdf::MAX_PDF_INFLATED_BYTES;
use sheet::Workbook;

pub const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const XLS: &str = "application/vnd.ms-excel";
const ODS: &str = "application/vnd.oasis.opendocument.spreadsheet";

/// The media types a document can be made from.
pub const SUPPORTED: &[&str] = &[
    "text/plain",
    "text/markdown",
    "text/html",
    "text/csv",
    "application/pdf",
    DOCX,
    XLSX,
    XLS,
    ODS,
];

/// What an archive (DOCX, XLSX, ODS) may hold uncompressed, in all: a small archive can
/// inflate to gigabytes (a decompression bomb).
pub const MAX_ARCHIVE_INFLATED_BYTES: u64 = 64 << 20;

fn base_type(mime_type: &str) -> &str {
    mime_type.split(';').next().unwrap_or("").trim()
}

/// Whether a file of `mime_type` can become a document.
pub fn supported(mime_type: &str) -> bool {
    let base = base_type(mime_type);
    SUPPORTED.contains(&base) || base == "text/x-markdown"
}

fn unsupported(base: &str) -> String {
    format!(
        "files of type {base} cannot be indexed (supported: {})",
        SUPPORTED.join(", ")
    )
}

/// The file's text, or why there is none. CPU-bound (PDF and spreadsheets especially):
/// call it off the async workers.
pub fn text_of(mime_type: &str, bytes: &[u8]) -> Result<String, String> {
    match base_type(mime_type) {
        "application/pdf" => pdf::text(bytes),
        DOCX => docx::text(bytes),
        XLSX => sheet::workbook_text(Workbook::Xlsx, bytes),
        XLS => sheet::workbook_text(Workbook::Xls, bytes),
        ODS => sheet::workbook_text(Workbook::Ods, bytes),
        "text/csv" => sheet::csv_text(&decode(bytes, false)?),
        "text/html" => html::text(&decode(bytes, true)?),
        "text/plain" | "text/markdown" | "text/x-markdown" => decode(bytes, false),
        other => Err(unsupported(other)),
    }
}

/// The rows of a table file (CSV, or a spreadsheet's first sheet that holds any), each a
/// list of cells as text: what a question-and-answer document is made from.
pub fn rows_of(mime_type: &str, bytes: &[u8]) -> Result<Vec<Vec<String>>, String> {
    match base_type(mime_type) {
        "text/csv" | "text/plain" => sheet::csv_rows(&decode(bytes, false)?),
        XLSX => sheet::workbook_rows(Workbook::Xlsx, bytes),
        XLS => sheet::workbook_rows(Workbook::Xls, bytes),
        ODS => sheet::workbook_rows(Workbook::Ods, bytes),
        other if supported(other) => Err(format!(
            "a question-and-answer document is a CSV file or a spreadsheet, not {other}"
        )),
        other => Err(unsupported(other)),
    }
}

/// Whether a file of `mime_type` can hold question-and-answer rows.
pub fn tabular(mime_type: &str) -> bool {
    matches!(
        base_type(mime_type),
        "text/csv" | "text/plain" | XLSX | XLS | ODS
    )
}

/// Refuses an archive whose entries declare more than `MAX_ARCHIVE_INFLATED_BYTES` in
/// all (readers of single entries also stop there, whatever the entry declares).
fn archive_within_limit(bytes: &[u8], what: &str) -> Result<(), String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|_| format!("the {what} file cannot be read: it is not a valid archive"))?;
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let entry = archive
            .by_index_raw(i)
            .map_err(|e| format!("the {what} file cannot be read: {e}"))?;
        total = total.saturating_add(entry.size());
    }
    if total > MAX_ARCHIVE_INFLATED_BYTES {
        return Err(format!(
            "the {what} file expands to more than {} MiB; it is not indexed",
            MAX_ARCHIVE_INFLATED_BYTES >> 20
        ));
    }
    Ok(())
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A ZIP archive of the given entries (stored), as DOCX and XLSX files are.
    pub(crate) fn archive(entries: &[(&str, String)]) -> Vec<u8> {
        use std::io::Write;
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, content) in entries {
            writer.start_file(*name, options).unwrap();
            writer.write_all(content.as_bytes()).unwrap();
        }
        writer.finish().unwrap().into_inner()
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
