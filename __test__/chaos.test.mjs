// Fault injection through the napi addon (issue 8): a chaos proxy on 127.0.0.1 between the JS
// client and a `forge local` backend (the approach of crates/daytona/tests/chaos.rs) resets
// connections before and after forwarding, answers 500 / 502 / 503 / 429 bursts, delays
// headers, cuts and garbles bodies, and drops WebSocket log streams mid-stream. Across every
// operation of the JS API it asserts: each call ends (well before its guard timer) with a
// result or a typed `DAYTONA_*` error, no panic crosses napi, no unhandled rejection, and no
// create or execute is forwarded twice for one call. It prints the figures.
import test from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import { appendFileSync } from 'node:fs'
import { addon } from './helpers.mjs'
import { startForgeLocal } from '../crates/testkit/js/forge-local.mjs'

const { Daytona, DaytonaError } = addon()
const MIN_FAULTS = Number(process.env.CHAOS_MIN_FAULTS ?? 520)
/** CHAOS_TRACE=<file>: every call's start and end appended to that file (to find a hang). */
const trace = (line) => process.env.CHAOS_TRACE && appendFileSync(process.env.CHAOS_TRACE, `${new Date().toISOString()} ${line}\n`)
const CALL_GUARD_MS = 60_000

/** xorshift, seeded: the same faults on every run. */
function rng(seed) {
  let x = BigInt(seed)
  return () => {
    x ^= (x << 13n) & 0xffffffffffffffffn
    x ^= x >> 7n
    x ^= (x << 17n) & 0xffffffffffffffffn
    return Number(x % 1000n) / 1000
  }
}

const FAULTS = [
  'reset before forwarding',
  '503 before forwarding',
  '429 before forwarding',
  '500 before forwarding',
  'slow headers',
  'reset after forwarding',
  '502 after forwarding',
  'body cut after forwarding',
  'garbage after forwarding',
]

