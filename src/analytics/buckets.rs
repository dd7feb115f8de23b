//! The buckets a range is shown in: hours, days or weeks (from Monday) of an IANA time zone,
//! daylight-saving changes included, computed by PostgreSQL's time zone database.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use tokio::sync::OnceCell;

use crate::error::{AppError, AppResult};

/// At most this many buckets per request.
pub const MAX_BUCKETS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Hour,
    Day,
    Week,
}

impl Interval {
    /// The shortest a bucket can be (a day is 23 hours when clocks go forward).
    fn shortest(self) -> Duration {
        match self {
            Interval::Hour => Duration::hours(1),
            Interval::Day => Duration::hours(23),
            Interval::Week => Duration::hours(7 * 24 - 1),
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Interval::Hour => "hour",
            Interval::Day => "day",
            Interval::Week => "week",
        }
    }
}

/// What a caller asked to see: buckets from the one `from` falls in up to `to` (exclusive);
/// each bucket counts its whole interval.
#[derive(Debug, Clone)]
pub struct Range {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub interval: Interval,
    pub time_zone: String,
}

/// The bucket boundaries: n + 1 instants for n buckets, the last the end of the last bucket.
pub async fn bounds(conn: &mut AsyncPgConnection, range: &Range) -> AppResult<Vec<DateTime<Utc>>> {
    if range.to <= range.from {
        return Err(AppError::bad_input("to", "`to` must be after `from`"));
    }
    let most = (range.to - range.from).num_seconds() / range.interval.shortest().num_seconds();
    if most > MAX_BUCKETS as i64 + 1 {
        return Err(too_many(range.interval));
    }
    check_time_zone(conn, &range.time_zone).await?;
    // Hours step in absolute time (a local hour repeats or is skipped when clocks change);
    // days and weeks step in local time, then become instants in the zone. One interval
    // past `to`: the end of the last bucket comes with them.
    let sql = match range.interval {
        Interval::Hour => {
            "SELECT generate_series(date_trunc('hour', $1 AT TIME ZONE $3) AT TIME ZONE $3, \
                                    $2 + interval '1 hour', interval '1 hour') AS at"
        }
        Interval::Day | Interval::Week => {
            "SELECT DISTINCT local AT TIME ZONE $3 AS at FROM generate_series( \
                 date_trunc($4, $1 AT TIME ZONE $3), ($2 AT TIME ZONE $3) + ('1 ' || $4)::interval, \
                 ('1 ' || $4)::interval) local \
             ORDER BY at"
        }
    };
    let rows: Vec<Bound> = diesel::sql_query(sql)
        .bind::<Timestamptz, _>(range.from)
        .bind::<Timestamptz, _>(range.to)
        .bind::<Text, _>(&range.time_zone)
        .bind::<Text, _>(range.interval.unit())
        .load(conn)
        .await?;
    let starts = rows.iter().take_while(|b| b.at < range.to).count();
    if starts > MAX_BUCKETS {
        return Err(too_many(range.interval));
    }
    if starts == 0 {
        return Err(AppError::internal("a range without buckets"));
    }
    // The starts, then the end of the last bucket: the next boundary after it.
    let bounds: Vec<DateTime<Utc>> = rows.iter().take(starts + 1).map(|b| b.at).collect();
    if bounds.len() != starts + 1 {
        return Err(AppError::internal(
            "a range without the end of its last bucket",
        ));
    }
    Ok(bounds)
}

#[derive(QueryableByName)]
struct Bound {
    #[diesel(sql_type = Timestamptz)]
    at: DateTime<Utc>,
}

fn too_many(interval: Interval) -> AppError {
    AppError::bad_input(
        "interval",
        format!(
            "at most {MAX_BUCKETS} buckets per request: shorten the range or choose a longer interval than {}",
            interval.unit()
        ),
    )
}

/// The IANA names PostgreSQL knows, read once.
static TIME_ZONES: OnceCell<HashSet<String>> = OnceCell::const_new();

#[derive(QueryableByName)]
struct ZoneName {
    #[diesel(sql_type = Text)]
    name: String,
}

async fn check_time_zone(conn: &mut AsyncPgConnection, name: &str) -> AppResult<()> {
    let zones = TIME_ZONES
        .get_or_try_init(|| async {
            let rows: Vec<ZoneName> = diesel::sql_query(
                "SELECT name FROM pg_timezone_names WHERE name !~ '^(posix|right)/'",
            )
            .load(conn)
            .await?;
            AppResult::Ok(rows.into_iter().map(|z| z.name).collect::<HashSet<_>>())
        })
        .await?;
    if zones.contains(name) {
        Ok(())
    } else {
        Err(AppError::bad_input(
            "timeZone",
            format!("{name:?} is not an IANA time zone (such as \"Europe/Paris\" or \"UTC\")"),
        ))
    }
}
