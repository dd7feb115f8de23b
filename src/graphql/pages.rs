//! One page of a parent's child list as a connection: the rows through the request's loader,
//! `totalCount` through the count loader (only when selected).

use std::hash::Hash;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, OutputType, Result};
use uuid::Uuid;

use super::context::ContextExt;
use super::lists::{ListFilter, ListName};
use super::loaders::{CountOf, DbLoader};
use super::pagination::{Conn, Cursor, Page, Totals, connection};
use crate::error::AppError;

/// The `totalCount` of a child list, counted through the loader when asked for.
pub fn count_totals(
    ctx: &Context<'_>,
    list: ListName,
    parent: Uuid,
    filter: ListFilter,
) -> Result<Totals> {
    let loader = Arc::clone(ctx.loader()?);
    Ok(Totals::new(move || {
        let loader = Arc::clone(&loader);
        let key = CountOf {
            list,
            parent,
            filter: filter.clone(),
        };
        async move {
            Ok(loader
                .load_one(key)
                .await
                .map_err(|e| AppError::internal(e.to_string()))?
                .unwrap_or(0))
        }
    }))
}

/// A page of `list` under `parent`: `key` names the loader key of the list's rows.
#[allow(clippy::too_many_arguments)]
pub async fn child_page<K, R, T>(
    ctx: &Context<'_>,
    list: ListName,
    parent: Uuid,
    page: Page,
    filter: ListFilter,
    key: impl FnOnce(Uuid, Page, ListFilter) -> K,
    cursor: impl Fn(&R) -> Cursor,
    node: impl Fn(R) -> T,
) -> Result<Conn<T>>
where
    DbLoader: Loader<K, Value = Vec<R>, Error = Arc<AppError>>,
    K: Send + Sync + Hash + Eq + Clone + 'static,
    R: Send + Sync + Clone + 'static,
    T: OutputType,
{
    let rows = ctx
        .loader()?
        .load_one(key(parent, page, filter.clone()))
        .await?
        .unwrap_or_default();
    let totals = count_totals(ctx, list, parent, filter)?;
    Ok(connection(&page, rows, cursor, node, totals))
}
