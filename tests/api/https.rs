//! HTTPS in the binary: certificate files picked up again when renewed, HTTP/2, the redirect listener, and certificates from a real ACME server (pebble).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use reqwest::{StatusCode, Version};

use crate::cli::{listening_on, serve, serve_logged, wait_for_line};
use crate::helpers::{BRIDGE_ORIGIN, Client, SHOP_KEY, SHOP_ORIGIN, settings_toml};
use crate::kit::free_port;
use crate::kit::testing::tool;
use crate::phone::Phone;

/// A certificate authority of the test's own.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        Ca {
            cert: params.self_signed(&key).unwrap(),
            key,
        }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A certificate for `names`, as PEM (certificate, key).
    pub fn issue(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// Writes a pair the way certbot renews one: new files first, then each moved over the old.
pub fn install(dir: &Path, (cert, key): &(String, String)) {
    for (name, text) in [("cert.pem", cert), ("key.pem", key)] {
        let fresh = dir.join(format!("{name}.new"));
        std::fs::write(&fresh, text).unwrap();
        std::fs::rename(&fresh, dir.join(name)).unwrap();
    }
}

/// A client that trusts only `root` and finds `bridge.test` at `addr`.
fn trusting(root: &str, addr: SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(root.as_bytes()).unwrap())
        .resolve("bridge.test", addr)
        .https_only(true)
        .tls_info(true)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The end-entity certificate served now at `addr`, DER-encoded: a new client each time, since
/// a kept HTTP/2 connection would show the certificate of its own handshake.
async fn served_certificate(root: &str, addr: SocketAddr) -> Result<Vec<u8>, String> {
    let url = format!("https://bridge.test:{}/healthz", addr.port());
    let response = trusting(root, addr)
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .map(<[u8]>::to_vec)
        .ok_or_else(|| "no peer certificate".to_owned())
}

fn der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

/// Asks again until `addr` serves `want` (the bridge checks its files on a timer of its own).
async fn until_served(root: &str, addr: SocketAddr, want: &[u8], within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let got = served_certificate(root, addr).await;
        if got.as_deref() == Ok(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{addr} still serves another certificate after {within:?}: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A whole registration and sign-in through `http`, as the SDK and the phone page make them.
async fn sign_in_over(http: reqwest::Client, base: &str) {
    let client = Client::for_app(http, base, SHOP_KEY, SHOP_ORIGIN);
    let mut phone = Phone::new();
    let user = client.register(&mut phone, Some("ada")).await;
    let (s, options) = client.opened_sign_in().await;
    let (status, body) = client
        .verify(&s.session_id, &phone.sign(BRIDGE_ORIGIN, &options))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (signed_in, token) = client.completion(&s).await;
    assert_eq!(signed_in, user);
    let (status, body) = client.validate(&token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A bridge process that is killed when the test ends, failed or not.
pub struct Running(pub Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.0.take() {
            stop(child);
        }
    }
}

#[tokio::test]
async fn the_binary_serves_https_from_certificate_files_and_picks_up_a_renewal() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("QR Bridge test CA");
    install(dir.path(), &ca.issue(&["bridge.test"]));
    let config = dir.path().join("bridge.toml");
    let extra = format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"\ntls_watch_every = \"200ms\"\n\
         header_timeout = \"1s\"\nredirect_addr = \"127.0.0.1:0\"",
        dir.path().join("cert.pem").display(),
        dir.path().join("key.pem").display(),
    );
    std::fs::write(&config, settings_toml("5m", dir.path(), &extra)).unwrap();
    let (bridge, line, lines) = serve_logged(&config, &[]).expect("serves");
    let _bridge = Running(Some(bridge));
    assert!(line.contains("listening on https://"), "{line}");
    let addr: SocketAddr = listening_on(&line).parse().unwrap();
    let redirect = wait_for_line(&lines, "redirecting http://", Duration::from_secs(5))
        .expect("the redirect listener is announced");
    let base = format!("https://bridge.test:{}", addr.port());
    let http = trusting(&ca.pem(), addr);

    // HTTP/2 through ALPN, HTTP/1.1 for who asks only that, and HSTS on both.
    for (client, version) in [
        (http.clone(), Version::HTTP_2),
        (
            reqwest::Client::builder()
                .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
                .resolve("bridge.test", addr)
                .http1_only()
                .build()
                .unwrap(),
            Version::HTTP_11,
        ),
    ] {
        let response = client.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(
            (response.status(), response.version()),
            (StatusCode::OK, version)
        );
        assert_eq!(
            response.headers()["strict-transport-security"],
            "max-age=31536000"
        );
    }
    sign_in_over(http.clone(), &base).await;

    // A renewal is served without a restart.
    let renewed = ca.issue(&["bridge.test"]);
    install(dir.path(), &renewed);
    until_served(&ca.pem(), addr, &der(&renewed.0), Duration::from_secs(10)).await;
    wait_for_line(
        &lines,
        "serving the renewed certificate",
        Duration::from_secs(5),
    )
    .expect("the renewal is logged");

    // A broken renewal (someone else's key) keeps the good pair in service, and says why.
    let stranger = ca.issue(&["bridge.test"]);
    install(dir.path(), &(stranger.0.clone(), renewed.1.clone()));
    let kept = wait_for_line(
        &lines,
        "keeping the certificate being served",
        Duration::from_secs(5),
    )
    .expect("the broken pair is reported");
    assert!(kept.contains("do not belong together"), "{kept}");
    assert_eq!(
        served_certificate(&ca.pem(), addr).await,
        Ok(der(&renewed.0))
    );
    sign_in_over(http.clone(), &base).await;

    // The plain listener sends everyone to the public origin, whatever Host they name.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = plain
        .get(format!(
            "http://{}/login/shop?next=%2Fhome",
            listening_on(&redirect)
        ))
        .header("Host", "evil.test")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        response.headers()["location"],
        "https://bridge.test/login/shop?next=%2Fhome"
    );

    // A client that opens a connection and never says hello loses it.
    use tokio::io::AsyncReadExt;
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut byte)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "a silent connection is closed after header_timeout: {read:?}"
    );

    // So does one that finishes its handshake choosing HTTP/2, then never sends a request.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der(&ca.pem()).into()).unwrap();
    let mut client = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    client.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("bridge.test").unwrap();
    let mut quiet = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client))
        .connect(name, tcp)
        .await
        .unwrap();
    assert_eq!(quiet.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buffer = [0u8; 1024];
        // The bridge's own HTTP/2 preface (its settings) comes first, then the close.
        while let Ok(1..) = quiet.read(&mut buffer).await {}
    })
    .await;
    assert!(
        closed.is_ok(),
        "an idle HTTP/2 connection is closed after header_timeout"
    );
}

