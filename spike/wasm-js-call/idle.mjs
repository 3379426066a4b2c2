// CPU an idle runtime burns: a 3 s wait for a JS answer, no timer pending. With napi-rs's
// default runtime (Tokio's I/O driver: `poll_oneoff` with nothing to wait for returns at once)
// the worker spins; with `SPIKE_RT=time` it sleeps on its condvar. `node idle.mjs`.
import { createRequire } from 'node:module'
const require = createRequire(import.meta.url)
const b = require('./spike.wasi.cjs')
await b.runtimeAlive()
const u0 = process.cpuUsage(); const t0 = Date.now()
await b.objectAnswer(async () => { await new Promise((r) => setTimeout(r, 3000)); return { status: 200, headers: [], body: 'x' } })
const u = process.cpuUsage(u0)
console.log(`SPIKE_RT=${process.env.SPIKE_RT ?? ''}: a 3 s wait for a JS answer took ${Date.now() - t0} ms, process CPU ${Math.round((u.user + u.system) / 1000)} ms`)
process.exit(0)
