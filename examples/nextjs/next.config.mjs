/** @type {import('next').NextConfig} */
const nextConfig = {
  // A native addon must be loaded by Node at run time, not bundled: without this line both
  // Turbopack and webpack fail on the .node file. (In a monorepo where the package is
  // workspace-linked, Next.js does not externalize it even when listed: install it from
  // the registry or a tarball.)
  serverExternalPackages: ['@smartapi-forge/daytona'],
}

export default nextConfig
