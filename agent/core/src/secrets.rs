//! Where the company key and the device token live: the OS keyring (Secret Service, macOS
//! Keychain, Windows Credential Manager) through `keyring` with its platform features enabled
//! explicitly — without them keyring 3 silently keeps secrets in memory only.
//!
//! On Linux without a Secret Service the keyring fails with `PlatformFailure`; the agent then
//! says so in its log, once, and keeps the secrets in `secrets.json` (mode 0600) under its data
//! dir — the only file a secret is ever written to. Secrets never appear in `agent.json`, in logs
//! or in URLs. [`MemoryStore`] serves tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use worktrail_shared::secret::{CompanyKey, DeviceToken, SecretFormatError};

/// The keyring service name.
pub const SERVICE: &str = "worktrail-agent";
/// The fallback file's name in the data dir.
pub const FALLBACK_FILE: &str = "secrets.json";
const COMPANY_KEY: &str = "company-key";
const DEVICE_TOKEN: &str = "device-token";

/// A secret could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The OS keyring failed.
    #[error("keyring: {0}")]
    Keyring(#[from] keyring::Error),
    /// The fallback file failed.
    #[error("secrets file: {0}")]
    Io(#[from] std::io::Error),
    /// The fallback file is not valid JSON.
    #[error("secrets file: {0}")]
    Json(#[from] serde_json::Error),
    /// A stored secret is malformed.
    #[error("stored secret is malformed: {0}")]
    Format(#[from] SecretFormatError),
}

/// A place to keep named secrets.
pub trait SecretStore: Send + Sync + std::fmt::Debug {
    /// The secret called `name`, if stored.
    fn get(&self, name: &str) -> Result<Option<String>, SecretError>;
    /// Stores `value` under `name`.
    fn set(&self, name: &str, value: &str) -> Result<(), SecretError>;
    /// Removes `name` (no error when absent).
    fn delete(&self, name: &str) -> Result<(), SecretError>;
    /// What kind of store this is, for `status`.
    fn kind(&self) -> &'static str;
}

/// Secrets in memory only (tests).
#[derive(Debug, Default, Clone)]
pub struct MemoryStore(Arc<Mutex<BTreeMap<String, String>>>);

impl MemoryStore {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl SecretStore for MemoryStore {
    fn get(&self, name: &str) -> Result<Option<String>, SecretError> {
        Ok(self.map().get(name).cloned())
    }
    fn set(&self, name: &str, value: &str) -> Result<(), SecretError> {
        self.map().insert(name.into(), value.into());
        Ok(())
    }
    fn delete(&self, name: &str) -> Result<(), SecretError> {
        self.map().remove(name);
        Ok(())
    }
    fn kind(&self) -> &'static str {
        "memory"
    }
}

/// The OS keyring; entries are `SERVICE` / `<profile>:<name>`, the profile being the device id so
/// that several agents (or test runs) on one machine never share secrets.
#[derive(Debug, Clone)]
pub struct KeyringStore {
    profile: String,
}

impl KeyringStore {
    /// A keyring store for `profile`.
    pub fn new(profile: &str) -> Self {
        Self { profile: profile.into() }
    }
    fn entry(&self, name: &str) -> Result<keyring::Entry, SecretError> {
        Ok(keyring::Entry::new(SERVICE, &format!("{}:{name}", self.profile))?)
    }
    /// Checks that the keyring answers at all (a missing entry is an answer).
    pub fn probe(&self) -> Result<(), SecretError> {
        match self.entry("probe")?.get_password() {
            Ok(_) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

impl SecretStore for KeyringStore {
    fn get(&self, name: &str) -> Result<Option<String>, SecretError> {
        match self.entry(name)?.get_password() {
            Ok(v) => Ok(Some(v)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
    fn set(&self, name: &str, value: &str) -> Result<(), SecretError> {
        Ok(self.entry(name)?.set_password(value)?)
    }
    fn delete(&self, name: &str) -> Result<(), SecretError> {
        match self.entry(name)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
    fn kind(&self) -> &'static str {
        "keyring"
    }
}

/// The documented fallback: a JSON map in a file readable by its owner only (0600).
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
    lock: Arc<Mutex<()>>,
}

impl FileStore {
    /// A store in `dir`/[`FALLBACK_FILE`].
    pub fn new(dir: &Path) -> Self {
        Self { path: dir.join(FALLBACK_FILE), lock: Arc::default() }
    }

    fn read(&self) -> Result<BTreeMap<String, String>, SecretError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e.into()),
        }
    }

    fn write(&self, map: &BTreeMap<String, String>) -> Result<(), SecretError> {
        use std::io::Write;
        let tmp = self.path.with_extension("json.tmp");
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(&serde_json::to_vec(map)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        Ok(())
    }
}

impl SecretStore for FileStore {
    fn get(&self, name: &str) -> Result<Option<String>, SecretError> {
        let _g = self.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(self.read()?.get(name).cloned())
    }
    fn set(&self, name: &str, value: &str) -> Result<(), SecretError> {
        let _g = self.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut map = self.read()?;
        map.insert(name.into(), value.into());
        self.write(&map)
    }
    fn delete(&self, name: &str) -> Result<(), SecretError> {
        let _g = self.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut map = self.read()?;
        if map.remove(name).is_some() {
            self.write(&map)?;
        }
        Ok(())
    }
    fn kind(&self) -> &'static str {
        "file"
    }
}

/// The OS keyring when it answers, else the 0600 file under `data_dir` (logged, once, here).
pub fn open_store(data_dir: &Path, profile: &str) -> Arc<dyn SecretStore> {
    let keyring = KeyringStore::new(profile);
    match keyring.probe() {
        Ok(()) => Arc::new(keyring),
        Err(e) => {
            let file = FileStore::new(data_dir);
            tracing::warn!(
                error = %e,
                path = %file.path.display(),
                "no usable OS keyring (Secret Service); keeping the company key and device token \
                 in a file readable only by this user (0600) instead"
            );
            Arc::new(file)
        }
    }
}

/// The agent's two secrets, typed, over any [`SecretStore`].
#[derive(Debug, Clone)]
pub struct Secrets(pub Arc<dyn SecretStore>);

impl Secrets {
    /// The company key, if enrolled.
    pub fn company_key(&self) -> Result<Option<CompanyKey>, SecretError> {
        Ok(self.0.get(COMPANY_KEY)?.map(|s| CompanyKey::parse(&s)).transpose()?)
    }
    /// The device token, if enrolled.
    pub fn device_token(&self) -> Result<Option<DeviceToken>, SecretError> {
        Ok(self.0.get(DEVICE_TOKEN)?.map(|s| DeviceToken::parse(&s)).transpose()?)
    }
    /// Stores both after an enrolment.
    pub fn store(&self, key: &CompanyKey, token: &DeviceToken) -> Result<(), SecretError> {
        self.0.set(COMPANY_KEY, key.expose())?;
        self.0.set(DEVICE_TOKEN, token.expose())
    }
    /// Forgets both.
    pub fn clear(&self) -> Result<(), SecretError> {
        self.0.delete(COMPANY_KEY)?;
        self.0.delete(DEVICE_TOKEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CompanyKey {
        CompanyKey::generate(|b| b.iter_mut().enumerate().for_each(|(i, x)| *x = i as u8))
    }
    fn token() -> DeviceToken {
        DeviceToken::generate(|b| b.iter_mut().enumerate().for_each(|(i, x)| *x = (i * 7) as u8))
    }

    #[test]
    fn the_memory_store_round_trips_typed_secrets() {
        let s = Secrets(Arc::new(MemoryStore::default()));
        assert!(s.company_key().unwrap().is_none());
        s.store(&key(), &token()).unwrap();
        assert_eq!(s.company_key().unwrap(), Some(key()));
        assert_eq!(s.device_token().unwrap(), Some(token()));
        s.clear().unwrap();
        assert!(s.device_token().unwrap().is_none());
    }

    #[cfg(unix)]
    #[test]
    fn the_fallback_file_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let s = Secrets(Arc::new(FileStore::new(dir.path())));
        s.store(&key(), &token()).unwrap();
        let meta = std::fs::metadata(dir.path().join(FALLBACK_FILE)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let again = Secrets(Arc::new(FileStore::new(dir.path())));
        assert_eq!(again.company_key().unwrap(), Some(key()));
        // Nothing else in the dir holds the secret (no leftover temp file).
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
