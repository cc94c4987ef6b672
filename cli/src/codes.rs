//! Every code the `tirage` command prints, one table: why an input produced nothing or why a
//! request failed. A photo's own failure is the engine's or the worker's [`FailureCode`], a
//! server's refusal its [`ErrorCode`] (also when the CLI refuses before sending what the
//! server would refuse the same way, as an empty file); the CLI adds its own few
//! ([`LocalCode`]). A code a newer server sends that this build does not know is kept as
//! sent.

use std::fmt;

use tirage_core::codes::{ErrorCode, FailureCode};

/// Writes [`LocalCode`] from one table of `Variant = "name";` rows.
macro_rules! local_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal;)+) => {
        /// The CLI's own codes, for what no server and no engine reports.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum LocalCode {
            $($(#[doc = $doc])* $variant,)+
        }

        impl LocalCode {
            pub const ALL: &'static [LocalCode] = &[$(LocalCode::$variant,)+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $(LocalCode::$variant => $name,)+
                }
            }
        }
    };
}

local_codes! {
    /// A file could not be read or written.
    IoError = "io_error";
    /// Two inputs with one stem would overwrite each other's renditions.
    DuplicateName = "duplicate_name";
    /// The server settled the batch without an outcome for this photo.
    NotProcessed = "not_processed";
    /// The batch does not list a photo the server accepted.
    PhotoMissing = "photo_missing";
    /// No answer from the server, even after every retry.
    NetworkError = "network_error";
    /// An answer the CLI cannot read.
    ProtocolError = "protocol_error";
}

/// A code as printed: `error: <path>: <code>: <message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    Local(LocalCode),
    Photo(FailureCode),
    Api(ErrorCode),
    /// Sent by a server this build does not know the code of, or `http_<status>` for an
    /// error answer without the standard body.
    Unrecognised(String),
}

impl Code {
    /// A server's error code as it sent it.
    pub fn from_api(name: &str) -> Code {
        ErrorCode::from_name(name).map_or_else(|| Code::Unrecognised(name.to_owned()), Code::Api)
    }

    /// A photo's failure code as the server reported it.
    pub fn from_photo(name: &str) -> Code {
        FailureCode::parse(name).map_or_else(|| Code::Unrecognised(name.to_owned()), Code::Photo)
    }

    pub fn as_str(&self) -> &str {
        match self {
            Code::Local(c) => c.as_str(),
            Code::Photo(c) => c.as_str(),
            Code::Api(c) => c.as_str(),
            Code::Unrecognised(name) => name,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<LocalCode> for Code {
    fn from(c: LocalCode) -> Code {
        Code::Local(c)
    }
}

impl From<FailureCode> for Code {
    fn from(c: FailureCode) -> Code {
        Code::Photo(c)
    }
}

impl From<ErrorCode> for Code {
    fn from(c: ErrorCode) -> Code {
        Code::Api(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_codes_are_distinct_from_every_other_table() {
        for local in LocalCode::ALL {
            let name = local.as_str();
            assert!(
                ErrorCode::from_name(name).is_none(),
                "{name} is an API code"
            );
            assert!(FailureCode::parse(name).is_none(), "{name} is a photo code");
            let twice = LocalCode::ALL.iter().filter(|c| c.as_str() == name).count();
            assert_eq!(twice, 1, "{name} twice");
        }
    }

    #[test]
    fn server_codes_are_recognised_or_kept_as_sent() {
        assert_eq!(
            Code::from_api("batch_not_found"),
            Code::Api(ErrorCode::BatchNotFound)
        );
        assert_eq!(
            Code::from_api("from_the_future"),
            Code::Unrecognised("from_the_future".into())
        );
        assert_eq!(
            Code::from_photo("corrupt_image"),
            Code::Photo(FailureCode::CorruptImage)
        );
        assert_eq!(Code::from_photo("http_502").as_str(), "http_502");
    }
}
