//! Answers shared between subscribers. Every subscriber of one stream in this process
//! receives the same `Arc<Event>`; those that asked with the same document (query,
//! operation name and variables) get, for each event, the answer the first of them made,
//! executed and serialized once, instead of executing and serializing the selection each.
//!
//! An answer is shared only where it cannot depend on who asked: an event's own values are
//! the same for everyone allowed to follow the stream (the resolver checked that right
//! before following it), but a selection that reaches records through the event
//! (`messageStream { message { ... } }`, `executionEvents { execution { ... } }`) is read
//! with the caller's rights, so its answers are shared only between subscriptions of the
//! same caller.
//!
//! The WebSocket transport puts a `Sharing` in each subscription's request data and turns
//! each response into its payload with `Sharing::payload`; the resolver wraps each event
//! with `Share::item`: `Rendered::Known` when the event holds this way of asking's answer
//! (resolved to nothing: the transport sends the kept answer), `Rendered::Fresh` otherwise
//! (resolved as usual; the transport keeps its serialized response on the event for the
//! next subscriber). Transports without a `Sharing` (SSE) answer each event themselves.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::Field;
use async_graphql::registry::Registry;
use async_graphql::{ContextSelectionSet, OutputType, Positioned, Response, ServerResult, Value};

use crate::auth::Actor;
use crate::realtime::events::Event;

/// One subscription's way of asking, and what its resolver handed on with its last item.
#[derive(Clone)]
pub struct Sharing(Arc<Inner>);

struct Inner {
    /// The document, operation name and variables, as one text.
    document: Arc<str>,
    handed: Mutex<Option<Handed>>,
}

enum Handed {
    /// The event held the answer: send it.
    Known(Arc<str>),
    /// The event is answered here: keep the answer on it under `key`.
    Fresh { event: Arc<Event>, key: Arc<str> },
}

impl Sharing {
    /// The way `request` asks.
    pub fn of(request: &async_graphql::Request) -> Sharing {
        let variables = serde_json::to_string(&request.variables).unwrap_or_default();
        let operation = request.operation_name.as_deref().unwrap_or("");
        let document = format!("{operation}\u{0}{variables}\u{0}{}", request.query);
        Sharing(Arc::new(Inner {
            document: document.into(),
            handed: Mutex::new(None),
        }))
    }

    /// The resolver's side, for a caller whose answers are shared with every subscriber
    /// asking the same way (`caller` `None`), or only with the same caller's subscriptions.
    pub fn share(&self, caller: Option<Actor>) -> Share {
        let key = match caller {
            None => self.0.document.clone(),
            Some(actor) => format!("{}\u{0}{actor:?}", self.0.document).into(),
        };
        Share {
            sharing: self.clone(),
            key,
        }
    }

    fn hand(&self, handed: Option<Handed>) {
        *self.0.handed.lock().unwrap_or_else(|e| e.into_inner()) = handed;
    }

    /// The payload of the subscription's next response: the kept answer when its event held
    /// one (and `true`), else the response serialized (and kept on its event, when it has
    /// no error).
    pub fn payload(&self, response: &Response) -> (Arc<str>, bool) {
        let handed = self
            .0
            .handed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let answer = match handed {
            Some(Handed::Known(answer)) => return (answer, true),
            Some(Handed::Fresh { event, key }) => {
                let answer = serialized(response);
                if response.errors.is_empty()
                    && let Some(renderings) = event.renderings()
                {
                    renderings.put(key, answer.clone());
                }
                answer
            }
            None => serialized(response),
        };
        (answer, false)
    }
}

/// A response as JSON.
pub fn serialized(response: &Response) -> Arc<str> {
    match serde_json::to_string(response) {
        Ok(json) => json.into(),
        Err(e) => {
            tracing::error!(error = %e, "a response could not be serialized");
            Arc::from(
                r#"{"errors":[{"message":"the answer could not be written","extensions":{"code":"INTERNAL"}}]}"#,
            )
        }
    }
}

/// A resolver's handle on its subscription's sharing.
pub struct Share {
    sharing: Sharing,
    key: Arc<str>,
}

