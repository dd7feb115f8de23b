//! Password hashing with argon2id (m=19456 KiB, t=2, p=1), off the async runtime and behind
//! a concurrency limit so a burst of logins cannot starve the server of threads or memory.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::error::{AppError, AppResult};

fn argon2() -> AppResult<Argon2<'static>> {
    let params = Params::new(19_456, 2, 1, None).map_err(|e| AppError::internal(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_blocking(password: &str) -> AppResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::internal(e.to_string()))
}

fn verify_blocking(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    argon2().is_ok_and(|a| a.verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Hashes and verifies passwords on the blocking pool.
pub struct PasswordHasher {
    limit: Arc<Semaphore>,
    /// Verified against when the account does not exist, so an unknown email costs the same
    /// time as a wrong password.
    dummy_hash: String,
}

impl PasswordHasher {
    /// At most `concurrency` hashes run at once (each takes about 19 MiB).
    pub async fn new(concurrency: usize) -> AppResult<PasswordHasher> {
        let dummy_hash = tokio::task::spawn_blocking(|| hash_blocking("weft-dummy-password"))
            .await
            .map_err(AppError::internal)??;
        Ok(PasswordHasher {
            limit: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy_hash,
        })
    }

    pub async fn hash(&self, password: &str) -> AppResult<String> {
        let _permit = self.limit.acquire().await.map_err(AppError::internal)?;
        let password = password.to_string();
        tokio::task::spawn_blocking(move || hash_blocking(&password))
            .await
            .map_err(AppError::internal)?
    }

    /// Whether `password` matches `hash`; with no hash (no such account) the same work is
    /// done against a dummy and the answer is false.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> AppResult<bool> {
        let _permit = self.limit.acquire().await.map_err(AppError::internal)?;
        let exists = hash.is_some();
        let password = password.to_string();
        let hash = hash.unwrap_or(&self.dummy_hash).to_string();
        let matched = tokio::task::spawn_blocking(move || verify_blocking(&password, &hash))
            .await
            .map_err(AppError::internal)?;
        Ok(exists && matched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_with_the_chosen_parameters() {
        let hasher = PasswordHasher::new(2).await.unwrap();
        let hash = hasher.hash("correct horse").await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(hasher.verify("correct horse", Some(&hash)).await.unwrap());
        assert!(!hasher.verify("wrong horse", Some(&hash)).await.unwrap());
        assert!(!hasher.verify("weft-dummy-password", None).await.unwrap());
    }
}
