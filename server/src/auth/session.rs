//! Portal sessions: the `__Host-` cookie, its server-side row, and the role extractors.
//!
//! The cookie carries 256 random bits; the database keeps only their SHA-256, so a leaked
//! database cannot be replayed as sessions. Extractors answer pages and API calls differently:
//! a page without a session redirects to `/login`, an API call gets `401 unauthenticated`; a
//! signed-in user of the wrong role gets `403 forbidden` either way.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use worktrail_shared::{CompanyId, ErrorCode, OwnerId, UserId};

use crate::domain::keys::hash_secret;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{Principal, Role};

/// The session cookie's name; `__Host-` makes browsers insist on Secure, Path=/ and no Domain.
pub const COOKIE: &str = "__Host-wt_session";
/// How long a session lasts.
pub const SESSION_MS: i64 = 12 * 60 * 60 * 1000;

/// A new random session token (hex of 32 random bytes).
pub fn new_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The `Set-Cookie` value that stores `token`.
pub fn set_cookie(token: &str) -> String {
    format!(
        "{COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_MS / 1000
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The session token in the request's cookies, if any.
pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Why a request was not admitted.
#[derive(Debug)]
pub enum Rejection {
    /// A page without a session: go and sign in.
    ToLogin,
    /// An error answer (API calls, wrong role, failures).
    Api(ApiError),
    /// A page for a signed-in user of the wrong role.
    ForbiddenPage,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        match self {
            Rejection::ToLogin => Redirect::to("/login").into_response(),
            Rejection::Api(e) => e.into_response(),
            Rejection::ForbiddenPage => {
                let mut r = (
                    StatusCode::FORBIDDEN,
                    axum::response::Html(
                        "<!doctype html><title>Forbidden</title><p>This page is not for your role.\
                         </p><p><a href=\"/login\">Sign in as someone else</a></p>",
                    ),
                )
                    .into_response();
                r.extensions_mut().insert(ErrorCode::Forbidden);
                r
            }
        }
    }
}

/// A signed-in principal.
#[derive(Clone, Debug)]
pub struct Session {
    /// Who.
    pub principal: Principal,
    /// Their role (owners have none).
    pub role: Option<Role>,
    /// Hash of the cookie token (for logout).
    pub token_hash: Vec<u8>,
}

fn is_api(parts: &Parts) -> bool {
    parts.uri.path().starts_with("/api/")
}

impl Session {
    /// The session of this request, if it has a valid one.
    pub async fn load(parts: &Parts, state: &AppState) -> Result<Option<Session>, ApiError> {
        let Some(token) = cookie_token(&parts.headers) else { return Ok(None) };
        let token_hash = hash_secret(&token);
        let Some(row) = state.store.session(&token_hash).await? else { return Ok(None) };
        if row.expires_at_ms <= state.now_ms() {
            state.store.delete_session(&token_hash).await?;
            return Ok(None);
        }
        let role = match row.principal {
            Principal::Owner(_) => None,
            Principal::User(company, user) => match state.store.user(company, user).await? {
                Some(u) if u.active => Some(u.role),
                _ => return Ok(None),
            },
        };
        Ok(Some(Session { principal: row.principal, role, token_hash }))
    }
}

async fn require(
    parts: &Parts,
    state: &AppState,
    admit: impl Fn(&Session) -> bool,
) -> Result<Session, Rejection> {
    let session = Session::load(parts, state).await.map_err(Rejection::Api)?;
    match session {
        None if is_api(parts) => {
            Err(Rejection::Api(ApiError::new(ErrorCode::Unauthenticated, "sign in first")))
        }
        None => Err(Rejection::ToLogin),
        Some(s) if admit(&s) => Ok(s),
        Some(_) if is_api(parts) => {
            Err(Rejection::Api(ApiError::new(ErrorCode::Forbidden, "not for your role")))
        }
        Some(_) => Err(Rejection::ForbiddenPage),
    }
}

/// Any signed-in principal (for logout).
impl FromRequestParts<AppState> for Session {
    type Rejection = Rejection;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Rejection> {
        require(parts, state, |_| true).await
    }
}

/// A signed-in OWNER.
#[derive(Clone, Debug)]
pub struct OwnerSession {
    /// The operator.
    pub owner: OwnerId,
}

impl FromRequestParts<AppState> for OwnerSession {
    type Rejection = Rejection;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Rejection> {
        let s = require(parts, state, |s| matches!(s.principal, Principal::Owner(_))).await?;
        match s.principal {
            Principal::Owner(owner) => Ok(OwnerSession { owner }),
            Principal::User(..) => Err(Rejection::ForbiddenPage),
        }
    }
}

/// A signed-in user of one company, with the role the extractor demanded.
#[derive(Clone, Copy, Debug)]
pub struct CompanyUser {
    /// Their company: every read and write of the handler is scoped to it.
    pub company: CompanyId,
    /// The user.
    pub user: UserId,
}

fn company_user(s: &Session) -> Option<CompanyUser> {
    match s.principal {
        Principal::User(company, user) => Some(CompanyUser { company, user }),
        Principal::Owner(_) => None,
    }
}

/// A signed-in company ADMIN.
#[derive(Clone, Copy, Debug)]
pub struct AdminSession(pub CompanyUser);

impl FromRequestParts<AppState> for AdminSession {
    type Rejection = Rejection;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Rejection> {
        let s = require(parts, state, |s| s.role == Some(Role::Admin)).await?;
        company_user(&s).map(AdminSession).ok_or(Rejection::ForbiddenPage)
    }
}

/// A signed-in EMPLOYEE.
#[derive(Clone, Copy, Debug)]
pub struct EmployeeSession(pub CompanyUser);

impl FromRequestParts<AppState> for EmployeeSession {
    type Rejection = Rejection;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Rejection> {
        let s = require(parts, state, |s| s.role == Some(Role::Employee)).await?;
        company_user(&s).map(EmployeeSession).ok_or(Rejection::ForbiddenPage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others_and_malformed_values_are_ignored() {
        let token = new_token();
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, format!("a=1; {COOKIE}={token}; b=2").parse().unwrap());
        assert_eq!(cookie_token(&h), Some(token));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, format!("{COOKIE}=../../etc").parse().unwrap());
        assert_eq!(cookie_token(&h), None);
    }

    #[test]
    fn the_cookie_has_the_host_prefix_attributes() {
        let c = set_cookie("x");
        for attr in ["__Host-", "Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
            assert!(c.contains(attr), "{c}");
        }
        assert!(!c.contains("Domain"));
        assert!(clear_cookie().contains("Max-Age=0"));
    }
}
