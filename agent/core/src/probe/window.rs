//! The active-window probe: which application window has the focus.
//!
//! On Linux/X11 this is [`crate::probe::x11::X11Desktop`] (through `x11rb`, reliable for windows
//! that set only `WM_NAME`); on macOS and Windows `active-win-pos-rs` serves.

use super::ProbeError;

/// The focused application window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowInfo {
    /// Application name (X11: the `WM_CLASS` class, else the executable's file name).
    pub app: String,
    /// Executable path, when the platform tells it.
    pub exe: Option<String>,
    /// Window title (may be empty).
    pub title: String,
    /// Process id, when known.
    pub pid: Option<u32>,
}

/// Reads the active window.
pub trait WindowProbe: Send {
    /// The focused window, or `None` when nothing has the focus.
    fn active_window(&mut self) -> Result<Option<WindowInfo>, ProbeError>;
}

/// `active-win-pos-rs` on macOS and Windows.
#[cfg(any(target_os = "macos", target_os = "windows"))]
#[derive(Debug, Default)]
pub struct ActiveWinProbe;

#[cfg(any(target_os = "macos", target_os = "windows"))]
impl WindowProbe for ActiveWinProbe {
    fn active_window(&mut self) -> Result<Option<WindowInfo>, ProbeError> {
        match active_win_pos_rs::get_active_window() {
            Ok(w) => Ok(Some(WindowInfo {
                app: w.app_name,
                exe: Some(w.process_path.to_string_lossy().into_owned()),
                title: w.title,
                pid: u32::try_from(w.process_id).ok(),
            })),
            Err(()) => Ok(None),
        }
    }
}

/// The platform's window probe.
pub fn platform_window_probe() -> Result<Box<dyn WindowProbe>, ProbeError> {
    #[cfg(target_os = "linux")]
    {
        Ok(Box::new(super::x11::X11Desktop::connect(None)?))
    }
    #[cfg(any(target_os = "macos", target_os = "windows"))]
    {
        Ok(Box::new(ActiveWinProbe))
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
    {
        Err(ProbeError::Unsupported)
    }
}
