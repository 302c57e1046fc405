//! Number matching: the two-digit number the desktop shows once a phone opens the request, which the person must pick among three on the phone before a passkey may answer.
//!
//! It makes a request someone else started hard to approve blind: a link sent by message, or a
//! QR code on a page that is not where the person is signing in, comes with no desktop showing
//! the number. A wrong pick declines the session (`Deny`), so a guesser gets one try in three,
//! once. Which number and which decoys are the caller's (random); this stays pure.

use serde::{Deserialize, Serialize};

use super::{Event, EventKind, Session, State, Timestamp, TransitionError};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberMatch {
    /// What the desktop shows, 10 to 99.
    pub shown: u8,
    /// What the phone offers, the shown one among them.
    pub choices: [u8; 3],
    /// The phone picked the shown number.
    #[serde(default)]
    picked: bool,
}

/// What a pick came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Picked {
    /// The number the desktop shows: a passkey may answer now.
    Right,
    /// Another one: the session is declined.
    Wrong,
}

/// Why a pick was not taken at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PickError {
    /// This session asks for no number: its app leaves number matching off, or no phone opened it.
    #[error("this request asks for no number")]
    NotAsked,
    #[error(transparent)]
    Refused(#[from] TransitionError),
}

impl NumberMatch {
    /// From eight random bytes: the shown number and two distinct decoys, all in 10..=99, in a
    /// random order. The small modulo bias (256 over 90) does not help a guesser, who sees the
    /// three choices anyway.
    pub fn from_random(bytes: [u8; 8]) -> Self {
        let two_digit = |b: u8| 10 + b % 90;
        let shown = two_digit(bytes[0]);
        let mut choices = [shown, 0, 0];
        let mut next = 1;
        for &b in &bytes[1..7] {
            let n = two_digit(b);
            if next < 3 && !choices[..next].contains(&n) {
                choices[next] = n;
                next += 1;
            }
        }
        // Six bytes nearly always give two new numbers; if not, the next free ones do.
        let mut n = shown;
        while next < 3 {
            n = if n == 99 { 10 } else { n + 1 };
            if !choices[..next].contains(&n) {
                choices[next] = n;
                next += 1;
            }
        }
        choices.swap(0, usize::from(bytes[7] % 3));
        NumberMatch {
            shown,
            choices,
            picked: false,
        }
    }

    pub fn is_picked(&self) -> bool {
        self.picked
    }
}

impl Session {
    /// The number this request asks the phone to pick, set when a phone first opens it (a
    /// reload keeps the same one, so reloading is no way to a better guess).
    pub fn ask_number(&mut self, numbers: NumberMatch) {
        self.number_match.get_or_insert(numbers);
    }

    pub fn number_match(&self) -> Option<&NumberMatch> {
        self.number_match.as_ref()
    }

    /// Whether a passkey answer must wait for the phone to pick the number.
    pub fn awaits_number(&self) -> bool {
        self.number_match.as_ref().is_some_and(|m| !m.picked)
    }

    /// The number the desktop shows, while the phone has it to pick.
    pub fn number_to_show(&self, now: Timestamp) -> Option<u8> {
        (self.state_at(now) == State::Scanned && self.awaits_number())
            .then(|| self.number_match.as_ref().map(|m| m.shown))
            .flatten()
    }

