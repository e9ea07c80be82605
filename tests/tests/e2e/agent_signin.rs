//! "Open my dashboard" (SPEC 3.4): an enrolled device asks for a single-use, one-minute sign-in
//! link for its own employee, and a GET of the link signs that employee in (session cookie,
//! redirect to their page). A second use, an expired link, a tampered link or the link under
//! another company are refused with a page saying why; a device can only ever get a link for its
//! own employee, whatever it sends.

use std::sync::Arc;
use worktrail_server::auth::session::COOKIE;
use worktrail_server::clock::Clock as _;
use worktrail_shared::api::SigninLinkResponse;
use worktrail_shared::limits::SIGNIN_LINK_TTL_MS;
use worktrail_shared::secret::{CompanyKey, DeviceToken};
use worktrail_shared::{COMPANY_KEY_HEADER, ErrorCode};
use worktrail_tests::agent::{TestAgent, agent_clock, fake_probes};
use worktrail_tests::{Backend, TestServer, expect_error, http};

async fn ask_link(
    s: &TestServer,
    key: &CompanyKey,
    token: &DeviceToken,
    body: Option<serde_json::Value>,
) -> reqwest::Response {
    let mut req = http()
        .post(s.url("/api/v1/agent/signin-link"))
        .header(COMPANY_KEY_HEADER, key.expose())
        .bearer_auth(token.expose());
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.expect("sign-in link request")
}

async fn link(s: &TestServer, key: &CompanyKey, token: &DeviceToken) -> SigninLinkResponse {
    let resp = ask_link(s, key, token, None).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap_or_default());
    resp.json().await.expect("sign-in link body")
}

/// Opens `path` as a browser would from the agent: no cookie, no redirect followed.
async fn open(s: &TestServer, path: &str) -> reqwest::Response {
    http().get(s.url(path)).send().await.expect("open the link")
}

fn session_cookie(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(COOKIE))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
}

/// Whose session `cookie` is: it must open `/me`, and the e-mail comes from the export.
async fn signed_in_as(s: &TestServer, cookie: &str) -> String {
    let get = |path: &'static str| http().get(s.url(path)).header("cookie", cookie).send();
    let page = get("/me").await.expect("GET /me");
    assert_eq!(page.status(), 200, "the session does not open /me");
    let export: serde_json::Value =
        get("/me/export.json").await.expect("GET export").json().await.expect("export JSON");
    export["email"].as_str().expect("an e-mail").to_owned()
}

async fn a_signin_link_signs_the_devices_employee_in_once_and_then_is_refused(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let (_, token) = s.enroll("ada@test.example").await;
    let issued = link(&s, &s.company_key, &token).await;
    assert_eq!(issued.expires_at_ms, s.clock.now_ms() + SIGNIN_LINK_TTL_MS);
    let prefix = format!("/signin/{}/", s.company);
    assert!(issued.path.starts_with(&prefix), "{}", issued.path);
    assert!(!format!("{issued:?}").contains(&issued.path[prefix.len()..]), "Debug shows the token");

    let first = open(&s, &issued.path).await;
    assert_eq!(first.status(), 303);
    assert_eq!(first.headers()["location"], "/me", "an employee lands on their own page");
    assert_eq!(first.headers()["referrer-policy"], "no-referrer");
    assert_eq!(first.headers()["cache-control"], "no-store");
    let cookie = session_cookie(&first).expect("the link sets a session cookie");
    let set_cookie = first.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attr in ["__Host-", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(set_cookie.contains(attr), "{set_cookie}");
    }
    assert!(first.text().await.unwrap().is_empty(), "the redirect comes at once, with no page");
    assert_eq!(signed_in_as(&s, &cookie).await, "ada@test.example");

    let again = open(&s, &issued.path).await;
    assert_eq!(again.status(), 410);
    assert!(session_cookie(&again).is_none());
    let page = again.text().await.unwrap();
    assert!(page.contains("This sign-in link was used already"), "{page}");
    assert!(page.contains("Open my dashboard"), "the page says how to get a new link: {page}");

    // Each request mints a new link; two are independent.
    let (a, b) = (link(&s, &s.company_key, &token).await, link(&s, &s.company_key, &token).await);
    assert_ne!(a.path, b.path);
    assert_eq!(open(&s, &b.path).await.status(), 303);
    assert_eq!(open(&s, &a.path).await.status(), 303);
}

