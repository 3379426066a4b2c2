// `npm test`: every test. Rust tests (cargo test, real HTTP against the embedded backend),
// then the Node tests (node:test) through the built addon, then the WASI pass: the client,
// detection and pipeline test files again on the WebAssembly build (NAPI_RS_FORCE_WASI=1),
// each against a native `forge local` it starts (__test__/helpers.mjs `sandboxBackend`).
// The WASI pass runs when `npm run build:wasm` has made the build; where the run requires it
// (CI: FORGE_REQUIRE_WASM=1, set by .ci/run, or CI) its absence fails. Fails if any part fails.
//
//   node scripts/test.mjs           everything
//   node scripts/test.mjs --wasi    the WASI pass alone
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { readdirSync } from 'node:fs'
import { sandboxLeaks } from './sandbox-leaks.mjs'
import { wasmBuild } from '../__test__/helpers.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const step = (cmd, args, env = {}) => {
  const shown = Object.entries(env).map(([k, v]) => `${k}=${v} `).join('')
  console.log(`\n$ ${shown}${cmd} ${args.join(' ')}`)
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } })
  return r.status === 0
}
const files = readdirSync(join(root, '__test__')).filter((f) => f.endsWith('.test.mjs')).map((f) => join('__test__', f))

/**
 * The files of the WASI pass: the client (lifecycle, exec, sessions and logs, files, typed
 * errors), detection (a folder, a file map, a sandbox) and the pipeline (with its log
 * streams). The other files test
 * what the WebAssembly build does not have (the embedded backend in-process, the CLI, the
 * browser check, the loader) or the official SDKs against the backend, which are the same
 * whichever build the package loads.
 */
const WASI_FILES = ['spine', 'errors', 'fs', 'process', 'detect', 'detect-generators', 'detect-sandbox', 'pipeline', 'streams']
  .map((name) => join('__test__', `${name}.test.mjs`))

const leaks = sandboxLeaks(root)
/** A step passed and left nothing running (checked even when it failed, so nothing leaks). */
const checked = (passed, after) => {
  const clean = leaks.noneLeft(after)
  return passed && clean
}

// Two test files at a time (node's default here would be one, a core less than the machine
// has): most of a file's time is spent waiting on sandboxes, dev servers and package
// managers, and two at once took the Node tests from ~14 to ~8 minutes on the 2-core dev
// machine with both cores kept busy by other processes. No test depends on running alone:
// each has its own backend, home, ports and markers, and waits for the state it needs.
const wasiOnly = process.argv.includes('--wasi')
const rust = wasiOnly || checked(step('cargo', ['test', '--workspace', '--no-fail-fast']), 'cargo test')
// The tests' embedded backends take their sandboxes down with them (a backend's default is to
// leave them running for the next one on the same home).
process.env.FORGE_STOP_SANDBOXES_ON_EXIT = '1'
const node = wasiOnly || checked(step(process.execPath, ['--test', '--test-concurrency=2', ...files]), 'the Node tests')
const wasm = wasmBuild()
let wasi = true
if (wasm.present) {
  wasi = checked(step(process.execPath, ['--test', '--test-concurrency=2', ...WASI_FILES], { NAPI_RS_FORCE_WASI: '1' }), 'the WASI pass')
} else if (wasm.required) {
  console.error(`\nthe WASI pass cannot run: ${wasm.path} is absent (run \`npm run build:wasm\`), and this run requires it (FORGE_REQUIRE_WASM=1 or CI)`)
  wasi = false
} else {
  console.log(`\nthe WASI pass is skipped: the WebAssembly build is absent (${wasm.path}); \`npm run build:wasm\` makes it`)
}
if (!rust || !node || !wasi) {
  const status = (ok) => (wasiOnly && ok === true ? 'not run' : ok ? 'ok' : 'FAILED')
  console.error(`\nnpm test failed: rust ${status(rust)}, node ${status(node)}, node on WASI ${wasi ? 'ok' : 'FAILED'}`)
  process.exit(1)
}
