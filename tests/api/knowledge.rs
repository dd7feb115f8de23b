//! Knowledge bases: documents indexed in the background with live progress, segments and
//! counters, keyword and vector retrieval, enabling and disabling, isolation, and the
//! segments a chat reply used.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::harness::accounts::{Account, Tenant, create_organization, data, error_code, register};
use crate::harness::live::Ws;
use crate::harness::model_server::ModelServer;

fn text(name: &str) -> String {
    let path = format!(
        "{}/tests/data/knowledge/{name}.md",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path).expect("test data")
}

pub(crate) async fn dataset(
    server: &TestServer,
    owner: &Account,
    tenant: &Tenant,
    extra: Value,
) -> String {
    let mut input = json!({ "workspaceId": tenant.workspace_id, "name": "Handbook" });
    if let (Value::Object(input), Value::Object(extra)) = (&mut input, extra) {
        input.extend(extra);
    }
    data(
        server
            .graphql_as(
                owner.token(),
                "mutation($i: CreateDatasetInput!) { createDataset(input: $i) { id } }",
                json!({ "i": input }),
            )
            .await,
    )["createDataset"]["id"]
        .as_str()
        .expect("a dataset id")
        .to_string()
}

const CREATE: &str = "mutation($i: CreateDocumentInput!) { createDocument(input: $i) {
    id name indexingStatus progress wordCount } }";

pub(crate) async fn document(
    server: &TestServer,
    owner: &Account,
    dataset: &str,
    name: &str,
) -> String {
    let created = server
        .graphql_as(
            owner.token(),
            CREATE,
            json!({ "i": { "datasetId": dataset, "name": name, "text": text(name), "maxTokens": 80, "overlapTokens": 16 } }),
        )
        .await;
    let created = data(created)["createDocument"].clone();
    assert_eq!(created["indexingStatus"], "WAITING");
    created["id"].as_str().expect("a document id").to_string()
}

pub(crate) async fn wait_indexed(server: &TestServer, id: &str) {
    let row = wait_finished(server, id.parse().expect("uuid")).await;
    assert_eq!(
        row.indexing_status, "COMPLETED",
        "indexing failed: {:?}",
        row.error
    );
}

/// Waits until the document's indexing ends (COMPLETED or ERROR); its row.
async fn wait_finished(server: &TestServer, id: uuid::Uuid) -> weft::db::models::Document {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let row = crate::harness::live::document_row(server, id).await;
        if matches!(row.indexing_status.as_str(), "COMPLETED" | "ERROR") {
            return row;
        }
        assert!(std::time::Instant::now() < deadline, "finished in time");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A provider on `models` and a HIGH_QUALITY dataset embedded with its `model`.
async fn embedded_dataset(
    server: &TestServer,
    owner: &Account,
    tenant: &Tenant,
    models: &ModelServer,
    model: &str,
) -> (String, String) {
    let provider = crate::harness::chat::provider(
        server,
        owner,
        tenant,
        &models.base_url,
        crate::harness::model_server::KEY,
        None,
    )
    .await;
    let set = dataset(
        server,
        owner,
        tenant,
        json!({ "indexingTechnique": "HIGH_QUALITY", "embeddingProviderId": provider,
                "embeddingModel": model, "vectorSimilarityWeight": 0.7 }),
    )
    .await;
    (provider, set)
}

const SEARCH: &str = "query($d: UUID!, $q: String!, $k: Int) { searchDataset(datasetId: $d, query: $q, topK: $k) {
    documentId datasetId documentName score keywordScore vectorScore content segment { id hitCount position } } }";

pub(crate) async fn search(
    server: &TestServer,
    owner: &Account,
    dataset: &str,
    query: &str,
) -> Vec<Value> {
    search_top(server, owner, dataset, query, 5).await
}

