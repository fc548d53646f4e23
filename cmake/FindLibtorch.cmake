# Finds libtorch and defines the INTERFACE target `vmae_torch`. Order:
#   1. LIBTORCH or Torch_DIR from the environment (or -DLIBTORCH / -DTorch_DIR)
#   2. ./libtorch (filled by `videomae setup`)
#   3. the libtorch inside the Python torch (torch.utils.cmake_prefix_path)
#   4. the system's libtorch (Debian's libtorch-dev ships no TorchConfig.cmake)
# Sets VMAE_TORCH_SOURCE (which one won), VMAE_TORCH_RPATH, VMAE_TORCH_INSTALL_RPATH, VMAE_HAS_CUDA.

add_library(vmae_torch INTERFACE)
set(VMAE_HAS_CUDA OFF)
set(_tried "")

# A macro, not a function: find_package's TORCH_* variables must land in this scope.
macro(_vmae_try_config prefix source)
  if(NOT VMAE_TORCH_SOURCE)
    list(APPEND _tried "${source}: ${prefix}")
    if(EXISTS "${prefix}")
      find_package(Torch CONFIG QUIET PATHS "${prefix}" "${prefix}/share/cmake/Torch" NO_DEFAULT_PATH)
      if(Torch_FOUND)
        set(VMAE_TORCH_SOURCE "${source} (${prefix})")
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
  get_target_property(_c10_loc c10 IMPORTED_LOCATION)
  get_filename_component(VMAE_TORCH_LIBDIR "${_c10_loc}" DIRECTORY)
  if(TARGET c10_cuda)
    set(VMAE_HAS_CUDA ON)
  endif()
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
