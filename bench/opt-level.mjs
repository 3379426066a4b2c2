#!/usr/bin/env node
// What the release profile's opt-level costs: two builds of the addon (say opt-level "z", the
// release profile, and "s"), each loaded through the package entry (NAPI_RS_NATIVE_LIBRARY_PATH)
// in fresh child processes, alternating A and B, on the same work:
//   - cold load: `require` of the package in a fresh process;
//   - detection: detectFrameworkSync over every fixture of crates/detect/tests/fixtures (the
//     addon's CPU-bound path), repeated, per detection;
// and the size of each file. Prints medians and B/A ratios. The HTTP paths are not measured:
// they wait on the network and the backend, not on the addon's code.
//
//   node bench/opt-level.mjs A.node B.node [--rounds 5] [--reps 200]
//
// Build B e.g. with CARGO_PROFILE_RELEASE_OPT_LEVEL=s CARGO_TARGET_DIR=target/size-s
// cargo build --release -p smartapi-forge-daytona, and copy its .so to a .node name.
import { execFileSync } from 'node:child_process'
import { statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const [a, b] = process.argv.slice(2, 4).map((p) => resolve(p))
if (!a || !b) {
  console.error('usage: node bench/opt-level.mjs A.node B.node [--rounds 5] [--reps 200]')
  process.exit(2)
}
const opt = (name, d) => {
  const i = process.argv.indexOf(name)
  return i === -1 ? d : Number(process.argv[i + 1])
}
const ROUNDS = opt('--rounds', 5)
const REPS = opt('--reps', 200)
const fixtures = join(root, 'crates', 'detect', 'tests', 'fixtures')

// One child: load time, then detections; prints {loadMs, perDetectionUs}.
const CHILD = `
const t0 = process.hrtime.bigint()
const { detectFrameworkSync } = require(${JSON.stringify(join(root, 'index.js'))})
const loadMs = Number(process.hrtime.bigint() - t0) / 1e6
const fs = require('fs'), path = require('path')
const dir = ${JSON.stringify(fixtures)}
const maps = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')).files).filter(Boolean)
for (const m of maps) detectFrameworkSync(m)
const t1 = process.hrtime.bigint()
for (let r = 0; r < ${REPS}; r++) for (const m of maps) detectFrameworkSync(m)
const perDetectionUs = Number(process.hrtime.bigint() - t1) / 1e3 / (${REPS} * maps.length)
console.log(JSON.stringify({ loadMs, perDetectionUs, detections: maps.length }))
`
const run = (file) =>
  JSON.parse(execFileSync(process.execPath, ['-e', CHILD], { encoding: 'utf8', env: { ...process.env, NAPI_RS_NATIVE_LIBRARY_PATH: file } }).trim())

const samples = { a: [], b: [] }
for (let r = 0; r < ROUNDS; r++) {
  samples.a.push(run(a))
  samples.b.push(run(b))
}
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]
const row = (label, key, digits) => {
  const ma = median(samples.a.map((s) => s[key]))
  const mb = median(samples.b.map((s) => s[key]))
  return `| ${label} | ${ma.toFixed(digits)} | ${mb.toFixed(digits)} | ${(mb / ma).toFixed(2)} |`
}
const mb = (f) => statSync(f).size / 1e6
console.log(`A = ${a}\nB = ${b}\n${ROUNDS} rounds alternating A and B, fresh process each; ${samples.a[0].detections} fixtures × ${REPS} repetitions per process\n`)
console.log('| measure | A | B | B / A |')
console.log('|---|---|---|---|')
console.log(`| file size (MB) | ${mb(a).toFixed(2)} | ${mb(b).toFixed(2)} | ${(mb(b) / mb(a)).toFixed(2)} |`)
console.log(row('cold require (ms, median)', 'loadMs', 1))
console.log(row('detectFrameworkSync (µs per detection, median)', 'perDetectionUs', 1))
