//! The agent's window (ui/agent): created when asked for and destroyed when closed, because a
//! webview and its WebKit processes cost hundreds of MB while the tray alone stays small.

use tauri::{AppHandle, Manager, WebviewUrl, WebviewWindowBuilder};

/// The window's label (the capability in `capabilities/window.json` names it).
pub const LABEL: &str = "main";

/// Shows the window, creating it if it does not exist.
pub fn open(app: &AppHandle) {
    if let Some(w) = app.get_webview_window(LABEL) {
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
        return;
    }
    let built = WebviewWindowBuilder::new(app, LABEL, WebviewUrl::App("index.html".into()))
        .title("Worktrail")
        .inner_size(520.0, 720.0)
        .min_inner_size(420.0, 480.0)
        .build();
    if let Err(e) = built {
        tracing::error!(error = %e, "cannot open the window");
    }
}
