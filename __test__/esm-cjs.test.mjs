// ESM and CommonJS: the packed package, installed from its tarballs into a fresh project, is
// usable through `import` and `require`, both give the very same objects, and TypeScript
// resolves the typings of both entries (`exports` conditions `import`/`require`/`types`).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { installPacked, root } from '../scripts/pack.mjs'

const run = (cwd, args) => execFileSync(process.execPath, args, { cwd, encoding: 'utf8', timeout: 60_000 })

test('import and require of the installed tarball give the same named exports', { timeout: 240_000 }, async (t) => {
  const dir = installPacked({ name: 'forge-esm-cjs-' })
  t.after(() => rmSync(dir, { recursive: true, force: true }))

  writeFileSync(
    join(dir, 'check.mjs'),
    `import { createRequire } from 'node:module'
import * as esm from '@smartapi-forge/daytona'
import def, { Daytona, Sandbox, detectFramework } from '@smartapi-forge/daytona'
const require = createRequire(import.meta.url)
const cjs = require('@smartapi-forge/daytona')
const names = Object.keys(esm).filter((k) => k !== 'default').sort()
console.log(JSON.stringify({
  names,
  cjsNames: Object.keys(cjs).sort(),
  same: names.every((k) => esm[k] === cjs[k]),
  defaultIsCjs: def === cjs,
  destructured: Daytona === cjs.Daytona && Sandbox === cjs.Sandbox && detectFramework === cjs.detectFramework,
  daytonaType: typeof Daytona,
  importResolved: import.meta.resolve('@smartapi-forge/daytona'),
  requireResolved: require.resolve('@smartapi-forge/daytona'),
  bindingFrom: Object.keys(require.cache).find((f) => f.endsWith('.node')) ?? null,
}))
`,
  )
  writeFileSync(
    join(dir, 'check.cjs'),
    `const cjs = require('@smartapi-forge/daytona')
import('@smartapi-forge/daytona').then((esm) => {
  console.log(JSON.stringify({ same: Object.keys(cjs).every((k) => esm[k] === cjs[k]), daytonaType: typeof cjs.Daytona }))
})
`,
  )
  const m = JSON.parse(run(dir, ['check.mjs']))
  assert.equal(m.daytonaType, 'function')
  assert.deepEqual(m.names, m.cjsNames)
  for (const name of ['Daytona', 'Sandbox', 'SandboxFs', 'SandboxGit', 'SandboxProcess', 'detectFramework', 'DaytonaError', 'isDaytonaError']) {
    assert.ok(m.names.includes(name), `${name} is exported`)
  }
  assert.ok(m.same, 'every ESM named export is the CommonJS object itself')
  assert.ok(m.defaultIsCjs, 'the default export is module.exports')
  assert.ok(m.destructured)
  assert.match(m.importResolved, /node_modules\/@smartapi-forge\/daytona\/index\.mjs$/)
  assert.match(m.requireResolved, /node_modules\/@smartapi-forge\/daytona\/index\.js$/)
  assert.match(m.bindingFrom, /node_modules\/@smartapi-forge\/daytona-linux-x64-gnu\/daytona\.linux-x64-gnu\.node$/)

  const c = JSON.parse(run(dir, ['check.cjs']))
  assert.deepEqual(c, { same: true, daytonaType: 'function' })
})

test('TypeScript resolves the typings of both entries (nodenext, ESM and CJS files)', { timeout: 240_000 }, async (t) => {
  const dir = installPacked({ name: 'forge-esm-cjs-ts-' })
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: ['node'],
        typeRoots: [join(root, 'node_modules', '@types')],
      },
      files: ['esm.mts', 'cjs.cts'],
    }),
  )
  writeFileSync(
    join(dir, 'esm.mts'),
    `import { Daytona, DaytonaError, type Sandbox, type ExecuteResponse, type DaytonaErrorCode } from '@smartapi-forge/daytona'
import forge from '@smartapi-forge/daytona'
const daytona: Daytona = new forge.Daytona({ backend: 'local' })
export async function run(): Promise<ExecuteResponse> {
  const sandbox: Sandbox = await daytona.create({ workspaceClass: 'small' })
  return sandbox.process.executeCommand('echo hi')
}
// @ts-expect-error: not a method of the client
daytona.noSuchMethod()
export function code(e: unknown): DaytonaErrorCode | null {
  return e instanceof DaytonaError ? e.code : forge.isDaytonaError(e) ? e.code : null
}
`,
  )
  writeFileSync(
    join(dir, 'cjs.cts'),
    `import forge = require('@smartapi-forge/daytona')
const daytona: forge.Daytona = new forge.Daytona({ backend: 'local' })
export const created: Promise<forge.Sandbox> = daytona.create()
export const retryable = (e: unknown): boolean => e instanceof forge.DaytonaError && e.retryable
`,
  )
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  let out = ''
  try {
    out = run(dir, [tsc, '-p', 'tsconfig.json'])
  } catch (e) {
    assert.fail(`tsc failed:\n${e.stdout}${e.stderr}`)
  }
  assert.equal(out.trim(), '')
})
