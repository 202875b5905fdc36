# cuda.cmake — the optional CUDA backend, included by native/CMakeLists.txt.
#
# Active only when MAMBA_EVAL_CUDA=ON (cmake option or environment variable) AND a CUDA compiler is
# found; otherwise the build stays CPU-only (CI has no GPU) and asking for device "cuda" gives the
# addon's "this build has no CUDA backend" error.
#
# The kernels go into a static library linked into the addon, so the addon's x86 flags (-mavx2 …) never
# reach nvcc. cuBLASLt comes from the CUDA toolkit (CUDA::cublasLt) or, where the toolkit lacks it, from
# MAMBA_EVAL_CUBLAS_ROOT (a folder with include/cublasLt.h and lib/libcublasLt.so*, e.g. the
# nvidia-cublas Python wheel's nvidia/cu13).
option(MAMBA_EVAL_CUDA "Build the CUDA backend" OFF)
if(DEFINED ENV{MAMBA_EVAL_CUDA} AND "$ENV{MAMBA_EVAL_CUDA}" STREQUAL "ON")
  set(MAMBA_EVAL_CUDA ON)
endif()

if(MAMBA_EVAL_CUDA)
  include(CheckLanguage)
  check_language(CUDA)
  if(NOT CMAKE_CUDA_COMPILER)
    message(WARNING "MAMBA_EVAL_CUDA=ON but no CUDA compiler was found: building the CPU backend only")
    set(MAMBA_EVAL_CUDA OFF)
  endif()
endif()

if(MAMBA_EVAL_CUDA)
  # Hopper (H100, H200) unless the standard CUDAARCHS environment variable or CMAKE_CUDA_ARCHITECTURES names others.
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES AND NOT DEFINED ENV{CUDAARCHS})
    set(CMAKE_CUDA_ARCHITECTURES 90)
  endif()
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)

  set(MAMBA_EVAL_CUDA_DIR ${CMAKE_CURRENT_LIST_DIR})
  add_library(mamba_eval_cuda STATIC
    ${MAMBA_EVAL_CUDA_DIR}/gemm.cu
    ${MAMBA_EVAL_CUDA_DIR}/norm_kernels.cu
    ${MAMBA_EVAL_CUDA_DIR}/conv_kernels.cu
    ${MAMBA_EVAL_CUDA_DIR}/scan_kernels.cu
    ${MAMBA_EVAL_CUDA_DIR}/ssd_kernels.cu
    ${MAMBA_EVAL_CUDA_DIR}/attention_kernels.cu
    ${MAMBA_EVAL_CUDA_DIR}/skinny_gemm.cu
    ${MAMBA_EVAL_CUDA_DIR}/logits_kernels.cu
    ${MAMBA_EVAL_CUDA_DIR}/cuda_backend.cu)
  set_target_properties(mamba_eval_cuda PROPERTIES
    POSITION_INDEPENDENT_CODE ON
    CUDA_STANDARD 17
    CUDA_STANDARD_REQUIRED ON
    CUDA_SEPARABLE_COMPILATION OFF
    CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
  target_include_directories(mamba_eval_cuda PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src ${MAMBA_EVAL_CUDA_DIR})
  target_compile_definitions(mamba_eval_cuda PRIVATE MAMBA_EVAL_CUDA)
  target_compile_options(mamba_eval_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-O3 -Xcompiler=-fPIC>)

  if(TARGET CUDA::cublasLt)
    set(MAMBA_EVAL_CUBLASLT CUDA::cublasLt)
  else()
    set(_cublas_root "$ENV{MAMBA_EVAL_CUBLAS_ROOT}")
    find_path(MAMBA_EVAL_CUBLAS_INCLUDE cublasLt.h HINTS ${_cublas_root}/include NO_DEFAULT_PATH)
    find_library(MAMBA_EVAL_CUBLASLT_LIB NAMES cublasLt libcublasLt.so.13 libcublasLt.so.12
                 HINTS ${_cublas_root}/lib NO_DEFAULT_PATH)
    if(NOT MAMBA_EVAL_CUBLAS_INCLUDE OR NOT MAMBA_EVAL_CUBLASLT_LIB)
      message(FATAL_ERROR "MAMBA_EVAL_CUDA=ON: cuBLASLt not found in the CUDA toolkit; set MAMBA_EVAL_CUBLAS_ROOT "
                          "to a folder with include/cublasLt.h and lib/libcublasLt.so*")
    endif()
    target_include_directories(mamba_eval_cuda SYSTEM PRIVATE ${MAMBA_EVAL_CUBLAS_INCLUDE})
    get_filename_component(_cublas_libdir ${MAMBA_EVAL_CUBLASLT_LIB} DIRECTORY)
    set_property(TARGET ${PROJECT_NAME} APPEND PROPERTY BUILD_RPATH ${_cublas_libdir})
    set(MAMBA_EVAL_CUBLASLT ${MAMBA_EVAL_CUBLASLT_LIB})
  endif()
  target_link_libraries(mamba_eval_cuda PUBLIC CUDA::cudart ${MAMBA_EVAL_CUBLASLT})

  target_compile_definitions(${PROJECT_NAME} PRIVATE MAMBA_EVAL_CUDA)
  target_link_libraries(${PROJECT_NAME} PRIVATE mamba_eval_cuda)
  # The decode GEMV kept for comparison, against the product's decode GEMM (not built by default):
  #   cmake --build native/build --target bench_gemv && native/build/bench_gemv
  add_executable(bench_gemv EXCLUDE_FROM_ALL ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_gemv.cu)
  set_target_properties(bench_gemv PROPERTIES CUDA_STANDARD 17 CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
  target_compile_options(bench_gemv PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-O3>)
  target_include_directories(bench_gemv PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src ${MAMBA_EVAL_CUDA_DIR})
  target_link_libraries(bench_gemv PRIVATE mamba_eval_cuda)

  message(STATUS "mamba_eval: CUDA backend ON (sm_${CMAKE_CUDA_ARCHITECTURES}, cuBLASLt ${MAMBA_EVAL_CUBLASLT})")
endif()
