//! Answers shared between subscribers. Every subscriber of one stream in this process
//! receives the same `Arc<Event>`; those that asked with the same document (query,
//! operation name and variables) send, for each event, the answer the first of them made,
//! executed and serialized once, instead of executing and serializing the selection each.
//!
//! An answer is shared only where it cannot depend on who asked: an event's own values are
//! the same for everyone allowed to follow the stream (the resolver checked that right
//! before following it), but a selection that reaches records through the event
//! (`messageStream { message { ... } }`, `executionEvents { execution { ... } }`) is read
//! with the caller's rights, so its answers are shared only between subscriptions of the
//! same caller.
//!
//! The WebSocket transport puts a `Sharing` in each subscription's request data. The
//! resolver of a replayable stream, once it has checked the caller and set the stream up,
//! hands the followed events over to it (`Sharing::hand_over`) and gives the schema a
//! stream of only the events to resolve. The transport then answers each event itself: with
//! the answer kept on the event under the subscription's key (`Renderings`), or by passing
//! the event to the schema, serializing the response and keeping it on the event for the
//! next subscriber. A kept answer costs a subscriber no execution at all. Transports
//! without a `Sharing` (SSE) have every event resolved by the schema.
//!
//! The operation's first run (checks, set-up, the handover) is dropped once it has handed
//! over: an idle subscription keeps only its events. When an event first needs the schema,
//! the transport runs the operation again with its `Sharing` resumed; the resolver then
//! checks nothing again and only gives the schema the events sent to it (`resumed`). The
//! caller's right to what the subscription follows is still watched by the handed-over
//! events themselves (`live_rights`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures_channel::mpsc;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};

use crate::auth::Actor;
use crate::realtime::events::Event;
use crate::realtime::replay::Followed;

/// One subscription's way of asking, and the events its resolver handed over.
#[derive(Clone)]
pub struct Sharing(Arc<Inner>);

struct Inner {
    /// The document, operation name and variables, as one text.
    document: Arc<str>,
    handed: Mutex<Option<Handover>>,
    /// Where the events to be resolved by the schema go, one at a time, once a run of the
    /// operation is waiting for them.
    to_resolve: Mutex<Option<ToResolve>>,
    /// The operation runs again only to resolve events.
    resumed: AtomicBool,
}

/// A subscription's followed events, handed to its transport.
pub struct Handover {
    /// The key its answers are kept under on each event.
    pub key: Arc<str>,
    /// The events, each once and in order; an error ends them.
    pub events: BoxStream<'static, async_graphql::Result<Followed>>,
}

/// Where the transport sends the events (or the error that ends them) the schema resolves.
pub type ToResolve = mpsc::Sender<async_graphql::Result<Followed>>;

impl Sharing {
    /// The way `request` asks.
    pub fn of(request: &async_graphql::Request) -> Sharing {
        let variables = serde_json::to_string(&request.variables).unwrap_or_default();
        let operation = request.operation_name.as_deref().unwrap_or("");
        let document = format!("{operation}\u{0}{variables}\u{0}{}", request.query);
        Sharing(Arc::new(Inner {
            document: document.into(),
            handed: Mutex::new(None),
            to_resolve: Mutex::new(None),
            resumed: AtomicBool::new(false),
        }))
    }

