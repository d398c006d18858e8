//! The Kurento JSON-RPC wire format, defined once and shared by the engine and the client so the
//! two sides cannot drift. See `shared/reference/kurento-protocol.md` §1–§4.
//!
//! * [`envelope`]: the JSON-RPC 2.0 frames (request, response, error, `onEvent` notification).
//! * [`method`]: method names and the typed params of every request.
//! * [`errors`]: Kurento/JSON-RPC error codes and their `data.type` strings.
//! * [`ids`]: object-id format (`<uuid>_kurento.<Type>`, children `<parent>/<uuid>_kurento.<Type>`).
//! * [`classes`]: the class hierarchy (`describe`) and each class's event list.
//! * [`events`]: the `data` payloads of every event the engine emits.
//! * [`complex`]: complex values (`IceCandidate`, `ServerInfo`, `Tag`, …) with `__module__`/`__type__`.

pub mod classes;
pub mod complex;
pub mod envelope;
pub mod errors;
pub mod events;
pub mod ids;
pub mod method;

pub use classes::Class;
pub use complex::IceCandidate;
pub use envelope::{Frame, OnEvent, Request, Response, RpcError};
pub use errors::ErrorCode;
pub use ids::{ObjectId, SessionId};
pub use method::Method;
