//! What the pages need on the server: the browser's session (the desktop's code and sign-in, the phone's claim), its store, the desktop's event stream, and the work behind the pages' server functions.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{Path, State as Extract};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use leptos::prelude::{ServerFnError, expect_context};
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};
use serde::{Deserialize, Serialize};
use tower_sessions::cookie::SameSite;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions::{Expiry, Session as WebSession, SessionManagerLayer};
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use crate::api::{ApiError, ClientIp, stream};
use crate::apps::App;
use crate::bridge::{BridgeError, Start};
use crate::limits::Bucket;
use crate::server::AppState;
use crate::session::{Kind, Requester, SessionId, StartedBy, State, Timestamp, TransitionError};
use crate::settings::{Settings, StoreKind};
use crate::ui::{AppLabel, Approval, Asking, Desk, Ending, PhoneOutcome, Waiting};
use crate::{browser, secret};

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

fn waiting_key(app: &App) -> String {
    format!("desk.waiting.{}", app.id)
}

fn signed_in_key(app: &App) -> String {
    format!("desk.user.{}", app.id)
}

const CLAIM_KEY: &str = "phone.claim";

fn internal(e: impl std::fmt::Display) -> ServerFnError {
    tracing::error!(error = %e, "page request failed");
    ServerFnError::new("Something went wrong on our side; try again.")
}

async fn web_session() -> Result<WebSession, ServerFnError> {
    leptos_axum::extract::<WebSession>().await.map_err(internal)
}

/// The client's address (behind trusted proxies) and the request headers.
async fn client(state: &AppState) -> Result<(IpAddr, HeaderMap), ServerFnError> {
    let headers: HeaderMap = leptos_axum::extract().await.map_err(internal)?;
    let peer = leptos_axum::extract::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .await
        .map_or(IpAddr::from([0, 0, 0, 0]), |info| info.0.ip());
    Ok((state.proxies.client(peer, &headers), headers))
}

/// The QR code of `url` as SVG: medium error correction survives a glare or a smudge.
fn qr_svg(url: &str) -> String {
    QrCode::with_error_correction_level(url, EcLevel::M)
        .map(|code| {
            code.render::<svg::Color<'_>>()
                .min_dimensions(264, 264)
                .dark_color(svg::Color("#0b0d12"))
                .light_color(svg::Color("#ffffff"))
                .build()
        })
        .unwrap_or_default()
}

fn label(app: &App) -> AppLabel {
    AppLabel {
        id: app.id.clone(),
        name: app.name.clone(),
    }
}

