//! Passkeys that follow an app from the hosted bridge to its own page: under a parent-domain rp_id as they are, on another domain by WebAuthn's related origins (`/.well-known/webauthn`), checked at verification.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use qr_bridge::secret;

use crate::both_stores;
use crate::helpers::*;
use crate::phone::Phone;

both_stores!(
    passkeys_made_on_the_hosted_page_keep_working_on_the_apps_own_subdomain,
    passkeys_follow_the_app_to_another_domain_by_related_origins,
    an_answer_from_an_origin_outside_the_related_origins_is_refused,
);

const ACME_KEY: &str = "cli_acme_test_key_0001";
const ACME_SECRET: &str = "sk_acme_test_secret";

/// The bridge at `https://id.example.test`, one app whose rp_id is the parent domain; `page` is
/// its own approval page, when it has one.
fn parent_domain_settings(data: &std::path::Path, page: Option<&str>) -> String {
    let page = page
        .map(|p| format!("primary_qr_base_url = \"{p}\""))
        .unwrap_or_default();
    format!(
        r#"
        public_origin = "https://id.example.test"
        data_dir = "{data}"
        {RELAXED_LIMITS}

        [[apps]]
        id = "acme"
        name = "Acme"
        publishable_key = "{ACME_KEY}"
        secret_key_sha256 = "{digest}"
        allowed_origins = ["https://www.example.test"]
        rp_id = "example.test"
        {page}
        "#,
        data = data.display(),
        digest = secret::digest(ACME_SECRET),
    )
}

/// The guide's "no re-registration needed", where the rp_id is a parent domain of both the
/// bridge and the app's page: a passkey made on the hosted page signs in on the app's page after
/// the app moved there.
async fn passkeys_made_on_the_hosted_page_keep_working_on_the_apps_own_subdomain(backend: Backend) {
    let hosted = TestApp::spawn_settings(backend, |dir| parent_domain_settings(dir, None)).await;
    let acme = Client::for_app(
        hosted.http.clone(),
        &hosted.base,
        ACME_KEY,
        "https://www.example.test",
    );
    let start = acme
        .request(Method::POST, "/v1/auth/cross-device/init-registration")
        .bearer_auth(ACME_SECRET);
    let s = crate::kit::client::started(acme.start_registration(start, Some("ada")).await);
    assert!(
        s.qr_url.starts_with("https://id.example.test/bridge/"),
        "{}",
        s.qr_url
    );
    let mut phone = Phone::new();
    acme.register_phone(&mut phone, "https://id.example.test", &s.session_id)
        .await;

    // The app moves its approval page to its own subdomain; the bridge restarts with that.
    let data = hosted.settings.data_dir.clone();
    let moved = hosted
        .restarted_with(&parent_domain_settings(
            &data,
            Some("https://login.example.test/"),
        ))
        .await;
    let acme = Client::for_app(
        moved.http.clone(),
        &moved.base,
        ACME_KEY,
        "https://www.example.test",
    );
    let s = acme.init().await;
    assert!(
        s.qr_url
            .starts_with("https://login.example.test/mobile-auth?session_id="),
        "{}",
        s.qr_url
    );
    let options = acme.options(&s.session_id).await;
    assert_eq!(options["rpId"], "example.test");
    let signed = phone.sign("https://login.example.test", &options);
    let (status, body) = acme.verify(&s.session_id, &signed).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, done) = acme.status(&s.session_id, Some(&s.polling_token)).await;
    assert_eq!(done["data"]["status"], "completed", "{done}");
    let (_, valid) = acme
        .validate(done["data"]["session_token"].as_str().unwrap())
        .await;
    assert_eq!(
        valid["data"]["external_user_id"], "ada",
        "the same person, no new passkey"
    );
    // No app's passkeys belong to the bridge's own host here: no document, and no cache keeps
    // its absence.
    let (status, _, cache) = related(&moved).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!cache.contains("public"), "{cache}");
}

const FAR_KEY: &str = "cli_far_test_key_00001";

/// The harness's bridge (`https://bridge.test`) with one more app: its passkeys belong to the
/// bridge's host, its approval page is on a domain of its own.
async fn far_app(backend: Backend) -> TestApp {
    let extra = format!(
        r#"{RELAXED_LIMITS}

        [[apps]]
        id = "far"
        name = "Far"
        publishable_key = "{FAR_KEY}"
        secret_key_sha256 = "{digest}"
        allowed_origins = ["https://far.example"]
        rp_id = "bridge.test"
        primary_qr_base_url = "https://signin.far.example/"
        "#,
        digest = secret::digest("sk_far_test_secret"),
    );
    TestApp::spawn_configured(backend, "5m", &extra).await
}

async fn related(app: &TestApp) -> (StatusCode, Value, String) {
    let res = app
        .request(Method::GET, "/.well-known/webauthn")
        .send()
        .await
        .unwrap();
    let status = res.status();
    let cache = res
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, res.json().await.unwrap_or(Value::Null), cache)
}

/// Where the bridge and the app's page share no parent, the bridge serves the related origins of
/// the rp_id it hosts, and a passkey made on the hosted page signs in on the app's own domain.
async fn passkeys_follow_the_app_to_another_domain_by_related_origins(backend: Backend) {
    let app = far_app(backend).await;
    let (status, doc, cache) = related(&app).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert!(cache.starts_with("public"), "{cache}");
    // The bridge and the approval pages of its rp_id's apps; no desktop page (they run no
    // ceremony), nothing of another rp_id (own.test's).
    assert_eq!(
        doc,
        json!({ "origins": [BRIDGE_ORIGIN, "https://signin.far.example"] })
    );

    // Made on the bridge's hosted page, used on the app's own domain.
    let far = Client::for_app(app.http.clone(), &app.base, FAR_KEY, "https://far.example");
    let start = far
        .request(Method::POST, "/v1/auth/cross-device/init-registration")
        .bearer_auth("sk_far_test_secret");
    let s = crate::kit::client::started(far.start_registration(start, Some("kim")).await);
    let mut phone = Phone::new();
    far.register_phone(&mut phone, BRIDGE_ORIGIN, &s.session_id)
        .await;
    let s = far.init().await;
    let signed = phone.sign_on_related_origin(
        "https://signin.far.example",
        &far.options(&s.session_id).await,
    );
    let (status, body) = far.verify(&s.session_id, &signed).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

/// Attack: a look-alike domain relays the challenge and gets the passkey used on its own page.
/// Its origin is in no related-origins list, so the answer is refused and the session unchanged.
async fn an_answer_from_an_origin_outside_the_related_origins_is_refused(backend: Backend) {
    let app = far_app(backend).await;
    let far = Client::for_app(app.http.clone(), &app.base, FAR_KEY, "https://far.example");
    let start = far
        .request(Method::POST, "/v1/auth/cross-device/init-registration")
        .bearer_auth("sk_far_test_secret");
    let s = crate::kit::client::started(far.start_registration(start, None).await);
    let mut phone = Phone::new();
    far.register_phone(&mut phone, BRIDGE_ORIGIN, &s.session_id)
        .await;

    let s = far.init().await;
    let options = far.options(&s.session_id).await;
    // A browser that honours related origins would not even run it there; one that is fooled
    // (or an attacker's own client) still cannot get it past the bridge.
    let phished = phone.sign_on_related_origin("https://signin-far.example", &options);
    let got = far.verify(&s.session_id, &phished).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "qr_invalid_response");
    let (_, status) = far.status(&s.session_id, Some(&s.polling_token)).await;
    assert_eq!(
        status["data"],
        json!({ "status": "pending", "scanned": true })
    );
}
