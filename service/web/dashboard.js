// The trader's dashboard: one live chart per symbol with its levels and alerts,
// the running alert list and the latest article, fed by the websocket hub
// (docs/protocol.md). Plain JavaScript, served as is: no build step.

const MAX_ALERTS_LISTED = 200;
const MAX_POINTS = 5000;
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 10000;
// A pointer this close (px) to one's own level line grabs it.
const GRAB_PX = 6;
const COLORS = {
  support: "#2fbf71", resistance: "#e5484d", stale: "#f5a524", line: "#4c9aff", mine: "#b38cff",
};
const MANAGE_KEY = "strykr-manage";
const ACKED_KEY = "strykr-acked";

const charts = new Map(); // symbol -> {card, chart, series, lines, markers, markerApi, times, price, bar}
const seenAlerts = new Set();
let lastAlertId = null;
let settings = { symbols: [], hub_port: null, email: false, webpush_key: null, history: [] };
let connectionState = "connecting";
let levelsShown = [];
let view = localStorage.getItem("strykr-view") === "candles" ? "candles" : "line";
// The subscriber whose manage link opened this page (their token is kept in this browser).
let manageToken = null;
let me = null;
let myRules = [];
const acked = new Set(JSON.parse(localStorage.getItem(ACKED_KEY) || "[]"));
const heard = { sounds: 0, notifications: 0 };

// For people reading the page's state from the console, and for the browser test.
window.strykr = {
  get state() { return connectionState; },
  get me() { return me ? me.id : null; },
  get view() { return view; },
  get heard() { return { ...heard }; },
  symbols: () => [...charts.keys()],
  points: (symbol) => charts.get(symbol)?.times.length ?? 0,
  lastPrice: (symbol) => charts.get(symbol)?.price ?? null,
  markers: (symbol) => charts.get(symbol)?.markers.length ?? 0,
  levels: (symbol) => charts.get(symbol)?.lines.length ?? 0,
  myRules: () => myRules.map((rule) => ({ id: rule.id, status: rule.status, level: rule.definition.level })),
  // Where a price is on a symbol's chart, in page pixels (for pointer tests).
  pointAt: (symbol, price) => {
    const entry = charts.get(symbol);
    const y = entry?.series?.priceToCoordinate(price);
    if (y === null || y === undefined) return null;
    const box = entry.card.querySelector(".chart").getBoundingClientRect();
    return { x: box.left + box.width * 0.5, y: box.top + y };
  },
};

const $ = (selector) => document.querySelector(selector);

function setState(state, text) {
  connectionState = state;
  const element = $("#connection");
  element.className = `state ${state}`;
  element.textContent = text;
}

function seconds(at) {
  return Math.floor(Date.parse(at) / 1000);
}

function formatPrice(price) {
  return Number(price).toFixed(2);
}

function chartFor(symbol) {
  let entry = charts.get(symbol);
  if (entry) return entry;
  const card = $("#chart-card").content.firstElementChild.cloneNode(true);
  card.dataset.symbol = symbol;
  card.querySelector(".symbol").textContent = symbol;
  $("#charts").append(card);
  entry = {
    symbol, card, chart: null, series: null, lines: [], markers: [], markerApi: null, times: [],
    price: null, bar: null, drag: null, dragged: false, marked: new Set(),
  };
  const charting = window.LightweightCharts;
  if (charting) {
    const chart = charting.createChart(card.querySelector(".chart"), {
      autoSize: true,
      layout: { background: { color: "#171d24" }, textColor: "#8a96a3" },
      grid: { vertLines: { color: "#1f2730" }, horzLines: { color: "#1f2730" } },
      timeScale: { timeVisible: true, secondsVisible: true },
      rightPriceScale: { borderColor: "#27313c" },
    });
    entry.chart = chart;
    makeSeries(entry);
    chart.subscribeClick((param) => onChartClick(entry, param));
    watchDrags(entry);
  } else {
    card.querySelector(".chart").textContent =
      "The chart library is missing on the server (make install fetches it).";
  }
  charts.set(symbol, entry);
  updateSubscribeSymbols();
  return entry;
}

