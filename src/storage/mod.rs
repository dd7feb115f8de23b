//! The object store that keeps the bytes of uploaded files: a directory on local disk by
//! default, or a bucket of an S3-compatible service when `WEFT_S3_BUCKET` is set (README:
//! "Files"). The database keeps only the key.

pub mod config;
mod local;
mod s3;
pub mod sigv4;

use std::io;

use local::LocalStore;
use s3::S3Store;

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

pub struct ObjectStore(Backend);

enum Backend {
    Local(LocalStore),
    S3(Box<S3Store>),
}

impl ObjectStore {
    /// The store the configuration names. An S3 bucket is checked (it exists, the
    /// credentials are accepted) so a wrong setting stops the start, not the first upload.
    pub async fn open(config: &StorageConfig) -> io::Result<ObjectStore> {
        match config {
            StorageConfig::Local(root) => LocalStore::new(root)
                .map(|store| ObjectStore(Backend::Local(store)))
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "{}: {e} (WEFT_STORAGE_DIR names a writable directory)",
                            root.display()
                        ),
                    )
                }),
            StorageConfig::S3(s3) => {
                let store = S3Store::new(s3)?;
                store.check().await?;
                Ok(ObjectStore(Backend::S3(Box::new(store))))
            }
        }
    }

    /// Where the objects go, for the start-up log.
    pub fn describe(&self) -> String {
        match &self.0 {
            Backend::Local(store) => store.describe(),
            Backend::S3(store) => store.describe(),
        }
    }

    /// Writes an object whole: a reader never sees half an object. `sha256` is the bytes'
    /// digest in hex, which the caller has already computed (S3 signs it).
    pub async fn put(&self, key: &str, bytes: &[u8], sha256: &str) -> io::Result<()> {
        let key = checked(key)?;
        match &self.0 {
            Backend::Local(store) => store.put(key, bytes).await,
            Backend::S3(store) => store.put(key, bytes, sha256).await,
        }
    }

    pub async fn get(&self, key: &str) -> io::Result<Vec<u8>> {
        let key = checked(key)?;
        match &self.0 {
            Backend::Local(store) => store.get(key).await,
            Backend::S3(store) => store.get(key).await,
        }
    }

    /// Removes an object; one already gone is not an error.
    pub async fn delete(&self, key: &str) -> io::Result<()> {
        let key = checked(key)?;
        match &self.0 {
            Backend::Local(store) => store.delete(key).await,
            Backend::S3(store) => store.delete(key).await,
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
