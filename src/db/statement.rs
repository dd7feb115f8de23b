//! SQL text built at run time that PostgreSQL still plans once per connection.
//!
//! Diesel's `sql_query` is never kept as a prepared statement, so a list read through it is
//! parsed and planned on every request. A [`Statement`] is sent the same way but marked safe
//! to cache: Diesel's statement cache keys it by its text and bind types, so each distinct
//! shape (a handful per list) is prepared once on each pooled connection and reused.
//!
//! Only text assembled from fixed fragments belongs here — values always travel as binds, so
//! the number of distinct texts stays bounded.

use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, Integer, Text, Timestamptz, Untyped, Uuid as SqlUuid};
use uuid::Uuid;

/// A value bound to a `$n` placeholder.
#[derive(Debug, Clone)]
pub enum Bind {
    Text(String),
    Time(DateTime<Utc>),
    Int(i32),
    Id(Uuid),
    Ids(Vec<Uuid>),
    Texts(Vec<String>),
}

/// SQL text with its binds, in placeholder order.
#[derive(Debug, Clone)]
pub struct Statement {
    sql: String,
    binds: Vec<Bind>,
}

impl Statement {
    pub fn new(sql: String) -> Self {
        Statement {
            sql,
            binds: Vec::new(),
        }
    }

    /// Adds the value of the next placeholder.
    pub fn bind(mut self, bind: Bind) -> Self {
        self.binds.push(bind);
        self
    }

    /// Adds the values of the next placeholders.
    pub fn bind_all(mut self, binds: impl IntoIterator<Item = Bind>) -> Self {
        self.binds.extend(binds);
        self
    }
}

impl QueryFragment<Pg> for Statement {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(&self.sql);
        for bind in &self.binds {
            match bind {
                Bind::Text(v) => out.push_bind_param_value_only::<Text, _>(v)?,
                Bind::Time(v) => out.push_bind_param_value_only::<Timestamptz, _>(v)?,
                Bind::Int(v) => out.push_bind_param_value_only::<Integer, _>(v)?,
                Bind::Id(v) => out.push_bind_param_value_only::<SqlUuid, _>(v)?,
                Bind::Ids(v) => out.push_bind_param_value_only::<Array<SqlUuid>, _>(v)?,
                Bind::Texts(v) => out.push_bind_param_value_only::<Array<Text>, _>(v)?,
            }
        }
        Ok(())
    }
}

impl QueryId for Statement {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Statement {
    type SqlType = Untyped;
}
