// Stands in for the guide's Supabase tables (`user_integrations`, `projects`), so the example
// runs without a database. Replace these two functions with your Supabase queries.
export const integrations = new Map() // userId -> { provider: 'github', access_token }
export const projects = new Map() // projectId -> { status, sandbox_url, framework, metadata }

export async function getGithubIntegration(userId) {
  return integrations.get(userId) ?? null
}

export async function updateProject(projectId, fields) {
  projects.set(projectId, { ...projects.get(projectId), ...fields })
}