#[test]
fn tls_settings_that_cannot_work_stop_the_server_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bridge.toml");
    let https = "public_origin = \"https://bridge.test\"";
    let files = "tls_cert = \"/nonexistent/cert.pem\"\ntls_key = \"/nonexistent/key.pem\"";
    for (extra, named) in [
        (
            format!("{https}\ntls_cert = \"/nonexistent/cert.pem\""),
            "tls_cert",
        ),
        (format!("{https}\n{files}"), "/nonexistent/cert.pem"),
        (
            format!("public_origin = \"http://localhost:3000\"\n{files}"),
            "public_origin",
        ),
        (
            "redirect_addr = \"127.0.0.1:0\"".to_owned(),
            "redirect_addr",
        ),
        (
            "[acme]\ndomains = [\"10.0.0.1\"]".to_owned(),
            "acme.domains",
        ),
        (
            "[acme]\ndomains = [\"bridge.test\"]\nchallenge = \"http-01\"".to_owned(),
            "acme.challenge",
        ),
        (
            format!("{https}\n[acme]\ndomains = [\"other.test\"]"),
            "public_origin",
        ),
    ] {
        let text = format!(
            "store = \"memory\"\ndata_dir = \"{}\"\n{extra}\n",
            dir.path().display()
        );
        std::fs::write(&config, text).unwrap();
        let err = serve(&config, &[]).expect_err(&extra);
        assert!(err.contains(named), "{extra}: {err}");
    }
}

