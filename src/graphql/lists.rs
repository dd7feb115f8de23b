//! Pages of child lists for many parents in one statement: `Workspace.workflows`,
//! `Conversation.messages` and the like, batched by DataLoaders so a query costs the same
//! number of statements for 1 parent as for 50.
//!
//! Each parent's page is read by a `LATERAL` subquery ordered and limited like the page (an
//! index range scan per parent), and every statement keeps only rows the viewer can see: a
//! builder's workspaces, or an application's (an end user's) own conversations.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::deserialize;
use diesel::pg::Pg;
use diesel::row::NamedRow;
use diesel::sql_types::{BigInt, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::TryStreamExt;
use uuid::Uuid;

use super::pagination::{Page, contains_pattern, key_time};
use super::viewer::Viewer;
use crate::db::statement::{Bind, Statement};
use crate::error::{AppError, AppResult};

/// How a list is ordered: by a timestamp or by an integer, then by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Time,
    Int,
}

/// The child lists served this way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListName {
    WorkspaceWorkflows,
    WorkflowVersions,
    WorkspaceApplications,
    WorkspaceConversations,
    ApplicationConversations,
    /// One end user's conversations (of an application, given by the filter).
    EndUserConversations,
    ConversationMessages,
    WorkspaceEndUsers,
    WorkspaceAuditLogs,
    WorkspacePromptTemplates,
    WorkspaceDatasets,
    DatasetDocuments,
    DocumentSegments,
    WorkspaceInstalledPlugins,
    WorkspaceFiles,
    /// An application's feedback log, newest first.
    ApplicationFeedbacks,
    ApplicationAnnotations,
    /// Run history, newest first.
    WorkspaceExecutions,
    WorkflowExecutions,
}

impl ListName {
    pub fn spec(self) -> ListSpec {
        match self {
            ListName::WorkspaceWorkflows => ListSpec {
                table: "workflows",
                parent: "workspace_id",
                key: "created_at",
                key_kind: KeyKind::Time,
                ascending: false,
                soft_delete: true,
                name_column: Some("name"),
                status_column: "status",
            },
            ListName::WorkspaceApplications => ListSpec {
                table: "applications",
                parent: "workspace_id",
                key: "created_at",
                key_kind: KeyKind::Time,
                ascending: false,
                soft_delete: true,
                name_column: Some("name"),
                status_column: "status",
            },
            // Conversations come most recently active first.
            ListName::WorkspaceConversations => ListSpec {
                table: "conversations",
                parent: "workspace_id",
                key: "updated_at",
                key_kind: KeyKind::Time,
                ascending: false,
                soft_delete: true,
                name_column: Some("title"),
                status_column: "status",
            },
            ListName::ApplicationConversations => ListSpec {
                table: "conversations",
                parent: "application_id",
                key: "updated_at",
                key_kind: KeyKind::Time,
                ascending: false,
                soft_delete: true,
                name_column: Some("title"),
                status_column: "status",
            },
            // An application's conversations, under their end user instead.
            ListName::EndUserConversations => ListSpec {
                parent: "end_user_id",
                ..ListName::ApplicationConversations.spec()
            },
            ListName::ConversationMessages => ListSpec {
                table: "messages",
                parent: "conversation_id",
                key: "sequence_number",
                key_kind: KeyKind::Int,
                ascending: false,
                soft_delete: false,
                name_column: None,
                status_column: "status",
            },
            ListName::WorkspaceEndUsers => ListSpec {
                table: "end_users",
                parent: "workspace_id",
                key: "created_at",
                key_kind: KeyKind::Time,
                ascending: false,
                soft_delete: false,
                name_column: Some("name"),
                status_column: "status",
            },
            ListName::WorkspacePromptTemplates => ListSpec {
                table: "prompt_templates",
                parent: "workspace_id",
                key: "created_at",
                key_kind: KeyKind::Time,
                ascending: false,
                soft_delete: true,
                name_column: Some("name"),
                status_column: "status",
            },
            ListName::WorkspaceDatasets => ListSpec {
                table: "datasets",
                parent: "workspace_id",
                key: "created_at",
                key_kind: KeyKind::Time,
                ascending: false,
                soft_delete: true,
                name_column: Some("name"),
                status_column: "indexing_technique",
            },
            ListName::DatasetDocuments => ListSpec {
                table: "documents",
                parent: "dataset_id",
                key: "created_at",
                key_kind: KeyKind::Time,
                ascending: false,
                soft_delete: true,
                name_column: Some("name"),
                status_column: "indexing_status",
            },
            // The status filter is ENABLED/DISABLED, matched as the boolean's text.
            ListName::WorkspaceInstalledPlugins => ListSpec {
                table: "installed_plugins",
                parent: "workspace_id",
                key: "installed_at",
                key_kind: KeyKind::Time,
                ascending: false,
                soft_delete: false,
                name_column: None,
                status_column: "is_enabled::text",
            },
            // Segments in the order of the document; nameContains searches their text.
            ListName::DocumentSegments => ListSpec {
                table: "document_segments",
                parent: "document_id",
                key: "position",
                key_kind: KeyKind::Int,
                ascending: true,
                soft_delete: false,
                name_column: Some("content"),
                status_column: "status",
            },
            ListName::WorkspaceFiles => ListSpec {
                table: "file_references",
                parent: "workspace_id",
                key: "created_at",
                key_kind: KeyKind::Time,
                ascending: false,
                soft_delete: false,
                name_column: Some("name"),
                status_column: "mime_type",
            },
            ListName::WorkspaceAuditLogs => ListSpec {
                table: "audit_logs",
                parent: "workspace_id",
                key: "created_at",
                key_kind: KeyKind::Time,
                ascending: false,
                soft_delete: false,
                name_column: None,
                status_column: "action",
            },
            // The status filter is the rating.
            ListName::ApplicationFeedbacks => ListSpec {
                table: "message_feedbacks",
                parent: "application_id",
                key: "created_at",
                key_kind: KeyKind::Time,
                ascending: false,
                soft_delete: false,
                name_column: None,
                status_column: "rating",
            },
            ListName::ApplicationAnnotations => ListSpec {
                table: "message_annotations",
                parent: "application_id",
                key: "created_at",
                key_kind: KeyKind::Time,
                ascending: false,
                soft_delete: false,
                name_column: None,
                status_column: "annotation_type",
            },
            ListName::WorkspaceExecutions => ListSpec {
                table: "execution_records",
                parent: "workspace_id",
                key: "created_at",
                key_kind: KeyKind::Time,
                ascending: false,
                soft_delete: false,
                name_column: None,
                status_column: "status",
            },
            ListName::WorkflowExecutions => ListSpec {
                parent: "workflow_id",
                ..ListName::WorkspaceExecutions.spec()
            },
            ListName::WorkflowVersions => ListSpec {
                table: "workflow_versions",
                parent: "workflow_id",
                key: "sequence_number",
                key_kind: KeyKind::Int,
                ascending: false,
                soft_delete: false,
                name_column: None,
                status_column: "status",
            },
        }
    }
}

