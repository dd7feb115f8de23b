//! Tables: CSV text (the `csv` crate: quoted fields, commas and line breaks inside quotes,
//! `;` or tab as the separator when a file uses it) and workbooks (`calamine`: XLSX,
//! XLS, ODS). As a document's text, each row is one line naming its cells by their
//! column (`Port: Harbour; Depth: 12 m`), so a row stays whole and readable on its own
//! in a segment, and each sheet of a workbook is a section under its name.

use std::io::Cursor;

use calamine::{Data, Reader};

/// Rows read from a table, at most.
pub const MAX_ROWS: usize = 100_000;

/// The separator a CSV file uses: the one of `,` `;` tab that splits its first line into
/// the most fields (outside quotes).
fn separator(text: &str) -> u8 {
    let first = text.lines().next().unwrap_or("");
    let count = |sep: char| {
        let mut quoted = false;
        first
            .chars()
            .filter(|c| {
                if *c == '"' {
                    quoted = !quoted;
                }
                !quoted && *c == sep
            })
            .count()
    };
    [(b',', count(',')), (b';', count(';')), (b'\t', count('\t'))]
        .into_iter()
        .max_by_key(|(sep, n)| (*n, *sep == b','))
        .map_or(b',', |(sep, _)| sep)
}

/// The rows of CSV text, cells trimmed, empty rows skipped.
pub(super) fn csv_rows(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(separator(text))
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("the CSV cannot be read at row {}: {e}", i + 1))?;
        let row: Vec<String> = record.iter().map(|c| c.trim().to_string()).collect();
        if row.iter().any(|c| !c.is_empty()) {
            rows.push(row);
        }
        if rows.len() > MAX_ROWS {
            return Err(format!("the table has more than {MAX_ROWS} rows"));
        }
    }
    Ok(rows)
}

/// A cell as text: dates as `YYYY-MM-DD` (and the time when it has one), numbers as they
/// read.
fn cell(data: &Data) -> String {
    match data {
        Data::DateTime(d) if d.is_datetime() => {
            let (y, m, day, h, min, s, _) = d.to_ymd_hms_milli();
            if (h, min, s) == (0, 0, 0) {
                format!("{y:04}-{m:02}-{day:02}")
            } else {
                format!("{y:04}-{m:02}-{day:02} {h:02}:{min:02}:{s:02}")
            }
        }
        Data::Error(_) => String::new(),
        other => other.to_string().trim().to_string(),
    }
}

/// The kinds of workbook read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workbook {
    Xlsx,
    Xls,
    Ods,
}

/// A sheet's name and its rows of cells.
type Sheet = (String, Vec<Vec<String>>);

/// Each sheet's name and rows (empty rows skipped).
fn sheets(kind: Workbook, bytes: &[u8]) -> Result<Vec<Sheet>, String> {
    // XLS is not an archive; XLSX and ODS are.
    if kind != Workbook::Xls {
        super::archive_within_limit(bytes, "spreadsheet")?;
    }
    // The reader may panic on a malformed file: reported as unreadable instead.
    std::panic::catch_unwind(|| {
        let unreadable = |e: &dyn std::fmt::Display| format!("the spreadsheet cannot be read: {e}");
        let cursor = Cursor::new(bytes);
        let mut workbook = match kind {
            Workbook::Xlsx => calamine::Sheets::Xlsx(
                calamine::open_workbook_from_rs(cursor)
                    .map_err(|e: calamine::XlsxError| unreadable(&e))?,
            ),
            Workbook::Xls => calamine::Sheets::Xls(
                calamine::open_workbook_from_rs(cursor)
                    .map_err(|e: calamine::XlsError| unreadable(&e))?,
            ),
            Workbook::Ods => calamine::Sheets::Ods(
                calamine::open_workbook_from_rs(cursor)
                    .map_err(|e: calamine::OdsError| unreadable(&e))?,
            ),
        };
        let mut out = Vec::new();
        let mut total = 0;
        for name in workbook.sheet_names() {
            let range = workbook
                .worksheet_range(&name)
                .map_err(|e| format!("the sheet {name} cannot be read: {e}"))?;
            let rows: Vec<Vec<String>> = range
                .rows()
                .map(|row| row.iter().map(cell).collect::<Vec<_>>())
                .filter(|row| row.iter().any(|c| !c.is_empty()))
                .collect();
            total += rows.len();
            if total > MAX_ROWS {
                return Err(format!("the spreadsheet has more than {MAX_ROWS} rows"));
            }
            out.push((name, rows));
        }
        Ok(out)
    })
    .map_err(|_| "the spreadsheet cannot be read: it is malformed".to_string())?
}

/// The rows of a workbook's first sheet that has any.
pub(super) fn workbook_rows(kind: Workbook, bytes: &[u8]) -> Result<Vec<Vec<String>>, String> {
    Ok(sheets(kind, bytes)?
        .into_iter()
        .map(|(_, rows)| rows)
        .find(|rows| !rows.is_empty())
        .unwrap_or_default())
}

