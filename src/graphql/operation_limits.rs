//! Limits on an operation's root that async-graphql's depth and complexity limits do not
//! cover, checked on every transport before anything runs:
//!
//! - a query or mutation selects at most `WEFT_MAX_ROOT_FIELDS` root fields (root fields of a
//!   query run concurrently, and aliases would otherwise repeat an expensive field at will);
//! - a subscription selects exactly one root field (GraphQL's "single root field" rule).
//!
//! A document that does not parse, or names no operation it holds, is left to the executor,
//! which reports that error itself.

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use async_graphql::{Request, Response, ServerError};

/// The most fragments followed while counting (a cycle is the executor's error to report).
const MAX_FRAGMENT_DEPTH: usize = 16;

/// An answer refusing the request when its operation breaks a limit; `None` when it may run.
pub fn refused(request: &mut Request, max_root_fields: usize) -> Option<Response> {
    let operation_name = request.operation_name.clone();
    let document = request.parsed_query().ok()?;
    let message = breach(document, operation_name.as_deref(), max_root_fields)?;
    Some(Response::from_errors(vec![ServerError::new(message, None)]))
}

fn breach(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    max_root_fields: usize,
) -> Option<String> {
    let operation = match (&document.operations, operation_name) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name)?,
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next()?,
        _ => return None,
    };
    let fields = root_fields(document, &operation.node.selection_set.node, 0);
    match operation.node.ty {
        OperationType::Subscription if fields != 1 => Some(format!(
            "a subscription selects exactly one root field (this one selects {fields})"
        )),
        OperationType::Query | OperationType::Mutation if fields > max_root_fields => {
            Some(format!(
                "an operation selects at most {max_root_fields} root fields (this one selects \
                 {fields}); send several requests instead"
            ))
        }
        _ => None,
    }
}

/// The fields a selection set selects at its own level, fragments included.
fn root_fields(document: &ExecutableDocument, set: &SelectionSet, depth: usize) -> usize {
    if depth > MAX_FRAGMENT_DEPTH {
        return 0;
    }
    set.items
        .iter()
        .map(|selection| match &selection.node {
            Selection::Field(_) => 1,
            Selection::InlineFragment(inline) => {
                root_fields(document, &inline.node.selection_set.node, depth + 1)
            }
            Selection::FragmentSpread(spread) => document
                .fragments
                .get(&spread.node.fragment_name.node)
                .map_or(0, |fragment| {
                    root_fields(document, &fragment.node.selection_set.node, depth + 1)
                }),
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(query: &str, name: Option<&str>) -> Option<String> {
        let document = async_graphql::parser::parse_query(query).unwrap();
        breach(&document, name, 3)
    }

    #[test]
    fn root_fields_are_counted_through_aliases_and_fragments() {
        assert_eq!(check("{ a b c }", None), None);
        assert!(check("{ a b c d }", None).is_some());
        assert!(check("{ a x: a y: a z: a }", None).is_some());
        assert!(check("query { ...F b } fragment F on Query { a c d }", None).is_some());
        assert!(check("mutation { ... on Mutation { a b } c d }", None).is_some());
        assert_eq!(check("query A { a } query B { a b c d }", Some("A")), None);
        assert!(check("query A { a } query B { a b c d }", Some("B")).is_some());
        // Cycles and unknown operations are the executor's to report.
        assert_eq!(check("{ ...F } fragment F on Query { ...F }", None), None);
        assert_eq!(check("query A { a } query B { b }", None), None);
    }

    #[test]
    fn a_subscription_selects_one_root_field() {
        assert_eq!(check("subscription { a }", None), None);
        assert!(check("subscription { a b }", None).is_some());
        assert!(check("subscription { a x: a }", None).is_some());
    }
}
