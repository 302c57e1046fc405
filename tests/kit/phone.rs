//! A phone for tests: a software authenticator whose passkeys are discoverable, answering as the SDK posts them.
//!
//! webauthn-authenticator-rs's `SoftToken` signs for real but keeps no resident keys and returns no
//! user handle. Platform authenticators do both, so this phone keeps what they keep (credential id
//! and user handle per rp_id) and fills them in; the keys and signatures stay the token's own.

use serde_json::{Value, json};
use url::Url;
use webauthn_authenticator_rs::softtoken::SoftToken;
use webauthn_authenticator_rs::{AuthenticatorBackend, WebauthnAuthenticator};
use webauthn_rs_proto::{
    AllowCredentials, AuthenticatorTransport, CreationChallengeResponse, RequestChallengeResponse,
    ResidentKeyRequirement, UserVerificationPolicy,
};

struct Resident {
    rp_id: String,
    credential_id: Vec<u8>,
    user_handle: Vec<u8>,
}

pub struct Phone {
    token: SoftToken,
    resident: Vec<Resident>,
}

/// What the SDK leaves out of its posted credential.
fn as_sdk_sends(mut credential: Value) -> Value {
    if let Some(object) = credential.as_object_mut() {
        object.remove("extensions");
        object.remove("clientExtensionResults");
    }
    credential
}

impl Phone {
    pub fn new() -> Self {
        // `true`: the token reports user verification when asked, as a phone's biometric does.
        let (token, _) = SoftToken::new(true).expect("soft token");
        Phone {
            token,
            resident: Vec::new(),
        }
    }

    /// A copy with the same keys and the same counter: a cloned authenticator.
    pub fn clone_device(&self) -> Phone {
        let token = SoftToken::from_cbor(&self.token.to_cbor().unwrap()).unwrap();
        let resident = self
            .resident
            .iter()
            .map(|r| Resident {
                rp_id: r.rp_id.clone(),
                credential_id: r.credential_id.clone(),
                user_handle: r.user_handle.clone(),
            })
            .collect();
        Phone { token, resident }
    }

    /// `navigator.credentials.create()` on `origin` with the bridge's creation options.
    pub fn create(&mut self, origin: &str, options: &Value) -> Value {
        let mut request: CreationChallengeResponse =
            serde_json::from_value(json!({"publicKey": options})).unwrap();
        let rp_id = request.public_key.rp.id.clone();
        let user_handle = request.public_key.user.id.to_vec();
        // The bridge asks for a resident key; this phone keeps residency itself (see above).
        if let Some(selection) = request.public_key.authenticator_selection.as_mut() {
            selection.require_resident_key = false;
            selection.resident_key = Some(ResidentKeyRequirement::Discouraged);
        }
        let created = self
            .token
            .do_registration(Url::parse(origin).unwrap(), request)
            .unwrap_or_else(|e| panic!("registration on {origin}: {e:?}"));
        self.resident.push(Resident {
            rp_id,
            credential_id: created.raw_id.to_vec(),
            user_handle,
        });
        as_sdk_sends(serde_json::to_value(created).unwrap())
    }

    /// `navigator.credentials.get()` on `origin`: picks this phone's passkey for the options' rpId.
    pub fn sign(&mut self, origin: &str, options: &Value) -> Value {
        self.try_sign(origin, options)
            .expect("this phone has a passkey for the rpId")
    }

    pub fn try_sign(&mut self, origin: &str, options: &Value) -> Option<Value> {
        self.sign_checked(origin, options, true)
    }

    /// `get()` on a page whose origin the rpId does not cover, in a browser that found that
    /// origin in the rp_id's related origins (`/.well-known/webauthn`): it skips the check that
    /// the rpId covers the page, as such a browser does. The origin still goes into the answer.
    pub fn sign_on_related_origin(&mut self, origin: &str, options: &Value) -> Value {
        self.sign_checked(origin, options, false)
            .expect("this phone has a passkey for the rpId")
    }

    fn sign_checked(&mut self, origin: &str, options: &Value, checks: bool) -> Option<Value> {
        let mut request: RequestChallengeResponse =
            serde_json::from_value(json!({"publicKey": options})).unwrap();
        let rp_id = request.public_key.rp_id.clone();
        let listed = |r: &&Resident| {
            request
                .public_key
                .allow_credentials
                .iter()
                .any(|c| c.id.as_slice() == r.credential_id)
        };
        let resident = self
            .resident
            .iter()
            .find(|r| r.rp_id == rp_id)
            .or_else(|| self.resident.iter().find(listed))?;

        if request.public_key.allow_credentials.is_empty() {
            request.public_key.allow_credentials = vec![AllowCredentials {
                type_: "public-key".into(),
                id: resident.credential_id.clone(),
                transports: Some(vec![AuthenticatorTransport::Internal]),
            }];
        }
        let handle = resident.user_handle.clone();
        let origin = Url::parse(origin).unwrap();
        let mut signed = if checks {
            self.token.do_authentication(origin, request).ok()?
        } else {
            AuthenticatorBackend::perform_auth(&mut self.token, origin, request.public_key, 60_000)
                .ok()?
        };
        signed.response.user_handle = Some(handle);
        Some(as_sdk_sends(serde_json::to_value(signed).unwrap()))
    }

    /// Signs as an authenticator that skipped user verification (no biometric, no PIN).
    pub fn sign_without_verification(&mut self, origin: &str, options: &Value) -> Value {
        let mut options = options.clone();
        options["userVerification"] = json!(UserVerificationPolicy::Discouraged_DO_NOT_USE);
        self.sign(origin, &options)
    }
}