function makeSeries(entry) {
  const charting = window.LightweightCharts;
  if (entry.series) entry.chart.removeSeries(entry.series);
  const options = {
    // Keep the levels in view, not only the prices traded so far.
    autoscaleInfoProvider: (original) => widenToLevels(original(), entry.lines),
  };
  entry.series = view === "candles"
    ? entry.chart.addSeries(charting.CandlestickSeries, {
      ...options, upColor: COLORS.support, downColor: COLORS.resistance, borderVisible: false,
      wickUpColor: COLORS.support, wickDownColor: COLORS.resistance,
    })
    : entry.chart.addSeries(charting.LineSeries, { ...options, color: COLORS.line, lineWidth: 2 });
  entry.markerApi = charting.createSeriesMarkers(entry.series, entry.markers);
  entry.times = [];
  entry.bar = null;
  entry.lines = [];
}

function barSeconds() {
  // Candles are the longest kept interval's bars; the line follows the shortest's closes.
  const kept = settings.history || [];
  if (!kept.length) return view === "candles" ? 60 : 1;
  const label = view === "candles" ? kept[kept.length - 1] : kept[0];
  const units = { s: 1, m: 60, h: 3600, d: 86400 };
  const match = /^(\d+)([smhd])$/.exec(label);
  return match ? Number(match[1]) * units[match[2]] : 60;
}

function historyInterval() {
  const kept = settings.history || [];
  if (!kept.length) return null;
  return view === "candles" ? kept[kept.length - 1] : kept[0];
}

async function loadHistory(entry) {
  const interval = historyInterval();
  if (!interval || !entry.series) return;
  let body;
  try {
    body = await getJson(`/api/v1/history?symbol=${encodeURIComponent(entry.symbol)}&interval=${interval}`);
  } catch (error) {
    console.warn("history:", error.message);
    return;
  }
  const data = body.bars.map((bar) => view === "candles"
    ? { time: bar.time, open: bar.open, high: bar.high, low: bar.low, close: bar.close }
    : { time: bar.time, value: bar.close });
  // Ticks that came while the history was on its way are newer: keep them after it.
  const newer = entry.times.length ? entry.times[0] : Infinity;
  const older = data.filter((point) => point.time < newer);
  if (!older.length) return;
  entry.series.setData(older);
  entry.times = [...older.map((point) => point.time), ...entry.times];
  const last = body.bars[body.bars.length - 1];
  if (view === "candles" && last) entry.bar = { time: last.time, open: last.open, high: last.high, low: last.low, close: last.close };
  if (entry.price === null && last) showPrice(entry, last.close);
  for (const alert of body.alerts) markAlert(alert, { move: false });
}

function setView(next) {
  view = next;
  localStorage.setItem("strykr-view", view);
  $("#view-line").setAttribute("aria-pressed", String(view === "line"));
  $("#view-candles").setAttribute("aria-pressed", String(view === "candles"));
  for (const entry of charts.values()) {
    if (!entry.chart) continue;
    makeSeries(entry);
    loadHistory(entry);
  }
  showLevels(levelsShown);
}

function widenToLevels(range, lines) {
  if (!range || !lines.length) return range;
  const prices = lines.map((line) => line.level.level);
  const { minValue, maxValue } = range.priceRange;
  return {
    ...range,
    priceRange: {
      minValue: Math.min(minValue, ...prices),
      maxValue: Math.max(maxValue, ...prices),
    },
  };
}

