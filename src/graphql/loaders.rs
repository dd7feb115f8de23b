//! DataLoaders: every relation is resolved in batches, one SQL statement per relation and
//! level of a query, whatever the number of rows. A loader is made per request for its
//! viewer, and every statement filters by what that viewer may see.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use async_graphql::dataloader::Loader;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::lists::{self, ListFilter, ListName};
use super::pagination::{Cursor, Page};
use super::viewer::Viewer;
use crate::auth::Role;
use crate::auth::permissions::{member_team_ids, visible_workspace_ids};
use crate::db::DbPool;
use crate::db::models::{
    ApiKey, Application, AuditLog, Connection, Conversation, Dataset, Document, DocumentSegment,
    EndUser, ExecutionRecord, FileReference, InstalledPlugin, LlmProvider, McpServer, Message,
    MessageAnnotation, MessageFeedback, Node, NodeExecutionResult, Organization, ParentSegment,
    Plugin, PromptTemplate, PromptTemplateVersion, RetrieverResource, Team, TeamInvitation,
    TeamMember, Workflow, WorkflowVersion, Workspace,
};
use crate::db::schema::{
    api_keys, applications, connections, conversations, dataset_application_joins, datasets,
    documents, end_users, execution_records, file_references, installed_plugins, llm_providers,
    mcp_servers, message_annotations, message_feedbacks, message_retriever_resources, messages,
    node_execution_results, nodes, organizations, parent_segments, plugins,
    prompt_template_versions, team_invitations, team_members, teams, users, workflow_versions,
    workflows, workspaces,
};
use crate::error::{AppError, AppResult};

/// The batch loader of one request.
pub struct DbLoader {
    pool: DbPool,
    viewer: Viewer,
    /// Pages read before they were asked for (with their workspace), each taken by the
    /// first load of its key.
    primed: Mutex<HashMap<PrimedKey, Box<dyn Any + Send>>>,
    /// Totals counted with such a page, each taken by the first load of its key.
    counted: Mutex<HashMap<CountOf, i64>>,
}

/// A primed page: its row type, list, parent, page and filter.
type PrimedKey = (TypeId, ListName, Uuid, Page, ListFilter);

impl DbLoader {
    pub fn new(pool: DbPool, viewer: Viewer) -> DbLoader {
        DbLoader {
            pool,
            viewer,
            primed: Mutex::new(HashMap::new()),
            counted: Mutex::new(HashMap::new()),
        }
    }

    /// The workspace `key.parent`, if the viewer can see it, read in one statement with the
    /// page `key` of one of its lists (and the list's total when `count`); the page (and
    /// total) is kept for the list's loader (and the count's), so the query that asked for
    /// them sends one statement where it would send two (or three).
    pub async fn workspace_with_page<R: ListRow>(
        &self,
        key: PageOf<R>,
        count: bool,
    ) -> AppResult<Option<Workspace>> {
        let Some(user_id) = self.viewer.user() else {
            return Ok(None);
        };
        let mut conn = self.pool.get().await?;
        let read: Vec<lists::WithWorkspace<R>> = lists::load_workspace_page(
            &mut conn,
            key.list,
            (key.parent, user_id),
            (&key.page, &key.filter),
            (R::COLUMNS, R::JOINS),
            count,
        )
        .await?;
        drop(conn);
        let Some(first) = <[_]>::first(&read) else {
            return Ok(None);
        };
        let workspace: Workspace = serde_json::from_str(&first.workspace).map_err(|e| {
            AppError::internal(format!("a joined workspace did not read back: {e}"))
        })?;
        if let Some(total) = first.total {
            let counted = CountOf {
                list: key.list,
                parent: key.parent,
                filter: key.filter.clone(),
            };
            self.counted
                .lock()
                .map_err(|_| AppError::internal("the counted totals' lock was poisoned"))?
                .insert(counted, total);
        }
        let mut rows: Vec<R> = read.into_iter().filter_map(|r| r.row).collect();
        in_list_order(&mut rows, &key.page);
        self.primed
            .lock()
            .map_err(|_| AppError::internal("the primed pages' lock was poisoned"))?
            .insert(key.primed_key(), Box::new(rows));
        Ok(Some(workspace))
    }

    /// The primed page of `key`, taken out.
    fn take_primed<R: ListRow>(&self, key: &PageOf<R>) -> Option<Vec<R>> {
        let mut primed = self.primed.lock().ok()?;
        if primed.is_empty() {
            return None;
        }
        let rows = primed.remove(&key.primed_key())?;
        rows.downcast::<Vec<R>>().ok().map(|rows| *rows)
    }
}

type LoadResult<K, V> = Result<HashMap<K, V>, Arc<AppError>>;

fn fail(e: impl Into<AppError>) -> Arc<AppError> {
    Arc::new(e.into())
}

macro_rules! key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub Uuid);
    };
}

key!(/// An organization the viewer belongs to.
    OrganizationById);
key!(/// A team the viewer belongs to.
    TeamById);
key!(/// A workspace the viewer can see.
    WorkspaceById);
key!(/// A user's public profile.
    UserProfileById);
key!(/// The viewer's teams in an organization.
    TeamsOfOrganization);
key!(/// The workspaces of a team of the viewer's.
    WorkspacesOfTeam);
key!(/// The members of a team of the viewer's.
    MembersOfTeam);
key!(/// The pending invitations of a team of the viewer's.
    PendingInvitationsOfTeam);
key!(/// The viewer's role in a team.
    ViewerRoleInTeam);
key!(/// The viewer's highest role in an organization's teams.
    ViewerRoleInOrganization);

/// What anyone sharing a team may see of a user.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct UserProfile {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub avatar_url: Option<String>,
}

fn ids<K: Copy>(keys: &[K], id: impl Fn(K) -> Uuid) -> Vec<Uuid> {
    keys.iter().map(|k| id(*k)).collect()
}

