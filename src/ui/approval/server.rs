//! The approval page's server side: this browser's claim on the requests it opens, the request as the phone sees it, and its answer.

use std::sync::Arc;

use leptos::prelude::{ServerFnError, expect_context};
use tower_sessions::Session as WebSession;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::{Approval, Asking, PhoneOutcome};
use crate::apps::App;
use crate::bridge::{Answer, Approved, BridgeError, Open, wire_status};
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

/// The page when there is nothing (more) to approve, with its HTTP status.
fn gone(problem: &Problem) -> Approval {
    Approval::Gone {
        status: problem.page_status.as_u16(),
        title: problem.title.into(),
        message: problem.advice.into(),
    }
}

/// How a refusal reads on the phone: worth another try, or over.
fn outcome(e: &BridgeError) -> PhoneOutcome {
    let problem = Problem::of(e);
    if problem.is_ours() {
        tracing::error!(error = %e, "phone request failed");
    }
    if problem.retry {
        PhoneOutcome::Retry {
            message: problem.advice.into(),
        }
    } else {
        PhoneOutcome::Gone {
            title: problem.title.into(),
            message: problem.advice.into(),
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
}

/// Why a phone's request stopped before the service: what the page shows instead.
enum Stopped {
    /// Too many requests from this client.
    Limited(Problem),
    Refused(BridgeError),
    /// The browser session could not be read: ours, not the store's contention.
    Page(ServerFnError),
}

impl Phone {
    /// Counted against the client's phone budget; found before anything else, so a made-up
    /// code gets no browser session.
    async fn of(session_id: &str) -> Result<Phone, Stopped> {
        let state = expect_context::<AppState>();
        let id =
            SessionId::parse(session_id).map_err(|_| Stopped::Refused(BridgeError::NotFound))?;
        let (ip, headers) = client(&state).await.map_err(Stopped::Page)?;
        let user_agent = headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        let seen = Requester::new(user_agent, Some(ip.to_string()));
        if let Err(limited) = state.limiter.admit(Operation::Phone, ip).await {
            return Err(Stopped::Limited(Problem::limited(&limited)));
        }
        let app = state.bridge.app_of(&id).await.map_err(Stopped::Refused)?;
        let web = web_session().await.map_err(Stopped::Page)?;
        let by = claim(&web).await.map_err(Stopped::Page)?;
        Ok(Phone {
            state,
            id,
            app,
            by,
            seen,
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
                    message: "That did not go through on our side. Try again.".into(),
                },
                WireStatus::Expired => outcome(&BridgeError::Expired),
                WireStatus::Cancelled => outcome(&BridgeError::Cancelled),
            },
            // Still failing: say so, without claiming either way.
            Err(e) => outcome(&e),
        }
    }

    /// What the phone is told after the service answered `result`.
    async fn told(&self, result: Result<PhoneOutcome, BridgeError>) -> PhoneOutcome {
        match result {
            Ok(outcome) => outcome,
            Err(e) if matches!(e, BridgeError::Store(_) | BridgeError::Contended) => {
                self.truth(e).await
            }
            Err(e) => outcome(&e),
        }
    }
}

impl Stopped {
    fn page(self) -> Result<Approval, ServerFnError> {
        match self {
            Stopped::Limited(problem) => Ok(gone(&problem)),
            Stopped::Refused(e) => {
                let problem = Problem::of(&e);
                if problem.is_ours() {
                    tracing::error!(error = %e, "approval page failed");
                }
                Ok(gone(&problem))
            }
            Stopped::Page(e) => Err(e),
        }
    }

    fn outcome(self) -> PhoneOutcome {
        match self {
            Stopped::Limited(problem) => PhoneOutcome::Retry {
                message: problem.advice.into(),
            },
            Stopped::Refused(e) => outcome(&e),
            Stopped::Page(_) => PhoneOutcome::Retry {
                message: "Something went wrong on our side. Try again.".into(),
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
            return Ok(gone(&Problem::ours()));
        }
        Err(e) => return Stopped::Refused(e).page(),
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

/// Which passkey approved, in words that tell a person's devices apart: the one made just now,
/// or the one made on a given day (UTC).
fn passkey_used(approved: &Approved) -> String {
    if approved.new {
        return "the passkey you just created".into();
    }
    let date = crate::bridge::iso8601(approved.passkey_created_at);
    let mut parts = date.get(..10).unwrap_or_default().split('-');
    let (year, month, day) = (parts.next(), parts.next(), parts.next());
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let month = month
        .and_then(|m| m.parse::<usize>().ok())
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)));
    match (year, month, day.and_then(|d| d.parse::<u8>().ok())) {
        (Some(year), Some(month), Some(day)) => {
            format!("your passkey created on {day} {month} {year}")
        }
        _ => "your passkey".into(),
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
            message: "The passkey's answer could not be read. Try again.".into(),
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
