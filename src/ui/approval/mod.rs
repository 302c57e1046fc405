//! The phone's approval page: who is asking and why, then approve with a passkey (or create one), or decline.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

use super::{Notice, page_words};
use crate::browser::{self, CeremonyError};
use crate::i18n::{Text, Words};
use crate::wire::{NetworkMatch, RequestedFrom};

#[cfg(feature = "ssr")]
pub(crate) mod server;

/// Who asked to sign in, as captured when the code was made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asking {
    /// "Chrome on macOS", or "an unknown browser".
    pub browser: String,
    /// Where the desktop is, as far as this phone can tell: never a bare address.
    pub from: RequestedFrom,
    /// "just now", "3 minutes ago".
    pub when: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Approval {
    Ready {
        session_id: String,
        app_name: String,
        /// The desktop's message, already made harmless for display.
        message: Option<String>,
        asking: Asking,
        /// The options ask to create a passkey rather than use one.
        registration: bool,
        /// WebAuthn options as JSON.
        options: String,
        open_signup: bool,
        /// Number matching: the three numbers to offer, one of them the desktop's.
        choices: Option<Vec<u8>>,
    },
    /// Nothing to approve: the page's HTTP status, and what to tell the person.
    Gone {
        status: u16,
        title: String,
        message: String,
    },
}

/// Which of the person's passkeys approved: the one just made, or one made at a time
/// (milliseconds since the epoch), which the page writes as a date in its language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PasskeyUsed {
    New,
    CreatedAt(u64),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PhoneOutcome {
    /// Signed in; `passkey` says with which of the person's passkeys, when known.
    Approved {
        passkey: Option<PasskeyUsed>,
    },
    /// The number the desktop shows was picked: the passkey may answer now.
    Picked,
    /// "This wasn't me": the sign-in's token was revoked.
    Disowned,
    Declined,
    /// Refused, but the person can try again (with a fresh challenge).
    Retry {
        message: String,
    },
    Gone {
        title: String,
        message: String,
    },
}

/// Opens the request on this phone: claims it for this browser and hands out a fresh challenge.
#[server]
pub async fn approval_open(session_id: String) -> Result<Approval, ServerFnError> {
    server::open(&session_id, crate::bridge::Open::AsStarted).await
}

/// A fresh challenge after a failed attempt, or (`create`) options to create a passkey instead.
#[server]
pub async fn approval_options(session_id: String, create: bool) -> Result<Approval, ServerFnError> {
    let how = if create {
        crate::bridge::Open::Signup
    } else {
        crate::bridge::Open::AsStarted
    };
    server::open(&session_id, how).await
}

#[server]
pub async fn phone_approve(
    session_id: String,
    credential: String,
) -> Result<PhoneOutcome, ServerFnError> {
    server::answer(&session_id, &credential, false).await
}

#[server]
pub async fn phone_register(
    session_id: String,
    credential: String,
) -> Result<PhoneOutcome, ServerFnError> {
    server::answer(&session_id, &credential, true).await
}

#[server]
pub async fn phone_decline(session_id: String) -> Result<PhoneOutcome, ServerFnError> {
    server::decline(&session_id).await
}

#[server]
pub async fn phone_pick(session_id: String, number: u8) -> Result<PhoneOutcome, ServerFnError> {
    server::pick(&session_id, number).await
}

#[server]
pub async fn phone_disown(session_id: String) -> Result<PhoneOutcome, ServerFnError> {
    server::disown(&session_id).await
}

