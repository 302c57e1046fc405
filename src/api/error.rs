//! Every API failure as the contract's envelope `{ok:false,error:{code,message}}` with its HTTP status (the service's refusals through `problem`'s table).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::apps::AuthError;
use crate::bridge::BridgeError;
use crate::limits::Limited;
use crate::problem::Problem;
use crate::session::{InvalidApprovalContext, InvalidExternalUserId, InvalidSessionId};
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
    #[error("too many requests; try again in {} s", .0.retry_after_secs())]
    RateLimited(Limited),
    /// A status request without `X-Polling-Token` at all (a wrong one is an unknown session).
    #[error("send the polling token from init in the X-Polling-Token header")]
    PollingTokenRequired,
}

impl From<Limited> for ApiError {
    fn from(limited: Limited) -> Self {
        ApiError::RateLimited(limited)
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
            ApiError::Bridge(e) => {
                let p = Problem::of(e);
                (p.status, p.code, p.message)
            }
            ApiError::RouteNotFound => (S::NOT_FOUND, "not_found", self.to_string()),
            ApiError::RateLimited(limited) => {
                let p = Problem::limited(limited);
                (p.status, p.code, p.message)
            }
            ApiError::MethodNotAllowed => (
                S::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                self.to_string(),
            ),
            ApiError::PollingTokenRequired => (
                S::BAD_REQUEST,
                "qr_polling_token_required",
                self.to_string(),
            ),
        }
    }

    /// The envelope, with the code as `rename` says (the PIN bridge's routes rename some).
    fn respond(self, rename: fn(&'static str) -> &'static str) -> Response {
        let (status, code, message) = self.parts();
        let code = rename(code);
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
        if let ApiError::RateLimited(limited) = self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                limited.retry_after_secs().into(),
            );
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.respond(|code| code)
    }
}

/// A refusal on a PIN bridge's routes: the same envelope, coded as the SDK's `client.bridge`
/// maps codes (see `problem::pin_bridge_code`).
#[derive(Debug)]
pub struct PinBridgeError(pub ApiError);

impl<E: Into<ApiError>> From<E> for PinBridgeError {
    fn from(e: E) -> Self {
        PinBridgeError(e.into())
    }
}

impl IntoResponse for PinBridgeError {
    fn into_response(self) -> Response {
        self.0.respond(crate::problem::pin_bridge_code)
    }
}
