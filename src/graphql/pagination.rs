//! Relay connections: `first`/`after`/`last`/`before` with opaque cursors over a stable
//! order (newest first: `created_at DESC, id DESC` unless a connection says otherwise), a
//! page size of at most 100, and `totalCount` counted only when it is asked for.

use std::future::Future;
use std::pin::Pin;

use async_graphql::connection::{Connection, CursorType, Edge};
use async_graphql::{Object, OutputType};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// The largest page a client may ask for.
pub const MAX_PAGE_SIZE: i32 = 100;
/// The page size when neither `first` nor `last` is given.
pub const DEFAULT_PAGE_SIZE: i32 = 20;

/// A position in a list ordered by a timestamp (or number) and then the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Microseconds since the epoch, or a sequence number.
    pub key: i64,
    pub id: Uuid,
}

impl Cursor {
    pub fn at(time: DateTime<Utc>, id: Uuid) -> Cursor {
        Cursor {
            key: time.timestamp_micros(),
            id,
        }
    }

    pub fn time(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.key).unwrap_or_default()
    }
}

impl CursorType for Cursor {
    type Error = AppError;

    fn decode_cursor(s: &str) -> Result<Self, AppError> {
        let bad = || AppError::bad_input("after", "the cursor is not one this API gave out");
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let (key, id) = text.split_once(':').ok_or_else(bad)?;
        Ok(Cursor {
            key: key.parse().map_err(|_| bad())?,
            id: id.parse().map_err(|_| bad())?,
        })
    }

    fn encode_cursor(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.key, self.id))
    }
}

/// Which slice of a list a request asks for, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Page {
    /// Rows to return.
    pub size: i64,
    /// Only rows after this cursor (in list order).
    pub after: Option<(i64, Uuid)>,
    /// Only rows before this cursor (in list order).
    pub before: Option<(i64, Uuid)>,
    /// `last` was given: take the page from the end of the list.
    pub from_end: bool,
}

impl Page {
    /// For small catalogues ordered by values that change (popularity), cursors are
    /// positions in the list: the number of rows before this page.
    pub fn offset(&self) -> i64 {
        self.after.map_or(0, |(position, _)| position + 1)
    }
}

/// The connection arguments as received.
#[derive(Debug, Clone, Default)]
pub struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

impl PageArgs {
    pub fn new(
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Self {
        PageArgs {
            first,
            after,
            last,
            before,
        }
    }

    /// Checks the arguments: sizes 0 to 100, not both `first` and `last`, cursors ours.
    pub fn page(&self) -> AppResult<Page> {
        let size = |field: &str, n: i32| {
            if (0..=MAX_PAGE_SIZE).contains(&n) {
                Ok(i64::from(n))
            } else {
                Err(AppError::bad_input(
                    field,
                    format!("{field} must be between 0 and {MAX_PAGE_SIZE} (got {n})"),
                ))
            }
        };
        let (size, from_end) = match (self.first, self.last) {
            (Some(_), Some(_)) => {
                return Err(AppError::bad_input("last", "give first or last, not both"));
            }
            (Some(n), None) => (size("first", n)?, false),
            (None, Some(n)) => (size("last", n)?, true),
            (None, None) => (i64::from(DEFAULT_PAGE_SIZE), false),
        };
        let decode = |field: &str, s: &Option<String>| -> AppResult<Option<(i64, Uuid)>> {
            s.as_deref()
                .map(|s| {
                    Cursor::decode_cursor(s)
                        .map(|c| (c.key, c.id))
                        .map_err(|_| {
                            AppError::bad_input(field, "the cursor is not one this API gave out")
                        })
                })
                .transpose()
        };
        Ok(Page {
            size,
            after: decode("after", &self.after)?,
            before: decode("before", &self.before)?,
            from_end,
        })
    }
}

type CountFuture = Pin<Box<dyn Future<Output = AppResult<i64>> + Send>>;

/// The `totalCount` of a connection, computed only when selected.
pub struct Totals {
    count: Box<dyn Fn() -> CountFuture + Send + Sync>,
}

impl Totals {
    pub fn new<F, Fut>(count: F) -> Totals
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = AppResult<i64>> + Send + 'static,
    {
        Totals {
            count: Box::new(move || Box::pin(count())),
        }
    }

