//! The PIN bridge: two devices paired by a short-lived PIN. The initiator starts a session and shows its PIN; the approving device reads the context, proves the PIN, answers with a passkey and receives the token; the initiator learns only how it ended.

use super::{Answer, Approved, Bridge, BridgeError, Flow, Opened, Start, belongs};
use crate::apps::App;
use crate::secret;
use crate::session::{
    ApprovalContext, BridgeKind, EventKind, Kind, Pairing, PinCheck, Requester, Session, SessionId,
    StartedBy,
};

/// Digits in a PIN: a million of them, of which a session lets a guesser try five.
pub const PIN_DIGITS: u32 = 6;

/// What the initiator asks for when it starts a pairing.
#[derive(Clone, Debug)]
pub struct PairingStart {
    pub bridge: BridgeKind,
    pub approval_context: Option<ApprovalContext>,
    /// Enrollment: the integrator's id of the person the new passkey is for.
    pub entity_id: Option<String>,
    /// Enrollment: the approving browser's context hash, when the backend binds the ticket to it.
    pub context_hash: Option<String>,
    pub started_by: StartedBy,
    pub requester: Requester,
}

/// A pairing just started, with the secrets only the initiator is shown.
#[derive(Debug)]
pub struct PairingStarted {
    pub session: Session,
    /// To show on the initiating device and type on the approving one.
    pub pin: String,
    /// For the initiator's cancel.
    pub polling_token: String,
    /// Enrollment: what the approving device must present with its new passkey.
    pub ticket_id: Option<String>,
}

/// What an enrollment's approving device presents beside its passkey.
#[derive(Clone, Debug)]
pub struct PinOffer<'a> {
    pub ticket_id: &'a str,
    pub entity_id: &'a str,
    pub context_hash: &'a str,
}

/// The approving device's passkey answer to a pairing, with what an enrollment presents.
#[derive(Clone, Debug)]
pub struct PairingAnswer<'a> {
    pub bridge: BridgeKind,
    pub answer: &'a Answer,
    pub offer: Option<PinOffer<'a>>,
}

/// A pairing completed on the approving device.
#[derive(Debug)]
pub struct Paired {
    pub approved: Approved,
    /// The enrollment's entity id (the user's external id).
    pub entity_id: Option<String>,
}

/// The PIN's digest is salted with its session, so one table of a million digests fits no two sessions.
fn pin_digest(id: &SessionId, pin: &str) -> String {
    secret::digest(&format!("pin {id} {pin}"))
}

