// The integration guide's Example 2, "Inngest Workflow Integration", on @smartapi-forge/daytona.
//
// Each `step.run` makes one call and returns plain JSON data: Inngest stores a step's result
// as JSON and replays it on the next invocation, so a step must never return a Sandbox (a
// class with live handles). Later steps re-attach to the sandbox from its id.
import { NonRetriableError } from 'inngest'
import { inngest } from './client.js'
import { daytona } from './daytona.js'
import { getGithubIntegration, updateProject } from './db.js'

const PROJECT_DIR = 'workspace/project'

export const cloneAndPreviewRepository = inngest.createFunction(
  {
    id: 'daytona-clone-and-preview-repository',
    // Inngest 4: the trigger is part of the options (the guide's 3-argument form is Inngest 3).
    triggers: { event: 'github/clone-and-preview' },
    retries: 2,
    concurrency: { limit: 5 },
  },
  async ({ event, step }) => {
    const { projectId, repoUrl, userId, branch } = event.data

    // Step 1: the user's GitHub token. The token is only passed to the clone; it is never
    // written into the sandbox (.git/config holds the plain URL).
    const integration = await step.run('get-github-integration', async () => {
      const data = await getGithubIntegration(userId)
      if (!data) throw new NonRetriableError('GitHub integration not found')
      return data
    })

    // Step 2: a sandbox; only its id leaves the step.
    const sandboxResult = await step.run('create-sandbox', async () => {
      await updateProject(projectId, { status: 'building' })
      const sandbox = await daytona.create({ image: 'node:22-bookworm', workspaceClass: 'medium', public: true })
      return { sandboxId: sandbox.id }
    })

    // Step 3: clone (credentials as arguments, not in the URL).
    await step.run('clone-repository', async () => {
      const sandbox = await daytona.getSandbox(sandboxResult.sandboxId)
      await sandbox.git.clone(repoUrl, PROJECT_DIR, branch ?? null, 1, 'x-access-token', integration.access_token)
      return { path: PROJECT_DIR }
    })

    // Step 4: framework, package manager, commands and port, read inside the sandbox.
    const frameworkInfo = await step.run('detect-framework', async () => {
      const sandbox = await daytona.getSandbox(sandboxResult.sandboxId)
      const d = await sandbox.detectFramework(PROJECT_DIR)
      return {
        framework: d.framework?.id ?? 'node',
        port: d.port ?? 3000,
        installCommand: d.installCommand ?? null,
        devCommand: d.devCommand ?? 'npm run dev',
        env: d.env,
      }
    })

    // Step 5: install (900 s, with the guide's memory limit).
    await step.run('install-dependencies', async () => {
      if (!frameworkInfo.installCommand) return { skipped: true }
      const sandbox = await daytona.getSandbox(sandboxResult.sandboxId)
      const result = await sandbox.process.executeCommand(
        frameworkInfo.installCommand,
        PROJECT_DIR,
        // The guide's memory limit; no audit/fund/update-check round trips to the registry.
        { NODE_OPTIONS: '--max-old-space-size=12288', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' },
        900,
      )
      if (result.exitCode !== 0) throw new Error(`Install failed (exit ${result.exitCode}): ${result.result.slice(-2000)}`)
      return { exitCode: result.exitCode }
    })

    // Step 6: the dev server in a background session, listening on 0.0.0.0:<port>.
    const previewResult = await step.run('start-preview-server', async () => {
      const sandbox = await daytona.getSandbox(sandboxResult.sandboxId)
      const sessionId = `dev-server-${Date.now()}`
      await sandbox.process.createSession(sessionId)
      const env = Object.entries(frameworkInfo.env)
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(' ')
      const { cmdId } = await sandbox.process.executeSessionCommand(sessionId, {
        command: `${env} ${frameworkInfo.devCommand}`,
        runAsync: true,
        cwd: PROJECT_DIR,
      })
      const preview = await sandbox.getPreviewUrl(frameworkInfo.port)
      // The preview token stays out of the step result (Inngest stores results).
      return { url: preview.url, port: frameworkInfo.port, sessionId, cmdId }
    })

    // Step 7: wait until the preview URL really serves the app (instead of a fixed sleep).
    const verified = await step.run('verify-preview', async () => {
      const sandbox = await daytona.getSandbox(sandboxResult.sandboxId)
      const { token } = await sandbox.getPreviewUrl(previewResult.port)
      const started = Date.now()
      let last = 'no answer'
      while (Date.now() - started < 60_000) {
        try {
          const res = await fetch(previewResult.url, {
            headers: { 'x-daytona-preview-token': token, 'X-Daytona-Skip-Preview-Warning': 'true' },
            signal: AbortSignal.timeout(5_000),
          })
          if (res.ok) return { ok: true, status: res.status, ms: Date.now() - started }
          last = `HTTP ${res.status}`
        } catch (e) {
          last = e.message
        }
        await new Promise((r) => setTimeout(r, 250))
      }
      throw new Error(`preview did not answer within 60 s: ${last}`)
    })

    // Step 8: record the result.
    await step.run('update-project', async () => {
      await updateProject(projectId, {
        status: 'deployed',
        sandbox_url: previewResult.url,
        framework: frameworkInfo.framework,
        metadata: { sandboxId: sandboxResult.sandboxId, port: previewResult.port },
      })
      return { projectId }
    })

    return {
      success: true,
      sandboxId: sandboxResult.sandboxId,
      previewUrl: previewResult.url,
      framework: frameworkInfo.framework,
      verifiedInMs: verified.ms,
    }
  },
)

export const functions = [cloneAndPreviewRepository]
