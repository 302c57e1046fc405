//! The status stream: Server-Sent Events on the status URL, from the current state to a final one, as the SDK reads them.
//!
//! Each event is unnamed, one bare JSON object on one `data:` line (the SDK neither unwraps an
//! envelope nor joins lines), with the session's revision as its id. The stream subscribes
//! before it reads, re-reads on every notice (any instance's write, or a resync after a lost
//! connection), and ends on a final state, at expiry, or when the server shuts down.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::header::{ACCEPT, AUTHORIZATION, CACHE_CONTROL, HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ApiError;
use crate::bridge::{Bridge, Observed};
use crate::session::{SessionId, State};
use crate::store::Subscription;
use crate::wire::{Status, WireStatus};

/// Proxies close connections that stay silent; a comment this often keeps them open.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// Whether the status request asks for a stream: an `EventSource` says so in `Accept`; the SDK's
/// fetch-based reader sends its polling token and nothing else, while its polls also carry
/// `Authorization` (the contract's §4a and §11.1).
pub fn wanted(headers: &HeaderMap) -> bool {
    let accepts_events = headers
        .get_all(ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains("text/event-stream")));
    accepts_events
        || (headers.contains_key("x-polling-token") && !headers.contains_key(AUTHORIZATION))
}

/// What a reconnecting client says it has seen: `Last-Event-ID` is `<rev>` or `<rev>.expired`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Seen {
    rev: u64,
    expired: bool,
}

impl Seen {
    fn parse(headers: &HeaderMap) -> Option<Seen> {
        let id = headers.get("last-event-id")?.to_str().ok()?;
        let (rev, expired) = match id.strip_suffix(".expired") {
            Some(rev) => (rev, true),
            None => (id, false),
        };
        Some(Seen {
            rev: rev.parse().ok()?,
            expired,
        })
    }

    fn of(o: &Observed) -> Seen {
        Seen {
            rev: o.rev,
            expired: o.state == State::Expired,
        }
    }

    /// A newer write, or the expiry (which writes nothing), is news.
    fn is_news(seen: Option<Seen>, o: &Observed) -> bool {
        seen.is_none_or(|s| o.rev > s.rev || (o.state == State::Expired && !s.expired))
    }
}

/// The event for one observation: the SDK's statuses, plus our own final ones. Without
/// `reveal_token` a completion names the user but carries no token (the desktop page's stream).
fn event(o: &Observed, reveal_token: bool) -> Event {
    let mut status = Status {
        status: WireStatus::Pending,
        scanned: false,
        session_token: None,
        user_id: None,
    };
    match o.state {
        State::Pending => {}
        State::Scanned => status.scanned = true,
        State::Authenticated => status.status = WireStatus::Authenticated,
        State::Completed => {
            status.status = WireStatus::Completed;
            if let Some(done) = &o.completion {
                status.session_token = reveal_token.then(|| done.session_token.expose().to_owned());
                status.user_id = Some(done.user_id.to_string());
            }
        }
        State::Denied => status.status = WireStatus::Denied,
        State::Cancelled => status.status = WireStatus::Cancelled,
        State::Expired => status.status = WireStatus::Expired,
    }
    let id = if o.state == State::Expired {
        format!("{}.expired", o.rev)
    } else {
        o.rev.to_string()
    };
    let data = serde_json::to_string(&status).unwrap_or_default();
    Event::default().id(id).data(data)
}

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
    pub fn take(&self, key: String, cap: usize) -> Result<StreamSlot, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(key.clone()).or_default();
        if *count >= cap {
            // A stream lasts minutes: come back after a heartbeat or so.
            return Err(ApiError::RateLimited(HEARTBEAT));
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
        limits: &crate::limits::Limits,
        client: std::net::IpAddr,
        session: &SessionId,
        browser: Option<&str>,
    ) -> Result<Vec<StreamSlot>, ApiError> {
        let network = crate::limits::network(client, limits.ipv6_prefix);
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

struct Watcher {
    /// Held for as long as the stream is open.
    _slots: Vec<StreamSlot>,
    bridge: Arc<Bridge>,
    id: SessionId,
    token: Option<String>,
    subscription: Subscription,
    seen: Option<Seen>,
    latest: Option<Observed>,
    expires: Instant,
    shutdown: CancellationToken,
    reveal_token: bool,
    done: bool,
}

impl Watcher {
    /// The next event worth sending, or `None` when the stream is over.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if self.done {
                return None;
            }
            if let Some(o) = self.latest.take() {
                // A little past the store's expiry, so the read that follows sees it.
                self.expires = Instant::now() + o.expires_in + Duration::from_millis(5);
                self.done = o.state.is_final();
                if Seen::is_news(self.seen, &o) {
                    self.seen = Some(Seen::of(&o));
                    return Some(event(&o, self.reveal_token));
                }
                continue;
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return None,
                _ = self.subscription.next() => {}
                () = tokio::time::sleep_until(self.expires) => {}
            }
            match self.bridge.observe(&self.id, self.token.as_deref()).await {
                Ok(o) => self.latest = Some(o),
                Err(e) => {
                    // Gone after retention, or the store failing: the client falls back to polling.
                    tracing::debug!(error = %e, "status stream ends");
                    return None;
                }
            }
        }
    }
}

