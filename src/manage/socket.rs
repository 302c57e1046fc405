//! The admin socket: a running bridge on the embedded store takes management requests on `<data_dir>/admin.sock`, readable by its owner only.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

use super::{ManageError, Manager, Reply, Request};

const SOCKET: &str = "admin.sock";
const ROUTE: &str = "/v1/manage";
/// A reply lists at most every user of a deployment; this is far above any real one.
const REPLY_LIMIT: usize = 256 * 1024 * 1024;

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET)
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

/// Answers management requests on `<data_dir>/admin.sock` until `shutdown`. Refuses to start
/// when another bridge answers there: two processes on one embedded store would each keep
/// their own users and overwrite each other's file.
pub async fn listen(
    data_dir: &Path,
    manager: Arc<Manager>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let path = path(data_dir);
    if UnixStream::connect(&path).await.is_ok() {
        anyhow::bail!(
            "another bridge is running on data_dir {}: the embedded store belongs to one process",
            data_dir.display()
        );
    }
    // Left by a bridge that did not stop cleanly; anything but a socket is not ours to remove.
    if let Ok(meta) = std::fs::symlink_metadata(&path) {
        if !meta.file_type().is_socket() {
            anyhow::bail!("{} exists and is not a socket", path.display());
        }
        std::fs::remove_file(&path)?;
    }
    std::fs::create_dir_all(data_dir)?;
    let listener = UnixListener::bind(&path)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", path.display()))?;
    // Whoever can write to the socket can remove users: the bridge's own user only.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
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
    Json(request): Json<Request>,
) -> Result<Json<Reply>, ManageError> {
    tracing::info!(?request, "management request");
    manager.run(request).await.map(Json)
}

/// Sends `request` to the bridge running on `data_dir`: `None` when none runs there.
pub async fn ask(
    data_dir: &Path,
    request: &Request,
) -> anyhow::Result<Option<Result<Reply, String>>> {
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
    let body = serde_json::to_vec(request)?;
    let http = axum::http::Request::post(ROUTE)
        .header(header::HOST, "localhost")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))?;
    let response = sender.send_request(http).await?;
    let ok = response.status().is_success();
    let bytes = axum::body::to_bytes(Body::new(response.into_body()), REPLY_LIMIT).await?;
    Ok(Some(if ok {
        Ok(serde_json::from_slice(&bytes)?)
    } else {
        Err(serde_json::from_slice::<Failure>(&bytes)?.error)
    }))
}
