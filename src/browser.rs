//! What only the browser can do for the pages: the WebAuthn ceremonies, following the status stream, telling the time.
//!
//! Everything here compiles on the server too but is only ever called from event handlers and
//! effects, which run in the browser alone.

use std::cell::Cell;
use std::rc::Rc;

use leptos::prelude::{IntervalHandle, set_interval_with_handle};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;
use wasm_bindgen_futures::JsFuture;
use webauthn_rs_proto::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};

/// Milliseconds since the epoch, on this side's clock.
#[cfg(feature = "hydrate")]
pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

#[cfg(not(feature = "hydrate"))]
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The time now as the page's language `lang` writes it ("14:05"), for "approved at": the
/// browser's own formats, in the person's time zone.
#[cfg(feature = "hydrate")]
pub fn local_time_now(lang: &str) -> String {
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"timeStyle".into(), &"short".into());
    js_sys::Date::new_0()
        .to_locale_time_string_with_options(lang, &options)
        .into()
}

#[cfg(not(feature = "hydrate"))]
pub fn local_time_now(_lang: &str) -> String {
    String::new()
}

/// A day (`ms` since the epoch) as `lang` writes it in full ("3 March 2026", "2026年3月3日").
#[cfg(feature = "hydrate")]
pub fn local_date(ms: u64, lang: &str) -> String {
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"dateStyle".into(), &"long".into());
    js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64))
        .to_locale_date_string(lang, &options)
        .into()
}

#[cfg(not(feature = "hydrate"))]
pub fn local_date(_ms: u64, _lang: &str) -> String {
    String::new()
}

/// Marks the page live (`body[data-hydrated]`) for tests, the page-load benchmark and styles.
pub fn mark_live() {
    if let Some(body) = leptos::prelude::document().body() {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}

/// Whether the page has islands to bring to life (Leptos renders each in a `<leptos-island>`).
pub fn has_islands() -> bool {
    leptos::prelude::document()
        .query_selector("leptos-island")
        .is_ok_and(|found| found.is_some())
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CeremonyError {
    /// `NotAllowedError`: the person cancelled, or this device has no passkey for the site.
    #[error("no passkey was used")]
    Cancelled,
    #[error("this browser cannot use passkeys here")]
    NotSupported,
    #[error("the passkey prompt failed: {0}")]
    Other(String),
}

fn ceremony_error(e: wasm_bindgen::JsValue) -> CeremonyError {
    match e.dyn_ref::<web_sys::DomException>().map(|d| d.name()) {
        Some(name) if name == "NotAllowedError" || name == "AbortError" => CeremonyError::Cancelled,
        Some(name) if name == "NotSupportedError" || name == "SecurityError" => {
            CeremonyError::NotSupported
        }
        Some(name) => CeremonyError::Other(name),
        None => CeremonyError::Other(format!("{e:?}")),
    }
}

fn credentials() -> Result<web_sys::CredentialsContainer, CeremonyError> {
    Ok(web_sys::window()
        .ok_or(CeremonyError::NotSupported)?
        .navigator()
        .credentials())
}

fn parse<T: serde::de::DeserializeOwned>(options: &str) -> Result<T, CeremonyError> {
    serde_json::from_str(&format!(r#"{{"publicKey":{options}}}"#))
        .map_err(|e| CeremonyError::Other(e.to_string()))
}

/// `navigator.credentials.get()` with the bridge's request options; the answer as the API's JSON.
pub async fn use_passkey(options: &str) -> Result<String, CeremonyError> {
    let request: RequestChallengeResponse = parse(options)?;
    let promise = credentials()?
        .get_with_options(&request.into())
        .map_err(ceremony_error)?;
    let answer = JsFuture::from(promise).await.map_err(ceremony_error)?;
    let credential =
        PublicKeyCredential::from(answer.unchecked_into::<web_sys::PublicKeyCredential>());
    serde_json::to_string(&credential).map_err(|e| CeremonyError::Other(e.to_string()))
}

/// `navigator.credentials.create()` with the bridge's creation options.
pub async fn create_passkey(options: &str) -> Result<String, CeremonyError> {
    let request: CreationChallengeResponse = parse(options)?;
    let promise = credentials()?
        .create_with_options(&request.into())
        .map_err(ceremony_error)?;
    let answer = JsFuture::from(promise).await.map_err(ceremony_error)?;
    let credential =
        RegisterPublicKeyCredential::from(answer.unchecked_into::<web_sys::PublicKeyCredential>());
    serde_json::to_string(&credential).map_err(|e| CeremonyError::Other(e.to_string()))
}

/// Follows a status stream; stops (and closes it) when dropped.
pub struct StatusWatch {
    source: Option<web_sys::EventSource>,
    polling: Rc<Cell<Option<IntervalHandle>>>,
    _on_message: Option<Closure<dyn FnMut(web_sys::MessageEvent)>>,
    _on_error: Option<Closure<dyn FnMut(web_sys::Event)>>,
}

impl Drop for StatusWatch {
    fn drop(&mut self) {
        if let Some(source) = &self.source {
            source.close();
        }
        if let Some(tick) = self.polling.take() {
            tick.clear();
        }
    }
}

/// Listens on `url` (Server-Sent Events): `on_scanned` when the phone opens the page (with the
/// number to show, for number matching), `refresh` when the session ends. If the stream fails, calls `refresh` every 3 s instead, as the SDK does.
pub fn watch_status(
    url: &str,
    on_scanned: impl Fn(Option<String>) + 'static,
    refresh: impl Fn() + Clone + 'static,
) -> StatusWatch {
    let polling: Rc<Cell<Option<IntervalHandle>>> = Rc::new(Cell::new(None));
    let poll = {
        let (polling, refresh) = (polling.clone(), refresh.clone());
        move || {
            if let Ok(tick) =
                set_interval_with_handle(refresh.clone(), std::time::Duration::from_secs(3))
            {
                polling.set(Some(tick));
            }
        }
    };
    let Ok(source) = web_sys::EventSource::new(url) else {
        poll();
        return StatusWatch {
            source: None,
            polling,
            _on_message: None,
            _on_error: None,
        };
    };
    let on_message = {
        let source = source.clone();
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            let data = event.data().as_string().unwrap_or_default();
            let Ok(status) = serde_json::from_str::<crate::wire::Status>(&data) else {
                return;
            };
            // The server's one translation (`Observed::status`) decides; here only what to do.
            if status.status.is_final() {
                source.close();
                refresh();
            } else if status.scanned {
                on_scanned(status.confirm_code);
            }
        })
    };
    // The browser would reconnect by itself; like the SDK, fall back to polling instead.
    let on_error = {
        let source = source.clone();
        Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            source.close();
            poll();
        })
    };
    source.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    StatusWatch {
        source: Some(source),
        polling,
        _on_message: Some(on_message),
        _on_error: Some(on_error),
    }
}
