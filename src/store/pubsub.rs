//! Change notices across instances: one Redis pub/sub connection per instance (sharded pub/sub on a Cluster), resubscribed and resynced after any loss.
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

/// A subscription whose channel is released once its last listener drops it. A drop cannot
/// await, so `release` runs on the runtime.
fn released_on_drop<F>(
    rx: broadcast::Receiver<Notice>,
    release: impl FnOnce() -> F + Send + Sync + 'static,
) -> Subscription
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    Subscription::new(rx, move || {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(release());
        }
    })
}

/// The instance's listener for change notices: on one Redis, or on a Cluster's shards.
pub(super) enum Hub {
    Node(NodeHub),
    Sharded(ShardedHub),
}

impl Hub {
    pub(super) fn start(client: redis::Client) -> Self {
        Hub::Node(NodeHub::start(client))
    }

    pub(super) async fn start_sharded(nodes: &[String]) -> Result<Self, StoreError> {
        ShardedHub::start(nodes).await.map(Hub::Sharded)
    }

    /// How many subscriber connections this hub has opened (on a cluster: lost and found again).
    pub(super) fn connections(&self) -> u64 {
        match self {
            Hub::Node(hub) => hub.connections(),
            Hub::Sharded(hub) => hub.inner.connections.load(Ordering::Relaxed),
        }
    }

    pub(super) async fn subscribe(&self, channel: String) -> Result<Subscription, StoreError> {
        match self {
            Hub::Node(hub) => hub.subscribe(channel).await,
            Hub::Sharded(hub) => hub.subscribe(channel).await,
        }
    }
}

pub(super) struct NodeHub {
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

impl NodeHub {
    fn start(client: redis::Client) -> Self {
        let inner = Arc::new(Inner {
            client,
            sink: tokio::sync::Mutex::new(None),
            channels: Mutex::new(HashMap::new()),
            connections: AtomicU64::new(0),
            stop: CancellationToken::new(),
        });
        tokio::spawn(run(inner.clone()));
        NodeHub { inner }
    }

    /// How many subscriber connections this hub has opened: more than one means it reconnected.
    fn connections(&self) -> u64 {
        self.inner.connections.load(Ordering::Relaxed)
    }

    /// Returns once Redis has confirmed the subscription (or, while disconnected, once the channel
    /// is registered: the reconnect subscribes it and sends a resync).
    async fn subscribe(&self, channel: String) -> Result<Subscription, StoreError> {
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
        Ok(released_on_drop(rx, move || async move {
            inner.release(channel).await
        }))
    }
}

impl Drop for NodeHub {
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
                crate::telemetry::pubsub_reconnected();
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

/// Sharded pub/sub on a Redis Cluster: each session's channel lives on the shard that holds the
/// session, so a notice reaches only that shard's subscribers.
///
/// A channel counts as subscribed only once its shard confirms it (an `ssubscribe` push), never
/// by a command's reply: during a slot move the cluster client may pair a shard's unprompted
/// `sunsubscribe` with whatever request it was waiting on. A lost connection or a moved slot
/// marks the channel unconfirmed; a background task asks again (with backoff) until the shard
/// confirms, and only then tells the channel's listeners to re-read, so no change can fall
/// between their read and the subscription.
pub(super) struct ShardedHub {
    inner: Arc<Sharded>,
}

struct Wanted {
    listeners: broadcast::Sender<Notice>,
    confirmed: bool,
}

struct Sharded {
    conn: redis::cluster_async::ClusterConnection,
    channels: Mutex<HashMap<String, Wanted>>,
    /// Wakes the task that subscribes unconfirmed channels.
    unconfirmed: tokio::sync::Notify,
    connections: AtomicU64,
    stop: CancellationToken,
}

impl Sharded {
    fn channels(&self) -> std::sync::MutexGuard<'_, HashMap<String, Wanted>> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn release(&self, channel: String) {
        let unused = {
            let mut channels = self.channels();
            let unused = channels
                .get(&channel)
                .is_some_and(|w| w.listeners.receiver_count() == 0);
            if unused {
                channels.remove(&channel);
            }
            unused
        };
        if unused {
            let _ = tokio::time::timeout(
                super::redis::REDIS_TIMEOUT,
                self.conn.clone().sunsubscribe(&channel),
            )
            .await;
        }
    }

    async fn ask(&self, channel: &str) {
        let asked = tokio::time::timeout(
            super::redis::REDIS_TIMEOUT,
            self.conn.clone().ssubscribe(channel),
        )
        .await;
        if !matches!(asked, Ok(Ok(()))) {
            tracing::debug!(channel, "sharded subscribe not answered; asking again");
        }
    }

