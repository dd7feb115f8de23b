//! One page of a parent's child list as a connection: the rows through the request's loader,
//! `totalCount` through the count loader (only when selected).

use std::sync::Arc;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, Lookahead, OutputType, Result, SelectionField};
use uuid::Uuid;

use super::context::ContextExt;
use super::lists::{ListFilter, ListName};
use super::loaders::{CountOf, DbLoader, ListRow, PageOf};
use super::pagination::{Conn, Page, Totals, connection};
use crate::error::AppError;

/// Whether every field a page (`look`) asks of its nodes (`edges { node }` and `nodes`,
/// through fragments) is one `allowed` accepts.
pub fn page_asks_only(look: &Lookahead<'_>, allowed: impl Fn(&SelectionField<'_>) -> bool) -> bool {
    let edges = look.field("edges").field("node").selection_fields();
    let nodes = look.field("nodes").selection_fields();
    edges
        .iter()
        .chain(&nodes)
        .all(|node| node.selection_set().all(|field| allowed(&field)))
}

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

/// A page of `list` under `parent`, as a connection of `node`s: the rows through the
/// request's loader (one statement for every parent asking for the same page), the
/// `totalCount` through the count loader when selected.
pub async fn child_page<R, T>(
    ctx: &Context<'_>,
    list: ListName,
    parent: Uuid,
    page: Page,
    filter: ListFilter,
    node: impl Fn(R) -> T,
) -> Result<Conn<T>>
where
    R: ListRow,
    DbLoader: Loader<PageOf<R>, Value = Arc<Vec<R>>, Error = Arc<AppError>>,
    T: OutputType,
{
    let rows = child_rows(ctx, list, parent, page, filter.clone()).await?;
    let totals = count_totals(ctx, list, parent, filter)?;
    Ok(connection(&page, rows, R::cursor, node, totals))
}

/// The rows of one page of `list` under `parent`.
pub async fn child_rows<R>(
    ctx: &Context<'_>,
    list: ListName,
    parent: Uuid,
    page: Page,
    filter: ListFilter,
) -> Result<Vec<R>>
where
    R: ListRow,
    DbLoader: Loader<PageOf<R>, Value = Arc<Vec<R>>, Error = Arc<AppError>>,
{
    let rows = ctx
        .loader()?
        .load_one(PageOf::new(list, parent, page, filter))
        .await?
        .unwrap_or_default();
    // The loader has let go of its copy by now, nearly always: the rows move out whole.
    Ok(Arc::try_unwrap(rows).unwrap_or_else(|shared| shared.as_ref().clone()))
}
