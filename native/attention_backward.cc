// attention_backward: gradients of attention_forward (semantics in attention.h).
//
// Flash-attention-2 style: probabilities are recomputed from the saved lse, tile by
// tile, never stored whole. One task owns a kv head (b, g): it walks key blocks of BK
// keys, and for each, every block of query rows (of all heads in the group) that sees
// it, accumulating that key block's dK, dV in small tiles and the dQ of its own
// rows. Everything a task writes belongs to it alone, so there are no races; when there
// are fewer kv heads than threads, a task's key blocks are split among threads, each
// with a private dQ that is summed afterwards in a fixed order.
//
// With S^T = K Q^T [keys][rows] (q pre-scaled by scale * log2 e):
//   P^T = exp2(S^T - lse2), dP^T = V dO^T, dS^T = P^T * (dP^T - D), D = rowsum(dO * O)
//   dV += P dO,  dK += scale * dS Q,  dQ += scale * dS^T K
// With dropout of the probabilities (keep mask Z scaled by 1 / (1 - p), regenerated from
// the seed as the forward made it; Drop is a template argument, as there):
//   dV += (P * Z) dO,  dS^T = P^T * (dP^T * Z^T - D), D = rowsum(dO * O) with O the
//   dropped output (it equals rowsum(P * Z * dP), the term softmax's backward needs).
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "attention.h"
#include "attention_tile.h"
#ifdef _OPENMP
#include <omp.h>
#endif

namespace quartet {

namespace {

using namespace attn;


// The query side of one kv head, packed once and reused by every key block:
// q and dO transposed per row block ([blk][HS][BQ], q scaled into log2 units) for the
// S^T and dP^T products, and row-major with padded rows ([rows][HSp]) for dK and dV.
struct QuerySide {
  int64_t rows, nblk, HS, HSp;
  std::vector<float> qt, dot, qp, dop, lse2, D;
  std::vector<int32_t> lim;    // last visible key per row (-1: none)
  std::vector<uint64_t> drop_base;  // per row: the dropout hash base of its key 0
  std::vector<int64_t> where;  // row -> offset of its q row in [B, NH, Tq, HS]

  QuerySide(int64_t rows_, int64_t HS_, int64_t HSp_)
      : rows(rows_), nblk((rows_ + BQ - 1) / BQ), HS(HS_), HSp(HSp_),
        qt(nblk * HS_ * BQ), dot(nblk * HS_ * BQ), qp(nblk * BQ * HSp_), dop(nblk * BQ * HSp_),
        lse2(nblk * BQ), D(nblk * BQ), lim(nblk * BQ), drop_base(nblk * BQ), where(rows_) {}

  void pack(const float* q, const float* dout, const float* out, const float* lse, int64_t b,
            int64_t g, int64_t NH, int64_t group, int64_t Tq, int64_t Tk, float scale,
            bool causal, const Dropout& drop) {
    const float qscale = scale * kLog2e;
    std::memset(qt.data(), 0, sizeof(float) * qt.size());
    std::memset(dot.data(), 0, sizeof(float) * dot.size());
    std::memset(qp.data(), 0, sizeof(float) * qp.size());
    std::memset(dop.data(), 0, sizeof(float) * dop.size());
    for (int64_t r = 0; r < nblk * BQ; r++) {
      lim[r] = -1;
      lse2[r] = std::numeric_limits<float>::infinity();  // exp2(s - inf) = 0: no gradient
      D[r] = 0.0f;
      drop_base[r] = 0;
    }
    for (int64_t r = 0; r < rows; r++) {
      const int64_t h = g * group + r / Tq, i = r % Tq;
      const int64_t row = (b * NH + h) * Tq + i;
      where[r] = row * HS;
      drop_base[r] = attn::drop_base(drop, static_cast<uint64_t>(row * Tk));
      const float* qr = q + row * HS;
      const float* dr = dout + row * HS;
      const float* orow = out + row * HS;
      const int64_t blk = r / BQ, lane = r % BQ;
      for (int64_t c = 0; c < HS; c++) {
        qt[(blk * HS + c) * BQ + lane] = qr[c] * qscale;
        dot[(blk * HS + c) * BQ + lane] = dr[c];
      }
      // D in double: the product of two floats is exact there, so the sum is the same
      // whether or not the compiler fuses it into an FMA. In float, GCC's vectorised and
      // scalar versions of this loop (one picked at run time from the buffers' addresses)
      // rounded differently, and the gradients changed in the last bit from call to call.
      double d = 0.0;
      for (int64_t c = 0; c < HS; c++) d += static_cast<double>(dr[c]) * orow[c];
      std::memcpy(&qp[r * HSp], qr, sizeof(float) * HS);
      std::memcpy(&dop[r * HSp], dr, sizeof(float) * HS);
      if (std::isinf(lse[row])) continue;  // a row that saw no key
      int64_t l = causal ? Tk - Tq + i : Tk - 1;
      if (l > Tk - 1) l = Tk - 1;
      lim[r] = static_cast<int32_t>(l < -1 ? -1 : l);
      lse2[r] = lse[row] * kLog2e;
      D[r] = static_cast<float>(d);
    }
  }

