//! The cross-device service: start, observe, scan, cancel and deny sessions over any store, for the API and the pages alike.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use url::Url;

use crate::apps::{App, Apps};
use crate::secret;
use crate::session::{
    Applied, ApprovalContext, Completion, Event, Kind, NewSession, Session, SessionId, State,
    Timestamp, TransitionError,
};
use crate::settings::Settings;
use crate::store::{Replaced, Store, StoreError};

/// How often one request re-reads after losing a compare-and-set before giving up. Each loss means
/// another writer made progress, and a session has at most a handful of writers.
const MAX_ATTEMPTS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// Unknown id, another app's session, or a wrong polling token: all look the same from outside.
    #[error("session not found")]
    NotFound,
    #[error("the session has expired")]
    Expired,
    #[error("the phone declined")]
    Denied,
    #[error("the desktop cancelled")]
    Cancelled,
    #[error(transparent)]
    Refused(TransitionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("gave up after {MAX_ATTEMPTS} conflicting writes")]
    Contended,
}

impl From<TransitionError> for BridgeError {
    fn from(e: TransitionError) -> Self {
        match e {
            TransitionError::Expired => BridgeError::Expired,
            other => BridgeError::Refused(other),
        }
    }
}

/// A session just created, with the secrets and links the desktop needs.
#[derive(Debug)]
pub struct Started {
    pub session: Session,
    /// Shown once to the desktop; only its digest is stored.
    pub polling_token: String,
    pub qr_url: String,
}

/// A session as the desktop may see it: its state now, and the completion once there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub state: State,
    pub completion: Option<Completion>,
}

pub struct Bridge {
    apps: Arc<Apps>,
    store: Arc<dyn Store>,
    public_origin: String,
    session_ttl: Duration,
}

/// `2026-05-01T12:05:00.123Z`
pub fn iso8601(at: Timestamp) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(at.as_millis())).to_string()
}

impl Bridge {
    pub fn new(settings: &Settings, store: Arc<dyn Store>) -> Self {
        Self {
            apps: settings.apps.clone(),
            store,
            public_origin: settings.public_origin.clone(),
            session_ttl: settings.session_ttl,
        }
    }

    pub fn apps(&self) -> &Apps {
        &self.apps
    }

    /// Where the phone goes: the app's own page when it has one, else the hosted page.
    pub fn qr_url(&self, app: &App, id: &SessionId) -> String {
        match &app.primary_qr_base_url {
            Some(base) => {
                let mut url: Url = base.clone();
                if let Ok(mut path) = url.path_segments_mut() {
                    path.pop_if_empty().push("mobile-auth");
                }
                url.set_query(Some(&format!("session_id={id}")));
                url.into()
            }
            None => format!("{}/bridge/{id}", self.public_origin),
        }
    }

    pub async fn start(
        &self,
        app: &App,
        kind: Kind,
        approval_context: Option<ApprovalContext>,
        external_user_id: Option<String>,
    ) -> Result<Started, BridgeError> {
        let id = SessionId::from_uuid(uuid::Uuid::new_v4());
        let polling_token = secret::generate("pt_");
        let now = self.store.now().await?;
        let new = NewSession {
            id,
            app_id: app.id.clone(),
            kind,
            polling_token_sha256: secret::digest(&polling_token),
            approval_context,
            external_user_id,
        };
        let session = Session::new(new, now, self.session_ttl);
        self.store.insert(&session).await?;
        Ok(Started {
            qr_url: self.qr_url(app, &id),
            session,
            polling_token,
        })
    }

    /// The desktop's view; a missing or wrong polling token is indistinguishable from an unknown id.
    pub async fn observe(
        &self,
        id: &SessionId,
        polling_token: Option<&str>,
    ) -> Result<Observed, BridgeError> {
        let loaded = self.store.load(id).await?.ok_or(BridgeError::NotFound)?;
        let session = &loaded.session;
        if !polling_token.is_some_and(|t| secret::matches(t, &session.polling_token_sha256)) {
            return Err(BridgeError::NotFound);
        }
        let state = session.state_at(loaded.now);
        Ok(Observed {
            state,
            completion: session.completion().filter(|_| state == State::Completed),
        })
    }

    /// The phone opened the approval page: the session becomes `Scanned`.
    pub async fn scan(&self, app: &App, id: &SessionId) -> Result<Session, BridgeError> {
        self.update(id, |s, now| {
            owned_by(s, app)?;
            Ok(s.apply(Event::Scan, now)?)
        })
        .await
    }

    /// The desktop gives up. Repeating it is harmless.
    pub async fn cancel(
        &self,
        id: &SessionId,
        polling_token: Option<&str>,
    ) -> Result<(), BridgeError> {
        self.update(id, |s, now| {
            if !polling_token.is_some_and(|t| secret::matches(t, &s.polling_token_sha256)) {
                return Err(BridgeError::NotFound);
            }
            Ok(s.apply(Event::Cancel, now)?)
        })
        .await
        .map(drop)
    }

    /// The phone declines. Repeating it is harmless.
    pub async fn deny(&self, app: &App, id: &SessionId) -> Result<(), BridgeError> {
        self.update(id, |s, now| {
            owned_by(s, app)?;
            Ok(s.apply(Event::Deny, now)?)
        })
        .await
        .map(drop)
    }

    /// Reads, lets `step` decide at the store's time, and writes back only if nobody wrote in
    /// between; on a lost race it decides again on what the winner left.
    async fn update(
        &self,
        id: &SessionId,
        mut step: impl FnMut(&mut Session, Timestamp) -> Result<Applied, BridgeError>,
    ) -> Result<Session, BridgeError> {
        for _ in 0..MAX_ATTEMPTS {
            let mut loaded = self.store.load(id).await?.ok_or(BridgeError::NotFound)?;
            if step(&mut loaded.session, loaded.now)? == Applied::Unchanged {
                return Ok(loaded.session);
            }
            match self.store.replace(id, loaded.rev, &loaded.session).await? {
                Replaced::Done => return Ok(loaded.session),
                Replaced::Stale => continue,
                Replaced::Gone => return Err(BridgeError::NotFound),
                Replaced::Expired => return Err(BridgeError::Expired),
            }
        }
        Err(BridgeError::Contended)
    }
}

/// Another app's session is reported as unknown, so ids cannot be probed across apps.
fn owned_by(session: &Session, app: &App) -> Result<(), BridgeError> {
    if session.app_id == app.id {
        Ok(())
    } else {
        Err(BridgeError::NotFound)
    }
}
