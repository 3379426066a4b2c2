// The package entry on a platform with no binary: the error names the platform and arch, the
// native packages that exist (package.json napi.targets), whether the matching one is
// installed, and the WebAssembly fallback's status, never napi-rs's optional-dependencies text
// alone. Each case runs the real entry files (index.js, binding.js, loader-error.js, index.mjs,
// package.json), copied into a fresh folder with the node_modules the case needs, in a child
// Node whose process.platform / process.arch are overridden before anything loads.
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { after, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { tempDir } from './helpers.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const WASI = '@smartapi-forge/daytona-wasm32-wasi'
const dirs = []
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })))

/** A copy of the package's entry files in a fresh folder; `modules` are extra packages. */
function install(modules = {}) {
  const dir = tempDir('loader')
  dirs.push(dir)
  for (const f of ['index.js', 'binding.js', 'loader-error.js', 'wasm-fetch.js', 'index.mjs', 'package.json']) copyFileSync(join(root, f), join(dir, f))
  for (const [name, files] of Object.entries(modules)) {
    const p = join(dir, 'node_modules', name)
    mkdirSync(p, { recursive: true })
    for (const [file, content] of Object.entries(files)) {
      if (content.symlink) symlinkSync(content.symlink, join(p, file))
      else writeFileSync(join(p, file), content)
    }
  }
  return dir
}

/** This environment less napi-rs's loader switches (a suite run under NAPI_RS_FORCE_WASI=1 included). */
const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('NAPI_RS_')))

const PRELOAD = `for (const [k, v] of [['platform', process.env.FAKE_PLATFORM], ['arch', process.env.FAKE_ARCH]]) if (v) Object.defineProperty(process, k, { value: v })`

/** Loads the entry in a child Node as `platform`/`arch`; returns what it threw, or what it exported. */
function load(dir, platform, arch, { env = {} } = {}) {
  const preload = join(dir, 'fake-platform.cjs')
  writeFileSync(preload, PRELOAD)
  const entry = JSON.stringify(join(dir, 'index.js'))
  const report = `const e = (() => { try { require(${entry}); return null } catch (e) { return e } })()
    const b = e ? null : require(${entry})
    console.log(JSON.stringify(e ? { message: e.message, code: e.code, platform: e.platform, arch: e.arch, packages: e.packages, wasi: e.wasi, cause: !!e.cause } : { loaded: typeof b.Daytona, detect: typeof b.detectFrameworkSync }))`
  const out = execFileSync(process.execPath, ['--require', preload, '-e', report], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...cleanEnv(), ...env, FAKE_PLATFORM: platform, FAKE_ARCH: arch },
  })
  return JSON.parse(out.trim().split('\n').pop())
}

/** The native packages npm/ holds (each folder's package.json name), as the error must list them. */
const nativePackages = () =>
  readdirSync(join(root, 'npm'))
    .map((d) => JSON.parse(readFileSync(join(root, 'npm', d, 'package.json'), 'utf8')))
    .filter((p) => p.main && p.main.endsWith('.node'))
    .map((p) => p.name)
    .sort()

test('an unsupported platform: named, every native package listed, the WASI fallback not installed', () => {
  const e = load(install(), 'freebsd', 'riscv64')
  assert.equal(e.code, 'DAYTONA_NO_BINDING')
  assert.match(e.message, /no binding loads on freebsd riscv64/)
  assert.match(e.message, /No native binary is built for freebsd-riscv64/)
  for (const p of nativePackages()) assert.ok(e.message.includes(p), `${p} listed in: ${e.message}`)
  assert.deepEqual([...e.packages].sort(), nativePackages())
  assert.match(e.message, new RegExp(`WebAssembly fallback .*NAPI_RS_FORCE_WASI=1.*${WASI} is not installed`))
  assert.deepEqual(e.wasi, { package: WASI, installed: false, loaded: false })
  assert.doesNotMatch(e.message, /npm has a bug/)
  assert.equal(e.cause, true, "napi-rs's own error is kept as the cause")
})

test('the same error through the ESM entry, as an app that imports it sees it', () => {
  const dir = install()
  writeFileSync(join(dir, 'fake-platform.cjs'), PRELOAD)
  const r = spawnSync(process.execPath, ['--require', join(dir, 'fake-platform.cjs'), '--input-type=module', '-e', `import ${JSON.stringify(join(dir, 'index.mjs'))}`], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...cleanEnv(), FAKE_PLATFORM: 'freebsd', FAKE_ARCH: 'riscv64' },
  })
  assert.notEqual(r.status, 0)
  assert.match(r.stderr, /no binding loads on freebsd riscv64/)
  assert.match(r.stderr, /code: 'DAYTONA_NO_BINDING'/)
  assert.match(r.stderr, new RegExp(`${WASI} is not installed`))
})

test("a supported platform whose package npm left out: names the package to install, not 'unsupported'", () => {
  const e = load(install(), 'darwin', 'arm64')
  assert.match(e.message, /no binding loads on darwin arm64/)
  assert.match(e.message, /@smartapi-forge\/daytona-darwin-arm64, is not installed/)
  assert.match(e.message, /npm install @smartapi-forge\/daytona-darwin-arm64/)
  assert.doesNotMatch(e.message, /No native binary is built/)
})

