//! The text of PDF files.

/// What a PDF's streams may inflate to, together: a file of a few hundred kilobytes can
/// hold a stream that inflates to gigabytes (a decompression bomb), which the parser would
/// hold in memory whole.
pub const MAX_PDF_INFLATED_BYTES: u64 = 64 << 20;

/// A PDF's text. Its streams are measured first (`MAX_PDF_INFLATED_BYTES`). The parser may
/// panic on a malformed file: that is caught and reported as an unreadable file, never
/// taking the worker down.
pub(super) fn text(bytes: &[u8]) -> Result<String, String> {
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
