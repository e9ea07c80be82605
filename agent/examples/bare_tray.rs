//! A bare Tauri tray app — an icon and a one-item menu, no window, no agent — built from the
//! same Tauri features and config as the real one. `scripts/measure-tray-rss` measures the tray
//! app against it in the same run: SPEC section 5 allows the tray app this much + 15 MB.

use tauri::menu::{MenuBuilder, MenuItemBuilder};
use tauri::tray::TrayIconBuilder;

fn main() {
    tauri::Builder::default()
        .setup(|app| {
            let quit = MenuItemBuilder::with_id("quit", "Quit").build(app)?;
            let menu = MenuBuilder::new(app).item(&quit).build()?;
            TrayIconBuilder::new()
                .icon(tauri::image::Image::from_bytes(include_bytes!(
                    "../icons/tray-tracking.png"
                ))?)
                .menu(&menu)
                .on_menu_event(|app, _| app.exit(0))
                .build(app)?;
            Ok(())
        })
        .build(tauri::generate_context!())
        .expect("build the bare tray app")
        .run(|_, event| {
            if let tauri::RunEvent::ExitRequested { api, code: None, .. } = event {
                api.prevent_exit();
            }
        });
}
