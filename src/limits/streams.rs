//! Open status streams per client, per session and per browser, on this instance: each holds a connection and a subscription, so nobody may hold many.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Limited, Limits, network};
use crate::session::SessionId;

/// What a refused stream is told: streams last minutes, so not before a while (whatever the
/// heartbeat is set to).
const COME_BACK: Duration = Duration::from_secs(15);

/// Open streams per key (a session, a browser session), on this instance: each stream holds a
/// connection and a subscription, so nobody may hold many of them for one thing.
#[derive(Default)]
pub struct OpenStreams {
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One open stream's place; given back when the stream ends, however it ends.
pub struct StreamSlot {
    open: Arc<Mutex<HashMap<String, usize>>>,
    key: String,
}

impl OpenStreams {
    /// A place for one more stream under `key`, unless `cap` are open already.
    pub fn take(&self, key: String, cap: usize) -> Result<StreamSlot, Limited> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(key.clone()).or_default();
        if *count >= cap {
            // A stream lasts minutes: come back after a while.
            return Err(Limited {
                retry_after: COME_BACK,
            });
        }
        *count += 1;
        Ok(StreamSlot {
            open: self.open.clone(),
            key,
        })
    }

    /// The places one stream takes: its client's, its session's and (the desktop page's) its
    /// browser session's; refused if any is full, and then none is kept.
    pub fn take_for(
        &self,
        limits: &Limits,
        client: IpAddr,
        session: &SessionId,
        browser: Option<&str>,
    ) -> Result<Vec<StreamSlot>, Limited> {
        let network = network(client, limits.ipv6_prefix);
        let mut slots = vec![
            self.take(format!("client {network}"), limits.streams_per_client)?,
            self.take(format!("session {session}"), limits.streams_per_session)?,
        ];
        if let Some(browser) = browser {
            slots.push(self.take(format!("browser {browser}"), limits.streams_per_browser)?);
        }
        Ok(slots)
    }

    /// Streams open under `key` now.
    pub fn count(&self, key: &str) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(key).copied().unwrap_or(0)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_streams_are_capped_per_key_and_given_back() {
        let open = OpenStreams::default();
        let first = open.take("s:a".into(), 2).unwrap();
        let _second = open.take("s:a".into(), 2).unwrap();
        assert!(open.take("s:a".into(), 2).is_err(), "a third is refused");
        assert!(open.take("s:b".into(), 2).is_ok(), "per key");
        drop(first);
        assert_eq!(open.count("s:a"), 1);
        assert!(
            open.take("s:a".into(), 2).is_ok(),
            "a place given back is free again"
        );
    }
}
