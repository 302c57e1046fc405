//! The admin socket: a running bridge on the embedded store holds `<data_dir>` (a lock) and takes management requests on `<data_dir>/admin/socket`, its owner's only.

use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use super::{ManageError, Manager, Order, Reply};

/// A directory only the owner may enter: the socket in it is never reachable by anyone else,
/// not even in the instant between its creation and a change of its mode.
const DIR: &str = "admin";
const SOCKET: &str = "socket";
/// Held (`flock`) by the bridge from before it opens the embedded store until it exits.
const LOCK: &str = ".lock";
const ROUTE: &str = "/v1/manage";
/// A reply lists at most every user of a deployment; this is far above any real one.
const REPLY_LIMIT: usize = 256 * 1024 * 1024;
/// A bridge answers a management request in milliseconds; one that does not is stuck.
const ASK_TIMEOUT: Duration = Duration::from_secs(30);

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(DIR).join(SOCKET)
}

/// The embedded store's files belong to one process at a time: the bridge holds this lock from
/// before it reads them until it exits, and a command that edits them directly takes it too.
/// Dropping the file releases it.
pub fn hold(data_dir: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join(LOCK);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "a bridge is running on data_dir {} (it holds {LOCK}); the embedded store belongs to \
             that one process",
            data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => anyhow::bail!("{}: {e}", path.display()),
    }
}

/// A refusal as the socket carries it.
#[derive(Serialize, Deserialize)]
struct Failure {
    error: String,
}

impl IntoResponse for ManageError {
    fn into_response(self) -> Response {
        let status = match self {
            ManageError::UnknownApp(_)
            | ManageError::UnknownUser(_)
            | ManageError::UnknownPasskey(_) => StatusCode::NOT_FOUND,
            ManageError::Contended => StatusCode::CONFLICT,
            ManageError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        let error = self.to_string();
        (status, Json(Failure { error })).into_response()
    }
}

/// Answers management requests on `<data_dir>/admin/socket` until `shutdown`. The caller holds
/// the data_dir (see [`hold`]), so a socket found there was left by a bridge that is gone.
pub async fn listen(
    data_dir: &Path,
    manager: Arc<Manager>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let dir = data_dir.join(DIR);
    // Whoever can write to the socket can remove users: the bridge's own user only.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    let meta = std::fs::symlink_metadata(&dir)?;
    if !meta.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let path = path(data_dir);
    // Anything but a socket is not ours to remove.
    if let Ok(meta) = std::fs::symlink_metadata(&path) {
        if !meta.file_type().is_socket() {
            anyhow::bail!("{} exists and is not a socket", path.display());
        }
        std::fs::remove_file(&path)?;
    }
    let listener = UnixListener::bind(&path)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", path.display()))?;
    let router = Router::new().route(ROUTE, post(answer)).with_state(manager);
    tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the admin socket stopped");
        }
        let _ = std::fs::remove_file(&path);
    });
    Ok(())
}

async fn answer(
    State(manager): State<Arc<Manager>>,
    Json(order): Json<Order>,
) -> Result<Json<Reply>, ManageError> {
    tracing::info!(request = ?order.request, operator = %order.operator, "management request");
    manager.run(order.request, &order.operator).await.map(Json)
}

/// Sends `request` to the bridge running on `data_dir`: `None` when none answers there.
pub async fn ask(data_dir: &Path, order: &Order) -> anyhow::Result<Option<Result<Reply, String>>> {
    tokio::time::timeout(ASK_TIMEOUT, ask_now(data_dir, order))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "the bridge on {} did not answer within {}s",
                data_dir.display(),
                ASK_TIMEOUT.as_secs()
            )
        })?
}

async fn ask_now(data_dir: &Path, order: &Order) -> anyhow::Result<Option<Result<Reply, String>>> {
    let stream = match UnixStream::connect(path(data_dir)).await {
        Ok(stream) => stream,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => anyhow::bail!("{}: {e}", path(data_dir).display()),
    };
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let body = serde_json::to_vec(order)?;
    let http = axum::http::Request::post(ROUTE)
        .header(header::HOST, "localhost")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))?;
    let response = sender.send_request(http).await?;
    let status = response.status();
    let bytes = axum::body::to_bytes(Body::new(response.into_body()), REPLY_LIMIT).await?;
    if status.is_success() {
        return Ok(Some(Ok(serde_json::from_slice(&bytes)?)));
    }
    // Our own refusals carry a message; anything else (a bridge of another version) is shown
    // as it came.
    Ok(Some(Err(match serde_json::from_slice::<Failure>(&bytes) {
        Ok(failure) => failure.error,
        Err(_) => format!(
            "the bridge answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        ),
    })))
}
