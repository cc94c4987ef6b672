//! The callback signature: `X-Tirage-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`,
//! where the MAC covers `"<t>.<body>"` (the scheme Stripe uses). Signing the timestamp
//! with the body lets a receiver refuse a replay: a captured request is only good within
//! its tolerance window, and changing `t` breaks the MAC.
//!
//! [`verify`] is what a receiver runs; docs/SECURITY.md shows the same check in a few lines
//! of Python and Node for receivers not written in Rust.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the callback's signature.
pub const SIGNATURE_HEADER: &str = "X-Tirage-Signature";

/// How far a signature's timestamp may be from the receiver's clock, either way, before
/// [`verify`] refuses it: the documented tolerance window. Every attempt of a retried
/// callback is signed afresh, so a late retry is not refused as a replay.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is not `t=<unix>,v1=<hex>`")]
    Malformed,
    #[error(
        "the signature's timestamp is {skew_secs} s away from now (tolerance {tolerance_secs} s)"
    )]
    OutsideTolerance { skew_secs: u64, tolerance_secs: u64 },
    #[error("no v1 signature matches the body")]
    Mismatch,
}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length: `new_from_slice` cannot fail for it.
    match <Hmac<Sha256> as Mac>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    }
}

fn signed_payload(mut mac: Hmac<Sha256>, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value for `body` sent at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let digest = signed_payload(mac(secret), timestamp, body)
        .finalize()
        .into_bytes();
    format!("t={timestamp},v1={}", hex::encode(digest))
}

/// Checks `header` against `body` as a receiver would, at `now` (unix seconds): the
/// timestamp within `tolerance_secs` of now, and one `v1` MAC equal (in constant time) to
/// the one computed over `"<t>.<body>"`.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: u64,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => {
                timestamp = Some(t.parse::<i64>().map_err(|_| SignatureError::Malformed)?)
            }
            Some(("v1", v)) => {
                candidates.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?)
            }
            // Other schemes (a future v2) are ignored, as receivers must.
            Some(_) => {}
            None => return Err(SignatureError::Malformed),
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let skew_secs = now.abs_diff(timestamp);
    if skew_secs > tolerance_secs {
        return Err(SignatureError::OutsideTolerance {
            skew_secs,
            tolerance_secs,
        });
    }
    let expected = signed_payload(mac(secret), timestamp, body);
    if candidates
        .iter()
        .any(|c| expected.clone().verify_slice(c).is_ok())
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec-test-0123456789abcdef";
    const BODY: &[u8] = br#"{"event":"batch.completed"}"#;
    const T: i64 = 1_764_585_600;

    #[test]
    fn signs_timestamp_dot_body() {
        // HMAC-SHA256("Jefe", "0.what do ya want for nothing?") computed independently
        // (`printf '0.what do ya want for nothing?' | openssl dgst -sha256 -hmac Jefe`).
        assert_eq!(
            sign(b"Jefe", 0, b"what do ya want for nothing?"),
            format!("t=0,v1={}", OPENSSL_VECTOR)
        );
    }

    const OPENSSL_VECTOR: &str = "37f471929915ccd2cbbe79feb84ffcff4f2bb25e15fc41c2506687331ae179cc";

    #[test]
    fn a_fresh_signature_verifies() {
        let header = sign(SECRET, T, BODY);
        assert_eq!(verify(SECRET, &header, BODY, T, 300), Ok(()));
        assert_eq!(verify(SECRET, &header, BODY, T + 300, 300), Ok(()));
        assert_eq!(verify(SECRET, &header, BODY, T - 300, 300), Ok(()));
    }

    #[test]
    fn a_replay_outside_the_window_is_refused() {
        let header = sign(SECRET, T, BODY);
        assert_eq!(
            verify(SECRET, &header, BODY, T + 301, 300),
            Err(SignatureError::OutsideTolerance {
                skew_secs: 301,
                tolerance_secs: 300
            })
        );
    }

    #[test]
    fn a_moved_timestamp_a_changed_body_or_another_key_is_refused() {
        let header = sign(SECRET, T, BODY);
        let moved = header.replacen(&format!("t={T}"), &format!("t={}", T + 60), 1);
        assert_eq!(
            verify(SECRET, &moved, BODY, T + 60, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                SECRET,
                &header,
                br#"{"event":"batch.completed","x":1}"#,
                T,
                300
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"another-key", &header, BODY, T, 300),
            Err(SignatureError::Mismatch)
        );
        // The old body-only scheme is no signature at all.
        assert_eq!(
            verify(SECRET, "sha256=00", BODY, T, 300),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn extra_schemes_are_ignored_and_garbage_is_malformed() {
        let header = format!("{},v0=abc", sign(SECRET, T, BODY));
        assert_eq!(verify(SECRET, &header, BODY, T, 300), Ok(()));
        for bad in ["", "t=1", "v1=00", "t=x,v1=00", "t=1,v1=zz", "garbage"] {
            assert_eq!(
                verify(SECRET, bad, BODY, T, 300),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }
}
