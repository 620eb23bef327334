# CMake package config of neurocore's embedded-inference runtime:
#   find_package(neurocore CONFIG REQUIRED)      # neurocore_DIR: python -m neurocore.config --cmakedir
#   target_link_libraries(app PRIVATE neurocore::runtime)
# This file lives in <neurocore package>/share/cmake/neurocore; the library and headers beside it.
get_filename_component(_neurocore_root "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET neurocore::runtime)
  if(NOT EXISTS "${_neurocore_root}/lib/libneurocore_runtime.so")
    set(neurocore_FOUND FALSE)
    set(neurocore_NOT_FOUND_MESSAGE "libneurocore_runtime.so is missing from ${_neurocore_root}/lib")
    return()
  endif()
  add_library(neurocore::runtime SHARED IMPORTED)
  set_target_properties(neurocore::runtime PROPERTIES
    IMPORTED_LOCATION "${_neurocore_root}/lib/libneurocore_runtime.so"
    INTERFACE_INCLUDE_DIRECTORIES "${_neurocore_root}/include"
    INTERFACE_COMPILE_FEATURES cxx_std_17)
endif()
set(neurocore_INCLUDE_DIRS "${_neurocore_root}/include")
unset(_neurocore_root)
