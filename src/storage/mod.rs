//! The object store that keeps the bytes of uploaded files: a directory on local disk by
//! default, or a bucket of an S3-compatible service when `WEFT_S3_BUCKET` is set (README:
//! "Files"), both through the `object_store` crate. The database keeps only the key.

pub mod config;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ClientOptions, ObjectStore as Store, ObjectStoreExt, PutPayload};

pub use config::{S3Config, StorageConfig};

/// Keys are made by the server (`<workspace id>/<file id>`), so only these characters occur.
fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 500
        && !key.starts_with('/')
        && !key.contains("..")
        && key
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == '-' || c == '/')
}

fn checked(key: &str) -> io::Result<Path> {
    if valid_key(key) {
        Ok(Path::from(key))
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not an object key: {key:?}"),
        ))
    }
}

/// An `object_store` error as an I/O error of the matching kind; messages name the key and
/// the status, never credentials. Listing errors come as `Generic` with the service's
/// status and error code in their text, which is read for the kind.
fn io_error(error: object_store::Error) -> io::Error {
    use object_store::Error;
    let text = error.to_string();
    let kind = match &error {
        Error::NotFound { .. } => io::ErrorKind::NotFound,
        Error::PermissionDenied { .. } | Error::Unauthenticated { .. } => {
            io::ErrorKind::PermissionDenied
        }
        Error::AlreadyExists { .. } => io::ErrorKind::AlreadyExists,
        _ if text.contains(" 403 ") || text.contains(" 401 ") => io::ErrorKind::PermissionDenied,
        _ if text.contains(" 404 ") || text.contains("NoSuchBucket") => io::ErrorKind::NotFound,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, text)
}

pub struct ObjectStore {
    store: Arc<dyn Store>,
    description: String,
}

impl ObjectStore {
    /// The store the configuration names. An S3 bucket is checked (it exists, the
    /// credentials are accepted) so a wrong setting stops the start, not the first upload.
    pub async fn open(config: &StorageConfig) -> io::Result<ObjectStore> {
        match config {
            StorageConfig::Local(root) => {
                let opened = std::fs::create_dir_all(root)
                    .and_then(|()| LocalFileSystem::new_with_prefix(root).map_err(io_error));
                let store = opened.map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "{}: {e} (WEFT_STORAGE_DIR names a writable directory)",
                            root.display()
                        ),
                    )
                })?;
                Ok(ObjectStore {
                    store: Arc::new(store),
                    description: format!("directory {}", root.display()),
                })
            }
            StorageConfig::S3(s3) => {
                let store = ObjectStore {
                    store: bucket(s3)?,
                    description: format!(
                        "bucket {} at {}{}",
                        s3.bucket,
                        s3.endpoint.as_deref().unwrap_or("Amazon S3"),
                        if s3.prefix.is_empty() {
                            String::new()
                        } else {
                            format!(" under {}", s3.prefix)
                        }
                    ),
                };
                store.check().await?;
                Ok(store)
            }
        }
    }

    /// Lists at most one object: the bucket exists and the credentials are accepted.
    async fn check(&self) -> io::Result<()> {
        use futures_util::StreamExt;
        let mut listing = self.store.list(None);
        match listing.next().await {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(e)) => {
                let e = io_error(e);
                let hint = match e.kind() {
                    io::ErrorKind::NotFound => "the bucket does not exist (WEFT_S3_BUCKET)",
                    io::ErrorKind::PermissionDenied => {
                        "the bucket refused the credentials (WEFT_S3_ACCESS_KEY_ID, WEFT_S3_SECRET_ACCESS_KEY)"
                    }
                    _ => "the bucket cannot be reached (WEFT_S3_ENDPOINT)",
                };
                Err(io::Error::new(e.kind(), format!("{hint}: {e}")))
            }
        }
    }

    /// Where the objects go, for the start-up log.
    pub fn describe(&self) -> String {
        self.description.clone()
    }

    /// Writes an object whole: a reader never sees half an object.
    pub async fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        let path = checked(key)?;
        self.store
            .put(&path, PutPayload::from(bytes.to_vec()))
            .await
            .map(drop)
            .map_err(io_error)
    }

    pub async fn get(&self, key: &str) -> io::Result<Vec<u8>> {
        let path = checked(key)?;
        let found = self.store.get(&path).await.map_err(io_error)?;
        Ok(found.bytes().await.map_err(io_error)?.to_vec())
    }

    /// Removes an object; one already gone is not an error.
    pub async fn delete(&self, key: &str) -> io::Result<()> {
        let path = checked(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(io_error(e)),
        }
    }
}

/// The bucket of `config`: keys under its prefix; credentials as given, or else from the
/// environment as AWS tools find them (AWS_* variables with a session token, web identity,
/// the ECS task role, the EC2 instance profile).
fn bucket(config: &S3Config) -> io::Result<Arc<dyn Store>> {
    let allow_http = config
        .endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://"));
    let options = ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(60))
        .with_allow_http(allow_http);
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(&config.bucket)
        .with_region(&config.region)
        .with_client_options(options)
        .with_virtual_hosted_style_request(!config.path_style);
    if let Some(endpoint) = &config.endpoint {
        // In virtual-hosted style the endpoint names the bucket's own host.
        let endpoint = match endpoint.split_once("://") {
            Some((scheme, host)) if !config.path_style => {
                format!("{scheme}://{}.{host}", config.bucket)
            }
            _ => endpoint.clone(),
        };
        builder = builder.with_endpoint(endpoint);
    }
    if let (Some(id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
        let secret = String::from_utf8_lossy(secret.expose()).into_owned();
        builder = builder
            .with_access_key_id(id)
            .with_secret_access_key(secret);
        if let Some(token) = &config.session_token {
            builder = builder.with_token(String::from_utf8_lossy(token.expose()).into_owned());
        }
    }
    let store = builder
        .build()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    if config.prefix.is_empty() {
        Ok(Arc::new(store))
    } else {
        let prefix = Path::from(config.prefix.trim_end_matches('/'));
        Ok(Arc::new(PrefixStore::new(store, prefix)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_keys_outside_the_store() {
        assert!(!valid_key("../etc/passwd"));
        assert!(!valid_key("/abs"));
        assert!(!valid_key("ab/../cd"));
        assert!(!valid_key("name.txt"));
        assert!(valid_key("0f3e-aa/12ef"));
    }
}
