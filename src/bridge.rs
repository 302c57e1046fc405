//! The cross-device service: start, observe, open, verify, cancel and deny sessions over any store, for the API and the pages alike.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use url::Url;
use uuid::Uuid;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use crate::apps::{App, Apps, Invalid};
use crate::passkey::{Ceremony, PasskeyError, Passkeys, StoredPasskey, User, user_handle, user_id};
use crate::secret;
use crate::session::{
    Applied, ApprovalContext, ClaimedElsewhere, Completion, Event, EventKind, Kind, NewSession,
    Requester, Session, SessionId, State, Timestamp, TransitionError,
};
use crate::settings::{Settings, StoreKind};
use crate::store::{Loaded, Replaced, Store, StoreError, Subscription};
use crate::token::{Claims, TokenError, Tokens};

/// How often one request re-reads after losing a compare-and-set before giving up. Each loss means
/// another writer made progress, and a session has at most a handful of writers.
const MAX_ATTEMPTS: usize = 16;

/// A challenge stays takeable a little past its session's expiry, so an answer arriving at that
/// moment is refused for the true reason (the session expired) rather than "challenge used".
const CEREMONY_OUTLIVES_SESSION: Duration = Duration::from_secs(60);

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
    /// No ceremony is waiting: the challenge was already answered, or never handed out.
    #[error("this challenge was already used; reload the approval page for a new one")]
    ChallengeUsed,
    /// The phone answered a sign-in with a registration or the other way round.
    #[error("this session is waiting for the other kind of passkey response")]
    WrongCeremony,
    #[error("no passkey of this app matches the response")]
    CredentialNotFound,
    #[error(transparent)]
    Passkey(#[from] PasskeyError),
    #[error("this app does not let people create an account from the phone")]
    SignupClosed,
    #[error(transparent)]
    ClaimedElsewhere(#[from] ClaimedElsewhere),
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// Why the service could not be built from the settings.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Settings(#[from] Invalid),
    #[error(transparent)]
    Key(#[from] TokenError),
}

impl From<TransitionError> for BridgeError {
    fn from(e: TransitionError) -> Self {
        match e {
            TransitionError::Expired => BridgeError::Expired,
            other => BridgeError::Refused(other),
        }
    }
}

/// What the desktop asks for when it starts a session.
#[derive(Clone, Debug)]
pub struct Start {
    pub kind: Kind,
    pub approval_context: Option<ApprovalContext>,
    pub external_user_id: Option<String>,
    pub requester: Requester,
}

/// A session just created, with the secrets and links the desktop needs.
#[derive(Debug)]
pub struct Started {
    pub session: Session,
    /// Shown once to the desktop; only its digest is stored.
    pub polling_token: String,
    pub qr_url: String,
}

/// A session the phone just opened, with the WebAuthn options for its ceremony.
#[derive(Debug)]
pub struct Opened {
    pub session: Session,
    pub kind: Kind,
    /// Standard WebAuthn options as JSON (base64url without padding), for `get()` or `create()`.
    pub options: serde_json::Value,
}

/// A session as the desktop may see it: its state now, and the completion once there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub state: State,
    pub completion: Option<Completion>,
    /// The stored revision: grows with every write, so it orders what a watcher has seen.
    pub rev: u64,
    /// How long, by the store's clock, until the session would expire if nothing else happens.
    pub expires_in: Duration,
}

pub struct Bridge {
    apps: Arc<Apps>,
    store: Arc<dyn Store>,
    passkeys: Passkeys,
    tokens: Tokens,
    public_origin: String,
    session_ttl: Duration,
}

/// `2026-05-01T12:05:00.123Z`
pub fn iso8601(at: Timestamp) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(at.as_millis())).to_string()
}

impl Bridge {
    /// Builds the relying parties and loads the signing key. With the embedded store a missing
    /// key is created; instances sharing Redis must share a key file, so there it must exist.
    pub fn new(settings: &Settings, store: Arc<dyn Store>) -> Result<Self, SetupError> {
        let create_key = settings.store == StoreKind::Memory;
        Ok(Self {
            apps: settings.apps.clone(),
            store,
            passkeys: Passkeys::new(&settings.apps, &settings.public_origin)?,
            tokens: Tokens::load(&settings.signing_key, create_key, settings.token_ttl)?,
            public_origin: settings.public_origin.clone(),
            session_ttl: settings.session_ttl,
        })
    }

    pub fn apps(&self) -> &Apps {
        &self.apps
    }