function addPoint(entry, time, price) {
  if (view === "candles") {
    const start = time - (time % barSeconds());
    if (entry.bar && start < entry.bar.time) return; // an older sample: the chart only moves forward
    if (!entry.bar || start > entry.bar.time) {
      entry.bar = { time: start, open: price, high: price, low: price, close: price };
      entry.times.push(start);
    } else {
      entry.bar = { ...entry.bar, high: Math.max(entry.bar.high, price), low: Math.min(entry.bar.low, price), close: price };
    }
    entry.series?.update(entry.bar);
  } else {
    const last = entry.times[entry.times.length - 1];
    if (last !== undefined && time < last) return; // an older sample: the chart only moves forward
    if (entry.series) entry.series.update({ time, value: price });
    if (last !== time) entry.times.push(time);
  }
  if (entry.times.length > MAX_POINTS) entry.times.shift();
}

function showPrice(entry, price) {
  entry.price = price;
  entry.card.querySelector(".price").textContent = formatPrice(price);
}

function onTick(tick) {
  const entry = chartFor(tick.symbol);
  showPrice(entry, tick.price);
  addPoint(entry, seconds(tick.at), tick.price);
}

function showLevels(levels) {
  levelsShown = levels;
  for (const entry of charts.values()) {
    for (const line of entry.lines) entry.series?.removePriceLine(line.handle);
    entry.lines = [];
  }
  for (const level of levels) {
    const entry = chartFor(level.symbol);
    // A level that moves (an indicator, a move in a window) is no line on the chart.
    if (level.level === null) continue;
    const fromArticle = level.origin === "article";
    const mine = Boolean(me && level.owner === me.id);
    const active = (level.status ?? "active") === "active";
    const color = !active ? COLORS.stale : mine ? COLORS.mine : COLORS[level.side];
    const options = {
      price: level.level,
      color,
      lineWidth: fromArticle ? 1 : 2,
      // dashed: an article's level, or not watched now; dotted: one's own
      lineStyle: mine ? 1 : fromArticle || !active ? 2 : 0,
      axisLabelVisible: true,
      title: `${mine ? "my " : ""}${mine ? level.condition.replace("_", " ") : level.side} ${formatPrice(level.level)}${active ? "" : ` (${level.status})`}`,
    };
    entry.lines.push({ level, mine, handle: entry.series?.createPriceLine(options) });
  }
}

function showArticle(symbol, article) {
  const box = chartFor(symbol).card.querySelector(".article");
  box.replaceChildren();
  if (!article) return;
  const title = document.createElement("div");
  title.className = "title";
  title.textContent = article.title || "Untitled article";
  const facts = document.createElement("dl");
  for (const [label, value] of [
    ["Published", article.published],
    ["Pulse", article.pulse],
    ["Threat level", article.threat_level],
    ["Bias", article.bias],
    ["Strykr Take", article.take],
  ]) {
    if (value === null || value === undefined || value === "") continue;
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.textContent = String(value);
    facts.append(dt, dd);
  }
  box.append(title, facts);
  if (article.url && /^https?:\/\//.test(article.url)) {
    const link = document.createElement("a");
    link.href = article.url;
    link.rel = "noopener noreferrer";
    link.target = "_blank";
    link.textContent = "Read the analysis";
    box.append(link);
  }
}

function onAlert(alert, { live }) {
  if (seenAlerts.has(alert.id)) return;
  seenAlerts.add(alert.id);
  lastAlertId = alert.id;
  const mine = Boolean(me && alert.owner === me.id);
  if (mine && !acked.has(alert.id)) toInbox(alert);
  if (mine && live) {
    chime();
    notify(alert);
    refreshRules(); // a rule that fired once is done now
  }
  const item = document.createElement("li");
  item.className = alert.kind;
  item.dataset.alertId = alert.id;
  const headline = document.createElement("div");
  headline.textContent = alert.headline;
  const when = document.createElement("div");
  when.className = "when";
  when.textContent = `${alert.at.replace("T", " ").slice(0, 19)} UTC · ${alert.rule}`;
  item.append(headline, when);
  $("#alerts").prepend(item);
  while ($("#alerts").children.length > MAX_ALERTS_LISTED) $("#alerts").lastElementChild.remove();
  $("#alerts-empty").hidden = true;
  if (live && alert.article) showArticle(alert.symbol, alert.article);
  if (live) markAlert(alert, { move: true });
}

