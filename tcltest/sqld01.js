// sqld01.js -- the Node side of sqld01.test: runs one script of protocol
// steps against running sqld servers and prints what each step returned.
//
//   node sqld01.js STEPS CONFIG
//
// STEPS is a file with one step per line (the grammar is below); CONFIG a
// file of "key value" lines: primary, replica and replica_primary (the
// servers' http://host:port), and primary_trace, replica_trace and
// replica_primary_trace (the files tcltest/sqltrace.so writes for each).
// For every line a step outputs, the driver prints "<step index>\t<text>";
// a step that succeeds without a result prints nothing.
//
// Steps:
//   open S ws SERVER [via T]  stream S: @libsql/hrana-client over its own
//                             WebSocket, or over stream T's WebSocket
//   open S http SERVER        stream S: Hrana over HTTP, raw /v3/pipeline
//                             requests that carry the stream's baton
//   open S client SERVER      S is an @libsql/client client (ws: URL)
//   open S client-http SERVER the same with an http: URL
//   S: SQL                    run SQL on stream S; one line per row (values
//                             joined by '|', NULL as nothing, as the sqlite3
//                             CLI prints them), "(no rows)", "ok" for a
//                             statement without columns, or "error: MSG"
//   timed S: SQL              the same, then " (fast)" if it took under
//                             2 s, " (waited)" if it took 3 s or more
//   S: close                  close stream S (a Hrana close request)
//   S: drop                   drop S's WebSocket without a close: what the
//                             server sees when a client machine dies
//   S: execute SQL            @libsql/client client.execute()
//   S: executeMultiple SQL    client.executeMultiple()
//   S: batch MODE SQL; ...    client.batch([...], MODE): a line per statement
//   S: transaction MODE       tx = client.transaction(MODE)
//   S: tx SQL                 tx.execute()
//   S: commit, S: txclose     tx.commit(), tx.close()
//   sleep MS                  wait
//   wait-replica              wait until the replica has caught up with its
//                             primary and runs reads itself
//   trace SERVER              the SQL the server's connections ran since
//                             the last "trace SERVER" (or the script's start)
//
// SERVER is primary, replica or replica_primary.  A trace prints
// "c<N> <sql>" lines, the connections numbered 1, 2, ... in the order they
// first ran a statement in that stretch, all the lines of c1 first, then
// those of c2, and so on (connections that ran no statement, and sqld's
// periodic maintenance connection, are left out).  Statements run
// from inside another statement are kept only when they begin, end or
// roll back a transaction or savepoint, or are a test table's callback:
// the extension's own bookkeeping statements and libSQL's cipher probe
// are internal details that may change.  Block savepoint names are shown
// as atomic_SP.
"use strict";
const fs = require("fs");
const hrana = require("@libsql/hrana-client");

