//! The cross-device service: start, observe, open, verify, cancel and deny sessions over any store, for the API and the pages alike.

mod error;
pub mod keys;
mod pairing;
mod phone;
mod record;

pub use record::Recorder;
mod report;
mod tokens;

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::apps::{App, Apps};
use crate::passkey::Passkeys;
use crate::secret;
use crate::session::{
    Applied, ApprovalContext, BridgeKind, Completion, Event, Kind, NewSession, Requester, Session,
    SessionId, StartedBy, State, Timestamp,
};
use crate::settings::Settings;
use crate::store::{Replaced, Store, StoreError, Subscription};
use crate::token::{Claims, Tokens};

/// How often one request re-reads after losing a compare-and-set before giving up. Each loss means
/// another writer made progress, and a session has at most a handful of writers.
const MAX_ATTEMPTS: usize = 16;

/// A challenge stays takeable a little past its session's expiry, so an answer arriving at that
/// moment is refused for the true reason (the session expired) rather than "challenge used".
const CEREMONY_OUTLIVES_SESSION: Duration = Duration::from_secs(60);

/// How often an instance reads the signing keys again, to pick up a rotation.
pub const KEY_REFRESH: Duration = Duration::from_secs(10);

pub use error::{BridgeError, SetupError};
pub use pairing::{
    PIN_DIGITS, Paired, PairingAnswer, PairingStart, PairingStarted, PinOffer, is_context_hash,
};
pub use phone::{Answer, Approved, Open};
pub use report::{Reveal, pin_status, wire_status};

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

/// Who watches a session's status, which decides what they may learn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Viewer {
    /// The desktop, proven by its polling token: the token too, once completed.
    Desktop(Option<String>),
    /// A PIN bridge's initiator, by the session id alone: how it stands, nothing more.
    Initiator(BridgeKind),
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
    /// Whose routes the session answers on, which decides how its status is named.
    pub flow: Flow,
    /// Number matching: what the desktop shows while the phone has it to pick.
    pub number: Option<u8>,
}

pub struct Bridge {
    apps: Arc<Apps>,
    store: Arc<dyn Store>,
    passkeys: Passkeys,
    tokens: Tokens,
    public_origin: String,
    session_ttl: Duration,
    recorder: Recorder,
}

/// An introspected token (RFC 7662): its claims when it is active for the asking app.
#[derive(Clone, Debug)]
pub enum Introspected {
    Active(Box<Claims>),
    Inactive,
}

