//! The `qr-bridge` command line: `serve` (the default), `apps add|list|remove` (which edit the settings file in place), `keys rotate|list|import`, and `users`/`passkeys` (see `manage`).

mod manage;
mod webhook;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use serde::Serialize;
use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, value};

use crate::apps::{AppConfig, parse_origin, parse_qr_base_url};
use crate::bridge::keys as bridge_keys;
use crate::secret;
use crate::settings::Settings;
use crate::token::Role;

#[derive(Debug, Parser)]
#[command(
    name = "qr-bridge",
    version,
    about = "Sign in on a desktop by scanning a QR code with your phone's passkey"
)]
pub struct Cli {
    /// The settings file (listen address, public origin, store, session TTL, apps).
    #[arg(
        long,
        global = true,
        env = "QR_BRIDGE_CONFIG",
        default_value = "Leptos.toml"
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the bridge (what plain `qr-bridge` does).
    Serve,
    /// Manage the apps (tenants) in the settings file. A running bridge picks changes up on restart.
    #[command(subcommand)]
    Apps(AppsCommand),
    /// Manage the key session tokens are signed with.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The people who signed up: list, show, remove, or sign out everywhere. Works while the
    /// bridge runs (through its admin socket on the embedded store).
    #[command(subcommand)]
    Users(manage::UsersCommand),
    /// Their passkeys: list one user's, or revoke one (it can no longer sign in, and the user's
    /// tokens stop validating).
    #[command(subcommand)]
    Passkeys(manage::PasskeysCommand),
    /// The audit trail: sign-ins, registrations, refused passkeys, declines and revocations,
    /// with who, which app, which passkey, from where and when.
    Audit(manage::AuditArgs),
}

/// The signing keys live in the store (Redis, or `<data_dir>/signing-keys.json` for the embedded
/// store), so every instance shares them; running bridges pick a change up within 10 s.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Sign with the key published at the last rotation, publish a new next key, and keep the
    /// old key in the JWKS until every token it signed has expired (token_ttl).
    Rotate,
    /// List the keys: id, role (current, next, retired) and when they were made or retired.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Sign with an existing RSA key (PEM) from now on, e.g. the key file of an older deployment.
    Import { path: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// Register an app and print its keys; the secret key is shown only this once.
    Add {
        /// The name people see on the approval page.
        name: String,
        /// An origin allowed to call the API from a browser (repeatable).
        #[arg(long = "origin", value_name = "URL")]
        origins: Vec<String>,
        /// The WebAuthn relying-party id; defaults to the approval page's host.
        #[arg(long, value_name = "ID")]
        rp_id: Option<String>,
        /// The app's own approval page base: QR codes then point to <URL>/mobile-auth?session_id=….
        #[arg(long = "qr-base-url", value_name = "URL")]
        qr_base_url: Option<String>,
        /// Let a phone without a passkey create one (and an account) when asked to sign in.
        #[arg(long)]
        open_signup: bool,
        /// Let browsers name the external_user_id of a new account (needs --open-signup; see
        /// the README's security model for the risk).
        #[arg(long, requires = "open_signup")]
        browser_external_ids: bool,
        /// Serve this app's sign-in page on the bridge itself, at /login/<app id>.
        #[arg(long)]
        hosted_login: bool,
        /// Number matching: the phone must pick the number the desktop shows before approving.
        #[arg(long)]
        confirm_code: bool,
        /// Print one JSON object: app_id, publishable_key, secret_key.
        #[arg(long)]
        json: bool,
    },
    /// List the registered apps.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove an app by id.
    Remove { id: String },
    /// Send the app's backend signed webhooks (session.completed, session.denied,
    /// passkey.created, passkey.revoked) at URL; prints the new signing secret once.
    Webhook {
        id: String,
        /// Where to POST them (https, or http on this machine).
        #[arg(long, value_name = "URL", required_unless_present = "off")]
        url: Option<String>,
        /// Stop sending them, and forget the secret.
        #[arg(long, conflicts_with = "url")]
        off: bool,
        /// Print one JSON object: app_id, webhook_url, webhook_secret.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => crate::server::serve(logged(&cli.config)?).await,
        Command::Apps(command) => {
            crate::logging::init(Default::default(), "info")?;
            apps(&cli.config, command)
        }
        Command::Keys(command) => keys(&logged(&cli.config)?, command).await,
        Command::Users(command) => manage::users(&logged(&cli.config)?, command).await,
        Command::Passkeys(command) => manage::passkeys(&logged(&cli.config)?, command).await,
        Command::Audit(args) => manage::audit(&logged(&cli.config)?, args).await,
    }
}

