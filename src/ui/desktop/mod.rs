//! The desktop sign-in page: a QR code for the phone, a live countdown, and the outcome as soon as there is one.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

use super::{Notice, page_words};
use crate::browser;
use crate::i18n::{Text, Words};

#[cfg(feature = "ssr")]
pub(crate) mod server;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppLabel {
    pub id: String,
    pub name: String,
}

/// Waiting for the phone: the code to scan and what is known so far.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    pub app: AppLabel,
    /// The QR code as SVG, drawn on the server.
    pub qr_svg: String,
    pub qr_url: String,
    pub expires_at_ms: u64,
    pub scanned: bool,
    /// Number matching: what the person picks on the phone, shown once it opened the request.
    pub number: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ending {
    Denied,
    Cancelled,
    Expired,
}

/// Everything the desktop page can show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Desk {
    Waiting(Waiting),
    /// The session token stays in the browser's server-side session; the page shows its start only.
    SignedIn {
        app: AppLabel,
        user_id: String,
        token_preview: String,
    },
    Ended {
        app: AppLabel,
        why: Ending,
    },
    NoApp,
}

impl Desk {
    fn app_id(&self) -> Option<String> {
        match self {
            Desk::Waiting(w) => Some(w.app.id.clone()),
            Desk::SignedIn { app, .. } | Desk::Ended { app, .. } => Some(app.id.clone()),
            Desk::NoApp => None,
        }
    }
}

/// The page as it stands: a live code, resumed after a reload, or a new one.
#[server]
pub async fn desk_open(app_id: Option<String>) -> Result<Desk, ServerFnError> {
    server::open(app_id).await
}

/// The page after something happened: signed in, or ended; never a new code by itself.
#[server]
pub async fn desk_refresh(app_id: String) -> Result<Desk, ServerFnError> {
    server::refresh(&app_id).await
}

#[server]
pub async fn desk_new_code(app_id: String) -> Result<Desk, ServerFnError> {
    server::new_code(&app_id).await
}

#[server]
pub async fn desk_cancel(app_id: String) -> Result<Desk, ServerFnError> {
    server::cancel(&app_id).await
}

#[server]
pub async fn desk_sign_out(app_id: String) -> Result<Desk, ServerFnError> {
    server::sign_out(&app_id).await
}

#[component]
pub fn DesktopPage() -> impl IntoView {
    let params = use_params_map();
    let desk = Resource::new_blocking(move || params.read().get("app_id"), desk_open);
    let words = page_words();
    let preparing = words.get(Text::DeskPreparing);
    view! {
        <Suspense fallback=move || view! { <p class="muted">{preparing.clone()}</p> }>
            {move || {
                let words = words.clone();
                Suspend::new(async move {
                match desk.await {
                    Ok(Desk::NoApp) => {
                        super::set_status(404);
                        view! {
                            <Notice title=words.get(Text::DeskNoAppTitle) message=words.get(Text::DeskNoAppMessage)>
                                <span></span>
                            </Notice>
                        }
                            .into_any()
                    }
                    Ok(initial) => view! { <DeskView initial words/> }.into_any(),
                    Err(e) => {
                        super::set_status(500);
                        view! { <Notice title=words.get(Text::ErrorTitle) message=e.to_string()><span></span></Notice> }.into_any()
                    }
                }
            })
            }}
        </Suspense>
    }
}

/// Runs a desk action on the server and shows its result.
fn act<F, Fut>(state: RwSignal<Desk>, busy: RwSignal<bool>, action: F)
where
    F: FnOnce(String) -> Fut + 'static,
    Fut: Future<Output = Result<Desk, ServerFnError>> + 'static,
{
    let Some(app_id) = state.get_untracked().app_id() else {
        return;
    };
    busy.set(true);
    spawn_local(async move {
        if let Ok(next) = action(app_id).await {
            state.set(next);
        }
        busy.set(false);
    });
}

