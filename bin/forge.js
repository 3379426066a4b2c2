#!/usr/bin/env node
// `forge`, the command line of @smartapi-forge/daytona (`npx @smartapi-forge/daytona preview .`):
// the same Rust code as the cargo-built `forge` binary, run through the addon's `runCli`.
// SIGINT / SIGTERM abort the running command, which kills what runs in the sandbox, deletes it
// (unless --keep) and exits with 130; a second signal exits at once. Nothing here writes to
// process.stdout: the command writes to file descriptors 1 and 2 itself.
'use strict'

const { runCli } = require('../index.js')

const controller = new AbortController()
const onSignal = () => {
  if (controller.signal.aborted) {
    require('node:fs').writeSync(2, 'forge: interrupted again: exiting without cleaning up\n')
    process.exit(130)
  }
  controller.abort()
}
process.on('SIGINT', onSignal)
process.on('SIGTERM', onSignal)

runCli(process.argv.slice(2), { signal: controller.signal }).then(
  (code) => process.exit(code),
  (e) => {
    require('node:fs').writeSync(2, `forge: ${e && e.message ? e.message : e}\n`)
    process.exit(1)
  },
)