/// The settings, with the log they ask for started.
fn logged(config: &Path) -> anyhow::Result<Settings> {
    let settings = Settings::load(config)?;
    crate::logging::init(settings.log_format, &settings.log_level)?;
    Ok(settings)
}

async fn keys(settings: &Settings, command: KeysCommand) -> anyhow::Result<()> {
    let store = crate::store::open(
        &settings.store,
        &settings.redis_prefix,
        &settings.data_dir,
        &crate::clock::Clock::system(),
    )
    .await
    .context("opening the store")?;
    let ttl = settings.token_ttl;
    let mut out = std::io::stdout().lock();
    match command {
        KeysCommand::Rotate => {
            let pem = crate::token::generate_pem()?;
            let ring = bridge_keys::change(&*store, settings, |ring, now| {
                ring.rotate(pem.clone(), now, ttl)
            })
            .await?;
            let current = ring.current().map_or("", |k| k.kid.as_str());
            writeln!(out, "Rotated: now signing with {current}.")?;
            writeln!(
                out,
                "Running bridges pick it up within 10 s; the old key stays in the JWKS for {} after that.",
                humantime::format_duration(ttl)
            )?;
        }
        KeysCommand::Import { path } => {
            let pem = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let ring = bridge_keys::change(&*store, settings, |ring, now| {
                ring.import(pem.clone(), now, ttl)
            })
            .await?;
            let current = ring.current().map_or("", |k| k.kid.as_str());
            writeln!(
                out,
                "Imported {}: now signing with {current}.",
                path.display()
            )?;
        }
        KeysCommand::List { json } => {
            let Some(stored) = store.load_keys().await? else {
                if json {
                    writeln!(out, "[]")?;
                } else {
                    writeln!(
                        out,
                        "No signing keys yet: the bridge makes them when it first starts."
                    )?;
                }
                return Ok(());
            };
            let ring = bridge_keys::decode(&stored.json)?;
            let rows: Vec<_> = ring
                .keys
                .iter()
                .map(|k| {
                    let (role, since) = match k.role {
                        Role::Next => ("next", k.created_at),
                        Role::Current => ("current", k.created_at),
                        Role::Retired { at } => ("retired", at),
                    };
                    (k.kid.as_str(), role, crate::clock::iso8601(since))
                })
                .collect();
            if json {
                let list: Vec<_> = rows
                    .iter()
                    .map(|(kid, role, since)| serde_json::json!({"kid": kid, "role": role, "since": since}))
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
            } else {
                for (kid, role, since) in rows {
                    writeln!(out, "{kid}  {role:<7}  since {since}")?;
                }
            }
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct NewKeys<'a> {
    app_id: &'a str,
    publishable_key: &'a str,
    secret_key: &'a str,
}

fn apps(path: &Path, command: AppsCommand) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        AppsCommand::Add {
            name,
            origins,
            rp_id,
            qr_base_url,
            open_signup,
            browser_external_ids,
            hosted_login,
            confirm_code,
            json,
        } => {
            let mut doc = read_document(path)?;
            let bridge_host = bridge_host(&doc)?;
            let origins = origins
                .iter()
                .map(|o| {
                    parse_origin(o)
                        .map_err(anyhow::Error::msg)
                        .context("--origin")
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let page_host = match &qr_base_url {
                Some(u) => parse_qr_base_url(u)
                    .map_err(anyhow::Error::msg)
                    .context("--qr-base-url")?
                    .host_str()
                    .unwrap_or_default()
                    .to_owned(),
                None => bridge_host,
            };
            let secret_key = secret::generate("sk_");
            let config = AppConfig {
                id: secret::random_id("app_"),
                name,
                publishable_key: secret::generate("cli_"),
                secret_key_sha256: secret::digest(&secret_key),
                allowed_origins: origins,
                rp_id: rp_id.unwrap_or(page_host),
                primary_qr_base_url: qr_base_url,
                open_signup,
                browser_external_ids,
                hosted_login,
                confirm_code,
                webhook_url: None,
                webhook_secret: None,
            };
            append_app(&mut doc, &config);
            write_checked(path, &doc, false)?;
            if json {
                let keys = NewKeys {
                    app_id: &config.id,
                    publishable_key: &config.publishable_key,
                    secret_key: &secret_key,
                };
                writeln!(out, "{}", serde_json::to_string(&keys)?)?;
            } else {
                writeln!(out, "Added app {:?} to {}", config.name, path.display())?;
                writeln!(out, "  app id:          {}", config.id)?;
                writeln!(out, "  publishable key: {}", config.publishable_key)?;
                writeln!(out, "  secret key:      {secret_key}")?;
                writeln!(
                    out,
                    "Keep the secret key now: only its hash is stored. Restart the bridge to serve the app."
                )?;
            }
        }
        AppsCommand::List { json } => {
            let settings = Settings::load(path)?;
            let mut apps: Vec<_> = settings.apps.iter().collect();
            apps.sort_by(|a, b| a.id.cmp(&b.id));
            if json {
                let list: Vec<_> = apps
                    .iter()
                    .map(|a| {
                        serde_json::json!({
                            "app_id": a.id, "name": a.name, "publishable_key": a.publishable_key,
                            "allowed_origins": a.allowed_origins, "rp_id": a.rp_id,
                            "primary_qr_base_url": a.primary_qr_base_url.as_ref().map(|u| u.as_str()),
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
            } else if apps.is_empty() {
                writeln!(
                    out,
                    "No apps yet: add one with `qr-bridge apps add NAME --origin URL`."
                )?;
            } else {
                for a in apps {
                    writeln!(
                        out,
                        "{}  {:?}  rp_id {}  origins {}",
                        a.id,
                        a.name,
                        a.rp_id,
                        a.allowed_origins.join(", ")
                    )?;
                    if let Some(base) = &a.primary_qr_base_url {
                        writeln!(out, "    approval page {base}mobile-auth")?;
                    }
                }
            }
        }
        AppsCommand::Remove { id } => {
            let mut doc = read_document(path)?;
            let apps = doc.get_mut("apps").and_then(Item::as_array_of_tables_mut);
            let Some(apps) = apps else {
                bail!("no app {id:?} in {}", path.display())
            };
            let Some(index) = apps
                .iter()
                .position(|t| t.get("id").and_then(Item::as_str) == Some(id.as_str()))
            else {
                bail!("no app {id:?} in {}", path.display())
            };
            apps.remove(index);
            write_checked(path, &doc, false)?;
            writeln!(
                out,
                "Removed app {id}. Restart the bridge for it to take effect."
            )?;
        }
        AppsCommand::Webhook { id, url, off, json } => {
            webhook::set(path, &id, url.filter(|_| !off), json, &mut out)?;
        }
    }
    Ok(())
}

/// The settings file as an editable document; a missing file starts empty.
fn read_document(path: &Path) -> anyhow::Result<DocumentMut> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .parse()
            .with_context(|| format!("{} is not valid TOML", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DocumentMut::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The host of the hosted approval page, as the settings in `doc` define it.
fn bridge_host(doc: &DocumentMut) -> anyhow::Result<String> {
    let settings = Settings::from_toml(&doc.to_string())?;
    Ok(url::Url::parse(&settings.public_origin)?
        .host_str()
        .unwrap_or("localhost")
        .to_owned())
}

fn append_app(doc: &mut DocumentMut, app: &AppConfig) {
    let mut table = Table::new();
    table.insert("id", value(&app.id));
    table.insert("name", value(&app.name));
    table.insert("publishable_key", value(&app.publishable_key));
    table.insert("secret_key_sha256", value(&app.secret_key_sha256));
    table.insert(
        "allowed_origins",
        value(app.allowed_origins.iter().collect::<Array>()),
    );
    table.insert("rp_id", value(&app.rp_id));
    if let Some(base) = &app.primary_qr_base_url {
        table.insert("primary_qr_base_url", value(base));
    }
    if app.open_signup {
        table.insert("open_signup", value(true));
    }
    if app.browser_external_ids {
        table.insert("browser_external_ids", value(true));
    }
    if app.hosted_login {
        table.insert("hosted_login", value(true));
    }
    if app.confirm_code {
        table.insert("confirm_code", value(true));
    }
    let apps = doc
        .entry("apps")
        .or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()));
    if let Some(apps) = apps.as_array_of_tables_mut() {
        apps.push(table);
    }
}

/// Checks the edited settings as the server would, then replaces the file in one rename so a
/// crash never leaves it half-written. `private` makes it the owner's only (it holds a secret).
fn write_checked(path: &Path, doc: &DocumentMut, private: bool) -> anyhow::Result<()> {
    let text = doc.to_string();
    Settings::from_toml(&text)
        .context("the change would make the settings invalid; nothing was written")?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    file.write_all(text.as_bytes())?;
    // The new file keeps the old one's owner, group and mode (the service may read it through
    // its group), less any access for others when it holds a secret. NamedTempFile starts 0600,
    // so a secret is never readable by others, not even for a moment.
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let mode = if private {
            meta.mode() & 0o770
        } else {
            meta.mode()
        };
        // Only root may give a file away; anyone else writes it as themselves anyway.
        let _ = std::os::unix::fs::fchown(file.as_file(), Some(meta.uid()), Some(meta.gid()));
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    file.as_file().sync_all()?;
    file.persist(path)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}
