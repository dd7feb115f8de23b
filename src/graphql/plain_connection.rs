//! Connections answered without a future per field, as `Plain` objects are (see
//! `graphql::plain`). async-graphql answers a connection as three levels of objects
//! (connection, edge, page info), every field a boxed future in a `FuturesUnordered`; on a
//! history page of 20 conversations × 20 messages that is over a thousand futures around the
//! rows. `Conn<T>` answers `__typename`, `pageInfo` and `edges { cursor node __typename }`
//! straight from the page in hand, resolves the nodes together (their loaders still batch),
//! and leaves every other field (`totalCount`, `nodes`) to async-graphql's own connection.
//! Anything unusual in the selection (fragments, directives, a key selected twice) goes to
//! async-graphql's connection whole, so the answer is always the one it would give.
//!
//! `Conn<T>` (`graphql::pagination`) is the same GraphQL type as async-graphql's `Connection`
//! it wraps: it registers that type and answers for it.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use async_graphql::connection::{Connection, CursorType};
use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Field, Selection, SelectionSet};
use async_graphql::registry::Registry;
use async_graphql::resolver_utils::resolve_container;
use async_graphql::{
    ContainerType, ContextSelectionSet, Name, OutputType, Positioned, ServerResult, Value,
};

use super::pagination::{Conn, Cursor, Totals};

type Pending<'a> = Pin<Box<dyn Future<Output = (Name, ServerResult<Value>)> + Send + 'a>>;

/// The fields of a selection when every one is a plain field: no fragment, no directive,
/// no response key twice.
fn plain_selection(set: &Positioned<SelectionSet>) -> Option<Vec<&Positioned<Field>>> {
    let mut fields: Vec<&Positioned<Field>> = Vec::with_capacity(set.node.items.len());
    for selection in &set.node.items {
        let Selection::Field(field) = &selection.node else {
            return None;
        };
        let key = &field.node.response_key().node;
        if !field.node.directives.is_empty()
            || fields.iter().any(|f| &f.node.response_key().node == key)
        {
            return None;
        }
        fields.push(field);
    }
    Some(fields)
}

/// Whether a field takes no arguments and selects nothing below it.
fn leaf(field: &Positioned<Field>) -> bool {
    field.node.arguments.is_empty() && field.node.selection_set.node.items.is_empty()
}

impl<T: OutputType> Conn<T> {
    /// `pageInfo`, when it selects only its own leaf fields.
    fn page_info(&self, field: &Positioned<Field>) -> Option<Value> {
        let fields = plain_selection(&field.node.selection_set)?;
        let cursor = |edge: Option<&async_graphql::connection::Edge<Cursor, T, _>>| {
            edge.map_or(Value::Null, |e| Value::String(e.cursor.encode_cursor()))
        };
        let mut values = IndexMap::with_capacity(fields.len());
        for f in fields {
            if !leaf(f) {
                return None;
            }
            let value = match f.node.name.node.as_str() {
                "__typename" => Value::String("PageInfo".to_string()),
                "hasPreviousPage" => Value::Boolean(self.0.has_previous_page),
                "hasNextPage" => Value::Boolean(self.0.has_next_page),
                "startCursor" => cursor(self.0.edges.first()),
                "endCursor" => cursor(self.0.edges.last()),
                _ => return None,
            };
            values.insert(f.node.response_key().node.clone(), value);
        }
        Some(Value::Object(values))
    }

