//! The pages' languages: which ones there are, every text the pages show by key, and the words of one language as the islands receive them (the words themselves are Fluent files, one per language, read on the server).

#[cfg(feature = "ssr")]
mod fluent;

#[cfg(feature = "ssr")]
pub use fluent::{LANG_COOKIE, from_headers, negotiate, text, text_with, words};

use serde::{Deserialize, Serialize};

/// The languages of the pages. English is the fallback.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Lang {
    #[default]
    En,
    Es,
    De,
    Fr,
    Pt,
    Ja,
    Ar,
}

impl Lang {
    pub const ALL: [Lang; 7] = [
        Lang::En,
        Lang::Es,
        Lang::De,
        Lang::Fr,
        Lang::Pt,
        Lang::Ja,
        Lang::Ar,
    ];

    /// The BCP 47 tag: the `lang` attribute, the cookie's value.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
            Lang::De => "de",
            Lang::Fr => "fr",
            Lang::Pt => "pt",
            Lang::Ja => "ja",
            Lang::Ar => "ar",
        }
    }

    /// The `dir` attribute: Arabic is written right to left.
    pub fn dir(self) -> &'static str {
        match self {
            Lang::Ar => "rtl",
            _ => "ltr",
        }
    }

    /// The language's name in itself, for the switch.
    pub fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Es => "Español",
            Lang::De => "Deutsch",
            Lang::Fr => "Français",
            Lang::Pt => "Português",
            Lang::Ja => "日本語",
            Lang::Ar => "العربية",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.code() == code)
    }
}

/// Declares the texts: each a key of the Fluent files. A key used in code but missing from a
/// file, or left in a file and used nowhere, fails `every_language_has_every_text_and_no_other`.
macro_rules! texts {
    ($($variant:ident = $id:literal,)*) => {
        /// Every text a page shows.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum Text {
            $($variant,)*
        }

        impl Text {
            pub const ALL: &'static [Text] = &[$(Text::$variant,)*];

            /// Its key in the Fluent files.
            pub fn id(self) -> &'static str {
                match self {
                    $(Text::$variant => $id,)*
                }
            }
        }
    };
}