/// `slots` are the places this stream takes (see [`OpenStreams`]), held until it ends.
pub async fn respond(
    bridge: Arc<Bridge>,
    id: SessionId,
    token: Option<String>,
    headers: &HeaderMap,
    shutdown: CancellationToken,
    reveal_token: bool,
    slots: Vec<StreamSlot>,
) -> Result<Response, ApiError> {
    let (subscription, first) = bridge.watch(&id, token.as_deref()).await?;
    let watcher = Watcher {
        _slots: slots,
        bridge,
        id,
        token,
        subscription,
        seen: Seen::parse(headers),
        latest: Some(first),
        expires: Instant::now(),
        shutdown,
        reveal_token,
        done: false,
    };
    let events = futures::stream::unfold(watcher, |mut w| async move {
        let event = w.next().await?;
        Some((Ok::<_, Infallible>(event), w))
    });
    Ok(sse(events))
}

fn sse(events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static) -> Response {
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(HEARTBEAT))
        .into_response();
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // nginx buffers responses unless told otherwise, which would hold events back.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(rev: u64, state: State) -> Observed {
        Observed {
            state,
            completion: None,
            rev,
            expires_in: Duration::ZERO,
        }
    }

    #[test]
    fn the_sdks_requests_are_told_apart() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        assert!(
            wanted(&headers(&[("accept", "text/event-stream")])),
            "EventSource"
        );
        assert!(
            wanted(&headers(&[("x-polling-token", "pt_x")])),
            "the SDK's fetch stream"
        );
        assert!(
            !wanted(&headers(&[
                ("x-polling-token", "pt_x"),
                ("authorization", "Bearer cli_x")
            ])),
            "the SDK's poll"
        );
        assert!(!wanted(&headers(&[])));
    }

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

    #[test]
    fn last_event_id_skips_what_was_seen() {
        let mut h = HeaderMap::new();
        h.insert("last-event-id", HeaderValue::from_static("3"));
        let seen = Seen::parse(&h);
        assert!(!Seen::is_news(seen, &observed(3, State::Scanned)));
        assert!(Seen::is_news(seen, &observed(4, State::Completed)));
        assert!(
            Seen::is_news(seen, &observed(3, State::Expired)),
            "expiry writes nothing yet is news"
        );
        h.insert("last-event-id", HeaderValue::from_static("3.expired"));
        assert!(!Seen::is_news(
            Seen::parse(&h),
            &observed(3, State::Expired)
        ));
        h.insert("last-event-id", HeaderValue::from_static("garbage"));
        assert!(Seen::parse(&h).is_none());
    }
}
