// detectFramework / detectFrameworkSync through the addon: folders, in-memory maps, options,
// monorepos and typed errors. Fixtures are the same JSON files the Rust tests use.
import test from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { addon, tempDir } from './helpers.mjs'

const { detectFramework, detectFrameworkSync } = addon()
const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'crates', 'detect', 'tests', 'fixtures')
const fixture = (name) => JSON.parse(readFileSync(join(fixtures, `${name}.json`), 'utf8'))

function writeTree(files) {
  const dir = tempDir('detect-js')
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true })
    writeFileSync(join(dir, path), content)
  }
  return dir
}

test('a folder and the same files in memory give the same plain, JSON-safe answer', async () => {
  const { files } = fixture('t3')
  const dir = writeTree(files)
  try {
    const fromFolder = await detectFramework(dir)
    const fromMap = detectFrameworkSync(files)
    assert.deepEqual(JSON.parse(JSON.stringify(fromFolder)), fromFolder)
    assert.deepEqual(fromFolder, fromMap)
    assert.equal(fromFolder.framework.id, 'nextjs')
    assert.equal(fromFolder.packageManager.name, 'pnpm')
    assert.equal(fromFolder.packageManager.source, 'packageManager')
    assert.equal(fromFolder.installCommand, 'pnpm install --frozen-lockfile')
    assert.equal(fromFolder.devCommand, 'pnpm exec next dev --turbo -H 0.0.0.0 -p 3000')
    assert.equal(fromFolder.port, 3000)
    assert.equal(fromFolder.env.SKIP_ENV_VALIDATION, '1')
    assert.equal(fromFolder.root, '.')
    assert.ok(fromFolder.confidence > 0.8)
    assert.ok(fromFolder.evidence.length > 0)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('absent values are null, as the typings say', () => {
  const r = detectFrameworkSync(fixture('nothing').files)
  assert.equal(r.framework, null)
  assert.equal(r.devCommand, null)
  assert.equal(r.port, null)
  assert.equal(r.monorepo, null)
  assert.deepEqual(r.apps, [])
  assert.ok(r.warnings.some((w) => w.code === 'NO_FRAMEWORK'))
  const s = detectFrameworkSync(fixture('static').files)
  assert.equal(s.installCommand, null)
  assert.equal(s.framework.version, null)
})

test('detectFramework also takes a files map (async form)', async () => {
  const r = await detectFramework(fixture('vite-react').files)
  assert.equal(r.framework.id, 'vite-react')
  assert.equal(r.env.__VITE_ADDITIONAL_SERVER_ALLOWED_HOSTS, '.daytona.work')
})

test('options: port and allowed hosts reach the command and env', () => {
  const r = detectFrameworkSync(fixture('vite-react').files, { port: 4100, allowedHosts: ['.example.dev', 'x.test'] })
  assert.equal(r.devCommand, 'npx vite --host 0.0.0.0 --port 4100 --strictPort')
  assert.equal(r.port, 4100)
  assert.equal(r.env.__VITE_ADDITIONAL_SERVER_ALLOWED_HOSTS, '.example.dev,x.test')
  assert.throws(() => detectFrameworkSync({}, { port: 70000 }), (e) => e.code === 'DAYTONA_INVALID_ARGUMENT')
})

test('monorepo: the top-level pick, every app with its own answer, root override', () => {
  const { files } = fixture('mono-pnpm-turbo')
  const r = detectFrameworkSync(files)
  assert.equal(r.root, 'apps/web')
  assert.deepEqual(r.monorepo.tools, ['pnpm-workspaces', 'turbo'])
  assert.deepEqual(r.apps.map((a) => [a.root, a.framework.id, a.port]), [
    ['apps/docs', 'nextjs', 3001],
    ['apps/web', 'nextjs', 3000],
  ])
  assert.equal(r.apps[0].installRoot, '.')
  const docs = detectFrameworkSync(files, { root: 'apps/docs' })
  assert.equal(docs.root, 'apps/docs')
  assert.equal(docs.devCommand, 'pnpm exec next dev -H 0.0.0.0 -p 3001')
})

test('a subfolder of a git repository: lockfile found walking up, answer for that folder', async () => {
  const dir = writeTree({ 'pnpm-lock.yaml': '', 'pnpm-workspace.yaml': 'packages:\n  - apps/*\n', 'package.json': '{}', 'apps/site/package.json': '{"devDependencies":{"astro":"^5"},"scripts":{"dev":"astro dev"}}' })
  mkdirSync(join(dir, '.git'))
  try {
    const r = await detectFramework(join(dir, 'apps', 'site'))
    assert.equal(r.framework.id, 'astro')
    assert.equal(r.root, 'apps/site')
    assert.equal(r.packageManager.name, 'pnpm')
    assert.equal(r.installRoot, '.')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('bad input: warnings, not crashes; missing folders reject with a code', async () => {
  const dir = writeTree({ 'package.json': '{ "dependencies": ', 'index.html': '<h1>x</h1>' })
  symlinkSync(dir, join(dir, 'loop'))
  try {
    const r = await detectFramework(dir)
    assert.ok(r.warnings.some((w) => w.code === 'PACKAGE_JSON_INVALID'))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  await assert.rejects(detectFramework('/no/such/folder'), (e) => e instanceof Error && e.code === 'DETECT_NOT_FOUND')
  assert.throws(() => detectFrameworkSync({ 'package.json': '{}' }, { root: 'apps/x' }), (e) => e.code === 'DETECT_ROOT_NOT_FOUND')
  assert.throws(() => detectFrameworkSync({ 'package.json': '{}' }, { root: '../up' }), (e) => e.code === 'DETECT_INVALID_ROOT')
})

test('every fixture answers through the addon as the Rust tests expect (framework id)', () => {
  for (const f of readdirSync(fixtures).filter((f) => f.endsWith('.json'))) {
    const { files, expect } = JSON.parse(readFileSync(join(fixtures, f), 'utf8'))
    const r = detectFrameworkSync(files, expect.options ?? {})
    if ('framework' in expect) assert.equal(r.framework?.id ?? null, expect.framework, f)
    if ('devCommand' in expect) assert.equal(r.devCommand, expect.devCommand, f)
  }
})
