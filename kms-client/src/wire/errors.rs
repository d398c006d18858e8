//! Error codes (reference §2.2): JSON-RPC's own and Kurento's 40xxx family.

/// Every error code the engine answers with, and the client recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    ParseError,
    InvalidRequest,
    MethodNotFound,
    InvalidParams,
    /// Required parameter missing or of the wrong JSON type (`JsonRpcUtils.cpp`).
    ServerError,
    InternalError,
    MarshallError,
    UnexpectedError,
    ConnectError,
    NotImplemented,
    InvalidSession,
    MalformedTransaction,
    NotEnoughResources,
    MediaObjectTypeNotFound,
    MediaObjectNotFound,
    MediaObjectMethodNotFound,
    MediaObjectEventNotSupported,
    MediaObjectIllegalParam,
    MediaObjectNotAvailable,
    TagKeyNotFound,
    SdpParseError,
    SdpEndPointProcessOfferError,
    SdpEndPointProcessAnswerError,
    SdpEndPointGenerateOfferError,
    SdpEndPointAlreadyNegotiated,
    SdpEndPointNotOfferGenerated,
    IceGatherCandidatesError,
    IceAddCandidateError,
    KmdNotFound,
}

use ErrorCode::*;

const TABLE: &[(ErrorCode, i64, Option<&str>)] = &[
    (ParseError, -32700, None),
    (InvalidRequest, -32600, None),
    (MethodNotFound, -32601, None),
    (InvalidParams, -32602, Some("INVALID_PARAMS")),
    (ServerError, -32000, None),
    (InternalError, -32603, None),
    (MarshallError, 40001, Some("MARSHALL_ERROR")),
    (UnexpectedError, 40003, Some("UNEXPECTED_ERROR")),
    (ConnectError, 40004, Some("CONNECT_ERROR")),
    (NotImplemented, 40006, Some("NOT_IMPLEMENTED")),
    (InvalidSession, 40007, Some("INVALID_SESSION")),
    (MalformedTransaction, 40008, Some("MALFORMED_TRANSACTION")),
    (NotEnoughResources, 40009, Some("NOT_ENOUGH_RESOURCES")),
    (
        MediaObjectTypeNotFound,
        40100,
        Some("MEDIA_OBJECT_TYPE_NOT_FOUND"),
    ),
    (MediaObjectNotFound, 40101, Some("MEDIA_OBJECT_NOT_FOUND")),
    (
        MediaObjectMethodNotFound,
        40105,
        Some("MEDIA_OBJECT_METHOD_NOT_FOUND"),
    ),
    (
        MediaObjectEventNotSupported,
        40106,
        Some("MEDIA_OBJECT_EVENT_NOT_SUPPORTED"),
    ),
    (
        MediaObjectIllegalParam,
        40107,
        Some("MEDIA_OBJECT_ILLEGAL_PARAM_ERROR"),
    ),
    (
        MediaObjectNotAvailable,
        40108,
        Some("MEDIA_OBJECT_NOT_AVAILABLE"),
    ),
    (
        TagKeyNotFound,
        40110,
        Some("MEDIA_OBJECT_TAG_KEY_NOT_FOUND"),
    ),
    (SdpParseError, 40201, Some("SDP_PARSE_ERROR")),
    (
        SdpEndPointProcessOfferError,
        40205,
        Some("SDP_END_POINT_PROCESS_OFFER_ERROR"),
    ),
    (
        SdpEndPointProcessAnswerError,
        40206,
        Some("SDP_END_POINT_PROCESS_ANSWER_ERROR"),
    ),
    (
        SdpEndPointGenerateOfferError,
        40207,
        Some("SDP_END_POINT_GENERATE_OFFER_ERROR"),
    ),
    (
        SdpEndPointAlreadyNegotiated,
        40208,
        Some("SDP_END_POINT_ALREADY_NEGOTIATED"),
    ),
    (
        SdpEndPointNotOfferGenerated,
        40209,
        Some("SDP_END_POINT_NOT_OFFER_GENERATED"),
    ),
    (
        IceGatherCandidatesError,
        40400,
        Some("ICE_GATHER_CANDIDATES_ERROR"),
    ),
    (IceAddCandidateError, 40401, Some("ICE_ADD_CANDIDATE_ERROR")),
    (
        KmdNotFound,
        40500,
        Some("SERVER_MANAGER_ERROR_KMD_NOT_FOUND"),
    ),
];

impl ErrorCode {
    pub fn code(self) -> i64 {
        TABLE
            .iter()
            .find(|(c, _, _)| *c == self)
            .map(|(_, n, _)| *n)
            .unwrap_or(-32603)
    }

    pub fn data_type(self) -> Option<&'static str> {
        TABLE
            .iter()
            .find(|(c, _, _)| *c == self)
            .and_then(|(_, _, t)| *t)
    }

    pub fn from_code(code: i64) -> Option<Self> {
        TABLE
            .iter()
            .find(|(_, n, _)| *n == code)
            .map(|(c, _, _)| *c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        for (c, n, _) in TABLE {
            assert_eq!(c.code(), *n);
            assert_eq!(ErrorCode::from_code(*n), Some(*c));
        }
        assert_eq!(InvalidSession.code(), 40007);
        assert_eq!(
            MediaObjectNotFound.data_type(),
            Some("MEDIA_OBJECT_NOT_FOUND")
        );
    }
}
