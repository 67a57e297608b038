// Cross-backend harness (as ggml's test-backend-ops): every CUDA op against the CPU
// kernel of native/ on the same fresh random inputs, forward and backward, one line
// per check:  op  dtype  shape  max_abs  max_rel  tolerance  PASS|FAIL
// and a closing "N passed, N failed". A check passes when every element satisfies
// |gpu - cpu| <= atol + rtol * |cpu| (infinities and NaNs must match exactly); max_rel
// is over elements with |cpu| above 1e-3 of the largest. Outputs are poisoned with
// NaN bytes before each GPU call, so an unwritten element fails.
//
//   check                 run the checks (exit 1 if any fails)
//   check --bench FILE    time the CUDA ops at GPT-2-small shapes (cudaEvent, median
//                         of 20 after 3 warm-ups), one "name<TAB>ms" line each to FILE
//
// Built by native/cuda/run-on-device.sh: nvcc for this file and the kernels, g++ for
// the CPU kernels. -DSKIP_<FILE> leaves out the checks of a kernel file that did not
// compile, so the rest still run.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "../activations.h"
#include "../attention.h"
#include "../convert.h"
#include "../gemm.h"
#include "../layout.h"
#include "../losses.h"
#include "../norms.h"
#include "../optim.h"
#include "ops.h"

namespace qc = quartet::cuda;
using std::vector;

namespace {

int g_pass = 0, g_fail = 0;
std::mt19937_64 g_rng;

#define CK(x)                                                                              \
  do {                                                                                     \
    cudaError_t e_ = (x);                                                                  \
    if (e_ != cudaSuccess) {                                                               \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(2);                                                                        \
    }                                                                                      \
  } while (0)

vector<float> normal(size_t n, float sd = 1.0f, float mean = 0.0f) {
  std::normal_distribution<float> d(mean, sd);
  vector<float> v(n);
  for (auto& x : v) x = d(g_rng);
  return v;
}
vector<float> uniform(size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  vector<float> v(n);
  for (auto& x : v) x = d(g_rng);
  return v;
}
vector<int32_t> ints(size_t n, int lo, int hi) {  // [lo, hi]
  std::uniform_int_distribution<int> d(lo, hi);
  vector<int32_t> v(n);
  for (auto& x : v) x = d(g_rng);
  return v;
}

// A device buffer, poisoned with 0xff bytes (a NaN in every float) when made.
template <class T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t n_) : n(n_) {
    CK(cudaMalloc(&p, sizeof(T) * (n ? n : 1)));
    poison();
  }
  explicit Dev(const vector<T>& v) : Dev(v.size()) { up(v); }
  ~Dev() { cudaFree(p); }
  Dev(const Dev&) = delete;
  void poison() { CK(cudaMemset(p, 0xff, sizeof(T) * (n ? n : 1))); }
  void up(const vector<T>& v) { CK(cudaMemcpy(p, v.data(), sizeof(T) * v.size(), cudaMemcpyHostToDevice)); }
  vector<T> down() const {
    CK(cudaDeviceSynchronize());
    vector<T> v(n);
    CK(cudaMemcpy(v.data(), p, sizeof(T) * n, cudaMemcpyDeviceToHost));
    return v;
  }
};

void report(const char* op, const char* dtype, const std::string& shape, double max_abs,
            double max_rel, double atol, double rtol, bool ok, const char* note = "") {
  std::printf("%-26s %-5s %-28s max_abs %-9.2e max_rel %-9.2e tol %.0e+%.0e*|ref|  %s%s\n", op,
              dtype, shape.c_str(), max_abs, max_rel, atol, rtol, ok ? "PASS" : "FAIL", note);
  std::fflush(stdout);
  (ok ? g_pass : g_fail)++;
}

bool compare(const char* op, const char* dtype, const std::string& shape, const vector<float>& got,
             const vector<float>& ref, double atol, double rtol) {
  double max_abs = 0, max_rel = 0, ref_max = 0;
  bool ok = got.size() == ref.size();
  for (float r : ref)
    if (std::isfinite(r)) ref_max = std::max(ref_max, (double)std::fabs(r));
  size_t bad = 0, first_bad = 0;
  for (size_t i = 0; ok && i < ref.size(); i++) {
    const double g = got[i], r = ref[i];
    bool good;
    if (!std::isfinite(r) || !std::isfinite(g)) {
      good = (std::isnan(r) && std::isnan(g)) || g == r;
    } else {
      const double e = std::fabs(g - r);
      max_abs = std::max(max_abs, e);
      if (std::fabs(r) > 1e-3 * ref_max) max_rel = std::max(max_rel, e / std::fabs(r));
      good = e <= atol + rtol * std::fabs(r);
    }
    if (!good && bad++ == 0) first_bad = i;
  }
  ok = ok && bad == 0;
  char note[160] = "";
  if (!ok && got.size() == ref.size())
    std::snprintf(note, sizeof note, "  (%zu bad; first at %zu: gpu %.7g cpu %.7g)", bad, first_bad,
                  got[first_bad], ref[first_bad]);
  report(op, dtype, shape, max_abs, max_rel, atol, rtol, ok, note);
  return ok;
}

