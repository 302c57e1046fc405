//! The cross-device session: its six states and the only transitions between them (pure; time comes in as a value).
//!
//! Longer than 400 lines only with its tests: every state with every event, before and after
//! expiry, and random sequences.
//!
//! # States
//!
//! | state           | meaning                                                                  | final |
//! |-----------------|--------------------------------------------------------------------------|-------|
//! | `Pending`       | created by the desktop, nobody has opened the QR yet                     | no    |
//! | `Scanned`       | the phone opened the approval page and was given a WebAuthn challenge     | no    |
//! | `Completed`     | a session token was issued                                               | yes   |
//! | `Denied`        | the phone declined                                                       | yes   |
//! | `Cancelled`     | the desktop gave up                                                      | yes   |
//! | `Expired`       | `expires_at` passed before the session reached another final state       | yes   |
//!
//! # Transitions
//!
//! Before `expires_at`:
//!
//! | from \ event | `Scan`    | `Complete`  | `Deny`      | `Cancel`     |
//! |--------------|-----------|-------------|-------------|--------------|
//! | `Pending`    | `Scanned` | refused     | `Denied`    | `Cancelled`  |
//! | `Scanned`    | `Scanned` | `Completed` | `Denied`    | `Cancelled`  |
//! | `Completed`  | refused   | refused     | refused     | refused      |
//! | `Denied`     | refused   | refused     | unchanged   | refused      |
//! | `Cancelled`  | refused   | refused     | refused     | unchanged    |
//!
//! - `Scanned` + `Scan` is allowed so that a phone that reloads the page gets a fresh challenge.
//! - "unchanged" makes `Deny` and `Cancel` idempotent: a repeat succeeds and nothing is written.
//! - From `expires_at` on, a session that is not final *is* `Expired`: no event moves it there and
//!   every event on it is refused with [`TransitionError::Expired`]. Final states stay as they are,
//!   so a completion or a denial is never rewritten as an expiry.
//! - Every other pair is refused with [`TransitionError::NotAllowed`], and a refused event leaves
//!   the session exactly as it was.
//! - The SDK also knows an `authenticated` status (verified, the desktop still to act). Nothing
//!   here has such a step, so the machine has no such state: a verified passkey completes the
//!   session in one write, and [`Session::accepts`] is the whole decision [`Session::apply`] makes.

mod context;
mod id;
mod matching;
mod pairing;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use context::{ApprovalContext, InvalidApprovalContext};
pub use id::{
    InvalidExternalUserId, InvalidSessionId, SessionId, SessionToken, Timestamp, UserId,
    parse_external_user_id,
};
pub use matching::{NumberMatch, PickError, Picked};
pub use pairing::{BridgeKind, MAX_PIN_FAILURES, Pairing, PinCheck};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Scanned,
    Completed,
    Denied,
    Cancelled,
    Expired,
}

impl State {
    pub const ALL: [State; 6] = [
        State::Pending,
        State::Scanned,
        State::Completed,
        State::Denied,
        State::Cancelled,
        State::Expired,
    ];

    pub fn is_final(self) -> bool {
        matches!(
            self,
            State::Completed | State::Denied | State::Cancelled | State::Expired
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Scanned => "scanned",
            State::Completed => "completed",
            State::Denied => "denied",
            State::Cancelled => "cancelled",
            State::Expired => "expired",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the phone is asked to do: sign in with a passkey, or create one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Auth,
    Registration,
}

/// What the desktop receives when the session completes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    pub user_id: UserId,
    pub session_token: SessionToken,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The phone opened the approval page and was handed a challenge.
    Scan,
    /// A session token was issued for this user.
    Complete(Completion),
    /// The phone declined.
    Deny,
    /// The desktop gave up.
    Cancel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Scan,
    Complete,
    Deny,
    Cancel,
}

impl Event {
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Scan => EventKind::Scan,
            Event::Complete(_) => EventKind::Complete,
            Event::Deny => EventKind::Deny,
            Event::Cancel => EventKind::Cancel,
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EventKind::Scan => "scan",
            EventKind::Complete => "complete",
            EventKind::Deny => "deny",
            EventKind::Cancel => "cancel",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("the session has expired")]
    Expired,
    #[error("cannot {event} a session that is {state}")]
    NotAllowed { state: State, event: EventKind },
    /// The app asks for number matching and the phone has not picked the desktop's number.
    #[error("pick the number the desktop shows before answering with a passkey")]
    NumberNotPicked,
}

