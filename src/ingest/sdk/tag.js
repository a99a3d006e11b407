// The page tag, served at GET /sdk.js. A publisher embeds it as
//   <script src="https://API_ORIGIN/sdk.js" data-key="INGEST_KEY" async></script>
// and calls impressions.track({ adId, userId }). Calls made before it loaded are kept by the usual snippet,
//   window.impressions = window.impressions || { q: [], track(...a) { this.q.push(a); } };
// and replayed here. Plain browser JavaScript, no dependencies: it is on every publisher page.
(() => {
  // Set only while this script first runs, so it is read now.
  const script = document.currentScript;
  const api = new URL(script.src).origin;
  const key = script.dataset.key;
  // A browser driven by automation says so; the API counts its impressions as invalid traffic (headless).
  const webdriver = navigator.webdriver === true;

  /** API_ORIGIN + path with the given query parameters and the key; empty ones are left out. */
  function endpoint(path, params) {
    const url = new URL(path, api);
    for (const [name, value] of Object.entries({ ...params, key })) {
      if (value != null && value !== "") url.searchParams.set(name, value);
    }
    return url.href;
  }

  /** A v4 UUID. crypto.randomUUID exists only in secure contexts; getRandomValues everywhere. */
  function uuid() {
    if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // variant 10
    const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  // The last resort: an image request works everywhere.
  function pixel(id, adId, userId) {
    new Image().src = endpoint("/pixel.gif", { id, adId, userId, webdriver: webdriver ? "1" : undefined });
  }

  // A page prerendered ahead of a click (Speculation Rules) may never be shown: send only once it is.
  function whenShown(send) {
    if (document.prerendering) document.addEventListener("prerenderingchange", send, { once: true });
    else send();
  }

  // keepalive: the request outlives the page, like a beacon. A text/plain body needs no CORS preflight.
  function post(url, body, onFailure) {
    if (typeof fetch !== "function") return onFailure();
    fetch(url, {
      method: "POST",
      body,
      keepalive: true,
      mode: "cors",
      credentials: "omit",
      headers: { "content-type": "text/plain" },
    }).then((res) => {
      // A 4xx refuses the event itself (invalid, or the key): the pixel would be refused too.
      const refused = res.status >= 400 && res.status < 500;
      if (!res.ok && !refused) onFailure();
    }, onFailure);
  }

  /**
   * Sends one impression (once the page is shown) and returns its id. Every fallback sends the same id, so a copy
   * that got through after all is counted once. No ts: the API takes the time it received the event, as a
   * browser's clock can be minutes off (beyond the skew the API allows, which would refuse the event).
   */
  function track({ adId, userId }) {
    const id = uuid();
    whenShown(() => {
      const body = JSON.stringify(webdriver ? { id, userId, adId, webdriver } : { id, userId, adId });
      const url = endpoint("/event", {});
      // A string beacon goes as text/plain;charset=UTF-8: CORS-safelisted, no preflight. false: not queued.
      if (!navigator.sendBeacon?.(url, body)) post(url, body, () => pixel(id, adId, userId));
    });
    return id;
  }

  const queued = window.impressions;
  window.impressions = { track };
  if (Array.isArray(queued?.q)) for (const args of queued.q) track(...args);
})();
