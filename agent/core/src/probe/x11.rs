//! The X11 desktop through `x11rb` (pure Rust, no Xlib): active window and idle time.
//!
//! The active window is `_NET_ACTIVE_WINDOW` on the root (set by EWMH window managers), falling
//! back to the input focus, walked up to the top-level client that carries the properties. The
//! title is `_NET_WM_NAME` (UTF-8), falling back to `WM_NAME` (which is all xterm sets). Idle time
//! and the screen-saver state come from the MIT-SCREEN-SAVER extension.
//!
//! Errors: an X protocol error about one window (it closed between two requests) only makes this
//! sample see no window; a broken connection (X server gone, e.g. logout) is reported and the
//! probe reconnects on a later call, at most every few seconds.

use super::{IdleProbe, IdleState, ProbeError, WindowInfo, WindowProbe};
use std::time::{Duration, Instant};
use x11rb::connection::{Connection, RequestConnection as _};
use x11rb::errors::ReplyError;
use x11rb::protocol::screensaver::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{Atom, AtomEnum, ConnectionExt as _, Window};
use x11rb::rust_connection::RustConnection;

struct Atoms {
    net_active_window: Atom,
    net_wm_name: Atom,
    net_wm_pid: Atom,
    utf8_string: Atom,
}

/// How long to wait between attempts to reach a lost X server.
const RECONNECT_EVERY: Duration = Duration::from_secs(5);

/// The X server, reconnected when lost; serves both the window and the idle probe.
pub struct X11Desktop {
    display: Option<String>,
    conn: Option<Conn>,
    next_attempt: Instant,
}

struct Conn {
    conn: RustConnection,
    root: Window,
    atoms: Atoms,
    has_screensaver: bool,
}

impl std::fmt::Debug for X11Desktop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X11Desktop")
            .field("display", &self.display)
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

/// A failure to talk to the server at all.
fn platform<E: std::fmt::Display>(e: E) -> ProbeError {
    ProbeError::Platform(e.to_string())
}

/// A failed reply: an X error is about one request (a window that just closed); anything else
/// means the connection is gone.
fn reply_err(e: ReplyError) -> ProbeError {
    match e {
        ReplyError::X11Error(e) => ProbeError::Transient(format!("{:?}", e.error_kind)),
        other => platform(other),
    }
}

impl X11Desktop {
    /// Connects to `display` (for example `":99"`), or to `$DISPLAY` when `None`.
    pub fn connect(display: Option<&str>) -> Result<Self, ProbeError> {
        let conn = Conn::open(display)?;
        Ok(Self {
            display: display.map(str::to_owned),
            conn: Some(conn),
            next_attempt: Instant::now(),
        })
    }

    /// Runs `f` on the connection, reconnecting first if it was lost, and dropping it when `f`
    /// finds it broken.
    fn with<T>(&mut self, f: impl FnOnce(&Conn) -> Result<T, ProbeError>) -> Result<T, ProbeError> {
        if self.conn.is_none() {
            if Instant::now() < self.next_attempt {
                return Err(ProbeError::NoDisplay("X server lost; reconnecting soon".into()));
            }
            self.next_attempt = Instant::now() + RECONNECT_EVERY;
            self.conn = Some(Conn::open(self.display.as_deref())?);
            tracing::info!("reconnected to the X server");
        }
        let conn = self.conn.as_ref().ok_or(ProbeError::Unsupported)?;
        let result = f(conn);
        if let Err(ProbeError::Platform(e)) = &result {
            tracing::warn!(error = %e, "lost the X server; will reconnect");
            self.conn = None;
            self.next_attempt = Instant::now() + RECONNECT_EVERY;
        }
        result
    }
}