bool compare_bits(const char* op, const char* dtype, const std::string& shape,
                  const vector<uint16_t>& got, const vector<uint16_t>& ref) {
  size_t bad = 0;
  for (size_t i = 0; i < ref.size(); i++) bad += got[i] != ref[i];
  report(op, dtype, shape, 0, 0, 0, 0, bad == 0, bad ? "  (bits differ)" : "  (bitwise)");
  return bad == 0;
}

std::string dims(std::initializer_list<int64_t> d) {
  std::string s;
  for (int64_t x : d) s += (s.empty() ? "" : "x") + std::to_string(x);
  return s;
}

// Runs one check and turns an exception (a CUDA error) into a failed line.
void guarded(const char* name, const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    std::printf("%-26s error: %s  FAIL\n", name, e.what());
    g_fail++;
    cudaGetLastError();
  }
}

vector<uint16_t> to_bf16(const vector<float>& x) {
  vector<uint16_t> o(x.size());
  quartet::f32_to_bf16(o.data(), x.data(), (int64_t)x.size());
  return o;
}
vector<float> from_bf16(const vector<uint16_t>& x) {
  vector<float> o(x.size());
  quartet::bf16_to_f32(o.data(), x.data(), (int64_t)x.size());
  return o;
}

#ifndef SKIP_GEMM
// fp32: |err| <= 1e-5 sqrt(K) (inputs in [-1, 1]; outputs about sqrt(K / 9)); TF32
// would miss this by an order of magnitude.
void check_gemm() {
  const char* names[4] = {"gemm NN", "gemm NT", "gemm TN", "gemm TT"};
  for (int t = 0; t < 4; t++) {
    guarded(names[t], [&] {
      const bool ta = t & 2, tb = t & 1;
      const int64_t M = 131, N = 257, K = 67;
      const int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
      auto A = uniform((ta ? K : M) * lda, -1, 1), B = uniform((tb ? N : K) * ldb, -1, 1);
      for (int beta_i = 0; beta_i < 2; beta_i++) {
        const float alpha = 0.7f, beta = beta_i ? 0.5f : 0.0f;
        auto C = uniform(M * ldc, -1, 1);
        vector<float> ref = C;
        if (beta == 0) std::fill(ref.begin(), ref.end(), NAN);  // beta 0 must ignore C
        quartet::gemm(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, ref.data(), ldc);
        Dev<float> dA(A), dB(B), dC(M * ldc);
        if (beta != 0) dC.up(C);
        qc::gemm(ta, tb, M, N, K, alpha, dA.p, lda, dB.p, ldb, beta, dC.p, ldc);
        auto got = dC.down();
        // only the M x N block is defined (padding columns stay as they were)
        vector<float> g2, r2;
        for (int64_t i = 0; i < M; i++)
          for (int64_t j = 0; j < N; j++) {
            g2.push_back(got[i * ldc + j]);
            r2.push_back(ref[i * ldc + j]);
          }
        compare(names[t], "f32", dims({M, N, K}) + (beta ? " beta.5" : " beta0"), g2, r2,
                1e-5 * std::sqrt((double)K), 1e-5);
      }
    });
  }
  guarded("gemm gpt2", [] {
    const int64_t M = 512, N = 2304, K = 768;
    auto A = uniform(M * K, -1, 1), B = uniform(N * K, -1, 1);
    vector<float> ref(M * N);
    quartet::gemm(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, ref.data(), N);
    Dev<float> dA(A), dB(B), dC(M * N);
    qc::gemm(false, true, M, N, K, 1.0f, dA.p, K, dB.p, K, 0.0f, dC.p, N);
    compare("gemm NT (qkv)", "f32", dims({M, N, K}), dC.down(), ref, 1e-5 * std::sqrt((double)K), 1e-5);
  });
  guarded("gemm K=0", [] {
    Dev<float> dA(1), dB(1), dC(6 * 7);
    qc::gemm(false, false, 6, 7, 0, 1.0f, dA.p, 1, dB.p, 7, 0.0f, dC.p, 7);
    compare("gemm K=0 beta0", "f32", "6x7x0", dC.down(), vector<float>(42, 0.0f), 0, 0);
  });
  guarded("gemm batched", [] {
    const int64_t M = 33, N = 65, K = 48, batch = 5;
    auto A = uniform(M * K, -1, 1), B = uniform(batch * N * K, -1, 1);  // A broadcast (stride 0)
    vector<float> ref(batch * M * N);
    quartet::gemm_batched(false, true, M, N, K, 1.0f, A.data(), K, 0, B.data(), K, N * K, 0.0f,
                          ref.data(), N, M * N, batch);
    Dev<float> dA(A), dB(B), dC(batch * M * N);
    qc::gemm_batched(false, true, M, N, K, 1.0f, dA.p, K, 0, dB.p, K, N * K, 0.0f, dC.p, N, M * N, batch);
    compare("gemm batched NT bcastA", "f32", dims({batch, M, N, K}), dC.down(), ref,
            1e-5 * std::sqrt((double)K), 1e-5);
  });
  // bf16 operands: the CPU product of the same bf16 values (exact in fp32) is the
  // reference, so only the order of the fp32 sums differs: the fp32 tolerance. With a
  // bf16 C, one more rounding: 2^-8 relative.
  for (int t = 0; t < 4; t++) {
    guarded("gemm bf16", [&] {
      const bool ta = t & 2, tb = t & 1;
      const int64_t M = 130, N = 200, K = 96;
      auto A = from_bf16(to_bf16(uniform(M * K, -1, 1))), B = from_bf16(to_bf16(uniform(N * K, -1, 1)));
      const int64_t lda = ta ? M : K, ldb = tb ? K : N;
      vector<float> ref(M * N);
      quartet::gemm(ta, tb, M, N, K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, ref.data(), N);
      Dev<uint16_t> dA(to_bf16(A)), dB(to_bf16(B));
      Dev<float> dC(M * N);
      qc::gemm_bf16(ta, tb, M, N, K, 1.0f, dA.p, lda, dB.p, ldb, 0.0f, dC.p, N, false);
      const char* nm[4] = {"gemm_bf16 NN ->f32", "gemm_bf16 NT ->f32", "gemm_bf16 TN ->f32", "gemm_bf16 TT ->f32"};
      compare(nm[t], "bf16", dims({M, N, K}), dC.down(), ref, 1e-5 * std::sqrt((double)K), 1e-5);
      if (t == 1) {
        Dev<uint16_t> dC16(M * N);
        qc::gemm_bf16(ta, tb, M, N, K, 1.0f, dA.p, lda, dB.p, ldb, 0.0f, dC16.p, N, true);
        compare("gemm_bf16 NT ->bf16", "bf16", dims({M, N, K}), from_bf16(dC16.down()), ref,
                1e-4, 1.0 / 256);
      }
    });
  }
  guarded("gemm bf16 batched", [] {
    const int64_t M = 64, N = 48, K = 80, batch = 6;
    auto A = from_bf16(to_bf16(uniform(batch * M * K, -1, 1))), B = from_bf16(to_bf16(uniform(batch * K * N, -1, 1)));
    vector<float> ref(batch * M * N);
    quartet::gemm_batched(false, false, M, N, K, 1.0f, A.data(), K, M * K, B.data(), N, K * N, 0.0f,
                          ref.data(), N, M * N, batch);
    Dev<uint16_t> dA(to_bf16(A)), dB(to_bf16(B));
    Dev<float> dC(batch * M * N);
    qc::gemm_bf16_batched(false, false, M, N, K, 1.0f, dA.p, K, M * K, dB.p, N, K * N, 0.0f, dC.p,
                          N, M * N, batch, false);
    compare("gemm_bf16 batched NN", "bf16", dims({batch, M, N, K}), dC.down(), ref,
            1e-5 * std::sqrt((double)K), 1e-5);
  });
}
#endif