function markAlert(alert, { move }) {
  const entry = chartFor(alert.symbol);
  if (entry.marked.has(alert.id)) return;
  entry.marked.add(alert.id);
  const time = seconds(alert.at);
  if (move && alert.kind !== "stale_feed") {
    addPoint(entry, time, alert.price);
    showPrice(entry, alert.price); // the tick that fired it may come with the next flush
  }
  const below = ["break_below", "below", "moving_down"].includes(alert.kind);
  entry.markers.push({
    time: entry.times.length ? Math.min(time, entry.times[entry.times.length - 1]) : time,
    position: below ? "belowBar" : "aboveBar",
    color: alert.kind === "stale_feed" ? COLORS.stale : below ? COLORS.resistance : COLORS.support,
    shape: alert.kind === "stale_feed" ? "square" : below ? "arrowDown" : "arrowUp",
    text: alert.kind === "stale_feed" ? "stale" : formatPrice(alert.level),
  });
  entry.markerApi?.setMarkers(entry.markers);
}

function authorization() {
  return manageToken ? { Authorization: `Bearer ${manageToken}` } : {};
}

async function api(method, path, body) {
  const headers = { Accept: "application/json", ...authorization() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const reply = response.status === 204 ? {} : await response.json();
  if (!response.ok) throw new Error(reply.error || `${path}: HTTP ${response.status}`);
  return reply;
}

function getJson(path) {
  return api("GET", path);
}

function hubUrl() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const token = new URLSearchParams(location.search).get("token");
  const query = token ? `?token=${encodeURIComponent(token)}` : "";
  return `${scheme}://${location.hostname}:${settings.hub_port}/${query}`;
}

function connect(attempt = 0) {
  setState(attempt ? "reconnecting" : "connecting", attempt ? "reconnecting…" : "connecting…");
  const socket = new WebSocket(hubUrl());
  let opened = false;
  socket.addEventListener("open", () => {
    opened = true;
    const request = { op: "subscribe", symbols: ["*"], ticks: true };
    if (lastAlertId) request.since = lastAlertId; // what was missed while away comes first
    if (manageToken) request.manage = manageToken; // one's own levels and alerts too
    socket.send(JSON.stringify(request));
  });
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "tick") onTick(message.data);
    else if (message.type === "alert") onAlert(message.data, { live: true });
    else if (message.type === "subscribed") {
      setState("live", "live");
      showLevels(message.levels);
      for (const [symbol, article] of Object.entries(message.articles)) showArticle(symbol, article);
    } else if (message.type === "error") console.warn("hub:", message.message);
  });
  socket.addEventListener("close", () => {
    const next = opened ? 0 : attempt + 1;
    const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** next);
    setState(next > 3 ? "offline" : "reconnecting", `disconnected: retrying in ${Math.ceil(delay / 1000)} s`);
    setTimeout(() => connect(next + 1), delay);
  });
}

function updateSubscribeSymbols() {
  const select = $("#subscribe-symbols");
  const present = new Set([...select.options].map((option) => option.value));
  for (const symbol of charts.keys()) {
    if (present.has(symbol)) continue;
    const option = new Option(symbol, symbol, false, true);
    select.append(option);
  }
}

function chosenSymbols() {
  const chosen = [...$("#subscribe-symbols").selectedOptions].map((option) => option.value);
  return chosen.length ? chosen : ["*"];
}

function showResult(text, isError = false) {
  const result = $("#subscribe-result");
  result.textContent = text;
  result.classList.toggle("error", isError);
}

async function subscribe(body) {
  const response = await fetch("/api/v1/subscribers", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  });
  const reply = await response.json();
  if (!response.ok) throw new Error(reply.error || `HTTP ${response.status}`);
  return reply;
}

