# The C suite under AddressSanitizer, LeakSanitizer and UBSan, run by the
# ctest test `c_asan` (label asan) of the main build tree:
#
#   cmake -DSOURCE_DIR=... -DBINARY_DIR=... -DCARGO_TARGET_DIR=...
#         -DGENERATOR=... -DC_COMPILER=... -P c-tests/run_asan.cmake
#
# configures a second tree in BINARY_DIR with -DTAPS_SANITIZE=ON that shares
# the main tree's cargo target directory (the Rust library is not built
# twice; it is not instrumented, but its allocations go through the
# sanitizer's malloc, so leaks of library objects are found), builds the C
# programs there and runs `ctest -L ^c$` in it. Any sanitizer report fails
# the test: the reports go to files (log_path) which are printed here.
cmake_minimum_required(VERSION 3.16)

foreach(v SOURCE_DIR BINARY_DIR CARGO_TARGET_DIR GENERATOR)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "run_asan.cmake: -D${v}= is required")
  endif()
endforeach()

function(step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "asan: ${what} failed (${rc})")
  endif()
endfunction()

set(configure "${CMAKE_COMMAND}" -S "${SOURCE_DIR}" -B "${BINARY_DIR}" -G "${GENERATOR}"
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTAPS_SANITIZE=ON -DTAPS_RACING_BUILD_BENCHES=OFF
    "-DTAPS_CARGO_TARGET_DIR=${CARGO_TARGET_DIR}")
if(C_COMPILER)
  list(APPEND configure "-DCMAKE_C_COMPILER=${C_COMPILER}")
endif()
step("configure" ${configure})
step("build" "${CMAKE_COMMAND}" --build "${BINARY_DIR}" --parallel 2)

# Sanitizer options: stop at the first error, look for leaks at exit, and
# write every report to a file under reports/.
set(reports "${BINARY_DIR}/sanitizer-reports")
file(REMOVE_RECURSE "${reports}")
file(MAKE_DIRECTORY "${reports}")
set(ENV{ASAN_OPTIONS} "detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1:log_path=${reports}/asan")
set(ENV{UBSAN_OPTIONS} "halt_on_error=1:print_stacktrace=1:log_path=${reports}/ubsan")
set(lsan "report_objects=1")
if(EXISTS "${SOURCE_DIR}/c-tests/lsan.supp")
  string(APPEND lsan ":suppressions=${SOURCE_DIR}/c-tests/lsan.supp:print_suppressions=0")
endif()
set(ENV{LSAN_OPTIONS} "${lsan}")

execute_process(COMMAND "${CMAKE_CTEST_COMMAND}" --test-dir "${BINARY_DIR}" -L "^c$" --output-on-failure
                RESULT_VARIABLE ctest_rc)

file(GLOB found "${reports}/*")
foreach(f IN LISTS found)
  file(READ "${f}" text)
  message("==== ${f}\n${text}")
endforeach()
list(LENGTH found n_reports)
if(n_reports GREATER 0)
  message(FATAL_ERROR "asan: ${n_reports} sanitizer report(s), printed above")
endif()
if(NOT ctest_rc EQUAL 0)
  message(FATAL_ERROR "asan: the C suite failed under the sanitizers (ctest ${ctest_rc})")
endif()
message("asan: the C suite passed with no sanitizer report")
