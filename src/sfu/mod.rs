//! Media-server signalling. Janus today: [`janus`] is its WebSocket API, [`videoroom`] the VideoRoom plugin.

pub mod janus;
pub mod videoroom;