async fn an_expired_or_tampered_signin_link_is_refused_with_a_page_saying_why(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let (_, token) = s.enroll("ada@test.example").await;

    let issued = link(&s, &s.company_key, &token).await;
    s.clock.advance(SIGNIN_LINK_TTL_MS - 1);
    let fresh = link(&s, &s.company_key, &token).await;
    s.clock.advance(1);
    let expired = open(&s, &issued.path).await;
    assert_eq!(expired.status(), 410);
    assert!(session_cookie(&expired).is_none());
    let page = expired.text().await.unwrap();
    assert!(page.contains("This sign-in link has expired"), "{page}");
    // The one minted a moment later still works for its own minute.
    assert_eq!(open(&s, &fresh.path).await.status(), 303);

    // A changed token, a malformed one, a malformed company: not valid, nothing consumed.
    let good = link(&s, &s.company_key, &token).await;
    let (base, tok) = good.path.rsplit_once('/').unwrap();
    let flipped = format!("{base}/{}{}", if tok.starts_with('0') { '1' } else { '0' }, &tok[1..]);
    for bad in [flipped, format!("{base}/nothex"), format!("/signin/not-a-uuid/{tok}")] {
        let resp = open(&s, &bad).await;
        assert_eq!(resp.status(), 404, "{bad}");
        assert!(session_cookie(&resp).is_none());
        assert!(resp.text().await.unwrap().contains("This sign-in link is not valid"));
    }
    assert_eq!(open(&s, &good.path).await.status(), 303, "a failed guess used nothing up");
}

async fn a_device_gets_links_only_for_its_own_employee(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let (_, ada) = s.enroll("ada@test.example").await;
    let (bob_device, bob) = s.enroll("bob@test.example").await;
    let ada_user = s.store().user_by_email(s.company, "ada@test.example").await.unwrap().unwrap();

    // Bob's device names Ada in its body: the server takes the employee from the device only.
    let resp = ask_link(
        &s,
        &s.company_key,
        &bob,
        Some(serde_json::json!({
            "employee_id": ada_user.id, "email": "ada@test.example",
        })),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let issued: SigninLinkResponse = resp.json().await.unwrap();
    let cookie = session_cookie(&open(&s, &issued.path).await).expect("signed in");
    assert_eq!(signed_in_as(&s, &cookie).await, "bob@test.example");

    // Another company's link does not work under this company's id, nor the reverse.
    let (other, other_key) = s.add_company("Other Co").await;
    let (_, carol) = s.enroll_with(&other_key, "carol@other.example").await.unwrap();
    let theirs = link(&s, &other_key, &carol).await;
    assert!(theirs.path.starts_with(&format!("/signin/{other}/")));
    let moved = theirs.path.replace(&other.to_string(), &s.company.to_string());
    assert_eq!(open(&s, &moved).await.status(), 404);
    assert_eq!(open(&s, &theirs.path).await.status(), 303, "still good in its own company");

    // Ada's token with the other company's key is not a device of that company.
    expect_error(ask_link(&s, &other_key, &ada, None).await, ErrorCode::DeviceUnknown).await;
    expect_error(
        ask_link(&s, &s.company_key, &DeviceToken::generate(|b| b.fill(7)), None).await,
        ErrorCode::DeviceUnknown,
    )
    .await;
    // A revoked device gets no link, and neither does a deactivated employee's.
    s.store().revoke_device(s.company, bob_device, s.clock.now_ms()).await.unwrap();
    expect_error(ask_link(&s, &s.company_key, &bob, None).await, ErrorCode::DeviceRevoked).await;
    let pending = link(&s, &s.company_key, &ada).await;
    s.store().set_user_active(s.company, ada_user.id, false).await.unwrap();
    expect_error(ask_link(&s, &s.company_key, &ada, None).await, ErrorCode::Forbidden).await;
    let refused = open(&s, &pending.path).await;
    assert_eq!(refused.status(), 403, "a link minted before deactivation signs no one in");
    assert!(session_cookie(&refused).is_none());
}

async fn the_agent_core_asks_for_a_link_that_signs_its_employee_in(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else { return };
    let (probes, _, _) = fake_probes();
    let a = TestAgent::enrolled(&s, "grace@test.example", probes, Arc::new(agent_clock(&s))).await;
    let link = a.agent.signin_link().await.expect("the agent gets a link");
    assert!(link.expose().starts_with(&format!("{}/signin/{}/", s.base_url, s.company)));
    assert!(!format!("{link:?}").contains(link.expose()), "Debug shows the link");
    let resp = http().get(link.expose()).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let cookie = session_cookie(&resp).expect("signed in");
    assert_eq!(signed_in_as(&s, &cookie).await, "grace@test.example");
}

both_backends!(
    a_signin_link_signs_the_devices_employee_in_once_and_then_is_refused,
    an_expired_or_tampered_signin_link_is_refused_with_a_page_saying_why,
    a_device_gets_links_only_for_its_own_employee,
    the_agent_core_asks_for_a_link_that_signs_its_employee_in,
);