    /// The phone picked `n` at `now`. Only an open (`Scanned`) session takes a pick; the right
    /// number again changes nothing, and any wrong one declines the session.
    pub fn pick_number(&mut self, n: u8, now: Timestamp) -> Result<Picked, PickError> {
        let state = self.state_at(now);
        let Some(numbers) = self.number_match.as_mut() else {
            return Err(PickError::NotAsked);
        };
        // Deny's row of the table says whether the session can still be declined at all.
        if state != State::Scanned {
            self.accepts(EventKind::Deny, now)?;
            return Err(TransitionError::NotAllowed {
                state,
                event: EventKind::Complete,
            }
            .into());
        }
        if n == numbers.shown {
            numbers.picked = true;
            return Ok(Picked::Right);
        }
        self.apply(Event::Deny, now)?;
        Ok(Picked::Wrong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::tests::{T0, TTL, fresh};
    use crate::session::{Completion, SessionToken, UserId};

    fn numbers() -> NumberMatch {
        NumberMatch::from_random([41, 7, 7, 200, 3, 9, 1, 5])
    }

    fn scanned() -> Session {
        let mut s = fresh();
        s.apply(Event::Scan, T0).unwrap();
        s.ask_number(numbers());
        s
    }

    fn done() -> Event {
        Event::Complete(Completion {
            user_id: UserId::new("usr_a"),
            session_token: SessionToken::new("tok"),
        })
    }

    #[test]
    fn three_distinct_two_digit_choices_hold_the_shown_one() {
        for seed in 0..=255u8 {
            let bytes = [
                seed,
                seed,
                seed.wrapping_mul(7),
                seed,
                seed ^ 0x55,
                90u8.wrapping_add(seed),
                seed,
                seed,
            ];
            let m = NumberMatch::from_random(bytes);
            assert!((10..=99).contains(&m.shown), "{m:?}");
            assert!(m.choices.contains(&m.shown), "{m:?}");
            assert!(m.choices.iter().all(|c| (10..=99).contains(c)), "{m:?}");
            let [a, b, c] = m.choices;
            assert!(a != b && b != c && a != c, "{m:?}");
        }
        let positions: std::collections::HashSet<usize> = (0..3u8)
            .map(|k| {
                let m = NumberMatch::from_random([50, 1, 2, 3, 4, 5, 6, k]);
                m.choices.iter().position(|&c| c == m.shown).unwrap()
            })
            .collect();
        assert_eq!(positions.len(), 3, "the shown number is not always first");
    }

    #[test]
    fn a_passkey_waits_for_the_right_number() {
        let mut s = scanned();
        assert_eq!(s.number_to_show(T0), Some(s.number_match().unwrap().shown));
        assert!(matches!(
            s.accepts(EventKind::Complete, T0),
            Err(TransitionError::NumberNotPicked)
        ));
        let shown = s.number_match().unwrap().shown;
        assert_eq!(s.pick_number(shown, T0), Ok(Picked::Right));
        assert_eq!(
            s.pick_number(shown, T0),
            Ok(Picked::Right),
            "again: no change"
        );
        assert_eq!(
            s.number_to_show(T0),
            None,
            "the desktop need not show it now"
        );
        s.apply(done(), T0).unwrap();
        assert_eq!(s.state_at(T0), State::Completed);
    }

    #[test]
    fn a_wrong_pick_declines_and_nothing_opens_it_again() {
        let mut s = scanned();
        let shown = s.number_match().unwrap().shown;
        let wrong = *s
            .number_match()
            .unwrap()
            .choices
            .iter()
            .find(|&&c| c != shown)
            .unwrap();
        assert_eq!(s.pick_number(wrong, T0), Ok(Picked::Wrong));
        assert_eq!(s.state_at(T0), State::Denied);
        assert!(s.pick_number(shown, T0).is_err(), "no second try");
        assert!(s.apply(Event::Scan, T0).is_err());
        assert_eq!(s.number_to_show(T0), None);
    }

    #[test]
    fn a_reload_keeps_the_number() {
        let mut s = scanned();
        let first = s.number_match().cloned();
        s.apply(Event::Scan, T0).unwrap();
        s.ask_number(NumberMatch::from_random([1, 2, 3, 4, 5, 6, 7, 8]));
        assert_eq!(s.number_match().cloned(), first);
    }

    #[test]
    fn no_pick_before_a_scan_after_expiry_or_without_numbers() {
        let mut pending = fresh();
        assert_eq!(pending.pick_number(42, T0), Err(PickError::NotAsked));
        pending.ask_number(numbers());
        assert!(matches!(
            pending.pick_number(42, T0),
            Err(PickError::Refused(_))
        ));
        assert_eq!(pending.state_at(T0), State::Pending, "unchanged");

        let mut late = scanned();
        let wrong = 100;
        assert_eq!(
            late.pick_number(wrong, T0.plus(TTL)),
            Err(PickError::Refused(TransitionError::Expired))
        );
        assert_eq!(late.number_to_show(T0.plus(TTL)), None);

        let mut plain = fresh();
        plain.apply(Event::Scan, T0).unwrap();
        assert_eq!(plain.pick_number(42, T0), Err(PickError::NotAsked));
        assert!(!plain.awaits_number());
        plain.apply(done(), T0).unwrap();
    }
}