texts! {
    SkipLink = "skip-link",
    Secured = "footer-secured",
    Language = "language",
    NotFoundTitle = "not-found-title",
    NotFoundMessage = "not-found-message",
    NotFoundHome = "not-found-home",
    ErrorTitle = "error-title",
    DeskPreparing = "desk-preparing",
    DeskNoAppTitle = "desk-no-app-title",
    DeskNoAppMessage = "desk-no-app-message",
    DeskQrLabel = "desk-qr-label",
    DeskExpires = "desk-expires",
    DeskTitle = "desk-title",
    DeskStepCamera = "desk-step-camera",
    DeskStepApprove = "desk-step-approve",
    DeskScanned = "desk-scanned",
    DeskMatch = "desk-match",
    DeskWaiting = "desk-waiting",
    DeskLink = "desk-link",
    Cancel = "cancel",
    DeskSignedInTitle = "desk-signed-in-title",
    DeskSignedInAs = "desk-signed-in-as",
    DeskToken = "desk-token",
    DeskSignOut = "desk-sign-out",
    DeskDeniedTitle = "desk-denied-title",
    DeskDeniedMessage = "desk-denied-message",
    DeskCancelledTitle = "desk-cancelled-title",
    DeskCancelledMessage = "desk-cancelled-message",
    DeskExpiredTitle = "desk-expired-title",
    DeskExpiredMessage = "desk-expired-message",
    DeskNewCode = "desk-new-code",
    DeskTooMany = "desk-too-many",
    PhoneLoading = "phone-loading",
    PhoneClose = "phone-close",
    PhoneEyebrow = "phone-eyebrow",
    PhoneTitle = "phone-title",
    PhoneAsking = "phone-asking",
    PhoneDevice = "phone-device",
    PhoneWhere = "phone-where",
    PhoneNetwork = "phone-network",
    PhoneRequested = "phone-requested",
    PhoneWarning = "phone-warning",
    NetworkSame = "network-same",
    NetworkDifferent = "network-different",
    ElsewhereTitle = "elsewhere-title",
    ElsewhereText = "elsewhere-text",
    Place = "place",
    NumbersLegend = "numbers-legend",
    NumbersNone = "numbers-none",
    GettingReady = "getting-ready",
    ApproveCreate = "approve-create",
    Approve = "approve",
    Decline = "decline",
    WorkingCreate = "working-create",
    WorkingUse = "working-use",
    WorkingPrepare = "working-prepare",
    WorkingDecline = "working-decline",
    WorkingCheck = "working-check",
    WorkingDisown = "working-disown",
    NoPasskey = "no-passkey",
    NoPasskeyCreate = "no-passkey-create",
    NoPasskeyOther = "no-passkey-other",
    CreatePasskey = "create-passkey",
    TryAgain = "try-again",
    Done = "done",
    DoneDesktop = "done-desktop",
    Allowed = "allowed",
    AllowedApp = "allowed-app",
    AllowedAt = "allowed-at",
    ApprovedWithNew = "approved-with-new",
    ApprovedWithDated = "approved-with-dated",
    NotMe = "not-me",
    DisownedTitle = "disowned-title",
    DisownedText = "disowned-text",
    Declined = "declined",
    DeclinedNobody = "declined-nobody",
    CeremonyUnsupported = "ceremony-unsupported",
    CeremonyFailed = "ceremony-failed",
    UnknownBrowser = "unknown-browser",
    BrowserOn = "browser-on",
    RequestedAgo = "requested-ago",
    RetryOurs = "retry-ours",
    AnswerUnreadable = "answer-unreadable",
    ScanAgain = "scan-again",
    NotVerifiedAdvice = "not-verified-advice",
    GenericTitle = "generic-title",
    GenericAdvice = "generic-advice",
    LimitedTitle = "limited-title",
    LimitedAdvice = "limited-advice",
    InvalidCodeTitle = "invalid-code-title",
    ExpiredTitle = "expired-title",
    DeclinedTitle = "declined-title",
    DeclinedAdvice = "declined-advice",
    CancelledTitle = "cancelled-title",
    CancelledAdvice = "cancelled-advice",
    AlreadyApprovedTitle = "already-approved-title",
    AlreadyApprovedAdvice = "already-approved-advice",
    AlreadyDeclinedTitle = "already-declined-title",
    AlreadyDeclinedAdvice = "already-declined-advice",
    PickFirstTitle = "pick-first-title",
    PickFirstAdvice = "pick-first-advice",
    CantGoOnTitle = "cant-go-on-title",
    NotVerifiedTitle = "not-verified-title",
    UnknownPasskeyTitle = "unknown-passkey-title",
    UnknownPasskeyAdvice = "unknown-passkey-advice",
    NoSignupTitle = "no-signup-title",
    NoSignupAdvice = "no-signup-advice",
    AccountExistsTitle = "account-exists-title",
    AccountExistsAdvice = "account-exists-advice",
    OtherDeviceTitle = "other-device-title",
    OtherDeviceAdvice = "other-device-advice",
    WrongPinTitle = "wrong-pin-title",
    WrongPinAdvice = "wrong-pin-advice",
    PinLockedTitle = "pin-locked-title",
    PinLockedAdvice = "pin-locked-advice",
    BadLinkTitle = "bad-link-title",
    OtherBrowserTitle = "other-browser-title",
    AlreadyCreatesTitle = "already-creates-title",
    AlreadyCreatesAdvice = "already-creates-advice",
    AccountGoneTitle = "account-gone-title",
    AccountGoneAdvice = "account-gone-advice",
    UnreachableTitle = "unreachable-title",
    UnreachableAdvice = "unreachable-advice",
    OursTitle = "ours-title",
    OursAdvice = "ours-advice",
    WrongNumberTitle = "wrong-number-title",
    WrongNumberAdvice = "wrong-number-advice",
}

/// Every text in one language, made on the server and handed to the islands, which have no
/// Fluent of their own (the phone downloads words, not a translation engine). A text that takes
/// a value the browser only knows keeps it as `{name}`, filled by [`Words::fill`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Words {
    pub lang: Lang,
    texts: Vec<String>,
}

impl Words {
    pub fn new(lang: Lang, texts: Vec<String>) -> Self {
        Words { lang, texts }
    }

    pub fn get(&self, text: Text) -> String {
        self.texts.get(text as usize).cloned().unwrap_or_default()
    }

    /// The text with its `{name}` values filled in.
    pub fn fill(&self, text: Text, values: &[(&str, &str)]) -> String {
        values.iter().fold(self.get(text), |s, (name, value)| {
            s.replace(&format!("{{{name}}}"), value)
        })
    }
}