impl Conn {
    fn open(display: Option<&str>) -> Result<Self, ProbeError> {
        let (conn, screen) =
            x11rb::connect(display).map_err(|e| ProbeError::NoDisplay(e.to_string()))?;
        let root = conn.setup().roots[screen].root;
        let intern = |name: &[u8]| -> Result<Atom, ProbeError> {
            Ok(conn.intern_atom(false, name).map_err(platform)?.reply().map_err(reply_err)?.atom)
        };
        let atoms = Atoms {
            net_active_window: intern(b"_NET_ACTIVE_WINDOW")?,
            net_wm_name: intern(b"_NET_WM_NAME")?,
            net_wm_pid: intern(b"_NET_WM_PID")?,
            utf8_string: intern(b"UTF8_STRING")?,
        };
        let has_screensaver = conn
            .extension_information(screensaver::X11_EXTENSION_NAME)
            .map_err(platform)?
            .is_some();
        if !has_screensaver {
            tracing::warn!("the X server has no MIT-SCREEN-SAVER extension; idle time is unknown");
        }
        Ok(Self { conn, root, atoms, has_screensaver })
    }

    fn property(
        &self,
        window: Window,
        name: Atom,
        ty: Atom,
    ) -> Result<Option<Vec<u8>>, ProbeError> {
        let reply = self
            .conn
            .get_property(false, window, name, ty, 0, 4096)
            .map_err(platform)?
            .reply()
            .map_err(reply_err)?;
        if reply.type_ == u32::from(AtomEnum::NONE) || reply.value.is_empty() {
            return Ok(None);
        }
        Ok(Some(reply.value))
    }

    fn cardinal(
        &self,
        window: Window,
        name: Atom,
        ty: AtomEnum,
    ) -> Result<Option<u32>, ProbeError> {
        let reply = self
            .conn
            .get_property(false, window, name, ty, 0, 1)
            .map_err(platform)?
            .reply()
            .map_err(reply_err)?;
        Ok(reply.value32().and_then(|mut v| v.next()))
    }

    fn title(&self, window: Window) -> Result<Option<String>, ProbeError> {
        if let Some(v) = self.property(window, self.atoms.net_wm_name, self.atoms.utf8_string)? {
            return Ok(Some(String::from_utf8_lossy(&v).into_owned()));
        }
        // WM_NAME is STRING (Latin-1), COMPOUND_TEXT or (rarely) UTF8_STRING.
        let reply = self
            .conn
            .get_property(false, window, AtomEnum::WM_NAME, AtomEnum::ANY, 0, 4096)
            .map_err(platform)?
            .reply()
            .map_err(reply_err)?;
        if reply.value.is_empty() {
            return Ok(None);
        }
        Ok(Some(if reply.type_ == self.atoms.utf8_string {
            String::from_utf8_lossy(&reply.value).into_owned()
        } else {
            decode_compound_text(&reply.value)
        }))
    }

    fn class(&self, window: Window) -> Result<Option<String>, ProbeError> {
        let Some(v) = self.property(window, AtomEnum::WM_CLASS.into(), AtomEnum::STRING.into())?
        else {
            return Ok(None);
        };
        // "instance\0class\0": prefer the class, else the instance.
        let mut parts = v.split(|&b| b == 0).filter(|p| !p.is_empty());
        let instance = parts.next().map(|p| String::from_utf8_lossy(p).into_owned());
        let class = parts.next().map(|p| String::from_utf8_lossy(p).into_owned());
        Ok(class.or(instance))
    }

    /// Walks up from `window` to the first ancestor that names itself (a client window).
    fn client_of(&self, mut window: Window) -> Result<Option<Window>, ProbeError> {
        for _ in 0..32 {
            if window == self.root || window == 0 {
                return Ok(None);
            }
            if self.class(window)?.is_some() || self.title(window)?.is_some() {
                return Ok(Some(window));
            }
            window =
                self.conn.query_tree(window).map_err(platform)?.reply().map_err(reply_err)?.parent;
        }
        Ok(None)
    }

