// Kernel lab for attention and rope (llm.c dev/ style): the plain reference loops
// (the first, obviously correct version of each kernel), a correctness check of the
// production kernels against them at several awkward shapes, then a timing sweep.
// Not part of the addon. Build and run:
//   g++ -O3 -march=native -fopenmp -std=c++17 -Inative native/lab/attention_lab.cc -o /tmp/attention_lab && /tmp/attention_lab
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "../attention_backward.cc"
#include "../attention_forward.cc"
#include "../rope.cc"

namespace ref {
using std::int64_t;

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       const float* key_mask, int64_t B, int64_t NH, int64_t NKV, int64_t Tq,
                       int64_t Tk, int64_t kvCap, int64_t HS, float scale, bool causal) {
  const int64_t group = NH / NKV;
  std::vector<double> s(Tk > 0 ? Tk : 1);
  for (int64_t b = 0; b < B; b++)
    for (int64_t h = 0; h < NH; h++)
      for (int64_t i = 0; i < Tq; i++) {
        const float* qi = q + ((b * NH + h) * Tq + i) * HS;
        const float* kb = k + (b * NKV + h / group) * kvCap * HS;
        const float* vb = v + (b * NKV + h / group) * kvCap * HS;
        const float* mask = key_mask ? key_mask + b * Tk : nullptr;
        float* oi = out + ((b * NH + h) * Tq + i) * HS;
        int64_t end = causal ? Tk - Tq + i + 1 : Tk;
        if (end > Tk) end = Tk;
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < end; j++) {
          if (mask && mask[j] == 0.0f) continue;
          double d = 0.0;
          for (int64_t c = 0; c < HS; c++) d += (double)qi[c] * kb[j * HS + c];
          s[j] = d * scale;
          if (s[j] > mx) mx = s[j];
        }
        std::vector<double> o(HS, 0.0);
        if (mx == -std::numeric_limits<double>::infinity()) {
          for (int64_t c = 0; c < HS; c++) oi[c] = 0.0f;
          lse[(b * NH + h) * Tq + i] = -std::numeric_limits<float>::infinity();
          continue;
        }
        double sum = 0.0;
        for (int64_t j = 0; j < end; j++) {
          if (mask && mask[j] == 0.0f) continue;
          double p = std::exp(s[j] - mx);
          sum += p;
          for (int64_t c = 0; c < HS; c++) o[c] += p * vb[j * HS + c];
        }
        for (int64_t c = 0; c < HS; c++) oi[c] = (float)(o[c] / sum);
        lse[(b * NH + h) * Tq + i] = (float)(mx + std::log(sum));
      }
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, const float* out, const float* lse,
                        const float* key_mask, int64_t B, int64_t NH, int64_t NKV, int64_t Tq,
                        int64_t Tk, int64_t HS, float scale, bool causal) {
  const int64_t group = NH / NKV;
  std::vector<double> dqa(HS), dka(B * NKV * Tk * HS, 0.0), dva(B * NKV * Tk * HS, 0.0);
  for (int64_t b = 0; b < B; b++)
    for (int64_t h = 0; h < NH; h++)
      for (int64_t i = 0; i < Tq; i++) {
        const int64_t g = b * NKV + h / group;
        const int64_t row = (b * NH + h) * Tq + i;
        const float *qi = q + row * HS, *doi = dout + row * HS, *oi = out + row * HS;
        const float* mask = key_mask ? key_mask + b * Tk : nullptr;
        std::fill(dqa.begin(), dqa.end(), 0.0);
        const double Lr = lse[row];
        if (std::isinf(Lr)) {
          for (int64_t c = 0; c < HS; c++) dq[row * HS + c] = 0.0f;
          continue;
        }
        double D = 0.0;
        for (int64_t c = 0; c < HS; c++) D += (double)doi[c] * oi[c];
        int64_t end = causal ? Tk - Tq + i + 1 : Tk;
        if (end > Tk) end = Tk;
        for (int64_t j = 0; j < end; j++) {
          if (mask && mask[j] == 0.0f) continue;
          const float* kj = k + (g * Tk + j) * HS;
          const float* vj = v + (g * Tk + j) * HS;
          double s = 0.0, dp = 0.0;
          for (int64_t c = 0; c < HS; c++) {
            s += (double)qi[c] * kj[c];
            dp += (double)doi[c] * vj[c];
          }
          const double p = std::exp(s * scale - Lr);
          const double ds = p * (dp - D) * scale;
          for (int64_t c = 0; c < HS; c++) {
            dqa[c] += ds * kj[c];
            dka[(g * Tk + j) * HS + c] += ds * qi[c];
            dva[(g * Tk + j) * HS + c] += p * doi[c];
          }
        }
        for (int64_t c = 0; c < HS; c++) dq[row * HS + c] = (float)dqa[c];
      }
  for (size_t x = 0; x < dka.size(); x++) {
    dk[x] = (float)dka[x];
    dv[x] = (float)dva[x];
  }
}

