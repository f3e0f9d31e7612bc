//! Where on the body a service was delivered: the region and, when recorded, the side.
//!
//! The names are the snake_case words the API accepts and returns; [`crate::schema`] maps them to the
//! log's archived enums.

use std::fmt;

use crate::error::SessionError;

/// The longest free-text body region the domain accepts, in characters.
pub const MAX_OTHER_REGION_LENGTH: usize = 64;

/// The part of the body a service was delivered to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BodyRegion {
    /// Head and face.
    Head,
    /// Cervical region.
    Neck,
    /// Shoulder girdle.
    Shoulder,
    /// Thoracic back.
    UpperBack,
    /// Lumbar back and sacrum.
    LowerBack,
    /// Chest.
    Chest,
    /// Abdomen.
    Abdomen,
    /// Hip and gluteal region.
    Hip,
    /// Upper limb from shoulder to wrist.
    Arm,
    /// Hand and wrist.
    Hand,
    /// Lower limb from hip to ankle.
    Leg,
    /// Foot and ankle.
    Foot,
    /// Any other region, described in free text (never empty, at most 64 characters).
    Other(String),
}

impl BodyRegion {
    /// The named regions with their API words, in declaration order.
    pub const NAMED: [(&'static str, BodyRegion); 12] = [
        ("head", BodyRegion::Head),
        ("neck", BodyRegion::Neck),
        ("shoulder", BodyRegion::Shoulder),
        ("upper_back", BodyRegion::UpperBack),
        ("lower_back", BodyRegion::LowerBack),
        ("chest", BodyRegion::Chest),
        ("abdomen", BodyRegion::Abdomen),
        ("hip", BodyRegion::Hip),
        ("arm", BodyRegion::Arm),
        ("hand", BodyRegion::Hand),
        ("leg", BodyRegion::Leg),
        ("foot", BodyRegion::Foot),
    ];

    /// Parses an API word (`"lower_back"`), or `other:<text>` for a region the list does not name.
    pub fn parse(field: &str, value: &str) -> Result<BodyRegion, SessionError> {
        if let Some((_, region)) = Self::NAMED.iter().find(|(word, _)| *word == value) {
            return Ok(region.clone());
        }
        if let Some(text) = value.strip_prefix("other:") {
            let text = text.trim();
            if text.is_empty() || text.chars().count() > MAX_OTHER_REGION_LENGTH {
                return Err(SessionError::invalid(
                    field,
                    format!(
                        "a free-text region needs 1 to {MAX_OTHER_REGION_LENGTH} characters after \"other:\""
                    ),
                ));
            }
            return Ok(BodyRegion::Other(text.to_owned()));
        }
        let known: Vec<&str> = Self::NAMED.iter().map(|(word, _)| *word).collect();
        Err(SessionError::invalid(
            field,
            format!(
                "{value:?} is not a body region (known: {}, or other:<text>)",
                known.join(", ")
            ),
        ))
    }
}

impl fmt::Display for BodyRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyRegion::Other(text) => write!(f, "other:{text}"),
            named => {
                let word = Self::NAMED
                    .iter()
                    .find(|(_, region)| region == named)
                    .map_or("other", |(word, _)| *word);
                f.write_str(word)
            }
        }
    }
}

/// Which side of the body a service was delivered to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodySide {
    /// The patient's left side.
    Left,
    /// The patient's right side.
    Right,
    /// Both sides.
    Bilateral,
    /// The midline, such as the spine.
    Midline,
}

impl BodySide {
    /// Every side with its API word.
    pub const ALL: [(&'static str, BodySide); 4] = [
        ("left", BodySide::Left),
        ("right", BodySide::Right),
        ("bilateral", BodySide::Bilateral),
        ("midline", BodySide::Midline),
    ];

    /// Parses an API word such as `"left"`.
    pub fn parse(field: &str, value: &str) -> Result<BodySide, SessionError> {
        Self::ALL
            .iter()
            .find(|(word, _)| *word == value)
            .map(|(_, side)| *side)
            .ok_or_else(|| {
                SessionError::invalid(
                    field,
                    format!(
                        "{value:?} is not a body side (known: left, right, bilateral, midline)"
                    ),
                )
            })
    }

    /// The API word.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, side)| *side == self)
            .map_or("midline", |(word, _)| *word)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_every_named_region_when_printed_then_it_parses_back() {
        for (word, region) in BodyRegion::NAMED {
            assert_eq!(region.to_string(), word);
            assert_eq!(BodyRegion::parse("body_region", word), Ok(region));
        }
    }

    #[test]
    fn given_a_free_text_region_when_parsed_then_it_keeps_the_text() {
        let region = BodyRegion::parse("body_region", "other: jaw").unwrap();
        assert_eq!(region, BodyRegion::Other("jaw".to_owned()));
        assert_eq!(region.to_string(), "other:jaw");
    }

    #[test]
    fn given_an_unknown_region_when_parsed_then_the_error_names_the_field_and_lists_the_choices() {
        let error = BodyRegion::parse("services.body_region", "elbow").unwrap_err();
        assert_eq!(error.field(), "services.body_region");
        assert!(error.reason().contains("lower_back"), "{error}");
    }

    #[test]
    fn given_an_empty_free_text_region_when_parsed_then_it_is_refused() {
        assert!(BodyRegion::parse("body_region", "other:  ").is_err());
    }

    #[test]
    fn given_every_side_when_printed_then_it_parses_back() {
        for (word, side) in BodySide::ALL {
            assert_eq!(side.as_str(), word);
            assert_eq!(BodySide::parse("body_side", word), Ok(side));
        }
        assert_eq!(
            BodySide::parse("body_side", "up").unwrap_err().field(),
            "body_side"
        );
    }
}
