// The one file that sees napi: binds every kernel declared in src/native.ts.
//
// Each binding reads its arguments through `Args`, which checks types (Float32Array,
// Int32Array, Uint16Array, null where allowed, numbers, booleans), turns dimensions
// into checked int64 products, and checks that every array is long enough before any
// pointer reaches a kernel. A failed check throws ArgError, which `dispatch` turns into
// a JavaScript TypeError or RangeError naming the function and the argument, so a bad
// call from JavaScript throws instead of reading or writing out of bounds.
#include <napi.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <new>
#include <string>
#include <vector>

#include "activations.h"
#include "attention.h"
#include "convert.h"
#include "elementwise.h"
#include "gemm.h"
#include "layout.h"
#include "losses.h"
#include "sampling.h"
#include "norms.h"
#include "optim.h"
#include "reductions.h"
#include "softmax.h"

namespace {

struct ArgError {
  bool range;  // RangeError; otherwise TypeError
  std::string message;
};

// A JavaScript exception is already pending (a getter of an argument threw): the
// binding stops and lets that exception propagate unchanged.
struct PendingJsException {};

// A typed array argument: its element pointer (byteOffset applied by napi) and length.
template <class T>
struct Arr {
  T* data;
  int64_t length;
  const char* name;
};

using F32 = Arr<float>;

// Dimensions above this are surely a bug, and keep products of a few far from overflow.
constexpr double kMaxDim = 1099511627776.0;  // 2^40

// A number as a person would write it: 3, 1.5, -1, nan, 1.099511628e+12.
std::string num(double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", d);
  return buf;
}

std::string describe(const Napi::Value& v) {
  if (v.IsNull()) return "null";
  if (v.IsUndefined()) return "undefined";
  if (v.IsTypedArray()) {
    switch (v.As<Napi::TypedArray>().TypedArrayType()) {
      case napi_int8_array: return "Int8Array";
      case napi_uint8_array: return "Uint8Array";
      case napi_uint8_clamped_array: return "Uint8ClampedArray";
      case napi_int16_array: return "Int16Array";
      case napi_uint16_array: return "Uint16Array";
      case napi_int32_array: return "Int32Array";
      case napi_uint32_array: return "Uint32Array";
      case napi_float32_array: return "Float32Array";
      case napi_float64_array: return "Float64Array";
      default: return "a typed array";
    }
  }
  if (v.IsNumber()) return "number " + num(v.As<Napi::Number>().DoubleValue());
  if (v.IsBoolean()) return "boolean";
  if (v.IsString()) return "string";
  if (v.IsArray()) return "Array";
  if (v.IsFunction()) return "function";
  return "object";
}

class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* fn) : info_(info), fn_(fn) {}

  Napi::Env env() const { return info_.Env(); }
  Napi::Value undefined() const { return info_.Env().Undefined(); }

  [[noreturn]] void type_error(const std::string& msg) const {
    throw ArgError{false, std::string(fn_) + ": " + msg};
  }
  [[noreturn]] void range_error(const std::string& msg) const {
    throw ArgError{true, std::string(fn_) + ": " + msg};
  }

  F32 f32(size_t i, const char* name) const {
    return typed<float>(i, name, napi_float32_array, "a Float32Array");
  }
  Arr<int32_t> i32(size_t i, const char* name) const {
    return typed<int32_t>(i, name, napi_int32_array, "an Int32Array");
  }
  Arr<uint16_t> u16(size_t i, const char* name) const {
    return typed<uint16_t>(i, name, napi_uint16_array, "a Uint16Array");
  }
  Arr<double> f64(size_t i, const char* name) const {
    return typed<double>(i, name, napi_float64_array, "a Float64Array");
  }
  // null gives {nullptr, 0}.
  F32 f32_or_null(size_t i, const char* name) const {
    if (info_[i].IsNull()) return {nullptr, 0, name};
    return typed<float>(i, name, napi_float32_array, "a Float32Array or null");
  }

  double number(size_t i, const char* name) const {
    Napi::Value v = info_[i];
    if (!v.IsNumber()) type_error(arg(name) + " must be a number, got " + describe(v));
    return v.As<Napi::Number>().DoubleValue();
  }
  double finite(size_t i, const char* name) const {
    double d = number(i, name);
    if (!std::isfinite(d)) range_error(arg(name) + " must be finite, got " + num(d));
    return d;
  }
  // A non-negative integer (a size, count, stride or step).
  int64_t dim(size_t i, const char* name) const {
    double d = number(i, name);
    if (!(d >= 0 && d <= kMaxDim && std::floor(d) == d)) {
      range_error(arg(name) + " must be an integer in [0, 2^40], got " + num(d));
    }
    return static_cast<int64_t>(d);
  }
  bool flag(size_t i, const char* name) const {
    Napi::Value v = info_[i];
    if (!v.IsBoolean()) type_error(arg(name) + " must be a boolean, got " + describe(v));
    return v.As<Napi::Boolean>().Value();
  }
  std::string string(size_t i, const char* name) const {
    Napi::Value v = info_[i];
    if (!v.IsString()) type_error(arg(name) + " must be a string, got " + describe(v));
    return v.As<Napi::String>().Utf8Value();
  }
  // A JS array of integers in [0, 2^40].
  std::vector<int64_t> int_list(size_t i, const char* name) const {
    Napi::Value v = info_[i];
    if (!v.IsArray()) type_error(arg(name) + " must be an Array of integers, got " + describe(v));
    Napi::Array a = v.As<Napi::Array>();
    std::vector<int64_t> out;
    for (uint32_t j = 0; j < a.Length(); j++) {
      Napi::Value e = a.Get(j);
      if (info_.Env().IsExceptionPending()) throw PendingJsException{};
      double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : -1.0;
      if (!(d >= 0 && d <= kMaxDim && std::floor(d) == d)) {
        range_error(arg(name) + "[" + std::to_string(j) +
                    "] must be a non-negative integer, got " + describe(e));
      }
      out.push_back(static_cast<int64_t>(d));
    }
    return out;
  }

  // Product of dimensions; a product past 2^53 is rejected (no array is that long).
  int64_t product(std::initializer_list<int64_t> dims) const {
    int64_t p = 1;
    for (int64_t d : dims) {
      if (__builtin_mul_overflow(p, d, &p) || p > (int64_t(1) << 53)) {
        range_error("dimensions are too large (element count overflows)");
      }
    }
    return p;
  }

  template <class T>
  void need(const Arr<T>& a, int64_t n) const {
    if (a.length < n) {
      range_error(arg(a.name) + " must have at least " + std::to_string(n) + " elements, got " +
                  std::to_string(a.length));
    }
  }

 private:
  static std::string arg(const char* name) { return std::string("argument '") + name + "'"; }

  template <class T>
  Arr<T> typed(size_t i, const char* name, napi_typedarray_type want, const char* what) const {
    Napi::Value v = info_[i];
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != want) {
      type_error(arg(name) + " must be " + what + ", got " + describe(v));
    }
    auto t = v.As<Napi::TypedArrayOf<T>>();
    return {t.Data(), static_cast<int64_t>(t.ElementLength()), name};
  }

  const Napi::CallbackInfo& info_;
  const char* fn_;
};

