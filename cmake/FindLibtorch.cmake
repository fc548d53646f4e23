# Finds libtorch and defines the INTERFACE target `vmae_torch`. Order:
#   1. LIBTORCH or Torch_DIR from the environment (or -DLIBTORCH / -DTorch_DIR)
#   2. ./libtorch (filled by `videomae setup`)
#   3. the libtorch inside the Python torch (torch.utils.cmake_prefix_path)
#   4. the system's libtorch (Debian's libtorch-dev ships no TorchConfig.cmake)
# Sets VMAE_TORCH_SOURCE (which one won), VMAE_TORCH_RPATH, VMAE_TORCH_INSTALL_RPATH, VMAE_HAS_CUDA.

add_library(vmae_torch INTERFACE)
set(VMAE_HAS_CUDA OFF)
set(_tried "")

# A CUDA libtorch's config runs the old FindCUDA module, which needs the toolkit's root and the
# NVRTC library. Pip's CUDA torch keeps NVRTC in the nvidia-* wheels beside it (site-packages/nvidia/
# cu13/lib), not in the toolkit: point at those unless the user already set them.
macro(_vmae_cuda_hints prefix)
  if(EXISTS "${prefix}/lib/libtorch_cuda.so")
    if(NOT CUDA_TOOLKIT_ROOT_DIR AND EXISTS /usr/local/cuda)
      set(CUDA_TOOLKIT_ROOT_DIR /usr/local/cuda CACHE PATH "CUDA toolkit (FindCUDA)")
    endif()
    if(NOT CUDA_nvrtc_LIBRARY)
      file(GLOB _nvrtc "${prefix}/../nvidia/cu*/lib/libnvrtc.so.*" "${prefix}/../nvidia/cuda_nvrtc/lib/libnvrtc.so.*"
        "${prefix}/lib/libnvrtc.so*" "${CUDA_TOOLKIT_ROOT_DIR}/lib64/libnvrtc.so")
      list(FILTER _nvrtc EXCLUDE REGEX "builtins|alt")
      if(_nvrtc)
        list(GET _nvrtc 0 _nvrtc)
        set(CUDA_nvrtc_LIBRARY "${_nvrtc}" CACHE FILEPATH "NVRTC (FindCUDA)")
      endif()
    endif()
  endif()
endmacro()

# A macro, not a function: find_package's TORCH_* variables must land in this scope.
macro(_vmae_try_config prefix source)
  if(NOT VMAE_TORCH_SOURCE)
    list(APPEND _tried "${source}: ${prefix}")
    if(EXISTS "${prefix}")
      # TorchConfig finds libtorch.so with find_library(... PATHS <prefix>/lib), and PATHS come after
      # the system folders: with Debian's libtorch-dev installed it would link that one instead.
      # CMAKE_PREFIX_PATH is searched before the system, so the chosen prefix goes first there.
      set(_root "${prefix}")
      if(EXISTS "${prefix}/TorchConfig.cmake")  # Torch_DIR: <root>/share/cmake/Torch
        get_filename_component(_root "${prefix}/../../.." ABSOLUTE)
      endif()
      list(PREPEND CMAKE_PREFIX_PATH "${_root}")
      _vmae_cuda_hints("${_root}")
      find_package(Torch CONFIG QUIET PATHS "${prefix}" "${prefix}/share/cmake/Torch" NO_DEFAULT_PATH)
      if(Torch_FOUND)
        set(VMAE_TORCH_SOURCE "${source} (${prefix})")
      else()
        list(REMOVE_AT CMAKE_PREFIX_PATH 0)
      endif()
    endif()
  endif()
endmacro()

if(NOT LIBTORCH AND DEFINED ENV{LIBTORCH})
  set(LIBTORCH "$ENV{LIBTORCH}")
endif()
if(NOT Torch_DIR AND DEFINED ENV{Torch_DIR})
  set(Torch_DIR "$ENV{Torch_DIR}")
endif()
if(LIBTORCH)
  _vmae_try_config("${LIBTORCH}" "LIBTORCH")
  if(NOT VMAE_TORCH_SOURCE)
    message(FATAL_ERROR "LIBTORCH=${LIBTORCH} has no share/cmake/Torch/TorchConfig.cmake")
  endif()
elseif(Torch_DIR)
  _vmae_try_config("${Torch_DIR}" "Torch_DIR")
  if(NOT VMAE_TORCH_SOURCE)
    message(FATAL_ERROR "Torch_DIR=${Torch_DIR} has no TorchConfig.cmake")
  endif()
endif()

_vmae_try_config("${CMAKE_SOURCE_DIR}/libtorch" "./libtorch")

if(NOT VMAE_TORCH_SOURCE)
  foreach(py $ENV{VIDEOMAE_PYTHON} python3 /usr/bin/python3)
    execute_process(COMMAND ${py} -c "import torch.utils; print(torch.utils.cmake_prefix_path)"
      OUTPUT_VARIABLE _py_prefix OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _rc)
    if(_rc EQUAL 0 AND _py_prefix)
      _vmae_try_config("${_py_prefix}" "python torch via ${py}")
    endif()
  endforeach()
endif()

