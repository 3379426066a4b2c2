// The browser check end to end: a Vite React app (real npm install inside a sandbox of the
// embedded backend, real Vite dev server, real headless Chromium) whose pages work, throw in a
// useEffect, render nothing, import a missing module at run time, or never settle.
import test from 'node:test'
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { inflateSync } from 'node:zlib'
import { addon, privateHome, tempDir } from './helpers.mjs'
import { createRepo, startGitHttp } from '../crates/testkit/js/forge-local.mjs'

privateHome('browser')
const { Daytona, closePreviewBrowser } = addon()
const daytona = new Daytona({ backend: 'local' })
const TOKEN = 'ghp_Browser0Secret0Token01234567890'

const page = (entry) =>
  `<!doctype html><html><head><title>${entry}</title></head><body><div id="root"></div><script type="module" src="/src/${entry}.js"></script></body></html>\n`
const react = `import React, { useEffect } from 'react'\nimport { createRoot } from 'react-dom/client'\nconst h = React.createElement\n`
const mount = `createRoot(document.getElementById('root')).render(h(App))\n`

const APP = {
  'package.json': JSON.stringify({
    name: 'vite-react-pages',
    private: true,
    type: 'module',
    scripts: { dev: 'vite' },
    dependencies: { react: '18.3.1', 'react-dom': '18.3.1' },
    devDependencies: { vite: '5.4.11' },
  }),
  'index.html': page('ok'),
  'throws.html': page('throws'),
  'blank.html': page('blank'),
  'missing.html': page('missing'),
  'never.html': page('never'),
  'src/ok.js': `${react}function App() { return h('h1', { style: { color: '#c00', fontSize: '64px' } }, 'hello from react') }\n${mount}`,
  'src/throws.js': `${react}function App() {\n  useEffect(() => { throw new Error('VITE_API_URL is not set') }, [])\n  return h('p', null, 'starting')\n}\n${mount}`,
  'src/blank.js': `${react}function App() { return null }\n${mount}`,
  // Not analysable by Vite (so not a transform error the HTTP check would see): only the
  // browser finds the module missing.
  'src/missing.js': `${react}const name = './not-' + 'there.js'\nimport(/* @vite-ignore */ name).then((m) => m.start())\nfunction App() { return h('p', null, 'loading') }\n${mount}`,
  'src/never.js': `${react}setInterval(() => fetch('/api/poll').catch(() => {}), 150)\nfunction App() { return h('h1', null, 'polling forever') }\n${mount}`,
}

/** Decodes an 8-bit RGB(A) PNG (what Chromium writes): `{ width, height, pixels }`. */
function decodePng(buf) {
  assert.deepEqual([...buf.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG signature')
  let at = 8
  let width, height, channels
  const idat = []
  while (at < buf.length) {
    const len = buf.readUInt32BE(at)
    const type = buf.toString('latin1', at + 4, at + 8)
    const data = buf.subarray(at + 8, at + 8 + len)
    if (type === 'IHDR') {
      width = data.readUInt32BE(0)
      height = data.readUInt32BE(4)
      assert.equal(data[8], 8, 'bit depth')
      channels = { 2: 3, 6: 4 }[data[9]]
      assert.ok(channels, `colour type ${data[9]}`)
    } else if (type === 'IDAT') idat.push(data)
    at += 12 + len
  }
  const raw = inflateSync(Buffer.concat(idat))
  const stride = width * channels
  const pixels = Buffer.alloc(stride * height)
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]
    for (let x = 0; x < stride; x++) {
      const v = raw[y * (stride + 1) + 1 + x]
      const a = x >= channels ? pixels[y * stride + x - channels] : 0
      const b = y > 0 ? pixels[(y - 1) * stride + x] : 0
      const c = x >= channels && y > 0 ? pixels[(y - 1) * stride + x - channels] : 0
      const p = a + b - c
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c
      pixels[y * stride + x] = (v + [0, a, b, (a + b) >> 1, paeth][filter]) & 0xff
    }
  }
  return { width, height, channels, pixels }
}

let git
let r // the working app's preview (kept for every test)
test.before(async () => {
  const root = tempDir('browser-repos')
  createRepo(root, 'vite-react.git', 'main', APP)
  git = await startGitHttp(root, null, TOKEN)
})
test.after(async () => {
  if (r) await (await daytona.getSandbox(r.sandboxId)).delete()
  await git?.close()
  await closePreviewBrowser()
})

/** verifyPreview of `path` in the working app's sandbox, with the browser check. */
const verifyPage = (path, browser = true) =>
  daytona.verifyPreview({ sandboxId: r.sandboxId, port: r.port, sessionId: r.sessionId, commandId: r.commandId, path, browser })
const failure = (p) => p.then((v) => assert.fail(`should fail: ${JSON.stringify(v.browser ?? v)}`), (e) => e)

