#!/usr/bin/env bash
# The one prepared run on a lent GPU machine (docs/cuda.md): builds the cross-backend
# harness (CUDA kernels with nvcc, the CPU kernels of native/ with g++), runs it,
# times our ops and PyTorch's on the same GPU, and runs the harness again under
# compute-sanitizer. Everything goes to $OUT/log.txt; figures to $OUT/*.tsv / *.txt.
# Each .cu builds on its own: one that fails is logged and its checks are skipped
# (and counted failed), the rest still run. Exits non-zero if anything failed, after
# running everything.
#   bash native/cuda/run-on-device.sh        (from the repository root)
set -u
OUT=${OUT:-/tmp/quartet-cuda-out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
cd "$(dirname "$0")/../.."
ROOT=$PWD
B=/tmp/quartet-cuda-build
rm -rf "$B" && mkdir -p "$B/cpu"
status=0
t0=$(date +%s)
stamp() { echo "--- $* (+$(( $(date +%s) - t0 ))s)"; }

stamp "machine"
nvidia-smi -L
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv
command -v nvcc >/dev/null || export PATH=/usr/local/cuda/bin:$PATH
nvcc --version | tail -2
g++ --version | head -1
grep -o -m1 'avx512f\|avx2' /proc/cpuinfo | head -1

# cuBLAS: the toolkit's own, or the pip wheel PyTorch uses.
CUBLAS_H=$(find /usr/local/cuda/ /usr/local/cuda*/ /usr/include /opt /usr/lib/python3* /usr/local/lib/python3* \
  -name cublas_v2.h 2>/dev/null | head -1)
CUBLAS_SO=""
if [ -n "$CUBLAS_H" ]; then
  base=$(dirname "$(dirname "$CUBLAS_H")")
  CUBLAS_SO=$(ls "$base"/lib64/libcublas.so* "$base"/lib/libcublas.so* "$base"/lib/*/libcublas.so* 2>/dev/null | head -1)
fi
[ -z "$CUBLAS_SO" ] && CUBLAS_SO=$(find /usr/local/cuda*/ /usr/lib /opt -name 'libcublas.so*' 2>/dev/null | head -1)
echo "cublas header: ${CUBLAS_H:-none}  library: ${CUBLAS_SO:-none}"

NVFLAGS="-std=c++17 -O3 -arch=sm_90 -lineinfo -Xcompiler -fopenmp"
GEMM_DEFS=""
SKIPS=""
[ -n "$CUBLAS_H" ] && NVFLAGS="$NVFLAGS -I$(dirname "$CUBLAS_H")"
if [ -z "$CUBLAS_H" ] || [ -z "$CUBLAS_SO" ]; then GEMM_DEFS="-DQUARTET_NO_CUBLAS"; SKIPS="$SKIPS -DSKIP_GEMM"; status=1; echo "no cuBLAS: gemm checks skipped"; fi

stamp "build"
# CPU kernels: a portable x86-64-v3 (AVX2) build, as the addon's dispatch allows.
# (wait on the build's own pids: a bare `wait` would also wait for the tee above.)
pids=""
for f in gemm gemm_own norms activations losses optim layout rope attention_forward attention_backward convert; do
  g++ -std=c++17 -O2 -fopenmp -march=x86-64-v3 -c native/$f.cc -o "$B/cpu/$f.o" 2>"$B/cpu/$f.err" &
  pids="$pids $!"
done
for f in runtime gemm elementwise norms losses layout attention; do
  defs=""; [ $f = gemm ] && defs="$GEMM_DEFS"
  nvcc $NVFLAGS $defs -Xptxas -v -c native/cuda/$f.cu -o "$B/$f.o" >"$B/$f.log" 2>&1 &
  pids="$pids $!"
done
wait $pids
for f in "$B"/cpu/*.err; do [ -s "$f" ] && { echo "CPU build: $f"; cat "$f"; }; done
OBJS=""
for f in runtime gemm elementwise norms losses layout attention; do
  if [ -f "$B/$f.o" ]; then
    OBJS="$OBJS $B/$f.o"
    grep -E "[1-9][0-9]* bytes spill stores|warning" "$B/$f.log" | sort | uniq -c | head -5
  else
    echo "BUILD FAILED: native/cuda/$f.cu"; cat "$B/$f.log" | head -40; status=1
    case $f in
      gemm) nvcc $NVFLAGS -DQUARTET_NO_CUBLAS -c native/cuda/gemm.cu -o "$B/gemm.o" && OBJS="$OBJS $B/gemm.o"; SKIPS="$SKIPS -DSKIP_GEMM";;
      runtime) echo "no runtime: nothing can run";;
      *) SKIPS="$SKIPS -DSKIP_$(echo $f | tr a-z A-Z)";;
    esac
  fi
done
cp "$B/attention.log" "$OUT/ptxas-attention.txt" 2>/dev/null
LINK=""
[ -n "$CUBLAS_SO" ] && [[ " $SKIPS " != *" -DSKIP_GEMM "* ]] && LINK="$CUBLAS_SO -Xlinker -rpath=$(dirname "$CUBLAS_SO")" \
  && export LD_LIBRARY_PATH=$(dirname "$CUBLAS_SO")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
nvcc $NVFLAGS $SKIPS -c native/cuda/check.cu -o "$B/check.o" && \
  nvcc $NVFLAGS -o "$B/check" "$B/check.o" $OBJS "$B"/cpu/*.o $LINK -lgomp
[ -x "$B/check" ] || { echo "HARNESS DID NOT BUILD"; status=1; }

stamp "checks"
if [ -x "$B/check" ]; then
  "$B/check" | tee "$OUT/check.txt"
  [ "${PIPESTATUS[0]}" = 0 ] || status=1
  stamp "benchmark (ours)"
  "$B/check" --bench "$OUT/ours.tsv" || status=1
fi

stamp "benchmark (torch)"
PYTHONUNBUFFERED=1 timeout 240 python3 bench/cuda_ops_torch.py --ours "$OUT/ours.tsv" --json "$OUT/bench.json" \
  | tee "$OUT/bench.txt"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

if [ -x "$B/check" ] && command -v compute-sanitizer >/dev/null; then
  stamp "compute-sanitizer memcheck"
  timeout 150 compute-sanitizer --tool memcheck --print-limit 20 "$B/check" > "$OUT/sanitizer.txt" 2>&1
  rc=$?
  tail -4 "$OUT/sanitizer.txt"
  echo "sanitizer exit $rc"
  [ $rc = 0 ] || status=1
fi

stamp "done: status $status"
exit $status