    fn on_push(&self, push: redis::PushInfo) {
        let channel = push
            .data
            .first()
            .and_then(|v| redis::from_redis_value_ref::<String>(v).ok());
        match (push.kind, channel) {
            (redis::PushKind::SMessage, Some(channel)) => {
                if let Some(wanted) = self.channels().get(&channel) {
                    let _ = wanted.listeners.send(Notice::Changed);
                }
            }
            (redis::PushKind::SSubscribe, Some(channel)) => {
                if let Some(wanted) = self.channels().get_mut(&channel)
                    && !wanted.confirmed
                {
                    wanted.confirmed = true;
                    // Whatever changed while unsubscribed is only known by reading again.
                    let _ = wanted.listeners.send(Notice::Resync);
                }
            }
            // A slot moved away (or we released the channel: then nobody wants it any more).
            (redis::PushKind::SUnsubscribe, Some(channel)) => {
                if let Some(wanted) = self.channels().get_mut(&channel) {
                    wanted.confirmed = false;
                    self.unconfirmed.notify_one();
                }
            }
            (redis::PushKind::Disconnection, _) => {
                self.connections.fetch_add(1, Ordering::Relaxed);
                crate::telemetry::pubsub_reconnected();
                tracing::warn!("lost a Redis Cluster pub/sub connection; subscribing again");
                for wanted in self.channels().values_mut() {
                    wanted.confirmed = false;
                }
                self.unconfirmed.notify_one();
            }
            _ => {}
        }
    }
}

impl ShardedHub {
    async fn start(nodes: &[String]) -> Result<Self, StoreError> {
        let (pushes, mut received) = tokio::sync::mpsc::unbounded_channel();
        let conn = super::redis::cluster_client(nodes, Some(pushes))
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
            .get_async_connection()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let inner = Arc::new(Sharded {
            conn,
            channels: Mutex::new(HashMap::new()),
            unconfirmed: tokio::sync::Notify::new(),
            connections: AtomicU64::new(1),
            stop: CancellationToken::new(),
        });
        let hub = inner.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = hub.stop.cancelled() => return,
                    push = received.recv() => match push {
                        Some(push) => hub.on_push(push),
                        None => return,
                    },
                }
            }
        });
        tokio::spawn(resubscribe(inner.clone()));
        Ok(ShardedHub { inner })
    }

    /// Returns once the shard was asked; the subscription is live once it confirms, and its
    /// listeners then get a resync (as they do after any loss).
    async fn subscribe(&self, channel: String) -> Result<Subscription, StoreError> {
        let (rx, first) = {
            let mut channels = self.inner.channels();
            match channels.get(&channel) {
                Some(wanted) => (wanted.listeners.subscribe(), false),
                None => {
                    let (tx, rx) = broadcast::channel(CHANNEL_DEPTH);
                    let wanted = Wanted {
                        listeners: tx,
                        confirmed: false,
                    };
                    channels.insert(channel.clone(), wanted);
                    (rx, true)
                }
            }
        };
        if first {
            self.inner.ask(&channel).await;
            self.inner.unconfirmed.notify_one();
        }
        let inner = self.inner.clone();
        Ok(released_on_drop(rx, move || async move {
            inner.release(channel).await
        }))
    }
}

impl Drop for ShardedHub {
    fn drop(&mut self) {
        self.inner.stop.cancel();
    }
}

/// Asks again for every wanted channel its shard has not confirmed, backing off while some stay
/// unconfirmed (a shard down, a failover under way) and sleeping while all are confirmed.
async fn resubscribe(hub: Arc<Sharded>) {
    let mut retry = FIRST_RETRY;
    loop {
        let pending: Vec<String> = hub
            .channels()
            .iter()
            .filter(|(_, w)| !w.confirmed)
            .map(|(c, _)| c.clone())
            .collect();
        if pending.is_empty() {
            retry = FIRST_RETRY;
            tokio::select! {
                () = hub.stop.cancelled() => return,
                () = hub.unconfirmed.notified() => continue,
            }
        }
        // Give the confirmation a moment to arrive before asking again.
        tokio::select! {
            () = hub.stop.cancelled() => return,
            () = tokio::time::sleep(retry) => {}
        }
        for channel in pending {
            let still = hub.channels().get(&channel).is_some_and(|w| !w.confirmed);
            if still {
                hub.ask(&channel).await;
            }
        }
        retry = (retry * 2).min(LAST_RETRY);
    }
}