/// Whether an accepted event changed the session (and so must be stored) or was already in effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    Changed,
    Unchanged,
}

/// Who started a session, which decides what a registration may do (see the README's security model).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartedBy {
    /// A browser with the app's publishable key: anyone can be that, so it may only ever create a
    /// new account, never add a passkey to an existing one. Sessions stored without the field are
    /// read as this, the less trusted of the two.
    #[default]
    Browser,
    /// The app's backend with its secret key: it speaks for its users, so its registration may add
    /// a passkey to the user it names.
    Backend,
}

/// Everything the desktop decides when it starts a session.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub id: SessionId,
    pub app_id: String,
    pub kind: Kind,
    /// SHA-256 of the polling token, hex: the token itself is never kept.
    pub polling_token_sha256: String,
    pub approval_context: Option<ApprovalContext>,
    pub external_user_id: Option<String>,
    pub started_by: StartedBy,
    pub requester: Requester,
}

/// Who started a session, captured when it was created, so the phone can show who is asking.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl Requester {
    /// Keeps at most 300 characters of the user agent, without control characters: enough to
    /// name a browser and system, too little to fill the store.
    pub fn new(user_agent: Option<&str>, address: Option<String>) -> Self {
        let user_agent = user_agent
            .map(|ua| {
                ua.chars()
                    .filter(|c| !c.is_control())
                    .take(300)
                    .collect::<String>()
            })
            .filter(|ua| !ua.trim().is_empty());
        Requester {
            user_agent,
            address,
        }
    }
}

/// Why a phone may not act on a session.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClaimedElsewhere {
    #[error("this request is open on another device")]
    ByAnother,
    /// Only the phone that opened a request has seen it, so only it may decline it.
    #[error("open the request on the phone before declining it")]
    NotOpened,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: SessionId,
    pub app_id: String,
    pub kind: Kind,
    state: State,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub polling_token_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_context: Option<ApprovalContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_user_id: Option<String>,
    /// Set by `Complete`, with the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_id: Option<UserId>,
    /// Set by `Complete`, and only by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session_token: Option<SessionToken>,
    #[serde(default)]
    pub started_by: StartedBy,
    #[serde(default)]
    pub requester: Requester,
    /// A digest naming the browser that first opened the approval page (see [`Session::claim`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claimed_by: Option<String>,
    /// When a phone first opened it (`Scan`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scanned_at: Option<Timestamp>,
    /// Set on a PIN bridge's session (see `pairing`), and only there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pairing: Option<Pairing>,
    /// Set when a phone opens a session of an app with `confirm_code` (see `matching`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    number_match: Option<NumberMatch>,
}

impl Session {
    pub fn new(new: NewSession, now: Timestamp, ttl: Duration) -> Self {
        Self {
            id: new.id,
            app_id: new.app_id,
            kind: new.kind,
            state: State::Pending,
            created_at: now,
            expires_at: now.plus(ttl),
            polling_token_sha256: new.polling_token_sha256,
            approval_context: new.approval_context,
            external_user_id: new.external_user_id,
            started_by: new.started_by,
            user_id: None,
            session_token: None,
            requester: new.requester,
            claimed_by: None,
            scanned_at: None,
            pairing: None,
            number_match: None,
        }
    }

    /// The first phone to open the approval page claims the session, and from then on only it
    /// may act on it (RFC 8628 §5.5: a watcher cannot approve what someone else scanned). `by`
    /// names that phone: a secret of its browser session on the hosted page, its network for
    /// the API (what the SDK's calls carry).
    pub fn claim(&mut self, by: &str) -> Result<(), ClaimedElsewhere> {
        self.check_claim(by)?;
        if self.claimed_by.is_none() {
            self.claimed_by = Some(by.to_owned());
        }
        Ok(())
    }

    /// Whether `by` may act on this session, without claiming it.
    pub fn check_claim(&self, by: &str) -> Result<(), ClaimedElsewhere> {
        match self.claimed_by.as_deref() {
            Some(owner) if owner != by => Err(ClaimedElsewhere::ByAnother),
            _ => Ok(()),
        }
    }

