//! The mock provider over real HTTP: each test starts a server on 127.0.0.1:0 and talks
//! to it with a plain HTTP client, checking the wire format event by event.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod anthropic;
mod chat;
mod common;
mod control;
mod embeddings;
mod responses;
