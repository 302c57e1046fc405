//! Every API failure as the contract's envelope `{ok:false,error:{code,message}}` with its HTTP status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::apps::AuthError;
use crate::bridge::BridgeError;
use crate::passkey::PasskeyError;
use crate::session::{InvalidApprovalContext, InvalidExternalUserId, InvalidSessionId};
use crate::store::StoreError;
use crate::token::TokenError;
use crate::wire::{ErrorBody, ErrorEnvelope};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Validation(String),
    #[error("send the body as JSON with Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("the request body is larger than 16 KiB")]
    PayloadTooLarge,
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Bridge(#[from] BridgeError),
    #[error("no such endpoint")]
    RouteNotFound,
    #[error("this endpoint does not accept that method")]
    MethodNotAllowed,
    #[error("too many requests; try again in {} s", retry_after_secs(.0))]
    RateLimited(std::time::Duration),
}

/// Whole seconds, rounded up, never 0: what `Retry-After` can say.
fn retry_after_secs(wait: &std::time::Duration) -> u64 {
    wait.as_millis().div_ceil(1000).max(1) as u64
}

impl From<crate::limits::Limited> for ApiError {
    fn from(limited: crate::limits::Limited) -> Self {
        ApiError::RateLimited(limited.retry_after)
    }
}

impl From<InvalidSessionId> for ApiError {
    fn from(e: InvalidSessionId) -> Self {
        ApiError::Validation(e.to_string())
    }
}

impl From<InvalidExternalUserId> for ApiError {
    fn from(e: InvalidExternalUserId) -> Self {
        ApiError::Validation(e.to_string())
    }
}

impl From<InvalidApprovalContext> for ApiError {
    fn from(e: InvalidApprovalContext) -> Self {
        ApiError::Validation(e.to_string())
    }
}

impl ApiError {
    /// The status, the contract's code, and a message safe to show anyone.
    fn parts(&self) -> (StatusCode, &'static str, String) {
        use StatusCode as S;
        match self {
            ApiError::Validation(m) => (S::BAD_REQUEST, "validation_error", m.clone()),
            ApiError::UnsupportedMediaType => (
                S::UNSUPPORTED_MEDIA_TYPE,
                "validation_error",
                self.to_string(),
            ),
            ApiError::PayloadTooLarge => {
                (S::PAYLOAD_TOO_LARGE, "validation_error", self.to_string())
            }
            ApiError::Auth(
                e @ (AuthError::MissingKey | AuthError::UnknownKey | AuthError::SecretKeyRequired),
            ) => (S::UNAUTHORIZED, "unauthorized", e.to_string()),
            ApiError::Auth(e @ (AuthError::OriginNotAllowed | AuthError::OriginRequired)) => {
                (S::FORBIDDEN, "qr_origin_not_allowed", e.to_string())
            }
            ApiError::Bridge(e) => match e {
                BridgeError::NotFound => (
                    S::NOT_FOUND,
                    "qr_session_not_found",
                    "Session not found.".into(),
                ),
                BridgeError::Expired => (
                    S::GONE,
                    "qr_expired",
                    "This QR code has expired; start a new sign-in.".into(),
                ),
                BridgeError::Denied => (
                    S::FORBIDDEN,
                    "forbidden",
                    "The sign-in was declined on the phone.".into(),
                ),
                BridgeError::Cancelled => (
                    S::GONE,
                    "session_expired",
                    "The sign-in was cancelled.".into(),
                ),
                BridgeError::Refused(t) => (S::CONFLICT, "qr_invalid_state", sentence(t)),
                BridgeError::ChallengeUsed => (S::CONFLICT, "qr_replay_detected", sentence(e)),
                BridgeError::WrongCeremony => (S::CONFLICT, "qr_invalid_state", sentence(e)),
                BridgeError::CredentialNotFound => {
                    (S::NOT_FOUND, "qr_credential_not_found", sentence(e))
                }
                BridgeError::SignupClosed
                | BridgeError::ClaimedElsewhere(_)
                | BridgeError::BrowserNamedUser
                | BridgeError::ExternalIdTaken => (S::FORBIDDEN, "forbidden", sentence(e)),
                BridgeError::SignupOnRegistration => (S::CONFLICT, "qr_invalid_state", sentence(e)),
                BridgeError::UserGone => (S::NOT_FOUND, "qr_user_not_found", sentence(e)),
                BridgeError::Passkey(p) => match p {
                    PasskeyError::ChallengeMismatch => {
                        (S::BAD_REQUEST, "challenge_mismatch", sentence(p))
                    }
                    PasskeyError::CounterWentBack => {
                        (S::CONFLICT, "qr_replay_detected", sentence(p))
                    }
                    PasskeyError::WrongSite
                    | PasskeyError::NotVerified
                    | PasskeyError::NoUserHandle
                    | PasskeyError::CrossOrigin => {
                        (S::BAD_REQUEST, "qr_invalid_response", sentence(p))
                    }
                    PasskeyError::Invalid(_) => (
                        S::BAD_REQUEST,
                        "qr_invalid_response",
                        "The passkey response is not valid.".into(),
                    ),
                },
                BridgeError::Token(TokenError::Expired) => {
                    (S::UNAUTHORIZED, "session_expired", sentence(e))
                }
                BridgeError::Token(TokenError::Invalid | TokenError::Revoked) => {
                    (S::UNAUTHORIZED, "unauthorized", sentence(e))
                }
                BridgeError::Store(StoreError::Unavailable(_)) => (
                    S::SERVICE_UNAVAILABLE,
                    "service_unavailable",
                    "The service is briefly unavailable; try again in a moment.".into(),
                ),
                BridgeError::Store(_) | BridgeError::Contended | BridgeError::Token(_) => (
                    S::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "Something went wrong on our side; try again.".into(),
                ),
            },
            ApiError::RouteNotFound => (S::NOT_FOUND, "not_found", self.to_string()),
            ApiError::RateLimited(_) => (S::TOO_MANY_REQUESTS, "qr_rate_limited", sentence(self)),
            ApiError::MethodNotAllowed => (
                S::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                self.to_string(),
            ),
        }
    }
}

fn sentence(e: &impl std::fmt::Display) -> String {
    format!("{}.", capitalise(&e.to_string()))
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        if status.is_server_error() {
            // The cause goes to the log only; the body stays generic.
            tracing::error!(error = %self, "request failed");
        } else if let ApiError::Bridge(BridgeError::Passkey(cause)) = &self {
            tracing::info!(%cause, "passkey response refused");
        }
        let body = ErrorEnvelope {
            ok: false,
            error: ErrorBody {
                code: code.into(),
                message,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, 1.into());
        }
        if let ApiError::RateLimited(wait) = self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                retry_after_secs(&wait).into(),
            );
        }
        response
    }
}
