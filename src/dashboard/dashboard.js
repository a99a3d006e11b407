// The live dashboard (GET /): plain JS, no build step. It reads the keyed /stats* routes of this origin, with
// the query key the user gives once (kept in sessionStorage, sent only as `Authorization: Bearer`).

const REFRESH_MS = 5000;
const TOP_ADS = 10;
const CHART_ADS = 5;
const KEY_STORAGE = "impressions.queryKey";
const COLORS = ["#2463eb", "#e8590c", "#2b8a3e", "#ae3ec9", "#c92a2a"];
/** Characters of an ad id that stay in view at its end when it is shortened. */
const ID_END = 8;
/** Below this width of the id column, the top-ads table stacks each ad instead. */
const MIN_ID_PX = 150;

const $ = (id) => document.getElementById(id);
const number = new Intl.NumberFormat("en-US");
const decimal = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });
const percent = new Intl.NumberFormat("en-US", { style: "percent", maximumFractionDigits: 1 });
/** The invalid reasons in a person's words (src/traffic/labels.ts); a reason not listed shows as it is. */
const REASONS = {
  prefetch: "Prefetch",
  headless: "Headless",
  bot: "Bot",
  non_browser: "Non-browser",
  ip_range: "Listed IP",
  activity: "Activity",
};
const smallPercent = new Intl.NumberFormat("en-US", { style: "percent", maximumFractionDigits: 2 });

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
  /** When each card was last read: its figures are from then while a read fails. */
  topAt: undefined,
  pipelineAt: undefined,
  trafficAt: undefined,
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

/** A key limited to some ads (`--ads`) may not read totals over every ad: a card says so, the others go on. */
class OutOfScope extends Error {}

/** An answer other than 2xx, 401 or 403: its path, status and the API's error code. */
class ApiError extends Error {
  constructor(path, status, body) {
    super(body.message ?? `status ${status}`);
    this.path = path;
    this.status = status;
    this.code = body.error;
  }
}

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
    if (body.error === "ad_not_allowed") throw new OutOfScope(body.message);
    throw new KeyNeeded(body.message ?? `the API answered ${response.status}`);
  }
  if (!response.ok) throw new ApiError(`/${path}`, response.status, await response.json().catch(() => ({})));
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

/** Events per second: whole numbers from 100 on, where decimals would only add width. */
const formatRate = (perSecond) => (perSecond >= 100 ? number.format(Math.round(perSecond)) : decimal.format(perSecond));

/**
 * An ad id that is shortened in the middle when its column is narrow: the start gives way (CSS ellipsis), the
 * last characters always show, as ids often differ only there. The text is the whole id (so is a copy), the
 * title shows it on hover, and a focused id (tabindex) shows it whole.
 */
function idElement(adId) {
  const id = document.createElement("span");
  id.className = "id";
  id.title = adId;
  id.tabIndex = 0;
  const split = adId.length > ID_END * 2 ? adId.length - ID_END : adId.length;
  const start = document.createElement("span");
  start.className = "id-start";
  start.textContent = adId.slice(0, split);
  id.append(start);
  if (split < adId.length) {
    const end = document.createElement("span");
    end.className = "id-end";
    end.textContent = adId.slice(split);
    id.append(end);
  }
  return id;
}

function cell(text, className, value, label) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  if (value !== undefined) td.dataset.value = String(value);
  if (label) td.dataset.label = label;
  return td;
}

/** The numeric columns' headers by data-col: a stacked row labels each number with its column's name. */
const columnLabels = Object.fromEntries(
  [...$("top").tHead.rows[0].cells].filter((th) => th.dataset.col).map((th) => [th.dataset.col, th.textContent]),
);

/** A rate as a percentage, or a dash when it has no base (null) or was not read. */
function rateCell(value, className, format = percent) {
  return cell(
    value == null ? "—" : format.format(value),
    className,
    value ?? "",
    columnLabels[className.split(" ")[1]],
  );
}

function renderTop(counts, reach, summary) {
  const ranked = Object.entries(counts).sort(([a, x], [b, y]) => y - x || (a < b ? -1 : a > b ? 1 : 0));
  const rows = ranked.map(([adId, impressions], i) => {
    const tr = document.createElement("tr");
    tr.dataset.ad = adId;
    const name = document.createElement("td");
    name.className = "ad";
    const line = document.createElement("div");
    line.className = "name";
    if (i < CHART_ADS) {
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = COLORS[i];
      line.append(swatch);
    }
    line.append(idElement(adId));
    name.append(line);
    const r = reach[adId];
    const s = summary[adId];
    tr.append(
      cell(String(i + 1), "rank"),
      name,
      cell(number.format(impressions), "num impressions", impressions, columnLabels.impressions),
      rateCell(s?.viewabilityRate, "num viewable"),
      cell(s ? number.format(s.clicks) : "—", "num clicks", s?.clicks ?? "", columnLabels.clicks),
      rateCell(s?.ctr, "num ctr", smallPercent),
      rateCell(s?.completionRate, "num completion"),
      cell(r ? number.format(r.reach) : "—", "num reach", r?.reach ?? "", columnLabels.reach),
      cell(
        r?.frequency != null ? decimal.format(r.frequency) : "—",
        "num frequency",
        r?.frequency ?? "",
        columnLabels.frequency,
      ),
    );
    return tr;
  });
  $("top").tBodies[0].replaceChildren(...rows);
  $("top").hidden = rows.length === 0;
  $("top-empty").hidden = rows.length > 0;
  $("top-empty").textContent =
    `No impressions in the last ${windowLabel(state.minutes)} yet. ` +
    "Impressions show here a second or so after the API accepts them (npm run demo sends some).";
  $("top-window").textContent = `last ${windowLabel(state.minutes)}`;
  fitTop();
  return ranked.map(([adId]) => adId);
}