test('a working Vite React app in a private sandbox: verified in the browser, screenshot stored and returned by checkHealth', { timeout: 300_000 }, async () => {
  r = await daytona.cloneAndPreview({ repoUrl: git.url('vite-react.git'), token: TOKEN, browser: { saveScreenshot: true } })
  assert.ok(r.token, 'a private sandbox: the browser had to send the token')
  const b = r.verify.browser
  assert.equal(r.verify.ok, true)
  assert.equal(b.ok, true, JSON.stringify(b.errors))
  assert.equal(b.reason, 'OK')
  assert.deepEqual(b.errors, [])
  assert.equal(b.title, 'ok')
  assert.equal(b.settled, true)
  for (const k of ['launchMs', 'loadMs', 'settleMs', 'inspectMs', 'totalMs']) assert.equal(typeof b.timings[k], 'number', k)
  const png = decodePng(Buffer.from(b.screenshot.png, 'base64'))
  assert.deepEqual([png.width, png.height], [1280, 800])
  assert.deepEqual([b.screenshot.width, b.screenshot.height], [1280, 800])
  const first = png.pixels.subarray(0, png.channels)
  let differs = false
  let red = false
  for (let i = 0; i < png.pixels.length; i += png.channels) {
    const [R, G, B] = png.pixels.subarray(i, i + 3)
    if (!differs && !png.pixels.subarray(i, i + png.channels).equals(first)) differs = true
    if (R > 150 && G < 80 && B < 80) red = true
  }
  assert.ok(differs, 'the screenshot is not all one colour')
  assert.ok(red, 'the red heading is in the screenshot')
  assert.ok(!JSON.stringify(r).includes(TOKEN))
  const health = await daytona.checkHealth({ sandboxId: r.sandboxId, screenshot: true })
  assert.equal(health.screenshot.png, b.screenshot.png, 'checkHealth returns the stored screenshot')
  assert.deepEqual([health.screenshot.width, health.screenshot.height], [1280, 800])
  const without = await daytona.checkHealth({ sandboxId: r.sandboxId })
  assert.equal('screenshot' in without, false)
})

test('an app that throws in a useEffect fails with BROWSER_ERROR and the message', { timeout: 120_000 }, async () => {
  assert.ok(r, 'the working app was previewed')
  const err = await failure(verifyPage('/throws.html'))
  assert.equal(err.code, 'PREVIEW_VERIFY_FAILED', err.message)
  assert.equal(err.reason, 'BROWSER_ERROR')
  assert.match(err.excerpt, /Error: VITE_API_URL is not set/)
  assert.match(err.excerpt, /\/src\/throws\.js/, 'where it was thrown')
})

test('an app that renders nothing fails with BLANK_PAGE', { timeout: 120_000 }, async () => {
  assert.ok(r, 'the working app was previewed')
  const err = await failure(verifyPage('/blank.html'))
  assert.equal(err.reason, 'BLANK_PAGE', err.message)
  assert.match(err.excerpt, /rendered nothing/)
})

test('an entry that imports a missing module at run time fails with BROWSER_ERROR', { timeout: 120_000 }, async () => {
  assert.ok(r, 'the working app was previewed')
  // Over HTTP the page and its entry module are fine.
  const http = await verifyPage('/missing.html', false)
  assert.equal(http.ok, true)
  assert.equal('browser' in http, false, 'no browser check unless asked')
  const err = await failure(verifyPage('/missing.html'))
  assert.equal(err.reason, 'BROWSER_ERROR', err.message)
  assert.match(err.excerpt, /not-there\.js/)
})

test('a page that never settles is inspected when timeoutMs is up', { timeout: 120_000 }, async () => {
  assert.ok(r, 'the working app was previewed')
  const v = await verifyPage('/never.html', { timeoutMs: 3000 })
  assert.equal(v.ok, true)
  assert.equal(v.browser.settled, false)
  assert.equal(v.browser.ok, true)
})

test('without a browser the check is skipped, not failed', { timeout: 120_000 }, async () => {
  assert.ok(r, 'the working app was previewed')
  await closePreviewBrowser()
  const path = process.env.PATH
  const empty = tempDir('no-browser')
  process.env.PATH = empty
  let v
  try {
    v = await verifyPage('/throws.html')
  } finally {
    process.env.PATH = path
    rmSync(empty, { recursive: true, force: true })
  }
  assert.equal(v.ok, true)
  assert.deepEqual(v.browser, { skipped: 'no browser' })
  // A misspelt option is named.
  const bad = await failure(Promise.resolve().then(() => verifyPage('/', { timeoutMS: 10 })))
  assert.equal(bad.code, 'DAYTONA_INVALID_ARGUMENT')
  assert.match(bad.message, /unknown option `timeoutMS` in browser.*'timeoutMs'/)
})
