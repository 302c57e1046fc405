//! API v1: the cross-device routes of the public SDK's contract, thin handlers over the bridge service.

mod error;
mod extract;
pub(crate) mod stream;

use std::net::IpAddr;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER,
};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

pub use error::ApiError;
pub use extract::ClientIp;
use extract::{Backend, Bearer, Caller, Id, JsonBody, PhoneClaim, PollingToken, TokenParam};

use crate::apps::{App, Apps};
use crate::bridge::{
    BridgeError, Introspected, Observed, Opened, Start, Started as StartedSession, iso8601,
};
use crate::limits::Bucket;
use crate::server::AppState;
use crate::session::{
    ApprovalContext, Kind, Requester, SessionId, State as SessionState, parse_external_user_id,
};
use crate::store::StoreError;
use crate::token::TokenError;
use crate::wire::{
    Context, ContextType, Envelope, InitRegistrationRequest, InitRequest, Introspection, PhoneView,
    Started, Status, Validated, VerifyRequest, WireStatus,
};

/// Bodies here are at most a few kilobytes (a registration's attestation); more is a mistake or an attack.
pub const BODY_LIMIT: usize = 16 * 1024;

pub fn routes(apps: &Apps) -> Router<AppState> {
    let v1 = Router::new()
        .route("/v1/auth/cross-device/init", post(init))
        .route(
            "/v1/auth/cross-device/init-registration",
            post(init_registration),
        )
        .route("/v1/auth/cross-device/status/{id}", get(status))
        .route("/v1/auth/cross-device/context/{id}", get(context))
        .route("/v1/auth/cross-device/signup/{id}", post(signup))
        .route("/v1/auth/cross-device/verify", post(verify))
        .route(
            "/v1/auth/cross-device/verify-registration",
            post(verify_registration),
        )
        .route("/v1/auth/cross-device/cancel/{id}", post(cancel))
        .route("/v1/auth/cross-device/deny/{id}", post(deny))
        .route("/v1/auth/cross-device/outcome/{id}", get(outcome))
        .route("/v1/sessions/validate", get(validate))
        .route("/v1/sessions/introspect", post(introspect))
        .route("/v1/sessions/revoke", post(revoke))
        .route("/v1/{*rest}", any(|| async { ApiError::RouteNotFound }))
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        // Answers carry polling results and tokens: no cache may keep them.
        .layer(SetResponseHeaderLayer::if_not_present(
            CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(cors(apps));
    // Public keys: anyone may fetch them, from anywhere, and the SDK caches them for an hour.
    let jwks = Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .layer(SetResponseHeaderLayer::overriding(
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        ))
        .layer(
            CorsLayer::new()
                .allow_origin(tower_http::cors::Any)
                .allow_methods([Method::GET]),
        );
    v1.merge(jwks)
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

fn started(s: StartedSession) -> (StatusCode, Json<Envelope<Started>>) {
    let data = Started {
        session_id: s.session.id.to_string(),
        qr_url: s.qr_url,
        expires_at: iso8601(s.session.expires_at),
        polling_token: s.polling_token,
        external_user_id: s.session.external_user_id,
    };
    (StatusCode::CREATED, ok(data))
}

async fn init(
    State(state): State<AppState>,
    Caller(app, started_by): Caller,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<InitRequest>,
) -> Result<(StatusCode, Json<Envelope<Started>>), ApiError> {
    let approval_context = body
        .approval_context
        .as_deref()
        .map(ApprovalContext::parse)
        .transpose()?
        .flatten();
    state
        .limiter
        .check(&[Bucket::for_start(&app.id, started_by, ip)])
        .await?;
    let start = Start {
        kind: Kind::Auth,
        approval_context,
        external_user_id: None,
        started_by,
        requester: requester(&headers, ip),
    };
    Ok(started(state.bridge.start(&app, start).await?))
}

/// A browser's registration may only make a new account; the backend's (secret key) may add a
/// passkey to the user it names. `Bridge::start` holds that line.
async fn init_registration(
    State(state): State<AppState>,
    Caller(app, started_by): Caller,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<InitRegistrationRequest>,
) -> Result<(StatusCode, Json<Envelope<Started>>), ApiError> {
    let external_user_id = body
        .external_user_id
        .as_deref()
        .map(parse_external_user_id)
        .transpose()?
        .flatten();
    state
        .limiter
        .check(&[Bucket::for_start(&app.id, started_by, ip)])
        .await?;
    let start = Start {
        kind: Kind::Registration,
        approval_context: None,
        external_user_id,
        started_by,
        requester: requester(&headers, ip),
    };
    Ok(started(state.bridge.start(&app, start).await?))
}

/// Who is asking, for the phone to see: the browser's user agent and the client's address.
fn requester(headers: &HeaderMap, ip: IpAddr) -> Requester {
    let user_agent = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    Requester::new(user_agent, Some(ip.to_string()))
}

/// The SDK knows `pending`, `authenticated` and `completed`; the other endings are its errors.
fn status_body(observed: Observed) -> Result<Status, ApiError> {
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
                BridgeError::Store(StoreError::Corrupt(
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
        SessionState::Denied => return Err(BridgeError::Denied.into()),
        SessionState::Cancelled => return Err(BridgeError::Cancelled.into()),
        SessionState::Expired => return Err(BridgeError::Expired.into()),
    })
}

fn status_buckets(token: Option<&str>, ip: IpAddr) -> Vec<Bucket<'_>> {
    let mut buckets = vec![Bucket::StatusClient(ip)];
    buckets.extend(token.map(Bucket::StatusToken));
    buckets
}

/// One JSON status, or the event stream when the client asks for one (see `stream::wanted`).
async fn status(
    State(state): State<AppState>,
    Id(id): Id,
    PollingToken(token): PollingToken,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state
        .limiter
        .check(&status_buckets(token.as_deref(), ip))
        .await?;
    if stream::wanted(&headers) {
        // The polling token first: a stranger who knows the id takes no place and no subscription.
        state.bridge.observe(&id, token.as_deref()).await?;
        let slots = state
            .streams
            .take_for(state.limiter.limits(), ip, &id, None)?;
        return stream::respond(
            state.bridge.clone(),
            id,
            token,
            &headers,
            state.shutdown.clone(),
            true,
            slots,
        )
        .await;
    }
    let observed = state.bridge.observe(&id, token.as_deref()).await?;
    Ok(ok(status_body(observed)?).into_response())
}

fn context_body(app: &App, opened: Opened) -> Json<Envelope<Context>> {
    ok(Context {
        kind: match opened.kind {
            Kind::Auth => ContextType::Auth,
            Kind::Registration => ContextType::Registration,
        },
        application_name: app.name.clone(),
        approval_context: opened.session.approval_context.map(String::from),
        options: opened.options,
    })
}

async fn context(
    State(state): State<AppState>,
    Id(id): Id,
    Caller(app, _): Caller,
    ClientIp(ip): ClientIp,
    PhoneClaim(phone): PhoneClaim,
) -> Result<Json<Envelope<Context>>, ApiError> {
    state.limiter.check(&[Bucket::PhoneClient(ip)]).await?;
    Ok(context_body(
        &app,
        state.bridge.open(&app, &id, &phone).await?,
    ))
}

/// A phone with no passkey creates one instead (apps with `open_signup`).
async fn signup(
    State(state): State<AppState>,
    Id(id): Id,
    Caller(app, _): Caller,
    ClientIp(ip): ClientIp,
    PhoneClaim(phone): PhoneClaim,
) -> Result<Json<Envelope<Context>>, ApiError> {
    state.limiter.check(&[Bucket::PhoneClient(ip)]).await?;
    Ok(context_body(
        &app,
        state.bridge.open_signup(&app, &id, &phone).await?,
    ))
}

async fn verify(
    State(state): State<AppState>,
    Caller(app, _): Caller,
    ClientIp(ip): ClientIp,
    PhoneClaim(phone): PhoneClaim,
    JsonBody(body): JsonBody<VerifyRequest<PublicKeyCredential>>,
) -> Result<StatusCode, ApiError> {
    let id = SessionId::parse(&body.session_id)?;
    state.limiter.check(&[Bucket::PhoneClient(ip)]).await?;
    state
        .bridge
        .verify(&app, &id, &body.credential, &phone)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn verify_registration(
    State(state): State<AppState>,
    Caller(app, _): Caller,
    ClientIp(ip): ClientIp,
    PhoneClaim(phone): PhoneClaim,
    JsonBody(body): JsonBody<VerifyRequest<RegisterPublicKeyCredential>>,
) -> Result<StatusCode, ApiError> {
    let id = SessionId::parse(&body.session_id)?;
    state.limiter.check(&[Bucket::PhoneClient(ip)]).await?;
    state
        .bridge
        .verify_registration(&app, &id, &body.credential, &phone)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn cancel(
    State(state): State<AppState>,
    Id(id): Id,
    PollingToken(token): PollingToken,
    ClientIp(ip): ClientIp,
) -> Result<StatusCode, ApiError> {
    state
        .limiter
        .check(&status_buckets(token.as_deref(), ip))
        .await?;
    state.bridge.cancel(&id, token.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The phone that opened a request asks what became of it, after an answer failed on our side
/// (a 5xx): `completed` (it went through), `pending` (still open: reopen the context for a fresh
/// challenge), or how it ended.
async fn outcome(
    State(state): State<AppState>,
    Id(id): Id,
    Caller(app, _): Caller,
    ClientIp(ip): ClientIp,
    PhoneClaim(phone): PhoneClaim,
) -> Result<Json<Envelope<PhoneView>>, ApiError> {
    state.limiter.check(&[Bucket::PhoneClient(ip)]).await?;
    let status = match state.bridge.phone_outcome(&app, &id, &phone).await? {
        SessionState::Pending | SessionState::Scanned | SessionState::Authenticated => {
            WireStatus::Pending
        }
        SessionState::Completed => WireStatus::Completed,
        SessionState::Denied => WireStatus::Denied,
        SessionState::Cancelled => WireStatus::Cancelled,
        SessionState::Expired => WireStatus::Expired,
    };
    Ok(ok(PhoneView { status }))
}

/// Only the phone that opened the request may decline it.
async fn deny(
    State(state): State<AppState>,
    Id(id): Id,
    Caller(app, _): Caller,
    ClientIp(ip): ClientIp,
    PhoneClaim(phone): PhoneClaim,
) -> Result<StatusCode, ApiError> {
    state.limiter.check(&[Bucket::PhoneClient(ip)]).await?;
    state.bridge.deny(&app, &id, &phone).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `Authorization: Bearer <session token>`: whether this deployment issued it and it still
/// holds, and for which app. A backend must check `app_id` is its own (or use introspection).
async fn validate(
    State(state): State<AppState>,
    Bearer(token): Bearer,
) -> Result<Json<Envelope<Validated>>, ApiError> {
    let token = token.ok_or(BridgeError::Token(TokenError::Invalid))?;
    let claims = state.bridge.validate(&token).await?;
    Ok(ok(Validated {
        valid: true,
        user_id: claims.user_id,
        external_user_id: claims.external_user_id.unwrap_or_default(),
        tenant_id: claims.tenant_id,
        app_id: claims.app_id,
    }))
}

/// RFC 7662 token introspection for the app's backend (secret key): `active` only for a live
/// token issued to this same app. The answer is RFC 7662's bare object, not the envelope.
async fn introspect(
    State(state): State<AppState>,
    Backend(app): Backend,
    TokenParam(token): TokenParam,
) -> Result<Json<Introspection>, ApiError> {
    Ok(Json(match state.bridge.introspect(&app, &token).await? {
        Introspected::Active(claims) => Introspection {
            active: true,
            token_type: Some("Bearer".into()),
            client_id: Some(claims.app_id),
            aud: Some(claims.aud),
            iss: Some(claims.iss),
            sub: Some(claims.sub),
            user_id: Some(claims.user_id),
            external_user_id: claims.external_user_id,
            iat: Some(claims.iat),
            exp: Some(claims.exp),
            jti: Some(claims.jti),
        },
        Introspected::Inactive => Introspection::default(),
    }))
}

/// RFC 7009 token revocation for the app's backend (secret key): 200 whatever the token was.
async fn revoke(
    State(state): State<AppState>,
    Backend(app): Backend,
    TokenParam(token): TokenParam,
) -> Result<StatusCode, ApiError> {
    state.bridge.revoke(&app, &token).await?;
    Ok(StatusCode::OK)
}

async fn jwks(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.bridge.jwks())
}
