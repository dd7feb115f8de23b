//! Chunk modes end to end: PARENT_CHILD documents (small children searched, their parent
//! section given, one hit per parent; in searchDataset, a retrieval node and its run's
//! context) and QA documents (CSV text or a spreadsheet; the question searched, the pair
//! given); bad rows and rules refused with nothing written.

use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::harness::accounts::{Account, create_organization, data, error_code, register};
use crate::knowledge::{dataset, document_from_file_with, wait_indexed};
use crate::parsing::{XLSX, xlsx};
use crate::retrieval_options::{retrieval_flow, run_to_end};

const CREATE: &str =
    "mutation($i: CreateDocumentInput!) { createDocument(input: $i) { id chunkMode } }";

const SEARCH: &str =
    "query($d: UUID!, $q: String!, $k: Int) { searchDataset(datasetId: $d, query: $q, topK: $k) {
    content segment { id content answer parentSegmentId parent { content position } } } }";

async fn create(server: &TestServer, owner: &Account, input: Value) -> Value {
    server
        .graphql_as(owner.token(), CREATE, json!({ "i": input }))
        .await
}

async fn search(server: &TestServer, owner: &Account, set: &str, query: &str) -> Vec<Value> {
    let found = server
        .graphql_as(
            owner.token(),
            SEARCH,
            json!({ "d": set, "q": query, "k": 5 }),
        )
        .await;
    data(found)["searchDataset"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn section(name: &str, topic: &str) -> String {
    let body: Vec<String> = (0..12)
        .map(|i| format!("Note {i} of the {name} section is about {topic} in the harbour."))
        .collect();
    format!("# {name}\n\n{}", body.join(" "))
}

#[tokio::test]
async fn parent_child_documents_search_children_and_give_their_parent() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Org").await;
    let set = dataset(&server, &owner, &tenant, json!({})).await;
    let text = [
        section("Moorings", "ropes"),
        section("Fuel", "diesel"),
        "# Pilots\n\nA pilot boards every tanker before the breakwater.".to_string(),
    ]
    .join("\n\n");
    let created = create(
        &server,
        &owner,
        json!({ "datasetId": set, "name": "guide", "text": text, "chunkMode": "PARENT_CHILD",
                "maxTokens": 50, "overlapTokens": 0, "parentMaxTokens": 600 }),
    )
    .await;
    let created = data(created)["createDocument"].clone();
    assert_eq!(created["chunkMode"], "PARENT_CHILD");
    let id = created["id"].as_str().unwrap().to_string();
    wait_indexed(&server, &id).await;
    let parents = server
        .scalar(&format!(
            "SELECT count(*) FROM parent_segments WHERE document_id = '{id}'"
        ))
        .await;
    assert_eq!(parents, 3);
    let children = server
        .scalar(&format!(
            "SELECT count(*) FROM document_segments WHERE document_id = '{id}' AND parent_segment_id IS NOT NULL"
        ))
        .await;
    assert!(children > 6, "{children} children");

    // Many children of "Fuel" match: one hit, and it gives the whole section.
    let hits = search(&server, &owner, &set, "diesel").await;
    assert_eq!(hits.len(), 1, "{hits:?}");
    let fuel = section("Fuel", "diesel");
    assert_eq!(hits[0]["content"], fuel.as_str());
    assert_eq!(hits[0]["segment"]["parent"]["content"], fuel.as_str());
    assert_eq!(hits[0]["segment"]["parent"]["position"], 1);
    let child = hits[0]["segment"]["content"].as_str().unwrap();
    assert!(child.len() < fuel.len() && fuel.contains(child.trim_start_matches("# Fuel\n\n")));

    // Two sections match: two hits, best first, each its own parent.
    let hits = search(&server, &owner, &set, "pilot tanker ropes").await;
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert_eq!(
        hits[0]["content"],
        "# Pilots\n\nA pilot boards every tanker before the breakwater."
    );
    assert_eq!(hits[1]["content"], section("Moorings", "ropes").as_str());

    // A retrieval node gives the model the parent too.
    let flow = retrieval_flow(
        &server,
        &owner,
        &tenant,
        json!({}),
        json!({ "datasetIds": [set], "query": "diesel", "topK": 3 }),
    )
    .await;
    let run = run_to_end(&server, &owner, &flow, json!({})).await;
    assert_eq!(run["outputs"]["context"], fuel.as_str(), "{run}");

    // A smaller parent size re-indexes: the long sections become several parents, and a
    // search gives the parts that match.
    let changed = server
        .graphql_as(
            owner.token(),
            "mutation($i: UpdateDocumentInput!) { updateDocument(input: $i) { indexingStatus } }",
            json!({ "i": { "id": id, "parentMaxTokens": 100 } }),
        )
        .await;
    assert_eq!(data(changed)["updateDocument"]["indexingStatus"], "WAITING");
    wait_indexed(&server, &id).await;
    let parents = server
        .scalar(&format!(
            "SELECT count(*) FROM parent_segments WHERE document_id = '{id}'"
        ))
        .await;
    assert!(parents > 3, "{parents} parents");
    let hits = search(&server, &owner, &set, "diesel").await;
    assert!(hits.len() > 1, "{hits:?}");
    for hit in &hits {
        let content = hit["content"].as_str().unwrap();
        assert!(
            content.len() < fuel.len() && content.contains("diesel"),
            "{content}"
        );
        assert_eq!(hit["segment"]["parent"]["content"], content);
    }
}

#[tokio::test]
async fn qa_documents_search_questions_and_give_the_pairs() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Org").await;
    let set = dataset(&server, &owner, &tenant, json!({})).await;
    let csv = "question,answer\n\"When does the lock open?\",\"At six, every morning.\"\nWho pays the berth fee?,\"The skipper, at the office.\"\n";
    let created = create(
        &server,
        &owner,
        json!({ "datasetId": set, "name": "faq", "text": csv, "chunkMode": "QA" }),
    )
    .await;
    let id = data(created)["createDocument"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_indexed(&server, &id).await;
    let hits = search(&server, &owner, &set, "when does the lock open").await;
    assert_eq!(
        hits[0]["content"],
        "Question: When does the lock open?\nAnswer: At six, every morning."
    );
    assert_eq!(hits[0]["segment"]["content"], "When does the lock open?");
    assert_eq!(hits[0]["segment"]["answer"], "At six, every morning.");
    assert_eq!(hits[0]["segment"]["parentSegmentId"], Value::Null);
    // The question is what is searched: words only in an answer find nothing.
    assert!(
        search(&server, &owner, &set, "office morning")
            .await
            .is_empty()
    );

    // A builder corrects an answer; a GENERAL segment has none to correct.
    let segment = hits[0]["segment"]["id"].clone();
    let edited = server
        .graphql_as(
            owner.token(),
            crate::knowledge::UPDATE_SEGMENT,
            json!({ "i": { "id": segment, "answer": "At seven, from May." } }),
        )
        .await;
    data(edited);
    let hits = search(&server, &owner, &set, "when does the lock open").await;
    assert_eq!(
        hits[0]["content"],
        "Question: When does the lock open?\nAnswer: At seven, from May."
    );
    let plain = create(
        &server,
        &owner,
        json!({ "datasetId": set, "name": "plain", "text": "Lighthouse keepers log the weather." }),
    )
    .await;
    let plain = data(plain)["createDocument"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_indexed(&server, &plain).await;
    let general = search(&server, &owner, &set, "lighthouse keepers").await;
    let refused = server
        .graphql_as(
            owner.token(),
            crate::knowledge::UPDATE_SEGMENT,
            json!({ "i": { "id": general[0]["segment"]["id"], "answer": "x" } }),
        )
        .await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT");
    assert_eq!(refused["errors"][0]["extensions"]["field"], "answer");

    // From a spreadsheet, its heading row skipped.
    let book = xlsx(
        "FAQ",
        &[
            &["Question", "Answer"],
            &["Where is the fuel dock?", "Past the second pontoon."],
        ],
    );
    let from_book = document_from_file_with(
        &server,
        &owner,
        &tenant,
        &set,
        ("faq.xlsx", XLSX, book),
        json!({ "chunkMode": "QA" }),
    )
    .await;
    wait_indexed(&server, &from_book).await;
    let hits = search(&server, &owner, &set, "fuel dock").await;
    assert_eq!(
        hits[0]["content"],
        "Question: Where is the fuel dock?\nAnswer: Past the second pontoon."
    );

    // Refused, with nothing written: a row without an answer, split settings, a file
    // that is not a table, parentMaxTokens on a GENERAL document, children larger than
    // their parents.
    let before = server.scalar("SELECT count(*) FROM documents").await;
    for (input, field, says) in [
        (
            json!({ "datasetId": set, "name": "bad", "text": "q,a\nOnly a question?\n", "chunkMode": "QA" }),
            "text",
            "row 2",
        ),
        (
            json!({ "datasetId": set, "name": "bad", "text": "a?,b", "chunkMode": "QA", "maxTokens": 100 }),
            "maxTokens",
            "QA",
        ),
        (
            json!({ "datasetId": set, "name": "bad", "text": "words", "parentMaxTokens": 800 }),
            "parentMaxTokens",
            "PARENT_CHILD",
        ),
        (
            json!({ "datasetId": set, "name": "bad", "text": "words", "chunkMode": "PARENT_CHILD",
                    "maxTokens": 900, "parentMaxTokens": 800 }),
            "maxTokens",
            "parentMaxTokens",
        ),
    ] {
        let refused = create(&server, &owner, input).await;
        assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{refused}");
        let message = refused["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{message}");
        assert_eq!(
            refused["errors"][0]["extensions"]["field"], field,
            "{refused}"
        );
    }
    let (status, uploaded) = crate::files::upload(
        &server,
        owner.token(),
        tenant.workspace_id,
        "notes.md",
        "text/markdown",
        b"# Notes".to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    let file = data(uploaded)["uploadFile"]["id"].clone();
    let refused = create(
        &server,
        &owner,
        json!({ "datasetId": set, "name": "bad", "fileId": file, "chunkMode": "QA" }),
    )
    .await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT");
    assert_eq!(refused["errors"][0]["extensions"]["field"], "fileId");
    assert_eq!(
        server.scalar("SELECT count(*) FROM documents").await,
        before
    );
}
