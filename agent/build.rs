//! Tauri's build step: embeds tauri.conf.json, the capabilities and the window's files (ui/agent).

fn main() {
    tauri_build::build();
}
