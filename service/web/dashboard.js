// The trader's dashboard: one live chart per symbol with its levels and alerts,
// the running alert list and the latest article, fed by the websocket hub
// (docs/protocol.md). Plain JavaScript, served as is: no build step.

const MAX_ALERTS_LISTED = 200;
const MAX_POINTS = 5000;
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 10000;
const COLORS = { support: "#2fbf71", resistance: "#e5484d", stale: "#f5a524", line: "#4c9aff" };

const charts = new Map(); // symbol -> {card, chart, series, lines, markers, markerApi, times, price}
const seenAlerts = new Set();
let lastAlertId = null;
let settings = { symbols: [], hub_port: null, email: false, webpush_key: null };
let connectionState = "connecting";

// For people reading the page's state from the console, and for the browser test.
window.strykr = {
  get state() { return connectionState; },
  symbols: () => [...charts.keys()],
  points: (symbol) => charts.get(symbol)?.times.length ?? 0,
  lastPrice: (symbol) => charts.get(symbol)?.price ?? null,
  markers: (symbol) => charts.get(symbol)?.markers.length ?? 0,
  levels: (symbol) => charts.get(symbol)?.lines.length ?? 0,
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
  entry = { card, chart: null, series: null, lines: [], markers: [], markerApi: null, times: [], price: null };
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
    entry.series = chart.addSeries(charting.LineSeries, {
      color: COLORS.line,
      lineWidth: 2,
      // Keep the levels in view, not only the prices traded so far.
      autoscaleInfoProvider: (original) => widenToLevels(original(), entry.lines),
    });
    entry.markerApi = charting.createSeriesMarkers(entry.series, []);
  } else {
    card.querySelector(".chart").textContent =
      "The chart library is missing on the server (make install fetches it).";
  }
  charts.set(symbol, entry);
  updateSubscribeSymbols();
  return entry;
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
  const last = entry.times[entry.times.length - 1];
  if (last !== undefined && time < last) return; // an older sample: the chart only moves forward
  if (entry.series) entry.series.update({ time, value: price });
  if (last !== time) entry.times.push(time);
  if (entry.times.length > MAX_POINTS) entry.times.shift();
}

function onTick(tick) {
  const entry = chartFor(tick.symbol);
  entry.price = tick.price;
  entry.card.querySelector(".price").textContent = formatPrice(tick.price);
  addPoint(entry, seconds(tick.at), tick.price);
}

function showLevels(levels) {
  for (const entry of charts.values()) {
    for (const line of entry.lines) entry.series?.removePriceLine(line.handle);
    entry.lines = [];
  }
  for (const level of levels) {
    const entry = chartFor(level.symbol);
    // A level that moves (an indicator, a move in a window) is no line on the chart.
    if (level.level === null) continue;
    const fromArticle = level.origin === "article";
    const active = (level.status ?? "active") === "active";
    const options = {
      price: level.level,
      color: active ? COLORS[level.side] : COLORS.stale,
      lineWidth: fromArticle ? 1 : 2,
      lineStyle: fromArticle || !active ? 2 : 0, // dashed: an article's level, or not watched now
      axisLabelVisible: true,
      title: `${level.side} ${formatPrice(level.level)}${active ? "" : ` (${level.status})`}`,
    };
    entry.lines.push({ level, handle: entry.series?.createPriceLine(options) });
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
  if (live) markAlert(alert);
}

function markAlert(alert) {
  const entry = chartFor(alert.symbol);
  const time = seconds(alert.at);
  if (alert.kind !== "stale_feed") {
    addPoint(entry, time, alert.price);
    entry.price = alert.price; // the tick that fired it may come with the next flush
    entry.card.querySelector(".price").textContent = formatPrice(alert.price);
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

async function getJson(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `${path}: HTTP ${response.status}`);
  return body;
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

async function start() {
  try {
    settings = await getJson("/api/v1/dashboard");
  } catch (error) {
    setState("offline", `service unreachable: ${error.message}`);
    return;
  }
  for (const symbol of settings.symbols) chartFor(symbol);
  setUpSubscribeForm();
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
