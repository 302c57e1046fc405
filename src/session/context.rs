//! The approval message a desktop may show on the phone, checked once when it enters.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A message of at most [`ApprovalContext::MAX_CHARS`] characters, free of control characters and
/// of the bidirectional controls that could make the phone display a different text than was sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ApprovalContext(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidApprovalContext {
    /// Only from deserialising: on the way in, a blank message simply means "none".
    #[error("approval_context is blank")]
    Blank,
    #[error("approval_context has {0} characters; at most 200 are allowed")]
    TooLong(usize),
    #[error("approval_context contains the control character U+{0:04X}")]
    Control(u32),
    #[error(
        "approval_context contains the bidirectional control U+{0:04X}, which could disguise the message"
    )]
    Bidi(u32),
}

impl ApprovalContext {
    pub const MAX_CHARS: usize = 200;

    /// Blank text means "no message": `Ok(None)`. Length counts Unicode scalar values, as people
    /// count characters, not bytes.
    pub fn parse(text: &str) -> Result<Option<Self>, InvalidApprovalContext> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let count = text.chars().count();
        if count > Self::MAX_CHARS {
            return Err(InvalidApprovalContext::TooLong(count));
        }
        if let Some(c) = text.chars().find(|c| c.is_control()) {
            return Err(InvalidApprovalContext::Control(c.into()));
        }
        if let Some(c) = text.chars().find(|&c| is_bidi_control(c)) {
            return Err(InvalidApprovalContext::Bidi(c.into()));
        }
        Ok(Some(Self(text.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The message as the phone shows it: without zero-width or direction-changing characters,
    /// which could hide or reorder words. (Direction controls are refused on the way in; this
    /// also covers messages that never went through `parse`.)
    pub fn for_display(&self) -> String {
        self.0
            .chars()
            .filter(|&c| !is_bidi_control(c) && !is_invisible(c))
            .collect()
    }
}

/// Zero-width and other invisible format characters.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{180E}' | '\u{00AD}')
}

/// Embeddings, overrides, isolates and the implicit direction marks (Unicode's Bidi_Control set).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

impl TryFrom<String> for ApprovalContext {
    type Error = InvalidApprovalContext;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)?.ok_or(InvalidApprovalContext::Blank)
    }
}

impl From<ApprovalContext> for String {
    fn from(context: ApprovalContext) -> Self {
        context.0
    }
}

impl fmt::Display for ApprovalContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_characters_not_bytes() {
        let exactly = "é".repeat(200);
        assert_eq!(
            ApprovalContext::parse(&exactly).unwrap().unwrap().as_str(),
            exactly
        );
        assert_eq!(
            ApprovalContext::parse(&"é".repeat(201)),
            Err(InvalidApprovalContext::TooLong(201))
        );
        let emoji = "👍".repeat(200);
        assert!(ApprovalContext::parse(&emoji).unwrap().is_some());
    }

    #[test]
    fn blank_means_absent_and_edges_are_trimmed() {
        assert_eq!(ApprovalContext::parse("   "), Ok(None));
        assert_eq!(ApprovalContext::parse(""), Ok(None));
        assert_eq!(
            ApprovalContext::parse("  Pay 20 €  ")
                .unwrap()
                .unwrap()
                .as_str(),
            "Pay 20 €"
        );
    }

    #[test]
    fn refuses_controls_and_bidi_tricks() {
        assert_eq!(
            ApprovalContext::parse("a\nb"),
            Err(InvalidApprovalContext::Control(0x0A))
        );
        assert_eq!(
            ApprovalContext::parse("a\u{7}b"),
            Err(InvalidApprovalContext::Control(0x07))
        );
        assert_eq!(
            ApprovalContext::parse("a\u{85}b"),
            Err(InvalidApprovalContext::Control(0x85))
        );
        for c in [
            '\u{202E}', '\u{202A}', '\u{2066}', '\u{2069}', '\u{200F}', '\u{061C}',
        ] {
            let text = format!("Pay {c}01 €");
            assert_eq!(
                ApprovalContext::parse(&text),
                Err(InvalidApprovalContext::Bidi(c.into()))
            );
        }
        // Joiners are legitimate inside emoji sequences and scripts such as Devanagari.
        assert!(
            ApprovalContext::parse("👩\u{200D}💻 sign-in")
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn display_drops_invisible_characters() {
        let context = ApprovalContext::parse("Pay\u{200B} 20\u{FEFF} €\u{200D}")
            .unwrap()
            .unwrap();
        assert_eq!(context.for_display(), "Pay 20 €");
    }

    #[test]
    fn stored_form_round_trips() {
        let context = ApprovalContext::parse("Access to orders").unwrap().unwrap();
        let json = serde_json::to_string(&context).unwrap();
        assert_eq!(
            serde_json::from_str::<ApprovalContext>(&json).unwrap(),
            context
        );
        assert!(serde_json::from_str::<ApprovalContext>("\"a\\u202eb\"").is_err());
    }
}