using Binding = Napi::Value (*)(Args&);

struct Entry {
  const char* name;
  size_t arity;
  Binding fn;
};

// ---- threads and backends ----

Napi::Value set_threads(Args& a) {
  const int64_t n = a.dim(0, "n");
  if (n < 1 || n > 1024) a.range_error("argument 'n' must be in [1, 1024], got " + std::to_string(n));
#ifdef _OPENMP
  omp_set_num_threads(static_cast<int>(n));
#endif
  quartet::gemm_set_threads(static_cast<int>(n));
  return a.undefined();
}

Napi::Value get_threads(Args& a) {
#ifdef _OPENMP
  return Napi::Number::New(a.env(), omp_get_max_threads());
#else
  return Napi::Number::New(a.env(), 1);
#endif
}

Napi::Value set_gemm_backend(Args& a) {
  const std::string name = a.string(0, "name");
  if (name != "blas" && name != "own") {
    a.range_error("argument 'name' must be 'blas' or 'own', got '" + name + "'");
  }
  quartet::gemm_use_blas(name == "blas");
  return a.undefined();
}

Napi::Value get_gemm_backend(Args& a) {
  return Napi::String::New(a.env(), quartet::gemm_using_blas() ? quartet::gemm_blas_name() : "own");
}

// ---- matrix products ----

// Elements a rows x cols matrix with row stride ld spans.
int64_t matrix_span(const Args& a, int64_t rows, int64_t cols, int64_t ld) {
  if (rows == 0 || cols == 0) return 0;
  return a.product({rows - 1, ld}) + cols;
}

// Checks the leading dimensions of a gemm; returns the spans of A, B and C.
struct GemmSpans {
  int64_t a, b, c;
};

GemmSpans gemm_spans(const Args& a, bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t lda,
                     int64_t ldb, int64_t ldc) {
  const int64_t a_rows = ta ? K : M, a_cols = ta ? M : K;
  const int64_t b_rows = tb ? N : K, b_cols = tb ? K : N;
  if (lda < (a_cols > 1 ? a_cols : 1)) {
    a.range_error("argument 'lda' must be at least " + std::to_string(a_cols) + ", got " +
                  std::to_string(lda));
  }
  if (ldb < (b_cols > 1 ? b_cols : 1)) {
    a.range_error("argument 'ldb' must be at least " + std::to_string(b_cols) + ", got " +
                  std::to_string(ldb));
  }
  if (ldc < (N > 1 ? N : 1)) {
    a.range_error("argument 'ldc' must be at least " + std::to_string(N) + ", got " +
                  std::to_string(ldc));
  }
  return {matrix_span(a, a_rows, a_cols, lda), matrix_span(a, b_rows, b_cols, ldb),
          matrix_span(a, M, N, ldc)};
}

Napi::Value gemm(Args& a) {
  const bool ta = a.flag(0, "transA"), tb = a.flag(1, "transB");
  const int64_t M = a.dim(2, "M"), N = a.dim(3, "N"), K = a.dim(4, "K");
  const double alpha = a.number(5, "alpha");
  F32 A = a.f32(6, "A");
  const int64_t lda = a.dim(7, "lda");
  F32 B = a.f32(8, "B");
  const int64_t ldb = a.dim(9, "ldb");
  const double beta = a.number(10, "beta");
  F32 C = a.f32(11, "C");
  const int64_t ldc = a.dim(12, "ldc");
  const GemmSpans s = gemm_spans(a, ta, tb, M, N, K, lda, ldb, ldc);
  a.need(A, s.a);
  a.need(B, s.b);
  a.need(C, s.c);
  quartet::gemm(ta, tb, M, N, K, static_cast<float>(alpha), A.data, lda, B.data, ldb,
                static_cast<float>(beta), C.data, ldc);
  return a.undefined();
}