const [stepsFile, configFile] = process.argv.slice(2);
const steps = fs.readFileSync(stepsFile, "utf8").split("\n").filter((l) => l !== "");
const config = {};
for (const line of fs.readFileSync(configFile, "utf8").split("\n")) {
  const m = /^(\S+) (.*)$/.exec(line);
  if (m) config[m[1]] = m[2];
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let current = 0;
const out = (text) => {
  process.stdout.write(`${current}\t${String(text).replace(/\n/g, "\\n")}\n`);
};

// -- Results -----------------------------------------------------------

function valueText(v) {
  if (v === null || v === undefined) return "";
  if (v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
    return "x'" + Buffer.from(v).toString("hex") + "'";
  }
  return String(v);
}

// The lines of a result: rows as arrays, and how many columns it had
function rowLines(columnCount, rows) {
  if (columnCount === 0) return ["ok"];
  if (rows.length === 0) return ["(no rows)"];
  return rows.map((row) => row.map(valueText).join("|"));
}

// -- Streams -----------------------------------------------------------

const subprotocols = ["hrana3-protobuf", "hrana3", "hrana2", "hrana1"];

function serverUrl(name) {
  const url = config[name];
  if (!url) throw new Error(`no server ${name} in ${configFile}`);
  return url;
}

class WsStream {
  constructor(url, via) {
    if (via) {
      this.socket = via.socket;
      this.client = via.client;
    } else {
      this.socket = new hrana.WebSocket(url.replace(/^http/, "ws"), subprotocols);
      this.client = new hrana.WsClient(this.socket, undefined);
    }
    this.stream = this.client.openStream();
  }
  async sql(sql) {
    const r = await this.stream.query(sql);
    return rowLines(r.columnNames.length, r.rows.map((row) => Array.from(row)));
  }
  async close() {
    this.stream.close();
    // a query on another stream of the same socket would follow the close
    // request; a round trip makes sure the server has handled it
    await this.client.getVersion();
  }
  drop() {
    this.socket.terminate();
  }
  end() {
    if (!this.client.closed) this.client.close();
  }
}

// Hrana over HTTP: each request is a POST of a pipeline to /v3/pipeline;
// the baton the server returns names the stream (and its connection) and
// must come with the next request.
class HttpStream {
  constructor(url) {
    this.url = url;
    this.baton = null;
    this.closed = false;
  }
  async pipeline(requests) {
    const res = await fetch(this.url + "/v3/pipeline", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ baton: this.baton, requests }),
    });
    const body = await res.text();
    if (res.status !== 200) {
      let msg = body;
      try {
        const e = JSON.parse(body);
        msg = `${e.code}: ${e.message}`;
      } catch (_) {}
      throw new Error(`HTTP ${res.status} ${msg}`);
    }
    const resp = JSON.parse(body);
    this.baton = resp.baton;
    return resp.results;
  }
  async sql(sql) {
    const [r] = await this.pipeline([{ type: "execute", stmt: { sql } }]);
    if (r.type === "error") throw new Error(r.error.message);
    const result = r.response.result;
    const rows = result.rows.map((row) =>
      row.map((v) => (v.type === "null" ? null : v.type === "blob" ? Buffer.from(v.base64, "base64") : v.value)));
    return rowLines(result.cols.length, rows);
  }
  async close() {
    const [r] = await this.pipeline([{ type: "close" }]);
    if (r.type === "error") throw new Error(r.error.message);
    this.closed = true;
  }
  drop() {
    throw new Error("an HTTP stream has no connection to drop");
  }
  async end() {
    if (this.baton !== null && !this.closed) {
      try { await this.close(); } catch (_) {}
    }
  }
}

class LibsqlClient {
  constructor(url) {
    const { createClient } = require("@libsql/client");
    this.client = createClient({ url });
    this.tx = null;
  }
  static resultLines(rs) {
    return rowLines(rs.columns.length, rs.rows.map((row) => Array.from(row)));
  }
  async op(verb, arg) {
    switch (verb) {
      case "execute":
        return LibsqlClient.resultLines(await this.client.execute(arg));
      case "executeMultiple":
        await this.client.executeMultiple(arg);
        return ["ok"];
      case "batch": {
        const m = /^(\w+) (.*)$/.exec(arg);
        const stmts = m[2].split(";").map((s) => s.trim()).filter((s) => s !== "");
        const results = await this.client.batch(stmts, m[1]);
        return results.flatMap(LibsqlClient.resultLines);
      }
      case "transaction":
        this.tx = await this.client.transaction(arg);
        return [];
      case "tx":
        return LibsqlClient.resultLines(await this.tx.execute(arg));
      case "commit":
        await this.tx.commit();
        return [];
      case "txclose":
        this.tx.close();
        return [];
    }
    throw new Error(`unknown client operation ${verb}`);
  }
  end() {
    this.client.close();
  }
}

// -- Traces ------------------------------------------------------------

const traceOffsets = {};
function traceFile(server) {
  const f = config[server + "_trace"];
  if (!f) throw new Error(`no trace file for ${server}`);
  return f;
}
function traceSize(server) {
  try { return fs.statSync(traceFile(server)).size; } catch (_) { return 0; }
}
for (const server of ["primary", "replica", "replica_primary"]) {
  if (config[server + "_trace"]) traceOffsets[server] = traceSize(server);
}

// The trace lines written since the last call, as [connection, text]
function traceSince(server) {
  const text = fs.readFileSync(traceFile(server), "utf8");
  const buf = Buffer.from(text, "utf8");
  const fresh = buf.subarray(traceOffsets[server]).toString("utf8");
  traceOffsets[server] = buf.length;
  return fresh.split("\n").filter((l) => l !== "").map((l) => {
    const m = /^c(\d+) (.*)$/.exec(l);
    return [m[1], m[2]];
  });
}