// Angles in float as PyTorch, cos/sin in double.
void rope(float* out, const float* x, const int32_t* positions, const float* inv_freq, int64_t B,
          int64_t T, int64_t NH, int64_t HS, int64_t rotary_dim, bool interleaved, bool inverse) {
  const int64_t half = rotary_dim / 2;
  for (int64_t bt = 0; bt < B * T; bt++)
    for (int64_t h = 0; h < NH; h++) {
      const float* xr = x + (bt * NH + h) * HS;
      float* o = out + (bt * NH + h) * HS;
      for (int64_t c = rotary_dim; c < HS; c++) o[c] = xr[c];
      for (int64_t i = 0; i < half; i++) {
        const float angle = (float)positions[bt] * inv_freq[i];
        const double cs = std::cos((double)angle), sn = (inverse ? -1 : 1) * std::sin((double)angle);
        const int64_t i0 = interleaved ? 2 * i : i, i1 = interleaved ? 2 * i + 1 : i + half;
        const double a = xr[i0], b = xr[i1];
        o[i0] = (float)(a * cs - b * sn);
        o[i1] = (float)(b * cs + a * sn);
      }
    }
}
}  // namespace ref

struct RopeShape {
  const char* name;
  int64_t B, T, NH, HS, rotary_dim;
  bool interleaved;
  int32_t pos_step;  // positions b * pos_step + t (a large step: scattered positions)
};

struct Shape {
  const char* name;
  int64_t B, NH, NKV, Tq, Tk, kvCap, HS;
  bool causal;
  int64_t pad_step;  // batch row b is left-padded by b * pad_step keys (0: no mask, -1: random holes)
};

static std::mt19937 rng(1234);
static std::vector<float> randn(int64_t n) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> x(n);
  for (auto& e : x) e = d(rng);
  return x;
}
static double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
static double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); i++) {
    if (std::isinf(a[i]) && a[i] == b[i]) continue;
    double d = std::fabs((double)a[i] - b[i]);
    if (!(d <= m)) m = d;  // NaN propagates as a failure
  }
  return m;
}

struct Case {
  Shape s;
  std::vector<float> q, k, v, kc, vc, mask, dout;
  explicit Case(const Shape& sh) : s(sh) {
    q = randn(s.B * s.NH * s.Tq * s.HS);
    k = randn(s.B * s.NKV * s.Tk * s.HS);
    v = randn(s.B * s.NKV * s.Tk * s.HS);
    dout = randn(s.B * s.NH * s.Tq * s.HS);
    // The cache copy: rows past Tk hold NaN, which a kernel must never read.
    kc.assign(s.B * s.NKV * s.kvCap * s.HS, std::nanf(""));
    vc = kc;
    for (int64_t bg = 0; bg < s.B * s.NKV; bg++) {
      std::memcpy(&kc[bg * s.kvCap * s.HS], &k[bg * s.Tk * s.HS], sizeof(float) * s.Tk * s.HS);
      std::memcpy(&vc[bg * s.kvCap * s.HS], &v[bg * s.Tk * s.HS], sizeof(float) * s.Tk * s.HS);
    }
    if (s.pad_step < 0) {
      mask.assign(s.B * s.Tk, 1.0f);
      for (auto& m : mask) m = rng() % 3 == 0 ? 0.0f : 1.0f;
    } else if (s.pad_step) {
      mask.assign(s.B * s.Tk, 1.0f);
      for (int64_t b = 0; b < s.B; b++)
        for (int64_t j = 0; j < std::min(s.Tk, b * s.pad_step); j++) mask[b * s.Tk + j] = 0.0f;
    }
  }
  const float* m() const { return mask.empty() ? nullptr : mask.data(); }
  float scale() const { return 1.0f / std::sqrt((float)s.HS); }
};

