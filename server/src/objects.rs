//! Object storage for screenshot bytes. Keys always start with the company id, so one company's
//! objects can be listed and deleted without touching another's. The local backend writes to a
//! temporary file, syncs it and renames it into place, so a crash never leaves a torn object.

use async_trait::async_trait;
use std::path::{Path, PathBuf};
use worktrail_shared::{CompanyId, RecordId};

/// Where screenshot bytes live.
#[async_trait]
pub trait ObjectStore: Send + Sync + std::fmt::Debug + 'static {
    /// Stores `bytes` under `key` durably (replacing any object there).
    async fn put(&self, key: &str, bytes: &[u8]) -> std::io::Result<()>;
    /// Reads the object under `key`.
    async fn get(&self, key: &str) -> std::io::Result<Vec<u8>>;
    /// Deletes the object under `key`; deleting a missing object is not an error.
    async fn delete(&self, key: &str) -> std::io::Result<()>;
}

/// The object key of a screenshot. The content hash is part of the key, so a conflicting
/// upload under the same id can never overwrite the stored bytes.
pub fn screenshot_key(company: CompanyId, id: RecordId, sha256: &[u8]) -> String {
    format!("{company}/screenshots/{id}-{}.jpg", hex::encode(&sha256[..sha256.len().min(8)]))
}

/// Objects as files under a root directory.
#[derive(Debug, Clone)]
pub struct LocalObjects {
    root: PathBuf,
}

impl LocalObjects {
    /// Objects under `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, key: &str) -> std::io::Result<PathBuf> {
        // Keys are built by this crate, but refuse anything that could leave the root anyway.
        let ok = !key.is_empty()
            && key.split('/').all(|part| {
                !part.is_empty()
                    && part != "."
                    && part != ".."
                    && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            });
        if !ok {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "bad object key"));
        }
        Ok(self.root.join(key))
    }
}

fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().ok_or_else(|| std::io::Error::other("object path has no parent"))?;
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile_in(dir)?;
    tmp.1.write_all(bytes)?;
    tmp.1.sync_all()?;
    std::fs::rename(&tmp.0, path)?;
    std::fs::File::open(dir)?.sync_all()
}

fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let name = format!(".tmp-{}", uuid::Uuid::now_v7());
    let path = dir.join(name);
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
    Ok((path, file))
}

#[async_trait]
impl ObjectStore for LocalObjects {
    async fn put(&self, key: &str, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.path(key)?;
        let bytes = bytes.to_vec();
        tokio::task::spawn_blocking(move || write_durably(&path, &bytes))
            .await
            .map_err(std::io::Error::other)?
    }

    async fn get(&self, key: &str) -> std::io::Result<Vec<u8>> {
        tokio::fs::read(self.path(key)?).await
    }

    async fn delete(&self, key: &str) -> std::io::Result<()> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn objects_round_trip_and_keys_cannot_escape_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let objects = LocalObjects::new(dir.path());
        let key = screenshot_key(CompanyId::new(), RecordId::new(), &[1, 2, 3]);
        objects.put(&key, b"jpeg").await.unwrap();
        assert_eq!(objects.get(&key).await.unwrap(), b"jpeg");
        objects.delete(&key).await.unwrap();
        objects.delete(&key).await.unwrap();
        assert!(objects.get(&key).await.is_err());
        for bad in ["../x", "a//b", "/etc/passwd", "a/./b", ""] {
            assert!(objects.put(bad, b"x").await.is_err(), "{bad}");
        }
    }
}
