import { avroToJson, jsonSchemaOf } from './avro-json';
import type { Gateway } from './gateway';

/** What the playground (and any client) learns about the topology: stages with their roles, the input schema, an example event. */
export function topologyDocument(gateway: Gateway): Record<string, unknown> {
  const { view } = gateway;
  return {
    name: view.name,
    inputTopic: view.inputTopic,
    predictionStage: view.predictionStage,
    stages: view.order.map((s) => ({ name: s.name, processor: s.processor, role: view.roles.get(s.name), input: s.input.topic, output: s.output.topic })),
    inputSchema: jsonSchemaOf(gateway.inputType),
    example: exampleEvent(gateway),
  };
}

/**
 * An example event: a random valid value of the input schema (any domain; the engine knows no
 * example's generator), with a timestamp-millis `eventTime` field, if there is one, set to now.
 */
export function exampleEvent(gateway: Gateway): unknown {
  const value = avroToJson(gateway.inputType.random());
  if (value && typeof value === 'object' && 'eventTime' in value && typeof (value as { eventTime: unknown }).eventTime === 'number') {
    return { ...(value as Record<string, unknown>), eventTime: Date.now() };
  }
  return value;
}

/**
 * The playground: one self-contained page (no framework, no external resources). It builds a form
 * from the input schema, sends it to /v1/stream with fetch() (EventSource is GET-only) and shows
 * each update event as it arrives, with the server's and the browser's timing.
 */
