"""Where the C/C++ runtime (``libneurocore_runtime``) and its CMake package config are installed.

    python -m neurocore.config --cmakedir    # for find_package(neurocore CONFIG REQUIRED)
    cmake -Dneurocore_DIR=$(python -m neurocore.config --cmakedir) ...

Then in CMakeLists.txt: ``target_link_libraries(app PRIVATE neurocore::runtime)``.
"""
import argparse
import os
import sys

_ROOT = os.path.dirname(os.path.abspath(__file__))


def get_cmake_dir():
    """Folder holding neurocoreConfig.cmake."""
    return os.path.join(_ROOT, "share", "cmake", "neurocore")


def get_include():
    """Folder holding neurocore/runtime.h and neurocore_runtime.h."""
    return os.path.join(_ROOT, "include")


def get_library():
    """Path of libneurocore_runtime.so."""
    return os.path.join(_ROOT, "lib", "libneurocore_runtime.so")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m neurocore.config", description=__doc__.splitlines()[0])
    parser.add_argument("--cmakedir", action="store_true", help="print the CMake package config folder")
    parser.add_argument("--includedir", action="store_true", help="print the C/C++ include folder")
    parser.add_argument("--library", action="store_true", help="print the runtime library's path")
    args = parser.parse_args(argv)
    chosen = [(args.cmakedir, get_cmake_dir()), (args.includedir, get_include()), (args.library, get_library())]
    if not any(flag for flag, _ in chosen):
        parser.print_help()
        return 1
    for flag, path in chosen:
        if flag:
            if not os.path.exists(path):
                print(f"neurocore.config: {path} is missing (the runtime was not built with this install)",
                      file=sys.stderr)
                return 1
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
