//! Keyword ranking by BM25: the answers BM25 gives on small hand-made corpora (a rare word
//! beats a repeated common one, a long segment does not win by its length, the scores are
//! the formula's), and the index statistics kept exact through edits, disabling,
//! archiving, re-indexing and deletes.

use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::harness::accounts::{Account, create_organization, data, register};
use crate::knowledge::{UPDATE_SEGMENT, dataset, document, search_top as ranked, wait_indexed};

/// A TEXT document of one segment (or more, past `max_tokens`), indexed.
async fn text_document(
    server: &TestServer,
    owner: &Account,
    set: &str,
    name: &str,
    text: &str,
    max_tokens: i64,
) -> String {
    let created = server
        .graphql_as(
            owner.token(),
            "mutation($i: CreateDocumentInput!) { createDocument(input: $i) { id } }",
            json!({ "i": { "datasetId": set, "name": name, "text": text, "maxTokens": max_tokens, "overlapTokens": 0 } }),
        )
        .await;
    let id = data(created)["createDocument"]["id"]
        .as_str()
        .expect("a document id")
        .to_string();
    wait_indexed(server, &id).await;
    id
}

fn names(found: &[Value]) -> Vec<&str> {
    found
        .iter()
        .map(|f| f["documentName"].as_str().unwrap_or(""))
        .collect()
}

#[tokio::test]
async fn a_rare_word_beats_a_repeated_common_one_and_length_does_not_win() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Org").await;
    let set = dataset(&server, &owner, &tenant, json!({})).await;

    // "use" is in every document, thirteen times in one; "filariasis" in one only.
    for i in 0..6 {
        text_document(
            &server,
            &owner,
            &set,
            &format!("use-{i}"),
            &format!("Patients use the clinic {i}. Nurses use charts and use gloves."),
            500,
        )
        .await;
    }
    let inhaler = "Inhaler use: ".to_string()
        + &"patients use inhalers daily and use them well. ".repeat(6)
        + "Correct use matters.";
    text_document(&server, &owner, &set, "inhaler", &inhaler, 500).await;
    text_document(
        &server,
        &owner,
        &set,
        "filariasis",
        "Mass drug administration against lymphatic filariasis in coastal villages reached most households; clinics use the same teams.",
        500,
    )
    .await;
    let found = ranked(
        &server,
        &owner,
        &set,
        "Ivermectin is used to treat lymphatic filariasis",
        10,
    )
    .await;
    assert_eq!(names(&found)[0], "filariasis", "{found:#?}");
    assert_eq!(found[0]["keywordScore"], 1.0);
    assert!(names(&found).contains(&"inhaler"), "any word matches");

    // Two segments holding "telescope" once: the short one first; a long one saying
    // "harbour crane" twice among many words does not beat a short one saying each once.
    let filler: String = (0..150).map(|i| format!("word{i} ")).collect();
    text_document(
        &server,
        &owner,
        &set,
        "short",
        "The telescope at the harbour crane.",
        500,
    )
    .await;
    text_document(
        &server,
        &owner,
        &set,
        "long",
        &format!("The telescope. {filler} harbour crane {filler} harbour crane."),
        1000,
    )
    .await;
    let found = ranked(&server, &owner, &set, "telescope", 10).await;
    assert_eq!(names(&found), ["short", "long"]);
    let found = ranked(&server, &owner, &set, "harbour crane", 10).await;
    assert_eq!(names(&found), ["short", "long"]);

    // The scores are BM25's (k1 = 1.2, b = 0.75), from the dataset's statistics.
    let n = server
        .scalar(&format!(
            "SELECT coalesce((SELECT sum(indexed_segments) FROM dataset_statistics WHERE dataset_id = '{set}'), 0)::bigint"
        ))
        .await as f64;
    assert_eq!(n, 10.0);
    let total = server
        .scalar(&format!(
            "SELECT coalesce((SELECT sum(indexed_length) FROM dataset_statistics WHERE dataset_id = '{set}'), 0)::bigint"
        ))
        .await as f64;
    let length = |name: &str| {
        let server = &server;
        let name = name.to_string();
        async move {
            server
                .scalar(&format!(
                    "SELECT sum(coalesce(array_length(u.positions, 1), 1)) \
                     FROM document_segments s JOIN documents d ON d.id = s.document_id, \
                          unnest(s.content_tsv) u WHERE d.name = '{name}'"
                ))
                .await as f64
        }
    };
    let (short, long) = (length("short").await, length("long").await);
    let avgdl = total / n;
    let bm25 = |tf: f64, len: f64, df: f64| {
        let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
        idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * len / avgdl))
    };
    let expected = (bm25(2.0, long, 2.0) * 2.0) / (bm25(1.0, short, 2.0) * 2.0);
    let got = found[1]["keywordScore"].as_f64().expect("a score");
    assert!((got - expected).abs() < 1e-9, "{got} against {expected}");
}

