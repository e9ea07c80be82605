//! Probes read the desktop: the active window, the time since the last input, and the screens.
//!
//! Each is a trait with a real platform implementation and a fake for tests. Probes report facts
//! only; what is kept, merged, redacted or dropped is the sampler's business. "No active window"
//! is a state (`Ok(None)`), not an error. No probe ever reads input content: idle time is the only
//! thing known about input.

pub mod fake;
pub mod idle;
pub mod screen;
pub mod window;
#[cfg(target_os = "linux")]
pub mod x11;
#[cfg(target_os = "linux")]
pub mod x11_screen;

pub use idle::{IdleProbe, IdleState};
pub use screen::{CapturedScreen, ScreenProbe};
pub use window::{WindowInfo, WindowProbe};

/// A probe could not read the desktop.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// There is no display to read (no X server, no session).
    #[error("no display: {0}")]
    NoDisplay(String),
    /// The platform call failed.
    #[error("platform error: {0}")]
    Platform(String),
    /// A passing failure about one request (a window closed while being read).
    #[error("transient: {0}")]
    Transient(String),
    /// This platform has no implementation of the probe.
    #[error("not supported on this platform")]
    Unsupported,
}
