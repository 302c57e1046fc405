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
        }
    }
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
        if let ApiError::RateLimited(limited) = self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                limited.retry_after_secs().into(),
            );
        }
        response
    }
}
