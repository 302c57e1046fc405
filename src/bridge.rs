//! The cross-device service: start, observe, open, verify, cancel and deny sessions over any store, for the API and the pages alike.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use url::Url;
use uuid::Uuid;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use crate::apps::{App, Apps, Invalid};
use crate::passkey::{
    Ceremony, PasskeyError, Passkeys, StoredPasskey, User, refuse_cross_origin, user_handle,
    user_id,
};
use crate::secret;
use crate::session::{
    Applied, ApprovalContext, ClaimedElsewhere, Completion, Event, EventKind, Kind, NewSession,
    Requester, Session, SessionId, StartedBy, State, Timestamp, TransitionError,
};
use crate::settings::Settings;
use crate::store::{Created, Loaded, Replaced, Store, StoreError, Subscription};
use crate::token::{Claims, KeyRing, TokenError, Tokens};

/// How often one request re-reads after losing a compare-and-set before giving up. Each loss means
/// another writer made progress, and a session has at most a handful of writers.
const MAX_ATTEMPTS: usize = 16;

/// A challenge stays takeable a little past its session's expiry, so an answer arriving at that
/// moment is refused for the true reason (the session expired) rather than "challenge used".
const CEREMONY_OUTLIVES_SESSION: Duration = Duration::from_secs(60);

/// How often an instance reads the signing keys again, to pick up a rotation.
pub const KEY_REFRESH: Duration = Duration::from_secs(10);

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
    /// A browser (publishable key) named the account a registration is for.
    #[error(
        "a browser may not choose the account a passkey is registered for: start the registration \
         from your backend with the secret key (no Origin), or leave out external_user_id"
    )]
    BrowserNamedUser,
    /// The app already has a user with this external id, and only its backend may add to it.
    #[error(
        "an account with this external_user_id already exists; add a passkey to it from your \
         backend with the secret key"
    )]
    ExternalIdTaken,
    #[error("creating an account is only offered on a sign-in request")]
    SignupOnRegistration,
    /// The user a registration was adding to is gone (removed meanwhile).
    #[error("the account this passkey was for no longer exists")]
    UserGone,
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
    #[error("signing keys: {0}")]
    Store(#[from] StoreError),
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
    pub started_by: StartedBy,
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

/// An introspected token (RFC 7662): its claims when it is active for the asking app.
#[derive(Clone, Debug)]
pub enum Introspected {
    Active(Claims),
    Inactive,
}

/// `2026-05-01T12:05:00.123Z`
pub fn iso8601(at: Timestamp) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(at.as_millis())).to_string()
}

impl Bridge {
    /// Builds the relying parties and reads the signing keys from the store, making the ring
    /// when the deployment has none yet (the first instance to start writes it; the others read
    /// theirs).
    pub async fn new(settings: &Settings, store: Arc<dyn Store>) -> Result<Self, SetupError> {
        let (ring, version) = keys::load_or_create(&*store, settings).await?;
        let now = store.now().await?;
        Ok(Self {
            apps: settings.apps.clone(),
            passkeys: Passkeys::new(&settings.apps, &settings.public_origin)?,
            tokens: Tokens::new(
                &settings.public_origin,
                settings.token_ttl,
                &ring,
                version,
                now,
            )?,
            store,
            public_origin: settings.public_origin.clone(),
            session_ttl: settings.session_ttl,
        })
    }

    /// Reads the signing keys again: a rotation made meanwhile takes effect here, and retired
    /// keys whose tokens have all expired leave the JWKS.
    pub async fn refresh_keys(&self) -> Result<(), BridgeError> {
        let stored = self
            .store
            .load_keys()
            .await?
            .ok_or_else(|| StoreError::Corrupt("the signing keys are gone".into()))?;
        let ring = keys::decode(&stored.json)?;
        let now = self.store.now().await?;
        if self.tokens.update(&ring, stored.version, now)? {
            tracing::info!(kid = %self.tokens.signing_kid(), "signing keys changed");
        }
        Ok(())
    }

    /// Whether the store answers: what `/readyz` reports.
    pub async fn ready(&self) -> Result<(), BridgeError> {
        self.store.now().await?;
        Ok(())
    }

