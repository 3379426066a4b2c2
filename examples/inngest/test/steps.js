// The function's steps, in the order a successful run takes them (what both tests expect).
export const STEP_IDS = [
  'get-github-integration',
  'create-sandbox',
  'clone-repository',
  'detect-framework',
  'install-dependencies',
  'start-preview-server',
  'verify-preview',
  'update-project',
]
