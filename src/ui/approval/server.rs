//! The approval page's server side: this browser's claim on the requests it opens, the request as the phone sees it, and its answer.

use std::sync::Arc;

use leptos::prelude::{ServerFnError, expect_context};
use tower_sessions::Session as WebSession;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::{Approval, Asking, PasskeyUsed, PhoneOutcome};
use crate::apps::App;
use crate::bridge::{Answer, Approved, BridgeError, Open, wire_status};
use crate::i18n::{Lang, Text, text, text_with};
use crate::limits::Operation;
use crate::problem::Problem;
use crate::session::{Kind, Requester, SessionId, Timestamp};
use crate::state::AppState;
use crate::ui::server::{client, internal, web_session};
use crate::wire::WireStatus;
use crate::{browser, secret};

const CLAIM_KEY: &str = "phone.claim";

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

/// "Chrome on macOS", from the user agent, in `lang`.
fn device(user_agent: Option<&str>, lang: Lang) -> String {
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
                text_with(
                    lang,
                    Text::BrowserOn,
                    &[("browser", r.name.into()), ("os", os.into())],
                )
            }
        }
        _ => text(lang, Text::UnknownBrowser),
    }
}

/// "just now", "3 minutes ago", with the language's plural forms.
fn ago(then: Timestamp, now_ms: u64, lang: Lang) -> String {
    let minutes = now_ms.saturating_sub(then.as_millis()) / 60_000;
    text_with(lang, Text::RequestedAgo, &[("minutes", minutes.into())])
}

/// The page when there is nothing (more) to approve, with its HTTP status.
fn gone(problem: &Problem, lang: Lang) -> Approval {
    Approval::Gone {
        status: problem.page_status.as_u16(),
        title: text(lang, problem.title),
        message: text(lang, problem.advice),
    }
}

/// How a refusal reads on the phone: worth another try, or over.
fn outcome(e: &BridgeError, lang: Lang) -> PhoneOutcome {
    let problem = Problem::of(e);
    if problem.is_ours() {
        tracing::error!(error = %e, "phone request failed");
    }
    if problem.retry {
        PhoneOutcome::Retry {
            message: text(lang, problem.advice),
        }
    } else {
        PhoneOutcome::Gone {
            title: text(lang, problem.title),
            message: text(lang, problem.advice),
        }
    }
}

/// One phone's request: the service, the session, its app, and this browser's claim; or what
/// to tell the phone instead.
struct Phone {
    state: AppState,
    id: SessionId,
    app: Arc<App>,
    by: String,
    /// Where the phone is, for the audit trail.
    seen: Requester,
    ip: std::net::IpAddr,
    lang: Lang,
}

/// Why a phone's request stopped before the service: what the page shows instead.
enum Stopped {
    /// Too many requests from this client.
    Limited(Problem, Lang),
    Refused(BridgeError, Lang),
    /// The browser session could not be read: ours, not the store's contention.
    Page(ServerFnError),
}

impl Phone {
    /// Counted against the client's phone budget; found before anything else, so a made-up
    /// code gets no browser session.
    async fn of(session_id: &str) -> Result<Phone, Stopped> {
        let state = expect_context::<AppState>();
        let (ip, headers) = client(&state).await.map_err(Stopped::Page)?;
        let lang = crate::ui::server::lang_of(&headers);
        let id = SessionId::parse(session_id)
            .map_err(|_| Stopped::Refused(BridgeError::NotFound, lang))?;
        let user_agent = headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        let seen = Requester::new(user_agent, Some(ip.to_string()));
        if let Err(limited) = state.limiter.admit(Operation::Phone, ip).await {
            return Err(Stopped::Limited(Problem::limited(&limited), lang));
        }
        let app = (state.bridge.app_of(&id).await).map_err(|e| Stopped::Refused(e, lang))?;
        let web = web_session().await.map_err(Stopped::Page)?;
        let by = claim(&web).await.map_err(Stopped::Page)?;
        Ok(Phone {
            state,
            id,
            app,
            by,
            seen,
            ip,
            lang,
        })
    }

    /// After a failure on our side, what the phone is told comes from the session itself: a
    /// write that timed out may still have landed, and the phone must never say "failed" while
    /// the desktop says "signed in" (nor the other way round).
    async fn truth(&self, failure: BridgeError) -> PhoneOutcome {
        tracing::warn!(error = %failure, "a phone's answer failed on our side; reading what happened");
        match self
            .state
            .bridge
            .phone_outcome(&self.app, &self.id, &self.by)
            .await
        {
            Ok(state) => match wire_status(state) {
                // Which passkey it was is not in the session: the phone only learns it went through.
                WireStatus::Completed => PhoneOutcome::Approved { passkey: None },
                WireStatus::Denied => PhoneOutcome::Declined,
                WireStatus::Pending => PhoneOutcome::Retry {
                    message: text(self.lang, Text::RetryOurs),
                },
                WireStatus::Expired => outcome(&BridgeError::Expired, self.lang),
                WireStatus::Cancelled => outcome(&BridgeError::Cancelled, self.lang),
            },
            // Still failing: say so, without claiming either way.
            Err(e) => outcome(&e, self.lang),
        }
    }

    /// What the phone is told after the service answered `result`.
    async fn told(&self, result: Result<PhoneOutcome, BridgeError>) -> PhoneOutcome {
        match result {
            Ok(outcome) => outcome,
            Err(e) if matches!(e, BridgeError::Store(_) | BridgeError::Contended) => {
                self.truth(e).await
            }
            Err(e) => outcome(&e, self.lang),
        }
    }
}

