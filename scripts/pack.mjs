#!/usr/bin/env node
// Packs the package the way users get it: the main package (JS loader, ESM entry, typings;
// no binary) and the per-platform package `@smartapi-forge/daytona-linux-x64-gnu` (the .node
// only), as two npm tarballs in one folder (default `dist/`).
//
// It does what `napi artifacts` + `napi prepublish` do before `npm publish`, without
// publishing: the built `daytona.linux-x64-gnu.node` is copied into a staged copy of
// `npm/linux-x64-gnu`, and the staged main package.json gets
// `optionalDependencies: { "@smartapi-forge/daytona-linux-x64-gnu": "<version>" }`, so npm
// installs the right binary for the platform (napi-rs's optionalDependencies pattern, as
// @node-rs/argon2 ships). Both tarballs install from local files (`npm install a.tgz b.tgz`).
//
//   node scripts/pack.mjs [--out dist] [--node path/to/daytona.linux-x64-gnu.node]
//
// The .node is whatever `napi build --platform` last wrote at the root (debug or `--release`),
// or $FORGE_PACK_NODE when set (e.g. a stripped copy of a large debug build).
import { execFileSync, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createServer } from 'node:net'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const PLATFORM = 'linux-x64-gnu'

const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'))
const writeJson = (file, value) => writeFileSync(file, JSON.stringify(value, null, 2) + '\n')

/** Runs `npm pack --json` in `dir` into `outDir`; returns { file, files: [paths], size, unpackedSize }. */
function npmPack(dir, outDir) {
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', outDir], {
    cwd: dir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const [info] = JSON.parse(out)
  return {
    file: join(outDir, info.filename),
    name: info.name,
    version: info.version,
    files: info.files.map((f) => f.path),
    size: info.size,
    unpackedSize: info.unpackedSize,
  }
}

/**
 * Stages and packs both packages. Returns `{ main, platform, outDir, nodeFile }`, where
 * `main`/`platform` are `{ file, name, version, files, size, unpackedSize }`.
 */
export function pack({ outDir = join(root, 'dist'), nodeFile } = {}) {
  const pkg = readJson(join(root, 'package.json'))
  const binaryName = pkg.napi?.binaryName ?? 'daytona'
  const nodeName = `${binaryName}.${PLATFORM}.node`
  nodeFile = resolve(nodeFile ?? process.env.FORGE_PACK_NODE ?? join(root, nodeName))
  if (!existsSync(nodeFile)) {
    throw new Error(`${nodeFile} is missing: build it first (npx napi build --platform [--release])`)
  }
  outDir = resolve(outDir)
  const stage = join(outDir, 'stage')
  rmSync(stage, { recursive: true, force: true })
  mkdirSync(outDir, { recursive: true })

  // The platform package: npm/linux-x64-gnu plus the binary (what `napi artifacts` copies).
  const platDir = join(stage, PLATFORM)
  mkdirSync(platDir, { recursive: true })
  const platPkg = readJson(join(root, 'npm', PLATFORM, 'package.json'))
  platPkg.version = pkg.version
  writeJson(join(platDir, 'package.json'), platPkg)
  const platReadme = join(root, 'npm', PLATFORM, 'README.md')
  if (existsSync(platReadme)) copyFileSync(platReadme, join(platDir, 'README.md'))
  copyFileSync(nodeFile, join(platDir, nodeName))

  // The main package: the `files` of package.json, a manifest without dev-only fields, and the
  // platform package as an optional dependency (what `napi prepublish` writes).
  const mainDir = join(stage, 'main')
  mkdirSync(mainDir, { recursive: true })
  for (const f of [...pkg.files, 'README.md', 'LICENSE']) {
    if (existsSync(join(root, f))) {
      mkdirSync(dirname(join(mainDir, f)), { recursive: true })
      copyFileSync(join(root, f), join(mainDir, f))
    }
    else if (pkg.files.includes(f)) throw new Error(`package.json "files" lists ${f}, which does not exist`)
  }
  const manifest = { ...pkg }
  delete manifest.devDependencies
  delete manifest.scripts // no lifecycle scripts run at install (pretest etc. are for this repo)
  manifest.optionalDependencies = { ...pkg.optionalDependencies, [platPkg.name]: pkg.version }
  writeJson(join(mainDir, 'package.json'), manifest)

  const main = npmPack(mainDir, outDir)
  const platform = npmPack(platDir, outDir)
  rmSync(stage, { recursive: true, force: true })
  return { main, platform, outDir, nodeFile, nodeBytes: statSync(nodeFile).size }
}

/**
 * `pack()` once per set of inputs: the tarballs are kept in `dist/packed-<hash>/`, where the
 * hash covers package.json, the entry files, the platform manifest and the .node's size and
 * mtime. Tests call this, so several test files share one pack (it compresses ~14 MB).
 */