    /// The resolver's side: hands `events` over to the transport, to be answered with the
    /// answers of every subscriber asking the same way (`caller` `None`), or only with
    /// `caller`'s own; returns the stream of the events the schema is to resolve.
    pub fn hand_over<T: Send + 'static>(
        &self,
        caller: Option<Actor>,
        events: BoxStream<'static, async_graphql::Result<Followed>>,
        wrap: fn(Arc<Event>) -> T,
    ) -> impl Stream<Item = async_graphql::Result<T>> + Send + 'static + use<T> {
        let key = match caller {
            None => self.0.document.clone(),
            Some(actor) => format!("{}\u{0}{actor:?}", self.0.document).into(),
        };
        *lock(&self.0.handed) = Some(Handover { key, events });
        self.to_be_resolved(wrap)
    }

    /// The resolver's side in a run of the operation that only resolves events: the stream
    /// of the events the transport sends, when `ctx`'s operation is such a run.
    pub fn resumed<T: Send + 'static>(
        ctx: &async_graphql::Context<'_>,
        wrap: fn(Arc<Event>) -> T,
    ) -> Option<BoxStream<'static, async_graphql::Result<T>>> {
        let sharing = ctx.data_opt::<Sharing>()?;
        let resumed = sharing.0.resumed.load(Ordering::Acquire);
        resumed.then(|| sharing.to_be_resolved(wrap).boxed())
    }

    /// The events the transport sends to be resolved, from now on.
    fn to_be_resolved<T: Send + 'static>(
        &self,
        wrap: fn(Arc<Event>) -> T,
    ) -> impl Stream<Item = async_graphql::Result<T>> + Send + 'static + use<T> {
        // futures' channel rather than tokio's: tokio's allocates a block of 32 slots up
        // front, in every subscription.
        let (to_resolve, receiver) = mpsc::channel(0);
        *lock(&self.0.to_resolve) = Some(to_resolve);
        receiver.map(move |item| item.map(|followed: Followed| wrap(followed.event)))
    }

    /// The transport's side: the events handed over, once.
    pub fn take(&self) -> Option<Handover> {
        lock(&self.0.handed).take()
    }

    /// The transport's side: where to send events to resolve, once a run waits for them.
    pub fn take_to_resolve(&self) -> Option<ToResolve> {
        lock(&self.0.to_resolve).take()
    }

    /// The transport's side: this sharing, for a run of the operation that only resolves.
    pub fn resume(&self) -> Sharing {
        self.0.resumed.store(true, Ordering::Release);
        self.clone()
    }
}

fn lock<T>(slot: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves a slot as it was: take or put, never half.
    slot.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::events::MessageEvent;

    fn followed(delta: &str) -> async_graphql::Result<Followed> {
        let event = Event::Message(MessageEvent::delta(uuid::Uuid::nil(), delta));
        Ok(Followed {
            event: Arc::new(event),
            live: true,
        })
    }

    #[tokio::test]
    async fn events_handed_over_come_back_only_as_sent_to_resolve() {
        let request = async_graphql::Request::new("subscription { messageStream { delta } }");
        let sharing = Sharing::of(&request);
        assert!(sharing.take().is_none());
        let events = futures_util::stream::iter([followed("a"), followed("b")]).boxed();
        let mut resolved = std::pin::pin!(sharing.hand_over(None, events, |e| e.seq()));
        let mut handover = sharing.take().expect("handed over");
        assert!(sharing.take().is_none(), "handed over once");
        let mut to_resolve = sharing.take_to_resolve().expect("a run waits");
        let first = handover.events.next().await.expect("an event");
        to_resolve.try_send(first).expect("room for one");
        assert_eq!(resolved.next().await.map(|r| r.is_ok()), Some(true));
        drop(to_resolve);
        assert!(resolved.next().await.is_none(), "ends with its sender");
    }

    #[test]
    fn keys_differ_by_document_variables_and_caller() {
        let key = |request: &async_graphql::Request, caller: Option<Actor>| {
            let sharing = Sharing::of(request);
            let events = futures_util::stream::empty().boxed();
            drop(sharing.hand_over(caller, events, |_| ()));
            sharing.take().expect("handed over").key
        };
        let plain = async_graphql::Request::new("subscription { messageStream { delta } }");
        let same = async_graphql::Request::new("subscription { messageStream { delta } }");
        let other = async_graphql::Request::new("subscription { messageStream { seq } }");
        let with_variables =
            async_graphql::Request::new("subscription { messageStream { delta } }").variables(
                async_graphql::Variables::from_json(serde_json::json!({ "a": 1 })),
            );
        let caller = Actor::User {
            user_id: uuid::Uuid::nil(),
        };
        assert_eq!(key(&plain, None), key(&same, None));
        assert_ne!(key(&plain, None), key(&other, None));
        assert_ne!(key(&plain, None), key(&with_variables, None));
        assert_ne!(key(&plain, None), key(&plain, Some(caller)));
        assert_eq!(key(&plain, Some(caller)), key(&same, Some(caller)));
    }
}
