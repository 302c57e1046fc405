//! The built site (wasm, JS, CSS): where it is, the content-hashed names its files were given, and how they are served.
//!
//! A release build (`hash-files` in Cargo.toml) names each file after its content and writes the
//! hashes to `hash.txt` in the site root, so a name never changes meaning: those files may be cached
//! for a year without asking again, and a new build is picked up at once because its names differ.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use leptos::config::{Env, LeptosOptions};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::settings::Settings;

/// Where cargo-leptos writes the hashes, relative to the site root (see `hash-file` in Cargo.toml).
const HASH_FILE: &str = "hash.txt";
const PKG: &str = "pkg";

/// What a content-hashed name may be cached for: a year, never revalidated.
const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");

pub struct Site {
    pub root: PathBuf,
    /// The script's, wasm's and stylesheet's names under `pkg/` as this build made them.
    pub script: String,
    pub wasm: String,
    pub stylesheet: String,
    /// Whether those names carry their content's hash.
    pub hashed: bool,
}

/// A hash as cargo-leptos writes it (URL-safe base64): nothing that could leave `pkg/` or be
/// read as a route pattern.
fn is_hash(hash: &str) -> bool {
    !hash.is_empty()
        && hash
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Site {
    /// The site the settings point to, with the names its `hash.txt` gives (plain names without one).
    pub fn find(settings: &Settings) -> Site {
        let root = root(settings);
        let hashes = std::fs::read_to_string(root.join(HASH_FILE)).ok();
        let hash_of = |kind: &str| {
            hashes.as_deref()?.lines().find_map(|line| {
                let (file, hash) = line.split_once(':')?;
                (file.trim() == kind).then(|| hash.trim().to_owned())
            })
        };
        // All three, well formed, or none: a name that is not a content hash must never be
        // cached as one.
        let kinds = ["js", "wasm", "css"].map(hash_of);
        let hashed = kinds.iter().all(|h| h.as_deref().is_some_and(is_hash));
        if hashes.is_some() && !hashed {
            tracing::warn!(
                "{} does not name the script, wasm and stylesheet by their hashes: serving plain names",
                root.join(HASH_FILE).display()
            );
        }
        let name = |kind: &str, extension: &str| match hash_of(kind) {
            Some(hash) if hashed => format!("{OUTPUT_NAME}.{hash}.{extension}"),
            _ => format!("{OUTPUT_NAME}.{extension}"),
        };
        Site {
            hashed,
            script: name("js", "js"),
            wasm: name("wasm", "wasm"),
            stylesheet: name("css", "css"),
            root,
        }
    }

    pub fn pkg(&self) -> PathBuf {
        self.root.join(PKG)
    }

    /// Leptos's settings for rendering: it reads the same `hash.txt` to name the script and wasm.
    pub fn leptos_options(&self, settings: &Settings) -> LeptosOptions {
        let env = match std::env::var("LEPTOS_ENV").as_deref() {
            Ok("DEV") | Ok("dev") => Env::DEV,
            _ => Env::PROD,
        };
        LeptosOptions::builder()
            .output_name(OUTPUT_NAME)
            .site_root(self.root.to_string_lossy().into_owned())
            .site_pkg_dir(PKG)
            .site_addr(settings.addr)
            .env(env)
            .hash_files(self.hashed)
            // Leptos joins this to the binary's directory; an absolute path stands on its own.
            .hash_file(
                std::path::absolute(self.root.join(HASH_FILE))
                    .unwrap_or_else(|_| self.root.join(HASH_FILE))
                    .to_string_lossy()
                    .into(),
            )
            .build()
    }

    /// `/pkg`: this build's hashed files for a year, anything else there revalidated (`no-cache`,
    /// set further out) and answered 304 when unchanged.
    pub fn routes<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        // `cargo leptos build --release --precompress` leaves a brotli (quality 11) and a gzip
        // copy beside each file: sent as they are when the browser takes them, rather than
        // compressed again at a faster, looser level for every request.
        let dir = ServeDir::new(self.pkg())
            .precompressed_br()
            .precompressed_gzip();
        let mut router = Router::new().nest_service("/pkg", dir);
        // Answers that may be brotli or gzip (the precompressed copies) say so to caches, which
        // would otherwise hand brotli to a client that never asked for it.
        let vary = SetResponseHeaderLayer::if_not_present(
            header::VARY,
            HeaderValue::from_static("accept-encoding"),
        );
        if self.hashed {
            for name in [&self.script, &self.wasm, &self.stylesheet] {
                router = router.route_service(
                    &format!("/{PKG}/{name}"),
                    tower::ServiceBuilder::new()
                        // Only the file itself is kept: a 404 (a site copied without it) must
                        // not be remembered for a year.
                        .layer(SetResponseHeaderLayer::overriding(
                            header::CACHE_CONTROL,
                            |answer: &axum::http::Response<_>| {
                                let status = answer.status();
                                (status.is_success() || status == StatusCode::NOT_MODIFIED)
                                    .then_some(IMMUTABLE)
                            },
                        ))
                        .service(
                            ServeFile::new(self.pkg().join(name))
                                .precompressed_br()
                                .precompressed_gzip(),
                        ),
                );
            }
        }
        router.layer(vary)
    }

    /// Whether the pages can come alive: the script they load is there.
    pub fn is_built(&self) -> bool {
        self.pkg().join(&self.script).is_file()
    }
}

/// The name cargo-leptos gives the site's files (`output-name`).
const OUTPUT_NAME: &str = "qr-bridge";

/// The setting, else what cargo-leptos says, else `target/site` from the working directory, else
/// the `site` beside the binary's own target directory.
fn root(settings: &Settings) -> PathBuf {
    if let Some(root) = &settings.site_root {
        return root.clone();
    }
    if let Ok(root) = std::env::var("LEPTOS_SITE_ROOT") {
        return root.into();
    }
    let beside_binary = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("site")));
    [Some(PathBuf::from("target/site")), beside_binary]
        .into_iter()
        .flatten()
        .find(|root| Path::new(root).join(PKG).is_dir())
        .unwrap_or_else(|| PathBuf::from("target/site"))
}
