//! Automatic certificates from an ACME CA (Let's Encrypt by default) with rustls-acme, cached on disk so a restart does not order again.

use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls_acme::caches::DirCache;
use rustls_acme::{AcmeConfig, UseChallenge};
use tokio_util::sync::CancellationToken;

use super::{Serving, Tls, provider};

/// Let's Encrypt's production directory: what `[acme]` uses unless told otherwise.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// How the CA checks that this bridge answers for its names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// On the HTTPS port itself (RFC 8737): nothing else needs to listen.
    TlsAlpn01,
    /// Over plain HTTP on port 80, answered by the redirect listener.
    Http01,
}

/// The checked `[acme]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acme {
    pub domains: Vec<String>,
    /// `mailto:` addresses the CA may write to about expiring certificates.
    pub contact: Vec<String>,
    pub directory: String,
    pub cache_dir: PathBuf,
    pub challenge: Challenge,
    /// PEM roots to trust for the directory instead of the Web PKI's (a private or test CA).
    pub directory_ca: Option<PathBuf>,
}

/// Starts ordering (or loads the cached certificate) in the background until `stop`. Handshakes
/// fail until a certificate is there; each step is logged.
pub fn start(acme: &Acme, stop: CancellationToken) -> anyhow::Result<Serving> {
    private_folder(&acme.cache_dir)?;
    let config = match &acme.directory_ca {
        // The Web PKI's roots, as rustls-acme ships them.
        None => AcmeConfig::new_with_provider(&acme.domains, provider()),
        Some(path) => {
            let bad = |e: &dyn std::fmt::Display| {
                anyhow::anyhow!("acme.directory_ca {}: {e}", path.display())
            };
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))? {
                roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
            }
            let client = rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
            AcmeConfig::new_with_client_config(&acme.domains, Arc::new(client))
        }
    };
    let mut state = config
        .contact(&acme.contact)
        .cache(DirCache::new(acme.cache_dir.clone()))
        .directory(&acme.directory)
        .challenge_type(match acme.challenge {
            Challenge::TlsAlpn01 => UseChallenge::TlsAlpn01,
            Challenge::Http01 => UseChallenge::Http01,
        })
        .state();
    let resolver = state.resolver();
    let challenge = (acme.challenge == Challenge::TlsAlpn01)
        .then(|| state.challenge_rustls_config_with_provider(provider()));
    let tls = Tls::new(resolver.clone(), challenge)?;
    let directory = acme.directory.clone();
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                () = stop.cancelled() => return,
                event = state.next() => event,
            };
            match event {
                Some(Ok(ok)) => tracing::info!("ACME ({directory}): {ok:?}"),
                Some(Err(why)) => tracing::warn!("ACME ({directory}): {why}"),
                None => return,
            }
        }
    });
    Ok(Serving {
        tls: Arc::new(tls),
        http01: (acme.challenge == Challenge::Http01).then_some(resolver),
    })
}

/// The cache holds the account's and the certificate's private keys, which rustls-acme writes
/// with the process's umask: the folder is made the owner's alone. One that cannot be written
/// would make every restart order a new certificate (Let's Encrypt allows 5 a week), so it stops
/// the start instead.
fn private_folder(dir: &std::path::Path) -> anyhow::Result<()> {
    let failed = |e: std::io::Error| anyhow::anyhow!("acme.cache_dir {}: {e}", dir.display());
    std::fs::create_dir_all(dir).map_err(failed)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(failed)?;
    }
    let probe = dir.join(".writable");
    std::fs::write(&probe, b"").map_err(failed)?;
    std::fs::remove_file(&probe).map_err(failed)
}
