// The live dashboard (GET /): plain JS, no build step. It reads the keyed /stats* routes of this origin, with
// the query key the user gives once (kept in sessionStorage, sent only as `Authorization: Bearer`).

const REFRESH_MS = 5000;
const TOP_ADS = 10;
const CHART_ADS = 5;
const KEY_STORAGE = "impressions.queryKey";
const COLORS = ["#2463eb", "#e8590c", "#2b8a3e", "#ae3ec9", "#c92a2a"];

const $ = (id) => document.getElementById(id);
const number = new Intl.NumberFormat("en-US");
const decimal = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });

const state = {
  minutes: Number($("window").value),
  paused: false,
  timer: undefined,
  /** The previous /stats/pipeline answer: rates are the difference to the next one. */
  previous: undefined,
  chart: undefined,
  chartAds: "",
  /** Bumped on each window change, so a slow answer for the old window is dropped. */
  generation: 0,
};

function readKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) ?? "";
  } catch {
    return state.memoryKey ?? "";
  }
}

function storeKey(key) {
  state.memoryKey = key;
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    // Storage refused (private mode, policy): the key stays in memory for this page.
  }
}

class KeyNeeded extends Error {}

/** GET a JSON route of this origin; the key, if any, goes in the Authorization header only. */
async function api(path, params) {
  const query = new URLSearchParams();
  for (const [name, value] of params) query.append(name, String(value));
  const key = readKey();
  const response = await fetch(query.size > 0 ? `${path}?${query}` : path, {
    headers: key ? { authorization: `Bearer ${key}` } : {},
    cache: "no-store",
    credentials: "omit",
  });
  if (response.status === 401 || response.status === 403) {
    const body = await response.json().catch(() => ({}));
    throw new KeyNeeded(body.message ?? `the API answered ${response.status}`);
  }
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(`${path}: ${body.message ?? response.status}`);
  }
  return response.json();
}

function setStatus(text, error = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", error);
}

function askForKey(reason) {
  document.body.dataset.state = "key";
  $("key-form").hidden = false;
  $("key-reason").textContent = readKey()
    ? `The key was refused: ${reason}`
    : "This API requires a key with the query scope.";
  storeKey("");
  setStatus("waiting for a query key");
  $("key").focus();
}

const windowLabel = (minutes) => (minutes < 60 ? `${minutes} min` : minutes === 60 ? "60 min" : `${minutes / 60} h`);

function formatDuration(ms) {
  if (ms === null || ms === undefined) return "—";
  const abs = Math.abs(ms);
  const sign = ms < 0 ? "−" : "";
  if (abs < 1000) return `${sign}${abs} ms`;
  if (abs < 60_000) return `${sign}${decimal.format(abs / 1000)} s`;
  if (abs < 3_600_000) return `${sign}${decimal.format(abs / 60_000)} min`;
  return `${sign}${decimal.format(abs / 3_600_000)} h`;
}

function cell(text, className, value) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  if (value !== undefined) td.dataset.value = String(value);
  return td;
}

function renderTop(counts, reach) {
  const ranked = Object.entries(counts).sort(([a, x], [b, y]) => y - x || (a < b ? -1 : a > b ? 1 : 0));
  const rows = ranked.map(([adId, impressions], i) => {
    const tr = document.createElement("tr");
    tr.dataset.ad = adId;
    const name = cell(adId, "ad");
    if (i < CHART_ADS) {
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = COLORS[i];
      name.prepend(swatch);
    }
    const r = reach[adId];
    tr.append(
      cell(String(i + 1)),
      name,
      cell(number.format(impressions), "num impressions", impressions),
      cell(r ? number.format(r.reach) : "—", "num reach", r?.reach ?? ""),
      cell(r ? decimal.format(r.frequency) : "—", "num frequency", r?.frequency ?? ""),
    );
    return tr;
  });
  $("top").tBodies[0].replaceChildren(...rows);
  $("top-empty").hidden = rows.length > 0;
  $("top-window").textContent = `last ${windowLabel(state.minutes)}`;
  return ranked.map(([adId]) => adId);
}

function chartSize() {
  const box = $("chart");
  const width = Math.max(240, box.clientWidth);
  return { width, height: width < 500 ? 220 : 300 };
}