    pub fn jwks(&self) -> &serde_json::Value {
        self.tokens.jwks()
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

    pub async fn start(&self, app: &App, start: Start) -> Result<Started, BridgeError> {
        let id = SessionId::from_uuid(uuid::Uuid::new_v4());
        let polling_token = secret::generate("pt_");
        let now = self.store.now().await?;
        let new = NewSession {
            id,
            app_id: app.id.clone(),
            kind: start.kind,
            polling_token_sha256: secret::digest(&polling_token),
            approval_context: start.approval_context,
            external_user_id: start.external_user_id,
            requester: start.requester,
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
            rev: loaded.rev,
            expires_in: loaded.now.until(session.expires_at),
        })
    }

    /// Subscribes to the session's changes, then reads it: in that order, so no change can fall
    /// between the two. Refused exactly as [`Bridge::observe`] refuses.
    pub async fn watch(
        &self,
        id: &SessionId,
        polling_token: Option<&str>,
    ) -> Result<(Subscription, Observed), BridgeError> {
        let subscription = self.store.subscribe(id).await?;
        let first = self.observe(id, polling_token).await?;
        Ok((subscription, first))
    }

    /// The phone opened the approval page: the session becomes `Scanned` and gets a fresh
    /// challenge (sign in, or create a passkey for a registration session).
    /// `by` is the browser's claim on the hosted page, `None` from the API (see `Session::claim`).
    pub async fn open(
        &self,
        app: &App,
        id: &SessionId,
        by: Option<&str>,
    ) -> Result<Opened, BridgeError> {
        let session = self.scan(app, id, by).await?;
        let (options, ceremony) = match session.kind {
            Kind::Auth => self.passkeys.start_sign_in(app)?,
            Kind::Registration => {
                let known = match &session.external_user_id {
                    Some(external) => {
                        self.store
                            .find_user_by_external_id(&app.id, external)
                            .await?
                    }
                    None => None,
                };
                let handle = known
                    .as_ref()
                    .and_then(|u| user_handle(&u.id))
                    .unwrap_or_else(Uuid::new_v4);
                let name = session
                    .external_user_id
                    .clone()
                    .unwrap_or_else(|| account_name(app, handle));
                let exclude = known.map(|u| u.credential_ids()).unwrap_or_default();
                self.passkeys.start_register(app, handle, &name, exclude)?
            }
        };
        let kind = session.kind;
        self.hand_out(session, kind, options, ceremony).await
    }

    /// Keeps the ceremony with its session and hands the options to the phone.
    async fn hand_out(
        &self,
        session: Session,
        kind: Kind,
        options: serde_json::Value,
        ceremony: Ceremony,
    ) -> Result<Opened, BridgeError> {
        let until = session.expires_at.plus(CEREMONY_OUTLIVES_SESSION);
        self.store
            .put_ceremony(&session.id, &ceremony, until)
            .await?;
        Ok(Opened {
            kind,
            session,
            options,
        })
    }

    /// A phone with no passkey asks to create one from a sign-in request, when the app allows it:
    /// the pending challenge is replaced by one that creates a passkey for a new account.
    pub async fn open_signup(
        &self,
        app: &App,
        id: &SessionId,
        by: Option<&str>,
    ) -> Result<Opened, BridgeError> {
        if !app.open_signup {
            return Err(BridgeError::SignupClosed);
        }
        let session = self.scan(app, id, by).await?;
        let handle = Uuid::new_v4();
        let (options, ceremony) =
            self.passkeys
                .start_register(app, handle, &account_name(app, handle), Vec::new())?;
        self.hand_out(session, Kind::Registration, options, ceremony)
            .await
    }

    async fn scan(
        &self,
        app: &App,
        id: &SessionId,
        by: Option<&str>,
    ) -> Result<Session, BridgeError> {
        self.update(id, |s, now| {
            owned_by(s, app)?;
            s.claim(by)?;
            Ok(s.apply(Event::Scan, now)?)
        })
        .await
    }

