// Prints gyp settings for a BLAS if one is installed (see native/gemm.h).
// `node native/detect-blas.cjs cflags|libs`. Prints nothing when none is found:
// the project's own kernels are used then.
const which = process.argv[2];
if (which === 'cflags' || which === 'libs') console.log('');
