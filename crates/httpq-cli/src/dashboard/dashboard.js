// The dashboard's one job: turn each /_httpq/events message into page text.
// Every value goes in through textContent, never as markup: request paths
// and reasons come from clients.
"use strict";

let previous = null;

function text(id, value) {
  document.getElementById(id).textContent = String(value);
}

function cell(row, value, numeric) {
  const td = document.createElement("td");
  td.textContent = value === null || value === undefined ? "" : String(value);
  if (numeric) td.className = "num";
  row.appendChild(td);
  return td;
}

function showQueues(queues) {
  const body = document.querySelector("#queues tbody");
  const rows = queues.map((q) => {
    const tr = document.createElement("tr");
    tr.dataset.queue = q.name;
    cell(tr, q.name, false);
    cell(tr, q.length, true).dataset.field = "length";
    cell(tr, q.consumers, true).dataset.field = "consumers";
    cell(tr, q.in_flight, true).dataset.field = "in_flight";
    return tr;
  });
  body.replaceChildren(...rows);
}

function showDisconnects(list) {
  const body = document.querySelector("#disconnects tbody");
  const rows = list.map((d) => {
    const tr = document.createElement("tr");
    cell(tr, new Date(d.at).toLocaleTimeString(), false).title = d.at;
    cell(tr, d.peer, false);
    cell(tr, d.path === null ? "(between requests)" : d.path, false);
    cell(tr, d.reason, false);
    return tr;
  });
  body.replaceChildren(...rows);
}

function show(e) {
  // Requests per second over the last interval, from the server's own
  // clock, so a late message does not make a spike.
  if (previous !== null && e.uptime_seconds > previous.uptime_seconds) {
    const rate = (e.requests_total - previous.requests_total) /
      (e.uptime_seconds - previous.uptime_seconds);
    text("rps", rate.toFixed(1));
  }
  previous = e;
  text("total", e.requests_total);
  text("in_flight", e.requests_in_flight);
  text("connections", e.connections_open);
  showQueues(e.request_queues);
  showDisconnects(e.recent_disconnects);
}

const status = document.getElementById("status");
const events = new EventSource("/_httpq/events");
events.onmessage = (m) => {
  show(JSON.parse(m.data));
  status.textContent = "live";
  status.className = "status live";
};
events.onerror = () => {
  // EventSource reconnects by itself; the totals stay as last seen.
  status.textContent = "reconnecting…";
  status.className = "status lost";
  previous = null;
};