pub use crate::clock::iso8601;

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
            recorder: Recorder::new(
                store.clone(),
                settings.audit_retention,
                settings.apps.clone(),
            ),
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
        self.store.ping().await?;
        Ok(())
    }

    pub fn apps(&self) -> &Apps {
        &self.apps
    }

    /// The Related Origin Requests origins of the rp_id that is the bridge's own host (see
    /// `Apps::related_origins`): the only rp_id whose `/.well-known/webauthn` the bridge is
    /// reached at. None when no app's passkeys belong to it.
    pub fn related_origins(&self) -> Option<Vec<String>> {
        let host = Url::parse(&self.public_origin).ok()?.host_str()?.to_owned();
        self.apps.related_origins(&host, &self.public_origin)
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
        self.create(app, start, |_| None).await
    }

    /// Makes and stores a new session; `pairing` makes it a PIN bridge's (from its id).
    async fn create(
        &self,
        app: &App,
        start: Start,
        pairing: impl FnOnce(&SessionId) -> Option<crate::session::Pairing>,
    ) -> Result<Started, BridgeError> {
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
        let mut session = Session::new(new, now, self.session_ttl);
        if let Some(pairing) = pairing(&id) {
            session = session.paired(pairing);
        }
        self.store.insert(&session).await?;
        crate::telemetry::session_started(&session);
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
        // A PIN bridge's initiator learns only how it ended (see `observe_pairing`), never the token.
        if Flow::of(session) != Flow::CrossDevice
            || !polling_token.is_some_and(|t| secret::matches(t, &session.polling_token_sha256))
        {
            return Err(BridgeError::NotFound);
        }
        Ok(self.observed(&loaded).await)
    }

    /// What a watcher may learn of a loaded session; an expiry is counted by its first reader.
    async fn observed(&self, loaded: &crate::store::Loaded) -> Observed {
        let session = &loaded.session;
        let id = &session.id;
        let state = session.state_at(loaded.now);
        // Nothing is written when a session expires: the first reader to see it counts it.
        if state == State::Expired && crate::telemetry::enabled() {
            match self.store.note_expiry(id).await {
                Ok(true) => crate::telemetry::session_finished(&session.app_id, State::Expired),
                Ok(false) => {}
                Err(e) => tracing::debug!(error = %e, "could not note an expiry"),
            }
        }
        Observed {
            state,
            completion: session.completion().filter(|_| state == State::Completed),
            rev: loaded.rev,
            expires_in: loaded.now.until(session.expires_at),
            flow: Flow::of(session),
            number: session.number_to_show(loaded.now),
        }
    }

    /// A PIN bridge's status, for whoever knows the session id: the SDK's `EventSource` can send
    /// nothing else. It says how the pairing stands and never carries the token or the user.
    pub async fn observe_pairing(
        &self,
        id: &SessionId,
        bridge: BridgeKind,
    ) -> Result<Observed, BridgeError> {
        let loaded = self.store.load(id).await?.ok_or(BridgeError::NotFound)?;
        if Flow::of(&loaded.session) != Flow::Pin(bridge) {
            return Err(BridgeError::NotFound);
        }
        let mut observed = self.observed(&loaded).await;
        observed.completion = None;
        Ok(observed)
    }

    /// What `viewer` may see of the session now.
    pub async fn look(&self, id: &SessionId, viewer: &Viewer) -> Result<Observed, BridgeError> {
        match viewer {
            Viewer::Desktop(token) => self.observe(id, token.as_deref()).await,
            Viewer::Initiator(bridge) => self.observe_pairing(id, *bridge).await,
        }
    }

    /// Subscribes to the session's changes, then reads it: in that order, so no change can fall
    /// between the two. Refused exactly as [`Bridge::look`] refuses.
    pub async fn watch(
        &self,
        id: &SessionId,
        viewer: &Viewer,
    ) -> Result<(Subscription, Observed), BridgeError> {
        let subscription = self.store.subscribe(id).await?;
        let first = self.look(id, viewer).await?;
        Ok((subscription, first))
    }

    /// The address a cross-device session's QR code holds, while it can still be scanned.
    pub async fn qr_of(&self, id: &SessionId) -> Result<String, BridgeError> {
        let loaded = self.store.load(id).await?.ok_or(BridgeError::NotFound)?;
        let session = &loaded.session;
        if Flow::of(session) != Flow::CrossDevice {
            return Err(BridgeError::NotFound);
        }
        session.accepts(crate::session::EventKind::Scan, loaded.now)?;
        let app = self
            .apps
            .get(&session.app_id)
            .ok_or(BridgeError::NotFound)?;
        Ok(self.qr_url(app, id))
    }

    /// The app a session belongs to: what the hosted approval page needs before anything else.
    pub async fn app_of(&self, id: &SessionId) -> Result<Arc<App>, BridgeError> {
        let loaded = self.store.load(id).await?.ok_or(BridgeError::NotFound)?;
        if Flow::of(&loaded.session) != Flow::CrossDevice {
            return Err(BridgeError::NotFound);
        }
        self.apps
            .get(&loaded.session.app_id)
            .cloned()
            .ok_or(BridgeError::NotFound)
    }

    /// The desktop (or a PIN bridge's initiator) gives up. Repeating it is harmless.
    pub async fn cancel(
        &self,
        id: &SessionId,
        polling_token: Option<&str>,
        flow: Flow,
    ) -> Result<(), BridgeError> {
        self.update(id, |s, now| {
            if Flow::of(s) != flow
                || !polling_token.is_some_and(|t| secret::matches(t, &s.polling_token_sha256))
            {
                return Err(BridgeError::NotFound);
            }
            Ok(s.apply(Event::Cancel, now)?)
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
            let before = loaded.session.state_at(loaded.now);
            if step(&mut loaded.session, loaded.now)? == Applied::Unchanged {
                return Ok(loaded.session);
            }
            match self.store.replace(id, loaded.rev, &loaded.session).await? {
                Replaced::Done => {
                    crate::telemetry::transition(&loaded.session, before, loaded.now);
                    return Ok(loaded.session);
                }
                Replaced::Stale => continue,
                Replaced::Gone => return Err(BridgeError::NotFound),
                Replaced::Expired => return Err(BridgeError::Expired),
            }
        }
        Err(BridgeError::Contended)
    }
}

/// Which routes may act on a session: the cross-device ones, or one PIN bridge's. Every other
/// route finds it unknown, so a PIN bridge's session is never opened without its PIN, and a
/// cross-device one never through a PIN bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    CrossDevice,
    Pin(BridgeKind),
}

impl Flow {
    pub fn of(session: &Session) -> Flow {
        match session.pairing() {
            None => Flow::CrossDevice,
            Some(p) => Flow::Pin(p.bridge),
        }
    }
}

/// A cross-device session of `app`; see [`belongs`].
fn owned_by(session: &Session, app: &App) -> Result<(), BridgeError> {
    belongs(session, app, Flow::CrossDevice)
}

/// Another app's session, or another flow's, is reported as unknown, so ids cannot be probed
/// across apps and no route acts on a session of another flow.
fn belongs(session: &Session, app: &App, flow: Flow) -> Result<(), BridgeError> {
    if session.app_id == app.id && Flow::of(session) == flow {
        Ok(())
    } else {
        Err(BridgeError::NotFound)
    }
}
