// Shared thresholds for spreading a kernel over OpenMP threads. Small work runs
// on the calling thread: forking a team costs a few microseconds, more than a
// short loop over memory.
#pragma once
#include <cstdint>

namespace quartet {

// Elementwise loops below this many elements stay on one thread.
constexpr int64_t kParallelMin = 1 << 15;

// Row-wise kernels (norms, softmax, losses) go parallel when rows * cols exceed this.
constexpr int64_t kParallelRowsMin = 1 << 14;

// Reductions that must not depend on the thread count sum fixed blocks of this many
// elements (or rows), then add the block results in order.
constexpr int64_t kReduceBlock = 1 << 13;

}  // namespace quartet
