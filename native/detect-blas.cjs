// Prints gyp settings for a BLAS if one is installed (see native/gemm.h):
//   node native/detect-blas.cjs cflags|libs|name
// Prints nothing when none is found: the project's own kernels are used then,
// so `npm install` works on a machine without a BLAS.
// Looks for Debian's packages (libblis-dev, libopenblas-dev: a cblas.h and a
// shared library in a per-variant directory) and the usual plain locations.
// QUARTET_BLAS=blis|openblas|none at build time picks one or none.
const fs = require('fs');
const path = require('path');

const triplet = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' }[process.arch] || '';

// OpenBLAS first: measured in native/lab/gemm_lab.cc on this project's machines
// (AMD Zen 5, one thread), Debian's OpenBLAS 0.3.21 runs its AVX2 kernels at
// about 118 GFLOP/s where Debian's BLIS 0.9.0 falls back to generic code at about
// 40. (The own AVX-512 kernels reach about 210 and are the default there; see
// native/gemm.cc.)
const candidates = [];
for (const [name, define, lib, variants] of [
  ['openblas', 'QUARTET_BLAS_OPENBLAS', 'openblas', ['openblas-openmp', 'openblas-pthread', 'openblas-serial', 'openblas']],
  ['blis', 'QUARTET_BLAS_BLIS', 'blis', ['blis-openmp', 'blis-pthread', 'blis-serial', 'blis']],
]) {
  for (const v of variants) {
    for (const [inc, libdir] of [
      [`/usr/include/${triplet}/${v}`, `/usr/lib/${triplet}/${v}`],
      [`/usr/include/${v}`, `/usr/lib/${triplet}`],
      [`/usr/local/include/${v}`, '/usr/local/lib'],
    ]) {
      candidates.push({ name, define, lib, inc, libdir });
    }
  }
}

function found(c) {
  return fs.existsSync(path.join(c.inc, 'cblas.h')) &&
    (fs.existsSync(path.join(c.libdir, `lib${c.lib}.so`)) || fs.existsSync(path.join(c.libdir, `lib${c.lib}.a`)));
}

function detect() {
  const want = (process.env.QUARTET_BLAS || '').toLowerCase();
  if (want === 'none' || want === 'own') return null;
  if (want && want !== 'blis' && want !== 'openblas') {
    console.error(`detect-blas: QUARTET_BLAS must be blis, openblas or none (got '${want}')`);
    process.exit(1);
  }
  return candidates.find((c) => (!want || c.name === want) && found(c)) || null;
}

const which = process.argv[2];
const blas = detect();
if (which === 'cflags') {
  console.log(blas ? `-D${blas.define} -I${blas.inc}` : '');
} else if (which === 'libs') {
  console.log(blas ? `-L${blas.libdir} -l${blas.lib} -Wl,-rpath,${blas.libdir}` : '');
} else if (which === 'name') {
  console.log(blas ? blas.name : 'own');
} else {
  console.error('usage: node native/detect-blas.cjs cflags|libs|name');
  process.exit(1);
}