#ifndef SKIP_ELEMENTWISE
void check_elementwise() {
  guarded("convert", [] {
    auto x = normal(100003, 100.0f);
    x[0] = NAN; x[1] = INFINITY; x[2] = -INFINITY; x[3] = 3.4e38f; x[4] = 1e-40f; x[5] = -0.0f;
    x[6] = 1.00390625f;  // a tie: rounds to even
    Dev<float> dx(x);
    Dev<uint16_t> d16(x.size());
    qc::f32_to_bf16(d16.p, dx.p, (int64_t)x.size());
    auto ref16 = to_bf16(x);
    compare_bits("f32_to_bf16", "bf16", "100003", d16.down(), ref16);
    Dev<float> back(x.size());
    qc::bf16_to_f32(back.p, d16.p, (int64_t)x.size());
    compare("bf16_to_f32", "bf16", "100003", back.down(), from_bf16(ref16), 0, 0);
  });
  const int64_t n = 100003;
  auto x = normal(n, 3.0f);
  const float extremes[] = {-30.f, -12.f, -8.f, -5.f, -1e-3f, 0.f, 1e-3f, 5.f, 8.f, 12.f, 30.f};
  for (int i = 0; i < 11; i++) x[i] = extremes[i];
  auto g = normal(n);
  for (int approx = 1; approx >= 0; approx--) {
    guarded("gelu", [&] {
      const char* f = approx ? "gelu tanh fwd" : "gelu erf fwd";
      const char* b = approx ? "gelu tanh bwd" : "gelu erf bwd";
      vector<float> ref(n), dref(n);
      quartet::gelu(ref.data(), x.data(), approx, n);
      quartet::gelu_backward(dref.data(), x.data(), g.data(), approx, n);
      Dev<float> dx(x), dg(g), out(n), din(n);
      qc::gelu(out.p, dx.p, approx, n);
      qc::gelu_backward(din.p, dx.p, dg.p, approx, n);
      compare(f, "f32", "100003", out.down(), ref, 1e-6, 1e-5);
      compare(b, "f32", "100003", din.down(), dref, 1e-6, 1e-5);
    });
  }
  guarded("silu", [&] {
    vector<float> ref(n), dref(n);
    quartet::silu(ref.data(), x.data(), n);
    quartet::silu_backward(dref.data(), x.data(), g.data(), n);
    Dev<float> dx(x), dg(g), out(n), din(n);
    qc::silu(out.p, dx.p, n);
    qc::silu_backward(din.p, dx.p, dg.p, n);
    compare("silu fwd", "f32", "100003", out.down(), ref, 1e-6, 1e-5);
    compare("silu bwd", "f32", "100003", din.down(), dref, 1e-6, 1e-5);
  });
  guarded("adamw", [] {
    const int64_t n = 1000003;
    auto p = normal(n), m = vector<float>(n, 0.0f), v = vector<float>(n, 0.0f);
    Dev<float> dp(p), dm(m), dv(v), dg(n);
    for (int step = 1; step <= 3; step++) {
      auto g = normal(n, 0.1f);
      quartet::adamw(p.data(), g.data(), m.data(), v.data(), n, 1e-3, 0.9, 0.95, 1e-8, 0.1, step);
      dg.up(g);
      qc::adamw(dp.p, dg.p, dm.p, dv.p, n, 1e-3, 0.9, 0.95, 1e-8, 0.1, step);
    }
    compare("adamw param (3 steps)", "f32", "1000003", dp.down(), p, 1e-6, 1e-6);
    compare("adamw m", "f32", "1000003", dm.down(), m, 1e-7, 1e-6);
    compare("adamw v", "f32", "1000003", dv.down(), v, 1e-9, 1e-6);
  });
}
#endif