test('a matching package that fails to load: its own error, not install advice', () => {
  const dir = install({
    '@smartapi-forge/daytona-darwin-x64': {
      'package.json': JSON.stringify({ name: '@smartapi-forge/daytona-darwin-x64', version: pkg.version, main: 'daytona.darwin-x64.node' }),
      'daytona.darwin-x64.node': 'not a binary',
    },
  })
  const e = load(dir, 'darwin', 'x64')
  assert.match(e.message, /@smartapi-forge\/daytona-darwin-x64, is installed but failed to load: .*daytona\.darwin-x64\.node/)
  assert.doesNotMatch(e.message, /npm install @smartapi-forge\/daytona-darwin/)
})

test('a WASI fallback that is installed but does not load: says so, with its error', () => {
  const dir = install({
    [WASI]: {
      'package.json': JSON.stringify({ name: WASI, version: pkg.version, main: 'index.js' }),
      'index.js': "throw new Error('this WebAssembly runtime needs threads')",
    },
  })
  const e = load(dir, 'freebsd', 'x64')
  assert.match(e.message, /No native binary is built for freebsd-x64/)
  assert.match(e.message, new RegExp(`${WASI} is installed but failed to load: this WebAssembly runtime needs threads`))
  assert.deepEqual(e.wasi, { package: WASI, installed: true, loaded: false, error: 'this WebAssembly runtime needs threads' })
})

test('Windows x64 without its package: names win32-x64-gnu to install, and the WASI fallback', () => {
  const e = load(install(), 'win32', 'x64')
  assert.match(e.message, /no binding loads on win32 x64/)
  assert.match(e.message, /@smartapi-forge\/daytona-win32-x64-gnu, is not installed/)
  assert.doesNotMatch(e.message, /No native binary is built/)
  assert.match(e.message, new RegExp(`WebAssembly fallback .*${WASI} is not installed`))
})

// This Node is not MinGW-built (its process.config is the official one's kind), so napi-rs's
// loader alone would look for win32-x64-msvc only; index.js hands it the gnu package. The
// binary in the package is this machine's addon: what is under test is which file is chosen
// (the real Windows binary is run under Wine by scripts/smoke-windows.sh).
test('Windows x64 on a non-MinGW Node: the win32-x64-gnu package is the one loaded', () => {
  const name = '@smartapi-forge/daytona-win32-x64-gnu'
  const dir = install({
    [name]: {
      'package.json': JSON.stringify({ name, version: pkg.version, main: 'daytona.win32-x64-gnu.node' }),
      'daytona.win32-x64-gnu.node': readFileSync(join(root, 'daytona.linux-x64-gnu.node')),
    },
  })
  assert.deepEqual(load(dir, 'win32', 'x64'), { loaded: 'function', detect: 'function' })
  const broken = install({
    [name]: {
      'package.json': JSON.stringify({ name, version: pkg.version, main: 'daytona.win32-x64-gnu.node' }),
      'daytona.win32-x64-gnu.node': 'not a binary',
    },
  })
  const e = load(broken, 'win32', 'x64')
  assert.match(e.message, /@smartapi-forge\/daytona-win32-x64-gnu, is installed but failed to load: .*daytona\.win32-x64-gnu\.node/)
})

test('NAPI_RS_FORCE_WASI=error without the WASI package: says only WebAssembly was allowed, not that the native binary is missing', () => {
  const e = load(install(), 'linux', 'x64', { env: { NAPI_RS_FORCE_WASI: 'error' } })
  assert.match(e.message, /no binding loads on linux x64/)
  assert.match(e.message, /NAPI_RS_FORCE_WASI=error .* allows the WebAssembly build only/)
  assert.match(e.message, new RegExp(`${WASI} is not installed`))
  assert.doesNotMatch(e.message, /is not installed\. npm leaves out/)
})

// The README's NAPI_RS_FORCE_WASI=1: the generated loader alone reads '1' as unset and loads
// the native binary, so a suite run "under WASI" would test native code. index.js makes it mean
// WASI only. The stand-in WASI package exports a `Daytona` but no `detectFrameworkSync`, which
// tells it apart from the native addon (both are present in these cases).
test('NAPI_RS_FORCE_WASI=1 loads the WASI package, not the native binary next to it', () => {
  const wasi = {
    'package.json': JSON.stringify({ name: WASI, version: pkg.version, main: 'index.js' }),
    'index.js': 'exports.Daytona = function Daytona() {}',
  }
  const native = {
    'package.json': JSON.stringify({ name: '@smartapi-forge/daytona-linux-x64-gnu', version: pkg.version, main: 'daytona.linux-x64-gnu.node' }),
    'daytona.linux-x64-gnu.node': { symlink: join(root, 'daytona.linux-x64-gnu.node') },
  }
  const dir = install({ [WASI]: wasi, '@smartapi-forge/daytona-linux-x64-gnu': native })
  assert.deepEqual(load(dir, 'linux', 'x64'), { loaded: 'function', detect: 'function' }, 'without the flag: native')
  assert.deepEqual(load(dir, 'linux', 'x64', { env: { NAPI_RS_FORCE_WASI: '1' } }), { loaded: 'function', detect: 'undefined' })
})

test('NAPI_RS_FORCE_WASI=1 without the WASI package: the error says WASI only was allowed, native is not used', () => {
  const e = load(install(), 'linux', 'x64', { env: { NAPI_RS_FORCE_WASI: '1' } })
  assert.equal(e.code, 'DAYTONA_NO_BINDING')
  assert.match(e.message, /NAPI_RS_FORCE_WASI=1 .* allows the WebAssembly build only/)
  assert.match(e.message, new RegExp(`${WASI} is not installed`))
})
