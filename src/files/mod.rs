//! Uploaded files: the bytes go to the object store under a key made here, a row of
//! `file_references` records name, media type, size and SHA-256 (EDITOR and up upload and
//! delete; every member reads).

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::audit::{self, AuditEntry};
use crate::auth::permissions::{authorize_workspace, visible_workspace_ids};
use crate::auth::{Action, Actor, ClientInfo};
use crate::db::models::FileReference;
use crate::db::schema::file_references;
use crate::error::{AppError, AppResult};
use crate::storage::ObjectStore;

pub const DEFAULT_MIME_TYPE: &str = "application/octet-stream";

/// A file as it arrived: the client's file name and media type, and the bytes.
pub struct Incoming<'a> {
    pub name: &'a str,
    pub mime_type: Option<&'a str>,
    pub bytes: &'a [u8],
}

/// The last part of a client's file name (browsers on some systems send a whole path),
/// without control characters.
pub fn clean_name(given: &str) -> AppResult<String> {
    let base = given.rsplit(['/', '\\']).next().unwrap_or(given);
    let name: String = base.chars().filter(|c| !c.is_control()).collect();
    let name = name.trim();
    if name.is_empty() || name == "." || name == ".." {
        return Err(AppError::bad_input("file", "the file has no name"));
    }
    if name.chars().count() > 255 {
        return Err(AppError::bad_input(
            "file",
            "the file name is longer than 255 characters",
        ));
    }
    Ok(name.to_string())
}

/// A media type such as `text/plain` or `image/png; charset=...`, lower-cased; none given
/// is `application/octet-stream`.
pub fn clean_mime_type(given: Option<&str>) -> AppResult<String> {
    let Some(given) = given.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(DEFAULT_MIME_TYPE.into());
    };
    let essence = given.split(';').next().unwrap_or("").trim();
    let token = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
    };
    let valid = match essence.split_once('/') {
        Some((kind, sub)) => token(kind) && token(sub),
        None => false,
    };
    if !valid || given.len() > 255 || given.chars().any(|c| c.is_control()) {
        return Err(AppError::bad_input(
            "file",
            format!("{given:?} is not a media type"),
        ));
    }
    Ok(given.to_ascii_lowercase())
}

/// The media type a file name suggests, for clients that send none or only
/// `application/octet-stream` (as curl and many upload widgets do).
pub fn guess_mime_type(name: &str) -> Option<&'static str> {
    let extension = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match extension.as_str() {
        "txt" => "text/plain",
        "md" | "markdown" => "text/markdown",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        _ => return None,
    })
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Keeps a file in a workspace. The object is written first; if the row cannot be written
/// the object is removed again, so nothing is left half-made.
#[allow(clippy::too_many_arguments)]
pub async fn upload(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    store: &ObjectStore,
    max_bytes: usize,
    workspace_id: Uuid,
    file: Incoming<'_>,
) -> AppResult<FileReference> {
    authorize_workspace(conn, actor, workspace_id, Action::Build).await?;
    let name = clean_name(file.name)?;
    let mime_type = match clean_mime_type(file.mime_type)? {
        t if t == DEFAULT_MIME_TYPE => guess_mime_type(&name).unwrap_or(DEFAULT_MIME_TYPE).into(),
        t => t,
    };
    if file.bytes.len() > max_bytes {
        return Err(AppError::bad_input(
            "file",
            format!("the file is larger than the limit of {max_bytes} bytes"),
        ));
    }
    let id = Uuid::new_v4();
    let storage_key = format!("{workspace_id}/{id}");
    let sha256 = sha256_hex(file.bytes);
    store
        .put(&storage_key, file.bytes)
        .await
        .map_err(AppError::internal)?;
    let saved = conn
        .transaction(async |conn| {
            let row: FileReference = diesel::insert_into(file_references::table)
                .values((
                    file_references::id.eq(id),
                    file_references::workspace_id.eq(workspace_id),
                    file_references::storage_key.eq(&storage_key),
                    file_references::name.eq(&name),
                    file_references::mime_type.eq(&mime_type),
                    file_references::size.eq(file.bytes.len() as i64),
                    file_references::sha256.eq(&sha256),
                    file_references::created_by.eq(actor.user_id().ok()),
                ))
                .returning(FileReference::as_returning())
                .get_result(conn)
                .await?;
            audit::record(
                conn,
                actor,
                client,
                AuditEntry {
                    workspace_id: Some(workspace_id),
                    action: "file.upload",
                    resource_type: "file",
                    resource_id: Some(id),
                    metadata: json!({ "name": name, "size": row.size, "sha256": sha256 }),
                },
            )
            .await?;
            Ok::<_, AppError>(row)
        })
        .await;
    if saved.is_err()
        && let Err(e) = store.delete(&storage_key).await
    {
        tracing::error!(error = %e, key = storage_key, "cannot remove an object whose row failed");
    }
    saved
}

