//! API v1: the cross-device routes of the public SDK's contract, thin handlers over the bridge service.

mod error;
mod extract;
mod pairing;
pub mod qr;
pub mod stream;

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER,
};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

pub use error::{ApiError, PinBridgeError};
pub use extract::ClientIp;
use extract::{
    Answering, Backend, Bearer, Desktop, Id, JsonBody, Phone, Seen, Starting, TokenParam,
};

use crate::apps::Apps;
use crate::bridge::{
    Answer, BridgeError, Flow, Introspected, Observed, Open, Reveal, Start, Viewer, iso8601,
    wire_status,
};
use crate::problem::Problem;
use crate::session::{
    ApprovalContext, Kind, Requester, SessionId, StartedBy, parse_external_user_id,
};
use crate::state::AppState;
use crate::token::TokenError;
use crate::wire::{
    ConfirmRequest, Context, ContextType, Envelope, InitRegistrationRequest, InitRequest,
    Introspection, PhoneView, Started, Status, Validated, VerifyRequest, WireStatus,
};

/// Bodies here are at most a few kilobytes (a registration's attestation); more is a mistake or an attack.
pub const BODY_LIMIT: usize = 16 * 1024;

pub fn routes(apps: &Apps) -> Router<AppState> {
    let v1 = Router::new()
        .route("/v1/auth/cross-device/init", post(start::<InitRequest>))
        .route(
            "/v1/auth/cross-device/init-registration",
            post(start::<InitRegistrationRequest>),
        )
        .route("/v1/auth/cross-device/status/{id}", get(status))
        .route(
            "/v1/auth/cross-device/context/{id}",
            get(
                |State(s): State<AppState>,
                 Id(id): Id,
                 ip: ClientIp,
                 phone: Phone,
                 h: HeaderMap| { open(s, id, phone, (ip, h), Open::AsStarted) },
            ),
        )
        .route(
            "/v1/auth/cross-device/signup/{id}",
            post(
                |State(s): State<AppState>,
                 Id(id): Id,
                 ip: ClientIp,
                 phone: Phone,
                 h: HeaderMap| { open(s, id, phone, (ip, h), Open::Signup) },
            ),
        )
        .route(
            "/v1/auth/cross-device/verify",
            post(verify::<PublicKeyCredential>),
        )
        .route(
            "/v1/auth/cross-device/verify-registration",
            post(verify::<RegisterPublicKeyCredential>),
        )
        .route("/v1/auth/cross-device/cancel/{id}", post(cancel))
        .route("/v1/auth/cross-device/deny/{id}", post(deny))
        .route("/v1/auth/cross-device/outcome/{id}", get(outcome))
        .route("/v1/auth/cross-device/confirm/{id}", post(confirm))
        .route("/v1/auth/cross-device/disown/{id}", post(disown))
        .route("/v1/auth/cross-device/qr/{id}", get(qr::image))
        .merge(pairing::routes())
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
    let related = Router::new()
        .route("/.well-known/webauthn", get(related_origins))
        .layer(
            CorsLayer::new()
                .allow_origin(tower_http::cors::Any)
                .allow_methods([Method::GET]),
        );
    v1.merge(jwks).merge(related)
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
            // Older SDKs send it; it names the app the key already names, so it is not read.
            HeaderName::from_static("x-app-id"),
        ])
        .expose_headers([RETRY_AFTER])
        .max_age(Duration::from_secs(600))
}

fn ok<T>(data: T) -> Json<Envelope<T>> {
    Json(Envelope { ok: true, data })
}

/// A start's message for the phone, when it sent one that is not blank.
fn approval_context(text: Option<&str>) -> Result<Option<ApprovalContext>, ApiError> {
    Ok(text.map(ApprovalContext::parse).transpose()?.flatten())
}

/// A start's account (`external_user_id`, `entity_id`), when it named one.
fn external_user_id(text: Option<&str>) -> Result<Option<String>, ApiError> {
    Ok(text.map(parse_external_user_id).transpose()?.flatten())
}

