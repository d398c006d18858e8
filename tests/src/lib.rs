//! Test support shared by the end-to-end tests and the benchmark: a webrtc-rs test peer that
//! publishes synthetic VP8 + Opus or receives and counts packets, helpers to negotiate a peer
//! with an engine endpoint through kms-client, and engine process management.

pub mod bot;
pub mod cluster;
pub mod harness;
pub mod loadgen;
pub mod peer;
pub mod peer_factory;
pub mod raw;
pub mod synth;