/// The `k` best segments for `query`.
pub(crate) async fn search_top(
    server: &TestServer,
    owner: &Account,
    dataset: &str,
    query: &str,
    k: i64,
) -> Vec<Value> {
    let found = server
        .graphql_as(
            owner.token(),
            SEARCH,
            json!({ "d": dataset, "q": query, "k": k }),
        )
        .await;
    data(found)["searchDataset"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn documents_are_indexed_with_live_progress_and_found_by_keywords() {
    // This instance indexes nothing: the progress seen here comes from another instance.
    let server = TestServer::start_with(|c| c.engine.workers = 0).await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Org").await;
    let set = dataset(&server, &owner, &tenant, json!({})).await;
    let harbour = document(&server, &owner, &set, "harbour").await;

    let mut ws = Ws::connect(&server, "graphql-transport-ws", owner.token()).await;
    ws.subscribe(
        "1",
        "subscription($id: UUID!) { documentIndexing(documentId: $id) { indexingStatus progress progressMsg wordCount } }",
        json!({ "id": harbour }),
    )
    .await;
    let first = ws.next_json().await.expect("the current state");
    assert_eq!(
        first["payload"]["data"]["documentIndexing"]["indexingStatus"],
        "WAITING"
    );
    let worker = server.beside_with(|c| c.engine.workers = 4).await;
    let events = ws.until_complete("1").await;
    let steps: Vec<(String, f64)> = std::iter::once(&first["payload"])
        .chain(events.iter())
        .map(|e| {
            let d = &e["data"]["documentIndexing"];
            (
                d["indexingStatus"].as_str().unwrap_or("").to_string(),
                d["progress"].as_f64().unwrap_or(-1.0),
            )
        })
        .collect();
    let order = ["WAITING", "PARSING", "SPLITTING", "INDEXING", "COMPLETED"];
    let rank = |s: &str| order.iter().position(|o| *o == s).expect("a known status");
    assert!(
        steps
            .windows(2)
            .all(|w| rank(&w[0].0) <= rank(&w[1].0) && w[0].1 <= w[1].1),
        "{steps:?}"
    );
    for status in ["PARSING", "SPLITTING", "INDEXING"] {
        assert!(steps.iter().any(|s| s.0 == status), "{status}: {steps:?}");
    }
    assert_eq!(
        steps.last().map(|s| (s.0.as_str(), s.1)),
        Some(("COMPLETED", 1.0))
    );

    let bakery = document(&server, &owner, &set, "bakery").await;
    wait_indexed(&server, &bakery).await;

    // Counters and segments.
    let read = server
        .graphql_as(
            owner.token(),
            "query($id: UUID!) { dataset(id: $id) { documentCount wordCount tokens
               documents { nodes { id name wordCount tokens processDuration
                 segments(first: 100) { totalCount nodes { position tokens wordCount content keywords } } } } } }",
            json!({ "id": set }),
        )
        .await;
    let read = data(read)["dataset"].clone();
    assert_eq!(read["documentCount"], 2);
    let documents = read["documents"]["nodes"].as_array().expect("documents");
    let sum = |field: &str| {
        documents
            .iter()
            .map(|d| d[field].as_i64().unwrap_or(0))
            .sum::<i64>()
    };
    assert_eq!(read["wordCount"].as_i64(), Some(sum("wordCount")));
    assert_eq!(read["tokens"].as_i64(), Some(sum("tokens")));
    for doc in documents {
        let segments = doc["segments"]["nodes"].as_array().expect("segments");
        assert!(
            segments.len() > 2,
            "{} is cut in several segments",
            doc["name"]
        );
        assert_eq!(
            doc["segments"]["totalCount"].as_u64(),
            Some(segments.len() as u64)
        );
        let tokens: i64 = segments
            .iter()
            .map(|s| s["tokens"].as_i64().unwrap_or(0))
            .sum();
        assert_eq!(doc["tokens"].as_i64(), Some(tokens));
        for (i, segment) in segments.iter().enumerate() {
            assert_eq!(segment["position"], i);
            assert!(segment["tokens"].as_i64().unwrap_or(0) <= 80, "{segment}");
            assert!(!segment["keywords"].as_array().expect("keywords").is_empty());
        }
        // A heading starts a segment.
        assert!(
            segments
                .iter()
                .filter(|s| s["content"].as_str().unwrap_or("").contains("## "))
                .all(|s| s["content"].as_str().unwrap_or("").starts_with("## ")),
            "{segments:?}"
        );
        assert!(doc["processDuration"].as_f64().is_some());
    }

    // Keyword search: the right document first; each result counts a hit.
    let found = search(
        &server,
        &owner,
        &set,
        "When does the tide turn in the harbour?",
    )
    .await;
    assert!(!found.is_empty());
    assert_eq!(found[0]["documentName"], "harbour");
    assert_eq!(found[0]["keywordScore"], 1.0);
    assert_eq!(found[0]["vectorScore"], Value::Null);
    assert_eq!(found[0]["segment"]["hitCount"], 1);
    assert!(
        found
            .windows(2)
            .all(|w| w[0]["score"].as_f64() >= w[1]["score"].as_f64())
    );
    let found = search(&server, &owner, &set, "oven crust").await;
    assert_eq!(found[0]["documentName"], "bakery");
    assert!(
        search(&server, &owner, &set, "telescope galaxy")
            .await
            .is_empty()
    );

    // A disabled document is never retrieved; enabled again, it is.
    let toggle = async |enabled: bool| {
        data(
            server
                .graphql_as(
                    owner.token(),
                    "mutation($i: UpdateDocumentInput!) { updateDocument(input: $i) { enabled indexingStatus } }",
                    json!({ "i": { "id": harbour, "enabled": enabled } }),
                )
                .await,
        )
    };
    assert_eq!(toggle(false).await["updateDocument"]["enabled"], false);
    let found = search(&server, &owner, &set, "harbour tide boats").await;
    assert!(
        found.iter().all(|f| f["documentName"] != "harbour"),
        "{found:?}"
    );
    toggle(true).await;
    let found = search(&server, &owner, &set, "harbour tide boats").await;
    assert_eq!(found[0]["documentName"], "harbour");

    // Another workspace sees none of it; bad input changes nothing.
    let stranger = register(&server, "stranger@example.com").await;
    create_organization(&server, &stranger, "Theirs").await;
    let theirs = server
        .graphql_as(
            stranger.token(),
            SEARCH,
            json!({ "d": set, "q": "harbour", "k": 5 }),
        )
        .await;
    assert_eq!(error_code(&theirs), "NOT_FOUND");
    let peek = server
        .graphql_as(
            stranger.token(),
            "query($id: UUID!) { document(id: $id) { id } }",
            json!({ "id": harbour }),
        )
        .await;
    assert_eq!(data(peek)["document"], Value::Null);
    let add = server
        .graphql_as(
            stranger.token(),
            CREATE,
            json!({ "i": { "datasetId": set, "name": "x", "text": "intruder" } }),
        )
        .await;
    assert_eq!(error_code(&add), "NOT_FOUND");
    for (input, field) in [
        (json!({ "datasetId": set, "name": "x" }), "text"),
        (
            json!({ "datasetId": set, "name": "x", "text": "  " }),
            "text",
        ),
        (
            json!({ "datasetId": set, "name": "x", "text": "t", "maxTokens": 10 }),
            "maxTokens",
        ),
        (
            json!({ "datasetId": set, "name": "x", "text": "t", "overlapTokens": 300 }),
            "overlapTokens",
        ),
        (json!({ "datasetId": set, "name": "", "text": "t" }), "name"),
    ] {
        let refused = server
            .graphql_as(owner.token(), CREATE, json!({ "i": input }))
            .await;
        assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{refused}");
        assert_eq!(refused["errors"][0]["extensions"]["field"], field);
    }
    assert_eq!(server.scalar("SELECT count(*) FROM documents").await, 2);
    let bad_query = server
        .graphql_as(owner.token(), SEARCH, json!({ "d": set, "q": "x", "k": 0 }))
        .await;
    assert_eq!(bad_query["errors"][0]["extensions"]["field"], "topK");

    // Deleting a document takes it out of search and of the counts.
    data(
        server
            .graphql_as(
                owner.token(),
                "mutation($id: UUID!) { deleteDocument(id: $id) }",
                json!({ "id": bakery }),
            )
            .await,
    );
    assert!(search(&server, &owner, &set, "oven crust").await.is_empty());
    let counts = data(
        server
            .graphql_as(
                owner.token(),
                "query($id: UUID!) { dataset(id: $id) { documentCount tokens } }",
                json!({ "id": set }),
            )
            .await,
    );
    assert_eq!(counts["dataset"]["documentCount"], 1);
    drop(worker);
}

