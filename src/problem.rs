//! The one table from what the service refuses to what the outside is told: the API's status, code and message, and the page's title and advice.

use axum::http::StatusCode;

use crate::bridge::BridgeError;
use crate::i18n::Text;
use crate::limits::Limited;
use crate::passkey::PasskeyError;
use crate::session::{State, TransitionError};
use crate::store::StoreError;
use crate::token::TokenError;

/// One refusal, said for every reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub status: StatusCode,
    /// The contract's error code (`qr_expired`, …), which the SDK maps.
    pub code: &'static str,
    /// For developers reading the API's envelope.
    pub message: String,
    /// For the person holding the phone or sitting at the desktop.
    pub title: Text,
    pub advice: Text,
    /// The approval page's own HTTP status: 410 for a request that is over, whatever the API
    /// calls it (the API's 409 says "not in that state", the page says "gone for you").
    pub page_status: StatusCode,
    /// Whether the person may try again as they are (a fresh challenge, a moment's wait), or the
    /// request is over for them.
    pub retry: bool,
}

const SCAN_AGAIN: Text = Text::ScanAgain;
const NOT_VERIFIED: Text = Text::NotVerifiedAdvice;

impl Problem {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Problem {
            status,
            code,
            message: message.into(),
            title: Text::GenericTitle,
            advice: Text::GenericAdvice,
            retry: false,
            page_status: status,
        }
    }

    /// A request that is over: the page answers 410 Gone.
    fn over(mut self) -> Self {
        self.page_status = StatusCode::GONE;
        self
    }

    fn shown(mut self, title: Text, advice: Text) -> Self {
        self.title = title;
        self.advice = advice;
        self
    }

    fn may_retry(mut self) -> Self {
        self.retry = true;
        self
    }

    /// Whether the failure is ours (a 5xx): its cause goes to the log, never to the reader.
    pub fn is_ours(&self) -> bool {
        self.status.is_server_error()
    }

    /// Too many requests from this client: wait, then try again.
    pub fn limited(limited: &Limited) -> Self {
        let message = format!(
            "Too many requests; try again in {} s.",
            limited.retry_after_secs()
        );
        Problem::new(StatusCode::TOO_MANY_REQUESTS, "qr_rate_limited", message)
            .shown(Text::LimitedTitle, Text::LimitedAdvice)
            .may_retry()
    }

    /// The table itself.
    pub fn of(e: &BridgeError) -> Self {
        use StatusCode as S;
        match e {
            BridgeError::NotFound => {
                Problem::new(S::NOT_FOUND, "qr_session_not_found", "Session not found.")
                    .shown(Text::InvalidCodeTitle, SCAN_AGAIN)
            }
            BridgeError::Expired => Problem::new(
                S::GONE,
                "qr_expired",
                "This QR code has expired; start a new sign-in.",
            )
            .shown(Text::ExpiredTitle, SCAN_AGAIN),
            BridgeError::Denied => Problem::new(
                S::FORBIDDEN,
                "forbidden",
                "The sign-in was declined on the phone.",
            )
            .shown(Text::DeclinedTitle, Text::DeclinedAdvice),
            BridgeError::Cancelled => {
                Problem::new(S::GONE, "session_expired", "The sign-in was cancelled.")
                    .shown(Text::CancelledTitle, Text::CancelledAdvice)
            }
            BridgeError::Refused(t) => {
                let refused = Problem::new(S::CONFLICT, "qr_invalid_state", sentence(t));
                match t {
                    TransitionError::NotAllowed {
                        state: State::Completed,
                        ..
                    } => refused
                        .shown(Text::AlreadyApprovedTitle, Text::AlreadyApprovedAdvice)
                        .over(),
                    TransitionError::NotAllowed {
                        state: State::Denied,
                        ..
                    } => refused
                        .shown(Text::AlreadyDeclinedTitle, Text::AlreadyDeclinedAdvice)
                        .over(),
                    TransitionError::NotAllowed {
                        state: State::Cancelled,
                        ..
                    } => refused
                        .shown(Text::CancelledTitle, Text::CancelledAdvice)
                        .over(),
                    TransitionError::NumberNotPicked => {
                        Problem::new(S::CONFLICT, "qr_number_required", sentence(t))
                            .shown(Text::PickFirstTitle, Text::PickFirstAdvice)
                            .may_retry()
                    }
                    _ => refused.shown(Text::CantGoOnTitle, SCAN_AGAIN),
                }
            }
            BridgeError::ChallengeUsed => {
                Problem::new(S::CONFLICT, "qr_replay_detected", sentence(e))
                    .shown(Text::NotVerifiedTitle, NOT_VERIFIED)
                    .may_retry()
            }
            BridgeError::WrongCeremony => {
                Problem::new(S::CONFLICT, "qr_invalid_state", sentence(e))
                    .shown(Text::NotVerifiedTitle, NOT_VERIFIED)
                    .may_retry()
            }
            BridgeError::CredentialNotFound => {
                Problem::new(S::NOT_FOUND, "qr_credential_not_found", sentence(e))
                    .shown(Text::UnknownPasskeyTitle, Text::UnknownPasskeyAdvice)
                    .may_retry()
            }
            BridgeError::SignupClosed | BridgeError::BrowserNamedUser => {
                Problem::new(S::FORBIDDEN, "forbidden", sentence(e))
                    .shown(Text::NoSignupTitle, Text::NoSignupAdvice)
            }
            BridgeError::ExternalIdTaken => Problem::new(S::FORBIDDEN, "forbidden", sentence(e))
                .shown(Text::AccountExistsTitle, Text::AccountExistsAdvice),
            BridgeError::ClaimedElsewhere(_) => {
                Problem::new(S::FORBIDDEN, "forbidden", sentence(e))
                    .shown(Text::OtherDeviceTitle, Text::OtherDeviceAdvice)
            }
            BridgeError::PinMismatch { .. } => {
                Problem::new(S::BAD_REQUEST, "pin_mismatch", sentence(e))
                    .shown(Text::WrongPinTitle, Text::WrongPinAdvice)
                    .may_retry()
            }
            BridgeError::PinLocked => Problem::new(S::FORBIDDEN, "pin_locked", sentence(e))
                .shown(Text::PinLockedTitle, Text::PinLockedAdvice)
                .over(),
            BridgeError::TicketMismatch => {
                Problem::new(S::NOT_FOUND, "ticket_not_found", sentence(e))
                    .shown(Text::BadLinkTitle, SCAN_AGAIN)
            }
            BridgeError::ContextMismatch => {
                Problem::new(S::BAD_REQUEST, "context_mismatch", sentence(e))
                    .shown(Text::OtherBrowserTitle, SCAN_AGAIN)
            }
            BridgeError::EnrollmentNeedsBackend => {
                Problem::new(S::FORBIDDEN, "forbidden", sentence(e))
            }
            BridgeError::SignupOnRegistration => {
                Problem::new(S::CONFLICT, "qr_invalid_state", sentence(e))
                    .shown(Text::AlreadyCreatesTitle, Text::AlreadyCreatesAdvice)
            }
            BridgeError::UserGone => Problem::new(S::NOT_FOUND, "qr_user_not_found", sentence(e))
                .shown(Text::AccountGoneTitle, Text::AccountGoneAdvice)
                .over(),
            BridgeError::Passkey(p) => {
                let (status, code, message) = match p {
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
                    // The library's wording is not for outsiders.
                    PasskeyError::Invalid(_) => (
                        S::BAD_REQUEST,
                        "qr_invalid_response",
                        "The passkey response is not valid.".into(),
                    ),
                };
                Problem::new(status, code, message)
                    .shown(Text::NotVerifiedTitle, NOT_VERIFIED)
                    .may_retry()
            }
            BridgeError::Token(TokenError::Expired) => {
                Problem::new(S::UNAUTHORIZED, "session_expired", sentence(e))
            }
            BridgeError::Token(TokenError::Invalid | TokenError::Revoked) => {
                Problem::new(S::UNAUTHORIZED, "unauthorized", sentence(e))
            }
            BridgeError::Store(StoreError::Unavailable(_)) => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "The service is briefly unavailable; try again in a moment.",
            )
            .shown(Text::UnreachableTitle, Text::UnreachableAdvice)
            .may_retry(),
            BridgeError::NumberMismatch => {
                Problem::new(S::FORBIDDEN, "qr_number_mismatch", sentence(e))
                    .shown(Text::WrongNumberTitle, Text::WrongNumberAdvice)
                    .over()
            }
            BridgeError::NoNumberAsked => {
                Problem::new(S::CONFLICT, "qr_invalid_state", sentence(e))
                    .shown(Text::CantGoOnTitle, SCAN_AGAIN)
            }
            BridgeError::Store(_) | BridgeError::Contended | BridgeError::Token(_) => {
                Problem::ours()
            }
        }
    }

    /// The same refusal on a PIN bridge's routes (see [`pin_bridge_code`]).
    pub fn on_pin_bridge(mut self) -> Self {
        self.code = pin_bridge_code(self.code);
        self
    }

    /// A failure of ours, whatever its cause (which goes to the log only).
    pub fn ours() -> Self {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Something went wrong on our side; try again.",
        )
        .shown(Text::OursTitle, Text::OursAdvice)
        .may_retry()
    }
}

