//! HTTPS: the certificate (from PEM files, picked up again when they change, or from an ACME CA) and the TLS handshake in front of each connection.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{Acceptor, ResolvesServerCert};
use tokio::net::TcpStream;
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

pub mod acme;
mod files;
pub mod redirect;

pub use files::{Certificates, PairError, TlsFiles};

/// Where the served certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Files(TlsFiles),
    Acme(acme::Acme),
}

/// HTTPS at work: the handshake to serve with, and what answers ACME HTTP-01 checks when those are used.
pub struct Serving {
    pub tls: Arc<Tls>,
    pub http01: Option<Arc<rustls_acme::ResolvesServerCertAcme>>,
}

/// Loads the certificate files (then checks them for renewals) or starts ACME, until `stop`.
pub fn start(source: &Source, stop: &CancellationToken) -> anyhow::Result<Serving> {
    match source {
        Source::Files(files) => {
            let certificates = Arc::new(
                Certificates::load(files.clone()).map_err(|e| anyhow::anyhow!("tls_cert: {e}"))?,
            );
            tokio::spawn(certificates.clone().watch(stop.clone()));
            Ok(Serving {
                tls: Arc::new(Tls::new(certificates, None)?),
                http01: None,
            })
        }
        Source::Acme(settings) => acme::start(settings, stop.clone()),
    }
}

/// What a connection turned into after its handshake.
pub enum Accepted {
    /// HTTP over TLS; `h2` when the client chose HTTP/2 through ALPN.
    Http {
        stream: Box<TlsStream<TcpStream>>,
        h2: bool,
    },
    /// An ACME CA checking that we hold the name (TLS-ALPN-01): answered by the handshake alone.
    Challenge,
}

/// The server's side of TLS: one configuration for browsers and, with ACME, one for the CA's checks.
pub struct Tls {
    config: Arc<ServerConfig>,
    challenge: Option<Arc<ServerConfig>>,
}

impl Tls {
    /// HTTP/2 and HTTP/1.1 offered through ALPN, the certificate chosen by `resolver` per handshake.
    pub fn new(
        resolver: Arc<dyn ResolvesServerCert>,
        challenge: Option<Arc<ServerConfig>>,
    ) -> Result<Self, rustls::Error> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls {
            config: Arc::new(config),
            challenge,
        })
    }

    /// The handshake on `stream`. The caller bounds it in time: a client that never finishes its
    /// hello must not hold a connection place.
    pub async fn accept(&self, stream: TcpStream) -> std::io::Result<Accepted> {
        let start = LazyConfigAcceptor::new(Acceptor::default(), stream).await?;
        if let Some(challenge) = &self.challenge
            && rustls_acme::is_tls_alpn_challenge(&start.client_hello())
        {
            start.into_stream(challenge.clone()).await?;
            return Ok(Accepted::Challenge);
        }
        let stream = start.into_stream(self.config.clone()).await?;
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        Ok(Accepted::Http {
            stream: Box::new(stream),
            h2,
        })
    }
}

/// ring, named once: the process may link another provider through a dependency, and rustls
/// then refuses to pick one by itself.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
