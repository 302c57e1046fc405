//! Passkeys: one Webauthn per app and the phone's two ceremonies (sign in, create); what they leave behind is `account`'s.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use url::Url;
use uuid::Uuid;
use webauthn_rs::prelude::{
    AuthenticationResult, CredentialID, DiscoverableAuthentication, Passkey, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Webauthn, WebauthnBuilder, WebauthnError,
};
use webauthn_rs_proto::ResidentKeyRequirement;

use crate::account::Ceremony;
use crate::apps::{App, Apps, Invalid};

/// Why a phone's answer was refused.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("the response answers another challenge")]
    ChallengeMismatch,
    #[error("the response was made for another site (origin or rp_id)")]
    WrongSite,
    #[error("the authenticator did not verify the user")]
    NotVerified,
    #[error("the authenticator's counter went backwards: it may have been cloned")]
    CounterWentBack,
    #[error("the response carries no usable user handle")]
    NoUserHandle,
    /// Made in a page framed by another site (`clientDataJSON.crossOrigin`): someone else's
    /// page may be dressing up the approval.
    #[error("the passkey was used inside a page framed by another site")]
    CrossOrigin,
    #[error("the response is not valid: {0}")]
    Invalid(String),
}

impl From<WebauthnError> for PasskeyError {
    fn from(e: WebauthnError) -> Self {
        match e {
            WebauthnError::MismatchedChallenge => PasskeyError::ChallengeMismatch,
            WebauthnError::InvalidRPOrigin | WebauthnError::InvalidRPIDHash => {
                PasskeyError::WrongSite
            }
            WebauthnError::UserNotVerified | WebauthnError::UserNotPresent => {
                PasskeyError::NotVerified
            }
            WebauthnError::CredentialPossibleCompromise => PasskeyError::CounterWentBack,
            WebauthnError::InvalidUserUniqueId => PasskeyError::NoUserHandle,
            other => PasskeyError::Invalid(other.to_string()),
        }
    }
}

/// One relying party per app, built once at start.
pub struct Passkeys {
    by_app: HashMap<String, Webauthn>,
}

impl Passkeys {
    /// Every origin an app's ceremony may run on: the hosted page, the app's own page, its allowed origins.
    pub fn new(apps: &Apps, public_origin: &str) -> Result<Self, Invalid> {
        let mut by_app = HashMap::new();
        for app in apps.iter() {
            let invalid = |problem: String| Invalid::new(format!("apps.{}", app.id), problem);
            let bridge = Url::parse(public_origin).map_err(|e| invalid(e.to_string()))?;
            let origins = app
                .ceremony_origins(&bridge.origin().ascii_serialization())
                .iter()
                .map(|o| Url::parse(o).map_err(|e| invalid(e.to_string())))
                .collect::<Result<Vec<_>, _>>()?;
            // webauthn-rs wants a first origin its rp_id covers: the app's page when it does,
            // else the bridge's (an rp_id on the bridge's host, reaching the page by related
            // origins). The others are appended; every answer's origin must be one of them.
            let host_of = |u: &Url| u.host_str().unwrap_or_default().to_owned();
            let first = origins
                .iter()
                .skip(1)
                .take(usize::from(app.primary_qr_base_url.is_some()))
                .find(|u| crate::apps::rp_id_covers(&app.rp_id, &host_of(u)))
                .unwrap_or(&bridge)
                .clone();
            let mut builder = WebauthnBuilder::new(&app.rp_id, &first)
                .map_err(|e| invalid(format!("rp_id {:?} does not fit {first}: {e}", app.rp_id)))?
                .rp_name(&app.name);
            for url in origins.iter().filter(|u| **u != first) {
                builder = builder.append_allowed_origin(url);
            }
            by_app.insert(
                app.id.clone(),
                builder.build().map_err(|e| invalid(e.to_string()))?,
            );
        }
        Ok(Self { by_app })
    }

    fn of(&self, app: &App) -> &Webauthn {
        // Built from the same Apps the requests are authenticated against, so always present.
        &self.by_app[&app.id]
    }

    /// Usernameless sign-in: discoverable credentials, empty `allowCredentials`, user verification required.
    pub fn start_sign_in(&self, app: &App) -> Result<(serde_json::Value, Ceremony), PasskeyError> {
        let (mut options, state) = self.of(app).start_discoverable_authentication()?;
        // webauthn-rs asks for conditional mediation; the phone shows a button instead.
        options.mediation = None;
        Ok((to_json(&options.public_key)?, Ceremony::SignIn(state)))
    }