fn group<K: std::hash::Hash + Eq + Copy, V>(
    keys: &[K],
    rows: Vec<V>,
    key_of: impl Fn(&V) -> K,
) -> HashMap<K, Vec<V>> {
    let mut map: HashMap<K, Vec<V>> = keys.iter().map(|k| (*k, Vec::new())).collect();
    for row in rows {
        map.entry(key_of(&row)).or_default().push(row);
    }
    map
}

impl Loader<OrganizationById> for DbLoader {
    type Value = Organization;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[OrganizationById]) -> LoadResult<OrganizationById, Organization> {
        let Some(viewer) = self.viewer.user() else {
            return Ok(HashMap::new());
        };
        let mut conn = self.pool.get().await.map_err(fail)?;
        let rows: Vec<Organization> = organizations::table
            .filter(organizations::id.eq_any(ids(keys, |k| k.0)))
            .filter(
                organizations::id.eq_any(
                    teams::table
                        .filter(teams::id.eq_any(member_team_ids(viewer)))
                        .select(teams::organization_id),
                ),
            )
            .select(Organization::as_select())
            .load(&mut conn)
            .await
            .map_err(fail)?;
        Ok(rows
            .into_iter()
            .map(|o| (OrganizationById(o.id), o))
            .collect())
    }
}

impl Loader<TeamById> for DbLoader {
    type Value = Team;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[TeamById]) -> LoadResult<TeamById, Team> {
        let Some(viewer) = self.viewer.user() else {
            return Ok(HashMap::new());
        };
        let mut conn = self.pool.get().await.map_err(fail)?;
        let rows: Vec<Team> = teams::table
            .filter(teams::id.eq_any(ids(keys, |k| k.0)))
            .filter(teams::id.eq_any(member_team_ids(viewer)))
            .select(Team::as_select())
            .load(&mut conn)
            .await
            .map_err(fail)?;
        Ok(rows.into_iter().map(|t| (TeamById(t.id), t)).collect())
    }
}

impl Loader<WorkspaceById> for DbLoader {
    type Value = Workspace;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[WorkspaceById]) -> LoadResult<WorkspaceById, Workspace> {
        let Some(viewer) = self.viewer.user() else {
            return Ok(HashMap::new());
        };
        let mut conn = self.pool.get().await.map_err(fail)?;
        let rows: Vec<Workspace> = workspaces::table
            .filter(workspaces::id.eq_any(ids(keys, |k| k.0)))
            .filter(workspaces::team_id.eq_any(member_team_ids(viewer)))
            .select(Workspace::as_select())
            .load(&mut conn)
            .await
            .map_err(fail)?;
        Ok(rows.into_iter().map(|w| (WorkspaceById(w.id), w)).collect())
    }
}

impl Loader<UserProfileById> for DbLoader {
    type Value = UserProfile;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[UserProfileById]) -> LoadResult<UserProfileById, UserProfile> {
        let mut conn = self.pool.get().await.map_err(fail)?;
        let rows: Vec<UserProfile> = users::table
            .filter(users::id.eq_any(ids(keys, |k| k.0)))
            .select(UserProfile::as_select())
            .load(&mut conn)
            .await
            .map_err(fail)?;
        Ok(rows
            .into_iter()
            .map(|u| (UserProfileById(u.id), u))
            .collect())
    }
}

impl Loader<TeamsOfOrganization> for DbLoader {
    type Value = Vec<Team>;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[TeamsOfOrganization],
    ) -> LoadResult<TeamsOfOrganization, Vec<Team>> {
        let Some(viewer) = self.viewer.user() else {
            return Ok(HashMap::new());
        };
        let mut conn = self.pool.get().await.map_err(fail)?;
        let rows: Vec<Team> = teams::table
            .filter(teams::organization_id.eq_any(ids(keys, |k| k.0)))
            .filter(teams::id.eq_any(member_team_ids(viewer)))
            .order((teams::created_at.asc(), teams::id.asc()))
            .select(Team::as_select())
            .load(&mut conn)
            .await
            .map_err(fail)?;
        Ok(group(keys, rows, |t| {
            TeamsOfOrganization(t.organization_id)
        }))
    }
}

impl Loader<WorkspacesOfTeam> for DbLoader {
    type Value = Vec<Workspace>;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[WorkspacesOfTeam],
    ) -> LoadResult<WorkspacesOfTeam, Vec<Workspace>> {
        let Some(viewer) = self.viewer.user() else {
            return Ok(HashMap::new());
        };
        let mut conn = self.pool.get().await.map_err(fail)?;
        let rows: Vec<Workspace> = workspaces::table
            .filter(workspaces::team_id.eq_any(ids(keys, |k| k.0)))
            .filter(workspaces::team_id.eq_any(member_team_ids(viewer)))
            .order((workspaces::created_at.asc(), workspaces::id.asc()))
            .select(Workspace::as_select())
            .load(&mut conn)
            .await
            .map_err(fail)?;
        Ok(group(keys, rows, |w| WorkspacesOfTeam(w.team_id)))
    }
}

impl Loader<MembersOfTeam> for DbLoader {
    type Value = Vec<TeamMember>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[MembersOfTeam]) -> LoadResult<MembersOfTeam, Vec<TeamMember>> {
        let Some(viewer) = self.viewer.user() else {
            return Ok(HashMap::new());
        };
        let mut conn = self.pool.get().await.map_err(fail)?;
        let viewer_teams = diesel::alias!(team_members as viewer_teams);
        let rows: Vec<TeamMember> = team_members::table
            .filter(team_members::team_id.eq_any(ids(keys, |k| k.0)))
            .filter(
                team_members::team_id.eq_any(
                    viewer_teams
                        .filter(viewer_teams.field(team_members::user_id).eq(viewer))
                        .select(viewer_teams.field(team_members::team_id)),
                ),
            )
            .order((team_members::created_at.asc(), team_members::id.asc()))
            .select(TeamMember::as_select())
            .load(&mut conn)
            .await
            .map_err(fail)?;
        Ok(group(keys, rows, |m| MembersOfTeam(m.team_id)))
    }
}

