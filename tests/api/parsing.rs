//! Documents made from files of each kind keep their structure: a Markdown code block is
//! one segment and its `#` lines are not headings, HTML `<pre>` stays whole, DOCX
//! headings, lists and tables, CSV and spreadsheet rows named by their columns; a broken
//! file ends in ERROR with the reason.

use std::io::Write;

use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::harness::accounts::{Account, create_organization, data, register};
use crate::knowledge::{dataset, document_from_file, wait_indexed};

pub(crate) const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

/// A ZIP archive of `entries`, as DOCX and XLSX files are.
pub(crate) fn archive(entries: &[(&str, String)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(content.as_bytes()).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// A workbook with one sheet `name` of text rows.
pub(crate) fn xlsx(name: &str, rows: &[&[&str]]) -> Vec<u8> {
    const NS: &str = r#"xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships""#;
    let sheet_rows: String = rows
        .iter()
        .enumerate()
        .map(|(r, row)| {
            let cells: String = row
                .iter()
                .enumerate()
                .map(|(c, v)| {
                    let at = format!("{}{}", (b'A' + c as u8) as char, r + 1);
                    format!(r#"<c r="{at}" t="inlineStr"><is><t>{v}</t></is></c>"#)
                })
                .collect();
            format!(r#"<row r="{}">{cells}</row>"#, r + 1)
        })
        .collect();
    archive(&[
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
            format!(r#"<?xml version="1.0"?><workbook {NS}><sheets><sheet name="{name}" sheetId="1" r:id="rId1"/></sheets></workbook>"#),
        ),
        (
            "xl/_rels/workbook.xml.rels",
            r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#.into(),
        ),
        (
            "xl/worksheets/sheet1.xml",
            format!(r#"<?xml version="1.0"?><worksheet {NS}><sheetData>{sheet_rows}</sheetData></worksheet>"#),
        ),
    ])
}

fn docx(body: &str) -> Vec<u8> {
    archive(&[(
        "word/document.xml",
        format!(
            r#"<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
        ),
    )])
}

/// The contents of a document's segments, in order.
async fn segments(server: &TestServer, owner: &Account, document: &str) -> Vec<String> {
    let read = data(
        server
            .graphql_as(
                owner.token(),
                "query($id: UUID!) { document(id: $id) { segments(first: 100) { nodes { content } } } }",
                json!({ "id": document }),
            )
            .await,
    );
    read["document"]["segments"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|n| n["content"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn files_of_each_kind_keep_their_structure() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Org").await;
    let set = dataset(&server, &owner, &tenant, json!({})).await;
    let from = |name: &'static str, mime: &'static str, bytes: Vec<u8>| {
        let (server, owner, tenant, set) = (&server, &owner, &tenant, &set);
        async move {
            let id = document_from_file(server, owner, tenant, set, name, mime, bytes).await;
            wait_indexed(server, &id).await;
            segments(server, owner, &id).await
        }
    };

    // Markdown: a `#` line inside a fence is code, and the block is one segment's part.
    let code = "```bash\n# install the tide tables\napt-get install tides\n\n# then run them\ntides --port north\n```";
    let markdown =
        format!("# Setup\n\nInstall the tools first.\n\n{code}\n\n## Use\n\nRun it daily.");
    let found = from("setup.md", "text/markdown", markdown.into_bytes()).await;
    assert_eq!(
        found,
        vec![
            format!("# Setup\n\nInstall the tools first.\n\n{code}"),
            "## Use\n\nRun it daily.".to_string()
        ]
    );

    // HTML: <pre> fenced as code, link addresses and attributes gone, entities decoded.
    let html = r#"<html><body><h1>Moorings</h1><p class="lead" data-id="77">Ropes &amp; chains, see <a href="https://example.com/private">the chart</a>.</p>
        <pre># not a heading
knot --bowline</pre></body></html>"#;
    let found = from("moorings.html", "text/html", html.as_bytes().to_vec()).await;
    assert_eq!(
        found,
        vec![
            "# Moorings\n\nRopes & chains, see the chart.\n\n```\n# not a heading\nknot --bowline\n```"
        ]
    );

    // DOCX: headings by style, list items, a table row by row.
    let p = |style: &str, text: &str| {
        let props = if style.is_empty() {
            String::new()
        } else {
            format!(r#"<w:pPr><w:pStyle w:val="{style}"/></w:pPr>"#)
        };
        format!("<w:p>{props}<w:r><w:t>{text}</w:t></w:r></w:p>")
    };
    let body = [
        p("Heading1", "Harbour rules"),
        p("", "Speed is limited to five knots."),
        r#"<w:p><w:pPr><w:numPr><w:numId w:val="1"/></w:numPr></w:pPr><w:r><w:t>No anchoring</w:t></w:r></w:p>"#.to_string(),
        format!(
            "<w:tbl><w:tr><w:tc>{}</w:tc><w:tc>{}</w:tc></w:tr><w:tr><w:tc>{}</w:tc><w:tc>{}</w:tc></w:tr></w:tbl>",
            p("", "Berth"),
            p("", "Depth"),
            p("", "North"),
            p("", "12 m")
        ),
    ]
    .concat();
    let found = from("rules.docx", DOCX, docx(&body)).await;
    assert_eq!(
        found,
        vec![
            "# Harbour rules\n\nSpeed is limited to five knots.\n\n- No anchoring\n\nBerth | Depth\nNorth | 12 m"
        ]
    );

    // CSV and a spreadsheet: rows named by their columns.
    let found = from(
        "berths.csv",
        "text/csv",
        b"Berth,Depth\nNorth,12 m\n\"South, outer\",9 m\n".to_vec(),
    )
    .await;
    assert_eq!(
        found,
        vec!["Berth: North; Depth: 12 m\n\nBerth: South, outer; Depth: 9 m"]
    );
    let found = from(
        "berths.xlsx",
        XLSX,
        xlsx("Berths", &[&["Berth", "Depth"], &["East", "7 m"]]),
    )
    .await;
    assert_eq!(found, vec!["# Berths\n\nBerth: East; Depth: 7 m"]);

    // A search finds the table's row by its words.
    let hits = crate::knowledge::search(&server, &owner, &set, "East berth depth").await;
    assert!(
        hits[0]["content"]
            .as_str()
            .is_some_and(|c| c.contains("Berth: East")),
        "{hits:?}"
    );
}

#[tokio::test]
async fn a_broken_file_ends_in_error_with_the_reason() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Org").await;
    let set = dataset(&server, &owner, &tenant, json!({})).await;
    for (name, mime, bytes, reason) in [
        (
            "broken.docx",
            DOCX,
            b"PK\x03\x04 truncated".to_vec(),
            "cannot be read",
        ),
        ("empty.docx", DOCX, docx("<w:p/>"), "no text"),
        (
            "broken.xlsx",
            XLSX,
            b"not a workbook".to_vec(),
            "cannot be read",
        ),
    ] {
        let id = document_from_file(&server, &owner, &tenant, &set, name, mime, bytes).await;
        let row = wait_error(&server, &id).await;
        assert!(
            row["error"].as_str().is_some_and(|e| e.contains(reason)),
            "{name}: {row}"
        );
        assert_eq!(
            server
                .scalar(&format!(
                    "SELECT count(*) FROM document_segments WHERE document_id = '{id}'"
                ))
                .await,
            0
        );
    }
}

/// Waits for a document's indexing to end in ERROR: {indexingStatus, error}.
async fn wait_error(server: &TestServer, id: &str) -> Value {
    let row = crate::harness::live::document_row(server, id.parse().unwrap()).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut row = row;
    while row.indexing_status != "ERROR" {
        assert_ne!(row.indexing_status, "COMPLETED", "{id} was indexed");
        assert!(std::time::Instant::now() < deadline, "indexing ends");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        row = crate::harness::live::document_row(server, id.parse().unwrap()).await;
    }
    json!({ "indexingStatus": row.indexing_status, "error": row.error })
}
