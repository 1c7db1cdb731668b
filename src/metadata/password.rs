//! Password hashes as RabbitMQ stores them by default: base64(salt ++ SHA-256(salt ++ password)).

use base64::Engine;
use sha2::{Digest, Sha256};

/// Hash `password` with a caller-supplied 4-byte salt (the machine has no randomness).
pub fn hash_password(password: &str, salt: [u8; 4]) -> String {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(password.as_bytes());
    let mut out = salt.to_vec();
    out.extend_from_slice(&h.finalize());
    base64::engine::general_purpose::STANDARD.encode(out)
}

/// Whether `password` matches a stored hash.
pub fn check_password_hash(hash: &str, password: &str) -> bool {
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(hash) else {
        return false;
    };
    if raw.len() != 36 {
        return false;
    }
    let salt: [u8; 4] = raw[..4].try_into().expect("4 bytes");
    hash_password(password, salt) == hash
}