impl Loader<PendingInvitationsOfTeam> for DbLoader {
    type Value = Vec<TeamInvitation>;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[PendingInvitationsOfTeam],
    ) -> LoadResult<PendingInvitationsOfTeam, Vec<TeamInvitation>> {
        let Some(viewer) = self.viewer.user() else {
            return Ok(HashMap::new());
        };
        let mut conn = self.pool.get().await.map_err(fail)?;
        // Only teams where the viewer manages members.
        let managed = team_members::table
            .filter(team_members::user_id.eq(viewer))
            .filter(team_members::role.eq_any([Role::Owner.as_str(), Role::Admin.as_str()]))
            .select(team_members::team_id);
        let rows: Vec<TeamInvitation> = team_invitations::table
            .filter(team_invitations::team_id.eq_any(ids(keys, |k| k.0)))
            .filter(team_invitations::team_id.eq_any(managed))
            .filter(team_invitations::accepted_at.is_null())
            .filter(team_invitations::revoked_at.is_null())
            .filter(team_invitations::expires_at.gt(chrono::Utc::now()))
            .order(team_invitations::created_at.desc())
            .select(TeamInvitation::as_select())
            .load(&mut conn)
            .await
            .map_err(fail)?;
        Ok(group(keys, rows, |i| PendingInvitationsOfTeam(i.team_id)))
    }
}

impl Loader<ViewerRoleInTeam> for DbLoader {
    type Value = Role;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[ViewerRoleInTeam]) -> LoadResult<ViewerRoleInTeam, Role> {
        let Some(viewer) = self.viewer.user() else {
            return Ok(HashMap::new());
        };
        let mut conn = self.pool.get().await.map_err(fail)?;
        let rows: Vec<(Uuid, String)> = team_members::table
            .filter(team_members::team_id.eq_any(ids(keys, |k| k.0)))
            .filter(team_members::user_id.eq(viewer))
            .select((team_members::team_id, team_members::role))
            .load(&mut conn)
            .await
            .map_err(fail)?;
        Ok(rows
            .into_iter()
            .filter_map(|(team, role)| Some((ViewerRoleInTeam(team), Role::parse(&role)?)))
            .collect())
    }
}

impl Loader<ViewerRoleInOrganization> for DbLoader {
    type Value = Role;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[ViewerRoleInOrganization],
    ) -> LoadResult<ViewerRoleInOrganization, Role> {
        let Some(viewer) = self.viewer.user() else {
            return Ok(HashMap::new());
        };
        let mut conn = self.pool.get().await.map_err(fail)?;
        let rows: Vec<(Uuid, String)> = team_members::table
            .inner_join(teams::table)
            .filter(teams::organization_id.eq_any(ids(keys, |k| k.0)))
            .filter(team_members::user_id.eq(viewer))
            .select((teams::organization_id, team_members::role))
            .load(&mut conn)
            .await
            .map_err(fail)?;
        let mut best: HashMap<ViewerRoleInOrganization, Role> = HashMap::new();
        for (organization, role) in rows {
            if let Some(role) = Role::parse(&role) {
                let entry = best
                    .entry(ViewerRoleInOrganization(organization))
                    .or_insert(role);
                *entry = (*entry).max(role);
            }
        }
        Ok(best)
    }
}

/// A row of a child list: the parent it is listed under, and its place in the list's order.
pub trait ListRow: QueryableByName<Pg> + Clone + Send + Sync + 'static {
    /// The columns the page's statement reads over the row `t`: all of them, or some, and
    /// a joined relation beside them.
    const COLUMNS: &'static str = "t.*";
    /// The relations `COLUMNS` reads beside the row, joined to `t` (`LEFT JOIN ...`).
    const JOINS: &'static str = "";
    fn parent(&self, list: ListName) -> Uuid;
    fn cursor(&self) -> Cursor;
}

/// A page of a child list of one parent: the loader key of every child list (`R`, the row).
pub struct PageOf<R> {
    pub list: ListName,
    pub parent: Uuid,
    pub page: Page,
    pub filter: ListFilter,
    row: PhantomData<fn() -> R>,
}

impl<R> PageOf<R> {
    pub fn new(list: ListName, parent: Uuid, page: Page, filter: ListFilter) -> PageOf<R> {
        PageOf {
            list,
            parent,
            page,
            filter,
            row: PhantomData,
        }
    }

    fn group(&self) -> (ListName, Page, ListFilter) {
        (self.list, self.page, self.filter.clone())
    }
}

impl<R: 'static> PageOf<R> {
    fn primed_key(&self) -> PrimedKey {
        (
            TypeId::of::<R>(),
            self.list,
            self.parent,
            self.page,
            self.filter.clone(),
        )
    }
}

impl<R> Clone for PageOf<R> {
    fn clone(&self) -> Self {
        PageOf::new(self.list, self.parent, self.page, self.filter.clone())
    }
}

impl<R> PartialEq for PageOf<R> {
    fn eq(&self, other: &Self) -> bool {
        (self.parent, self.group()) == (other.parent, other.group())
    }
}

impl<R> Eq for PageOf<R> {}

impl<R> std::hash::Hash for PageOf<R> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.list, self.parent, self.page, &self.filter).hash(state);
    }
}

