//! Sign-in, sign-out, invitations and the portal's static assets.

use axum::extract::{ConnectInfo, Form, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::OnceLock;

use crate::auth::session::{self, Session, clear_cookie, set_cookie};
use crate::domain::keys::hash_secret;
use crate::domain::password::{hash_password, verify_password};
use crate::error::ApiError;
use crate::portal::{Access, CSS, Message, Route, render, route};
use crate::provision;
use crate::state::AppState;
use crate::store::{Principal, Role};

/// The public routes.
pub fn routes() -> Vec<Route> {
    use Access::Public;
    vec![
        route("GET", "/", Public, "Go to sign-in", get(|| async { Redirect::to("/login") })),
        route("GET", "/login", Public, "The sign-in form", get(login_page)),
        route("POST", "/login", Public, "Sign in (form: email, password)", post(login)),
        route("POST", "/logout", Public, "Sign out", post(logout)),
        route(
            "GET",
            "/invite/{token}",
            Public,
            "An invitation: choose a password",
            get(invite_page),
        ),
        route(
            "POST",
            "/invite/{token}",
            Public,
            "Accept an invitation (form: password)",
            post(accept),
        ),
        route("GET", "/static/portal.css", Public, "Stylesheet", get(css)),
    ]
}

fn home(principal: Principal, role: Option<Role>) -> &'static str {
    match (principal, role) {
        (Principal::Owner(_), _) => "/owner",
        (_, Some(Role::Admin)) => "/admin",
        _ => "/me",
    }
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

async fn login_page(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let mut parts = axum::http::Request::new(()).into_parts().0;
    parts.headers = headers;
    if let Some(session) = Session::load(&parts, &s).await? {
        return Ok(Redirect::to(home(session.principal, session.role)).into_response());
    }
    Ok(render("login.html", minijinja::context! { nav => "" })?.into_response())
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    email: String,
    password: String,
}

/// A hash to verify against when no account matches, so a wrong e-mail costs as much time as a
/// wrong password and does not reveal which accounts exist.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("no account has this password"))
}

async fn login(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Result<Response, ApiError> {
    let now = s.now_ms();
    let address = addr.ip().to_string();
    if let Err(wait) = s.throttle.check(&f.email, &address, now) {
        let page = render(
            "login.html",
            minijinja::context! {
                nav => "", email => f.email,
                error => format!("Too many failed attempts. Try again in {} minutes.", wait.div_ceil(60)),
            },
        )?;
        let mut r = (StatusCode::TOO_MANY_REQUESTS, page).into_response();
        r.headers_mut().insert(header::RETRY_AFTER, wait.into());
        return Ok(r);
    }
    let candidates = s.store.login_candidates(&f.email).await?;
    let password = f.password.clone();
    let found = tokio::task::spawn_blocking(move || {
        let mut found = None;
        for c in candidates.into_iter().filter(|c| c.active) {
            if let Some(hash) = &c.password_hash
                && verify_password(&password, hash)
            {
                found = Some(c);
                break;
            }
        }
        if found.is_none() {
            let _ = verify_password(&password, decoy_hash());
        }
        found
    })
    .await
    .map_err(ApiError::internal)?;
    let Some(who) = found else {
        s.throttle.failed(&f.email, &address, now);
        let page = render(
            "login.html",
            minijinja::context! {
                nav => "", email => f.email, error => "Wrong e-mail or password.",
            },
        )?;
        return Ok((StatusCode::UNAUTHORIZED, page).into_response());
    };
    s.throttle.succeeded(&f.email);
    // Rotate: whatever session the browser had ends; a new token is issued.
    if let Some(old) = session::cookie_token(&headers) {
        s.store.delete_session(&hash_secret(&old)).await?;
    }
    let token = session::new_token();
    s.store
        .create_session(&hash_secret(&token), who.principal, now, now + session::SESSION_MS)
        .await?;
    let mut r = Redirect::to(home(who.principal, who.role)).into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&token).parse().map_err(ApiError::internal)?);
    Ok(r)
}

async fn logout(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(token) = session::cookie_token(&headers) {
        s.store.delete_session(&hash_secret(&token)).await?;
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(header::SET_COOKIE, clear_cookie().parse().map_err(ApiError::internal)?);
    Ok(r)
}

async fn invite_page(
    State(s): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let usable = s
        .store
        .invitation(&hash_secret(&token))
        .await?
        .filter(|i| i.used_at_ms.is_none() && i.expires_at_ms > s.now_ms());
    match usable {
        Some(inv) => Ok(render(
            "invite.html",
            minijinja::context! { nav => "", token => token, email => inv.email },
        )?
        .into_response()),
        None => unusable_invitation(),
    }
}

/// The answer for an invitation link that was used already or has expired.
fn unusable_invitation() -> Result<Response, ApiError> {
    let page = render(
        "message.html",
        Message {
            heading: "This invitation cannot be used".into(),
            lines: vec!["It was used already or has expired. Ask for a new one.".into()],
            ..Default::default()
        },
    )?;
    Ok((StatusCode::NOT_FOUND, page).into_response())
}

#[derive(Debug, Deserialize)]
struct AcceptForm {
    password: String,
}

async fn accept(
    State(s): State<AppState>,
    Path(token): Path<String>,
    Form(f): Form<AcceptForm>,
) -> Result<Response, ApiError> {
    let hash = hash_secret(&token);
    if let Err(e) = provision::password_ok(&f.password) {
        let email = s.store.invitation(&hash).await?.map(|i| i.email).unwrap_or_default();
        let page = render(
            "invite.html",
            minijinja::context! { nav => "", token => token, email => email, error => e.to_string() },
        )?;
        return Ok((StatusCode::BAD_REQUEST, page).into_response());
    }
    let password = f.password;
    let phc = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(ApiError::internal)?;
    if !s.store.accept_invitation(&hash, &phc, s.now_ms()).await? {
        return unusable_invitation();
    }
    Ok(Redirect::to("/login").into_response())
}
