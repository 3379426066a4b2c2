import { randomUUID } from 'node:crypto'
import { daytona } from './daytona.js'
import { getProject, saveProject } from './projects.js'

/**
 * Clone → detect → install → start → verify, then record the project. The token is only
 * sent as the clone's password: it is not stored, returned or written into the sandbox.
 */
export async function createPreview({ repoUrl, token, branch, projectId = randomUUID() }) {
  const r = await daytona().cloneAndPreview(pipelineOptions({ repoUrl, token, branch }))
  return recordPreview(projectId, repoUrl, r)
}

/** What every preview of this app asks the pipeline for. */
function pipelineOptions({ repoUrl, token, branch }) {
  return {
    repoUrl,
    token: token || undefined,
    branch: branch || undefined,
    image: 'node:22-bookworm',
    workspaceClass: 'medium',
    public: true,
    // Also load the preview in headless Chromium (where this server has one; skipped
    // otherwise): a page that throws or renders nothing fails, and the screenshot is the
    // project's thumbnail.
    browser: true,
  }
}

/**
 * The pipeline as it happens, for a page that shows it live: `{ event, data }` pairs, the
 * progress events (`progress`), the install's and the dev server's output lines (`log`), then
 * `result` (the recorded project) or `error`. Pulled one at a time: while nobody reads, the
 * pipeline waits (after a few unread lines). Ending the iteration early (`return()`, e.g. the
 * browser went away) cancels the pipeline and deletes its sandbox.
 */
export async function* previewEvents({ repoUrl, token, branch, projectId = randomUUID() }) {
  try {
    for await (const e of daytona().cloneAndPreviewEvents(pipelineOptions({ repoUrl, token, branch }))) {
      if (e.type === 'progress') yield { event: 'progress', data: e.progress }
      else if (e.type === 'log') yield { event: 'log', data: e.log }
      else yield { event: 'result', data: recordPreview(projectId, repoUrl, e.result) }
    }
  } catch (e) {
    if (!e?.step) console.error('preview failed:', e)
    yield { event: 'error', data: errorBody(e).error }
  }
}

function recordPreview(projectId, repoUrl, r) {
  saveProject(projectId, {
    repoUrl,
    sandboxId: r.sandboxId,
    previewUrl: r.previewUrl,
    framework: r.framework ?? null,
    port: r.port,
    sessionId: r.sessionId,
    path: r.path,
    screenshot: r.verify.browser?.screenshot?.png ?? null,
  })
  return { projectId, sandboxId: r.sandboxId, previewUrl: r.previewUrl, framework: r.framework ?? null, port: r.port, timings: r.timings }
}

/** The guide's health check: is the sandbox there and does its preview answer? */
export async function projectHealth(projectId) {
  const project = getProject(projectId)
  if (!project?.sandboxId) return { isAlive: false }
  const h = await daytona().checkHealth({ sandboxId: project.sandboxId, port: project.port })
  return { isAlive: h.isAlive && (h.preview?.ok ?? true), state: h.state ?? null, reason: h.preview?.reason ?? null }
}

/**
 * The guide's auto-restart: restart the dev server in the same sandbox (starting the sandbox
 * if it was stopped) and verify it; when the sandbox is gone, run the whole pipeline again.
 */
export async function restartProject(projectId, { token } = {}) {
  const project = getProject(projectId)
  if (!project) return null
  try {
    const r = await daytona().restartPreview({
      sandboxId: project.sandboxId,
      sessionId: project.sessionId,
      port: project.port,
      path: project.path,
    })
    saveProject(projectId, { sessionId: r.started.sessionId, previewUrl: r.verified.previewUrl })
    return { sandboxId: project.sandboxId, sandboxUrl: r.verified.previewUrl, recreated: false }
  } catch (e) {
    if (e.code !== 'DAYTONA_NOT_FOUND') throw e
    const p = await createPreview({ repoUrl: project.repoUrl, token, projectId })
    return { sandboxId: p.sandboxId, sandboxUrl: p.previewUrl, recreated: true }
  }
}

/** Deletes the project's sandbox (and with it the dev server). */
export async function deleteProject(projectId) {
  const project = getProject(projectId)
  if (!project?.sandboxId) return false
  const sandbox = await daytona().getSandbox(project.sandboxId)
  await sandbox.delete()
  saveProject(projectId, { sandboxId: null })
  return true
}

/** An error as JSON for a response: code, step and message only (no secret is in them). */
export function errorBody(e) {
  return { error: { code: e?.code ?? 'INTERNAL', step: e?.step ?? null, message: e?.message ?? String(e) } }
}
