//! Randomness from the operating system, for secrets and ids.

use crate::error::ApiError;

/// `N` bytes from the OS's CSPRNG. Fails only when the OS has no randomness to give.
pub fn bytes<const N: usize>() -> Result<[u8; N], ApiError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| ApiError::internal(format!("OS randomness unavailable: {e}")))?;
    Ok(buf)
}

/// A unique request id, cheap enough for every request: a random prefix drawn once per
/// process (so ids of different instances and restarts do not collide) and a counter.
pub fn request_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        bytes::<8>().map(u64::from_le_bytes).unwrap_or_else(|_| {
            // The OS's randomness failing is extraordinary; ids only need to be unique.
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
            (t as u64) ^ u64::from(std::process::id()).rotate_left(32)
        })
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // `req_`, 16 hex digits of the prefix, 12 of the counter (written by hand: this runs
    // for every request).
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(32);
    id.push_str("req_");
    for shift in (0..16).rev() {
        id.push(char::from(HEX[((prefix >> (shift * 4)) & 0xf) as usize]));
    }
    for shift in (0..12).rev() {
        id.push(char::from(HEX[((n >> (shift * 4)) & 0xf) as usize]));
    }
    id
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_are_unique_and_shaped() {
        let (a, b) = (super::request_id(), super::request_id());
        assert_ne!(a, b);
        assert!(a.starts_with("req_") && a.len() == 32 && a[4..].bytes().all(|c| c.is_ascii_hexdigit()), "{a}");
        assert_eq!(a[..20], b[..20], "one prefix per process");
        let n = u64::from_str_radix(&a[20..], 16).unwrap();
        assert!(u64::from_str_radix(&b[20..], 16).unwrap() > n, "then a counter");
    }
}
