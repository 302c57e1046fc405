//! Change notices across instances: one Redis pub/sub connection per instance, resubscribed and resynced after any loss.
//!
//! Writers publish inside the compare-and-set script, so a write and its notice cannot be
//! separated. Here, each instance keeps a single subscriber connection shared by all its streams:
//! channels are subscribed while someone local listens and unsubscribed after. When the connection
//! drops (a Redis restart, `CLIENT KILL TYPE pubsub`), the hub reconnects with backoff,
//! subscribes every wanted channel again and sends every listener a [`Notice::Resync`], so each
//! re-reads its session and nothing that changed in between is lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use redis::aio::PubSubSink;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::{CHANNEL_DEPTH, Notice, StoreError, Subscription};

const FIRST_RETRY: Duration = Duration::from_millis(50);
const LAST_RETRY: Duration = Duration::from_secs(5);

pub(super) struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    /// The live connection's sink, `None` while reconnecting. Holding this lock orders every
    /// subscribe and unsubscribe with the bookkeeping in `channels`.
    sink: tokio::sync::Mutex<Option<PubSubSink>>,
    channels: Mutex<HashMap<String, broadcast::Sender<Notice>>>,
    connections: AtomicU64,
    stop: CancellationToken,
}

impl Inner {
    fn channels(&self) -> std::sync::MutexGuard<'_, HashMap<String, broadcast::Sender<Notice>>> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tell_all(&self, notice: Notice) {
        for listeners in self.channels().values() {
            let _ = listeners.send(notice);
        }
    }

    async fn release(&self, channel: String) {
        let mut sink = self.sink.lock().await;
        let unused = {
            let mut channels = self.channels();
            let unused = channels
                .get(&channel)
                .is_some_and(|tx| tx.receiver_count() == 0);
            if unused {
                channels.remove(&channel);
            }
            unused
        };
        if let (true, Some(sink)) = (unused, sink.as_mut()) {
            // A failure means the connection is going; the next one will not subscribe it.
            let _ = sink.unsubscribe(&channel).await;
        }
    }
}

impl Hub {
    pub(super) fn start(client: redis::Client) -> Self {
        let inner = Arc::new(Inner {
            client,
            sink: tokio::sync::Mutex::new(None),
            channels: Mutex::new(HashMap::new()),
            connections: AtomicU64::new(0),
            stop: CancellationToken::new(),
        });
        tokio::spawn(run(inner.clone()));
        Hub { inner }
    }

    /// How many subscriber connections this hub has opened: more than one means it reconnected.
    pub(super) fn connections(&self) -> u64 {
        self.inner.connections.load(Ordering::Relaxed)
    }

    /// Returns once Redis has confirmed the subscription (or, while disconnected, once the channel
    /// is registered: the reconnect subscribes it and sends a resync).
    pub(super) async fn subscribe(&self, channel: String) -> Result<Subscription, StoreError> {
        let mut sink = self.inner.sink.lock().await;
        let (rx, first) = {
            let mut channels = self.inner.channels();
            match channels.get(&channel) {
                Some(tx) => (tx.subscribe(), false),
                None => {
                    let (tx, rx) = broadcast::channel(CHANNEL_DEPTH);
                    channels.insert(channel.clone(), tx);
                    (rx, true)
                }
            }
        };
        // Pub/sub connections have no response timeout of their own: a stalled Redis must not
        // stall the request that opens a stream.
        if let (true, Some(live)) = (first, sink.as_mut())
            && let Err(e) =
                tokio::time::timeout(super::redis::REDIS_TIMEOUT, live.subscribe(&channel))
                    .await
                    .map_err(|_| "no answer in time".to_owned())
                    .and_then(|r| r.map_err(|e| e.to_string()))
        {
            // The connection is failing; its replacement will subscribe and resync this channel.
            tracing::warn!(error = %e, "pub/sub subscribe failed");
            *sink = None;
        }
        drop(sink);
        let inner = self.inner.clone();
        Ok(Subscription::new(rx, move || {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { inner.release(channel).await });
            }
        }))
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.inner.stop.cancel();
    }
}

async fn run(inner: Arc<Inner>) {
    let mut retry = FIRST_RETRY;
    while !inner.stop.is_cancelled() {
        match connect(&inner).await {
            Ok(mut stream) => {
                retry = FIRST_RETRY;
                inner.connections.fetch_add(1, Ordering::Relaxed);
                // Whatever was published while nobody listened is only known by reading again.
                inner.tell_all(Notice::Resync);
                loop {
                    let message = tokio::select! {
                        () = inner.stop.cancelled() => return,
                        message = stream.next() => message,
                    };
                    let Some(message) = message else { break };
                    if let Some(listeners) = inner.channels().get(message.get_channel_name()) {
                        let _ = listeners.send(Notice::Changed);
                    }
                }
                *inner.sink.lock().await = None;
                tracing::warn!("lost the Redis pub/sub connection; reconnecting");
            }
            Err(e) => {
                tracing::warn!(error = %e, ?retry, "cannot open the Redis pub/sub connection")
            }
        }
        tokio::select! {
            () = inner.stop.cancelled() => return,
            () = tokio::time::sleep(retry) => {}
        }
        retry = (retry * 2).min(LAST_RETRY);
    }
}

/// Opens a connection and subscribes every channel someone listens to, under the sink lock so no
/// subscribe or release can slip between the listing and the install.
async fn connect(inner: &Inner) -> Result<redis::aio::PubSubStream, redis::RedisError> {
    let pubsub = tokio::time::timeout(super::redis::REDIS_TIMEOUT, inner.client.get_async_pubsub())
        .await
        .map_err(|_| {
            redis::RedisError::from((redis::ErrorKind::Io, "pub/sub connection timed out"))
        })??;
    let (mut sink, stream) = pubsub.split();
    let mut live = inner.sink.lock().await;
    let wanted: Vec<String> = inner.channels().keys().cloned().collect();
    if !wanted.is_empty() {
        sink.subscribe(&wanted).await?;
    }
    *live = Some(sink);
    Ok(stream)
}
