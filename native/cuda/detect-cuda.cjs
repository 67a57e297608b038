// Prints gyp settings for the CUDA backend (native/cuda/) when a CUDA toolkit with
// cuBLAS is installed, and nothing otherwise, so `npm install` on a machine without
// one builds the CPU addon exactly as before:
//   node native/cuda/detect-cuda.cjs found|nvcc|sources|cflags|libs|root
// A toolkit counts when one directory holds bin/nvcc, cuda_runtime.h, cublas_v2.h,
// libcudart and libcublas (cuBLAS from the same toolkit as nvcc, never mixed). Looked
// for in $CUDA_HOME, $CUDA_PATH, /usr/local/cuda, then beside each nvcc on the PATH
// (Debian's nvidia-cuda-toolkit is /usr). QUARTET_CUDA=0 (or off, none) turns it off;
// QUARTET_CUDA_ARCH='-gencode ...' replaces the default targets (sm_80, sm_90 and
// PTX for newer chips).
const fs = require('fs');
const path = require('path');

const triplet = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' }[process.arch] || '';
const target = { x64: 'x86_64-linux', arm64: 'sbsa-linux' }[process.arch] || '';
const kernels = ['runtime', 'gemm', 'elementwise', 'norms', 'losses', 'layout', 'attention'];

function firstDir(dirs, names) {
  return dirs.find((d) => names.every((n) => fs.readdirSync(d, { withFileTypes: false }).some((f) => f === n || f.startsWith(n + '.')))) || null;
}

function safeDirs(dirs) {
  return dirs.filter((d) => {
    try {
      return fs.statSync(d).isDirectory();
    } catch {
      return false;
    }
  });
}

function toolkit(root) {
  const nvcc = path.join(root, 'bin', 'nvcc');
  if (!fs.existsSync(nvcc)) return null;
  const inc = firstDir(safeDirs([path.join(root, 'include'), path.join(root, 'targets', target, 'include')]),
    ['cuda_runtime.h', 'cublas_v2.h']);
  const lib = firstDir(safeDirs([path.join(root, 'lib64'), path.join(root, 'lib', triplet), path.join(root, 'lib'),
    path.join(root, 'targets', target, 'lib')]), ['libcudart.so', 'libcublas.so']);
  return inc && lib ? { root, nvcc, inc, lib } : null;
}

function detect() {
  const want = (process.env.QUARTET_CUDA || '').toLowerCase();
  if (['0', 'off', 'none', 'no', 'false'].includes(want)) return null;
  const roots = [process.env.CUDA_HOME, process.env.CUDA_PATH, '/usr/local/cuda'].filter(Boolean);
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (dir && fs.existsSync(path.join(dir, 'nvcc'))) roots.push(path.dirname(dir));
  }
  for (const r of roots) {
    const t = toolkit(r);
    if (t) return t;
  }
  return null;
}

const arch = process.env.QUARTET_CUDA_ARCH ||
  '-gencode=arch=compute_80,code=sm_80 -gencode=arch=compute_90,code=sm_90 -gencode=arch=compute_90,code=compute_90';

const which = process.argv[2];
const t = detect();
const out = {
  found: () => (t ? '1' : '0'),
  root: () => (t ? t.root : ''),
  // The whole nvcc command line but the input and output (used by binding.gyp's rule).
  nvcc: () => (t ? `${t.nvcc} -std=c++17 -O3 ${arch} -Xcompiler -fPIC -Inative -DQUARTET_CUDA` : ''),
  sources: () => (t ? kernels.map((k) => `native/cuda/${k}.cu`).join(' ') : ''),
  // -I/usr/include would break libstdc++'s #include_next: system directories are left out.
  cflags: () => (t ? `-DQUARTET_CUDA${t.inc === '/usr/include' ? '' : ` -I${t.inc}`}` : ''),
  libs: () => (t ? `-L${t.lib} -lcublas -lcudart -Wl,-rpath,${t.lib}` : ''),
}[which];
if (!out) {
  console.error('usage: node native/cuda/detect-cuda.cjs found|nvcc|sources|cflags|libs|root');
  process.exit(1);
}
console.log(out());
