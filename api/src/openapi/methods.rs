//! Which methods a documented path answers, read from the OpenAPI document itself, so the
//! `Allow` header of a `405` and the contract cannot disagree.

use serde_json::Value;

/// The operation keys of an OpenAPI path item, in the order `Allow` lists them.
const METHODS: [&str; 9] = [
    "get", "head", "post", "put", "patch", "delete", "options", "trace", "query",
];

/// One documented path: its segments (`None` for a `{parameter}`) and its methods.
struct Route {
    segments: Vec<Option<String>>,
    methods: Vec<&'static str>,
}

impl Route {
    /// How many literal segments `path` matches, if it matches at all. A parameter matches
    /// any non-empty segment, as the router's patterns do.
    fn literal_matches(&self, path: &[&str]) -> Option<usize> {
        if path.len() != self.segments.len() {
            return None;
        }
        let mut literals = 0;
        for (want, got) in self.segments.iter().zip(path) {
            match want {
                Some(literal) if literal == got => literals += 1,
                Some(_) => return None,
                None if got.is_empty() => return None,
                None => {}
            }
        }
        Some(literals)
    }
}

/// The documented paths and their methods.
pub struct Routes(Vec<Route>);

impl Routes {
    /// Reads the `paths` of a serialized OpenAPI document.
    pub fn from_document(doc: &Value) -> Routes {
        let paths = doc.get("paths").and_then(Value::as_object);
        let routes = paths
            .into_iter()
            .flatten()
            .map(|(template, item)| Route {
                segments: template
                    .split('/')
                    .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_owned()))
                    .collect(),
                methods: METHODS
                    .into_iter()
                    .filter(|m| item.get(*m).is_some())
                    .collect(),
            })
            .collect();
        Routes(routes)
    }

    /// The methods of the documented path `path` stands for, as an `Allow` value
    /// (`GET, DELETE`); `None` when no documented path matches. Where a literal segment and
    /// a parameter both match (`…/{photo_id}/complete` and `…/{photo_id}/{size}`), the path
    /// with more literal segments is the one meant, as in the router.
    pub fn allowed(&self, path: &str) -> Option<String> {
        let segments: Vec<&str> = path.split('/').collect();
        let matches: Vec<(usize, &Route)> = self
            .0
            .iter()
            .filter_map(|r| r.literal_matches(&segments).map(|n| (n, r)))
            .collect();
        let best = matches.iter().map(|(n, _)| *n).max()?;
        let methods: Vec<&str> = METHODS
            .into_iter()
            .filter(|m| {
                matches
                    .iter()
                    .any(|(n, route)| *n == best && route.methods.contains(m))
            })
            .collect();
        Some(methods.join(", ").to_ascii_uppercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> Routes {
        Routes::from_document(&serde_json::json!({"paths": {
            "/v1/batches": {"post": {}},
            "/v1/batches/{batch_id}": {"get": {}, "delete": {}, "parameters": []},
            "/v1/batches/{batch_id}/photos/{photo_id}/{size}": {"get": {}},
            "/v1/batches/{batch_id}/photos/{photo_id}/complete": {"post": {}},
        }}))
    }

    #[test]
    fn a_documented_path_lists_its_methods() {
        let routes = routes();
        assert_eq!(routes.allowed("/v1/batches").as_deref(), Some("POST"));
        assert_eq!(
            routes.allowed("/v1/batches/abc").as_deref(),
            Some("GET, DELETE")
        );
        assert_eq!(
            routes.allowed("/v1/batches/a/photos/b/720").as_deref(),
            Some("GET")
        );
        assert_eq!(
            routes.allowed("/v1/batches/a/photos/b/complete").as_deref(),
            Some("POST")
        );
    }

    #[test]
    fn other_paths_are_not_documented() {
        let routes = routes();
        for path in [
            "/",
            "/v1",
            "/v1/batches/",
            "/v1/batches//photos",
            "/v2/batches",
        ] {
            assert_eq!(routes.allowed(path), None, "{path}");
        }
    }
}