fn waiting(app: &App, slot: &Slot, scanned: bool) -> Desk {
    Desk::Waiting(Waiting {
        app: label(app),
        qr_svg: qr_svg(&slot.qr_url),
        qr_url: slot.qr_url.clone(),
        expires_at_ms: slot.expires_at_ms,
        scanned,
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

/// The desk as the session stands, or `None` when this browser has no live code for the app.
async fn desk_current(
    state: &AppState,
    web: &WebSession,
    app: &App,
) -> Result<Option<Desk>, ServerFnError> {
    if let Some(signed) = web
        .get::<SignedIn>(&signed_in_key(app))
        .await
        .map_err(internal)?
    {
        return Ok(Some(Desk::SignedIn {
            app: label(app),
            user_id: signed.user_id,
            token_preview: signed.token_preview,
        }));
    }
    let Some(slot) = web.get::<Slot>(&waiting_key(app)).await.map_err(internal)? else {
        return Ok(None);
    };
    let Ok(id) = SessionId::parse(&slot.session_id) else {
        return Ok(None);
    };
    let observed = match state.bridge.observe(&id, Some(&slot.polling_token)).await {
        Ok(observed) => observed,
        Err(BridgeError::NotFound) => return Ok(None),
        Err(e) => return Err(internal(e)),
    };
    // A code that ended keeps no polling token behind in the browser session.
    let ended = async |why| {
        web.remove::<Slot>(&waiting_key(app))
            .await
            .map_err(internal)?;
        Ok(Some(Desk::Ended {
            app: label(app),
            why,
        }))
    };
    match observed.state {
        State::Pending => Ok(Some(waiting(app, &slot, false))),
        State::Scanned | State::Authenticated => Ok(Some(waiting(app, &slot, true))),
        State::Completed => {
            let done = observed
                .completion
                .ok_or_else(|| internal("completed without a token"))?;
            let signed = SignedIn {
                user_id: done.user_id.to_string(),
                token_preview: preview(done.session_token.expose()),
            };
            // Signing in changes who this browser is: a session id anyone saw before is void.
            web.cycle_id().await.map_err(internal)?;
            web.insert(&signed_in_key(app), &signed)
                .await
                .map_err(internal)?;
            web.remove::<Slot>(&waiting_key(app))
                .await
                .map_err(internal)?;
            Ok(Some(Desk::SignedIn {
                app: label(app),
                user_id: signed.user_id,
                token_preview: signed.token_preview,
            }))
        }
        State::Denied => ended(Ending::Denied).await,
        State::Cancelled => ended(Ending::Cancelled).await,
        State::Expired => ended(Ending::Expired).await,
    }
}

/// A new code for this browser, counted like any session start.
async fn desk_start(state: &AppState, web: &WebSession, app: &App) -> Result<Desk, ServerFnError> {
    let (ip, headers) = client(state).await?;
    if state
        .limiter
        .check(&[Bucket::for_start(&app.id, StartedBy::Browser, ip)])
        .await
        .is_err()
    {
        return Err(ServerFnError::new(
            "Too many new codes from here; wait a minute and try again.",
        ));
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
    let started = state.bridge.start(app, start).await.map_err(internal)?;
    let slot = Slot {
        session_id: started.session.id.to_string(),
        polling_token: started.polling_token,
        qr_url: started.qr_url,
        expires_at_ms: started.session.expires_at.as_millis(),
    };
    web.insert(&waiting_key(app), &slot)
        .await
        .map_err(internal)?;
    Ok(waiting(app, &slot, false))
}

pub async fn desk_open(app_id: Option<String>) -> Result<Desk, ServerFnError> {
    let state = expect_context::<AppState>();
    let Some(app) = resolve_app(&state, app_id.as_deref()) else {
        return Ok(Desk::NoApp);
    };
    let web = web_session().await?;
    match desk_current(&state, &web, &app).await? {
        Some(desk @ (Desk::Waiting(_) | Desk::SignedIn { .. })) => Ok(desk),
        _ => desk_start(&state, &web, &app).await,
    }
}

pub async fn desk_refresh(app_id: &str) -> Result<Desk, ServerFnError> {
    let state = expect_context::<AppState>();
    let Some(app) = resolve_app(&state, Some(app_id)) else {
        return Ok(Desk::NoApp);
    };
    let web = web_session().await?;
    match desk_current(&state, &web, &app).await? {
        Some(desk) => Ok(desk),
        // The code is gone from the store (long expired): say so rather than make a new one.
        None => Ok(Desk::Ended {
            app: label(&app),
            why: Ending::Expired,
        }),
    }
}

pub async fn desk_new_code(app_id: &str) -> Result<Desk, ServerFnError> {
    let state = expect_context::<AppState>();
    let Some(app) = resolve_app(&state, Some(app_id)) else {
        return Ok(Desk::NoApp);
    };
    desk_start(&state, &web_session().await?, &app).await
}

pub async fn desk_cancel(app_id: &str) -> Result<Desk, ServerFnError> {
    let state = expect_context::<AppState>();
    let Some(app) = resolve_app(&state, Some(app_id)) else {
        return Ok(Desk::NoApp);
    };
    let web = web_session().await?;
    if let Some(slot) = web
        .get::<Slot>(&waiting_key(&app))
        .await
        .map_err(internal)?
        && let Ok(id) = SessionId::parse(&slot.session_id)
    {
        // Already ended (approved, declined, expired) is reported below as it is.
        let _ = state.bridge.cancel(&id, Some(&slot.polling_token)).await;
    }
    desk_refresh(app_id).await
}

pub async fn desk_sign_out(app_id: &str) -> Result<Desk, ServerFnError> {
    let state = expect_context::<AppState>();
    let Some(app) = resolve_app(&state, Some(app_id)) else {
        return Ok(Desk::NoApp);
    };
    let web = web_session().await?;
    web.remove::<SignedIn>(&signed_in_key(&app))
        .await
        .map_err(internal)?;
    desk_start(&state, &web, &app).await
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
    state.limiter.check(&[Bucket::StatusClient(ip)]).await?;
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
    let slots =
        state
            .streams
            .take_for(state.limiter.limits(), ip, &id, Some(&browser.to_string()))?;
    stream::respond(
        state.bridge.clone(),
        id,
        Some(slot.polling_token),
        headers,
        state.shutdown.clone(),
        false,
        slots,
    )
    .await
}

/// This browser's claim on the requests it opens: a random secret in its session, given to
/// the bridge only as a digest.
async fn claim(web: &WebSession) -> Result<String, ServerFnError> {
    let secret = match web.get::<String>(CLAIM_KEY).await.map_err(internal)? {
        Some(secret) => secret,
        None => {
            let secret = secret::generate("cl_");
            web.insert(CLAIM_KEY, &secret).await.map_err(internal)?;
            secret
        }
    };
    Ok(secret::digest(&secret))
}

/// "Chrome on macOS", from the user agent.
fn device(user_agent: Option<&str>) -> String {
    let parsed = user_agent.and_then(|ua| woothee::parser::Parser::new().parse(ua));
    match parsed {
        Some(r) if r.name != "UNKNOWN" => {
            let os = match r.os {
                "Mac OSX" => "macOS",
                "UNKNOWN" => "",
                other => other,
            };
            if os.is_empty() {
                r.name.to_owned()
            } else {
                format!("{} on {os}", r.name)
            }
        }
        _ => "an unknown browser".to_owned(),
    }
}

fn ago(then: Timestamp, now_ms: u64) -> String {
    match now_ms.saturating_sub(then.as_millis()) / 60_000 {
        0 => "just now".to_owned(),
        1 => "a minute ago".to_owned(),
        n => format!("{n} minutes ago"),
    }
}

/// What the phone is told when there is nothing (more) to approve.
fn gone(e: &BridgeError) -> (u16, &'static str, &'static str) {
    match e {
        BridgeError::NotFound => (
            404,
            "This code is not valid",
            "Go back to your computer and scan a new code.",
        ),
        BridgeError::Expired => (
            410,
            "This code has expired",
            "Go back to your computer and scan a new code.",
        ),
        BridgeError::SignupClosed | BridgeError::BrowserNamedUser => (
            403,
            "You can't create an account here",
            "Sign in with a passkey you already have for this app.",
        ),
        BridgeError::SignupOnRegistration => (
            409,
            "This request already creates a passkey",
            "Go back and approve it as it is.",
        ),
        BridgeError::UserGone => (
            410,
            "This account no longer exists",
            "Go back to your computer and start again.",
        ),
        BridgeError::ExternalIdTaken => (
            403,
            "This account already exists",
            "Sign in with its passkey instead, or ask the app to add this one.",
        ),
        BridgeError::ClaimedElsewhere(_) => (
            403,
            "This request is open on another device",
            "Only the device that first opened it can approve or decline it.",
        ),
        BridgeError::Refused(TransitionError::NotAllowed {
            state: State::Completed,
            ..
        }) => (
            410,
            "Already approved",
            "This sign-in was already approved.",
        ),
        BridgeError::Refused(TransitionError::NotAllowed {
            state: State::Denied,
            ..
        }) => (410, "Already declined", "This sign-in was declined."),
        BridgeError::Refused(TransitionError::NotAllowed {
            state: State::Cancelled,
            ..
        }) => (
            410,
            "Cancelled on the computer",
            "The sign-in was cancelled. Start again on your computer.",
        ),
        _ => (500, "Something went wrong", "Try again in a moment."),
    }
}

fn gone_page(e: &BridgeError) -> Approval {
    if gone(e).0 == 500 {
        tracing::error!(error = %e, "approval page failed");
    }
    let (status, title, message) = gone(e);
    Approval::Gone {
        status,
        title: title.into(),
        message: message.into(),
    }
}

pub async fn approval_open(session_id: &str, create: bool) -> Result<Approval, ServerFnError> {
    let state = expect_context::<AppState>();
    let Ok(id) = SessionId::parse(session_id) else {
        return Ok(gone_page(&BridgeError::NotFound));
    };
    let (ip, _) = client(&state).await?;
    if state
        .limiter
        .check(&[Bucket::PhoneClient(ip)])
        .await
        .is_err()
    {
        return Ok(Approval::Gone {
            status: 429,
            title: "Too many attempts".into(),
            message: "Wait a minute, then try again.".into(),
        });
    }
    // Found first: a made-up code gets no browser session.
    let app = match state.bridge.app_of(&id).await {
        Ok(app) => app,
        Err(e) => return Ok(gone_page(&e)),
    };
    let web = web_session().await?;
    let by = claim(&web).await?;
    let opened = if create {
        state.bridge.open_signup(&app, &id, &by).await
    } else {
        state.bridge.open(&app, &id, &by).await
    };
    let opened = match opened {
        Ok(opened) => opened,
        Err(e) => return Ok(gone_page(&e)),
    };
    let session = &opened.session;
    Ok(Approval::Ready {
        session_id: session.id.to_string(),
        app_name: app.name.clone(),
        message: session.approval_context.as_ref().map(|m| m.for_display()),
        asking: Asking {
            browser: device(session.requester.user_agent.as_deref()),
            address: session.requester.address.clone(),
            when: ago(session.created_at, browser::now_ms()),
        },
        registration: opened.kind == Kind::Registration,
        options: opened.options.to_string(),
        open_signup: app.open_signup,
    })
}

/// How a refused answer reads on the phone: worth another try, or over.
fn outcome(e: BridgeError) -> PhoneOutcome {
    match e {
        BridgeError::Passkey(_) | BridgeError::ChallengeUsed | BridgeError::WrongCeremony => {
            PhoneOutcome::Retry {
                message: "That passkey could not be verified. Try again.".into(),
            }
        }
        BridgeError::CredentialNotFound => PhoneOutcome::Retry {
            message: "This passkey is not registered here. Use another, or create one.".into(),
        },
        BridgeError::Store(_) | BridgeError::Contended | BridgeError::Token(_) => {
            tracing::error!(error = %e, "phone request failed");
            PhoneOutcome::Retry {
                message: "Something went wrong on our side. Try again.".into(),
            }
        }
        other => {
            let (_, title, message) = gone(&other);
            PhoneOutcome::Gone {
                title: title.into(),
                message: message.into(),
            }
        }
    }
}

async fn phone_context(
    session_id: &str,
) -> Result<(AppState, SessionId, Arc<App>, String), PhoneOutcome> {
    let state = expect_context::<AppState>();
    let id = SessionId::parse(session_id).map_err(|_| outcome(BridgeError::NotFound))?;
    let (ip, _) = client(&state)
        .await
        .map_err(|_| outcome(BridgeError::Contended))?;
    if state
        .limiter
        .check(&[Bucket::PhoneClient(ip)])
        .await
        .is_err()
    {
        return Err(PhoneOutcome::Retry {
            message: "Too many attempts; wait a minute and try again.".into(),
        });
    }
    let app = state.bridge.app_of(&id).await.map_err(outcome)?;
    let web = web_session()
        .await
        .map_err(|_| outcome(BridgeError::Contended))?;
    let by = claim(&web)
        .await
        .map_err(|_| outcome(BridgeError::Contended))?;
    Ok((state, id, app, by))
}

pub async fn phone_answer(
    session_id: &str,
    credential: &str,
    registration: bool,
) -> Result<PhoneOutcome, ServerFnError> {
    let (state, id, app, by) = match phone_context(session_id).await {
        Ok(context) => context,
        Err(outcome) => return Ok(outcome),
    };
    let unreadable = || PhoneOutcome::Retry {
        message: "The passkey's answer could not be read. Try again.".into(),
    };
    let result = if registration {
        let Ok(answer) = serde_json::from_str::<RegisterPublicKeyCredential>(credential) else {
            return Ok(unreadable());
        };
        state
            .bridge
            .verify_registration(&app, &id, &answer, &by)
            .await
    } else {
        let Ok(answer) = serde_json::from_str::<PublicKeyCredential>(credential) else {
            return Ok(unreadable());
        };
        state.bridge.verify(&app, &id, &answer, &by).await
    };
    Ok(match result {
        Ok(()) => PhoneOutcome::Approved,
        Err(e) if on_our_side(&e) => truth(&state, &app, &id, &by, e).await,
        Err(e) => outcome(e),
    })
}

/// A failure of ours (the store, contention), after which the session may or may not have moved.
fn on_our_side(e: &BridgeError) -> bool {
    matches!(e, BridgeError::Store(_) | BridgeError::Contended)
}

/// After a failure on our side, what the phone is told comes from the session itself: a write
/// that timed out may still have landed, and the phone must never say "failed" while the desktop
/// says "signed in" (nor the other way round).
async fn truth(
    state: &AppState,
    app: &App,
    id: &SessionId,
    by: &str,
    failure: BridgeError,
) -> PhoneOutcome {
    tracing::warn!(error = %failure, "a phone's answer failed on our side; reading what happened");
    match state.bridge.phone_outcome(app, id, by).await {
        Ok(State::Completed) => PhoneOutcome::Approved,
        Ok(State::Denied) => PhoneOutcome::Declined,
        Ok(State::Pending | State::Scanned | State::Authenticated) => PhoneOutcome::Retry {
            message: "That did not go through on our side. Try again.".into(),
        },
        Ok(State::Expired) => outcome(BridgeError::Expired),
        Ok(State::Cancelled) => outcome(BridgeError::Refused(TransitionError::NotAllowed {
            state: State::Cancelled,
            event: crate::session::EventKind::Complete,
        })),
        // Still unreachable: say so, without claiming either way.
        Err(e) if on_our_side(&e) => PhoneOutcome::Retry {
            message: "We can't reach our service right now. Wait a moment, then try again.".into(),
        },
        Err(e) => outcome(e),
    }
}

pub async fn phone_decline(session_id: &str) -> Result<PhoneOutcome, ServerFnError> {
    let (state, id, app, by) = match phone_context(session_id).await {
        Ok(context) => context,
        Err(outcome) => return Ok(outcome),
    };
    Ok(match state.bridge.deny(&app, &id, &by).await {
        Ok(()) => PhoneOutcome::Declined,
        Err(e) if on_our_side(&e) => truth(&state, &app, &id, &by, e).await,
        Err(e) => outcome(e),
    })
}

/// The largest server-function body: a passkey's answer is a few kilobytes.
const SERVER_FN_BODY_LIMIT: usize = 64 * 1024;

/// Server functions (`/api/…`) act with the browser's cookie, so only the bridge's own pages may
/// call them: a request a browser marks as coming from another origin is refused (a form on a
/// sibling subdomain carries a Lax cookie). Bodies are read here, bounded, so an oversized one is
/// a 413 rather than a failure inside the function.
pub async fn guard_server_fns(
    Extract(state): Extract<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use axum::http::StatusCode;
    if !request.uri().path().starts_with("/api/") {
        return next.run(request).await;
    }
    let own = from_own_page(request.headers(), &state.public_origin);
    if !own {
        return (
            StatusCode::FORBIDDEN,
            "this action is only accepted from the bridge's own pages",
        )
            .into_response();
    }
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, SERVER_FN_BODY_LIMIT).await {
        Ok(bytes) => {
            next.run(axum::extract::Request::from_parts(parts, bytes.into()))
                .await
        }
        Err(_) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is larger than 64 KiB",
        )
            .into_response(),
    }
}

/// Whether a browser says the request comes from the bridge's own pages. `Sec-Fetch-Site` is the
/// browser's own verdict, whatever name the page was opened under (localhost, 127.0.0.1, an
/// alias behind a proxy); without it (older browsers) `Origin` must be the public origin; a
/// client that sends neither is no browser and carries nobody's cookie to abuse.
fn from_own_page(headers: &HeaderMap, public_origin: &str) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match (header("sec-fetch-site"), header("origin")) {
        (Some(site), _) => matches!(site, "same-origin" | "none"),
        (None, Some(origin)) => origin == public_origin,
        (None, None) => true,
    }
}

/// Where browser sessions live: in this process, or in Redis so every instance knows the browser.
#[derive(Clone, Debug)]
pub enum WebSessions {
    Memory(MemoryWebSessions),
    Redis(RedisWebSessions),
}

impl WebSessions {
    pub fn new(settings: &Settings) -> Result<Self, String> {
        Ok(match &settings.store {
            StoreKind::Memory => WebSessions::Memory(MemoryWebSessions::default()),
            StoreKind::Redis { url } => {
                WebSessions::Redis(RedisWebSessions::new(url, &settings.redis_prefix)?)
            }
        })
    }

    /// The cookie: `Secure` when the bridge is reached over https, never readable by scripts.
    pub fn layer(self, secure: bool) -> SessionManagerLayer<WebSessions> {
        SessionManagerLayer::new(self)
            .with_name("qrb")
            .with_secure(secure)
            .with_same_site(SameSite::Lax)
            .with_http_only(true)
            .with_expiry(Expiry::OnInactivity(
                tower_sessions::cookie::time::Duration::hours(12),
            ))
    }
}

#[async_trait]
impl SessionStore for WebSessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            WebSessions::Memory(m) => m.create(record).await,
            WebSessions::Redis(r) => r.create(record).await,
        }
    }
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            WebSessions::Memory(m) => m.save(record).await,
            WebSessions::Redis(r) => r.save(record).await,
        }
    }
    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            WebSessions::Memory(m) => m.load(id).await,
            WebSessions::Redis(r) => r.load(id).await,
        }
    }
    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            WebSessions::Memory(m) => m.delete(id).await,
            WebSessions::Redis(r) => r.delete(id).await,
        }
    }
}