    /// Creation options for a passkey the phone can later find by itself (resident key required).
    pub fn start_register(
        &self,
        app: &App,
        handle: Uuid,
        name: &str,
        exclude: Vec<CredentialID>,
        joins: bool,
    ) -> Result<(serde_json::Value, Ceremony), PasskeyError> {
        let exclude = (!exclude.is_empty()).then_some(exclude);
        let (mut options, state) = self
            .of(app)
            .start_passkey_registration(handle, name, name, exclude)?;
        // webauthn-rs leaves resident keys "discouraged"; usernameless sign-in needs them.
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.resident_key = Some(ResidentKeyRequirement::Required);
            selection.require_resident_key = true;
        }
        Ok((
            to_json(&options.public_key)?,
            Ceremony::Register {
                state,
                handle,
                joins,
            },
        ))
    }

    /// The owner the response names, as user handle and credential id.
    pub fn identify<'a>(
        &self,
        app: &App,
        response: &'a PublicKeyCredential,
    ) -> Result<(Uuid, &'a [u8]), PasskeyError> {
        Ok(self
            .of(app)
            .identify_discoverable_authentication(response)?)
    }

    pub fn finish_sign_in(
        &self,
        app: &App,
        state: DiscoverableAuthentication,
        response: &PublicKeyCredential,
        passkey: &Passkey,
    ) -> Result<AuthenticationResult, PasskeyError> {
        Ok(self
            .of(app)
            .finish_discoverable_authentication_v2(response, state, passkey)?)
    }

    pub fn finish_register(
        &self,
        app: &App,
        state: &PasskeyRegistration,
        response: &RegisterPublicKeyCredential,
    ) -> Result<Passkey, PasskeyError> {
        Ok(self.of(app).finish_passkey_registration(response, state)?)
    }
}

/// Refuses an answer made in a cross-origin frame. webauthn-rs checks this for registrations
/// only, so both ceremonies ask here, before a challenge is spent on the answer.
pub fn refuse_cross_origin(client_data_json: &[u8]) -> Result<(), PasskeyError> {
    #[derive(Deserialize)]
    struct ClientData {
        #[serde(default, rename = "crossOrigin")]
        cross_origin: Option<bool>,
    }
    let data: ClientData = serde_json::from_slice(client_data_json)
        .map_err(|_| PasskeyError::Invalid("clientDataJSON is not JSON".into()))?;
    match data.cross_origin {
        Some(true) => Err(PasskeyError::CrossOrigin),
        _ => Ok(()),
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<serde_json::Value, PasskeyError> {
    serde_json::to_value(value).map_err(|e| PasskeyError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    fn passkeys() -> (Passkeys, Settings) {
        let settings = Settings::from_toml(
            r#"
            public_origin = "https://bridge.test"
            [[apps]]
            id = "shop"
            name = "Shop"
            publishable_key = "cli_shop_0123456789abcdef"
            secret_key_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
            allowed_origins = ["https://shop.test"]
            rp_id = "bridge.test"
            "#,
        )
        .unwrap();
        (
            Passkeys::new(&settings.apps, &settings.public_origin).unwrap(),
            settings,
        )
    }

    fn is_base64url_unpadded(v: &serde_json::Value) -> bool {
        v.as_str().is_some_and(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    }

    #[test]
    fn sign_in_options_have_the_contracts_shape() {
        let (p, s) = passkeys();
        let app = s.apps.get("shop").unwrap();
        let (options, _) = p.start_sign_in(app).unwrap();
        assert!(is_base64url_unpadded(&options["challenge"]), "{options}");
        assert_eq!(options["rpId"], "bridge.test");
        assert_eq!(options["allowCredentials"], serde_json::json!([]));
        assert_eq!(options["userVerification"], "required");
    }

    #[test]
    fn creation_options_require_a_resident_key_and_verification() {
        let (p, s) = passkeys();
        let app = s.apps.get("shop").unwrap();
        let handle = Uuid::new_v4();
        let (options, _) = p
            .start_register(app, handle, "ada@shop.test", vec![], false)
            .unwrap();
        assert!(is_base64url_unpadded(&options["challenge"]), "{options}");
        assert!(is_base64url_unpadded(&options["user"]["id"]), "{options}");
        assert_eq!(
            options["rp"],
            serde_json::json!({"id": "bridge.test", "name": "Shop"})
        );
        assert_eq!(options["user"]["name"], "ada@shop.test");
        let selection = &options["authenticatorSelection"];
        assert_eq!(
            (
                selection["residentKey"].as_str(),
                selection["requireResidentKey"].as_bool()
            ),
            (Some("required"), Some(true))
        );
        assert_eq!(selection["userVerification"], "required");
        assert_eq!(options["attestation"], "none");
        assert!(
            options["pubKeyCredParams"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        );
    }

    #[test]
    fn answers_from_a_cross_origin_frame_are_refused() {
        assert!(refuse_cross_origin(br#"{"type":"webauthn.get","crossOrigin":false}"#).is_ok());
        assert!(refuse_cross_origin(br#"{"type":"webauthn.get"}"#).is_ok());
        assert!(matches!(
            refuse_cross_origin(br#"{"type":"webauthn.get","crossOrigin":true}"#),
            Err(PasskeyError::CrossOrigin)
        ));
        assert!(refuse_cross_origin(b"not json").is_err());
    }
}