async function subscribeByEmail(event) {
  event.preventDefault();
  const email = $("#subscribe-email").value.trim();
  if (!email) return showResult("Enter your email address first.", true);
  try {
    await subscribe({ email, symbols: chosenSymbols() });
    showResult(`Check ${email}: the link in our mail starts your alerts.`);
  } catch (error) {
    showResult(error.message, true);
  }
}

function keyBytes(base64url) {
  const text = atob(base64url.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(text, (char) => char.charCodeAt(0));
}

async function subscribeByPush() {
  try {
    const registration = await navigator.serviceWorker.register("/sw.js");
    const permission = await Notification.requestPermission();
    if (permission !== "granted") return showResult("Notifications are blocked for this page.", true);
    const subscription = await registration.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: keyBytes(settings.webpush_key),
    });
    const reply = await subscribe({ webpush: subscription.toJSON(), symbols: chosenSymbols() });
    localStorage.setItem("strykr-unsubscribe", reply.unsubscribe_url);
    showResult("Browser push is on for this browser.");
    if (reply.manage_token) {
      await useManageToken(reply.manage_token);
      showManageLink(reply.manage_url);
    }
  } catch (error) {
    showResult(`Browser push failed: ${error.message}`, true);
  }
}

function setUpSubscribeForm() {
  $("#subscribe").addEventListener("submit", subscribeByEmail);
  const pushButton = $("#subscribe-push-button");
  const pushPossible = settings.webpush_key && "serviceWorker" in navigator && "PushManager" in window;
  pushButton.disabled = !pushPossible;
  pushButton.title = pushPossible ? "" : "Browser push is not offered by this service or browser";
  pushButton.addEventListener("click", subscribeByPush);
  $("#subscribe-email-button").disabled = !settings.email;
  $("#subscribe-email").disabled = !settings.email;
  if (!settings.email && !pushPossible) showResult("This service sends no email or push yet.");
}

// -- one's own alerts: the manage link, the rules, the inbox ------------------------------

async function useManageToken(token) {
  manageToken = token;
  try {
    me = await getJson("/api/v1/manage");
    localStorage.setItem(MANAGE_KEY, token);
  } catch (error) {
    manageToken = null;
    me = null;
    localStorage.removeItem(MANAGE_KEY);
    showResult(`This manage link no longer works (${error.message}); subscribe again for a new one.`, true);
  }
  $("#mine-panel").hidden = !me;
  if (me) {
    $("#mine-who").textContent = `Signed in with your manage link (${me.email || "browser push"}). Click a chart to set an alert.`;
    await refreshRules();
  }
}

async function rotateManageLink() {
  try {
    const fresh = await api("POST", "/api/v1/manage/rotate");
    manageToken = fresh.manage_token;
    localStorage.setItem(MANAGE_KEY, manageToken);
    showManageLink(fresh.manage_url);
    showMine("A new manage link: the one before no longer works. Keep this one.");
  } catch (error) {
    showMine(error.message, true);
  }
}

function showManageLink(url) {
  const link = $("#manage-link");
  link.href = url;
  link.hidden = false;
}

async function refreshRules() {
  if (!me) return;
  try {
    myRules = (await getJson("/api/v1/rules")).rules;
    const { levels } = await getJson("/api/v1/levels");
    showLevels(levels);
  } catch (error) {
    console.warn("rules:", error.message);
    return;
  }
  const list = $("#my-rules");
  list.replaceChildren();
  for (const rule of myRules) list.append(ruleItem(rule));
  $("#my-rules-empty").hidden = myRules.length > 0;
}

