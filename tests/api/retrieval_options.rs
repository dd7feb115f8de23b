//! What narrows and reorders a search: document metadata and the filters `searchDataset`
//! and KNOWLEDGE_RETRIEVAL apply to it in SQL (eq, in, number and date ranges), and a
//! reranker per dataset or per node (the test model server's `/v1/rerank`).

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::harness::accounts::{Account, Tenant, create_organization, data, error_code, register};
use crate::harness::chat::{provider, workflow};
use crate::harness::model_server::{KEY, ModelServer};
use crate::knowledge::{dataset, wait_indexed};

const SEARCH: &str = "query($d: UUID!, $q: String!, $k: Int, $f: [MetadataCondition!]) {
    searchDataset(datasetId: $d, query: $q, topK: $k, filter: $f) {
      documentName documentMetadata score keywordScore rerankScore content } }";

const CREATE: &str =
    "mutation($i: CreateDocumentInput!) { createDocument(input: $i) { id metadata } }";

async fn create_document(
    server: &TestServer,
    owner: &Account,
    set: &str,
    name: &str,
    text: &str,
    metadata: Value,
) -> String {
    let created = server
        .graphql_as(
            owner.token(),
            CREATE,
            json!({ "i": { "datasetId": set, "name": name, "text": text, "metadata": metadata } }),
        )
        .await;
    let created = data(created)["createDocument"].clone();
    assert_eq!(created["metadata"], metadata);
    let id = created["id"].as_str().expect("a document id").to_string();
    wait_indexed(server, &id).await;
    id
}

