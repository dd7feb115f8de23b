//! What resolvers read from the request: the app, the caller, the client, the loaders.

use std::sync::Arc;

use async_graphql::Context;
use async_graphql::dataloader::DataLoader;

use super::loaders::DbLoader;
use crate::app::App;
use crate::auth::{Actor, ClientInfo, Credentials};
use crate::db::DbConn;
use crate::error::{AppError, AppResult};

/// Accessors for the request data the HTTP layer puts on every GraphQL request.
pub trait ContextExt {
    fn app(&self) -> AppResult<&Arc<App>>;
    /// The authenticated caller, or UNAUTHENTICATED.
    fn actor(&self) -> AppResult<Actor>;
    fn client(&self) -> ClientInfo;
    fn loader(&self) -> AppResult<&Arc<DataLoader<DbLoader>>>;
}

impl ContextExt for Context<'_> {
    fn app(&self) -> AppResult<&Arc<App>> {
        self.data::<Arc<App>>()
            .map_err(|_| AppError::internal("the schema was executed without the app"))
    }

    fn actor(&self) -> AppResult<Actor> {
        self.data_opt::<Credentials>()
            .copied()
            .unwrap_or(Credentials::Anonymous)
            .actor()
    }

    fn client(&self) -> ClientInfo {
        self.data_opt::<ClientInfo>().cloned().unwrap_or_default()
    }

    fn loader(&self) -> AppResult<&Arc<DataLoader<DbLoader>>> {
        self.data::<Arc<DataLoader<DbLoader>>>()
            .map_err(|_| AppError::internal("the request carries no loader"))
    }
}

/// A pooled connection.
pub async fn conn(app: &App) -> AppResult<DbConn> {
    Ok(app.pool.get().await?)
}