/// A page's rows are shared, not copied, on their way out of the loader: async-graphql's
/// `DataLoader` hands each caller a clone of the value, and a page of messages copied row
/// by row cost about 5% of a chat history's server time (`pages::child_rows` takes the rows
/// back out).
impl<R: ListRow> Loader<PageOf<R>> for DbLoader {
    type Value = Arc<Vec<R>>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[PageOf<R>]) -> LoadResult<PageOf<R>, Arc<Vec<R>>> {
        if self.viewer == Viewer::Nobody {
            return Ok(HashMap::new());
        }
        let mut out = HashMap::new();
        // One statement per list, page and filter; all parents share it.
        let mut groups: HashMap<(ListName, Page, ListFilter), Vec<Uuid>> = HashMap::new();
        for key in keys {
            match self.take_primed(key) {
                Some(rows) => {
                    out.insert(key.clone(), Arc::new(rows));
                }
                None => groups.entry(key.group()).or_default().push(key.parent),
            }
        }
        if groups.is_empty() {
            return Ok(out);
        }
        let mut conn = self.pool.get().await.map_err(fail)?;
        for ((list, page, filter), parents) in groups {
            let rows: Vec<R> = lists::load_pages(
                &mut conn,
                list,
                &parents,
                &self.viewer,
                (&page, &filter),
                (R::COLUMNS, R::JOINS),
            )
            .await
            .map_err(fail)?;
            // Each parent's vector sized from its count of rows, not grown row by row.
            let mut counts: HashMap<Uuid, usize> = parents.iter().map(|p| (*p, 0)).collect();
            for row in &rows {
                *counts.entry(row.parent(list)).or_default() += 1;
            }
            let mut by_parent: HashMap<Uuid, Vec<R>> = counts
                .into_iter()
                .map(|(parent, count)| (parent, Vec::with_capacity(count)))
                .collect();
            for row in rows {
                by_parent.entry(row.parent(list)).or_default().push(row);
            }
            for (parent, mut rows) in by_parent {
                in_list_order(&mut rows, &page);
                out.insert(
                    PageOf::new(list, parent, page, filter.clone()),
                    Arc::new(rows),
                );
            }
        }
        Ok(out)
    }
}

/// Puts one parent's rows of a page in list order: cursors descending (as the list reads),
/// ascending when the page is taken from the end (`connection` turns those round).
fn in_list_order<R: ListRow>(rows: &mut [R], page: &Page) {
    let position = |row: &R| {
        let cursor = row.cursor();
        (cursor.key, cursor.id)
    };
    if page.from_end {
        rows.sort_by_key(position);
    } else {
        rows.sort_by_key(|row| std::cmp::Reverse(position(row)));
    }
}

/// Rows listed by creation time, under their workspace.
macro_rules! workspace_rows {
    ($($row:ty),*) => {$(
        impl ListRow for $row {
            fn parent(&self, _: ListName) -> Uuid {
                self.workspace_id
            }
            fn cursor(&self) -> Cursor {
                Cursor::at(self.created_at, self.id)
            }
        }
    )*};
}

workspace_rows!(
    Workflow,
    Application,
    EndUser,
    PromptTemplate,
    Dataset,
    FileReference
);

impl ListRow for WorkflowVersion {
    fn parent(&self, _: ListName) -> Uuid {
        self.workflow_id
    }
    fn cursor(&self) -> Cursor {
        Cursor {
            key: i64::from(self.sequence_number),
            id: self.id,
        }
    }
}

impl ListRow for Conversation {
    fn parent(&self, list: ListName) -> Uuid {
        match list {
            ListName::ApplicationConversations => self.application_id,
            ListName::EndUserConversations => self.end_user_id.unwrap_or_default(),
            _ => self.workspace_id,
        }
    }
    /// Most recently active first.
    fn cursor(&self) -> Cursor {
        Cursor::at(self.updated_at, self.id)
    }
}

impl ListRow for AuditLog {
    fn parent(&self, _: ListName) -> Uuid {
        self.workspace_id.unwrap_or_default()
    }
    fn cursor(&self) -> Cursor {
        Cursor::at(self.created_at, self.id)
    }
}

impl ListRow for Document {
    fn parent(&self, _: ListName) -> Uuid {
        self.dataset_id
    }
    fn cursor(&self) -> Cursor {
        Cursor::at(self.created_at, self.id)
    }
}

impl ListRow for DocumentSegment {
    fn parent(&self, _: ListName) -> Uuid {
        self.document_id
    }
    /// In order: the list reads positions ascending, as descending negated keys.
    fn cursor(&self) -> Cursor {
        Cursor {
            key: -i64::from(self.position),
            id: self.id,
        }
    }
}

impl ListRow for MessageAnnotation {
    fn parent(&self, _: ListName) -> Uuid {
        self.application_id
    }
    fn cursor(&self) -> Cursor {
        Cursor::at(self.created_at, self.id)
    }
}

impl ListRow for MessageFeedback {
    fn parent(&self, _: ListName) -> Uuid {
        self.application_id
    }
    fn cursor(&self) -> Cursor {
        Cursor::at(self.created_at, self.id)
    }
}

impl ListRow for ExecutionRecord {
    fn parent(&self, list: ListName) -> Uuid {
        match list {
            ListName::WorkflowExecutions => self.workflow_id,
            _ => self.workspace_id,
        }
    }
    fn cursor(&self) -> Cursor {
        Cursor::at(self.created_at, self.id)
    }
}

impl ListRow for InstalledPlugin {
    fn parent(&self, _: ListName) -> Uuid {
        self.workspace_id
    }
    fn cursor(&self) -> Cursor {
        Cursor::at(self.installed_at, self.id)
    }
}

/// The size of a child list of one parent, with a filter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CountOf {
    pub list: ListName,
    pub parent: Uuid,
    pub filter: ListFilter,
}

