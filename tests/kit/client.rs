//! A bridge's API as one app's SDK and the phone's approval page call it.

use qr_bridge::wire::Started;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use super::phone::Phone;

/// Speaks to the bridge at `base` for one app: its publishable `key`, sent from its web page's
/// `origin`. The API tests add the calls only they make in `tests/api/helpers.rs`.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
    pub key: String,
    pub origin: String,
}

impl Client {
    /// `http` carries the caller's timeouts and pooling: tests want short ones, the harness long.
    pub fn for_app(http: reqwest::Client, base: &str, key: &str, origin: &str) -> Self {
        Client {
            base: base.to_owned(),
            http,
            key: key.to_owned(),
            origin: origin.to_owned(),
        }
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// A request as the app's SDK sends it from a browser on the app's origin.
    pub fn app_request(&self, method: Method, path: &str) -> RequestBuilder {
        self.request(method, path)
            .bearer_auth(&self.key)
            .header("Origin", &self.origin)
    }

    /// Starts a sign-in as the app's desktop does, with `body` as the SDK's options.
    pub async fn init_with(&self, body: Value) -> Started {
        let path = "/v1/auth/cross-device/init";
        started(reply(self.app_request(Method::POST, path).json(&body)).await)
    }

    pub async fn init(&self) -> Started {
        self.init_with(json!({})).await
    }

    pub async fn context(&self, id: &str) -> (StatusCode, Value) {
        let path = format!("/v1/auth/cross-device/context/{id}");
        reply(self.app_request(Method::GET, &path)).await
    }

    /// The WebAuthn options the phone gets when it opens the approval page.
    pub async fn options(&self, id: &str) -> Value {
        let (status, body) = self.context(id).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"]["options"].clone()
    }

    pub async fn verify(&self, id: &str, credential: &Value) -> (StatusCode, Value) {
        let body = json!({ "session_id": id, "credential": credential });
        let path = "/v1/auth/cross-device/verify";
        reply(self.app_request(Method::POST, path).json(&body)).await
    }

    pub async fn verify_registration(&self, id: &str, credential: &Value) -> (StatusCode, Value) {
        let body = json!({ "session_id": id, "credential": credential });
        let path = "/v1/auth/cross-device/verify-registration";
        reply(self.app_request(Method::POST, path).json(&body)).await
    }

    /// `init-registration` sent as `req`, whose key says who asks (the app's backend or a
    /// browser), optionally for the integrator's own user id.
    pub async fn start_registration(
        &self,
        req: RequestBuilder,
        external_user_id: Option<&str>,
    ) -> (StatusCode, Value) {
        let body = match external_user_id {
            Some(id) => json!({ "external_user_id": id }),
            None => json!({}),
        };
        reply(req.json(&body)).await
    }

    /// `init-registration` as the public SDK sends it from a browser: the publishable key.
    pub async fn browser_init_registration(
        &self,
        external_user_id: Option<&str>,
    ) -> (StatusCode, Value) {
        let path = "/v1/auth/cross-device/init-registration";
        self.start_registration(self.app_request(Method::POST, path), external_user_id)
            .await
    }

    /// Registers `phone` in the registration session `id`: its passkey made on the approval page
    /// at `page_origin` (the bridge's public origin), then accepted by the bridge.
    pub async fn register_phone(&self, phone: &mut Phone, page_origin: &str, id: &str) {
        let created = phone.create(page_origin, &self.options(id).await);
        let (status, body) = self.verify_registration(id, &created).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
}

/// The session a `201 Created` answer started.
#[track_caller]
pub fn started((status, body): (StatusCode, Value)) -> Started {
    assert_eq!(status, StatusCode::CREATED, "{body}");
    serde_json::from_value(body["data"].clone()).expect("a started session")
}

/// Status and JSON body (`Null` for an empty one).
pub async fn reply(req: RequestBuilder) -> (StatusCode, Value) {
    let res = req.send().await.unwrap();
    let status = res.status();
    let bytes = res.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("a JSON body")
    };
    (status, body)
}
