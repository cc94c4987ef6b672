//! The web page for people who upload: `GET /` and its assets, built into the binary from
//! `api/web/` (plain ES modules, no build step), so every API replica serves the same page.
//!
//! Assets live under `/assets/{version}/{name}`, where `version` is a hash of every asset's
//! bytes: they are cached for a year (`immutable`), and a new binary with other assets has
//! other URLs. Relative imports between the modules stay inside one version. The page itself
//! is `no-cache` and carries a strict Content-Security-Policy: scripts, styles and fonts from
//! this origin only, and network requests to this origin plus the origin the object store's
//! presigned URLs point to (S3 behind a CORS rule, or this server when standalone).

use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use sha2::{Digest, Sha256};
use tirage_core::keys;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// One file of `api/web/`.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../web/app.js"),
    },
    Asset {
        name: "api.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../web/api.js"),
    },
    Asset {
        name: "upload.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../web/upload.js"),
    },
    Asset {
        name: "files.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../web/files.js"),
    },
    Asset {
        name: "gallery.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../web/gallery.js"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../web/style.css"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../web/icon.svg"),
    },
];

const PAGE_TEMPLATE: &str = include_str!("../../web/index.html");
/// Replaced in `index.html` by `/assets/{version}`.
const ASSETS_PLACEHOLDER: &str = "{{assets}}";

/// The hash of every asset (name and bytes), as 16 hex digits.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hasher = Sha256::new();
    for each in ASSETS {
        hasher.update(each.name.as_bytes());
        hasher.update((each.bytes.len() as u64).to_le_bytes());
        hasher.update(each.bytes);
    }
    hex::encode(&hasher.finalize()[..8])
});

static PAGE: LazyLock<String> =
    LazyLock::new(|| PAGE_TEMPLATE.replace(ASSETS_PLACEHOLDER, &format!("/assets/{}", *VERSION)));

/// The uploader page.
#[get("/")]
pub async fn index(state: web::Data<AppState>) -> HttpResponse {
    let extra = presign_origin(&state).await;
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            content_security_policy(extra.as_deref()),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .body(PAGE.as_str())
}

/// One asset of this build; another version's path names nothing (`404`), since this
/// binary cannot serve that version's bytes.
#[get("/assets/{version}/{name}")]
pub async fn asset(path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (version, name) = path.into_inner();
    if version != *VERSION {
        return Err(ApiError::NotFound);
    }
    let found = ASSETS
        .iter()
        .find(|a| a.name == name)
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type(found.content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(found.bytes))
}

/// The origin presigned URLs point to, when it is not a relative URL: found by presigning
/// a request for a key no photo has (no network call: presigning is local signing).
async fn presign_origin(state: &AppState) -> Option<String> {
    let probe = keys::original_key(Uuid::nil(), Uuid::nil());
    let ttl = std::time::Duration::from_secs(60);
    let presigned = state
        .ports
        .objects
        .presign_put(&probe, "image/jpeg", 1, ttl)
        .await
        .ok()?;
    origin_of(&presigned.url)
}

/// `scheme://host[:port]` of an absolute http(s) URL.
fn origin_of(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let origin = url.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// Nothing inline, nothing from elsewhere but the object store's origin (uploads, and
/// renditions when the API redirects to presigned GETs).
fn content_security_policy(object_store_origin: Option<&str>) -> String {
    let extra = object_store_origin
        .map(|o| format!(" {o}"))
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:{extra}; \
         connect-src 'self'{extra}; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_this_builds_assets_and_every_asset_it_names_exists() {
        assert!(!PAGE.contains(ASSETS_PLACEHOLDER));
        let base = format!("/assets/{}", *VERSION);
        let mut named = 0;
        for piece in PAGE.split(&format!("{base}/")).skip(1) {
            let name: String = piece
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
                .collect();
            assert!(ASSETS.iter().any(|a| a.name == name), "{name} is no asset");
            named += 1;
        }
        assert!(named >= 3, "the page links its script, style and icon");
    }

    #[test]
    fn modules_import_only_assets_of_the_same_version() {
        for script in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let text = std::str::from_utf8(script.bytes).unwrap();
            // A module specifier closes every import, one-line or not: `… from './x.js';`.
            let imports = text
                .lines()
                .filter(|l| l.starts_with("import ") || l.starts_with("} from "))
                .filter(|l| l.contains('\'') || l.contains('"'));
            for line in imports {
                let target = line.split(['\'', '"']).nth(1).unwrap();
                let name = target.strip_prefix("./").unwrap_or(target);
                assert!(
                    ASSETS.iter().any(|a| a.name == name),
                    "{} imports {target}, which is no asset",
                    script.name
                );
            }
        }
    }

    #[test]
    fn the_policy_allows_the_object_store_origin_only_when_there_is_one() {
        let own = content_security_policy(None);
        assert!(own.contains("connect-src 'self';"));
        assert!(!own.contains("unsafe-inline"));
        let s3 = content_security_policy(Some("http://127.0.0.1:3900"));
        assert!(s3.contains("connect-src 'self' http://127.0.0.1:3900;"));
        assert_eq!(
            origin_of("http://127.0.0.1:3900/tirage/originals/x?X-Amz-Signature=1"),
            Some("http://127.0.0.1:3900".into())
        );
        assert_eq!(origin_of("/v1/objects/x"), None);
    }
}