/// How often creating a browser session also sweeps out the expired ones.
const WEB_SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Browser sessions in this process, dropped once expired (tower-sessions' own memory store
/// keeps every session it ever made: one per visitor, forever).
#[derive(Clone, Debug, Default)]
pub struct MemoryWebSessions(Arc<std::sync::Mutex<WebSessionMap>>);

#[derive(Debug, Default)]
struct WebSessionMap {
    records: std::collections::HashMap<Id, Record>,
    last_sweep: Option<std::time::Instant>,
}

impl MemoryWebSessions {
    fn map(&self) -> std::sync::MutexGuard<'_, WebSessionMap> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many sessions are kept, expired or not.
    pub fn len(&self) -> usize {
        self.map().records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn is_active(record: &Record) -> bool {
    record.expiry_date > tower_sessions::cookie::time::OffsetDateTime::now_utc()
}

#[async_trait]
impl SessionStore for MemoryWebSessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let mut map = self.map();
        if map
            .last_sweep
            .is_none_or(|at| at.elapsed() >= WEB_SWEEP_EVERY)
        {
            map.records.retain(|_, r| is_active(r));
            map.last_sweep = Some(std::time::Instant::now());
        }
        while map.records.contains_key(&record.id) {
            record.id = Id::default();
        }
        map.records.insert(record.id, record.clone());
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.map().records.insert(record.id, record.clone());
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        Ok(self.map().records.get(id).filter(|r| is_active(r)).cloned())
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.map().records.remove(id);
        Ok(())
    }
}

/// Browser sessions as JSON under `<prefix>:web:<id>`, expiring when the cookie does.
#[derive(Clone, Debug)]
pub struct RedisWebSessions {
    client: redis::Client,
    conn: Arc<tokio::sync::OnceCell<redis::aio::ConnectionManager>>,
    prefix: String,
}

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

impl RedisWebSessions {
    fn new(url: &str, prefix: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            conn: Arc::new(tokio::sync::OnceCell::new()),
            prefix: prefix.to_owned(),
        })
    }

    async fn conn(&self) -> session_store::Result<redis::aio::ConnectionManager> {
        self.conn
            .get_or_try_init(|| crate::store::redis_manager(&self.client))
            .await
            .cloned()
            .map_err(backend)
    }

    fn key(&self, id: &Id) -> String {
        format!("{}:web:{id}", self.prefix)
    }

    async fn write(&self, record: &Record, only_if_new: bool) -> session_store::Result<bool> {
        let json = serde_json::to_string(record)
            .map_err(|e| session_store::Error::Encode(e.to_string()))?;
        let at_ms = (record.expiry_date.unix_timestamp_nanos() / 1_000_000).max(1) as u64;
        let mut set = redis::cmd("SET");
        set.arg(self.key(&record.id))
            .arg(json)
            .arg("PXAT")
            .arg(at_ms);
        if only_if_new {
            set.arg("NX");
        }
        let written: Option<String> = set
            .query_async(&mut self.conn().await?)
            .await
            .map_err(backend)?;
        Ok(written.is_some())
    }
}

