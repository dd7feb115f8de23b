//! The checked-in `schema.graphql` is the SDL the code produces.

use crate::harness::TestServer;

const REGENERATE: &str = "schema.graphql is out of date: regenerate it with \
                          `cargo run --quiet -- schema > schema.graphql` and review the diff";

fn checked_in() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql at the repository root")
}

#[test]
fn schema_graphql_matches_the_code() {
    assert!(weft::graphql::sdl() == checked_in(), "{REGENERATE}");
}

#[tokio::test]
async fn the_served_sdl_is_the_checked_in_one() {
    let server = TestServer::start().await;
    let response = server.get("/schema.graphql").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.text().await.unwrap() == checked_in(),
        "{REGENERATE}"
    );
}