    /// `edges`, when each edge selects only `cursor`, `node` and `__typename`: every node
    /// resolved together, as async-graphql resolves a list.
    fn edges<'a>(
        &'a self,
        ctx: &'a ContextSelectionSet<'a>,
        field: &'a Positioned<Field>,
    ) -> Option<Pending<'a>> {
        let fields = plain_selection(&field.node.selection_set)?;
        let known = fields.iter().all(|f| match f.node.name.node.as_str() {
            "cursor" | "__typename" => leaf(f),
            "node" => f.node.arguments.is_empty(),
            _ => false,
        });
        if !field.node.arguments.is_empty() || !known {
            return None;
        }
        let key = field.node.response_key().node.clone();
        Some(Box::pin(async move {
            let ctx_field = ctx.with_field(field);
            let ctx_edges = ctx_field.with_selection_set(&field.node.selection_set);
            let ctx_edges = &ctx_edges;
            let fields = &fields;
            let edge_type = Value::String(format!("{}Edge", T::type_name()));
            let edge_type = &edge_type;
            let edges = self.0.edges.iter().enumerate().map(|(i, edge)| {
                Box::pin(async move {
                    let ctx_edge = ctx_edges.with_index(i);
                    let mut values = IndexMap::with_capacity(fields.len());
                    for f in fields {
                        let value = match f.node.name.node.as_str() {
                            "cursor" => Value::String(edge.cursor.encode_cursor()),
                            "node" => {
                                let ctx_node = ctx_edge.with_field(f);
                                let ctx_set = ctx_node.with_selection_set(&f.node.selection_set);
                                let node: Pin<Box<dyn Future<Output = _> + Send + '_>> =
                                    Box::pin(OutputType::resolve(&edge.node, &ctx_set, f));
                                node.await.map_err(|e| ctx_node.set_error_path(e))?
                            }
                            _ => edge_type.clone(),
                        };
                        values.insert(f.node.response_key().node.clone(), value);
                    }
                    Ok::<_, async_graphql::ServerError>(Value::Object(values))
                })
            });
            let result = futures_util::future::try_join_all(edges)
                .await
                .map(Value::List);
            (key, result)
        }))
    }

    /// A field as async-graphql's connection answers it.
    fn by_async_graphql<'a>(
        &'a self,
        ctx: &'a ContextSelectionSet<'a>,
        field: &'a Positioned<Field>,
    ) -> Pending<'a> {
        let key = field.node.response_key().node.clone();
        Box::pin(async move {
            let ctx_field = ctx.with_field(field);
            let result = self
                .0
                .resolve_field(&ctx_field)
                .await
                .map(Option::unwrap_or_default);
            (key, result)
        })
    }
}

impl<T: OutputType> OutputType for Conn<T> {
    fn type_name() -> Cow<'static, str> {
        Connection::<Cursor, T, Totals>::type_name()
    }

    fn qualified_type_name() -> String {
        Connection::<Cursor, T, Totals>::qualified_type_name()
    }

    fn introspection_type_name(&self) -> Cow<'static, str> {
        self.0.introspection_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        Connection::<Cursor, T, Totals>::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        _field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        let Some(fields) = plain_selection(ctx.item) else {
            return resolve_container(ctx, &self.0).await;
        };
        let mut values: IndexMap<Name, Value> = IndexMap::with_capacity(fields.len());
        let mut pending: Vec<Pending<'_>> = Vec::new();
        for field in fields {
            let key = field.node.response_key().node.clone();
            let name = field.node.name.node.as_str();
            if name == "__typename" {
                values.insert(
                    key,
                    Value::String(self.introspection_type_name().into_owned()),
                );
                continue;
            }
            if name == "pageInfo"
                && field.node.arguments.is_empty()
                && let Some(value) = self.page_info(field)
            {
                values.insert(key, value);
                continue;
            }
            // Its place in the answer is kept; filled (or taken out) below.
            values.insert(key, Value::Null);
            let edges = if name == "edges" {
                self.edges(ctx, field)
            } else {
                None
            };
            pending.push(edges.unwrap_or_else(|| self.by_async_graphql(ctx, field)));
        }
        for (key, result) in futures_util::future::join_all(pending).await {
            match result {
                Ok(value) => {
                    values.insert(key, value);
                }
                Err(error) => {
                    ctx.add_error(error);
                    values.shift_remove(&key);
                }
            }
        }
        Ok(if values.is_empty() {
            Value::Null
        } else {
            Value::Object(values)
        })
    }
}
