//! Signed rendition URLs, the form a CDN can cache: `/v1/renditions/{batch}/{photo}/{size}
//! ?expires=<unix>&signature=<hex>` needs no session, is the same for every listing of the
//! batch (it expires with the batch), and is answered `public, immutable`. The signature is
//! HMAC-SHA256 under `[api] rendition_url_key` over the batch, the photo, the size and the
//! expiry, so a URL can be neither widened to another rendition nor extended in time.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use uuid::Uuid;

use crate::error::ApiError;

type HmacSha256 = Hmac<Sha256>;

/// The shortest key accepted: 256 bits written as hex, or any 32 characters.
pub const MIN_KEY_LEN: usize = 32;

/// Signs and checks rendition URLs with the deployment's key (the same on every replica).
#[derive(Clone)]
pub struct RenditionUrls {
    key: SecretString,
}

impl RenditionUrls {
    pub fn new(key: SecretString) -> Self {
        RenditionUrls { key }
    }

    fn mac(&self, batch: Uuid, photo: Uuid, size: u32, expires: i64) -> HmacSha256 {
        // HMAC takes keys of any length; this cannot fail.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(self.key.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(format!("{batch}/{photo}/{size}/{expires}").as_bytes());
        mac
    }

    /// The signed path (with its query) of one rendition, valid until `expires` (unix s).
    pub fn path(&self, batch: Uuid, photo: Uuid, size: u32, expires: i64) -> String {
        let signature = hex::encode(
            self.mac(batch, photo, size, expires)
                .finalize()
                .into_bytes(),
        );
        format!("/v1/renditions/{batch}/{photo}/{size}?expires={expires}&signature={signature}")
    }

    /// Checks a signed URL's parts at `now` (unix s): `bad_signature` when the signature is
    /// not this key's for exactly these parts, `presign_expired` once `expires` is past.
    pub fn verify(
        &self,
        batch: Uuid,
        photo: Uuid,
        size: u32,
        expires: i64,
        signature: &str,
        now: i64,
    ) -> Result<(), ApiError> {
        let given = hex::decode(signature).map_err(|_| ApiError::UrlSignatureInvalid)?;
        // Constant-time comparison, so a signature cannot be guessed byte by byte.
        self.mac(batch, photo, size, expires)
            .verify_slice(&given)
            .map_err(|_| ApiError::UrlSignatureInvalid)?;
        if now >= expires {
            return Err(ApiError::UrlExpired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(key: &str) -> RenditionUrls {
        RenditionUrls::new(SecretString::from(key.to_owned()))
    }

    fn parts(path: &str) -> (i64, String) {
        let query = path.split_once('?').unwrap().1;
        let (expires, signature) = query.split_once('&').unwrap();
        (
            expires.strip_prefix("expires=").unwrap().parse().unwrap(),
            signature.strip_prefix("signature=").unwrap().to_owned(),
        )
    }

    #[test]
    fn a_signed_url_opens_its_rendition_until_it_expires() {
        let u = urls("k".repeat(32).as_str());
        let (b, p) = (Uuid::new_v4(), Uuid::new_v4());
        let path = u.path(b, p, 720, 2_000);
        assert!(path.starts_with(&format!(
            "/v1/renditions/{b}/{p}/720?expires=2000&signature="
        )));
        let (expires, sig) = parts(&path);
        assert!(u.verify(b, p, 720, expires, &sig, 1_999).is_ok());
        assert_eq!(
            u.verify(b, p, 720, expires, &sig, 2_000)
                .unwrap_err()
                .code(),
            "presign_expired"
        );
    }

    #[test]
    fn a_signature_opens_nothing_else() {
        let u = urls("k".repeat(32).as_str());
        let (b, p) = (Uuid::new_v4(), Uuid::new_v4());
        let (expires, sig) = parts(&u.path(b, p, 720, 2_000));
        for refused in [
            u.verify(b, p, 360, expires, &sig, 0),
            u.verify(b, Uuid::new_v4(), 720, expires, &sig, 0),
            u.verify(Uuid::new_v4(), p, 720, expires, &sig, 0),
            u.verify(b, p, 720, expires + 1, &sig, 0),
            u.verify(b, p, 720, expires, "zz", 0),
            urls("another key, just as long as one").verify(b, p, 720, expires, &sig, 0),
        ] {
            assert_eq!(refused.unwrap_err().code(), "bad_signature");
        }
    }
}
