//! The phone's approval page: who is asking and why, then approve with a passkey (or create one), or decline.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

use super::Notice;
use crate::browser::{self, CeremonyError};

#[cfg(feature = "ssr")]
pub(crate) mod server;

/// Who asked to sign in, as captured when the code was made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asking {
    /// "Chrome on macOS", or "an unknown browser".
    pub browser: String,
    pub address: Option<String>,
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
    },
    /// Nothing to approve: the page's HTTP status, and what to tell the person.
    Gone {
        status: u16,
        title: String,
        message: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PhoneOutcome {
    /// Signed in; `passkey` says with which of the person's passkeys, when known.
    Approved {
        passkey: Option<String>,
    },
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
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading the request…"</p> }>
            {move || Suspend::new(async move {
                match approval.await {
                    Ok(ready @ Approval::Ready { .. }) => view! { <Approve ready/> }.into_any(),
                    Ok(Approval::Gone { status, title, message }) => {
                        super::set_status(status);
                        gone(title, message).into_any()
                    }
                    Err(e) => {
                        super::set_status(500);
                        view! { <Notice title="Something went wrong".into() message=e.to_string()><span></span></Notice> }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

fn gone(title: String, message: String) -> impl IntoView {
    view! {
        <Notice title message tone="warn">
            <p class="muted">"You can close this window."</p>
        </Notice>
    }
}

/// Where the person is in approving.
#[derive(Clone, Debug, PartialEq)]
enum Step {
    Ask,
    Working(&'static str),
    /// The browser reported no passkey, or the person cancelled the prompt.
    NoPasskey,
    Failed(String),
    /// Signed in, and with which passkey when known.
    Done(Option<String>),
    Declined,
    Gone(String, String),
}

/// The approval card: the one island of the phone page, so only it ships as wasm.
#[island]
fn Approve(ready: Approval) -> impl IntoView {
    let Approval::Ready {
        session_id,
        app_name,
        message,
        asking,
        registration,
        options,
        open_signup,
    } = ready
    else {
        return ().into_any();
    };
    let step = RwSignal::new(Step::Ask);
    // False in the server's render and until the page is live (effects run only then): a tap
    // before that would do nothing, so the buttons say they are getting ready instead.
    let live = RwSignal::new(false);
    Effect::new(move |_| {
        live.set(true);
        browser::mark_live();
    });
    let app_label = app_name.clone();
    let options = RwSignal::new(options);
    let registration = RwSignal::new(registration);
    let session_id = StoredValue::new(session_id);

    let finish = move |outcome: Result<PhoneOutcome, ServerFnError>| {
        step.set(match outcome {
            Ok(PhoneOutcome::Approved { passkey }) => Step::Done(passkey),
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
            "Creating your passkey…"
        } else {
            "Waiting for your passkey…"
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
                Err(e) => step.set(Step::Failed(e.to_string())),
            }
        });
    };
    // New options from the bridge (a fresh challenge, or creation options), then straight on.
    let renew = move |create: bool| {
        let id = session_id.get_value();
        step.set(Step::Working("Preparing…"));
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
        step.set(Step::Working("Declining…"));
        spawn_local(async move { finish(phone_decline(id).await) });
    };

    let actions = move || {
        match step.get() {
        Step::Ask => view! {
            <div class="choices">
                <button class="button primary" data-testid="approve" on:click=move |_| approve()
                    disabled=move || !live.get() aria-busy=move || (!live.get()).to_string()>
                    {move || match (live.get(), registration.get()) {
                        (false, _) => "Getting ready…",
                        (true, true) => "Create passkey and approve",
                        (true, false) => "Approve with passkey",
                    }}
                </button>
                <button class="button decline" data-testid="decline" on:click=move |_| decline()
                    disabled=move || !live.get()>"Decline"</button>
            </div>
        }
            .into_any(),
        Step::Working(what) => view! { <p class="status" role="status"><span class="spinner" aria-hidden="true"></span>{what}</p> }.into_any(),
        Step::NoPasskey => view! {
            <div role="alert" class="problem">
                <p><strong>"No passkey was used."</strong></p>
                {if open_signup {
                    view! { <p>"If this phone has no passkey for " {app_label.clone()} " yet, create one now: it takes a moment and signs you in."</p> }.into_any()
                } else {
                    view! { <p>"Use a phone that has a passkey for this account, or try again."</p> }.into_any()
                }}
            </div>
            <div class="choices">
                {open_signup.then(|| view! {
                    <button class="button primary" data-testid="create-passkey" on:click=move |_| renew(true)>"Create a passkey"</button>
                })}
                <button class="button secondary" on:click=move |_| renew(false)>"Try again"</button>
            </div>
            <button class="button decline wide" on:click=move |_| decline()>"Decline"</button>
        }
            .into_any(),
        Step::Failed(problem) => view! {
            <div role="alert" class="problem"><p>{problem}</p></div>
            <div class="choices">
                <button class="button primary" on:click=move |_| renew(false)>"Try again"</button>
                <button class="button decline" on:click=move |_| decline()>"Decline"</button>
            </div>
        }
            .into_any(),
        Step::Done(passkey) => view! {
            <div class="result ok" role="status" data-testid="result">
                <p class="big">"Done. You can close this window."</p>
                <p class="muted">"You are being signed in on your computer."</p>
                {passkey.map(|used| view! {
                    <p class="muted" data-testid="passkey-used">"Approved with " {used} "."</p>
                })}
            </div>
        }
            .into_any(),
        Step::Declined => view! {
            <div class="result" role="status" data-testid="result">
                <p class="big">"Declined. You can close this window."</p>
                <p class="muted">"Nobody was signed in."</p>
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
            <p class="eyebrow">"Sign-in request"</p>
            <h1 id="phone-title">{app_name.clone()} " wants to sign you in"</h1>
            {message.map(|m| view! {
                <blockquote class="message" data-testid="approval-context"><bdi>{m}</bdi></blockquote>
            })}
            <dl class="asking" aria-label="Who is asking">
                <div><dt>"Device"</dt><dd>{asking.browser}</dd></div>
                {asking.address.map(|a| view! { <div><dt>"Address"</dt><dd>{a}</dd></div> })}
                <div><dt>"Requested"</dt><dd>{asking.when}</dd></div>
            </dl>
            <p class="warning">"Did not start this on your computer? Decline it."</p>
            {actions}
        </section>
    }
    .into_any()
}