    /// Whether `by` is the phone that opened this session: what declining needs, so that knowing
    /// a session id is not enough to stop someone else's sign-in.
    pub fn check_opened_by(&self, by: &str) -> Result<(), ClaimedElsewhere> {
        match self.claimed_by.as_deref() {
            None => Err(ClaimedElsewhere::NotOpened),
            Some(owner) if owner != by => Err(ClaimedElsewhere::ByAnother),
            Some(_) => Ok(()),
        }
    }

    /// The state as seen at `now`: a session that is not final is `Expired` from `expires_at` on.
    pub fn state_at(&self, now: Timestamp) -> State {
        if !self.state.is_final() && now >= self.expires_at {
            State::Expired
        } else {
            self.state
        }
    }

    /// When a phone first opened the session, if one did.
    pub fn scanned_at(&self) -> Option<Timestamp> {
        self.scanned_at
    }

    pub fn user_id(&self) -> Option<&UserId> {
        self.user_id.as_ref()
    }

    /// Present exactly when the session is `Completed`.
    pub fn completion(&self) -> Option<Completion> {
        Some(Completion {
            user_id: self.user_id.clone()?,
            session_token: self.session_token.clone()?,
        })
    }

    /// Whether an event of this kind would be accepted at `now`, without applying it: lets a
    /// caller refuse early, before spending a challenge. `Ok(None)` means "accepted, nothing
    /// changes". Answered from the same table as [`Session::apply`].
    pub fn accepts(
        &self,
        event: EventKind,
        now: Timestamp,
    ) -> Result<Option<State>, TransitionError> {
        use EventKind as E;
        use State::*;
        Ok(Some(match (self.state_at(now), event) {
            (Denied, E::Deny) | (Cancelled, E::Cancel) => return Ok(None),
            (Expired, _) => return Err(TransitionError::Expired),
            (Pending | Scanned, E::Scan) => Scanned,
            (Scanned, E::Complete) if self.awaits_number() => {
                return Err(TransitionError::NumberNotPicked);
            }
            (Scanned, E::Complete) => Completed,
            (Pending | Scanned, E::Deny) => Denied,
            (Pending | Scanned, E::Cancel) => Cancelled,
            (state, event) => return Err(TransitionError::NotAllowed { state, event }),
        }))
    }