int64_t batch_span(const Args& a, int64_t batch, int64_t stride, int64_t one) {
  if (batch == 0 || one == 0) return 0;
  return a.product({batch - 1, stride}) + one;
}

Napi::Value gemm_batched(Args& a) {
  const bool ta = a.flag(0, "transA"), tb = a.flag(1, "transB");
  const int64_t M = a.dim(2, "M"), N = a.dim(3, "N"), K = a.dim(4, "K");
  const double alpha = a.number(5, "alpha");
  F32 A = a.f32(6, "A");
  const int64_t lda = a.dim(7, "lda"), strideA = a.dim(8, "strideA");
  F32 B = a.f32(9, "B");
  const int64_t ldb = a.dim(10, "ldb"), strideB = a.dim(11, "strideB");
  const double beta = a.number(12, "beta");
  F32 C = a.f32(13, "C");
  const int64_t ldc = a.dim(14, "ldc"), strideC = a.dim(15, "strideC");
  const int64_t batch = a.dim(16, "batch");
  const GemmSpans s = gemm_spans(a, ta, tb, M, N, K, lda, ldb, ldc);
  // Overlapping outputs would be written by several products at once.
  if (batch > 1 && strideC < s.c) {
    a.range_error("argument 'strideC' must be at least " + std::to_string(s.c) +
                  " (outputs may not overlap), got " + std::to_string(strideC));
  }
  a.need(A, batch_span(a, batch, strideA, s.a));
  a.need(B, batch_span(a, batch, strideB, s.b));
  a.need(C, batch_span(a, batch, strideC, s.c));
  quartet::gemm_batched(ta, tb, M, N, K, static_cast<float>(alpha), A.data, lda, strideA, B.data,
                        ldb, strideB, static_cast<float>(beta), C.data, ldc, strideC, batch);
  return a.undefined();
}

// ---- elementwise: n = a.length, every other array at least n ----

template <void (*K)(float*, const float*, const float*, int64_t)>
Napi::Value binary(Args& a) {
  F32 out = a.f32(0, "out"), x = a.f32(1, "a"), y = a.f32(2, "b");
  a.need(out, x.length);
  a.need(y, x.length);
  K(out.data, x.data, y.data, x.length);
  return a.undefined();
}

template <void (*K)(float*, const float*, int64_t)>
Napi::Value unary(Args& a) {
  F32 out = a.f32(0, "out"), x = a.f32(1, "a");
  a.need(out, x.length);
  K(out.data, x.data, x.length);
  return a.undefined();
}

// (dinp, a, dout): n = a.length.
template <void (*K)(float*, const float*, const float*, int64_t)>
Napi::Value unary_backward(Args& a) {
  F32 dinp = a.f32(0, "dinp"), x = a.f32(1, "a"), dout = a.f32(2, "dout");
  a.need(dinp, x.length);
  a.need(dout, x.length);
  K(dinp.data, x.data, dout.data, x.length);
  return a.undefined();
}

Napi::Value affine(Args& a) {
  F32 out = a.f32(0, "out"), x = a.f32(1, "a");
  const double alpha = a.number(2, "alpha"), beta = a.number(3, "beta");
  a.need(out, x.length);
  quartet::affine(out.data, x.data, static_cast<float>(alpha), static_cast<float>(beta), x.length);
  return a.undefined();
}

Napi::Value axpy(Args& a) {
  F32 out = a.f32(0, "out"), x = a.f32(1, "a");
  const double alpha = a.number(2, "alpha");
  F32 y = a.f32(3, "b");
  a.need(out, x.length);
  a.need(y, x.length);
  quartet::axpy(out.data, x.data, static_cast<float>(alpha), y.data, x.length);
  return a.undefined();
}

Napi::Value fill(Args& a) {
  F32 out = a.f32(0, "out");
  quartet::fill(out.data, static_cast<float>(a.number(1, "value")), out.length);
  return a.undefined();
}

Napi::Value where(Args& a) {
  F32 out = a.f32(0, "out"), cond = a.f32(1, "cond"), x = a.f32(2, "a"), y = a.f32(3, "b");
  a.need(out, x.length);
  a.need(cond, x.length);
  a.need(y, x.length);
  quartet::where(out.data, cond.data, x.data, y.data, x.length);
  return a.undefined();
}

Napi::Value clamp(Args& a) {
  F32 out = a.f32(0, "out"), x = a.f32(1, "a");
  const double lo = a.number(2, "lo"), hi = a.number(3, "hi");
  a.need(out, x.length);
  quartet::clamp(out.data, x.data, static_cast<float>(lo), static_cast<float>(hi), x.length);
  return a.undefined();
}

Napi::Value clamp_backward(Args& a) {
  F32 dinp = a.f32(0, "dinp"), x = a.f32(1, "a"), dout = a.f32(2, "dout");
  const double lo = a.number(3, "lo"), hi = a.number(4, "hi");
  a.need(dinp, x.length);
  a.need(dout, x.length);
  quartet::clamp_backward(dinp.data, x.data, dout.data, static_cast<float>(lo),
                          static_cast<float>(hi), x.length);
  return a.undefined();
}

