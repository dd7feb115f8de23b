//! Access tokens (JWT, HS256, 15 minutes), end-user tokens (JWT with an audience of their
//! own, minted by an application's backend for one end user) and opaque tokens (refresh,
//! password reset, invitations), which are stored only as their SHA-256.

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::secrets::Secret;

const ISSUER: &str = "weft";
const AUDIENCE: &str = "weft-api";
/// The audience of end-user tokens: never accepted where an access token is, nor the reverse.
const END_USER_AUDIENCE: &str = "weft-end-user";
/// How long an access token is valid.
pub const ACCESS_TOKEN_TTL: Duration = Duration::minutes(15);

/// The claims of both kinds of token; only end-user tokens carry `app` and `key`, only
/// access tokens `sid` (the session, i.e. the refresh-token family, they were issued for).
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    sub: Uuid,
    exp: i64,
    iat: i64,
    jti: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    app: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sid: Option<Uuid>,
}

/// What an access token says: this user, in this session, until `exp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessClaims {
    pub user_id: Uuid,
    /// The session (refresh-token family) it was issued for; logging out of it, or a
    /// password reset, ends it.
    pub session_id: Option<Uuid>,
    pub exp: i64,
}

/// What an end-user token says: this end user of this application, by that API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndUserClaims {
    /// The `end_users` row.
    pub sub: Uuid,
    /// The application.
    pub app: Uuid,
    /// The API key it was minted with; revoking the key ends the token.
    pub key: Uuid,
    pub exp: i64,
}

/// Signs and verifies access tokens and end-user tokens with the configured secret.
pub struct TokenSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    end_user_validation: Validation,
}

impl TokenSigner {
    pub fn new(secret: &Secret) -> TokenSigner {
        // The algorithm is pinned: a token announcing any other (`none` included) is refused.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        let mut end_user_validation = validation.clone();
        end_user_validation.set_audience(&[END_USER_AUDIENCE]);
        end_user_validation.leeway = 0;
        TokenSigner {
            encoding: EncodingKey::from_secret(secret.expose()),
            decoding: DecodingKey::from_secret(secret.expose()),
            validation,
            end_user_validation,
        }
    }

    /// A signed token for `audience` about `sub`, valid for `ttl`, and when it expires.
    fn sign(
        &self,
        audience: &str,
        sub: Uuid,
        ttl: Duration,
        (app, key, sid): (Option<Uuid>, Option<Uuid>, Option<Uuid>),
    ) -> AppResult<(String, DateTime<Utc>)> {
        let now = Utc::now();
        let expires_at = now + ttl;
        let claims = Claims {
            iss: ISSUER.into(),
            aud: audience.into(),
            sub,
            exp: expires_at.timestamp(),
            iat: now.timestamp(),
            jti: Uuid::new_v4(),
            app,
            key,
            sid,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(AppError::internal)?;
        Ok((token, expires_at))
    }

    /// A new access token for `user_id` in the session `session_id`, and when it expires.
    pub fn issue(&self, user_id: Uuid, session_id: Uuid) -> AppResult<(String, DateTime<Utc>)> {
        self.sign(
            AUDIENCE,
            user_id,
            ACCESS_TOKEN_TTL,
            (None, None, Some(session_id)),
        )
    }

    /// A new end-user token valid for `ttl`, and when it expires.
    pub fn issue_end_user(
        &self,
        end_user_id: Uuid,
        application_id: Uuid,
        api_key_id: Uuid,
        ttl: Duration,
    ) -> AppResult<(String, DateTime<Utc>)> {
        self.sign(
            END_USER_AUDIENCE,
            end_user_id,
            ttl,
            (Some(application_id), Some(api_key_id), None),
        )
    }

    /// What a currently valid end-user token of ours says (signature, issuer, audience and
    /// expiry checked); whether its key still stands is for the caller to check.
    pub fn verify_end_user(&self, token: &str) -> Option<EndUserClaims> {
        let claims =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.end_user_validation)
                .ok()?
                .claims;
        Some(EndUserClaims {
            sub: claims.sub,
            app: claims.app?,
            key: claims.key?,
            exp: claims.exp,
        })
    }

    /// What a currently valid access token of ours says (all required claims present and
    /// checked), or `None` for any other token.
    pub fn verify(&self, token: &str) -> Option<AccessClaims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| AccessClaims {
                user_id: data.claims.sub,
                session_id: data.claims.sid,
                exp: data.claims.exp,
            })
    }
}

/// A new random opaque token: 32 bytes, hex encoded.
pub fn new_opaque_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// What is stored of an opaque token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(key: &[u8]) -> TokenSigner {
        TokenSigner::new(&Secret::new(key.to_vec()))
    }

    #[test]
    fn a_token_verifies_only_with_its_key() {
        let a = signer(b"key-a-key-a-key-a-key-a-key-a-key-a");
        let b = signer(b"key-b-key-b-key-b-key-b-key-b-key-b");
        let user = Uuid::new_v4();
        let session = Uuid::new_v4();
        let (token, expires_at) = a.issue(user, session).unwrap();
        let claims = a.verify(&token).unwrap();
        assert_eq!(claims.user_id, user);
        assert_eq!(claims.session_id, Some(session));
        assert_eq!(claims.exp, expires_at.timestamp());
        assert_eq!(b.verify(&token), None);
        assert_eq!(a.verify(&new_opaque_token()), None);
    }

    #[test]
    fn end_user_tokens_and_access_tokens_are_not_interchangeable() {
        let a = signer(b"key-a-key-a-key-a-key-a-key-a-key-a");
        let b = signer(b"key-b-key-b-key-b-key-b-key-b-key-b");
        let (end_user, app, key) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let (token, expires_at) = a
            .issue_end_user(end_user, app, key, Duration::seconds(60))
            .unwrap();
        let claims = a.verify_end_user(&token).unwrap();
        assert_eq!((claims.sub, claims.app, claims.key), (end_user, app, key));
        assert_eq!(claims.exp, expires_at.timestamp());
        assert_eq!(a.verify(&token), None, "not an access token");
        assert_eq!(b.verify_end_user(&token), None, "another key");
        let (access, _) = a.issue(end_user, Uuid::new_v4()).unwrap();
        assert_eq!(a.verify_end_user(&access), None, "not an end-user token");
        let (expired, _) = a
            .issue_end_user(end_user, app, key, Duration::seconds(-1))
            .unwrap();
        assert_eq!(a.verify_end_user(&expired), None, "expired");
    }

    #[test]
    fn opaque_tokens_are_random_and_hashed() {
        let (x, y) = (new_opaque_token(), new_opaque_token());
        assert_ne!(x, y);
        assert_eq!(x.len(), 64);
        assert_eq!(hash_token(&x).len(), 64);
        assert_ne!(hash_token(&x), x);
    }
}
