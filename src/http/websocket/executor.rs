//! How a WebSocket connection runs an operation: the operation limits, a check that the
//! socket's credential still stands, the schema, error codes on every response, and each
//! response serialized once for every subscriber that asked the same way
//! (`graphql::shared`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_graphql::{Data, Executor, Request as GraphQLRequest, Response as GraphQLResponse};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::sync::watch;

use super::protocol::Answer;
use crate::app::App;
use crate::graphql::shared::Sharing;
use crate::graphql::{WeftSchema, classify_response, operation_limits};
use crate::http::RequestId;
use crate::http::rights::{Ended, Held, still_held};
use crate::metrics::Deliveries;

/// What a connection's operations run with.
pub struct Runner {
    pub schema: WeftSchema,
    pub app: Arc<App>,
    pub request_id: RequestId,
    pub max_root_fields: usize,
    /// The credential `connection_init` presented, once accepted.
    pub held: Option<Held>,
    /// Told when a check finds the credential gone; the socket then closes with 4403.
    pub lost: Arc<watch::Sender<Option<Ended>>>,
}

impl Runner {
    /// The answers of one operation: one for a query or mutation, one per event for a
    /// subscription.
    pub fn answers(
        &self,
        mut request: GraphQLRequest,
        connection: Arc<Data>,
    ) -> BoxStream<'static, Answer> {
        let id = self.request_id;
        let deliveries = Deliveries::default();
        let sharing = Sharing::of(&request);
        request = request.data(deliveries.clone()).data(sharing.clone());
        let responses = match operation_limits::refused(&mut request, self.max_root_fields) {
            Some(refused) => futures_util::stream::once(async { refused }).boxed(),
            None => {
                let (schema, app, lost) =
                    (self.schema.clone(), self.app.clone(), self.lost.clone());
                let held = self.held;
                let checked = async move {
                    if let Some(held) = held
                        && let Err(ended) = still_held(&app, held).await
                    {
                        lost.send_replace(Some(ended));
                        return futures_util::stream::once(async move { unauthenticated(ended) })
                            .boxed();
                    }
                    Executor::execute_stream(&schema, request, Some(connection))
                };
                // Boxed: `once` frees it when done (inline, its size would stay with the
                // subscription for its life).
                futures_util::stream::once(Box::pin(checked))
                    .flatten()
                    .boxed()
            }
        };
        let metrics = self.app.metrics.clone();
        responses
            .map(move |mut response| {
                classify_response(&mut response, Some(id));
                let (payload, shared) = sharing.payload(&response);
                if shared {
                    metrics.answers_shared.fetch_add(1, Ordering::Relaxed);
                }
                Answer {
                    payload,
                    published_at_us: deliveries.next_published().unwrap_or(0),
                }
            })
            .boxed()
    }
}

/// The answer to an operation sent after the connection's credential stopped standing.
fn unauthenticated(ended: Ended) -> GraphQLResponse {
    let error = async_graphql::ServerError::new(ended.reason(), None);
    let mut response = GraphQLResponse::from_errors(vec![error]);
    response.errors[0].extensions = Some({
        let mut extensions = async_graphql::ErrorExtensionValues::default();
        extensions.set("code", "UNAUTHENTICATED");
        extensions
    });
    response
}
