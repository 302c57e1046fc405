//! The desktop page's server side: this browser's live code and sign-in for an app, kept in its session, and the page's own event stream.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Path, State as Extract};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use leptos::prelude::{ServerFnError, expect_context};
use serde::{Deserialize, Serialize};
use tower_sessions::Session as WebSession;

use super::{AppLabel, Desk, Ending, Waiting};
use crate::api::{ApiError, ClientIp, stream};
use crate::apps::App;
use crate::bridge::{BridgeError, Flow, Reveal, Start, Viewer};
use crate::i18n::{Lang, Text, text};
use crate::limits::Operation;
use crate::session::{Kind, Requester, SessionId, StartedBy};
use crate::state::AppState;
use crate::ui::server::{client, internal, lang, refused, web_session};
use crate::wire::WireStatus;

/// The desktop's live code for an app, kept for this browser only.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Slot {
    session_id: String,
    polling_token: String,
    qr_url: String,
    expires_at_ms: u64,
}

/// Who signed in, as the page shows it: the token itself is the desktop's to receive through the
/// API, never kept here.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SignedIn {
    user_id: String,
    token_preview: String,
}

impl SignedIn {
    fn desk(self, app: AppLabel) -> Desk {
        Desk::SignedIn {
            app,
            user_id: self.user_id,
            token_preview: self.token_preview,
        }
    }
}

fn waiting_key(app: &App) -> String {
    format!("desk.waiting.{}", app.id)
}

fn signed_in_key(app: &App) -> String {
    format!("desk.user.{}", app.id)
}

/// The QR code of `url` as SVG: medium error correction survives a glare or a smudge.
fn qr_svg(url: &str) -> String {
    crate::api::qr::svg(url, crate::api::qr::DEFAULT_SIZE)
}

fn label(app: &App) -> AppLabel {
    AppLabel {
        id: app.id.clone(),
        name: app.name.clone(),
    }
}

fn waiting(app: &App, slot: &Slot, scanned: bool, number: Option<String>) -> Desk {
    Desk::Waiting(Waiting {
        app: label(app),
        qr_svg: qr_svg(&slot.qr_url),
        qr_url: slot.qr_url.clone(),
        expires_at_ms: slot.expires_at_ms,
        scanned,
        number,
    })
}

/// Only the start of a token is ever shown.
fn preview(token: &str) -> String {
    format!("{}…", token.chars().take(12).collect::<String>())
}

/// The app whose desktop page this is: the home app, or one that chose to be signed in to on the
/// bridge's own page (`hosted_login`). Any other app's id draws nothing: its name and a live code
/// are not for whoever types its id.
fn resolve_app(state: &AppState, app_id: Option<&str>) -> Option<Arc<App>> {
    let id = app_id.or(state.home_app.as_deref())?;
    let app = state.bridge.apps().get(id)?;
    (app.hosted_login || state.home_app.as_deref() == Some(id)).then(|| app.clone())
}

/// One browser's page for one app: what every desk action starts from.
struct Page {
    state: AppState,
    app: Arc<App>,
    web: WebSession,
    /// What the page's refusals are worded in.
    lang: Lang,
}

impl Page {
    /// The page for `app_id` (the home app when `None`), or `None` when no such page is served.
    async fn of(app_id: Option<&str>) -> Result<Option<Page>, ServerFnError> {
        let state = expect_context::<AppState>();
        let Some(app) = resolve_app(&state, app_id) else {
            return Ok(None);
        };
        let web = web_session().await?;
        let lang = lang().await;
        Ok(Some(Page {
            state,
            app,
            web,
            lang,
        }))
    }

    fn label(&self) -> AppLabel {
        label(&self.app)
    }

    fn ended(&self, why: Ending) -> Desk {
        Desk::Ended {
            app: self.label(),
            why,
        }
    }

    async fn slot(&self) -> Result<Option<Slot>, ServerFnError> {
        self.web
            .get::<Slot>(&waiting_key(&self.app))
            .await
            .map_err(internal)
    }

    async fn forget_slot(&self) -> Result<(), ServerFnError> {
        self.web
            .remove::<Slot>(&waiting_key(&self.app))
            .await
            .map(drop)
            .map_err(internal)
    }

    /// The desk as the session stands, or `None` when this browser has no live code for the app.
    async fn current(&self) -> Result<Option<Desk>, ServerFnError> {
        let app = &self.app;
        if let Some(signed) = self
            .web
            .get::<SignedIn>(&signed_in_key(app))
            .await
            .map_err(internal)?
        {
            return Ok(Some(signed.desk(self.label())));
        }
        let Some(slot) = self.slot().await? else {
            return Ok(None);
        };
        let Ok(id) = SessionId::parse(&slot.session_id) else {
            return Ok(None);
        };
        let status = match self
            .state
            .bridge
            .observe(&id, Some(&slot.polling_token))
            .await
        {
            // The token stays here: the page is shown its start only.
            Ok(observed) => observed
                .status(Reveal::Token)
                .map_err(|e| refused(&e, self.lang))?,
            Err(BridgeError::NotFound) => return Ok(None),
            Err(e) => return Err(refused(&e, self.lang)),
        };
        let why = match status.status {
            WireStatus::Pending => {
                return Ok(Some(waiting(
                    app,
                    &slot,
                    status.scanned,
                    status.confirm_code,
                )));
            }
            WireStatus::Completed => {
                let signed = SignedIn {
                    user_id: status.user_id.unwrap_or_default(),
                    token_preview: preview(status.session_token.as_deref().unwrap_or_default()),
                };
                // Signing in changes who this browser is: a session id anyone saw before is void.
                self.web.cycle_id().await.map_err(internal)?;
                self.web
                    .insert(&signed_in_key(app), &signed)
                    .await
                    .map_err(internal)?;
                self.forget_slot().await?;
                return Ok(Some(signed.desk(self.label())));
            }
            WireStatus::Denied => Ending::Denied,
            WireStatus::Cancelled => Ending::Cancelled,
            WireStatus::Expired => Ending::Expired,
        };
        // A code that ended keeps no polling token behind in the browser session.
        self.forget_slot().await?;
        Ok(Some(self.ended(why)))
    }

