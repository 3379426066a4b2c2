'use server'

import { redirect } from 'next/navigation'
import { createPreview } from '../lib/previews.js'

/** The form's server action: runs the pipeline, then shows the project (works without JS). */
export async function previewAction(formData) {
  const repoUrl = String(formData.get('repoUrl') ?? '').trim()
  if (!repoUrl) redirect('/?error=repoUrl')
  const { projectId } = await createPreview({
    repoUrl,
    token: String(formData.get('token') ?? ''),
    branch: String(formData.get('branch') ?? ''),
  })
  redirect(`/?project=${encodeURIComponent(projectId)}`)
}