function ruleItem(rule) {
  const item = document.createElement("li");
  item.dataset.rule = rule.id;
  item.className = rule.status;
  const text = document.createElement("div");
  text.textContent = `${rule.description} · ${rule.status}`;
  const controls = document.createElement("div");
  controls.className = "controls";
  if (typeof rule.definition.level === "number") {
    const level = document.createElement("input");
    level.type = "number";
    level.step = "0.01";
    level.value = String(rule.definition.level);
    level.setAttribute("aria-label", `Level of ${rule.description}`);
    level.addEventListener("change", () => changeRule(rule.id, { level: Number(level.value) }));
    controls.append(level);
  }
  const pause = document.createElement("button");
  pause.type = "button";
  pause.textContent = rule.status === "paused" ? "Resume" : "Pause";
  pause.addEventListener("click", () => act(() => api("POST", `/api/v1/rules/${encodeURIComponent(rule.id)}/${rule.status === "paused" ? "resume" : "pause"}`)));
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "quiet";
  remove.textContent = "Delete";
  remove.addEventListener("click", () => act(() => api("DELETE", `/api/v1/rules/${encodeURIComponent(rule.id)}`)));
  controls.append(pause, remove);
  item.append(text, controls);
  return item;
}

async function act(request) {
  try {
    await request();
    showMine("");
  } catch (error) {
    showMine(error.message, true);
  }
  await refreshRules();
}

function changeRule(ruleId, changes) {
  return act(() => api("PATCH", `/api/v1/rules/${encodeURIComponent(ruleId)}`, changes));
}

function showMine(text, isError = false) {
  const result = $("#mine-result");
  result.textContent = text;
  result.classList.toggle("error", isError);
}

function onChartClick(entry, param) {
  if (entry.dragged) {
    entry.dragged = false; // the end of a drag, not a click
    return;
  }
  if (!param.point || !entry.series) return;
  const price = entry.series.coordinateToPrice(param.point.y);
  if (price === null) return;
  if (!me) {
    showResult("Subscribe (or open your manage link) to set your own alerts on the chart.");
    return;
  }
  openRuleDialog(entry.symbol, price);
}

function openRuleDialog(symbol, price) {
  const dialog = $("#rule-dialog");
  const symbols = $("#rule-symbol");
  symbols.replaceChildren(...[...charts.keys()].map((name) => new Option(name, name)));
  symbols.value = symbol;
  $("#rule-level").value = Number(price).toFixed(2);
  const current = charts.get(symbol)?.price;
  $("#rule-condition").value = current !== null && current !== undefined && price > current ? "cross_above" : "cross_below";
  $("#rule-result").textContent = "";
  dialog.showModal();
  $("#rule-level").focus();
}

async function createRule(event) {
  event.preventDefault();
  const body = {
    symbol: $("#rule-symbol").value,
    condition: $("#rule-condition").value,
    level: Number($("#rule-level").value),
    frequency: $("#rule-frequency").value,
  };
  const expires = $("#rule-expires").value;
  if (expires) body.expires = new Date(expires).toISOString().replace(/\.\d{3}Z$/, "Z");
  try {
    await api("POST", "/api/v1/rules", body);
  } catch (error) {
    $("#rule-result").textContent = error.message;
    return;
  }
  $("#rule-dialog").close();
  prepareToNotify(); // a click: the moment a page may ask for notifications and sound
  await refreshRules();
}

function watchDrags(entry) {
  const element = entry.card.querySelector(".chart");
  element.addEventListener("pointerdown", (event) => {
    const y = event.clientY - element.getBoundingClientRect().top;
    const line = entry.lines.find((candidate) => candidate.mine && Math.abs((entry.series.priceToCoordinate(candidate.level.level) ?? -1e9) - y) <= GRAB_PX);
    if (!line) return;
    entry.drag = { line, price: line.level.level };
    entry.chart.applyOptions({ handleScroll: false, handleScale: false });
    element.setPointerCapture(event.pointerId);
  });
  element.addEventListener("pointermove", (event) => {
    if (!entry.drag) return;
    const y = event.clientY - element.getBoundingClientRect().top;
    const price = entry.series.coordinateToPrice(y);
    if (price === null) return;
    entry.drag.price = Math.round(price * 100) / 100;
    entry.drag.line.handle.applyOptions({ price: entry.drag.price, title: `my ${entry.drag.line.level.condition.replace("_", " ")} ${formatPrice(entry.drag.price)}` });
  });
  const drop = async () => {
    const drag = entry.drag;
    if (!drag) return;
    entry.drag = null;
    entry.chart.applyOptions({ handleScroll: true, handleScale: true });
    if (drag.price === drag.line.level.level) return;
    entry.dragged = true;
    await changeRule(drag.line.level.rule, { level: drag.price });
  };
  element.addEventListener("pointerup", drop);
  element.addEventListener("pointercancel", drop);
}