/** The proxy. `faultRate` of the requests get one of FAULTS; WebSockets are dropped mid-stream. */
async function chaosProxy(backendOrigin, faultRate) {
  const roll = rng(0x9e3779b97f4a7c15n)
  const figures = { faults: {}, forwarded: 0, onceForwarded: 0 }
  const note = (f) => (figures.faults[f] = (figures.faults[f] ?? 0) + 1)
  const target = new URL(backendOrigin)
  let me = ''
  const once = (req) =>
    req.method === 'POST' && (/^\/api\/sandbox\/?$/.test(req.url.split('?')[0]) || /\/process\/(execute|code-run)$/.test(req.url.split('?')[0]) || /\/process\/session\/[^/]+\/exec$/.test(req.url.split('?')[0]))

  const forward = (req, body) =>
    new Promise((resolve) => {
      figures.forwarded++
      if (once(req)) figures.onceForwarded++
      const headers = { ...req.headers, host: target.host }
      delete headers['content-length']
      const up = http.request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...headers, 'content-length': body.length } },
        (res) => {
          const chunks = []
          res.on('data', (c) => chunks.push(c))
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('latin1').split(backendOrigin).join(me)
            resolve({ status: res.statusCode, headers: res.headers, body: Buffer.from(text, 'latin1') })
          })
          res.on('error', () => resolve(null))
        },
      )
      up.on('error', () => resolve(null))
      up.end(body)
    })

  const server = http.createServer((req, res) => {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', async () => {
      const body = Buffer.concat(chunks)
      const fault = roll() < faultRate ? FAULTS[Math.floor(roll() * FAULTS.length)] : null
      if (fault) note(fault)
      const send = (r) => {
        if (!r) return res.destroy()
        const h = { ...r.headers }
        delete h['content-length']
        delete h['transfer-encoding']
        delete h.connection
        res.writeHead(r.status, { ...h, 'content-length': r.body.length })
        res.end(r.body)
      }
      switch (fault) {
        case 'reset before forwarding':
          return req.socket.destroy()
        case '503 before forwarding':
          res.writeHead(503, { 'content-type': 'application/json' })
          return res.end('{"statusCode":503,"message":"unavailable"}')
        case '429 before forwarding':
          res.writeHead(429, { 'retry-after': '0' })
          return res.end()
        case '500 before forwarding':
          res.writeHead(500, { 'content-type': 'text/html' })
          return res.end('<html>oops</html>')
        case 'slow headers':
          await new Promise((r) => setTimeout(r, 400))
          return send(await forward(req, body))
        case 'reset after forwarding':
          await forward(req, body)
          return req.socket.destroy()
        case '502 after forwarding':
          await forward(req, body)
          res.writeHead(502)
          return res.end('<html>bad gateway</html>')
        case 'body cut after forwarding': {
          const r = await forward(req, body)
          if (!r) return res.destroy()
          res.writeHead(r.status, { 'content-type': r.headers['content-type'] ?? 'application/json', 'content-length': r.body.length + 10 })
          res.write(r.body.subarray(0, Math.floor(r.body.length / 2)))
          return setTimeout(() => res.destroy(), 20)
        }
        case 'garbage after forwarding':
          await forward(req, body)
          res.writeHead(200, { 'content-type': 'application/json' })
          return res.end('{{{garbage')
        default:
          return send(await forward(req, body))
      }
    })
  })
  // WebSocket upgrades (log streams): piped to the backend, dropped after a few frames.
  const tunnels = new Set()
  server.on('upgrade', (req, socket, head) => {
    const up = net.connect(target.port, target.hostname, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`]
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        const k = req.rawHeaders[i]
        lines.push(`${k}: ${k.toLowerCase() === 'host' ? target.host : req.rawHeaders[i + 1]}`)
      }
      up.write(`${lines.join('\r\n')}\r\n\r\n`)
      if (head.length) up.write(head)
      up.pipe(socket)
      socket.pipe(up)
      if (roll() < faultRate) {
        note('WebSocket dropped mid-stream')
        setTimeout(() => {
          socket.destroy()
          up.destroy()
        }, 30 + Math.floor(roll() * 200))
      }
    })
    up.on('error', () => socket.destroy())
    socket.on('error', () => up.destroy())
    tunnels.add(socket).add(up)
    socket.on('close', () => tunnels.delete(socket))
    up.on('close', () => tunnels.delete(up))
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  me = `http://127.0.0.1:${server.address().port}`
  return {
    url: me,
    figures,
    total: () => Object.values(figures.faults).reduce((a, b) => a + b, 0),
    close: () =>
      new Promise((r) => {
        for (const t of tunnels) t.destroy()
        server.closeAllConnections?.()
        server.close(r)
      }),
  }
}

test('injected faults end in results or typed errors, never a panic, an unhandled rejection or a double create/exec', { timeout: 600_000 }, async () => {
  const unhandled = []
  const onUnhandled = (e) => unhandled.push(e)
  process.on('unhandledRejection', onUnhandled)
  const backend = await startForgeLocal()
  const origin = backend.apiUrl.replace(/\/api$/, '')
  const proxy = await chaosProxy(origin, 0.6)
  const direct = new Daytona({ apiKey: backend.apiKey, apiUrl: backend.apiUrl })
  const chaotic = new Daytona({ apiKey: backend.apiKey, apiUrl: `${proxy.url}/api` })
  const calls = { ok: 0, failed: 0, codes: {} }
  const problems = []

  /** One call: bounded, and a failure must be a typed error. Once-only calls are counted. */
  const call = async (name, fn, { onceOnly = false } = {}) => {
    const before = proxy.figures.onceForwarded
    let timer
    const guard = new Promise((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error(`${name} did not end within ${CALL_GUARD_MS} ms`), { hung: true })), CALL_GUARD_MS)
    })
    const t0 = Date.now()
    trace(`start ${name} faults=${proxy.total()}`)
    try {
      const r = await Promise.race([Promise.resolve().then(fn), guard])
      calls.ok++
      return r
    } catch (e) {
      calls.failed++
      calls.codes[e?.code] = (calls.codes[e?.code] ?? 0) + 1
      if (e?.hung) problems.push(e.message)
      else if (!(e instanceof Error)) problems.push(`${name}: rejected with a non-Error ${String(e)}`)
      else if (!(e instanceof DaytonaError) || !/^(DAYTONA|GIT|PREVIEW|DETECT)_[A-Z_]+$/.test(e.code)) problems.push(`${name}: untyped error ${e.code} ${e.message}`)
      if (/panick/i.test(String(e?.message))) problems.push(`${name}: panic crossed napi: ${e.message}`)
      return undefined
    } finally {
      clearTimeout(timer)
      trace(`end ${name} ${Date.now() - t0} ms`)
      if (onceOnly && proxy.figures.onceForwarded - before > 1) {
        problems.push(`${name}: forwarded ${proxy.figures.onceForwarded - before} times for one call`)
      }
    }
  }

  // A sandbox made directly; re-attached through the proxy so its toolbox goes through it.
  const base = await direct.create()
  let sandbox
  for (let i = 0; !sandbox && i < 20; i++) sandbox = await call('getSandbox', () => chaotic.getSandbox(base.id))
  assert.ok(sandbox, 'the sandbox could be fetched through the proxy')
  await direct.get(base.id).then((s) => s.fs.uploadFile('{"dependencies":{"vite":"5.0.0"},"scripts":{"dev":"vite"}}', 'app/package.json'))

  const started = Date.now()
  let round = 0
  while (proxy.total() < MIN_FAULTS && Date.now() - started < 420_000) {
    round++
    const s = sandbox
    const p = s.process
    const fs = s.fs
    const created = await call('create', () => chaotic.create({ labels: { chaos: `r${round}` }, timeout: 30 }), { onceOnly: true })
    if (created && round % 4 === 0) await call('delete', () => created.delete())
    await call('listSandboxes', () => chaotic.listSandboxes({ labels: { chaos: `r${round}` } }))
    await call('get', () => chaotic.get(base.id))
    await call('get(unknown)', () => chaotic.get('no-such-sandbox'))
    await call('executeCommand', () => p.executeCommand(`echo ${round} >> ran.txt`), { onceOnly: true })
    await call('exec', () => p.exec(`echo out-${round}; echo err >&2`, { timeout: 20 }))
    // codeRun starts a TypeScript runner (seconds): every 5th round.
    if (round % 5 === 1) await call('codeRun', () => p.codeRun('console.log(1 + 1)'), { onceOnly: true })
    await call('uploadFile', () => fs.uploadFile(`content ${round}\n`, `files/f${round % 5}.txt`))
    await call('uploadFiles', () => fs.uploadFiles([{ content: 'a', path: 'files/a.txt' }, { content: 'b', path: 'files/b.txt' }]))
    await call('readFile', () => fs.readFile('files/a.txt'))
    await call('downloadFiles', () => fs.downloadFiles(['files/a.txt', 'files/none.txt']))
    await call('listFiles', () => fs.listFiles('files'))
    await call('getFileDetails', () => fs.getFileDetails('files/b.txt'))
    await call('searchFiles', () => fs.searchFiles('files', 'content'))
    await call('findFilesByName', () => fs.findFilesByName('files', '*.txt'))
    await call('replaceInFile', () => fs.replaceInFile('files/a.txt', 'a', 'a'))
    await call('createFolder', () => fs.createFolder(`dirs/d${round}`))
    await call('deleteFile', () => fs.deleteFile(`dirs/d${round}`))
    await call('readFile(missing)', () => fs.readFile('files/missing.txt'))
    const sid = `chaos-${round}`
    await call('createSession', () => p.createSession(sid))
    const cmd = await call('executeSessionCommand', () => p.executeSessionCommand(sid, { command: 'for i in 1 2 3 4 5; do echo line $i; sleep 0.05; done', runAsync: true }), { onceOnly: true })
    if (cmd?.cmdId) {
      await call('streamSessionCommandLogs', async () => {
        let n = 0
        for await (const c of p.streamSessionCommandLogs(sid, cmd.cmdId)) n += c.data.length
        return n
      })
      await call('getSessionCommandLogs(callbacks)', () => p.getSessionCommandLogs(sid, cmd.cmdId, () => {}, () => {}))
      await call('getSessionCommandLogs', () => p.getSessionCommandLogs(sid, cmd.cmdId))
      await call('getSessionCommandStatus', () => p.getSessionCommandStatus(sid, cmd.cmdId))
    }
    await call('listSessions', () => p.listSessions())
    await call('deleteSession', () => p.deleteSession(sid))
    await call('git.status(not a repo)', () => s.git.status('files'))
    await call('getPreviewLink', () => s.getPreviewLink(3000))
    await call('detectFramework', () => s.detectFramework('app'))
    await call('refresh', () => s.refresh())
    if (round % 10 === 0) {
      await call('stop', () => s.stop(30))
      await call('start', () => s.start(30))
    }
  }
  // Cleanup goes direct (the proxy could leave it half done).
  trace('cleanup: delete sandboxes')
  for (const s of await direct.listSandboxes()) await s.delete().catch(() => {})
  trace('cleanup: close proxy')
  await proxy.close()
  trace('cleanup: stop backend')
  await backend.stop()
  trace('cleanup: done')
  // Let late rejections surface before counting them.
  await new Promise((r) => setTimeout(r, 200))
  process.off('unhandledRejection', onUnhandled)

  const total = proxy.total()
  console.log(
    `chaos: ${total} faults injected over ${round} rounds (${calls.ok + calls.failed} calls: ${calls.ok} ok, ${calls.failed} typed errors; ${proxy.figures.forwarded} requests forwarded)\n` +
      `faults: ${JSON.stringify(proxy.figures.faults)}\nerror codes: ${JSON.stringify(calls.codes)}`,
  )
  assert.deepEqual(problems, [])
  assert.deepEqual(unhandled.map(String), [])
  assert.ok(total >= MIN_FAULTS, `only ${total} faults injected`)
  assert.ok(calls.ok > 0 && calls.failed > 0)
})
