// Spike case F: forge-daytona compiled to wasm, against a native `forge local`, its HTTP sent
// through this file's `fetch`. Usage: DAYTONA_API_URL=... DAYTONA_API_KEY=... node run-client.mjs
import { createRequire } from 'node:module'
const require = createRequire(import.meta.url)
const b = require('./spike.wasi.cjs')
const { DAYTONA_API_URL: url, DAYTONA_API_KEY: key } = process.env
let calls = 0
/** The transport: one request through Node's fetch (no redirects, as the native client). */
async function jsFetch(err, { method, url, headers, body }) {
  if (err) throw err
  calls++
  if (process.env.SPIKE_TRACE) console.error('->', method, url)
  // A Buffer made by the wasm side views its shared memory, which fetch refuses
  // ("SharedArrayBuffer is not allowed"): copied first.
  const r = await fetch(url, { method, headers, body: body ?? undefined, redirect: 'manual' })
  const answer = { status: r.status, headers: [...r.headers], body: await r.text() }
  if (process.env.SPIKE_TRACE) console.error('<-', r.status, answer.body.length)
  return answer
}
try {
  await b.wasmClientGet(url, key, 'no-such-sandbox', jsFetch)
  console.log('get unknown: resolved (unexpected)')
} catch (e) {
  console.log('get unknown rejects:', e.message)
}
try {
  await b.wasmClientGet(url, 'wrong-key', 'x', jsFetch)
} catch (e) {
  console.log('wrong key rejects:', e.message)
}
try {
  await b.wasmClientGet('http://127.0.0.1:9/api', key, 'x', jsFetch)
} catch (e) {
  console.log('closed port rejects:', e.message)
}
console.log('round trip:', await b.wasmClientRoundTrip(url, key, jsFetch))
console.log('requests through JS fetch:', calls)
process.exit(0)
