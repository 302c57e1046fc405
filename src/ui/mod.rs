//! The pages: the HTML shell, the router, and the landing page.

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::StaticSegment;
use leptos_router::components::{Route, Router, Routes};

pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/qr-bridge.css"/>
        <Title text="QR Bridge"/>
        <Router>
            <main>
                <Routes fallback=NotFound>
                    <Route path=StaticSegment("") view=Home/>
                </Routes>
            </main>
        </Router>
    }
}

#[component]
fn Home() -> impl IntoView {
    view! {
        <section class="card">
            <h1>"QR Bridge"</h1>
            <p>"Sign in on this computer by scanning a QR code with the phone that holds your passkey."</p>
            <p class="muted">"The bridge is running. Its API lives under " <code>"/v1/auth/cross-device/"</code> "."</p>
        </section>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    view! {
        <section class="card">
            <h1>"Page not found"</h1>
            <p><a href="/">"Back to the start"</a></p>
        </section>
    }
}