impl Loader<CountOf> for DbLoader {
    type Value = i64;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[CountOf]) -> LoadResult<CountOf, i64> {
        if self.viewer == Viewer::Nobody {
            return Ok(HashMap::new());
        }
        let mut out = HashMap::new();
        // Totals counted with their page are taken as they are.
        let keys: Vec<&CountOf> = {
            let mut counted = self
                .counted
                .lock()
                .map_err(|_| fail(AppError::internal("the counted totals' lock was poisoned")))?;
            keys.iter()
                .filter(|key| match counted.remove(*key) {
                    Some(total) => {
                        out.insert((*key).clone(), total);
                        false
                    }
                    None => true,
                })
                .collect()
        };
        if keys.is_empty() {
            return Ok(out);
        }
        let mut conn = self.pool.get().await.map_err(fail)?;
        let mut groups: HashMap<(ListName, ListFilter), Vec<Uuid>> = HashMap::new();
        for key in keys {
            groups
                .entry((key.list, key.filter.clone()))
                .or_default()
                .push(key.parent);
        }
        for ((list, filter), parents) in groups {
            let counted = lists::count(&mut conn, list, &parents, &self.viewer, &filter)
                .await
                .map_err(fail)?;
            for parent in parents {
                out.insert(
                    CountOf {
                        list,
                        parent,
                        filter: filter.clone(),
                    },
                    0,
                );
            }
            for (parent, n) in counted {
                out.insert(
                    CountOf {
                        list,
                        parent,
                        filter: filter.clone(),
                    },
                    n,
                );
            }
        }
        Ok(out)
    }
}

key!(/// A workflow the viewer can see (not deleted).
    WorkflowById);
key!(/// The current version of a workflow.
    CurrentVersionOf);
key!(/// A workflow version the viewer can see.
    VersionById);
key!(/// The nodes of a workflow version.
    NodesOfVersion);
key!(/// The connections of a workflow version.
    ConnectionsOfVersion);

impl Loader<WorkflowById> for DbLoader {
    type Value = Workflow;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[WorkflowById]) -> LoadResult<WorkflowById, Workflow> {
        let Some(viewer) = self.viewer.user() else {
            return Ok(HashMap::new());
        };
        let mut conn = self.pool.get().await.map_err(fail)?;
        let rows: Vec<Workflow> = workflows::table
            .filter(workflows::id.eq_any(ids(keys, |k| k.0)))
            .filter(workflows::deleted_at.is_null())
            .filter(workflows::workspace_id.eq_any(visible_workspace_ids(viewer)))
            .select(Workflow::as_select())
            .load(&mut conn)
            .await
            .map_err(fail)?;
        Ok(rows.into_iter().map(|w| (WorkflowById(w.id), w)).collect())
    }
}

impl Loader<CurrentVersionOf> for DbLoader {
    type Value = WorkflowVersion;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[CurrentVersionOf],
    ) -> LoadResult<CurrentVersionOf, WorkflowVersion> {
        let Some(viewer) = self.viewer.user() else {
            return Ok(HashMap::new());
        };
        let mut conn = self.pool.get().await.map_err(fail)?;
        let rows: Vec<WorkflowVersion> = workflow_versions::table
            .filter(workflow_versions::workflow_id.eq_any(ids(keys, |k| k.0)))
            .filter(workflow_versions::is_current.eq(true))
            .filter(workflow_versions::workspace_id.eq_any(visible_workspace_ids(viewer)))
            .select(WorkflowVersion::as_select())
            .load(&mut conn)
            .await
            .map_err(fail)?;
        Ok(rows
            .into_iter()
            .map(|v| (CurrentVersionOf(v.workflow_id), v))
            .collect())
    }
}

impl Loader<VersionById> for DbLoader {
    type Value = WorkflowVersion;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[VersionById]) -> LoadResult<VersionById, WorkflowVersion> {
        let Some(viewer) = self.viewer.user() else {
            return Ok(HashMap::new());
        };
        let mut conn = self.pool.get().await.map_err(fail)?;
        let rows: Vec<WorkflowVersion> = workflow_versions::table
            .filter(workflow_versions::id.eq_any(ids(keys, |k| k.0)))
            .filter(workflow_versions::workspace_id.eq_any(visible_workspace_ids(viewer)))
            .select(WorkflowVersion::as_select())
            .load(&mut conn)
            .await
            .map_err(fail)?;
        Ok(rows.into_iter().map(|v| (VersionById(v.id), v)).collect())
    }
}

impl Loader<NodesOfVersion> for DbLoader {
    type Value = Vec<Node>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[NodesOfVersion]) -> LoadResult<NodesOfVersion, Vec<Node>> {
        let Some(viewer) = self.viewer.user() else {
            return Ok(HashMap::new());
        };
        let mut conn = self.pool.get().await.map_err(fail)?;
        let rows: Vec<Node> = nodes::table
            .filter(nodes::version_id.eq_any(ids(keys, |k| k.0)))
            .filter(nodes::workspace_id.eq_any(visible_workspace_ids(viewer)))
            .order(nodes::node_key.asc())
            .select(Node::as_select())
            .load(&mut conn)
            .await
            .map_err(fail)?;
        Ok(group(keys, rows, |n| NodesOfVersion(n.version_id)))
    }
}

impl Loader<ConnectionsOfVersion> for DbLoader {
    type Value = Vec<Connection>;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[ConnectionsOfVersion],
    ) -> LoadResult<ConnectionsOfVersion, Vec<Connection>> {
        let Some(viewer) = self.viewer.user() else {
            return Ok(HashMap::new());
        };
        let mut conn = self.pool.get().await.map_err(fail)?;
        let rows: Vec<Connection> = connections::table
            .filter(connections::version_id.eq_any(ids(keys, |k| k.0)))
            .filter(connections::workspace_id.eq_any(visible_workspace_ids(viewer)))
            .order((
                connections::source_node_key.asc(),
                connections::target_node_key.asc(),
            ))
            .select(Connection::as_select())
            .load(&mut conn)
            .await
            .map_err(fail)?;
        Ok(group(keys, rows, |c| ConnectionsOfVersion(c.version_id)))
    }
}

