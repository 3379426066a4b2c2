// Stands in for the guide's Supabase `projects` table, so the example runs without a
// database: { repoUrl, sandboxId, previewUrl, framework, port, sessionId } by project id.
// On globalThis because Next.js may load this module once per route bundle.
const projects = (globalThis.__forgeProjects ??= new Map())

export function getProject(id) {
  return projects.get(id) ?? null
}

export function saveProject(id, fields) {
  const next = { ...projects.get(id), ...fields }
  projects.set(id, next)
  return next
}
