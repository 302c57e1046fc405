//! The PIN bridge's pairing: which bridge a session belongs to, its PIN as a digest, the wrong PINs offered so far, and what an enrollment's approving device must show.
//!
//! A pairing session runs on the same machine as a cross-device one. Its PIN stands in front of
//! `Scan`: only a right PIN opens the session (and hands out a challenge), and the
//! [`MAX_PIN_FAILURES`]th wrong one locks it, which is `Deny`: final, so nothing opens it again.
//! The comparison itself is the caller's (constant time, over digests), so this stays pure.

use serde::{Deserialize, Serialize};

use super::{Event, EventKind, Session, State, Timestamp, TransitionError};

/// Wrong PINs a session takes: the fifth locks it. With six digits, a guesser's chance per
/// session is 5 in a million.
pub const MAX_PIN_FAILURES: u8 = 5;

/// The PIN bridge a session belongs to: its routes are `/v1/auth-bridge/…` or `/v1/enrollment-bridge/…`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BridgeKind {
    Auth,
    Enrollment,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pairing {
    pub bridge: BridgeKind,
    /// A digest of the PIN (see the bridge's `pin_digest`): the PIN itself is never kept.
    pub pin_sha256: String,
    #[serde(default)]
    failures: u8,
    /// Enrollment only: a digest of the ticket the backend was given, which the approving
    /// device must present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_sha256: Option<String>,
    /// Enrollment only, when the backend bound the ticket to one browser: that browser's
    /// context hash (the SDK's `getContextHash()`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_hash: Option<String>,
}

/// What a PIN offered to a session came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinCheck {
    /// Right: the session is open (`Scanned`), as a phone's scan opens a cross-device one.
    Verified,
    /// Wrong, counted; this many more wrong PINs lock the session.
    Wrong { remaining: u8 },
    /// Wrong, and that was the last one allowed: the session is locked for good.
    Locked,
}

impl Pairing {
    pub fn new(bridge: BridgeKind, pin_sha256: String) -> Self {
        Pairing {
            bridge,
            pin_sha256,
            failures: 0,
            ticket_sha256: None,
            context_hash: None,
        }
    }

    pub fn failures(&self) -> u8 {
        self.failures
    }
}

impl Session {
    /// Makes a new session a pairing one (before it is first stored).
    pub fn paired(mut self, pairing: Pairing) -> Self {
        self.pairing = Some(pairing);
        self
    }

    pub fn pairing(&self) -> Option<&Pairing> {
        self.pairing.as_ref()
    }

    /// Whether the session is locked by wrong PINs (a pairing session's only way to `Denied`).
    pub fn is_locked(&self) -> bool {
        self.pairing.is_some() && self.state == State::Denied
    }

    /// A PIN was offered at `now`; `is_right` compares it with the stored digest. A session that
    /// cannot be opened any more (expired, locked, completed) refuses before the PIN is looked
    /// at, so a dead session counts nothing. Every outcome but a refusal changes the session.
    pub fn offer_pin(
        &mut self,
        is_right: impl FnOnce(&str) -> bool,
        now: Timestamp,
    ) -> Result<PinCheck, TransitionError> {
        self.accepts(EventKind::Scan, now)?;
        let Some(pairing) = self.pairing.as_mut() else {
            return Err(TransitionError::NotAllowed {
                state: self.state_at(now),
                event: EventKind::Scan,
            });
        };
        if is_right(&pairing.pin_sha256) {
            self.apply(Event::Scan, now)?;
            return Ok(PinCheck::Verified);
        }
        pairing.failures = pairing.failures.saturating_add(1);
        let remaining = MAX_PIN_FAILURES.saturating_sub(pairing.failures);
        if remaining > 0 {
            return Ok(PinCheck::Wrong { remaining });
        }
        // The table allows Deny from Pending and Scanned, the only states that got here.
        self.apply(Event::Deny, now)?;
        Ok(PinCheck::Locked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::tests::{T0, TTL, fresh};
    use crate::session::{Completion, SessionToken, UserId};

    const RIGHT: &str = "digest-of-the-right-pin";

    fn paired() -> Session {
        fresh().paired(Pairing::new(BridgeKind::Auth, RIGHT.into()))
    }

    fn offer(s: &mut Session, pin: &str, now: Timestamp) -> Result<PinCheck, TransitionError> {
        s.offer_pin(|stored| stored == pin, now)
    }

    #[test]
    fn the_right_pin_opens_the_session_like_a_scan() {
        let mut s = paired();
        assert_eq!(offer(&mut s, RIGHT, T0), Ok(PinCheck::Verified));
        assert_eq!(s.state_at(T0), State::Scanned);
        assert_eq!(s.scanned_at(), Some(T0));
        // Offered again (a reload), it opens again: a fresh challenge.
        assert_eq!(offer(&mut s, RIGHT, T0), Ok(PinCheck::Verified));
    }

    #[test]
    fn wrong_pins_count_down_and_the_fifth_locks_for_good() {
        let mut s = paired();
        for remaining in (1..MAX_PIN_FAILURES).rev() {
            assert_eq!(offer(&mut s, "0000", T0), Ok(PinCheck::Wrong { remaining }));
            assert_eq!(s.state_at(T0), State::Pending);
        }
        assert_eq!(offer(&mut s, "0000", T0), Ok(PinCheck::Locked));
        assert!(s.is_locked());
        let locked = s.clone();
        // Not even the right PIN opens it now, and nothing more is counted.
        assert!(offer(&mut s, RIGHT, T0).is_err());
        assert_eq!(s, locked);
        assert!(
            s.apply(
                Event::Complete(Completion {
                    user_id: UserId::new("usr_a"),
                    session_token: SessionToken::new("t"),
                }),
                T0
            )
            .is_err()
        );
    }

    #[test]
    fn a_right_pin_does_not_forgive_earlier_wrong_ones() {
        let mut s = paired();
        for _ in 0..MAX_PIN_FAILURES - 1 {
            offer(&mut s, "1", T0).unwrap();
        }
        assert_eq!(offer(&mut s, RIGHT, T0), Ok(PinCheck::Verified));
        assert_eq!(offer(&mut s, "1", T0), Ok(PinCheck::Locked));
    }

    #[test]
    fn a_dead_session_refuses_before_counting() {
        let mut s = paired();
        let late = T0.plus(TTL);
        let before = s.clone();
        assert_eq!(offer(&mut s, "1", late), Err(TransitionError::Expired));
        assert_eq!(offer(&mut s, RIGHT, late), Err(TransitionError::Expired));
        assert_eq!(s, before);
        let mut cancelled = paired();
        cancelled.apply(Event::Cancel, T0).unwrap();
        let before = cancelled.clone();
        assert!(offer(&mut cancelled, "1", T0).is_err());
        assert_eq!(cancelled, before);
    }

    #[test]
    fn a_session_without_a_pin_takes_none() {
        let mut s = paired();
        s.pairing = None;
        assert!(offer(&mut s, RIGHT, T0).is_err());
        assert_eq!(s.state_at(T0), State::Pending);
    }
}
