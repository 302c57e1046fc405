//! `qr-bridge users …` and `qr-bridge passkeys …`: requests to the manager, answered as text or `--json`.

use std::io::Write;

use anyhow::Context as _;
use clap::Subcommand;

use crate::manage::{Manager, PasskeyView, Reply, Request, UserView, socket};
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
    let reply = match &settings.store {
        StoreKind::Memory => match socket::ask(&settings.data_dir, &request).await? {
            Some(reply) => reply.map_err(anyhow::Error::msg)?,
            None => here(settings).await?.run(request).await?,
        },
        StoreKind::Redis { .. } => here(settings).await?.run(request).await?,
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
    Ok(Manager::new(store, settings.apps.clone()))
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

fn passkey_line(passkey: &PasskeyView) -> String {
    format!(
        "{}  made {}  last used {}",
        passkey.id,
        passkey.created_at,
        passkey.last_used_at.as_deref().unwrap_or("never")
    )
}
