//! The pages: the HTML shell, the routes, and what the desktop and phone pages share.

mod approval;
mod desktop;
#[cfg(feature = "ssr")]
pub mod server;

#[cfg(feature = "ssr")]
pub use desktop::server::desk_events;

use leptos::prelude::*;
use leptos_meta::{HashedStylesheet, Meta, MetaTags, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{SsrMode, StaticSegment, path};

use crate::i18n::{Lang, Text, Words};

pub use approval::{
    Approval, ApprovalOptions, Asking, PasskeyUsed, PhoneApprove, PhoneDisown, PhoneOutcome,
    PhonePick,
};
pub use desktop::{AppLabel, Desk, DeskOpen, DeskRefresh, DeskSignOut, Ending, Waiting};

pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(nonce) = leptos::nonce::use_nonce() {
        let reload = (options.env == leptos::config::Env::DEV).then_some(options.reload_port);
        crate::headers::set_page_headers(&nonce, reload);
    }
    // The request's language, for every page below (and their islands, as a prop).
    #[cfg(feature = "ssr")]
    let lang = {
        let request = use_context::<axum::http::request::Parts>();
        let lang = request
            .as_ref()
            .map(|r| server::lang_of(&r.headers))
            .unwrap_or_default();
        provide_context(crate::i18n::words(lang));
        provide_context(Switch(
            request.map(|r| switch_links(&r.uri)).unwrap_or_default(),
        ));
        lang
    };
    #[cfg(not(feature = "ssr"))]
    let lang = Lang::En;
    view! {
        <!DOCTYPE html>
        <html lang=lang.code() dir=lang.dir()>
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover"/>
                <meta name="color-scheme" content="light dark"/>
                <AutoReload options=options.clone()/>
                // The stylesheet, script and wasm by this build's names (content-hashed in a
                // release build; see site.rs).
                <HashedStylesheet options=options.clone() id="leptos"/>
                <HydrationScripts options islands=true/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The pages, rendered on the server only: what comes alive in the browser are the islands inside
/// them (the approval card, the desktop's card), so neither this nor the router ships as wasm.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let words = page_words();
    let current = words.lang;
    let links = use_context::<Switch>().unwrap_or_default().0;

    view! {
        <Title text="QR Bridge"/>
        <Meta name="robots" content="noindex"/>
        <Router>
            <a class="skip" href="#main">{words.get(Text::SkipLink)}</a>
            <main id="main">
                // Async rendering: these pages set their HTTP status (404, 410) from what they find.
                <Routes fallback=NotFound>
                    <Route path=StaticSegment("") view=desktop::DesktopPage ssr=SsrMode::Async/>
                    <Route path=path!("/login/:app_id") view=desktop::DesktopPage ssr=SsrMode::Async/>
                    <Route path=path!("/bridge/:session_id") view=approval::ApprovalPage ssr=SsrMode::Async/>
                    <Route path=path!("/mobile-auth") view=approval::ApprovalPage ssr=SsrMode::Async/>
                </Routes>
            </main>
            <footer class="footer">
                <nav class="langs" aria-label=words.get(Text::Language)>
                    {links.into_iter().map(|(lang, href)| view! {
                        <a href=href hreflang=lang.code() lang=lang.code()
                            aria-current=(lang == current).then_some("true")>{lang.name()}</a>
                    }).collect_view()}
                </nav>
                <p>
                    <span>{words.get(Text::Secured)} " · "</span>
                    <a href="https://www.w3.org/TR/webauthn-3/" rel="noreferrer">"WebAuthn"</a>
                </p>
            </footer>
        </Router>
    }
}

/// A full-page message: what happened, and what to do next.
#[component]
pub fn Notice(
    title: String,
    message: String,
    #[prop(optional)] tone: &'static str,
    children: Children,
) -> impl IntoView {
    view! {
        <section class=format!("card notice {tone}") aria-labelledby="notice-title">
            <h1 id="notice-title">{title}</h1>
            <p class="lead">{message}</p>
            {children()}
        </section>
    }
}

/// Sets the HTTP status of a page rendered on the server (and does nothing in the browser).
#[cfg(feature = "ssr")]
pub fn set_status(code: u16) {
    if let (Some(response), Ok(status)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        axum::http::StatusCode::from_u16(code),
    ) {
        response.set_status(status);
    }
}

#[cfg(not(feature = "ssr"))]
pub fn set_status(_code: u16) {}

#[component]
fn NotFound() -> impl IntoView {
    set_status(404);
    let words = page_words();
    view! {
        <Notice title=words.get(Text::NotFoundTitle) message=words.get(Text::NotFoundMessage)>
            <p><a class="button secondary" href="/">{words.get(Text::NotFoundHome)}</a></p>
        </Notice>
    }
}

/// The words of the request's language, as the shell chose them (English outside a request).
pub fn page_words() -> Words {
    use_context::<Words>().unwrap_or_default()
}

/// The language switch's links: this very address in each language (see
/// `server::remember_language`).
#[derive(Clone, Debug, Default)]
struct Switch(Vec<(Lang, String)>);

#[cfg(feature = "ssr")]
fn switch_links(uri: &axum::http::Uri) -> Vec<(Lang, String)> {
    let kept: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .filter(|(k, _)| k != "lang")
            .collect();
    Lang::ALL
        .into_iter()
        .map(|lang| {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&kept)
                .append_pair("lang", lang.code())
                .finish();
            (lang, format!("{}?{query}", server::own_path(uri.path())))
        })
        .collect()
}
