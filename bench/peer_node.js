// Node side of bench/compare.py (run inside the test bed's client namespace).
//
//   node peer_node.js ttc HOST PORT RUNS DELAY_MS
//       RUNS sequential net.connect({host, port, autoSelectFamily: true,
//       autoSelectFamilyAttemptTimeout: DELAY_MS}) after one warm-up
//       connection; prints {"ms": [...], "family": [...], "errors": [...]}:
//       time from the call to 'connect' (name lookup included).
//   node peer_node.js cps HOST PORTS IN_FLIGHT MAX_CONNS MAX_SECONDS DELAY_MS
//       IN_FLIGHT concurrent connects again and again (closed with an RST,
//       resetAndDestroy), until MAX_CONNS started or MAX_SECONDS passed;
//       prints {"started", "connected", "failed", "elapsed_s", "cps"}.
'use strict';
const net = require('net');

function connectOnce(host, port, delay) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const s = net.connect({ host, port, autoSelectFamily: true, autoSelectFamilyAttemptTimeout: delay });
    const timer = setTimeout(() => { s.destroy(); resolve({ error: 'timeout' }); }, 10000);
    s.once('connect', () => {
      clearTimeout(timer);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const family = s.remoteFamily === 'IPv6' ? 'ipv6' : 'ipv4';
      s.resetAndDestroy();
      resolve({ ms, family });
    });
    s.once('error', (e) => { clearTimeout(timer); s.destroy(); resolve({ error: String(e.code || e) }); });
  });
}

async function ttc(host, port, runs, delay) {
  const out = { ms: [], family: [], errors: [] };
  for (let i = 0; i <= runs; i++) {
    const r = await connectOnce(host, port, delay);
    if (i === 0) continue; // warm-up
    if (r.error) out.errors.push(r.error);
    else { out.ms.push(r.ms); out.family.push(r.family); }
  }
  return out;
}

async function cps(host, ports, inFlight, maxConns, maxS, delay) {
  const st = { started: 0, connected: 0, failed: 0 };
  const t0 = process.hrtime.bigint();
  const deadline = Date.now() + maxS * 1000;
  await new Promise((done) => {
    let live = 0;
    const next = () => {
      if (st.started >= maxConns || Date.now() > deadline) {
        if (live === 0) done();
        return;
      }
      const port = ports[st.started % ports.length];
      st.started++;
      live++;
      const s = net.connect({ host, port, autoSelectFamily: true, autoSelectFamilyAttemptTimeout: delay });
      s.once('connect', () => { st.connected++; s.resetAndDestroy(); live--; next(); });
      s.once('error', () => { st.failed++; s.destroy(); live--; next(); });
    };
    for (let i = 0; i < inFlight; i++) next();
  });
  const el = Number(process.hrtime.bigint() - t0) / 1e9;
  st.elapsed_s = Math.round(el * 1e4) / 1e4;
  st.cps = Math.round(st.connected / el * 10) / 10;
  return st;
}

async function main() {
  const a = process.argv.slice(2);
  let res;
  if (a[0] === 'ttc' && a.length === 5) res = await ttc(a[1], +a[2], +a[3], +a[4]);
  else if (a[0] === 'cps' && a.length === 7) res = await cps(a[1], a[2].split(',').map(Number), +a[3], +a[4], +a[5], +a[6]);
  else { console.error('usage: see the head of peer_node.js'); process.exit(2); }
  console.log(JSON.stringify(res));
}
main();