/// A code as a PIN bridge's routes answer it, where the SDK's `client.bridge` maps codes of
/// its own (`pin-bridge-contract.md` §7): what it would read as `UNKNOWN_ERROR` is renamed to the
/// nearest code it knows.
pub fn pin_bridge_code(code: &'static str) -> &'static str {
    match code {
        "qr_session_not_found" => "session_not_found",
        "qr_expired" | "session_expired" | "qr_invalid_state" => "bridge_session_expired",
        "qr_rate_limited" => "rate_limit_exceeded",
        "qr_origin_not_allowed" => "origin_not_allowed",
        "qr_replay_detected" => "replay_detected",
        "qr_invalid_response" | "qr_polling_token_required" => "invalid_argument",
        // A pairing asks for no number, so these two never reach a PIN route; mapped all the same.
        "qr_credential_not_found"
        | "qr_user_not_found"
        | "qr_number_required"
        | "qr_number_mismatch" => "forbidden",
        "service_unavailable" => "internal_error",
        other => other,
    }
}

/// An error's own words as a sentence: "Session not found."
pub fn sentence(e: &impl std::fmt::Display) -> String {
    let text = e.to_string();
    let mut chars = text.chars();
    let capitalised: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    format!("{capitalised}.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;
    use crate::session::{ClaimedElsewhere, EventKind};

    fn every_error() -> Vec<BridgeError> {
        let refused = |state| {
            BridgeError::Refused(TransitionError::NotAllowed {
                state,
                event: EventKind::Complete,
            })
        };
        vec![
            BridgeError::NotFound,
            BridgeError::Expired,
            BridgeError::Denied,
            BridgeError::Cancelled,
            refused(State::Completed),
            refused(State::Denied),
            refused(State::Cancelled),
            refused(State::Pending),
            BridgeError::Refused(TransitionError::NumberNotPicked),
            BridgeError::NumberMismatch,
            BridgeError::NoNumberAsked,
            BridgeError::Store(StoreError::Unavailable("down".into())),
            BridgeError::Store(StoreError::Corrupt("bad".into())),
            BridgeError::Contended,
            BridgeError::ChallengeUsed,
            BridgeError::WrongCeremony,
            BridgeError::CredentialNotFound,
            BridgeError::Passkey(PasskeyError::ChallengeMismatch),
            BridgeError::Passkey(PasskeyError::Invalid("webauthn-rs internals".into())),
            BridgeError::SignupClosed,
            BridgeError::BrowserNamedUser,
            BridgeError::ExternalIdTaken,
            BridgeError::SignupOnRegistration,
            BridgeError::UserGone,
            BridgeError::ClaimedElsewhere(ClaimedElsewhere::ByAnother),
            BridgeError::Token(TokenError::Expired),
            BridgeError::Token(TokenError::Revoked),
            BridgeError::PinMismatch { remaining: 2 },
            BridgeError::PinLocked,
            BridgeError::TicketMismatch,
            BridgeError::ContextMismatch,
            BridgeError::EnrollmentNeedsBackend,
        ]
    }

    /// Every code a PIN bridge route can answer, as the SDK's `client.bridge` maps them
    /// (`pin-bridge-contract.md` §7): none falls through to `UNKNOWN_ERROR`.
    #[test]
    fn every_pin_bridge_refusal_has_a_code_the_sdk_maps() {
        const MAPPED: &[&str] = &[
            "pin_mismatch",
            "pin_locked",
            "bridge_session_expired",
            "session_not_found",
            "forbidden",
            "internal_error",
            "rate_limit_exceeded",
            "origin_not_allowed",
            "ticket_not_found",
            "context_mismatch",
            "challenge_mismatch",
            "replay_detected",
            "invalid_argument",
            "validation_error",
            "unauthorized",
        ];
        let limited = Problem::limited(&Limited {
            retry_after: std::time::Duration::from_secs(1),
        });
        for p in every_error()
            .iter()
            .map(Problem::of)
            .chain([limited, Problem::ours()])
        {
            let code = p.clone().on_pin_bridge().code;
            assert!(MAPPED.contains(&code), "{} becomes {code}", p.code);
        }
    }

    #[test]
    fn our_failures_tell_nobody_their_cause() {
        for e in every_error() {
            let p = Problem::of(&e);
            if p.is_ours() {
                assert!(
                    !p.message.contains("bad") && !p.message.contains("down"),
                    "{e:?}"
                );
                assert!(p.retry, "a failure of ours is worth another try: {e:?}");
            }
        }
        let p = Problem::of(&BridgeError::Passkey(PasskeyError::Invalid(
            "webauthn-rs internals".into(),
        )));
        assert!(!p.message.contains("internals"));
    }

    #[test]
    fn every_refusal_is_worded_for_people_and_coded_for_the_sdk() {
        for e in every_error() {
            let p = Problem::of(&e);
            assert!(
                p.status.is_client_error() || p.status.is_server_error(),
                "{e:?}"
            );
            assert!(p.message.ends_with('.'), "{e:?}: {}", p.message);
            let (title, advice) = (
                crate::i18n::text(Lang::En, p.title),
                crate::i18n::text(Lang::En, p.advice),
            );
            assert!(
                !p.code.is_empty() && !title.is_empty() && advice.ends_with('.'),
                "{e:?}"
            );
        }
    }

    #[test]
    fn the_page_says_gone_for_a_request_that_is_over() {
        let refused = |state| {
            BridgeError::Refused(TransitionError::NotAllowed {
                state,
                event: EventKind::Complete,
            })
        };
        for e in [
            BridgeError::Expired,
            BridgeError::UserGone,
            refused(State::Completed),
            refused(State::Denied),
            refused(State::Cancelled),
        ] {
            assert_eq!(Problem::of(&e).page_status, StatusCode::GONE, "{e:?}");
        }
        assert_eq!(
            Problem::of(&refused(State::Completed)).status,
            StatusCode::CONFLICT,
            "the API's own"
        );
        assert_eq!(
            Problem::of(&BridgeError::NotFound).page_status,
            StatusCode::NOT_FOUND
        );
        let elsewhere = BridgeError::ClaimedElsewhere(ClaimedElsewhere::ByAnother);
        assert_eq!(Problem::of(&elsewhere).page_status, StatusCode::FORBIDDEN);
    }

    #[test]
    fn a_phone_may_retry_a_passkey_but_not_a_dead_request() {
        assert!(Problem::of(&BridgeError::ChallengeUsed).retry);
        assert!(Problem::of(&BridgeError::CredentialNotFound).retry);
        assert!(!Problem::of(&BridgeError::Expired).retry);
        assert!(!Problem::of(&BridgeError::ClaimedElsewhere(ClaimedElsewhere::ByAnother)).retry);
    }
}
