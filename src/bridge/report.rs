//! The one translation from a session as observed to the status the outside sees: the API's poll and stream, the desktop page and its stream.

use super::{BridgeError, Observed};
use crate::session::State;
use crate::store::StoreError;
use crate::wire::{PairingStatus, PinStatus, Status, WireStatus};

/// Whether a completed status carries the session token: the API's desktop receives it; the
/// desktop page's stream and the page itself name the user only (the token never reaches a page).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reveal {
    Token,
    UserOnly,
}

/// A state as the outside names it: a phone having opened the page is still `pending` there.
pub fn wire_status(state: State) -> WireStatus {
    match state {
        State::Pending | State::Scanned => WireStatus::Pending,
        State::Completed => WireStatus::Completed,
        State::Denied => WireStatus::Denied,
        State::Cancelled => WireStatus::Cancelled,
        State::Expired => WireStatus::Expired,
    }
}

/// A state as a PIN bridge names it: opened means the PIN was proven, and its one way to be
/// denied is the lock.
pub fn pin_status(state: State) -> PinStatus {
    match state {
        State::Pending => PinStatus::Pending,
        State::Scanned => PinStatus::PinVerified,
        State::Completed => PinStatus::Completed,
        State::Denied => PinStatus::PinLocked,
        State::Cancelled => PinStatus::Cancelled,
        State::Expired => PinStatus::Expired,
    }
}

impl Observed {
    /// A PIN bridge's status: how it stands, never who or with what token.
    pub fn pairing_status(&self) -> PairingStatus {
        PairingStatus {
            status: pin_status(self.state),
        }
    }

    /// The status as the SDK reads it (`pending`, with `scanned` once the phone opened the
    /// page; `completed` with the user, and the token when revealed), plus the endings our own
    /// stream and pages report. A completed session that lost its token is a corrupt store,
    /// said alike to every reader.
    pub fn status(&self, reveal: Reveal) -> Result<Status, BridgeError> {
        let mut status = Status {
            status: wire_status(self.state),
            scanned: self.state == State::Scanned,
            session_token: None,
            user_id: None,
            confirm_code: self.number.map(|n| n.to_string()),
        };
        if self.state == State::Completed {
            let done = self.completion.as_ref().ok_or_else(|| {
                StoreError::Corrupt("a completed session without its token".into())
            })?;
            status.session_token =
                (reveal == Reveal::Token).then(|| done.session_token.expose().to_owned());
            status.user_id = Some(done.user_id.to_string());
        }
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Completion, SessionToken, UserId};
    use std::time::Duration;

    fn observed(state: State, completion: Option<Completion>) -> Observed {
        Observed {
            state,
            completion,
            rev: 1,
            expires_in: Duration::ZERO,
            flow: crate::bridge::Flow::CrossDevice,
            number: None,
        }
    }

    fn done() -> Option<Completion> {
        Some(Completion {
            user_id: UserId::new("usr_a"),
            session_token: SessionToken::new("tok"),
        })
    }

    #[test]
    fn every_state_has_one_status() {
        for state in State::ALL {
            let completion = (state == State::Completed).then(done).flatten();
            let status = observed(state, completion).status(Reveal::Token).unwrap();
            assert_eq!(
                status.status.as_str(),
                state.as_str().replace("scanned", "pending")
            );
            assert_eq!(status.scanned, state == State::Scanned, "{state}");
            assert_eq!(
                status.status.is_final(),
                state.is_final(),
                "the browser stops on it"
            );
            assert_eq!(status.session_token.is_some(), state == State::Completed);
        }
    }

    #[test]
    fn a_pairing_has_the_sdks_six_statuses_and_no_token() {
        let mut seen = std::collections::HashSet::new();
        for state in State::ALL {
            let status = observed(state, done()).pairing_status();
            seen.insert(status.status);
            let json = serde_json::to_string(&status).unwrap();
            assert!(!json.contains("tok") && !json.contains("usr_"), "{json}");
        }
        assert_eq!(seen.len(), 6, "one status per state");
        assert_eq!(pin_status(State::Scanned), PinStatus::PinVerified);
        assert_eq!(pin_status(State::Denied), PinStatus::PinLocked);
    }

    #[test]
    fn the_desktop_is_told_the_number_and_a_pairing_never() {
        let mut scanned = observed(State::Scanned, None);
        scanned.number = Some(42);
        let status = scanned.status(Reveal::UserOnly).unwrap();
        assert_eq!(status.confirm_code.as_deref(), Some("42"));
        let json = serde_json::to_string(&scanned.pairing_status()).unwrap();
        assert!(!json.contains("42"), "{json}");
        let plain = observed(State::Scanned, None)
            .status(Reveal::Token)
            .unwrap();
        let json = serde_json::to_string(&plain).unwrap();
        assert!(!json.contains("confirm_code"), "absent, never null: {json}");
    }

    #[test]
    fn the_token_is_revealed_only_when_asked() {
        let status = observed(State::Completed, done())
            .status(Reveal::UserOnly)
            .unwrap();
        assert_eq!(status.session_token, None);
        assert_eq!(status.user_id.as_deref(), Some("usr_a"));
    }

    #[test]
    fn a_completion_without_its_token_is_corrupt_for_every_reader() {
        for reveal in [Reveal::Token, Reveal::UserOnly] {
            assert!(matches!(
                observed(State::Completed, None).status(reveal),
                Err(BridgeError::Store(StoreError::Corrupt(_)))
            ));
        }
    }
}
