//! The guard's Ed25519 identity: a key pair kept in a file (created on first run), and signing of wire
//! messages by the plugin API's signing contract (the signed bytes are the message without `sig`).
//!
//! Key file: one line, the 32-byte secret seed in padded standard base64, created with mode 0600. The
//! public key is derived from it; `key_id` is the first 8 bytes of its SHA-256 in lowercase hex.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use deepfake_guard_plugin_api::messages::{Message, attach_signature, signing_payload};
use ed25519_dalek::{Signer as _, SigningKey};
use sha2::{Digest, Sha256};

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing key {path}: {source} (fix the path in the config, or delete the file to make a new key)")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(
        "signing key {path}: {reason}; expected one line with a 32-byte Ed25519 seed in base64 (delete the file to \
         make a new key; clients that pinned the old public key must then pin the new one)"
    )]
    Malformed { path: PathBuf, reason: String },
    #[error("signing key {path}: no randomness from the operating system to make a key: {reason}")]
    Random { path: PathBuf, reason: String },
}

/// The guard's signing identity.
pub struct Signer {
    key: SigningKey,
    public_b64: String,
    key_id: String,
}

impl Signer {
    /// A signer from a 32-byte secret seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(seed);
        let public = key.verifying_key().to_bytes();
        let digest = Sha256::digest(public);
        let key_id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Self { key, public_b64: B64.encode(public), key_id }
    }

    /// Read the key at `path`, or make a new one there (mode 0600) if there is no file. Returns the signer
    /// and whether the key was created now.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), KeyError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((Self::parse(path, &text)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed)
                    .map_err(|e| KeyError::Random { path: path.to_path_buf(), reason: e.to_string() })?;
                let io = |source| KeyError::Io { path: path.to_path_buf(), source };
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                let mut f = opts.open(path).map_err(io)?;
                writeln!(f, "{}", B64.encode(seed)).map_err(io)?;
                Ok((Self::from_seed(&seed), true))
            }
            Err(source) => Err(KeyError::Io { path: path.to_path_buf(), source }),
        }
    }

    fn parse(path: &Path, text: &str) -> Result<Self, KeyError> {
        let bad = |reason: String| KeyError::Malformed { path: path.to_path_buf(), reason };
        let line = text.trim();
        let bytes = B64.decode(line).map_err(|e| bad(format!("not base64 ({e})")))?;
        let seed: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| bad(format!("{} bytes, not 32", b.len())))?;
        Ok(Self::from_seed(&seed))
    }

    /// The raw public key, padded standard base64 (the `public_key` of `hello`).
    pub fn public_key_b64(&self) -> &str {
        &self.public_b64
    }

    /// First 8 bytes of SHA-256 of the public key, lowercase hex (the `key_id` of `hello`).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The wire text of `msg`, signed (any `sig` it carries is replaced).
    pub fn sign(&self, msg: &Message) -> String {
        let payload = signing_payload(msg);
        let sig = self.key.sign(payload.as_bytes());
        attach_signature(&payload, &B64.encode(sig.to_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_key_is_private_and_loads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/guard.key");
        let (a, created) = Signer::load_or_create(&path).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let (b, created) = Signer::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(a.public_key_b64(), b.public_key_b64());
        assert_eq!(a.key_id().len(), 16);
        std::fs::write(&path, "not a key\n").unwrap();
        let err = Signer::load_or_create(&path).err().unwrap().to_string();
        assert!(err.contains("guard.key") && err.contains("base64"), "{err}");
        std::fs::write(&path, format!("{}\n", B64.encode([7u8; 31]))).unwrap();
        let err = Signer::load_or_create(&path).err().unwrap().to_string();
        assert!(err.contains("31 bytes, not 32"), "{err}");
    }
}
