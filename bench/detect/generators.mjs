// The project generators used by the generator tests (__test__/detect-generators.test.mjs)
// and by the benchmark: real generators from npm, run non-interactively without installing
// dependencies. Each entry: npm package (pinned major), binary, arguments (the project folder
// is always `app`), and the expected answer.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync } from 'node:fs'
import { join } from 'node:path'

/** Generators: npm package, binary, arguments (the project folder is `app`), expected answer. */
const vite = (template, framework, extra = {}) => ({
  name: `create-vite --template ${template}`,
  pkg: 'create-vite@9',
  bin: 'create-vite',
  args: ['app', '--template', template, '--no-interactive'],
  expect: { framework, port: 5173, devCommand: 'npx vite --host 0.0.0.0 --port 5173 --strictPort', ...extra },
})

export const GENERATORS = [
  vite('react-ts', 'vite-react'),
  vite('vue', 'vite-vue'),
  vite('svelte', 'vite-svelte'),
  vite('solid', 'vite-solid'),
  vite('preact', 'vite-preact'),
  vite('lit', 'vite-lit'),
  vite('vanilla', 'vite'),
  vite('qwik', 'qwik'),
  {
    name: 'create-next-app',
    pkg: 'create-next-app@16',
    bin: 'create-next-app',
    args: ['app', '--ts', '--app', '--eslint', '--tailwind', '--no-src-dir', '--import-alias', '@/*', '--use-npm', '--skip-install', '--disable-git', '--yes'],
    expect: { framework: 'nextjs', port: 3000, devCommandStarts: 'npx next dev' },
  },
  {
    name: 'create-vue --default',
    pkg: 'create-vue@3',
    bin: 'create-vue',
    args: ['app', '--default'],
    expect: { framework: 'vite-vue', port: 5173 },
  },
  {
    name: 'sv create (SvelteKit)',
    pkg: 'sv@0.17',
    bin: 'sv',
    args: ['create', 'app', '--template', 'minimal', '--types', 'ts', '--no-add-ons', '--no-install'],
    expect: { framework: 'sveltekit', port: 5173, devCommand: 'npx vite dev --host 0.0.0.0 --port 5173 --strictPort' },
  },
  {
    name: '@angular/cli ng new',
    pkg: '@angular/cli@20',
    bin: 'ng',
    args: ['new', 'app', '--defaults', '--skip-install', '--skip-git', '--ssr=false'],
    expect: { framework: 'angular', port: 4200, devCommandStarts: 'npx ng serve --host 0.0.0.0 --port 4200' },
  },
  {
    name: 'create-docusaurus classic',
    pkg: 'create-docusaurus@3',
    bin: 'create-docusaurus',
    args: ['app', 'classic', '--skip-install', '--javascript'],
    expect: { framework: 'docusaurus', port: 3000, devCommand: 'npx docusaurus start --host 0.0.0.0 --port 3000 --no-open' },
  },
  {
    name: 'create-t3-app',
    pkg: 'create-t3-app@7',
    bin: 'create-t3-app',
    args: ['app', '--CI', '--trpc', '--prisma', '--tailwind', '--appRouter', '--dbProvider', 'sqlite', '--noGit', '--noInstall'],
    expect: { framework: 'nextjs', port: 3000, env: { SKIP_ENV_VALIDATION: '1' } },
  },
  {
    name: '@nestjs/cli nest new',
    pkg: '@nestjs/cli@11',
    bin: 'nest',
    args: ['new', 'app', '--skip-install', '--skip-git', '--package-manager', 'npm'],
    expect: { framework: 'nestjs', port: 3000, devCommand: 'npm run start:dev' },
  },
  {
    name: 'express-generator',
    pkg: 'express-generator@4',
    bin: 'express',
    args: ['app', '--no-view'],
    expect: { framework: 'express', port: 3000, devCommand: 'npm run start' },
  },
  {
    name: 'create-expo-app blank',
    pkg: 'create-expo-app@5',
    bin: 'create-expo-app',
    args: ['app', '--template', 'blank', '--no-install'],
    expect: { framework: 'expo', port: 8081, devCommand: 'npx expo start --web --port 8081' },
  },
  {
    name: 'create-tsrouter-app (TanStack Router)',
    pkg: 'create-tsrouter-app@0.54',
    bin: 'create-tsrouter-app',
    args: ['app', '--no-git', '--no-install'],
    expect: { framework: 'tanstack-router', port: 3000, devCommand: 'npx vite dev --host 0.0.0.0 --port 3000 --strictPort' },
  },
  {
    name: 'create-qwik empty (Qwik City)',
    pkg: 'create-qwik@1',
    bin: 'create-qwik',
    args: ['empty', 'app'],
    expect: { framework: 'qwik-city', port: 5173, devCommand: 'npx vite --mode ssr --host 0.0.0.0 --port 5173 --strictPort' },
  },
]

/** Runs one generator into a fresh folder; returns the project folder or a skip reason. */
export function generate(g, base) {
  const cwd = mkdtempSync(join(base, 'gen-'))
  const r = spawnSync('npm', ['exec', '--yes', `--package=${g.pkg}`, '--', g.bin, ...g.args], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 240_000,
    env: { ...process.env, NG_CLI_ANALYTICS: 'false', npm_config_yes: 'true', npm_config_fund: 'false', npm_config_audit: 'false' },
    encoding: 'utf8',
  })
  const dir = join(cwd, 'app')
  if (r.error || !existsSync(join(dir, 'package.json'))) {
    const why = r.error?.message ?? `exit ${r.status}: ${(r.stderr || r.stdout || '').trim().split('\n').slice(-3).join(' | ')}`
    return { skip: `generator ${g.pkg} could not be had or failed (${why})` }
  }
  return { dir }
}

