//! Requests parsed, authorised and counted at the edge: the path's session id, the calling app, the polling token, a JSON body; a malformed request is refused before any store or counter is touched.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, ORIGIN, USER_AGENT};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use super::{ApiError, PinBridgeError, StartBody};
use crate::apps::{App, AuthError};
use crate::bridge::Answer;
use crate::limits::Operation;
use crate::secret;
use crate::session::{Requester, SessionId, StartedBy};
use crate::state::AppState;
use crate::wire::{EnrollmentComplete, PinRequest, VerifyRequest};

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

/// The app a request speaks for, proven by `Authorization: Bearer <key>` and `Origin`, and
/// whether its publishable key (a browser) or its secret key (its backend) proved it.
pub struct Caller(pub Arc<App>, pub StartedBy);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let origin = header(&parts.headers, ORIGIN);
        let (app, by) = state
            .bridge
            .apps()
            .authenticate(bearer(&parts.headers), origin)?;
        Ok(Caller(app, by))
    }
}

/// The app's backend, proven by its secret key: for what only the integrator's server may ask.
pub struct Backend(pub Arc<App>);

impl FromRequestParts<AppState> for Backend {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match Caller::from_request_parts(parts, state).await? {
            Caller(app, StartedBy::Backend) => Ok(Backend(app)),
            Caller(_, StartedBy::Browser) => Err(AuthError::SecretKeyRequired.into()),
        }
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

/// `token` from an RFC 7662 / RFC 7009 request: a form body as the RFCs send it, or JSON.
pub struct TokenParam(pub String);

impl<S: Send + Sync> FromRequest<S> for TokenParam {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        #[derive(serde::Deserialize)]
        struct Body {
            token: String,
        }
        let form = header(req.headers(), CONTENT_TYPE).is_some_and(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
        let body: Body = if form {
            let axum::Form(body) =
                axum::Form::<Body>::from_request(req, state)
                    .await
                    .map_err(|e| match e.status() {
                        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
                        _ => ApiError::Validation("send the token as token=<session token>".into()),
                    })?;
            body
        } else {
            JsonBody::<Body>::from_request(req, state).await?.0
        };
        Ok(TokenParam(body.token))
    }
}

/// What names a phone that calls the API (an integrator's own approval page): its network,
/// since that is all the SDK's calls carry. IPv6 phones are named by their /64, which their
/// temporary addresses share.
pub struct PhoneClaim(pub String);

impl FromRequestParts<AppState> for PhoneClaim {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Ok(ClientIp(ip)) = ClientIp::from_request_parts(parts, state).await;
        let network = crate::limits::network(ip, 64);
        Ok(PhoneClaim(secret::digest(&format!("api-phone {network}"))))
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

/// An app's desktop starting a session: who calls (see [`Caller`]), its body checked into a
/// [`Start`](crate::bridge::Start) (who is asking, as the phone will show it, included), and only then counted by the
/// start limits (see `limits::Operation`): a malformed request is refused without a count.
pub struct Starting<B: StartBody>(pub Arc<App>, pub B::Start, pub PhantomData<B>);

impl<B: StartBody> FromRequest<AppState> for Starting<B> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let (mut parts, body) = request.into_parts();
        let Caller(app, by) = Caller::from_request_parts(&mut parts, state).await?;
        let Ok(ClientIp(ip)) = ClientIp::from_request_parts(&mut parts, state).await;
        let Ok(Seen(requester)) = Seen::from_request_parts(&mut parts, state).await;
        let request = Request::from_parts(parts, body);
        let JsonBody(body) = JsonBody::<B>::from_request(request, state).await?;
        let start = body.start(by, requester)?;
        let operation = Operation::Start {
            app_id: &app.id,
            by,
        };
        state.limiter.admit(operation, ip).await?;
        Ok(Starting(app, start, PhantomData))
    }
}

/// Where a request comes from, as the audit trail keeps it: the client's address (behind trusted
/// proxies) and its user agent.
pub struct Seen(pub Requester);

impl FromRequestParts<AppState> for Seen {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Ok(ClientIp(ip)) = ClientIp::from_request_parts(parts, state).await;
        let user_agent = header(&parts.headers, USER_AGENT);
        Ok(Seen(Requester::new(user_agent, Some(ip.to_string()))))
    }
}

/// A body that carries a phone's signed answer: the cross-device `verify` bodies, and the PIN
/// bridges' `complete` (an enrollment's also carries its ticket).
pub trait AnswerBody: DeserializeOwned + Send {
    fn session_id(&self) -> &str;
    fn into_answer(self) -> (Answer, Option<Enrollment>);
}

/// What an enrollment's approving device presents beside its new passkey.
pub struct Enrollment {
    pub ticket_id: String,
    pub entity_id: String,
    pub context_hash: String,
}

impl<C: DeserializeOwned + Into<Answer> + Send> AnswerBody for VerifyRequest<C> {
    fn session_id(&self) -> &str {
        &self.session_id
    }
    fn into_answer(self) -> (Answer, Option<Enrollment>) {
        (self.credential.into(), None)
    }
}

