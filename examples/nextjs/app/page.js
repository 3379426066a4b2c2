import { previewAction } from './actions.js'
import { getProject } from '../lib/projects.js'
import { StreamPreview } from './stream-preview.js'

export const runtime = 'nodejs'
export const dynamic = 'force-dynamic'

export default async function Page({ searchParams }) {
  const { project: projectId } = await searchParams
  const project = projectId ? getProject(projectId) : null
  return (
    <main>
      <h1>Preview a GitHub repository</h1>
      <form action={previewAction}>
        <input name="repoUrl" placeholder="https://github.com/owner/repo" required />
        <input name="branch" placeholder="branch (optional)" />
        <input name="token" type="password" placeholder="GitHub token (optional)" />
        <button type="submit">Preview</button>
      </form>
      {project && (
        <p>
          Project <code id="project-id">{projectId}</code> ({project.framework}):{' '}
          <a id="preview-url" href={project.previewUrl}>
            {project.previewUrl}
          </a>
        </p>
      )}
      {project && (
        <div style={{ display: 'flex', gap: 16, alignItems: 'flex-start' }}>
          <iframe title="preview" src={project.previewUrl} width={640} height={400} />
          {project.screenshot && (
            // What the browser check saw when it verified the preview.
            <img id="preview-screenshot" alt="screenshot of the preview" width={240} src={`data:image/png;base64,${project.screenshot}`} />
          )}
        </div>
      )}
      <StreamPreview />
    </main>
  )
}
