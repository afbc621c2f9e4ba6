//! Secrets (spend keys, wallet API keys) and opaque ids.
//!
//! A secret is `prefix + 43 base62 characters` encoding 256 bits from the OS (the
//! caller supplies the random bytes: this crate does no I/O). Only its SHA-256 hash
//! is stored; a 256-bit random secret needs no slow password hash. `Debug` prints the
//! preview only, so a secret cannot end up in a log by accident.

use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Characters of the secret shown in a preview after the prefix.
const PREVIEW_CHARS: usize = 4;

/// Default prefixes (configurable).
pub const SPEND_KEY_PREFIX: &str = "lava_sk_";
pub const WALLET_KEY_PREFIX: &str = "lava_wk_";

/// Encodes `bytes` as a big-endian number in base 62, left-padded to the length that
/// any input of this size needs (43 characters for 32 bytes).
pub fn base62(bytes: &[u8]) -> String {
    // ceil(8 * n / log2(62)); log2(62) > 5.954.
    let width = (bytes.len() * 8 * 1000).div_ceil(5954);
    let mut num: Vec<u8> = bytes.to_vec();
    let mut out = Vec::with_capacity(width);
    while out.len() < width {
        let mut rem: u32 = 0;
        for byte in num.iter_mut() {
            let acc = (rem << 8) | u32::from(*byte);
            *byte = (acc / 62) as u8;
            rem = acc % 62;
        }
        out.push(BASE62[rem as usize]);
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// A full secret key. Never `Display`; `Debug` shows the preview.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn generate(prefix: &str, entropy: [u8; 32]) -> Secret {
        Secret(format!("{prefix}{}", base62(&entropy)))
    }

    /// Wraps a secret that a client presented.
    pub fn presented(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The full secret: only for the one answer that shows it, and for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> KeyHash {
        KeyHash(Sha256::digest(self.0.as_bytes()).into())
    }

    /// `prefix` + the first few characters + `****`.
    pub fn preview(&self, prefix: &str) -> String {
        let body = self.0.strip_prefix(prefix).unwrap_or(&self.0);
        let shown: String = body.chars().take(PREVIEW_CHARS).collect();
        format!("{prefix}{shown}****")
    }

    /// True when the client pasted a preview instead of the key.
    pub fn looks_like_preview(&self) -> bool {
        self.0.ends_with("****")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = self.0.chars().take(12).collect();
        write!(f, "Secret({shown}****)")
    }
}

/// SHA-256 of a secret: what the store keeps and looks keys up by.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash(pub [u8; 32]);

impl KeyHash {
    /// Constant-time comparison, for checking a looked-up hash against a presented one.
    pub fn ct_eq(&self, other: &KeyHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    pub fn from_slice(bytes: &[u8]) -> Option<KeyHash> {
        <[u8; 32]>::try_from(bytes).ok().map(KeyHash)
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({:02x}{:02x}..)", self.0[0], self.0[1])
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new id from 128 random bits.
            pub fn generate(entropy: [u8; 16]) -> Self {
                $name(format!("{}{}", $prefix, base62(&entropy)))
            }

            /// An id as stored or as a client sent it (not checked: unknown ids are
            /// simply not found).
            pub fn new(s: impl Into<String>) -> Self {
                $name(s.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A wallet: the owner of spend keys and wallet API keys.
    WalletId,
    "wal_"
);
id_type!(
    /// A spend key's public id (`spend_key_id`); stays the same across rotations.
    SpendKeyId,
    "key_"
);
id_type!(
    /// A wallet API key's public id.
    WalletKeyId,
    "wk_"
);
id_type!(
    /// An entry of the audit log.
    AuditId,
    "aud_"
);
id_type!(
    /// A budget-alert webhook.
    WebhookId,
    "whk_"
);
id_type!(
    /// One alert event sent to one webhook (the body's `id`, the `spendgate-delivery` header).
    DeliveryId,
    "evt_"
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn base62_known_values() {
        assert_eq!(base62(&[0u8; 32]), "0".repeat(43));
        assert_eq!(base62(&[0xff; 32]).len(), 43);
        assert_eq!(base62(&[0, 61]), "00z");
        assert_eq!(base62(&[0, 62]), "010");
        assert_eq!(base62(&[0u8; 16]).len(), 22);
    }

    #[test]
    fn secret_shape_and_preview() {
        let s = Secret::generate(SPEND_KEY_PREFIX, [7u8; 32]);
        assert!(s.expose().starts_with("lava_sk_"));
        assert_eq!(s.expose().len(), 8 + 43);
        let preview = s.preview(SPEND_KEY_PREFIX);
        assert_eq!(preview.len(), 8 + 4 + 4);
        assert!(preview.ends_with("****"));
        assert!(s.expose().starts_with(preview.trim_end_matches('*')));
        assert!(!format!("{s:?}").contains(&s.expose()[12..]));
        assert!(Secret::presented(preview).looks_like_preview());
    }

    #[test]
    fn hashes_compare() {
        let a = Secret::generate(SPEND_KEY_PREFIX, [1u8; 32]);
        let b = Secret::generate(SPEND_KEY_PREFIX, [2u8; 32]);
        assert!(a.hash().ct_eq(&a.hash()));
        assert!(!a.hash().ct_eq(&b.hash()));
        assert_eq!(KeyHash::from_slice(&a.hash().0), Some(a.hash()));
        assert_eq!(KeyHash::from_slice(&[0u8; 31]), None);
    }

    proptest! {
        #[test]
        fn base62_is_injective_and_fixed_width(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
            let (ea, eb) = (base62(&a), base62(&b));
            prop_assert_eq!(ea.len(), 43);
            prop_assert!(ea.bytes().all(|c| c.is_ascii_alphanumeric()));
            prop_assert_eq!(a == b, ea == eb);
        }
    }
}