/// What a start's body asks for, checked at the edge (see `extract::Starting`).
trait StartBody: DeserializeOwned + Send {
    type Start: Send;
    fn start(self, started_by: StartedBy, requester: Requester) -> Result<Self::Start, ApiError>;
}

impl StartBody for InitRequest {
    type Start = Start;
    fn start(self, started_by: StartedBy, requester: Requester) -> Result<Start, ApiError> {
        let approval_context = approval_context(self.approval_context.as_deref())?;
        Ok(Start {
            kind: Kind::Auth,
            approval_context,
            external_user_id: None,
            started_by,
            requester,
        })
    }
}

/// A browser's registration may only make a new account; the backend's (secret key) may add a
/// passkey to the user it names. `Bridge::start` holds that line.
impl StartBody for InitRegistrationRequest {
    type Start = Start;
    fn start(self, started_by: StartedBy, requester: Requester) -> Result<Start, ApiError> {
        let external_user_id = external_user_id(self.external_user_id.as_deref())?;
        Ok(Start {
            kind: Kind::Registration,
            approval_context: None,
            external_user_id,
            started_by,
            requester,
        })
    }
}

/// `init` and `init-registration`.
async fn start<B: StartBody<Start = Start>>(
    State(state): State<AppState>,
    Starting(app, start, _): Starting<B>,
) -> Result<(StatusCode, Json<Envelope<Started>>), ApiError> {
    let s = state.bridge.start(&app, start).await?;
    let data = Started {
        session_id: s.session.id.to_string(),
        qr_url: s.qr_url,
        expires_at: iso8601(s.session.expires_at),
        polling_token: s.polling_token,
        external_user_id: s.session.external_user_id,
    };
    Ok((StatusCode::CREATED, ok(data)))
}

/// A poll answers `pending` or `completed`; the SDK reads the other endings as errors.
fn poll_body(observed: Observed) -> Result<Status, ApiError> {
    let status = observed.status(Reveal::Token)?;
    Err(match status.status {
        WireStatus::Pending | WireStatus::Completed => return Ok(status),
        WireStatus::Denied => BridgeError::Denied,
        WireStatus::Cancelled => BridgeError::Cancelled,
        WireStatus::Expired => BridgeError::Expired,
    }
    .into())
}

/// One JSON status, or the event stream when the client asks for one (see `stream::wanted`).
async fn status(
    State(state): State<AppState>,
    Id(id): Id,
    Desktop(ip, token): Desktop,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if stream::wanted(&headers) {
        let viewer = Viewer::Desktop(Some(token));
        return stream::open(&state, id, viewer, ip, None, &headers, Reveal::Token).await;
    }
    let observed = state.bridge.observe(&id, Some(&token)).await?;
    Ok(ok(poll_body(observed)?).into_response())
}

/// `context` (as the session was started) and `signup` (a phone with no passkey creates one,
/// for apps with `open_signup`).
/// Both also say where the request comes from and, for apps with number matching, which
/// numbers to offer.
async fn open(
    state: AppState,
    id: SessionId,
    Phone(app, phone): Phone,
    (ClientIp(ip), headers): (ClientIp, HeaderMap),
    how: Open,
) -> Result<Json<Envelope<Context>>, ApiError> {
    let opened = state.bridge.open(&app, &id, &phone, how).await?;
    let session = opened.session;
    // Place names in the phone's language, when the database has them.
    let lang = crate::i18n::from_headers(&headers);
    let requested_from = state.places.of_session(&session, ip, lang.code());
    Ok(ok(Context {
        kind: match opened.kind {
            Kind::Auth => ContextType::Auth,
            Kind::Registration => ContextType::Registration,
        },
        application_name: app.name.clone(),
        confirm_choices: session
            .number_match()
            .map(|m| m.choices.iter().map(u8::to_string).collect()),
        requested_from: Some(requested_from),
        approval_context: session.approval_context.map(String::from),
        options: opened.options,
    }))
}

