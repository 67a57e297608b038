// Runtime pieces of the CUDA backend: availability, the current stream, plain
// allocations and copies, the workspace, and error reporting.
#include <cstdio>
#include <stdexcept>
#include <string>

#include "common.cuh"

namespace quartet::cuda {

void fail(cudaError_t err, const char* what, const char* file, int line) {
  throw std::runtime_error(std::string("cuda: ") + what + " failed at " + file + ":" +
                           std::to_string(line) + ": " + cudaGetErrorString(err));
}

void fail_msg(const char* what, const char* file, int line) {
  throw std::runtime_error(std::string("cuda: ") + what + " (" + file + ":" + std::to_string(line) + ")");
}

bool available() {
  int n = 0;
  // No driver, no device or a broken install all come back as an error here.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear it
    return false;
  }
  return n > 0;
}

const char* device_name(int index) {
  static thread_local char name[256];
  cudaDeviceProp p;
  if (cudaGetDeviceProperties(&p, index) != cudaSuccess) {
    cudaGetLastError();
    return "";
  }
  std::snprintf(name, sizeof name, "%s", p.name);
  return name;
}

namespace {
cudaStream_t g_stream = nullptr;
void* g_ws = nullptr;
size_t g_ws_bytes = 0;
}  // namespace

void set_stream(void* s) { g_stream = static_cast<cudaStream_t>(s); }
void* get_stream() { return g_stream; }
void synchronize() { QCUDA(cudaStreamSynchronize(g_stream)); }

void* device_alloc(size_t bytes) {
  void* p = nullptr;
  QCUDA(cudaMalloc(&p, bytes < 1 ? 1 : bytes));
  return p;
}
void device_free(void* p) {
  if (p) QCUDA(cudaFree(p));
}
void copy_to_device(void* dst, const void* src, size_t bytes) {
  QCUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, g_stream));
  QCUDA(cudaStreamSynchronize(g_stream));
}
void copy_to_host(void* dst, const void* src, size_t bytes) {
  QCUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, g_stream));
  QCUDA(cudaStreamSynchronize(g_stream));
}
void fill_bytes(void* dst, int byte, size_t bytes) {
  QCUDA(cudaMemsetAsync(dst, byte, bytes, g_stream));
}

void* workspace(size_t bytes) {
  if (bytes > g_ws_bytes) {
    // Growing frees the old buffer; cudaFree waits for work that may still use it.
    if (g_ws) QCUDA(cudaFree(g_ws));
    g_ws = nullptr;
    g_ws_bytes = 0;
    const size_t want = bytes + bytes / 4;
    QCUDA(cudaMalloc(&g_ws, want));
    g_ws_bytes = want;
  }
  return g_ws;
}

}  // namespace quartet::cuda
