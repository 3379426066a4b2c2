// The integration guide's Example 2, "Inngest Workflow Integration", on @smartapi-forge/daytona.
//
// Each `step.run` makes one call of the pipeline's step methods, which take and return plain
// JSON data: Inngest stores a step's result as JSON and replays it on the next invocation, so
// a step must never return a Sandbox (a class with live handles). Steps pass the sandbox id.
import { NonRetriableError } from 'inngest'
import { inngest } from './client.js'
import { daytona } from './daytona.js'
import { getGithubIntegration, updateProject } from './db.js'

/**
 * Runs one step call; an error the package marks `retryable: false` (bad input, auth, an
 * install that failed, a preview that shows a framework error) becomes a NonRetriableError,
 * so Inngest does not retry what cannot succeed. Network trouble, 429 and 5xx are retried.
 */
async function once(call) {
  try {
    return await call()
  } catch (e) {
    if (e?.retryable === false) throw new NonRetriableError(`${e.code ?? 'ERROR'}: ${e.message}`, { cause: e })
    throw e
  }
}

/**
 * The idempotency key of a run's sandbox. Inngest runs a step again when it fails (or its
 * result is lost) after its side effect: with the same key `createSandbox` returns the sandbox
 * the first attempt made instead of making a second one. The other steps need no key: a clone
 * recognises its own clone, an install is skipped while its lockfile and node_modules are
 * unchanged, a dev server started again replaces the one before.
 */
export const sandboxKey = (event) => `${event.id}:create-sandbox`

export const cloneAndPreviewRepository = inngest.createFunction(
  {
    id: 'daytona-clone-and-preview-repository',
    // Inngest 4: the trigger is part of the options (the guide's 3-argument form is Inngest 3).
    triggers: { event: 'github/clone-and-preview' },
    retries: 2,
    concurrency: { limit: 5 },
    // The run failed for good (retries spent, or a NonRetriableError): delete the sandbox it
    // made, so that nothing is left behind. `event.data.event` is the run's own event.
    onFailure: async ({ event, step }) => {
      const deleted = await step.run('delete-sandbox', () => daytona.cleanup({ key: sandboxKey(event.data.event) }))
      await step.run('mark-project-failed', () => updateProject(event.data.event.data.projectId, { status: 'failed' }))
      return deleted
    },
  },
  async ({ event, step }) => {
    const { projectId, repoUrl, userId, branch } = event.data

    // Step 1: the user's GitHub token. It is only ever sent as the clone's password: never in
    // the URL, the sandbox's .git/config or any later step result.
    const integration = await step.run('get-github-integration', async () => {
      const data = await getGithubIntegration(userId)
      if (!data) throw new NonRetriableError('GitHub integration not found')
      return data
    })

    // Step 2: a sandbox → { sandboxId, state, public, memoryGib, elapsedMs }.
    const sandbox = await step.run('create-sandbox', async () => {
      await updateProject(projectId, { status: 'building' })
      return once(() =>
        daytona.createSandbox({
          image: 'node:22-bookworm',
          workspaceClass: 'medium',
          public: true,
          idempotencyKey: sandboxKey(event),
          labels: { 'forge-project': projectId },
        }),
      )
    })

    // Step 3: clone → { sandboxId, path, branch, elapsedMs }.
    const repo = await step.run('clone-repository', () =>
      once(() => daytona.cloneRepository({ sandboxId: sandbox.sandboxId, repoUrl, branch, token: integration.access_token })),
    )

    // Step 4: framework, package manager, install/dev commands, port and env, read inside the
    // sandbox (replaces the guide's package.json sniffing).
    const fw = await step.run('detect-framework', () =>
      once(() => daytona.detectFramework({ sandboxId: sandbox.sandboxId, path: repo.path })),
    )

    // Step 5: install; rejects with PREVIEW_INSTALL_FAILED, exitCode and logTail.
    await step.run('install-dependencies', () =>
      once(() => daytona.installDependencies({
        sandboxId: sandbox.sandboxId,
        path: repo.path,
        installRoot: fw.installRoot,
        command: fw.installCommand ?? undefined,
        memoryGib: sandbox.memoryGib,
      })),
    )

    // Step 6: the dev server in its own session; returns at once.
    const dev = await step.run('start-preview-server', () =>
      once(() => daytona.startDevServer({
        sandboxId: sandbox.sandboxId,
        path: repo.path,
        root: fw.root,
        command: fw.devCommand ?? undefined,
        port: fw.port ?? undefined,
        envVars: fw.env,
        framework: fw.framework?.id,
      })),
    )

    // Step 7: wait until the preview answers like a working app (instead of the guide's fixed
    // 15 s sleep); rejects with PREVIEW_VERIFY_FAILED and a `reason`.
    const preview = await step.run('verify-preview', async () => {
      const v = await once(() =>
        daytona.verifyPreview({
          sandboxId: sandbox.sandboxId,
          port: dev.port,
          sessionId: dev.sessionId,
          commandId: dev.commandId,
          framework: dev.framework ?? undefined,
        }),
      )
      const { token, ...rest } = v // a private sandbox's preview token stays out of Inngest's state
      return rest
    })

    // Step 8: record the result.
    await step.run('update-project', async () => {
      await updateProject(projectId, {
        status: 'deployed',
        sandbox_url: preview.previewUrl,
        framework: fw.framework?.id ?? 'node',
        metadata: { sandboxId: sandbox.sandboxId, port: dev.port, sessionId: dev.sessionId },
      })
      return { projectId }
    })

    return {
      success: true,
      sandboxId: sandbox.sandboxId,
      previewUrl: preview.previewUrl,
      framework: fw.framework?.id ?? 'node',
      verifiedInMs: preview.elapsedMs,
    }
  },
)

export const functions = [cloneAndPreviewRepository]