#ifndef SKIP_NORMS
void check_norms() {
  const int64_t shapes[3][2] = {{257, 768}, {33, 1001}, {1, 5}};
  for (auto& s : shapes) {
    const int64_t N = s[0], C = s[1];
    const std::string sh = dims({N, C});
    for (int with_bias = 1; with_bias >= 0; with_bias--) {
      guarded("layernorm", [&] {
        auto x = normal(N * C, 2.0f, 0.5f), w = uniform(C, 0.5f, 1.5f), b = normal(C), g = normal(N * C);
        vector<float> out(N * C), mean(N), rstd(N), dx(N * C), dw(C), db(C);
        quartet::layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(),
                                   with_bias ? b.data() : nullptr, N, C, 1e-5f);
        quartet::layernorm_backward(dx.data(), dw.data(), with_bias ? db.data() : nullptr, g.data(),
                                    x.data(), w.data(), mean.data(), rstd.data(), N, C);
        Dev<float> dX(x), dW(w), dB(b), dG(g), dO(N * C), dM(N), dR(N), dDX(N * C), dDW(C), dDB(C);
        qc::layernorm_forward(dO.p, dM.p, dR.p, dX.p, dW.p, with_bias ? dB.p : nullptr, N, C, 1e-5f);
        compare(with_bias ? "layernorm fwd out" : "layernorm fwd out nobias", "f32", sh, dO.down(), out, 2e-5, 1e-5);
        compare("layernorm fwd mean", "f32", sh, dM.down(), mean, 1e-6, 1e-5);
        compare("layernorm fwd rstd", "f32", sh, dR.down(), rstd, 1e-6, 1e-5);
        // the backward from the CPU's saved statistics, so only the backward is compared
        dM.up(mean);
        dR.up(rstd);
        qc::layernorm_backward(dDX.p, dDW.p, with_bias ? dDB.p : nullptr, dG.p, dX.p, dW.p, dM.p, dR.p, N, C);
        compare("layernorm bwd dinp", "f32", sh, dDX.down(), dx, 2e-5, 1e-4);
        compare("layernorm bwd dweight", "f32", sh, dDW.down(), dw, 1e-4, 1e-4);
        if (with_bias) compare("layernorm bwd dbias", "f32", sh, dDB.down(), db, 1e-4, 1e-4);
      });
    }
    guarded("rmsnorm", [&] {
      auto x = normal(N * C, 2.0f, 0.5f), w = uniform(C, 0.5f, 1.5f), g = normal(N * C);
      vector<float> out(N * C), rstd(N), dx(N * C), dw(C);
      quartet::rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, 1e-6f);
      quartet::rmsnorm_backward(dx.data(), dw.data(), g.data(), x.data(), w.data(), rstd.data(), N, C);
      Dev<float> dX(x), dW(w), dG(g), dO(N * C), dR(N), dDX(N * C), dDW(C);
      qc::rmsnorm_forward(dO.p, dR.p, dX.p, dW.p, N, C, 1e-6f);
      compare("rmsnorm fwd out", "f32", sh, dO.down(), out, 2e-5, 1e-5);
      compare("rmsnorm fwd rstd", "f32", sh, dR.down(), rstd, 1e-6, 1e-5);
      dR.up(rstd);
      qc::rmsnorm_backward(dDX.p, dDW.p, dG.p, dX.p, dW.p, dR.p, N, C);
      compare("rmsnorm bwd dinp", "f32", sh, dDX.down(), dx, 2e-5, 1e-4);
      compare("rmsnorm bwd dweight", "f32", sh, dDW.down(), dw, 1e-4, 1e-4);
    });
  }
}
#endif