    /// A new code for this browser, counted like any session start.
    async fn start(&self) -> Result<Desk, ServerFnError> {
        let (ip, headers) = client(&self.state).await?;
        let operation = Operation::Start {
            app_id: &self.app.id,
            by: StartedBy::Browser,
        };
        if self.state.limiter.admit(operation, ip).await.is_err() {
            return Err(ServerFnError::new(text(self.lang, Text::DeskTooMany)));
        }
        let user_agent = headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        let start = Start {
            kind: Kind::Auth,
            approval_context: None,
            external_user_id: None,
            started_by: StartedBy::Browser,
            requester: Requester::new(user_agent, Some(ip.to_string())),
        };
        let started = self
            .state
            .bridge
            .start(&self.app, start)
            .await
            .map_err(|e| refused(&e, self.lang))?;
        let slot = Slot {
            session_id: started.session.id.to_string(),
            polling_token: started.polling_token,
            qr_url: started.qr_url,
            expires_at_ms: started.session.expires_at.as_millis(),
        };
        self.web
            .insert(&waiting_key(&self.app), &slot)
            .await
            .map_err(internal)?;
        Ok(waiting(&self.app, &slot, false, None))
    }
}

/// The page as it stands: a live code, resumed after a reload, or a new one.
pub async fn open(app_id: Option<String>) -> Result<Desk, ServerFnError> {
    let Some(page) = Page::of(app_id.as_deref()).await? else {
        return Ok(Desk::NoApp);
    };
    match page.current().await? {
        Some(desk @ (Desk::Waiting(_) | Desk::SignedIn { .. })) => Ok(desk),
        _ => page.start().await,
    }
}

/// The page after something happened: signed in, or ended; never a new code by itself.
pub async fn refresh(app_id: &str) -> Result<Desk, ServerFnError> {
    let Some(page) = Page::of(Some(app_id)).await? else {
        return Ok(Desk::NoApp);
    };
    // A code gone from the store (long expired) is said to have expired, not replaced.
    Ok(page
        .current()
        .await?
        .unwrap_or_else(|| page.ended(Ending::Expired)))
}

pub async fn new_code(app_id: &str) -> Result<Desk, ServerFnError> {
    match Page::of(Some(app_id)).await? {
        Some(page) => page.start().await,
        None => Ok(Desk::NoApp),
    }
}

pub async fn cancel(app_id: &str) -> Result<Desk, ServerFnError> {
    let Some(page) = Page::of(Some(app_id)).await? else {
        return Ok(Desk::NoApp);
    };
    if let Some(slot) = page.slot().await?
        && let Ok(id) = SessionId::parse(&slot.session_id)
    {
        // Already ended (approved, declined, expired) is reported below as it is.
        let _ = page
            .state
            .bridge
            .cancel(&id, Some(&slot.polling_token), Flow::CrossDevice)
            .await;
    }
    refresh(app_id).await
}

pub async fn sign_out(app_id: &str) -> Result<Desk, ServerFnError> {
    let Some(page) = Page::of(Some(app_id)).await? else {
        return Ok(Desk::NoApp);
    };
    page.web
        .remove::<SignedIn>(&signed_in_key(&page.app))
        .await
        .map_err(internal)?;
    page.start().await
}

/// The desktop page's stream: authenticated by this browser's session, and never carrying the
/// token (the page fetches the outcome through its session instead).
pub async fn desk_events(
    Extract(state): Extract<AppState>,
    Path(app_id): Path<String>,
    ClientIp(ip): ClientIp,
    web: WebSession,
    headers: HeaderMap,
) -> Response {
    match desk_stream(&state, &app_id, ip, &web, &headers).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

/// Counted like the API's streams: by the client's status budget, and at most so many open at
/// once for one code and for one browser.
async fn desk_stream(
    state: &AppState,
    app_id: &str,
    ip: IpAddr,
    web: &WebSession,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let status = Operation::Status {
        polling_token: None,
    };
    state.limiter.admit(status, ip).await?;
    let slot = match state.bridge.apps().get(app_id) {
        Some(app) => web.get::<Slot>(&waiting_key(app)).await.ok().flatten(),
        None => None,
    };
    let (Some((slot, id)), Some(browser)) = (
        slot.and_then(|s| Some((s.clone(), SessionId::parse(&s.session_id).ok()?))),
        web.id(),
    ) else {
        return Err(BridgeError::NotFound.into());
    };
    let browser = browser.to_string();
    stream::open(
        state,
        id,
        Viewer::Desktop(Some(slot.polling_token)),
        ip,
        Some(&browser),
        headers,
        Reveal::UserOnly,
    )
    .await
}