static bool check(const Shape& sh) {
  Case c(sh);
  const Shape& s = c.s;
  std::vector<float> o(c.q.size()), l(s.B * s.NH * s.Tq), ro(o.size()), rl(l.size());
  quartet::attention_forward(o.data(), l.data(), c.q.data(), c.kc.data(), c.vc.data(), c.m(), s.B,
                             s.NH, s.NKV, s.Tq, s.Tk, s.kvCap, s.HS, c.scale(), s.causal);
  ref::attention_forward(ro.data(), rl.data(), c.q.data(), c.kc.data(), c.vc.data(), c.m(), s.B,
                         s.NH, s.NKV, s.Tq, s.Tk, s.kvCap, s.HS, c.scale(), s.causal);
  double eo = max_diff(o, ro), el = max_diff(l, rl);
  double edq = 0, edk = 0, edv = 0;
  if (s.kvCap == s.Tk) {
    std::vector<float> dq(c.q.size()), dk(c.k.size()), dv(c.k.size());
    std::vector<float> rdq(dq.size()), rdk(dk.size()), rdv(dv.size());
    quartet::attention_backward(dq.data(), dk.data(), dv.data(), c.dout.data(), c.q.data(),
                                c.k.data(), c.v.data(), ro.data(), rl.data(), c.m(), s.B, s.NH,
                                s.NKV, s.Tq, s.Tk, s.HS, c.scale(), s.causal);
    ref::attention_backward(rdq.data(), rdk.data(), rdv.data(), c.dout.data(), c.q.data(),
                            c.k.data(), c.v.data(), ro.data(), rl.data(), c.m(), s.B, s.NH, s.NKV,
                            s.Tq, s.Tk, s.HS, c.scale(), s.causal);
    edq = max_diff(dq, rdq), edk = max_diff(dk, rdk), edv = max_diff(dv, rdv);
  }
  const double tol = 2e-5 * std::sqrt((double)s.Tk);
  bool ok = eo < tol && el < tol && edq < tol && edk < tol * s.NH / s.NKV && edv < tol * s.NH / s.NKV;
  std::printf("%-4s %-34s out %.1e lse %.1e dq %.1e dk %.1e dv %.1e\n", ok ? "ok" : "FAIL", s.name,
              eo, el, edq, edk, edv);
  return ok;
}

static bool check_rope(const RopeShape& s, bool inverse) {
  std::vector<float> x = randn(s.B * s.T * s.NH * s.HS), o(x.size()), ro(x.size()), inv(s.rotary_dim / 2);
  std::vector<int32_t> pos(s.B * s.T);
  for (int64_t b = 0; b < s.B; b++)
    for (int64_t t = 0; t < s.T; t++) pos[b * s.T + t] = (int32_t)(b * s.pos_step + t);
  for (int64_t i = 0; i < s.rotary_dim / 2; i++) inv[i] = 1.0f / std::pow(10000.0f, 2.0f * i / s.rotary_dim);
  quartet::rope(o.data(), x.data(), pos.data(), inv.data(), s.B, s.T, s.NH, s.HS, s.rotary_dim, s.interleaved, inverse);
  ref::rope(ro.data(), x.data(), pos.data(), inv.data(), s.B, s.T, s.NH, s.HS, s.rotary_dim, s.interleaved, inverse);
  double e = max_diff(o, ro);
  // In place must give the same.
  quartet::rope(x.data(), x.data(), pos.data(), inv.data(), s.B, s.T, s.NH, s.HS, s.rotary_dim, s.interleaved, inverse);
  double ei = max_diff(x, o);
  bool ok = e < 2e-6 && ei == 0.0;
  std::printf("%-4s rope %-29s%s err %.1e in-place %.1e\n", ok ? "ok" : "FAIL", s.name, inverse ? " inv" : "    ", e, ei);
  return ok;
}

template <class F>
static double time_it(F f, double budget = 0.5) {
  f();
  double best = 1e30, t0 = now();
  int n = 0;
  while (n < 3 || (now() - t0 < budget && n < 200)) {
    double a = now();
    f();
    best = std::min(best, now() - a);
    n++;
  }
  return best;
}

static void bench(const Shape& s, int threads) {
  omp_set_num_threads(threads);
  Case c(s);
  std::vector<float> o(c.q.size()), l(s.B * s.NH * s.Tq);
  std::vector<float> dq(c.q.size()), dk(c.k.size()), dv(c.k.size());
  double tf = time_it([&] {
    quartet::attention_forward(o.data(), l.data(), c.q.data(), c.kc.data(), c.vc.data(), c.m(),
                               s.B, s.NH, s.NKV, s.Tq, s.Tk, s.kvCap, s.HS, c.scale(), s.causal);
  });
  // Useful flops: two products over the visible (query, key) pairs.
  double pairs = 0;
  for (int64_t i = 0; i < s.Tq; i++) pairs += s.causal ? std::min(s.Tk, s.Tk - s.Tq + i + 1) : s.Tk;
  double flops = 4.0 * s.B * s.NH * pairs * s.HS;
  std::printf("%-34s t=%d  fwd %8.1f us %6.1f GFLOP/s", s.name, threads, tf * 1e6, flops / tf * 1e-9);
  if (s.kvCap == s.Tk) {
    double tb = time_it([&] {
      quartet::attention_backward(dq.data(), dk.data(), dv.data(), c.dout.data(), c.q.data(),
                                  c.k.data(), c.v.data(), o.data(), l.data(), c.m(), s.B, s.NH,
                                  s.NKV, s.Tq, s.Tk, s.HS, c.scale(), s.causal);
    });
    std::printf("   bwd %8.1f us %6.1f GFLOP/s", tb * 1e6, 2.5 * flops / tb * 1e-9);
  }
  std::printf("\n");
}

