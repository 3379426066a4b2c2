#!/usr/bin/env node
// `npm run build:wasm`: the WebAssembly build (wasm32-wasip1-threads, docs/wasm.md) into its
// package, npm/wasm32-wasi (`@smartapi-forge/daytona-wasm32-wasi`): the .wasm and napi-rs's
// WASI loader files. Then links that folder as node_modules/@smartapi-forge/daytona-wasm32-wasi,
// where binding.js looks for it (as an install of the package would put it), so that
// `NAPI_RS_FORCE_WASI=1` loads it from this checkout.
//
//   node scripts/build-wasm.mjs [--release]     default: the test profile (no fat LTO)
//
// Needs the Rust target (`rustup target add wasm32-wasip1-threads`) and the devDependencies
// emnapi, @emnapi/core and @emnapi/runtime of one version (napi-rs's CLI checks they match).
// The rustflags the build needs are in .cargo/config.toml. Not part of `npm test`.
import { execFileSync } from 'node:child_process'
import { mkdirSync, rmSync, symlinkSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const out = join(root, 'npm', 'wasm32-wasi')
const profile = process.argv.includes('--release') ? ['--release'] : ['--profile', 'test-addon']
const started = Date.now()
execFileSync(
  join(root, 'node_modules', '.bin', 'napi'),
  ['build', '--platform', '--target', 'wasm32-wasip1-threads', ...profile, '--output-dir', out, '--no-js',
    // The typings are the native build's (same API); this build's copy is not kept.
    '--dts', join('..', '..', 'target', 'wasm32-wasi.index.d.ts')],
  { cwd: root, stdio: 'inherit', env: { ...process.env, CARGO_INCREMENTAL: '0' } },
)
const link = join(root, 'node_modules', '@smartapi-forge', 'daytona-wasm32-wasi')
mkdirSync(dirname(link), { recursive: true })
rmSync(link, { force: true, recursive: true })
symlinkSync(join('..', '..', 'npm', 'wasm32-wasi'), link, 'dir')
const wasm = join(out, 'daytona.wasm32-wasi.wasm')
console.error(`built ${wasm} (${(statSync(wasm).size / 1e6).toFixed(1)} MB) in ${Math.round((Date.now() - started) / 1000)} s; linked as ${link}`)