#ifndef SKIP_LOSSES
void check_losses() {
  guarded("logprobs", [] {
    const int64_t N = 37, V = 50257;
    auto x = normal(N * V, 3.0f);
    auto labels = ints(N, 0, (int)V - 1);
    labels[3] = -1;  // ignored row: out 0, zero gradient
    for (int64_t v = 0; v < V; v += 3) x[5 * V + v] = -INFINITY;  // masked vocabulary
    labels[5] = 1;  // a visible label in that row
    auto g = normal(N);
    vector<float> out(N), lse(N), dx(N * V);
    quartet::logprobs_forward(out.data(), lse.data(), x.data(), labels.data(), N, V);
    quartet::logprobs_backward(dx.data(), g.data(), x.data(), lse.data(), labels.data(), N, V);
    Dev<float> dX(x), dG(g), dOut(N), dL(N), dDX(N * V);
    Dev<int32_t> dLab(labels);
    qc::logprobs_forward(dOut.p, dL.p, dX.p, dLab.p, N, V);
    compare("logprobs fwd", "f32", dims({N, V}), dOut.down(), out, 2e-5, 1e-5);
    compare("logprobs fwd lse", "f32", dims({N, V}), dL.down(), lse, 2e-5, 1e-5);
    dL.up(lse);
    qc::logprobs_backward(dDX.p, dG.p, dX.p, dL.p, dLab.p, N, V);
    compare("logprobs bwd", "f32", dims({N, V}), dDX.down(), dx, 1e-7, 1e-4);
  });
  // Cross-entropy = mean over the labelled rows of -logprob; its gradient is the
  // logprobs backward with dout = -1 / count.
  guarded("cross_entropy", [] {
    const int64_t N = 64, V = 1000;
    auto x = normal(N * V, 2.0f);
    auto labels = ints(N, -1, (int)V - 1);
    int64_t count = 0;
    for (auto l : labels) count += l >= 0;
    vector<float> g(N, count ? -1.0f / count : 0.0f);
    vector<float> out(N), lse(N), dx(N * V);
    quartet::logprobs_forward(out.data(), lse.data(), x.data(), labels.data(), N, V);
    quartet::logprobs_backward(dx.data(), g.data(), x.data(), lse.data(), labels.data(), N, V);
    double loss = 0;
    for (int64_t i = 0; i < N; i++) loss -= out[i];
    Dev<float> dX(x), dG(g), dOut(N), dL(N), dDX(N * V);
    Dev<int32_t> dLab(labels);
    qc::logprobs_forward(dOut.p, dL.p, dX.p, dLab.p, N, V);
    qc::logprobs_backward(dDX.p, dG.p, dX.p, dL.p, dLab.p, N, V);
    auto o = dOut.down();
    double gl = 0;
    for (int64_t i = 0; i < N; i++) gl -= o[i];
    compare("cross_entropy loss", "f32", dims({N, V}), {(float)(gl / count)}, {(float)(loss / count)}, 1e-5, 1e-5);
    compare("cross_entropy bwd", "f32", dims({N, V}), dDX.down(), dx, 1e-8, 1e-4);
  });
}
#endif

#ifndef SKIP_LAYOUT
void check_layout() {
  guarded("gather_rows", [] {
    const int64_t R = 1000, C = 77, n = 333;
    auto table = normal(R * C);
    auto idx = ints(n, 0, (int)R - 1);
    vector<float> ref(n * C);
    quartet::gather_rows(ref.data(), table.data(), idx.data(), n, C);
    Dev<float> dT(table), dO(n * C);
    Dev<int32_t> dI(idx);
    qc::gather_rows(dO.p, dT.p, dI.p, n, C);
    compare("gather_rows (embedding)", "f32", dims({n, R, C}), dO.down(), ref, 0, 0);
  });
  const int64_t shapes[2][3] = {{50, 130, 1000}, {50257, 768, 4096}};  // R, C, n_idx
  for (auto& s : shapes) {
    guarded("scatter_add_rows", [&] {
      const int64_t R = s[0], C = s[1], n = s[2];
      auto inp = normal(n * C);
      auto idx = ints(n, 0, (int)std::min<int64_t>(R - 1, 400));  // many repeats
      vector<float> ref(R * C);
      quartet::scatter_add_rows(ref.data(), inp.data(), idx.data(), n, R, C);
      Dev<float> dIn(inp), dO(R * C);
      Dev<int32_t> dI(idx);
      qc::scatter_add_rows(dO.p, dIn.p, dI.p, n, R, C);
      auto got = dO.down();
      const bool same = std::memcmp(got.data(), ref.data(), sizeof(float) * ref.size()) == 0;
      compare("scatter_add_rows", "f32", dims({n, R, C}), got, ref, 1e-5, 1e-5);
      std::printf("%-26s       bitwise equal to the CPU: %s\n", "", same ? "yes" : "no");
    });
  }
  for (int mode = 0; mode < 4; mode++) {
    guarded("rope", [&] {
      const bool interleaved = mode & 1, inverse = mode & 2;
      const int64_t B = 3, T = 17, NH = 4, HS = 64;
      for (int64_t rd : {int64_t(64), int64_t(32)}) {
        auto x = normal(B * T * NH * HS);
        vector<int32_t> pos(B * T);
        for (int64_t b = 0; b < B; b++)
          for (int64_t t = 0; t < T; t++) pos[b * T + t] = (int32_t)(b == 2 ? 1990 + t : t + b);
        vector<float> inv(rd / 2);
        for (int64_t i = 0; i < rd / 2; i++) inv[i] = (float)std::pow(10000.0, -2.0 * i / rd);
        vector<float> ref(x.size());
        quartet::rope(ref.data(), x.data(), pos.data(), inv.data(), B, T, NH, HS, rd, interleaved, inverse);
        Dev<float> dX(x), dO(x.size()), dInv(inv);
        Dev<int32_t> dP(pos);
        qc::rope(dO.p, dX.p, dP.p, dInv.p, B, T, NH, HS, rd, interleaved, inverse);
        std::string nm = std::string("rope") + (interleaved ? " gptj" : " neox") + (inverse ? " inv" : "") +
                         (rd < HS ? " partial" : "");
        compare(nm.c_str(), "f32", dims({B, T, NH, HS}), dO.down(), ref, 2e-5, 1e-5);
        if (mode == 0 && rd == 64) {  // in place
          qc::rope(dX.p, dX.p, dP.p, dInv.p, B, T, NH, HS, rd, interleaved, inverse);
          compare("rope neox in place", "f32", dims({B, T, NH, HS}), dX.down(), ref, 2e-5, 1e-5);
        }
      }
    });
  }
}
#endif

