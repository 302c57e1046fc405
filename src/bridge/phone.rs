//! The phone's side of a session: open it for a challenge, answer with a passkey (or create one), decline, and ask what became of it.

use uuid::Uuid;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::{
    Bridge, BridgeError, CEREMONY_OUTLIVES_SESSION, Flow, MAX_ATTEMPTS, Opened, belongs, owned_by,
};
use crate::account::{Ceremony, StoredPasskey, User, user_handle, user_id};
use crate::apps::App;
use crate::audit::{Action, AuditEvent};
use crate::passkey::refuse_cross_origin;
use crate::session::{
    Applied, Completion, Event, EventKind, Kind, NumberMatch, Picked, Session, SessionId,
    StartedBy, State,
};
use crate::session::{Requester, Timestamp};
use crate::store::{Created, Loaded, Replaced};

/// The passkey that approved, so the phone can say which of the person's devices it was, and
/// what the session completed with (a PIN bridge hands it to the approving device).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approved {
    /// When the passkey was made.
    pub passkey_created_at: Timestamp,
    /// It was made by this very answer.
    pub new: bool,
    pub credential_id: Vec<u8>,
    pub completion: Completion,
}

/// How the phone opens a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Open {
    /// As the desktop started it: sign in with a passkey, or create one for a registration.
    AsStarted,
    /// A phone with no passkey creates one instead, from a sign-in request (apps with
    /// `open_signup`); the pending challenge is replaced.
    Signup,
}

/// The phone's signed answer: to a sign-in's challenge, or a new passkey.
#[derive(Clone, Debug)]
pub enum Answer {
    SignIn(PublicKeyCredential),
    Register(RegisterPublicKeyCredential),
}

impl From<PublicKeyCredential> for Answer {
    fn from(credential: PublicKeyCredential) -> Self {
        Answer::SignIn(credential)
    }
}

impl From<RegisterPublicKeyCredential> for Answer {
    fn from(credential: RegisterPublicKeyCredential) -> Self {
        Answer::Register(credential)
    }
}

impl Bridge {
    /// The phone opened the approval page, as the session was started or to create a passkey
    /// instead (see [`Open`]). `by` names the phone (see `Session::claim`).
    pub async fn open(
        &self,
        app: &App,
        id: &SessionId,
        by: &str,
        how: Open,
    ) -> Result<Opened, BridgeError> {
        match how {
            Open::AsStarted => self.open_as_started(app, id, by).await,
            Open::Signup => self.open_signup(app, id, by).await,
        }
    }

    /// The phone's signed answer to the challenge it was given.
    pub async fn answer(
        &self,
        app: &App,
        id: &SessionId,
        answer: &Answer,
        by: &str,
        from: &Requester,
    ) -> Result<Approved, BridgeError> {
        self.answer_in(Flow::CrossDevice, app, id, answer, by, from)
            .await
    }

    /// An answer to a session of `flow`.
    pub(super) async fn answer_in(
        &self,
        flow: Flow,
        app: &App,
        id: &SessionId,
        answer: &Answer,
        by: &str,
        from: &Requester,
    ) -> Result<Approved, BridgeError> {
        match answer {
            Answer::SignIn(credential) => self.verify(flow, app, id, credential, by, from).await,
            Answer::Register(credential) => {
                self.verify_registration(flow, app, id, credential, by, from)
                    .await
            }
        }
    }

    /// The session becomes `Scanned` and gets a fresh challenge (sign in, or create a passkey
    /// for a registration session).
    async fn open_as_started(
        &self,
        app: &App,
        id: &SessionId,
        by: &str,
    ) -> Result<Opened, BridgeError> {
        let session = self.scan(app, id, by).await?;
        self.ceremony_for(app, session).await
    }