    /// Applies `event` at `now` following the table in the module documentation: the decision is
    /// [`Session::accepts`]'s alone, so a caller that asked first is never surprised here.
    pub fn apply(&mut self, event: Event, now: Timestamp) -> Result<Applied, TransitionError> {
        let Some(next) = self.accepts(event.kind(), now)? else {
            return Ok(Applied::Unchanged);
        };
        match event {
            Event::Complete(done) => {
                self.user_id = Some(done.user_id);
                self.session_token = Some(done.session_token);
            }
            Event::Scan => {
                self.scanned_at.get_or_insert(now);
            }
            Event::Deny | Event::Cancel => {}
        }
        self.state = next;
        Ok(Applied::Changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(super) const TTL: Duration = Duration::from_secs(300);
    pub(super) const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    fn before_expiry() -> Timestamp {
        T0.plus(TTL - Duration::from_millis(1))
    }

    fn at_expiry() -> Timestamp {
        T0.plus(TTL)
    }

    /// A pending sign-in session made at `T0`, for this module's tests and its submodules'.
    pub(super) fn fresh() -> Session {
        Session::new(
            NewSession {
                id: SessionId::parse("7f0c2a4e-9b1d-4c3a-8e2f-5a6b7c8d9e0f").unwrap(),
                app_id: "app_test".into(),
                kind: Kind::Auth,
                polling_token_sha256: "00".repeat(32),
                approval_context: None,
                external_user_id: None,
                started_by: StartedBy::Browser,
                requester: Requester::default(),
            },
            T0,
            TTL,
        )
    }

    fn alice() -> UserId {
        UserId::new("usr_alice")
    }

    fn completion(user: UserId) -> Completion {
        Completion {
            user_id: user,
            session_token: SessionToken::new("tok"),
        }
    }

    fn events() -> [Event; 4] {
        [
            Event::Scan,
            Event::Complete(completion(alice())),
            Event::Deny,
            Event::Cancel,
        ]
    }

    #[test]
    fn the_first_scan_is_remembered_for_the_time_to_approve() {
        let mut s = fresh();
        assert_eq!(s.scanned_at(), None);
        let first = T0.plus(Duration::from_secs(4));
        s.apply(Event::Scan, first).unwrap();
        s.apply(Event::Scan, first.plus(Duration::from_secs(9)))
            .unwrap();
        assert_eq!(
            s.scanned_at(),
            Some(first),
            "a reopened page keeps the first scan"
        );
    }

    /// A session in `state`, reached through the machine itself (Expired by letting time pass).
    fn session_in(state: State) -> (Session, Timestamp) {
        let mut s = fresh();
        let t = T0;
        let path: &[Event] = match state {
            State::Pending | State::Expired => &[],
            State::Scanned => &[Event::Scan],
            State::Completed => &[Event::Scan, Event::Complete(completion(alice()))],
            State::Denied => &[Event::Deny],
            State::Cancelled => &[Event::Cancel],
        };
        for e in path {
            s.apply(e.clone(), t).unwrap();
        }
        if state == State::Expired {
            return (s, at_expiry());
        }
        assert_eq!(s.state_at(t), state);
        (s, t)
    }

    #[derive(Debug, PartialEq)]
    enum Expect {
        To(State),
        Unchanged,
        Refused,
        TooLate,
    }

    /// The table of the module documentation, before expiry.
    fn expected(from: State, event: EventKind) -> Expect {
        use EventKind as E;
        use Expect::*;
        use State::*;
        match (from, event) {
            (Expired, _) => TooLate,
            (Pending, E::Scan) => To(Scanned),
            (Pending, E::Deny) => To(Denied),
            (Pending, E::Cancel) => To(Cancelled),
            (Scanned, E::Scan) => To(Scanned),
            (Scanned, E::Complete) => To(Completed),
            (Scanned, E::Deny) => To(Denied),
            (Scanned, E::Cancel) => To(Cancelled),
            (Denied, E::Deny) | (Cancelled, E::Cancel) => Unchanged,
            _ => Refused,
        }
    }

    fn check(from: State, mut session: Session, event: Event, now: Timestamp, want: Expect) {
        let before = session.clone();
        let kind = event.kind();
        let got = session.apply(event, now);
        match want {
            Expect::To(to) => {
                assert_eq!(got, Ok(Applied::Changed), "{from} + {kind}");
                assert_eq!(session.state_at(now), to, "{from} + {kind}");
            }
            Expect::Unchanged => {
                assert_eq!(got, Ok(Applied::Unchanged), "{from} + {kind}");
                assert_eq!(session, before, "{from} + {kind} must not change anything");
            }
            Expect::Refused => {
                assert_eq!(
                    got,
                    Err(TransitionError::NotAllowed {
                        state: from,
                        event: kind
                    }),
                    "{from} + {kind}"
                );
                assert_eq!(
                    session, before,
                    "{from} + {kind} must leave the session as it was"
                );
            }
            Expect::TooLate => {
                assert_eq!(got, Err(TransitionError::Expired), "{from} + {kind}");
                assert_eq!(
                    session, before,
                    "{from} + {kind} must leave the session as it was"
                );
            }
        }
    }

    #[test]
    fn every_state_and_event_before_expiry() {
        for from in State::ALL {
            for event in events() {
                let (session, now) = session_in(from);
                let want = expected(from, event.kind());
                check(from, session, event, now, want);
            }
        }
    }

    #[test]
    fn every_state_and_event_from_expiry_on() {
        for from in State::ALL {
            for event in events() {
                let (session, _) = session_in(from);
                let want = if from.is_final() {
                    expected(from, event.kind())
                } else {
                    Expect::TooLate
                };
                let shown = session.state_at(at_expiry());
                assert_eq!(
                    shown,
                    if from.is_final() {
                        from
                    } else {
                        State::Expired
                    }
                );
                check(shown, session, event, at_expiry(), want);
            }
        }
    }

    #[test]
    fn the_first_phone_claims_the_session() {
        let mut s = fresh();
        assert_eq!(
            s.check_claim("phone-a"),
            Ok(()),
            "anyone may open an unclaimed session"
        );
        assert_eq!(
            s.check_opened_by("phone-a"),
            Err(ClaimedElsewhere::NotOpened),
            "but nobody may decline what nobody opened"
        );
        assert_eq!(s.claim("phone-a"), Ok(()));
        assert_eq!(s.claim("phone-a"), Ok(()), "a reload is the same phone");
        assert_eq!(s.claim("phone-b"), Err(ClaimedElsewhere::ByAnother));
        assert_eq!(s.check_claim("phone-b"), Err(ClaimedElsewhere::ByAnother));
        assert_eq!(
            s.check_opened_by("phone-b"),
            Err(ClaimedElsewhere::ByAnother)
        );
        assert_eq!(s.check_claim("phone-a"), Ok(()));
        assert_eq!(s.check_opened_by("phone-a"), Ok(()));
    }

    #[test]
    fn accepts_predicts_apply_for_every_pair() {
        for from in State::ALL {
            for event in events() {
                for late in [false, true] {
                    let (session, t) = session_in(from);
                    let now = if late { at_expiry() } else { t };
                    let predicted = session.accepts(event.kind(), now);
                    let mut applied = session.clone();
                    let got = applied.apply(event.clone(), now);
                    match predicted {
                        Ok(Some(to)) => {
                            assert_eq!(got, Ok(Applied::Changed), "{from} {event:?} late={late}");
                            assert_eq!(applied.state_at(now), to);
                        }
                        Ok(None) => {
                            assert_eq!(got, Ok(Applied::Unchanged), "{from} {event:?} late={late}")
                        }
                        Err(e) => assert_eq!(got, Err(e), "{from} {event:?} late={late}"),
                    }
                }
            }
        }
    }

    #[test]
    fn expiry_is_judged_at_the_millisecond() {
        let s = fresh();
        assert_eq!(s.state_at(before_expiry()), State::Pending);
        assert_eq!(s.state_at(at_expiry()), State::Expired);
        let mut s = fresh();
        assert_eq!(
            s.apply(Event::Cancel, before_expiry()),
            Ok(Applied::Changed)
        );
        assert_eq!(s.state_at(at_expiry().plus(TTL)), State::Cancelled);
    }

    #[test]
    fn only_a_completed_session_carries_a_token() {
        for state in State::ALL {
            let (s, now) = session_in(state);
            assert_eq!(
                s.completion().is_some(),
                s.state_at(now) == State::Completed,
                "{state}"
            );
        }
    }

    #[test]
    fn stored_form_round_trips() {
        let (s, _) = session_in(State::Completed);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Session>(&json).unwrap(), s);
    }

    fn allowed_edge(from: State, to: State) -> bool {
        use State::*;
        matches!(
            (from, to),
            (Pending, Scanned)
                | (Scanned, Scanned)
                | (Scanned, Completed)
                | (Pending | Scanned, Denied | Cancelled | Expired)
        ) || from == to
    }

    fn any_event() -> impl Strategy<Value = Event> {
        let user = prop_oneof![Just(alice()), Just(UserId::new("usr_bob"))];
        prop_oneof![
            Just(Event::Scan),
            user.prop_map(|u| Event::Complete(completion(u))),
            Just(Event::Deny),
            Just(Event::Cancel),
        ]
    }

    proptest! {
        #[test]
        fn random_event_sequences_keep_the_invariants(
            steps in prop::collection::vec((any_event(), 0u64..120_000), 0..40)
        ) {
            let mut s = fresh();
            let mut now = T0;
            let mut seen = s.state_at(now);
            let mut finished: Option<State> = None;
            for (event, dt) in steps {
                now = now.plus(Duration::from_millis(dt));
                let before = s.clone();
                let result = s.apply(event, now);
                let state = s.state_at(now);
                if result.is_err() {
                    prop_assert_eq!(&s, &before);
                }
                prop_assert!(allowed_edge(seen, state), "{} -> {}", seen, state);
                if let Some(f) = finished {
                    prop_assert_eq!(state, f, "a final state never changes");
                }
                if now >= s.expires_at && !before.state_at(now).is_final() {
                    prop_assert_eq!(result, Err(TransitionError::Expired));
                }
                prop_assert_eq!(s.completion().is_some(), state == State::Completed);
                if state.is_final() {
                    finished = Some(state);
                }
                seen = state;
            }
        }
    }
}
