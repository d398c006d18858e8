//! Protocol state without I/O: the Kurento object graph with its release cascade, sessions with
//! their reconnection window, and event subscriptions. Inputs come in with `now`; what the shell
//! must do (release media, emit events) comes back as values. Nothing here owns a socket or task.

mod objects;
mod sessions;

pub use objects::{not_found as not_found_error, ObjectEntry, Objects};
pub use sessions::{Sessions, SocketId};
