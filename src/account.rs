//! What the store keeps for the phone's ceremonies: the users of each app with their passkeys, and the ceremony waiting for a phone's answer.
//!
//! # Why ceremony state may be serialised here
//!
//! Between the phone's two requests (options, then the signed response) webauthn-rs needs its
//! ceremony state back. It allows serialising that state only behind
//! `danger-allow-state-serialisation`, because state kept where the client can read, replay or
//! edit it (a cookie, a hidden field, `localStorage`) lets the client choose its own challenge.
//! Here the state never leaves the server: it is written to the bridge's own store under the
//! session's key, expires with the session, and is taken back with an atomic get-and-delete, so
//! every challenge is answered at most once and only the bridge ever reads it.

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use webauthn_rs::prelude::{
    CredentialID, DiscoverableAuthentication, Passkey, PasskeyRegistration,
};

use crate::session::{Timestamp, UserId};

/// A person known to one app, with every passkey they registered.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub app_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_user_id: Option<String>,
    pub created_at: Timestamp,
    pub passkeys: Vec<StoredPasskey>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredPasskey {
    pub passkey: Passkey,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<Timestamp>,
}

/// Users are `usr_` and the 32 hex digits of the UUID their passkeys carry as user handle, so a
/// discoverable credential names its owner without any lookup table.
pub fn user_id(handle: Uuid) -> UserId {
    UserId::new(format!("usr_{}", handle.simple()))
}

pub fn user_handle(id: &UserId) -> Option<Uuid> {
    id.as_str()
        .strip_prefix("usr_")
        .and_then(|hex| Uuid::try_parse(hex).ok())
}

impl User {
    pub fn new(
        handle: Uuid,
        app_id: &str,
        external_user_id: Option<String>,
        now: Timestamp,
    ) -> Self {
        Self {
            id: user_id(handle),
            app_id: app_id.to_owned(),
            external_user_id,
            created_at: now,
            passkeys: Vec::new(),
        }
    }

    pub fn passkey(&self, credential_id: &[u8]) -> Option<&StoredPasskey> {
        self.passkeys
            .iter()
            .find(|p| p.passkey.cred_id().as_slice() == credential_id)
    }

    pub fn passkey_mut(&mut self, credential_id: &[u8]) -> Option<&mut StoredPasskey> {
        self.passkeys
            .iter_mut()
            .find(|p| p.passkey.cred_id().as_slice() == credential_id)
    }

    pub fn credential_ids(&self) -> Vec<CredentialID> {
        self.passkeys
            .iter()
            .map(|p| p.passkey.cred_id().clone())
            .collect()
    }
}

/// What the bridge keeps between handing out options and receiving the signed answer.
#[derive(Serialize, Deserialize)]
pub enum Ceremony {
    SignIn(DiscoverableAuthentication),
    Register {
        state: PasskeyRegistration,
        handle: Uuid,
        /// Whether the passkey joins the existing user of this handle (decided by the app's
        /// backend when it started the registration) rather than making a new one. Ceremonies
        /// stored before this field read as a new user, the safe side.
        #[serde(default)]
        joins: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_carry_their_handle() {
        let handle = Uuid::new_v4();
        assert_eq!(user_handle(&user_id(handle)), Some(handle));
        assert_eq!(user_handle(&UserId::new("usr_nothex")), None);
    }
}
