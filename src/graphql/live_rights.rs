//! Subscriptions follow rights: when a builder's membership changes (removed from a team,
//! left it, given a new role), on whichever instance, each of that builder's live
//! subscriptions checks again that it may still see what it follows, and ends with
//! FORBIDDEN when it may not. A bus that resynchronizes (announcements may have been
//! missed) makes every subscription check again. Sessions, keys and tokens that end close
//! the whole connection instead (`http::rights`).

use std::sync::Arc;

use std::pin::Pin;
use std::task::{Context, Poll, ready};

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
use crate::realtime::woken::Woken;
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
        Guarded {
            inner: stream.boxed(),
            changes: self.builder.map(|(user_id, feed)| Changes {
                user_id,
                next: Woken::new(receive(feed)),
            }),
            check: None,
            app,
            actor,
            watched,
            ended: false,
        }
    }
}

/// A subscription's stream and the changes of rights it listens to, polled in place: the
/// subscription's items pass straight through, and the wait for a change is polled only
/// when the rights feed woke it (`woken`: the feed is one for every subscription of the
/// process), made again only after a change arrives.
struct Guarded<T> {
    inner: BoxStream<'static, Result<T>>,
    /// The builder's changes; `None` for API keys and end users, or once the feed closed.
    changes: Option<Changes>,
    /// A check of the caller's right under way; the subscription's items wait for it.
    check: Option<BoxFuture<'static, AppResult<()>>>,
    app: Arc<App>,
    actor: Actor,
    watched: Watched,
    ended: bool,
}

struct Changes {
    user_id: Uuid,
    next: Woken<(Result<Delivery, Missed>, BusSubscription)>,
}

/// The feed's next delivery, with the feed handed back.
async fn receive(mut feed: BusSubscription) -> (Result<Delivery, Missed>, BusSubscription) {
    let delivery = feed.recv().await;
    (delivery, feed)
}

/// What a delivery of the rights feed asks of a subscription.
enum Change {
    Recheck,
    Nothing,
    FeedClosed,
}

impl Changes {
    fn poll_change(&mut self, cx: &mut Context<'_>) -> Poll<Change> {
        let (delivery, feed) = ready!(self.next.poll_done(cx));
        let change = match delivery {
            Ok(Delivery::Event(event)) => match &*event {
                Event::MembershipChanged { user_id, .. } if *user_id == self.user_id => {
                    Change::Recheck
                }
                _ => Change::Nothing,
            },
            Ok(Delivery::Resync) | Err(Missed::Lagged) => Change::Recheck,
            Err(Missed::Closed) => Change::FeedClosed,
        };
        self.next.set(receive(feed));
        Poll::Ready(change)
    }
}

impl<T> Stream for Guarded<T> {
    type Item = Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        let this = &mut *self;
        loop {
            if this.ended {
                return Poll::Ready(None);
            }
            if let Some(check) = this.check.as_mut() {
                let checked = ready!(check.as_mut().poll(cx));
                this.check = None;
                match checked {
                    Ok(()) => {}
                    Err(AppError::NotFound(_) | AppError::Forbidden) => {
                        this.ended = true;
                        return Poll::Ready(Some(Err(AppError::Forbidden.into())));
                    }
                    // A database that cannot answer leaves the subscription as it was.
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot check a subscription's rights again");
                    }
                }
            }
            // A change of rights is looked at before the next item goes out.
            if let Some(changes) = this.changes.as_mut()
                && let Poll::Ready(change) = changes.poll_change(cx)
            {
                match change {
                    Change::Recheck => {
                        let (app, actor, watched) = (this.app.clone(), this.actor, this.watched);
                        this.check =
                            Some(Box::pin(async move { watched.check(&app, actor).await }));
                    }
                    Change::Nothing => {}
                    Change::FeedClosed => this.changes = None,
                }
                continue;
            }
            return this.inner.poll_next_unpin(cx);
        }
    }
}