Napi::Value gelu(Args& a) {
  F32 out = a.f32(0, "out"), x = a.f32(1, "a");
  const bool approximate = a.flag(2, "approximate");
  a.need(out, x.length);
  quartet::gelu(out.data, x.data, approximate, x.length);
  return a.undefined();
}

Napi::Value gelu_backward(Args& a) {
  F32 dinp = a.f32(0, "dinp"), x = a.f32(1, "a"), dout = a.f32(2, "dout");
  const bool approximate = a.flag(3, "approximate");
  a.need(dinp, x.length);
  a.need(dout, x.length);
  quartet::gelu_backward(dinp.data, x.data, dout.data, approximate, x.length);
  return a.undefined();
}

Napi::Value dropout(Args& a) {
  F32 out = a.f32(0, "out"), mask = a.f32(1, "mask"), x = a.f32(2, "a");
  const double p = a.number(3, "p");
  if (!(p >= 0.0 && p <= 1.0)) a.range_error("argument 'p' must be in [0, 1], got " + num(p));
  const double seed = a.number(4, "seed");
  if (!(seed >= 0 && seed <= 9007199254740992.0 && std::floor(seed) == seed)) {
    a.range_error("argument 'seed' must be an integer in [0, 2^53], got " + num(seed));
  }
  a.need(out, x.length);
  a.need(mask, x.length);
  quartet::dropout(out.data, mask.data, x.data, static_cast<float>(p), static_cast<uint64_t>(seed),
                   x.length);
  return a.undefined();
}

// ---- rows of [N, C] ----

template <void (*K)(float*, const float*, const float*, int64_t, int64_t)>
Napi::Value row_broadcast(Args& a) {
  F32 out = a.f32(0, "out"), x = a.f32(1, "a"), b = a.f32(2, "b");
  const int64_t N = a.dim(3, "N"), C = a.dim(4, "C");
  const int64_t NC = a.product({N, C});
  a.need(out, NC);
  a.need(x, NC);
  a.need(b, C);
  K(out.data, x.data, b.data, N, C);
  return a.undefined();
}

Napi::Value sum_rows(Args& a) {
  F32 out = a.f32(0, "out"), x = a.f32(1, "a");
  const int64_t N = a.dim(2, "N"), C = a.dim(3, "C");
  a.need(out, C);
  a.need(x, a.product({N, C}));
  quartet::sum_rows(out.data, x.data, N, C);
  return a.undefined();
}

Napi::Value sum_cols(Args& a) {
  F32 out = a.f32(0, "out"), x = a.f32(1, "a");
  const int64_t N = a.dim(2, "N"), C = a.dim(3, "C");
  a.need(out, N);
  a.need(x, a.product({N, C}));
  quartet::sum_cols(out.data, x.data, N, C);
  return a.undefined();
}

Napi::Value sum_all(Args& a) {
  F32 x = a.f32(0, "a");
  return Napi::Number::New(a.env(), quartet::sum_all(x.data, x.length));
}

Napi::Value sum_squares(Args& a) {
  F32 x = a.f32(0, "a");
  return Napi::Number::New(a.env(), quartet::sum_squares(x.data, x.length));
}

Napi::Value all_finite(Args& a) {
  F32 x = a.f32(0, "a");
  return Napi::Boolean::New(a.env(), quartet::all_finite(x.data, x.length));
}

// ---- layout ----

Napi::Value permute(Args& a) {
  F32 out = a.f32(0, "out"), inp = a.f32(1, "inp");
  const std::vector<int64_t> shape = a.int_list(2, "shape");
  const std::vector<int64_t> perm = a.int_list(3, "perm");
  const int ndim = static_cast<int>(shape.size());
  if (ndim < 1 || ndim > quartet::kMaxPermuteDims) {
    a.range_error("argument 'shape' must have 1 to 6 dims, got " + std::to_string(ndim));
  }
  if (perm.size() != shape.size()) {
    a.range_error("argument 'perm' must have " + std::to_string(ndim) + " entries (one per axis), got " +
                  std::to_string(perm.size()));
  }
  bool seen[quartet::kMaxPermuteDims] = {};
  int p32[quartet::kMaxPermuteDims];
  for (int i = 0; i < ndim; i++) {
    if (perm[i] >= ndim || seen[perm[i]]) {
      a.range_error("argument 'perm' must be a permutation of 0.." + std::to_string(ndim - 1));
    }
    seen[perm[i]] = true;
    p32[i] = static_cast<int>(perm[i]);
  }
  int64_t total = 1;
  for (int64_t d : shape) total = a.product({total, d});
  a.need(out, total);
  a.need(inp, total);
  quartet::permute(out.data, inp.data, shape.data(), p32, ndim);
  return a.undefined();
}

// Every index must name a row in [0, rows).
void check_indices(const Args& a, const Arr<int32_t>& idx, int64_t rows) {
  for (int64_t i = 0; i < idx.length; i++) {
    if (idx.data[i] < 0 || idx.data[i] >= rows) {
      a.range_error(std::string("argument '") + idx.name + "'[" + std::to_string(i) + "] = " +
                    std::to_string(idx.data[i]) + " is out of range [0, " + std::to_string(rows) + ")");
    }
  }
}

