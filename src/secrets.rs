//! Secret material held in memory (JWT key, encryption key) and kept in the data directory
//! when it is not configured, so that a restart neither invalidates tokens nor makes stored
//! provider keys unreadable.

use std::fmt;
use std::io::Write;
use std::path::Path;

use rand::RngCore;

/// Bytes that must never be printed: `Debug` shows only that a value is present.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(bytes)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Parses a 32-byte key written as 64 hexadecimal characters.
pub fn parse_key_hex(text: &str) -> Option<Secret> {
    let bytes = hex::decode(text.trim()).ok()?;
    (bytes.len() == 32).then(|| Secret::new(bytes))
}

/// Reads `<data_dir>/<file>` (64 hex characters); when missing, generates 32 random bytes,
/// writes them with owner-only permissions, and warns naming the variable that would set it.
/// Several instances starting together agree: the file is created exclusively, and a loser
/// of that race reads the winner's key.
pub fn load_or_generate(data_dir: &Path, file: &str, variable: &str) -> std::io::Result<Secret> {
    let path = data_dir.join(file);
    if let Some(secret) = read_key(&path)? {
        return Ok(secret);
    }
    std::fs::create_dir_all(data_dir)?;
    let mut bytes = vec![0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(&path) {
        Ok(mut f) => {
            f.write_all(hex::encode(&bytes).as_bytes())?;
            f.sync_all()?;
            tracing::warn!(
                path = %path.display(),
                "{variable} is not set: generated one and kept it in the data directory; \
                 set {variable} (the same value for every instance) in production"
            );
            Ok(Secret::new(bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key(&path)?
            .ok_or_else(|| std::io::Error::other(format!("{} is not a valid key", path.display()))),
        Err(e) => Err(e),
    }
}

fn read_key(path: &Path) -> std::io::Result<Option<Secret>> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Ok(None),
        Ok(text) => parse_key_hex(&text).map(Some).ok_or_else(|| {
            std::io::Error::other(format!(
                "{} does not hold 64 hex characters",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_is_kept_across_loads() {
        let dir = std::env::temp_dir().join(format!("weft-secret-{}", uuid::Uuid::new_v4()));
        let first = load_or_generate(&dir, "k", "K").unwrap();
        let second = load_or_generate(&dir, "k", "K").unwrap();
        assert_eq!(first.expose(), second.expose());
        assert_eq!(first.expose().len(), 32);
        assert_eq!(format!("{first:?}"), "Secret(***)");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

/// Encrypts with AES-256-GCM under the configured key: a fresh 12-byte nonce, then the
/// ciphertext and its tag.
pub fn encrypt(key: &Secret, plaintext: &[u8]) -> Result<Vec<u8>, String> {
    use aes_gcm::Aes256Gcm;
    use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
    let cipher = Aes256Gcm::new_from_slice(key.expose())
        .map_err(|_| "the encryption key is not 32 bytes".to_string())?;
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let mut out = nonce.to_vec();
    out.extend(
        cipher
            .encrypt(&nonce, plaintext)
            .map_err(|_| "encryption failed".to_string())?,
    );
    Ok(out)
}

/// Decrypts what `encrypt` produced; fails when the key is another or the data was changed.
pub fn decrypt(key: &Secret, sealed: &[u8]) -> Result<Vec<u8>, String> {
    use aes_gcm::aead::{Aead, KeyInit};
    use aes_gcm::{Aes256Gcm, Nonce};
    if sealed.len() < 12 + 16 {
        return Err("not a sealed value of this key".into());
    }
    let cipher = Aes256Gcm::new_from_slice(key.expose())
        .map_err(|_| "the encryption key is not 32 bytes".to_string())?;
    let (nonce, ciphertext) = sealed.split_at(12);
    let nonce: [u8; 12] = nonce
        .try_into()
        .map_err(|_| "not a sealed value of this key".to_string())?;
    cipher
        .decrypt(&Nonce::from(nonce), ciphertext)
        .map_err(|_| "cannot decrypt: another key, or the value was changed".to_string())
}

#[cfg(test)]
mod encryption_tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key() {
        let key = Secret::new(vec![1u8; 32]);
        let sealed = encrypt(&key, b"sk-provider-key").unwrap();
        assert!(!sealed.windows(15).any(|w| w == b"sk-provider-key"));
        assert_eq!(decrypt(&key, &sealed).unwrap(), b"sk-provider-key");
        assert!(decrypt(&Secret::new(vec![2u8; 32]), &sealed).is_err());
        let mut tampered = sealed.clone();
        tampered[20] ^= 1;
        assert!(decrypt(&key, &tampered).is_err());
        assert_ne!(
            encrypt(&key, b"x").unwrap(),
            encrypt(&key, b"x").unwrap(),
            "fresh nonces"
        );
    }
}
