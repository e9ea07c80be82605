//! Pairing: which browser extensions may report tabs to this agent.
//!
//! The employee opens a short pairing window (the tray's "Pair browser", or
//! `worktrail-agentd pair-browser`); while it is open, an extension asking the loopback listener
//! gets a random token, bound to its extension origin. Afterwards every report must carry that
//! token from that origin. State lives in `extension.json` in the data dir (0600), so a CLI
//! process can open the window for the running agent; only SHA-256 hashes of tokens are written.

use super::site::Family;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The file's name in the data dir.
pub const PAIRING_FILE: &str = "extension.json";
/// How long a pairing window stays open.
pub const PAIRING_WINDOW_MS: i64 = 120_000;

/// One paired extension.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paired {
    /// `chrome-extension://<id>` or `moz-extension://<uuid>`.
    pub origin: String,
    /// Hex SHA-256 of its token.
    token_sha256: String,
    /// When.
    pub paired_at_ms: i64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct State {
    open_until_ms: Option<i64>,
    paired: Vec<Paired>,
}

/// Pairing refused.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    /// No pairing window is open.
    #[error("no pairing window is open: choose \"Pair browser\" in the agent first")]
    Closed,
    /// The state file failed.
    #[error("pairing state: {0}")]
    Io(#[from] std::io::Error),
}

/// A paired extension's token (shown once, to the extension).
pub struct Token(String);

impl Token {
    /// The token's text, for the one response that hands it over.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The family an extension origin belongs to (`None`: not an extension, e.g. a web page).
pub fn origin_family(origin: &str) -> Option<Family> {
    let (scheme, rest) = origin.split_once("://")?;
    let id_ok = !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    match scheme {
        "chrome-extension" if id_ok => Some(Family::Chromium),
        "moz-extension" if id_ok => Some(Family::Firefox),
        _ => None,
    }
}

/// The pairing state of one data dir.
#[derive(Debug)]
pub struct Pairings {
    path: PathBuf,
    /// Serialises this process's read-modify-write of the file.
    writing: Mutex<()>,
}

impl Pairings {
    /// The pairings kept in `dir`.
    pub fn new(dir: &Path) -> Self {
        Self { path: dir.join(PAIRING_FILE), writing: Mutex::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writing.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn reload(&self) -> std::io::Result<State> {
        let state = match std::fs::read(&self.path) {
            Ok(b) => serde_json::from_slice(&b).map_err(std::io::Error::other)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(e),
        };
        Ok(state)
    }

    fn save(&self, state: &State) -> std::io::Result<()> {
        use std::io::Write;
        let tmp = self.path.with_extension("json.tmp");
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)
    }

    /// Opens a pairing window from `now_ms` for [`PAIRING_WINDOW_MS`].
    pub fn open_window(&self, now_ms: i64) -> std::io::Result<i64> {
        let _writing = self.lock();
        let mut state = self.reload()?;
        let until = now_ms + PAIRING_WINDOW_MS;
        state.open_until_ms = Some(until);
        self.save(&state)?;
        Ok(until)
    }

    /// Pairs the extension at `origin` (replacing an earlier token of that origin) if a window
    /// is open at `now_ms`.
    pub fn pair(&self, origin: &str, now_ms: i64) -> Result<Token, PairError> {
        let _writing = self.lock();
        let mut state = self.reload()?;
        if state.open_until_ms.is_none_or(|until| now_ms > until) {
            return Err(PairError::Closed);
        }
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = Token(hex::encode(bytes));
        state.paired.retain(|p| p.origin != origin);
        state.paired.push(Paired {
            origin: origin.to_owned(),
            token_sha256: digest(&token.0),
            paired_at_ms: now_ms,
        });
        self.save(&state)?;
        Ok(token)
    }

    /// Whether `token` was given to the extension at `origin`.
    pub fn check(&self, origin: &str, token: &str) -> bool {
        // Read afresh each time (a small file, a report every few seconds): a pairing forgotten
        // by another process ends at once.
        let hash = digest(token);
        self.reload()
            .is_ok_and(|s| s.paired.iter().any(|p| p.origin == origin && p.token_sha256 == hash))
    }

    /// The paired extensions.
    pub fn paired(&self) -> Vec<Paired> {
        self.reload().map(|s| s.paired).unwrap_or_default()
    }

    /// Forgets every paired extension and closes the window.
    pub fn forget_all(&self) -> std::io::Result<()> {
        let _writing = self.lock();
        self.save(&State::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "chrome-extension://abcdefghijklmnopabcdefghijklmnop";

    #[test]
    fn only_an_open_window_pairs_and_the_token_works_only_from_its_origin() {
        let dir = tempfile::tempdir().unwrap();
        let p = Pairings::new(dir.path());
        assert!(matches!(p.pair(ORIGIN, 1_000), Err(PairError::Closed)));
        let until = p.open_window(1_000).unwrap();
        assert!(matches!(p.pair(ORIGIN, until + 1), Err(PairError::Closed)));
        let token = p.pair(ORIGIN, until).unwrap();
        assert!(p.check(ORIGIN, token.expose()));
        assert!(!p.check("moz-extension://other", token.expose()));
        assert!(!p.check(ORIGIN, "0000"));
        // Pairing again replaces the old token.
        let again = p.pair(ORIGIN, until).unwrap();
        assert!(!p.check(ORIGIN, token.expose()) && p.check(ORIGIN, again.expose()));
        assert_eq!(format!("{again:?}"), "Token(…)");
    }

    #[test]
    fn another_process_pairing_is_seen_and_only_hashes_touch_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let running = Pairings::new(dir.path());
        let cli = Pairings::new(dir.path());
        cli.open_window(0).unwrap();
        let token = running.pair(ORIGIN, 10).unwrap();
        assert!(cli.check(ORIGIN, token.expose()));
        let file = std::fs::read_to_string(dir.path().join(PAIRING_FILE)).unwrap();
        assert!(!file.contains(token.expose()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode =
                std::fs::metadata(dir.path().join(PAIRING_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        cli.forget_all().unwrap();
        assert!(!running.check(ORIGIN, token.expose()));
    }

    #[test]
    fn only_extension_origins_have_a_family() {
        assert_eq!(origin_family(ORIGIN), Some(Family::Chromium));
        assert_eq!(origin_family("moz-extension://1b2c-33"), Some(Family::Firefox));
        for o in [
            "http://127.0.0.1:8080",
            "https://evil.example",
            "null",
            "chrome-extension://",
            "chrome-extension://a/b",
        ] {
            assert_eq!(origin_family(o), None, "{o}");
        }
    }
}