/**
 * Rows when they fit: every number at its full width, the id column takes what is left, down to MIN_ID_PX.
 * Narrower (a phone, or more columns than the card holds), each ad is stacked: its id on a line of its own, its
 * numbers below, labelled, wrapping onto as many lines as they need. Measured, not guessed from the screen's
 * width, so that it holds for any number of columns and any width of numbers.
 */
function fitTop() {
  const table = $("top");
  if (table.hidden) return;
  table.classList.remove("stacked");
  const adColumn = table.tHead.rows[0].querySelector(".ad");
  if (table.scrollWidth > $("top-box").clientWidth + 1 || adColumn.getBoundingClientRect().width < MIN_ID_PX) {
    table.classList.add("stacked");
  }
}

function chartSize() {
  const box = $("chart");
  const width = Math.max(240, box.clientWidth);
  return { width, height: width < 500 ? 220 : 300 };
}

/** Tick steps of 1, 2 and 5 × 10^k: counts get whole-number ticks only, up to billions a minute. */
const TICK_STEPS = Array.from({ length: 13 }, (_, k) => [1, 2, 5].map((m) => m * 10 ** k)).flat();

function renderChart(adIds, series) {
  const box = $("chart");
  const ads = adIds.slice(0, CHART_ADS);
  $("chart-empty").hidden = ads.length > 0;
  box.hidden = ads.length === 0;
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
      axes: [{}, { size: 56, incrs: TICK_STEPS, values: (_u, ticks) => ticks.map((v) => compact.format(v)) }],
      legend: { live: true },
      series: [
        {},
        ...ads.map((adId, i) => ({
          label: adId,
          stroke: COLORS[i],
          width: 2,
          points: { show: false },
          value: (_u, v) => (v === null || v === undefined ? "—" : number.format(v)),
        })),
      ],
    },
    data,
    box,
  );
  // The legend's labels: each id shortened in the middle like the table's, so the legend stays a line or two.
  const labels = box.querySelectorAll(".u-legend .u-series .u-label");
  ads.forEach((adId, i) => {
    const label = labels[i + 1];
    if (!label) return;
    label.title = adId;
    label.replaceChildren(idElement(adId));
  });
}

function renderPipeline(now) {
  const previous = state.previous;
  const seconds = previous ? (Date.parse(now.measuredAt) - Date.parse(previous.measuredAt)) / 1000 : 0;
  const rate = (field) => (seconds > 0 ? formatRate(Math.max(0, now[field] - previous[field]) / seconds) : "—");
  $("p-received-rate").textContent = rate("received");
  $("p-counted-rate").textContent = rate("counted");
  $("p-duplicates").textContent = number.format(now.duplicates);
  $("p-dead-letters").textContent = number.format(now.deadLetters);
  $("p-lag").textContent = number.format(now.lag);
  $("p-freshness").textContent = formatDuration(now.freshnessMs);
  $("p-freshness-note").hidden = now.freshnessMs !== null;
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

/** The window's gross, net and invalid share, and a tile per invalid reason, most impressions first. */
function renderTraffic({ total }) {
  $("t-gross").textContent = number.format(total.gross);
  $("t-net").textContent = number.format(total.net);
  $("t-invalid-share").textContent = total.gross > 0 ? percent.format(total.invalid / total.gross) : "—";
  $("t-gross").dataset.value = String(total.gross);
  $("t-net").dataset.value = String(total.net);
  $("t-invalid-share").dataset.value = String(total.invalid);
  const reasons = Object.entries(total.reasons).sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1));
  $("t-reasons").replaceChildren(
    ...reasons.map(([reason, n]) => {
      const tile = document.createElement("div");
      const name = document.createElement("dt");
      name.textContent = REASONS[reason] ?? reason;
      name.title = reason;
      const count = document.createElement("dd");
      count.textContent = number.format(n);
      count.dataset.value = String(n);
      count.id = `t-reason-${reason}`;
      tile.append(name, count);
      return tile;
    }),
  );
  $("t-reasons").hidden = reasons.length === 0;
  $("traffic-window").textContent = `last ${windowLabel(state.minutes)}`;
}

