//! The tray icon and its menu. The icon shows the state (tracking, paused, offline, blocked, not
//! set up); the menu shows the status line, the last sync and the queue, and offers Pause/Resume
//! and Quit only as far as the company's policy allows. Everything shown comes from the core's
//! snapshot, refreshed every few seconds and right after any action.

use crate::commands;
use std::time::Duration;
use tauri::image::Image;
use tauri::menu::{Menu, MenuBuilder, MenuItem, MenuItemBuilder};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Manager, Wry};
use tokio::sync::Notify;
use worktrail_agent_core::agent::service::{AgentHandle, Snapshot, TrayState};

const REFRESH: Duration = Duration::from_secs(3);

/// The menu entries whose text or state changes.
struct Items {
    status: MenuItem<Wry>,
    last_sync: MenuItem<Wry>,
    queue: MenuItem<Wry>,
    pause: MenuItem<Wry>,
    quit: MenuItem<Wry>,
}

/// Wakes the refresh loop at once (after an action in the window or the menu).
struct Refresh(Notify);

fn icon(state: TrayState) -> tauri::Result<Image<'static>> {
    Image::from_bytes(match state {
        TrayState::NotEnrolled => include_bytes!("../icons/tray-setup.png"),
        TrayState::Tracking => include_bytes!("../icons/tray-tracking.png"),
        TrayState::Paused => include_bytes!("../icons/tray-paused.png"),
        TrayState::Offline => include_bytes!("../icons/tray-offline.png"),
        TrayState::Blocked => include_bytes!("../icons/tray-blocked.png"),
    })
}

/// Builds the tray and starts its refresh loop.
pub fn build(app: &AppHandle, agent: AgentHandle) -> tauri::Result<()> {
    let item = |id: &str, text: &str, enabled: bool| {
        MenuItemBuilder::with_id(id, text).enabled(enabled).build(app)
    };
    let items = Items {
        status: item("status", "Starting…", false)?,
        last_sync: item("last-sync", "Last sync: never", false)?,
        queue: item("queue", "Queue: empty", false)?,
        pause: item("pause", "Pause tracking", false)?,
        quit: item("quit", "Quit Worktrail", true)?,
    };
    let menu: Menu<Wry> = MenuBuilder::new(app)
        .items(&[&items.status, &items.last_sync, &items.queue])
        .separator()
        .item(&items.pause)
        .item(&item("sync", "Sync now", true)?)
        .item(&item("open", "Open Worktrail", true)?)
        .item(&item("dashboard", "Open my dashboard", true)?)
        .separator()
        .item(&items.quit)
        .build()?;
    let tray = TrayIconBuilder::with_id("worktrail")
        .icon(icon(TrayState::NotEnrolled)?)
        .tooltip("Worktrail")
        .menu(&menu)
        .on_menu_event(on_menu)
        .build(app)?;
    app.manage(Refresh(Notify::new()));
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let mut shown = None;
        loop {
            match agent.snapshot().await {
                Ok(s) => show(&tray, &items, &s, &mut shown),
                Err(e) => tracing::warn!(error = %e, "cannot read the agent's status"),
            }
            let refresh = app.state::<Refresh>();
            let _ = tokio::time::timeout(REFRESH, refresh.0.notified()).await;
        }
    });
    Ok(())
}

/// Refreshes the tray now.
pub fn refresh_now(app: &AppHandle) {
    if let Some(r) = app.try_state::<Refresh>() {
        r.0.notify_one();
    }
}

fn show(tray: &TrayIcon, items: &Items, s: &Snapshot, shown: &mut Option<TrayState>) {
    let line = crate::text::status_line(&s.status, s.state);
    let _ = items.status.set_text(&line);
    let _ = tray.set_tooltip(Some(format!("Worktrail: {line}")));
    let _ = items.last_sync.set_text(format!(
        "Last sync: {}",
        crate::text::ago(s.status.queue.last_sync_ms, crate::text::now_ms())
    ));
    let q = &s.status.queue;
    let _ = items.queue.set_text(match q.records {
        0 => "Queue: empty".to_owned(),
        n => format!("Queue: {n} records waiting"),
    });
    let (pause_text, pause_ok) = match (s.state, s.policy.allow_pause) {
        (TrayState::Paused, _) => ("Resume tracking", true),
        (TrayState::Tracking | TrayState::Offline, true) => ("Pause tracking", true),
        (TrayState::Tracking | TrayState::Offline, false) => ("Pausing is not allowed", false),
        _ => ("Pause tracking", false),
    };
    let _ = items.pause.set_text(pause_text);
    let _ = items.pause.set_enabled(pause_ok);
    let may_quit = s.policy.allow_quit || !s.status.enrolled;
    let _ = items.quit.set_enabled(may_quit);
    let _ =
        items.quit.set_text(if may_quit { "Quit Worktrail" } else { "Quitting is not allowed" });
    if *shown != Some(s.state) {
        match icon(s.state) {
            Ok(i) => {
                let _ = tray.set_icon(Some(i));
            }
            Err(e) => tracing::error!(error = %e, "tray icon"),
        }
        *shown = Some(s.state);
    }
}

fn on_menu(app: &AppHandle, event: tauri::menu::MenuEvent) {
    let agent = app.state::<AgentHandle>().inner().clone();
    let app = app.clone();
    match event.id().as_ref() {
        "open" => crate::window::open(&app),
        "pause" => {
            let paused = tauri::async_runtime::block_on(agent.snapshot())
                .is_ok_and(|s| s.state == TrayState::Paused);
            if let Err(e) = agent.set_paused(!paused) {
                tracing::warn!(error = %e, "pause refused");
            }
            refresh_now(&app);
        }
        "sync" => {
            tauri::async_runtime::spawn(async move {
                if let Err(e) = agent.sync_now().await {
                    tracing::warn!(error = %e, "sync now failed");
                }
                refresh_now(&app);
            });
        }
        "dashboard" => {
            tauri::async_runtime::spawn(async move {
                if let Err(e) = commands::open_dashboard_of(&app, &agent).await {
                    tracing::warn!(error = %e, "cannot open the dashboard");
                }
            });
        }
        "quit" => {
            let enrolled =
                tauri::async_runtime::block_on(agent.snapshot()).is_ok_and(|s| s.status.enrolled);
            if enrolled && !agent.may_quit() {
                return;
            }
            tauri::async_runtime::spawn(async move {
                agent.shutdown().await;
                app.exit(0);
            });
        }
        _ => {}
    }
}
