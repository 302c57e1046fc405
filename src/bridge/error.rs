//! What the service refuses, and why: one error for every caller (the table in `problem` says how each is shown).

use super::MAX_ATTEMPTS;
use crate::apps::Invalid;
use crate::passkey::PasskeyError;
use crate::session::{ClaimedElsewhere, PickError, TransitionError};
use crate::store::StoreError;
use crate::token::TokenError;

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// Unknown id, another app's session, or a wrong polling token: all look the same from outside.
    #[error("session not found")]
    NotFound,
    #[error("the session has expired")]
    Expired,
    #[error("the phone declined")]
    Denied,
    #[error("the desktop cancelled")]
    Cancelled,
    #[error(transparent)]
    Refused(TransitionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("gave up after {MAX_ATTEMPTS} conflicting writes")]
    Contended,
    /// No ceremony is waiting: the challenge was already answered, or never handed out.
    #[error("this challenge was already used; reload the approval page for a new one")]
    ChallengeUsed,
    /// The phone answered a sign-in with a registration or the other way round.
    #[error("this session is waiting for the other kind of passkey response")]
    WrongCeremony,
    #[error("no passkey of this app matches the response")]
    CredentialNotFound,
    #[error(transparent)]
    Passkey(#[from] PasskeyError),
    #[error("this app does not let people create an account from the phone")]
    SignupClosed,
    /// A browser (publishable key) named the account a registration is for.
    #[error(
        "a browser may not choose the account a passkey is registered for: start the registration \
         from your backend with the secret key (no Origin), or leave out external_user_id"
    )]
    BrowserNamedUser,
    /// The app already has a user with this external id, and only its backend may add to it.
    #[error(
        "an account with this external_user_id already exists; add a passkey to it from your \
         backend with the secret key"
    )]
    ExternalIdTaken,
    #[error("creating an account is only offered on a sign-in request")]
    SignupOnRegistration,
    /// The user a registration was adding to is gone (removed meanwhile).
    #[error("the account this passkey was for no longer exists")]
    UserGone,
    #[error(transparent)]
    ClaimedElsewhere(#[from] ClaimedElsewhere),
    /// A wrong PIN, counted against the session.
    #[error("wrong PIN; {remaining} more wrong attempts lock this pairing")]
    PinMismatch { remaining: u8 },
    #[error("too many wrong PINs: this pairing is locked; start a new one")]
    PinLocked,
    /// The enrollment's ticket or entity is not this session's.
    #[error("no enrollment ticket matches this session, ticket and entity")]
    TicketMismatch,
    /// The enrollment ticket was bound to another browser.
    #[error("this enrollment ticket was issued for another browser (context_hash)")]
    ContextMismatch,
    /// Adding a passkey to a named person is for the integrator's backend alone.
    #[error(
        "an enrollment bridge is started by your backend with the secret key (no Origin) and an entity_id"
    )]
    EnrollmentNeedsBackend,
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The phone picked another number than the desktop shows: the session is declined.
    #[error("that is not the number the desktop shows; the sign-in was declined")]
    NumberMismatch,
    /// A pick for a session that asks for none (its app leaves number matching off).
    #[error("this request asks for no number")]
    NoNumberAsked,
}

/// Why the service could not be built from the settings.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Settings(#[from] Invalid),
    #[error(transparent)]
    Key(#[from] TokenError),
    #[error("signing keys: {0}")]
    Store(#[from] StoreError),
}

impl From<TransitionError> for BridgeError {
    fn from(e: TransitionError) -> Self {
        match e {
            TransitionError::Expired => BridgeError::Expired,
            other => BridgeError::Refused(other),
        }
    }
}

impl From<PickError> for BridgeError {
    fn from(e: PickError) -> Self {
        match e {
            PickError::NotAsked => BridgeError::NoNumberAsked,
            PickError::Refused(t) => t.into(),
        }
    }
}
