//! "Open my dashboard" without a password (SPEC 3.4): an enrolled agent asks, with its device
//! token, for a sign-in link for *its own* employee (`POST /api/v1/agent/signin-link`), and opens
//! it in the browser; a GET of the link (`/signin/{company}/{token}`) signs that employee in with a
//! session cookie, as the login form does, and redirects to their page at once.
//!
//! Invariants: the employee is the device's, never one named by the request; the token is 256
//! random bits of which only the SHA-256 is stored; a link works once (the use is one atomic
//! update) and for [`SIGNIN_LINK_TTL_MS`]; the link names its company, so redeeming it is a
//! company-scoped lookup. The token appears in no log (spans carry the route template), and the
//! answer that consumes it is a redirect with `Referrer-Policy: no-referrer`, so it reaches no
//! other site as a `Referer`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use worktrail_shared::api::SigninLinkResponse;
use worktrail_shared::limits::SIGNIN_LINK_TTL_MS;
use worktrail_shared::{CompanyId, ErrorCode};

use crate::auth::agent::DeviceCtx;
use crate::auth::session::{self, set_cookie};
use crate::domain::keys::hash_secret;
use crate::error::ApiError;
use crate::portal::{Access, Message, Route, render, route};
use crate::state::AppState;
use crate::store::{Principal, Role, SigninRedemption};

/// The public route that redeems a link.
pub fn routes() -> Vec<Route> {
    vec![route(
        "GET",
        "/signin/{company}/{token}",
        Access::Public,
        "A single-use sign-in link from the agent's \"Open my dashboard\"",
        get(redeem),
    )]
}

/// `POST /api/v1/agent/signin-link`: a new link for the calling device's employee.
pub async fn mint(
    State(state): State<AppState>,
    ctx: DeviceCtx,
) -> Result<Json<SigninLinkResponse>, ApiError> {
    let company = ctx.company.company_id;
    let employee = ctx.device.employee_id;
    let active = state.store.user(company, employee).await?.is_some_and(|u| u.active);
    if !active {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "the employee of this device is deactivated; ask the company's admin",
        ));
    }
    let token = session::new_token();
    let now = state.now_ms();
    let expires_at_ms = now + SIGNIN_LINK_TTL_MS;
    state
        .store
        .create_signin_link(
            company,
            employee,
            ctx.device.id,
            &hash_secret(&token),
            now,
            expires_at_ms,
        )
        .await?;
    state.store.touch_device(company, ctx.device.id, now).await?;
    tracing::info!(company.id = %company, device.id = %ctx.device.id, "sign-in link issued");
    Ok(Json(SigninLinkResponse { path: format!("/signin/{company}/{token}"), expires_at_ms }))
}

fn home(role: Role) -> &'static str {
    match role {
        Role::Admin => "/admin",
        Role::Employee => "/me",
    }
}

async fn redeem(
    State(s): State<AppState>,
    Path((company, token)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let well_formed = token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit());
    let Ok(company) = company.parse::<CompanyId>() else { return refused(Refusal::Unknown) };
    if !well_formed {
        return refused(Refusal::Unknown);
    }
    let now = s.now_ms();
    let user = match s.store.redeem_signin_link(company, &hash_secret(&token), now).await? {
        SigninRedemption::SignedIn(user) => user,
        SigninRedemption::Used => return refused(Refusal::Used),
        SigninRedemption::Expired => return refused(Refusal::Expired),
        SigninRedemption::Unknown => return refused(Refusal::Unknown),
    };
    let Some(role) = s.store.user(company, user).await?.filter(|u| u.active).map(|u| u.role) else {
        return refused(Refusal::Deactivated);
    };
    // As at sign-in: whatever session the browser had ends; a new token is issued.
    if let Some(old) = session::cookie_token(&headers) {
        s.store.delete_session(&hash_secret(&old)).await?;
    }
    let session = session::new_token();
    s.store
        .create_session(
            &hash_secret(&session),
            Principal::User(company, user),
            now,
            now + session::SESSION_MS,
        )
        .await?;
    tracing::info!(company.id = %company, "signed in with an agent's link");
    let mut r = Redirect::to(home(role)).into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&session).parse().map_err(ApiError::internal)?);
    Ok(r)
}

/// Why a link did not sign anyone in.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    Used,
    Expired,
    Unknown,
    Deactivated,
}

fn refused(why: Refusal) -> Result<Response, ApiError> {
    let again = "Choose \u{201c}Open my dashboard\u{201d} in the Worktrail agent again for a new \
                 link, or sign in with your password.";
    let (status, code, heading, line) = match why {
        Refusal::Used => (
            StatusCode::GONE,
            ErrorCode::Conflict,
            "This sign-in link was used already",
            "Each link signs in once.",
        ),
        Refusal::Expired => (
            StatusCode::GONE,
            ErrorCode::NotFound,
            "This sign-in link has expired",
            "A link works for one minute after the agent asked for it.",
        ),
        Refusal::Unknown => (
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "This sign-in link is not valid",
            "Check that the whole link was opened.",
        ),
        Refusal::Deactivated => (
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "This account is deactivated",
            "Ask your company's administrator.",
        ),
    };
    let lines = match why {
        Refusal::Deactivated => vec![line.into()],
        _ => vec![line.into(), again.into()],
    };
    let page = render(
        "message.html",
        Message {
            heading: heading.into(),
            lines,
            back: Some("/login".into()),
            ..Default::default()
        },
    )?;
    let mut r = (status, page).into_response();
    r.extensions_mut().insert(code);
    Ok(r)
}
