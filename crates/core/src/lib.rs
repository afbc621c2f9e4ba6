//! spendgate's domain core: money, time and cycles, secrets and ids, spend keys and
//! their rules, the model catalog and pricing. Pure Rust: no I/O, no async, no clock
//! (callers pass `now`), no randomness (callers pass the random bytes).
#![forbid(unsafe_code)]

pub mod alert;
pub mod audit;
pub mod catalog;
pub mod cycle;
pub mod meter;
pub mod money;
pub mod secret;
pub mod spend_key;
pub mod timestamp;
pub mod wallet;

pub use audit::{Action, Actor, AuditEntry};
pub use catalog::{ApiKey, Catalog, Model, Prices, Provider, TokenUsage, WireFormat};
pub use cycle::{Cycle, Window};
pub use money::Usd;
pub use secret::{AuditId, KeyHash, Secret, SpendKeyId, WalletId, WalletKeyId};
pub use spend_key::{
    FieldError, KeyStatus, KeyUsage, Mode, RateLimit, RequestLimit, SpendKey, SpendKeyChanges, SpendLimit, Unusable,
};
pub use timestamp::Timestamp;
pub use wallet::{Wallet, WalletKey};
