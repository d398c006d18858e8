//! Sessions and connections as plain data (no I/O): properties parsed with OpenVidu's defaults
//! (`null` means default), the token → connection lifecycle, and the JSON shapes the REST API and
//! openvidu-node-client read (reference §3.2–§3.5).

pub mod connection;
pub mod props;
pub mod session;

pub use connection::{Active, Connection, MediaOptions, Publisher, Role};
pub use props::{ConnectionProps, SessionProps};
pub use session::Session;

/// OpenVidu's list shape: `{"numberOfElements": n, "content": [...]}`.
pub fn list_json(content: Vec<serde_json::Value>) -> serde_json::Value {
    serde_json::json!({"numberOfElements": content.len(), "content": content})
}
