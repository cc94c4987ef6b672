//! Why a photo that ended `done` deserves a second look ([`PhotoWarning`]), one table: the
//! API lists them in a photo's `warnings`, the page and `tirage upload` show them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhotoWarning {
    /// The original ends before its image does (an upload or a copy cut short): rendered
    /// leniently, as libvips and browsers show it, its missing part grey.
    Truncated,
}

impl PhotoWarning {
    /// Every warning with its meaning: the one table the docs and OpenAPI list.
    pub const TABLE: &'static [(PhotoWarning, &'static str)] = &[(
        PhotoWarning::Truncated,
        "the original ends before its image does: rendered, its missing part grey",
    )];

    pub fn as_str(self) -> &'static str {
        match self {
            PhotoWarning::Truncated => "truncated",
        }
    }

    /// The warning named `s` (as the API lists it), if this build knows it.
    pub fn parse(s: &str) -> Option<PhotoWarning> {
        Self::TABLE
            .iter()
            .map(|(warning, _)| *warning)
            .find(|warning| warning.as_str() == s)
    }

    /// The meaning of this warning, from [`PhotoWarning::TABLE`].
    pub fn meaning(self) -> &'static str {
        Self::TABLE
            .iter()
            .find(|(w, _)| *w == self)
            .map_or("", |(_, meaning)| meaning)
    }
}

impl std::fmt::Display for PhotoWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
