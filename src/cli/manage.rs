//! `qr-bridge users …` and `qr-bridge passkeys …`: requests to the manager, answered as text or `--json`.

use std::io::Write;

use anyhow::Context as _;
use clap::Subcommand;

use std::time::{SystemTime, UNIX_EPOCH};

use crate::audit::{AuditEvent, Query};
use crate::manage::{Manager, Order, PasskeyView, Reply, Request, UserView, socket};
use crate::session::{Requester, Timestamp};
use crate::settings::{Settings, StoreKind};

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List the users of every app, or of one.
    List {
        #[arg(long, value_name = "APP ID")]
        app: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One user with their passkeys.
    Show {
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove a user and their passkeys; every token they hold stops validating at once.
    Remove {
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Make every token the user holds fail validation from now on (a lost or stolen phone).
    SignOut {
        user: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PasskeysCommand {
    /// A user's passkeys: id (what `revoke` takes), when made, when last used.
    List {
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a passkey: it can no longer sign in, and its user is signed out everywhere.
    Revoke {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

/// `qr-bridge audit`: the trail, filtered.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[arg(long, value_name = "APP ID")]
    app: Option<String>,
    #[arg(long, value_name = "USER ID")]
    user: Option<String>,
    /// Only events from then on: a time ago (`24h`, `7d`) or a time (`2026-11-30T08:00:00Z`).
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    #[arg(long)]
    json: bool,
}

pub async fn audit(settings: &Settings, args: AuditArgs) -> anyhow::Result<()> {
    let since = args.since.as_deref().map(since).transpose()?;
    let query = Query {
        app: args.app,
        user: args.user,
        since,
    };
    answer(settings, Request::Audit { query }, args.json).await
}

/// `24h` ago, or the time written.
fn since(text: &str) -> anyhow::Result<Timestamp> {
    let at = match humantime::parse_duration(text) {
        Ok(ago) => SystemTime::now()
            .checked_sub(ago)
            .unwrap_or(UNIX_EPOCH),
        Err(_) => humantime::parse_rfc3339_weak(text).map_err(|_| {
            anyhow::anyhow!("--since: {text:?} is neither a duration (24h, 7d) nor a time (2026-11-30T08:00:00Z)")
        })?,
    };
    let ms = at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    Ok(Timestamp::from_millis(
        u64::try_from(ms).unwrap_or(u64::MAX),
    ))
}

pub async fn users(settings: &Settings, command: UsersCommand) -> anyhow::Result<()> {
    let (request, json) = match command {
        UsersCommand::List { app, json } => (Request::ListUsers { app }, json),
        UsersCommand::Show { user, json } => (Request::ShowUser { user }, json),
        UsersCommand::Remove { user, json } => (Request::RemoveUser { user }, json),
        UsersCommand::SignOut { user, json } => (Request::SignOut { user }, json),
    };
    answer(settings, request, json).await
}

pub async fn passkeys(settings: &Settings, command: PasskeysCommand) -> anyhow::Result<()> {
    let (request, json) = match command {
        PasskeysCommand::List { user, json } => (Request::ListPasskeys { user }, json),
        PasskeysCommand::Revoke { id, json } => (Request::RevokePasskey { passkey: id }, json),
    };
    answer(settings, request, json).await
}

/// Runs `request` where the users are: the running bridge's admin socket on the embedded store
/// (its files are its own while it runs), otherwise the store itself.
async fn answer(settings: &Settings, request: Request, json: bool) -> anyhow::Result<()> {
    let done = request.clone();
    let order = Order {
        operator: crate::manage::operator(),
        request,
    };
    let reply = match &settings.store {
        StoreKind::Memory => match socket::ask(&settings.data_dir, &order).await? {
            Some(reply) => reply.map_err(anyhow::Error::msg)?,
            None => {
                // No bridge answers: the files are edited here, under the bridge's own lock, so
                // a bridge starting meanwhile waits for no one and overwrites nothing.
                let _held = socket::hold(&settings.data_dir).map_err(|e| {
                    anyhow::anyhow!("{e:#}, but its admin socket does not answer; try again")
                })?;
                here(settings)
                    .await?
                    .run(order.request, &order.operator)
                    .await?
            }
        },
        StoreKind::Redis { .. } => {
            here(settings)
                .await?
                .run(order.request, &order.operator)
                .await?
        }
    };
    let mut out = std::io::stdout().lock();
    if json {
        let value = match &reply {
            Reply::Users(users) => serde_json::to_value(users)?,
            Reply::User(user) => serde_json::to_value(user)?,
            Reply::Passkeys(passkeys) => serde_json::to_value(passkeys)?,
            Reply::SignedOut { user, at } => {
                serde_json::json!({"user": user, "signed_out_at": at})
            }
            Reply::Audit(events) => {
                let mut list = Vec::with_capacity(events.len());
                for event in events {
                    let mut value = serde_json::to_value(event)?;
                    value["at"] = crate::clock::iso8601(event.at).into();
                    list.push(value);
                }
                serde_json::Value::Array(list)
            }
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(());
    }
    match reply {
        Reply::Users(users) if users.is_empty() => writeln!(out, "No users.")?,
        Reply::Users(users) => {
            for user in &users {
                writeln!(out, "{}", user_line(user))?;
            }
        }
        Reply::User(user) => {
            writeln!(out, "{}", user_line(&user))?;
            for passkey in &user.passkeys {
                writeln!(out, "  passkey {}", passkey_line(passkey))?;
            }
        }
        Reply::Passkeys(passkeys) if passkeys.is_empty() => writeln!(out, "No passkeys.")?,
        Reply::Passkeys(passkeys) => {
            for passkey in &passkeys {
                writeln!(out, "{}", passkey_line(passkey))?;
            }
        }
        Reply::Audit(events) if events.is_empty() => writeln!(out, "No events.")?,
        Reply::Audit(events) => {
            for event in &events {
                writeln!(out, "{}", event_line(event))?;
            }
        }
        Reply::SignedOut { user, at } => {
            let what = match done {
                Request::RemoveUser { .. } => format!("Removed {}", user.id),
                Request::RevokePasskey { passkey } => {
                    format!("Revoked passkey {passkey} of {}", user.id)
                }
                _ => format!("Signed out {}", user.id),
            };
            writeln!(
                out,
                "{what} (app {}): every token issued before {at} now fails validation.",
                user.app_id
            )?;
        }
    }
    Ok(())
}

async fn here(settings: &Settings) -> anyhow::Result<Manager> {
    let store = crate::store::open(
        &settings.store,
        &settings.redis_prefix,
        &settings.data_dir,
        &crate::clock::Clock::system(),
    )
    .await
    .context("opening the store")?;
    Ok(Manager::new(
        store,
        settings.apps.clone(),
        settings.audit_retention,
    ))
}

fn user_line(user: &UserView) -> String {
    format!(
        "{}  app {}  {}  {} passkey(s)  since {}",
        user.id,
        user.app_id,
        user.external_user_id.as_deref().unwrap_or("-"),
        user.passkeys.len(),
        user.created_at
    )
}

fn event_line(event: &AuditEvent) -> String {
    let mut line = format!(
        "{}  {:?}  app {}",
        crate::clock::iso8601(event.at),
        event.action,
        event.app_id
    );
    let seen = |who: &Requester| {
        let agent: String = (who.user_agent.as_deref().unwrap_or("?").chars())
            .take(60)
            .collect();
        format!("{} \"{agent}\"", who.address.as_deref().unwrap_or("?"))
    };
    let parts = [
        event.user_id.as_ref().map(|u| format!("user {u}")),
        event.passkey_id.as_ref().map(|p| format!("passkey {p}")),
        event.session_id.as_ref().map(|s| format!("session {s}")),
        event
            .desktop
            .as_ref()
            .map(|d| format!("desktop {}", seen(d))),
        event.phone.as_ref().map(|p| format!("phone {}", seen(p))),
        event.reason.as_ref().map(|r| format!("reason {r}")),
        event.started_by.as_ref().map(|s| format!("started by {s}")),
        event.token_id.as_ref().map(|t| format!("token {t}")),
        event.operator.as_ref().map(|o| format!("by {o}")),
    ];
    for part in parts.into_iter().flatten() {
        line.push_str("  ");
        line.push_str(&part);
    }
    line
}

fn passkey_line(passkey: &PasskeyView) -> String {
    format!(
        "{}  made {}  last used {}",
        passkey.id,
        passkey.created_at,
        passkey.last_used_at.as_deref().unwrap_or("never")
    )
}
