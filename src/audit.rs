//! The audit trail's entries: every sign-in, registration, refused passkey, decline and revocation, with who, which app, which passkey, from where and when (kept in the store for `audit_retention` by `bridge::Recorder`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::session::{Requester, Session, StartedBy, Timestamp};

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A phone signed in with a passkey; the desktop got a token.
    SignIn,
    /// A phone created a passkey (a new account, or one more passkey); the desktop got a token.
    Registration,
    /// A phone's answer was refused (`reason` says why).
    PasskeyRefused,
    /// The person declined on their phone.
    Declined,
    /// An operator revoked a passkey (the user was signed out with it).
    PasskeyRevoked,
    /// An operator signed the user out everywhere.
    SignedOut,
    /// An operator removed the user.
    UserRemoved,
    /// The app's backend revoked one token.
    TokenRevoked,
    /// The person said on their phone, right after approving, that the sign-in was not theirs:
    /// its token was revoked.
    Disowned,
}

/// One entry of the trail. Nothing in it is a secret: ids, addresses, user agents, error codes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// `evt_…`: unique, and the id its webhook (if any) is delivered under.
    pub id: String,
    pub at: Timestamp,
    pub action: Action,
    pub app_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The credential id, base64url (what `qr-bridge passkeys revoke` takes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passkey_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The desktop that started the session: its address and browser.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desktop: Option<Requester>,
    /// The phone that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<Requester>,
    /// Why a passkey was refused: the API's error code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who started the session: `backend` (the app's server, whose address `desktop` then is)
    /// or `browser` (the person's desktop browser).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    /// The revoked token's id (`jti`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// The operator who ran the command (`user@host`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
}

impl AuditEvent {
    pub fn new(action: Action, app_id: &str, at: Timestamp) -> Self {
        AuditEvent {
            id: format!("evt_{}", uuid::Uuid::new_v4().simple()),
            at,
            action,
            app_id: app_id.to_owned(),
            user_id: None,
            passkey_id: None,
            session_id: None,
            desktop: None,
            phone: None,
            reason: None,
            started_by: None,
            token_id: None,
            operator: None,
        }
    }

    /// What a session says about it: its id and the desktop that started it.
    pub fn of_session(mut self, session: &Session) -> Self {
        self.session_id = Some(session.id.to_string());
        self.desktop = Some(session.requester.clone());
        self.started_by = Some(
            match session.started_by {
                StartedBy::Backend => "backend",
                StartedBy::Browser => "browser",
            }
            .into(),
        );
        self
    }

    pub fn user(mut self, id: &str) -> Self {
        self.user_id = Some(id.to_owned());
        self
    }

    pub fn passkey(mut self, credential_id: &[u8]) -> Self {
        self.passkey_id = Some(URL_SAFE_NO_PAD.encode(credential_id));
        self
    }

    pub fn phone(mut self, phone: &Requester) -> Self {
        self.phone = Some(phone.clone());
        self
    }

    pub fn operator(mut self, who: &str) -> Self {
        self.operator = Some(who.to_owned());
        self
    }

    pub fn reason(mut self, code: &str) -> Self {
        self.reason = Some(code.to_owned());
        self
    }
}

/// Which events `qr-bridge audit` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    pub app: Option<String>,
    pub user: Option<String>,
    /// From this time on (ms); everything kept when absent.
    pub since: Option<Timestamp>,
}

impl Query {
    pub fn matches(&self, event: &AuditEvent) -> bool {
        self.app.as_ref().is_none_or(|a| *a == event.app_id)
            && (self.user.as_ref()).is_none_or(|u| event.user_id.as_ref() == Some(u))
            && self.since.is_none_or(|s| event.at >= s)
    }
}