Napi::Value gather_rows(Args& a) {
  F32 out = a.f32(0, "out"), inp = a.f32(1, "inp");
  Arr<int32_t> idx = a.i32(2, "idx");
  const int64_t C = a.dim(3, "C");
  a.need(out, a.product({idx.length, C}));
  if (C == 0) return a.undefined();
  check_indices(a, idx, inp.length / C);
  quartet::gather_rows(out.data, inp.data, idx.data, idx.length, C);
  return a.undefined();
}

Napi::Value scatter_add_rows(Args& a) {
  F32 out = a.f32(0, "out"), inp = a.f32(1, "inp");
  Arr<int32_t> idx = a.i32(2, "idx");
  const int64_t R = a.dim(3, "R"), C = a.dim(4, "C");
  a.need(out, a.product({R, C}));
  a.need(inp, a.product({idx.length, C}));
  check_indices(a, idx, R);
  quartet::scatter_add_rows(out.data, inp.data, idx.data, idx.length, R, C);
  return a.undefined();
}

// ---- normalisation and softmax ----

Napi::Value layernorm_forward(Args& a) {
  F32 out = a.f32(0, "out"), mean = a.f32(1, "mean"), rstd = a.f32(2, "rstd");
  F32 inp = a.f32(3, "inp"), weight = a.f32(4, "weight"), bias = a.f32_or_null(5, "bias");
  const int64_t N = a.dim(6, "N"), C = a.dim(7, "C");
  const double eps = a.finite(8, "eps");
  const int64_t NC = a.product({N, C});
  a.need(out, NC);
  a.need(inp, NC);
  a.need(mean, N);
  a.need(rstd, N);
  a.need(weight, C);
  if (bias.data) a.need(bias, C);
  quartet::layernorm_forward(out.data, mean.data, rstd.data, inp.data, weight.data, bias.data, N, C,
                             static_cast<float>(eps));
  return a.undefined();
}

Napi::Value layernorm_backward(Args& a) {
  F32 dinp = a.f32(0, "dinp"), dweight = a.f32(1, "dweight"), dbias = a.f32_or_null(2, "dbias");
  F32 dout = a.f32(3, "dout"), inp = a.f32(4, "inp"), weight = a.f32(5, "weight");
  F32 mean = a.f32(6, "mean"), rstd = a.f32(7, "rstd");
  const int64_t N = a.dim(8, "N"), C = a.dim(9, "C");
  const int64_t NC = a.product({N, C});
  a.need(dinp, NC);
  a.need(dout, NC);
  a.need(inp, NC);
  a.need(dweight, C);
  if (dbias.data) a.need(dbias, C);
  a.need(weight, C);
  a.need(mean, N);
  a.need(rstd, N);
  quartet::layernorm_backward(dinp.data, dweight.data, dbias.data, dout.data, inp.data, weight.data,
                              mean.data, rstd.data, N, C);
  return a.undefined();
}

Napi::Value rmsnorm_forward(Args& a) {
  F32 out = a.f32(0, "out"), rstd = a.f32(1, "rstd"), inp = a.f32(2, "inp"),
      weight = a.f32(3, "weight");
  const int64_t N = a.dim(4, "N"), C = a.dim(5, "C");
  const double eps = a.finite(6, "eps");
  const int64_t NC = a.product({N, C});
  a.need(out, NC);
  a.need(inp, NC);
  a.need(rstd, N);
  a.need(weight, C);
  quartet::rmsnorm_forward(out.data, rstd.data, inp.data, weight.data, N, C, static_cast<float>(eps));
  return a.undefined();
}

Napi::Value rmsnorm_backward(Args& a) {
  F32 dinp = a.f32(0, "dinp"), dweight = a.f32(1, "dweight"), dout = a.f32(2, "dout");
  F32 inp = a.f32(3, "inp"), weight = a.f32(4, "weight"), rstd = a.f32(5, "rstd");
  const int64_t N = a.dim(6, "N"), C = a.dim(7, "C");
  const int64_t NC = a.product({N, C});
  a.need(dinp, NC);
  a.need(dout, NC);
  a.need(inp, NC);
  a.need(dweight, C);
  a.need(weight, C);
  a.need(rstd, N);
  quartet::rmsnorm_backward(dinp.data, dweight.data, dout.data, inp.data, weight.data, rstd.data, N, C);
  return a.undefined();
}

Napi::Value softmax_forward(Args& a) {
  F32 out = a.f32(0, "out"), inp = a.f32(1, "inp");
  const int64_t N = a.dim(2, "N"), C = a.dim(3, "C");
  const int64_t NC = a.product({N, C});
  a.need(out, NC);
  a.need(inp, NC);
  quartet::softmax_forward(out.data, inp.data, N, C);
  return a.undefined();
}

Napi::Value softmax_backward(Args& a) {
  F32 dinp = a.f32(0, "dinp"), out = a.f32(1, "out"), dout = a.f32(2, "dout");
  const int64_t N = a.dim(3, "N"), C = a.dim(4, "C");
  const int64_t NC = a.product({N, C});
  a.need(dinp, NC);
  a.need(out, NC);
  a.need(dout, NC);
  quartet::softmax_backward(dinp.data, out.data, dout.data, N, C);
  return a.undefined();
}

