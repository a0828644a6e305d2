// Warren's web page: polls the management API (basic auth with the credentials of the login
// box, kept for the browser session) and renders the overview, queues, exchanges and
// connections. Text goes into the DOM with textContent only.
"use strict";

const refreshMs = 5000;
let credentials = sessionStorage.getItem("warren.credentials") || btoa("guest:guest");
let timer = null;

async function api(path) {
  const res = await fetch("/api/" + path, {
    headers: { "Authorization": "Basic " + credentials, "X-Requested-With": "warren" },
  });
  if (!res.ok) {
    const err = new Error(res.status === 401 ? "login failed" : "HTTP " + res.status);
    err.status = res.status;
    throw err;
  }
  return res.json();
}

function rateOf(stats, key) {
  const d = stats && stats[key + "_details"];
  return d ? d.rate : 0;
}

function fmt(n) {
  if (typeof n !== "number") return "";
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

function cell(row, text, numeric) {
  const td = document.createElement("td");
  td.textContent = text;
  if (numeric) td.className = "num";
  row.appendChild(td);
}

function fill(tableId, items, columns) {
  const body = document.querySelector("#" + tableId + " tbody");
  const rows = [];
  for (const item of items) {
    const tr = document.createElement("tr");
    for (const [get, numeric] of columns) cell(tr, get(item), numeric);
    rows.push(tr);
  }
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    tr.className = "empty";
    const td = document.createElement("td");
    td.colSpan = columns.length;
    td.textContent = "none";
    tr.appendChild(td);
    rows.push(tr);
  }
  body.replaceChildren(...rows);
}

// The abbreviations RabbitMQ's management page uses for a queue's or exchange's features.
const argumentFeatures = [
  ["x-message-ttl", "TTL"], ["x-expires", "Exp"], ["x-max-length", "Lim"],
  ["x-max-length-bytes", "Lim B"], ["x-dead-letter-exchange", "DLX"],
  ["x-dead-letter-routing-key", "DLK"], ["x-max-priority", "Pri"],
  ["x-single-active-consumer", "SAC"],
];

function features(x) {
  const f = [];
  if (x.durable) f.push("D");
  if (x.auto_delete) f.push("AD");
  if (x.exclusive) f.push("Excl");
  if (x.internal) f.push("I");
  const args = x.arguments || {};
  for (const [key, label] of argumentFeatures)
    if (key in args) f.push(label);
  // The policy and operator policy that apply, by name (RabbitMQ's page shows them there).
  if (x.policy) f.push(x.policy);
  if (x.operator_policy) f.push(x.operator_policy);
  return f.join(" ");
}

function setText(id, text) {
  document.getElementById(id).textContent = text;
}

async function refresh() {
  try {
    const [overview, queues, exchanges, connections] = await Promise.all([
      api("overview"), api("queues"), api("exchanges"), api("connections"),
    ]);
    const ms = overview.message_stats || {};
    setText("node", overview.node || "");
    setText("rate-publish", fmt(rateOf(ms, "publish")));
    setText("rate-deliver", fmt(rateOf(ms, "deliver_get")));
    setText("rate-ack", fmt(rateOf(ms, "ack")));
    setText("total-ready", fmt(overview.queue_totals.messages_ready));
    setText("total-unacked", fmt(overview.queue_totals.messages_unacknowledged));
    setText("total-connections", fmt(overview.object_totals.connections));
    setText("total-queues", fmt(overview.object_totals.queues));
    setText("total-consumers", fmt(overview.object_totals.consumers));
    fill("queues", queues, [
      [(q) => q.vhost], [(q) => q.name], [(q) => q.type], [features],
      [(q) => fmt(q.messages_ready), true], [(q) => fmt(q.messages_unacknowledged), true],
      [(q) => fmt(q.messages), true], [(q) => fmt(q.consumers), true],
      [(q) => fmt(rateOf(q.message_stats, "publish")), true],
      [(q) => fmt(rateOf(q.message_stats, "deliver_get")), true],
      [(q) => fmt(rateOf(q.message_stats, "ack")), true],
    ]);
    fill("exchanges", exchanges, [
      [(x) => x.vhost], [(x) => x.name === "" ? "(AMQP default)" : x.name], [(x) => x.type],
      [features], [(x) => fmt(rateOf(x.message_stats, "publish_in")), true],
      [(x) => fmt(rateOf(x.message_stats, "publish_out")), true],
    ]);
    fill("connections", connections, [
      [(c) => c.vhost], [(c) => c.name], [(c) => c.user], [(c) => c.protocol],
      [(c) => fmt(c.channels), true], [(c) => fmt(c.recv_oct_details.rate), true],
      [(c) => fmt(c.send_oct_details.rate), true],
    ]);
    const status = document.getElementById("status");
    status.textContent = "updated " + new Date().toLocaleTimeString();
    status.className = "status";
  } catch (e) {
    const status = document.getElementById("status");
    status.textContent = e.status === 401 ? "login failed: enter a user and password" : String(e);
    status.className = "status error";
  }
}

function start() {
  if (timer) clearInterval(timer);
  refresh();
  timer = setInterval(refresh, refreshMs);
}

document.getElementById("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const user = document.getElementById("user").value;
  const password = document.getElementById("password").value;
  credentials = btoa(user + ":" + password);
  sessionStorage.setItem("warren.credentials", credentials);
  start();
});

start();