    pub fn apps(&self) -> &Apps {
        &self.apps
    }

    pub fn jwks(&self) -> serde_json::Value {
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

    /// Starts a session. A registration started by a browser may only ever make a new account
    /// (see the README's security model): that is decided here, before anything is stored.
    pub async fn start(&self, app: &App, start: Start) -> Result<Started, BridgeError> {
        if start.kind == Kind::Registration && start.started_by == StartedBy::Browser {
            if !app.open_signup {
                return Err(BridgeError::SignupClosed);
            }
            if let Some(external) = &start.external_user_id {
                if !app.browser_external_ids {
                    return Err(BridgeError::BrowserNamedUser);
                }
                if self
                    .store
                    .find_user_by_external_id(&app.id, external)
                    .await?
                    .is_some()
                {
                    return Err(BridgeError::ExternalIdTaken);
                }
            }
        }
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
            started_by: start.started_by,
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
    /// challenge (sign in, or create a passkey for a registration session). `by` names the phone
    /// (see `Session::claim`).
    pub async fn open(&self, app: &App, id: &SessionId, by: &str) -> Result<Opened, BridgeError> {
        let session = self.scan(app, id, by).await?;
        let (options, ceremony) = match session.kind {
            Kind::Auth => self.passkeys.start_sign_in(app)?,
            Kind::Registration => {
                // Only the app's backend speaks for an existing user; a browser's registration
                // never looks one up, so it can neither join nor learn about one.
                let known = match (&session.external_user_id, session.started_by) {
                    (Some(external), StartedBy::Backend) => {
                        self.store
                            .find_user_by_external_id(&app.id, external)
                            .await?
                    }
                    _ => None,
                };
                let handle = known
                    .as_ref()
                    .and_then(|u| user_handle(&u.id))
                    .unwrap_or_else(Uuid::new_v4);
                let name = session
                    .external_user_id
                    .clone()
                    .unwrap_or_else(|| account_name(app, handle));
                let joins = known.is_some();
                let exclude = known.map(|u| u.credential_ids()).unwrap_or_default();
                self.passkeys
                    .start_register(app, handle, &name, exclude, joins)?
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
        by: &str,
    ) -> Result<Opened, BridgeError> {
        if !app.open_signup {
            return Err(BridgeError::SignupClosed);
        }
        let session = self
            .update(id, |s, now| {
                owned_by(s, app)?;
                // A registration session may carry an external id; an account made here never does.
                if s.kind != Kind::Auth {
                    return Err(BridgeError::SignupOnRegistration);
                }
                s.claim(by)?;
                Ok(s.apply(Event::Scan, now)?)
            })
            .await?;
        let handle = Uuid::new_v4();
        let (options, ceremony) = self.passkeys.start_register(
            app,
            handle,
            &account_name(app, handle),
            Vec::new(),
            false,
        )?;
        self.hand_out(session, Kind::Registration, options, ceremony)
            .await
    }

    async fn scan(&self, app: &App, id: &SessionId, by: &str) -> Result<Session, BridgeError> {
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
        by: &str,
    ) -> Result<(), BridgeError> {
        refuse_cross_origin(&response.response.client_data_json)?;
        let (loaded, ceremony) = self.take_ceremony(app, id, by).await?;
        let Ceremony::SignIn(state) = ceremony else {
            return Err(BridgeError::WrongCeremony);
        };
        let (handle, credential_id) = self
            .passkeys
            .identify(app, response)
            .map_err(|_| BridgeError::CredentialNotFound)?;
        let owner = user_id(handle);
        for _ in 0..MAX_ATTEMPTS {
            let mut stored = self
                .store
                .load_user(&app.id, &owner)
                .await?
                .ok_or(BridgeError::CredentialNotFound)?;
            let passkey = stored
                .user
                .passkey_mut(credential_id)
                .ok_or(BridgeError::CredentialNotFound)?;
            // Checked against the counter as stored now: after a lost race, against the winner's.
            let result =
                self.passkeys
                    .finish_sign_in(app, state.clone(), response, &passkey.passkey)?;
            passkey.passkey.update_credential(&result);
            passkey.last_used_at = Some(loaded.now);
            match self.store.replace_user(&stored.user, stored.rev).await? {
                Replaced::Done => return self.complete(app, id, &stored.user).await,
                Replaced::Stale => continue,
                Replaced::Gone | Replaced::Expired => return Err(BridgeError::CredentialNotFound),
            }
        }
        Err(BridgeError::Contended)
    }

    /// The phone created a passkey: keep it (a new user, or one more passkey of the user the
    /// app's backend named) and complete the session as that user.
    pub async fn verify_registration(
        &self,
        app: &App,
        id: &SessionId,
        response: &RegisterPublicKeyCredential,
        by: &str,
    ) -> Result<(), BridgeError> {
        refuse_cross_origin(&response.response.client_data_json)?;
        let (Loaded { session, now, .. }, ceremony) = self.take_ceremony(app, id, by).await?;
        let Ceremony::Register {
            state,
            handle,
            joins,
        } = ceremony
        else {
            return Err(BridgeError::WrongCeremony);
        };
        let passkey = StoredPasskey {
            passkey: self.passkeys.finish_register(app, &state, response)?,
            created_at: now,
            last_used_at: Some(now),
        };
        let user = if joins {
            self.add_passkey(app, &user_id(handle), passkey).await?
        } else {
            // Only a registration session names an account; one made by sign-up never does.
            let external = match session.kind {
                Kind::Registration => session.external_user_id,
                Kind::Auth => None,
            };
            let mut user = User::new(handle, &app.id, external, now);
            user.passkeys.push(passkey);
            match self.store.create_user(&user).await? {
                Created::Done => user,
                Created::ExternalIdTaken => return Err(BridgeError::ExternalIdTaken),
                // A fresh random handle already in use: never seen, but never an overwrite either.
                Created::Exists => return Err(BridgeError::Contended),
            }
        };
        self.complete(app, id, &user).await
    }

    /// One more passkey for an existing user, written with compare-and-set so that two
    /// registrations at once both keep theirs.
    async fn add_passkey(
        &self,
        app: &App,
        owner: &crate::session::UserId,
        passkey: StoredPasskey,
    ) -> Result<User, BridgeError> {
        for _ in 0..MAX_ATTEMPTS {
            let mut stored = self
                .store
                .load_user(&app.id, owner)
                .await?
                .ok_or(BridgeError::UserGone)?;
            stored.user.passkeys.push(passkey.clone());
            match self.store.replace_user(&stored.user, stored.rev).await? {
                Replaced::Done => return Ok(stored.user),
                Replaced::Stale => continue,
                Replaced::Gone | Replaced::Expired => return Err(BridgeError::UserGone),
            }
        }
        Err(BridgeError::Contended)
    }

    /// The app a session belongs to: what the hosted approval page needs before anything else.
    pub async fn app_of(&self, id: &SessionId) -> Result<Arc<App>, BridgeError> {
        let loaded = self.store.load(id).await?.ok_or(BridgeError::NotFound)?;
        self.apps
            .get(&loaded.session.app_id)
            .cloned()
            .ok_or(BridgeError::NotFound)
    }

    /// Claims of a live session token this deployment issued, for whichever app.
    pub async fn validate(&self, token: &str) -> Result<Claims, BridgeError> {
        let claims = self.tokens.verify(token)?;
        if self.store.is_token_revoked(&claims.jti).await? {
            return Err(TokenError::Revoked.into());
        }
        Ok(claims)
    }

    /// RFC 7662 for the app's backend: active only for a live token issued to this same app.
    pub async fn introspect(&self, app: &App, token: &str) -> Result<Introspected, BridgeError> {
        match self.validate(token).await {
            Ok(claims) if claims.aud == app.id => Ok(Introspected::Active(claims)),
            Ok(_) | Err(BridgeError::Token(_)) => Ok(Introspected::Inactive),
            Err(e) => Err(e),
        }
    }

    /// RFC 7009 for the app's backend: ends one of its own tokens before it expires. Anything
    /// else (another app's token, an expired or a malformed one) is left alone, and answered
    /// alike, so the endpoint tells nothing about tokens that are not the caller's.
    pub async fn revoke(&self, app: &App, token: &str) -> Result<(), BridgeError> {
        let Ok(claims) = self.tokens.verify(token) else {
            return Ok(());
        };
        if claims.aud != app.id {
            return Ok(());
        }
        let until = Timestamp::from_millis(claims.exp.saturating_add(60).saturating_mul(1000));
        Ok(self.store.revoke_token(&claims.jti, until).await?)
    }

    /// Checks the session belongs to `app` and could still complete, then takes its ceremony so
    /// it can be answered once. A dead session keeps its challenge unspent and says why.
    async fn take_ceremony(
        &self,
        app: &App,
        id: &SessionId,
        by: &str,
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

    /// What became of a session, for the phone that opened it: after an answer failed on our
    /// side, the truth (completed, still open for a fresh challenge, or ended) rather than a
    /// guess. Nobody else may ask.
    pub async fn phone_outcome(
        &self,
        app: &App,
        id: &SessionId,
        by: &str,
    ) -> Result<State, BridgeError> {
        let loaded = self.store.load(id).await?.ok_or(BridgeError::NotFound)?;
        owned_by(&loaded.session, app)?;
        loaded.session.check_opened_by(by)?;
        Ok(loaded.session.state_at(loaded.now))
    }

    /// The phone that opened the request declines it. Repeating it is harmless.
    pub async fn deny(&self, app: &App, id: &SessionId, by: &str) -> Result<(), BridgeError> {
        self.update(id, |s, now| {
            owned_by(s, app)?;
            // A session that is over says so first; a repeat of the denial changes nothing.
            if s.accepts(EventKind::Deny, now)?.is_none() {
                return Ok(Applied::Unchanged);
            }
            s.check_opened_by(by)?;
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

/// The signing keys as the store keeps them, for the bridge and for `qr-bridge keys`.
pub mod keys {
    use super::*;

    pub fn decode(json: &str) -> Result<KeyRing, StoreError> {
        serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("signing keys: {e}")))
    }

    /// The deployment's key ring, made and saved first if there is none. An embedded bridge
    /// that signed with `<data_dir>/signing-key.pem` before keys lived in the store keeps it.
    pub async fn load_or_create(
        store: &dyn Store,
        settings: &Settings,
    ) -> Result<(KeyRing, u64), SetupError> {
        if let Some(stored) = store.load_keys().await? {
            return Ok((decode(&stored.json)?, stored.version));
        }
        let now = store.now().await?;
        let legacy = settings.data_dir.join("signing-key.pem");
        let mut ring = KeyRing::generate(now)?;
        if settings.store == crate::settings::StoreKind::Memory
            && let Ok(pem) = std::fs::read_to_string(&legacy)
        {
            ring.import(pem, now, settings.token_ttl)?;
            tracing::info!("imported the signing key {}", legacy.display());
        }
        let json = serde_json::to_string(&ring).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if store.save_keys(&json, 1).await? {
            tracing::info!("created the signing keys");
            return Ok((ring, 1));
        }
        // Another instance made the ring first: use theirs.
        let stored = store
            .load_keys()
            .await?
            .ok_or_else(|| StoreError::Corrupt("the signing keys vanished".into()))?;
        Ok((decode(&stored.json)?, stored.version))
    }

    /// Applies `change` to the stored ring (made first if there is none) with compare-and-set,
    /// at the store's time; returns the ring as saved.
    pub async fn change(
        store: &dyn Store,
        settings: &Settings,
        change: impl Fn(&mut KeyRing, Timestamp) -> Result<(), TokenError>,
    ) -> Result<KeyRing, SetupError> {
        for _ in 0..MAX_ATTEMPTS {
            let (mut ring, version) = load_or_create(store, settings).await?;
            change(&mut ring, store.now().await?)?;
            let json =
                serde_json::to_string(&ring).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if store.save_keys(&json, version + 1).await? {
                return Ok(ring);
            }
        }
        Err(
            StoreError::Unavailable("the signing keys kept changing under this write".into())
                .into(),
        )
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
