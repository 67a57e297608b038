{
  "targets": [{
    "target_name": "quartet",
    "sources": ["<!@(node native/sources.cjs)"],
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
    "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
    "cflags_cc": ["-O3", "-march=native", "-fopenmp", "-std=c++17", "<!@(node native/detect-blas.cjs cflags)"],
    "libraries": ["-fopenmp", "<!@(node native/detect-blas.cjs libs)"],
    "conditions": [
      ["'<!(node native/cuda/detect-cuda.cjs found)'=='1'", {
        "sources": ["<!@(node native/cuda/detect-cuda.cjs sources)"],
        "cflags_cc": ["<!@(node native/cuda/detect-cuda.cjs cflags)"],
        "libraries": ["<!@(node native/cuda/detect-cuda.cjs libs)"],
        "rules": [{
          "rule_name": "nvcc",
          "extension": "cu",
          "inputs": ["<(RULE_INPUT_PATH)", "native/cuda/ops.h", "native/cuda/common.cuh"],
          "outputs": ["<(INTERMEDIATE_DIR)/cuda_<(RULE_INPUT_ROOT).o"],
          "action": ["<!@(node native/cuda/detect-cuda.cjs nvcc)", "-c", "<(RULE_INPUT_PATH)", "-o", "<@(_outputs)"],
          "message": "nvcc <(RULE_INPUT_PATH)",
          "process_outputs_as_sources": 1
        }]
      }]
    ]
  }]
}