#ifndef SKIP_ATTENTION
struct AttnCase {
  const char* name;
  int64_t B, NH, NKV, Tq, Tk, kvCap, HS;
  bool causal, mask, backward;
};

void check_attention() {
  const AttnCase cases[] = {
      {"attn causal+pad", 2, 4, 4, 77, 77, 77, 64, true, true, true},
      {"attn gqa noncausal", 2, 8, 2, 130, 130, 130, 32, false, false, true},
      {"attn hs128 causal", 1, 2, 1, 70, 70, 70, 128, true, false, true},
      {"attn hs80 gqa pad", 2, 6, 3, 40, 40, 40, 80, true, true, true},
      {"attn prefill kvcache", 2, 4, 2, 9, 20, 32, 64, true, true, false},
      {"attn decode Tq1", 3, 4, 2, 1, 50, 64, 64, true, true, false},
      {"attn decode Tq3", 3, 4, 2, 3, 50, 64, 64, true, true, false},
      {"attn decode hs80", 2, 4, 4, 1, 300, 512, 80, true, true, false},
      {"attn decode hs128", 2, 2, 1, 2, 129, 129, 128, true, false, false},
  };
  for (const AttnCase& c : cases) {
    guarded(c.name, [&] {
      const std::string sh = dims({c.B, c.NH, c.NKV, c.Tq, c.Tk, c.HS});
      const float scale = 1.0f / std::sqrt((float)c.HS);
      auto q = normal(c.B * c.NH * c.Tq * c.HS), k = normal(c.B * c.NKV * c.kvCap * c.HS),
           v = normal(c.B * c.NKV * c.kvCap * c.HS), dO = normal(c.B * c.NH * c.Tq * c.HS);
      vector<float> mask;
      if (c.mask) {
        mask.assign(c.B * c.Tk, 1.0f);
        for (int64_t j = 0; j < std::min<int64_t>(5, c.Tk - 1); j++) mask[(c.B - 1) * c.Tk + j] = 0.0f;  // left pad
        if (c.Tk > 12) mask[0 * c.Tk + 11] = 0.0f;  // a hole
      }
      const float* mh = c.mask ? mask.data() : nullptr;
      vector<float> out(q.size()), lse(c.B * c.NH * c.Tq);
      quartet::attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), mh, c.B, c.NH,
                                 c.NKV, c.Tq, c.Tk, c.kvCap, c.HS, scale, c.causal);
      Dev<float> dq(q), dk(k), dv(v), dOut(q.size()), dLse(lse.size()), dMask(c.mask ? mask.size() : 1);
      if (c.mask) dMask.up(mask);
      const float* md = c.mask ? dMask.p : nullptr;
      qc::attention_forward(dOut.p, dLse.p, dq.p, dk.p, dv.p, md, c.B, c.NH, c.NKV, c.Tq, c.Tk, c.kvCap,
                            c.HS, scale, c.causal);
      compare((std::string(c.name) + " fwd").c_str(), "f32", sh, dOut.down(), out, 2e-5, 1e-4);
      compare((std::string(c.name) + " lse").c_str(), "f32", sh, dLse.down(), lse, 2e-5, 1e-5);
      if (!c.backward) return;
      vector<float> gq(q.size()), gk(k.size()), gv(v.size());
      quartet::attention_backward(gq.data(), gk.data(), gv.data(), dO.data(), q.data(), k.data(),
                                  v.data(), out.data(), lse.data(), mh, c.B, c.NH, c.NKV, c.Tq, c.Tk,
                                  c.HS, scale, c.causal);
      Dev<float> ddO(dO), dgq(q.size()), dgk(k.size()), dgv(v.size());
      dOut.up(out);  // the backward from the CPU's forward results
      dLse.up(lse);
      qc::attention_backward(dgq.p, dgk.p, dgv.p, ddO.p, dq.p, dk.p, dv.p, dOut.p, dLse.p, md, c.B,
                             c.NH, c.NKV, c.Tq, c.Tk, c.HS, scale, c.causal);
      compare((std::string(c.name) + " bwd dq").c_str(), "f32", sh, dgq.down(), gq, 5e-5, 1e-4);
      compare((std::string(c.name) + " bwd dk").c_str(), "f32", sh, dgk.down(), gk, 5e-5, 1e-4);
      compare((std::string(c.name) + " bwd dv").c_str(), "f32", sh, dgv.down(), gv, 5e-5, 1e-4);
    });
  }
}
#endif

