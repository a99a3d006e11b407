// The page tag, served at GET /sdk.js. A publisher embeds it as
//   <script src="https://API_ORIGIN/sdk.js" data-key="INGEST_KEY" async></script>
// and calls impressions.track({ adId, userId?, element?, video? }): the impression, and with the ad's element its
// viewability by the MRC's rule; impressions.click(id) records a click. Calls made before it loaded are kept by
// the usual snippet,
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
  function pixel(event) {
    new Image().src = endpoint("/pixel.gif", webdriver ? { ...event, webdriver: "1" } : event);
  }

  // A page prerendered ahead of a click (Speculation Rules) may never be shown: send only once it is.
  function whenShown(then) {
    if (document.prerendering) document.addEventListener("prerenderingchange", then, { once: true });
    else then();
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
   * Sends one event. Every fallback sends the same id and kind, so a copy that got through after all is counted
   * once. No ts: the API takes the time it received the event, as a browser's clock can be minutes off (beyond
   * the skew the API allows, which would refuse the event).
   */
  function send(event) {
    const body = JSON.stringify(webdriver ? { ...event, webdriver } : event);
    const url = endpoint("/event", {});
    // A string beacon goes as text/plain;charset=UTF-8: CORS-safelisted, no preflight. false: not queued.
    if (!navigator.sendBeacon?.(url, body)) post(url, body, () => pixel(event));
  }

  /**
   * Calls `done` once `element` has been viewable by the MRC's rule: at least half of its pixels in view (30% for
   * a display ad of 242,500 px or more, such as 970x250) in a visible tab for one continuous second, or for a
   * video ad (`video`: the element is the <video>) half in view for two continuous seconds of play. Leaving the
   * view, the tab going to the background or the video stopping starts the count again.
   */
  function whenViewable(element, video, done) {
    let ratio = 0;
    let needed = 0.5;
    let timer;
    let playing = video && !element.paused && !element.ended;
    const check = () => {
      const counting = ratio >= needed && document.visibilityState === "visible" && (!video || playing);
      if (counting && !timer) timer = setTimeout(viewable, video ? 2000 : 1000);
      else if (!counting && timer) timer = clearTimeout(timer);
    };
    const observer = new IntersectionObserver(
      (entries) => {
        for (const entry of entries) {
          const { width, height } = entry.boundingClientRect;
          needed = !video && width * height >= 242500 ? 0.3 : 0.5;
          ratio = entry.isIntersecting ? entry.intersectionRatio : 0;
        }
        check();
      },
      { threshold: [0, 0.3, 0.5, 1] },
    );
    const play = (on) => () => {
      playing = on;
      check();
    };
    const media = [
      ["playing", play(true)],
      ["pause", play(false)],
      ["waiting", play(false)],
      ["ended", play(false)],
    ];
    function viewable() {
      observer.disconnect();
      document.removeEventListener("visibilitychange", check);
      if (video) for (const [type, listener] of media) element.removeEventListener(type, listener);
      done();
    }
    observer.observe(element);
    document.addEventListener("visibilitychange", check);
    if (video) for (const [type, listener] of media) element.addEventListener(type, listener);
  }

  /** The impressions tracked on this page, by id: what a click of one sends. */
  const tracked = new Map();

  /** Records a click of impression `id` (one of this page's), once. */
  function click(id) {
    const impression = tracked.get(id);
    if (!impression || impression.clicked) return;
    impression.clicked = true;
    send({ ...impression.event, kind: "click" });
  }

  /**
   * Sends one impression (once the page is shown) and returns its id. With `element`, the ad's element, it also
   * sends `viewable` once the ad has been viewable (whenViewable), and a click on a link inside it records a click.
   */
  function track({ adId, userId, element, video = false }) {
    const id = uuid();
    const event = { id, userId, adId };
    tracked.set(id, { event, clicked: false });
    whenShown(() => {
      send(event);
      if (element) whenViewable(element, video, () => send({ ...event, kind: "viewable" }));
    });
    // Capture: the link's own handlers and the navigation come after; the beacon survives the page.
    if (element) element.addEventListener("click", (e) => e.target.closest?.("a[href]") && click(id), true);
    return id;
  }

  const queued = window.impressions;
  window.impressions = { track, click };
  if (Array.isArray(queued?.q)) for (const args of queued.q) track(...args);
})();