/// A by-id loader of a tenant-owned table, filtered by the viewer's workspaces (and, for
/// soft-deletable tables, by `deleted_at IS NULL`).
macro_rules! by_id_loader {
    ($(#[$doc:meta])* $key:ident, $row:ty, $table:ident $(, $deleted:ident)?) => {
        key!($(#[$doc])* $key);

        impl Loader<$key> for DbLoader {
            type Value = $row;
            type Error = Arc<AppError>;

            async fn load(&self, keys: &[$key]) -> LoadResult<$key, $row> {
                let Some(viewer) = self.viewer.user() else { return Ok(HashMap::new()) };
                let mut conn = self.pool.get().await.map_err(fail)?;
                let query = $table::table
                    .filter($table::id.eq_any(ids(keys, |k| k.0)))
                    .filter($table::workspace_id.eq_any(visible_workspace_ids(viewer)))
                    $(.filter($table::$deleted.is_null()))?;
                let rows: Vec<$row> = query.select(<$row>::as_select()).load(&mut conn).await.map_err(fail)?;
                Ok(rows.into_iter().map(|r| ($key(r.id), r)).collect())
            }
        }
    };
}

by_id_loader!(/// A workflow run the viewer can see.
    ExecutionRecordById, ExecutionRecord, execution_records);

key!(/// The reply a run produced (a chat run's assistant message), for a builder.
    MessageOfExecution);

impl Loader<MessageOfExecution> for DbLoader {
    type Value = Message;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[MessageOfExecution]) -> LoadResult<MessageOfExecution, Message> {
        let Some(viewer) = self.viewer.user() else {
            return Ok(HashMap::new());
        };
        let mut conn = self.pool.get().await.map_err(fail)?;
        let rows: Vec<Message> = messages::table
            .filter(messages::execution_id.eq_any(ids(keys, |k| k.0)))
            .filter(messages::role.eq("ASSISTANT"))
            .filter(messages::workspace_id.eq_any(visible_workspace_ids(viewer)))
            .select(Message::as_select())
            .load(&mut conn)
            .await
            .map_err(fail)?;
        Ok(rows
            .into_iter()
            .filter_map(|m| Some((MessageOfExecution(m.execution_id?), m)))
            .collect())
    }
}

/// A small child list of a tenant-owned table, filtered by the viewer's workspaces.
macro_rules! children_loader {
    ($(#[$doc:meta])* $key:ident, $row:ty, $table:ident, $parent:ident, $order:expr) => {
        key!($(#[$doc])* $key);

        impl Loader<$key> for DbLoader {
            type Value = Vec<$row>;
            type Error = Arc<AppError>;

            async fn load(&self, keys: &[$key]) -> LoadResult<$key, Vec<$row>> {
                let Some(viewer) = self.viewer.user() else { return Ok(HashMap::new()) };
                let mut conn = self.pool.get().await.map_err(fail)?;
                let rows: Vec<$row> = $table::table
                    .filter($table::$parent.eq_any(ids(keys, |k| k.0)))
                    .filter($table::workspace_id.eq_any(visible_workspace_ids(viewer)))
                    .order($order)
                    .select(<$row>::as_select())
                    .load(&mut conn)
                    .await
                    .map_err(fail)?;
                Ok(group(keys, rows, |r| $key(ParentId::parent_id(&r.$parent))))
            }
        }
    };
}

/// A child row's parent column, required or (rows matched by it are never NULL) optional.
trait ParentId {
    fn parent_id(&self) -> Uuid;
}

impl ParentId for Uuid {
    fn parent_id(&self) -> Uuid {
        *self
    }
}

impl ParentId for Option<Uuid> {
    fn parent_id(&self) -> Uuid {
        self.unwrap_or_default()
    }
}

children_loader!(/// The results of a run's nodes, in the order they started.
    NodeResultsOfExecution, NodeExecutionResult, node_execution_results, execution_id,
    (node_execution_results::sequence_index.asc(), node_execution_results::id.asc()));
children_loader!(/// The annotations of a message.
    AnnotationsOfMessage, MessageAnnotation, message_annotations, message_id,
    (message_annotations::created_at.asc(), message_annotations::id.asc()));
children_loader!(/// The API keys of an application.
    ApiKeysOfApplication, ApiKey, api_keys, application_id,
    (api_keys::created_at.desc(), api_keys::id.desc()));
children_loader!(/// The model providers of a workspace.
    ProvidersOfWorkspace, LlmProvider, llm_providers, workspace_id,
    (llm_providers::name.asc(), llm_providers::id.asc()));
by_id_loader!(/// A model provider the viewer can see.
    ProviderById, LlmProvider, llm_providers);
children_loader!(/// The MCP servers of a workspace.
    McpServersOfWorkspace, McpServer, mcp_servers, workspace_id,
    (mcp_servers::name.asc(), mcp_servers::id.asc()));
children_loader!(/// The versions of a prompt template, newest first.
    VersionsOfPromptTemplate, PromptTemplateVersion, prompt_template_versions, prompt_template_id,
    (prompt_template_versions::version_number.desc(), prompt_template_versions::id.desc()));
by_id_loader!(/// A dataset the viewer can see.
    DatasetById, Dataset, datasets, deleted_at);
by_id_loader!(/// A document the viewer can see.
    DocumentById, Document, documents, deleted_at);

key!(/// The datasets an application retrieves from.
    DatasetsOfApplication);

impl Loader<DatasetsOfApplication> for DbLoader {
    type Value = Vec<Dataset>;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[DatasetsOfApplication],
    ) -> LoadResult<DatasetsOfApplication, Vec<Dataset>> {
        let Some(viewer) = self.viewer.user() else {
            return Ok(HashMap::new());
        };
        let mut conn = self.pool.get().await.map_err(fail)?;
        let rows: Vec<(Uuid, Dataset)> = dataset_application_joins::table
            .inner_join(datasets::table)
            .filter(dataset_application_joins::application_id.eq_any(ids(keys, |k| k.0)))
            .filter(datasets::deleted_at.is_null())
            .filter(dataset_application_joins::workspace_id.eq_any(visible_workspace_ids(viewer)))
            .order((datasets::name.asc(), datasets::id.asc()))
            .select((
                dataset_application_joins::application_id,
                Dataset::as_select(),
            ))
            .load(&mut conn)
            .await
            .map_err(fail)?;
        let mut map: HashMap<DatasetsOfApplication, Vec<Dataset>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for (application, dataset) in rows {
            map.entry(DatasetsOfApplication(application))
                .or_default()
                .push(dataset);
        }
        Ok(map)
    }
}

by_id_loader!(/// A file the viewer can see.
    FileById, FileReference, file_references);

by_id_loader!(/// The parent segment of a child segment the viewer can see.
    ParentSegmentById, ParentSegment, parent_segments);

key!(/// A plugin of the catalogue (the catalogue is the same for everyone).
    PluginById);

impl Loader<PluginById> for DbLoader {
    type Value = Plugin;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[PluginById]) -> LoadResult<PluginById, Plugin> {
        let mut conn = self.pool.get().await.map_err(fail)?;
        let rows: Vec<Plugin> = plugins::table
            .filter(plugins::id.eq_any(ids(keys, |k| k.0)))
            .select(Plugin::as_select())
            .load(&mut conn)
            .await
            .map_err(fail)?;
        Ok(rows.into_iter().map(|p| (PluginById(p.id), p)).collect())
    }
}

/// A plugin's installation in a workspace the viewer can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InstallationOfPlugin {
    pub plugin: Uuid,
    pub workspace: Uuid,
}

impl Loader<InstallationOfPlugin> for DbLoader {
    type Value = InstalledPlugin;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[InstallationOfPlugin],
    ) -> LoadResult<InstallationOfPlugin, InstalledPlugin> {
        let Some(viewer) = self.viewer.user() else {
            return Ok(HashMap::new());
        };
        let mut conn = self.pool.get().await.map_err(fail)?;
        let rows: Vec<InstalledPlugin> = installed_plugins::table
            .filter(installed_plugins::plugin_id.eq_any(ids(keys, |k| k.plugin)))
            .filter(installed_plugins::workspace_id.eq_any(ids(keys, |k| k.workspace)))
            .filter(installed_plugins::workspace_id.eq_any(visible_workspace_ids(viewer)))
            .select(InstalledPlugin::as_select())
            .load(&mut conn)
            .await
            .map_err(fail)?;
        Ok(rows
            .into_iter()
            .map(|p| {
                let key = InstallationOfPlugin {
                    plugin: p.plugin_id,
                    workspace: p.workspace_id,
                };
                (key, p)
            })
            .collect())
    }
}

// What an application's API key or end user reads as well as builders: its application,
// its conversations, their messages, feedback, end users and the segments replies used.
// Each statement keeps the viewer's rows in SQL (see `Viewer`).

key!(/// An application the viewer can see (an API key or end user: its own).
    ApplicationById);
key!(/// A conversation the viewer can see.
    ConversationById);
key!(/// A message the viewer can see.
    MessageById);
key!(/// An end user the viewer can see.
    EndUserById);
key!(/// The feedback on a message.
    FeedbacksOfMessage);
key!(/// The segments a reply used, in the order they were given.
    RetrieverResourcesOfMessage);

impl Loader<ApplicationById> for DbLoader {
    type Value = Application;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[ApplicationById]) -> LoadResult<ApplicationById, Application> {
        let query = applications::table
            .filter(applications::id.eq_any(ids(keys, |k| k.0)))
            .filter(applications::deleted_at.is_null())
            .select(Application::as_select())
            .into_boxed();
        let query = match (self.viewer.user(), self.viewer.application()) {
            (Some(user), _) => {
                query.filter(applications::workspace_id.eq_any(visible_workspace_ids(user)))
            }
            (None, Some((application_id, workspace_id))) => query
                .filter(applications::id.eq(application_id))
                .filter(applications::workspace_id.eq(workspace_id)),
            (None, None) => return Ok(HashMap::new()),
        };
        let mut conn = self.pool.get().await.map_err(fail)?;
        let rows: Vec<Application> = query.load(&mut conn).await.map_err(fail)?;
        Ok(rows
            .into_iter()
            .map(|r| (ApplicationById(r.id), r))
            .collect())
    }
}

