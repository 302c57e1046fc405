//! API v1: the cross-device routes of the public SDK's contract, thin handlers over the bridge service.

mod error;
mod extract;

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER,
};
use axum::http::{Method, StatusCode};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

pub use error::ApiError;
use extract::{Caller, Id, JsonBody, PollingToken};

use crate::apps::Apps;
use crate::bridge::{Observed, iso8601};
use crate::server::AppState;
use crate::session::{ApprovalContext, Kind, State as SessionState};
use crate::store::StoreError;
use crate::wire::{Context, ContextType, Envelope, InitRequest, Started, Status, WireStatus};

/// Bodies here are a few hundred bytes; anything near this is a mistake or an attack.
pub const BODY_LIMIT: usize = 16 * 1024;

pub fn routes(apps: &Apps) -> Router<AppState> {
    Router::new()
        .route("/v1/auth/cross-device/init", post(init))
        .route("/v1/auth/cross-device/status/{id}", get(status))
        .route("/v1/auth/cross-device/context/{id}", get(context))
        .route("/v1/auth/cross-device/cancel/{id}", post(cancel))
        .route("/v1/auth/cross-device/deny/{id}", post(deny))
        .route("/v1/{*rest}", any(|| async { ApiError::RouteNotFound }))
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        // Answers carry polling results and, later, tokens: no cache may keep them.
        .layer(SetResponseHeaderLayer::overriding(
            CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(cors(apps))
}

/// Browsers on any app's allowed origin may call the API; which app a request speaks for is
/// checked per request, since a preflight carries no key.
fn cors(apps: &Apps) -> CorsLayer {
    let origins = apps.all_origins();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            origin.to_str().is_ok_and(|o| origins.contains(o))
        }))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            AUTHORIZATION,
            CONTENT_TYPE,
            HeaderName::from_static("x-polling-token"),
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([RETRY_AFTER])
        .max_age(Duration::from_secs(600))
}

fn ok<T>(data: T) -> Json<Envelope<T>> {
    Json(Envelope { ok: true, data })
}

async fn init(
    State(state): State<AppState>,
    Caller(app): Caller,
    JsonBody(body): JsonBody<InitRequest>,
) -> Result<(StatusCode, Json<Envelope<Started>>), ApiError> {
    let approval_context = body
        .approval_context
        .as_deref()
        .map(ApprovalContext::parse)
        .transpose()?
        .flatten();
    let started = state
        .bridge
        .start(&app, Kind::Auth, approval_context, None)
        .await?;
    let data = Started {
        session_id: started.session.id.to_string(),
        qr_url: started.qr_url,
        expires_at: iso8601(started.session.expires_at),
        polling_token: started.polling_token,
        external_user_id: started.session.external_user_id,
    };
    Ok((StatusCode::CREATED, ok(data)))
}

/// The SDK knows `pending`, `authenticated` and `completed`; the other endings are its errors.
fn status_body(observed: Observed) -> Result<Status, ApiError> {
    use crate::bridge::BridgeError as E;
    let report = |status, scanned| Status {
        status,
        scanned,
        session_token: None,
        user_id: None,
    };
    Ok(match observed.state {
        SessionState::Pending => report(WireStatus::Pending, false),
        SessionState::Scanned => report(WireStatus::Pending, true),
        SessionState::Authenticated => report(WireStatus::Authenticated, false),
        SessionState::Completed => {
            let done = observed.completion.ok_or_else(|| {
                E::Store(StoreError::Corrupt(
                    "a completed session without its token".into(),
                ))
            })?;
            Status {
                status: WireStatus::Completed,
                scanned: false,
                session_token: Some(done.session_token.expose().to_owned()),
                user_id: Some(done.user_id.to_string()),
            }
        }
        SessionState::Denied => return Err(E::Denied.into()),
        SessionState::Cancelled => return Err(E::Cancelled.into()),
        SessionState::Expired => return Err(E::Expired.into()),
    })
}

async fn status(
    State(state): State<AppState>,
    Id(id): Id,
    PollingToken(token): PollingToken,
) -> Result<Json<Envelope<Status>>, ApiError> {
    let observed = state.bridge.observe(&id, token.as_deref()).await?;
    Ok(ok(status_body(observed)?))
}

async fn context(
    State(state): State<AppState>,
    Id(id): Id,
    Caller(app): Caller,
) -> Result<Json<Envelope<Context>>, ApiError> {
    let session = state.bridge.scan(&app, &id).await?;
    Ok(ok(Context {
        kind: match session.kind {
            Kind::Auth => ContextType::Auth,
            Kind::Registration => ContextType::Registration,
        },
        application_name: app.name.clone(),
        approval_context: session.approval_context.map(String::from),
    }))
}

async fn cancel(
    State(state): State<AppState>,
    Id(id): Id,
    PollingToken(token): PollingToken,
) -> Result<StatusCode, ApiError> {
    state.bridge.cancel(&id, token.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn deny(
    State(state): State<AppState>,
    Id(id): Id,
    Caller(app): Caller,
) -> Result<StatusCode, ApiError> {
    state.bridge.deny(&app, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