// ---- token-level losses ----

// Labels may be negative (ignored) but never >= V.
void check_labels(const Args& a, const Arr<int32_t>& labels, int64_t N, int64_t V) {
  for (int64_t i = 0; i < N; i++) {
    if (labels.data[i] >= V) {
      a.range_error("argument 'labels'[" + std::to_string(i) + "] = " + std::to_string(labels.data[i]) +
                    " is out of range (V = " + std::to_string(V) + "; negative labels are ignored)");
    }
  }
}

Napi::Value logprobs_forward(Args& a) {
  F32 out = a.f32(0, "out"), lse = a.f32(1, "lse"), logits = a.f32(2, "logits");
  Arr<int32_t> labels = a.i32(3, "labels");
  const int64_t N = a.dim(4, "N"), V = a.dim(5, "V");
  if (N > 0 && V == 0) a.range_error("argument 'V' must be at least 1");
  a.need(out, N);
  a.need(lse, N);
  a.need(labels, N);
  a.need(logits, a.product({N, V}));
  check_labels(a, labels, N, V);
  quartet::logprobs_forward(out.data, lse.data, logits.data, labels.data, N, V);
  return a.undefined();
}

Napi::Value sample_rows(Args& a) {
  Arr<int32_t> out = a.i32(0, "out");
  F32 logits = a.f32(1, "logits");
  Arr<double> uniforms = a.f64(2, "uniforms");
  const int64_t B = a.dim(3, "B"), V = a.dim(4, "V");
  const double temperature = a.finite(5, "temperature");
  if (B > 0 && V == 0) a.range_error("argument 'V' must be at least 1");
  if (!(temperature > 0)) a.range_error("argument 'temperature' must be > 0, got " + num(temperature));
  a.need(out, B);
  a.need(uniforms, B);
  a.need(logits, a.product({B, V}));
  for (int64_t b = 0; b < B; b++) {
    if (!(uniforms.data[b] >= 0.0 && uniforms.data[b] < 1.0))
      a.range_error("argument 'uniforms' must hold numbers in [0, 1), got " + num(uniforms.data[b]) + " at " + std::to_string(b));
  }
  quartet::sample_rows(out.data, logits.data, uniforms.data, B, V, static_cast<float>(temperature));
  return a.undefined();
}

Napi::Value logprobs_backward(Args& a) {
  F32 dlogits = a.f32(0, "dlogits"), dout = a.f32(1, "dout"), logits = a.f32(2, "logits");
  F32 lse = a.f32(3, "lse");
  Arr<int32_t> labels = a.i32(4, "labels");
  const int64_t N = a.dim(5, "N"), V = a.dim(6, "V");
  if (N > 0 && V == 0) a.range_error("argument 'V' must be at least 1");
  const int64_t NV = a.product({N, V});
  a.need(dlogits, NV);
  a.need(logits, NV);
  a.need(dout, N);
  a.need(lse, N);
  a.need(labels, N);
  check_labels(a, labels, N, V);
  quartet::logprobs_backward(dlogits.data, dout.data, logits.data, lse.data, labels.data, N, V);
  return a.undefined();
}

// ---- transformer pieces ----

Napi::Value rope(Args& a) {
  F32 out = a.f32(0, "out"), x = a.f32(1, "x");
  Arr<int32_t> positions = a.i32(2, "positions");
  F32 inv_freq = a.f32(3, "invFreq");
  const int64_t B = a.dim(4, "B"), T = a.dim(5, "T"), NH = a.dim(6, "NH"), HS = a.dim(7, "HS");
  const int64_t rotary_dim = a.dim(8, "rotaryDim");
  const bool interleaved = a.flag(9, "interleaved"), inverse = a.flag(10, "inverse");
  if (rotary_dim % 2 != 0 || rotary_dim > HS) {
    a.range_error("argument 'rotaryDim' must be even and at most HS = " + std::to_string(HS) +
                  ", got " + std::to_string(rotary_dim));
  }
  const int64_t total = a.product({B, T, NH, HS});
  a.need(out, total);
  a.need(x, total);
  a.need(positions, a.product({B, T}));
  a.need(inv_freq, rotary_dim / 2);
  quartet::rope(out.data, x.data, positions.data, inv_freq.data, B, T, NH, HS, rotary_dim,
                interleaved, inverse);
  return a.undefined();
}

void check_heads(const Args& a, int64_t NH, int64_t NKV) {
  if (NKV < 1 || NH % NKV != 0) {
    a.range_error("argument 'NKV' must be at least 1 and divide NH = " + std::to_string(NH) +
                  ", got " + std::to_string(NKV));
  }
}

// Dropout of attention probabilities: p in [0, 1) and an integer seed.
struct AttnDropout {
  float p;
  uint64_t seed;
};

AttnDropout attention_dropout_args(const Args& a, size_t i) {
  const double p = a.number(i, "dropoutP");
  if (!(p >= 0.0 && p < 1.0)) a.range_error("argument 'dropoutP' must be in [0, 1), got " + num(p));
  const double seed = a.number(i + 1, "seed");
  if (!(seed >= 0 && seed <= 9007199254740992.0 && std::floor(seed) == seed)) {
    a.range_error("argument 'seed' must be an integer in [0, 2^53], got " + num(seed));
  }
  return {static_cast<float>(p), static_cast<uint64_t>(seed)};
}

