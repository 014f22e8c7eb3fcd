# Cross-compiling toolchain for Debian's cross compilers and multiarch libraries, used by
# scripts/build-image.sh when the image's target architecture differs from the build machine's.
#
#   cmake -DCMAKE_TOOLCHAIN_FILE=cmake/debian-cross.cmake -DCACERTS_CROSS_TRIPLET=aarch64-linux-gnu ...
#
# Needs g++-<triplet> and the target's -dev packages installed as <package>:<arch> (Debian
# multiarch, `dpkg --add-architecture`). Libraries and CMake package files are then found only in
# /usr/lib/<triplet>; headers shared by all architectures stay in /usr/include.
if(NOT CACERTS_CROSS_TRIPLET)
  message(FATAL_ERROR "set CACERTS_CROSS_TRIPLET (e.g. aarch64-linux-gnu) for cmake/debian-cross.cmake")
endif()
# try_compile projects read this file again; pass the triplet on to them.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES CACERTS_CROSS_TRIPLET)

string(REGEX REPLACE "-.*" "" _cacerts_cross_cpu "${CACERTS_CROSS_TRIPLET}")
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${_cacerts_cross_cpu})
set(CMAKE_C_COMPILER ${CACERTS_CROSS_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${CACERTS_CROSS_TRIPLET}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${CACERTS_CROSS_TRIPLET})
# The build machine's own libraries (/usr/lib/<its triplet>) are never searched: only the
# target's multiarch directory under /usr, and programs from the build machine.
set(CMAKE_FIND_ROOT_PATH /usr)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# FindOpenSSL asks pkg-config first and trusts the directories it answers: point pkg-config at
# the target's .pc files, or it hands over the build machine's libssl.a.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/${CACERTS_CROSS_TRIPLET}/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
# A cross g++ given -fuse-ld=lld looks only for <triplet>-ld.lld, which Debian's lld does not
# install; a private -B directory offers it ld.lld, so the cross build links with the same lld
# and hot-code ordering as the native one.
if(EXISTS /usr/bin/ld.lld)
  set(_cacerts_cross_ld_dir ${CMAKE_BINARY_DIR}/cross-ld)
  file(MAKE_DIRECTORY ${_cacerts_cross_ld_dir})
  file(CREATE_LINK /usr/bin/ld.lld ${_cacerts_cross_ld_dir}/ld.lld SYMBOLIC)
  set(CMAKE_EXE_LINKER_FLAGS_INIT "-B${_cacerts_cross_ld_dir}/")
endif()
