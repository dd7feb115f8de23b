//! Files in GraphQL: upload through the multipart request spec, list through
//! `Workspace.files`, download at `/files/{id}`.

use async_graphql::{Context, InputObject, Object, Result, Upload};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::context::{ContextExt, conn};
use super::lists::{ListFilter, ListName};
use super::loaders::*;
use super::pages::child_page;
use super::pagination::{Conn, PageArgs};
use super::tenancy::{UserProfileObject, WorkspaceObject};
use crate::db::models::FileReference;
use crate::error::{AppError, AppResult};
use crate::files::{self, Incoming};

pub struct FileObject(pub FileReference);

#[Object(name = "File")]
impl FileObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    /// The name the file was uploaded with.
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn mime_type(&self) -> &str {
        &self.0.mime_type
    }
    /// Size in bytes.
    async fn size(&self) -> i64 {
        self.0.size
    }
    /// SHA-256 of the bytes, lower-case hexadecimal.
    async fn sha256(&self) -> &str {
        &self.0.sha256
    }
    /// Where the bytes are served, relative to the server (same `Authorization` header).
    async fn download_url(&self) -> String {
        format!("/files/{}", self.0.id)
    }
    async fn workspace(&self, ctx: &Context<'_>) -> Result<Option<WorkspaceObject>> {
        Ok(ctx
            .loader()?
            .load_one(WorkspaceById(self.0.workspace_id))
            .await?
            .map(WorkspaceObject))
    }
    async fn created_by(&self, ctx: &Context<'_>) -> Result<Option<UserProfileObject>> {
        let Some(id) = self.0.created_by else {
            return Ok(None);
        };
        Ok(ctx
            .loader()?
            .load_one(UserProfileById(id))
            .await?
            .map(Into::into))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[derive(InputObject, Default)]
pub struct FileFilter {
    name_contains: Option<String>,
    /// Exactly this media type, e.g. `application/pdf`.
    mime_type: Option<String>,
}

/// `Workspace.files`, newest first.
pub async fn workspace_files(
    ctx: &Context<'_>,
    workspace_id: Uuid,
    args: PageArgs,
    filter: Option<FileFilter>,
) -> Result<Conn<FileObject>> {
    let page = args.page()?;
    let f = filter.unwrap_or_default();
    let filter = ListFilter {
        name_contains: f.name_contains,
        status: f.mime_type.map(|t| t.trim().to_ascii_lowercase()),
        ..ListFilter::default()
    };
    child_page(
        ctx,
        ListName::WorkspaceFiles,
        workspace_id,
        page,
        filter,
        FileObject,
    )
    .await
}

#[derive(Default)]
pub struct FileQuery;

#[Object]
impl FileQuery {
    /// A file, or null when the caller cannot see it.
    async fn file(&self, ctx: &Context<'_>, id: Uuid) -> Result<Option<FileObject>> {
        ctx.actor()?;
        Ok(ctx.loader()?.load_one(FileById(id)).await?.map(FileObject))
    }
}

#[derive(InputObject)]
pub struct UploadFileInput {
    workspace_id: Uuid,
    /// The file part of a multipart request (GraphQL multipart request spec).
    file: Upload,
}

#[derive(Default)]
pub struct FileMutation;

/// The bytes of an uploaded file, at most `limit` (PAYLOAD over it is refused as input).
async fn read_upload(file: std::fs::File, limit: usize) -> AppResult<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut bytes = Vec::new();
    tokio::fs::File::from_std(file)
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(AppError::internal)?;
    if bytes.len() > limit {
        return Err(AppError::bad_input(
            "file",
            format!("the file is larger than {limit} bytes"),
        ));
    }
    Ok(bytes)
}

#[Object]
impl FileMutation {
    /// Keeps a file in a workspace (EDITOR and up); the size limit is `WEFT_UPLOAD_MAX_BYTES`.
    async fn upload_file(&self, ctx: &Context<'_>, input: UploadFileInput) -> Result<FileObject> {
        let actor = ctx.actor()?;
        let app = ctx.app()?;
        let upload = input
            .file
            .value(ctx)
            .map_err(|_| AppError::bad_input("file", "the file part is missing"))?;
        // The multipart body was spooled to a temporary file as it arrived; it is read
        // here, for a caller already authenticated, within the size limit.
        let limit = app.config.uploads.max_file_bytes;
        let bytes = read_upload(upload.content, limit).await?;
        let mut conn = conn(app).await?;
        let saved = files::upload(
            &mut conn,
            actor,
            &ctx.client(),
            &app.store,
            app.config.uploads.max_file_bytes,
            input.workspace_id,
            Incoming {
                name: &upload.filename,
                mime_type: upload.content_type.as_deref(),
                bytes: &bytes,
            },
        )
        .await?;
        Ok(FileObject(saved))
    }

    /// Deletes a file and its bytes (EDITOR and up); documents made from it keep their text.
    async fn delete_file(&self, ctx: &Context<'_>, id: Uuid) -> Result<bool> {
        let actor = ctx.actor()?;
        let app = ctx.app()?;
        let mut conn = conn(app).await?;
        files::delete(&mut conn, actor, &ctx.client(), &app.store, id).await?;
        Ok(true)
    }
}
