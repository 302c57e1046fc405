//! Identifiers and instants that cross the edge as text and are parsed there once.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The id of a cross-device session: a random UUID, always written in its lower-case hyphenated form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionId(uuid::Uuid);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a session id is a UUID such as 7f0c2a4e-9b1d-4c3a-8e2f-5a6b7c8d9e0f")]
pub struct InvalidSessionId;

impl SessionId {
    /// Accepts only the canonical 36-character form, so one session has exactly one spelling
    /// (in URLs, store keys and logs alike).
    pub fn parse(text: &str) -> Result<Self, InvalidSessionId> {
        if text.len() != 36 {
            return Err(InvalidSessionId);
        }
        let id = uuid::Uuid::try_parse(text).map_err(|_| InvalidSessionId)?;
        if id.hyphenated().to_string() != text {
            return Err(InvalidSessionId);
        }
        Ok(Self(id))
    }

    /// Wraps a UUID the server generated; the domain itself never draws random numbers.
    pub fn from_uuid(id: uuid::Uuid) -> Self {
        Self(id)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for SessionId {
    type Err = InvalidSessionId;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl TryFrom<String> for SessionId {
    type Error = InvalidSessionId;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<SessionId> for String {
    fn from(id: SessionId) -> Self {
        id.to_string()
    }
}

/// An instant as milliseconds since the Unix epoch, on the clock of whichever store holds the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    pub const fn as_millis(self) -> u64 {
        self.0
    }

    pub fn plus(self, by: std::time::Duration) -> Self {
        Self(
            self.0
                .saturating_add(u64::try_from(by.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    /// Time left until `later`, zero once it has passed.
    pub fn until(self, later: Timestamp) -> std::time::Duration {
        std::time::Duration::from_millis(later.0.saturating_sub(self.0))
    }
}

/// The id of a person known to one app, e.g. `usr_3kq9…`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("external_user_id must be 1 to 256 characters without control characters")]
pub struct InvalidExternalUserId;

/// An integrator's own id for a person, trimmed; blank means none.
pub fn parse_external_user_id(text: &str) -> Result<Option<String>, InvalidExternalUserId> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.chars().count() > 256 || text.chars().any(char::is_control) {
        return Err(InvalidExternalUserId);
    }
    Ok(Some(text.to_owned()))
}

/// A bearer secret handed to the desktop on completion. Its `Debug` hides the value so that a
/// session printed in a log line never carries a usable token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionToken(String);

impl SessionToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_have_one_spelling() {
        let text = "7f0c2a4e-9b1d-4c3a-8e2f-5a6b7c8d9e0f";
        assert_eq!(SessionId::parse(text).unwrap().to_string(), text);
        for bad in [
            "",
            "7F0C2A4E-9B1D-4C3A-8E2F-5A6B7C8D9E0F",
            "7f0c2a4e9b1d4c3a8e2f5a6b7c8d9e0f",
            "{7f0c2a4e-9b1d-4c3a-8e2f-5a6b7c8d9e0f}",
            "urn:uuid:7f0c2a4e-9b1d-4c3a-8e2f-5a6b7c8d9e0f",
            "7f0c2a4e-9b1d-4c3a-8e2f-5a6b7c8d9e0g",
            "../../etc/passwd",
            "7f0c2a4e-9b1d-4c3a-8e2f-5a6b7c8d9e0f ",
        ] {
            assert_eq!(SessionId::parse(bad), Err(InvalidSessionId), "{bad:?}");
        }
    }

    #[test]
    fn external_user_ids_are_trimmed_and_bounded() {
        assert_eq!(
            parse_external_user_id("  ada@shop.test "),
            Ok(Some("ada@shop.test".into()))
        );
        assert_eq!(parse_external_user_id(" "), Ok(None));
        assert_eq!(
            parse_external_user_id(&"x".repeat(257)),
            Err(InvalidExternalUserId)
        );
        assert_eq!(
            parse_external_user_id("a\u{0}b"),
            Err(InvalidExternalUserId)
        );
    }

    #[test]
    fn tokens_do_not_leak_through_debug() {
        let token = SessionToken::new("eyJhbGciOiJSUzI1NiJ9.secret");
        assert!(!format!("{token:?}").contains("secret"));
    }
}