async fn found(
    server: &TestServer,
    owner: &Account,
    set: &str,
    query: &str,
    filter: Value,
) -> Vec<String> {
    let answer = server
        .graphql_as(
            owner.token(),
            SEARCH,
            json!({ "d": set, "q": query, "k": 10, "f": filter }),
        )
        .await;
    let mut names: Vec<String> = data(answer)["searchDataset"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|h| h["documentName"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn metadata_filters_keep_only_the_documents_they_match() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Org").await;
    let set = dataset(&server, &owner, &tenant, json!({})).await;
    let mut ids = std::collections::HashMap::new();
    for (name, metadata) in [
        (
            "en-2021",
            json!({"lang": "en", "year": 2021, "published": "2021-03-01", "public": true}),
        ),
        (
            "en-2023",
            json!({"lang": "en", "year": 2023, "published": "2023-06-30T23:30:00-02:00"}),
        ),
        (
            "fr-2022",
            json!({"lang": "fr", "year": 2022.5, "published": "2022-12-31"}),
        ),
        ("bare", json!({})),
    ] {
        let id = create_document(
            &server,
            &owner,
            &set,
            name,
            &format!("The harbour crane of {name} lifts containers."),
            metadata,
        )
        .await;
        ids.insert(name, id);
    }
    let all = ["bare", "en-2021", "en-2023", "fr-2022"];
    assert_eq!(
        found(&server, &owner, &set, "harbour crane", Value::Null).await,
        all
    );
    assert_eq!(
        found(&server, &owner, &set, "harbour crane", json!([])).await,
        all
    );
    let cases = [
        (
            json!([{"key": "lang", "eq": "en"}]),
            vec!["en-2021", "en-2023"],
        ),
        (json!([{"key": "public", "eq": true}]), vec!["en-2021"]),
        // Numbers compare as numbers, not text.
        (json!([{"key": "year", "eq": 2021.0}]), vec!["en-2021"]),
        (
            json!([{"key": "year", "in": [2021, 2022.5]}]),
            vec!["en-2021", "fr-2022"],
        ),
        (
            json!([{"key": "year", "range": {"gte": 2022}}]),
            vec!["en-2023", "fr-2022"],
        ),
        (
            json!([{"key": "year", "range": {"gt": 2021, "lt": 2023}}]),
            vec!["fr-2022"],
        ),
        // Dates compare as points in time: 2023-06-30T23:30-02:00 is July 1st in UTC.
        (
            json!([{"key": "published", "range": {"gte": "2023-07-01"}}]),
            vec!["en-2023"],
        ),
        (
            json!([{"key": "published", "range": {"lt": "2023-01-01T00:00:00Z"}}]),
            vec!["en-2021", "fr-2022"],
        ),
        // Every condition holds; a document without the key meets none.
        (
            json!([{"key": "lang", "eq": "en"}, {"key": "year", "range": {"lte": 2021}}]),
            vec!["en-2021"],
        ),
        (json!([{"key": "colour", "eq": "red"}]), vec![]),
        // A string is not a number: no range over "en".
        (json!([{"key": "lang", "range": {"gt": 0}}]), vec![]),
    ];
    for (filter, expected) in cases {
        assert_eq!(
            found(&server, &owner, &set, "harbour crane", filter.clone()).await,
            expected,
            "{filter}"
        );
    }

    // Bad filters are refused with the field named; bad metadata writes nothing.
    for filter in [
        json!([{"key": "lang"}]),
        json!([{"key": "lang", "eq": "en", "in": ["en"]}]),
        json!([{"key": "year", "range": {}}]),
        json!([{"key": "year", "range": {"gt": 1, "lt": "2024-01-01"}}]),
        json!([{"key": "year", "in": []}]),
        json!([{"key": "bad key", "eq": 1}]),
    ] {
        let answer = server
            .graphql_as(
                owner.token(),
                SEARCH,
                json!({ "d": set, "q": "harbour", "f": filter }),
            )
            .await;
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{filter}");
        assert_eq!(answer["errors"][0]["extensions"]["field"], "filter");
    }
    let before = server
        .scalar("SELECT count(*) FROM documents WHERE deleted_at IS NULL")
        .await;
    for metadata in [
        json!({"nested": {"a": 1}}),
        json!({"day": "2024-02-30"}),
        json!({"list": [1, 2]}),
        json!("text"),
    ] {
        let answer = server
            .graphql_as(
                owner.token(),
                CREATE,
                json!({ "i": { "datasetId": set, "name": "bad", "text": "harbour", "metadata": metadata } }),
            )
            .await;
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{metadata}");
        assert_eq!(answer["errors"][0]["extensions"]["field"], "metadata");
    }
    let after = server
        .scalar("SELECT count(*) FROM documents WHERE deleted_at IS NULL")
        .await;
    assert_eq!(before, after);

    // New metadata counts at once, without indexing again.
    let bare = &ids["bare"];
    let updated = server
        .graphql_as(
            owner.token(),
            "mutation($i: UpdateDocumentInput!) { updateDocument(input: $i) { metadata indexingStatus } }",
            json!({ "i": { "id": bare, "metadata": {"lang": "en"} } }),
        )
        .await;
    assert_eq!(
        data(updated)["updateDocument"],
        json!({ "metadata": {"lang": "en"}, "indexingStatus": "COMPLETED" })
    );
    assert_eq!(
        found(
            &server,
            &owner,
            &set,
            "harbour crane",
            json!([{"key": "lang", "eq": "en"}])
        )
        .await,
        ["bare", "en-2021", "en-2023"]
    );
}

#[tokio::test]
async fn a_retrieval_node_filters_with_values_from_its_inputs() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Org").await;
    let set = dataset(&server, &owner, &tenant, json!({})).await;
    for (name, year) in [("old", 2019), ("new", 2024)] {
        create_document(
            &server,
            &owner,
            &set,
            name,
            &format!("Tide tables of {name} harbours."),
            json!({ "year": year, "lang": "en" }),
        )
        .await;
    }
    let flow = retrieval_flow(
        &server,
        &owner,
        &tenant,
        json!({ "inputs": [{ "name": "since", "type": "string", "required": true }] }),
        json!({ "datasetIds": [set], "query": "tide tables", "topK": 5,
                "metadataFilter": [{ "key": "year", "range": { "gte": "{{start.since}}" } },
                                   { "key": "lang", "in": ["en", "de"] }] }),
    )
    .await;
    let context = run_to_end(&server, &owner, &flow, json!({ "since": "2020" })).await;
    assert_eq!(
        context["outputs"]["context"],
        "Tide tables of new harbours."
    );
    let failed = run_to_end(&server, &owner, &flow, json!({ "since": "lately" })).await;
    assert_eq!(failed["status"], "FAILED");
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("metadataFilter")),
        "{failed}"
    );

    // A filter that cannot hold whatever the inputs is refused when the graph is saved.
    let bad = server
        .graphql_as(
            owner.token(),
            "mutation($i: CreateWorkflowInput!) { createWorkflow(input: $i) { id } }",
            json!({ "i": { "workspaceId": tenant.workspace_id, "name": "Bad", "graph": {
                "nodes": [
                    { "key": "start", "type": "START", "config": {} },
                    { "key": "kb", "type": "KNOWLEDGE_RETRIEVAL", "config": {
                        "datasetIds": [set], "query": "x",
                        "metadataFilter": [{ "key": "year", "range": { "after": 1 } }] } }
                ],
                "connections": [{ "source": "start", "target": "kb" }] } } }),
        )
        .await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT");
    assert!(bad.to_string().contains("metadataFilter"), "{bad}");
}

