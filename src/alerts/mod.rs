//! Alerts: the guard's findings as signed wire messages (plugin-api v1) for the call's data channel.
//! The live bot (a later issue) sends them; this module owns the identity they are signed with.

pub mod outbox;
pub mod signer;

pub use signer::{KeyError, Signer};