impl Loader<ConversationById> for DbLoader {
    type Value = Conversation;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[ConversationById]) -> LoadResult<ConversationById, Conversation> {
        let query = conversations::table
            .filter(conversations::id.eq_any(ids(keys, |k| k.0)))
            .filter(conversations::deleted_at.is_null())
            .select(Conversation::as_select())
            .into_boxed();
        let query = match self.viewer {
            Viewer::User(user) => {
                query.filter(conversations::workspace_id.eq_any(visible_workspace_ids(user)))
            }
            Viewer::Application {
                application_id,
                workspace_id,
            } => query
                .filter(conversations::workspace_id.eq(workspace_id))
                .filter(conversations::application_id.eq(application_id)),
            Viewer::EndUser {
                application_id,
                workspace_id,
                end_user_id,
            } => query
                .filter(conversations::workspace_id.eq(workspace_id))
                .filter(conversations::application_id.eq(application_id))
                .filter(conversations::end_user_id.eq(end_user_id)),
            Viewer::Nobody => return Ok(HashMap::new()),
        };
        let mut conn = self.pool.get().await.map_err(fail)?;
        let rows: Vec<Conversation> = query.load(&mut conn).await.map_err(fail)?;
        Ok(rows
            .into_iter()
            .map(|r| (ConversationById(r.id), r))
            .collect())
    }
}

