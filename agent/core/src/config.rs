//! `agent.json` in the data dir: the device id (generated once, kept across re-enrolments) and
//! the enrolment's non-secret facts. Secrets are never written here (see [`crate::secrets`]).

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use worktrail_shared::{CompanyId, DeviceId, UserId};

/// The file's name in the data dir.
pub const CONFIG_FILE: &str = "agent.json";
/// The queue's file name in the data dir.
pub const QUEUE_FILE: &str = "queue.sqlite3";

/// Facts learnt at enrolment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    /// The server's base URL.
    pub server_url: String,
    /// The company.
    pub company_id: CompanyId,
    /// Its display name.
    pub company_name: String,
    /// The employee this device records for.
    pub employee_id: UserId,
    /// The e-mail given at enrolment.
    pub email: Option<String>,
    /// When.
    pub enrolled_at_ms: i64,
}

/// The agent's persistent, non-secret configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentConfig {
    /// This installation's id.
    pub device_id: DeviceId,
    /// Set once enrolled.
    pub enrollment: Option<Enrollment>,
    /// Loopback port the browser extension reports to (0: no listener).
    #[serde(default = "default_extension_port")]
    pub extension_port: u16,
    /// Longest wait between sync retries, in seconds (default: 600). Only worth lowering where
    /// the server is near, e.g. in tests that cut the network for seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retry_secs: Option<u64>,
}

fn default_extension_port() -> u16 {
    crate::websites::DEFAULT_PORT
}

impl AgentConfig {
    fn path(dir: &Path) -> PathBuf {
        dir.join(CONFIG_FILE)
    }

    /// Loads the config from `dir`, creating the dir and a fresh device id on first run.
    pub fn load_or_create(dir: &Path) -> std::io::Result<Self> {
        if !dir.exists() {
            // The queue holds window titles: a new data dir is private to its user.
            std::fs::create_dir_all(dir)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
            }
        }
        match std::fs::read(Self::path(dir)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let config = Self {
                    device_id: DeviceId::new(),
                    enrollment: None,
                    extension_port: default_extension_port(),
                    max_retry_secs: None,
                };
                config.save(dir)?;
                Ok(config)
            }
            Err(e) => Err(e),
        }
    }

    /// Writes the config atomically (temp file, fsync, rename).
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        use std::io::Write;
        let tmp = dir.join(format!("{CONFIG_FILE}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
        std::fs::rename(tmp, Self::path(dir))
    }
}

/// The default data dir: the platform's local data dir (e.g. `~/.local/share/worktrail-agent`).
pub fn default_data_dir() -> PathBuf {
    dirs::data_local_dir().unwrap_or_else(|| PathBuf::from(".")).join("worktrail-agent")
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_new_data_dir_is_private_and_keeps_its_device_id() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("agent");
        let first = AgentConfig::load_or_create(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert_eq!(AgentConfig::load_or_create(&dir).unwrap().device_id, first.device_id);
    }
}