/// Postings by which the dataset's index differs from one computed afresh from its
/// retrievable segments (0 when exact; a term's document frequency is its number of
/// postings), and the differences of its segment count and total length.
async fn drift(server: &TestServer, set: &str) -> (i64, i64, i64) {
    let postings = server
        .scalar(&format!(
            "WITH fresh AS (SELECT s.id, u.lexeme, coalesce(array_length(u.positions, 1), 1) AS tf \
                            FROM document_segments s JOIN documents d ON d.id = s.document_id, \
                                 unnest(s.content_tsv) u \
                            WHERE s.dataset_id = '{set}' AND s.enabled AND NOT s.archived \
                              AND d.enabled AND NOT d.archived AND d.deleted_at IS NULL), \
                  kept AS (SELECT segment_id, term, frequency::int FROM segment_terms WHERE dataset_id = '{set}') \
             SELECT count(*) FROM ((SELECT * FROM fresh EXCEPT SELECT * FROM kept) \
                                   UNION ALL (SELECT * FROM kept EXCEPT SELECT * FROM fresh)) x"
        ))
        .await;
    let segments = server
        .scalar(&format!(
            "SELECT coalesce((SELECT sum(indexed_segments) FROM dataset_statistics \
                              WHERE dataset_id = '{set}'), 0)::bigint \
                    - (SELECT count(DISTINCT segment_id) FROM segment_terms WHERE dataset_id = '{set}')"
        ))
        .await;
    let length = server
        .scalar(&format!(
            "SELECT coalesce((SELECT sum(indexed_length) FROM dataset_statistics \
                              WHERE dataset_id = '{set}'), 0)::bigint \
                    - coalesce((SELECT sum(l) FROM (SELECT DISTINCT segment_id, segment_length AS l \
                                FROM segment_terms WHERE dataset_id = '{set}') x), 0)"
        ))
        .await;
    (postings, segments, length)
}