#[async_trait]
impl SessionStore for RedisWebSessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // Ids are random 128-bit values; a collision is only ever met in theory, but never overwritten.
        while !self.write(record, true).await? {
            record.id = Id::default();
        }
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.write(record, false).await.map(drop)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let mut get = redis::cmd("GET");
        get.arg(self.key(id));
        let json: Option<String> = get
            .query_async(&mut self.conn().await?)
            .await
            .map_err(backend)?;
        json.map(|j| {
            serde_json::from_str(&j).map_err(|e| session_store::Error::Decode(e.to_string()))
        })
        .transpose()
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let mut del = redis::cmd("DEL");
        del.arg(self.key(id));
        del.query_async::<()>(&mut self.conn().await?)
            .await
            .map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_sessions::cookie::time::{Duration, OffsetDateTime};

    fn record(expires_in: Duration) -> Record {
        Record {
            id: Id::default(),
            data: Default::default(),
            expiry_date: OffsetDateTime::now_utc() + expires_in,
        }
    }

    #[tokio::test]
    async fn expired_browser_sessions_are_evicted() {
        let store = MemoryWebSessions::default();
        let expired: Vec<Record> = (0..100).map(|_| record(Duration::minutes(-1))).collect();
        for r in &expired {
            store.save(r).await.unwrap();
        }
        let live = record(Duration::hours(12));
        store.save(&live).await.unwrap();
        assert_eq!(store.len(), 101);
        assert!(
            store.load(&expired[0].id).await.unwrap().is_none(),
            "expired reads as absent"
        );
        store
            .create(&mut record(Duration::hours(12)))
            .await
            .unwrap();
        assert_eq!(
            store.len(),
            2,
            "the expired ones are gone, the live ones kept"
        );
        assert!(store.load(&live.id).await.unwrap().is_some());
    }
}
