//! Task selection (issue 4): the agent fetches its company's open tasks from the real server,
//! the employee chooses one, and the app spans recorded from then on carry it to the server —
//! choosing another task closes the open span like a window change. A task of another company is
//! refused by the agent and dropped by the server, and the admin's tasks page counts the time.

use std::sync::Arc;
use worktrail_agent_core::ManualClock;
use worktrail_agent_core::agent::AgentError;
use worktrail_server::store::AppSpanRow;
use worktrail_shared::api::{BatchRequest, Record, RecordBody};
use worktrail_shared::{BatchId, COMPANY_KEY_HEADER, RecordId, TaskId};
use worktrail_tests::agent::{TestAgent, agent_clock, fake_probes};
use worktrail_tests::{Backend, TestServer, http};

async fn task_id(s: &TestServer, company: worktrail_shared::CompanyId, name: &str) -> TaskId {
    let tasks = s.store().tasks(company).await.expect("tasks");
    tasks.into_iter().find(|t| t.name == name).map(|t| t.id).expect("the task exists")
}

async fn spans(s: &TestServer) -> Vec<AppSpanRow> {
    s.store().app_spans(s.company, 0, i64::MAX).await.expect("spans")
}

/// One sample now, then a second passes.
async fn sample(a: &mut TestAgent, clock: &ManualClock) {
    a.agent.sample_once().await.unwrap();
    clock.advance(1_000);
}

async fn the_task_chosen_in_the_agent_reaches_the_server_on_its_app_spans(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    use worktrail_server::clock::Clock as _;
    let now = s.clock.now_ms();
    s.store().create_task(s.company, "Website", "Landing page", now).await.unwrap();
    s.store().create_task(s.company, "Website", "Blog", now).await.unwrap();
    let (other, _) = s.add_company("Other Co").await;
    s.store().create_task(other, "Secret", "Merger", now).await.unwrap();
    let (landing, blog) =
        (task_id(&s, s.company, "Landing page").await, task_id(&s, s.company, "Blog").await);
    let merger = task_id(&s, other, "Merger").await;

    let (probes, window, _idle) = fake_probes();
    let clock: ManualClock = agent_clock(&s);
    let mut a = TestAgent::enrolled(&s, "ada@test.example", probes, Arc::new(clock.clone())).await;
    // The tasks come with the policy; none is chosen yet.
    a.agent.syncer.refresh_policy().await.expect("policy and tasks");
    let (offered, chosen) = a.agent.tasks();
    let names: Vec<_> = offered.iter().map(|t| (t.project.as_str(), t.name.as_str())).collect();
    assert_eq!(names, [("Website", "Blog"), ("Website", "Landing page")]);
    assert_eq!(chosen, None);

    // Another company's task cannot be chosen.
    let err = a.agent.choose_task(Some(merger)).await.unwrap_err();
    assert!(matches!(err, AgentError::UnknownTask), "{err:?}");

    window.focus("code", "main.rs");
    sample(&mut a, &clock).await; // 0 s: no task
    sample(&mut a, &clock).await;
    a.agent.choose_task(Some(landing)).await.unwrap();
    sample(&mut a, &clock).await; // 2 s: the same window, now for the landing page
    sample(&mut a, &clock).await;
    sample(&mut a, &clock).await;
    a.agent.choose_task(Some(blog)).await.unwrap();
    sample(&mut a, &clock).await; // 5 s: the blog
    a.agent.choose_task(None).await.unwrap();
    sample(&mut a, &clock).await; // 6 s: no task again
    a.agent.capture.stop().await.unwrap();
    a.agent.sync_once().await.expect("sync");

    let got: Vec<_> = spans(&s).await.iter().map(|r| (r.end_ms - r.start_ms, r.task_id)).collect();
    assert_eq!(
        got,
        [(2_000, None), (3_000, Some(landing)), (1_000, Some(blog)), (1_000, None)],
        "one span per task, split where the task changed"
    );
    let tracked: Vec<_> = s
        .store()
        .tasks(s.company)
        .await
        .unwrap()
        .iter()
        .map(|t| (t.name.clone(), t.tracked_secs))
        .collect();
    assert_eq!(tracked, [("Blog".to_owned(), 1), ("Landing page".to_owned(), 3)]);

    // The choice survives a restart of the agent.
    a.agent.choose_task(Some(blog)).await.unwrap();
    let dir = a.dir;
    drop(a.agent);
    let reopened = worktrail_agent_core::Agent::open(
        dir.path(),
        worktrail_agent_core::secrets::Secrets(Arc::new(
            worktrail_agent_core::secrets::MemoryStore::default(),
        )),
        fake_probes().0,
        Arc::new(clock.clone()),
    )
    .expect("reopen the agent");
    assert_eq!(reopened.tasks().1, Some(blog));
    assert_eq!(reopened.tasks().0.len(), 2);
}

async fn a_forged_task_of_another_company_is_stored_as_no_task(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    use worktrail_server::clock::Clock as _;
    let now = s.clock.now_ms();
    s.store().create_task(s.company, "Ops", "On call", now).await.unwrap();
    let (other, _) = s.add_company("Other Co").await;
    s.store().create_task(other, "Secret", "Merger", now).await.unwrap();
    let (ours, theirs) =
        (task_id(&s, s.company, "On call").await, task_id(&s, other, "Merger").await);
    let (_, token) = s.enroll("ada@test.example").await;

    // The agent API lists this company's tasks only.
    let listed: serde_json::Value = http()
        .get(s.url("/api/v1/agent/tasks"))
        .header(COMPANY_KEY_HEADER, s.company_key.expose())
        .bearer_auth(token.expose())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["tasks"].as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed["tasks"][0]["id"], ours.to_string());

    let span = |seq: i64, task: Option<TaskId>| Record {
        id: RecordId::new(),
        seq,
        body: RecordBody::AppSpan {
            start_ms: now - 10_000 + seq * 1_000,
            end_ms: now - 9_000 + seq * 1_000,
            app: "code".into(),
            exe: None,
            title: None,
            task_id: task,
        },
    };
    let batch = BatchRequest {
        batch_id: BatchId::new(),
        sent_at_ms: now,
        dropped: Default::default(),
        records: vec![span(0, Some(ours)), span(1, Some(theirs)), span(2, Some(TaskId::new()))],
    };
    let resp = s.post_batch(&s.company_key, &token, &batch).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let stored: Vec<_> = spans(&s).await.iter().map(|r| r.task_id).collect();
    assert_eq!(stored, [Some(ours), None, None]);
}

both_backends!(
    the_task_chosen_in_the_agent_reaches_the_server_on_its_app_spans,
    a_forged_task_of_another_company_is_stored_as_no_task,
);
