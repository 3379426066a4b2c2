// Sandbox containers a test run left running. `npm test` (scripts/test.mjs) checks after each
// of its steps; `node scripts/sandbox-leaks.mjs` lists (and with --kill ends) those of this
// checkout now.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const pids = () => readdirSync('/proc').filter((p) => /^\d+$/.test(p))

/** This machine's processes, each `{ pid, argv }` (one that ends while being read is left
 * out). The one /proc lister of the scripts and the tests (`processesMentioning`). */
export function processes() {
  const out = []
  for (const pid of pids()) {
    try {
      out.push({ pid, argv: readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0') })
    } catch {}
  }
  return out
}
const parentOf = (pid) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[1]
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

/**
 * The sandbox containers started from the checkout at `root` that are running: each one's
 * runtime (`forge-sandbox-<hash> start --root <home>/sandboxes/<id>/root …`, the monitor
 * outside the sandbox) has the working folder of the backend that started it, which for the
 * tests' backends is in the checkout. Map of pid to its command line's start.
 */
export function containers(root) {
  const out = new Map()
  for (const { pid, argv } of processes()) {
    try {
      if (!/\/forge-sandbox-[0-9a-f]+$/.test(argv[0]) || argv[1] !== 'start') continue
      const cwd = readlinkSync(`/proc/${pid}/cwd`)
      if (cwd === root || cwd.startsWith(`${root}/`)) out.set(pid, argv.slice(0, 4).join(' '))
    } catch {}
  }
  return out
}

/** SIGKILL to the monitor's children (the sandbox's init, which takes its namespace with it,
 * and the network tool) and to the monitor. */
export function kill(pid) {
  for (const child of pids()) {
    try {
      if (parentOf(child) === pid) process.kill(Number(child), 'SIGKILL')
    } catch {}
  }
  try { process.kill(Number(pid), 'SIGKILL') } catch {}
}

/**
 * The leak check of a run: containers running now are the run's baseline (a developer's own
 * `forge local` is not a leak); `noneLeft(after)` is true when every container started since
 * has ended. A backend that stops its sandboxes kills their inits at once and their monitors
 * exit right after, so it waits (60 s at most) for that before calling one a leak; the leaks
 * are printed and killed.
 */
export function sandboxLeaks(root) {
  const before = new Set(containers(root).keys())
  const started = () => [...containers(root)].filter(([pid]) => !before.has(pid))
  return {
    noneLeft(after) {
      let left = started()
      for (let waited = 0; left.length > 0 && waited < 60_000; waited += 250) {
        sleep(250)
        left = started()
      }
      if (left.length === 0) return true
      console.error(`\n${after} left ${left.length} sandbox container(s) running (killed now):`)
      for (const [pid, argv] of left) console.error(`  ${pid}: ${argv}`)
      for (const [pid] of left) kill(pid)
      return false
    },
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..')
  const running = containers(root)
  for (const [pid, argv] of running) console.log(`${pid}: ${argv}`)
  if (process.argv.includes('--kill')) for (const pid of running.keys()) kill(pid)
}
