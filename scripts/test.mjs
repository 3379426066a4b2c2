// `npm test`: every test. Rust tests (cargo test, real HTTP against the embedded backend),
// then the Node tests (node:test) through the built addon. Fails if either fails.
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { readdirSync } from 'node:fs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const step = (cmd, args) => {
  console.log(`\n$ ${cmd} ${args.join(' ')}`)
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' })
  return r.status === 0
}
const files = readdirSync(join(root, '__test__')).filter((f) => f.endsWith('.test.mjs')).map((f) => join('__test__', f))
const rust = step('cargo', ['test', '--workspace', '--no-fail-fast'])
// The tests' embedded backends take their sandboxes down with them (a backend's default is to
// leave them running for the next one on the same home).
process.env.FORGE_STOP_SANDBOXES_ON_EXIT = '1'
const node = step(process.execPath, ['--test', '--test-concurrency=1', ...files])
if (!rust || !node) {
  console.error(`\nnpm test failed: rust ${rust ? 'ok' : 'FAILED'}, node ${node ? 'ok' : 'FAILED'}`)
  process.exit(1)
}