export function playgroundHtml(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tributary gateway playground</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1b1f24}
header{background:#17324d;color:#fff;padding:12px 20px}header h1{margin:0;font-size:18px}
main{display:grid;grid-template-columns:minmax(320px,420px) 1fr;gap:16px;padding:16px 20px}
section{background:#fff;border:1px solid #d8dde3;border-radius:6px;padding:12px 14px}
h2{font-size:15px;margin:0 0 8px}
label{display:block;margin:6px 0 2px;font-weight:600}label small{font-weight:400;color:#5b6673}
input,textarea{width:100%;box-sizing:border-box;padding:5px 6px;border:1px solid #b8c1cc;border-radius:4px;font:13px monospace}
button{margin-top:10px;padding:7px 16px;background:#1f6feb;color:#fff;border:0;border-radius:4px;font-weight:600;cursor:pointer}
ol.stages{list-style:none;padding:0;margin:0;display:flex;flex-wrap:wrap;gap:6px}
ol.stages li{border:1px solid #b8c1cc;border-radius:4px;padding:4px 8px;background:#eef3f8}
ol.stages li .role{color:#5b6673;font-size:12px}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #e4e8ec;padding:5px 6px;text-align:left;vertical-align:top}
td pre{margin:0;white-space:pre-wrap;word-break:break-all;font-size:12px;max-height:160px;overflow:auto}
.ev{font-weight:700}.ev-prediction{color:#116329}.ev-dead-letter,.ev-timeout,.ev-error{color:#b42318}.ev-shadow{color:#6e40c9}.ev-features{color:#0b5cad}
#status{margin-left:10px;color:#5b6673}
</style></head>
<body>
<header><h1>Tributary gateway playground <span id="topology-name"></span></h1></header>
<main>
<div>
<section id="topology"><h2>Topology</h2><ol class="stages" id="stages"></ol></section>
<section style="margin-top:16px"><h2>Event <small id="input-topic"></small></h2>
<form id="event-form"><div id="fields"></div>
<label for="timeout">timeoutMs</label><input id="timeout" name="timeoutMs" value="5000">
<label for="token">Bearer token <small>(if the gateway requires one)</small></label><input id="token" type="password" autocomplete="off">
<button type="submit" id="send">Send to /v1/stream</button><span id="status"></span>
</form></section>
</div>
<section><h2>Update events</h2>
<table id="events"><thead><tr><th>event</th><th>server ms</th><th>browser ms</th><th>data</th></tr></thead><tbody></tbody></table>
</section>
</main>
<script>
'use strict';
let schema = null;
function fieldInput(name, s, value) {
  const wrap = document.createElement('div');
  const label = document.createElement('label');
  label.htmlFor = 'f-' + name;
  label.textContent = name + ' ';
  const hint = document.createElement('small');
  hint.textContent = (s.type || 'json') + (s.nullable ? ', nullable' : '') + (s.description ? ' - ' + s.description : '');
  label.appendChild(hint);
  const complex = s.type === 'object' || s.type === 'array' || !s.type;
  const input = document.createElement(complex ? 'textarea' : 'input');
  input.id = 'f-' + name;
  input.name = name;
  input.dataset.kind = complex ? 'json' : s.type;
  input.value = complex ? JSON.stringify(value === undefined ? null : value) : (value === undefined || value === null ? '' : String(value));
  wrap.append(label, input);
  return wrap;
}
function readForm() {
  const out = {};
  for (const input of document.querySelectorAll('#fields [name]')) {
    const kind = input.dataset.kind, raw = input.value, s = schema.properties[input.name];
    if (raw === '' && s.nullable) { out[input.name] = null; continue; }
    if (kind === 'number' || kind === 'integer') out[input.name] = raw === '' ? raw : Number(raw);
    else if (kind === 'boolean') out[input.name] = raw === 'true';
    else if (kind === 'json') out[input.name] = JSON.parse(raw);
    else out[input.name] = raw;
  }
  return out;
}
function addRow(type, serverMs, browserMs, data) {
  const tr = document.createElement('tr');
  tr.className = 'event-row';
  tr.dataset.event = type;
  const cells = [type, serverMs === null ? '' : String(serverMs), browserMs.toFixed(1)];
  cells.forEach((text, i) => { const td = document.createElement('td'); td.textContent = text; if (i === 0) td.className = 'ev ev-' + type; tr.appendChild(td); });
  const td = document.createElement('td'); const pre = document.createElement('pre'); pre.textContent = JSON.stringify(data, null, 1); td.appendChild(pre); tr.appendChild(td);
  document.querySelector('#events tbody').appendChild(tr);
}
async function send(ev) {
  ev.preventDefault();
  const status = document.getElementById('status');
  document.querySelector('#events tbody').textContent = '';
  let body;
  try { body = readForm(); } catch (e) { status.textContent = 'bad JSON in a field: ' + e.message; return; }
  const headers = { 'content-type': 'application/json' };
  const token = document.getElementById('token').value;
  if (token) headers.authorization = 'Bearer ' + token;
  const t0 = performance.now();
  status.textContent = 'sending...';
  const res = await fetch('/v1/stream?timeoutMs=' + encodeURIComponent(document.getElementById('timeout').value), { method: 'POST', headers, body: JSON.stringify(body) });
  if (!res.ok || !res.body) {
    const err = await res.json().catch(() => ({ error: res.statusText }));
    addRow('error', null, performance.now() - t0, Object.assign({ status: res.status }, err));
    status.textContent = 'HTTP ' + res.status;
    document.body.dataset.done = 'true';
    return;
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf('\\n\\n')) >= 0) {
      const block = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
      const type = (/^event: (.*)$/m.exec(block) || [])[1] || 'message';
      const data = JSON.parse((/^data: (.*)$/m.exec(block) || [])[1] || 'null');
      addRow(type, data && data.ms, performance.now() - t0, data);
    }
  }
  status.textContent = 'done in ' + (performance.now() - t0).toFixed(0) + ' ms';
  document.body.dataset.done = 'true';
}
async function init() {
  const topo = await (await fetch('/v1/topology')).json();
  schema = topo.inputSchema;
  document.getElementById('topology-name').textContent = '- ' + topo.name;
  document.getElementById('input-topic').textContent = '(to ' + topo.inputTopic + ')';
  const stages = document.getElementById('stages');
  for (const s of topo.stages) {
    const li = document.createElement('li');
    li.dataset.stage = s.name;
    li.innerHTML = '<b></b> <span class="role"></span>';
    li.querySelector('b').textContent = s.name;
    li.querySelector('.role').textContent = s.role + ' (' + s.processor + ') ' + s.input + ' \\u2192 ' + s.output;
    stages.appendChild(li);
  }
  const fields = document.getElementById('fields');
  // ?f.<field>=<value> overrides the example (links that reproduce a case).
  const params = new URLSearchParams(location.search);
  for (const [name, s] of Object.entries(schema.properties)) {
    const given = params.get('f.' + name);
    fields.appendChild(fieldInput(name, s, given !== null ? given : topo.example[name]));
  }
  document.getElementById('event-form').addEventListener('submit', send);
  document.body.dataset.ready = 'true';
  if (params.get('timeoutMs')) document.getElementById('timeout').value = params.get('timeoutMs');
  const auto = params.get('autosend');
  if (auto !== null) document.getElementById('send').click();
}
init().catch((e) => { document.getElementById('status').textContent = 'failed to load the topology: ' + e.message; });
</script>
</body></html>
`;
}
