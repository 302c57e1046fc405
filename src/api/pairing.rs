//! The PIN Bridge API (`/v1/auth-bridge/…`, `/v1/enrollment-bridge/…`): the SDK's `client.bridge` calls, thin handlers over the bridge's pairing, refused with the codes that SDK maps.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::extract::{
    AnswerBody, Answering, ClientIp, Desktop, Id, OnPin, OnPinBody, Phone, PinOffered, Seen,
    Starting,
};
use super::{ApiError, PinBridgeError, StartBody, ok, stream};
use crate::bridge::BridgeError;
use crate::bridge::{Flow, PairingAnswer, PairingStart, PinOffer, Reveal, Viewer, iso8601};
use crate::limits::Operation;
use crate::session::{BridgeKind, Kind, Requester, StartedBy};
use crate::state::AppState;
use crate::wire::{
    AuthPaired, Context, ContextType, EnrollmentComplete, EnrollmentPaired, PairingInitRequest,
    PairingStarted, PairingStatus, PinVerified, VerifyRequest,
};

type Reply<T> = Result<T, PinBridgeError>;

/// Both bridges' routes; each handler is told which bridge its route belongs to.
pub fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for (prefix, bridge) in [
        ("/v1/auth-bridge", BridgeKind::Auth),
        ("/v1/enrollment-bridge", BridgeKind::Enrollment),
    ] {
        router = router
            .route(
                &format!("{prefix}/context/{{id}}"),
                get(
                    move |s: State<AppState>, id: OnPin<Id>, phone: OnPin<Phone>| {
                        context(s, bridge, id, phone)
                    },
                ),
            )
            .route(
                &format!("{prefix}/verify/{{id}}"),
                post(
                    move |s: State<AppState>, id: OnPin<Id>, pin: OnPinBody<PinOffered>| {
                        verify(s, bridge, id, pin)
                    },
                ),
            )
            .route(
                &format!("{prefix}/status/{{id}}"),
                get(
                    move |s: State<AppState>, id: OnPin<Id>, ip: ClientIp, headers: HeaderMap| {
                        status(s, bridge, id, ip, headers)
                    },
                ),
            )
            .route(
                &format!("{prefix}/cancel/{{id}}"),
                post(
                    move |s: State<AppState>, id: OnPin<Id>, desktop: OnPin<Desktop>| {
                        cancel(s, bridge, id, desktop)
                    },
                ),
            );
    }
    router
        .route("/v1/auth-bridge/init", post(init::<AuthInit>))
        .route("/v1/enrollment-bridge/init", post(init::<EnrollmentInit>))
        .route("/v1/auth-bridge/complete", post(complete_auth))
        .route("/v1/enrollment-bridge/complete", post(complete_enrollment))
}

/// `/v1/auth-bridge/init`'s body: a sign-in for whoever proves the PIN, so it names nobody.
#[derive(serde::Deserialize)]
#[serde(transparent)]
struct AuthInit(PairingInitRequest);

/// `/v1/enrollment-bridge/init`'s body: for the person the app's backend names.
#[derive(serde::Deserialize)]
#[serde(transparent)]
struct EnrollmentInit(PairingInitRequest);

/// Both inits as the start limits count them (see `extract::Starting`): checked here, so a
/// refused one (a browser enrolling, a sign-in naming a person) counts nothing.
impl StartBody for AuthInit {
    type Start = PairingStart;
    fn start(self, started_by: StartedBy, requester: Requester) -> Result<PairingStart, ApiError> {
        let body = self.0;
        if body.entity_id.is_some() || body.context_hash.is_some() {
            return Err(ApiError::Validation(
                "an auth bridge signs in whoever proves the PIN with a passkey of the app: it takes \
                 no entity_id or context_hash (those are the enrollment bridge's)"
                    .into(),
            ));
        }
        pairing_start(BridgeKind::Auth, body, started_by, requester)
    }
}

impl StartBody for EnrollmentInit {
    type Start = PairingStart;
    fn start(self, started_by: StartedBy, requester: Requester) -> Result<PairingStart, ApiError> {
        if started_by != StartedBy::Backend || self.0.entity_id.is_none() {
            return Err(BridgeError::EnrollmentNeedsBackend.into());
        }
        pairing_start(BridgeKind::Enrollment, self.0, started_by, requester)
    }
}

fn pairing_start(
    bridge: BridgeKind,
    body: PairingInitRequest,
    started_by: StartedBy,
    requester: Requester,
) -> Result<PairingStart, ApiError> {
    let approval_context = super::approval_context(body.approval_context.as_deref())?;
    let entity_id = super::external_user_id(body.entity_id.as_deref())?;
    if let Some(hash) = &body.context_hash
        && !crate::bridge::is_context_hash(hash)
    {
        return Err(ApiError::Validation(
            "context_hash must be 64 lower-case hex digits, as the SDK's getContextHash() gives"
                .into(),
        ));
    }
    Ok(PairingStart {
        bridge,
        approval_context,
        entity_id,
        context_hash: body.context_hash,
        started_by,
        requester,
    })
}

async fn init<B: StartBody<Start = PairingStart>>(
    State(state): State<AppState>,
    OnPinBody(Starting(app, start, _)): OnPinBody<Starting<B>>,
) -> Reply<(
    StatusCode,
    axum::Json<crate::wire::Envelope<PairingStarted>>,
)> {
    let s = state.bridge.start_pairing(&app, start).await?;
    Ok((
        StatusCode::CREATED,
        ok(PairingStarted {
            session_id: s.session.id.to_string(),
            pin: s.pin,
            expires_at: iso8601(s.session.expires_at),
            polling_token: s.polling_token,
            ticket_id: s.ticket_id,
            entity_id: s.session.external_user_id,
        }),
    ))
}

