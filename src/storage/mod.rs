//! The object store that keeps the bytes of uploaded files: a directory on local disk by
//! default, or a bucket of an S3-compatible service when `WEFT_S3_BUCKET` is set (README:
//! "Files"). The database keeps only the key.

pub mod config;
mod local;
mod s3;
pub mod sigv4;

use std::io;

pub use local::LocalStore;
pub use s3::S3Store;

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

fn checked(key: &str) -> io::Result<&str> {
    if valid_key(key) {
        Ok(key)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not an object key: {key:?}"),
        ))
    }
}

pub enum ObjectStore {
    Local(LocalStore),
    S3(Box<S3Store>),
}

impl ObjectStore {
    /// The store the configuration names. An S3 bucket is checked (it exists, the
    /// credentials are accepted) so a wrong setting stops the start, not the first upload.
    pub async fn open(config: &StorageConfig) -> io::Result<ObjectStore> {
        match config {
            StorageConfig::Local(root) => {
                LocalStore::new(root).map(ObjectStore::Local).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "{}: {e} (WEFT_STORAGE_DIR names a writable directory)",
                            root.display()
                        ),
                    )
                })
            }
            StorageConfig::S3(s3) => {
                let store = S3Store::new(s3)?;
                store.check().await?;
                Ok(ObjectStore::S3(Box::new(store)))
            }
        }
    }

    /// Where the objects go, for the start-up log.
    pub fn describe(&self) -> String {
        match self {
            ObjectStore::Local(store) => store.describe(),
            ObjectStore::S3(store) => store.describe(),
        }
    }

    /// Writes an object whole: a reader never sees half an object.
    pub async fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        let key = checked(key)?;
        match self {
            ObjectStore::Local(store) => store.put(key, bytes).await,
            ObjectStore::S3(store) => store.put(key, bytes).await,
        }
    }

    pub async fn get(&self, key: &str) -> io::Result<Vec<u8>> {
        let key = checked(key)?;
        match self {
            ObjectStore::Local(store) => store.get(key).await,
            ObjectStore::S3(store) => store.get(key).await,
        }
    }

    /// Removes an object; one already gone is not an error.
    pub async fn delete(&self, key: &str) -> io::Result<()> {
        let key = checked(key)?;
        match self {
            ObjectStore::Local(store) => store.delete(key).await,
            ObjectStore::S3(store) => store.delete(key).await,
        }
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