    fn focused_window(&self) -> Result<Option<Window>, ProbeError> {
        let active = self.cardinal(self.root, self.atoms.net_active_window, AtomEnum::WINDOW)?;
        if let Some(w) = active.filter(|&w| w != 0) {
            return Ok(Some(w));
        }
        let focus =
            self.conn.get_input_focus().map_err(platform)?.reply().map_err(reply_err)?.focus;
        // 0 is None, 1 is PointerRoot.
        if focus <= 1 {
            return Ok(None);
        }
        self.client_of(focus)
    }
}

/// Decodes STRING / COMPOUND_TEXT as xterm writes them: Latin-1 by default, with UTF-8 segments
/// between `ESC % G` and `ESC % @`; other charset designations are skipped.
fn decode_compound_text(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut utf8 = Vec::new();
    let mut in_utf8 = false;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0x1b {
            if bytes[i + 1..].starts_with(b"%G") {
                in_utf8 = true;
                i += 3;
                continue;
            }
            if bytes[i + 1..].starts_with(b"%@") {
                out.push_str(&String::from_utf8_lossy(&utf8));
                utf8.clear();
                in_utf8 = false;
                i += 3;
                continue;
            }
            // Any other designation: ESC, intermediates (0x20–0x2F), one final byte.
            i += 1;
            while i < bytes.len() && (0x20..=0x2f).contains(&bytes[i]) {
                i += 1;
            }
            i += 1;
            continue;
        }
        if in_utf8 {
            utf8.push(bytes[i]);
        } else {
            out.push(bytes[i] as char);
        }
        i += 1;
    }
    out.push_str(&String::from_utf8_lossy(&utf8));
    out
}

fn exe_of(pid: u32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok().map(|p| p.to_string_lossy().into_owned())
}

impl Conn {
    fn active_window(&self) -> Result<Option<WindowInfo>, ProbeError> {
        let Some(window) = self.focused_window()? else {
            return Ok(None);
        };
        let title = self.title(window)?.unwrap_or_default();
        let pid = self.cardinal(window, self.atoms.net_wm_pid, AtomEnum::CARDINAL)?;
        let exe = pid.and_then(exe_of);
        let app = match self.class(window)? {
            Some(class) => class,
            None => exe
                .as_deref()
                .and_then(|e| std::path::Path::new(e).file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "unknown".to_owned()),
        };
        Ok(Some(WindowInfo { app, exe, title, pid }))
    }

    fn idle(&self) -> Result<IdleState, ProbeError> {
        if !self.has_screensaver {
            return Ok(IdleState::default());
        }
        let info = self
            .conn
            .screensaver_query_info(self.root)
            .map_err(platform)?
            .reply()
            .map_err(reply_err)?;
        Ok(IdleState {
            idle_ms: u64::from(info.ms_since_user_input),
            locked: info.state == u8::from(screensaver::State::ON),
        })
    }
}

impl WindowProbe for X11Desktop {
    fn active_window(&mut self) -> Result<Option<WindowInfo>, ProbeError> {
        match self.with(Conn::active_window) {
            // The window closed while it was being read: this sample sees none.
            Err(ProbeError::Transient(_)) => Ok(None),
            other => other,
        }
    }
}

impl IdleProbe for X11Desktop {
    fn idle(&mut self) -> Result<IdleState, ProbeError> {
        self.with(Conn::idle)
    }
}

#[cfg(test)]
mod tests {
    use super::decode_compound_text;

    #[test]
    fn compound_text_decodes_latin1_and_utf8_segments() {
        assert_eq!(decode_compound_text(b"plain"), "plain");
        assert_eq!(decode_compound_text(b"na\xefve"), "naïve");
        let mut ct = b"a \x1b%G".to_vec();
        ct.extend("— ü".as_bytes());
        ct.extend(b"\x1b%@ z\x1b-A\xe9");
        assert_eq!(decode_compound_text(&ct), "a — ü zé");
    }
}
