# How every test of the tree is registered with ctest: shmbus_add_test() below, and what all
# tests share (cmocka as the target shmbus_cmocka, the default timeout). Included by the top
# CMakeLists.txt when SHMBUS_TESTS is on, before any directory with tests is added.

enable_testing()

# cmocka: its CMake package where there is one, else pkg-config (Debian 12 has both).
find_package(cmocka CONFIG QUIET)
if(NOT cmocka_FOUND)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(CMOCKA REQUIRED cmocka)
  set(CMOCKA_LIBRARIES ${CMOCKA_LINK_LIBRARIES})
  set(CMOCKA_INCLUDE_DIR ${CMOCKA_INCLUDE_DIRS})
endif()
# Link this for cmocka: its headers and its library.
add_library(shmbus_cmocka INTERFACE)
target_include_directories(shmbus_cmocka INTERFACE ${CMOCKA_INCLUDE_DIR})
target_link_libraries(shmbus_cmocka INTERFACE ${CMOCKA_LIBRARIES})

# The default ctest timeout of a test, in seconds. The stress test's duration comes from
# SHMBUS_STRESS_SECONDS (default 3); sanitizer builds run slower, so they get a longer one.
if(SHMBUS_SANITIZE STREQUAL "")
  set(SHMBUS_TEST_TIMEOUT 120)
else()
  set(SHMBUS_TEST_TIMEOUT 600)
endif()

# shmbus_add_test(NAME
#     [SOURCES file...]          build program NAME from these (default: NAME.c), or
#     [COMMAND program arg...]   run this instead of building a program (scripts, pytest)
#     [PROGRAM target]           run this program of the build (one another test built)
#     [ARGS arg...]              arguments for the built program or PROGRAM
#     [LIBRARIES lib...] [INCLUDES dir...] [DEFINITIONS NAME=value...]
#     [DEPENDS target...]        programs the test runs (built before it)
#     [LABELS label...]          "concurrency" marks threads racing each other: scripts/test.sh
#                                runs those under TSan
#     [TIMEOUT seconds]          default SHMBUS_TEST_TIMEOUT
#     [ENVIRONMENT VAR=value...]
#     [TSAN_SUPPRESSIONS file]   in a TSan build, added to TSAN_OPTIONS (for what is not
#                                instrumented, libnng for one)
#     [PASS_REGULAR_EXPRESSION re] [FAIL_REGULAR_EXPRESSION re]
#     [SKIP_RETURN_CODE code]    this exit status means "skipped" (77: a tool is missing)
#     [RUN_SERIAL]               never at the same time as another test (benchmarks)
#     [BOTH_DELIVERIES])         register it twice: NAME on the nng delivery path and NAME_shm
#                                with SHMBUS_TEST_DELIVERY=shm, which makes the test helpers
#                                that load a config set "delivery": "shm" on every topic
#                                (tests/bus/pubsub_common.h, tests/common/delivery.h)
# Every ctest test of the tree goes through here, so a test's name, program, labels, timeout
# and environment are said in one place and in one way.
function(shmbus_add_test name)
  cmake_parse_arguments(PARSE_ARGV 1 T "BOTH_DELIVERIES;RUN_SERIAL"
    "TIMEOUT;TSAN_SUPPRESSIONS;PASS_REGULAR_EXPRESSION;FAIL_REGULAR_EXPRESSION;SKIP_RETURN_CODE;PROGRAM"
    "SOURCES;COMMAND;ARGS;LIBRARIES;INCLUDES;DEFINITIONS;DEPENDS;LABELS;ENVIRONMENT")
  if(T_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "shmbus_add_test(${name}): unknown arguments ${T_UNPARSED_ARGUMENTS}")
  endif()
  if(T_COMMAND)
    if(T_SOURCES OR T_LIBRARIES OR T_INCLUDES OR T_DEFINITIONS OR T_ARGS)
      message(FATAL_ERROR "shmbus_add_test(${name}): COMMAND runs a given program: no "
                          "SOURCES, LIBRARIES, INCLUDES, DEFINITIONS or ARGS")
    endif()
    set(command ${T_COMMAND})
  elseif(T_PROGRAM)
    if(T_SOURCES OR T_LIBRARIES OR T_INCLUDES OR T_DEFINITIONS OR T_DEPENDS)
      message(FATAL_ERROR "shmbus_add_test(${name}): PROGRAM runs a program built elsewhere: "
                          "no SOURCES, LIBRARIES, INCLUDES, DEFINITIONS or DEPENDS")
    endif()
    set(command ${T_PROGRAM} ${T_ARGS})
  else()
    if(NOT T_SOURCES)
      set(T_SOURCES ${name}.c)
    endif()
    add_executable(${name} ${T_SOURCES})
    target_link_libraries(${name} PRIVATE ${T_LIBRARIES})
    if(T_INCLUDES)
      target_include_directories(${name} PRIVATE ${T_INCLUDES})
    endif()
    if(T_DEFINITIONS)
      target_compile_definitions(${name} PRIVATE ${T_DEFINITIONS})
    endif()
    set(command ${name} ${T_ARGS})
  endif()
  if(T_DEPENDS)
    if(T_COMMAND OR T_PROGRAM)
      message(FATAL_ERROR "shmbus_add_test(${name}): DEPENDS needs a built program")
    endif()
    add_dependencies(${name} ${T_DEPENDS})
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT ${SHMBUS_TEST_TIMEOUT})
  endif()

  set(names ${name})
  if(T_BOTH_DELIVERIES)
    list(APPEND names ${name}_shm)
  endif()
  foreach(test IN LISTS names)
    add_test(NAME ${test} COMMAND ${command})
    set_tests_properties(${test} PROPERTIES TIMEOUT ${T_TIMEOUT})
    if(T_LABELS)
      set_tests_properties(${test} PROPERTIES LABELS "${T_LABELS}")
    endif()
    set(env ${T_ENVIRONMENT})
    if(test STREQUAL "${name}_shm")
      list(APPEND env SHMBUS_TEST_DELIVERY=shm)
    endif()
    if(env)
      set_tests_properties(${test} PROPERTIES ENVIRONMENT "${env}")
    endif()
    if(T_TSAN_SUPPRESSIONS AND SHMBUS_SANITIZE STREQUAL "thread")
      set_tests_properties(${test} PROPERTIES ENVIRONMENT_MODIFICATION
        "TSAN_OPTIONS=string_append: suppressions=${T_TSAN_SUPPRESSIONS}")
    endif()
    foreach(prop PASS_REGULAR_EXPRESSION FAIL_REGULAR_EXPRESSION SKIP_RETURN_CODE)
      if(T_${prop})
        set_tests_properties(${test} PROPERTIES ${prop} "${T_${prop}}")
      endif()
    endforeach()
    if(T_RUN_SERIAL)
      set_tests_properties(${test} PROPERTIES RUN_SERIAL TRUE)
    endif()
  endforeach()
endfunction()
