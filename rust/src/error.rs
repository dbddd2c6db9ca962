//! The error codes of PROFILE.md section 7 and the error type every core function returns.

use std::fmt;

/// Wire error codes (PROFILE.md section 7). The numeric values are the `Error.code` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ErrorCode {
    Malformed = 1,
    BadSignature = 2,
    BadContentHash = 3,
    PolicyRejected = 4,
    UnknownRoom = 5,
    NotFound = 6,
    NotHub = 7,
    TooLarge = 8,
    RateLimited = 9,
    Unauthorized = 10,
    UnsupportedVersion = 11,
    Internal = 12,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 12] = [
        ErrorCode::Malformed,
        ErrorCode::BadSignature,
        ErrorCode::BadContentHash,
        ErrorCode::PolicyRejected,
        ErrorCode::UnknownRoom,
        ErrorCode::NotFound,
        ErrorCode::NotHub,
        ErrorCode::TooLarge,
        ErrorCode::RateLimited,
        ErrorCode::Unauthorized,
        ErrorCode::UnsupportedVersion,
        ErrorCode::Internal,
    ];

    pub fn from_u16(code: u16) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| *c as u16 == code)
    }

    /// The snake_case wire name used in logs and messages.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::Malformed => "malformed",
            ErrorCode::BadSignature => "bad_signature",
            ErrorCode::BadContentHash => "bad_content_hash",
            ErrorCode::PolicyRejected => "policy_rejected",
            ErrorCode::UnknownRoom => "unknown_room",
            ErrorCode::NotFound => "not_found",
            ErrorCode::NotHub => "not_hub",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::Internal => "internal",
        }
    }

    /// HTTP status used by the transport for this code (documented in docs/PROTOCOL.md).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::Malformed
            | ErrorCode::BadSignature
            | ErrorCode::BadContentHash
            | ErrorCode::UnsupportedVersion => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::PolicyRejected => 403,
            ErrorCode::UnknownRoom | ErrorCode::NotFound => 404,
            ErrorCode::NotHub => 421,
            ErrorCode::TooLarge => 413,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
        }
    }
}

/// A protocol error: a code of section 7 and a human-readable reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MimiError {
    pub code: ErrorCode,
    pub message: String,
}

impl MimiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        MimiError { code, message: message.into() }
    }
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Malformed, message)
    }
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::TooLarge, message)
    }
    pub fn bad_signature(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadSignature, message)
    }
    pub fn bad_content_hash(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadContentHash, message)
    }
    /// Prefix the message with where the problem was found (e.g. a field name).
    pub fn context(mut self, what: &str) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl fmt::Display for MimiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code.name())
    }
}

impl std::error::Error for MimiError {}

/// Decoding errors from `tls_codec` are all `malformed`, with a message saying which rule broke.
impl From<tls_codec::Error> for MimiError {
    fn from(e: tls_codec::Error) -> Self {
        use tls_codec::Error as E;
        let why = match e {
            E::InvalidVectorLength => "invalid length prefix (non-minimal, the reserved 11 prefix, or too long)".to_string(),
            E::EndOfStream => "truncated input".to_string(),
            E::TrailingData => "trailing bytes after the structure".to_string(),
            E::UnknownValue(v) => format!("unknown enum value {v}"),
            E::InvalidInput => "invalid input".to_string(),
            E::DecodingError(s) => s,
            E::EncodingError(s) => format!("encoding failed: {s}"),
            E::InvalidWriteLength(s) => format!("encoding failed: {s}"),
            E::LibraryError => "internal codec error".to_string(),
        };
        MimiError::malformed(why)
    }
}

pub type Result<T> = std::result::Result<T, MimiError>;
