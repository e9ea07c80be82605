//! The idle probe: milliseconds since the last keyboard or mouse input, and whether the screen is
//! locked (screen saver active). Nothing about the input itself is ever read.

use super::ProbeError;

/// What the idle probe saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct IdleState {
    /// Milliseconds since the last input.
    pub idle_ms: u64,
    /// The screen is locked or the screen saver is on.
    pub locked: bool,
}

/// Reads the idle time.
pub trait IdleProbe: Send {
    /// The current idle state.
    fn idle(&mut self) -> Result<IdleState, ProbeError>;
}

/// The platform's idle probe.
pub fn platform_idle_probe() -> Result<Box<dyn IdleProbe>, ProbeError> {
    #[cfg(target_os = "linux")]
    {
        Ok(Box::new(super::x11::X11Desktop::connect(None)?))
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(ProbeError::Unsupported)
    }
}