function renderChart(adIds, series) {
  const box = $("chart");
  const ads = adIds.slice(0, CHART_ADS);
  const first = series[ads[0]] ?? [];
  const xs = first.map((point) => Date.parse(point.minute) / 1000);
  const data = [xs, ...ads.map((adId) => (series[adId] ?? []).map((point) => point.impressions))];
  const key = ads.join("\n");
  if (state.chart && state.chartAds === key) {
    state.chart.setData(data);
    return;
  }
  state.chart?.destroy();
  state.chart = undefined;
  box.replaceChildren();
  state.chartAds = key;
  if (ads.length === 0) return;
  state.chart = new uPlot(
    {
      ...chartSize(),
      scales: { x: { time: true } },
      // Counts: whole-number ticks only.
      axes: [{}, { size: 56, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 1e6] }],
      legend: { live: true },
      series: [{}, ...ads.map((adId, i) => ({ label: adId, stroke: COLORS[i], width: 2, points: { show: false } }))],
    },
    data,
    box,
  );
}

function renderPipeline(now) {
  const previous = state.previous;
  const seconds = previous ? (Date.parse(now.measuredAt) - Date.parse(previous.measuredAt)) / 1000 : 0;
  const rate = (field) => (seconds > 0 ? decimal.format(Math.max(0, now[field] - previous[field]) / seconds) : "—");
  $("p-received-rate").textContent = rate("received");
  $("p-counted-rate").textContent = rate("counted");
  $("p-duplicates").textContent = number.format(now.duplicates);
  $("p-dead-letters").textContent = number.format(now.deadLetters);
  $("p-lag").textContent = number.format(now.lag);
  $("p-freshness").textContent = formatDuration(now.freshnessMs);
  $("p-received").textContent = number.format(now.received);
  $("p-counted").textContent = number.format(now.counted);
  for (const [id, field] of [
    ["p-duplicates", "duplicates"],
    ["p-dead-letters", "deadLetters"],
    ["p-lag", "lag"],
    ["p-received", "received"],
    ["p-counted", "counted"],
  ]) {
    $(id).dataset.value = String(now[field]);
  }
  state.previous = now;
}

async function refresh() {
  clearTimeout(state.timer);
  const generation = state.generation;
  const minutes = state.minutes;
  try {
    const [counts, pipeline] = await Promise.all([
      api("stats", [
        ["timeWindowMinutes", minutes],
        ["limit", TOP_ADS],
      ]),
      api("stats/pipeline", []),
    ]);
    const adIds = Object.keys(counts);
    const byAd = adIds.map((adId) => ["adId", adId]);
    const [reach, series] = await Promise.all([
      adIds.length > 0 ? api("stats/reach", [["timeWindowMinutes", minutes], ...byAd]) : {},
      adIds.length > 0 ? api("stats/timeseries", [["timeWindowMinutes", minutes], ...byAd.slice(0, CHART_ADS)]) : {},
    ]);
    if (generation !== state.generation) return;
    const ranked = renderTop(counts, reach);
    renderChart(ranked, series);
    renderPipeline(pipeline);
    document.body.dataset.state = "ready";
    setStatus(`updated ${new Date().toLocaleTimeString()}`);
  } catch (error) {
    if (error instanceof KeyNeeded) {
      askForKey(error.message);
      return; // no polling until a key is given
    }
    setStatus(`${error.message}; retrying`, true);
    if (document.body.dataset.state !== "ready") document.body.dataset.state = "error";
  }
  schedule();
}

function schedule() {
  clearTimeout(state.timer);
  if (!state.paused && document.body.dataset.state !== "key") state.timer = setTimeout(refresh, REFRESH_MS);
}

$("window").addEventListener("change", (event) => {
  state.minutes = Number(event.target.value);
  state.generation++;
  refresh();
});

$("pause").addEventListener("click", () => {
  state.paused = !state.paused;
  const button = $("pause");
  button.textContent = state.paused ? "Resume" : "Pause";
  button.setAttribute("aria-pressed", String(state.paused));
  $("live").textContent = state.paused ? "paused" : "live";
  $("live").classList.toggle("paused", state.paused);
  if (state.paused) {
    clearTimeout(state.timer);
    setStatus("paused");
  } else refresh();
});

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("key").value.trim();
  if (!key) return;
  storeKey(key);
  $("key").value = "";
  $("key-form").hidden = true;
  document.body.dataset.state = "loading";
  setStatus("loading…");
  state.previous = undefined;
  refresh();
});

window.addEventListener("resize", () => state.chart?.setSize(chartSize()));

refresh();
