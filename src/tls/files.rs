//! Certificates from PEM files, swapped in place when a renewal rewrites the files.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};

use super::provider;

/// The certificate and key files named by `tls_cert` and `tls_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// How often the files are checked for a renewal.
    pub watch_every: Duration,
}

/// Why a certificate pair could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    #[error("cannot read {path}: {why}")]
    Read { path: String, why: String },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: String },
    #[error("{path} holds no PEM private key: {why}")]
    NoKey { path: String, why: String },
    #[error("{cert} and {key} do not belong together: {why}")]
    Mismatch {
        cert: String,
        key: String,
        why: String,
    },
}

/// The served certificate from files, swapped in place when the files change (certbot and
/// similar renew by writing new files, often by swapping a symlink: checking the contents on a
/// timer sees both, where file-system events miss the symlink swap).
pub struct Certificates {
    files: TlsFiles,
    current: ArcSwap<CertifiedKey>,
    /// The digest of the contents last looked at, loaded or not: a broken pair is reported once.
    seen: Mutex<[u8; 32]>,
}

impl fmt::Debug for Certificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificates")
            .field("cert", &self.files.cert)
            .field("key", &self.files.key)
            .finish_non_exhaustive()
    }
}

impl Certificates {
    /// Loads the pair, or says why it cannot be served.
    pub fn load(files: TlsFiles) -> Result<Self, PairError> {
        let (digest, key) = read_pair(&files)?;
        Ok(Certificates {
            current: ArcSwap::from_pointee(key?),
            seen: Mutex::new(digest),
            files,
        })
    }

    /// Loads the files again if their contents changed since last looked at. `Ok(true)` when a
    /// new pair is now served; on an error the pair being served stays.
    pub fn reload_if_changed(&self) -> Result<bool, PairError> {
        let (digest, parsed) = read_pair(&self.files)?;
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if *seen == digest {
                return Ok(false);
            }
            *seen = digest;
        }
        self.current.store(Arc::new(parsed?));
        Ok(true)
    }

    /// Checks the files every `watch_every` until `stop`, logging what changed.
    pub async fn watch(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let mut every = tokio::time::interval(self.files.watch_every);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = every.tick() => {}
            }
            match self.reload_if_changed() {
                Ok(true) => tracing::info!(
                    "TLS: serving the renewed certificate from {}",
                    self.files.cert.display()
                ),
                Ok(false) => {}
                Err(why) => tracing::warn!("TLS: keeping the certificate being served: {why}"),
            }
        }
    }

    /// The end-entity certificate now served, DER-encoded.
    pub fn served(&self) -> Option<CertificateDer<'static>> {
        self.current.load().cert.first().cloned()
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn read(path: &Path) -> Result<Vec<u8>, PairError> {
    std::fs::read(path).map_err(|e| PairError::Read {
        path: path.display().to_string(),
        why: e.to_string(),
    })
}

/// The files' digest (read once: a renewal landing between two reads is seen next time), and
/// the pair they hold or why they do not.
fn read_pair(files: &TlsFiles) -> Result<([u8; 32], Result<CertifiedKey, PairError>), PairError> {
    let cert_pem = read(&files.cert)?;
    let key_pem = read(&files.key)?;
    let mut hash = Sha256::new();
    for bytes in [&cert_pem, &key_pem] {
        hash.update((bytes.len() as u64).to_be_bytes());
        hash.update(bytes);
    }
    Ok((
        hash.finalize().into(),
        parse_pair(files, &cert_pem, &key_pem),
    ))
}

fn parse_pair(
    files: &TlsFiles,
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<CertifiedKey, PairError> {
    let name = |p: &Path| p.display().to_string();
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PairError::Read {
            path: name(&files.cert),
            why: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(PairError::NoCertificate {
            path: name(&files.cert),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| PairError::NoKey {
        path: name(&files.key),
        why: e.to_string(),
    })?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|e| PairError::Mismatch {
        cert: name(&files.cert),
        key: name(&files.key),
        why: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for `name`, as PEM (certificate, key).
    fn pair(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn files(dir: &Path) -> TlsFiles {
        TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            watch_every: Duration::from_secs(1),
        }
    }

    fn write(files: &TlsFiles, (cert, key): &(String, String)) {
        std::fs::write(&files.cert, cert).unwrap();
        std::fs::write(&files.key, key).unwrap();
    }

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    #[test]
    fn a_renewed_pair_is_served_and_unchanged_files_are_not_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path());
        let first = pair("bridge.test");
        write(&files, &first);
        let certificates = Certificates::load(files.clone()).unwrap();
        assert_eq!(certificates.served(), Some(der(&first.0)));
        assert!(!certificates.reload_if_changed().unwrap());

        let renewed = pair("bridge.test");
        write(&files, &renewed);
        assert!(certificates.reload_if_changed().unwrap());
        assert_eq!(certificates.served(), Some(der(&renewed.0)));
    }

    #[test]
    fn a_certificate_with_someone_elses_key_is_refused_and_the_old_pair_kept() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path());
        let first = pair("bridge.test");
        write(&files, &first);
        let certificates = Certificates::load(files.clone()).unwrap();

        let other = pair("bridge.test");
        write(&files, &(other.0.clone(), first.1.clone()));
        assert!(matches!(
            certificates.reload_if_changed(),
            Err(PairError::Mismatch { .. })
        ));
        assert_eq!(certificates.served(), Some(der(&first.0)));
        // Reported once: the same broken files are not an error again at every check.
        assert!(!certificates.reload_if_changed().unwrap());

        write(&files, &other);
        assert!(certificates.reload_if_changed().unwrap());
        assert_eq!(certificates.served(), Some(der(&other.0)));
    }

    #[test]
    fn files_without_a_certificate_or_a_key_say_which() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path());
        let good = pair("bridge.test");
        write(&files, &(String::new(), good.1.clone()));
        let err = Certificates::load(files.clone()).unwrap_err();
        assert!(matches!(err, PairError::NoCertificate { .. }), "{err}");
        write(&files, &(good.0.clone(), "not a key".into()));
        let err = Certificates::load(files.clone()).unwrap_err();
        assert!(matches!(err, PairError::NoKey { .. }), "{err}");
        assert!(err.to_string().contains("key.pem"), "{err}");
        std::fs::remove_file(&files.cert).unwrap();
        let err = Certificates::load(files).unwrap_err();
        assert!(matches!(err, PairError::Read { .. }), "{err}");
    }
}