const keptNested = /^-- (BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|INSERT INTO \w*(log|mail)\b)/;

function traceLines(server) {
  const lines = traceSince(server);
  const maintenance = new Set(lines.filter(([, t]) => /^pragma freelist_count/i.test(t)).map(([c]) => c));
  const label = new Map();
  const result = [];
  for (const [c, t] of lines) {
    if (maintenance.has(c)) continue;
    if (t === "OPEN") continue;
    if (t === "CLOSE") {
      if (label.has(c)) result.push([label.get(c), `c${label.get(c)} CLOSE`]);
      continue;
    }
    if (t.startsWith("-- ") && !keptNested.test(t)) continue;
    if (!label.has(c)) label.set(c, label.size + 1);
    result.push([label.get(c), `c${label.get(c)} ${t.replace(/\b_a[0-9a-f]{4}\b/g, "atomic_SP")}`]);
  }
  // Connection by connection: how their lines interleave is timing
  return result.sort((a, b) => a[0] - b[0]).map(([, line]) => line);
}

// Wait until a read on a new replica stream runs on the replica itself
// (it shows in the replica's trace), rather than being sent to the
// primary because the replica has not caught up yet.
async function waitReplica() {
  for (let i = 0; i < 100; i++) {
    const probe = `SELECT 'replica probe ${i}'`;
    const s = new WsStream(serverUrl("replica"));
    try {
      await s.sql(probe);
    } finally {
      await s.close();
      s.end();
    }
    if (fs.readFileSync(traceFile("replica"), "utf8").includes(probe)) {
      await sleep(200);
      traceOffsets.replica = traceSize("replica");
      traceOffsets.replica_primary = traceSize("replica_primary");
      return;
    }
    await sleep(200);
  }
  throw new Error("the replica did not catch up with its primary in 20 s");
}

// -- The script ----------------------------------------------------------

const streams = {};

async function step(line) {
  let m;
  if ((m = /^open (\w+) (ws|http|client|client-http) (\w+)(?: via (\w+))?$/.exec(line))) {
    const url = serverUrl(m[3]);
    if (m[2] === "ws") streams[m[1]] = new WsStream(url, m[4] && streams[m[4]]);
    else if (m[2] === "http") streams[m[1]] = new HttpStream(url);
    else if (m[2] === "client") streams[m[1]] = new LibsqlClient(url.replace(/^http/, "ws"));
    else streams[m[1]] = new LibsqlClient(url);
    return [];
  }
  if ((m = /^sleep (\d+)$/.exec(line))) {
    await sleep(Number(m[1]));
    return [];
  }
  if (line === "wait-replica") {
    await waitReplica();
    return [];
  }
  if ((m = /^trace (\w+)$/.exec(line))) {
    await sleep(100);
    return traceLines(m[1]);
  }
  if ((m = /^(timed )?(\w+): (.*)$/s.exec(line))) {
    const s = streams[m[2]];
    if (!s) throw new Error(`no stream ${m[2]}`);
    const what = m[3];
    if (s instanceof LibsqlClient) {
      const v = /^(\w+) ?(.*)$/.exec(what);
      return await s.op(v[1], v[2]);
    }
    if (what === "close") { await s.close(); return []; }
    if (what === "drop") { s.drop(); return []; }
    const t0 = Date.now();
    let lines;
    try {
      lines = await s.sql(what);
    } catch (e) {
      lines = [`error: ${e.message}`];
    }
    if (m[1]) {
      const ms = Date.now() - t0;
      const how = ms < 2000 ? "(fast)" : ms >= 3000 ? "(waited)" : `(took ${ms} ms)`;
      lines[lines.length - 1] += " " + how;
    }
    return lines;
  }
  throw new Error(`cannot parse step: ${line}`);
}

(async () => {
  for (current = 0; current < steps.length; current++) {
    let lines;
    try {
      lines = await step(steps[current]);
    } catch (e) {
      lines = [`error: ${e.message}`];
    }
    for (const l of lines) out(l);
  }
  for (const s of Object.values(streams)) {
    try { await s.end(); } catch (_) {}
  }
  process.exit(0);
})();