/// How an application's API key or end-user token reaches the rows of a list, if at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AppScope {
    /// Rows carrying `application_id` and `end_user_id` (conversations).
    Direct,
    /// Rows carrying `application_id`, whose end user is their conversation's (messages).
    ThroughConversation,
}

impl ListName {
    fn app_scope(self) -> Option<AppScope> {
        match self {
            ListName::ApplicationConversations | ListName::EndUserConversations => {
                Some(AppScope::Direct)
            }
            ListName::ConversationMessages => Some(AppScope::ThroughConversation),
            _ => None,
        }
    }

    /// The column naming a row's application, for the `applicationId` filter.
    fn application_column(self) -> &'static str {
        match self {
            ListName::WorkspaceExecutions | ListName::WorkflowExecutions => {
                "triggered_by_application_id"
            }
            _ => "application_id",
        }
    }
}

/// One kind of child list.
#[derive(Debug, Clone, Copy)]
pub struct ListSpec {
    pub table: &'static str,
    pub parent: &'static str,
    pub key: &'static str,
    pub key_kind: KeyKind,
    /// Oldest (lowest key) first instead of newest first: the key is compared negated
    /// (cursors carry the negated key).
    pub ascending: bool,
    /// Whether rows with `deleted_at` set are hidden.
    pub soft_delete: bool,
    /// The column `nameContains` searches, if the list has one.
    pub name_column: Option<&'static str>,
    /// The column the `status` filter matches.
    pub status_column: &'static str,
}

impl ListSpec {
    /// Whether the key alone orders the rows of a parent: integer keys (sequence numbers,
    /// positions) are each under a UNIQUE constraint with their parent column, so the id
    /// does not break ties and the page reads the unique index as it is.
    pub fn key_is_unique(&self) -> bool {
        self.key_kind == KeyKind::Int
    }
}