/// A workflow START → KNOWLEDGE_RETRIEVAL `kb` → END giving `context` (`kb.context`).
pub(crate) async fn retrieval_flow(
    server: &TestServer,
    owner: &Account,
    tenant: &Tenant,
    start: Value,
    kb: Value,
) -> String {
    let graph = json!({
        "nodes": [
            { "key": "start", "type": "START", "config": start },
            { "key": "kb", "type": "KNOWLEDGE_RETRIEVAL", "config": kb },
            { "key": "end", "type": "END", "config": { "outputs": { "context": "{{kb.context}}" } } }
        ],
        "connections": [
            { "source": "start", "target": "kb" },
            { "source": "kb", "target": "end" }
        ]
    });
    workflow(server, owner, tenant, graph).await
}

/// Runs `flow` with `inputs` and waits for its end: {status, error, outputs}.
pub(crate) async fn run_to_end(
    server: &TestServer,
    owner: &Account,
    flow: &str,
    inputs: Value,
) -> Value {
    let started = server
        .graphql_as(
            owner.token(),
            "mutation($i: RunWorkflowInput!) { runWorkflow(input: $i) { id } }",
            json!({ "i": { "workflowId": flow, "inputs": inputs } }),
        )
        .await;
    let id = data(started)["runWorkflow"]["id"].clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let read = data(
            server
                .graphql_as(
                    owner.token(),
                    "query($id: UUID!) { execution(id: $id) { status error outputs } }",
                    json!({ "id": id }),
                )
                .await,
        )["execution"]
            .clone();
        if matches!(read["status"].as_str(), Some("SUCCEEDED" | "FAILED")) {
            return read;
        }
        assert!(std::time::Instant::now() < deadline, "the run ends: {read}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn a_reranker_reorders_the_best_candidates_for_a_dataset_or_a_node() {
    let models = ModelServer::start().await;
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Org").await;
    let ranker = provider(&server, &owner, &tenant, &models.base_url, KEY, None).await;
    let set = dataset(&server, &owner, &tenant, json!({})).await;
    // BM25 prefers the document saying "harbour" most; the reranker the shortest.
    for (name, text) in [
        (
            "many",
            "Harbour harbour harbour: the harbour of the harbour town.",
        ),
        (
            "some",
            "The harbour at dawn, and the harbour at dusk, seen from the old lighthouse.",
        ),
        ("one", "A harbour."),
    ] {
        create_document(&server, &owner, &set, name, text, json!({})).await;
    }
    let ordered = |answer: Value| -> Vec<Value> {
        data(answer)["searchDataset"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let plain = ordered(
        server
            .graphql_as(
                owner.token(),
                SEARCH,
                json!({ "d": set, "q": "harbour", "k": 3 }),
            )
            .await,
    );
    assert_eq!(plain[0]["documentName"], "many");
    assert!(plain.iter().all(|h| h["rerankScore"].is_null()));

    // A reranker needs its model; a provider of another workspace is refused.
    let update = "mutation($i: UpdateDatasetInput!) { updateDataset(input: $i) { rerankProviderId rerankModel } }";
    let missing = server
        .graphql_as(
            owner.token(),
            update,
            json!({ "i": { "id": set, "rerankProviderId": ranker } }),
        )
        .await;
    assert_eq!(missing["errors"][0]["extensions"]["field"], "rerankModel");
    let stranger = register(&server, "stranger@example.com").await;
    let elsewhere = create_organization(&server, &stranger, "Else").await;
    let foreign = provider(&server, &stranger, &elsewhere, &models.base_url, KEY, None).await;
    let refused = server
        .graphql_as(
            owner.token(),
            update,
            json!({ "i": { "id": set, "rerankProviderId": foreign, "rerankModel": "by-length" } }),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["field"],
        "rerankProviderId"
    );
    let set_up = server
        .graphql_as(
            owner.token(),
            update,
            json!({ "i": { "id": set, "rerankProviderId": ranker, "rerankModel": "by-length" } }),
        )
        .await;
    assert_eq!(
        data(set_up)["updateDataset"],
        json!({ "rerankProviderId": ranker, "rerankModel": "by-length" })
    );

    let reranked = ordered(
        server
            .graphql_as(
                owner.token(),
                SEARCH,
                json!({ "d": set, "q": "harbour", "k": 2 }),
            )
            .await,
    );
    let names: Vec<&str> = reranked
        .iter()
        .map(|h| h["documentName"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["one", "many"]);
    assert_eq!(reranked[0]["rerankScore"], reranked[0]["score"]);
    assert_eq!(reranked[0]["score"], 1.0 / 3.0);
    // The reranker was asked with the query and every candidate's text.
    let asked = models
        .seen
        .last_body
        .lock()
        .map(|b| b.clone())
        .unwrap_or_default()
        .unwrap_or_default();
    assert_eq!(asked["query"], "harbour");
    assert_eq!(asked["model"], "by-length");
    assert_eq!(asked["documents"].as_array().map(Vec::len), Some(3));

    // A provider that refuses fails the search with its code; nothing is half-returned.
    let busy = server
        .graphql_as(
            owner.token(),
            update,
            json!({ "i": { "id": set, "rerankModel": "busy" } }),
        )
        .await;
    assert_eq!(data(busy)["updateDataset"]["rerankModel"], "busy");
    let failed = server
        .graphql_as(owner.token(), SEARCH, json!({ "d": set, "q": "harbour" }))
        .await;
    assert!(failed["errors"].is_array(), "{failed}");
    assert!(failed["data"].is_null() || failed["data"]["searchDataset"].is_null());

    // Null turns it off.
    let off = server
        .graphql_as(
            owner.token(),
            update,
            json!({ "i": { "id": set, "rerankProviderId": null } }),
        )
        .await;
    assert_eq!(
        data(off)["updateDataset"],
        json!({ "rerankProviderId": null, "rerankModel": null })
    );
    let again = ordered(
        server
            .graphql_as(
                owner.token(),
                SEARCH,
                json!({ "d": set, "q": "harbour", "k": 3 }),
            )
            .await,
    );
    assert_eq!(again[0]["documentName"], "many");

    // A node's reranker, with a threshold on its scores (1/3, 1/10 and 1/15 here).
    let flow = retrieval_flow(
        &server,
        &owner,
        &tenant,
        json!({}),
        json!({ "datasetIds": [set], "query": "harbour", "topK": 3, "scoreThreshold": 0.09,
                "rerankProviderId": ranker, "rerankModel": "by-length" }),
    )
    .await;
    let ran = run_to_end(&server, &owner, &flow, json!({})).await;
    assert_eq!(ran["status"], "SUCCEEDED", "{ran}");
    assert_eq!(
        ran["outputs"]["context"],
        "A harbour.\n\nHarbour harbour harbour: the harbour of the harbour town."
    );
}
