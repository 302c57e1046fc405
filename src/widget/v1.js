// QR Bridge sign-in widget, v1: <qr-bridge-signin publishable-key="…">, the whole desktop side of a
// cross-device sign-in on any page, with no dependencies. Served by the bridge at /widget/v1.js.
//
// It starts a session, shows the QR code (drawn by the bridge) and its link, counts down, says when
// the phone has scanned, gets a new code when one expires, offers Cancel, and fires `signin`
// (detail: sessionToken, userId, sessionId) or `signinerror` (detail: code, message). Hand the
// token to your backend and check it there: a browser's word is not proof.

const BRIDGE = new URL(import.meta.url).origin;
const POLL_MS = 3000;
/// Codes renewed on expiry without anyone asking: a tab left open stops after this many.
const RENEWALS = 10;

const STRINGS = {
  en: {
    title: "Sign in with your phone",
    starting: "Getting a code…",
    scan: "Scan this code with your phone's camera.",
    link: "Or open this link on your phone:",
    qr: "QR code to sign in on your phone",
    expires: (t) => `Expires in ${t}`,
    scanned: "Scanned — check your phone",
    match: "On your phone, tap this number:",
    signedIn: "You're signed in",
    expired: "This code has expired.",
    declined: "The sign-in was declined on the phone.",
    cancelled: "Sign-in cancelled.",
    failed: "Something went wrong. Try again.",
    cancel: "Cancel",
    renew: "Get a new code",
  },
  fr: {
    title: "Connectez-vous avec votre téléphone",
    starting: "Création du code…",
    scan: "Scannez ce code avec l'appareil photo de votre téléphone.",
    link: "Ou ouvrez ce lien sur votre téléphone :",
    qr: "Code QR pour vous connecter avec votre téléphone",
    expires: (t) => `Expire dans ${t}`,
    scanned: "Code scanné — regardez votre téléphone",
    match: "Sur votre téléphone, touchez ce nombre :",
    signedIn: "Vous êtes connecté",
    expired: "Ce code a expiré.",
    declined: "La connexion a été refusée sur le téléphone.",
    cancelled: "Connexion annulée.",
    failed: "Une erreur s'est produite. Réessayez.",
    cancel: "Annuler",
    renew: "Nouveau code",
  },
  de: {
    title: "Mit dem Telefon anmelden",
    starting: "Code wird erstellt…",
    scan: "Scannen Sie diesen Code mit der Kamera Ihres Telefons.",
    link: "Oder öffnen Sie diesen Link auf Ihrem Telefon:",
    qr: "QR-Code zur Anmeldung mit dem Telefon",
    expires: (t) => `Läuft ab in ${t}`,
    scanned: "Gescannt — sehen Sie auf Ihr Telefon",
    match: "Tippen Sie auf dem Telefon diese Zahl an:",
    signedIn: "Sie sind angemeldet",
    expired: "Dieser Code ist abgelaufen.",
    declined: "Die Anmeldung wurde auf dem Telefon abgelehnt.",
    cancelled: "Anmeldung abgebrochen.",
    failed: "Etwas ist schiefgelaufen. Bitte erneut versuchen.",
    cancel: "Abbrechen",
    renew: "Neuer Code",
  },
  es: {
    title: "Inicia sesión con tu teléfono",
    starting: "Creando el código…",
    scan: "Escanea este código con la cámara de tu teléfono.",
    link: "O abre este enlace en tu teléfono:",
    qr: "Código QR para iniciar sesión con tu teléfono",
    expires: (t) => `Caduca en ${t}`,
    scanned: "Escaneado — mira tu teléfono",
    match: "En tu teléfono, toca este número:",
    signedIn: "Has iniciado sesión",
    expired: "Este código ha caducado.",
    declined: "El inicio de sesión se rechazó en el teléfono.",
    cancelled: "Inicio de sesión cancelado.",
    failed: "Algo ha fallado. Inténtalo de nuevo.",
    cancel: "Cancelar",
    renew: "Nuevo código",
  },
};