/// Filters a list may be asked for (those that do not apply to it are ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ListFilter {
    pub name_contains: Option<String>,
    pub status: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    /// Rows of this application only (lists whose rows name one).
    pub application_id: Option<Uuid>,
    /// Rows with any of these statuses (empty: any status).
    pub statuses: Vec<String>,
    /// Rows of this workflow only (runs).
    pub workflow_id: Option<Uuid>,
    /// Rows of this end user only (conversations).
    pub end_user_id: Option<Uuid>,
}

/// A count per parent.
#[derive(QueryableByName)]
struct Counted {
    #[diesel(sql_type = SqlUuid)]
    parent: Uuid,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

const VISIBLE: &str = "t.workspace_id IN (SELECT w.id FROM workspaces w \
                       JOIN team_members m ON m.team_id = w.team_id WHERE m.user_id = $2)";

/// The condition keeping what the viewer may see of a list, with its binds from $2 on;
/// `None` when the viewer sees none of it.
fn visibility(list: ListName, viewer: &Viewer) -> Option<(String, Vec<Bind>)> {
    if let Some(user_id) = viewer.user() {
        return Some((VISIBLE.to_string(), vec![Bind::Id(user_id)]));
    }
    let scope = list.app_scope()?;
    let (application_id, workspace_id) = viewer.application()?;
    let mut sql = "t.workspace_id = $2 AND t.application_id = $3".to_string();
    let mut binds = vec![Bind::Id(workspace_id), Bind::Id(application_id)];
    if let Some(end_user_id) = viewer.end_user() {
        sql.push_str(match scope {
            AppScope::Direct => " AND t.end_user_id = $4",
            AppScope::ThroughConversation => {
                " AND t.conversation_id IN (SELECT c.id FROM conversations c \
                 WHERE c.end_user_id = $4 AND c.deleted_at IS NULL)"
            }
        });
        binds.push(Bind::Id(end_user_id));
    }
    Some((sql, binds))
}

/// The WHERE clause shared by pages and counts after the parent condition ($1), and its
/// binds from $2 on; `None` when the viewer sees none of the list.
fn conditions(list: ListName, viewer: &Viewer, filter: &ListFilter) -> Option<(String, Vec<Bind>)> {
    Some(filtered(list, visibility(list, viewer)?, filter))
}

/// `visible` (the condition keeping what the viewer may see, with its binds from $2 on) and
/// the filter's conditions after it.
fn filtered(
    list: ListName,
    (mut sql, mut binds): (String, Vec<Bind>),
    filter: &ListFilter,
) -> (String, Vec<Bind>) {
    let spec = list.spec();
    let mut n = 2 + binds.len();
    if spec.soft_delete {
        sql.push_str(" AND t.deleted_at IS NULL");
    }
    if let (Some(column), Some(text)) = (spec.name_column, &filter.name_contains) {
        sql.push_str(&format!(" AND t.{column} ILIKE ${n}"));
        binds.push(Bind::Text(contains_pattern(text)));
        n += 1;
    }
    if let Some(status) = &filter.status {
        sql.push_str(&format!(" AND t.{} = ${n}", spec.status_column));
        binds.push(Bind::Text(status.clone()));
        n += 1;
    }
    if let Some(after) = filter.created_after {
        sql.push_str(&format!(" AND t.created_at > ${n}"));
        binds.push(Bind::Time(after));
        n += 1;
    }
    if let Some(before) = filter.created_before {
        sql.push_str(&format!(" AND t.created_at < ${n}"));
        binds.push(Bind::Time(before));
        n += 1;
    }
    if let Some(application_id) = filter.application_id {
        sql.push_str(&format!(" AND t.{} = ${n}", list.application_column()));
        binds.push(Bind::Id(application_id));
        n += 1;
    }
    if !filter.statuses.is_empty() {
        sql.push_str(&format!(" AND t.{} = ANY(${n})", spec.status_column));
        binds.push(Bind::Texts(filter.statuses.clone()));
        n += 1;
    }
    if let Some(workflow_id) = filter.workflow_id {
        sql.push_str(&format!(" AND t.workflow_id = ${n}"));
        binds.push(Bind::Id(workflow_id));
        n += 1;
    }
    if let Some(end_user_id) = filter.end_user_id {
        sql.push_str(&format!(" AND t.end_user_id = ${n}"));
        binds.push(Bind::Id(end_user_id));
    }
    (sql, binds)
}

fn cursor_binds(spec: &ListSpec, key: i64, id: Uuid) -> [Bind; 2] {
    let key = match spec.key_kind {
        KeyKind::Time => Bind::Time(key_time(key)),
        KeyKind::Int => Bind::Int(i32::try_from(key).unwrap_or(i32::MAX)),
    };
    [key, Bind::Id(id)]
}

/// One page of each parent's list, newest first (or from the end with `last`): at most
/// `page.size + 1` rows of each parent, in no promised order (the loader orders them by
/// their cursors), each of `columns` (SQL over the row `t`, from the row type: `t.*`, some of
/// its columns, the columns of a relation `joins` joins to it).
pub async fn load_pages<Row>(
    conn: &mut AsyncPgConnection,
    list: ListName,
    parents: &[Uuid],
    viewer: &Viewer,
    (page, filter): (&Page, &ListFilter),
    (columns, joins): (&str, &str),
) -> AppResult<Vec<Row>>
where
    Row: QueryableByName<Pg> + Send + 'static,
{
    let Some(visible) = visibility(list, viewer) else {
        return Ok(Vec::new());
    };
    let (each_page, binds) = page_sql(list, visible, (page, filter), (columns, joins));
    // One index range scan per parent, stopped at the page size: the cost follows the page,
    // not the length of the lists.
    let sql =
        format!("SELECT t.* FROM unnest($1::uuid[]) AS p(id) CROSS JOIN LATERAL ({each_page}) t");
    let statement = Statement::new(sql)
        .bind(Bind::Ids(parents.to_vec()))
        .bind_all(binds);
    // Sized for full pages up front (bounded, for pages asked with large sizes): growing the
    // vector row by row showed in a chat history's profile.
    let expected = parents
        .len()
        .saturating_mul(usize::try_from(page.size).unwrap_or(0).saturating_add(1))
        .min(PRESIZED_ROWS);
    let rows = statement
        .load_stream::<Row>(conn)
        .await?
        .try_fold(Vec::with_capacity(expected), |mut rows, row| {
            rows.push(row);
            std::future::ready(Ok(rows))
        })
        .await?;
    Ok(rows)
}

/// The most rows [`load_pages`] makes room for before reading them.
const PRESIZED_ROWS: usize = 1024;

/// A row of [`load_workspace_page`]: the workspace's row as JSON text, the list's total when
/// it was counted, and one row of its page (`None` on the one row of a workspace whose page
/// is empty).
pub struct WithWorkspace<Row> {
    pub workspace: String,
    pub total: Option<i64>,
    pub row: Option<Row>,
}

impl<Row: QueryableByName<Pg>> QueryableByName<Pg> for WithWorkspace<Row> {
    fn build<'a>(row: &impl NamedRow<'a, Pg>) -> deserialize::Result<Self> {
        let workspace = NamedRow::get::<Text, String>(row, "workspace_row")?;
        let total = NamedRow::get::<Nullable<BigInt>, Option<i64>>(row, "list_total")?;
        // Every list row has an id; the left join leaves it null when the page is empty.
        let id = NamedRow::get::<Nullable<SqlUuid>, Option<Uuid>>(row, "id")?;
        let row = match id {
            Some(_) => Some(Row::build(row)?),
            None => None,
        };
        Ok(WithWorkspace {
            workspace,
            total,
            row,
        })
    }
}