int main(int argc, char** argv) {
  const Shape checks[] = {
      {"T=1", 2, 4, 4, 1, 1, 1, 24, true, 0},
      {"causal gqa HS24 T7", 2, 4, 2, 7, 7, 7, 24, true, 0},
      {"padded gqa HS40 T70", 3, 4, 2, 70, 70, 70, 40, true, 30},
      {"noncausal mqa HS16 T33", 2, 4, 1, 33, 33, 33, 16, false, 5},
      {"decode Tq=1 kvCap>>Tk HS64", 3, 4, 2, 1, 77, 300, 64, true, 20},
      {"decode Tq=5 kvCap>>Tk HS80", 2, 6, 2, 5, 130, 256, 80, true, 50},
      {"causal HS64 T200", 2, 4, 4, 200, 200, 200, 64, true, 0},
      {"causal HS128 T130 gqa4", 1, 8, 2, 130, 130, 130, 128, true, 3},
      {"Tq>Tk causal", 1, 2, 1, 9, 4, 4, 8, true, 0},
      {"all padded", 2, 2, 1, 5, 5, 5, 8, true, 5},
      {"mask with holes HS24 T150", 2, 4, 2, 150, 150, 150, 24, true, -1},
      {"mask with holes decode", 3, 4, 2, 1, 150, 160, 40, true, -1},
      {"mask with holes noncausal", 2, 2, 2, 70, 90, 90, 16, false, -1},
  };
  const RopeShape ropes[] = {
      {"neox rd10 HS40", 2, 7, 3, 40, 10, false, 0},
      {"llama HS24", 2, 7, 2, 24, 24, false, 3},
      {"gptj rd16 HS24", 3, 5, 2, 24, 16, true, 1000},
      {"tiny B8 T256 HS64", 8, 256, 4, 64, 64, false, 0},
  };
  bool ok = true;
  for (const Shape& s : checks) ok = check(s) && ok;
  for (const RopeShape& s : ropes) ok = check_rope(s, false) && check_rope(s, true) && ok;
  if (!ok) {
    std::printf("correctness FAILED\n");
    return 1;
  }
  if (argc > 1 && std::strcmp(argv[1], "check") == 0) return 0;
  const Shape benches[] = {
      {"tiny train B8 NH4 T256 HS64", 8, 4, 4, 256, 256, 256, 64, true, 0},
      {"tiny padded B8 T256 pad 16/row", 8, 4, 4, 256, 256, 256, 64, true, 16},
      {"gpt2s train B4 NH12 T256 HS64", 4, 12, 12, 256, 256, 256, 64, true, 0},
      {"tiny decode B8 Tq1 Tk128 cap256", 8, 4, 4, 1, 128, 256, 64, true, 0},
      {"gpt2s decode B8 Tq1 Tk128 cap256", 8, 12, 12, 1, 128, 256, 64, true, 0},
      {"tiny decode B8 Tq8 Tk128 cap256", 8, 4, 4, 8, 128, 256, 64, true, 0},
      {"llama-ish decode B8 NH8 NKV2 Tq1 HS128", 8, 8, 2, 1, 512, 1024, 128, true, 0},
  };
  for (const Shape& s : benches)
    for (int t : {1, 2}) bench(s, t);
  for (int t : {1, 2}) {
    omp_set_num_threads(t);
    const RopeShape& s = ropes[3];
    std::vector<float> x = randn(s.B * s.T * s.NH * s.HS), inv(s.rotary_dim / 2, 0.01f);
    std::vector<int32_t> pos(s.B * s.T);
    for (int64_t r = 0; r < s.B * s.T; r++) pos[r] = (int32_t)(r % s.T);
    double tr = time_it([&] {
      quartet::rope(x.data(), x.data(), pos.data(), inv.data(), s.B, s.T, s.NH, s.HS, s.rotary_dim, false, false);
    });
    std::printf("rope %-29s t=%d  %8.1f us\n", s.name, t, tr * 1e6);
  }
  return 0;
}