// Custom properties (with their defaults) and parts are the styling surface; the rest is private.
const CSS = `
:host { display: block; color-scheme: light dark; font: var(--qrb-font, 400 15px/1.45 system-ui, sans-serif);
  --_fg: var(--qrb-fg, #14161c); --_bg: var(--qrb-bg, #ffffff); --_muted: var(--qrb-muted, #5b6170);
  --_accent: var(--qrb-accent, #2456d6); --_border: var(--qrb-border, #d9dce3); }
:host([data-scheme="dark"]) { --_fg: var(--qrb-fg, #eef0f4); --_bg: var(--qrb-bg, #161a22);
  --_muted: var(--qrb-muted, #a7adba); --_accent: var(--qrb-accent, #8fb0ff); --_border: var(--qrb-border, #323846); }
:host([hidden]) { display: none; }
section { color: var(--_fg); background: var(--_bg); border: 1px solid var(--_border);
  border-radius: var(--qrb-radius, 12px); padding: 1.25rem; max-width: 34rem; }
h2 { font-size: 1.15em; margin: 0 0 .75rem; }
.body { display: flex; gap: 1.25rem; align-items: center; flex-wrap: wrap; }
img { width: var(--qrb-qr-size, 200px); height: var(--qrb-qr-size, 200px); background: #fff;
  border-radius: 6px; padding: 6px; }
img:not([src]) { visibility: hidden; }
.side { flex: 1 1 12rem; min-width: 0; }
p { margin: 0 0 .5rem; }
.muted { color: var(--_muted); }
a { color: var(--_accent); overflow-wrap: anywhere; }
[part~="status"] { font-weight: 600; margin-top: .75rem; min-height: 1.45em; }
.actions { display: flex; gap: .5rem; margin-top: .5rem; }
button { font: inherit; cursor: pointer; border-radius: 8px; padding: .45rem .9rem;
  border: 1px solid var(--_border); background: transparent; color: var(--_fg); }
button.primary { background: var(--_accent); border-color: var(--_accent); color: var(--_bg); }
button:focus-visible, a:focus-visible { outline: 3px solid var(--_accent); outline-offset: 2px; }
[part~="number"] { display: flex; align-items: center; gap: .75rem; margin-top: .75rem; }
[part~="number"] strong { font-size: 2.25em; line-height: 1.1; font-weight: 800; padding: .05em .4em;
  border: 2px solid var(--_accent); border-radius: 8px; color: var(--_accent); font-variant-numeric: tabular-nums; }
[hidden] { display: none !important; }
`;

let sheet;
function styles() {
  if (!sheet) {
    // A constructed sheet: the host page's CSP (style-src) does not have to allow inline styles.
    sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
  }
  return sheet;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "part" || key.startsWith("aria-") || key.startsWith("data-") || key === "role" || key === "id") node.setAttribute(key, value);
    else node[key] = value;
  }
  node.append(...children);
  return node;
}

function clock(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** https, or plain http on this machine (a development bridge): nothing else is followed or linked. */
function trusted(url) {
  return url.protocol === "https:" || (url.protocol === "http:" && ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname));
}

/** The token's claims, read (not verified: that is the backend's job) to catch a misconfigured page. */
function claims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part));
  } catch {
    return {};
  }
}

class QrBridgeSignin extends HTMLElement {
  #ui;
  #run = 0;
  #abort = null;
  #session = null;
  #renewals = 0;
  #ticker = 0;
  #announced = false;

  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    root.adoptedStyleSheets = [styles()];
    const ui = {
      title: el("h2", { id: "title", part: "title" }),
      qr: el("img", { part: "qr", decoding: "async" }),
      scan: el("p", { part: "hint" }),
      linkLabel: el("span", { className: "muted" }),
      link: el("a", { part: "link", target: "_blank", rel: "noopener noreferrer" }),
      countdown: el("p", { part: "countdown", className: "muted" }),
      status: el("p", { part: "status", role: "status", "aria-live": "polite" }),
      // Number matching (apps with confirm_code): what the person taps on the phone, drawn large;
      // the status line says it in words.
      number: el("strong", { "data-testid": "match-number" }),
      cancel: el("button", { part: "button cancel", type: "button" }),
      renew: el("button", { part: "button renew", type: "button", className: "primary", hidden: true }),
    };
    ui.cancel.addEventListener("click", () => this.cancel());
    ui.renew.addEventListener("click", () => this.#start(true));
    root.append(
      el("section", { part: "container", role: "group", "aria-labelledby": "title" },
        ui.title,
        el("div", { className: "body" }, ui.qr,
          el("div", { className: "side" }, ui.scan, el("p", {}, ui.linkLabel, " ", ui.link), ui.countdown)),
        ui.status,
        ui.numberBox = el("p", { part: "number", hidden: true, "aria-hidden": "true" }, ui.number),
        el("div", { className: "actions" }, ui.cancel, ui.renew)),
    );
    this.#ui = ui;
  }

