//! The agent's disk filling up under it (issue 7): no crash, capture pauses, status says why,
//! and everything resumes once there is room again.
//!
//! The disk is real: the test mounts a 4 MiB tmpfs (`mount -t tmpfs`, which needs root — CI
//! runs as root; elsewhere the test fails saying so) and puts the agent's data dir on it, then
//! fills the file system with a plain file until the kernel answers `ENOSPC`. SQLite then meets
//! the same error a full laptop disk gives it. (Not `chmod`: root ignores permissions; not
//! `PRAGMA max_page_count`: that is SQLite's own limit, not the disk.) The mount is removed when
//! the test ends, however it ends. A read-only remount of the same file system checks that the
//! CLI says why it cannot open the queue, and works again once it is writable.

use crate::agent_cli::agentd;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use worktrail_agent_core::agent::Agent;
use worktrail_agent_core::secrets::{MemoryStore, Secrets};
use worktrail_tests::agent::{agent_clock, fake_probes};
use worktrail_tests::{Backend, TestServer};

/// A small tmpfs mounted on a temporary directory; unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "worktrail-test"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs to fill a real disk and needs root (CI runs as \
             root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Writes a file until the file system is full; returns it.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0x5Au8; 16 * 1024];
    loop {
        match f.write_all(&chunk).and_then(|()| f.sync_all()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => panic!("filling the tmpfs: {e}"),
        }
    }
    // Tail bytes a partial write may have squeezed in still leave no room for a page.
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_pauses_capture_says_why_and_recovers_without_losing_what_was_closing() {
    let server = TestServer::start(Backend::Sqlite).await.unwrap();
    let tmpfs = Tmpfs::mount("4m");
    let data = tmpfs.path().join("agent");
    let (probes, window, _idle) = fake_probes();
    let clock = Arc::new(agent_clock(&server));
    let secrets = Secrets(Arc::new(MemoryStore::default()));
    let mut agent = Agent::open(&data, secrets, probes, clock.clone()).unwrap();
    agent
        .enroll(&server.base_url, server.company_key.clone(), Some("dora@test.example".into()))
        .await
        .unwrap();
    let step = async |agent: &mut Agent, title: &str| {
        window.focus("editor", title);
        clock.advance(1000);
        agent.sample_once().await.expect("sampling never fails outright")
    };

    for title in ["before 1", "before 2", "before 3"] {
        step(&mut agent, title).await;
    }
    assert!(agent.status().await.unwrap().capturing);

    let filler = fill(tmpfs.path());
    // Each new title closes a span; the first write that finds no room pauses capture.
    let mut closing = vec!["before 3".to_owned()];
    let mut paused = None;
    for i in 0..10 {
        let title = format!("while full {i}");
        step(&mut agent, &title).await;
        let st = agent.status().await.unwrap();
        if let Some(why) = &st.storage_error {
            assert!(!st.capturing, "{st:?}");
            paused = Some(why.clone());
            break;
        }
        closing.push(title);
    }
    let why = paused.expect("a full disk pauses capture within 10 samples");
    assert!(why.contains("the disk is full"), "{why}");

    // Another process (the CLI) sees it too, by trying to write there itself.
    let out = agentd(&data).args(["status", "--json"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let st: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        st["storage_error"].as_str().unwrap_or_default().contains("cannot be written"),
        "{st:#}"
    );
    assert_eq!(st["capturing"], false);

    // Still full: sampling and syncing go on failing softly; nothing is captured meanwhile.
    for i in 0..3 {
        step(&mut agent, &format!("unseen {i}")).await;
        assert!(agent.status().await.unwrap().storage_error.is_some());
    }
    let _ = agent.sync_once().await; // may fail (it cannot store the batch); must not panic

    std::fs::remove_file(&filler).unwrap();
    step(&mut agent, "after 1").await;
    let st = agent.status().await.unwrap();
    assert_eq!((st.storage_error, st.capturing), (None, true));
    step(&mut agent, "after 2").await;
    agent.sync_once().await.unwrap();
    assert_eq!(agent.status().await.unwrap().queue.records, 0);

    let spans = server.store().app_spans(server.company, 0, i64::MAX).await.unwrap();
    let titles: Vec<_> = spans.iter().filter_map(|s| s.title.clone()).collect();
    for t in ["before 1", "before 2"]
        .iter()
        .map(|t| t.to_string())
        .chain(closing)
        .chain(["after 1".into()])
    {
        assert!(titles.contains(&t), "{t:?} was lost; the server has {titles:?}");
    }
    assert!(!titles.iter().any(|t| t.starts_with("unseen")), "captured while paused: {titles:?}");
    let q = agent.queue().call(|db| db.integrity_check()).await.unwrap();
    assert_eq!(q, "ok");

    // Read-only. A file system cannot be remounted read-only under a process writing to it
    // (EBUSY), so the agent stops first; then every command says why it cannot work, and
    // all is well once the file system is writable again.
    drop(agent);
    let remount = |mode: &str| {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(tmpfs.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    remount("ro");
    for cmd in [&["status", "--json"][..], &["sync-now"]] {
        let out = agentd(&data).args(cmd).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{cmd:?} on a read-only queue");
        assert!(
            stderr.contains("the data dir cannot be written: Read-only file system"),
            "{cmd:?}: {stderr}"
        );
    }
    remount("rw");
    let out = agentd(&data).args(["status", "--json"]).output().unwrap();
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(st["storage_error"].is_null(), "{st:#}");
    assert_eq!(st["queue"]["records"], 0);
}