  int32_t block_max_lim(int64_t blk) const {
    int32_t m = -1;
    for (int64_t r = blk * BQ; r < (blk + 1) * BQ; r++) m = lim[r] > m ? lim[r] : m;
    return m;
  }
};

struct KeyScratch {
  std::vector<float> kp, s, dp, dk, dv;
  KeyScratch(int64_t HSp) : kp(BK * HSp), s(BK * BQ), dp(BK * BQ), dk(BK * HSp), dv(BK * HSp) {}
};

// dK, dV of keys [j0, j0 + nk) into dk, dv (rows of HS), and dQ of every query row of
// this kv head into dq_acc ([rows][HSp], accumulated).
template <bool Drop>
void key_block(KeyScratch& w, const QuerySide& qs, float* dq_acc, float* dk, float* dv,
               const float* kb, const float* vb, const float* mask, int64_t j0, int64_t nk,
               float scale, const Dropout& drop) {
  const int64_t HS = qs.HS, HSp = qs.HSp;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  pack_rows(w.kp.data(), HSp, kb + j0 * HS, HS, nk, HS);
  std::memset(w.dk.data(), 0, sizeof(float) * nk * HSp);
  std::memset(w.dv.data(), 0, sizeof(float) * nk * HSp);
  for (int64_t blk = 0; blk < qs.nblk; blk++) {
    const int64_t r0 = blk * BQ;
    const int64_t nr = qs.rows - r0 < BQ ? qs.rows - r0 : BQ;
    if (qs.block_max_lim(blk) < j0) continue;  // no row of this block sees these keys
    const int64_t lanes = round_up(nr, L);
    float* s = w.s.data();
    float* dp = w.dp.data();
    bmm(nk, lanes, HS, kb + j0 * HS, HS, 1, &qs.qt[blk * HS * BQ], BQ, s, BQ, false);
    bmm(nk, lanes, HS, vb + j0 * HS, HS, 1, &qs.dot[blk * HS * BQ], BQ, dp, BQ, false);
    for (int64_t v = 0; v < lanes / L; v++) {
      const vi lim = load_i(&qs.lim[r0 + v * L]);
      const vf lse2 = load(&qs.lse2[r0 + v * L]);
      const vf D = load(&qs.D[r0 + v * L]);
      for (int64_t j = 0; j < nk; j++) {
        float* sj = s + j * BQ + v * L;
        float* dpj = dp + j * BQ + v * L;
        vf x = load(sj) - lse2;
        if (mask && mask[j0 + j] == 0.0f) x = splat(neg_inf);
        x = lim < static_cast<int32_t>(j0 + j) ? splat(neg_inf) : x;
        const vf p = exp2v(x);
        if constexpr (Drop) {
          const vf z = keep_scaled(drop, &qs.drop_base[r0 + v * L], j0 + j);
          store(sj, p * z);
          store(dpj, p * (load(dpj) * z - D));
        } else {
          store(sj, p);
          store(dpj, p * (load(dpj) - D));
        }
      }
    }
    // s now holds P^T [keys][rows] (times Z^T with dropout), dp holds dS^T.
    bmm(nk, HSp, nr, s, BQ, 1, &qs.dop[r0 * HSp], HSp, w.dv.data(), HSp, true);
    bmm(nk, HSp, nr, dp, BQ, 1, &qs.qp[r0 * HSp], HSp, w.dk.data(), HSp, true);
    bmm(nr, HSp, nk, dp, 1, BQ, w.kp.data(), HSp, dq_acc + r0 * HSp, HSp, true);
  }
  for (int64_t j = 0; j < nk; j++) {
    float* dkj = dk + (j0 + j) * HS;
    float* dvj = dv + (j0 + j) * HS;
    for (int64_t c = 0; c < HS; c++) {
      dkj[c] = w.dk[j * HSp + c] * scale;
      dvj[c] = w.dv[j * HSp + c];
    }
  }
}

}  // namespace

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, const float* out, const float* lse,
                        const float* key_mask, int64_t B, int64_t NH, int64_t NKV, int64_t Tq,
                        int64_t Tk, int64_t HS, float scale, bool causal, float dropout_p,
                        uint64_t seed) {
  if (B <= 0 || NKV <= 0 || HS <= 0) return;
  const bool dropping = dropout_p > 0.0f;
  const Dropout drop = make_dropout(dropout_p, seed);
  std::memset(dk, 0, sizeof(float) * B * NKV * Tk * HS);
  std::memset(dv, 0, sizeof(float) * B * NKV * Tk * HS);
  if (Tq <= 0) return;
  const int64_t group = NH / NKV;
  const int64_t rows = group * Tq;
  const int64_t HSp = round_up(HS, L);
  const int64_t heads = B * NKV;
  const bool parallel = B * NH * Tq * Tk * HS >= (1 << 16);
#ifdef _OPENMP
  const int64_t threads = parallel ? omp_get_max_threads() : 1;
#else
  const int64_t threads = 1;
#endif
  // Split each kv head's keys among `split` threads when heads alone cannot fill them.
  const int64_t split = threads == 1 || heads >= 2 * threads ? 1 : (2 * threads + heads - 1) / heads;
  std::vector<float> dq_part(split > 1 ? split * heads * rows * HSp : 0);

#pragma omp parallel if (parallel)
  {
    QuerySide qs(rows, HS, HSp);
    KeyScratch w(HSp);
    std::vector<float> dq_own(split > 1 ? 0 : rows * HSp);
    // Tasks are (kv head, part of its key blocks); a part walks every split-th key block.
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < heads * split; t++) {
      const int64_t bg = t / split, part = t % split;
      const int64_t b = bg / NKV, g = bg % NKV;
      const float* mask = key_mask ? key_mask + b * Tk : nullptr;
      int64_t first = 0;
      if (mask)
        while (first < Tk && mask[first] == 0.0f) first++;
      qs.pack(q, dout, out, lse, b, g, NH, group, Tq, Tk, scale, causal, drop);
      int32_t last = -1;
      for (int64_t blk = 0; blk < qs.nblk; blk++) {
        const int32_t m = qs.block_max_lim(blk);
        last = m > last ? m : last;
      }
      float* dq_acc = split > 1 ? &dq_part[(part * heads + bg) * rows * HSp] : dq_own.data();
      std::memset(dq_acc, 0, sizeof(float) * rows * HSp);
      int64_t kblk = 0;
      for (int64_t j0 = first; j0 <= last; j0 += BK, kblk++) {
        if (kblk % split != part) continue;
        const int64_t nk = last + 1 - j0 < BK ? last + 1 - j0 : BK;
        float* dkb = dk + bg * Tk * HS;
        float* dvb = dv + bg * Tk * HS;
        const float* kb = k + bg * Tk * HS;
        const float* vb = v + bg * Tk * HS;
        if (dropping) {
          key_block<true>(w, qs, dq_acc, dkb, dvb, kb, vb, mask, j0, nk, scale, drop);
        } else {
          key_block<false>(w, qs, dq_acc, dkb, dvb, kb, vb, mask, j0, nk, scale, drop);
        }
      }
      if (split == 1)
        for (int64_t r = 0; r < rows; r++)
          for (int64_t c = 0; c < HS; c++) dq[qs.where[r] + c] = dq_acc[r * HSp + c] * scale;
    }
    if (split > 1) {
      // Sum the parts of each row in part order: the same result for any thread count
      // that gives the same split.
#pragma omp for schedule(static)
      for (int64_t bg = 0; bg < heads; bg++) {
        const int64_t b = bg / NKV, g = bg % NKV;
        for (int64_t r = 0; r < rows; r++) {
          const int64_t h = g * group + r / Tq, i = r % Tq;
          float* dqr = dq + ((b * NH + h) * Tq + i) * HS;
          for (int64_t c = 0; c < HS; c++) {
            float acc = 0.0f;
            for (int64_t p = 0; p < split; p++) acc += dq_part[((p * heads + bg) * rows + r) * HSp + c];
            dqr[c] = acc * scale;
          }
        }
      }
    }
  }
}

}  // namespace quartet