impl Share {
    /// The item standing for `event`: `Known` when the event holds this key's answer, else
    /// `fresh()` to be resolved (its answer then kept on the event).
    pub fn item<T>(&self, event: &Arc<Event>, fresh: impl FnOnce() -> T) -> Rendered<T> {
        let Some(renderings) = event.renderings() else {
            self.sharing.hand(None);
            return Rendered::Fresh(fresh());
        };
        if let Some(answer) = renderings.get(&self.key) {
            self.sharing.hand(Some(Handed::Known(answer)));
            return Rendered::Known;
        }
        self.sharing.hand(Some(Handed::Fresh {
            event: event.clone(),
            key: self.key.clone(),
        }));
        Rendered::Fresh(fresh())
    }

    /// Nothing to share for the next item (an error).
    pub fn none(&self) {
        self.sharing.hand(None);
    }
}

/// An item of a shared subscription: the GraphQL type of `T`.
pub enum Rendered<T> {
    /// To resolve.
    Fresh(T),
    /// Answered already: the transport sends the kept answer, this resolves to nothing.
    Known,
}

impl<T: OutputType> OutputType for Rendered<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        match self {
            Rendered::Fresh(item) => item.resolve(ctx, field).await,
            Rendered::Known => Ok(Value::Null),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::events::MessageEvent;

    fn delta() -> Arc<Event> {
        Arc::new(Event::Message(MessageEvent::delta(uuid::Uuid::nil(), "Hi")))
    }

    fn answer(text: &str) -> Response {
        Response::new(
            Value::from_json(serde_json::json!({ "messageStream": { "delta": text } }))
                .expect("a value"),
        )
    }

    #[test]
    fn the_first_answer_of_a_way_of_asking_is_the_next_ones() {
        let request = async_graphql::Request::new("subscription { messageStream { delta } }");
        let (first, second) = (Sharing::of(&request), Sharing::of(&request));
        let event = delta();
        assert!(matches!(
            first.share(None).item(&event, || ()),
            Rendered::Fresh(())
        ));
        let (made, shared) = first.payload(&answer("Hi"));
        assert!(!shared);
        assert!(matches!(
            second.share(None).item(&event, || ()),
            Rendered::Known
        ));
        // The second's own response (resolved to nothing) is not what it sends.
        let (sent, shared) = second.payload(&Response::new(Value::Null));
        assert!(shared && Arc::ptr_eq(&made, &sent), "{sent}");

        // Another document, other variables, or a caller's own reading: answered anew.
        let other = Sharing::of(&async_graphql::Request::new(
            "subscription { messageStream { seq } }",
        ));
        assert!(matches!(
            other.share(None).item(&event, || ()),
            Rendered::Fresh(())
        ));
        let with_variables =
            async_graphql::Request::new("subscription { messageStream { delta } }").variables(
                async_graphql::Variables::from_json(serde_json::json!({ "a": 1 })),
            );
        let variables = Sharing::of(&with_variables);
        assert!(matches!(
            variables.share(None).item(&event, || ()),
            Rendered::Fresh(())
        ));
        let caller = Actor::User {
            user_id: uuid::Uuid::nil(),
        };
        assert!(matches!(
            second.share(Some(caller)).item(&event, || ()),
            Rendered::Fresh(())
        ));
        // A copy of the event is another event.
        let copy = Arc::new((*event).clone());
        assert!(matches!(
            second.share(None).item(&copy, || ()),
            Rendered::Fresh(())
        ));
    }

    #[test]
    fn an_answer_with_errors_is_not_kept() {
        let request = async_graphql::Request::new("subscription { messageStream { delta } }");
        let sharing = Sharing::of(&request);
        let event = delta();
        let share = sharing.share(None);
        let _ = share.item(&event, || ());
        let failed = Response::from_errors(vec![async_graphql::ServerError::new("no", None)]);
        let (sent, _) = sharing.payload(&failed);
        assert!(sent.contains("\"no\""), "{sent}");
        assert!(matches!(share.item(&event, || ()), Rendered::Fresh(())));
        // Nothing handed: the response is sent as it is.
        share.none();
        assert_eq!(
            &*sharing.payload(&answer("x")).0,
            r#"{"data":{"messageStream":{"delta":"x"}}}"#
        );
    }
}