/// Number matching: the phone that opened the request sends the number the person tapped. The
/// right one lets its passkey answer (204); a wrong one declines the request (403
/// `qr_number_mismatch`). Two digits, as offered, or `validation_error` before anything is read.
async fn confirm(
    State(state): State<AppState>,
    Id(id): Id,
    Seen(from): Seen,
    Phone(app, phone): Phone,
    JsonBody(ConfirmRequest { code }): JsonBody<ConfirmRequest>,
) -> Result<StatusCode, ApiError> {
    let n = parse_number(&code)?;
    state
        .bridge
        .pick_number(&app, &id, n, &phone, &from)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A number as the phone offers it: two digits, 10 to 99.
fn parse_number(code: &str) -> Result<u8, ApiError> {
    match code.parse::<u8>() {
        Ok(n) if code.len() == 2 && (10..=99).contains(&n) => Ok(n),
        _ => Err(ApiError::Validation(
            "code must be one of the two-digit numbers offered in confirm_choices".into(),
        )),
    }
}

/// "This wasn't me": the phone that approved a request takes it back at once; its token is
/// revoked and the app's backend hears `session.disowned`.
async fn disown(
    State(state): State<AppState>,
    Id(id): Id,
    Seen(from): Seen,
    Phone(app, phone): Phone,
) -> Result<StatusCode, ApiError> {
    state.bridge.disown(&app, &id, &phone, &from).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `verify` (a signed challenge) and `verify-registration` (a new passkey).
async fn verify<C: DeserializeOwned + Send + Into<Answer>>(
    State(state): State<AppState>,
    Seen(from): Seen,
    Answering {
        app,
        id,
        answer,
        phone,
        ..
    }: Answering<VerifyRequest<C>>,
) -> Result<StatusCode, ApiError> {
    // The SDK's contract answers 204: which passkey it was is for our own page only.
    match state.bridge.answer(&app, &id, &answer, &phone, &from).await {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(e) => {
            let code = Problem::of(&e).code;
            state.bridge.refused(&app, &id, &phone, &from, code).await;
            Err(e.into())
        }
    }
}

async fn cancel(
    State(state): State<AppState>,
    Id(id): Id,
    Desktop(_, token): Desktop,
) -> Result<StatusCode, ApiError> {
    state
        .bridge
        .cancel(&id, Some(&token), Flow::CrossDevice)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The phone that opened a request asks what became of it, after an answer failed on our side
/// (a 5xx): `completed` (it went through), `pending` (still open: reopen the context for a fresh
/// challenge), or how it ended.
async fn outcome(
    State(state): State<AppState>,
    Id(id): Id,
    Phone(app, phone): Phone,
) -> Result<Json<Envelope<PhoneView>>, ApiError> {
    let state = state.bridge.phone_outcome(&app, &id, &phone).await?;
    Ok(ok(PhoneView {
        status: wire_status(state),
    }))
}

/// Only the phone that opened the request may decline it.
async fn deny(
    State(state): State<AppState>,
    Id(id): Id,
    Seen(from): Seen,
    Phone(app, phone): Phone,
) -> Result<StatusCode, ApiError> {
    state.bridge.deny(&app, &id, &phone, &from).await?;
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

/// WebAuthn's Related Origin Requests document of the rp_id that is the bridge's host: the
/// origins where its passkeys may be used. Kept an hour when there is one; a 404 is not kept.
async fn related_origins(State(state): State<AppState>) -> Result<Response, ApiError> {
    let origins = state
        .bridge
        .related_origins()
        .ok_or(ApiError::RouteNotFound)?;
    let mut response = Json(serde_json::json!({ "origins": origins })).into_response();
    response.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    Ok(response)
}

async fn jwks(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.bridge.jwks())
}