/// The desktop's card: the one island of the sign-in page.
#[island]
fn DeskView(initial: Desk, words: Words) -> impl IntoView {
    let state = RwSignal::new(initial);
    let words = StoredValue::new(words);
    let t = move |text: Text| words.with_value(|w| w.get(text));
    Effect::new(|_| browser::mark_live());
    let busy = RwSignal::new(false);
    let now_ms = RwSignal::new(browser::now_ms());

    // One watcher per live code: the stream first, polling every 3 s if it fails.
    let live = Memo::new(move |_| match state.get() {
        Desk::Waiting(w) => Some((w.app.id, w.qr_url)),
        _ => None,
    });
    Effect::new(move |_| {
        let Some((app_id, _)) = live.get() else {
            return;
        };
        let on_scanned = move |number: Option<String>| {
            state.update(|d| {
                if let Desk::Waiting(w) = d {
                    w.scanned = true;
                    w.number = number;
                }
            })
        };
        let refresh = {
            let app_id = app_id.clone();
            move || {
                let app_id = app_id.clone();
                spawn_local(async move {
                    if let Ok(next) = desk_refresh(app_id).await {
                        state.set(next);
                    }
                })
            }
        };
        let watch = browser::watch_status(&format!("/login/{app_id}/events"), on_scanned, refresh);
        // Browser objects are not `Send`; this effect and its cleanup run on the one browser thread.
        let watch = send_wrapper::SendWrapper::new(watch);
        on_cleanup(move || drop(watch));
    });
    // The countdown, and the switch to "expired" when it reaches zero.
    Effect::new(move |_| {
        let tick = set_interval_with_handle(
            move || now_ms.set(browser::now_ms()),
            std::time::Duration::from_secs(1),
        );
        on_cleanup(move || {
            if let Ok(tick) = tick {
                tick.clear();
            }
        });
    });
    Effect::new(move |_| {
        if let Desk::Waiting(w) = state.get()
            && now_ms.get() >= w.expires_at_ms
        {
            act(state, busy, desk_refresh);
        }
    });

    move || {
        match state.get() {
        Desk::Waiting(w) => {
            let remaining = move || {
                let left = w.expires_at_ms.saturating_sub(now_ms.get()) / 1000;
                let time = format!("{}:{:02}", left / 60, left % 60);
                words.with_value(|words| words.fill(Text::DeskExpires, &[("time", &time)]))
            };
            view! {
                <section class="card desk" aria-labelledby="desk-title">
                    <div class="desk-code">
                        <div class="qr" role="img" aria-label=t(Text::DeskQrLabel) inner_html=w.qr_svg.clone()></div>
                        <p class="countdown" aria-live="off">{remaining}</p>
                    </div>
                    <div class="desk-text">
                        <p class="eyebrow">{w.app.name.clone()}</p>
                        <h1 id="desk-title">{t(Text::DeskTitle)}</h1>
                        <ol class="steps">
                            <li>{t(Text::DeskStepCamera)}</li>
                            <li>{t(Text::DeskStepApprove)}</li>
                        </ol>
                        <p class="status" role="status" aria-live="polite">
                            {if let Some(number) = w.number.clone().filter(|_| w.scanned) {
                                view! {
                                    <span class="pill ok">{t(Text::DeskMatch)}</span>
                                    <strong class="match-number" data-testid="match-number">{number}</strong>
                                }.into_any()
                            } else if w.scanned {
                                view! { <span class="pill ok">{t(Text::DeskScanned)}</span> }.into_any()
                            } else {
                                view! { <span class="pill wait"><span class="dot" aria-hidden="true"></span>{t(Text::DeskWaiting)}</span> }.into_any()
                            }}
                        </p>
                        <p class="link">
                            {t(Text::DeskLink)}
                            " "
                            <code class="url" data-testid="qr-url">{w.qr_url.clone()}</code>
                        </p>
                        <button class="button secondary" disabled=move || busy.get() on:click=move |_| act(state, busy, desk_cancel)>
                            {t(Text::Cancel)}
                        </button>
                    </div>
                </section>
            }
                .into_any()
        }
        Desk::SignedIn { app, user_id, token_preview } => view! {
            <section class="card done" aria-labelledby="done-title">
                <p class="eyebrow">{app.name}</p>
                <h1 id="done-title">{t(Text::DeskSignedInTitle)}</h1>
                <p class="lead">{signed_in_as(words, &user_id)}</p>
                <p class="muted">{words.with_value(|w| w.fill(Text::DeskToken, &[("token", &token_preview)]))}</p>
                <button class="button secondary" disabled=move || busy.get() on:click=move |_| act(state, busy, desk_sign_out)>
                    {t(Text::DeskSignOut)}
                </button>
            </section>
        }
            .into_any(),
        Desk::Ended { app, why } => {
            let (title, message) = match why {
                Ending::Denied => (Text::DeskDeniedTitle, Text::DeskDeniedMessage),
                Ending::Cancelled => (Text::DeskCancelledTitle, Text::DeskCancelledMessage),
                Ending::Expired => (Text::DeskExpiredTitle, Text::DeskExpiredMessage),
            };
            let (title, message) = (t(title), t(message));
            view! {
                <section class="card ended" aria-labelledby="ended-title">
                    <p class="eyebrow">{app.name}</p>
                    <h1 id="ended-title">{title}</h1>
                    <p class="lead" role="status">{message}</p>
                    <button class="button primary" disabled=move || busy.get() on:click=move |_| act(state, busy, desk_new_code)>
                        {t(Text::DeskNewCode)}
                    </button>
                </section>
            }
                .into_any()
        }
        Desk::NoApp => view! { <p>{t(Text::DeskNoAppTitle)}</p> }.into_any(),
    }
    }
}

/// "Signed in as <user>", with the user in bold wherever the language puts it.
fn signed_in_as(words: StoredValue<Words>, user_id: &str) -> impl IntoView {
    let sentence = words.with_value(|w| w.get(Text::DeskSignedInAs));
    let (before, after) = sentence.split_once("{user}").unwrap_or((&sentence, ""));
    view! {
        {before.to_owned()}
        <strong data-testid="user-id">{user_id.to_owned()}</strong>
        {after.to_owned()}
    }
}