#[tokio::test]
async fn vector_search_finds_by_meaning_and_replies_keep_the_segments_they_used() {
    let models = ModelServer::start().await;
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Org").await;
    let (provider, set) = embedded_dataset(&server, &owner, &tenant, &models, "topics").await;
    for name in ["harbour", "bakery", "observatory"] {
        let id = document(&server, &owner, &set, name).await;
        wait_indexed(&server, &id).await;
    }
    let embedded: i64 = server
        .scalar("SELECT count(*) FROM document_segments WHERE embedding IS NULL")
        .await;
    assert_eq!(embedded, 0, "every segment has an embedding");

    // No segment says "ocean" or "sky": only the vectors can find these.
    let found = search(&server, &owner, &set, "ocean").await;
    assert!(!found.is_empty());
    assert_eq!(found[0]["documentName"], "harbour");
    assert_eq!(found[0]["keywordScore"], 0.0);
    assert!(
        found[0]["vectorScore"].as_f64().unwrap_or(0.0) > 0.9,
        "{}",
        found[0]
    );
    let found = search(
        &server,
        &owner,
        &set,
        "what is in the sky, stars or planets",
    )
    .await;
    assert_eq!(found[0]["documentName"], "observatory");
    // An edited segment is embedded again, and searches see its new vector at once.
    let records =
        search(&server, &owner, &set, "log book records").await[0]["segment"]["id"].clone();
    data(
        server
            .graphql_as(
                owner.token(),
                UPDATE_SEGMENT,
                json!({ "i": { "id": records, "content": "Sailors watch the waves and the tide from their boats." } }),
            )
            .await,
    );
    let found = search(&server, &owner, &set, "ocean").await;
    assert!(
        found.iter().any(|f| f["segment"]["id"] == records),
        "the edited segment is found by its new meaning: {found:?}"
    );

    // A chat workflow retrieving before it answers.
    let graph = json!({
        "nodes": [
            { "key": "start", "type": "START", "config": { "inputs": [] } },
            { "key": "kb", "type": "KNOWLEDGE_RETRIEVAL", "config": {
                "datasetIds": [set], "query": "{{sys.query}}", "topK": 2 } },
            { "key": "llm", "type": "LLM", "config": {
                "providerId": provider, "model": "gpt-test",
                "prompt": "Context:\n{{kb.context}}\n\nQuestion: {{sys.query}}" } },
            { "key": "answer", "type": "ANSWER", "config": { "answer": "{{llm.text}}" } }
        ],
        "connections": [
            { "source": "start", "target": "kb" },
            { "source": "kb", "target": "llm" },
            { "source": "llm", "target": "answer" }
        ]
    });
    let workflow = crate::harness::chat::workflow(&server, &owner, &tenant, graph).await;
    let app = data(
        server
            .graphql_as(
                owner.token(),
                "mutation($i: CreateApplicationInput!) { createApplication(input: $i) { id } }",
                json!({ "i": { "workspaceId": tenant.workspace_id, "name": "Guide", "mode": "CHAT",
                               "workflowId": workflow, "datasetIds": [set] } }),
            )
            .await,
    )["createApplication"]["id"]
        .clone();
    let sent = data(
        server
            .graphql_as(
                owner.token(),
                crate::harness::chat::SEND,
                json!({ "i": { "applicationId": app, "query": "How does the baker know the oven is hot?" } }),
            )
            .await,
    )["sendMessage"]
        .clone();
    let message: uuid::Uuid = sent["assistantMessage"]["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("a message id");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while crate::harness::live::message_row(&server, message)
        .await
        .status
        != "COMPLETED"
    {
        assert!(std::time::Instant::now() < deadline, "the reply completes");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let prompt = models
        .seen
        .last_body
        .lock()
        .map(|b| b.clone())
        .unwrap_or_default()
        .unwrap_or_default();
    assert!(prompt.to_string().contains("brick oven"), "{prompt}");
    let read = data(
        server
            .graphql_as(
                owner.token(),
                "query($id: UUID!) { message(id: $id) { answer retrieverResources {
                   position documentName nodeKey score content segmentId } } }",
                json!({ "id": message }),
            )
            .await,
    );
    let resources = read["message"]["retrieverResources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(resources.len(), 2, "{read}");
    assert_eq!(resources[0]["position"], 1);
    assert_eq!(resources[0]["documentName"], "bakery");
    assert_eq!(resources[0]["nodeKey"], "kb");
    assert!(resources[0]["segmentId"].is_string());
    // The application's API key reads the same, through the same loaders.
    let key = data(
        server
            .graphql_as(
                owner.token(),
                "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }",
                json!({ "i": { "applicationId": app, "name": "web" } }),
            )
            .await,
    )["createApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let by_key = data(
        server
            .graphql_as(
                Some(&key),
                "query($id: UUID!) { message(id: $id) { retrieverResources { position documentName content } } }",
                json!({ "id": message }),
            )
            .await,
    );
    assert_eq!(
        by_key["message"]["retrieverResources"][1]["content"],
        resources[1]["content"]
    );

    // A node naming a dataset of another workspace fails the run with a clear error.
    let stranger = register(&server, "stranger@example.com").await;
    let theirs = create_organization(&server, &stranger, "Theirs").await;
    let foreign = json!({
        "nodes": [
            { "key": "start", "type": "START", "config": { "inputs": [] } },
            { "key": "kb", "type": "KNOWLEDGE_RETRIEVAL", "config": {
                "datasetIds": [set], "query": "ocean" } },
            { "key": "end", "type": "END", "config": { "outputs": { "c": "{{kb.context}}" } } }
        ],
        "connections": [
            { "source": "start", "target": "kb" },
            { "source": "kb", "target": "end" }
        ]
    });
    let flow = crate::harness::chat::workflow(&server, &stranger, &theirs, foreign).await;
    let run = data(
        server
            .graphql_as(
                stranger.token(),
                "mutation($i: RunWorkflowInput!) { runWorkflow(input: $i) { id } }",
                json!({ "i": { "workflowId": flow, "inputs": {} } }),
            )
            .await,
    )["runWorkflow"]["id"]
        .as_str()
        .and_then(|s| s.parse::<uuid::Uuid>().ok())
        .expect("a run");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let row = crate::harness::live::execution_row(&server, run).await;
        if row.status == "FAILED" {
            assert!(
                row.error
                    .unwrap_or_default()
                    .contains("none of the node's datasets"),
                "the stranger's run cannot read our dataset"
            );
            break;
        }
        assert_ne!(row.status, "SUCCEEDED");
        assert!(std::time::Instant::now() < deadline, "the run ends");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // Another embedding model: every document is embedded again with it.
    data(
        server
            .graphql_as(
                owner.token(),
                "mutation($i: UpdateDatasetInput!) { updateDataset(input: $i) { id } }",
                json!({ "i": { "id": set, "embeddingModel": "gpt-test" } }),
            )
            .await,
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let waiting: i64 = server
            .scalar("SELECT count(*) FROM documents WHERE indexing_status <> 'COMPLETED'")
            .await;
        let old: i64 = server
            // gpt-test's vectors end in 0.5; the topics model's never do.
            .scalar("SELECT count(*) FROM document_segments WHERE embedding[3] <> 0.5")
            .await;
        if waiting == 0 && old == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "re-embedded in time");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A one-page PDF showing `lines` in Helvetica, with a correct cross-reference table.
fn pdf(lines: &[&str]) -> Vec<u8> {
    let mut content = String::from("BT /F1 12 Tf 72 720 Td 14 TL\n");
    for line in lines {
        let escaped = line
            .replace('\\', "\\\\")
            .replace('(', "\\(")
            .replace(')', "\\)");
        content.push_str(&format!("({escaped}) Tj T*\n"));
    }
    content.push_str("ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_string(),
        format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for offset in offsets {
        out.extend(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// Uploads `bytes` and makes a document of it; the document's id.
pub(crate) async fn document_from_file(
    server: &TestServer,
    owner: &Account,
    tenant: &Tenant,
    dataset: &str,
    name: &str,
    mime: &str,
    bytes: Vec<u8>,
) -> String {
    document_from_file_with(
        server,
        owner,
        tenant,
        dataset,
        (name, mime, bytes),
        json!({}),
    )
    .await
}

/// Uploads a file (name, media type, bytes) and makes a document of it with `extra` in
/// its input (`chunkMode`, say); the document's id.
pub(crate) async fn document_from_file_with(
    server: &TestServer,
    owner: &Account,
    tenant: &Tenant,
    dataset: &str,
    (name, mime, bytes): (&str, &str, Vec<u8>),
    extra: Value,
) -> String {
    let (status, uploaded) = crate::files::upload(
        server,
        owner.token(),
        tenant.workspace_id,
        name,
        mime,
        bytes,
    )
    .await;
    assert_eq!(status, 200, "{uploaded}");
    let file = data(uploaded)["uploadFile"]["id"].clone();
    let mut input = json!({ "datasetId": dataset, "name": name, "fileId": file });
    if let (Value::Object(input), Value::Object(extra)) = (&mut input, extra) {
        input.extend(extra);
    }
    let created = server
        .graphql_as(owner.token(), CREATE, json!({ "i": input }))
        .await;
    data(created)["createDocument"]["id"]
        .as_str()
        .expect("an id")
        .to_string()
}

pub(crate) const UPDATE_SEGMENT: &str =
    "mutation($i: UpdateSegmentInput!) { updateSegment(input: $i) {
    id content tokens wordCount keywords enabled archived } }";

#[tokio::test]
async fn files_edits_and_segments_are_indexed_again_and_kept_out_when_disabled() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Org").await;
    let set = dataset(&server, &owner, &tenant, json!({})).await;

    // A document from an uploaded HTML file: headings and paragraphs survive the markup.
    let html = format!(
        "<html><head><style>p {{}}</style></head><body><h1>Observatory</h1><p>{}</p><script>var hidden = 1;</script></body></html>",
        text("observatory").replace("\n\n", "</p><p>")
    );
    let from_file = document_from_file(
        &server,
        &owner,
        &tenant,
        &set,
        "observatory.html",
        "text/html",
        html.into_bytes(),
    )
    .await;
    wait_indexed(&server, &from_file).await;
    let found = search(&server, &owner, &set, "comet orbit").await;
    assert_eq!(found[0]["documentName"], "observatory.html");
    assert!(
        !found
            .iter()
            .any(|f| f["content"].as_str().unwrap_or("").contains("hidden"))
    );
    let refused = server
        .graphql_as(
            owner.token(),
            CREATE,
            json!({ "i": { "datasetId": set, "name": "x", "fileId": uuid::Uuid::new_v4() } }),
        )
        .await;
    assert_eq!(error_code(&refused), "NOT_FOUND");

    // A PDF's text is indexed; a malformed one ends in ERROR saying so.
    let manual = pdf(&[
        "The quarry workers cut granite blocks at dawn.",
        "Each block is split along its grain (never across it).",
    ]);
    let from_pdf = document_from_file(
        &server,
        &owner,
        &tenant,
        &set,
        "quarry.pdf",
        "application/pdf",
        manual,
    )
    .await;
    wait_indexed(&server, &from_pdf).await;
    assert_eq!(
        search(&server, &owner, &set, "granite quarry").await[0]["documentName"],
        "quarry.pdf"
    );
    let broken = document_from_file(
        &server,
        &owner,
        &tenant,
        &set,
        "broken.pdf",
        "application/pdf",
        b"%PDF-1.4\nthis is not a PDF".to_vec(),
    )
    .await;
    let broken_id: uuid::Uuid = broken.parse().expect("uuid");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let row = crate::harness::live::document_row(&server, broken_id).await;
        if row.indexing_status == "ERROR" {
            assert!(row.error.unwrap_or_default().contains("cannot be read"));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the broken PDF fails");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // New text replaces the segments (old words leave search, new ones arrive) and counts.
    let harbour = document(&server, &owner, &set, "harbour").await;
    wait_indexed(&server, &harbour).await;
    let before: i64 = server
        .scalar(&format!(
            "SELECT tokens::bigint FROM documents WHERE id = '{harbour}'"
        ))
        .await;
    let edited = data(
        server
            .graphql_as(
                owner.token(),
                "mutation($i: UpdateDocumentInput!) { updateDocument(input: $i) { indexingStatus } }",
                json!({ "i": { "id": harbour, "text": "# Lighthouse\n\nThe lighthouse keeper climbs the stairs at dusk and lights the lamp." } }),
            )
            .await,
    );
    assert_eq!(edited["updateDocument"]["indexingStatus"], "WAITING");
    wait_indexed(&server, &harbour).await;
    assert!(
        search(&server, &owner, &set, "mooring slipway")
            .await
            .is_empty()
    );
    assert_eq!(
        search(&server, &owner, &set, "lighthouse keeper").await[0]["documentName"],
        "harbour"
    );
    let after: i64 = server
        .scalar(&format!(
            "SELECT tokens::bigint FROM documents WHERE id = '{harbour}'"
        ))
        .await;
    assert!(after < before);
    let total: i64 = server
        .scalar(&format!(
            "SELECT (SELECT tokens FROM datasets WHERE id = '{set}') - \
             (SELECT sum(tokens) FROM document_segments WHERE dataset_id = '{set}')"
        ))
        .await;
    assert_eq!(total, 0, "the dataset's tokens are its segments'");

    // A segment edited is searched by its new words; disabled or archived, it is not found.
    let segment = server
        .scalar(&format!(
            "SELECT count(*) FROM document_segments WHERE document_id = '{harbour}'"
        ))
        .await;
    assert_eq!(segment, 1);
    let id: String = {
        let read = data(
            server
                .graphql_as(
                    owner.token(),
                    "query($id: UUID!) { document(id: $id) { segments { nodes { id } } } }",
                    json!({ "id": harbour }),
                )
                .await,
        );
        read["document"]["segments"]["nodes"][0]["id"]
            .as_str()
            .expect("a segment")
            .to_string()
    };
    let changed = data(
        server
            .graphql_as(
                owner.token(),
                UPDATE_SEGMENT,
                json!({ "i": { "id": id, "content": "Foghorns warn ships in thick fog near the rocks." } }),
            )
            .await,
    )["updateSegment"]
        .clone();
    assert_eq!(changed["wordCount"], 9);
    assert!(
        changed["keywords"]
            .as_array()
            .expect("keywords")
            .contains(&json!("foghorns"))
    );
    assert_eq!(
        search(&server, &owner, &set, "foghorns fog").await[0]["segment"]["id"],
        json!(id)
    );
    let doc_tokens: i64 = server
        .scalar(&format!(
            "SELECT tokens::bigint FROM documents WHERE id = '{harbour}'"
        ))
        .await;
    assert_eq!(Some(doc_tokens), changed["tokens"].as_i64());
    for change in [
        json!({ "enabled": false }),
        json!({ "enabled": true, "archived": true }),
    ] {
        let mut input = json!({ "id": id });
        if let (Value::Object(i), Value::Object(c)) = (&mut input, change) {
            i.extend(c);
        }
        data(
            server
                .graphql_as(owner.token(), UPDATE_SEGMENT, json!({ "i": input }))
                .await,
        );
        assert!(
            search(&server, &owner, &set, "foghorns fog")
                .await
                .is_empty()
        );
    }

    // Bad input and strangers change nothing.
    let empty = server
        .graphql_as(
            owner.token(),
            UPDATE_SEGMENT,
            json!({ "i": { "id": id, "content": "   " } }),
        )
        .await;
    assert_eq!(empty["errors"][0]["extensions"]["field"], "content");
    let stranger = register(&server, "stranger@example.com").await;
    create_organization(&server, &stranger, "Theirs").await;
    let theirs = server
        .graphql_as(
            stranger.token(),
            UPDATE_SEGMENT,
            json!({ "i": { "id": id, "content": "mine now" } }),
        )
        .await;
    assert_eq!(error_code(&theirs), "NOT_FOUND");
    let kept: i64 = server
        .scalar(&format!(
            "SELECT count(*) FROM document_segments WHERE id = '{id}' AND content LIKE 'Foghorns%'"
        ))
        .await;
    assert_eq!(kept, 1);
}

#[tokio::test]
async fn searches_waiting_on_a_slow_embedding_provider_hold_no_database_connection() {
    let models = ModelServer::start().await;
    // Two connections for requests, and a second's wait for one.
    let server = TestServer::start_with(|c| {
        c.database_pool_size = 2;
        c.database_wait_timeout = Duration::from_secs(1);
        c.engine.interactive_timeout = Duration::from_secs(5);
    })
    .await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Org").await;
    let (_, set) = embedded_dataset(&server, &owner, &tenant, &models, "topics").await;
    let id = document(&server, &owner, &set, "harbour").await;
    wait_indexed(&server, &id).await;
    let segment = data(
        server
            .graphql_as(
                owner.token(),
                SEARCH,
                json!({ "d": set, "q": "harbour", "k": 1 }),
            )
            .await,
    )["searchDataset"][0]["segment"]["id"]
        .clone();

    // The provider now takes three seconds an answer: four searches and a segment edit
    // wait on it at once, more than the pool has connections.
    models
        .seen
        .embeddings_delay_ms
        .store(3000, std::sync::atomic::Ordering::SeqCst);
    let mut waiting = Vec::new();
    for _ in 0..4 {
        let (server, token, set) = (&server, owner.token(), set.clone());
        waiting.push(Box::pin(async move {
            server
                .graphql_as(
                    token,
                    SEARCH,
                    json!({ "d": set, "q": "boats at sea", "k": 3 }),
                )
                .await
        })
            as std::pin::Pin<
                Box<dyn std::future::Future<Output = Value> + Send + '_>,
            >);
    }
    let edit = Box::pin(server.graphql_as(
        owner.token(),
        "mutation($i: UpdateSegmentInput!) { updateSegment(input: $i) { id content } }",
        json!({ "i": { "id": segment, "content": "Ferries leave the harbour at dawn." } }),
    ));
    waiting.push(edit);
    let everyone = futures_util::future::join_all(waiting);
    let others = async {
        // Give them time to reach the provider, then ask for something else.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut answers = Vec::new();
        for _ in 0..3 {
            answers.push(
                server
                    .graphql_as(owner.token(), "{ me { id } }", json!({}))
                    .await,
            );
        }
        answers
    };
    let (slow, others) = tokio::join!(everyone, others);
    for answer in others {
        assert_eq!(
            data(answer)["me"]["id"],
            owner.id.to_string(),
            "no one else waits"
        );
    }
    for answer in slow {
        assert!(answer.get("errors").is_none(), "{answer:#}");
    }

    // Slower than an interactive caller waits (5 s here, one retry): the search ends with
    // a clear error instead of holding the screen for minutes.
    models
        .seen
        .embeddings_delay_ms
        .store(6000, std::sync::atomic::Ordering::SeqCst);
    let started = std::time::Instant::now();
    let late = server
        .graphql_as(
            owner.token(),
            SEARCH,
            json!({ "d": set, "q": "lighthouse", "k": 3 }),
        )
        .await;
    assert_eq!(error_code(&late), "CONFLICT", "{late:#}");
    assert!(
        late["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("did not answer"),
        "{late:#}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "gave up after the retry"
    );

    // An instance whose requests may run one second: the same search is cut off there.
    let impatient = server
        .beside_with(|c| c.http.request_timeout = Duration::from_secs(1))
        .await;
    let response = impatient
        .client
        .post(impatient.url("/graphql"))
        .bearer_auth(owner.token().unwrap())
        .json(&json!({ "query": SEARCH, "variables": { "d": set, "q": "lighthouse", "k": 3 } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "INTERNAL", "{body:#}");
    assert!(body["errors"][0]["extensions"]["requestId"].is_string());
}

/// A one-page PDF whose content stream inflates to `inflated` bytes of spaces.
fn pdf_bomb(inflated: usize) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let chunk = vec![b' '; 1 << 20];
    let mut left = inflated;
    while left > 0 {
        let n = left.min(chunk.len());
        encoder.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    let content = encoder.finish().unwrap();
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
    ]
    .iter()
    .enumerate()
    {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    offsets.push(out.len());
    out.extend(
        format!(
            "4 0 obj\n<< /Length {} /Filter /FlateDecode >>\nstream\n",
            content.len()
        )
        .as_bytes(),
    );
    out.extend(&content);
    out.extend(b"\nendstream\nendobj\n");
    let xref = out.len();
    out.extend(b"xref\n0 5\n0000000000 65535 f \n");
    for offset in offsets {
        out.extend(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend(
        format!("trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n").as_bytes(),
    );
    out
}

#[tokio::test]
async fn a_pdf_that_inflates_to_400_mb_ends_its_document_in_error_and_the_server_keeps_answering() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Org").await;
    let set = dataset(&server, &owner, &tenant, json!({})).await;
    let bomb = pdf_bomb(400 << 20);
    assert!(bomb.len() < 2 << 20, "{} bytes on disk", bomb.len());
    let id = document_from_file(
        &server,
        &owner,
        &tenant,
        &set,
        "bomb.pdf",
        "application/pdf",
        bomb,
    )
    .await;
    let id: uuid::Uuid = id.parse().unwrap();
    // The server answers all along.
    let answering = async {
        loop {
            data(
                server
                    .graphql_as(owner.token(), "{ me { id } }", json!({}))
                    .await,
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let row = tokio::select! {
        row = wait_finished(&server, id) => row,
        () = answering => unreachable!(),
    };
    assert_eq!(row.indexing_status, "ERROR");
    let error = row.error.unwrap_or_default();
    assert!(error.contains("expands to more than 64 MiB"), "{error}");
}

#[tokio::test]
async fn an_embeddings_answer_larger_than_its_vectors_need_ends_the_indexing_with_an_error() {
    let models = ModelServer::start().await;
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Org").await;
    let (_, set) = embedded_dataset(&server, &owner, &tenant, &models, "bloated").await;
    let id: uuid::Uuid = document(&server, &owner, &set, "harbour")
        .await
        .parse()
        .unwrap();
    let row = wait_finished(&server, id).await;
    assert_eq!(row.indexing_status, "ERROR");
    let error = row.error.unwrap_or_default();
    assert!(
        error.contains("embeddings answer is larger than"),
        "{error}"
    );
}

#[tokio::test]
async fn a_file_saved_in_a_legacy_encoding_is_indexed_as_the_text_it_holds() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Org").await;
    let set = dataset(&server, &owner, &tenant, json!({})).await;
    // A menu saved by an old Windows editor (windows-1252): not UTF-8.
    let menu =
        b"Dessert menu\n\nCaf\xe9 cr\xe8me br\xfbl\xe9e with a na\xefve \x93caramel\x94 crust."
            .to_vec();
    assert!(std::str::from_utf8(&menu).is_err());
    let document = document_from_file(
        &server,
        &owner,
        &tenant,
        &set,
        "menu.txt",
        "text/plain",
        menu,
    )
    .await;
    wait_indexed(&server, &document).await;
    let found = search(&server, &owner, &set, "caramel crust").await;
    assert_eq!(found[0]["documentName"], "menu.txt");
    assert!(
        found[0]["content"]
            .as_str()
            .unwrap()
            .contains("Café crème brûlée with a naïve \u{201c}caramel\u{201d} crust."),
        "{}",
        found[0]
    );
}
