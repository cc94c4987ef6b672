//! JSON Schema calls `272.0` an integer (a number whose fraction is zero), and so does the
//! API document; serde's integer types do not. The request fields the document declares as
//! integers read through these, so a value the document accepts is not refused for how its
//! number was written. Anything else (`1.5`, `"7"`, out of range) is still an error.

use serde::Deserialize;
use serde::de::{Deserializer, Error};

/// A JSON number, as serde reads it.
#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    Int(i64),
    UInt(u64),
    Float(f64),
}

impl Number {
    /// The number as an `i128` when it is a whole number in the `i64`/`u64` range.
    fn whole(self) -> Option<i128> {
        match self {
            Number::Int(i) => Some(i128::from(i)),
            Number::UInt(u) => Some(i128::from(u)),
            // 2^64 is exactly representable, so the bound check itself is exact.
            Number::Float(f) if f.fract() == 0.0 && f.abs() < 18_446_744_073_709_551_616.0 => {
                Some(f as i128)
            }
            Number::Float(_) => None,
        }
    }
}

fn integer<'de, D: Deserializer<'de>, T: TryFrom<i128>>(number: Number) -> Result<T, D::Error> {
    number
        .whole()
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| D::Error::custom("expected an integer in range"))
}

pub fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    integer::<D, u64>(Number::deserialize(d)?)
}

pub fn option_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Option::<Number>::deserialize(d)?
        .map(integer::<D, i64>)
        .transpose()
}

pub fn option_vec_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<i64>>, D::Error> {
    Option::<Vec<Number>>::deserialize(d)?
        .map(|numbers| numbers.into_iter().map(integer::<D, i64>).collect())
        .transpose()
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize, Debug)]
    struct Probe {
        #[serde(default, deserialize_with = "super::option_vec_i64")]
        sizes: Option<Vec<i64>>,
        #[serde(default, deserialize_with = "super::option_i64")]
        quality: Option<i64>,
        #[serde(default, deserialize_with = "super::u64")]
        size: u64,
    }

    fn probe(json: &str) -> Result<Probe, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn whole_numbers_read_however_written() {
        let p = probe(r#"{"sizes": [720, 360.0, -1], "quality": 85.0, "size": 272.0}"#).unwrap();
        assert_eq!(p.sizes, Some(vec![720, 360, -1]));
        assert_eq!((p.quality, p.size), (Some(85), 272));
        let p = probe(r#"{"sizes": null, "quality": null}"#).unwrap();
        assert_eq!((p.sizes, p.quality), (None, None));
        assert_eq!(
            probe(r#"{"size": 18446744073709551615}"#).unwrap().size,
            u64::MAX
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            r#"{"size": 1.5}"#,
            r#"{"size": -1}"#,
            r#"{"size": "7"}"#,
            r#"{"size": 1e30}"#,
            r#"{"quality": 1e19}"#,
            r#"{"sizes": [1, 2.5]}"#,
            r#"{"sizes": "big"}"#,
        ] {
            assert!(probe(bad).is_err(), "{bad}");
        }
    }
}
