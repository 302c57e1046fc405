//! Session tokens after issue: validation, introspection (RFC 7662) and revocation (RFC 7009).

use super::{Bridge, BridgeError, Introspected};
use crate::apps::App;
use crate::audit::{Action, AuditEvent};
use crate::session::{Requester, SessionId, State, Timestamp, UserId};
use crate::token::{Claims, TokenError};

impl Bridge {
    /// Claims of a live session token this deployment issued, for whichever app.
    pub async fn validate(&self, token: &str) -> Result<Claims, BridgeError> {
        let claims = self.tokens.verify(token)?;
        if self.store.is_token_revoked(&claims.jti).await? {
            return Err(TokenError::Revoked.into());
        }
        // Issued before its user was signed out everywhere (a lost phone, a revoked passkey)?
        // `iat` is whole seconds, rounded down: a token of the sign-out's own second is refused
        // too, the safe side.
        let user = UserId::new(claims.sub.clone());
        if let Some(at) = self.store.signed_out_at(&claims.aud, &user).await?
            && claims.iat.saturating_mul(1000) < at.as_millis()
        {
            return Err(TokenError::Revoked.into());
        }
        Ok(claims)
    }

    /// RFC 7662 for the app's backend: active only for a live token issued to this same app.
    pub async fn introspect(&self, app: &App, token: &str) -> Result<Introspected, BridgeError> {
        match self.validate(token).await {
            Ok(claims) if claims.aud == app.id => Ok(Introspected::Active(Box::new(claims))),
            Ok(_) | Err(BridgeError::Token(_)) => Ok(Introspected::Inactive),
            Err(e) => Err(e),
        }
    }

    /// RFC 7009 for the app's backend: ends one of its own tokens before it expires. Anything
    /// else (another app's token, an expired or a malformed one) is left alone, and answered
    /// alike, so the endpoint tells nothing about tokens that are not the caller's.
    pub async fn revoke(&self, app: &App, token: &str) -> Result<(), BridgeError> {
        let Ok(claims) = self.tokens.verify(token) else {
            return Ok(());
        };
        if claims.aud != app.id {
            return Ok(());
        }
        let until = Timestamp::from_millis(claims.exp.saturating_add(60).saturating_mul(1000));
        self.store.revoke_token(&claims.jti, until).await?;
        let mut event = AuditEvent::new(Action::TokenRevoked, &app.id, self.store.now().await?)
            .user(&claims.sub);
        event.token_id = Some(claims.jti.clone());
        self.recorder.record(event).await;
        Ok(())
    }

    /// "This wasn't me": the phone that just approved a sign-in takes it back. The token is
    /// revoked at once (its id is the session's), so the desktop's next check fails; the app's
    /// backend hears `session.disowned`. Only that phone may, and only once the session is
    /// completed; a repeat changes nothing more.
    pub async fn disown(
        &self,
        app: &App,
        id: &SessionId,
        by: &str,
        from: &Requester,
    ) -> Result<(), BridgeError> {
        let loaded = self.opened_by(app, id, by).await?;
        let session = &loaded.session;
        let done = match session.state_at(loaded.now) {
            State::Completed => session.completion().ok_or(BridgeError::NotFound)?,
            state => {
                return Err(crate::session::TransitionError::NotAllowed {
                    state,
                    event: crate::session::EventKind::Cancel,
                }
                .into());
            }
        };
        let jti = id.to_string();
        if self.store.is_token_revoked(&jti).await? {
            return Ok(());
        }
        // Past the token's own end, whenever it was minted during the session.
        let until = loaded
            .now
            .plus(self.tokens.ttl() + std::time::Duration::from_secs(60));
        self.store.revoke_token(&jti, until).await?;
        let mut event = AuditEvent::new(Action::Disowned, &app.id, loaded.now)
            .of_session(session)
            .user(done.user_id.as_str())
            .phone(from);
        event.token_id = Some(jti);
        self.recorder.record(event).await;
        Ok(())
    }
}
