//! Statements kept prepared: an update, a single-row insert and fixed SQL text marked
//! `.prepared()` are parsed once on a connection and reused by every later call; Diesel's
//! own choice (an update is never kept) prepares the statement again each time.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use weft::db::schema::organizations;
use weft::db::statement::KeepPrepared;

use crate::harness::TestDb;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Statements prepared on this connection whose text starts with `start`.
async fn prepared_like(conn: &mut AsyncPgConnection, start: &str) -> i64 {
    diesel::sql_query("SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE $1")
        .bind::<Text, _>(format!("{start}%"))
        .get_result::<Count>(conn)
        .await
        .expect("pg_prepared_statements")
        .n
}

#[tokio::test]
async fn statements_marked_prepared_are_parsed_once_per_connection() {
    let db = TestDb::new();
    let mut conn = AsyncPgConnection::establish(&db.url)
        .await
        .expect("a connection");
    for n in 0..3 {
        diesel::insert_into(organizations::table)
            .values(organizations::name.eq(format!("Org {n}")))
            .prepared()
            .execute(&mut conn)
            .await
            .expect("an insert");
        diesel::update(organizations::table.filter(organizations::name.eq(format!("Org {n}"))))
            .set(organizations::description.eq("first"))
            .prepared()
            .execute(&mut conn)
            .await
            .expect("an update");
        diesel::sql_query(
            "UPDATE organizations SET description = description || $1 WHERE name = $2",
        )
        .bind::<Text, _>("-kept")
        .bind::<Text, _>(format!("Org {n}"))
        .prepared()
        .execute(&mut conn)
        .await
        .expect("fixed text");
    }
    assert_eq!(
        prepared_like(&mut conn, "INSERT INTO \"organizations\"").await,
        1
    );
    assert_eq!(
        prepared_like(&mut conn, "UPDATE \"organizations\" SET \"description\"").await,
        1
    );
    assert_eq!(
        prepared_like(&mut conn, "UPDATE organizations SET description").await,
        1
    );
    let kept: i64 = organizations::table
        .filter(organizations::description.eq("first-kept"))
        .count()
        .get_result(&mut conn)
        .await
        .expect("a count");
    assert_eq!(kept, 3, "every call ran with its own values");

    // Left to Diesel, the same kind of update is prepared anew by each call and not kept.
    for n in 0..3 {
        diesel::update(organizations::table.filter(organizations::name.eq(format!("Org {n}"))))
            .set(organizations::name.eq(format!("Org {n} moved")))
            .execute(&mut conn)
            .await
            .expect("an update");
    }
    assert_eq!(
        prepared_like(&mut conn, "UPDATE \"organizations\" SET \"name\"").await,
        0
    );
}
