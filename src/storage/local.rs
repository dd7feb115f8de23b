//! Objects as files in a directory on local disk (`WEFT_STORAGE_DIR`, by default
//! `<data dir>/files`).

use std::io;
use std::path::{Path, PathBuf};

pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// A store in `root`, created when missing.
    pub fn new(root: &Path) -> io::Result<LocalStore> {
        std::fs::create_dir_all(root)?;
        Ok(LocalStore { root: root.into() })
    }

    pub fn describe(&self) -> String {
        format!("directory {}", self.root.display())
    }

    /// Keys reach this store checked by `ObjectStore`.
    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// Writes an object whole: the bytes go to a temporary file that is then renamed, so a
    /// reader never sees half an object.
    pub async fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        let path = self.path(key);
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let partial = path.with_extension(format!("part-{}", uuid::Uuid::new_v4()));
        if let Err(e) = tokio::fs::write(&partial, bytes).await {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(e);
        }
        tokio::fs::rename(&partial, &path).await
    }

    pub async fn get(&self, key: &str) -> io::Result<Vec<u8>> {
        tokio::fs::read(self.path(key)).await
    }

    /// Removes an object; one already gone is not an error.
    pub async fn delete(&self, key: &str) -> io::Result<()> {
        match tokio::fs::remove_file(self.path(key)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_delete() {
        let dir = std::env::temp_dir().join(format!("weft-store-{}", uuid::Uuid::new_v4()));
        let store = LocalStore::new(&dir).unwrap();
        store.put("ab-12/cd-34", b"hello").await.unwrap();
        assert_eq!(store.get("ab-12/cd-34").await.unwrap(), b"hello");
        store.delete("ab-12/cd-34").await.unwrap();
        store.delete("ab-12/cd-34").await.unwrap();
        assert!(store.get("ab-12/cd-34").await.is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
