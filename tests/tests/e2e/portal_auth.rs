//! Sign-in, sessions, cross-site refusal, throttling, headers and invitations, over HTTP.

use worktrail_server::auth::session::COOKIE;
use worktrail_server::auth::throttle::PER_ACCOUNT;
use worktrail_shared::ErrorCode;
use worktrail_tests::{Backend, TestServer, expect_error, portal_client};

fn session_cookie(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(COOKIE))
        .map(str::to_owned)
}

async fn login_raw(
    s: &TestServer,
    email: &str,
    password: &str,
    cookie: Option<&str>,
) -> reqwest::Response {
    let mut req = worktrail_tests::http()
        .post(s.url("/login"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("email", email), ("password", password)]);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    req.send().await.unwrap()
}

fn token_of(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

async fn get_with(s: &TestServer, path: &str, cookie: &str) -> reqwest::Response {
    worktrail_tests::http().get(s.url(path)).header("cookie", cookie).send().await.unwrap()
}

async fn each_role_lands_on_its_home_with_a_host_only_strict_cookie(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let l = s.seed_logins().await;
    for (who, home) in [(&l.owner, "/owner"), (&l.admin, "/admin"), (&l.employee, "/me")] {
        let resp = login_raw(&s, &who.0, &who.1, None).await;
        assert_eq!(resp.status(), 303);
        assert_eq!(resp.headers()["location"], home);
        let cookie = session_cookie(&resp).expect("a session cookie");
        for attr in ["__Host-", "Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
            assert!(cookie.contains(attr), "{cookie}");
        }
        let page = get_with(&s, home, &token_of(&cookie)).await;
        assert_eq!(page.status(), 200);
        assert_eq!(page.headers()["cache-control"], "no-store");
    }
    let wrong = login_raw(&s, &l.admin.0, "not the password", None).await;
    assert_eq!(wrong.status(), 401);
    assert!(session_cookie(&wrong).is_none());
    assert!(wrong.text().await.unwrap().contains("id=\"error\""));
}

async fn login_rotates_the_session_and_logout_ends_it(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let l = s.seed_logins().await;
    let first =
        token_of(&session_cookie(&login_raw(&s, &l.admin.0, &l.admin.1, None).await).unwrap());
    let second = token_of(
        &session_cookie(&login_raw(&s, &l.admin.0, &l.admin.1, Some(&first)).await).unwrap(),
    );
    assert_ne!(first, second);
    assert_eq!(
        get_with(&s, "/admin", &first).await.status(),
        303,
        "the old session ended at login"
    );
    assert_eq!(get_with(&s, "/admin", &second).await.status(), 200);
    let out = worktrail_tests::http()
        .post(s.url("/logout"))
        .header("sec-fetch-site", "same-origin")
        .header("cookie", &second)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert!(session_cookie(&out).unwrap().contains("Max-Age=0"), "the cookie is removed");
    let replay = get_with(&s, "/admin", &second).await;
    assert_eq!(
        (replay.status().as_u16(), replay.headers()["location"].to_str().unwrap()),
        (303, "/login")
    );
    let api = get_with(&s, "/api/v1/admin/overview", &second).await;
    expect_error(api, ErrorCode::Unauthenticated).await;
}

async fn cross_site_state_changes_are_refused(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let l = s.seed_logins().await;
    let cookie =
        token_of(&session_cookie(&login_raw(&s, &l.owner.0, &l.owner.1, None).await).unwrap());
    let suspend = format!("/owner/companies/{}/suspend", s.company);
    let attempts: [&[(&str, &str)]; 4] = [
        &[("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site")],
        &[("origin", "http://evil.example")],
        &[],
    ];
    for headers in attempts {
        let mut req = worktrail_tests::http()
            .post(s.url(&suspend))
            .header("cookie", &cookie)
            .form(&[("confirm", "yes")]);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        expect_error(req.send().await.unwrap(), ErrorCode::Forbidden).await;
    }
    assert!(s.store().company(s.company).await.unwrap().unwrap().suspended_at_ms.is_none());
    // The same request from the site itself goes through.
    let ok = worktrail_tests::http()
        .post(s.url(&suspend))
        .header("cookie", &cookie)
        .header("origin", s.base_url.as_str())
        .form(&[("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    assert!(s.store().company(s.company).await.unwrap().unwrap().suspended_at_ms.is_some());
}

async fn repeated_failures_lock_the_account_but_not_others(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let l = s.seed_logins().await;
    for _ in 0..PER_ACCOUNT {
        assert_eq!(login_raw(&s, &l.admin.0, "wrong password!", None).await.status(), 401);
    }
    let locked = login_raw(&s, &l.admin.0, &l.admin.1, None).await;
    assert_eq!(locked.status(), 429, "even the right password waits");
    assert!(locked.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() > 0);
    assert!(session_cookie(&locked).is_none());
    assert_eq!(login_raw(&s, &l.owner.0, &l.owner.1, None).await.status(), 303, "another account");
}

async fn pages_carry_the_security_headers(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let resp = worktrail_tests::http().get(s.url("/login")).send().await.unwrap();
    let h = resp.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'self'"), "{csp}");
    assert!(h["strict-transport-security"].to_str().unwrap().starts_with("max-age="));
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    let css = worktrail_tests::http().get(s.url("/static/portal.css")).send().await.unwrap();
    assert!(css.headers()["cache-control"].to_str().unwrap().contains("max-age"));
}

async fn an_invited_admin_sets_a_password_once_and_signs_in(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let l = s.seed_logins().await;
    let owner = s.signed_in(&l.owner).await;
    let created: serde_json::Value = owner
        .post(s.url("/api/v1/owner/companies"))
        .json(&serde_json::json!({ "name": "Initech", "plan": "starter", "time_zone": "Europe/Berlin", "admin_email": "Bill@Initech.example" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(created["company_key"].as_str().unwrap().starts_with("wtk_"));
    let path = created["invitation_path"].as_str().unwrap().to_owned();
    let anon = portal_client();
    let page = anon.get(s.url(&path)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("bill@initech.example"));
    let short = anon.post(s.url(&path)).form(&[("password", "short")]).send().await.unwrap();
    assert_eq!(short.status(), 400);
    let set =
        anon.post(s.url(&path)).form(&[("password", "initech forever 1999")]).send().await.unwrap();
    assert_eq!(set.status(), 303);
    let again =
        anon.post(s.url(&path)).form(&[("password", "someone else's 1999")]).send().await.unwrap();
    assert_eq!(again.status(), 404, "single use");
    let resp = login_raw(&s, "bill@initech.example", "initech forever 1999", None).await;
    assert_eq!(resp.headers()["location"], "/admin");
    // The owner's action was audited on the new company.
    let id = created["company_id"].as_str().unwrap().parse().unwrap();
    let audit = s.store().audit_log(id).await.unwrap();
    assert_eq!(audit[0].action, "company.created");
}

async fn owner_and_admin_actions_reach_the_agent(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let l = s.seed_logins().await;
    let (_, token) = s.enroll(&l.employee.0).await;
    let admin = s.signed_in(&l.admin).await;
    let mut policy: serde_json::Value =
        admin.get(s.url("/api/v1/admin/policy")).send().await.unwrap().json().await.unwrap();
    policy["screenshots"]["interval_secs"] = 900.into();
    let put = admin.put(s.url("/api/v1/admin/policy")).json(&policy).send().await.unwrap();
    assert_eq!(put.status(), 200);
    let seen: worktrail_shared::api::PolicyResponse =
        s.get_policy(s.company_key.expose(), Some(&token)).await.json().await.unwrap();
    assert_eq!(seen.policy.screenshots.interval_secs, 900);
    policy["screenshots"]["interval_secs"] = 5.into();
    let bad = admin.put(s.url("/api/v1/admin/policy")).json(&policy).send().await.unwrap();
    expect_error(bad, ErrorCode::InvalidRequest).await;
    let owner = s.signed_in(&l.owner).await;
    let resp = owner
        .post(s.url(&format!("/api/v1/owner/companies/{}/actions", s.company)))
        .json(&serde_json::json!({ "action": "suspend" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    expect_error(
        s.get_policy(s.company_key.expose(), Some(&token)).await,
        ErrorCode::CompanySuspended,
    )
    .await;
}

both_backends!(
    each_role_lands_on_its_home_with_a_host_only_strict_cookie,
    login_rotates_the_session_and_logout_ends_it,
    cross_site_state_changes_are_refused,
    repeated_failures_lock_the_account_but_not_others,
    pages_carry_the_security_headers,
    an_invited_admin_sets_a_password_once_and_signs_in,
    owner_and_admin_actions_reach_the_agent,
);
