//! The clocks: the embedded side's (wall time, or a hand the tests turn) and Redis's clock carried between readings.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::session::Timestamp;

/// Wall time by default. Redis keeps its own clock (`TIME`), so this one only runs the embedded
/// store and the in-process rate-limit windows: a test turns it to cross an expiry or a window
/// in no time, and every part reading it agrees on the moment.
#[derive(Clone, Debug, Default)]
pub struct Clock(Option<Arc<Hand>>);

#[derive(Debug)]
struct Hand {
    /// Where a clock that stands still stands; `None` runs with wall time.
    start: Option<u64>,
    /// How far it was turned, in milliseconds.
    turned: AtomicU64,
    /// When it was made, for [`Clock::instant`] of a clock that stands still.
    made: Instant,
}

impl Hand {
    fn new(start: Option<u64>) -> Self {
        Hand {
            start,
            turned: AtomicU64::new(0),
            made: Instant::now(),
        }
    }

    fn turned(&self) -> Duration {
        Duration::from_millis(self.turned.load(Ordering::SeqCst))
    }
}

/// `2026-05-01T12:05:00.123Z`
pub fn iso8601(at: Timestamp) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(at.as_millis())).to_string()
}

fn wall_ms() -> u64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    u64::try_from(ms).unwrap_or(u64::MAX)
}

impl Clock {
    pub fn system() -> Self {
        Clock(None)
    }

    /// Wall time, plus however far it was turned: time still passes, and a test may skip ahead.
    pub fn turnable() -> Self {
        Clock(Some(Arc::new(Hand::new(None))))
    }

    /// A clock that stands at `start` until turned.
    pub fn by_hand(start: Timestamp) -> Self {
        Clock(Some(Arc::new(Hand::new(Some(start.as_millis())))))
    }

    pub fn now(&self) -> Timestamp {
        let (start, turned) = match &self.0 {
            Some(hand) => (
                hand.start.unwrap_or_else(wall_ms),
                hand.turned.load(Ordering::SeqCst),
            ),
            None => (wall_ms(), 0),
        };
        Timestamp::from_millis(start.saturating_add(turned))
    }

    /// The same clock as an `Instant`: what a window that must not follow the wall clock (set
    /// back or forward by hand or by NTP) measures with; turning moves it too.
    pub fn instant(&self) -> Instant {
        match &self.0 {
            None => Instant::now(),
            Some(hand) if hand.start.is_some() => hand.made + hand.turned(),
            Some(hand) => Instant::now() + hand.turned(),
        }
    }

    /// Moves the clock on; returns whether it could (wall time cannot be turned).
    pub fn turn(&self, by: Duration) -> bool {
        match &self.0 {
            Some(hand) => {
                let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
                hand.turned.fetch_add(ms, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }
}

/// Another machine's clock, read now and then and carried on in between by this one's monotonic
/// clock: Redis's `TIME` costs a round trip, and a session's start needs the time before the
/// script that saves it can run. A reading is trusted for [`Carried::FOR`]; the error is at most
/// the reading's round trip plus this machine's drift over that second, and scripts that decide
/// expiry still read `TIME` themselves. What it tells never goes backwards.
#[derive(Debug, Default)]
pub struct Carried(std::sync::Mutex<CarriedState>);

#[derive(Debug, Default)]
struct CarriedState {
    reading: Option<(Instant, Timestamp)>,
    told: u64,
}

impl Carried {
    pub const FOR: Duration = Duration::from_secs(1);

    /// The time at `at` carried on from a reading younger than [`Carried::FOR`], if there is one.
    pub fn at(&self, at: Instant) -> Option<Timestamp> {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (read_at, read) = state.reading?;
        let since = at.checked_duration_since(read_at)?;
        if since >= Self::FOR {
            return None;
        }
        let ms = read.as_millis() + u64::try_from(since.as_millis()).unwrap_or(u64::MAX);
        state.told = state.told.max(ms);
        Some(Timestamp::from_millis(state.told))
    }

    /// A fresh reading, taken at `at`; returns what to tell for it.
    pub fn read(&self, at: Instant, time: Timestamp) -> Timestamp {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        state.reading = Some((at, time));
        state.told = state.told.max(time.as_millis());
        Timestamp::from_millis(state.told)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_carried_clock_runs_on_from_its_reading_for_a_second_and_never_backwards() {
        let clock = Carried::default();
        let t0 = Instant::now();
        assert_eq!(clock.at(t0), None, "nothing read yet");
        assert_eq!(
            clock.read(t0, Timestamp::from_millis(50_000)),
            Timestamp::from_millis(50_000)
        );
        let later = t0 + Duration::from_millis(250);
        assert_eq!(clock.at(later), Some(Timestamp::from_millis(50_250)));
        assert_eq!(clock.at(t0 + Carried::FOR), None, "too old: read again");
        // A reading behind what was already told (the last one's round trip was slow).
        assert_eq!(
            clock.read(later, Timestamp::from_millis(50_100)),
            Timestamp::from_millis(50_250)
        );
        assert_eq!(clock.at(later), Some(Timestamp::from_millis(50_250)));
        assert_eq!(
            clock.at(later + Duration::from_millis(400)),
            Some(Timestamp::from_millis(50_500))
        );
    }

    #[test]
    fn a_hand_clock_moves_only_when_turned() {
        let clock = Clock::by_hand(Timestamp::from_millis(1_000));
        let copy = clock.clone();
        assert_eq!(clock.now(), Timestamp::from_millis(1_000));
        assert!(copy.turn(Duration::from_secs(2)));
        assert_eq!(
            clock.now(),
            Timestamp::from_millis(3_000),
            "clones share the hand"
        );
        assert!(!Clock::system().turn(Duration::from_secs(1)));
        let running = Clock::turnable();
        let before = running.now();
        running.turn(Duration::from_secs(3600));
        assert!(running.now().as_millis() >= before.as_millis() + 3_600_000);
        let still = Clock::by_hand(Timestamp::from_millis(0));
        let at = still.instant();
        still.turn(Duration::from_millis(5));
        assert_eq!(
            still.instant() - at,
            Duration::from_millis(5),
            "the instant turns with it"
        );
    }
}