Napi::Value attention_forward(Args& a) {
  F32 out = a.f32(0, "out"), lse = a.f32(1, "lse"), q = a.f32(2, "q"), k = a.f32(3, "k"),
      v = a.f32(4, "v"), key_mask = a.f32_or_null(5, "keyMask");
  const int64_t B = a.dim(6, "B"), NH = a.dim(7, "NH"), NKV = a.dim(8, "NKV");
  const int64_t Tq = a.dim(9, "Tq"), Tk = a.dim(10, "Tk"), kv_cap = a.dim(11, "kvCap");
  const int64_t HS = a.dim(12, "HS");
  const double scale = a.finite(13, "scale");
  const bool causal = a.flag(14, "causal");
  const AttnDropout drop = attention_dropout_args(a, 15);
  check_heads(a, NH, NKV);
  if (kv_cap < Tk) {
    a.range_error("argument 'kvCap' must be at least Tk = " + std::to_string(Tk) + ", got " +
                  std::to_string(kv_cap));
  }
  const int64_t q_size = a.product({B, NH, Tq, HS}), kv_size = a.product({B, NKV, kv_cap, HS});
  a.need(out, q_size);
  a.need(q, q_size);
  a.need(k, kv_size);
  a.need(v, kv_size);
  a.need(lse, a.product({B, NH, Tq}));
  if (key_mask.data) a.need(key_mask, a.product({B, Tk}));
  quartet::attention_forward(out.data, lse.data, q.data, k.data, v.data, key_mask.data, B, NH, NKV,
                             Tq, Tk, kv_cap, HS, static_cast<float>(scale), causal, drop.p,
                             drop.seed);
  return a.undefined();
}

Napi::Value attention_backward(Args& a) {
  F32 dq = a.f32(0, "dq"), dk = a.f32(1, "dk"), dv = a.f32(2, "dv"), dout = a.f32(3, "dout");
  F32 q = a.f32(4, "q"), k = a.f32(5, "k"), v = a.f32(6, "v"), out = a.f32(7, "out"),
      lse = a.f32(8, "lse"), key_mask = a.f32_or_null(9, "keyMask");
  const int64_t B = a.dim(10, "B"), NH = a.dim(11, "NH"), NKV = a.dim(12, "NKV");
  const int64_t Tq = a.dim(13, "Tq"), Tk = a.dim(14, "Tk"), HS = a.dim(15, "HS");
  const double scale = a.finite(16, "scale");
  const bool causal = a.flag(17, "causal");
  const AttnDropout drop = attention_dropout_args(a, 18);
  check_heads(a, NH, NKV);
  const int64_t q_size = a.product({B, NH, Tq, HS}), kv_size = a.product({B, NKV, Tk, HS});
  a.need(dq, q_size);
  a.need(dout, q_size);
  a.need(q, q_size);
  a.need(out, q_size);
  a.need(dk, kv_size);
  a.need(dv, kv_size);
  a.need(k, kv_size);
  a.need(v, kv_size);
  a.need(lse, a.product({B, NH, Tq}));
  if (key_mask.data) a.need(key_mask, a.product({B, Tk}));
  quartet::attention_backward(dq.data, dk.data, dv.data, dout.data, q.data, k.data, v.data, out.data,
                              lse.data, key_mask.data, B, NH, NKV, Tq, Tk, HS,
                              static_cast<float>(scale), causal, drop.p, drop.seed);
  return a.undefined();
}

Napi::Value attention_dropout_keep(Args& a) {
  F32 out = a.f32(0, "out");
  const int64_t B = a.dim(1, "B"), NH = a.dim(2, "NH"), Tq = a.dim(3, "Tq"), Tk = a.dim(4, "Tk");
  const AttnDropout drop = attention_dropout_args(a, 5);
  a.need(out, a.product({B, NH, Tq, Tk}));
  quartet::attention_dropout_keep(out.data, B, NH, Tq, Tk, drop.p, drop.seed);
  return a.undefined();
}

// ---- optimizer ----

Napi::Value adamw(Args& a) {
  F32 param = a.f32(0, "param"), grad = a.f32(1, "grad"), m = a.f32(2, "m"), v = a.f32(3, "v");
  const double lr = a.finite(4, "lr"), beta1 = a.finite(5, "beta1"), beta2 = a.finite(6, "beta2");
  const double eps = a.finite(7, "eps"), wd = a.finite(8, "weightDecay");
  const int64_t step = a.dim(9, "step");
  if (lr < 0) a.range_error("argument 'lr' must be >= 0, got " + num(lr));
  if (!(beta1 >= 0 && beta1 < 1)) a.range_error("argument 'beta1' must be in [0, 1), got " + num(beta1));
  if (!(beta2 >= 0 && beta2 < 1)) a.range_error("argument 'beta2' must be in [0, 1), got " + num(beta2));
  if (eps < 0) a.range_error("argument 'eps' must be >= 0, got " + num(eps));
  if (step < 1) a.range_error("argument 'step' must be at least 1 (steps count from 1), got 0");
  a.need(grad, param.length);
  a.need(m, param.length);
  a.need(v, param.length);
  quartet::adamw(param.data, grad.data, m.data, v.data, param.length, lr, beta1, beta2, eps, wd, step);
  return a.undefined();
}

// ---- dtype conversion ----