#[component]
pub fn ApprovalPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = move || {
        params
            .read()
            .get("session_id")
            .or_else(|| query.read().get("session_id"))
            .unwrap_or_default()
    };
    let approval = Resource::new_blocking(id, approval_open);
    let words = page_words();
    let loading = words.get(Text::PhoneLoading);
    view! {
        <Suspense fallback=move || view! { <p class="muted">{loading.clone()}</p> }>
            {move || {
                let words = words.clone();
                Suspend::new(async move {
                match approval.await {
                    Ok(ready @ Approval::Ready { .. }) => view! { <Approve ready words/> }.into_any(),
                    Ok(Approval::Gone { status, title, message }) => {
                        super::set_status(status);
                        view! {
                            <Notice title message tone="warn">
                                <p class="muted">{words.get(Text::PhoneClose)}</p>
                            </Notice>
                        }
                        .into_any()
                    }
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

/// Where the person is in approving.
#[derive(Clone, Debug, PartialEq)]
enum Step {
    Ask,
    Working(Text),
    /// The browser reported no passkey, or the person cancelled the prompt.
    NoPasskey,
    Failed(String),
    /// Signed in, and with which passkey when known.
    Done(Option<PasskeyUsed>),
    /// Signed in, then taken back ("This wasn't me").
    Disowned,
    Declined,
    Gone(String, String),
}

/// The approval card: the one island of the phone page, so only it ships as wasm.
#[island]
fn Approve(ready: Approval, words: Words) -> impl IntoView {
    let Approval::Ready {
        session_id,
        app_name,
        message,
        asking,
        registration,
        options,
        open_signup,
        choices,
    } = ready
    else {
        return ().into_any();
    };
    let lang = words.lang;
    let words = StoredValue::new(words);
    let t = move |text: Text| words.with_value(|w| w.get(text));
    let with_app = {
        let app = app_name.clone();
        move |text: Text| words.with_value(|w| w.fill(text, &[("app", &app)]))
    };
    let step = RwSignal::new(Step::Ask);
    // False in the server's render and until the page is live (effects run only then): a tap
    // before that would do nothing, so the buttons say they are getting ready instead.
    let live = RwSignal::new(false);
    Effect::new(move |_| {
        live.set(true);
        browser::mark_live();
    });
    // Number matching: until the right number is picked, the passkey is not offered.
    let to_pick = RwSignal::new(choices);
    let elsewhere = asking.from.network == NetworkMatch::Different;
    let place = match (&asking.from.city, &asking.from.country) {
        (Some(city), Some(country)) => {
            Some(words.with_value(|w| w.fill(Text::Place, &[("city", city), ("country", country)])))
        }
        (Some(one), None) | (None, Some(one)) => Some(one.clone()),
        (None, None) => None,
    };
    let network = match asking.from.network {
        NetworkMatch::Same => Some(t(Text::NetworkSame)),
        NetworkMatch::Different => Some(t(Text::NetworkDifferent)),
        NetworkMatch::Unknown => None,
    };
    let device = asking.browser.clone();
    let approved_at = RwSignal::new(String::new());
    let options = RwSignal::new(options);
    let registration = RwSignal::new(registration);
    let session_id = StoredValue::new(session_id);

    let finish = move |outcome: Result<PhoneOutcome, ServerFnError>| {
        step.set(match outcome {
            Ok(PhoneOutcome::Approved { passkey }) => {
                approved_at.set(browser::local_time_now(lang.code()));
                Step::Done(passkey)
            }
            Ok(PhoneOutcome::Picked) => {
                to_pick.set(None);
                Step::Ask
            }
            Ok(PhoneOutcome::Disowned) => Step::Disowned,
            Ok(PhoneOutcome::Declined) => Step::Declined,
            Ok(PhoneOutcome::Retry { message }) => Step::Failed(message),
            Ok(PhoneOutcome::Gone { title, message }) => Step::Gone(title, message),
            Err(e) => Step::Failed(e.to_string()),
        })
    };
    // Runs the ceremony the current options call for and hands the answer to the bridge.
    let approve = move || {
        let (id, opts, create) = (
            session_id.get_value(),
            options.get_untracked(),
            registration.get_untracked(),
        );
        step.set(Step::Working(if create {
            Text::WorkingCreate
        } else {
            Text::WorkingUse
        }));
        spawn_local(async move {
            let answer = if create {
                browser::create_passkey(&opts).await
            } else {
                browser::use_passkey(&opts).await
            };
            match answer {
                Ok(credential) if create => finish(phone_register(id, credential).await),
                Ok(credential) => finish(phone_approve(id, credential).await),
                Err(CeremonyError::Cancelled) => step.set(Step::NoPasskey),
                Err(CeremonyError::NotSupported) => {
                    step.set(Step::Failed(t(Text::CeremonyUnsupported)))
                }
                Err(CeremonyError::Other(_)) => step.set(Step::Failed(t(Text::CeremonyFailed))),
            }
        });
    };
    // New options from the bridge (a fresh challenge, or creation options), then straight on.
    let renew = move |create: bool| {
        let id = session_id.get_value();
        step.set(Step::Working(Text::WorkingPrepare));
        spawn_local(async move {
            match approval_options(id, create).await {
                Ok(Approval::Ready {
                    options: fresh,
                    registration: creating,
                    ..
                }) => {
                    options.set(fresh);
                    registration.set(creating);
                    step.set(Step::Ask);
                }
                Ok(Approval::Gone { title, message, .. }) => step.set(Step::Gone(title, message)),
                Err(e) => step.set(Step::Failed(e.to_string())),
            }
        });
    };
    let decline = move || {
        let id = session_id.get_value();
        step.set(Step::Working(Text::WorkingDecline));
        spawn_local(async move { finish(phone_decline(id).await) });
    };
    let pick = move |number: u8| {
        let id = session_id.get_value();
        step.set(Step::Working(Text::WorkingCheck));
        spawn_local(async move { finish(phone_pick(id, number).await) });
    };
    let disown = move || {
        let id = session_id.get_value();
        step.set(Step::Working(Text::WorkingDisown));
        spawn_local(async move { finish(phone_disown(id).await) });
    };
    let allowed_app = app_name.clone();
    let (place_shown, network_shown) = (place.clone(), network.clone());
    let no_passkey_create = with_app(Text::NoPasskeyCreate);

    let actions = move || {
        match step.get() {
        Step::Ask if to_pick.get().is_some() => {
            let numbers = to_pick.get().unwrap_or_default();
            view! {
                <fieldset class="numbers" data-testid="numbers">
                    <legend>{t(Text::NumbersLegend)}</legend>
                    <div class="number-row">
                        {numbers.into_iter().map(|n| view! {
                            <button class="button number" data-testid=format!("number-{n}")
                                on:click=move |_| pick(n) disabled=move || !live.get()>{n.to_string()}</button>
                        }).collect_view()}
                    </div>
                    <p class="muted">{t(Text::NumbersNone)}</p>
                </fieldset>
                <button class="button decline wide" data-testid="decline" on:click=move |_| decline()
                    disabled=move || !live.get()>{t(Text::Decline)}</button>
            }
            .into_any()
        }
        Step::Ask => {
            let approve_button = view! {
                <button class=if elsewhere { "button secondary" } else { "button primary" }
                    data-testid="approve" on:click=move |_| approve()
                    disabled=move || !live.get() aria-busy=move || (!live.get()).to_string()>
                    {move || match (live.get(), registration.get()) {
                        (false, _) => t(Text::GettingReady),
                        (true, true) => t(Text::ApproveCreate),
                        (true, false) => t(Text::Approve),
                    }}
                </button>
            };
            let decline_button = view! {
                <button class=if elsewhere { "button decline primary-decline" } else { "button decline" }
                    data-testid="decline" on:click=move |_| decline()
                    disabled=move || !live.get()>{t(Text::Decline)}</button>
            };
            // On another network, Decline comes first and looks like the main action.
            if elsewhere {
                view! { <div class="choices">{decline_button}{approve_button}</div> }.into_any()
            } else {
                view! { <div class="choices">{approve_button}{decline_button}</div> }.into_any()
            }
        }
        Step::Working(what) => view! { <p class="status" role="status"><span class="spinner" aria-hidden="true"></span>{t(what)}</p> }.into_any(),
        Step::NoPasskey => view! {
            <div role="alert" class="problem">
                <p><strong>{t(Text::NoPasskey)}</strong></p>
                {if open_signup {
                    view! { <p>{no_passkey_create.clone()}</p> }.into_any()
                } else {
                    view! { <p>{t(Text::NoPasskeyOther)}</p> }.into_any()
                }}
            </div>
            <div class="choices">
                {open_signup.then(|| view! {
                    <button class="button primary" data-testid="create-passkey" on:click=move |_| renew(true)>{t(Text::CreatePasskey)}</button>
                })}
                <button class="button secondary" on:click=move |_| renew(false)>{t(Text::TryAgain)}</button>
            </div>
            <button class="button decline wide" on:click=move |_| decline()>{t(Text::Decline)}</button>
        }
            .into_any(),
        Step::Failed(problem) => view! {
            <div role="alert" class="problem"><p>{problem}</p></div>
            <div class="choices">
                <button class="button primary" on:click=move |_| renew(false)>{t(Text::TryAgain)}</button>
                <button class="button decline" on:click=move |_| decline()>{t(Text::Decline)}</button>
            </div>
        }
            .into_any(),
        Step::Done(passkey) => view! {
            <div class="result ok" role="status" data-testid="result">
                <p class="big">{t(Text::Done)}</p>
                <p class="muted">{t(Text::DoneDesktop)}</p>
            </div>
            <dl class="asking allowed" data-testid="allowed" aria-label=t(Text::Allowed)>
                <div><dt>{t(Text::AllowedApp)}</dt><dd>{allowed_app.clone()}</dd></div>
                <div><dt>{t(Text::PhoneDevice)}</dt><dd>{device.clone()}</dd></div>
                {place_shown.clone().map(|p| view! { <div><dt>{t(Text::PhoneWhere)}</dt><dd>{p}</dd></div> })}
                {network_shown.clone().map(|n| view! { <div><dt>{t(Text::PhoneNetwork)}</dt><dd>{n}</dd></div> })}
                <div><dt>{t(Text::AllowedAt)}</dt><dd>{move || approved_at.get()}</dd></div>
            </dl>
            {passkey.map(|used| {
                let said = match used {
                    PasskeyUsed::New => t(Text::ApprovedWithNew),
                    PasskeyUsed::CreatedAt(ms) => words.with_value(|w| {
                        w.fill(Text::ApprovedWithDated, &[("date", &browser::local_date(ms, lang.code()))])
                    }),
                };
                view! { <p class="muted" data-testid="passkey-used">{said}</p> }
            })}
            <button class="button decline wide" data-testid="not-me" on:click=move |_| disown()>
                {t(Text::NotMe)}
            </button>
        }
            .into_any(),
        Step::Disowned => view! {
            <div class="result warn" role="alert" data-testid="result">
                <p class="big">{t(Text::DisownedTitle)}</p>
                <p>{t(Text::DisownedText)}</p>
            </div>
        }
            .into_any(),
        Step::Declined => view! {
            <div class="result" role="status" data-testid="result">
                <p class="big">{t(Text::Declined)}</p>
                <p class="muted">{t(Text::DeclinedNobody)}</p>
            </div>
        }
            .into_any(),
        Step::Gone(title, message) => view! {
            <div class="result warn" role="alert" data-testid="result">
                <p class="big">{title}</p>
                <p>{message}</p>
            </div>
        }
            .into_any(),
    }
    };

    view! {
        <section class="card phone" aria-labelledby="phone-title">
            <p class="eyebrow">{t(Text::PhoneEyebrow)}</p>
            <h1 id="phone-title">{with_app(Text::PhoneTitle)}</h1>
            {message.map(|m| view! {
                <blockquote class="message" data-testid="approval-context"><bdi>{m}</bdi></blockquote>
            })}
            {elsewhere.then(|| view! {
                <div class="alarm" role="alert" data-testid="network-warning">
                    <p><strong>{t(Text::ElsewhereTitle)}</strong></p>
                    <p>{t(Text::ElsewhereText)}</p>
                </div>
            })}
            <dl class="asking" aria-label=t(Text::PhoneAsking)>
                <div><dt>{t(Text::PhoneDevice)}</dt><dd>{asking.browser}</dd></div>
                {place.map(|p| view! { <div><dt>{t(Text::PhoneWhere)}</dt><dd data-testid="where">{p}</dd></div> })}
                {network.map(|n| view! { <div><dt>{t(Text::PhoneNetwork)}</dt><dd data-testid="network">{n}</dd></div> })}
                <div><dt>{t(Text::PhoneRequested)}</dt><dd>{asking.when}</dd></div>
            </dl>
            <p class="warning">{t(Text::PhoneWarning)}</p>
            {actions}
        </section>
    }
    .into_any()
}
