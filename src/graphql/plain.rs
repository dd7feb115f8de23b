//! Objects resolved without a future per field. async-graphql resolves every field of an
//! `#[Object]` through a boxed future gathered in a `FuturesUnordered`, even a column read
//! from the row in hand; on a page of 400 messages that machinery cost more than the
//! statements. `Plain<T>` answers the fields `T` names plain (`PlainFields`) straight from
//! the row, in selection order, and leaves every other field (relations, arguments, JSON) to
//! `T`'s own resolver, awaited together so their loaders still batch. A relation whose
//! objects are already in hand (read in the parent's statement) is answered plain too when
//! each of them answers all that is asked of it plain (`PlainFields::plain_relation`).
//! Anything unusual in the selection (fragments, directives) goes to `T` whole. Schema
//! extensions would not see the plain fields: the schema has none (`graphql::schema_builder`).
//!
//! `Plain<T>` is the same GraphQL type as `T`: it registers `T` and answers for it.

use std::borrow::Cow;
use std::marker::PhantomData;

use async_graphql::indexmap::IndexMap;
use async_graphql::indexmap::map::Entry;
use async_graphql::parser::types::{Field, Selection};
use async_graphql::registry::Registry;
use async_graphql::resolver_utils::resolve_container;
use async_graphql::{
    ContainerType, ContextSelectionSet, EnumType, Name, OutputType, Positioned, ScalarType,
    ServerResult, Value,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// An object some of whose fields are values of the row it wraps.
pub trait PlainFields: ContainerType {
    /// The value of field `name` when it is plain (no argument, no context, nothing to
    /// await, no error possible); `None` sends it to the object's resolver.
    fn plain_field(&self, name: &str) -> Option<Value>;

    /// The value of field `name` (one without arguments, asking `selection` of its objects)
    /// when its objects are in hand and each answers all of `selection` plain
    /// ([`plain_object`]); `None` sends it to the object's resolver.
    fn plain_relation(&self, _name: &str, _selection: &[Positioned<Selection>]) -> Option<Value> {
        None
    }
}

/// `object`'s answer to `selection` when every field of it is plain: fields only, none with
/// a directive or an argument, no response key twice. `None` otherwise (the caller sends the
/// field to the resolvers, which answer whatever the selection is).
pub fn plain_object<T: PlainFields>(
    object: &T,
    selection: &[Positioned<Selection>],
) -> Option<Value> {
    let mut values: IndexMap<Name, Value> = IndexMap::with_capacity(selection.len());
    for item in selection {
        let Selection::Field(field) = &item.node else {
            return None;
        };
        let field = &field.node;
        if !field.directives.is_empty() {
            return None;
        }
        let value = plain_answer(object, field)?;
        if values
            .insert(field.response_key().node.clone(), value)
            .is_some()
        {
            return None;
        }
    }
    Some(Value::Object(values))
}

/// `object`'s plain answer to `field` (one without directives): its type's name, a plain
/// field, or a relation in hand answered plain; `None` when the field needs its resolver.
fn plain_answer<T: PlainFields>(object: &T, field: &Field) -> Option<Value> {
    let name = field.name.node.as_str();
    let nested = &field.selection_set.node.items;
    if name == "__typename" {
        Some(Value::String(object.introspection_type_name().into_owned()))
    } else if !field.arguments.is_empty() {
        None
    } else if nested.is_empty() {
        object.plain_field(name)
    } else {
        object.plain_relation(name, nested)
    }
}

/// A list of objects in hand, when each answers all of `selection` plain.
pub fn plain_list<'a, T: PlainFields + 'a>(
    objects: impl IntoIterator<Item = &'a T>,
    selection: &[Positioned<Selection>],
) -> Option<Value> {
    objects
        .into_iter()
        .map(|object| plain_object(object, selection))
        .collect::<Option<Vec<_>>>()
        .map(Value::List)
}

/// `T`, with its plain fields answered without a future each.
pub struct Plain<T>(pub T);

impl<T: PlainFields> OutputType for Plain<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn introspection_type_name(&self) -> Cow<'static, str> {
        self.0.introspection_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        _field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        let items = &ctx.item.node.items;
        // The schema has no extensions (they would not see the plain fields answered here).
        let simple = items.iter().all(|selection| match &selection.node {
            Selection::Field(field) => field.node.directives.is_empty(),
            _ => false,
        });
        if !simple {
            return resolve_container(ctx, &self.0).await;
        }
        let mut values: IndexMap<Name, Value> = IndexMap::with_capacity(items.len());
        let mut rest = Vec::new();
        for selection in items {
            let Selection::Field(field) = &selection.node else {
                continue;
            };
            let key = &field.node.response_key().node;
            match plain_answer(&self.0, &field.node) {
                // A key asked twice merges its objects (`endUser { name } endUser { email }`).
                Some(value) => merge(&mut values, key.clone(), value),
                None => {
                    // Its place in the answer is kept; filled (or taken out) below.
                    values.entry(key.clone()).or_insert(Value::Null);
                    rest.push(field);
                }
            }
        }
        if !rest.is_empty() {
            let resolved = futures_util::future::join_all(rest.iter().map(|field| async move {
                let ctx_field = ctx.with_field(field);
                let key = field.node.response_key().node.clone();
                (key, self.0.resolve_field(&ctx_field).await)
            }))
            .await;
            for (key, result) in resolved {
                match result {
                    Ok(value) => merge(&mut values, key, value.unwrap_or_default()),
                    Err(error) => {
                        ctx.add_error(error);
                        values.shift_remove(&key);
                    }
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

/// Puts a field's value in its place; a key selected twice merges its objects, as
/// async-graphql does.
fn merge(target: &mut IndexMap<Name, Value>, key: Name, value: Value) {
    match target.entry(key) {
        Entry::Vacant(slot) => {
            slot.insert(value);
        }
        Entry::Occupied(mut slot) => match slot.get_mut() {
            Value::Object(existing) => {
                if let Value::Object(more) = value {
                    for (k, v) in more {
                        merge(existing, k, v);
                    }
                }
            }
            held @ Value::Null => *held = value,
            _ => {}
        },
    }
}

/// A row's value as GraphQL gives it; `None` when the object's resolver must answer (it
/// reports what is wrong).
pub trait PlainValue {
    fn plain(&self) -> Option<Value>;
}

/// Scalars as async-graphql writes them.
macro_rules! plain_scalars {
    ($($scalar:ty),*) => {$(
        impl PlainValue for $scalar {
            fn plain(&self) -> Option<Value> {
                Some(ScalarType::to_value(self))
            }
        }
    )*};
}

plain_scalars!(Uuid, DateTime<Utc>, i32, i64, f64, bool);

impl PlainValue for String {
    fn plain(&self) -> Option<Value> {
        Some(Value::String(self.clone()))
    }
}

impl<T: PlainValue> PlainValue for Option<T> {
    fn plain(&self) -> Option<Value> {
        self.as_ref().map_or(Some(Value::Null), PlainValue::plain)
    }
}

/// A stored enum text (`E`'s value of the same name).
pub struct Stored<'a, E>(pub &'a str, pub PhantomData<E>);

/// The stored text of an `E`, as its GraphQL enum value.
pub fn stored<E>(text: &str) -> Stored<'_, E> {
    Stored(text, PhantomData)
}

impl<E: EnumType> PlainValue for Stored<'_, E> {
    fn plain(&self) -> Option<Value> {
        E::items()
            .iter()
            .find(|item| item.name == self.0)
            .map(|item| Value::Enum(Name::new(item.name)))
    }
}

/// Implements `PlainFields` from a list of `"fieldName" => value` (values `PlainValue`),
/// and optionally of relations in hand, `"fieldName" => answer` (an `Option<Value>` given
/// the selection `$selection`: `plain_object`, `plain_list`).
#[macro_export]
macro_rules! plain_fields {
    ($object:ty, |$this:ident| { $($name:literal => $value:expr),* $(,)? }
     $(, relations |$selection:ident| { $($relation:literal => $answer:expr),* $(,)? })?) => {
        impl $crate::graphql::plain::PlainFields for $object {
            fn plain_field(&self, name: &str) -> Option<async_graphql::Value> {
                use $crate::graphql::plain::PlainValue;
                let $this = self;
                match name {
                    $($name => PlainValue::plain(&$value),)*
                    _ => None,
                }
            }
            $(
            fn plain_relation(
                &self,
                name: &str,
                $selection: &[async_graphql::Positioned<async_graphql::parser::types::Selection>],
            ) -> Option<async_graphql::Value> {
                let $this = self;
                match name {
                    $($relation => $answer,)*
                    _ => None,
                }
            }
            )?
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graphql::enums::MessageRole;

    #[test]
    fn stored_enums_and_missing_values_read_as_graphql_gives_them() {
        assert_eq!(
            stored::<MessageRole>("ASSISTANT").plain(),
            Some(Value::Enum(Name::new("ASSISTANT")))
        );
        // Not one of the enum's values: the object's resolver answers (with its error).
        assert_eq!(stored::<MessageRole>("nonsense").plain(), None);
        assert_eq!(None::<String>.plain(), Some(Value::Null));
        assert_eq!(Some(3).plain(), Some(Value::from(3)));
    }

    #[test]
    fn a_key_selected_twice_merges_its_objects() {
        let mut values = IndexMap::new();
        let object =
            |k: &str, v: i32| Value::Object(IndexMap::from([(Name::new(k), Value::from(v))]));
        merge(&mut values, Name::new("a"), object("x", 1));
        merge(&mut values, Name::new("a"), object("y", 2));
        values.insert(Name::new("b"), Value::Null);
        merge(&mut values, Name::new("b"), Value::from(5));
        assert_eq!(
            Value::Object(values),
            Value::Object(IndexMap::from([
                (
                    Name::new("a"),
                    Value::Object(IndexMap::from([
                        (Name::new("x"), Value::from(1)),
                        (Name::new("y"), Value::from(2)),
                    ]))
                ),
                (Name::new("b"), Value::from(5)),
            ]))
        );
    }
}
