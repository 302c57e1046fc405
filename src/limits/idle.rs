//! Idle HTTP/2 connections: hyper closes an idle HTTP/1.1 connection by its header timer, but keeps an HTTP/2 one as long as its peer answers pings.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use http_body::{Frame, SizeHint};
use tokio::time::Instant;

/// What one connection is doing: how many requests are in flight (until their response bodies
/// end, so an open event stream counts) and when the last one ended.
#[derive(Clone)]
pub struct Activity(Arc<Inner>);

struct Inner {
    in_flight: AtomicUsize,
    since: Mutex<Instant>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity(Arc::new(Inner {
            in_flight: AtomicUsize::new(0),
            since: Mutex::new(Instant::now()),
        }))
    }
}

impl Activity {
    /// A request begins; it is in flight until the returned guard drops.
    pub fn begin(&self) -> Busy {
        self.0.in_flight.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    /// Resolves once nothing has been in flight for `idle`, counted from the connection's start
    /// or the end of its last request: a connection that never sends one is idle too.
    pub async fn idle_for(&self, idle: Duration) {
        loop {
            let quiet = self.since().elapsed();
            if self.0.in_flight.load(Ordering::SeqCst) == 0 && quiet >= idle {
                return;
            }
            tokio::time::sleep(idle.saturating_sub(quiet).max(idle / 4)).await;
        }
    }

    fn since(&self) -> Instant {
        *self.0.since.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `response`'s body, holding `busy` until it ends or is dropped.
    pub fn hold(busy: Busy, response: axum::response::Response) -> axum::response::Response {
        response.map(|body| Body::new(Held { body, _busy: busy }))
    }
}

/// A request in flight.
pub struct Busy(Activity);

impl Drop for Busy {
    fn drop(&mut self) {
        *self.0.0.since.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.0.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Held {
    body: Body,
    _busy: Busy,
}

impl http_body::Body for Held {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(10);

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_never_asks_is_idle_after_the_timeout() {
        let activity = Activity::default();
        let started = Instant::now();
        activity.idle_for(IDLE).await;
        assert_eq!(started.elapsed(), IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_response_still_being_sent_keeps_the_connection_and_its_end_starts_the_count() {
        let activity = Activity::default();
        let response = Activity::hold(
            activity.begin(),
            axum::response::Response::new(Body::empty()),
        );
        let watching = tokio::spawn({
            let activity = activity.clone();
            async move { activity.idle_for(IDLE).await }
        });
        tokio::time::sleep(IDLE * 5).await;
        assert!(!watching.is_finished(), "an open stream is not idle");
        let ended = Instant::now();
        drop(response);
        watching.await.unwrap();
        assert!(ended.elapsed() >= IDLE, "{:?}", ended.elapsed());
    }
}
