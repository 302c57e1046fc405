//! The JSON the API speaks (the public SDK's contract), shared by the server, the pages and the browser.

use serde::{Deserialize, Serialize};

/// `POST /v1/auth/cross-device/init`. The message is checked by `ApprovalContext::parse` at the edge.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct InitRequest {
    #[serde(default)]
    pub approval_context: Option<String>,
}

/// What the desktop gets back from init.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    pub session_id: String,
    pub qr_url: String,
    /// ISO-8601 UTC with milliseconds.
    pub expires_at: String,
    pub polling_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_user_id: Option<String>,
}

/// The statuses the SDK knows, plus the final ones our own stream and pages report. (The SDK
/// also knows `authenticated`, for services with a step between the passkey and the token; this
/// one has none, so never sends it.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireStatus {
    Pending,
    Completed,
    Denied,
    Cancelled,
    Expired,
}

impl WireStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WireStatus::Pending => "pending",
            WireStatus::Completed => "completed",
            WireStatus::Denied => "denied",
            WireStatus::Cancelled => "cancelled",
            WireStatus::Expired => "expired",
        }
    }

    /// Whether nothing more will happen to the session.
    pub fn is_final(self) -> bool {
        self != WireStatus::Pending
    }
}

/// One status report. Absent fields are left out, never `null`: the SDK rejects `null`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub status: WireStatus,
    /// Set once the phone has opened the approval page; the SDK only knows `pending`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub scanned: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Number matching (apps with `confirm_code`): the two digits to show once the phone has
    /// opened the request, until it picked them. The SDK ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_code: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextType {
    Auth,
    Registration,
}

/// `GET /v1/auth/cross-device/context/:id`: what the phone shows before it approves, and the
/// WebAuthn options for `navigator.credentials.get()` (auth) or `.create()` (registration).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Context {
    #[serde(rename = "type")]
    pub kind: ContextType,
    pub application_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_context: Option<String>,
    pub options: serde_json::Value,
    /// Number matching: the three numbers to offer, one of them the desktop's. Answer with
    /// `POST /v1/auth/cross-device/confirm/:id` before the passkey.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_choices: Option<Vec<String>>,
    /// Where the request comes from, in words for the person (see `Origin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_from: Option<RequestedFrom>,
}

/// Whether the desktop that started a request is on the phone's network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMatch {
    Same,
    /// Clearly another network: the page warns, and makes Decline the easier choice.
    Different,
    /// Not known (no address, or one over IPv4 and the other over IPv6).
    Unknown,
}

/// Where a request comes from, for the person deciding on the phone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestedFrom {
    pub network: NetworkMatch,
    /// With a GeoIP database configured: the desktop's city and country, in the phone's
    /// language when the database has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// `POST /v1/auth/cross-device/confirm/:id`: the number the person tapped.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConfirmRequest {
    pub code: String,
}

/// `POST /v1/auth/cross-device/init-registration`
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct InitRegistrationRequest {
    #[serde(default)]
    pub external_user_id: Option<String>,
}

/// `POST /v1/auth/cross-device/verify` and `…/verify-registration`: the phone's signed answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VerifyRequest<C> {
    pub session_id: String,
    pub credential: C,
}

/// `GET /v1/sessions/validate`: every field a string, never `null`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validated {
    pub valid: bool,
    pub user_id: String,
    /// Empty when the user was created without one.
    pub external_user_id: String,
    pub tenant_id: String,
    pub app_id: String,
}

/// `GET /v1/auth/cross-device/outcome/:id`: what became of a session, for the phone that opened
/// it. `pending` means still open: reopen the context for a fresh challenge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneView {
    pub status: WireStatus,
}

/// `POST /v1/sessions/introspect`, RFC 7662's shape: `{"active":false}` alone when inactive.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// The app the token was issued to (RFC 7662's `client_id`; also its `aud`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// `{"ok":true,"data":…}`
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub ok: bool,
    pub data: T,
}

/// `{"ok":false,"error":{"code","message"}}`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    pub ok: bool,
    pub error: ErrorBody,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

/// `POST /v1/{auth,enrollment}-bridge/init`: every field optional on the auth bridge; the
/// enrollment bridge needs `entity_id` (the integrator's id of the person) and may bind its
/// ticket to one browser with that browser's `context_hash`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PairingInitRequest {
    #[serde(default)]
    pub approval_context: Option<String>,
    #[serde(default)]
    pub entity_id: Option<String>,
    #[serde(default)]
    pub context_hash: Option<String>,
}

/// What a PIN bridge's initiator gets back: the PIN to show, and (enrollment) the ticket for
/// the approving device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairingStarted {
    pub session_id: String,
    pub pin: String,
    pub expires_at: String,
    /// For `cancel`; the status needs none.
    pub polling_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
}

/// `POST /v1/{auth,enrollment}-bridge/verify/:id`
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PinRequest {
    pub pin: String,
}

/// The PIN was right: the WebAuthn options for the approving device's ceremony.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PinVerified {
    pub session_id: String,
    pub challenge: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_options: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_options: Option<serde_json::Value>,
}

/// `POST /v1/enrollment-bridge/complete`
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EnrollmentComplete<C> {
    pub session_id: String,
    pub ticket_id: String,
    pub entity_id: String,
    pub context_hash: String,
    pub registration_response: C,
}

/// `POST /v1/auth-bridge/complete`'s answer: the token goes to the approving device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthPaired {
    pub session_token: String,
}

/// `POST /v1/enrollment-bridge/complete`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentPaired {
    pub credential_id: String,
    pub entity_id: String,
    pub user_id: String,
    pub session_token: String,
}

/// A PIN bridge's six statuses, as its initiator waits on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PinStatus {
    Pending,
    PinVerified,
    PinLocked,
    Completed,
    Expired,
    Cancelled,
}

/// `GET /v1/{auth,enrollment}-bridge/status/:id`, and each event of its stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairingStatus {
    pub status: PinStatus,
}