let audio = null;

function prepareToNotify() {
  if ("Notification" in window && Notification.permission === "default") Notification.requestPermission();
  if (!audio && window.AudioContext) audio = new AudioContext();
}

function chime() {
  heard.sounds += 1;
  if (!audio) return;
  const tone = audio.createOscillator();
  const gain = audio.createGain();
  tone.frequency.value = 880;
  gain.gain.setValueAtTime(0.2, audio.currentTime);
  gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.4);
  tone.connect(gain).connect(audio.destination);
  tone.start();
  tone.stop(audio.currentTime + 0.4);
}

function notify(alert) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  heard.notifications += 1;
  new Notification(`Strykr: ${alert.symbol}`, { body: alert.headline, tag: alert.id });
}

function toInbox(alert) {
  const item = document.createElement("li");
  item.dataset.alertId = alert.id;
  const text = document.createElement("div");
  text.textContent = alert.headline;
  const ack = document.createElement("button");
  ack.type = "button";
  ack.textContent = "Acknowledge";
  ack.addEventListener("click", () => {
    acked.add(alert.id);
    localStorage.setItem(ACKED_KEY, JSON.stringify([...acked].slice(-500)));
    item.remove();
    $("#inbox-panel").hidden = !$("#inbox").children.length;
  });
  item.append(text, ack);
  $("#inbox").prepend(item);
  $("#inbox-panel").hidden = false;
}

async function start() {
  try {
    settings = await getJson("/api/v1/dashboard");
  } catch (error) {
    setState("offline", `service unreachable: ${error.message}`);
    return;
  }
  const params = new URLSearchParams(location.search);
  const fromLink = params.get("manage");
  if (fromLink) {
    // Kept in this browser, and out of the address bar (and of any link shared from it).
    params.delete("manage");
    const rest = params.toString();
    history.replaceState(null, "", `${location.pathname}${rest ? `?${rest}` : ""}`);
  }
  $("#view-line").addEventListener("click", () => setView("line"));
  $("#view-candles").addEventListener("click", () => setView("candles"));
  $("#view-line").setAttribute("aria-pressed", String(view === "line"));
  $("#view-candles").setAttribute("aria-pressed", String(view === "candles"));
  $("#rule-form").addEventListener("submit", createRule);
  $("#rule-cancel").addEventListener("click", () => $("#rule-dialog").close());
  // Without a pointer: the dialog at the first symbol's last price.
  $("#new-rule").addEventListener("click", () => {
    const entry = [...charts.values()].find((candidate) => candidate.price !== null) ?? [...charts.values()][0];
    if (entry) openRuleDialog(entry.symbol, entry.price ?? 0);
  });
  $("#rotate-link").addEventListener("click", rotateManageLink);
  $("#rule-symbol").addEventListener("change", () => {
    const price = charts.get($("#rule-symbol").value)?.price;
    if (price !== null && price !== undefined) $("#rule-level").value = Number(price).toFixed(2);
  });
  for (const symbol of settings.symbols) chartFor(symbol);
  setUpSubscribeForm();
  const token = fromLink || localStorage.getItem(MANAGE_KEY);
  if (token) await useManageToken(token);
  await Promise.all([...charts.values()].map(loadHistory));
  try {
    const { alerts } = await getJson("/api/v1/alerts?limit=50");
    for (const alert of alerts) onAlert(alert, { live: false });
  } catch (error) {
    console.warn("alert history:", error.message);
  }
  if (settings.hub_port === null) {
    setState("offline", "no websocket hub on this service");
    return;
  }
  connect();
}

start();