/// Whether a context hash has the SDK's shape: 64 lower-case hex digits.
pub fn is_context_hash(text: &str) -> bool {
    text.len() == 64
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

impl Bridge {
    /// Starts a pairing. An enrollment adds a passkey to the person the integrator names, so
    /// only its backend may start one (the API checks the secret key; this holds the line too).
    pub async fn start_pairing(
        &self,
        app: &App,
        start: PairingStart,
    ) -> Result<PairingStarted, BridgeError> {
        let kind = match start.bridge {
            BridgeKind::Auth => Kind::Auth,
            BridgeKind::Enrollment => {
                if start.started_by != StartedBy::Backend || start.entity_id.is_none() {
                    return Err(BridgeError::EnrollmentNeedsBackend);
                }
                Kind::Registration
            }
        };
        let pin = secret::pin(PIN_DIGITS);
        let ticket_id = (start.bridge == BridgeKind::Enrollment).then(|| secret::generate("tkt_"));
        let cross = Start {
            kind,
            approval_context: start.approval_context,
            external_user_id: start.entity_id,
            started_by: start.started_by,
            requester: start.requester,
        };
        let started = self
            .create(app, cross, |id| {
                let mut pairing = Pairing::new(start.bridge, pin_digest(id, &pin));
                pairing.ticket_sha256 = ticket_id.as_deref().map(secret::digest);
                pairing.context_hash = start.context_hash;
                Some(pairing)
            })
            .await?;
        Ok(PairingStarted {
            session: started.session,
            pin,
            polling_token: started.polling_token,
            ticket_id,
        })
    }

    /// What the approving device shows before the PIN: the app and its message. Nothing is
    /// handed out and nothing changes; a session that can no longer be opened says why.
    pub async fn pairing_context(
        &self,
        app: &App,
        id: &SessionId,
        bridge: BridgeKind,
    ) -> Result<Session, BridgeError> {
        let loaded = self.store.load(id).await?.ok_or(BridgeError::NotFound)?;
        belongs(&loaded.session, app, Flow::Pin(bridge))?;
        if loaded.session.is_locked() {
            return Err(BridgeError::PinLocked);
        }
        loaded.session.accepts(EventKind::Scan, loaded.now)?;
        Ok(loaded.session)
    }

    /// The approving device `by` offers the PIN. Right, it claims the session and gets the
    /// challenge; wrong, the failure is stored with the session (the last allowed one locks it)
    /// in the same compare-and-set, so concurrent guesses are all counted.
    pub async fn verify_pin(
        &self,
        app: &App,
        id: &SessionId,
        bridge: BridgeKind,
        pin: &str,
        by: &str,
    ) -> Result<Opened, BridgeError> {
        let offered = pin_digest(id, pin);
        let mut check = None;
        let session = self
            .update(id, |s, now| {
                belongs(s, app, Flow::Pin(bridge))?;
                if s.is_locked() {
                    return Err(BridgeError::PinLocked);
                }
                // Another device already proved the PIN: this one is refused without a count.
                s.check_claim(by)?;
                let outcome = s.offer_pin(|stored| secret::digests_match(&offered, stored), now)?;
                if outcome == PinCheck::Verified {
                    s.claim(by)?;
                }
                check = Some(outcome);
                Ok(crate::session::Applied::Changed)
            })
            .await?;
        match check {
            Some(PinCheck::Verified) => self.ceremony_for(app, session).await,
            Some(PinCheck::Wrong { remaining }) => Err(BridgeError::PinMismatch { remaining }),
            Some(PinCheck::Locked) => Err(BridgeError::PinLocked),
            None => Err(BridgeError::Contended),
        }
    }

    /// The approving device's passkey answer: completes the session and returns the token to
    /// it. An enrollment must also present its ticket, entity and (when bound) context hash,
    /// all checked before the challenge is spent.
    pub async fn complete_pairing(
        &self,
        app: &App,
        id: &SessionId,
        PairingAnswer {
            bridge,
            answer,
            offer,
        }: PairingAnswer<'_>,
        by: &str,
        from: &Requester,
    ) -> Result<Paired, BridgeError> {
        let loaded = self.store.load(id).await?.ok_or(BridgeError::NotFound)?;
        belongs(&loaded.session, app, Flow::Pin(bridge))?;
        if loaded.session.is_locked() {
            return Err(BridgeError::PinLocked);
        }
        // Who may answer, and whether anything can be answered, before the ticket: a stranger
        // learns nothing of it.
        loaded.session.check_claim(by)?;
        loaded.session.accepts(EventKind::Complete, loaded.now)?;
        let pairing = loaded.session.pairing().ok_or(BridgeError::NotFound)?;
        if bridge == BridgeKind::Enrollment {
            let offer = offer.ok_or(BridgeError::TicketMismatch)?;
            let ticket_right = pairing
                .ticket_sha256
                .as_deref()
                .is_some_and(|t| secret::matches(offer.ticket_id, t));
            if !ticket_right || loaded.session.external_user_id.as_deref() != Some(offer.entity_id)
            {
                return Err(BridgeError::TicketMismatch);
            }
            if pairing
                .context_hash
                .as_deref()
                .is_some_and(|bound| bound != offer.context_hash)
            {
                return Err(BridgeError::ContextMismatch);
            }
        }
        let approved = self
            .answer_in(Flow::Pin(bridge), app, id, answer, by, from)
            .await?;
        Ok(Paired {
            approved,
            entity_id: loaded.session.external_user_id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_digest_belongs_to_its_session() {
        let a = SessionId::from_uuid(uuid::Uuid::new_v4());
        let b = SessionId::from_uuid(uuid::Uuid::new_v4());
        assert_eq!(pin_digest(&a, "123456"), pin_digest(&a, "123456"));
        assert_ne!(pin_digest(&a, "123456"), pin_digest(&b, "123456"));
        assert_ne!(pin_digest(&a, "123456"), pin_digest(&a, "123457"));
    }

    #[test]
    fn context_hashes_are_the_sdks_shape() {
        assert!(is_context_hash(&"ab12".repeat(16)));
        assert!(!is_context_hash(&"AB12".repeat(16)));
        assert!(!is_context_hash("ab12"));
    }
}