/// A workspace the builder `user_id` can see, and one page of one of its lists, in one
/// statement (the workspace check and the page, which a query asking for a workspace's list
/// would otherwise send apart), with the list's total when `count` (as [`count`] counts it).
/// No rows: the builder cannot see the workspace (or it does not exist); one row without a
/// list row: the page is empty.
pub async fn load_workspace_page<Row>(
    conn: &mut AsyncPgConnection,
    list: ListName,
    (workspace_id, user_id): (Uuid, Uuid),
    (page, filter): (&Page, &ListFilter),
    (columns, joins): (&str, &str),
    count: bool,
) -> AppResult<Vec<WithWorkspace<Row>>>
where
    Row: QueryableByName<Pg> + Send + 'static,
{
    if list.spec().parent != "workspace_id" {
        return Err(AppError::internal(format!(
            "{list:?} is not a list of a workspace"
        )));
    }
    // The page is of the workspace row `p`, which the builder ($2) can see: every row of it
    // is one they may see, and the page needs no condition of its own for that.
    let visible = || ("TRUE".to_string(), vec![Bind::Id(user_id)]);
    let (each_page, binds) = page_sql(list, visible(), (page, filter), (columns, joins));
    // The count's conditions are the page's before its cursors: the same text and binds.
    let total = if count {
        let (counted, _) = filtered(list, visible(), filter);
        format!(
            "(SELECT count(*) FROM {table} t WHERE t.workspace_id = w.id AND {counted})",
            table = list.spec().table
        )
    } else {
        "NULL::int8".to_string()
    };
    // `OFFSET 0` keeps the workspace's subquery whole: pulled up into the join, its JSON
    // (and its count) were computed again for every row of the page.
    let sql = format!(
        "SELECT t.*, p.workspace_row, p.list_total FROM (SELECT w.id, \
         row_to_json(w)::text AS workspace_row, {total} AS list_total \
         FROM workspaces w WHERE w.id = $1 AND w.team_id IN \
         (SELECT m.team_id FROM team_members m WHERE m.user_id = $2) OFFSET 0) p \
         LEFT JOIN LATERAL ({each_page}) t ON true"
    );
    let statement = Statement::new(sql)
        .bind(Bind::Id(workspace_id))
        .bind_all(binds);
    Ok(statement.load::<WithWorkspace<Row>>(conn).await?)
}

