//! Subscriptions follow rights: when a builder's membership changes (removed from a team,
//! left it, given a new role), on whichever instance, each of that builder's live
//! subscriptions checks again that it may still see what it follows, and ends with
//! FORBIDDEN when it may not. A bus that resynchronizes (announcements may have been
//! missed) makes every subscription check again. Sessions, keys and tokens that end close
//! the whole connection instead (`http::rights`).

use std::sync::Arc;

use async_graphql::Result;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use uuid::Uuid;

use crate::app::App;
use crate::auth::permissions::authorize_workspace;
use crate::auth::{Action, Actor};
use crate::conversation::lookup::{visible_conversation, visible_message};
use crate::error::{AppError, AppResult};
use crate::knowledge::documents::visible_document;
use crate::realtime::bus::{Delivery, Missed, Subscription as BusSubscription};
use crate::realtime::events::Event;
use crate::workflow::executions::visible_execution;

/// What a subscription follows, as its caller must still be allowed to see it.
#[derive(Debug, Clone, Copy)]
pub enum Watched {
    Workspace(Uuid),
    Message(Uuid),
    Execution(Uuid),
    Conversation(Uuid),
    Document(Uuid),
}

impl Watched {
    async fn check(self, app: &App, actor: Actor) -> AppResult<()> {
        let mut conn = app.pool.get().await?;
        let conn = &mut *conn;
        match self {
            Watched::Workspace(id) => {
                authorize_workspace(conn, actor, id, Action::Read).await?;
            }
            Watched::Message(id) => {
                visible_message(conn, actor, id).await?;
            }
            Watched::Execution(id) => {
                visible_execution(conn, actor, id).await?;
            }
            Watched::Conversation(id) => {
                visible_conversation(conn, actor, id).await?;
            }
            Watched::Document(id) => {
                visible_document(conn, actor, id).await?;
            }
        }
        Ok(())
    }
}

/// The changes of rights one subscription listens to; opened before the subscription's
/// first check, so that no change can fall in between.
pub struct RightsWatch {
    /// The builder and the rights feed; API keys and end users have no memberships.
    builder: Option<(Uuid, BusSubscription)>,
}

impl RightsWatch {
    pub async fn open(app: &App, actor: Actor) -> RightsWatch {
        let builder = match actor {
            Actor::User { user_id } => {
                let channel = app.realtime.names().rights();
                Some((user_id, app.realtime.bus.subscribe(&channel).await))
            }
            Actor::ApiKey { .. } | Actor::EndUser { .. } => None,
        };
        RightsWatch { builder }
    }

    /// `stream`, ended with FORBIDDEN once `actor` may no longer see `watched`.
    pub fn guard<T, S>(
        self,
        app: Arc<App>,
        actor: Actor,
        watched: Watched,
        stream: S,
    ) -> impl Stream<Item = Result<T>> + Send + 'static + use<T, S>
    where
        T: Send + 'static,
        S: Stream<Item = Result<T>> + Send + 'static,
    {
        let guarded = Guarded {
            inner: Some(stream.boxed()),
            pending: None,
            builder: self.builder,
            app,
            actor,
            watched,
            ended: false,
        };
        futures_util::stream::unfold(guarded, |mut guarded| async move {
            let item = guarded.next().await?;
            Some((item, guarded))
        })
    }
}

/// The next item of a stream, with the stream handed back.
type NextItem<T> = BoxFuture<'static, (Option<Result<T>>, BoxStream<'static, Result<T>>)>;

struct Guarded<T> {
    /// The subscription's own stream, while no item is being waited for...
    inner: Option<BoxStream<'static, Result<T>>>,
    /// ...and the wait for its next item, kept across changes of rights: dropping it half
    /// way would lose what it had read (a feed catching up, for one).
    pending: Option<NextItem<T>>,
    builder: Option<(Uuid, BusSubscription)>,
    app: Arc<App>,
    actor: Actor,
    watched: Watched,
    ended: bool,
}

/// What happened first: the subscription's own item, or a change to look at.
enum Next<T> {
    Item(Option<Result<T>>, BoxStream<'static, Result<T>>),
    Recheck,
    Nothing,
    FeedClosed,
}

/// The wait for the next item of `inner`, started when none is under way.
fn waiting<'a, T: Send + 'static>(
    pending: &'a mut Option<NextItem<T>>,
    inner: &mut Option<BoxStream<'static, Result<T>>>,
) -> Option<&'a mut NextItem<T>> {
    if pending.is_none() {
        let mut stream = inner.take()?;
        *pending = Some(Box::pin(async move {
            let item = stream.next().await;
            (item, stream)
        }));
    }
    pending.as_mut()
}

impl<T: Send + 'static> Guarded<T> {
    async fn next(&mut self) -> Option<Result<T>> {
        if self.ended {
            return None;
        }
        loop {
            let builder = self.builder.as_ref().map(|(user_id, _)| *user_id);
            let next = {
                let waiting = waiting(&mut self.pending, &mut self.inner)?;
                match (builder, &mut self.builder) {
                    (Some(user_id), Some((_, changes))) => tokio::select! {
                        (item, stream) = waiting => Next::Item(item, stream),
                        delivery = changes.recv() => match delivery {
                            Ok(Delivery::Event(event)) => match &*event {
                                Event::MembershipChanged { user_id: changed, .. }
                                    if *changed == user_id => Next::Recheck,
                                _ => Next::Nothing,
                            },
                            Ok(Delivery::Resync) | Err(Missed::Lagged) => Next::Recheck,
                            Err(Missed::Closed) => Next::FeedClosed,
                        },
                    },
                    _ => {
                        let (item, stream) = waiting.await;
                        Next::Item(item, stream)
                    }
                }
            };
            match next {
                Next::Item(item, stream) => {
                    self.pending = None;
                    self.inner = Some(stream);
                    return item;
                }
                Next::Nothing => {}
                Next::FeedClosed => self.builder = None,
                // Boxed: this future waits in the subscription's stream for its life; the
                // check's reads are large beside that wait, and rare.
                Next::Recheck => match Box::pin(self.watched.check(&self.app, self.actor)).await {
                    Ok(()) => {}
                    Err(AppError::NotFound(_) | AppError::Forbidden) => {
                        self.ended = true;
                        let error = AppError::Forbidden;
                        return Some(Err(error.into()));
                    }
                    // A database that cannot answer leaves the subscription as it was.
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot check a subscription's rights again");
                    }
                },
            }
        }
    }
}
