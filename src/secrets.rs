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

/// The first byte of a value sealed with associated data.
const SEALED_V2: u8 = 2;

/// Encrypts with AES-256-GCM under the configured key, bound to `binding` (the table, row
/// and field the value is stored in, e.g. `llm_providers.api_key_encrypted:<id>`) as
/// associated data: a version byte, a fresh 12-byte nonce, then the ciphertext and its tag.
/// Copied into another row, the value no longer opens.
pub fn encrypt(key: &Secret, plaintext: &[u8], binding: &str) -> Result<Vec<u8>, String> {
    use aes_gcm::Aes256Gcm;
    use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
    let cipher = Aes256Gcm::new_from_slice(key.expose())
        .map_err(|_| "the encryption key is not 32 bytes".to_string())?;
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let mut out = vec![SEALED_V2];
    out.extend_from_slice(&nonce);
    let payload = Payload {
        msg: plaintext,
        aad: binding.as_bytes(),
    };
    out.extend(
        cipher
            .encrypt(&nonce, payload)
            .map_err(|_| "encryption failed".to_string())?,
    );
    Ok(out)
}

/// Whether `sealed` was sealed bound to `binding` (and opens with `key`).
pub fn is_bound(key: &Secret, sealed: &[u8], binding: &str) -> bool {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use aes_gcm::{Aes256Gcm, Nonce};
    let Ok(cipher) = Aes256Gcm::new_from_slice(key.expose()) else {
        return false;
    };
    if sealed.len() < 1 + 12 + 16 || sealed[0] != SEALED_V2 {
        return false;
    }
    let Ok(nonce) = <[u8; 12]>::try_from(&sealed[1..13]) else {
        return false;
    };
    let payload = Payload {
        msg: &sealed[13..],
        aad: binding.as_bytes(),
    };
    cipher.decrypt(&Nonce::from(nonce), payload).is_ok()
}

/// Decrypts what `encrypt` produced for `binding`; fails when the key is another, the data
/// was changed or the value belongs to another row. Values sealed before bindings existed
/// (no version byte, no associated data) still open; they are bound when next written.
pub fn decrypt(key: &Secret, sealed: &[u8], binding: &str) -> Result<Vec<u8>, String> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use aes_gcm::{Aes256Gcm, Nonce};
    let cipher = Aes256Gcm::new_from_slice(key.expose())
        .map_err(|_| "the encryption key is not 32 bytes".to_string())?;
    let open = |nonce: &[u8], ciphertext: &[u8], aad: &[u8]| {
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        let payload = Payload {
            msg: ciphertext,
            aad,
        };
        cipher.decrypt(&Nonce::from(nonce), payload).ok()
    };
    if sealed.len() >= 1 + 12 + 16
        && sealed[0] == SEALED_V2
        && let Some(plain) = open(&sealed[1..13], &sealed[13..], binding.as_bytes())
    {
        return Ok(plain);
    }
    if sealed.len() >= 12 + 16 {
        // Sealed without a binding (a random nonce may begin with the version byte).
        if let Some(plain) = open(&sealed[..12], &sealed[12..], b"") {
            return Ok(plain);
        }
    }
    Err("cannot decrypt: another key, another row, or the value was changed".into())
}

#[cfg(test)]
mod encryption_tests {
    use super::*;

    const ROW: &str = "llm_providers.api_key_encrypted:1";

    #[test]
    fn sealed_values_open_only_with_their_key_and_in_their_row() {
        let key = Secret::new(vec![1u8; 32]);
        let sealed = encrypt(&key, b"sk-provider-key", ROW).unwrap();
        assert!(!sealed.windows(15).any(|w| w == b"sk-provider-key"));
        assert_eq!(decrypt(&key, &sealed, ROW).unwrap(), b"sk-provider-key");
        assert!(decrypt(&Secret::new(vec![2u8; 32]), &sealed, ROW).is_err());
        assert!(
            decrypt(&key, &sealed, "llm_providers.api_key_encrypted:2").is_err(),
            "moved to another row"
        );
        let mut tampered = sealed.clone();
        tampered[20] ^= 1;
        assert!(decrypt(&key, &tampered, ROW).is_err());
        assert_ne!(
            encrypt(&key, b"x", ROW).unwrap(),
            encrypt(&key, b"x", ROW).unwrap(),
            "fresh nonces"
        );
    }

    #[test]
    fn values_sealed_without_a_binding_still_open() {
        use aes_gcm::Aes256Gcm;
        use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
        let key = Secret::new(vec![1u8; 32]);
        let cipher = Aes256Gcm::new_from_slice(key.expose()).unwrap();
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let mut legacy = nonce.to_vec();
        legacy.extend(cipher.encrypt(&nonce, b"old".as_slice()).unwrap());
        assert_eq!(decrypt(&key, &legacy, ROW).unwrap(), b"old");
        assert!(!is_bound(&key, &legacy, ROW));
        assert!(is_bound(&key, &encrypt(&key, b"new", ROW).unwrap(), ROW));
    }
}
