//! What a failed request turns into: the server's own error code when it sent the standard
//! `{"error":{"code","message"}}` body, or a network or protocol error.

use reqwest::Response;
use tirage_core::wire::ErrorBody;

use crate::codes::{Code, LocalCode};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error body (or an error status without one).
    #[error("{message} (HTTP {status})")]
    Api {
        status: u16,
        code: Code,
        message: String,
    },
    /// No answer, even after every retry.
    #[error("{0}")]
    Network(String),
    /// An answer we cannot read.
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

impl ClientError {
    /// Stable snake_case code: the server's own code for API errors.
    pub fn code(&self) -> Code {
        match self {
            ClientError::Api { code, .. } => code.clone(),
            ClientError::Network(_) => LocalCode::NetworkError.into(),
            ClientError::Protocol(_) => LocalCode::ProtocolError.into(),
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Turns an error answer into [`ClientError::Api`], keeping the server's code when it sent
/// the standard body.
pub async fn api_error(response: Response) -> ClientError {
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(e) => ClientError::Api {
            status: status.as_u16(),
            code: Code::from_api(&e.error.code),
            message: e.error.message,
        },
        Err(_) => ClientError::Api {
            status: status.as_u16(),
            code: Code::Unrecognised(format!("http_{}", status.as_u16())),
            message: String::from_utf8_lossy(&body).chars().take(200).collect(),
        },
    }
}
