# Included from the top-level CMakeLists.txt when REFERRAL_FUZZ is ON, before
# any library is defined, so that every library the fuzz targets link is
# compiled with libFuzzer's coverage instrumentation and with ASan/UBSan:
# coverage guides the fuzzer into the code under test, and a memory or UB
# error anywhere on the path is a crash the fuzzer reports.
#
# Debian's gRPC, protobuf and Abseil are GCC-built against libstdc++; clang
# uses the same libstdc++, so they link as they are (uninstrumented).
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "REFERRAL_FUZZ needs clang (libFuzzer), e.g. "
    "CC=clang-14 CXX=clang++-14; see deploy/fuzz.sh")
endif()

# UB is fatal rather than a printed warning, so libFuzzer sees it as a crash.
# vptr is left out: it checks dynamic types through the RTTI of Debian's
# uninstrumented protobuf, which is not what is under test.
add_compile_options(-fsanitize=fuzzer-no-link,address,undefined
  -fno-sanitize=vptr -fno-sanitize-recover=all -fno-omit-frame-pointer)
# Every executable of this build (the broker and CLI too, if someone builds
# them here) links the sanitizer runtimes the libraries now need.
add_link_options(-fsanitize=address,undefined -fno-sanitize=vptr)
