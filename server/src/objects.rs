//! Object storage for screenshot bytes, through the `object_store` crate: files under the data
//! directory by default, an S3-compatible bucket when configured. Keys always start with the
//! company id, so one company's objects can be listed and deleted without touching another's.
//! The local backend writes to a temporary file, syncs it and renames it into place, so a crash
//! never leaves a torn object.

use async_trait::async_trait;
use object_store::ObjectStoreExt;
use std::path::PathBuf;
use std::time::Duration;
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

/// An S3-compatible bucket. Credentials are not part of it: they come from the environment
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optionally `AWS_SESSION_TOKEN`) or the
/// instance's metadata service, as the `object_store` crate reads them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Config {
    /// The bucket.
    pub bucket: String,
    /// The endpoint of an S3-compatible service (`https://…`); AWS's when `None`.
    pub endpoint: Option<String>,
    /// The region (`us-east-1` unless set).
    pub region: String,
    /// Allow a plain-HTTP endpoint (a service on a private network or a test).
    pub allow_http: bool,
}

/// Screenshot objects through the `object_store` crate: local files by default, or an
/// S3-compatible bucket. One code path for both; only the backend differs.
#[derive(Debug, Clone)]
pub struct Objects {
    inner: std::sync::Arc<dyn object_store::ObjectStore>,
}

impl Objects {
    /// Objects as files under `root` (created if missing), each written to a temporary file,
    /// synced and renamed into place, so a crash never leaves a torn object.
    pub fn local(root: impl Into<PathBuf>) -> std::io::Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        let fs = object_store::local::LocalFileSystem::new_with_prefix(&root)
            .map_err(io_error)?
            .with_fsync(true);
        Ok(Self { inner: std::sync::Arc::new(fs) })
    }

    /// Objects in an S3-compatible bucket, credentials from the environment.
    pub fn s3(config: &S3Config) -> std::io::Result<Self> {
        Self::s3_with(config, object_store::aws::AmazonS3Builder::from_env())
    }

    /// Objects in an S3-compatible bucket with these credentials (tests; the server reads
    /// them from the environment).
    pub fn s3_with_credentials(
        config: &S3Config,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> std::io::Result<Self> {
        let builder = object_store::aws::AmazonS3Builder::new()
            .with_access_key_id(access_key_id)
            .with_secret_access_key(secret_access_key);
        Self::s3_with(config, builder)
    }

    fn s3_with(
        config: &S3Config,
        builder: object_store::aws::AmazonS3Builder,
    ) -> std::io::Result<Self> {
        // The crate's default retries go on for minutes; an upload should fail within a
        // request's time so the agent retries it later instead.
        let retry = object_store::RetryConfig {
            backoff: object_store::BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
            },
            max_retries: 3,
            retry_timeout: Duration::from_secs(15),
        };
        let client = object_store::ClientOptions::new()
            .with_timeout(Duration::from_secs(20))
            .with_connect_timeout(Duration::from_secs(5))
            .with_allow_http(config.allow_http);
        let mut builder = builder
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_allow_http(config.allow_http)
            .with_retry(retry)
            .with_client_options(client);
        if let Some(endpoint) = &config.endpoint {
            // Path-style requests (`endpoint/bucket/key`): what S3-compatible services accept.
            builder = builder.with_endpoint(endpoint).with_virtual_hosted_style_request(false);
        }
        let s3 = builder.build().map_err(io_error)?;
        Ok(Self { inner: std::sync::Arc::new(s3) })
    }

    /// Checks at start-up that objects can be written and deleted (a missing bucket, wrong
    /// credentials or an unreachable endpoint is a clear error then, not failed uploads later).
    pub async fn check(&self) -> std::io::Result<()> {
        let probe = object_store::path::Path::from(format!(
            "worktrail-probe-{}",
            uuid::Uuid::now_v7().simple()
        ));
        let what = |step: &str, e: object_store::Error| match e {
            object_store::Error::NotFound { .. } => std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{step}: the bucket (or directory) does not exist: {e}"),
            ),
            other => std::io::Error::other(format!("{step}: {other}")),
        };
        self.inner.put(&probe, b"ok".to_vec().into()).await.map_err(|e| what("write", e))?;
        self.inner.delete(&probe).await.map_err(|e| what("delete", e))?;
        Ok(())
    }

    fn location(key: &str) -> std::io::Result<object_store::path::Path> {
        // Keys are built by this crate, but refuse anything that could leave the company's
        // prefix (or the local root) anyway.
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
        object_store::path::Path::parse(key)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    }
}

fn io_error(e: object_store::Error) -> std::io::Error {
    match e {
        object_store::Error::NotFound { .. } => {
            std::io::Error::new(std::io::ErrorKind::NotFound, e.to_string())
        }
        other => std::io::Error::other(other.to_string()),
    }
}

#[async_trait]
impl ObjectStore for Objects {
    async fn put(&self, key: &str, bytes: &[u8]) -> std::io::Result<()> {
        let location = Self::location(key)?;
        self.inner.put(&location, bytes.to_vec().into()).await.map_err(io_error)?;
        Ok(())
    }

    async fn get(&self, key: &str) -> std::io::Result<Vec<u8>> {
        let location = Self::location(key)?;
        let found = self.inner.get(&location).await.map_err(io_error)?;
        Ok(found.bytes().await.map_err(io_error)?.to_vec())
    }

    async fn delete(&self, key: &str) -> std::io::Result<()> {
        let location = Self::location(key)?;
        match self.inner.delete(&location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(io_error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn objects_round_trip_and_keys_cannot_escape_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let objects = Objects::local(dir.path().join("objects")).unwrap();
        let key = screenshot_key(CompanyId::new(), RecordId::new(), &[1, 2, 3]);
        objects.put(&key, b"jpeg").await.unwrap();
        assert_eq!(objects.get(&key).await.unwrap(), b"jpeg");
        objects.delete(&key).await.unwrap();
        objects.delete(&key).await.unwrap();
        assert!(objects.get(&key).await.is_err());
        for bad in ["../x", "a//b", "/etc/passwd", "a/./b", ""] {
            assert!(objects.put(bad, b"x").await.is_err(), "{bad}");
        }
        // The layout on disk is the key under the root, as before object_store.
        objects.put(&key, b"jpeg").await.unwrap();
        assert_eq!(std::fs::read(dir.path().join("objects").join(&key)).unwrap(), b"jpeg");
    }
}