impl Loader<MessageById> for DbLoader {
    type Value = Message;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[MessageById]) -> LoadResult<MessageById, Message> {
        let query = messages::table
            .filter(messages::id.eq_any(ids(keys, |k| k.0)))
            .select(Message::as_select())
            .into_boxed();
        let live = conversations::table.filter(conversations::deleted_at.is_null());
        let query = match self.viewer {
            Viewer::User(user) => {
                query.filter(messages::workspace_id.eq_any(visible_workspace_ids(user)))
            }
            Viewer::Application {
                application_id,
                workspace_id,
            } => query
                .filter(messages::workspace_id.eq(workspace_id))
                .filter(messages::application_id.eq(application_id))
                .filter(messages::conversation_id.eq_any(live.select(conversations::id))),
            Viewer::EndUser {
                application_id,
                workspace_id,
                end_user_id,
            } => query
                .filter(messages::workspace_id.eq(workspace_id))
                .filter(messages::application_id.eq(application_id))
                .filter(
                    messages::conversation_id.eq_any(
                        live.filter(conversations::end_user_id.eq(end_user_id))
                            .select(conversations::id),
                    ),
                ),
            Viewer::Nobody => return Ok(HashMap::new()),
        };
        let mut conn = self.pool.get().await.map_err(fail)?;
        let rows: Vec<Message> = query.load(&mut conn).await.map_err(fail)?;
        Ok(rows.into_iter().map(|r| (MessageById(r.id), r)).collect())
    }
}

impl Loader<EndUserById> for DbLoader {
    type Value = EndUser;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[EndUserById]) -> LoadResult<EndUserById, EndUser> {
        let query = end_users::table
            .filter(end_users::id.eq_any(ids(keys, |k| k.0)))
            .select(EndUser::as_select())
            .into_boxed();
        let query = match self.viewer {
            Viewer::User(user) => {
                query.filter(end_users::workspace_id.eq_any(visible_workspace_ids(user)))
            }
            // The end users who talk to this application.
            Viewer::Application {
                application_id,
                workspace_id,
            } => query
                .filter(end_users::workspace_id.eq(workspace_id))
                .filter(
                    end_users::id.nullable().eq_any(
                        conversations::table
                            .filter(conversations::application_id.eq(application_id))
                            .select(conversations::end_user_id),
                    ),
                ),
            Viewer::EndUser {
                workspace_id,
                end_user_id,
                ..
            } => query
                .filter(end_users::workspace_id.eq(workspace_id))
                .filter(end_users::id.eq(end_user_id)),
            Viewer::Nobody => return Ok(HashMap::new()),
        };
        let mut conn = self.pool.get().await.map_err(fail)?;
        let rows: Vec<EndUser> = query.load(&mut conn).await.map_err(fail)?;
        Ok(rows.into_iter().map(|r| (EndUserById(r.id), r)).collect())
    }
}

impl Loader<FeedbacksOfMessage> for DbLoader {
    type Value = Vec<MessageFeedback>;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[FeedbacksOfMessage],
    ) -> LoadResult<FeedbacksOfMessage, Vec<MessageFeedback>> {
        let query = message_feedbacks::table
            .filter(message_feedbacks::message_id.eq_any(ids(keys, |k| k.0)))
            .order((
                message_feedbacks::created_at.asc(),
                message_feedbacks::id.asc(),
            ))
            .select(MessageFeedback::as_select())
            .into_boxed();
        let query = match self.viewer {
            Viewer::User(user) => {
                query.filter(message_feedbacks::workspace_id.eq_any(visible_workspace_ids(user)))
            }
            Viewer::Application {
                application_id,
                workspace_id,
            } => query
                .filter(message_feedbacks::workspace_id.eq(workspace_id))
                .filter(message_feedbacks::application_id.eq(application_id)),
            // An end user reads the feedback on messages of its own conversations.
            Viewer::EndUser {
                application_id,
                workspace_id,
                end_user_id,
            } => query
                .filter(message_feedbacks::workspace_id.eq(workspace_id))
                .filter(message_feedbacks::application_id.eq(application_id))
                .filter(
                    message_feedbacks::conversation_id.eq_any(
                        conversations::table
                            .filter(conversations::end_user_id.eq(end_user_id))
                            .select(conversations::id),
                    ),
                ),
            Viewer::Nobody => return Ok(HashMap::new()),
        };
        let mut conn = self.pool.get().await.map_err(fail)?;
        let rows: Vec<MessageFeedback> = query.load(&mut conn).await.map_err(fail)?;
        Ok(group(keys, rows, |r| FeedbacksOfMessage(r.message_id)))
    }
}

impl Loader<RetrieverResourcesOfMessage> for DbLoader {
    type Value = Vec<RetrieverResource>;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[RetrieverResourcesOfMessage],
    ) -> LoadResult<RetrieverResourcesOfMessage, Vec<RetrieverResource>> {
        let query = message_retriever_resources::table
            .filter(message_retriever_resources::message_id.eq_any(ids(keys, |k| k.0)))
            .order((
                message_retriever_resources::position.asc(),
                message_retriever_resources::id.asc(),
            ))
            .select(RetrieverResource::as_select())
            .into_boxed();
        let of_application = |application_id: Uuid| {
            messages::table
                .filter(messages::application_id.eq(application_id))
                .select(messages::id)
        };
        let query = match self.viewer {
            Viewer::User(user) => query.filter(
                message_retriever_resources::workspace_id.eq_any(visible_workspace_ids(user)),
            ),
            Viewer::Application {
                application_id,
                workspace_id,
            } => query
                .filter(message_retriever_resources::workspace_id.eq(workspace_id))
                .filter(
                    message_retriever_resources::message_id.eq_any(of_application(application_id)),
                ),
            Viewer::EndUser {
                application_id,
                workspace_id,
                end_user_id,
            } => query
                .filter(message_retriever_resources::workspace_id.eq(workspace_id))
                .filter(
                    message_retriever_resources::message_id.eq_any(
                        of_application(application_id).filter(
                            messages::conversation_id.eq_any(
                                conversations::table
                                    .filter(conversations::end_user_id.eq(end_user_id))
                                    .select(conversations::id),
                            ),
                        ),
                    ),
                ),
            Viewer::Nobody => return Ok(HashMap::new()),
        };
        let mut conn = self.pool.get().await.map_err(fail)?;
        let rows: Vec<RetrieverResource> = query.load(&mut conn).await.map_err(fail)?;
        Ok(group(keys, rows, |r| {
            RetrieverResourcesOfMessage(r.message_id)
        }))
    }
}
