//! Statements PostgreSQL parses and plans once per connection rather than on every call.
//!
//! Diesel keeps a statement prepared only when its type alone fixes its text; `sql_query`,
//! every UPDATE, and an INSERT with optional columns are sent as new statements each time, so
//! PostgreSQL parses and plans them on every call (a run's writes spent more time being
//! planned than executed). Two ways to keep them:
//!
//! - a [`Statement`]: SQL text assembled at run time from fixed fragments, with its binds;
//! - [`Prepared`] (`.prepared()`): any Diesel statement whose text takes a bounded number of
//!   shapes — an update of the same columns, a single-row insert, `sql_query` with fixed
//!   text — never a multi-row insert, whose text grows with its rows.
//!
//! Both are marked safe to cache: Diesel's statement cache keys them by their text and bind
//! types, so each shape is prepared once on each pooled connection and reused. Values always
//! travel as binds, so the number of distinct texts stays bounded.

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

/// A Diesel statement kept prepared by its text (see the module's documentation for which
/// statements may be).
#[derive(Debug, Clone)]
pub struct Prepared<Q>(Q);

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Prepared<Q> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(out)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();
    // Keyed by its text: the same type may give a few texts (optional columns).
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}

/// `.prepared()` on a statement whose text takes a bounded number of shapes.
pub trait KeepPrepared: Sized {
    fn prepared(self) -> Prepared<Self> {
        Prepared(self)
    }
}

impl<Q: QueryFragment<Pg>> KeepPrepared for Q {}