/// E1: what the approving device shows before the PIN; the options are generic (no challenge
/// before the PIN).
async fn context(
    State(state): State<AppState>,
    bridge: BridgeKind,
    OnPin(Id(id)): OnPin<Id>,
    OnPin(Phone(app, _)): OnPin<Phone>,
) -> Reply<axum::Json<crate::wire::Envelope<Context>>> {
    let session = state.bridge.pairing_context(&app, &id, bridge).await?;
    Ok(ok(Context {
        kind: context_type(session.kind),
        application_name: app.name.clone(),
        approval_context: session.approval_context.map(String::from),
        options: serde_json::json!({
            "rpId": app.rp_id,
            "userVerification": "required",
            "timeout": 60_000,
        }),
        // A pairing is proven by its PIN, not by these signals.
        confirm_choices: None,
        requested_from: None,
    }))
}

fn context_type(kind: Kind) -> ContextType {
    match kind {
        Kind::Auth => ContextType::Auth,
        Kind::Registration => ContextType::Registration,
    }
}

/// E2: the PIN, and for a right one the ceremony's options.
async fn verify(
    State(state): State<AppState>,
    bridge: BridgeKind,
    OnPin(Id(id)): OnPin<Id>,
    OnPinBody(PinOffered(app, phone, pin)): OnPinBody<PinOffered>,
) -> Reply<axum::Json<crate::wire::Envelope<PinVerified>>> {
    let opened = state
        .bridge
        .verify_pin(&app, &id, bridge, &pin, &phone)
        .await?;
    let challenge = opened.options["challenge"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (authentication_options, registration_options) = match opened.kind {
        Kind::Auth => (Some(opened.options), None),
        Kind::Registration => (None, Some(opened.options)),
    };
    Ok(ok(PinVerified {
        session_id: id.to_string(),
        challenge,
        authentication_options,
        registration_options,
    }))
}

/// E4: the approving device signed in; the token is its own.
async fn complete_auth(
    state: State<AppState>,
    Seen(from): Seen,
    OnPinBody(answering): OnPinBody<Answering<VerifyRequest<PublicKeyCredential>>>,
) -> Reply<axum::Json<crate::wire::Envelope<AuthPaired>>> {
    let paired = complete(state, BridgeKind::Auth, from, answering).await?;
    Ok(ok(AuthPaired {
        session_token: paired.approved.completion.session_token.expose().to_owned(),
    }))
}

/// E3: the approving device made a passkey for the enrollment's person.
async fn complete_enrollment(
    state: State<AppState>,
    Seen(from): Seen,
    OnPinBody(answering): OnPinBody<Answering<EnrollmentComplete<RegisterPublicKeyCredential>>>,
) -> Reply<axum::Json<crate::wire::Envelope<EnrollmentPaired>>> {
    let paired = complete(state, BridgeKind::Enrollment, from, answering).await?;
    let done = paired.approved.completion;
    Ok(ok(EnrollmentPaired {
        credential_id: URL_SAFE_NO_PAD.encode(&paired.approved.credential_id),
        entity_id: paired.entity_id.unwrap_or_default(),
        user_id: done.user_id.to_string(),
        session_token: done.session_token.expose().to_owned(),
    }))
}

async fn complete<B: AnswerBody>(
    State(state): State<AppState>,
    bridge: BridgeKind,
    from: Requester,
    a: Answering<B>,
) -> Result<crate::bridge::Paired, PinBridgeError> {
    let offer = a.enrollment.as_ref().map(|e| PinOffer {
        ticket_id: &e.ticket_id,
        entity_id: &e.entity_id,
        context_hash: &e.context_hash,
    });
    let answer = PairingAnswer {
        bridge,
        answer: &a.answer,
        offer,
    };
    let result = state
        .bridge
        .complete_pairing(&a.app, &a.id, answer, &a.phone, &from)
        .await;
    if let Err(e) = &result {
        let code = crate::problem::Problem::of(e).code;
        state
            .bridge
            .refused(&a.app, &a.id, &a.phone, &from, code)
            .await;
    }
    Ok(result?)
}

/// E5: how the pairing stands, by the session id alone (the SDK's `EventSource` sends nothing
/// else); a stream when asked for one. Counted per client like the desktop's status.
async fn status(
    State(state): State<AppState>,
    bridge: BridgeKind,
    OnPin(Id(id)): OnPin<Id>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Reply<Response> {
    let operation = Operation::Status {
        polling_token: None,
    };
    state.limiter.admit(operation, ip).await?;
    if stream::accepts_events(&headers) {
        let viewer = Viewer::Initiator(bridge);
        return Ok(stream::open(&state, id, viewer, ip, None, &headers, Reveal::UserOnly).await?);
    }
    let observed = state.bridge.observe_pairing(&id, bridge).await?;
    let status: PairingStatus = observed.pairing_status();
    Ok(ok(status).into_response())
}

/// The initiator gives up, with the polling token init gave it.
async fn cancel(
    State(state): State<AppState>,
    bridge: BridgeKind,
    OnPin(Id(id)): OnPin<Id>,
    OnPin(Desktop(_, token)): OnPin<Desktop>,
) -> Reply<StatusCode> {
    state
        .bridge
        .cancel(&id, Some(&token), Flow::Pin(bridge))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