// ---------------------------------------------------------------------------
// Benchmark: median of 20 timed calls after 3 warm-ups, cudaEvents around each.
FILE* g_bench = nullptr;

void bench(const char* name, const std::function<void()>& f) {
  try {
    for (int i = 0; i < 3; i++) f();
    CK(cudaDeviceSynchronize());
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    vector<float> ms;
    for (int i = 0; i < 20; i++) {
      CK(cudaEventRecord(a));
      f();
      CK(cudaEventRecord(b));
      CK(cudaEventSynchronize(b));
      float t = 0;
      CK(cudaEventElapsedTime(&t, a, b));
      ms.push_back(t);
    }
    std::sort(ms.begin(), ms.end());
    std::printf("BENCH %-28s %9.4f ms\n", name, ms[10]);
    std::fflush(stdout);
    if (g_bench) std::fprintf(g_bench, "%s\t%.6f\n", name, ms[10]);
    cudaEventDestroy(a);
    cudaEventDestroy(b);
  } catch (const std::exception& e) {
    std::printf("BENCH %-28s error: %s\n", name, e.what());
  }
}

// Benchmark inputs are drawn on the device (a hash of the index through Box-Muller):
// drawing 400M normals on the host would take longer than the whole benchmark.
template <class T>
__global__ void k_fill_normal(T* p, int64_t n, uint64_t seed, float sd) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    uint64_t z = seed + (uint64_t)i * 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    const float u1 = ((z >> 40) + 1) * 0x1p-24f, u2 = ((z >> 16) & 0xffffff) * 0x1p-24f;
    p[i] = (T)(sd * sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2));
  }
}

template <class T>
void fill_dev(Dev<T>& d, float sd) {
  static uint64_t seed = 1;
  k_fill_normal<T><<<1024, 256>>>(d.p, (int64_t)d.n, seed++ * 0x1234567ULL, sd);
  CK(cudaGetLastError());
}

