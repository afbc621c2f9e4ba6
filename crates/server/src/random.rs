//! Randomness from the operating system, for secrets and ids.

use crate::error::ApiError;

/// `N` bytes from the OS's CSPRNG. Fails only when the OS has no randomness to give.
pub fn bytes<const N: usize>() -> Result<[u8; N], ApiError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| ApiError::internal(format!("OS randomness unavailable: {e}")))?;
    Ok(buf)
}