    /// The phone signed the challenge: check it, record the use, and complete the session.
    /// Any refusal leaves the session `Scanned`: reopening the page gives a new challenge.
    pub async fn verify(
        &self,
        app: &App,
        id: &SessionId,
        response: &PublicKeyCredential,
        by: Option<&str>,
    ) -> Result<(), BridgeError> {
        let (loaded, ceremony) = self.take_ceremony(app, id, by).await?;
        let Ceremony::SignIn(state) = ceremony else {
            return Err(BridgeError::WrongCeremony);
        };
        let (handle, credential_id) = self
            .passkeys
            .identify(app, response)
            .map_err(|_| BridgeError::CredentialNotFound)?;
        let mut user = self
            .store
            .load_user(&app.id, &user_id(handle))
            .await?
            .ok_or(BridgeError::CredentialNotFound)?;
        let stored = user
            .passkey_mut(credential_id)
            .ok_or(BridgeError::CredentialNotFound)?;
        let result = self
            .passkeys
            .finish_sign_in(app, state, response, &stored.passkey)?;
        stored.passkey.update_credential(&result);
        stored.last_used_at = Some(loaded.now);
        self.store.save_user(&user).await?;
        self.complete(app, id, &user).await
    }

    /// The phone created a passkey: keep it (a new user, or one more passkey of a known one) and
    /// complete the session as that user.
    pub async fn verify_registration(
        &self,
        app: &App,
        id: &SessionId,
        response: &RegisterPublicKeyCredential,
        by: Option<&str>,
    ) -> Result<(), BridgeError> {
        let (Loaded { session, now, .. }, ceremony) = self.take_ceremony(app, id, by).await?;
        let Ceremony::Register { state, handle } = ceremony else {
            return Err(BridgeError::WrongCeremony);
        };
        let passkey = self.passkeys.finish_register(app, &state, response)?;
        let mut user = match self.store.load_user(&app.id, &user_id(handle)).await? {
            Some(user) => user,
            None => User::new(handle, &app.id, session.external_user_id, now),
        };
        user.passkeys.push(StoredPasskey {
            passkey,
            created_at: now,
            last_used_at: Some(now),
        });
        self.store.save_user(&user).await?;
        self.complete(app, id, &user).await
    }

    /// The app a session belongs to: what the hosted approval page needs before anything else.
    pub async fn app_of(&self, id: &SessionId) -> Result<Arc<App>, BridgeError> {
        let loaded = self.store.load(id).await?.ok_or(BridgeError::NotFound)?;
        self.apps
            .get(&loaded.session.app_id)
            .cloned()
            .ok_or(BridgeError::NotFound)
    }

    /// Claims of a session token this deployment issued.
    pub fn validate(&self, token: &str) -> Result<Claims, BridgeError> {
        Ok(self.tokens.verify(token)?)
    }

    /// Checks the session belongs to `app` and could still complete, then takes its ceremony so
    /// it can be answered once. A dead session keeps its challenge unspent and says why.
    async fn take_ceremony(
        &self,
        app: &App,
        id: &SessionId,
        by: Option<&str>,
    ) -> Result<(Loaded, Ceremony), BridgeError> {
        let loaded = self.store.load(id).await?.ok_or(BridgeError::NotFound)?;
        owned_by(&loaded.session, app)?;
        loaded.session.check_claim(by)?;
        loaded.session.accepts(EventKind::Complete, loaded.now)?;

        let ceremony = self
            .store
            .take_ceremony(id)
            .await?
            .ok_or(BridgeError::ChallengeUsed)?;
        Ok((loaded, ceremony))
    }

    /// Mints the token and completes the session in one compare-and-set: if the session was
    /// cancelled or expired meanwhile, the token is dropped unseen.
    async fn complete(&self, app: &App, id: &SessionId, user: &User) -> Result<(), BridgeError> {
        let token = self.tokens.mint(
            user.id.as_str(),
            user.external_user_id.as_deref(),
            &app.id,
            &id.to_string(),
        )?;
        let done = Completion {
            user_id: user.id.clone(),
            session_token: token,
        };
        self.update(id, |s, now| {
            owned_by(s, app)?;
            Ok(s.apply(Event::Complete(done.clone()), now)?)
        })
        .await
        .map(drop)
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
    pub async fn deny(
        &self,
        app: &App,
        id: &SessionId,
        by: Option<&str>,
    ) -> Result<(), BridgeError> {
        self.update(id, |s, now| {
            owned_by(s, app)?;
            s.check_claim(by)?;
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

/// The name a new passkey is saved under on the phone when the app gave none.
fn account_name(app: &App, handle: Uuid) -> String {
    format!("{} account {}", app.name, &handle.simple().to_string()[..6])
}

/// Another app's session is reported as unknown, so ids cannot be probed across apps.
fn owned_by(session: &Session, app: &App) -> Result<(), BridgeError> {
    if session.app_id == app.id {
        Ok(())
    } else {
        Err(BridgeError::NotFound)
    }
}