if(VMAE_TORCH_SOURCE)
  target_link_libraries(vmae_torch INTERFACE ${TORCH_LIBRARIES})
  target_include_directories(vmae_torch INTERFACE ${TORCH_INCLUDE_DIRS})
  if(TORCH_CXX_FLAGS)
    separate_arguments(_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
    target_compile_options(vmae_torch INTERFACE ${_flags})
  endif()
  set(VMAE_TORCH_LIBDIR "${TORCH_INSTALL_PREFIX}/lib")
  if(TARGET c10_cuda)
    set(VMAE_HAS_CUDA ON)
  endif()
  # Only the chosen libtorch may be linked: every torch library the config resolved must live in its
  # lib folder (a stale CMakeCache or a system libtorch would otherwise mix 2.x headers with 1.13
  # libraries, and the process aborts on load).
  file(REAL_PATH "${VMAE_TORCH_LIBDIR}" _want)
  set(_linked ${TORCH_LIBRARY} ${C10_CUDA_LIBRARY} ${CAFFE2_NVRTC_LIBRARY})
  foreach(t c10 torch_cpu torch_cuda c10_cuda)
    if(TARGET ${t})
      foreach(prop IMPORTED_LOCATION IMPORTED_LOCATION_RELEASE IMPORTED_LOCATION_NOCONFIG)
        get_target_property(_loc ${t} ${prop})
        list(APPEND _linked "${_loc}")
      endforeach()
    endif()
  endforeach()
  foreach(lib IN LISTS _linked)
    if(lib AND EXISTS "${lib}")
      file(REAL_PATH "${lib}" _real)
      get_filename_component(_dir "${_real}" DIRECTORY)
      if(NOT _dir STREQUAL _want)
        message(FATAL_ERROR "videomae-node: libtorch was chosen from ${VMAE_TORCH_SOURCE}, but ${lib} "
          "comes from another libtorch (${_dir}). Delete the build folder (a stale CMakeCache.txt keeps "
          "old library paths) and configure again.")
      endif()
    endif()
  endforeach()
else()
  # 4. The system's libtorch: find headers and libraries directly.
  list(APPEND _tried "system libtorch (torch/script.h and libtorch.so on the default paths)")
  find_path(VMAE_TORCH_INC torch/script.h)
  find_path(VMAE_TORCH_API_INC torch/torch.h PATH_SUFFIXES torch/csrc/api/include)
  find_library(VMAE_LIB_TORCH torch)
  find_library(VMAE_LIB_TORCH_CPU torch_cpu)
  find_library(VMAE_LIB_C10 c10)
  if(VMAE_TORCH_INC AND VMAE_TORCH_API_INC AND VMAE_LIB_TORCH AND VMAE_LIB_TORCH_CPU AND VMAE_LIB_C10)
    set(VMAE_TORCH_SOURCE "system (${VMAE_LIB_TORCH})")
    target_include_directories(vmae_torch INTERFACE ${VMAE_TORCH_INC} ${VMAE_TORCH_API_INC})
    # --no-as-needed keeps libtorch.so (which registers the TorchScript operators) linked.
    target_link_libraries(vmae_torch INTERFACE -Wl,--no-as-needed ${VMAE_LIB_TORCH}
      ${VMAE_LIB_TORCH_CPU} -Wl,--as-needed ${VMAE_LIB_C10})
    find_library(VMAE_LIB_C10_CUDA c10_cuda)
    find_library(VMAE_LIB_TORCH_CUDA torch_cuda)
    if(VMAE_LIB_C10_CUDA AND VMAE_LIB_TORCH_CUDA)
      set(VMAE_HAS_CUDA ON)
      target_link_libraries(vmae_torch INTERFACE -Wl,--no-as-needed ${VMAE_LIB_TORCH_CUDA}
        -Wl,--as-needed ${VMAE_LIB_C10_CUDA})
    endif()
    get_filename_component(VMAE_TORCH_LIBDIR "${VMAE_LIB_TORCH}" DIRECTORY)
  endif()
endif()

if(NOT VMAE_TORCH_SOURCE)
  string(REPLACE ";" "\n    " _tried_lines "${_tried}")
  message(FATAL_ERROR "videomae-node: no libtorch found. Looked at:\n    ${_tried_lines}\n"
    "Provide one of:\n"
    "  - LIBTORCH=/path/to/libtorch (an official libtorch archive, unpacked)\n"
    "  - Torch_DIR=/path/to/share/cmake/Torch\n"
    "  - ./libtorch, filled by `npx videomae setup`\n"
    "  - a Python with torch (pip install torch), found as VIDEOMAE_PYTHON, python3 or /usr/bin/python3\n"
    "  - Debian/Ubuntu: apt-get install libtorch-dev libopenblas0-pthread")
endif()

# RUNPATH: the build tree's binary looks in the libtorch it was built against, then in the package's
# ./libtorch (linked by `videomae setup`). The installed copy (`cmake --install`, used by
# scripts/prebuild.js for prebuilds) keeps only the relative entry, so it never depends on the build
# machine's folders. build/Release/ and prebuilds/<platform>-<arch>/ are both two levels down.
if(APPLE)
  set(_vmae_origin "@loader_path")
else()
  set(_vmae_origin "\$ORIGIN")
endif()
set(VMAE_TORCH_INSTALL_RPATH "${_vmae_origin}/../../libtorch/lib")
set(VMAE_TORCH_RPATH "${VMAE_TORCH_LIBDIR};${VMAE_TORCH_INSTALL_RPATH}")
message(STATUS "videomae-node: libtorch from ${VMAE_TORCH_SOURCE}; CUDA: ${VMAE_HAS_CUDA}")