impl<C: DeserializeOwned + Into<Answer> + Send> AnswerBody for EnrollmentComplete<C> {
    fn session_id(&self) -> &str {
        &self.session_id
    }
    fn into_answer(self) -> (Answer, Option<Enrollment>) {
        let enrollment = Enrollment {
            ticket_id: self.ticket_id,
            entity_id: self.entity_id,
            context_hash: self.context_hash,
        };
        (self.registration_response.into(), Some(enrollment))
    }
}

/// A phone's request with a body, before any limit counts it: the app it speaks for (see
/// [`Caller`]), the client, the phone's claim (see [`PhoneClaim`]).
struct PhoneBody {
    app: Arc<App>,
    ip: std::net::IpAddr,
    phone: String,
}

impl PhoneBody {
    async fn read<T: DeserializeOwned>(
        request: Request,
        state: &AppState,
    ) -> Result<(PhoneBody, JsonBody<T>), ApiError> {
        let (mut parts, body) = request.into_parts();
        let Caller(app, _) = Caller::from_request_parts(&mut parts, state).await?;
        let Ok(ClientIp(ip)) = ClientIp::from_request_parts(&mut parts, state).await;
        let Ok(PhoneClaim(phone)) = PhoneClaim::from_request_parts(&mut parts, state).await;
        let json = JsonBody::from_request(Request::from_parts(parts, body), state).await?;
        Ok((PhoneBody { app, ip, phone }, json))
    }
}

/// A phone's signed answer through the API: the app, the session named in the body, the answer
/// (with an enrollment's ticket) and the phone's claim; counted by the phone limits once the
/// body has been read.
pub struct Answering<B> {
    pub app: Arc<App>,
    pub id: SessionId,
    pub answer: Answer,
    pub enrollment: Option<Enrollment>,
    pub phone: String,
    body: PhantomData<B>,
}

impl<B: AnswerBody> FromRequest<AppState> for Answering<B> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let (PhoneBody { app, ip, phone }, JsonBody(body)) =
            PhoneBody::read::<B>(request, state).await?;
        let id = SessionId::parse(body.session_id())?;
        state.limiter.admit(Operation::Phone, ip).await?;
        let (answer, enrollment) = body.into_answer();
        Ok(Answering {
            app,
            id,
            answer,
            enrollment,
            phone,
            body: PhantomData,
        })
    }
}

/// Any extractor of this module on a PIN bridge's route: refused the same way, coded as the
/// SDK's `client.bridge` reads codes.
pub struct OnPin<T>(pub T);

impl<T: FromRequestParts<AppState, Rejection = ApiError>> FromRequestParts<AppState> for OnPin<T> {
    type Rejection = PinBridgeError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, PinBridgeError> {
        Ok(OnPin(T::from_request_parts(parts, state).await?))
    }
}

/// The body-reading extractors on a PIN bridge's route (see [`OnPin`]).
pub struct OnPinBody<T>(pub T);

impl<T: FromRequest<AppState, Rejection = ApiError>> FromRequest<AppState> for OnPinBody<T> {
    type Rejection = PinBridgeError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, PinBridgeError> {
        Ok(OnPinBody(T::from_request(request, state).await?))
    }
}

/// A PIN offered to a PIN bridge: the phone (see [`Phone`]), its PIN, admitted by the phone
/// limits and the per-client PIN limit once the body has been read.
pub struct PinOffered(pub Arc<App>, pub String, pub String);

impl FromRequest<AppState> for PinOffered {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let (PhoneBody { app, ip, phone }, JsonBody(PinRequest { pin })) =
            PhoneBody::read(request, state).await?;
        if pin.trim().is_empty() || pin.len() > 32 {
            return Err(ApiError::Validation(
                "send the PIN shown on the other device".into(),
            ));
        }
        state.limiter.admit(Operation::Pin, ip).await?;
        Ok(PinOffered(app, phone, pin))
    }
}

/// The desktop asking after its session: the client and the polling token it sent (none at all
/// is refused), admitted by the status limits.
pub struct Desktop(pub std::net::IpAddr, pub String);

impl FromRequestParts<AppState> for Desktop {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Ok(ClientIp(ip)) = ClientIp::from_request_parts(parts, state).await;
        let Ok(PollingToken(token)) = PollingToken::from_request_parts(parts, state).await;
        // Said apart from a wrong token, which reads as an unknown session: this one names no
        // session and is the caller's mistake.
        let token = token.ok_or(ApiError::PollingTokenRequired)?;
        let operation = Operation::Status {
            polling_token: Some(&token),
        };
        state.limiter.admit(operation, ip).await?;
        Ok(Desktop(ip, token))
    }
}

/// A phone acting on a session through the API: the app it speaks for and its claim (see
/// [`PhoneClaim`]), admitted by the phone limits.
pub struct Phone(pub Arc<App>, pub String);

impl FromRequestParts<AppState> for Phone {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Caller(app, _) = Caller::from_request_parts(parts, state).await?;
        let Ok(ClientIp(ip)) = ClientIp::from_request_parts(parts, state).await;
        state.limiter.admit(Operation::Phone, ip).await?;
        let Ok(PhoneClaim(claim)) = PhoneClaim::from_request_parts(parts, state).await;
        Ok(Phone(app, claim))
    }
}