impl Stopped {
    fn page(self) -> Result<Approval, ServerFnError> {
        match self {
            Stopped::Limited(problem, lang) => Ok(gone(&problem, lang)),
            Stopped::Refused(e, lang) => {
                let problem = Problem::of(&e);
                if problem.is_ours() {
                    tracing::error!(error = %e, "approval page failed");
                }
                Ok(gone(&problem, lang))
            }
            Stopped::Page(e) => Err(e),
        }
    }

    fn outcome(self) -> PhoneOutcome {
        match self {
            Stopped::Limited(problem, lang) => PhoneOutcome::Retry {
                message: text(lang, problem.advice),
            },
            Stopped::Refused(e, lang) => outcome(&e, lang),
            // The request could not be read, its language included.
            Stopped::Page(_) => PhoneOutcome::Retry {
                message: text(Lang::En, Text::OursAdvice),
            },
        }
    }
}

/// Opens the request on this phone (as started, or `Open::Signup` to create a passkey instead).
pub async fn open(session_id: &str, how: Open) -> Result<Approval, ServerFnError> {
    let phone = match Phone::of(session_id).await {
        Ok(phone) => phone,
        Err(stopped) => return stopped.page(),
    };
    let (app, state) = (&phone.app, &phone.state);
    let opened = match state.bridge.open(app, &phone.id, &phone.by, how).await {
        Ok(opened) => opened,
        // Making a challenge failed: ours, not a refusal of the phone's answer.
        Err(BridgeError::Passkey(e)) => {
            tracing::error!(error = %e, "could not make a challenge");
            return Ok(gone(&Problem::ours(), phone.lang));
        }
        Err(e) => return Stopped::Refused(e, phone.lang).page(),
    };
    let session = &opened.session;
    Ok(Approval::Ready {
        session_id: session.id.to_string(),
        app_name: app.name.clone(),
        message: session.approval_context.as_ref().map(|m| m.for_display()),
        asking: Asking {
            browser: device(session.requester.user_agent.as_deref(), phone.lang),
            from: state
                .places
                .of_session(session, phone.ip, phone.lang.code()),
            when: ago(session.created_at, browser::now_ms(), phone.lang),
        },
        choices: session.number_match().map(|m| m.choices.to_vec()),
        registration: opened.kind == Kind::Registration,
        options: opened.options.to_string(),
        open_signup: app.open_signup,
    })
}

/// Which passkey approved, so the page can tell a person's devices apart: the one made just
/// now, or the one made on a given day (which the browser writes in the page's language).
fn passkey_used(approved: &Approved) -> PasskeyUsed {
    if approved.new {
        PasskeyUsed::New
    } else {
        PasskeyUsed::CreatedAt(approved.passkey_created_at.as_millis())
    }
}

/// The phone's signed answer, as the browser's JSON: a sign-in, or (`registration`) a new passkey.
pub async fn answer(
    session_id: &str,
    credential: &str,
    registration: bool,
) -> Result<PhoneOutcome, ServerFnError> {
    let phone = match Phone::of(session_id).await {
        Ok(phone) => phone,
        Err(stopped) => return Ok(stopped.outcome()),
    };
    let answer: Option<Answer> = if registration {
        serde_json::from_str::<RegisterPublicKeyCredential>(credential)
            .ok()
            .map(Answer::from)
    } else {
        serde_json::from_str::<PublicKeyCredential>(credential)
            .ok()
            .map(Answer::from)
    };
    let Some(answer) = answer else {
        return Ok(PhoneOutcome::Retry {
            message: text(phone.lang, Text::AnswerUnreadable),
        });
    };
    let result = phone
        .state
        .bridge
        .answer(&phone.app, &phone.id, &answer, &phone.by, &phone.seen)
        .await
        .map(|approved| PhoneOutcome::Approved {
            passkey: Some(passkey_used(&approved)),
        });
    if let Err(e) = &result {
        let code = Problem::of(e).code;
        (phone.state.bridge)
            .refused(&phone.app, &phone.id, &phone.by, &phone.seen, code)
            .await;
    }
    Ok(phone.told(result).await)
}

/// Number matching: the number the person tapped. The right one lets the passkey answer; a
/// wrong one has declined the request.
pub async fn pick(session_id: &str, number: u8) -> Result<PhoneOutcome, ServerFnError> {
    let phone = match Phone::of(session_id).await {
        Ok(phone) => phone,
        Err(stopped) => return Ok(stopped.outcome()),
    };
    let result = phone
        .state
        .bridge
        .pick_number(&phone.app, &phone.id, number, &phone.by, &phone.seen)
        .await
        .map(|()| PhoneOutcome::Picked);
    Ok(phone.told(result).await)
}

/// "This wasn't me", right after approving: the sign-in's token is revoked at once.
pub async fn disown(session_id: &str) -> Result<PhoneOutcome, ServerFnError> {
    let phone = match Phone::of(session_id).await {
        Ok(phone) => phone,
        Err(stopped) => return Ok(stopped.outcome()),
    };
    let result = phone
        .state
        .bridge
        .disown(&phone.app, &phone.id, &phone.by, &phone.seen)
        .await;
    // Not `told`: the session reads "completed" either way, so only this answer says whether
    // the token was revoked.
    Ok(match result {
        Ok(()) => PhoneOutcome::Disowned,
        Err(e) => outcome(&e, phone.lang),
    })
}

pub async fn decline(session_id: &str) -> Result<PhoneOutcome, ServerFnError> {
    let phone = match Phone::of(session_id).await {
        Ok(phone) => phone,
        Err(stopped) => return Ok(stopped.outcome()),
    };
    let result = phone
        .state
        .bridge
        .deny(&phone.app, &phone.id, &phone.by, &phone.seen)
        .await
        .map(|()| PhoneOutcome::Declined);
    Ok(phone.told(result).await)
}