void run_bench() {
  const int64_t Bt = 8, T = 1024, N = Bt * T, C = 768, V = 50257, H = 12, HS = 64;
  auto fill = [](Dev<float>& d, float sd) { fill_dev(d, sd); };
#ifndef SKIP_GEMM
  {
    Dev<float> x(N * C), w(V * C), y(N * V);
    fill(x, 1.0f);
    fill(w, 0.02f);
    bench("gemm_f32_fc", [&] { qc::gemm(false, true, N, 4 * C, C, 1.0f, x.p, C, w.p, C, 0.0f, y.p, 4 * C); });
    bench("gemm_f32_lmhead", [&] { qc::gemm(false, true, N, V, C, 1.0f, x.p, C, w.p, C, 0.0f, y.p, V); });
    Dev<__nv_bfloat16> x16(N * C), w16(V * C), y16(N * V);
    fill_dev(x16, 1.0f);
    fill_dev(w16, 0.02f);
    const uint16_t* xb = reinterpret_cast<const uint16_t*>(x16.p);
    const uint16_t* wb = reinterpret_cast<const uint16_t*>(w16.p);
    bench("gemm_bf16_fc", [&] { qc::gemm_bf16(false, true, N, 4 * C, C, 1.0f, xb, C, wb, C, 0.0f, y16.p, 4 * C, true); });
    bench("gemm_bf16_lmhead", [&] { qc::gemm_bf16(false, true, N, V, C, 1.0f, xb, C, wb, C, 0.0f, y16.p, V, true); });
  }
#endif
#ifndef SKIP_NORMS
  {
    Dev<float> x(N * C), w(C), b(C), o(N * C), m(N), r(N), g(N * C), dx(N * C), dw(C), db(C);
    fill(x, 1.0f); fill(w, 1.0f); fill(b, 1.0f); fill(g, 1.0f);
    bench("layernorm_fwd", [&] { qc::layernorm_forward(o.p, m.p, r.p, x.p, w.p, b.p, N, C, 1e-5f); });
    bench("layernorm_bwd", [&] { qc::layernorm_backward(dx.p, dw.p, db.p, g.p, x.p, w.p, m.p, r.p, N, C); });
    bench("rmsnorm_fwd", [&] { qc::rmsnorm_forward(o.p, r.p, x.p, w.p, N, C, 1e-6f); });
  }
#endif
#ifndef SKIP_ELEMENTWISE
  {
    Dev<float> x(N * 4 * C), g(N * 4 * C), o(N * 4 * C);
    fill(x, 1.0f); fill(g, 1.0f);
    bench("gelu_fwd", [&] { qc::gelu(o.p, x.p, true, N * 4 * C); });
    bench("gelu_bwd", [&] { qc::gelu_backward(o.p, x.p, g.p, true, N * 4 * C); });
    const int64_t P = 124439808;  // GPT-2 small's parameters
    Dev<float> p(P), gr(P), m(P), v(P);
    fill(p, 0.02f); fill(gr, 0.01f);
    CK(cudaMemset(m.p, 0, sizeof(float) * P));
    CK(cudaMemset(v.p, 0, sizeof(float) * P));
    int step = 0;
    bench("adamw_124M", [&] { qc::adamw(p.p, gr.p, m.p, v.p, P, 1e-4, 0.9, 0.95, 1e-8, 0.1, ++step); });
  }
#endif
#ifndef SKIP_LOSSES
  {
    Dev<float> x(N * V), dx(N * V), out(N), lse(N), g(N);
    fill(x, 2.0f); fill(g, 1.0f);
    Dev<int32_t> lab(ints(N, 0, (int)V - 1));
    bench("logprobs_fwd", [&] { qc::logprobs_forward(out.p, lse.p, x.p, lab.p, N, V); });
    bench("logprobs_bwd", [&] { qc::logprobs_backward(dx.p, g.p, x.p, lse.p, lab.p, N, V); });
  }
#endif
#ifndef SKIP_LAYOUT
  {
    Dev<float> table(V * C), out(N * C), dtable(V * C);
    fill(table, 0.02f);
    fill(out, 1.0f);
    Dev<int32_t> idx(ints(N, 0, (int)V - 1));
    bench("embedding_fwd", [&] { qc::gather_rows(out.p, table.p, idx.p, N, C); });
    bench("embedding_bwd", [&] { qc::scatter_add_rows(dtable.p, out.p, idx.p, N, V, C); });
  }
#endif
#ifndef SKIP_ATTENTION
  for (int64_t t : {int64_t(256), int64_t(1024)}) {
    const int64_t n = Bt * H * t * HS;
    Dev<float> q(n), k(n), v(n), o(n), lse(Bt * H * t), dO(n), dq(n), dk(n), dv(n);
    fill(q, 1.0f); fill(k, 1.0f); fill(v, 1.0f); fill(dO, 1.0f);
    const float sc = 0.125f;
    const std::string f = "attn_fwd_T" + std::to_string(t), b = "attn_bwd_T" + std::to_string(t);
    bench(f.c_str(), [&] { qc::attention_forward(o.p, lse.p, q.p, k.p, v.p, nullptr, Bt, H, H, t, t, t, HS, sc, true); });
    bench(b.c_str(), [&] { qc::attention_backward(dq.p, dk.p, dv.p, dO.p, q.p, k.p, v.p, o.p, lse.p, nullptr, Bt, H, H, t, t, HS, sc, true); });
  }
  for (int64_t bb : {int64_t(8), int64_t(64)}) {
    const int64_t cap = 1024;
    Dev<float> q(bb * H * HS), k(bb * H * cap * HS), v(bb * H * cap * HS), o(bb * H * HS), lse(bb * H);
    fill(q, 1.0f); fill(k, 1.0f); fill(v, 1.0f);
    const std::string nm = "attn_decode_B" + std::to_string(bb) + "_T1024";
    bench(nm.c_str(), [&] { qc::attention_forward(o.p, lse.p, q.p, k.p, v.p, nullptr, bb, H, H, 1, cap, cap, HS, 0.125f, true); });
  }
#endif
}

}  // namespace

int main(int argc, char** argv) {
  const char* bench_file = nullptr;
  for (int i = 1; i < argc; i++)
    if (!std::strcmp(argv[i], "--bench") && i + 1 < argc) bench_file = argv[++i];
  if (!qc::available()) {
    std::printf("no CUDA device\n0 passed, 1 failed\n");
    return 1;
  }
  std::printf("device: %s\n", qc::device_name(0));
  if (bench_file) {
    g_bench = std::fopen(bench_file, "w");
    run_bench();
    if (g_bench) std::fclose(g_bench);
    return 0;
  }
  const uint64_t seed = std::random_device{}() ^ (uint64_t)std::chrono::steady_clock::now().time_since_epoch().count();
  g_rng.seed(seed);
  std::printf("seed %llu (fresh inputs every run)\n", (unsigned long long)seed);
#ifndef SKIP_GEMM
  check_gemm();
#else
  std::printf("gemm: SKIPPED (did not compile)\n"); g_fail++;
#endif
#ifndef SKIP_ELEMENTWISE
  check_elementwise();
#else
  std::printf("elementwise: SKIPPED (did not compile)\n"); g_fail++;
#endif
#ifndef SKIP_NORMS
  check_norms();
#else
  std::printf("norms: SKIPPED (did not compile)\n"); g_fail++;
#endif
#ifndef SKIP_LOSSES
  check_losses();
#else
  std::printf("losses: SKIPPED (did not compile)\n"); g_fail++;
#endif
#ifndef SKIP_LAYOUT
  check_layout();
#else
  std::printf("layout: SKIPPED (did not compile)\n"); g_fail++;
#endif
#ifndef SKIP_ATTENTION
  check_attention();
#else
  std::printf("attention: SKIPPED (did not compile)\n"); g_fail++;
#endif
  std::printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
