//! The status stream: Server-Sent Events on the status URL, from the current state to a final one, as the SDK reads them.
//!
//! Each event is unnamed, one bare JSON object on one `data:` line (the SDK neither unwraps an
//! envelope nor joins lines), with the session's revision as its id. The stream subscribes
//! before it reads, re-reads on every notice (any instance's write, or a resync after a lost
//! connection), and ends on a final state, at expiry, or when the server shuts down.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::header::{ACCEPT, AUTHORIZATION, CACHE_CONTROL, HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ApiError;
use crate::bridge::{Bridge, BridgeError, Observed, Reveal, Viewer};
use crate::limits::StreamSlot;
use crate::session::{SessionId, State};
use crate::state::AppState;
use crate::store::{StoreError, Subscription};

/// Whether the status request asks for a stream: an `EventSource` says so in `Accept`; the SDK's
/// fetch-based reader sends its polling token and nothing else, while its polls also carry
/// `Authorization` (the contract's §4a and §11.1).
pub fn wanted(headers: &HeaderMap) -> bool {
    accepts_events(headers)
        || (headers.contains_key("x-polling-token") && !headers.contains_key(AUTHORIZATION))
}

/// Whether `Accept` names event streams, as an `EventSource` sends it.
pub fn accepts_events(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains("text/event-stream")))
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

/// The event for one observation (see [`Observed::status`] and [`Observed::pairing_status`]),
/// with the session's revision as its id.
fn event(o: &Observed, viewer: &Viewer, reveal: Reveal) -> Result<Event, BridgeError> {
    let data = match viewer {
        Viewer::Desktop(_) => serde_json::to_string(&o.status(reveal)?),
        Viewer::Initiator(_) => serde_json::to_string(&o.pairing_status()),
    };
    let data = data.map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let id = if o.state == State::Expired {
        format!("{}.expired", o.rev)
    } else {
        o.rev.to_string()
    };
    Ok(Event::default().id(id).data(data))
}

struct Watcher {
    /// Held for as long as the stream is open.
    _slots: Vec<StreamSlot>,
    _counted: crate::telemetry::OpenStream,
    bridge: Arc<Bridge>,
    id: SessionId,
    viewer: Viewer,
    subscription: Subscription,
    seen: Option<Seen>,
    latest: Option<Observed>,
    expires: Instant,
    shutdown: CancellationToken,
    reveal: Reveal,
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
                    return match event(&o, &self.viewer, self.reveal) {
                        Ok(event) => Some(event),
                        Err(e) => {
                            // The poll answers the same error; the client falls back to it.
                            tracing::error!(error = %e, "status stream ends on a corrupt session");
                            None
                        }
                    };
                }
                continue;
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return None,
                _ = self.subscription.next() => {}
                () = tokio::time::sleep_until(self.expires) => {}
            }
            match self.bridge.look(&self.id, &self.viewer).await {
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

/// The stream of a session for `viewer`: whoever holds its polling token (the API's desktop,
/// `browser` `None`, or the desktop page of a browser session), or a PIN bridge's initiator. An
/// API client is refused first if its view would be, so a stranger who knows an id takes no
/// place and no subscription (a browser session's token was put there by the bridge itself);
/// then the stream takes its places (per client, per session, per browser session), held until
/// it ends however it ends.
pub async fn open(
    state: &AppState,
    id: SessionId,
    viewer: Viewer,
    client: IpAddr,
    browser: Option<&str>,
    headers: &HeaderMap,
    reveal: Reveal,
) -> Result<Response, ApiError> {
    if browser.is_none() {
        state.bridge.look(&id, &viewer).await?;
    }
    let slots = state
        .streams
        .take_for(state.limiter.limits(), client, &id, browser)?;
    let (subscription, first) = state.bridge.watch(&id, &viewer).await?;
    let watcher = Watcher {
        _slots: slots,
        _counted: crate::telemetry::OpenStream::counted(),
        bridge: state.bridge.clone(),
        id,
        viewer,
        subscription,
        seen: Seen::parse(headers),
        latest: Some(first),
        expires: Instant::now(),
        shutdown: state.shutdown.clone(),
        reveal,
        done: false,
    };
    let events = futures::stream::unfold(watcher, |mut w| async move {
        let event = w.next().await?;
        Some((Ok::<_, Infallible>(event), w))
    });
    Ok(sse(events, state.stream_heartbeat))
}

/// Proxies close connections that stay silent: a comment every `heartbeat` keeps them open.
fn sse(
    events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
    heartbeat: Duration,
) -> Response {
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(heartbeat))
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
            flow: crate::bridge::Flow::CrossDevice,
            number: None,
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