template <void (*K)(float*, const uint16_t*, int64_t)>
Napi::Value widen(Args& a) {
  F32 out = a.f32(0, "out");
  Arr<uint16_t> inp = a.u16(1, "inp");
  a.need(out, inp.length);
  K(out.data, inp.data, inp.length);
  return a.undefined();
}

template <void (*K)(uint16_t*, const float*, int64_t)>
Napi::Value narrow(Args& a) {
  Arr<uint16_t> out = a.u16(0, "out");
  F32 inp = a.f32(1, "inp");
  a.need(out, inp.length);
  K(out.data, inp.data, inp.length);
  return a.undefined();
}

const Entry kEntries[] = {
    {"setThreads", 1, set_threads},
    {"getThreads", 0, get_threads},
    {"setGemmBackend", 1, set_gemm_backend},
    {"getGemmBackend", 0, get_gemm_backend},
    {"gemm", 13, gemm},
    {"gemmBatched", 17, gemm_batched},
    {"add", 3, binary<quartet::add>},
    {"sub", 3, binary<quartet::sub>},
    {"mul", 3, binary<quartet::mul>},
    {"div", 3, binary<quartet::div>},
    {"maximum", 3, binary<quartet::maximum>},
    {"minimum", 3, binary<quartet::minimum>},
    {"affine", 4, affine},
    {"axpy", 4, axpy},
    {"fill", 2, fill},
    {"exp", 2, unary<quartet::exp>},
    {"log", 2, unary<quartet::log>},
    {"tanh", 2, unary<quartet::tanh>},
    {"sigmoid", 2, unary<quartet::sigmoid>},
    {"logSigmoid", 2, unary<quartet::log_sigmoid>},
    {"clamp", 4, clamp},
    {"clampBackward", 5, clamp_backward},
    {"where", 4, where},
    {"relu", 2, unary<quartet::relu>},
    {"reluBackward", 3, unary_backward<quartet::relu_backward>},
    {"gelu", 3, gelu},
    {"geluBackward", 4, gelu_backward},
    {"silu", 2, unary<quartet::silu>},
    {"siluBackward", 3, unary_backward<quartet::silu_backward>},
    {"dropout", 5, dropout},
    {"addRow", 5, row_broadcast<quartet::add_row>},
    {"mulRow", 5, row_broadcast<quartet::mul_row>},
    {"sumRows", 4, sum_rows},
    {"sumCols", 4, sum_cols},
    {"sumAll", 1, sum_all},
    {"sumSquares", 1, sum_squares},
    {"allFinite", 1, all_finite},
    {"permute", 4, permute},
    {"gatherRows", 4, gather_rows},
    {"scatterAddRows", 5, scatter_add_rows},
    {"layerNormForward", 9, layernorm_forward},
    {"layerNormBackward", 10, layernorm_backward},
    {"rmsNormForward", 7, rmsnorm_forward},
    {"rmsNormBackward", 8, rmsnorm_backward},
    {"softmaxForward", 4, softmax_forward},
    {"softmaxBackward", 5, softmax_backward},
    {"logprobsForward", 6, logprobs_forward},
    {"sampleRows", 6, sample_rows},
    {"logprobsBackward", 7, logprobs_backward},
    {"rope", 11, rope},
    {"attentionForward", 17, attention_forward},
    {"attentionBackward", 20, attention_backward},
    {"attentionDropoutKeep", 7, attention_dropout_keep},
    {"adamw", 10, adamw},
    {"f16ToF32", 2, widen<quartet::f16_to_f32>},
    {"bf16ToF32", 2, widen<quartet::bf16_to_f32>},
    {"f32ToF16", 2, narrow<quartet::f32_to_f16>},
    {"f32ToBf16", 2, narrow<quartet::f32_to_bf16>},
};

Napi::Value dispatch(const Napi::CallbackInfo& info) {
  const Entry& e = *static_cast<const Entry*>(info.Data());
  Napi::Env env = info.Env();
  try {
    if (info.Length() != e.arity) {
      throw ArgError{false, std::string(e.name) + ": expects " + std::to_string(e.arity) +
                                " arguments, got " + std::to_string(info.Length())};
    }
    Args args(info, e.name);
    return e.fn(args);
  } catch (const ArgError& err) {
    if (err.range) {
      Napi::RangeError::New(env, err.message).ThrowAsJavaScriptException();
    } else {
      Napi::TypeError::New(env, err.message).ThrowAsJavaScriptException();
    }
  } catch (const PendingJsException&) {
    // Propagates as it is.
  } catch (const std::bad_alloc&) {
    Napi::Error::New(env, std::string(e.name) + ": out of memory").ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

Napi::Object capability(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  c.Set("blas", quartet::gemm_blas_name());
#if defined(__AVX512F__)
  c.Set("simd", "avx512");
#elif defined(__AVX2__)
  c.Set("simd", "avx2");
#else
  c.Set("simd", "scalar");
#endif
#ifdef _OPENMP
  c.Set("openmp", true);
#else
  c.Set("openmp", false);
#endif
  c.Set("cuda", false);
  c.Freeze();
  return c;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  for (const Entry& e : kEntries) {
    exports.Set(e.name, Napi::Function::New(env, dispatch, e.name, const_cast<Entry*>(&e)));
  }
  exports.Set("capability", capability(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(quartet, Init)
