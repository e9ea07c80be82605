//! Screenshots of a real X screen through `worktrail-agentd run` (the agent as its own process,
//! on `$DISPLAY`): JPEG, downscaled, within the limit, blurred on the device when the policy says
//! so (issue 3). The screen probe's pixels and monitors are checked in `agent_x11.rs`.

use super::agent_cli::{
    Running, agentd, desktop_with_xterm, enroll, eventually, fast_policy, ok, sigterm,
};
use std::collections::HashSet;
use std::time::Duration;
use worktrail_shared::policy::{Policy, ScreenshotPolicy};
use worktrail_tests::{Backend, TestServer};

fn sharpness(jpeg: &[u8]) -> f64 {
    let img = image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg).expect("a JPEG");
    worktrail_agent_core::probe::screen::sharpness(&img.to_rgb8())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshots_of_the_real_screen_arrive_as_jpeg_within_limits_and_blurred_when_the_policy_says_so()
 {
    let server = TestServer::start(Backend::Sqlite).await.unwrap();
    let shots = ScreenshotPolicy {
        enabled: true,
        interval_secs: 1,
        blur: false,
        max_width: 640,
        jpeg_quality: 60,
    };
    let policy = Policy { screenshots: shots.clone(), ..fast_policy() };
    server.store().set_policy(server.company, &policy).await.unwrap();
    let desktop = desktop_with_xterm("screenshot subject").await;
    let dir = tempfile::tempdir().unwrap();
    ok(enroll(&server, dir.path(), "sam@test.example"));

    let mut seen = HashSet::new();
    let mut take = async |blurred: bool| {
        let mut run = Running(
            agentd(dir.path()).arg("run").env("DISPLAY", &desktop.display).spawn().unwrap(),
        );
        let row = eventually("an uploaded screenshot", Duration::from_secs(60), || async {
            let rows = server.store().screenshots(server.company).await.unwrap();
            rows.into_iter().find(|r| r.object_key.is_some() && !seen.contains(&r.id))
        })
        .await;
        sigterm(&run.0);
        assert!(run.0.wait().unwrap().success());
        seen.insert(row.id);
        assert_eq!(row.blurred, blurred);
        let bytes = server.state.objects.get(row.object_key.as_deref().unwrap()).await.unwrap();
        assert_eq!(bytes.len() as i64, row.bytes);
        assert!(bytes.len() <= worktrail_shared::limits::MAX_SCREENSHOT_BYTES);
        let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).unwrap();
        assert_eq!((img.width(), img.height()), (640, 400), "1280×800 downscaled to 640 wide");
        sharpness(&bytes)
    };
    let sharp = take(false).await;
    server
        .store()
        .set_policy(
            server.company,
            &Policy { screenshots: ScreenshotPolicy { blur: true, ..shots }, ..policy },
        )
        .await
        .unwrap();
    let blurred = take(true).await;
    assert!(blurred < sharp / 3.0, "blurred {blurred:.2} vs sharp {sharp:.2}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_shows_what_would_be_recorded_now_and_writes_the_processed_screenshots() {
    let desktop = desktop_with_xterm("probe subject").await;
    let dir = tempfile::tempdir().unwrap();
    let shots = dir.path().join("shots");
    let out = ok(agentd(dir.path())
        .args(["probe", "--screenshots"])
        .arg(&shots)
        .env("DISPLAY", &desktop.display)
        .output()
        .unwrap());
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["window"]["title"], "probe subject", "{report:#}");
    assert_eq!(report["window"]["app"], "XTerm");
    assert_eq!(report["privacy_verdict"], "Keep");
    let shot = &report["screenshots"][0];
    assert_eq!((shot["width"].as_u64(), shot["blurred"].as_bool()), (Some(1280), Some(false)));
    let jpeg = std::fs::read(shots.join("monitor-0.jpg")).unwrap();
    assert_eq!(jpeg.len() as u64, shot["bytes"].as_u64().unwrap());
    image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg).expect("a JPEG");
}