/// A file of a workspace the caller can see.
async fn visible(conn: &mut AsyncPgConnection, actor: Actor, id: Uuid) -> AppResult<FileReference> {
    let user_id = actor.user_id()?;
    file_references::table
        .find(id)
        .filter(file_references::workspace_id.eq_any(visible_workspace_ids(user_id)))
        .select(FileReference::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("file"))
}

/// A file's row and bytes, for any member of its workspace.
pub async fn read(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    store: &ObjectStore,
    id: Uuid,
) -> AppResult<(FileReference, Vec<u8>)> {
    let file = visible(conn, actor, id).await?;
    authorize_workspace(conn, actor, file.workspace_id, Action::Read).await?;
    let bytes = store
        .get(&file.storage_key)
        .await
        .map_err(AppError::internal)?;
    Ok((file, bytes))
}

/// Removes a file: the row (documents made from it keep their text and lose the link),
/// then the object.
pub async fn delete(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    store: &ObjectStore,
    id: Uuid,
) -> AppResult<()> {
    let file = conn
        .transaction(async |conn| {
            let file = visible(conn, actor, id).await?;
            authorize_workspace(conn, actor, file.workspace_id, Action::Build).await?;
            diesel::delete(file_references::table.find(id))
                .execute(conn)
                .await?;
            audit::record(
                conn,
                actor,
                client,
                AuditEntry {
                    workspace_id: Some(file.workspace_id),
                    action: "file.delete",
                    resource_type: "file",
                    resource_id: Some(id),
                    metadata: json!({ "name": file.name }),
                },
            )
            .await?;
            Ok::<_, AppError>(file)
        })
        .await?;
    if let Err(e) = store.delete(&file.storage_key).await {
        tracing::error!(error = %e, key = file.storage_key, "cannot remove a deleted file's object");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_paths_and_control_characters() {
        assert_eq!(
            clean_name("C:\\Users\\a\\report.pdf").unwrap(),
            "report.pdf"
        );
        assert_eq!(clean_name("../../etc/passwd").unwrap(), "passwd");
        assert_eq!(clean_name(" notes\u{7}.txt ").unwrap(), "notes.txt");
        assert!(clean_name("dir/").is_err());
        assert!(clean_name(&"a".repeat(256)).is_err());
    }

    #[test]
    fn media_types_are_checked() {
        assert_eq!(clean_mime_type(None).unwrap(), DEFAULT_MIME_TYPE);
        assert_eq!(
            clean_mime_type(Some("Text/Plain; charset=UTF-8")).unwrap(),
            "text/plain; charset=utf-8"
        );
        assert!(clean_mime_type(Some("not a type")).is_err());
        assert!(clean_mime_type(Some("text/")).is_err());
    }

    #[test]
    fn media_types_are_guessed_from_extensions() {
        assert_eq!(guess_mime_type("Handbook.PDF"), Some("application/pdf"));
        assert_eq!(guess_mime_type("notes.md"), Some("text/markdown"));
        assert_eq!(guess_mime_type("archive.xyz"), None);
        assert_eq!(guess_mime_type("README"), None);
    }

    #[test]
    fn digest_is_lowercase_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
