//! Access tokens (JWT, HS256, 15 minutes) and opaque tokens (refresh, password reset,
//! invitations), which are stored only as their SHA-256.

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
/// How long an access token is valid.
pub const ACCESS_TOKEN_TTL: Duration = Duration::minutes(15);

#[derive(Debug, Serialize, Deserialize)]
struct AccessClaims {
    iss: String,
    aud: String,
    sub: Uuid,
    exp: i64,
    iat: i64,
    jti: Uuid,
}

/// Signs and verifies access tokens with the configured secret.
pub struct TokenSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl TokenSigner {
    pub fn new(secret: &Secret) -> TokenSigner {
        // The algorithm is pinned: a token announcing any other (`none` included) is refused.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        TokenSigner {
            encoding: EncodingKey::from_secret(secret.expose()),
            decoding: DecodingKey::from_secret(secret.expose()),
            validation,
        }
    }

    /// A new access token for `user_id` and when it expires.
    pub fn issue(&self, user_id: Uuid) -> AppResult<(String, DateTime<Utc>)> {
        let now = Utc::now();
        let expires_at = now + ACCESS_TOKEN_TTL;
        let claims = AccessClaims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: user_id,
            exp: expires_at.timestamp(),
            iat: now.timestamp(),
            jti: Uuid::new_v4(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(AppError::internal)?;
        Ok((token, expires_at))
    }

    /// The user an access token was issued to, or `None` for any token that is not a
    /// currently valid access token of ours (all required claims present and checked).
    pub fn verify(&self, token: &str) -> Option<Uuid> {
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims.sub)
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
        let (token, _) = a.issue(user).unwrap();
        assert_eq!(a.verify(&token), Some(user));
        assert_eq!(b.verify(&token), None);
        assert_eq!(a.verify(&new_opaque_token()), None);
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