/// pebble (Let's Encrypt's test CA) and its DNS, which answers 127.0.0.1 for every name.
struct Pebble {
    processes: Vec<Child>,
    /// Trusted for pebble's own API (its TLS certificate comes from this test's CA).
    api_ca: PathBuf,
    directory: String,
    management: u16,
    api_ca_pem: String,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in self.processes.drain(..) {
            stop(child);
        }
    }
}

impl Pebble {
    /// Starts both, validating TLS-ALPN-01 at `tls_port` and HTTP-01 at `http_port` on 127.0.0.1.
    fn start(dir: &Path, pebble: &Path, tls_port: u16, http_port: u16) -> Pebble {
        let challtestsrv = pebble.with_file_name("pebble-challtestsrv");
        let ca = Ca::new("pebble API test CA");
        let (cert, key) = ca.issue(&["localhost", "127.0.0.1"]);
        let api_ca = dir.join("pebble-api-ca.pem");
        std::fs::write(&api_ca, ca.pem()).unwrap();
        std::fs::write(dir.join("pebble-cert.pem"), cert).unwrap();
        std::fs::write(dir.join("pebble-key.pem"), key).unwrap();
        let (api, management, dns, dns_management) =
            (free_port(), free_port(), free_port(), free_port());
        let config = serde_json::json!({ "pebble": {
            "listenAddress": format!("127.0.0.1:{api}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": dir.join("pebble-cert.pem"),
            "privateKey": dir.join("pebble-key.pem"),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        std::fs::write(dir.join("pebble.json"), config.to_string()).unwrap();
        let log = |name: &str| Stdio::from(std::fs::File::create(dir.join(name)).unwrap());
        let dns_server = Command::new(challtestsrv)
            .args(["-dns01", &format!("127.0.0.1:{dns}")])
            .args(["-management", &format!("127.0.0.1:{dns_management}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .stdout(log("challtestsrv.log"))
            .stderr(log("challtestsrv.err"))
            .spawn()
            .unwrap();
        let ca_server = Command::new(pebble)
            .arg("-config")
            .arg(dir.join("pebble.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            // No sleeps before validating, and no nonces refused at random (pebble's default
            // refuses 5% to test clients' retries; this test is about the bridge, not that).
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(log("pebble.log"))
            .stderr(log("pebble.err"))
            .spawn()
            .unwrap();
        let started = Pebble {
            processes: vec![dns_server, ca_server],
            api_ca,
            directory: format!("https://127.0.0.1:{api}/dir"),
            management,
            api_ca_pem: ca.pem(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", api)).is_err()
            || std::net::TcpStream::connect(("127.0.0.1", dns)).is_err()
        {
            assert!(
                Instant::now() < deadline,
                "pebble did not start: {}",
                std::fs::read_to_string(dir.join("pebble.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        started
    }

    /// The root pebble issues from, made at its start.
    async fn root(&self) -> String {
        let client = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.api_ca_pem.as_bytes()).unwrap(),
            )
            .build()
            .unwrap();
        let response = client
            .get(format!("https://127.0.0.1:{}/roots/0", self.management))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap()
    }
}

#[tokio::test]
async fn the_binary_gets_its_certificate_from_an_acme_server_and_keeps_it_across_a_restart() {
    let Some(pebble_bin) = tool("pebble") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let pebble = Pebble::start(dir.path(), &pebble_bin, port, free_port());
    let config = dir.path().join("bridge.toml");
    let extra = format!(
        "[acme]\ndomains = [\"bridge.test\"]\ncontact = [\"ops@bridge.test\"]\n\
         directory = \"{}\"\ndirectory_ca = \"{}\"",
        pebble.directory,
        pebble.api_ca.display()
    );
    std::fs::write(&config, settings_toml("5m", dir.path(), &extra)).unwrap();
    let addr = format!("127.0.0.1:{port}");
    let (bridge, line, lines) =
        serve_logged(&config, &[("QR_BRIDGE_ADDR", &addr)]).expect("serves");
    let first = Running(Some(bridge));
    assert!(
        line.contains(&format!("listening on https://{addr}")),
        "{line}"
    );

    let deployed = wait_for_line(&lines, "DeployedNewCert", Duration::from_secs(60));
    assert!(
        deployed.is_some(),
        "no certificate from pebble within 60 s; pebble said: {}",
        std::fs::read_to_string(dir.path().join("pebble.log")).unwrap_or_default()
    );
    let root = pebble.root().await;
    let addr: SocketAddr = addr.parse().unwrap();
    let http = trusting(&root, addr);
    let base = format!("https://bridge.test:{port}");
    let served = served_certificate(&root, addr)
        .await
        .expect("the bridge serves pebble's certificate, trusted through pebble's root");
    let (_, parsed) = x509_parser::parse_x509_certificate(&served).unwrap();
    let names: Vec<String> = parsed
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(names, ["DNSName(bridge.test)"]);
    let issuer = parsed.issuer().to_string();
    assert!(issuer.contains("Pebble"), "issued by pebble: {issuer}");
    sign_in_over(http, &base).await;
    // The cache holds private keys: the owner's alone.
    use std::os::unix::fs::PermissionsExt;
    let cache = std::fs::metadata(dir.path().join("acme")).unwrap();
    assert_eq!(cache.permissions().mode() & 0o777, 0o700);
    drop(first);

    // The cache keeps it: with pebble gone, a restart serves the same certificate at once.
    drop(pebble);
    let (bridge, _, lines) =
        serve_logged(&config, &[("QR_BRIDGE_ADDR", &addr.to_string())]).expect("serves again");
    let _second = Running(Some(bridge));
    wait_for_line(&lines, "DeployedCachedCert", Duration::from_secs(10))
        .expect("the cached certificate is used");
    assert_eq!(served_certificate(&root, addr).await, Ok(served));
}

#[tokio::test]
async fn with_http_01_the_redirect_listener_answers_the_acme_server() {
    let Some(pebble_bin) = tool("pebble") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (port, plain) = (free_port(), free_port());
    let pebble = Pebble::start(dir.path(), &pebble_bin, free_port(), plain);
    let config = dir.path().join("bridge.toml");
    let extra = format!(
        "redirect_addr = \"127.0.0.1:{plain}\"\n[acme]\ndomains = [\"bridge.test\"]\n\
         challenge = \"http-01\"\ndirectory = \"{}\"\ndirectory_ca = \"{}\"",
        pebble.directory,
        pebble.api_ca.display()
    );
    std::fs::write(&config, settings_toml("5m", dir.path(), &extra)).unwrap();
    let addr = format!("127.0.0.1:{port}");
    let (bridge, _, lines) = serve_logged(&config, &[("QR_BRIDGE_ADDR", &addr)]).expect("serves");
    let _bridge = Running(Some(bridge));
    // pebble's TLS-ALPN-01 port is nobody's: only the plain listener can have proven the name.
    let deployed = wait_for_line(&lines, "DeployedNewCert", Duration::from_secs(60));
    assert!(
        deployed.is_some(),
        "no certificate over HTTP-01 within 60 s; pebble said: {}",
        std::fs::read_to_string(dir.path().join("pebble.log")).unwrap_or_default()
    );
    let root = pebble.root().await;
    let served = served_certificate(&root, addr.parse().unwrap()).await;
    assert!(served.is_ok(), "{served:?}");
    // The plain listener still only redirects what is not a live challenge.
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!(
            "http://127.0.0.1:{plain}/.well-known/acme-challenge/guessed"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
