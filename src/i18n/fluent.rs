//! The Fluent files, compiled in and read once: a language chosen for a request, and its texts (with values, plural forms and bidirectional isolation, as Fluent does them).

use std::sync::LazyLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use fluent_langneg::{NegotiationStrategy, accepted_languages, negotiate_languages};
use unic_langid::LanguageIdentifier;

use super::{Lang, Text, Words};

/// The names of the values texts take, kept as `{name}` in [`Words`] for the browser to fill.
const VALUES: &[&str] = &[
    "app", "time", "user", "token", "date", "city", "country", "browser", "os",
];

fn source(lang: Lang) -> &'static str {
    match lang {
        Lang::En => include_str!("locales/en.ftl"),
        Lang::Es => include_str!("locales/es.ftl"),
        Lang::De => include_str!("locales/de.ftl"),
        Lang::Fr => include_str!("locales/fr.ftl"),
        Lang::Pt => include_str!("locales/pt.ftl"),
        Lang::Ja => include_str!("locales/ja.ftl"),
        Lang::Ar => include_str!("locales/ar.ftl"),
    }
}

fn langid(lang: Lang) -> LanguageIdentifier {
    lang.code().parse().unwrap_or_default()
}

/// One bundle per language. A file that does not parse keeps what did (the test below fails on
/// it, so none ships).
static BUNDLES: LazyLock<Vec<FluentBundle<FluentResource>>> = LazyLock::new(|| {
    Lang::ALL
        .iter()
        .map(|&lang| {
            let resource = FluentResource::try_new(source(lang).to_owned())
                .unwrap_or_else(|(partial, _)| partial);
            let mut bundle = FluentBundle::new_concurrent(vec![langid(lang)]);
            // No invisible isolation marks around values: they would become part of headings'
            // accessible names and of every copied text. Values sit in their own elements or
            // at a sentence's edge, where the page's `dir` orders them.
            bundle.set_use_isolating(false);
            let _ = bundle.add_resource(resource);
            bundle
        })
        .collect()
});

static WORDS: LazyLock<Vec<Words>> = LazyLock::new(|| {
    Lang::ALL
        .iter()
        .map(|&lang| {
            let mut args = FluentArgs::new();
            for name in VALUES {
                args.set(*name, format!("{{{name}}}"));
            }
            Words::new(
                lang,
                Text::ALL
                    .iter()
                    .map(|&t| format(lang, t, Some(&args)))
                    .collect(),
            )
        })
        .collect()
});

fn bundle(lang: Lang) -> Option<&'static FluentBundle<FluentResource>> {
    BUNDLES.get(lang as usize)
}

/// The text in `lang`, else in English (never empty: at worst its key).
fn format(lang: Lang, text: Text, args: Option<&FluentArgs>) -> String {
    for lang in [lang, Lang::En] {
        let Some(bundle) = bundle(lang) else { continue };
        if let Some(pattern) = bundle.get_message(text.id()).and_then(|m| m.value()) {
            let mut errors = Vec::new();
            return bundle
                .format_pattern(pattern, args, &mut errors)
                .into_owned();
        }
    }
    text.id().to_owned()
}

/// Every text in `lang`, for an island.
pub fn words(lang: Lang) -> Words {
    WORDS.get(lang as usize).cloned().unwrap_or_default()
}

pub fn text(lang: Lang, text: Text) -> String {
    format(lang, text, None)
}

