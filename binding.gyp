{
  "targets": [{
    "target_name": "quartet",
    "sources": ["<!@(node native/sources.cjs)"],
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
    "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
    "cflags_cc": ["-O3", "-march=native", "-fopenmp", "-std=c++17", "<!@(node native/detect-blas.cjs cflags)"],
    "libraries": ["-fopenmp", "<!@(node native/detect-blas.cjs libs)"]
  }]
}
