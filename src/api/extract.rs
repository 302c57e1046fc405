//! Request parts parsed at the edge, before any store is touched: the path's session id, the calling app, the polling token, a JSON body.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use super::ApiError;
use crate::apps::App;
use crate::server::AppState;
use crate::session::SessionId;

/// The `:id` of the path, already a valid [`SessionId`].
pub struct Id(pub SessionId);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::Validation(e.body_text()))?;
        Ok(Id(SessionId::parse(&raw)?))
    }
}

fn header(headers: &HeaderMap, name: impl axum::http::header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The app a request speaks for, proven by `Authorization: Bearer <key>` and `Origin`.
pub struct Caller(pub Arc<App>);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let origin = header(&parts.headers, ORIGIN);
        Ok(Caller(
            state
                .bridge
                .apps()
                .authenticate(bearer(&parts.headers), origin)?,
        ))
    }
}

/// The token after `Authorization: Bearer`, for endpoints that take a session token rather than an app key.
pub struct Bearer(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Bearer(bearer(&parts.headers).map(str::to_owned)))
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let (scheme, value) = header(headers, AUTHORIZATION)?.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(value.trim())
}

/// `X-Polling-Token`, when sent. Never taken from the query string, so it stays out of URLs and logs.
pub struct PollingToken(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for PollingToken {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(PollingToken(
            header(&parts.headers, "x-polling-token").map(str::to_owned),
        ))
    }
}

/// A JSON body; an empty body reads as `{}`, so `curl -X POST` works where every field is optional.
pub struct JsonBody<T>(pub T);

fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let declared_json = match header(req.headers(), CONTENT_TYPE) {
            Some(ct) if is_json(ct) => true,
            Some(_) => return Err(ApiError::UnsupportedMediaType),
            None => false,
        };
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::Validation(e.body_text())
            }
        })?;
        if !bytes.is_empty() && !declared_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let json: &[u8] = if bytes.is_empty() { b"{}" } else { &bytes };
        serde_json::from_slice(json).map(JsonBody).map_err(|e| {
            ApiError::Validation(format!("the body is not valid JSON for this endpoint: {e}"))
        })
    }
}

/// The client's address: the peer, or what a trusted proxy says it saw.
pub struct ClientIp(pub std::net::IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |info| info.0.ip());
        Ok(ClientIp(state.proxies.client(peer, &parts.headers)))
    }
}