  connectedCallback() {
    this.#scheme();
    this.#words();
    this.#start(true);
  }

  disconnectedCallback() {
    this.#stop();
  }

  /** The page's language (nearest `lang`), else the browser's; English when it has none of ours. */
  get #t() {
    const lang = (this.closest("[lang]")?.getAttribute("lang") || navigator.language || "en").toLowerCase();
    return STRINGS[lang.split("-")[0]] ?? STRINGS.en;
  }

  /** Follows the page: its declared `color-scheme` when it has one, else the system's. */
  #scheme() {
    const declared = getComputedStyle(document.documentElement).colorScheme || "";
    const dark = declared.includes("dark") && !declared.includes("light")
      ? true
      : declared.includes("light") && !declared.includes("dark")
        ? false
        : matchMedia("(prefers-color-scheme: dark)").matches;
    this.dataset.scheme = dark ? "dark" : "light";
  }

  #words() {
    const t = this.#t;
    const ui = this.#ui;
    ui.title.textContent = t.title;
    ui.scan.textContent = t.scan;
    ui.linkLabel.textContent = t.link;
    ui.qr.alt = t.qr;
    ui.cancel.textContent = t.cancel;
    ui.renew.textContent = t.renew;
  }

  /** The bridge: where this script came from, or the `bridge` attribute when it is https (or local). */
  get #base() {
    const named = this.getAttribute("bridge");
    if (!named) return BRIDGE;
    const url = new URL(named, location.href);
    if (!trusted(url)) throw Object.assign(new Error("the bridge attribute must be an https address"), { code: "invalid_bridge" });
    return url.origin;
  }

  #headers(session) {
    const headers = { Authorization: `Bearer ${this.getAttribute("publishable-key") ?? ""}` };
    if (session) headers["X-Polling-Token"] = session.polling_token;
    return headers;
  }

  #say(text) {
    this.#ui.status.textContent = text;
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }

  #stop() {
    this.#run += 1;
    this.#abort?.abort();
    this.#abort = null;
    clearInterval(this.#ticker);
  }

  /** The code is over: show why, and a way to start again. */
  #over(text, code) {
    this.#stop();
    this.#session = null;
    const ui = this.#ui;
    ui.qr.removeAttribute("src");
    ui.link.removeAttribute("href");
    ui.link.textContent = "";
    ui.countdown.textContent = "";
    ui.numberBox.hidden = true;
    ui.cancel.hidden = true;
    ui.renew.hidden = false;
    this.#say(text);
    if (code) this.#emit("signinerror", { code, message: text });
  }

  async #start(asked) {
    if (asked) this.#renewals = 0;
    this.#stop();
    const run = this.#run;
    const abort = (this.#abort = new AbortController());
    const ui = this.#ui;
    ui.renew.hidden = true;
    ui.cancel.hidden = false;
    ui.numberBox.hidden = true;
    ui.number.textContent = "";
    this.#announced = false;
    this.#say(this.#t.starting);
    try {
      const body = {};
      const context = this.getAttribute("approval-context");
      if (context) body.approval_context = context;
      const res = await fetch(`${this.#base}/v1/auth/cross-device/init`, {
        method: "POST",
        headers: { ...this.#headers(), "Content-Type": "application/json" },
        body: JSON.stringify(body),
        signal: abort.signal,
      });
      const json = await res.json();
      if (!json.ok) throw Object.assign(new Error(json.error?.message), { code: json.error?.code });
      if (run !== this.#run) return;
      const session = (this.#session = json.data);
      const link = new URL(session.qr_url);
      if (!trusted(link)) throw Object.assign(new Error("unexpected approval address"), { code: "invalid_response" });
      const size = Math.round((parseFloat(getComputedStyle(ui.qr).width) || 200) * (devicePixelRatio || 1));
      ui.qr.src = `${this.#base}/v1/auth/cross-device/qr/${session.session_id}?size=${Math.min(1024, Math.max(64, size))}`;
      ui.link.href = session.qr_url;
      ui.link.textContent = session.qr_url;
      this.#say("");
      const ends = Date.parse(session.expires_at);
      const tick = () => (ui.countdown.textContent = this.#t.expires(clock(ends - Date.now())));
      tick();
      this.#ticker = setInterval(tick, 1000);
      await this.#wait(run, session, abort.signal);
    } catch (e) {
      if (run !== this.#run || e.name === "AbortError") return;
      this.#over(this.#t.failed, e.code ?? "network_failure");
    }
  }

  /** Events first (a fetch stream: it can carry the polling token, an EventSource cannot), then polls. */
  async #wait(run, session, signal) {
    try {
      const res = await fetch(`${this.#base}/v1/auth/cross-device/status/${session.session_id}`, {
        headers: { "X-Polling-Token": session.polling_token, Accept: "text/event-stream" },
        signal,
      });
      if (res.ok && res.body && (res.headers.get("content-type") ?? "").includes("text/event-stream")) {
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("");
            if (data && this.#seen(run, JSON.parse(data))) return;
          }
        }
      }
    } catch (e) {
      if (e.name === "AbortError") return;
    }
    // No stream, or it ended before the code did: poll, until the code's end and a little more.
    const until = Date.parse(session.expires_at) + 30_000;
    let wait = POLL_MS;
    while (run === this.#run) {
      const res = await fetch(`${this.#base}/v1/auth/cross-device/status/${session.session_id}`, {
        headers: this.#headers(session),
        signal,
      }).catch((e) => (e.name === "AbortError" ? null : { ok: false, status: 0 }));
      if (!res) return;
      const json = res.json ? await res.json().catch(() => null) : null;
      if (json?.ok) {
        if (this.#seen(run, json.data)) return;
        wait = POLL_MS;
      } else if (json?.error && this.#ended(json.error.code)) {
        if (this.#seen(run, this.#ended(json.error.code))) return;
      } else if (json?.error && ![429, 503].includes(res.status) && res.status < 500) {
        // Refused for good (an unknown session, a key the bridge does not know): say so, stop.
        this.#over(this.#t.failed, json.error.code);
        return;
      } else {
        // Busy, or unreachable: wait longer each time.
        wait = Math.min(wait * 2, 30_000);
      }
      if (Date.now() > until) {
        this.#over(this.#t.expired, "expired");
        return;
      }
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  /** A poll's refusal as the status it stands for. */
  #ended(code) {
    return { qr_expired: { status: "expired" }, forbidden: { status: "denied" }, session_expired: { status: "cancelled" } }[code];
  }

  /** Handles one status; true once the code is over. */
  #seen(run, s) {
    if (run !== this.#run) return true;
    const t = this.#t;
    switch (s.status) {
      case "pending":
        if (s.scanned && !this.#announced) {
          this.#announced = true;
          this.#say(t.scanned);
          this.#emit("scanned", { sessionId: this.#session?.session_id, confirmCode: s.confirm_code });
        }
        // Shown while the phone has it to pick, then gone; announced once, with the status.
        if ((s.confirm_code ?? "") !== this.#ui.number.textContent) {
          this.#ui.number.textContent = s.confirm_code ?? "";
          this.#ui.numberBox.hidden = !s.confirm_code;
          if (s.confirm_code) this.#say(`${t.match} ${s.confirm_code}`);
        }
        return false;
      case "completed": {
        const sessionId = this.#session?.session_id;
        const appId = this.getAttribute("app-id");
        if (appId && claims(s.session_token).app_id !== appId) {
          this.#over(t.failed, "wrong_app");
          return true;
        }
        this.#stop();
        this.#session = null;
        const ui = this.#ui;
        ui.qr.removeAttribute("src");
        ui.countdown.textContent = "";
        ui.numberBox.hidden = true;
        ui.cancel.hidden = true;
        this.#say(t.signedIn);
        this.#emit("signin", { sessionToken: s.session_token, userId: s.user_id, sessionId });
        return true;
      }
      case "expired":
        if (this.#renewals < RENEWALS) {
          this.#renewals += 1;
          this.#start(false);
        } else {
          this.#over(t.expired, "expired");
        }
        return true;
      case "denied":
        this.#over(t.declined, "denied");
        return true;
      case "cancelled":
        this.#over(t.cancelled, "cancelled");
        return true;
      default:
        return false;
    }
  }

  /** Gives the code up, here and on the bridge. */
  async cancel() {
    const session = this.#session;
    this.#over(this.#t.cancelled, "cancelled");
    if (!session) return;
    await fetch(`${this.#base}/v1/auth/cross-device/cancel/${session.session_id}`, {
      method: "POST",
      headers: this.#headers(session),
    }).catch(() => {});
  }
}

if (!customElements.get("qr-bridge-signin")) customElements.define("qr-bridge-signin", QrBridgeSignin);
export { QrBridgeSignin };