#[tokio::test]
async fn index_statistics_stay_exact_through_edits_disabling_reindexing_and_deletes() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Org").await;
    let set = dataset(&server, &owner, &tenant, json!({})).await;
    let other = dataset(&server, &owner, &tenant, json!({ "name": "Other" })).await;
    let exact = (0, 0, 0);
    let count = |sql: String| {
        let server = &server;
        async move { server.scalar(&sql).await }
    };

    let harbour = document(&server, &owner, &set, "harbour").await;
    let bakery = document(&server, &owner, &set, "bakery").await;
    let observatory = document(&server, &owner, &other, "observatory").await;
    for d in [&harbour, &bakery, &observatory] {
        wait_indexed(&server, d).await;
    }
    assert_eq!(drift(&server, &set).await, exact);
    assert_eq!(drift(&server, &other).await, exact);
    let segments = count(format!(
        "SELECT count(*) FROM document_segments WHERE dataset_id = '{set}'"
    ))
    .await;
    assert!(segments > 4, "{segments} segments");
    assert_eq!(
        count(format!(
            "SELECT coalesce((SELECT sum(indexed_segments) FROM dataset_statistics WHERE dataset_id = '{set}'), 0)::bigint"
        ))
        .await,
        segments
    );
    // Each dataset counts its own segments only.
    assert_eq!(
        count(format!(
            "SELECT count(*) FROM segment_terms WHERE dataset_id = '{set}' AND term = 'telescop'"
        ))
        .await,
        0
    );

    // A segment's new text, the segment disabled, archived, enabled again.
    let segment = first_segment(&server, &harbour).await;
    let update = async |input: Value| {
        let updated = server
            .graphql_as(owner.token(), UPDATE_SEGMENT, json!({ "i": input }))
            .await;
        data(updated);
    };
    update(json!({ "id": segment, "content": "Lighthouse keepers watch the lighthouse lamp." }))
        .await;
    assert_eq!(drift(&server, &set).await, exact);
    assert_eq!(
        count(format!(
            "SELECT count(*) FROM segment_terms WHERE dataset_id = '{set}' AND term = 'lighthous'"
        ))
        .await,
        1
    );
    update(json!({ "id": segment, "enabled": false })).await;
    assert_eq!(drift(&server, &set).await, exact);
    assert_eq!(
        count(format!(
            "SELECT count(*) FROM segment_terms WHERE dataset_id = '{set}' AND term = 'lighthous'"
        ))
        .await,
        0,
        "a term no retrievable segment holds is gone"
    );
    update(json!({ "id": segment, "enabled": true, "archived": true })).await;
    assert_eq!(drift(&server, &set).await, exact);
    update(json!({ "id": segment, "archived": false })).await;
    assert_eq!(drift(&server, &set).await, exact);
    assert!(
        ranked(&server, &owner, &set, "lighthouse", 5).await.len() == 1,
        "the edited segment is found again"
    );

    // A document disabled, archived, enabled again; re-indexed with new text; deleted.
    let update_document = async |input: Value| {
        let updated = server
            .graphql_as(
                owner.token(),
                "mutation($i: UpdateDocumentInput!) { updateDocument(input: $i) { id } }",
                json!({ "i": input }),
            )
            .await;
        data(updated);
    };
    update_document(json!({ "id": bakery, "enabled": false })).await;
    assert_eq!(drift(&server, &set).await, exact);
    assert!(
        ranked(&server, &owner, &set, "baker oven", 5)
            .await
            .is_empty()
    );
    update_document(json!({ "id": bakery, "enabled": true, "archived": true })).await;
    assert_eq!(drift(&server, &set).await, exact);
    update_document(json!({ "id": bakery, "archived": false })).await;
    assert_eq!(drift(&server, &set).await, exact);
    update_document(
        json!({ "id": harbour, "text": "Ferries cross the bay at dawn. Ferries carry cars." }),
    )
    .await;
    wait_indexed(&server, &harbour).await;
    assert_eq!(drift(&server, &set).await, exact);
    assert_eq!(
        count(format!(
            "SELECT count(*) FROM segment_terms WHERE dataset_id = '{set}' AND term = 'ferri'"
        ))
        .await,
        1
    );
    let deleted = server
        .graphql_as(
            owner.token(),
            "mutation($id: UUID!) { deleteDocument(id: $id) }",
            json!({ "id": bakery }),
        )
        .await;
    assert_eq!(data(deleted)["deleteDocument"], true);
    assert_eq!(drift(&server, &set).await, exact);
    assert!(
        ranked(&server, &owner, &set, "baker oven", 5)
            .await
            .is_empty()
    );
    // The other dataset was never touched.
    assert_eq!(drift(&server, &other).await, exact);
    assert!(
        count(format!(
            "SELECT coalesce((SELECT sum(indexed_segments) FROM dataset_statistics WHERE dataset_id = '{other}'), 0)::bigint"
        ))
        .await
            > 0
    );
}

async fn first_segment(server: &TestServer, document: &str) -> String {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: uuid::Uuid,
    }
    use diesel_async::RunQueryDsl;
    let mut conn = server.app.pool.get().await.expect("a connection");
    diesel::sql_query(format!(
        "SELECT id FROM document_segments WHERE document_id = '{document}' ORDER BY position LIMIT 1"
    ))
    .get_result::<Row>(&mut conn)
    .await
    .expect("a segment")
    .id
    .to_string()
}