    /// A total already known.
    pub fn known(n: i64) -> Totals {
        Totals::new(move || async move { Ok(n) })
    }
}

#[Object]
impl Totals {
    /// How many items the whole list holds (with the filters applied).
    async fn total_count(&self) -> async_graphql::Result<i64> {
        Ok((self.count)().await?)
    }
}

/// A page of `T` with its cursors: async-graphql's connection, answered by
/// `graphql::plain_connection` without a future per field.
pub struct Conn<T: OutputType>(pub Connection<Cursor, T, Totals>);

/// Builds a connection from rows fetched for `page` (at most `page.size + 1` rows, in list
/// order when reading forward and in reverse order when `page.from_end`).
pub fn connection<R, T: OutputType>(
    page: &Page,
    mut rows: Vec<R>,
    cursor: impl Fn(&R) -> Cursor,
    node: impl Fn(R) -> T,
    totals: Totals,
) -> Conn<T> {
    let size = usize::try_from(page.size).unwrap_or(0);
    let more = rows.len() > size;
    rows.truncate(size);
    if page.from_end {
        rows.reverse();
    }
    let (has_previous_page, has_next_page) = if page.from_end {
        (more, page.before.is_some())
    } else {
        (page.after.is_some(), more)
    };
    let mut connection =
        Connection::with_additional_fields(has_previous_page, has_next_page, totals);
    connection.edges = rows
        .into_iter()
        .map(|r| Edge::new(cursor(&r), node(r)))
        .collect();
    Conn(connection)
}

/// A connection over rows fetched from `page.offset()`: each cursor is the row's position.
pub fn positioned<R, T: OutputType>(
    page: &Page,
    rows: Vec<R>,
    id: impl Fn(&R) -> Uuid,
    node: impl Fn(R) -> T,
    total: i64,
) -> Conn<T> {
    let offset = page.offset();
    let rows: Vec<(i64, R)> = (offset..).zip(rows).collect();
    connection(
        page,
        rows,
        |(position, r)| Cursor {
            key: *position,
            id: id(r),
        },
        |(_, r)| node(r),
        Totals::known(total),
    )
}

/// The ILIKE pattern of "contains `text`" (its wildcards taken literally).
pub fn contains_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Applies a page to a boxed Diesel query ordered by `(key, id)` DESC (newest first):
/// filters by the cursors, orders (reversed when reading from the end) and limits to one
/// row more than the page, to know whether there is more.
#[macro_export]
macro_rules! paginate_desc {
    ($query:expr, $page:expr, $key:expr, $id:expr, $to_key:expr) => {{
        use diesel::prelude::*;
        let page: &$crate::graphql::pagination::Page = $page;
        let mut query = $query;
        if let Some((k, id)) = page.after {
            let k = $to_key(k);
            query = query.filter($key.lt(k).or($key.eq(k).and($id.lt(id))));
        }
        if let Some((k, id)) = page.before {
            let k = $to_key(k);
            query = query.filter($key.gt(k).or($key.eq(k).and($id.gt(id))));
        }
        let query = if page.from_end {
            query.order(($key.asc(), $id.asc()))
        } else {
            query.order(($key.desc(), $id.desc()))
        };
        query.limit(page.size + 1)
    }};
}

/// The timestamp a cursor key stands for.
pub fn key_time(key: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(key).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_bad_ones_are_bad_input() {
        let c = Cursor::at(Utc::now(), Uuid::new_v4());
        assert_eq!(Cursor::decode_cursor(&c.encode_cursor()).unwrap(), c);
        assert_eq!(
            Cursor::decode_cursor("nonsense").unwrap_err().code(),
            "BAD_USER_INPUT"
        );
    }

    #[test]
    fn page_sizes_are_bounded() {
        let args =
            |first: Option<i32>, last: Option<i32>| PageArgs::new(first, None, last, None).page();
        assert_eq!(args(None, None).unwrap().size, 20);
        assert_eq!(args(Some(100), None).unwrap().size, 100);
        let e = args(Some(101), None).unwrap_err();
        assert!(matches!(e, AppError::BadUserInput { ref field, .. } if field == "first"));
        assert!(args(Some(-1), None).is_err());
        assert!(args(Some(1), Some(1)).is_err());
        assert!(args(None, Some(5)).unwrap().from_end);
    }
}
