//! Fakes for the probes: the test sets what the "desktop" shows, the sampler reads it. Clones
//! share state, so a test keeps one handle and gives the other to the sampler.

use super::{IdleProbe, IdleState, ProbeError, ScreenProbe, WindowInfo, WindowProbe};
use image::RgbaImage;
use std::sync::{Arc, Mutex};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A fake active window.
#[derive(Clone, Debug, Default)]
pub struct FakeWindow(Arc<Mutex<Option<WindowInfo>>>);

impl FakeWindow {
    /// Focuses a window of `app` titled `title`.
    pub fn focus(&self, app: &str, title: &str) {
        *lock(&self.0) = Some(WindowInfo {
            app: app.into(),
            exe: Some(format!("/usr/bin/{app}")),
            title: title.into(),
            pid: Some(4242),
        });
    }
    /// Nothing has the focus.
    pub fn clear(&self) {
        *lock(&self.0) = None;
    }
}

impl WindowProbe for FakeWindow {
    fn active_window(&mut self) -> Result<Option<WindowInfo>, ProbeError> {
        Ok(lock(&self.0).clone())
    }
}

/// A fake idle timer.
#[derive(Clone, Debug, Default)]
pub struct FakeIdle(Arc<Mutex<IdleState>>);

impl FakeIdle {
    /// Sets the time since the last input.
    pub fn set_idle_ms(&self, ms: u64) {
        lock(&self.0).idle_ms = ms;
    }
    /// Locks or unlocks the screen.
    pub fn set_locked(&self, locked: bool) {
        lock(&self.0).locked = locked;
    }
}

impl IdleProbe for FakeIdle {
    fn idle(&mut self) -> Result<IdleState, ProbeError> {
        Ok(*lock(&self.0))
    }
}

/// A fake set of monitors showing fixed images.
#[derive(Clone, Debug, Default)]
pub struct FakeScreens(pub Vec<RgbaImage>);

impl ScreenProbe for FakeScreens {
    fn capture_all(&mut self) -> Result<Vec<RgbaImage>, ProbeError> {
        Ok(self.0.clone())
    }
}