/// The page of the parent `p.id` (`$1` holds the parents) of the rows `visible` keeps, and
/// its binds from `$2` on. At most `page.size + 1` rows, in no promised order: an outer sort
/// cost more than the pages, and the loader puts each parent's rows in list order.
fn page_sql(
    list: ListName,
    visible: (String, Vec<Bind>),
    (page, filter): (&Page, &ListFilter),
    (columns, joins): (&str, &str),
) -> (String, Vec<Bind>) {
    let spec = list.spec();
    let (mut sql_where, mut binds) = filtered(list, visible, filter);
    let mut n = 2 + binds.len();
    let key = if spec.ascending {
        format!("(-t.{})", spec.key)
    } else {
        format!("t.{}", spec.key)
    };
    if let Some((k, id)) = page.after {
        sql_where.push_str(&format!(" AND ({key}, t.id) < (${n}, ${})", n + 1));
        binds.extend(cursor_binds(&spec, k, id));
        n += 2;
    }
    if let Some((k, id)) = page.before {
        sql_where.push_str(&format!(" AND ({key}, t.id) > (${n}, ${})", n + 1));
        binds.extend(cursor_binds(&spec, k, id));
        n += 2;
    }
    let direction = if page.from_end { "ASC" } else { "DESC" };
    let order = if spec.key_is_unique() {
        format!("{key} {direction}")
    } else {
        format!("{key} {direction}, t.id {direction}")
    };
    let sql = format!(
        "SELECT {columns} FROM {table} t {joins} \
         WHERE t.{parent} = p.id AND {sql_where} ORDER BY {order} LIMIT ${n}",
        parent = spec.parent,
        table = spec.table,
    );
    binds.push(Bind::Int(i32::try_from(page.size + 1).unwrap_or(i32::MAX)));
    (sql, binds)
}

/// How many rows each parent's list holds with the filter applied.
pub async fn count(
    conn: &mut AsyncPgConnection,
    list: ListName,
    parents: &[Uuid],
    viewer: &Viewer,
    filter: &ListFilter,
) -> AppResult<Vec<(Uuid, i64)>> {
    let spec = list.spec();
    let Some((sql_where, binds)) = conditions(list, viewer, filter) else {
        return Ok(Vec::new());
    };
    // One parent (a workspace's own list, the usual case) is counted without grouping: the
    // grouped form sorts every counted row by its parent first.
    let sql = if parents.len() == 1 {
        format!(
            "SELECT ($1::uuid[])[1] AS parent, count(*) AS n FROM {table} t \
             WHERE t.{parent} = ($1::uuid[])[1] AND {sql_where}",
            parent = spec.parent,
            table = spec.table,
        )
    } else {
        format!(
            "SELECT t.{parent} AS parent, count(*) AS n FROM {table} t \
             WHERE t.{parent} = ANY($1) AND {sql_where} GROUP BY t.{parent}",
            parent = spec.parent,
            table = spec.table,
        )
    };
    let statement = Statement::new(sql)
        .bind(Bind::Ids(parents.to_vec()))
        .bind_all(binds);
    let rows: Vec<Counted> = statement.load(conn).await?;
    Ok(rows.into_iter().map(|c| (c.parent, c.n)).collect())
}