/// Rows as lines naming their cells by the first row's headings (`Port: Harbour; Depth:
/// 12 m`); a cell without a heading is given as it is, an empty cell is left out.
fn rows_as_text(rows: &[Vec<String>]) -> String {
    let Some((header, body)) = rows.split_first() else {
        return String::new();
    };
    if body.is_empty() {
        return header.join("; ");
    }
    body.iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .filter(|(_, c)| !c.is_empty())
                .map(|(i, c)| match header.get(i).filter(|h| !h.is_empty()) {
                    Some(h) => format!("{h}: {c}"),
                    None => c.clone(),
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// A CSV document's text (see the module's comment).
pub(super) fn csv_text(text: &str) -> Result<String, String> {
    let rows = csv_rows(text)?;
    if rows.is_empty() {
        return Err("the CSV file has no rows".into());
    }
    Ok(rows_as_text(&rows))
}

/// A workbook's text: each sheet with rows, under its name as a heading.
pub(super) fn workbook_text(kind: Workbook, bytes: &[u8]) -> Result<String, String> {
    let sheets: Vec<String> = sheets(kind, bytes)?
        .into_iter()
        .filter(|(_, rows)| !rows.is_empty())
        .map(|(name, rows)| format!("# {name}\n\n{}", rows_as_text(&rows)))
        .collect();
    if sheets.is_empty() {
        return Err("the spreadsheet has no cells with text".into());
    }
    Ok(sheets.join("\n\n"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn csv_rows_keep_quoted_separators_and_line_breaks() {
        let rows = csv_rows(
            "question,answer\n\"What is a tide?\",\"The rise, and fall, of the sea\"\n\n\"Two\nlines\", x\n",
        )
        .unwrap();
        assert_eq!(
            rows,
            vec![
                vec!["question", "answer"],
                vec!["What is a tide?", "The rise, and fall, of the sea"],
                vec!["Two\nlines", "x"],
            ]
        );
        // Semicolons (as spreadsheets in many locales save them) and tabs.
        assert_eq!(
            csv_rows("a;b\n1,5;2").unwrap(),
            vec![vec!["a", "b"], vec!["1,5", "2"]]
        );
        assert_eq!(csv_rows("a\tb\n1\t2").unwrap()[1], vec!["1", "2"]);
        // An unterminated quote still ends with the text.
        assert_eq!(csv_rows("\"open,1").unwrap(), vec![vec!["open,1"]]);
    }

    #[test]
    fn csv_documents_are_rows_named_by_their_headings() {
        assert_eq!(
            csv_text("Port,Depth,\nHarbour,12 m,deep\nQuay,,\n").unwrap(),
            "Port: Harbour; Depth: 12 m; deep\n\nPort: Quay"
        );
        assert!(csv_text("\n\n").unwrap_err().contains("no rows"));
    }

    /// A workbook of two sheets (the second one empty) with text, a number and a date.
    pub(crate) fn xlsx(rows: &[[&str; 3]]) -> Vec<u8> {
        let cell = |r: usize, c: usize, v: &str| {
            let at = format!("{}{}", ["A", "B", "C"][c], r + 1);
            if let Some(serial) = v.strip_prefix("date:") {
                format!(r#"<c r="{at}" s="1"><v>{serial}</v></c>"#)
            } else if v.parse::<f64>().is_ok() {
                format!(r#"<c r="{at}"><v>{v}</v></c>"#)
            } else {
                format!(r#"<c r="{at}" t="inlineStr"><is><t>{v}</t></is></c>"#)
            }
        };
        let sheet_rows: String = rows
            .iter()
            .enumerate()
            .map(|(r, row)| {
                let cells: String = row
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(c, v)| cell(r, c, v))
                    .collect();
                format!(r#"<row r="{}">{cells}</row>"#, r + 1)
            })
            .collect();
        const NS: &str = r#"xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships""#;
        const REL: &str =
            "http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet";
        crate::knowledge::extract::tests::archive(&[
            (
                "[Content_Types].xml",
                r#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>"#.into(),
            ),
            (
                "_rels/.rels",
                r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.into(),
            ),
            (
                "xl/workbook.xml",
                format!(r#"<?xml version="1.0"?><workbook {NS}><sheets><sheet name="Empty" sheetId="1" r:id="rId1"/><sheet name="Berths" sheetId="2" r:id="rId2"/></sheets></workbook>"#),
            ),
            (
                "xl/_rels/workbook.xml.rels",
                format!(r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="{REL}" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="{REL}" Target="worksheets/sheet2.xml"/></Relationships>"#),
            ),
            (
                "xl/styles.xml",
                format!(r#"<?xml version="1.0"?><styleSheet {NS}><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="14"/></cellXfs></styleSheet>"#),
            ),
            (
                "xl/worksheets/sheet1.xml",
                format!(r#"<?xml version="1.0"?><worksheet {NS}><sheetData/></worksheet>"#),
            ),
            (
                "xl/worksheets/sheet2.xml",
                format!(r#"<?xml version="1.0"?><worksheet {NS}><sheetData>{sheet_rows}</sheetData></worksheet>"#),
            ),
        ])
    }

    #[test]
    fn workbooks_are_read_sheet_by_sheet() {
        let book = xlsx(&[
            ["Berth", "Depth", "Opened"],
            ["North", "12.5", "date:45413"],
            ["South", "", ""],
        ]);
        assert_eq!(
            workbook_text(Workbook::Xlsx, &book).unwrap(),
            "# Berths\n\nBerth: North; Depth: 12.5; Opened: 2024-05-01\n\nBerth: South"
        );
        assert_eq!(
            workbook_rows(Workbook::Xlsx, &book).unwrap(),
            vec![
                vec!["Berth", "Depth", "Opened"],
                vec!["North", "12.5", "2024-05-01"],
                vec!["South", "", ""],
            ]
        );
    }

    #[test]
    fn malformed_spreadsheets_are_refused() {
        assert!(
            workbook_text(Workbook::Xlsx, b"PK\x03\x04 not really")
                .unwrap_err()
                .contains("cannot be read")
        );
        assert!(
            workbook_text(Workbook::Xls, b"plain words")
                .unwrap_err()
                .contains("cannot be read")
        );
    }
}