    /// The challenge for a session just opened: sign in, or create a passkey (for the user its
    /// app's backend named, when there is one).
    pub(super) async fn ceremony_for(
        &self,
        app: &App,
        session: Session,
    ) -> Result<Opened, BridgeError> {
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
    async fn open_signup(
        &self,
        app: &App,
        id: &SessionId,
        by: &str,
    ) -> Result<Opened, BridgeError> {
        if !app.open_signup {
            return Err(BridgeError::SignupClosed);
        }
        let numbers = numbers_for(app);
        let session = self
            .update(id, |s, now| {
                owned_by(s, app)?;
                // A registration session may carry an external id; an account made here never does.
                if s.kind != Kind::Auth {
                    return Err(BridgeError::SignupOnRegistration);
                }
                s.claim(by)?;
                let applied = s.apply(Event::Scan, now)?;
                if let Some(numbers) = &numbers {
                    s.ask_number(numbers.clone());
                }
                Ok(applied)
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
        let numbers = numbers_for(app);
        self.update(id, |s, now| {
            owned_by(s, app)?;
            s.claim(by)?;
            let applied = s.apply(Event::Scan, now)?;
            if let Some(numbers) = &numbers {
                s.ask_number(numbers.clone());
            }
            Ok(applied)
        })
        .await
    }

    /// The phone that opened the request picked `n` among the numbers it was shown: the right
    /// one lets its passkey answer; a wrong one declines the session, counted and kept in the
    /// trail like any decline.
    pub async fn pick_number(
        &self,
        app: &App,
        id: &SessionId,
        n: u8,
        by: &str,
        from: &Requester,
    ) -> Result<(), BridgeError> {
        let mut picked = None;
        let session = self
            .update(id, |s, now| {
                owned_by(s, app)?;
                s.check_opened_by(by)?;
                let pick = s.pick_number(n, now)?;
                picked = Some((pick, now));
                Ok(Applied::Changed)
            })
            .await?;
        match picked {
            Some((Picked::Wrong, at)) => {
                crate::telemetry::verify_refused("qr_number_mismatch");
                let event = AuditEvent::new(Action::Declined, &app.id, at)
                    .of_session(&session)
                    .phone(from)
                    .reason("qr_number_mismatch");
                self.recorder.record(event).await;
                Err(BridgeError::NumberMismatch)
            }
            _ => Ok(()),
        }
    }

    /// The phone signed the challenge: check it, record the use, and complete the session.
    /// Any refusal leaves the session `Scanned`: reopening the page gives a new challenge.
    async fn verify(
        &self,
        flow: Flow,
        app: &App,
        id: &SessionId,
        response: &PublicKeyCredential,
        by: &str,
        from: &Requester,
    ) -> Result<Approved, BridgeError> {
        refuse_cross_origin(&response.response.client_data_json)?;
        let (loaded, ceremony) = self.take_ceremony(flow, app, id, by).await?;
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
            let passkey_created_at = passkey.created_at;
            match self.store.replace_user(&stored.user, stored.rev).await? {
                Replaced::Done => {
                    let completion = self.complete(flow, app, id, &stored.user).await?;
                    let approved = Approved {
                        passkey_created_at,
                        new: false,
                        credential_id: credential_id.to_vec(),
                        completion,
                    };
                    let event = AuditEvent::new(Action::SignIn, &app.id, loaded.now)
                        .of_session(&loaded.session)
                        .user(owner.as_str())
                        .passkey(credential_id)
                        .phone(from);
                    self.recorder.record(event).await;
                    return Ok(approved);
                }
                Replaced::Stale => continue,
                Replaced::Gone | Replaced::Expired => return Err(BridgeError::CredentialNotFound),
            }
        }
        Err(BridgeError::Contended)
    }

    /// The phone created a passkey: keep it (a new user, or one more passkey of the user the
    /// app's backend named) and complete the session as that user.
    async fn verify_registration(
        &self,
        flow: Flow,
        app: &App,
        id: &SessionId,
        response: &RegisterPublicKeyCredential,
        by: &str,
        from: &Requester,
    ) -> Result<Approved, BridgeError> {
        refuse_cross_origin(&response.response.client_data_json)?;
        let (Loaded { session, now, .. }, ceremony) = self.take_ceremony(flow, app, id, by).await?;
        let started = AuditEvent::new(Action::Registration, &app.id, now).of_session(&session);
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
        let completion = self.complete(flow, app, id, &user).await?;
        let credential_id = user
            .passkeys
            .last()
            .map(|made| made.passkey.cred_id().to_vec())
            .unwrap_or_default();
        let event = started
            .user(user.id.as_str())
            .phone(from)
            .passkey(&credential_id);
        self.recorder.record(event).await;
        Ok(Approved {
            passkey_created_at: now,
            new: true,
            credential_id,
            completion,
        })
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

    /// Checks the session belongs to `app` and could still complete, then takes its ceremony so
    /// it can be answered once. A dead session keeps its challenge unspent and says why.
    async fn take_ceremony(
        &self,
        flow: Flow,
        app: &App,
        id: &SessionId,
        by: &str,
    ) -> Result<(Loaded, Ceremony), BridgeError> {
        let loaded = self.store.load(id).await?.ok_or(BridgeError::NotFound)?;
        belongs(&loaded.session, app, flow)?;
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
    async fn complete(
        &self,
        flow: Flow,
        app: &App,
        id: &SessionId,
        user: &User,
    ) -> Result<Completion, BridgeError> {
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
            belongs(s, app, flow)?;
            Ok(s.apply(Event::Complete(done.clone()), now)?)
        })
        .await?;
        Ok(done)
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
        let loaded = self.opened_by(app, id, by).await?;
        Ok(loaded.session.state_at(loaded.now))
    }

    /// A cross-device session of `app` as stored, when the phone `by` is the one that opened it:
    /// what only that phone may ask about or take back.
    pub(super) async fn opened_by(
        &self,
        app: &App,
        id: &SessionId,
        by: &str,
    ) -> Result<Loaded, BridgeError> {
        let loaded = self.store.load(id).await?.ok_or(BridgeError::NotFound)?;
        owned_by(&loaded.session, app)?;
        loaded.session.check_opened_by(by)?;
        Ok(loaded)
    }

    /// The phone that opened the request declines it. Repeating it is harmless.
    /// The person declined on the phone `by`, seen as `from`.
    pub async fn deny(
        &self,
        app: &App,
        id: &SessionId,
        by: &str,
        from: &Requester,
    ) -> Result<(), BridgeError> {
        let mut declined = None;
        let session = self
            .update(id, |s, now| {
                owned_by(s, app)?;
                // A session that is over says so first; a repeat of the denial changes nothing.
                if s.accepts(EventKind::Deny, now)?.is_none() {
                    declined = None;
                    return Ok(Applied::Unchanged);
                }
                s.check_opened_by(by)?;
                declined = Some(now);
                Ok(s.apply(Event::Deny, now)?)
            })
            .await?;
        if let Some(at) = declined {
            let event = AuditEvent::new(Action::Declined, &app.id, at);
            self.recorder
                .record(event.of_session(&session).phone(from))
                .await;
        }
        Ok(())
    }

    /// A phone's answer was refused for `code` (the API's error code): counted, and kept in the
    /// trail when it concerns a session this phone (`by`) opened. Anything else (a made-up id,
    /// another app's or another phone's session) is only counted: the publishable key is public,
    /// and a trail anyone can write to could be flooded. The callers hold the code table
    /// (`problem`), so they say which.
    pub async fn refused(
        &self,
        app: &App,
        id: &SessionId,
        by: &str,
        from: &Requester,
        code: &'static str,
    ) {
        crate::telemetry::verify_refused(code);
        let loaded = match self.store.load(id).await {
            Ok(Some(loaded))
                if loaded.session.app_id == app.id
                    && loaded.session.check_opened_by(by).is_ok() =>
            {
                loaded
            }
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, "could not read a session to record a refusal");
                return;
            }
        };
        let event = AuditEvent::new(Action::PasskeyRefused, &app.id, loaded.now)
            .of_session(&loaded.session)
            .phone(from)
            .reason(code);
        self.recorder.record(event).await;
    }
}

/// The numbers a phone opening a request of `app` will pick from, when the app asks for number
/// matching. Drawn before the write, so a retried compare-and-set offers the same ones.
fn numbers_for(app: &App) -> Option<NumberMatch> {
    app.confirm_code
        .then(|| NumberMatch::from_random(crate::secret::random_bytes()))
}

/// The name a new passkey is saved under on the phone when the app gave none.
fn account_name(app: &App, handle: Uuid) -> String {
    format!("{} account {}", app.name, &handle.simple().to_string()[..6])
}