export function packCached({ nodeFile } = {}) {
  const pkg = readJson(join(root, 'package.json'))
  nodeFile = resolve(nodeFile ?? process.env.FORGE_PACK_NODE ?? join(root, `${pkg.napi?.binaryName ?? 'daytona'}.${PLATFORM}.node`))
  const h = createHash('sha256')
  for (const f of ['package.json', ...pkg.files, join('npm', PLATFORM, 'package.json')]) {
    h.update(f).update(existsSync(join(root, f)) ? readFileSync(join(root, f)) : '')
  }
  if (existsSync(nodeFile)) {
    const st = statSync(nodeFile)
    h.update(`${nodeFile}:${st.size}:${st.mtimeMs}`)
  }
  const dir = join(root, 'dist', `packed-${h.digest('hex').slice(0, 16)}`)
  const infoFile = join(dir, 'pack.json')
  if (existsSync(infoFile)) return readJson(infoFile)
  mkdirSync(join(root, 'dist'), { recursive: true })
  const tmp = mkdtempSync(join(root, 'dist', 'tmp-'))
  const r = pack({ outDir: tmp, nodeFile })
  const rel = (p) => ({ ...p, file: join(dir, p.file.slice(tmp.length + 1)) })
  writeJson(join(tmp, 'pack.json'), { ...r, outDir: dir, main: rel(r.main), platform: rel(r.platform) })
  try {
    renameSync(tmp, dir)
  } catch {
    rmSync(tmp, { recursive: true, force: true }) // another process packed the same inputs
  }
  // Older packs (other inputs) untouched for 10 minutes are dropped: a debug .node is large.
  for (const e of readdirSync(join(root, 'dist'))) {
    const p = join(root, 'dist', e)
    if (/^(packed|tmp)-/.test(e) && p !== dir && Date.now() - statSync(p).mtimeMs > 600_000) rmSync(p, { recursive: true, force: true })
  }
  return readJson(infoFile)
}

/**
 * Installs the packed tarballs (and `extra` specs) into a fresh temp project, offline-capable
 * (local tarballs only). Returns the project folder.
 */
export function installPacked({ dir, packed = packCached(), extra = [], name = 'forge-packed-' } = {}) {
  dir ??= mkdtempSync(join(tmpdir(), name))
  if (!existsSync(join(dir, 'package.json'))) {
    writeJson(join(dir, 'package.json'), { name: 'packed-consumer', version: '1.0.0', private: true })
  }
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', packed.main.file, packed.platform.file, ...extra], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return dir
}

// ---- helpers of the tests that install the packed package (__test__/{pack,esm-cjs,inngest,nextjs})

/** Runs a command to its end without blocking the event loop: { status, signal, stdout, stderr }. */
export function spawnAsync(cmd, args, { timeout = 300_000, ...opts } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout)
    child.on('error', reject)
    child.on('close', (status, signal) => {
      clearTimeout(timer)
      resolve({ status, signal, stdout, stderr })
    })
  })
}

/** A free TCP port on 127.0.0.1 (for `next start -p`). */
export function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/** Polls `url` until it answers 2xx (a server starting): the response, or an error naming the last answer. */
export async function waitForOk(url, ms, init) {
  const end = Date.now() + ms
  let last
  while (Date.now() < end) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5_000), ...init })
      if (res.ok) return res
      last = `HTTP ${res.status}`
    } catch (e) {
      last = e.message
    }
    await new Promise((r) => setTimeout(r, 300))
  }
  throw new Error(`${url} did not answer within ${ms} ms: ${last}`)
}

/** A zero-dependency Node app for a git repository: `npm run dev` serves `text` on $PORT. */
export function helloApp(text) {
  return {
    'package.json': JSON.stringify({ name: 'hello-preview', version: '1.0.0', private: true, scripts: { dev: 'node server.js' } }, null, 2),
    'server.js': `const http = require('node:http')
const port = Number(process.env.PORT || 3000)
http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html' })
  res.end(${JSON.stringify(`<!doctype html><title>hello</title><h1>${text}</h1>`)})
}).listen(port, process.env.HOST || '0.0.0.0', () => console.log('listening on ' + port))
`,
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name) => {
    const i = process.argv.indexOf(name)
    return i > 0 ? process.argv[i + 1] : undefined
  }
  const r = pack({ outDir: arg('--out'), nodeFile: arg('--node') })
  for (const p of [r.main, r.platform]) {
    console.log(`${p.file}  (${p.name}@${p.version}, ${p.files.length} files, ${p.size} B packed, ${p.unpackedSize} B unpacked)`)
  }
}