/** Why a read failed, in a person's words: which engine is away, or what the API said. */
function reason(error) {
  if (error instanceof ApiError) {
    if (error.code === "clickhouse_unavailable") return "ClickHouse is not answering";
    if (error.code === "kafka_unavailable") return "Kafka is not answering";
    return `${error.path} answered ${error.status}${error.code ? ` ${error.code}` : ""}: ${error.message}`;
  }
  return `the API is not answering (${error.message})`;
}

/**
 * A card's notice: hidden after a good read; after a failed one, why, and whether the figures shown are from an
 * earlier read (then marked stale) or there are none yet.
 */
function notice(ids, error, since, stale) {
  const retrying = state.paused ? "" : " Retrying every 5 s.";
  const text = !error
    ? ""
    : error instanceof OutOfScope
      ? "This key sees only some ads; the pipeline's totals cover every ad and need a key without --ads."
      : since
        ? `${capitalized(reason(error))}: these figures are from ${since.toLocaleTimeString()}.${retrying}`
        : `${capitalized(reason(error))}: nothing to show yet.${retrying}`;
  for (const id of ids) {
    $(id).textContent = text;
    $(id).hidden = !error;
  }
  for (const element of stale) element.classList.toggle("stale", Boolean(error && since));
}

const capitalized = (text) => text.charAt(0).toUpperCase() + text.slice(1);

/**
 * The top ads of the window with their reach and what advertisers pay for (viewable, clicks, video completes),
 * and the per-minute series of the first CHART_ADS.
 */
async function readTop(minutes) {
  const counts = await api("stats", [
    ["timeWindowMinutes", minutes],
    ["limit", TOP_ADS],
  ]);
  const byAd = Object.keys(counts).map((adId) => ["adId", adId]);
  if (byAd.length === 0) return { counts, reach: {}, summary: {}, series: {} };
  const [reach, summary, series] = await Promise.all([
    api("stats/reach", [["timeWindowMinutes", minutes], ...byAd]),
    api("stats/summary", [["timeWindowMinutes", minutes], ...byAd]),
    api("stats/timeseries", [["timeWindowMinutes", minutes], ...byAd.slice(0, CHART_ADS)]),
  ]);
  return { counts, reach, summary, series };
}

/** One refresh: each card is read on its own, so that one engine away leaves the others' figures current. */
async function refresh() {
  clearTimeout(state.timer);
  const generation = state.generation;
  const [top, pipeline, traffic] = await Promise.allSettled([
    readTop(state.minutes),
    api("stats/pipeline", []),
    // Its totals cover every ad (a tenant key's ads); `limit` keeps the per-ad part, unused here, small.
    api("stats/ivt", [
      ["timeWindowMinutes", state.minutes],
      ["limit", 1],
    ]),
  ]);
  if (generation !== state.generation) return;
  const refused = [top, pipeline, traffic].find((r) => r.status === "rejected" && r.reason instanceof KeyNeeded);
  if (refused) {
    askForKey(refused.reason.message);
    return; // no polling until a key is given
  }
  if (top.status === "fulfilled") {
    renderChart(renderTop(top.value.counts, top.value.reach, top.value.summary), top.value.series);
    state.topAt = new Date();
  }
  notice(["top-notice", "chart-notice"], top.reason, state.topAt, [$("top"), $("chart")]);
  if (pipeline.status === "fulfilled") {
    renderPipeline(pipeline.value);
    state.pipelineAt = new Date();
  }
  notice(["pipeline-notice"], pipeline.reason, state.pipelineAt, [$("tiles")]);
  if (traffic.status === "fulfilled") {
    renderTraffic(traffic.value);
    state.trafficAt = new Date();
  }
  notice(["traffic-notice"], traffic.reason, state.trafficAt, [$("traffic-tiles"), $("t-reasons")]);
  const failed = [top, pipeline, traffic].filter((r) => r.status === "rejected" && !(r.reason instanceof OutOfScope));
  document.body.dataset.state = failed.length > 0 ? "down" : "ready";
  if (failed.length > 0) setStatus(`${reason(failed[0].reason)}; retrying`, true);
  else setStatus(`updated ${new Date().toLocaleTimeString()}`);
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

window.addEventListener("resize", fitTop);
// The chart follows its box, whatever changes the box's width: the window, or the page being shown after the key.
new ResizeObserver(() => state.chart?.setSize(chartSize())).observe($("chart"));

// An id is one word of A-Z a-z 0-9 . _ : -: a copy from within one gets no line break between its two parts.
document.addEventListener("copy", (event) => {
  const selection = getSelection();
  const anchor = selection?.anchorNode;
  const id = (anchor?.nodeType === Node.ELEMENT_NODE ? anchor : anchor?.parentElement)?.closest(".id");
  if (!id?.contains(selection.focusNode)) return;
  event.clipboardData.setData("text/plain", selection.toString().replace(/\s+/g, ""));
  event.preventDefault();
});

refresh();
