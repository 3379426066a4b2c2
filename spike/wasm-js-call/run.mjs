// Spike runner: each case calls a JS function returning a Promise from Rust and prints the value.
import { createRequire } from 'node:module'
const require = createRequire(import.meta.url)
const b = require('./spike.wasi.cjs')
const deadline = (p, what) => Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(`${what}: no answer in 30 s`)), 30000).unref())])
const cases = {
  alive: () => b.runtimeAlive(),
  tsfn: () => b.callTsfn(async (err, s) => { if (err) throw err; await new Promise((r) => setTimeout(r, 5)); return s.toUpperCase() }, 'hello'),
  loop: () => b.callTsfnLoop(async (err, i) => { if (err) throw err; await new Promise((r) => setTimeout(r, 1)); return i * 2 }, 20),
  projectPath: () => { const seen = []; return b.projectPath(async (v) => { await new Promise((r) => setTimeout(r, 1)); seen.push(v) }, 5).then((n) => `${n} [${seen}]`) },
  projectFetch: () => b.projectFetch(async (err, url) => { if (err) throw err; const r = await fetch(url); return r.text() }, 'data:text/plain,via-settle'),
  objectAnswer: () => b.objectAnswer(async (err, a) => { if (err) throw err; await new Promise((r) => setTimeout(r, 5)); return { status: 200, headers: [['a', 'b']], body: a.method } }),
  objectAnswerFetch: () => b.objectAnswer(async (err, a) => { if (err) throw err; const r = await fetch('data:text/plain,hi'); return { status: r.status, headers: [...r.headers], body: await r.text() } }),
  objectAnswerSlow: () => b.objectAnswer(async (err, a) => { if (err) throw err; await new Promise((r) => setTimeout(r, 2000)); return { status: 200, headers: [], body: 'after 2 s' } }),
  withTimer: () => b.objectAnswerWithTimer(async (err, a) => { if (err) throw err; await new Promise((r) => setTimeout(r, 500)); return { status: 200, headers: [], body: 'answer beat the timer' } }),
  withTimerAndTicks: () => b.objectAnswerWithTimerAndTicks(async (err, a) => { if (err) throw err; await new Promise((r) => setTimeout(r, 500)); return { status: 200, headers: [], body: 'answer beat the timer' } }),
  spawned: () => b.callTsfnSpawned(async (err, s) => { if (err) throw err; const r = await fetch('data:text/plain,fetched'); return s + ':' + (await r.text()) }, 'x'),
}
const beat = setInterval(() => process.env.SPIKE_TRACE && console.error('js heartbeat'), 1000)
for (const [name, f] of Object.entries(cases)) {
  const t0 = Date.now()
  try { console.log(name, '->', await deadline(f(), name), `(${Date.now() - t0} ms)`) } catch (e) { console.log(name, 'FAILED', e.message) }
}
clearInterval(beat)
process.exit(0)