/// A text with its values (a number selects the plural form).
pub fn text_with(lang: Lang, text: Text, values: &[(&str, FluentValue<'_>)]) -> String {
    let mut args = FluentArgs::new();
    for (name, value) in values {
        args.set(*name, value.clone());
    }
    format(lang, text, Some(&args))
}

/// The cookie that remembers the language a person chose with the pages' switch.
pub const LANG_COOKIE: &str = "qrb_lang";

/// The language of a request: the remembered switch, else `Accept-Language`, else English.
pub fn from_headers(headers: &axum::http::HeaderMap) -> Lang {
    let chosen = headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == LANG_COOKIE)
        .map(|c| c.value().to_owned());
    let accept = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    negotiate(chosen.as_deref(), accept)
}

/// The language for a request: the one the person chose (`chosen`, the remembered switch), else
/// the best of `Accept-Language`, else English.
pub fn negotiate(chosen: Option<&str>, accept_language: Option<&str>) -> Lang {
    if let Some(lang) = chosen.and_then(Lang::parse) {
        return lang;
    }
    let requested = accepted_languages::parse(accept_language.unwrap_or_default());
    let available: Vec<LanguageIdentifier> = Lang::ALL.iter().map(|&l| langid(l)).collect();
    let default = langid(Lang::En);
    negotiate_languages(
        &requested,
        &available,
        Some(&default),
        NegotiationStrategy::Lookup,
    )
    .first()
    .and_then(|id| Lang::parse(id.language.as_str()))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The build's guard against a missing translation: every text in every language, each file
    /// parsing cleanly, no key left over, and no text formatting with an error.
    #[test]
    fn every_language_has_every_text_and_no_other() {
        let wanted: BTreeSet<&str> = Text::ALL.iter().map(|t| t.id()).collect();
        assert_eq!(wanted.len(), Text::ALL.len(), "two texts share a key");
        for lang in Lang::ALL {
            let resource = FluentResource::try_new(source(lang).to_owned())
                .unwrap_or_else(|(_, e)| panic!("{}.ftl does not parse: {e:?}", lang.code()));
            let have: BTreeSet<&str> = resource
                .entries()
                .filter_map(|entry| match entry {
                    fluent_syntax::ast::Entry::Message(m) => Some(m.id.name),
                    _ => None,
                })
                .collect();
            let missing: Vec<_> = wanted.difference(&have).collect();
            let unused: Vec<_> = have.difference(&wanted).collect();
            assert!(missing.is_empty(), "{}.ftl lacks {missing:?}", lang.code());
            assert!(
                unused.is_empty(),
                "{}.ftl has unused {unused:?}",
                lang.code()
            );
            let bundle = bundle(lang).unwrap();
            let mut args = FluentArgs::new();
            for name in VALUES {
                args.set(*name, "x");
            }
            args.set("minutes", 3);
            for &text in Text::ALL {
                let pattern = bundle.get_message(text.id()).and_then(|m| m.value());
                let pattern = pattern
                    .unwrap_or_else(|| panic!("{}: {} has no value", lang.code(), text.id()));
                let mut errors = Vec::new();
                let out = bundle.format_pattern(pattern, Some(&args), &mut errors);
                assert!(
                    errors.is_empty(),
                    "{}: {}: {errors:?}",
                    lang.code(),
                    text.id()
                );
                assert!(
                    !out.trim().is_empty(),
                    "{}: {} is blank",
                    lang.code(),
                    text.id()
                );
            }
        }
    }

    /// A value the browser fills must be named the same in every language, or it would show
    /// as `{name}` there.
    #[test]
    fn every_language_uses_the_values_english_does() {
        let en = words(Lang::En);
        for lang in Lang::ALL {
            let other = words(lang);
            for &text in Text::ALL {
                for name in VALUES {
                    let slot = format!("{{{name}}}");
                    assert_eq!(
                        en.get(text).contains(&slot),
                        other.get(text).contains(&slot),
                        "{}: {} and {slot}",
                        lang.code(),
                        text.id()
                    );
                }
            }
        }
    }

    #[test]
    fn the_chosen_language_wins_then_accept_language_then_english() {
        assert_eq!(negotiate(Some("ja"), Some("fr-FR,fr;q=0.9")), Lang::Ja);
        assert_eq!(
            negotiate(Some("xx"), Some("fr-FR,fr;q=0.9")),
            Lang::Fr,
            "an unknown choice is ignored"
        );
        assert_eq!(negotiate(None, Some("pt-BR,pt;q=0.9,en;q=0.5")), Lang::Pt);
        assert_eq!(negotiate(None, Some("ar-EG")), Lang::Ar);
        assert_eq!(negotiate(None, Some("de-CH, en;q=0.8")), Lang::De);
        assert_eq!(
            negotiate(None, Some("zh-CN, es;q=0.7")),
            Lang::Es,
            "the best we have"
        );
        assert_eq!(negotiate(None, Some("zh-CN")), Lang::En);
        assert_eq!(negotiate(None, None), Lang::En);
    }

    #[test]
    fn plural_forms_and_values_follow_the_language() {
        let ago = |lang, n: u64| text_with(lang, Text::RequestedAgo, &[("minutes", n.into())]);
        assert_eq!(ago(Lang::En, 0), "just now");
        assert_eq!(ago(Lang::En, 1), "a minute ago");
        assert!(ago(Lang::En, 5).contains('5'));
        assert_ne!(ago(Lang::Fr, 0), ago(Lang::En, 0));
        let title = words(Lang::Ar).fill(Text::PhoneTitle, &[("app", "Shop")]);
        assert!(
            title.contains("Shop") && !title.contains("{app}"),
            "{title}"
        );
    }
}
