//! Kurento-protocol client and the shared wire types.
pub mod wire;
